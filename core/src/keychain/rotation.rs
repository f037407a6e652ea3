//! Two-step rotation by version, the shape object-store gateways drive
//! (prepare a target version, then promote it while wraps continue):
//! [`Keychain::prepare_rotation`] and [`Keychain::promote_version`].
//! Both go to the latest stored state when the keychain is bound.

use super::{find, Keychain};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, EventKind};
use crate::key::{KeyInfo, KeyStatus, Purpose, Usage};

/// A rotation prepared by [`Keychain::prepare_rotation`]: the encryption
/// key version active when it was prepared, and the version (and key)
/// [`Keychain::promote_version`] makes active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPlan {
    /// The version of the encryption primary when the plan was made.
    pub current_version: u32,
    /// The version that becomes active.
    pub target_version: u32,
    /// The key ID of the target version.
    pub target_key_id: u32,
}

impl Keychain {
    /// Prepares a rotation of the encryption primary.
    ///
    /// With `target_version`, that enabled, non-primary encryption key is
    /// the target (`UnknownKey` if no encryption key has that version,
    /// `KeyDisabled`/`KeyDestroyed` if it cannot be used, `Policy` if it is
    /// already active). Without, the target is the newest enabled encryption
    /// key newer than the primary; if there is none, a new key is added
    /// (stored before this returns, not yet primary) and is the target.
    /// Nothing becomes active until [`promote_version`](Self::promote_version).
    pub fn prepare_rotation(&self, target_version: Option<u32>) -> Result<RotationPlan> {
        let r = self
            .mutate(|set, bound| {
                let current = set.keys[set.primary_encrypt].version;
                if let Some(v) = target_version {
                    let pos = set
                        .keys
                        .iter()
                        .position(|k| k.purpose == Purpose::Encrypt && k.version == v)
                        .ok_or_else(|| {
                            Error::new(
                                ErrorKind::UnknownKey,
                                format!("no encryption key has version {v}"),
                            )
                        })?;
                    let k = &set.keys[pos];
                    // Disabled / destroyed: the same errors as any use.
                    set.usable(k.id, Purpose::Encrypt)?;
                    if pos == set.primary_encrypt {
                        return Err(Error::policy(format!("version {v} is already active")));
                    }
                    let plan = RotationPlan {
                        current_version: current,
                        target_version: v,
                        target_key_id: k.id,
                    };
                    return Ok((Some(plan), Vec::new()));
                }
                let staged = set
                    .keys
                    .iter()
                    .filter(|k| {
                        k.purpose == Purpose::Encrypt
                            && k.status == KeyStatus::Enabled
                            && k.version > current
                    })
                    .max_by_key(|k| k.version)
                    .map(|k| (k.version, k.id));
                if let Some((version, id)) = staged {
                    let plan = RotationPlan {
                        current_version: current,
                        target_version: version,
                        target_key_id: id,
                    };
                    return Ok((Some(plan), Vec::new()));
                }
                let usage = if bound {
                    Usage::bound()
                } else {
                    Usage::unbound(0)
                };
                let pos = set.push_new(Purpose::Encrypt, usage, 0)?;
                let k = &set.keys[pos];
                let ev = Event::key(EventKind::KeyCreated, k.id, k.version, Purpose::Encrypt);
                let plan = RotationPlan {
                    current_version: current,
                    target_version: k.version,
                    target_key_id: k.id,
                };
                Ok((Some(plan), vec![ev]))
            })
            .and_then(|(p, _)| p.ok_or_else(|| Error::internal("prepare_rotation made no plan")));
        self.track(r)
    }

    /// Makes the plan's target the encryption primary, if the active
    /// version is still the plan's `current_version` (checked and changed
    /// in one step, in the store when bound). Another rotation in between
    /// fails with `Policy` ("rotation conflict") and changes nothing; so
    /// does a target that was disabled or destroyed meanwhile
    /// (`KeyDisabled`/`KeyDestroyed`) or is gone (`UnknownKey`). Wraps in
    /// flight finish under whichever primary they started with; both
    /// versions keep unwrapping.
    pub fn promote_version(&self, plan: &RotationPlan) -> Result<KeyInfo> {
        let r = self
            .mutate(|set, _| {
                let active = set.keys[set.primary_encrypt].version;
                if active != plan.current_version {
                    return Err(Error::policy(format!(
                        "rotation conflict: the active version is {active}, the plan expected {}",
                        plan.current_version
                    )));
                }
                let pos = find(set, plan.target_key_id)?;
                let k = &set.keys[pos];
                if k.purpose != Purpose::Encrypt || k.version != plan.target_version {
                    return Err(Error::invalid(format!(
                        "key {} is not encryption version {}",
                        plan.target_key_id, plan.target_version
                    )));
                }
                set.usable(k.id, Purpose::Encrypt)?;
                set.primary_encrypt = pos;
                let ev = Event::key(
                    EventKind::KeyPromoted,
                    plan.target_key_id,
                    plan.target_version,
                    Purpose::Encrypt,
                );
                Ok((Some(set.info(pos)), vec![ev]))
            })
            .and_then(|(i, _)| i.ok_or_else(|| Error::internal("promote produced no key")));
        self.track(r)
    }
}
