//! A coarse process-wide clock for the hot path.
//!
//! A bound keychain checks its store for changes once per refresh interval.
//! Reading `Instant::now()` on every encryption would cost more than the
//! rest of the check, so one background thread (`keystrata-ticker`, started
//! by the first bound keychain) advances a counter every [`TICK`]; the hot
//! path compares two integers.
//!
//! After `fork()` the child has no ticker thread: [`ensure_running`]
//! notices (by the fork generation) and starts one. The cold paths of a
//! bound keychain (open, reserving usage) call it, so a forked child's
//! first encryption, which always reserves its own usage block, restarts
//! the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::sync::lock;

/// The ticker's period.
pub(crate) const TICK: Duration = Duration::from_millis(50);

static TICKS: AtomicU64 = AtomicU64::new(1);
/// The fork generation the running ticker belongs to, plus one (0: none).
static RUNNING: Mutex<u64> = Mutex::new(0);

/// Ticks since the ticker started (monotonic within a process).
#[inline]
pub(crate) fn now() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// How many ticks make `d` (at least one).
pub(crate) fn ticks(d: Duration) -> u64 {
    (d.as_nanos() / TICK.as_nanos()).clamp(1, u64::MAX as u128) as u64
}

/// Starts the ticker thread if this process has none.
pub(crate) fn ensure_running() {
    let generation = keystrata_sys::fork_generation() + 1;
    let mut running = lock(&RUNNING);
    if *running == generation {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("keystrata-ticker".into())
        .spawn(|| loop {
            std::thread::sleep(TICK);
            TICKS.fetch_add(1, Ordering::Relaxed);
        });
    if spawned.is_ok() {
        *running = generation;
    }
    // If the thread cannot be spawned, the clock stands still: refreshes
    // then happen only on an unknown key or a usage reservation, and the
    // next cold path tries again.
}
