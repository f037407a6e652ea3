//! One keychain file shared by several handles (as several processes
//! share it): no writer ever drops what another wrote, usage limits hold
//! for all of them together, and each sees the others' keys.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use keystrata::{AgeRoot, KeyManager, Keychain, OpenOptions, Policy, Purpose};

fn policy(max: u64, block: u64) -> Policy {
    Policy {
        max_encryptions_per_key: max,
        usage_block: block,
        ..Policy::default()
    }
}

fn key_id(ct: &[u8]) -> u32 {
    u32::from_be_bytes([ct[1], ct[2], ct[3], ct[4]])
}

fn fresh(path: &Path, root: &AgeRoot) -> Keychain {
    Keychain::load_file(path, root).expect("the file loads")
}

#[test]
fn two_handles_rotating_in_turn_keep_each_others_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let a = Keychain::open(&path, &root).unwrap();
    let b = Keychain::open(&path, &root).unwrap();
    let mut made = Vec::new();
    for i in 0..5u8 {
        let ra = a.rotate().unwrap();
        made.push(a.seal(&[i], b"a").unwrap());
        // b has not looked at the file since a rotated: its rotation must
        // still keep a's key.
        let rb = b.rotate().unwrap();
        made.push(b.seal(&[i], b"b").unwrap());
        let ids: HashSet<u32> = fresh(&path, &root)
            .keys()
            .expect("keys")
            .iter()
            .map(|k| k.key_id)
            .collect();
        assert!(ids.contains(&ra.key_id), "a's key {} was lost", ra.key_id);
        assert!(ids.contains(&rb.key_id), "b's key {} was lost", rb.key_id);
    }
    let f = fresh(&path, &root);
    assert_eq!(
        f.keys().expect("keys").len(),
        2 + 10,
        "every rotation is kept"
    );
    for (i, ct) in made.iter().enumerate() {
        let aad: &[u8] = if i % 2 == 0 { b"a" } else { b"b" };
        assert_eq!(f.unseal(ct, aad).unwrap(), [(i / 2) as u8]);
    }
}

#[test]
fn a_ciphertext_under_a_key_another_handle_just_made_decrypts_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    // A refresh interval far longer than the test: only the unknown-key
    // reload can make this pass.
    let slow = OpenOptions::new().refresh(Duration::from_secs(3600));
    let a = slow.open(&path, &root).unwrap();
    let b = slow.open(&path, &root).unwrap();
    for _ in 0..3 {
        a.rotate().unwrap();
        let ct = a.seal(b"fresh", b"").unwrap();
        assert_eq!(b.unseal(&ct, b"").unwrap(), b"fresh");
        let blob = a.encrypt(b"fresh", b"").unwrap();
        assert_eq!(b.decrypt(&blob, b"").unwrap(), b"fresh");
        let env = a.wrap_key(&[9u8; 32], b"ctx").unwrap();
        assert_eq!(
            b.unwrap_key(&env, b"ctx").unwrap().expose_secret(),
            &[9u8; 32]
        );
    }
    // Garbage key_ids are still UnknownKey, not a hang or a store storm.
    let mut bogus = a.seal(b"x", b"").unwrap();
    bogus[1..5].copy_from_slice(&0x7fff_fffeu32.to_be_bytes());
    for _ in 0..100 {
        assert_eq!(
            b.unseal(&bogus, b"").unwrap_err().kind(),
            keystrata::ErrorKind::UnknownKey
        );
    }
}

#[test]
fn a_handle_that_only_encrypts_adopts_the_new_primary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let rotator = Keychain::open(&path, &root).unwrap();
    let worker = OpenOptions::new()
        .refresh(Duration::from_millis(100))
        .open(&path, &root)
        .unwrap();
    let first = worker.seal(b"x", b"").unwrap();
    let new = rotator.rotate().unwrap();
    assert_ne!(key_id(&first), new.key_id);
    // Poll, with a generous deadline: the worker adopts the new primary on
    // its own within its refresh interval.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut made = vec![first];
    loop {
        let ct = worker.seal(b"x", b"").unwrap();
        let id = key_id(&ct);
        made.push(ct);
        if id == new.key_id {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new primary was never adopted"
        );
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(worker.primary().unwrap().key_id, new.key_id);
    let f = fresh(&path, &root);
    for ct in &made {
        f.unseal(ct, b"").unwrap();
    }
    // `refresh` adopts at once.
    let newer = rotator.rotate().unwrap();
    worker.refresh().unwrap();
    assert_eq!(worker.primary().unwrap().key_id, newer.key_id);
}

