//! `rewrap` and `rewrap --check`, over what the CLI seals and what the
//! library encrypts and wraps.

use std::os::unix::fs::PermissionsExt;

use keystrata::{KeyManager, Keychain};

use crate::common::Env;

/// The keychain as a library user sees it (unbound, read from the file).
fn library(e: &Env) -> Keychain {
    let root = keystrata::root::from_uri(&e.root).unwrap();
    Keychain::load_file(&e.keychain, &*root).unwrap()
}

#[test]
fn sealed_files_move_to_the_new_primary_in_place() {
    let e = Env::with_keychain();
    let old = e.primary("encrypt")["key_id"].as_u64().unwrap();
    for (name, secret) in [("a.sealed", "alpha"), ("b.sealed", "beta")] {
        e.ks_in(&["seal", "--aad", "app", "-o", name], secret.as_bytes())
            .ok();
    }
    std::fs::set_permissions(e.path("a.sealed"), std::fs::Permissions::from_mode(0o640)).unwrap();
    // Before rotating, everything is current.
    let v = e
        .ks(&[
            "rewrap", "--kind", "sealed", "--check", "a.sealed", "b.sealed", "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["all_current"], true);
    let new = e.ks(&["keychain", "rotate", "--json"]).ok().json()["key_id"]
        .as_u64()
        .unwrap();

    // --check: exit 3, each file's key.
    let r = e.ks(&[
        "rewrap", "--kind", "sealed", "--check", "a.sealed", "b.sealed", "--json",
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let v = r.json();
    assert_eq!(
        (v["all_current"].as_bool(), v["primary_key_id"].as_u64()),
        (Some(false), Some(new))
    );
    for f in v["files"].as_array().unwrap() {
        assert_eq!(f["key_id"], old);
        assert_eq!(
            (
                f["current"].as_bool(),
                f["status"].as_str(),
                f["key_version"].as_u64()
            ),
            (Some(false), Some("enabled"), Some(1))
        );
    }
    let text = e.ks(&["rewrap", "--kind", "sealed", "--check", "a.sealed"]);
    assert_eq!(text.code, 3);
    assert_eq!(
        text.text(),
        format!("a.sealed\tkey {old} (version 1, enabled)\tnot current\n")
    );

    // Rewrap in place: new key, same secret, same permissions.
    let before_b = e.read("b.sealed");
    let v = e
        .ks(&[
            "rewrap", "--kind", "sealed", "--aad", "app", "a.sealed", "b.sealed", "--json",
        ])
        .ok()
        .json();
    for f in v["files"].as_array().unwrap() {
        assert_eq!(
            (f["from_key_id"].as_u64(), f["to_key_id"].as_u64()),
            (Some(old), Some(new))
        );
        assert_eq!(f["rewrapped"], true);
        assert_eq!(f["output"], f["file"]);
    }
    assert_ne!(e.read("b.sealed"), before_b);
    let mode = std::fs::metadata(e.path("a.sealed"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    e.ks(&[
        "rewrap", "--kind", "sealed", "--check", "a.sealed", "b.sealed",
    ])
    .ok();
    // The old key can go: everything still opens.
    e.ks(&["keychain", "disable", &old.to_string()]).ok();
    assert_eq!(
        e.ks(&["unseal", "a.sealed", "--aad", "app"]).ok().stdout,
        b"alpha"
    );
    assert_eq!(
        e.ks(&["unseal", "b.sealed", "--aad", "app"]).ok().stdout,
        b"beta"
    );
    // Already current: left alone, byte for byte.
    let now = e.read("a.sealed");
    let v = e
        .ks(&[
            "rewrap", "--kind", "sealed", "--aad", "app", "a.sealed", "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["files"][0]["rewrapped"], false);
    assert_eq!(e.read("a.sealed"), now);
    // stdin to stdout, and to another file.
    e.ks(&["keychain", "enable", &old.to_string()]).ok();
    e.ks(&["keychain", "promote", &old.to_string()]).ok();
    let moved = e
        .ks_in(&["rewrap", "--kind", "sealed", "--aad", "app", "-"], &now)
        .ok()
        .stdout;
    assert_eq!(keystrata::sealed_key_id(&moved).unwrap() as u64, old);
    e.ks(&[
        "rewrap", "--kind", "sealed", "--aad", "app", "a.sealed", "-o", "c.sealed",
    ])
    .ok();
    assert_eq!(e.read("a.sealed"), now, "-o leaves the input");
    assert_eq!(
        e.ks(&["unseal", "c.sealed", "--aad", "app"]).ok().stdout,
        b"alpha"
    );
}

#[test]
fn sealed_errors_leave_files_alone() {
    let e = Env::with_keychain();
    e.ks_in(&["seal", "--aad", "right", "-o", "s"], b"x").ok();
    e.ks(&["keychain", "rotate"]).ok();
    let before = e.read("s");
    e.ks(&["rewrap", "--kind", "sealed", "--aad", "wrong", "s"])
        .fails(12);
    assert_eq!(e.read("s"), before);
    e.write("junk", b"junk");
    e.ks(&["rewrap", "--kind", "sealed", "junk"])
        .fails(20)
        .says("junk");
    e.ks(&["rewrap", "--kind", "sealed", "--check", "missing"])
        .fails(21);
    e.ks(&["rewrap", "--kind", "sealed", "s", "junk", "-o", "out"])
        .fails(2)
        .says("one input");
    e.ks(&["rewrap", "--kind", "sealed", "--check", "s", "-o", "out"])
        .fails(2);
    e.ks(&["rewrap", "s"]).fails(2).says("--kind");
    // A key the keychain does not have.
    let mut foreign = before.clone();
    foreign[1..5].copy_from_slice(&[0x7f, 0, 0, 9]);
    e.write("foreign", &foreign);
    let r = e.ks(&["rewrap", "--kind", "sealed", "--check", "foreign"]);
    assert_eq!(r.code, 3);
    assert!(r.text().contains("not in this keychain"), "{}", r.text());
    e.ks(&["rewrap", "--kind", "sealed", "--aad", "right", "foreign"])
        .fails(13);
    assert_eq!(e.read("s"), before);
}

#[test]
fn encrypted_blobs_keep_their_payload() {
    let e = Env::with_keychain();
    let lib = library(&e);
    let old = lib.primary().unwrap().key_id;
    let blob = lib.encrypt(b"a large document", b"doc-17").unwrap();
    e.write("doc.enc", &blob);
    let new = e.ks(&["keychain", "rotate", "--json"]).ok().json()["key_id"]
        .as_u64()
        .unwrap() as u32;
    let r = e.ks(&[
        "rewrap",
        "--kind",
        "encrypted",
        "--check",
        "doc.enc",
        "--json",
    ]);
    assert_eq!(
        (r.code, r.json()["files"][0]["key_id"].as_u64()),
        (3, Some(old as u64))
    );
    // No aad needed: only the data key moves.
    e.ks(&["rewrap", "--kind", "encrypted", "doc.enc"]).ok();
    let after = e.read("doc.enc");
    assert_eq!(keystrata::encrypted_key_id(&after).unwrap(), new);
    assert_eq!(after.len(), blob.len());
    assert_eq!(
        after[after.len() - 16 - 16..],
        blob[blob.len() - 16 - 16..],
        "payload copied"
    );
    let lib = library(&e);
    assert_eq!(lib.decrypt(&after, b"doc-17").unwrap(), b"a large document");
    e.ks(&["rewrap", "--kind", "encrypted", "--check", "doc.enc"])
        .ok();
    // A sealed file is not an encrypted blob.
    e.ks_in(&["seal", "-o", "s"], b"x").ok();
    e.ks(&["rewrap", "--kind", "encrypted", "s"]).fails(20);
}

#[test]
fn envelopes_in_both_json_forms() {
    let e = Env::with_keychain();
    let lib = library(&e);
    let dek = [0x42u8; 32];
    let env = lib.wrap_key(&dek, b"bucket/object").unwrap();
    let old = env.key_id.clone();
    // The object-metadata form, with the object's other metadata.
    let mut meta: serde_json::Map<String, serde_json::Value> = env
        .to_metadata()
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    meta.insert("x-amz-meta-owner".into(), "alice".into());
    e.write("obj.json", serde_json::to_string(&meta).unwrap().as_bytes());
    // The fields form, base64 and hex.
    let fields = serde_json::json!({
        "key_id": env.key_id, "key_version": env.key_version, "provider": env.provider,
        "ciphertext": base64_of(&env.ciphertext), "note": "kept",
    });
    e.write("env.json", fields.to_string().as_bytes());
    let hexed = serde_json::json!({
        "key_id": env.key_id, "key_version": env.key_version, "provider": env.provider,
        "ciphertext_hex": env.ciphertext.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    });
    e.write("hex.json", hexed.to_string().as_bytes());

    let new = e.ks(&["keychain", "rotate", "--json"]).ok().json()["key_id"].to_string();
    let r = e.ks(&[
        "rewrap", "--kind", "envelope", "--check", "obj.json", "env.json", "hex.json",
    ]);
    assert_eq!(r.code, 3);
    assert_eq!(r.text().matches("not current").count(), 3);
    e.ks(&[
        "rewrap",
        "--kind",
        "envelope",
        "--context",
        "wrong",
        "obj.json",
    ])
    .fails(12);
    e.ks(&[
        "rewrap",
        "--kind",
        "envelope",
        "--context",
        "bucket/object",
        "obj.json",
        "env.json",
        "hex.json",
    ])
    .ok();
    e.ks(&[
        "rewrap", "--kind", "envelope", "--check", "obj.json", "env.json", "hex.json",
    ])
    .ok();

    let lib = library(&e);
    let m: serde_json::Value = serde_json::from_slice(&e.read("obj.json")).unwrap();
    assert_eq!(m["x-amz-meta-owner"], "alice");
    assert_eq!(m["x-amz-meta-encryption-kms-id"], new);
    let back = keystrata::Envelope::from_metadata(
        m.as_object()
            .unwrap()
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))),
    )
    .unwrap();
    assert_eq!(
        lib.unwrap_key(&back, b"bucket/object")
            .unwrap()
            .expose_secret(),
        &dek
    );
    let f: serde_json::Value = serde_json::from_slice(&e.read("env.json")).unwrap();
    assert_eq!(f["key_id"], new);
    assert_eq!(f["note"], "kept");
    assert_ne!(f["key_id"], serde_json::json!(old));
    let h: serde_json::Value = serde_json::from_slice(&e.read("hex.json")).unwrap();
    assert!(h["ciphertext_hex"].is_string() && h.get("ciphertext").is_none());
    // Not a keychain's envelope; not an envelope.
    let mut other = fields.clone();
    other["provider"] = "aws-kms".into();
    e.write("other.json", other.to_string().as_bytes());
    e.ks(&["rewrap", "--kind", "envelope", "other.json"])
        .fails(17)
        .says("aws-kms");
    e.write("bad.json", b"[1, 2]");
    e.ks(&["rewrap", "--kind", "envelope", "bad.json"])
        .fails(20);
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn base64_files_stay_base64() {
    let e = Env::with_keychain();
    let text = e
        .ks_in(&["seal", "--base64", "--aad", "b"], b"token")
        .ok()
        .stdout;
    e.write("t.b64", &text);
    e.ks(&["keychain", "rotate"]).ok();
    let r = e.ks(&["rewrap", "--kind", "sealed", "--base64", "--check", "t.b64"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    e.ks(&[
        "rewrap", "--kind", "sealed", "--base64", "--aad", "b", "t.b64",
    ])
    .ok();
    let after = e.read("t.b64");
    assert!(after.is_ascii() && after.ends_with(b"\n") && after != text);
    e.ks(&["rewrap", "--kind", "sealed", "--base64", "--check", "t.b64"])
        .ok();
    assert_eq!(
        e.ks(&["unseal", "--base64", "--aad", "b", "t.b64"])
            .ok()
            .stdout,
        b"token"
    );
    // Without --base64 the text is not a ciphertext; envelopes are JSON.
    e.ks(&["rewrap", "--kind", "sealed", "--check", "t.b64"])
        .fails(20);
    e.ks(&["rewrap", "--kind", "envelope", "--base64", "t.b64"])
        .fails(2);
}
