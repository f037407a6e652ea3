//! The etcd store: a keychain kept in one etcd v3 key, shared by every
//! process on every machine that opens the same location.
//!
//! ```text
//! etcd://[user@]host:port[,host:port…]/key/path[?timeout=SECONDS]
//! etcds://[user@]host:port[,host:port…]/key/path?ca=FILE[&cert=FILE&key=FILE][&timeout=SECONDS]
//! ```
//!
//! - **Reads** are linearizable `Range` requests of the key; the
//!   [`Revision`] is the key's `mod_revision`.
//! - **Writes** are one transaction: if the key's `mod_revision` is the
//!   expected one (or, for a first write, the key does not exist), put the
//!   new bytes; otherwise nothing is written and the caller gets
//!   [`Swap::Conflict`]. The same transaction reads the key back on a
//!   conflict, so a write whose answer was lost and is retried is
//!   recognised by its bytes and never reported as a conflict.
//! - **Changes** are pushed: a watch thread keeps the newest `mod_revision`
//!   in an atomic, so [`Store::changed`] costs an atomic load while the
//!   watch is established; while it is not (before the first call, after a
//!   break, while it reconnects), `changed` reads the revision from etcd,
//!   at most once per [`CHANGED_RETRY`] while etcd does not answer.
//! - **TLS** (`etcds://`): `ca=` verifies the members (PEM, one or more
//!   certificates); `cert=` and `key=` add a client certificate (mutual
//!   TLS). Crypto is rustls with AWS-LC.
//! - **Auth**: `user@` names an etcd user; its password is read from
//!   [`PASSWORD_ENV`] when the store is opened. A password in the location
//!   is refused (`InvalidInput`) and never echoed. Expired tokens are
//!   renewed by themselves.
//! - **Time bounds**: connecting to a member takes at most
//!   [`DEFAULT_CONNECT_TIMEOUT`], one store call (all its attempts on all
//!   members together) at most [`DEFAULT_REQUEST_TIMEOUT`]; `timeout=S`
//!   sets the call bound to S seconds (and the connect bound to at most S).
//!
//! Errors: no member reachable, no leader, a call that ran out of time:
//! `Unavailable`, naming the location and the last member's answer. etcd
//! refusing the credentials or the key (wrong password, no permission):
//! `Backend` (retrying will not help; the message says what to check). A
//! stored value over [`MAX_VALUE_LEN`]: `Format`.
//!
//! **Threads.** Requests run on a tokio current-thread runtime owned by the
//! store and driven by the calling thread (under a mutex: a keychain already
//! serializes its writes), so there are no hidden worker threads; the only
//! thread of the store's own is the watch thread (`ks-etcd-watch`). (A member named by a DNS
//! name is resolved on a short-lived tokio blocking thread.) Called from
//! inside another tokio runtime, a request runs on a short-lived scoped
//! thread, since a runtime cannot block inside another.
//!
//! **fork().** A child process inherits the store's runtime, sockets and
//! watch state, which it must neither use nor drop (they share the epoll
//! instance and connections with the parent). On its first call the child
//! sees a new [fork generation](keystrata_sys::fork_generation), leaks the
//! inherited runtime and clients (`std::mem::forget`), and makes its own;
//! the parent goes on untouched. Fork only while no other thread is inside
//! a call of the same store.

mod client;
mod location;
mod watch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use self::client::{Members, Op, Reply};
use self::location::Config;
use self::watch::{Pulse, Watch};
use super::{Revision, Store, Swap, Versioned};
use crate::error::{Error, Result};
use crate::sync::lock;

/// The environment variable the password of an etcd location's user is
/// read from.
pub const PASSWORD_ENV: &str = "KEYSTRATA_ETCD_PASSWORD";

/// The bound on connecting to one member, unless `timeout=` is lower.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The bound on one store call (every attempt on every member), unless the
/// location sets `timeout=`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest value the store reads or writes. A keychain takes about
/// 200 bytes per key, so etcd's own default request limit (1.5 MiB,
/// `--max-request-bytes`) is reached first, at about 7,000 keys.
pub const MAX_VALUE_LEN: usize = 16 << 20;

