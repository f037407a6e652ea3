//! `sign`, `verify` and `pubkey`, with the real `minisign` and OpenSSL's
//! encodings.

use std::process::Command;

use crate::common::{on_terminal, peers_required, run, Env};

/// `minisign`, or `None` when it is not installed and the peers are not
/// required (under KEYSTRATA_REQUIRE_PEERS=1 its absence fails).
fn minisign() -> Option<Command> {
    match Command::new("minisign").arg("-v").output() {
        Ok(_) => Some(Command::new("minisign")),
        Err(e) => {
            assert!(
                !peers_required(),
                "minisign is missing ({e}): apt-get install -y minisign (scripts/setup.sh installs it)"
            );
            eprintln!("skipped: minisign is not installed");
            None
        }
    }
}

#[test]
fn minisign_verifies_sign_minisign() {
    let e = Env::full();
    e.write("release.tar", b"the release bytes");
    let v = e
        .ks(&[
            "sign",
            "--minisign",
            "release.tar",
            "-t",
            "release 1.2.3",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["format"], "minisign");
    assert_eq!(v["output"], "release.tar.minisig");
    assert_eq!(v["key_id"], e.primary("sign")["key_id"]);
    e.ks(&["pubkey", "--format", "minisign", "-o", "k.pub"])
        .ok();
    let sig = String::from_utf8(e.read("release.tar.minisig")).unwrap();
    assert!(sig.contains("trusted comment: release 1.2.3"), "{sig}");

    if let Some(mut m) = minisign() {
        m.args(["-Vm", "release.tar", "-p", "k.pub"])
            .current_dir(e.dir.path());
        let r = run(&mut m, None);
        assert_eq!(r.code, 0, "minisign -V: {} {}", r.text(), r.stderr);
        assert!(r.text().contains("release 1.2.3"));
        // And refuses a changed file.
        e.write("release.tar", b"the release bytez");
        let mut m = Command::new("minisign");
        m.args(["-Vm", "release.tar", "-p", "k.pub"])
            .current_dir(e.dir.path());
        assert_ne!(run(&mut m, None).code, 0);
        e.write("release.tar", b"the release bytes");
    }

    // keystrata verifies it too: with the keychain, the .pub, a trust file.
    let out = e.ks(&["verify", "release.tar"]).ok().text();
    assert!(
        out.contains("signature verified") && out.contains("release 1.2.3"),
        "{out}"
    );
    let v = e
        .ks(&["verify", "release.tar", "--pubkey", "k.pub", "--json"])
        .ok()
        .json();
    assert_eq!(
        (v["verified"].as_bool(), v["format"].as_str()),
        (Some(true), Some("minisign"))
    );
    assert_eq!(v["trusted_comment"], "release 1.2.3");
    let pub_line = String::from_utf8(e.read("k.pub"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    e.write(
        "KEYS.txt",
        format!("# keystrata trusted keys v1\nalice community active minisign {pub_line}\n")
            .as_bytes(),
    );
    let v = e
        .ks(&[
            "verify",
            "release.tar",
            "--trusted-keys",
            "KEYS.txt",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        (v["name"].as_str(), v["kind"].as_str()),
        (Some("alice"), Some("community"))
    );
    // The default trusted comment is minisign's own shape.
    e.ks(&["sign", "--minisign", "release.tar", "-o", "d.minisig"])
        .ok();
    let d = String::from_utf8(e.read("d.minisig")).unwrap();
    assert!(
        d.contains("trusted comment: timestamp:") && d.contains("\tfile:release.tar\thashed"),
        "{d}"
    );
    // Tampered data fails in every mode.
    e.write("release.tar", b"changed");
    e.ks(&["verify", "release.tar"]).fails(12);
    e.ks(&["verify", "release.tar", "--pubkey", "k.pub"])
        .fails(12);
    e.ks(&["verify", "release.tar", "--trusted-keys", "KEYS.txt"])
        .fails(12);
}

#[test]
fn keystrata_verifies_minisign_signatures() {
    let Some(mut m) = minisign() else { return };
    let e = Env::age();
    m.args(["-G", "-W", "-p", "m.pub", "-s", "m.key"])
        .current_dir(e.dir.path());
    let r = run(&mut m, None);
    assert_eq!(r.code, 0, "minisign -G: {}", r.stderr);
    e.write("doc", b"signed by minisign itself");
    let mut m = Command::new("minisign");
    m.args(["-S", "-s", "m.key", "-m", "doc", "-t", "from minisign"])
        .current_dir(e.dir.path());
    assert_eq!(run(&mut m, None).code, 0);
    // No keychain needed with --pubkey.
    let v = e
        .ks(&["verify", "doc", "--pubkey", "m.pub", "--json"])
        .ok()
        .json();
    assert_eq!(v["trusted_comment"], "from minisign");
    e.write("doc", b"signed by minisign itselF");
    e.ks(&["verify", "doc", "--pubkey", "m.pub"]).fails(12);
}

#[test]
fn der_and_raw_signatures_with_every_public_key_encoding() {
    let e = Env::with_keychain();
    e.write("msg", b"official document");
    for alg in ["ed25519", "ecdsa-p256", "ecdsa-secp256k1"] {
        e.ks(&[
            "keychain",
            "rotate",
            "--purpose",
            "sign",
            "--algorithm",
            alg,
        ])
        .ok();
        let formats: &[&str] = if alg == "ed25519" {
            &["der"]
        } else {
            &["der", "raw"]
        };
        for fmt in formats {
            let v = e
                .ks(&["sign", "msg", "--format", fmt, "-o", "msg.sig", "--json"])
                .ok()
                .json();
            assert_eq!(v["algorithm"], alg);
            let sig = e.read("msg.sig");
            match (alg, *fmt) {
                ("ed25519", _) => assert_eq!((sig.len(), v["format"].as_str()), (64, Some("raw"))),
                (_, "raw") => assert_eq!(sig.len(), 64),
                _ => assert_eq!(sig[0], 0x30, "DER"),
            }
            // The keychain, with and without naming the key.
            e.ks(&["verify", "msg", "-x", "msg.sig"]).ok();
            let id = v["key_id"].to_string();
            let w = e
                .ks(&["verify", "msg", "-x", "msg.sig", "--key-id", &id, "--json"])
                .ok()
                .json();
            assert_eq!(w["key_id"], v["key_id"]);
            // Each public key encoding, without the keychain.
            for pk in ["pem", "der", "raw"] {
                let file = format!("k.{pk}");
                e.ks(&["pubkey", &id, "--format", pk, "-o", &file]).ok();
                let w = e
                    .ks(&[
                        "verify", "msg", "-x", "msg.sig", "--pubkey", &file, "--json",
                    ])
                    .ok()
                    .json();
                assert_eq!(w["algorithm"], alg, "{pk}");
            }
            e.ks(&["verify", "missing", "-x", "msg.sig", "--pubkey", "k.pem"])
                .fails(21);
            e.write("other", b"official documenT");
            e.ks(&["verify", "other", "-x", "msg.sig", "--pubkey", "k.pem"])
                .fails(12);
            e.ks(&["verify", "other", "-x", "msg.sig"])
                .fails(12)
                .says("signature did not verify");
        }
    }
    // base64 signatures, stdout JSON.
    let b = e.ks(&["sign", "msg", "--base64", "-o", "msg.b64"]).ok();
    assert!(b.stdout.is_empty());
    e.ks(&["verify", "msg", "-x", "msg.b64", "--base64"]).ok();
    let v = e.ks(&["sign", "msg", "--json"]).ok().json();
    assert!(v["signature"].as_str().unwrap().len() > 80);
    // The data from stdin needs a named signature.
    e.ks_in(&["verify"], b"official document")
        .fails(2)
        .says("--signature");
    e.ks_in(
        &["verify", "-x", "msg.b64", "--base64"],
        b"official document",
    )
    .ok();
}

#[test]
fn trust_files_with_official_keys() {
    let e = Env::with_keychain();
    e.ks(&[
        "keychain",
        "rotate",
        "--purpose",
        "sign",
        "--algorithm",
        "ecdsa-p256",
    ])
    .ok();
    let k = e.ks(&["pubkey", "--format", "der", "--json"]).ok().json();
    assert_eq!(k["algorithm"], "ecdsa-p256");
    let der64 = k["public_key"].as_str().unwrap().to_owned();
    e.write(
        "KEYS.txt",
        format!("release-2026 official active ecdsa-p256 {der64}\n").as_bytes(),
    );
    e.write("doc", b"release");
    e.ks(&["sign", "doc", "-o", "doc.sig"]).ok();
    let v = e
        .ks(&[
            "verify",
            "doc",
            "-x",
            "doc.sig",
            "--trusted-keys",
            "KEYS.txt",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        (v["name"].as_str(), v["kind"].as_str()),
        (Some("release-2026"), Some("official"))
    );
    e.write(
        "KEYS.txt",
        format!("release-2026 official revoked ecdsa-p256 {der64}\n").as_bytes(),
    );
    e.ks(&[
        "verify",
        "doc",
        "-x",
        "doc.sig",
        "--trusted-keys",
        "KEYS.txt",
    ])
    .fails(14)
    .says("revoked");
    e.write("KEYS.txt", b"garbage line\n");
    e.ks(&[
        "verify",
        "doc",
        "-x",
        "doc.sig",
        "--trusted-keys",
        "KEYS.txt",
    ])
    .fails(20);
}

#[test]
fn pubkey_formats_and_errors() {
    let e = Env::with_keychain();
    // No signing key yet.
    e.ks(&["pubkey"]).fails(13).says("--purpose sign");
    e.ks_in(&["sign"], b"x").fails(13);
    let k = e
        .ks(&["keychain", "rotate", "--purpose", "sign", "--json"])
        .ok()
        .json();
    let pem = e.ks(&["pubkey"]).ok().text();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    let v = e
        .ks(&["pubkey", "--format", "minisign", "--json"])
        .ok()
        .json();
    assert_eq!(v["key_id"], k["key_id"]);
    assert!(v["public_key"]
        .as_str()
        .unwrap()
        .starts_with("untrusted comment: minisign public key "));
    let raw = e.ks(&["pubkey", "--format", "raw", "--json"]).ok().json();
    assert_eq!(
        raw["public_key"].as_str().unwrap().len(),
        44,
        "32 bytes in base64"
    );
    // Binary encodings are not written to a terminal.
    let (code, shown) = on_terminal(&e, &["pubkey", "--format", "der"]);
    assert_eq!(code, 2, "{shown}");
    // An ECDSA key has no minisign form; a key that is not a signing key
    // has no public key; a minisign signature needs an Ed25519 primary.
    e.ks(&[
        "keychain",
        "rotate",
        "--purpose",
        "sign",
        "--algorithm",
        "ecdsa-p256",
    ])
    .ok();
    e.ks(&["pubkey", "--format", "minisign"])
        .fails(17)
        .says("Unsupported");
    e.ks_in(&["sign", "--minisign"], b"x").fails(17);
    let enc = e.primary("encrypt")["key_id"].to_string();
    e.ks(&["pubkey", &enc]).fails(13);
    e.ks(&["pubkey", "4242"]).fails(13);
    // A disabled key's signatures stop verifying with the keychain.
    e.ks(&["keychain", "rotate", "--purpose", "sign"]).ok();
    e.write("m", b"m");
    e.ks(&["sign", "m", "-o", "m.sig"]).ok();
    let signer = e.primary("sign")["key_id"].to_string();
    e.ks(&["verify", "m", "-x", "m.sig"]).ok();
    e.ks(&["keychain", "rotate", "--purpose", "sign"]).ok();
    e.ks(&["keychain", "disable", &signer]).ok();
    e.ks(&["verify", "m", "-x", "m.sig"]).fails(12);
    e.ks(&["verify", "m", "-x", "m.sig", "--key-id", &signer])
        .fails(14);
    // A public key file that is none.
    e.write("junk.pub", b"junk");
    e.ks(&["verify", "m", "-x", "m.sig", "--pubkey", "junk.pub"])
        .fails(20);
}
