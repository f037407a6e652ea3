//! The keychain: keys with one primary per purpose, and every operation.
//!
//! One concept per file:
//! - this file: the [`Keychain`] type and its key set's lifecycle
//!   (generate, rotate, add, promote, disable, enable, destroy, keys,
//!   policy), and the copy-on-write machinery every change goes through;
//! - `persist.rs`: saving and loading under a [`Root`](crate::Root), and
//!   opening a keychain bound to a store;
//! - `bound.rs`: what a keychain bound to a store does (compare-and-swap
//!   writes, usage blocks, noticing other writers);
//! - `seal.rs`: seal and unseal (Tink's AEAD format), into a `Vec` or into
//!   a buffer the caller sized;
//! - `envelope_encryption.rs`: encrypt and decrypt (Tink's KmsEnvelopeAead
//!   layout), likewise;
//! - `wrap.rs`: the keychain as a [`KeyManager`](crate::KeyManager)
//!   (wrap_key, unwrap_key, close);
//! - `derive.rs`: HKDF derivation under the derivation keys;
//! - `tink.rs`: importing and (insecurely) exporting Tink keysets;
//! - `usage.rs`: taking a usage count from the encryption primary, as the
//!   policy requires;
//! - `telemetry.rs`: subscriptions, counters and the bookkeeping of every
//!   call's outcome.

use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use zeroize::Zeroize;

use crate::error::{Error, ErrorKind, Result};
use crate::events::{Counter, Event, EventKind, Telemetry};
use crate::key::{KeyInfo, KeyStatus, Purpose, Usage};
use crate::keyset::KeySet;
use crate::policy::Policy;

mod bound;
mod derive;
mod envelope_encryption;
mod persist;
mod rewrap;
mod rotation;
mod seal;
#[cfg(feature = "aws-lc")]
mod sign;
mod stream;
mod telemetry;
mod tink;
mod usage;
mod wrap;

use self::bound::Bound;
pub use self::bound::{OpenOptions, DEFAULT_REFRESH};
pub use self::rotation::RotationPlan;
#[cfg(feature = "aws-lc")]
pub use self::sign::Signature;

/// Provider name of a keychain acting as a [`KeyManager`](crate::KeyManager).
pub const KEYCHAIN_PROVIDER: &str = "keystrata";

/// A set of AES-256 keys with one primary key per purpose, and every
/// operation keystrata offers on them.
///
/// `Keychain` is `Send + Sync`: share it between threads (for example in an
/// `Arc`). Seal, unseal, encrypt, decrypt, wrap and derive read an immutable
/// snapshot of the keys without taking a lock; lifecycle changes (rotate,
/// promote, …) are serialized among themselves and never disturb calls in
/// flight: a ciphertext made under the old primary still decrypts.
///
/// # Example
///
/// ```
/// use keystrata::{Keychain, AgeRoot};
///
/// let kc = Keychain::generate()?;
/// let ct = kc.seal(b"db password", b"service=billing")?;
/// assert_eq!(kc.unseal(&ct, b"service=billing")?, b"db password");
///
/// // Envelope encryption: a fresh data key per message.
/// let blob = kc.encrypt(b"a large document", b"")?;
/// assert_eq!(kc.decrypt(&blob, b"")?, b"a large document");
///
/// // Rotation keeps old ciphertexts readable.
/// kc.rotate()?;
/// assert_eq!(kc.unseal(&ct, b"service=billing")?, b"db password");
///
/// // Save under an age identity, load it back.
/// let root = AgeRoot::generate();
/// let saved = kc.save(&root)?;
/// let again = Keychain::load(&saved, &root)?;
/// assert_eq!(again.decrypt(&blob, b"")?, b"a large document");
/// # Ok::<(), keystrata::Error>(())
/// ```
pub struct Keychain {
    state: ArcSwap<KeySet>,
    writer: Mutex<()>,
    pub(crate) bound: Option<Bound>,
    telemetry: Telemetry,
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.state.load();
        f.debug_struct("Keychain")
            .field("keys", &set.keys.len())
            .field("bound", &self.bound.as_ref().map(|b| b.store.location()))
            .finish_non_exhaustive()
    }
}

impl Keychain {
    /// A new keychain with one encryption key and one derivation key, both
    /// primary, and the default [`Policy`]. It is not bound to any store:
    /// save it with [`save`](Keychain::save) or [`save_file`](Keychain::save_file).
    pub fn generate() -> Result<Keychain> {
        Keychain::generate_with_policy(Policy::default())
    }

    /// Like [`generate`](Keychain::generate), with a rotation policy.
    pub fn generate_with_policy(policy: Policy) -> Result<Keychain> {
        policy.validate()?;
        let mut set = KeySet::empty();
        set.policy = policy;
        set.primary_encrypt = set.push_new(Purpose::Encrypt, Usage::unbound(0), 0)?;
        set.primary_derive = set.push_new(Purpose::Derive, Usage::unbound(0), 0)?;
        Ok(Keychain::from_set(set, None))
    }

