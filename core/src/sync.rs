//! Locking that survives a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking the data even if another thread panicked while
/// holding it: every value keystrata keeps behind a mutex stays consistent
/// between statements (counts, ranges, pools), so poisoning carries no
/// information here, and a panic must not turn into a second one.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
