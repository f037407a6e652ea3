//! A keychain bound to a store: opening, writing every change by
//! compare-and-swap, reserving usage blocks, and noticing other writers.
//!
//! The rules (docs/STORES.md has the whole model):
//! - **Apply to the latest, never overwrite.** Every change is applied to
//!   the latest stored state and written by compare-and-swap; on conflict
//!   the keychain reloads, applies the change again and retries.
//! - **Usage is reserved in the store.** A process encrypts only with counts
//!   from a block it reserved by compare-and-swap, so no two processes
//!   (handles, forked children) ever own the same count, and the policy's
//!   maximum holds for all of them together.
//! - **Exactly one automatic rotation.** When the stored usage of the
//!   primary reaches the maximum, the writer whose compare-and-swap wins
//!   makes the new primary; the others find it in the latest state and
//!   adopt it.
//! - **Fresh enough.** An unknown key_id triggers one reload (rate-limited
//!   when the store did not change); a new primary is adopted within the
//!   refresh interval.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Keychain;
use crate::at_rest;
use crate::error::{Error, Result};
use crate::events::{Counter, Event, EventKind};
use crate::key::{now_unix, Purpose, Usage};
use crate::keyset::KeySet;
use crate::policy::Policy;
use crate::root::Root;
use crate::store::{self, ticker, Store, Swap};

/// How often a bound keychain looks for changes other writers made, by
/// default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(1);

/// Compare-and-swap attempts before a change gives up with `Unavailable`.
const MAX_ATTEMPTS: u32 = 64;

/// A handle that uses up its usage blocks faster than one per
/// [`BLOCK_GROWTH_WINDOW`] reserves bigger ones, doubling up to
/// `usage_block << MAX_BLOCK_SHIFT` (and halving again when blocks last
/// longer than ten windows). Fewer writes for a busy handle; and a writer
/// that reserves in a tight loop slows its writes down, so it cannot keep
/// another writer's compare-and-swap from ever succeeding.
const BLOCK_GROWTH_WINDOW: Duration = Duration::from_secs(1);
const MAX_BLOCK_SHIFT: u32 = 10;

/// How to open a bound keychain: [`Keychain::open`] with options.
///
/// ```no_run
/// use std::time::Duration;
/// use keystrata::{AgeRoot, OpenOptions, Policy};
///
/// let root = AgeRoot::generate();
/// let kc = OpenOptions::new()
///     .policy(Policy { usage_block: 1 << 12, ..Policy::default() })
///     .refresh(Duration::from_millis(200))
///     .open("keychain.age", &root)?;
/// # Ok::<(), keystrata::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    policy: Option<Policy>,
    refresh: Duration,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// No policy change, refresh every [`DEFAULT_REFRESH`].
    pub fn new() -> OpenOptions {
        OpenOptions {
            policy: None,
            refresh: DEFAULT_REFRESH,
        }
    }

    /// The policy of a keychain created by this open; an existing keychain
    /// gets it too (written to the store) if it differs.
    pub fn policy(mut self, policy: Policy) -> OpenOptions {
        self.policy = Some(policy);
        self
    }

    /// Like [`policy`](OpenOptions::policy), optional.
    pub fn policy_opt(mut self, policy: Option<Policy>) -> OpenOptions {
        self.policy = policy;
        self
    }

    /// How soon a change another writer made (a new primary, a disabled
    /// key) is adopted, for encryption and for decryption alike (checked
    /// at the next call after the interval). Rounded up to the internal clock's
    /// 50 ms. An unknown key_id in a ciphertext triggers a reload at once,
    /// whatever this is.
    pub fn refresh(mut self, every: Duration) -> OpenOptions {
        self.refresh = every;
        self
    }

    /// Opens the keychain at `location` (a path, `file://`, `etcd://` or
    /// `etcds://`), creating it if the store is empty. See
    /// [`Keychain::open`].
    pub fn open<R: Root + Clone + 'static>(
        &self,
        location: impl AsRef<Path>,
        root: &R,
    ) -> Result<Keychain> {
        let store = store::open_location(location.as_ref())?;
        self.open_store(store, Arc::new(root.clone()))
    }

    /// Opens the keychain in `store` (any [`Store`] implementation).
    pub fn open_store(&self, store: Arc<dyn Store>, root: Arc<dyn Root>) -> Result<Keychain> {
        if let Some(p) = &self.policy {
            p.validate()?;
        }
        Keychain::open_bound(
            Bound {
                store,
                root,
                refresh_ticks: ticker::ticks(self.refresh),
                next_check: AtomicU64::new(0),
                last_forced: AtomicU64::new(0),
                block_shift: std::sync::Mutex::new((0, None)),
                portable: Default::default(),
            },
            self.policy,
        )
    }
}