    pub(crate) fn from_set(set: KeySet, bound: Option<Bound>) -> Keychain {
        Keychain {
            state: ArcSwap::from_pointee(set),
            writer: Mutex::new(()),
            bound,
            telemetry: Telemetry::default(),
        }
    }

    /// Adds a new encryption key and makes it the primary. The derivation
    /// primary is left alone, so derived keys do not change.
    pub fn rotate(&self) -> Result<KeyInfo> {
        let r = self.rotate_purpose(Purpose::Encrypt);
        self.track(r)
    }

    /// Adds a new derivation key and makes it the derivation primary. This
    /// changes every derived key: do it on compromise. Older derivation keys
    /// stay reachable through [`derive_with`](Keychain::derive_with).
    pub fn rotate_derivation(&self) -> Result<KeyInfo> {
        let r = self.rotate_purpose(Purpose::Derive);
        self.track(r)
    }

    fn rotate_purpose(&self, purpose: Purpose) -> Result<KeyInfo> {
        let (info, rotated) = self.mutate(|set, bound| {
            let pos = match (bound, purpose) {
                // A bound keychain's new encryption primary comes with the
                // first block of its usage counts reserved for this process.
                (true, Purpose::Encrypt) => {
                    set.push_bound_encrypt_primary(set.policy.usage_block)?
                }
                (true, _) => set.push_new(purpose, Usage::bound(), 0)?,
                (false, _) => set.push_new(purpose, Usage::unbound(0), 0)?,
            };
            set.set_primary(purpose, pos);
            let k = &set.keys[pos];
            let events = vec![
                Event::key(EventKind::KeyCreated, k.id, k.version, purpose),
                Event::key(EventKind::KeyRotated, k.id, k.version, purpose),
            ];
            Ok((Some(set.info(pos)), events))
        })?;
        if rotated {
            self.telemetry.count(Counter::rotation_of(purpose));
        }
        info.ok_or_else(|| Error::internal("rotate produced no key"))
    }

    /// Adds an enabled key that is not primary: the first phase of a
    /// two-phase rotation. Roll the keychain out to every reader, then
    /// [`promote`](Keychain::promote) the key.
    pub fn add_key(&self, purpose: Purpose) -> Result<KeyInfo> {
        let r = self
            .mutate(|set, bound| {
                let usage = if bound {
                    Usage::bound()
                } else {
                    Usage::unbound(0)
                };
                let pos = set.push_new(purpose, usage, 0)?;
                let k = &set.keys[pos];
                let ev = Event::key(EventKind::KeyCreated, k.id, k.version, purpose);
                Ok((Some(set.info(pos)), vec![ev]))
            })
            .and_then(|(i, _)| i.ok_or_else(|| Error::internal("add_key produced no key")));
        self.track(r)
    }

    /// Makes the enabled key `key_id` the primary of its purpose.
    pub fn promote(&self, key_id: u32) -> Result<KeyInfo> {
        let r = self
            .mutate(|set, _| {
                let pos = find(set, key_id)?;
                let k = &set.keys[pos];
                if k.status != KeyStatus::Enabled {
                    return Err(Error::policy(format!(
                        "key {key_id} is {}; only an enabled key can be promoted",
                        k.status
                    )));
                }
                let (purpose, version) = (k.purpose, k.version);
                set.set_primary(purpose, pos);
                let ev = Event::key(EventKind::KeyPromoted, key_id, version, purpose);
                Ok((Some(set.info(pos)), vec![ev]))
            })
            .and_then(|(i, _)| i.ok_or_else(|| Error::internal("promote produced no key")));
        self.track(r)
    }

    /// Disables `key_id`: it is kept but refused for every operation. The
    /// primary cannot be disabled (promote another key first).
    pub fn disable(&self, key_id: u32) -> Result<()> {
        let r = self.set_status(key_id, KeyStatus::Disabled);
        self.track(r)
    }

    /// Enables a disabled key again. A destroyed key cannot be enabled.
    pub fn enable(&self, key_id: u32) -> Result<()> {
        let r = self.set_status(key_id, KeyStatus::Enabled);
        self.track(r)
    }

    /// Destroys `key_id`'s material. Irreversible: ciphertexts under it then
    /// fail with `KeyDestroyed`. The primary cannot be destroyed. Destroying
    /// a destroyed key does nothing.
    pub fn destroy(&self, key_id: u32) -> Result<()> {
        let r = self.set_status(key_id, KeyStatus::Destroyed);
        self.track(r)
    }

