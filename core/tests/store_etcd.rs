//! The etcd store against a real etcd: a 3-member cluster on loopback and a
//! TLS member with user/password auth, both started by
//! `scripts/peers/etcd.sh` (through `scripts/peers.sh start` or `make
//! test`), which exports the KS_TEST_ETCD_* variables read here. Built only
//! with the `etcd` and `peer-tests` features; without the variables every
//! test fails, naming the command to run.
//!
//! The outage test stops and starts the cluster's members, so every test
//! holds a ticket of a process-wide gate while it talks to the cluster, and
//! the outage test waits until it is the only one.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use keystrata::store::etcd::{EtcdStore, PASSWORD_ENV};
use keystrata::store::{Revision, Store, Swap};
use keystrata::{AgeRoot, ErrorKind, KeyManager, Keychain, OpenOptions, Policy, Purpose};

// ---- the peers ----

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "etcd peers not started: run `eval \"$(bash scripts/peers.sh start)\"` or `make test` \
             ({name} is not set)"
        )
    })
}

/// A key under the test prefix no other test (or earlier run) uses.
fn fresh_key(what: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}{what}-{}-{}-{nanos}",
        env("KS_TEST_ETCD_PREFIX"),
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A fresh location on the 3-member cluster.
fn location(what: &str) -> String {
    format!(
        "etcd://{}{}",
        env("KS_TEST_ETCD_ENDPOINTS"),
        fresh_key(what)
    )
}

/// Stops or starts member `n` (1..=3) of the cluster.
fn member(action: &str, n: u32) {
    let out = Command::new("bash")
        .arg(env("KS_TEST_ETCD_CTL"))
        .args(["member", action, &n.to_string(), &env("KS_TEST_ETCD_DIR")])
        .output()
        .expect("run etcd.sh");
    assert!(
        out.status.success(),
        "etcd.sh member {action} {n} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn key_id(ct: &[u8]) -> u32 {
    u32::from_be_bytes([ct[1], ct[2], ct[3], ct[4]])
}

fn policy(max: u64, block: u64) -> Policy {
    Policy {
        max_encryptions_per_key: max,
        usage_block: block,
        ..Policy::default()
    }
}

/// Polls `f` until it returns `Some` or `limit` passes.
fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---- the gate between the outage test and everything else ----

struct GateState {
    readers: usize,
    writer: bool,
}

static GATE: Mutex<GateState> = Mutex::new(GateState {
    readers: 0,
    writer: false,
});
static GATE_CV: Condvar = Condvar::new();

fn gate() -> std::sync::MutexGuard<'static, GateState> {
    GATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Held by a test that needs the cluster up.
struct Shared;

fn shared() -> Shared {
    let mut g = gate();
    while g.writer {
        g = GATE_CV.wait(g).unwrap_or_else(|p| p.into_inner());
    }
    g.readers += 1;
    Shared
}

impl Drop for Shared {
    fn drop(&mut self) {
        gate().readers -= 1;
        GATE_CV.notify_all();
    }
}

/// Held by the test that stops members: no other test runs meanwhile.
struct Exclusive;

fn exclusive() -> Exclusive {
    let mut g = gate();
    while g.writer || g.readers > 0 {
        g = GATE_CV.wait(g).unwrap_or_else(|p| p.into_inner());
    }
    g.writer = true;
    Exclusive
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        gate().writer = false;
        GATE_CV.notify_all();
    }
}

// ---- the store itself ----

