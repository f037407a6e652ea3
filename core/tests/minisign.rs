//! keystrata's minisign formats against the real minisign (0.11, at
//! /usr/bin/minisign): keys `minisign -G` makes are imported, what
//! keystrata signs `minisign -V` verifies, what `minisign -S` signs
//! keystrata verifies, and both refuse the same oversized comments.
//! Fails (never skips) when minisign is missing:
//! `apt-get install -y minisign`.
#![cfg(feature = "aws-lc")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keystrata::sign::minisign::{
    self, PublicKey, SecretKey, MAX_KDF_MEMLIMIT, MAX_KDF_OPSLIMIT, MAX_TRUSTED_COMMENT_LEN,
    MAX_UNTRUSTED_COMMENT_LEN,
};
use keystrata::ErrorKind;

const MINISIGN: &str = "/usr/bin/minisign";

/// The largest single allocation each thread made since its last reset:
/// the hostile-KDF test shows the loader allocates nothing big.
struct TrackLargest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: forwards every call to the system allocator unchanged; only
// records sizes in a const-initialised thread-local (which never
// allocates).
unsafe impl GlobalAlloc for TrackLargest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: TrackLargest = TrackLargest;

/// The path of minisign, or a failed test saying how to install it.
fn minisign_path() -> &'static str {
    assert!(
        Path::new(MINISIGN).exists(),
        "{MINISIGN} is missing: these tests run the real minisign; install it with \
         `apt-get install -y minisign`"
    );
    MINISIGN
}

fn minisign() -> Command {
    Command::new(minisign_path())
}

/// Runs `cmd` with `stdin` as its input.
fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("minisign starts");
    if let Some(mut input) = child.stdin.take() {
        // minisign may exit without reading (then the pipe is closed).
        let _ = input.write_all(stdin);
    }
    child.wait_with_output().expect("minisign runs")
}

