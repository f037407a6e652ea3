//! Keeping `SIGPIPE` away from programs that link keystrata.
//!
//! A write to a socket whose peer has gone raises `SIGPIPE`, whose default
//! action kills the process. Rust programs, Python and Go set it aside at
//! start-up; a C program usually does not, so a network store (etcd) whose
//! member restarts could kill a C program that merely shares a keychain.
//! Rust's `send` passes `MSG_NOSIGNAL`, but vectored writes (`writev`, which
//! the HTTP/2 stack uses) cannot. keystrata changes no process-wide signal
//! disposition; instead:
//!
//! - [`without_sigpipe`] runs network I/O on the caller's thread with
//!   `SIGPIPE` blocked for that thread, consumes any `SIGPIPE` the I/O
//!   raised, and restores the thread's mask: the failed write is an
//!   `EPIPE` error, and the caller never sees a signal;
//! - [`block_sigpipe_on_this_thread`] blocks it for good on threads
//!   keystrata owns (a watch thread).

use std::mem::MaybeUninit;

fn sigpipe_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset with a valid
    // signal number cannot fail.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        set.assume_init()
    }
}

fn pending() -> bool {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set it is given.
    unsafe {
        libc::sigpending(set.as_mut_ptr());
        libc::sigismember(set.as_ptr(), libc::SIGPIPE) == 1
    }
}

/// Restores the thread's signal mask (after draining a `SIGPIPE` that the
/// guarded I/O raised), also when that I/O panics.
struct Restore {
    old: libc::sigset_t,
    drain: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let set = sigpipe_set();
        if self.drain {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            while pending() {
                // SAFETY: waits on a valid set with a zero timeout; the
                // signal is blocked on this thread, so it is taken here.
                if unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) } < 0 {
                    break;
                }
            }
        }
        // SAFETY: `old` is the mask pthread_sigmask returned.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

/// Runs `f` (network I/O) with `SIGPIPE` blocked on this thread; a
/// `SIGPIPE` that `f` raised is consumed before the thread's own mask is
/// restored. A `SIGPIPE` already pending or already blocked before the
/// call is left as it was.
pub fn without_sigpipe<T>(f: impl FnOnce() -> T) -> T {
    let set = sigpipe_set();
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: valid sets; pthread_sigmask only changes this thread's mask.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) };
    if rc != 0 {
        return f();
    }
    // SAFETY: initialised by the successful pthread_sigmask.
    let old = unsafe { old.assume_init() };
    // SAFETY: `old` is a valid set.
    let was_blocked = unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1;
    let _restore = Restore {
        old,
        drain: !was_blocked && !pending(),
    };
    f()
}

/// Blocks `SIGPIPE` for the rest of this thread's life (for threads
/// keystrata starts and owns).
pub fn block_sigpipe_on_this_thread() {
    let set = sigpipe_set();
    // SAFETY: valid set; changes only this thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}
