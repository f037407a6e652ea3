//! Usage of the encryption primary: every encryption takes one count from
//! it, reserving blocks in the store (bound keychains) and refusing or
//! rotating as the policy requires.

use super::Keychain;
use crate::error::{Error, Result};
use crate::key::{now_unix, Key, Secret, Taken};
use crate::keyset::KeySet;

/// Outcome of taking one usage count from the encryption primary.
enum Take {
    Ok,
    NeedsReservation,
    Exhausted(&'static str),
}

/// Attempts at finding a usable encryption primary (each after a
/// reservation, a rotation or adopting another writer's primary).
const MAX_KEY_ATTEMPTS: u32 = 16;

impl Keychain {
    /// Runs `f` with the encryption primary after taking one usage count
    /// from it, reserving counts in the store or rotating as the policy
    /// requires.
    #[inline]
    pub(crate) fn with_encryption_key<T>(
        &self,
        f: impl FnOnce(&Key, &Secret) -> Result<T>,
    ) -> Result<T> {
        if let Some(b) = &self.bound {
            if Keychain::refresh_is_due(b) {
                self.refresh_due(b);
            }
        }
        for _ in 0..MAX_KEY_ATTEMPTS {
            let set = self.live()?;
            let key = &set.keys[set.primary_encrypt];
            let secret = key
                .secret
                .as_ref()
                .ok_or_else(|| Error::internal("the encryption primary has no material"))?;
            match (self.take(&set, key), &self.bound) {
                (Take::Ok, _) => return f(key, secret),
                (Take::NeedsReservation | Take::Exhausted(_), Some(b)) => {
                    let id = key.id;
                    drop(set);
                    self.reserve(b, id)?;
                }
                (Take::Exhausted(why), None) => {
                    return Err(Error::policy(format!(
                        "the encryption primary (key {}, version {}) {why}; \
                         rotate the keychain and save it",
                        key.id, key.version
                    )))
                }
                (Take::NeedsReservation, None) => {
                    return Err(Error::internal("an unbound key asked for a reservation"))
                }
            }
        }
        Err(Error::unavailable(
            "no usable encryption primary after repeated reservations; the store keeps changing",
        ))
    }

    #[inline]
    fn take(&self, set: &KeySet, key: &Key) -> Take {
        match key.usage.take(set.policy.max_encryptions_per_key) {
            Taken::Count(_) => {}
            Taken::NeedBlock => return Take::NeedsReservation,
            Taken::Exhausted => {
                return Take::Exhausted("reached the policy's maximum number of encryptions")
            }
        }
        if let Some(max_age) = set.policy.max_key_age_secs {
            if now_unix().saturating_sub(key.created_at) >= max_age {
                return Take::Exhausted("is older than the policy's maximum key age");
            }
        }
        Take::Ok
    }
}