/// After `changed` failed to reach etcd, how long later calls to `changed`
/// fail at once (with `Unavailable`) rather than wait for etcd again, so an
/// outage does not slow down the encryptions that look for changes.
pub const CHANGED_RETRY: Duration = Duration::from_secs(1);

/// The runtime and member clients requests use, made in one fork
/// generation.
struct Conn {
    generation: u64,
    rt: tokio::runtime::Runtime,
    members: Members,
}

impl Conn {
    /// Releases the runtime and its connections. In the process that made
    /// them only: a forked child leaks them instead.
    fn shut_down(self) {
        let Conn { rt, members, .. } = self;
        drop(members);
        rt.shutdown_background();
    }
}

/// A keychain kept in an etcd key (see the module docs).
pub struct EtcdStore {
    cfg: Arc<Config>,
    conn: Mutex<Option<Conn>>,
    watch: Mutex<Option<Watch>>,
    pulse: Arc<Pulse>,
    closed: AtomicBool,
    /// When `changed` last failed to reach etcd.
    changed_failed: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("location", &self.cfg.location)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// The store an `etcd://` or `etcds://` location names. Reads the TLS
    /// files it names and, if it names a user, the password from
    /// [`PASSWORD_ENV`]; does not contact etcd (the first call does).
    ///
    /// Errors: a malformed location, a password in it, a user without
    /// [`PASSWORD_ENV`]: `InvalidInput`; a TLS file that cannot be read:
    /// `Io`.
    pub fn open(location: &str) -> Result<EtcdStore> {
        let cfg = location::parse(location, || {
            std::env::var(PASSWORD_ENV).ok().map(Zeroizing::new)
        })?;
        Ok(EtcdStore {
            cfg: Arc::new(cfg),
            conn: Mutex::new(None),
            watch: Mutex::new(None),
            pulse: Arc::new(Pulse::default()),
            closed: AtomicBool::new(false),
            changed_failed: Mutex::new(None),
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::unavailable(format!(
                "the etcd store {} was closed",
                self.cfg.shown()
            )));
        }
        Ok(())
    }

    /// Runs `op` on this process's runtime (made, or made again after a
    /// fork, as needed) within `budget`.
    fn request(&self, op: &Op<'_>, budget: Duration) -> Result<Reply> {
        self.check_open()?;
        let generation = keystrata_sys::fork_generation();
        let mut slot = lock(&self.conn);
        // Checked again under the lock: `close` may have just run.
        self.check_open()?;
        if let Some(c) = slot.take() {
            if c.generation == generation {
                *slot = Some(c);
            } else {
                // Inherited from the parent: shares its epoll instance and
                // sockets, so it is neither used nor dropped here.
                std::mem::forget(c);
            }
        }
        let conn = match &mut *slot {
            Some(c) => c,
            None => slot.insert(Conn {
                generation,
                rt: client::runtime()?,
                members: Members::new(&self.cfg, false),
            }),
        };
        let cfg = &*self.cfg;
        let Conn { rt, members, .. } = conn;
        let (reply, _) = client::block_on(rt, members.call(cfg, op, budget))??;
        Ok(reply)
    }

    /// The newest revision, if this process's watch thread keeps it
    /// current; otherwise starts (or restarts) the thread and says `None`.
    fn watched(&self) -> Option<i64> {
        let generation = keystrata_sys::fork_generation();
        if let Some(rev) = self.pulse.current(generation) {
            return Some(rev);
        }
        let mut slot = lock(&self.watch);
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        if let Some(w) = slot.take() {
            if w.generation() != generation {
                // The parent's thread: not in this process.
                std::mem::forget(w);
            } else if w.is_running() {
                *slot = Some(w);
                // Connecting or reconnecting: it may have just succeeded.
                return self.pulse.current(generation);
            } else {
                w.stop();
            }
        }
        // If no thread can be started, `changed` reads etcd each time and
        // the next call tries again.
        *slot = Watch::start(self.cfg.clone(), self.pulse.clone(), generation).ok();
        None
    }
}

/// The keystrata revision of an etcd `mod_revision`.
fn revision(mod_revision: i64) -> Revision {
    Revision(u128::from(mod_revision.max(0).unsigned_abs()))
}

