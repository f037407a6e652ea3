//! `encrypt` and `decrypt`: streams of any size, files and pipes, atomic
//! outputs.

use crate::common::{entries, on_terminal, Env};

/// 20 MB of bytes that are not all alike (a counter hashed cheaply).
fn data(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn twenty_megabytes_through_pipes_and_files() {
    let e = Env::full();
    let big = data(20_000_000);
    // stdin -> stdout.
    let ct = e.ks_in(&["encrypt", "--aad", "backup-1"], &big).ok();
    assert!(
        ct.stderr.is_empty(),
        "no progress bar off a terminal: {}",
        ct.stderr
    );
    let ct = ct.stdout;
    assert!(ct.len() > big.len() && ct.len() < big.len() + 1024);
    let pt = e.ks_in(&["decrypt", "--aad", "backup-1"], &ct).ok().stdout;
    assert!(pt == big, "pipe round trip");
    // File -> file, with --json summaries.
    e.write("big.bin", &big);
    let v = e
        .ks(&[
            "encrypt", "big.bin", "-o", "big.ks", "--aad", "backup-1", "--json",
        ])
        .ok()
        .json();
    let stream_key = e.primary("stream");
    assert_eq!(v["key_id"], stream_key["key_id"]);
    assert_eq!(v["stream_format"], "aes256-gcm-hkdf-1mb");
    assert_eq!(v["plaintext_bytes"], 20_000_000);
    assert_eq!(v["input"], "big.bin");
    assert_eq!(v["output"], "big.ks");
    let ct_len = std::fs::metadata(e.path("big.ks")).unwrap().len();
    assert_eq!(v["ciphertext_bytes"], ct_len);
    let v = e
        .ks(&[
            "decrypt", "big.ks", "-o", "big.out", "--aad", "backup-1", "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["key_id"], stream_key["key_id"]);
    assert_eq!(v["ciphertext_bytes"], ct_len);
    assert_eq!(v["plaintext_bytes"], 20_000_000);
    assert!(e.read("big.out") == big, "file round trip");
    // A file into a pipe and back: the streams are the same format.
    let pt = e
        .ks(&["decrypt", "big.ks", "--aad", "backup-1"])
        .ok()
        .stdout;
    assert!(pt == big);
    // The plaintext file is 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(e.path("big.out"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn sizes_around_segment_boundaries_and_in_place() {
    let e = Env::full();
    // The first 1 MiB segment carries 2^20 - 16 - 40 bytes of plaintext.
    let first = (1 << 20) - 16 - 40;
    for n in [0, 1, first - 1, first, first + 1, first + (1 << 20) - 16] {
        let d = data(n);
        let ct = e.ks_in(&["encrypt"], &d).ok().stdout;
        assert!(e.ks_in(&["decrypt"], &ct).ok().stdout == d, "size {n}");
    }
    // In place: the output replaces the input only when complete.
    let d = data(3_000_000);
    e.write("doc", &d);
    e.ks(&["encrypt", "doc", "-o", "doc"]).ok();
    assert_ne!(e.read("doc"), d);
    e.ks(&["decrypt", "doc", "-o", "doc"]).ok();
    assert!(e.read("doc") == d);
}

#[test]
fn a_failed_decryption_leaves_no_output_file() {
    let e = Env::full();
    let d = data(3_000_000);
    e.write("in", &d);
    e.ks(&["encrypt", "in", "-o", "in.ks", "--aad", "right"])
        .ok();
    let before = entries(e.dir.path());
    let ct = e.read("in.ks");

    // Wrong aad.
    e.ks(&["decrypt", "in.ks", "-o", "out", "--aad", "wrong"])
        .fails(12)
        .says("Authentication");
    // Truncated: in the middle of a segment, and exactly at a segment end.
    e.write("cut.ks", &ct[..ct.len() - 100]);
    e.ks(&["decrypt", "cut.ks", "-o", "out", "--aad", "right"])
        .fails(12);
    e.write("cut.ks", &ct[..1 << 20]);
    e.ks(&["decrypt", "cut.ks", "-o", "out", "--aad", "right"])
        .fails(12);
    // One byte changed in the last segment: found only at the end, after
    // two segments of plaintext were written to the temporary file.
    let mut bad = ct.clone();
    let last = bad.len() - 10;
    bad[last] ^= 1;
    e.write("bad.ks", &bad);
    e.ks(&["decrypt", "bad.ks", "-o", "out", "--aad", "right"])
        .fails(12);
    // Not a stream at all.
    e.write("junk.ks", b"this is not a stream");
    e.ks(&["decrypt", "junk.ks", "-o", "out"])
        .fails(20)
        .says("Format");

    let mut want = before.clone();
    want.extend([
        "bad.ks".to_owned(),
        "cut.ks".to_owned(),
        "junk.ks".to_owned(),
    ]);
    want.sort();
    assert_eq!(
        entries(e.dir.path()),
        want,
        "no output and no temporary file"
    );
    // An existing output file is left as it was.
    e.write("out", b"keep me");
    e.ks(&["decrypt", "bad.ks", "-o", "out", "--aad", "right"])
        .fails(12);
    assert_eq!(e.read("out"), b"keep me");

    // To a pipe, what was written before the failure is announced.
    let r = e.ks(&["decrypt", "bad.ks", "--aad", "right"]).fails(12);
    assert!(
        r.stderr.contains("already written to stdout"),
        "{}",
        r.stderr
    );
}

#[test]
fn keys_and_options() {
    let e = Env::with_keychain();
    // No streaming key yet: UnknownKey, with the command that adds one.
    e.ks_in(&["encrypt"], b"x")
        .fails(13)
        .says("keystrata keychain rotate --purpose stream");
    e.ks(&[
        "keychain",
        "rotate",
        "--purpose",
        "stream",
        "--format",
        "4kb",
    ])
    .ok();
    let old = e.ks_in(&["encrypt"], &data(10_000)).ok().stdout;
    // A new primary: old streams still decrypt (every enabled stream key
    // is tried).
    let k = e
        .ks(&["keychain", "rotate", "--purpose", "stream", "--json"])
        .ok()
        .json();
    let v = {
        e.write("old.ks", &old);
        e.ks(&["decrypt", "old.ks", "-o", "old.out", "--json"])
            .ok()
            .json()
    };
    assert_ne!(v["key_id"], k["key_id"]);
    assert!(e.read("old.out") == data(10_000));
    // Disabled: refused.
    let id = v["key_id"].to_string();
    e.ks(&["keychain", "disable", &id]).ok();
    e.ks_in(&["decrypt"], &old).fails(12);
    // --json needs an output file.
    e.ks_in(&["encrypt", "--json"], b"x")
        .fails(2)
        .says("-o FILE");
    e.ks_in(&["decrypt", "--json"], &old).fails(2);
    // A missing input.
    e.ks(&["encrypt", "missing.bin", "-o", "x.ks"])
        .fails(21)
        .says("missing.bin");
    assert!(!e.path("x.ks").exists());
}

#[test]
fn not_to_a_terminal() {
    let e = Env::full();
    e.write("f", b"data");
    let (code, shown) = on_terminal(&e, &["encrypt", "f"]);
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("refusing to write binary ciphertext"));
    let (code, _) = on_terminal(&e, &["encrypt", "f", "-o", "f.ks", "--quiet"]);
    assert_eq!(code, 0);
    let (code, shown) = on_terminal(&e, &["decrypt", "f.ks", "--quiet"]);
    assert_eq!((code, shown.contains("data")), (0, true), "{shown}");
}

#[test]
fn an_interrupted_decryption_leaves_no_file() {
    use std::io::Write as _;
    use std::process::Stdio;
    let e = Env::full();
    let ct = e.ks_in(&["encrypt"], &data(5_000_000)).ok().stdout;
    let before = entries(e.dir.path());
    let mut c = e.command();
    c.args(["decrypt", "-", "-o", "out"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    // Three of five segments: the first two decrypt into the temporary
    // file, then the command waits for more input.
    stdin.write_all(&ct[..3 << 20]).expect("feed");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let temp = loop {
        let found = entries(e.dir.path())
            .into_iter()
            .find(|n| n.starts_with(".out.keystrata-"))
            .filter(|n| std::fs::metadata(e.path(n)).is_ok_and(|m| m.len() > 0));
        if let Some(t) = found {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no plaintext reached the temporary file"
        );
        std::thread::yield_now();
    };
    let mode = std::fs::metadata(e.path(&temp)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o600,
        "partial plaintext is 0600"
    );
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    drop(stdin);
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "exits as the shell reports SIGTERM"
    );
    assert_eq!(
        entries(e.dir.path()),
        before,
        "the partial plaintext was removed"
    );
}