/// What a bound keychain keeps about its store.
pub(crate) struct Bound {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) root: Arc<dyn Root>,
    refresh_ticks: u64,
    /// The tick at which to look for other writers' changes next.
    next_check: AtomicU64,
    /// The tick of the last reload forced by an unknown key_id.
    last_forced: AtomicU64,
    /// How many times the policy's `usage_block` this handle reserves at
    /// once, as a shift, and when it last reserved (see
    /// [`BLOCK_GROWTH_WINDOW`]). Under the writer lock.
    block_shift: std::sync::Mutex<(u32, Option<std::time::Instant>)>,
    /// The root's wrapping of recent primaries, for portable ciphertexts.
    pub(crate) portable: crate::portable::WrappedKeks,
}

/// What a usage reservation did.
enum Reserved {
    /// `start..end` of the primary is this process's.
    Block { key_id: u32, start: u64, end: u64 },
    /// This process made the new primary (and owns its first block).
    Rotated { key_id: u32, version: u32 },
}

impl Keychain {
    fn open_bound(bound: Bound, policy: Option<Policy>) -> Result<Keychain> {
        ticker::ensure_running();
        for _ in 0..MAX_ATTEMPTS {
            if let Some(set) = fetch(&bound, &KeySet::empty())? {
                let kc = Keychain::from_set(set, Some(bound));
                if let Some(p) = policy {
                    if p != kc.policy()? {
                        kc.set_policy(p)?;
                    }
                }
                return Ok(kc);
            }
            // Empty store: create the keychain, unless another writer does
            // first (then load theirs).
            let mut set = KeySet::empty();
            set.policy = policy.unwrap_or_default();
            set.push_bound_encrypt_primary(set.policy.usage_block)?;
            set.primary_derive = set.push_new(Purpose::Derive, Usage::bound(), 0)?;
            set.revision = 1;
            let bytes = bound.root.protect(&at_rest::to_json(&set)?)?;
            if let Swap::Written(rev) = bound.store.compare_and_swap(None, &bytes)? {
                set.stored = Some(rev);
                return Ok(Keychain::from_set(set, Some(bound)));
            }
        }
        Err(contended(&*bound.store))
    }

    /// Applies `change` to the latest stored state and writes it by
    /// compare-and-swap, reloading and applying it again on conflict; then
    /// publishes the result. `change` returns `None` when there is nothing
    /// to write (the latest state read is published all the same). The
    /// caller holds the writer lock.
    pub(super) fn commit<T>(
        &self,
        b: &Bound,
        mut change: impl FnMut(&mut KeySet) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        let mut base: Arc<KeySet> = arc_swap::Guard::into_inner(self.live()?);
        // A store with a writers' lock (a file) is read, changed and written
        // under it: no other writer can come in between, so there is no
        // conflict to retry and no writer can be starved by a faster one.
        let locked = b.store.lock_for_update()?;
        if locked.is_some() {
            if let Some(rev) = base.stored {
                if b.store.changed(rev)? {
                    if let Some(latest) = fetch(b, &base)? {
                        base = Arc::new(latest);
                    }
                }
            }
        }
        for attempt in 0..MAX_ATTEMPTS {
            let mut next = KeySet::clone(&base);
            let Some(out) = change(&mut next)? else {
                self.state.store(base);
                return Ok(None);
            };
            next.revision = base.revision.saturating_add(1);
            let bytes = b.root.protect(&at_rest::to_json(&next)?)?;
            match b.store.compare_and_swap(base.stored, &bytes)? {
                Swap::Written(rev) => {
                    next.stored = Some(rev);
                    self.state.store(Arc::new(next));
                    return Ok(Some(out));
                }
                Swap::Conflict => {
                    base = Arc::new(match fetch(b, &base)? {
                        Some(latest) => latest,
                        // Removed while in use: write back everything this
                        // handle knows rather than let its keys be lost.
                        None => {
                            let mut mine = KeySet::clone(&base);
                            mine.stored = None;
                            mine
                        }
                    });
                    backoff(attempt);
                }
            }
        }
        Err(contended(&*b.store))
    }