    fn set_status(&self, key_id: u32, status: KeyStatus) -> Result<()> {
        self.mutate(|set, _| {
            let pos = find(set, key_id)?;
            let primary = set.is_primary(pos);
            let k = &mut set.keys[pos];
            let (kind, same) = match status {
                KeyStatus::Disabled => (EventKind::KeyDisabled, k.status == KeyStatus::Disabled),
                KeyStatus::Enabled => (EventKind::KeyEnabled, k.status == KeyStatus::Enabled),
                KeyStatus::Destroyed => (EventKind::KeyDestroyed, k.status == KeyStatus::Destroyed),
            };
            if same {
                return Ok((None::<()>, Vec::new()));
            }
            if primary && status != KeyStatus::Enabled {
                return Err(Error::policy(format!(
                    "key {key_id} is the {} primary; promote another key before making it {status}",
                    k.purpose
                )));
            }
            if k.status == KeyStatus::Destroyed {
                return Err(Error::policy(format!(
                    "key {key_id} was destroyed; it cannot be {status}"
                )));
            }
            k.status = status;
            if status == KeyStatus::Destroyed {
                // The material is wiped when the last snapshot holding it
                // (a call in flight) lets go of it.
                k.secret = None;
            }
            let ev = Event::key(kind, key_id, k.version, k.purpose);
            Ok((None, vec![ev]))
        })
        .map(|_| ())
    }

    /// Metadata of every key, in order of creation. No material.
    /// `Unavailable` once closed, like every call that reads the keychain
    /// (the one rule in every language; only counters, unsubscribe and
    /// close keep working).
    pub fn keys(&self) -> Result<Vec<KeyInfo>> {
        let set = self.live()?;
        Ok((0..set.keys.len()).map(|i| set.info(i)).collect())
    }

    /// The encryption primary's metadata.
    pub fn primary(&self) -> Result<KeyInfo> {
        self.primary_for(Purpose::Encrypt)
    }

    /// The primary key of `purpose`. `UnknownKey` for `Sign` in a
    /// keychain without signing keys.
    pub fn primary_for(&self, purpose: Purpose) -> Result<KeyInfo> {
        let set = self.live()?;
        let pos = match (set.primary_pos(purpose), purpose) {
            (Some(pos), _) => pos,
            (None, Purpose::Stream) => set.primary_stream_pos()?,
            (None, _) => set.primary_sign_pos()?,
        };
        Ok(set.info(pos))
    }

    /// The rotation policy. `Unavailable` once closed.
    pub fn policy(&self) -> Result<Policy> {
        Ok(self.live()?.policy)
    }

    /// Replaces the rotation policy (written to the store if bound).
    pub fn set_policy(&self, policy: Policy) -> Result<()> {
        let r = policy.validate().and_then(|()| {
            self.mutate(|set, _| {
                set.policy = policy;
                Ok((None::<()>, Vec::new()))
            })
            .map(|_| ())
        });
        self.track(r)
    }

    /// The current snapshot, or `Unavailable` once closed (a call racing
    /// with `close` sees the empty snapshot close leaves behind).
    #[inline]
    pub(crate) fn live(&self) -> Result<arc_swap::Guard<Arc<KeySet>>> {
        let set = self.state.load();
        if set.keys.is_empty() {
            return Err(Error::unavailable("this keychain was closed"));
        }
        Ok(set)
    }

    /// The current snapshot for a call that reads under `key_id` (unseal,
    /// decrypt, unwrap, derive, rewrap): on a bound keychain, first what
    /// other writers changed if the refresh interval has passed (a key
    /// they disabled or destroyed stops decrypting here too, not only once
    /// this process encrypts), and a reload at once if the snapshot does
    /// not have `key_id` (a key another writer just made).
    #[inline]
    pub(crate) fn set_with_key(&self, key_id: u32) -> Result<arc_swap::Guard<Arc<KeySet>>> {
        if let Some(b) = &self.bound {
            if Keychain::refresh_is_due(b) {
                self.refresh_due(b);
            }
        }
        let set = self.live()?;
        if self.bound.is_none() || set.position(key_id).is_some() {
            return Ok(set);
        }
        drop(set);
        self.reload_for_unknown_key();
        self.live()
    }

    #[inline]
    fn check_open(&self) -> Result<()> {
        self.live().map(|_| ())
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        // A panic while holding the lock leaves no half-made state: the
        // snapshot is swapped only after everything succeeded.
        crate::sync::lock(&self.writer)
    }