impl Store for EtcdStore {
    fn location(&self) -> &str {
        &self.cfg.location
    }

    fn load(&self) -> Result<Option<Versioned>> {
        self.check_open()?;
        match self.request(&Op::Get { keys_only: false }, self.cfg.request_timeout)? {
            Reply::Got { kv: None, .. } => Ok(None),
            Reply::Got {
                kv: Some((bytes, rev)),
                ..
            } => {
                client::check_len(&self.cfg, bytes.len())?;
                self.pulse.saw(rev);
                Ok(Some(Versioned {
                    bytes,
                    revision: revision(rev),
                }))
            }
            Reply::Written(_) | Reply::Conflict { .. } => {
                Err(Error::internal("a read answered as a write"))
            }
        }
    }

    fn compare_and_swap(&self, expected: Option<Revision>, bytes: &[u8]) -> Result<Swap> {
        if bytes.len() > MAX_VALUE_LEN {
            return Err(Error::invalid(format!(
                "a keychain of {} bytes is over the {} MiB the etcd store holds",
                bytes.len(),
                MAX_VALUE_LEN >> 20
            )));
        }
        let expected = match expected {
            None => None,
            Some(Revision(r)) => match i64::try_from(r) {
                Ok(r) if r > 0 => Some(r),
                // Not a revision this store ever gave.
                _ => return Ok(Swap::Conflict),
            },
        };
        match self.request(&Op::Swap { expected, bytes }, self.cfg.request_timeout)? {
            Reply::Written(rev) => {
                self.pulse.saw(rev);
                Ok(Swap::Written(revision(rev)))
            }
            Reply::Conflict { current } => {
                if let Some(rev) = current {
                    self.pulse.saw(rev);
                }
                Ok(Swap::Conflict)
            }
            Reply::Got { .. } => Err(Error::internal("a write answered as a read")),
        }
    }

    fn changed(&self, since: Revision) -> Result<bool> {
        self.check_open()?;
        if let Some(latest) = self.watched() {
            return Ok(revision(latest) != since);
        }
        self.changed_fresh(since)
    }

    /// A keys-only read of the keychain's key (a linearizable read: it sees
    /// every write acknowledged before it), whatever the watch has
    /// delivered; after a failure, not asked again for `CHANGED_RETRY`.
    fn changed_fresh(&self, since: Revision) -> Result<bool> {
        self.check_open()?;
        {
            let failed = lock(&self.changed_failed);
            if let Some(at) = *failed {
                if at.elapsed() < CHANGED_RETRY {
                    return Err(Error::unavailable(format!(
                        "etcd at {} did not answer {} ms ago; not asking again yet",
                        self.cfg.shown(),
                        at.elapsed().as_millis()
                    )));
                }
            }
        }
        let budget = self.cfg.request_timeout.min(CHANGED_RETRY);
        match self.request(&Op::Get { keys_only: true }, budget) {
            Ok(Reply::Got { kv, .. }) => {
                *lock(&self.changed_failed) = None;
                Ok(match kv {
                    None => true,
                    Some((_, rev)) => {
                        self.pulse.saw(rev);
                        revision(rev) != since
                    }
                })
            }
            Ok(Reply::Written(_) | Reply::Conflict { .. }) => {
                Err(Error::internal("a read answered as a write"))
            }
            Err(e) => {
                *lock(&self.changed_failed) = Some(Instant::now());
                Err(e)
            }
        }
    }

    /// The watch's newest revision, or `None` while the watch is not
    /// established: never a request to etcd, so an encryption looking for
    /// changes is never held up by an outage.
    fn changed_now(&self, since: Revision) -> Option<bool> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        self.watched().map(|latest| revision(latest) != since)
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let generation = keystrata_sys::fork_generation();
        if let Some(w) = lock(&self.watch).take() {
            if w.generation() == generation {
                w.stop();
            } else {
                std::mem::forget(w);
            }
        }
        if let Some(c) = lock(&self.conn).take() {
            if c.generation == generation {
                c.shut_down();
            } else {
                std::mem::forget(c);
            }
        }
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        self.close();
    }
}
