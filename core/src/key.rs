//! One key of a keychain: its identity, purpose, status and material.

use std::fmt;
use std::ops::Range;
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
    /// A signing key (Ed25519 or ECDSA, its [`Algorithm`]): used by sign,
    /// sign_digest and verify.
    ///
    /// [`Algorithm`]: crate::sign::Algorithm
    Sign,
    /// A streaming key (Tink's AES-GCM-HKDF streaming AEAD, its
    /// [`StreamFormat`]): used by encrypting_writer and decrypting_reader.
    ///
    /// [`StreamFormat`]: crate::stream::StreamFormat
    Stream,
}

impl Purpose {
    /// Every purpose, in numeric order.
    pub const ALL: [Purpose; 4] = [
        Purpose::Encrypt,
        Purpose::Derive,
        Purpose::Sign,
        Purpose::Stream,
    ];

    /// The stable number of this purpose, shared by every binding (the C
    /// `KS_PURPOSE_*` values; 0 is left for "no purpose"). A number is
    /// never reused; retired ones: none yet. Next free number: 5.
    pub const fn code(self) -> u32 {
        match self {
            Purpose::Encrypt => 1,
            Purpose::Derive => 2,
            Purpose::Sign => 3,
            Purpose::Stream => 4,
        }
    }

    /// The purpose with the given stable number, if there is one.
    pub const fn from_code(code: u32) -> Option<Purpose> {
        Some(match code {
            1 => Purpose::Encrypt,
            2 => Purpose::Derive,
            3 => Purpose::Sign,
            4 => Purpose::Stream,
            _ => return None,
        })
    }

    /// The lower-case name used in the keychain JSON and in every binding
    /// (`"encrypt"`, `"derive"`).
    pub const fn name(self) -> &'static str {
        self.as_str()
    }

    /// The purpose named `name` (as [`name`](Purpose::name) spells it).
    pub fn from_name(name: &str) -> Option<Purpose> {
        Purpose::parse(name)
    }

    /// The lower-case name used in the keychain JSON and in every binding;
    /// the same as [`name`](Purpose::name).
    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::Encrypt => "encrypt",
            Purpose::Derive => "derive",
            Purpose::Sign => "sign",
            Purpose::Stream => "stream",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Purpose> {
        match s {
            "encrypt" => Some(Purpose::Encrypt),
            "derive" => Some(Purpose::Derive),
            "sign" => Some(Purpose::Sign),
            "stream" => Some(Purpose::Stream),
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
    /// Every status, in numeric order.
    pub const ALL: [KeyStatus; 3] = [
        KeyStatus::Enabled,
        KeyStatus::Disabled,
        KeyStatus::Destroyed,
    ];

    /// The stable number of this status, shared by every binding (the C
    /// `KS_KEY_*` values). A number is never reused; retired ones: none
    /// yet. Next free number: 4.
    pub const fn code(self) -> u32 {
        match self {
            KeyStatus::Enabled => 1,
            KeyStatus::Disabled => 2,
            KeyStatus::Destroyed => 3,
        }
    }

    /// The status with the given stable number, if there is one.
    pub const fn from_code(code: u32) -> Option<KeyStatus> {
        Some(match code {
            1 => KeyStatus::Enabled,
            2 => KeyStatus::Disabled,
            3 => KeyStatus::Destroyed,
            _ => return None,
        })
    }

    /// The lower-case name used in the keychain JSON and in every binding
    /// (`"enabled"`, `"disabled"`, `"destroyed"`).
    pub const fn name(self) -> &'static str {
        self.as_str()
    }

    /// The status named `name` (as [`name`](KeyStatus::name) spells it).
    pub fn from_name(name: &str) -> Option<KeyStatus> {
        KeyStatus::parse(name)
    }

    /// The lower-case name used in the keychain JSON and in every binding;
    /// the same as [`name`](KeyStatus::name).
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
    /// For a signing key, its algorithm; `None` for the other purposes.
    pub algorithm: Option<crate::sign::Algorithm>,
    /// For a streaming key, its format; `None` for the other purposes.
    pub stream_format: Option<crate::stream::StreamFormat>,
}

/// How many counts a stripe takes from a key's shared counter at most at
/// once.
const MAX_LEASE: u64 = 64;
/// Stripes of a key's usage (as many as the keychain's counter stripes).
const USAGE_STRIPES: usize = crate::events::COUNTER_SHARDS;

/// A stripe's lease: counts it may hand out without touching the shared
/// block, and the fork generation they belong to. Alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Lease(Mutex<LeaseState>);

#[derive(Debug, Default)]
struct LeaseState {
    counts: Range<u64>,
    generation: u64,
}

