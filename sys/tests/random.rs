//! vDSO getrandom: used where the kernel has it, and never repeats across
//! threads or across fork().

use std::collections::HashSet;
use std::io::{Read, Write};

use keystrata_sys::{fill_random, vdso_getrandom_available};

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']);
    let maj: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let min: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (maj, min) >= (major, minor)
}

#[test]
fn the_vdso_is_used_where_the_kernel_has_it() {
    // A broken lookup must not hide behind the system-call fallback.
    if kernel_at_least(6, 11) && std::env::var_os("KEYSTRATA_NO_VDSO_GETRANDOM").is_none() {
        assert!(
            vdso_getrandom_available(),
            "kernel ≥ 6.11 but no vDSO getrandom found"
        );
    }
}

#[test]
fn every_length_is_filled() {
    for len in [0usize, 1, 12, 31, 32, 33, 255, 4096, 70_000] {
        let mut a = vec![0u8; len];
        let mut b = vec![0u8; len];
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        if len >= 12 {
            assert_ne!(a, b, "two draws of {len} bytes were equal");
            assert!(a.iter().any(|&x| x != 0));
        }
    }
}

fn draws(n: usize) -> Vec<[u8; 12]> {
    (0..n)
        .map(|_| {
            let mut x = [0u8; 12];
            fill_random(&mut x).unwrap();
            x
        })
        .collect()
}

#[test]
fn threads_never_repeat_a_nonce() {
    let all: Vec<[u8; 12]> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| draws(100_000))).collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
}

#[test]
fn a_parent_and_its_forked_children_never_repeat_a_nonce() {
    // The parent's state is initialised before the fork, so a child that
    // inherited it unwiped would replay the parent's stream.
    let mut all = draws(1000);
    let children = 8;
    let per_child = 250_000;
    let mut pids = Vec::new();
    let mut pipes = Vec::new();
    for _ in 0..children {
        let mut fds = [0i32; 2];
        // SAFETY: a valid two-element array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only draws random bytes, writes them to the
        // pipe and calls _exit; no lock the test harness holds is needed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: our end of the pipe; the file owns it from here.
            let mut w = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
            let mut ok = true;
            for x in draws(per_child) {
                ok &= w.write_all(&x).is_ok();
            }
            drop(w);
            // SAFETY: ends the child without running the parent's code.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        // SAFETY: the parent does not use the write end.
        unsafe { libc::close(fds[1]) };
        // SAFETY: the read end, owned by the file from here.
        pipes.push(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) });
        pids.push(pid);
    }
    // The parent goes on drawing while the children do.
    all.extend(draws(per_child));
    for (mut r, pid) in pipes.into_iter().zip(pids) {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).unwrap();
        let mut status = 0;
        // SAFETY: our own child; a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert_eq!(bytes.len(), per_child * 12);
        all.extend(
            bytes
                .chunks_exact(12)
                .map(|c| <[u8; 12]>::try_from(c).unwrap()),
        );
    }
    assert_eq!(all.len(), 1000 + per_child * (children + 1));
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a nonce repeated across fork()");
}
