//! The watch thread: keeps the newest `mod_revision` of the keychain's key
//! in an atomic, so that [`Store::changed`](crate::store::Store::changed)
//! is an atomic load while the watch is healthy.
//!
//! The thread (`ks-etcd-watch`, one per store, started by the first
//! `changed`) runs its own current-thread tokio runtime with its own member
//! clients. Each round reads the key's revision, opens a watch from the
//! revision after that read (so nothing between the two is missed), and
//! marks the [`Pulse`] healthy once etcd confirms the watch. Any break (a
//! member stopped, a lost leader, a compaction) marks it unhealthy and
//! starts a new round after a pause that grows to [`MAX_PAUSE`]; the
//! thread recovers by itself when the cluster is back.
//!
//! Healthy is recorded as the fork generation the thread runs in (plus
//! one): a child process after `fork()` has a copy of the flag but not the
//! thread, and the generation tells it the copy is not its own.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use etcd_client::WatchOptions;
use tokio::sync::Notify;
use tokio::time::{timeout, Instant};

use super::client::{self, Members, Op, Reply};
use super::location::Config;
use crate::error::{Error, Result};

/// The first pause after a watch broke; it doubles up to [`MAX_PAUSE`].
const MIN_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two rounds of a broken watch.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// A watch that lasted this long starts again after [`MIN_PAUSE`].
const STABLE: Duration = Duration::from_secs(10);
/// How long closing waits for the thread before leaving it to finish
/// alone.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// What the watch thread publishes, shared with the store.
#[derive(Default)]
pub(super) struct Pulse {
    /// The newest revision of the key seen (a write, a delete, or the
    /// revision a round started from). Only grows.
    pub(super) latest: AtomicI64,
    /// The fork generation plus one of the thread whose watch is
    /// established now; 0 when none is.
    pub(super) healthy: AtomicU64,
}

impl Pulse {
    /// The newest revision, if a watch thread of this process keeps it
    /// current.
    #[inline]
    pub(super) fn current(&self, generation: u64) -> Option<i64> {
        if self.healthy.load(Ordering::Acquire) == generation + 1 {
            Some(self.latest.load(Ordering::Acquire))
        } else {
            None
        }
    }

    /// Records a revision this process read or wrote.
    pub(super) fn saw(&self, revision: i64) {
        self.latest.fetch_max(revision, Ordering::AcqRel);
    }
}

struct Stopper {
    stop: AtomicBool,
    wake: Notify,
}

/// A running watch thread.
pub(super) struct Watch {
    generation: u64,
    stopper: Arc<Stopper>,
    /// Disconnected when the thread has ended.
    done: mpsc::Receiver<()>,
    thread: JoinHandle<()>,
}

impl Watch {
    /// Starts the watch thread for `cfg`'s key, publishing to `pulse`.
    pub(super) fn start(cfg: Arc<Config>, pulse: Arc<Pulse>, generation: u64) -> Result<Watch> {
        let stopper = Arc::new(Stopper {
            stop: AtomicBool::new(false),
            wake: Notify::new(),
        });
        let (done_tx, done) = mpsc::channel::<()>();
        let s = stopper.clone();
        let thread = std::thread::Builder::new()
            .name("ks-etcd-watch".into())
            .spawn(move || {
                let _done = done_tx;
                // This thread's writes to a member that went away must be
                // errors, not a SIGPIPE that kills a C program.
                keystrata_sys::block_sigpipe_on_this_thread();
                run(&cfg, &pulse, &s, generation);
            })
            .map_err(|e| Error::unavailable(format!("cannot start the etcd watch thread: {e}")))?;
        Ok(Watch {
            generation,
            stopper,
            done,
            thread,
        })
    }

    /// The fork generation the thread was started in.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the thread is still running.
    pub(super) fn is_running(&self) -> bool {
        matches!(self.done.try_recv(), Err(mpsc::TryRecvError::Empty))
    }

    /// Stops the thread, waiting for it at most [`STOP_WAIT`]. Only in the
    /// process that started it.
    pub(super) fn stop(self) {
        self.stopper.stop.store(true, Ordering::Release);
        self.stopper.wake.notify_one();
        match self.done.recv_timeout(STOP_WAIT) {
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = self.thread.join();
            }
            // Still busy (it cannot be for long: every wait of the thread
            // also waits for the stop signal); it ends by itself.
            _ => drop(self.thread),
        }
    }
}

fn run(cfg: &Config, pulse: &Pulse, stopper: &Stopper, generation: u64) {
    let Ok(rt) = client::runtime() else {
        return;
    };
    rt.block_on(async {
        tokio::select! {
            _ = stopper.wake.notified() => {}
            _ = watch_forever(cfg, pulse, stopper, generation) => {}
        }
    });
    let _ = pulse
        .healthy
        .compare_exchange(generation + 1, 0, Ordering::AcqRel, Ordering::Acquire);
    rt.shutdown_timeout(Duration::from_millis(200));
}

async fn watch_forever(cfg: &Config, pulse: &Pulse, stopper: &Stopper, generation: u64) {
    let mut members = Members::new(cfg, true);
    let mut pause = MIN_PAUSE;
    while !stopper.stop.load(Ordering::Acquire) {
        let began = Instant::now();
        // A round ends when its watch breaks; why does not matter here
        // (`changed` reads the store itself meanwhile).
        let _ = watch_once(cfg, pulse, generation, &mut members).await;
        pulse.healthy.store(0, Ordering::Release);
        if began.elapsed() >= STABLE {
            pause = MIN_PAUSE;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// One round: read the revision, watch from just after it, follow the
/// events until the watch breaks.
async fn watch_once(
    cfg: &Config,
    pulse: &Pulse,
    generation: u64,
    members: &mut Members,
) -> Result<()> {
    let (reply, i) = members
        .call(cfg, &Op::Get { keys_only: true }, cfg.request_timeout)
        .await?;
    let Reply::Got {
        kv,
        header_revision,
    } = reply
    else {
        return Err(Error::internal("a read answered as a write"));
    };
    if header_revision <= 0 {
        return Err(Error::internal("etcd answered without a revision"));
    }
    let member = members.connected(cfg, i).await?;
    let mut wc = member.watch_client();
    let opts = WatchOptions::new().with_start_revision(header_revision + 1);
    let broken = |what: &str| Error::unavailable(format!("etcd watch on {}: {what}", cfg.shown()));
    let mut stream = match timeout(cfg.request_timeout, wc.watch(cfg.key.clone(), Some(opts))).await
    {
        Ok(Ok(s)) => s,
        _ => {
            members.drop_member(i);
            return Err(broken("could not be opened"));
        }
    };
    match timeout(cfg.request_timeout, stream.message()).await {
        Ok(Ok(Some(r))) if r.created() && !r.canceled() => {}
        _ => {
            members.drop_member(i);
            return Err(broken("was not confirmed"));
        }
    }
    pulse.saw(kv.map_or(header_revision, |(_, rev)| rev));
    pulse.healthy.store(generation + 1, Ordering::Release);
    loop {
        match stream.message().await {
            Ok(Some(resp)) => {
                for ev in resp.events() {
                    if let Some(kv) = ev.kv() {
                        pulse.saw(kv.mod_revision());
                    }
                }
                if resp.canceled() {
                    return Err(broken("was cancelled by the server"));
                }
            }
            _ => {
                members.drop_member(i);
                return Err(broken("broke"));
            }
        }
    }
}