/// The counts this process owns for one key and has not leased yet.
#[derive(Debug)]
struct Block {
    next: u64,
    end: u64,
    /// For a bound keychain, the fork generation that reserved the block:
    /// a forked child sees another generation and owns nothing until it
    /// reserves a block of its own. `None` for an unbound keychain, whose
    /// counts are its own wherever it runs.
    generation: Option<u64>,
}

/// What [`Usage::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// This encryption's count.
    Count(u64),
    /// Every owned count is used: reserve a new block in the store first.
    NeedBlock,
    /// The policy's maximum is reached.
    Exhausted,
}

/// Usage counts of one key in this process, shared by every snapshot of
/// the keychain.
///
/// Each encryption takes a distinct count `n` from a **block** of counts
/// this process owns: for an unbound keychain, everything from the loaded
/// usage up; for a bound keychain, a block reserved in the store by
/// compare-and-swap, so that no two processes (or handles, or a parent and
/// its forked child) ever own the same count and the policy's maximum holds
/// for all of them together.
///
/// Threads take counts from their stripe's lease and go to the block only
/// to renew it (a lease of up to 64 counts, fewer as the block's end nears:
/// one when fewer than 512 remain), so threads encrypting on two cores do
/// not fight over one cache line for every message (measured: one shared
/// counter cost 2-thread seal about a fifth of its throughput). Counts
/// still leased when a key is retired are skipped, never reused.
#[derive(Debug)]
pub(crate) struct Usage {
    block: Mutex<Block>,
    leases: [Lease; USAGE_STRIPES],
}

impl Usage {
    /// Usage of a key in an unbound keychain that recorded `used` counts.
    pub(crate) fn unbound(used: u64) -> Usage {
        Usage {
            block: Mutex::new(Block {
                next: used,
                end: u64::MAX,
                generation: None,
            }),
            leases: Default::default(),
        }
    }

    /// Usage of a key in a bound keychain: no counts owned yet.
    pub(crate) fn bound() -> Usage {
        Usage {
            block: Mutex::new(Block {
                next: 0,
                end: 0,
                generation: Some(keystrata_sys::fork_generation()),
            }),
            leases: Default::default(),
        }
    }

    /// The count of one new encryption, below `max`. A refused attempt
    /// takes no count.
    #[inline]
    pub(crate) fn take(&self, max: u64) -> Taken {
        let generation = keystrata_sys::fork_generation();
        let mut lease = lock(&self.leases[crate::events::counter_shard()].0);
        if lease.generation != generation {
            // Inherited through fork(): the parent may use these counts.
            lease.counts = 0..0;
            lease.generation = generation;
        }
        if let Some(n) = lease.counts.next() {
            if n < max {
                return Taken::Count(n);
            }
            lease.counts = 0..0;
        }
        let mut b = lock(&self.block);
        if b.generation.is_some_and(|g| g != generation) {
            b.next = b.end;
        }
        if b.next >= max {
            return Taken::Exhausted;
        }
        if b.next >= b.end {
            return Taken::NeedBlock;
        }
        let limit = b.end.min(max);
        let size = ((limit - b.next) / (USAGE_STRIPES as u64 * 8)).clamp(1, MAX_LEASE);
        let n = b.next;
        b.next += size;
        lease.counts = (n + 1)..(n + size);
        Taken::Count(n)
    }

    /// Whether this process owns a count it has not leased yet.
    pub(crate) fn has_block(&self) -> bool {
        let b = lock(&self.block);
        b.next < b.end
            && b.generation
                .is_none_or(|g| g == keystrata_sys::fork_generation())
    }

    /// Makes `start..end`, just reserved in the store, this process's block.
    pub(crate) fn install_block(&self, start: u64, end: u64) {
        let mut b = lock(&self.block);
        b.next = start;
        b.end = end;
        b.generation = Some(keystrata_sys::fork_generation());
    }

    /// Encryptions started with this key from its owned counts: counts
    /// taken from the block, less what the leases still hold. Exact: every
    /// lease is held while it is read. For an unbound key this is the
    /// key's usage; a bound key's usage is what the store records.
    pub(crate) fn used(&self) -> u64 {
        let leases: Vec<_> = self.leases.iter().map(|l| lock(&l.0)).collect();
        let spare: u64 = leases
            .iter()
            .map(|l| l.counts.end.saturating_sub(l.counts.start))
            .sum();
        let b = lock(&self.block);
        b.next.saturating_sub(spare)
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
    /// For a signing key, its key pair, built on first use and kept.
    #[cfg(feature = "aws-lc")]
    pair: OnceLock<crate::sign::KeyPair>,
}

impl Secret {
    pub(crate) fn new(material: KeyMaterial) -> Secret {
        let cipher = Aes256Gcm::new(&material.0);
        Secret {
            material,
            cipher,
            prk: OnceLock::new(),
            #[cfg(feature = "aws-lc")]
            pair: OnceLock::new(),
        }
    }