    /// Takes a new block of usage counts for the encryption primary
    /// `key_id` from the store, or rotates when the store says its limit
    /// was reached, or adopts the primary another writer made.
    #[cold]
    pub(super) fn reserve(&self, b: &Bound, key_id: u32) -> Result<()> {
        let events;
        {
            let _w = self.lock_writer();
            {
                let set = self.live()?;
                let key = &set.keys[set.primary_encrypt];
                if key.id != key_id || (key.usage.has_block() && !too_old(&set, key.created_at)) {
                    // Another thread of this handle reserved or rotated.
                    return Ok(());
                }
            }
            ticker::ensure_running();
            let shift = b.next_block_shift();
            let reserved = self.commit(b, |set| {
                let pos = set.primary_encrypt;
                if set.keys[pos].id != key_id {
                    // Another writer rotated: adopt its primary.
                    return Ok(None);
                }
                let p = set.policy;
                let k = &set.keys[pos];
                let block = p.usage_block.saturating_mul(1 << shift);
                if k.stored_usage >= p.max_encryptions_per_key || too_old(set, k.created_at) {
                    let np = set.push_bound_encrypt_primary(block)?;
                    let k = &set.keys[np];
                    return Ok(Some(Reserved::Rotated {
                        key_id: k.id,
                        version: k.version,
                    }));
                }
                let start = k.stored_usage;
                let end = start.saturating_add(block).min(p.max_encryptions_per_key);
                set.keys[pos].stored_usage = end;
                Ok(Some(Reserved::Block { key_id, start, end }))
            })?;
            events = match reserved {
                None => Vec::new(),
                Some(Reserved::Block { key_id, start, end }) => {
                    // Under the writer lock, so no other reservation by
                    // this handle can interleave.
                    let set = self.live()?;
                    let p = set
                        .position(key_id)
                        .ok_or_else(|| Error::internal("a reserved key is not in the keychain"))?;
                    set.keys[p].usage.install_block(start, end);
                    Vec::new()
                }
                Some(Reserved::Rotated { key_id, version }) => {
                    let mut rotated =
                        Event::key(EventKind::KeyRotated, key_id, version, Purpose::Encrypt);
                    rotated.automatic = true;
                    vec![
                        Event::key(EventKind::KeyCreated, key_id, version, Purpose::Encrypt),
                        rotated,
                    ]
                }
            };
        }
        if !events.is_empty() {
            self.telemetry.count(Counter::RotationsEncrypt);
            self.telemetry.emit(&events);
        }
        Ok(())
    }

    /// Looks for other writers' changes when the refresh interval has
    /// passed. Never fails and never waits on a network
    /// ([`Store::changed_now`]): during an outage the keychain goes on with
    /// the state it has, and looks again at the next interval.
    #[cold]
    pub(super) fn refresh_due(&self, b: &Bound) {
        b.next_check
            .store(ticker::now() + b.refresh_ticks, Ordering::Relaxed);
        // A writer at work publishes the latest state itself.
        let Some(_w) = self.try_lock_writer() else {
            return;
        };
        let Ok(cur) = self.live() else { return };
        let Some(rev) = cur.stored else { return };
        if let Some(true) = b.store.changed_now(rev) {
            if let Ok(Some(latest)) = fetch(b, &cur) {
                self.state.store(Arc::new(latest));
            }
        }
    }

