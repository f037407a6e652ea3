//! The hard way: a child process encrypts in a loop against a bound
//! keychain with a tiny policy limit and is killed with SIGKILL at random
//! moments, many times. After each kill the file must load and every
//! ciphertext the child printed must decrypt, and the usage the file
//! records must cover every encryption the child made.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use keystrata::{AgeRoot, Keychain, Policy};

const CHILD_ENV: &str = "KEYSTRATA_CRASH_CHILD";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The child: not a real test; run only when the parent asks for it.
#[test]
#[ignore = "helper process for killed_at_random_moments_loses_nothing"]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (path, identity) = spec.split_once('\n').unwrap();
    let root = AgeRoot::new([identity], [] as [&str; 0]).unwrap();
    let policy = Policy {
        max_encryptions_per_key: 5,
        usage_block: 2,
        ..Policy::default()
    };
    let kc = Keychain::open_with_policy(path, &root, Some(policy)).unwrap();
    let out = std::io::stdout();
    for i in 0u64.. {
        let msg = i.to_be_bytes();
        let line = if i % 2 == 0 {
            format!(
                "S {} {}\n",
                hex(&msg),
                hex(&kc.seal(&msg, b"crash").unwrap())
            )
        } else {
            format!(
                "E {} {}\n",
                hex(&msg),
                hex(&kc.encrypt(&msg, b"crash").unwrap())
            )
        };
        let mut o = out.lock();
        o.write_all(line.as_bytes()).unwrap();
        o.flush().unwrap();
    }
}

/// A small deterministic PRNG for kill delays (xorshift), seeded from the
/// clock and printed, so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn killed_at_random_moments_loses_nothing() {
    let rounds: usize = std::env::var("KEYSTRATA_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let seed = std::env::var("KEYSTRATA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            (t.as_nanos() as u64 ^ u64::from(std::process::id())) | 1
        });
    eprintln!("crash test: {rounds} rounds, seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keychain.age");
    let root = AgeRoot::generate();
    let identity = {
        use age::secrecy::ExposeSecret;
        root.insecure_identity_strings()[0]
            .expose_secret()
            .to_owned()
    };
    let exe = std::env::current_exe().unwrap();
    // Every ciphertext ever printed, across all rounds.
    let mut seen: Vec<(char, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut killed_mid_run = 0;

    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{}\n{identity}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut buf = String::new();
            while r.read_line(&mut buf).unwrap_or(0) > 0 {
                // Only complete lines count: a kill can cut one short.
                if buf.ends_with('\n') {
                    lines.push(buf.trim_end().to_owned());
                }
                buf.clear();
            }
            lines
        });
        // Wait for the child to be running, then kill it 0-40 ms later.
        std::thread::sleep(Duration::from_millis(20 + rng.next() % 40));
        let alive = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        if alive {
            killed_mid_run += 1;
        } else {
            panic!("round {round}: child exited by itself with {status}");
        }
        let lines = reader.join().unwrap();
        for l in lines {
            let mut parts = l.splitn(3, ' ');
            let (Some(kind), Some(msg), Some(ct)) = (parts.next(), parts.next(), parts.next())
            else {
                continue; // test-harness chatter
            };
            if kind == "S" || kind == "E" {
                seen.push((kind.chars().next().unwrap(), unhex(msg), unhex(ct)));
            }
        }
        if !path.exists() {
            // Killed before the first write: nothing was handed out.
            continue;
        }
        let kc = Keychain::load_file(&path, &root)
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): keychain does not load: {e}"));
        let mut per_key: HashMap<u32, u64> = HashMap::new();
        for (i, (k, msg, ct)) in seen.iter().enumerate() {
            let (pt, id) = match k {
                'S' => (
                    kc.unseal(ct, b"crash"),
                    u32::from_be_bytes(ct[1..5].try_into().unwrap()),
                ),
                _ => (
                    kc.decrypt(ct, b"crash"),
                    u32::from_be_bytes(ct[5..9].try_into().unwrap()),
                ),
            };
            let pt = pt.unwrap_or_else(|e| {
                panic!("round {round} (seed {seed}): ciphertext #{i} lost: {e}")
            });
            assert_eq!(&pt, msg);
            *per_key.entry(id).or_default() += 1;
        }
        let keys = kc.keys().expect("keys");
        for (id, n) in per_key {
            let k = keys.iter().find(|k| k.key_id == id).unwrap();
            assert!(n <= 5, "key {id} encrypted {n} times, over the limit of 5");
            assert!(
                k.usage >= n,
                "round {round}: key {id} records usage {} < {n} encryptions seen",
                k.usage
            );
        }
    }
    eprintln!(
        "crash test: {killed_mid_run} kills, {} ciphertexts checked",
        seen.len()
    );
    assert_eq!(killed_mid_run, rounds);
    assert!(
        seen.len() > rounds,
        "the child produced too little to test anything"
    );
}