    /// The signing key pair of this key's material under `alg` (built on
    /// first use; the keychain checked the material when it was loaded or
    /// made).
    #[cfg(feature = "aws-lc")]
    pub(crate) fn key_pair(
        &self,
        alg: crate::sign::Algorithm,
    ) -> crate::Result<&crate::sign::KeyPair> {
        if let Some(p) = self.pair.get() {
            return Ok(p);
        }
        let p = crate::sign::KeyPair::from_secret(alg, &self.material.0)?;
        Ok(self.pair.get_or_init(|| p))
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
    /// For a signing key, its algorithm (`None` for other purposes).
    pub(crate) algorithm: Option<crate::sign::Algorithm>,
    /// For an Ed25519 key imported from a minisign secret key file, the
    /// key ID it came with (others use one derived from the public key).
    pub(crate) minisign_key_id: Option<[u8; 8]>,
    /// For a streaming key, its format (`None` for other purposes).
    pub(crate) stream_format: Option<crate::stream::StreamFormat>,
    /// `None` exactly when the key is destroyed.
    pub(crate) secret: Option<Arc<Secret>>,
    /// This process's usage counts (shared by every snapshot).
    pub(crate) usage: Arc<Usage>,
    /// The usage the store records (or the saved keychain recorded): for a
    /// bound keychain, every count any process reserved.
    pub(crate) stored_usage: u64,
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
    /// The usage to record when saving: never below anything handed out.
    pub(crate) fn persisted_usage(&self) -> u64 {
        self.stored_usage.max(self.usage.used())
    }

    pub(crate) fn info(&self, primary: bool) -> KeyInfo {
        KeyInfo {
            key_id: self.id,
            version: self.version,
            purpose: self.purpose,
            status: self.status,
            created_at: self.created_at,
            usage: self.persisted_usage(),
            primary,
            algorithm: self.algorithm,
            stream_format: self.stream_format,
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

    fn count(t: Taken) -> Option<u64> {
        match t {
            Taken::Count(n) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn leases_hand_out_every_count_once_and_never_past_the_maximum() {
        for max in [1u64, 3, 97, 513, 10_000] {
            let usage = Arc::new(Usage::unbound(0));
            let taken: Vec<Vec<u64>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..6)
                    .map(|_| {
                        let u = Arc::clone(&usage);
                        s.spawn(move || {
                            std::iter::from_fn(|| count(u.take(max))).collect::<Vec<u64>>()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut all: Vec<u64> = taken.into_iter().flatten().collect();
            all.sort_unstable();
            // Every thread ran until refused: each count below max exactly once.
            assert_eq!(all, (0..max).collect::<Vec<_>>(), "max {max}");
            assert_eq!(usage.used(), max);
            assert_eq!(usage.take(max), Taken::Exhausted);
            assert_eq!(usage.used(), max, "a refused attempt takes no count");
        }
    }

    #[test]
    fn used_counts_only_what_was_taken() {
        let usage = Usage::unbound(5);
        assert_eq!(usage.used(), 5);
        assert_eq!(usage.take(1 << 32), Taken::Count(5));
        assert_eq!(usage.take(1 << 32), Taken::Count(6));
        // The rest of the lease is not counted as used.
        assert_eq!(usage.used(), 7);
    }

    #[test]
    fn a_bound_key_uses_only_the_blocks_it_reserved() {
        let usage = Usage::bound();
        assert_eq!(usage.take(1 << 32), Taken::NeedBlock);
        assert!(!usage.has_block());
        usage.install_block(100, 103);
        assert!(usage.has_block());
        let got: Vec<u64> = std::iter::from_fn(|| count(usage.take(1 << 32))).collect();
        assert_eq!(got, vec![100, 101, 102]);
        assert_eq!(usage.take(1 << 32), Taken::NeedBlock);
        // Blocks of other processes lie between ours.
        usage.install_block(200, 202);
        let got: Vec<u64> = std::iter::from_fn(|| count(usage.take(1 << 32))).collect();
        assert_eq!(got, vec![200, 201]);
        // The policy's maximum wins over the block's end.
        usage.install_block(300, 400);
        assert_eq!(usage.take(301), Taken::Count(300));
        assert_eq!(usage.take(301), Taken::Exhausted);
    }
}
