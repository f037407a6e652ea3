//! Lifecycle events and operation counters.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::error::ErrorKind;
use crate::key::Purpose;

/// What happened to the keychain.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EventKind {
    /// A key was created (by generate, rotate or add_key).
    KeyCreated = 1,
    /// A new primary was created and made primary (`automatic` tells
    /// whether the rotation policy did it).
    KeyRotated = 2,
    /// An existing key was made primary.
    KeyPromoted = 3,
    /// A key was disabled.
    KeyDisabled = 4,
    /// A key was enabled again.
    KeyEnabled = 5,
    /// A key's material was destroyed.
    KeyDestroyed = 6,
    /// A key was derived (derive_origin_key or derive).
    KeyDerived = 7,
    /// A decryption (unseal, decrypt or unwrap_key) failed.
    DecryptFailed = 8,
    /// A signature was made (`key_id`, `algorithm` and `digest` say with
    /// which key and over what): the audit trail of every signature.
    Signed = 9,
    /// A signature did not verify (`error` says how).
    VerifyFailed = 10,
    // Retired numbers: none yet. Next free number: 11.
}

impl EventKind {
    /// Every kind, in numeric order.
    pub const ALL: [EventKind; 10] = [
        EventKind::KeyCreated,
        EventKind::KeyRotated,
        EventKind::KeyPromoted,
        EventKind::KeyDisabled,
        EventKind::KeyEnabled,
        EventKind::KeyDestroyed,
        EventKind::KeyDerived,
        EventKind::DecryptFailed,
        EventKind::Signed,
        EventKind::VerifyFailed,
    ];

    /// The stable number of this kind (1..=8), shared by every binding (the
    /// C `KS_EVENT_*` values). A number is never reused.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The kind with the given stable number, if there is one. An unknown
    /// number is `None`, never another kind.
    pub const fn from_code(code: u32) -> Option<EventKind> {
        Some(match code {
            1 => EventKind::KeyCreated,
            2 => EventKind::KeyRotated,
            3 => EventKind::KeyPromoted,
            4 => EventKind::KeyDisabled,
            5 => EventKind::KeyEnabled,
            6 => EventKind::KeyDestroyed,
            7 => EventKind::KeyDerived,
            8 => EventKind::DecryptFailed,
            9 => EventKind::Signed,
            10 => EventKind::VerifyFailed,
            _ => return None,
        })
    }

    /// The kind named `name` (as [`name`](EventKind::name) spells it).
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The snake_case name used in every binding (`"key_rotated"`, …).
    pub const fn name(self) -> &'static str {
        self.as_str()
    }

    /// The snake_case name used in every binding (`"key_rotated"`, …); the
    /// same as [`name`](EventKind::name).
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::KeyCreated => "key_created",
            EventKind::KeyRotated => "key_rotated",
            EventKind::KeyPromoted => "key_promoted",
            EventKind::KeyDisabled => "key_disabled",
            EventKind::KeyEnabled => "key_enabled",
            EventKind::KeyDestroyed => "key_destroyed",
            EventKind::KeyDerived => "key_derived",
            EventKind::DecryptFailed => "decrypt_failed",
            EventKind::Signed => "signed",
            EventKind::VerifyFailed => "verify_failed",
        }
    }
}

/// One lifecycle event. Carries identifiers only, never material.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The key concerned, when there is one (for `DecryptFailed`, the key
    /// the input named, if it could be read).
    pub key_id: Option<u32>,
    /// That key's version, when known.
    pub key_version: Option<u32>,
    /// That key's purpose, when known.
    pub purpose: Option<Purpose>,
    /// For `KeyRotated`: whether the rotation policy triggered it.
    pub automatic: bool,
    /// For `DecryptFailed` and `VerifyFailed`: the kind of error returned
    /// to the caller.
    pub error: Option<ErrorKind>,
    /// For `Signed` (and `VerifyFailed` when the key is known): the
    /// signing algorithm.
    pub algorithm: Option<crate::sign::Algorithm>,
    /// For `Signed` and `VerifyFailed`: the SHA-256 digest of the message
    /// (for `sign_digest`, the digest signed).
    pub digest: Option<[u8; 32]>,
}

impl Event {
    pub(crate) fn key(kind: EventKind, key_id: u32, version: u32, purpose: Purpose) -> Event {
        Event {
            kind,
            key_id: Some(key_id),
            key_version: Some(version),
            purpose: Some(purpose),
            automatic: false,
            error: None,
            algorithm: None,
            digest: None,
        }
    }
}

/// An identifier returned by [`Keychain::subscribe`](crate::Keychain::subscribe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

impl SubscriptionId {
    /// The number behind the ID, for bindings that hand it across a
    /// language boundary.
    pub fn into_raw(self) -> u64 {
        self.0
    }