const WRITER_ENV: &str = "KEYSTRATA_CRASH_WRITER";
const WRITER_MAX: u64 = 6;

/// A writer of the several-writers test (not a real test; run only when
/// the parent asks for it): seals and encrypts with a tiny policy (6 per
/// key, blocks of 2, so it writes the file every other encryption and
/// rotates by itself every few), rotates by hand every 7th operation, and
/// prints every ciphertext and every rotation it stored (from its events).
#[test]
#[ignore = "helper process for several_writers_killed_at_random_moments_lose_nothing"]
fn crash_writer() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let mut parts = spec.splitn(4, '\n');
    let (Some(path), Some(name), Some(ops), Some(identity)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("bad {WRITER_ENV}");
    };
    // 0: until killed.
    let ops: u64 = ops.parse().unwrap();
    let root = AgeRoot::new([identity], [] as [&str; 0]).unwrap();
    let policy = Policy {
        max_encryptions_per_key: WRITER_MAX,
        usage_block: 2,
        ..Policy::default()
    };
    let kc = Keychain::open_with_policy(path, &root, Some(policy)).unwrap();
    // End the test harness's "test crash_writer ... " line, so the first
    // line of ours stands alone.
    println!();
    kc.subscribe(|e| {
        if e.kind == keystrata::EventKind::KeyRotated
            && e.purpose == Some(keystrata::Purpose::Encrypt)
        {
            let how = if e.automatic { "auto" } else { "manual" };
            let mut o = std::io::stdout().lock();
            writeln!(o, "R {} {how}", e.key_id.unwrap()).unwrap();
            o.flush().unwrap();
        }
    })
    .expect("subscribe");
    // An Unavailable (the writer lost the race for the file too often) is
    // printed as "X" and the operation tried again, at most 100 times per
    // operation; any other error ends the writer with a panic.
    let mut done = 0u64;
    for i in 0u64.. {
        if ops > 0 && (done == ops || i == ops * 100) {
            break;
        }
        let msg = format!("{name}/{i}").into_bytes();
        let result = if i % 7 == 6 {
            kc.rotate().map(|_| String::new())
        } else if i % 2 == 0 {
            kc.seal(&msg, b"crash")
                .map(|ct| format!("S {} {}\n", hex(&msg), hex(&ct)))
        } else {
            kc.encrypt(&msg, b"crash")
                .map(|ct| format!("E {} {}\n", hex(&msg), hex(&ct)))
        };
        let line = match result {
            Ok(line) => {
                done += 1;
                line
            }
            Err(e) if e.kind() == keystrata::ErrorKind::Unavailable => "X unavailable\n".to_owned(),
            Err(e) => panic!("{name}: {e}"),
        };
        let mut o = std::io::stdout().lock();
        o.write_all(line.as_bytes()).unwrap();
        o.flush().unwrap();
    }
}

/// What the writers of one round printed (complete lines only), and how
/// many of them were killed.
struct Round {
    sealed: Vec<(char, Vec<u8>, Vec<u8>)>,
    rotations: Vec<(u32, bool)>,
    kills: usize,
    /// Operations that failed with Unavailable (and were tried again).
    unavailable: usize,
}