    /// Reloads after a ciphertext named a key_id this keychain does not
    /// have: at once if the store changed, otherwise at most once per tick
    /// of the internal clock (so garbage key_ids cannot flood the store).
    #[cold]
    pub(super) fn reload_for_unknown_key(&self) {
        let Some(b) = &self.bound else { return };
        ticker::ensure_running();
        let Ok(cur) = self.live() else { return };
        // What a watch says at once if it has seen the write; else the
        // store itself: a watch can lag the write of the very key this
        // ciphertext names (made by another writer a moment ago), and the
        // rate limit below would then refuse a key that is stored.
        let changed = cur.stored.is_none_or(|rev| {
            b.store.changed_now(rev) == Some(true) || b.store.changed_fresh(rev).unwrap_or(false)
        });
        if !changed {
            let now = ticker::now();
            if b.last_forced.swap(now, Ordering::Relaxed) == now {
                return;
            }
        }
        drop(cur);
        let _w = self.lock_writer();
        let Ok(cur) = self.live() else { return };
        if let Ok(Some(latest)) = fetch(b, &cur) {
            if latest.stored != cur.stored {
                self.state.store(Arc::new(latest));
            }
        }
    }

    /// Publishes the latest stored state. The caller holds the writer lock.
    pub(super) fn reload_latest(&self, b: &Bound) -> Result<()> {
        let cur = self.live()?;
        if let Some(latest) = fetch(b, &cur)? {
            self.state.store(Arc::new(latest));
        }
        Ok(())
    }

    /// Whether the refresh interval has passed (one relaxed load and a
    /// compare on the hot path).
    #[inline]
    pub(super) fn refresh_is_due(b: &Bound) -> bool {
        ticker::now() >= b.next_check.load(Ordering::Relaxed)
    }
}

impl Bound {
    /// The block size for the reservation being made now, as a shift of
    /// the policy's `usage_block` (see [`BLOCK_GROWTH_WINDOW`]).
    fn next_block_shift(&self) -> u32 {
        let now = std::time::Instant::now();
        let mut g = crate::sync::lock(&self.block_shift);
        let (shift, last) = *g;
        let shift = match last.map(|t| now.saturating_duration_since(t)) {
            Some(d) if d < BLOCK_GROWTH_WINDOW => (shift + 1).min(MAX_BLOCK_SHIFT),
            Some(d) if d > BLOCK_GROWTH_WINDOW * 10 => shift.saturating_sub(1),
            _ => shift,
        };
        *g = (shift, Some(now));
        shift
    }
}

/// The latest stored state, with what this process keeps for the keys it
/// knows (see [`KeySet::adopted_from`]); `None` if the store is empty.
fn fetch(b: &Bound, local: &KeySet) -> Result<Option<KeySet>> {
    let Some(v) = b.store.load()? else {
        return Ok(None);
    };
    let json = b.root.unprotect(&v.bytes)?;
    let mut set = at_rest::from_json(&json)?;
    set.stored = Some(v.revision);
    Ok(Some(set.adopted_from(local)))
}

fn too_old(set: &KeySet, created_at: u64) -> bool {
    set.policy
        .max_key_age_secs
        .is_some_and(|max| now_unix().saturating_sub(created_at) >= max)
}

fn contended(store: &dyn Store) -> Error {
    Error::unavailable(format!(
        "gave up writing to {} after {MAX_ATTEMPTS} conflicting attempts",
        store.location()
    ))
}

/// A short, growing, jittered pause between conflicting attempts, so
/// writers that collided do not collide again in lockstep.
fn backoff(attempt: u32) {
    let mut r = [0u8; 2];
    let jitter = if crate::aead::fill_random(&mut r).is_ok() {
        u64::from(u16::from_le_bytes(r)) % 1000
    } else {
        500
    };
    let base = 100u64 << attempt.min(6);
    std::thread::sleep(Duration::from_micros(
        base + jitter * (1 + u64::from(attempt.min(6))),
    ));
}