    /// An ID from [`SubscriptionId::into_raw`].
    pub fn from_raw(raw: u64) -> SubscriptionId {
        SubscriptionId(raw)
    }
}

type Callback = Arc<dyn Fn(&Event) + Send + Sync + 'static>;

/// A snapshot of a keychain's operation counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Successful seal calls.
    pub seal: u64,
    /// Successful unseal calls.
    pub unseal_ok: u64,
    /// Failed unseal calls.
    pub unseal_failed: u64,
    /// Successful encrypt calls.
    pub encrypt: u64,
    /// Successful decrypt calls.
    pub decrypt_ok: u64,
    /// Failed decrypt calls.
    pub decrypt_failed: u64,
    /// Successful wrap_key calls.
    pub wrap: u64,
    /// Successful unwrap_key calls.
    pub unwrap_ok: u64,
    /// Failed unwrap_key calls.
    pub unwrap_failed: u64,
    /// Successful derive and derive_origin_key calls.
    pub derive: u64,
    /// Rotations of any purpose (`rotate*` calls and automatic rotations;
    /// `kms_rotations_total` in the metrics text has them by purpose).
    pub rotations: u64,
    /// Signatures made (sign, sign_digest, sign_minisign). Named like the
    /// other operations' counters (`seal`, `encrypt`, `wrap`, `derive`).
    pub sign: u64,
    /// Successful verifications.
    pub verify_ok: u64,
    /// Failed verifications.
    pub verify_failed: u64,
    /// Errors returned by any keychain call, indexed by
    /// `ErrorKind::code() - 1`.
    pub errors: [u64; 12],
}

impl Counters {
    /// Errors of one kind returned so far.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()]
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Counter {
    Seal,
    UnsealOk,
    UnsealFailed,
    Encrypt,
    DecryptOk,
    DecryptFailed,
    Wrap,
    UnwrapOk,
    UnwrapFailed,
    Derive,
    Signed,
    VerifyOk,
    VerifyFailed,
    SealFailed,
    EncryptFailed,
    WrapFailed,
    SignFailed,
    RewrapOk,
    RewrapFailed,
    RotationsEncrypt,
    RotationsDerive,
    RotationsSign,
    RotationsStream,
}

impl Counter {
    /// How many counters there are (the stripes' width).
    const COUNT: usize = Counter::RotationsStream as usize + 1;

    /// The counter of failed calls that goes with a counter of successful
    /// ones, if the operation has one.
    pub(crate) fn failed(self) -> Option<Counter> {
        match self {
            Counter::Seal => Some(Counter::SealFailed),
            Counter::Encrypt => Some(Counter::EncryptFailed),
            Counter::Wrap => Some(Counter::WrapFailed),
            Counter::Signed => Some(Counter::SignFailed),
            Counter::RewrapOk => Some(Counter::RewrapFailed),
            _ => None,
        }
    }

    /// The rotation counter of a key's purpose (`kms_rotations_total`'s
    /// scope).
    pub(crate) fn rotation_of(purpose: crate::key::Purpose) -> Counter {
        use crate::key::Purpose;
        match purpose {
            Purpose::Encrypt => Counter::RotationsEncrypt,
            Purpose::Derive => Counter::RotationsDerive,
            Purpose::Sign => Counter::RotationsSign,
            Purpose::Stream => Counter::RotationsStream,
        }
    }
}

/// How many stripes the operation counters are spread over.
pub(crate) const COUNTER_SHARDS: usize = 8;

/// One stripe of the operation counters, alone on its cache lines.
#[derive(Default)]
#[repr(align(128))]
struct CounterShard([AtomicU64; Counter::COUNT]);

/// The stripe this thread counts in: threads are dealt stripes in turn, so
/// two threads counting at once on two cores do not fight over one cache
/// line (measured: one shared counter line cost 2-thread seal about a
/// tenth of its throughput). Snapshots sum the stripes. Keys' usage
/// counts are striped the same way.
pub(crate) fn counter_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % COUNTER_SHARDS;
    }
    SHARD.with(|s| *s)
}

/// Subscribers and counters of one keychain.
#[derive(Default)]
pub(crate) struct Telemetry {
    counters: [CounterShard; COUNTER_SHARDS],
    /// Errors are rare: one set of counters is enough.
    errors: [AtomicU64; 12],
    has_subscribers: AtomicBool,
    next_id: AtomicU64,
    /// Subscription IDs up to this one were removed by close: unsubscribing
    /// them is not an error (cleanup after close is idempotent).
    closed_upto: AtomicU64,
    subscribers: RwLock<Vec<(u64, Callback)>>,
    /// Latency histograms (crate::metrics).
    pub(crate) latency: crate::metrics::Latency,
    /// Successful derivations by origin (crate::metrics).
    pub(crate) origins: crate::metrics::Origins,
}

