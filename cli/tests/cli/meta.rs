//! `derive`, `completions`, `man`, and the help text's exit codes.

use keystrata::Keychain;

use crate::common::{on_terminal, run, Env};

#[test]
fn derive_matches_the_library_and_stays_stable() {
    let e = Env::with_keychain();
    let args = [
        "derive",
        "--origin",
        "https://app.example",
        "--instance",
        "web-1",
        "--epoch",
        "0",
    ];
    let hex = e.ks(&args).ok().text();
    assert_eq!(hex.len(), 65, "32 bytes in hex and a newline: {hex}");
    // The library, reading the same keychain, agrees.
    let root = keystrata::root::from_uri(&e.root).unwrap();
    let kc = Keychain::load_file(&e.keychain, &*root).unwrap();
    let want = kc
        .derive_origin_key("https://app.example", "web-1", 0)
        .unwrap();
    let want_hex: String = want
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex.trim_end(), want_hex);
    // Longer keys start with the same 32 bytes; raw bytes to a file, 0600.
    let long = e.ks(&[&args[..], &["--length", "64"]].concat()).ok().text();
    assert!(long.starts_with(&want_hex) && long.len() == 129);
    e.ks(&[&args[..], &["--raw", "-o", "k.bin"]].concat()).ok();
    assert_eq!(e.read("k.bin"), want.expose_secret());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(e.path("k.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // JSON names the derivation key.
    let v = e.ks(&[&args[..], &["--json"]].concat()).ok().json();
    assert_eq!(v["key"], want_hex);
    assert_eq!(v["key_id"], e.primary("derive")["key_id"]);
    assert_eq!(
        (
            v["origin"].as_str(),
            v["epoch"].as_u64(),
            v["length"].as_u64()
        ),
        (Some("https://app.example"), Some(0), Some(32))
    );
    // Rotating the encryption key changes nothing; the epoch does; so
    // does rotating the derivation key, and the old one can be named.
    e.ks(&["keychain", "rotate"]).ok();
    assert_eq!(e.ks(&args).ok().text(), hex);
    let next = e
        .ks(&[
            "derive",
            "--origin",
            "https://app.example",
            "--instance",
            "web-1",
            "--epoch",
            "1",
        ])
        .ok()
        .text();
    assert_ne!(next, hex);
    let old_id = e.primary("derive")["key_id"].to_string();
    e.ks(&["keychain", "rotate", "--purpose", "derive"]).ok();
    assert_ne!(e.ks(&args).ok().text(), hex);
    assert_eq!(
        e.ks(&[&args[..], &["--key-id", &old_id]].concat())
            .ok()
            .text(),
        hex
    );
    // Errors: a length out of range, an unknown key, a terminal.
    e.ks(&[&args[..], &["--length", "0"]].concat()).fails(11);
    e.ks(&[&args[..], &["--length", "9000"]].concat()).fails(11);
    e.ks(&[&args[..], &["--key-id", "99"]].concat()).fails(13);
    let (code, shown) = on_terminal(&e, &args);
    assert_eq!(code, 2, "{shown}");
    assert!(
        shown.contains("refusing to write a secret key to a terminal"),
        "{shown}"
    );
    let (code, shown) = on_terminal(&e, &[&args[..], &["--force"]].concat());
    assert_eq!(code, 0);
    assert!(shown.contains(&want_hex[..16]) || shown.len() > 64);
}

#[test]
fn completions_for_each_shell() {
    let e = Env::age();
    let bash = e.ks(&["completions", "bash"]).ok().text();
    assert!(bash.contains("_keystrata()") && bash.contains("keychain") && bash.contains("--root"));
    // The script is valid bash.
    let f = e.write("ks.bash", bash.as_bytes());
    let mut c = std::process::Command::new("bash");
    c.arg("-n").arg(&f);
    run(&mut c, None).ok();
    let zsh = e.ks(&["completions", "zsh"]).ok().text();
    assert!(zsh.starts_with("#compdef keystrata"));
    let fish = e.ks(&["completions", "fish"]).ok().text();
    assert!(fish.contains("complete -c keystrata"));
    e.ks(&["completions", "tcsh"]).fails(2);
}

#[test]
fn man_pages() {
    let e = Env::age();
    let page = e.ks(&["man"]).ok().text();
    assert!(
        page.contains(".TH keystrata 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(page.contains("KEYSTRATA_ROOT") && page.contains(".SH \"EXIT STATUS\""));
    assert!(page.contains("a keystrata error of kind Authentication"));
    e.ks(&["man", "--dir", "man1"]).ok();
    let files = crate::common::entries(&e.path("man1"));
    for want in [
        "keystrata.1",
        "keystrata-keychain.1",
        "keystrata-keychain-migrate.1",
        "keystrata-seal.1",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} in {files:?}");
    }
    let top = String::from_utf8(e.read("man1/keystrata.1")).unwrap();
    assert_eq!(top, page, "the same page both ways");
    let enc = String::from_utf8(e.read("man1/keystrata-encrypt.1")).unwrap();
    assert!(enc.contains(".SH NOTES") && !enc.contains(".SH EXTRA"));
}