#[test]
fn many_handles_and_threads_rotating_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let handles: Vec<Arc<Keychain>> = (0..4)
        .map(|_| Arc::new(Keychain::open(&path, &root).unwrap()))
        .collect();
    let rotations_per_thread = 6;
    /// Keys a thread rotated in, and (ciphertext, plaintext) it made.
    type Made = (Vec<u32>, Vec<(Vec<u8>, Vec<u8>)>);
    let results: Vec<Made> = thread::scope(|s| {
        let hs: Vec<_> = handles
            .iter()
            .flat_map(|h| (0..2).map(move |t| (Arc::clone(h), t)))
            .enumerate()
            .map(|(n, (kc, _))| {
                s.spawn(move || {
                    let mut rotated = Vec::new();
                    let mut made = Vec::new();
                    for i in 0..rotations_per_thread {
                        rotated.push(kc.rotate().unwrap().key_id);
                        let pt = format!("{n}/{i}").into_bytes();
                        made.push((kc.encrypt(&pt, b"").unwrap(), pt));
                    }
                    (rotated, made)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let f = fresh(&path, &root);
    let ids: HashSet<u32> = f.keys().expect("keys").iter().map(|k| k.key_id).collect();
    let rotated: Vec<u32> = results.iter().flat_map(|r| r.0.clone()).collect();
    assert_eq!(rotated.len(), 8 * rotations_per_thread);
    for id in &rotated {
        assert!(ids.contains(id), "rotated key {id} was lost");
    }
    assert_eq!(f.keys().expect("keys").len(), 2 + rotated.len());
    for (blob, pt) in results.iter().flat_map(|r| r.1.iter()) {
        assert_eq!(&f.decrypt(blob, b"").unwrap(), pt);
    }
    // Versions stay unique per purpose even though writers raced.
    let mut versions: Vec<u32> = f
        .keys()
        .expect("keys")
        .iter()
        .filter(|k| k.purpose == Purpose::Encrypt)
        .map(|k| k.version)
        .collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 1 + rotated.len());
}

#[test]
fn the_usage_limit_holds_for_all_handles_and_each_exhaustion_rotates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let max = 20;
    let p = policy(max, 3);
    let handles: Vec<Arc<Keychain>> = (0..4)
        .map(|_| Arc::new(OpenOptions::new().policy(p).open(&path, &root).unwrap()))
        .collect();
    let per_thread = 60;
    let made: Vec<Vec<u8>> = thread::scope(|s| {
        let hs: Vec<_> = handles
            .iter()
            .flat_map(|h| (0..2).map(move |_| Arc::clone(h)))
            .map(|kc| {
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i: u32| kc.seal(&i.to_be_bytes(), b"").unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let f = fresh(&path, &root);
    let mut per_key: HashMap<u32, u64> = HashMap::new();
    for ct in &made {
        *per_key.entry(key_id(ct)).or_default() += 1;
        f.unseal(ct, b"").unwrap();
    }
    for (id, n) in &per_key {
        assert!(
            *n <= max,
            "key {id} encrypted {n} times, over the limit of {max}"
        );
    }
    let primary = f.primary().unwrap().key_id;
    for k in f
        .keys()
        .expect("keys")
        .iter()
        .filter(|k| k.purpose == Purpose::Encrypt)
    {
        assert!(
            k.usage <= max,
            "key {} recorded usage {}",
            k.key_id,
            k.usage
        );
        if k.key_id != primary {
            // Rotated only once its limit was reached: a second writer
            // rotating the same exhausted key would leave a key retired
            // with a block or less used.
            assert_eq!(k.usage, max, "key {} was retired early", k.key_id);
        }
    }
    let total = made.len() as u64;
    let encrypt_keys = f
        .keys()
        .expect("keys")
        .iter()
        .filter(|k| k.purpose == Purpose::Encrypt)
        .count() as u64;
    assert!(
        encrypt_keys >= total.div_ceil(max),
        "too few keys for {total} seals"
    );
}

#[test]
fn a_keychain_removed_while_in_use_is_written_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let kc = OpenOptions::new()
        .policy(policy(1 << 32, 1))
        .open(&path, &root)
        .unwrap();
    let r = kc.rotate().unwrap();
    let ct = kc.seal(b"kept", b"").unwrap();
    std::fs::remove_file(&path).unwrap();
    // The next write finds no file: it writes back everything it knows.
    kc.seal(b"next", b"").unwrap();
    let f = fresh(&path, &root);
    assert!(f.keys().expect("keys").iter().any(|k| k.key_id == r.key_id));
    assert_eq!(f.unseal(&ct, b"").unwrap(), b"kept");
}

#[test]
fn two_handles_creating_one_keychain_at_once_agree_on_it() {
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kc.age");
        let root = AgeRoot::generate();
        let kcs: Vec<Keychain> = thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| Keychain::open(&path, &root).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let want = fresh(&path, &root).primary().unwrap().key_id;
        for kc in &kcs {
            assert_eq!(
                kc.primary().unwrap().key_id,
                want,
                "a creator kept its own keychain"
            );
            let ct = kc.seal(b"x", b"").unwrap();
            fresh(&path, &root).unseal(&ct, b"").unwrap();
        }
    }
}

#[test]
fn a_closed_handle_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let a = Keychain::open(&path, &root).unwrap();
    let b = Keychain::open(&path, &root).unwrap();
    a.close().unwrap();
    assert_eq!(
        a.seal(b"x", b"").unwrap_err().kind(),
        keystrata::ErrorKind::Unavailable
    );
    b.rotate().unwrap();
    b.seal(b"x", b"").unwrap();
    assert_eq!(b.location(), Some(path.display().to_string().as_str()));
}

#[test]
fn unknown_schemes_are_refused_clearly() {
    let root = AgeRoot::generate();
    let e = Keychain::open("gopher://host/kc", &root).unwrap_err();
    assert_eq!(e.kind(), keystrata::ErrorKind::InvalidInput);
    assert!(e.message().contains("gopher"), "{}", e.message());
    let long = format!("{}://x", "s".repeat(100_000));
    let e = Keychain::open(&long, &root).unwrap_err();
    assert!(e.message().len() < 300, "echoed unbounded input");
    let e = Keychain::open("file://relative/kc.age", &root).unwrap_err();
    assert_eq!(e.kind(), keystrata::ErrorKind::InvalidInput);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("kc.age").display());
    let kc = Keychain::open(&url, &root).unwrap();
    kc.seal(b"x", b"").unwrap();
    assert!(dir.path().join("kc.age").exists());
}

#[test]
fn writers_reserving_in_a_tight_loop_do_not_starve_each_other() {
    // Blocks of 2 and no pacing: every few seals each handle must write.
    // Under the file lock each read-modify-write goes through whole, and a
    // handle that uses blocks up fast reserves bigger ones, so no writer
    // gives up (Unavailable) however the others are scheduled.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let p = policy(1 << 32, 2);
    let handles: Vec<Arc<Keychain>> = (0..3)
        .map(|_| Arc::new(OpenOptions::new().policy(p).open(&path, &root).unwrap()))
        .collect();
    let made: Vec<Vec<u8>> = thread::scope(|s| {
        let hs: Vec<_> = handles
            .iter()
            .flat_map(|h| (0..2).map(move |_| Arc::clone(h)))
            .map(|kc| {
                s.spawn(move || {
                    (0..2000u32)
                        .map(|i| kc.seal(&i.to_be_bytes(), b"").unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(made.len(), 12_000);
    let f = fresh(&path, &root);
    assert!(f.primary().unwrap().usage >= 12_000);
    for ct in made.iter().step_by(97) {
        f.unseal(ct, b"").unwrap();
    }
}
