//! The fork generation: how many times this process's ancestry forked
//! since it first asked.
//!
//! A `pthread_atfork` child handler, registered once on the first call,
//! adds one to a process-wide counter in every child that `fork()` (the
//! libc call, which is what Python's `os.fork`, `multiprocessing` and C
//! programs use) creates. The handler does one atomic add, which is
//! async-signal-safe, as a child handler must be.
//!
//! Limits, documented where the core relies on this:
//! - a child made by a raw `clone` system call that bypasses libc is not
//!   seen (`vfork` children and Go's `ForkExec` only `exec`, so they do not
//!   matter);
//! - state saved before the first call is not protected: callers read the
//!   generation when they create state worth protecting, which registers
//!   the handler before any fork that could copy that state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// The current fork generation. Two reads in one process give the same
/// value unless the reader is a child forked between them. The first call
/// registers the fork handler; later calls are one atomic load.
#[inline]
pub fn fork_generation() -> u64 {
    REGISTER.call_once(register);
    GENERATION.load(Ordering::Acquire)
}

#[cold]
fn register() {
    // SAFETY: `pthread_atfork` only records the three function pointers;
    // `in_child` is a plain `extern "C" fn` with no captured state that
    // lives as long as the program, and it does nothing but an atomic add
    // (async-signal-safe, as code in a child handler must be). Passing
    // `None` for the prepare and parent handlers is allowed.
    let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    // The call fails only with ENOMEM. Without the handler a forked child
    // could not tell it was forked, so there is no safe way to go on.
    assert!(rc == 0, "pthread_atfork failed ({rc}); cannot track fork()");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_child_sees_a_new_generation_and_the_parent_does_not() {
        let before = fork_generation();
        // SAFETY: the child only reads an atomic and calls `_exit`, both
        // safe after fork in a multi-threaded process.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = if fork_generation() == before + 1 {
                0
            } else {
                1
            };
            // SAFETY: `_exit` never returns and runs no atexit handlers.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer; `pid` is our child.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status), "child did not exit normally");
        assert_eq!(libc::WEXITSTATUS(status), 0, "child saw no new generation");
        assert_eq!(fork_generation(), before, "the parent's generation moved");
    }
}
