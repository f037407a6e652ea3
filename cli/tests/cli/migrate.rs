//! `keychain migrate`: age -> passphrase, to another location, in place,
//! and age -> PKCS#11 when the SoftHSM2 peer runs.

use crate::common::{peers_required, write_age_identity, Env};

#[test]
fn age_to_passphrase_in_place() {
    let mut e = Env::with_keychain();
    e.ks(&["keychain", "rotate", "--purpose", "stream"]).ok();
    let ct = e
        .ks_in(&["seal", "--aad", "m"], b"kept across roots")
        .ok()
        .stdout;
    let keys = e.keys();
    e.set_env("KS_CLI_MIGRATE_PASS", "a long and unguessable passphrase");
    let to = "passphrase:env:KS_CLI_MIGRATE_PASS";
    let v = e
        .ks(&["keychain", "migrate", "--to-root", to, "--json"])
        .ok()
        .json();
    assert_eq!(v["in_place"], true);
    assert_eq!(
        (v["from_provider"].as_str(), v["to_provider"].as_str()),
        (Some("age"), Some("age-scrypt"))
    );
    // Every key, as `show` listed them. (scrypt at 2^18 is slow in a debug
    // build: the migration and one unseal are all this test runs under
    // the passphrase.)
    assert_eq!(v["keys"].as_array().unwrap(), &keys);
    // The old root no longer opens it; the new one does, with the same keys.
    e.ks(&["keychain", "show"]).fails(12);
    e.root = to.to_owned();
    assert_eq!(
        e.ks_in(&["unseal", "--aad", "m"], &ct).ok().stdout,
        b"kept across roots"
    );
    // No plaintext keychain anywhere in the directory.
    for name in crate::common::entries(e.dir.path()) {
        let bytes = std::fs::read(e.path(&name)).unwrap_or_default();
        assert!(
            !bytes.windows(8).any(|w| w == b"material"),
            "{name} holds a keychain in the clear"
        );
    }
}

#[test]
fn to_another_location_leaves_the_old_one() {
    let e = Env::with_keychain();
    let old_bytes = e.read("keychain.age");
    let new_id = e.path("new-id.txt");
    write_age_identity(&new_id);
    let new_root = format!("age:{}", new_id.display());
    let dest = e.path("moved.age");
    let r = e
        .ks(&[
            "keychain",
            "migrate",
            "--to-root",
            &new_root,
            "--to-keychain",
            dest.to_str().unwrap(),
        ])
        .ok()
        .text();
    assert!(r.starts_with("migrated 2 keys from"), "{r}");
    assert_eq!(e.read("keychain.age"), old_bytes, "the source is untouched");
    let a = e.ks(&["keychain", "show", "--json"]).ok().json();
    let b = e
        .ks(&[
            "keychain",
            "show",
            "--json",
            "--keychain",
            dest.to_str().unwrap(),
            "--root",
            &new_root,
        ])
        .ok()
        .json();
    assert_eq!(a["keys"], b["keys"]);
    // The destination must not exist.
    e.ks(&[
        "keychain",
        "migrate",
        "--to-root",
        &new_root,
        "--to-keychain",
        dest.to_str().unwrap(),
    ])
    .fails(11)
    .says("exists already");
}

#[test]
fn refusals_change_nothing() {
    let e = Env::with_keychain();
    let before = e.read("keychain.age");
    // The old root must open it.
    let other = e.path("other.txt");
    write_age_identity(&other);
    e.ks(&[
        "keychain",
        "migrate",
        "--to-root",
        &e.root,
        "--root",
        &format!("age:{}", other.display()),
    ])
    .fails(12);
    // A root that can only save (recipients) cannot be checked by loading
    // back: refused before anything is replaced.
    let recipient = keystrata::AgeRoot::generate().recipients()[0].clone();
    e.ks(&[
        "keychain",
        "migrate",
        "--to-root",
        &format!("age-recipient:{recipient}"),
    ])
    .fails(11)
    .says("does not load under the new root");
    // A secret in the new root's URI; a missing option.
    e.ks(&[
        "keychain",
        "migrate",
        "--to-root",
        "aws-kms:alias/x?session-token=T",
    ])
    .fails(11);
    e.ks(&["keychain", "migrate"]).fails(2).says("--to-root");
    assert_eq!(e.read("keychain.age"), before);
    e.ks(&[
        "keychain",
        "migrate",
        "--to-root",
        &e.root,
        "--keychain",
        "nowhere.age",
    ])
    .fails(21)
    .says("no keychain at");
}

/// age -> PKCS#11 (SoftHSM2): with the peers of scripts/peers.sh
/// (`eval "$(bash scripts/peers.sh start)"`, as `make test` does).
#[test]
fn age_to_pkcs11_when_the_token_is_there() {
    let (Ok(module), Ok(token), Ok(_pin)) = (
        std::env::var("KS_TEST_PKCS11_MODULE"),
        std::env::var("KS_TEST_PKCS11_TOKEN"),
        std::env::var("KS_TEST_PKCS11_PIN"),
    ) else {
        assert!(
            !peers_required(),
            "KEYSTRATA_REQUIRE_PEERS=1 but the SoftHSM2 peer is not set up: eval \"$(bash scripts/peers.sh start)\""
        );
        eprintln!("skipped: no SoftHSM2 peer (KS_TEST_PKCS11_*)");
        return;
    };
    let e = Env::with_keychain();
    let ct = e.ks_in(&["seal"], b"into the token").ok().stdout;
    let label = format!(
        "ks-cli-{}-{}",
        std::process::id(),
        e.primary("encrypt")["key_id"]
    );
    let uri = format!(
        "pkcs11:token={};object={label}?module-path={module}&pin-source=env:KS_TEST_PKCS11_PIN&x-create=true",
        pct(&token)
    );
    let v = e
        .ks(&["keychain", "migrate", "--to-root", &uri, "--json"])
        .ok()
        .json();
    assert_eq!(v["to_provider"], "pkcs11");
    let mut e = e;
    e.root = uri;
    assert_eq!(e.ks_in(&["unseal"], &ct).ok().stdout, b"into the token");
    // And back to age, so keys never depend on one device.
    let back = e.path("back.txt");
    write_age_identity(&back);
    let age = format!("age:{}", back.display());
    e.ks(&["keychain", "migrate", "--to-root", &age]).ok();
    e.root = age;
    assert_eq!(e.ks_in(&["unseal"], &ct).ok().stdout, b"into the token");
}

/// Percent-encodes what a pkcs11: attribute value cannot hold as is.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
