//! An etcd-bound keychain across `fork()`: the child makes its own runtime,
//! connections and watch (never touching the parent's, which share epoll
//! instances and sockets with it), and both go on using the keychain at the
//! same time, losing nothing.
//!
//! Alone in its own test binary (one test) so that no other test's thread
//! holds a lock at the moment of the fork. Needs the etcd cluster of
//! `scripts/peers/etcd.sh` (see tests/store_etcd.rs).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use keystrata::{AgeRoot, Keychain, OpenOptions, Policy};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "etcd peers not started: run `eval \"$(bash scripts/peers.sh start)\"` or `make test` \
             ({name} is not set)"
        )
    })
}

fn key_id(ct: &[u8]) -> u32 {
    u32::from_be_bytes([ct[1], ct[2], ct[3], ct[4]])
}

/// Threads of this process named `name` (as /proc shows them).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|t| {
            let comm = t.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|c| c.trim_end() == name)
        })
        .count()
}

/// The inodes of this process's TCP connections to the cluster's members.
fn member_connections() -> HashSet<u64> {
    let ports: HashSet<u16> = env("KS_TEST_ETCD_ENDPOINTS")
        .split(',')
        .map(|hp| hp.rsplit_once(':').unwrap().1.parse().unwrap())
        .collect();
    let mut to_members = HashSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let remote_port = f[2].rsplit_once(':').unwrap().1;
            let port = u16::from_str_radix(remote_port, 16).unwrap();
            // 01: ESTABLISHED
            if f[3] == "01" && ports.contains(&port) {
                to_members.insert(f[9].parse::<u64>().unwrap());
            }
        }
    }
    let mut mine = HashSet::new();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(target) = std::fs::read_link(fd.unwrap().path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
            let inode: u64 = inode.parse().unwrap();
            if to_members.contains(&inode) {
                mine.insert(inode);
            }
        }
    }
    mine
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

fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The child's side. Returns its exit code (0: all is well; the others say
/// which check failed).
fn child(kc: &Keychain, other: Keychain, dir: &Path) -> i32 {
    // The parent's watch thread did not come along.
    if threads_named("ks-etcd-watch") != 0 {
        return 2;
    }
    let mut cts = Vec::new();
    // Sealing goes through this process's own runtime: 4 usage blocks of
    // 50 and a rotation, while the parent seals too.
    for i in 0..200u32 {
        match kc.seal(&i.to_be_bytes(), b"child") {
            Ok(ct) => cts.push(ct),
            Err(e) => {
                eprintln!("child: seal {i}: {e}");
                return 3;
            }
        }
    }
    let mine = match kc.rotate() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("child: rotate: {e}");
            return 4;
        }
    };
    // The parent rotates after that; the child adopts the parent's key
    // through its own watch (the copied one says "healthy" but nobody
    // keeps it current here).
    std::fs::write(dir.join("ready"), b"").unwrap();
    let Some(theirs) = poll(Duration::from_secs(30), || {
        std::fs::read_to_string(dir.join("announce"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    }) else {
        return 5;
    };
    let adopted = poll(Duration::from_secs(15), || {
        let ct = kc.seal(b"adopt", b"child").ok()?;
        let id = key_id(&ct);
        cts.push(ct);
        (id != mine.key_id && id == theirs).then_some(())
    });
    if adopted.is_none() {
        return 6;
    }
    if threads_named("ks-etcd-watch") != 1 {
        return 7;
    }
    let mut f = std::fs::File::create(dir.join("child.txt")).unwrap();
    for ct in &cts {
        writeln!(f, "{}", hex(ct)).unwrap();
    }
    // Dropping the inherited handle in the child leaves the parent's
    // runtime alone; closing its own stops its watch thread.
    drop(other);
    if let Err(e) = keystrata::KeyManager::close(kc) {
        eprintln!("child: close: {e}");
        return 8;
    }
    if threads_named("ks-etcd-watch") != 0 {
        return 9;
    }
    0
}

#[test]
fn a_forked_child_and_its_parent_use_one_etcd_keychain_at_once() {
    let key = format!(
        "{}fork-{}-{}",
        env("KS_TEST_ETCD_PREFIX"),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let loc = format!("etcd://{}{key}", env("KS_TEST_ETCD_ENDPOINTS"));
    let dir = tempfile::tempdir().unwrap();
    let root = AgeRoot::generate();
    let block = 50;
    let opts = OpenOptions::new()
        .policy(Policy {
            usage_block: block,
            ..Policy::default()
        })
        .refresh(Duration::from_millis(200));
    let kc = opts.open(&loc, &root).unwrap();
    let other = opts.open(&loc, &root).unwrap();

    // The parent's runtime, connections and watch are all in use.
    let mut parent_cts = vec![kc.seal(b"parent before", b"").unwrap()];
    let r = other.rotate().unwrap();
    let adopted = poll(Duration::from_secs(15), || {
        let ct = kc.seal(b"p", b"").unwrap();
        let id = key_id(&ct);
        parent_cts.push(ct);
        (id == r.key_id).then_some(())
    });
    assert!(adopted.is_some(), "the parent never adopted a rotation");
    assert!(
        threads_named("ks-etcd-watch") >= 1,
        "no watch thread in the parent"
    );
    // The parent's connections to the members (its store calls' and its
    // watches'): the child must not use them.
    let before = member_connections();
    assert!(!before.is_empty(), "no connection to the cluster found");

    // SAFETY: this binary runs one test; the other threads are the
    // harness's main thread (waiting), keystrata's ticker and the watch
    // threads (neither holds anything the child uses: it leaks the
    // inherited runtimes and makes its own).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            child(&kc, other, dir.path())
        }))
        .unwrap_or(101);
        // SAFETY: ends the child without the parent's destructors.
        unsafe { libc::_exit(code) };
    }

    // The parent keeps sealing while the child works, rotates once the
    // child has rotated, and tells the child its new key.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut status = 0;
    let mut announced = false;
    loop {
        parent_cts.push(kc.seal(b"parent during", b"").unwrap());
        // Paced, as a server's requests are: a writer that seals flat out
        // in blocks of 50 keeps a compare-and-swap in flight all the time,
        // and the other writer then loses every race (a limit of
        // optimistic writes, not of fork).
        std::thread::sleep(Duration::from_millis(1));
        if !announced && dir.path().join("ready").exists() {
            let r = kc.rotate().unwrap();
            std::fs::write(dir.path().join("announce"), r.key_id.to_string()).unwrap();
            announced = true;
        }
        // SAFETY: a valid out-pointer and our own child.
        let w = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(w >= 0, "waitpid failed");
        if w == pid {
            break;
        }
        assert!(Instant::now() < deadline, "the child did not finish");
    }
    assert!(libc::WIFEXITED(status), "child died: status {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child failed (see fn child for what its code means)"
    );

    // The parent's own connections were left alone: had the child written
    // on them, etcd would have closed them (two processes interleaving
    // HTTP/2 frames on one socket) and the parent would have reconnected.
    let after = member_connections();
    assert!(
        before.is_subset(&after),
        "the parent lost connections while the child ran: {before:?} -> {after:?}"
    );
    // It goes on, and still adopts another handle's rotation.
    let r = other.rotate().unwrap();
    let adopted = poll(Duration::from_secs(15), || {
        let ct = kc.seal(b"parent after", b"").unwrap();
        let id = key_id(&ct);
        parent_cts.push(ct);
        (id == r.key_id).then_some(())
    });
    assert!(
        adopted.is_some(),
        "the parent stopped adopting rotations after the fork"
    );

    let fresh = Keychain::open(&loc, &root).unwrap();
    // 2 initial keys, other's two rotations, the parent's, the child's.
    assert_eq!(fresh.keys().expect("keys").len(), 6, "a rotation was lost");
    for ct in &parent_cts {
        fresh.unseal(ct, b"").unwrap();
    }
    let child_cts: Vec<Vec<u8>> = std::fs::read_to_string(dir.path().join("child.txt"))
        .unwrap()
        .lines()
        .map(unhex)
        .collect();
    assert!(child_cts.len() > 200);
    for ct in &child_cts {
        fresh.unseal(ct, b"child").unwrap();
    }
    drop(kc);
    drop(other);
    drop(fresh);
    assert_eq!(
        threads_named("ks-etcd-watch"),
        0,
        "a watch thread outlived its store"
    );
}