#[test]
fn the_store_swaps_on_mod_revision_and_notices_other_writers() {
    let _g = shared();
    let loc = location("store");
    let a = EtcdStore::open(&loc).unwrap();
    let b = EtcdStore::open(&loc).unwrap();
    assert_eq!(a.location(), loc);
    assert!(a.load().unwrap().is_none());

    let Swap::Written(r1) = a.compare_and_swap(None, b"one").unwrap() else {
        panic!("the first write conflicted");
    };
    assert_eq!(b.compare_and_swap(None, b"two").unwrap(), Swap::Conflict);
    let v = b.load().unwrap().unwrap();
    assert_eq!((v.bytes.as_slice(), v.revision), (&b"one"[..], r1));

    let Swap::Written(r2) = b.compare_and_swap(Some(r1), b"two").unwrap() else {
        panic!("a write at the current revision conflicted");
    };
    assert!(r2.0 > r1.0);
    // a's revision is stale: nothing is written.
    assert_eq!(
        a.compare_and_swap(Some(r1), b"three").unwrap(),
        Swap::Conflict
    );
    assert_eq!(
        a.compare_and_swap(Some(Revision(u128::MAX)), b"three")
            .unwrap(),
        Swap::Conflict
    );
    assert_eq!(a.load().unwrap().unwrap().bytes, b"two");

    // a notices b's write (first by reading, then through its watch).
    assert!(a.changed(r1).unwrap());
    assert!(!a.changed(r2).unwrap());
    let Swap::Written(r3) = b.compare_and_swap(Some(r2), b"three").unwrap() else {
        panic!("conflict");
    };
    let seen = poll(Duration::from_secs(10), || {
        a.changed(r2).unwrap().then_some(())
    });
    assert!(seen.is_some(), "a never noticed b's write");
    assert!(!a.changed(r3).unwrap());

    // Too large to write: refused before anything is sent.
    let big = vec![0u8; (16 << 20) + 1];
    let e = a.compare_and_swap(Some(r3), &big).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    a.close();
    a.close();
    for e in [
        a.load().unwrap_err(),
        a.changed(r3).unwrap_err(),
        a.compare_and_swap(Some(r3), b"x").unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    }
    // b is unaffected.
    assert_eq!(b.load().unwrap().unwrap().bytes, b"three");
}

/// How many KV Range requests (reads) the cluster's members have started,
/// from their Prometheus metrics.
fn ranges_served() -> u64 {
    use std::io::{Read, Write};
    let mut total = 0;
    for ep in env("KS_TEST_ETCD_ENDPOINTS").split(',') {
        let mut s = std::net::TcpStream::connect(ep).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: {ep}\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("grpc_server_started_total{")
                    && l.contains("grpc_method=\"Range\"")
                    && l.contains("grpc_service=\"etcdserverpb.KV\"")
            })
            .expect("no Range counter in the metrics");
        total += line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64;
    }
    total
}

#[test]
fn changed_is_answered_by_the_watch_without_asking_etcd() {
    // Alone, so that the members' request counters count this test only.
    let _x = exclusive();
    let loc = location("watch");
    let a = EtcdStore::open(&loc).unwrap();
    let b = EtcdStore::open(&loc).unwrap();
    let Swap::Written(r1) = b.compare_and_swap(None, b"one").unwrap() else {
        panic!("conflict");
    };
    // The first calls start the watch and read etcd meanwhile; once the
    // watch is established, 500 calls cost no request at all.
    let quiet = poll(Duration::from_secs(15), || {
        let before = ranges_served();
        for _ in 0..500 {
            assert!(a.changed(r1).is_ok());
        }
        (ranges_served() - before < 5).then_some(())
    });
    assert!(quiet.is_some(), "changed kept reading etcd: no watch");
    assert!(!a.changed(r1).unwrap());
    // Another writer's change arrives through the watch.
    let before = ranges_served();
    let Swap::Written(r2) = b.compare_and_swap(Some(r1), b"two").unwrap() else {
        panic!("conflict");
    };
    let seen = poll(Duration::from_secs(5), || {
        a.changed(r1).unwrap().then_some(())
    });
    assert!(seen.is_some(), "the watch never reported b's write");
    assert!(!a.changed(r2).unwrap());
    assert!(
        ranges_served() - before < 5,
        "a write was noticed by reading"
    );
}