/// Starts `writers` writer processes on `path`; each does `ops`
/// operations and exits, or, with `ops == 0`, works until it is SIGKILLed
/// (in an order and at moments drawn from `rng`) once every writer has
/// printed something.
fn writers_round(
    path: &std::path::Path,
    identity: &str,
    tag: &str,
    writers: usize,
    ops: u64,
    rng: &mut Rng,
) -> Round {
    let exe = std::env::current_exe().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(usize, String)>();
    let mut children = Vec::new();
    let mut readers = Vec::new();
    for w in 0..writers {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                WRITER_ENV,
                format!("{}\n{tag}w{w}\n{ops}\n{identity}", path.display()),
            )
            .stdout(Stdio::piped())
            .stderr(if ops > 0 {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = String::new();
            while r.read_line(&mut buf).unwrap_or(0) > 0 {
                // Only complete lines count: a kill can cut one short.
                if buf.ends_with('\n') && tx.send((w, buf.trim_end().to_owned())).is_err() {
                    break;
                }
                buf.clear();
            }
        }));
        children.push(child);
    }
    drop(tx);
    let mut lines: Vec<(usize, String)> = Vec::new();
    let mut kills = 0;
    if ops == 0 {
        // Wait (polling, with a deadline) until every writer has printed
        // something, so the kills land mid-work, not before the first open.
        let mut started = vec![false; writers];
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !started.iter().all(|s| *s) && std::time::Instant::now() < deadline {
            if let Ok((w, l)) = rx.recv_timeout(Duration::from_millis(100)) {
                started[w] = true;
                lines.push((w, l));
            }
        }
        assert!(
            started.iter().all(|s| *s),
            "{tag}: a writer printed nothing in 120 s"
        );
        // Kill them all, in a random order, 0-24 ms apart.
        let mut order: Vec<usize> = (0..writers).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        for &w in &order {
            std::thread::sleep(Duration::from_millis(rng.next() % 25));
            let alive = children[w].try_wait().unwrap().is_none();
            assert!(alive, "{tag}: writer {w} exited by itself");
            children[w].kill().unwrap(); // SIGKILL
            kills += 1;
        }
    }
    for (w, c) in children.iter_mut().enumerate() {
        let status = c.wait().unwrap();
        if ops > 0 {
            assert!(status.success(), "{tag}: writer {w} failed: {status}");
        }
    }
    for r in readers {
        r.join().unwrap();
    }
    lines.extend(rx.iter());
    let mut round = Round {
        sealed: Vec::new(),
        rotations: Vec::new(),
        kills,
        unavailable: 0,
    };
    for (_, l) in lines {
        let f: Vec<&str> = l.split(' ').collect();
        match f.as_slice() {
            [k @ ("S" | "E"), msg, ct] => {
                round
                    .sealed
                    .push((k.chars().next().unwrap(), unhex(msg), unhex(ct)))
            }
            ["R", id, how] => round.rotations.push((id.parse().unwrap(), *how == "auto")),
            ["X", "unavailable"] => round.unavailable += 1,
            _ => {} // test-harness chatter
        }
    }
    round
}

/// Checks the file against everything printed so far; returns the number
/// of encryption keys in it.
fn check_writers_file(
    path: &std::path::Path,
    root: &AgeRoot,
    seen: &[(char, Vec<u8>, Vec<u8>)],
    rotations: &[(u32, bool)],
    tag: &str,
) -> usize {
    use keystrata::Purpose;
    let kc = Keychain::load_file(path, root)
        .unwrap_or_else(|e| panic!("{tag}: keychain does not load: {e}"));
    let keys = kc.keys().expect("keys");
    let mut per_key: HashMap<u32, u64> = HashMap::new();
    for (i, (k, msg, ct)) in seen.iter().enumerate() {
        let (pt, id) = match k {
            'S' => (
                kc.unseal(ct, b"crash"),
                u32::from_be_bytes(ct[1..5].try_into().unwrap()),
            ),
            _ => (
                kc.decrypt(ct, b"crash"),
                u32::from_be_bytes(ct[5..9].try_into().unwrap()),
            ),
        };
        let pt = pt.unwrap_or_else(|e| panic!("{tag}: ciphertext #{i} under key {id} lost: {e}"));
        assert_eq!(&pt, msg);
        *per_key.entry(id).or_default() += 1;
    }
    for (id, n) in &per_key {
        let k = keys.iter().find(|k| k.key_id == *id).unwrap();
        assert!(
            *n <= WRITER_MAX,
            "{tag}: key {id} has {n} ciphertexts, over the limit of {WRITER_MAX}"
        );
        assert!(
            k.usage >= *n,
            "{tag}: key {id} records usage {} < {n}",
            k.usage
        );
    }
    for (id, _) in rotations {
        assert!(
            keys.iter().any(|k| k.key_id == *id),
            "{tag}: key {id} a writer rotated to is not in the file"
        );
    }
    assert_eq!(
        keys.iter().filter(|k| k.purpose == Purpose::Derive).count(),
        1,
        "{tag}: a second derivation key"
    );
    keys.iter()
        .filter(|k| k.purpose == Purpose::Encrypt)
        .count()
}

