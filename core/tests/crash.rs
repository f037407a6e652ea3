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
        let keys = kc.keys();
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
