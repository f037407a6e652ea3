//! `seal` and `unseal`.

use crate::common::{on_terminal, Env};

#[test]
fn files_pipes_and_binary_data() {
    let e = Env::with_keychain();
    let all: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    // stdin -> stdout, binary-safe.
    let ct = e.ks_in(&["seal", "--aad", "svc=billing"], &all).ok().stdout;
    assert_eq!(ct[0], 0x01, "Tink's AEAD prefix");
    assert_eq!(ct.len(), all.len() + 33);
    let pt = e
        .ks_in(&["unseal", "--aad", "svc=billing"], &ct)
        .ok()
        .stdout;
    assert_eq!(pt, all);
    // File -> file; the plaintext file is 0600.
    e.write("in.bin", &all);
    e.ks(&["seal", "in.bin", "-o", "ct.bin", "--aad", "a"]).ok();
    e.ks(&["unseal", "ct.bin", "-o", "out.bin", "--aad", "a"])
        .ok();
    assert_eq!(e.read("out.bin"), all);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(e.path("out.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // An empty secret is a secret too.
    let ct = e.ks_in(&["seal"], b"").ok().stdout;
    assert_eq!(e.ks_in(&["unseal"], &ct).ok().stdout, b"");
    // -o - is stdout.
    let ct = e.ks_in(&["seal", "-o", "-", "-"], b"x").ok().stdout;
    assert_eq!(ct.len(), 34);
}

#[test]
fn base64_and_json() {
    let e = Env::with_keychain();
    let key = e.primary("encrypt")["key_id"].clone();
    let text = e.ks_in(&["seal", "--base64"], b"token").ok().text();
    assert!(text.ends_with('\n') && text.is_ascii());
    let pt = e
        .ks_in(&["unseal", "--base64"], text.as_bytes())
        .ok()
        .stdout;
    assert_eq!(pt, b"token");
    // --json to stdout carries the ciphertext; to a file, where it went.
    let v = e
        .ks_in(&["seal", "--json", "--aad", "x"], b"token")
        .ok()
        .json();
    assert_eq!(v["key_id"], key);
    assert_eq!(v["bytes"], 5 + 33);
    let ct64 = v["ciphertext"].as_str().unwrap().to_owned();
    let v = e
        .ks_in(
            &["unseal", "--base64", "--json", "--aad", "x"],
            ct64.as_bytes(),
        )
        .ok()
        .json();
    assert_eq!(v["key_id"], key);
    assert_eq!(v["plaintext"], "dG9rZW4="); // base64 of "token"
    assert_eq!(v["bytes"], 5);
    let v = e
        .ks_in(&["seal", "--json", "-o", "c.bin"], b"token")
        .ok()
        .json();
    assert_eq!(
        (v["output"].as_str(), v["key_id"].clone()),
        (Some("c.bin"), key.clone())
    );
    let v = e
        .ks(&["unseal", "c.bin", "--json", "-o", "p.bin"])
        .ok()
        .json();
    assert_eq!(
        (v["output"].as_str(), v["bytes"].as_u64()),
        (Some("p.bin"), Some(5))
    );
    assert_eq!(e.read("p.bin"), b"token");
}

#[test]
fn wrong_aad_tampering_and_bad_input() {
    let e = Env::with_keychain();
    let ct = e.ks_in(&["seal", "--aad", "right"], b"secret").ok().stdout;
    let r = e.ks_in(&["unseal", "--aad", "wrong"], &ct).fails(12);
    assert!(r.stdout.is_empty(), "no plaintext on failure");
    assert!(
        r.stderr
            .contains("Authentication: ciphertext could not be authenticated"),
        "{}",
        r.stderr
    );
    e.ks_in(&["unseal"], &ct).fails(12);
    for i in [5, 20, ct.len() - 1] {
        let mut bad = ct.clone();
        bad[i] ^= 1;
        e.ks_in(&["unseal", "--aad", "right"], &bad).fails(12);
    }
    // A key ID no key has; not a sealed ciphertext at all; not base64.
    let mut other = ct.clone();
    other[1..5].copy_from_slice(&[0x7f, 0, 0, 1]);
    e.ks_in(&["unseal", "--aad", "right"], &other)
        .fails(13)
        .says("UnknownKey");
    e.ks_in(&["unseal"], b"short").fails(20).says("Format");
    e.ks_in(&["unseal", "--base64"], b"!!!").fails(20);
    // A failed unseal to a file leaves no file.
    e.write("bad.bin", &other);
    e.ks(&["unseal", "bad.bin", "-o", "never.txt", "--aad", "right"])
        .fails(13);
    assert!(!e.path("never.txt").exists());
}

#[test]
fn size_limit() {
    let e = Env::with_keychain();
    let max = vec![7u8; 64 * 1024];
    let ct = e.ks_in(&["seal"], &max).ok().stdout;
    assert_eq!(e.ks_in(&["unseal"], &ct).ok().stdout, max);
    let over = vec![7u8; 64 * 1024 + 1];
    e.ks_in(&["seal"], &over)
        .fails(11)
        .says("65536-byte limit")
        .says("encrypt");
}

#[test]
fn binary_ciphertext_is_not_written_to_a_terminal() {
    let e = Env::with_keychain();
    e.write("s.txt", b"secret");
    let (code, shown) = on_terminal(&e, &["seal", "s.txt"]);
    assert_eq!(code, 2, "{shown}");
    assert!(
        shown.contains("refusing to write binary ciphertext to a terminal"),
        "{shown}"
    );
    let (code, shown) = on_terminal(&e, &["seal", "s.txt", "--base64"]);
    assert_eq!(code, 0, "{shown}");
    let (code, _) = on_terminal(&e, &["seal", "s.txt", "--force"]);
    assert_eq!(code, 0);
    // A file is fine from a terminal; so is the plaintext of unseal.
    let (code, _) = on_terminal(&e, &["seal", "s.txt", "-o", "s.ct"]);
    assert_eq!(code, 0);
    let (code, shown) = on_terminal(&e, &["unseal", "s.ct"]);
    assert_eq!(code, 0);
    assert!(shown.contains("secret"));
}

#[test]
fn outputs_that_are_not_files_are_written_not_replaced() {
    // A FIFO (as /dev/null or /dev/stdout would be: never renamed over).
    let e = Env::with_keychain();
    let fifo = e.path("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).expect("read fifo"))
    };
    e.ks_in(&["seal", "-o", "fifo"], b"through a pipe").ok();
    let ct = reader.join().expect("reader");
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "still a FIFO"
    );
    assert_eq!(e.ks_in(&["unseal"], &ct).ok().stdout, b"through a pipe");
    // A link to a file: the file is replaced, the link stays.
    e.write("real", b"");
    std::os::unix::fs::symlink(e.path("real"), e.path("link")).unwrap();
    e.ks_in(&["seal", "-o", "link"], b"via a link").ok();
    assert!(std::fs::symlink_metadata(e.path("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(e.ks(&["unseal", "real"]).ok().stdout, b"via a link");
    // A directory is refused.
    e.ks_in(&["seal", "-o", "."], b"x")
        .fails(11)
        .says("directory");
}
