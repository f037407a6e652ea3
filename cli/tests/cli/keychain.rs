//! `keychain new|show|rotate|add|promote|disable|enable|destroy`.

use crate::common::{Env, Run};

#[test]
fn new_creates_and_show_lists_keys_and_policy() {
    let e = Env::age();
    let r = e
        .ks(&[
            "keychain",
            "new",
            "--json",
            "--max-encryptions",
            "1000",
            "--usage-block",
            "10",
        ])
        .ok();
    let v = r.json();
    assert_eq!(v["created"], true);
    assert_eq!(v["location"], e.keychain.display().to_string());
    assert_eq!(v["policy"]["max_encryptions_per_key"], 1000);
    assert_eq!(v["policy"]["usage_block"], 10);
    assert!(v["policy"]["max_key_age_secs"].is_null());
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for (k, purpose) in keys.iter().zip(["encrypt", "derive"]) {
        assert_eq!(k["purpose"], purpose);
        assert_eq!(k["status"], "enabled");
        assert_eq!(k["primary"], true);
        assert_eq!(k["version"], 1);
        assert_eq!(k["usage"], 0);
        assert!(k["key_id"].as_u64().unwrap() >= 1);
        assert!(k["created_at"].as_u64().unwrap() > 1_700_000_000);
        assert!(k["algorithm"].is_null() && k["stream_format"].is_null());
    }
    // The file is an age file under the identity, 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&e.keychain).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(e.read("keychain.age").starts_with(b"age-encryption.org/v1"));

    // show: the same keys and policy, and never material.
    let shown = e.ks(&["keychain", "show", "--json"]).ok();
    let s = shown.json();
    assert_eq!(s["keys"], v["keys"]);
    assert_eq!(s["policy"], v["policy"]);
    assert!(s.get("created").is_none());
    assert!(!shown.text().contains("material"));

    let text = e.ks(&["keychain", "show"]).ok().text();
    assert!(text.contains("KEY_ID") && text.contains("encrypt") && text.contains("derive"));
    assert!(text.contains("at most 1000 encryptions per key"), "{text}");
    for k in keys {
        assert!(text.contains(&k["key_id"].to_string()));
    }
}

#[test]
fn new_refuses_an_existing_location() {
    let e = Env::with_keychain();
    let before = e.read("keychain.age");
    let r = e.ks(&["keychain", "new"]).fails(11).says("exists already");
    assert!(
        r.stderr.starts_with("keystrata: error: InvalidInput:"),
        "{}",
        r.stderr
    );
    assert_eq!(
        e.read("keychain.age"),
        before,
        "the keychain was not touched"
    );
    // Any file at the location counts.
    let mut other = Env::age();
    other.keychain = other.write("notes.txt", b"not a keychain");
    other.ks(&["keychain", "new"]).fails(11);
    assert_eq!(other.read("notes.txt"), b"not a keychain");
}