/// Runs `cmd`, which must succeed; returns its stdout.
fn ok(cmd: &mut Command, stdin: &[u8]) -> String {
    let out = run(cmd, stdin);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd`, which must fail; returns its stderr.
fn fails(cmd: &mut Command) -> String {
    let out = run(cmd, b"");
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("readable file")
}

/// The bytes of a secret-key file (its base64 line decoded).
fn secret_key_bytes(text: &str) -> Vec<u8> {
    STANDARD.decode(text.lines().nth(1).unwrap()).unwrap()
}

/// The secret-key file with its bytes changed by `f`.
fn edit_secret_key(text: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut raw = secret_key_bytes(text);
    f(&mut raw);
    format!(
        "{}\n{}\n",
        text.lines().next().unwrap(),
        STANDARD.encode(raw)
    )
}

/// The algorithm tag of a signature text.
fn alg(sig: &str) -> [u8; 2] {
    let raw = STANDARD.decode(sig.lines().nth(1).unwrap()).unwrap();
    [raw[0], raw[1]]
}

fn le64(raw: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(raw[at..at + 8].try_into().unwrap())
}

/// Some data with every byte value.
fn data() -> Vec<u8> {
    (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect()
}

/// `minisign -G -W`: an unencrypted key pair in `dir`; returns (secret
/// key text, public key text).
fn generate_unencrypted(dir: &Path, name: &str) -> (String, String) {
    let (sk, pk) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    ok(
        minisign()
            .arg("-G")
            .arg("-W")
            .arg("-p")
            .arg(&pk)
            .arg("-s")
            .arg(&sk),
        b"",
    );
    (read(&sk), read(&pk))
}

#[test]
fn unencrypted_minisign_key_signs_what_minisign_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (sk_text, pk_text) = generate_unencrypted(dir.path(), "k");
    // -G -W writes KDF "\0\0" and (surprise) an all-zero checksum.
    let raw = secret_key_bytes(&sk_text);
    assert_eq!(&raw[..6], b"Ed\0\0B2");
    assert!(raw[126..].iter().all(|&b| b == 0));

    let key = SecretKey::from_text(&sk_text, None).unwrap();
    let pk = PublicKey::from_text(&pk_text).unwrap();
    assert_eq!(*key.public_key(), pk);
    // minisign 0.11 prints the key ID as a little-endian number, without
    // zero padding ("%" PRIX64); 0.12 pads to 16 digits.
    let printed = pk_text
        .lines()
        .next()
        .unwrap()
        .strip_prefix("untrusted comment: minisign public key ")
        .unwrap();
    assert_eq!(
        u64::from_str_radix(printed, 16).unwrap(),
        u64::from_le_bytes(pk.key_id)
    );
    assert_eq!(pk.key_id_hex(), format!("{printed:0>16}"));

    let data = data();
    let data_path = dir.path().join("data.bin");
    std::fs::write(&data_path, &data).unwrap();
    let comment = "keystrata\ttest é ✓";
    let sig = key.sign(&data, comment, None).unwrap();
    let sig_path = dir.path().join("data.bin.minisig");
    std::fs::write(&sig_path, &sig).unwrap();

    let pk_path = dir.path().join("k.pub");
    let out = ok(
        minisign()
            .arg("-V")
            .arg("-m")
            .arg(&data_path)
            .arg("-p")
            .arg(&pk_path),
        b"",
    );
    assert!(
        out.contains(&format!("Trusted comment: {comment}")),
        "{out}"
    );
    // -H: minisign requires a prehashed signature; ours is.
    ok(
        minisign()
            .args(["-V", "-H", "-m"])
            .arg(&data_path)
            .arg("-p")
            .arg(&pk_path),
        b"",
    );
    // -P: the bare base64 public key.
    ok(
        minisign()
            .arg("-Vm")
            .arg(&data_path)
            .arg("-P")
            .arg(pk.to_base64()),
        b"",
    );
    // -Q prints the trusted comment alone.
    let quiet = ok(
        minisign()
            .arg("-VQm")
            .arg(&data_path)
            .arg("-p")
            .arg(&pk_path),
        b"",
    );
    assert_eq!(quiet, format!("{comment}\n"));

    // minisign's check is not vacuous: other data fails.
    let mut other = data.clone();
    other[12_345] ^= 1;
    std::fs::write(&data_path, &other).unwrap();
    fails(
        minisign()
            .arg("-Vm")
            .arg(&data_path)
            .arg("-p")
            .arg(&pk_path),
    );
}

#[test]
fn password_key_from_minisign_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = (dir.path().join("e.key"), dir.path().join("e.pub"));
    // minisign reads the password, then its confirmation, with fgets on
    // stdin (no tty needed). It asks libsodium for 1 GiB of scrypt memory
    // and halves opslimit and memlimit while that fails: under a 64 MiB
    // address-space limit it settles on 32 MiB (N = 2^15), which keeps
    // this test fast in debug builds.
    ok(
        Command::new("/bin/sh")
            .arg("-c")
            .arg("ulimit -v 65536 && exec \"$0\" \"$@\"")
            .arg(minisign_path())
            .arg("-G")
            .arg("-p")
            .arg(&pk)
            .arg("-s")
            .arg(&sk),
        b"open sesame\nopen sesame\n",
    );
    let sk_text = read(&sk);
    let raw = secret_key_bytes(&sk_text);
    assert_eq!(&raw[..6], b"EdScB2");
    let (opslimit, memlimit) = (le64(&raw, 38), le64(&raw, 46));
    assert!(
        memlimit < MAX_KDF_MEMLIMIT && opslimit < MAX_KDF_OPSLIMIT,
        "minisign did not halve its KDF limits: {opslimit} {memlimit}"
    );

    let key = SecretKey::from_text(&sk_text, Some(b"open sesame")).unwrap();
    let public = PublicKey::from_text(&read(&pk)).unwrap();
    assert_eq!(*key.public_key(), public);
    let wrong = SecretKey::from_text(&sk_text, Some(b"open sesame!")).unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::Authentication);
    assert!(!wrong.to_string().contains("sesame"), "{wrong}");
    assert_eq!(
        SecretKey::from_text(&sk_text, None).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    // Our signature with the imported key: minisign verifies it.
    let data_path = dir.path().join("data.bin");
    std::fs::write(&data_path, data()).unwrap();
    let sig = key.sign(&data(), "signed by keystrata", None).unwrap();
    std::fs::write(dir.path().join("data.bin.minisig"), sig).unwrap();
    ok(
        minisign().arg("-Vm").arg(&data_path).arg("-p").arg(&pk),
        b"",
    );

    // minisign signing with the password-protected key (password on
    // stdin): we verify it.
    let x = dir.path().join("by-minisign.minisig");
    ok(
        minisign()
            .arg("-Sm")
            .arg(&data_path)
            .arg("-s")
            .arg(&sk)
            .arg("-x")
            .arg(&x)
            .args(["-t", "signed by minisign"]),
        b"open sesame\n",
    );
    let v = minisign::verify(&public, &data(), &read(&x)).unwrap();
    assert_eq!(v.trusted_comment, "signed by minisign");
    assert!(v.prehashed);

    // `minisign -C -W` removes the password: KDF "\0\0", but the checksum
    // it keeps is the real one (not zero as with -G -W).
    ok(
        minisign().args(["-C", "-W", "-s"]).arg(&sk),
        b"open sesame\n",
    );
    let plain_text = read(&sk);
    let plain = secret_key_bytes(&plain_text);
    assert_eq!(&plain[..4], b"Ed\0\0");
    assert!(plain[126..].iter().any(|&b| b != 0));
    let plain_key = SecretKey::from_text(&plain_text, None).unwrap();
    assert_eq!(plain_key.insecure_seed(), key.insecure_seed());
}

#[test]
fn minisign_signatures_verify_with_keystrata() {
    let dir = tempfile::tempdir().unwrap();
    let (sk_text, pk_text) = generate_unencrypted(dir.path(), "k");
    let pk = PublicKey::from_text(&pk_text).unwrap();
    let sk = dir.path().join("k.key");
    let data_path = dir.path().join("data.bin");
    std::fs::write(&data_path, data()).unwrap();

    // Prehashed (the default), with a trusted comment.
    let x = dir.path().join("hashed.minisig");
    ok(
        minisign()
            .arg("-Sm")
            .arg(&data_path)
            .arg("-s")
            .arg(&sk)
            .arg("-x")
            .arg(&x)
            .args(["-t", "release 1.0\tstable", "-c", "from the CLI"]),
        b"",
    );
    let sig = read(&x);
    assert_eq!(&alg(&sig), b"ED");
    let v = minisign::verify(&pk, &data(), &sig).unwrap();
    assert_eq!(v.trusted_comment, "release 1.0\tstable");
    assert!(v.prehashed);
    assert_eq!(v.key_id, pk.key_id);
    assert_eq!(minisign::signature_key_id(&sig).unwrap(), pk.key_id);
    // Deterministic Ed25519: ours is byte for byte minisign's, but for the
    // untrusted comment.
    let key = SecretKey::from_text(&sk_text, None).unwrap();
    assert_eq!(
        key.sign(&data(), "release 1.0\tstable", Some("from the CLI"))
            .unwrap(),
        sig
    );

    // Legacy (-l): Ed25519 over the data itself.
    let x = dir.path().join("legacy.minisig");
    ok(
        minisign()
            .args(["-S", "-l", "-m"])
            .arg(&data_path)
            .arg("-s")
            .arg(&sk)
            .arg("-x")
            .arg(&x),
        b"",
    );
    let legacy = read(&x);
    assert_eq!(&alg(&legacy), b"Ed");
    let v = minisign::verify(&pk, &data(), &legacy).unwrap();
    assert!(!v.prehashed);
    // minisign's default trusted comment: timestamp and file name.
    assert!(v.trusted_comment.starts_with("timestamp:"), "{v:?}");
    assert!(v.trusted_comment.ends_with("\tfile:data.bin"), "{v:?}");

    // Default (prehashed) with minisign's default comment: "\thashed".
    let x = dir.path().join("default.minisig");
    ok(
        minisign()
            .arg("-Sm")
            .arg(&data_path)
            .arg("-s")
            .arg(&sk)
            .arg("-x")
            .arg(&x),
        b"",
    );
    let v = minisign::verify(&pk, &data(), &read(&x)).unwrap();
    assert!(
        v.trusted_comment.ends_with("\tfile:data.bin\thashed"),
        "{v:?}"
    );

    // Other data, or another key.
    let mut other = data();
    other[0] ^= 1;
    for s in [&sig, &legacy] {
        assert_eq!(
            minisign::verify(&pk, &other, s).unwrap_err().kind(),
            ErrorKind::Authentication
        );
    }
    let (_, other_pk) = generate_unencrypted(dir.path(), "other");
    let other_pk = PublicKey::from_text(&other_pk).unwrap();
    let err = minisign::verify(&other_pk, &data(), &sig).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKey);
    assert!(err.message().contains(&pk.key_id_hex()), "{err}");
    // minisign agrees that the key ID does not match.
    let stderr = fails(
        minisign()
            .arg("-Vm")
            .arg(&data_path)
            .arg("-x")
            .arg(dir.path().join("hashed.minisig"))
            .arg("-p")
            .arg(dir.path().join("other.pub")),
    );
    assert!(stderr.contains("key id"), "{stderr}");
}

#[test]
fn keystrata_public_key_text_is_read_by_minisign() {
    let dir = tempfile::tempdir().unwrap();
    // A key ID whose printed form has leading zeros.
    let key = SecretKey::from_seed(&[0x42; 32], [0x10, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    let pub_text = key.public_key().to_text();
    assert_eq!(
        pub_text.lines().next().unwrap(),
        "untrusted comment: minisign public key 0000000000000010"
    );
    let pk_path = dir.path().join("ours.pub");
    std::fs::write(&pk_path, &pub_text).unwrap();
    let data_path = dir.path().join("data.bin");
    std::fs::write(&data_path, data()).unwrap();
    std::fs::write(
        dir.path().join("data.bin.minisig"),
        key.sign(&data(), "t", None).unwrap(),
    )
    .unwrap();
    ok(
        minisign()
            .arg("-Vm")
            .arg(&data_path)
            .arg("-p")
            .arg(&pk_path),
        b"",
    );

    // And for a key minisign made and signed with.
    let (_, pk_text) = generate_unencrypted(dir.path(), "k");
    let theirs = PublicKey::from_text(&pk_text).unwrap();
    std::fs::write(&pk_path, theirs.to_text()).unwrap();
    ok(
        minisign()
            .arg("-Sm")
            .arg(&data_path)
            .arg("-s")
            .arg(dir.path().join("k.key")),
        b"",
    );
    ok(
        minisign()
            .arg("-Vm")
            .arg(&data_path)
            .arg("-p")
            .arg(&pk_path),
        b"",
    );
}

#[test]
fn comment_limits_are_minisigns() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[7; 32], [1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    let pk_path = dir.path().join("k.pub");
    std::fs::write(&pk_path, key.public_key().to_text()).unwrap();
    let data_path = dir.path().join("data.bin");
    std::fs::write(&data_path, b"limits").unwrap();
    let sig_path = dir.path().join("data.bin.minisig");

    // The longest comments we write: minisign reads them.
    let trusted = "t".repeat(MAX_TRUSTED_COMMENT_LEN);
    let untrusted = "u".repeat(MAX_UNTRUSTED_COMMENT_LEN);
    let sig = key.sign(b"limits", &trusted, Some(&untrusted)).unwrap();
    std::fs::write(&sig_path, &sig).unwrap();
    ok(
        minisign()
            .arg("-Vm")
            .arg(&data_path)
            .arg("-p")
            .arg(&pk_path),
        b"",
    );

    // One byte more: we refuse to write it, and minisign refuses to read
    // it (its buffers, before any signature check); so does our verify.
    assert_eq!(
        key.sign(b"limits", &format!("{trusted}t"), None)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        key.sign(b"limits", "t", Some(&format!("{untrusted}u")))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    for (from, to, says) in [
        (&trusted, format!("{trusted}t"), "Trusted comment too long"),
        (
            &untrusted,
            format!("{untrusted}u"),
            "Untrusted signature comment too long",
        ),
    ] {
        let long = sig.replacen(from.as_str(), &to, 1);
        std::fs::write(&sig_path, &long).unwrap();
        let stderr = fails(
            minisign()
                .arg("-Vm")
                .arg(&data_path)
                .arg("-p")
                .arg(&pk_path),
        );
        assert!(stderr.contains(says), "{stderr}");
        assert_eq!(
            minisign::verify(key.public_key(), b"limits", &long)
                .unwrap_err()
                .kind(),
            ErrorKind::Format
        );
    }
}

#[test]
fn hostile_kdf_limits_allocate_nothing_large() {
    let dir = tempfile::tempdir().unwrap();
    let (sk_text, _) = generate_unencrypted(dir.path(), "k");
    let with_limits = |ops: u64, mem: u64| {
        edit_secret_key(&sk_text, |raw| {
            raw[2..4].copy_from_slice(b"Sc");
            raw[38..46].copy_from_slice(&ops.to_le_bytes());
            raw[46..54].copy_from_slice(&mem.to_le_bytes());
        })
    };
    let largest_during = |text: &str| {
        LARGEST.with(|l| l.set(0));
        let res = SecretKey::from_text(text, Some(b"pw"));
        (res.map(|_| ()), LARGEST.with(Cell::get))
    };

    // The tracker sees scrypt's memory: 16 MiB (N = 2^14) for these.
    let (res, largest) = largest_during(&with_limits(524_288, 16 << 20));
    assert_eq!(res.unwrap_err().kind(), ErrorKind::Authentication);
    assert!(largest >= 16 << 20, "largest allocation {largest}");

    // Just over either limit (scrypt would take 1 GiB, or 512 MiB of p
    // lanes), and far over: Policy, with no allocation over 64 KiB.
    for (ops, mem) in [
        (MAX_KDF_OPSLIMIT, MAX_KDF_MEMLIMIT + 1024),
        (MAX_KDF_OPSLIMIT + 1, 0),
        (u64::MAX, u64::MAX),
    ] {
        let (res, largest) = largest_during(&with_limits(ops, mem));
        assert_eq!(res.unwrap_err().kind(), ErrorKind::Policy, "{ops} {mem}");
        assert!(largest < 64 * 1024, "{ops} {mem}: allocated {largest}");
    }
}

/// minisign's own default strength (1 GiB, N = 2^20): about 100 s in a
/// debug build on a busy 2-core machine, 6 s in release
/// (`cargo test --release --test minisign -- --ignored`).
#[test]
#[ignore = "1 GiB of scrypt memory, ~100 s in debug builds: run with --ignored, best with --release"]
fn default_strength_password_key_from_minisign() {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = (dir.path().join("e.key"), dir.path().join("e.pub"));
    ok(
        minisign().arg("-G").arg("-p").arg(&pk).arg("-s").arg(&sk),
        b"pw\npw\n",
    );
    let sk_text = read(&sk);
    let raw = secret_key_bytes(&sk_text);
    assert_eq!(
        (le64(&raw, 38), le64(&raw, 46)),
        (MAX_KDF_OPSLIMIT, MAX_KDF_MEMLIMIT)
    );
    let key = SecretKey::from_text(&sk_text, Some(b"pw")).unwrap();
    assert_eq!(*key.public_key(), PublicKey::from_text(&read(&pk)).unwrap());
}