/// A single etcd member of this test's own, on free loopback ports with its
/// data in a temporary directory; killed (by its PID) when dropped.
struct OwnEtcd {
    child: std::process::Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl OwnEtcd {
    fn start(extra: &[&str]) -> OwnEtcd {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (client, peer) = (free(), free());
        let dir = tempfile::tempdir().unwrap();
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new(std::env::var("KS_ETCD_BIN").unwrap_or_else(|_| "etcd".into()))
            .args(["--name", "own", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("own={peer_url}")])
            .args([
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
                "--log-level",
                "error",
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start etcd (apt etcd-server, or set KS_ETCD_BIN)");
        let own = OwnEtcd {
            child,
            endpoint: format!("127.0.0.1:{client}"),
            _dir: dir,
        };
        let probe = EtcdStore::open(&format!("etcd://{}/ready", own.endpoint)).unwrap();
        let ready = poll(Duration::from_secs(30), || probe.load().ok());
        assert!(ready.is_some(), "the test's own etcd did not start");
        own
    }
}

impl Drop for OwnEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_stored_value_over_16_mib_is_refused_as_format() {
    // A member of its own: values this large must never reach the shared
    // cluster, whose members the outage tests restart (etcd 3.4 cannot
    // replay a log entry over 10 MB, so such a member would not come back).
    let etcd = OwnEtcd::start(&["--max-request-bytes", "25165824"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut kv = rt
        .block_on(etcd_client::Client::connect([&etcd.endpoint], None))
        .unwrap()
        .kv_client()
        .max_encoding_message_size(64 << 20);
    // Written by another client (keystrata refuses to write one): just
    // over the limit, and over the gRPC message size keystrata accepts.
    for (i, len) in [(16 << 20) + 1, 18 << 20].into_iter().enumerate() {
        let key = format!("/big/{i}");
        rt.block_on(kv.put(key.as_str(), vec![b'x'; len], None))
            .unwrap();
        let loc = format!("etcd://{}{key}", etcd.endpoint);
        let e = EtcdStore::open(&loc).unwrap().load().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Format, "{len} bytes: {e}");
        assert!(
            e.message().contains("16 MiB") && e.message().contains(&key),
            "{e}"
        );
        let e = Keychain::open(&loc, &AgeRoot::generate()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Format, "{e}");
    }
}

#[test]
fn an_unreachable_cluster_is_unavailable_within_the_timeout() {
    let root = AgeRoot::generate();
    // A port nothing listens on: refused at once.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let loc = format!("etcd://127.0.0.1:{port},127.0.0.1:{port}/keystrata-test/none?timeout=2");
    let t = Instant::now();
    let e = Keychain::open(&loc, &root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );

    // An address that never answers (TEST-NET-1, RFC 5737): the timeout.
    let loc = "etcd://192.0.2.1:2379/keystrata-test/none?timeout=1";
    let t = Instant::now();
    let e = Keychain::open(loc, &root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("192.0.2.1:2379"), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
}

// ---- keychains on etcd ----

#[test]
fn open_creates_then_reopens_the_same_keychain() {
    let _g = shared();
    let loc = location("open");
    let root = AgeRoot::generate();
    let kc = Keychain::open(&loc, &root).unwrap();
    assert!(kc.is_bound());
    assert_eq!(kc.location(), Some(loc.as_str()));
    let stored = EtcdStore::open(&loc).unwrap().load().unwrap().unwrap();
    assert!(stored.bytes.starts_with(b"age-encryption.org/v1\n"));
    let ct = kc.seal(b"hello", b"").unwrap();
    let keys = kc.keys().expect("keys");
    drop(kc);
    let again = Keychain::open(&loc, &root).unwrap();
    assert_eq!(again.unseal(&ct, b"").unwrap(), b"hello");
    assert_eq!(
        again
            .keys()
            .expect("keys")
            .iter()
            .map(|k| k.key_id)
            .collect::<Vec<_>>(),
        keys.iter().map(|k| k.key_id).collect::<Vec<_>>()
    );
    // Another root cannot open it, and it is left untouched.
    let before = EtcdStore::open(&loc).unwrap().load().unwrap().unwrap();
    assert!(Keychain::open(&loc, &AgeRoot::generate()).is_err());
    let after = EtcdStore::open(&loc).unwrap().load().unwrap().unwrap();
    assert_eq!(before.revision, after.revision);
}

#[test]
fn two_handles_rotating_from_threads_keep_every_key() {
    let _g = shared();
    let loc = location("rotate");
    let root = AgeRoot::generate();
    let a = Arc::new(Keychain::open(&loc, &root).unwrap());
    let b = Arc::new(Keychain::open(&loc, &root).unwrap());
    let per_thread = 6;
    let made: Vec<(u32, Vec<u8>, Vec<u8>)> = thread::scope(|s| {
        let workers: Vec<_> = [&a, &b, &a, &b]
            .into_iter()
            .enumerate()
            .map(|(t, kc)| {
                let kc = Arc::clone(kc);
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let r = kc.rotate().unwrap();
                            let pt = format!("thread {t} rotation {i}").into_bytes();
                            let ct = kc.encrypt(&pt, b"").unwrap();
                            (r.key_id, pt, ct)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let fresh = Keychain::open(&loc, &root).unwrap();
    let ids: HashSet<u32> = fresh
        .keys()
        .expect("keys")
        .iter()
        .map(|k| k.key_id)
        .collect();
    for (id, _, _) in &made {
        assert!(ids.contains(id), "rotated key {id} was lost");
    }
    assert_eq!(
        fresh.keys().expect("keys").len(),
        2 + 4 * per_thread,
        "every rotation is kept"
    );
    for (_, pt, ct) in &made {
        assert_eq!(&fresh.decrypt(ct, b"").unwrap(), pt);
    }
}

#[test]
fn a_key_the_other_handle_just_made_decrypts_at_once() {
    let _g = shared();
    let loc = location("fresh-key");
    let root = AgeRoot::generate();
    // An hour between refreshes: only the reload on an unknown key_id can
    // make b know a's new keys.
    let slow = OpenOptions::new().refresh(Duration::from_secs(3600));
    let a = slow.open(&loc, &root).unwrap();
    let b = slow.open(&loc, &root).unwrap();
    for i in 0..3u8 {
        let r = a.rotate().unwrap();
        let ct = a.seal(&[i], b"").unwrap();
        assert_eq!(key_id(&ct), r.key_id);
        assert_eq!(b.unseal(&ct, b"").unwrap(), [i]);
        let blob = a.encrypt(&[i], b"x").unwrap();
        assert_eq!(b.decrypt(&blob, b"x").unwrap(), [i]);
    }
}

#[test]
fn a_rotation_by_one_handle_is_adopted_by_the_other() {
    let _g = shared();
    let loc = location("adopt");
    let root = AgeRoot::generate();
    let a = Keychain::open(&loc, &root).unwrap();
    let worker = Keychain::open(&loc, &root).unwrap();
    let first = worker.seal(b"before", b"").unwrap();
    for round in 0..3 {
        let new = a.rotate().unwrap();
        assert_ne!(key_id(&first), new.key_id);
        let t = Instant::now();
        // The worker only encrypts; it adopts the new primary by itself.
        let adopted = poll(Duration::from_secs(15), || {
            let ct = worker.seal(b"x", b"").unwrap();
            (key_id(&ct) == new.key_id).then_some(())
        });
        assert!(
            adopted.is_some(),
            "round {round}: the worker never adopted key {}",
            new.key_id
        );
        assert_eq!(worker.primary().unwrap().key_id, new.key_id);
        eprintln!("round {round}: new primary adopted after {:?}", t.elapsed());
    }
}

#[test]
fn the_usage_limit_holds_for_both_handles_and_each_exhaustion_rotates_once() {
    let _g = shared();
    let loc = location("usage");
    let root = AgeRoot::generate();
    let max = 50;
    let p = policy(max, 4);
    let handles: Vec<Arc<Keychain>> = (0..2)
        .map(|_| Arc::new(OpenOptions::new().policy(p).open(&loc, &root).unwrap()))
        .collect();
    let per_thread = 100;
    let made: Vec<Vec<u8>> = thread::scope(|s| {
        let workers: Vec<_> = handles
            .iter()
            .flat_map(|h| (0..3).map(move |_| Arc::clone(h)))
            .map(|kc| {
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i: u32| kc.seal(&i.to_be_bytes(), b"").unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let fresh = Keychain::open(&loc, &root).unwrap();
    let mut per_key: HashMap<u32, u64> = HashMap::new();
    for ct in &made {
        *per_key.entry(key_id(ct)).or_default() += 1;
        fresh.unseal(ct, b"").unwrap();
    }
    for (id, n) in &per_key {
        assert!(*n <= max, "key {id} encrypted {n} times, over {max}");
    }
    let primary = fresh.primary().unwrap().key_id;
    let encrypt_keys: Vec<_> = fresh
        .keys()
        .expect("keys")
        .into_iter()
        .filter(|k| k.purpose == Purpose::Encrypt)
        .collect();
    for k in &encrypt_keys {
        assert!(
            k.usage <= max,
            "key {} recorded usage {}",
            k.key_id,
            k.usage
        );
        if k.key_id != primary {
            // Retired only at its limit: a second rotation of the same
            // exhausted key would retire a key with a block or less used.
            assert_eq!(k.usage, max, "key {} was retired early", k.key_id);
        }
    }
    let total = made.len() as u64;
    assert!(encrypt_keys.len() as u64 >= total.div_ceil(max));
    eprintln!(
        "{total} seals by 6 threads on 2 handles: {} keys, {:?} ciphertexts per key",
        encrypt_keys.len(),
        encrypt_keys
            .iter()
            .map(|k| per_key.get(&k.key_id).copied().unwrap_or(0))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_closed_handle_is_unavailable_and_does_not_stop_the_others() {
    let _g = shared();
    let loc = location("close");
    let root = AgeRoot::generate();
    let a = Keychain::open(&loc, &root).unwrap();
    let b = Keychain::open(&loc, &root).unwrap();
    let ct = a.seal(b"x", b"").unwrap();
    KeyManager::close(&a).unwrap();
    assert_eq!(
        a.seal(b"y", b"").unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(b.unseal(&ct, b"").unwrap(), b"x");
    b.rotate().unwrap();
    b.seal(b"z", b"").unwrap();
}

#[test]
fn a_keychain_works_from_inside_async_code() {
    let _g = shared();
    let loc = location("async");
    let root = AgeRoot::generate();
    // A runtime cannot block inside another: the store notices and runs
    // its calls on a scoped thread instead of panicking.
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ct = current.block_on(async {
        let kc = Keychain::open(&loc, &root).unwrap();
        kc.rotate().unwrap();
        kc.seal(b"async", b"").unwrap()
        // Dropped here, inside the runtime.
    });
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (loc2, root2) = (loc.clone(), root.clone());
    let pt = multi
        .block_on(async move {
            tokio::spawn(async move {
                let kc = Keychain::open(&loc2, &root2).unwrap();
                kc.refresh().unwrap();
                kc.unseal(&ct, b"").unwrap()
            })
            .await
        })
        .unwrap();
    assert_eq!(pt, b"async");
    assert_eq!(
        Keychain::open(&loc, &root)
            .unwrap()
            .keys()
            .expect("keys")
            .len(),
        3
    );
}

// ---- outage ----

#[test]
fn an_outage_is_survived_inside_the_block_and_recovered_from_by_itself() {
    let _x = exclusive();
    let loc = format!("{}?timeout=2", location("outage"));
    let root = AgeRoot::generate();
    let block = 200;
    let kc = OpenOptions::new()
        .policy(policy(1 << 32, block))
        .open(&loc, &root)
        .unwrap();
    let mut made = vec![kc.seal(b"before", b"").unwrap()];
    // Let the watch start, so the outage also breaks it.
    poll(Duration::from_secs(5), || {
        made.push(kc.seal(b"warm", b"").unwrap());
        (made.len() > 60).then_some(())
    });
    let used = made.len() as u64;
    assert!(used < block);

    for n in 1..=3 {
        member("stop", n);
    }

    // Inside the block reserved before the outage, sealing goes on; then it
    // fails with Unavailable, within the timeout (2 s) and some slack.
    let mut inside = 0u64;
    let failure = loop {
        let t = Instant::now();
        match kc.seal(b"during", b"") {
            Ok(ct) => {
                made.push(ct);
                inside += 1;
                assert!(inside <= block, "sealed past the reserved block");
            }
            Err(e) => break (e, t.elapsed()),
        }
    };
    let (e, took) = failure;
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        took < Duration::from_secs(5),
        "the failing seal took {took:?}"
    );
    assert!(e.message().contains("etcd"), "{e}");
    assert!(
        inside > 0 && inside <= block - used,
        "{inside} seals inside the block"
    );
    eprintln!(
        "outage: {inside} seals inside the block ({used} used before), then {e} after {took:?}"
    );
    // Later seals fail too, each within the bound; decryption of known
    // keys goes on.
    for _ in 0..3 {
        let t = Instant::now();
        let e = kc.seal(b"during", b"").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    for ct in &made {
        kc.unseal(ct, b"").unwrap();
    }

    for n in 1..=3 {
        member("start", n);
    }
    let back = Instant::now();
    // The same handle recovers by itself.
    let recovered = poll(Duration::from_secs(60), || kc.seal(b"after", b"").ok());
    let ct = recovered.expect("sealing did not recover after the cluster came back");
    made.push(ct);
    eprintln!(
        "outage: sealing recovered {:?} after the members were started again",
        back.elapsed()
    );
    kc.rotate().unwrap();
    made.push(kc.seal(b"after rotate", b"").unwrap());
    let fresh = Keychain::open(&loc, &root).unwrap();
    for ct in &made {
        fresh.unseal(ct, b"").unwrap();
    }

    // Without quorum (one member of three), the same: Unavailable within
    // the bound, and recovery when a second member returns.
    member("stop", 1);
    member("stop", 2);
    let mut inside = 0u64;
    let (e, took) = loop {
        let t = Instant::now();
        match kc.seal(b"no quorum", b"") {
            Ok(ct) => made.push(ct),
            Err(e) => break (e, t.elapsed()),
        }
        inside += 1;
        assert!(inside <= block, "sealed past the reserved block");
    };
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        took < Duration::from_secs(5),
        "the failing seal took {took:?}"
    );
    eprintln!("no quorum: {inside} seals inside the block, then {e} after {took:?}");
    kc.unseal(&made[0], b"").unwrap();
    member("start", 1);
    member("start", 2);
    let back = Instant::now();
    let recovered = poll(Duration::from_secs(60), || kc.seal(b"after", b"").ok());
    made.push(recovered.expect("no recovery after quorum came back"));
    eprintln!(
        "no quorum: sealing recovered {:?} after the members were started again",
        back.elapsed()
    );
    let fresh = Keychain::open(&loc, &root).unwrap();
    for ct in &made {
        fresh.unseal(ct, b"").unwrap();
    }
}

// ---- TLS and auth ----

/// Runs the probe test below in a child process of this test binary with
/// `case` and the password variable set as given (the environment is the
/// process's, so each case gets a process of its own). Returns its
/// combined output; panics if the probe failed.
fn probe(case: &str, password: Option<&str>) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "tls_and_auth_probe",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("KS_ETCD_PROBE", case)
    .env_remove(PASSWORD_ENV);
    if let Some(p) = password {
        cmd.env(PASSWORD_ENV, p);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "probe {case} failed:\n{text}");
    assert!(
        text.contains(&format!("probe {case}: ok")),
        "probe {case} did not run:\n{text}"
    );
    text
}

fn tls_location(user: Option<&str>, key: &str, client_cert: bool) -> String {
    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
    let mut loc = format!(
        "etcds://{user}{}{key}?ca={}",
        env("KS_TEST_ETCD_TLS_ENDPOINT"),
        env("KS_TEST_ETCD_TLS_CA")
    );
    if client_cert {
        loc.push_str(&format!(
            "&cert={}&key={}",
            env("KS_TEST_ETCD_TLS_CERT"),
            env("KS_TEST_ETCD_TLS_KEY")
        ));
    }
    loc.push_str("&timeout=3");
    loc
}

#[test]
fn tls_and_auth() {
    let password = env("KS_TEST_ETCD_TLS_PASSWORD");
    let wrong = "not-the-Password-42";
    probe("right", Some(&password));
    for (case, pw) in [
        ("wrong", Some(wrong)),
        ("missing", None),
        ("in-url", Some(password.as_str())),
        ("no-client-cert", Some(password.as_str())),
        ("no-user", Some(password.as_str())),
        ("outside-prefix", Some(password.as_str())),
    ] {
        let out = probe(case, pw);
        assert!(
            !out.contains(&password),
            "{case}: the password was printed:\n{out}"
        );
        assert!(
            !out.contains(wrong),
            "{case}: the password was printed:\n{out}"
        );
    }
}

/// Not a test by itself: the child process side of [`tls_and_auth`], which
/// runs it (`--ignored`) with `KS_ETCD_PROBE` set.
#[test]
#[ignore = "run by tls_and_auth in a child process"]
fn tls_and_auth_probe() {
    let case = std::env::var("KS_ETCD_PROBE").expect("KS_ETCD_PROBE: run by tls_and_auth");
    let user = env("KS_TEST_ETCD_TLS_USER");
    let root = AgeRoot::generate();
    let key = fresh_key("tls");
    let open = |loc: &str| Keychain::open(loc, &root);
    let expect_err = |loc: &str, kind: ErrorKind, words: &[&str]| {
        let t = Instant::now();
        let e = open(loc).unwrap_err();
        println!("{case}: {e}");
        assert_eq!(e.kind(), kind, "{e}");
        for w in words {
            assert!(e.message().contains(w), "{e} does not say {w:?}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(6),
            "took {:?}",
            t.elapsed()
        );
        if let Ok(p) = std::env::var(PASSWORD_ENV) {
            assert!(!e.to_string().contains(&p), "the password is in {e}");
            assert!(!format!("{e:?}").contains(&p), "the password is in {e:?}");
        }
    };
    match case.as_str() {
        "right" => {
            let loc = tls_location(Some(&user), &key, true);
            let kc = open(&loc).unwrap();
            let ct = kc.seal(b"over TLS", b"").unwrap();
            kc.rotate().unwrap();
            let ct2 = kc.seal(b"after rotate", b"").unwrap();
            drop(kc);
            let again = open(&loc).unwrap();
            assert_eq!(again.unseal(&ct, b"").unwrap(), b"over TLS");
            assert_eq!(again.unseal(&ct2, b"").unwrap(), b"after rotate");
            assert_eq!(again.keys().expect("keys").len(), 3);
        }
        "wrong" => expect_err(
            &tls_location(Some(&user), &key, true),
            ErrorKind::Backend,
            &["credentials", &user, PASSWORD_ENV],
        ),
        "missing" => expect_err(
            &tls_location(Some(&user), &key, true),
            ErrorKind::InvalidInput,
            &[PASSWORD_ENV],
        ),
        "in-url" => {
            let p = std::env::var(PASSWORD_ENV).unwrap();
            let loc = tls_location(Some(&format!("{user}:{p}")), &key, true);
            expect_err(&loc, ErrorKind::InvalidInput, &[PASSWORD_ENV]);
        }
        // The member requires a client certificate: the handshake fails.
        "no-client-cert" => expect_err(
            &tls_location(Some(&user), &key, false),
            ErrorKind::Unavailable,
            &[&env("KS_TEST_ETCD_TLS_ENDPOINT")],
        ),
        // Auth is on: a client with no user may not read the key.
        "no-user" => expect_err(
            &tls_location(None, &key, true),
            ErrorKind::Backend,
            &["denied"],
        ),
        // The user may only use the test prefix.
        "outside-prefix" => expect_err(
            &tls_location(Some(&user), "/elsewhere/kc", true),
            ErrorKind::Backend,
            &["denied", "/elsewhere/kc"],
        ),
        other => panic!("unknown probe {other}"),
    }
    println!("probe {case}: ok");
}

/// Continues a stopped member when dropped, however the test ends.
struct Stopped(String);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

#[test]
fn a_member_that_accepts_connections_but_never_answers_is_passed_over() {
    // The first listed member is stopped (SIGSTOP): its socket accepts
    // connections and never answers, as a member catching up or
    // partitioned away may. The other two have quorum; a call must move on
    // after the member's share of the budget, not fail at the limit.
    let _x = exclusive();
    let pid = std::fs::read_to_string(format!("{}/m1.pid", env("KS_TEST_ETCD_DIR")))
        .expect("m1.pid")
        .trim()
        .to_owned();
    let loc = location("hung");
    let root = AgeRoot::generate();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let stopped = Stopped(pid);
    let kc = OpenOptions::new()
        .policy(policy(1 << 32, 2))
        .open(&loc, &root)
        .expect("open with the first member hung");
    let r = kc.rotate().expect("rotate with the first member hung");
    let ct = kc.seal(b"still here", b"").unwrap();
    drop(stopped);
    let again = Keychain::open(&loc, &root).unwrap();
    assert_eq!(again.primary().unwrap().key_id, r.key_id);
    assert_eq!(again.unseal(&ct, b"").unwrap(), b"still here");
}
