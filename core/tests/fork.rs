//! A bound keychain across `fork()`: the child keeps working, never uses
//! the usage block its parent reserved, and neither loses the other's keys.
//!
//! Alone in its own test binary (one test) so that no other test's thread
//! holds a lock at the moment of the fork.

use std::io::Write;
use std::path::Path;

use keystrata::{AgeRoot, Keychain, OpenOptions, Policy};

fn key_id(ct: &[u8]) -> u32 {
    u32::from_be_bytes([ct[1], ct[2], ct[3], ct[4]])
}

/// Runs `child` in a forked child process; returns its exit code.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: this test binary runs one test; the only other threads are
    // the test harness's main thread (waiting) and keystrata's ticker
    // (sleeping, holding no lock the child needs).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: _exit ends the child without running the parent's
        // destructors or the harness.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: a valid out-pointer and our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status}");
    libc::WEXITSTATUS(status)
}

fn write_lines(path: &Path, cts: &[Vec<u8>]) {
    let mut f = std::fs::File::create(path).unwrap();
    for ct in cts {
        writeln!(f, "{}", hex(ct)).unwrap();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn parent_and_forked_child_share_a_keychain_and_never_share_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let out = dir.path().join("child.txt");
    let root = AgeRoot::generate();
    let block = 1000;
    let kc = OpenOptions::new()
        .policy(Policy {
            usage_block: block,
            ..Policy::default()
        })
        .open(&path, &root)
        .unwrap();
    // The parent owns counts 0..1000 of the primary, and has leased some.
    let mut parent_cts = vec![kc.seal(b"parent before", b"").unwrap()];
    let primary = kc.primary().unwrap();
    assert_eq!(primary.usage, block);

    let code = in_child(|| {
        // The inherited handle works in the child.
        let mut cts = Vec::new();
        for i in 0..10u8 {
            cts.push(kc.seal(&[i], b"child").unwrap());
        }
        // Its first seal reserved a block of its own from the file.
        if Keychain::load_file(&path, &root)
            .unwrap()
            .primary()
            .unwrap()
            .usage
            < 2 * block
        {
            return 2;
        }
        let rotated = kc.rotate().unwrap();
        cts.push(kc.seal(b"child after rotate", b"child").unwrap());
        if key_id(cts.last().unwrap()) != rotated.key_id {
            return 3;
        }
        write_lines(&out, &cts);
        0
    });
    assert_eq!(code, 0, "the child failed (2: reused the parent's block)");

    // The parent goes on inside its own block, then rotates: the child's
    // rotation is kept.
    for i in 0..10u8 {
        parent_cts.push(kc.seal(&[i], b"").unwrap());
    }
    kc.rotate().unwrap();
    parent_cts.push(kc.seal(b"parent after", b"").unwrap());

    let fresh = Keychain::load_file(&path, &root).unwrap();
    assert_eq!(
        fresh.keys().expect("keys").len(),
        4,
        "2 initial keys + the child's + the parent's rotation"
    );
    for ct in &parent_cts {
        fresh.unseal(ct, b"").unwrap();
    }
    let child_cts: Vec<Vec<u8>> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(unhex)
        .collect();
    assert_eq!(child_cts.len(), 11);
    for ct in &child_cts {
        fresh.unseal(ct, b"child").unwrap();
    }
    // The first primary's usage: the parent's block and the child's.
    let first = fresh
        .keys()
        .expect("keys")
        .into_iter()
        .find(|k| k.key_id == primary.key_id)
        .unwrap();
    assert_eq!(first.usage, 2 * block);
}
