//! Many threads on one keychain while another rotates: nothing is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use keystrata::{AgeRoot, Envelope, KeyManager, Keychain, Policy};

enum Made {
    Sealed(Vec<u8>, Vec<u8>),
    Encrypted(Vec<u8>, Vec<u8>),
    Wrapped(Envelope, Vec<u8>),
}

fn hammer(kc: Arc<Keychain>, threads: usize, per_thread: usize, rotations: usize) -> Vec<Made> {
    let stop = Arc::new(AtomicBool::new(false));
    let rotated = Arc::new(AtomicUsize::new(0));
    // Workers past their halfway point; the rotator keeps going until every
    // worker has seen a rotation between its two halves, however slowly the
    // workers are scheduled (a loaded machine once let all rotations finish
    // before any worker ran).
    let halfway = Arc::new(AtomicUsize::new(0));
    let rotator = {
        let kc = Arc::clone(&kc);
        let stop = Arc::clone(&stop);
        let rotated = Arc::clone(&rotated);
        let halfway = Arc::clone(&halfway);
        thread::spawn(move || {
            let mut n = 0;
            while (n < rotations || halfway.load(Ordering::Acquire) < threads)
                && !stop.load(Ordering::Relaxed)
            {
                kc.rotate().expect("rotate");
                n += 1;
                rotated.store(n, Ordering::Release);
                thread::sleep(std::time::Duration::from_micros(50));
            }
            n
        })
    };
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let kc = Arc::clone(&kc);
            let rotated = Arc::clone(&rotated);
            let halfway = Arc::clone(&halfway);
            thread::spawn(move || {
                let mut out = Vec::with_capacity(per_thread);
                let at_start = rotated.load(Ordering::Acquire);
                for i in 0..per_thread {
                    if i == per_thread / 2 {
                        // Make sure both halves straddle a rotation.
                        while rotated.load(Ordering::Acquire) == at_start {
                            thread::yield_now();
                        }
                        halfway.fetch_add(1, Ordering::AcqRel);
                    }
                    let pt = format!("thread {t} message {i}").into_bytes();
                    let aad = (i as u64).to_be_bytes().to_vec();
                    // Each result is checked right away too, under
                    // whatever primary is current by then.
                    match i % 3 {
                        0 => {
                            let ct = kc.seal(&pt, &aad).expect("seal");
                            assert_eq!(kc.unseal(&ct, &aad).expect("unseal"), pt);
                            out.push(Made::Sealed(ct, pt));
                        }
                        1 => {
                            let ct = kc.encrypt(&pt, &aad).expect("encrypt");
                            out.push(Made::Encrypted(ct, pt));
                        }
                        _ => {
                            let env = kc.wrap_key(&pt, &aad).expect("wrap");
                            out.push(Made::Wrapped(env, pt));
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut made = Vec::new();
    for w in workers {
        made.extend(w.join().expect("worker panicked"));
    }
    stop.store(true, Ordering::Relaxed);
    rotator.join().expect("rotator panicked");
    made
}

fn check_all(kc: &Keychain, made: &[Made]) -> HashMap<u32, u64> {
    let mut per_key = HashMap::new();
    for (i, m) in made.iter().enumerate() {
        let aad_for = |pt: &[u8]| {
            let idx: u64 = String::from_utf8_lossy(pt)
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            idx.to_be_bytes().to_vec()
        };
        match m {
            Made::Sealed(ct, pt) => {
                *per_key
                    .entry(u32::from_be_bytes(ct[1..5].try_into().unwrap()))
                    .or_insert(0) += 1;
                assert_eq!(&kc.unseal(ct, &aad_for(pt)).unwrap(), pt, "sealed #{i}");
            }
            Made::Encrypted(ct, pt) => {
                *per_key
                    .entry(u32::from_be_bytes(ct[5..9].try_into().unwrap()))
                    .or_insert(0) += 1;
                assert_eq!(&kc.decrypt(ct, &aad_for(pt)).unwrap(), pt, "encrypted #{i}");
            }
            Made::Wrapped(env, pt) => {
                *per_key
                    .entry(env.key_id.parse::<u32>().unwrap())
                    .or_insert(0) += 1;
                assert_eq!(
                    kc.unwrap_key(env, &aad_for(pt)).unwrap().expose_secret(),
                    &pt[..],
                    "wrapped #{i}"
                );
            }
        }
    }
    per_key
}

#[test]
fn eight_threads_and_a_rotator_lose_nothing() {
    let kc = Arc::new(Keychain::generate().unwrap());
    let made = hammer(Arc::clone(&kc), 8, 600, 200);
    assert_eq!(made.len(), 8 * 600);
    let per_key = check_all(&kc, &made);
    assert!(
        per_key.len() > 1,
        "the rotator never overlapped the workers"
    );
    // And after a save/load round trip.
    let root = AgeRoot::generate();
    let loaded = Keychain::load(&kc.save(&root).unwrap(), &root).unwrap();
    check_all(&loaded, &made);
}

#[test]
fn bound_keychain_under_load_reserves_and_rotates_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let policy = Policy {
        max_encryptions_per_key: 97,
        usage_block: 13,
        ..Policy::default()
    };
    let kc = Arc::new(Keychain::open_with_policy(&path, &root, Some(policy)).unwrap());
    let made = hammer(Arc::clone(&kc), 8, 150, 5);
    let loaded = Keychain::load_file(&path, &root).unwrap();
    let per_key = check_all(&loaded, &made);
    let keys = loaded.keys().expect("keys");
    for (id, n) in per_key {
        let k = keys.iter().find(|k| k.key_id == id).expect("key in file");
        assert!(n <= 97, "key {id} used {n} times, over the policy limit");
        assert!(
            k.usage >= n,
            "key {id}: file records {} < {n} used",
            k.usage
        );
    }
}

#[test]
fn close_racing_with_calls_gives_unavailable_never_a_panic() {
    for _ in 0..20 {
        let kc = Arc::new(Keychain::generate().unwrap());
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let kc = Arc::clone(&kc);
                thread::spawn(move || {
                    for _ in 0..500 {
                        for r in [
                            kc.seal(b"x", b"").map(|_| ()),
                            kc.derive(b"i", 32).map(|_| ()),
                            kc.primary().map(|_| ()),
                            kc.insecure_export_tink_cleartext().map(|_| ()),
                            kc.save(&AgeRoot::generate()).map(|_| ()),
                        ] {
                            if let Err(e) = r {
                                assert_eq!(e.kind(), keystrata::ErrorKind::Unavailable, "{e}");
                            }
                        }
                    }
                })
            })
            .collect();
        thread::sleep(std::time::Duration::from_micros(200));
        kc.close().unwrap();
        for w in workers {
            w.join().expect("a call racing with close panicked");
        }
    }
}
