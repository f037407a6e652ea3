//! A write to a pipe nobody reads raises SIGPIPE; inside `without_sigpipe`
//! it is an EPIPE error and the process lives, with the default action.

fn write_to_a_closed_pipe() -> i32 {
    let mut fds = [0i32; 2];
    // SAFETY: a valid two-element array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: our own descriptors.
    unsafe { libc::close(fds[0]) };
    // SAFETY: writes one byte from a valid buffer to our descriptor.
    let n = unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: our own descriptor.
    unsafe { libc::close(fds[1]) };
    if n < 0 {
        errno
    } else {
        0
    }
}

/// Runs `f` in a forked child with SIGPIPE at its default action (as in a
/// C program); returns the child's wait status.
fn in_child_with_default_sigpipe(f: fn() -> i32) -> i32 {
    // SAFETY: the child only changes its own signal action, calls `f`
    // (plain system calls) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: restoring the default action in the child only.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let code = f();
        // SAFETY: ends the child.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

#[test]
fn without_the_guard_sigpipe_kills_a_c_like_process() {
    let status = in_child_with_default_sigpipe(write_to_a_closed_pipe);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGPIPE);
}

#[test]
fn inside_the_guard_the_write_fails_with_epipe_and_the_process_lives() {
    let status = in_child_with_default_sigpipe(|| {
        let errno = keystrata_sys::without_sigpipe(write_to_a_closed_pipe);
        // After the guard nothing is pending: a later unrelated syscall
        // does not deliver a stale SIGPIPE.
        // SAFETY: getpid has no preconditions.
        unsafe { libc::getpid() };
        if errno == libc::EPIPE {
            0
        } else {
            1
        }
    });
    assert!(
        libc::WIFEXITED(status),
        "killed by signal {}",
        libc::WTERMSIG(status)
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the write did not fail with EPIPE"
    );
}

#[test]
fn a_thread_that_blocked_sigpipe_lives_too() {
    let status = in_child_with_default_sigpipe(|| {
        keystrata_sys::block_sigpipe_on_this_thread();
        if write_to_a_closed_pipe() == libc::EPIPE {
            0
        } else {
            1
        }
    });
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}
