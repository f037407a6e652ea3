//! One key of a keychain: its identity, purpose, status and material.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::aead::{AeadEngine, Aes256Gcm};
use crate::secret::KeyMaterial;

/// What a key is for. The keychain keeps one primary key per purpose.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A key-encryption key: used by seal, encrypt and wrap_key.
    Encrypt,
    /// An HKDF master: used by derive_origin_key and derive.
    Derive,
}

impl Purpose {
    /// The lower-case name used in the keychain JSON and in every binding.
    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::Encrypt => "encrypt",
            Purpose::Derive => "derive",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Purpose> {
        match s {
            "encrypt" => Some(Purpose::Encrypt),
            "derive" => Some(Purpose::Derive),
            _ => None,
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a key may be used.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyStatus {
    /// Usable for every operation of its purpose.
    Enabled,
    /// Kept, but refused for every operation until enabled again.
    Disabled,
    /// Material wiped; ciphertexts under it fail with `KeyDestroyed`.
    Destroyed,
}

impl KeyStatus {
    /// The lower-case name used in the keychain JSON and in every binding.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Enabled => "enabled",
            KeyStatus::Disabled => "disabled",
            KeyStatus::Destroyed => "destroyed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<KeyStatus> {
        match s {
            "enabled" => Some(KeyStatus::Enabled),
            "disabled" => Some(KeyStatus::Disabled),
            "destroyed" => Some(KeyStatus::Destroyed),
            _ => None,
        }
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Metadata of one key, safe to print and log: no material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key ID written on the wire (in [1, 2^31-1] for keys keystrata
    /// generates; imported Tink keys may use any non-zero 32-bit value).
    pub key_id: u32,
    /// 1, 2, 3 … in order of creation, counted per purpose.
    pub version: u32,
    /// What the key is for.
    pub purpose: Purpose,
    /// Enabled, disabled or destroyed.
    pub status: KeyStatus,
    /// Creation time, in seconds since the Unix epoch.
    pub created_at: u64,
    /// Encryptions made with this key so far (for a keychain bound to a
    /// store, the count reserved in the store, which may be slightly ahead).
    pub usage: u64,
    /// Whether this key is the primary key of its purpose.
    pub primary: bool,
}

/// Usage counters of one key, shared by every snapshot of the keychain.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Encryptions started with this key.
    pub(crate) used: AtomicU64,
    /// For a bound keychain: the count up to which the store has recorded a
    /// reservation. Encryption number `n` may proceed only if `n < reserved`.
    pub(crate) reserved: AtomicU64,
}

impl Usage {
    pub(crate) fn new(used: u64) -> Usage {
        Usage {
            used: AtomicU64::new(used),
            reserved: AtomicU64::new(used),
        }
    }

    /// The count to record when saving: never below anything handed out.
    pub(crate) fn persisted(&self) -> u64 {
        self.used
            .load(Ordering::Acquire)
            .max(self.reserved.load(Ordering::Acquire))
    }
}

/// Key material with its expanded cipher, shared between snapshots and
/// wiped when the last snapshot holding it goes away.
pub(crate) struct Secret {
    pub(crate) material: KeyMaterial,
    pub(crate) cipher: Aes256Gcm,
}

impl Secret {
    pub(crate) fn new(material: KeyMaterial) -> Secret {
        let cipher = Aes256Gcm::new(&material.0);
        Secret { material, cipher }
    }
}

/// One key as the keychain holds it. Cheap to clone: material and counters
/// are shared.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) id: u32,
    pub(crate) version: u32,
    pub(crate) purpose: Purpose,
    pub(crate) status: KeyStatus,
    pub(crate) created_at: u64,
    /// `None` exactly when the key is destroyed.
    pub(crate) secret: Option<Arc<Secret>>,
    pub(crate) usage: Arc<Usage>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("purpose", &self.purpose)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Key {
    pub(crate) fn info(&self, primary: bool) -> KeyInfo {
        KeyInfo {
            key_id: self.id,
            version: self.version,
            purpose: self.purpose,
            status: self.status,
            created_at: self.created_at,
            usage: self.usage.persisted(),
            primary,
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
