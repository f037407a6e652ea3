//! A parent and many forked children sealing under one key never repeat a
//! nonce (issue 13: the nonces now come from the kernel's vDSO getrandom,
//! whose per-thread state the kernel wipes in a child).
//!
//! Alone in its own test binary (one test), so that no other test's thread
//! holds a lock at the moment of a fork.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;

use keystrata::Keychain;

const PREFIX: usize = 5;
const NONCE: usize = 12;

fn nonces(kc: &Keychain, n: usize) -> Vec<[u8; NONCE]> {
    (0..n)
        .map(|_| {
            let ct = kc.seal(b"same message", b"").unwrap();
            <[u8; NONCE]>::try_from(&ct[PREFIX..PREFIX + NONCE]).unwrap()
        })
        .collect()
}

#[test]
fn parent_and_forked_children_sealing_under_one_key_never_repeat_a_nonce() {
    let kc = Keychain::generate().unwrap();
    // The parent's generator state exists before the forks.
    let mut all = nonces(&kc, 1000);
    let (children, per_child) = (8, 250_000);
    let mut running = Vec::new();
    for _ in 0..children {
        let mut fds = [0i32; 2];
        // SAFETY: a valid two-element array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child seals, writes to its pipe and calls _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: the write end, owned by the file from here.
            let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
            let mut ok = true;
            for n in nonces(&kc, per_child) {
                ok &= w.write_all(&n).is_ok();
            }
            drop(w);
            // SAFETY: ends the child without running the parent's code.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        // SAFETY: the parent's copy of the write end is not used.
        unsafe { libc::close(fds[1]) };
        // SAFETY: the read end, owned by the file from here.
        running.push((pid, unsafe { std::fs::File::from_raw_fd(fds[0]) }));
    }
    all.extend(nonces(&kc, per_child));
    for (pid, mut r) in running {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).unwrap();
        let mut status = 0;
        // SAFETY: our own child; a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert_eq!(bytes.len(), per_child * NONCE);
        all.extend(
            bytes
                .chunks_exact(NONCE)
                .map(|c| <[u8; NONCE]>::try_from(c).unwrap()),
        );
    }
    let total = all.len();
    assert_eq!(total, 1000 + per_child * (children + 1));
    let unique: HashSet<[u8; NONCE]> = all.into_iter().collect();
    assert_eq!(unique.len(), total, "a nonce repeated across fork()");
    println!("fork nonces: {total} nonces from a parent and {children} children, all distinct");
}