    fn try_lock_writer(&self) -> Option<MutexGuard<'_, ()>> {
        match self.writer.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Applies a change to a copy of the current snapshot (for a bound
    /// keychain: of the latest stored state, by compare-and-swap, applying
    /// it again after a conflict), publishes it, then emits events with no
    /// lock held. Returns `f`'s value and whether anything changed.
    fn mutate<T>(
        &self,
        mut f: impl FnMut(&mut KeySet, bool) -> Result<(Option<T>, Vec<Event>)>,
    ) -> Result<(Option<T>, bool)> {
        let (out, events) = {
            let _w = self.lock_writer();
            match &self.bound {
                None => {
                    let cur = self.live()?;
                    let mut next = KeySet::clone(&cur);
                    let (o, ev) = f(&mut next, false)?;
                    if ev.is_empty() && o.is_none() && next.policy == cur.policy {
                        return Ok((None, false));
                    }
                    self.state.store(Arc::new(next));
                    (o, ev)
                }
                Some(b) => self
                    .commit(b, |set| {
                        let before = set.policy;
                        let (o, ev) = f(set, true)?;
                        if ev.is_empty() && o.is_none() && set.policy == before {
                            return Ok(None);
                        }
                        Ok(Some((o, ev)))
                    })?
                    .unwrap_or((None, Vec::new())),
            }
        };
        let changed = !events.is_empty();
        self.telemetry.emit(&events);
        Ok((out, changed))
    }
}

fn find(set: &KeySet, key_id: u32) -> Result<usize> {
    set.position(key_id).ok_or_else(|| {
        Error::new(
            ErrorKind::UnknownKey,
            format!("no key with key_id {key_id}"),
        )
    })
}

/// Checks a caller-sized output buffer is exactly `want` bytes (`None`: the
/// length overflowed) before any key is used.
fn check_len(what: &str, got: usize, want: Option<usize>) -> Result<()> {
    match want {
        Some(w) if w == got => Ok(()),
        Some(w) => Err(Error::invalid(format!(
            "{what} output buffer is {got} bytes; it must be exactly {w}"
        ))),
        None => Err(Error::invalid("plaintext too long")),
    }
}

/// Leaves a caller's buffer zeroed when the call failed.
fn zero_on_error(r: Result<()>, out: &mut [u8]) -> Result<()> {
    if r.is_err() {
        out.zeroize();
    }
    r
}

/// Keeps `Keychain: Send + Sync` checked at compile time.
#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Keychain>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::SEAL_OVERHEAD;
    use crate::KeyManager;

    #[test]
    fn generated_keychain_shape() {
        let kc = Keychain::generate().expect("generate");
        let keys = kc.keys().expect("keys");
        assert_eq!(keys.len(), 2);
        assert!(keys
            .iter()
            .all(|k| k.primary && k.version == 1 && k.key_id >= 1 && k.key_id < (1 << 31)));
        assert_eq!(keys[0].purpose, Purpose::Encrypt);
        assert_eq!(keys[1].purpose, Purpose::Derive);
    }

    #[test]
    fn wrong_buffer_lengths_are_invalid_input_and_use_no_key() {
        let kc = Keychain::generate().unwrap();
        let mut short = [0u8; 10];
        let e = kc.seal_to(b"hello", b"", &mut short).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = kc.encrypt_to(b"hello", b"", &mut short).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(kc.primary().unwrap().usage, 0);
        let ct = kc.seal(b"hello", b"").unwrap();
        let e = kc.unseal_to(&ct, b"", &mut short).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let blob = kc.encrypt(b"hello", b"").unwrap();
        let e = kc.decrypt_to(&blob, b"", &mut short).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(kc.counters().errors_of(ErrorKind::InvalidInput), 4);
    }

    #[test]
    fn failures_match_the_vec_forms_and_leave_the_buffer_zeroed() {
        let kc = Keychain::generate().unwrap();
        let mut ct = kc.seal(b"secret", b"a").unwrap();
        let mut out = [7u8; 6];
        let e = kc.unseal_to(&ct, b"b", &mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Authentication);
        assert_eq!(out, [0u8; 6]);
        let n = ct.len();
        ct[n - 1] ^= 1;
        assert_eq!(
            kc.unseal_to(&ct, b"a", &mut out).unwrap_err().kind(),
            ErrorKind::Authentication
        );
        assert_eq!(
            kc.unseal_to(&ct[..4], b"a", &mut []).unwrap_err().kind(),
            ErrorKind::Format
        );
        assert_eq!(
            Keychain::decrypted_len(b"\x00\x00").unwrap_err().kind(),
            ErrorKind::Format
        );
        let blob = kc.encrypt(b"secret", b"a").unwrap();
        let mut out = [7u8; 6];
        assert_eq!(
            kc.decrypt_to(&blob, b"b", &mut out).unwrap_err().kind(),
            ErrorKind::Authentication
        );
        assert_eq!(out, [0u8; 6]);
        let c = kc.counters();
        assert_eq!((c.unseal_failed, c.decrypt_failed), (3, 1));
        kc.close().unwrap();
        let mut out = [0u8; SEAL_OVERHEAD + 1];
        assert_eq!(
            kc.seal_to(b"x", b"", &mut out).unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }
}
