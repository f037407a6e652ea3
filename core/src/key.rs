//! One key of a keychain: its identity, purpose, status and material.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use zeroize::Zeroizing;

use crate::aead::{AeadEngine, Aes256Gcm};
use crate::secret::KeyMaterial;
use crate::sync::lock;

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

/// How many counts a stripe takes from a key's shared counter at most at
/// once.
const MAX_LEASE: u64 = 64;
/// Stripes of a key's usage (as many as the keychain's counter stripes).
const USAGE_STRIPES: usize = crate::events::COUNTER_SHARDS;

/// A stripe's lease: counts `start..end` it may hand out without touching
/// the shared counter. Alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Lease(Mutex<Range<u64>>);

/// Usage counters of one key, shared by every snapshot of the keychain.
///
/// Each encryption takes a distinct count `n`, below the policy's maximum.
/// Threads take counts from their stripe's lease and go to the shared
/// counter only to renew it (a lease of up to 64 counts, fewer as the
/// maximum nears: one when fewer than 512 remain), so threads encrypting on
/// two cores do not fight over one cache line for every message (measured:
/// one shared counter cost 2-thread seal about a fifth of its throughput).
/// Counts still leased when a key is retired are skipped, never reused.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Counts handed to leases (or given out one by one).
    granted: AtomicU64,
    leases: [Lease; USAGE_STRIPES],
    /// For a bound keychain: the count up to which the store has recorded a
    /// reservation. Encryption number `n` may proceed only if `n < reserved`.
    pub(crate) reserved: AtomicU64,
}

impl Usage {
    pub(crate) fn new(used: u64) -> Usage {
        Usage {
            granted: AtomicU64::new(used),
            leases: Default::default(),
            reserved: AtomicU64::new(used),
        }
    }

    /// The count of one new encryption, below `max`; `None` when every
    /// count below `max` was taken (a refused attempt takes none).
    #[inline]
    pub(crate) fn take(&self, max: u64) -> Option<u64> {
        let mut lease = lock(&self.leases[crate::events::counter_shard()].0);
        if let Some(n) = lease.next() {
            return Some(n);
        }
        let remaining = max.saturating_sub(self.granted.load(Ordering::Relaxed));
        let size = (remaining / (USAGE_STRIPES as u64 * 8)).clamp(1, MAX_LEASE);
        let n = self.granted.fetch_add(size, Ordering::Relaxed);
        if n >= max {
            // Safe under concurrency: once the counter reaches `max`, every
            // later add is matched by this subtract.
            self.granted.fetch_sub(size, Ordering::Relaxed);
            return None;
        }
        let end = n.saturating_add(size).min(max);
        if n + size > end {
            // Give back what lies beyond `max`.
            self.granted.fetch_sub(n + size - end, Ordering::Relaxed);
        }
        *lease = (n + 1)..end;
        Some(n)
    }

    /// Encryptions started with this key: counts granted, less what the
    /// leases still hold. Exact: every lease is held while it is read.
    pub(crate) fn used(&self) -> u64 {
        let leases: Vec<_> = self.leases.iter().map(|l| lock(&l.0)).collect();
        let spare: u64 = leases.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        self.granted.load(Ordering::Acquire).saturating_sub(spare)
    }

    /// The count to record when saving: never below anything handed out.
    pub(crate) fn persisted(&self) -> u64 {
        self.used().max(self.reserved.load(Ordering::Acquire))
    }
}

/// Key material with its expanded cipher, shared between snapshots and
/// wiped when the last snapshot holding it goes away.
pub(crate) struct Secret {
    pub(crate) material: KeyMaterial,
    pub(crate) cipher: Aes256Gcm,
    /// HKDF-Extract(salt = none, ikm = material), computed on first use by
    /// a derivation and kept (wiped on drop): each derive then runs only
    /// HKDF-Expand, about half the work.
    prk: OnceLock<Zeroizing<[u8; 32]>>,
}

impl Secret {
    pub(crate) fn new(material: KeyMaterial) -> Secret {
        let cipher = Aes256Gcm::new(&material.0);
        Secret {
            material,
            cipher,
            prk: OnceLock::new(),
        }
    }

    /// The HKDF pseudorandom key of this key's material.
    pub(crate) fn prk(&self) -> &[u8; 32] {
        self.prk
            .get_or_init(|| crate::derive::extract(&self.material.0))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_hand_out_every_count_once_and_never_past_the_maximum() {
        for max in [1u64, 3, 97, 513, 10_000] {
            let usage = Arc::new(Usage::new(0));
            let taken: Vec<Vec<u64>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..6)
                    .map(|_| {
                        let u = Arc::clone(&usage);
                        s.spawn(move || std::iter::from_fn(|| u.take(max)).collect::<Vec<u64>>())
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut all: Vec<u64> = taken.into_iter().flatten().collect();
            all.sort_unstable();
            // Every thread ran until refused: each count below max exactly once.
            assert_eq!(all, (0..max).collect::<Vec<_>>(), "max {max}");
            assert_eq!(usage.used(), max);
            assert_eq!(usage.take(max), None);
            assert_eq!(usage.used(), max, "a refused attempt takes no count");
        }
    }

    #[test]
    fn used_counts_only_what_was_taken() {
        let usage = Usage::new(5);
        assert_eq!(usage.used(), 5);
        assert_eq!(usage.take(1 << 32), Some(5));
        assert_eq!(usage.take(1 << 32), Some(6));
        // The rest of the lease is not counted as used.
        assert_eq!(usage.used(), 7);
        assert_eq!(usage.persisted(), 7);
        usage.reserved.store(100, Ordering::Release);
        assert_eq!(usage.persisted(), 100);
    }
}