#[test]
fn rotate_and_add_every_purpose() {
    let e = Env::with_keychain();
    let old = e.primary("encrypt");
    let k = e.ks(&["keychain", "rotate", "--json"]).ok().json();
    assert_eq!(
        (k["purpose"].as_str(), k["primary"].as_bool()),
        (Some("encrypt"), Some(true))
    );
    assert_eq!(k["version"], 2);
    assert_ne!(k["key_id"], old["key_id"]);
    assert_eq!(e.primary("encrypt")["key_id"], k["key_id"]);

    let d = e
        .ks(&["keychain", "rotate", "--purpose", "derive", "--json"])
        .ok()
        .json();
    assert_eq!(
        (d["purpose"].as_str(), d["version"].as_u64()),
        (Some("derive"), Some(2))
    );

    for (alg, args) in [
        ("ed25519", vec![]),
        ("ecdsa-p256", vec!["--algorithm", "ecdsa-p256"]),
        ("ecdsa-secp256k1", vec!["--algorithm", "ecdsa-secp256k1"]),
    ] {
        let mut a = vec!["keychain", "rotate", "--purpose", "sign", "--json"];
        a.extend(args);
        let s = e.ks(&a).ok().json();
        assert_eq!(
            (s["purpose"].as_str(), s["algorithm"].as_str()),
            (Some("sign"), Some(alg))
        );
        assert_eq!(s["primary"], true);
    }
    let st = e
        .ks(&[
            "keychain",
            "rotate",
            "--purpose",
            "stream",
            "--format",
            "4kb",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(st["stream_format"], "aes256-gcm-hkdf-4kb");

    // add: enabled, not primary; promote makes it primary.
    let added = e
        .ks(&["keychain", "add", "--purpose", "stream", "--json"])
        .ok()
        .json();
    assert_eq!(added["primary"], false);
    assert_eq!(added["stream_format"], "aes256-gcm-hkdf-1mb");
    let id = added["key_id"].to_string();
    let p = e.ks(&["keychain", "promote", &id, "--json"]).ok().json();
    assert_eq!(
        (p["key_id"].clone(), p["primary"].as_bool()),
        (added["key_id"].clone(), Some(true))
    );
    let t = e.ks(&["keychain", "promote", &id]).ok().text();
    assert!(
        t.starts_with(&format!(
            "promoted: key {id} (stream version 2, enabled, primary)"
        )),
        "{t}"
    );
    let sk = e
        .ks(&[
            "keychain",
            "add",
            "--purpose",
            "sign",
            "--algorithm",
            "ecdsa-p256",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        (sk["algorithm"].as_str(), sk["primary"].as_bool()),
        (Some("ecdsa-p256"), Some(false))
    );
    let ek = e.ks(&["keychain", "add", "--json"]).ok().json();
    assert_eq!(
        (ek["purpose"].as_str(), ek["primary"].as_bool()),
        (Some("encrypt"), Some(false))
    );

    assert_eq!(e.keys().len(), 2 + 1 + 1 + 3 + 1 + 1 + 1 + 1);
    // Options that do not go with the purpose are usage errors.
    e.ks(&["keychain", "rotate", "--algorithm", "ed25519"])
        .fails(2)
        .says("--purpose sign");
    e.ks(&["keychain", "add", "--format", "4kb", "--purpose", "sign"])
        .fails(2)
        .says("--purpose stream");
    e.ks(&["keychain", "rotate", "--purpose", "nonsense"])
        .fails(2);
}

#[test]
fn disable_enable_destroy_and_their_errors() {
    let e = Env::with_keychain();
    let old = e.primary("encrypt")["key_id"].to_string();
    let secret = e.write("secret.txt", b"db password");
    let ct = e
        .ks(&["seal", secret.to_str().unwrap(), "-o", "old.sealed"])
        .ok();
    assert!(ct.stdout.is_empty());
    e.ks(&["keychain", "rotate"]).ok();

    let d = e.ks(&["keychain", "disable", &old, "--json"]).ok().json();
    assert_eq!(d["status"], "disabled");
    e.ks(&["unseal", "old.sealed"])
        .fails(14)
        .says("KeyDisabled");
    let en = e.ks(&["keychain", "enable", &old]).ok().text();
    assert!(en.starts_with(&format!("enabled: key {old}")), "{en}");
    assert_eq!(e.ks(&["unseal", "old.sealed"]).ok().stdout, b"db password");

    // destroy needs --yes; without it nothing changes.
    e.ks(&["keychain", "destroy", &old]).fails(2).says("--yes");
    assert_eq!(e.ks(&["unseal", "old.sealed"]).ok().stdout, b"db password");
    let x = e
        .ks(&["keychain", "destroy", &old, "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(x["status"], "destroyed");
    e.ks(&["unseal", "old.sealed"])
        .fails(15)
        .says("KeyDestroyed");
    // A destroyed key stays destroyed.
    e.ks(&["keychain", "enable", &old]).fails(16).says("Policy");

    // The primary cannot be disabled or destroyed.
    let primary = e.primary("encrypt")["key_id"].to_string();
    e.ks(&["keychain", "disable", &primary])
        .fails(16)
        .says("promote another key");
    e.ks(&["keychain", "destroy", &primary, "--yes"]).fails(16);
    // Unknown keys, bad key IDs.
    e.ks(&["keychain", "promote", "12345"])
        .fails(13)
        .says("UnknownKey");
    e.ks(&["keychain", "disable", "12345"]).fails(13);
    e.ks(&["keychain", "promote", "not-a-number"]).fails(2);
}

#[test]
fn changes_are_stored_and_seen_by_the_next_run() {
    let e = Env::with_keychain();
    let before = e.read("keychain.age");
    let k = e.ks(&["keychain", "rotate", "--json"]).ok().json();
    assert_ne!(e.read("keychain.age"), before, "rotate wrote the keychain");
    // A fresh process sees it, and seals under it.
    let r: Run = e.ks_in(&["seal", "--json"], b"x").ok();
    assert_eq!(r.json()["key_id"], k["key_id"]);
    // Usage counts are reserved in the store by the sealing process.
    let usage = e.primary("encrypt")["usage"].as_u64().unwrap();
    assert!(usage >= 1, "usage {usage}");
}