/// Several writer processes hammer one file (rotations by hand and by the
/// policy, a new usage block every other encryption) and are SIGKILLed in
/// a random order at random moments, round after round. After each round
/// the file must load and hold every key any writer reported, every
/// ciphertext any writer printed must decrypt, and no key may carry more
/// ciphertexts than the policy allows. The keys must be the two of the new
/// keychain plus the rotations reported, give or take one per kill (a
/// writer killed after storing its rotation and before printing it); a
/// last round without kills must add exactly the keys its writers report.
///
/// The schedule (kill order and delays) comes from a fixed seed, so it is
/// the same every run (`KEYSTRATA_CRASH_SEED` to try another;
/// `KEYSTRATA_CRASH_WRITER_ROUNDS`, default 12, for more rounds).
#[test]
fn several_writers_killed_at_random_moments_lose_nothing() {
    const WRITERS: usize = 4;
    let rounds: usize = std::env::var("KEYSTRATA_CRASH_WRITER_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("KEYSTRATA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f1ee_7001);
    eprintln!("several writers: {rounds} rounds of {WRITERS}, seed {seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keychain.age");
    let root = AgeRoot::generate();
    let identity = {
        use age::secrecy::ExposeSecret;
        root.insecure_identity_strings()[0]
            .expose_secret()
            .to_owned()
    };
    let mut seen = Vec::new();
    let mut rotations = Vec::new();
    let mut kills = 0usize;
    let mut unavailable = 0;
    let mut enc = 0;
    for round in 0..rounds {
        let tag = format!("round {round} (seed {seed})");
        let r = writers_round(&path, &identity, &format!("r{round}"), WRITERS, 0, &mut rng);
        seen.extend(r.sealed);
        rotations.extend(r.rotations);
        kills += r.kills;
        unavailable += r.unavailable;
        enc = check_writers_file(&path, &root, &seen, &rotations, &tag);
        let unreported = enc as i64 - 1 - rotations.len() as i64;
        assert!(
            (0..=kills as i64).contains(&unreported),
            "{tag}: {enc} encryption keys, {} rotations reported, {kills} kills",
            rotations.len()
        );
    }
    // No kills: every key the writers add is one they report. (Each
    // writer exits by itself after 40 operations; writers_round checks.)
    let r = writers_round(&path, &identity, "last", WRITERS, 40, &mut rng);
    unavailable += r.unavailable;
    let reported = r.rotations.len();
    seen.extend(r.sealed);
    rotations.extend(r.rotations);
    let after = check_writers_file(&path, &root, &seen, &rotations, "last round");
    assert_eq!(
        after - enc,
        reported,
        "last round: {} keys added, {reported} rotations reported",
        after - enc
    );
    let auto = rotations.iter().filter(|r| r.1).count();
    eprintln!(
        "several writers: {kills} kills, {} ciphertexts checked, {} rotations reported \
         ({auto} automatic), {after} encryption keys; {unavailable} operations \
         failed with Unavailable and were tried again",
        seen.len(),
        rotations.len()
    );
    assert!(
        auto > 0 && rotations.len() > auto,
        "the writers did not rotate both ways"
    );
}