impl Telemetry {
    #[inline]
    pub(crate) fn count(&self, c: Counter) {
        self.counters[counter_shard()].0[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn error(&self, kind: ErrorKind) {
        self.errors[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// One counter, its stripes summed.
    fn sum(&self, x: Counter) -> u64 {
        self.counters
            .iter()
            .map(|shard| shard.0[x as usize].load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    /// Everything the metrics text shows, read now.
    pub(crate) fn metrics(&self) -> crate::metrics::Snapshot {
        let c = |x: Counter| self.sum(x);
        crate::metrics::Snapshot {
            counters: self.snapshot(),
            seal_failed: c(Counter::SealFailed),
            encrypt_failed: c(Counter::EncryptFailed),
            wrap_failed: c(Counter::WrapFailed),
            sign_failed: c(Counter::SignFailed),
            rewrap_ok: c(Counter::RewrapOk),
            rewrap_failed: c(Counter::RewrapFailed),
            rotations: [
                c(Counter::RotationsEncrypt),
                c(Counter::RotationsDerive),
                c(Counter::RotationsSign),
                c(Counter::RotationsStream),
            ],
        }
    }

    pub(crate) fn snapshot(&self) -> Counters {
        let c = |x: Counter| self.sum(x);
        let mut errors = [0u64; 12];
        for (i, e) in self.errors.iter().enumerate() {
            errors[i] = e.load(Ordering::Relaxed);
        }
        Counters {
            seal: c(Counter::Seal),
            unseal_ok: c(Counter::UnsealOk),
            unseal_failed: c(Counter::UnsealFailed),
            encrypt: c(Counter::Encrypt),
            decrypt_ok: c(Counter::DecryptOk),
            decrypt_failed: c(Counter::DecryptFailed),
            wrap: c(Counter::Wrap),
            unwrap_ok: c(Counter::UnwrapOk),
            unwrap_failed: c(Counter::UnwrapFailed),
            derive: c(Counter::Derive),
            rotations: [
                Counter::RotationsEncrypt,
                Counter::RotationsDerive,
                Counter::RotationsSign,
                Counter::RotationsStream,
            ]
            .into_iter()
            .map(c)
            .fold(0u64, u64::wrapping_add),
            sign: c(Counter::Signed),
            verify_ok: c(Counter::VerifyOk),
            verify_failed: c(Counter::VerifyFailed),
            errors,
        }
    }

    pub(crate) fn subscribe(&self, cb: Callback) -> SubscriptionId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut subs = self.subscribers.write().unwrap_or_else(|p| p.into_inner());
        subs.push((id, cb));
        self.has_subscribers.store(true, Ordering::Release);
        SubscriptionId(id)
    }

    pub(crate) fn unsubscribe(&self, id: SubscriptionId) -> bool {
        let mut subs = self.subscribers.write().unwrap_or_else(|p| p.into_inner());
        let before = subs.len();
        subs.retain(|(i, _)| *i != id.0);
        self.has_subscribers
            .store(!subs.is_empty(), Ordering::Release);
        subs.len() != before || (id.0 != 0 && id.0 <= self.closed_upto.load(Ordering::Acquire))
    }

    /// Removes every subscription (on close): the callbacks are dropped,
    /// so what they hold is released.
    pub(crate) fn unsubscribe_all(&self) {
        let drained = {
            let mut subs = self.subscribers.write().unwrap_or_else(|p| p.into_inner());
            self.has_subscribers.store(false, Ordering::Release);
            self.closed_upto
                .store(self.next_id.load(Ordering::Relaxed), Ordering::Release);
            std::mem::take(&mut *subs)
        };
        // Dropped outside the lock: a callback's captures may run code on drop.
        drop(drained);
    }

    #[inline]
    pub(crate) fn wants_events(&self) -> bool {
        self.has_subscribers.load(Ordering::Acquire)
    }

    /// Delivers `events` to every subscriber. Must be called with no
    /// keychain lock held, so a callback may call back into the keychain. A
    /// callback that panics is contained: the panic is swallowed and the
    /// other subscribers still run.
    pub(crate) fn emit(&self, events: &[Event]) {
        if events.is_empty() || !self.wants_events() {
            return;
        }
        let subs: Vec<Callback> = {
            let guard = self.subscribers.read().unwrap_or_else(|p| p.into_inner());
            guard.iter().map(|(_, cb)| Arc::clone(cb)).collect()
        };
        for ev in events {
            for cb in &subs {
                let _ = catch_unwind(AssertUnwindSafe(|| cb(ev)));
            }
        }
    }
}
