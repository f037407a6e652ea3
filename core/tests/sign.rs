//! Signing keys in the keychain: rotation, signatures checked by OpenSSL
//! (the real `openssl` binary), persistence, disable/destroy, audit events.
#![cfg(feature = "aws-lc")]

use std::process::Command;
use std::sync::{Arc, Mutex};

use keystrata::{
    AgeRoot, Algorithm, ErrorKind, Event, EventKind, KeyStatus, Keychain, PublicKeyFormat, Purpose,
    SignatureFormat,
};
use sha2::{Digest, Sha256};

fn openssl() -> Command {
    let c = Command::new("openssl");
    if Command::new("openssl").arg("version").output().is_err() {
        panic!("openssl is missing: apt-get install -y openssl (scripts/setup.sh installs it)");
    }
    c
}

/// OpenSSL verifies `sig` over `msg` with the PEM public key.
fn openssl_verifies(alg: Algorithm, pem: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let (p, m, s) = (
        dir.path().join("pub.pem"),
        dir.path().join("msg"),
        dir.path().join("sig"),
    );
    std::fs::write(&p, pem).unwrap();
    std::fs::write(&m, msg).unwrap();
    std::fs::write(&s, sig).unwrap();
    let mut cmd = openssl();
    if alg == Algorithm::Ed25519 {
        cmd.args(["pkeyutl", "-verify", "-pubin", "-inkey"])
            .arg(&p)
            .arg("-rawin")
            .arg("-in")
            .arg(&m)
            .arg("-sigfile")
            .arg(&s);
    } else {
        cmd.args(["dgst", "-sha256", "-verify"])
            .arg(&p)
            .arg("-signature")
            .arg(&s)
            .arg(&m);
    }
    let out = cmd.output().unwrap();
    out.status.success()
}

#[test]
fn every_algorithm_signs_what_openssl_verifies() {
    let kc = Keychain::generate().unwrap();
    for alg in Algorithm::ALL {
        let info = kc.rotate_signing(alg).unwrap();
        assert_eq!(
            (info.purpose, info.algorithm, info.primary),
            (Purpose::Sign, Some(alg), true)
        );
        let msg = format!("release 1.2.3 signed with {alg}").into_bytes();
        let sig = kc.sign(&msg).unwrap();
        assert_eq!((sig.key_id, sig.algorithm), (info.key_id, alg));
        let pem = kc.public_key(info.key_id, PublicKeyFormat::Pem).unwrap();
        assert!(
            openssl_verifies(alg, &pem, &msg, &sig.bytes),
            "{alg}: openssl rejects our signature"
        );
        assert!(
            !openssl_verifies(alg, &pem, b"another message", &sig.bytes),
            "{alg}: openssl accepts a wrong message"
        );
        assert_eq!(kc.verify(&msg, &sig.bytes).unwrap().key_id, info.key_id);
        if alg.is_ecdsa() {
            // Raw r‖s verifies here and converts to what OpenSSL reads.
            let raw = kc.sign_as(&msg, SignatureFormat::Raw).unwrap();
            assert_eq!(raw.bytes.len(), 64);
            kc.verify(&msg, &raw.bytes).unwrap();
            // A digest signed as AWS KMS signs digests verifies as the message.
            let digest = Sha256::digest(&msg);
            let by_digest = kc.sign_digest(&digest, SignatureFormat::Der).unwrap();
            assert!(openssl_verifies(alg, &pem, &msg, &by_digest.bytes));
            kc.verify_digest(&digest, &sig.bytes).unwrap();
            assert_eq!(
                kc.sign_digest(&digest[..31], SignatureFormat::Der)
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidInput
            );
        } else {
            assert_eq!(
                kc.sign_digest(&[0; 32], SignatureFormat::Der)
                    .unwrap_err()
                    .kind(),
                ErrorKind::Unsupported
            );
        }
        // The public key in every format.
        let der = kc.public_key(info.key_id, PublicKeyFormat::Der).unwrap();
        let raw = kc.public_key(info.key_id, PublicKeyFormat::Raw).unwrap();
        assert!(der.ends_with(&raw));
        keystrata::sign::verify(alg, &raw, &msg, &sig.bytes).unwrap();
    }
}

#[test]
fn no_signing_key_until_rotate_signing() {
    let kc = Keychain::generate().unwrap();
    assert_eq!(kc.sign(b"m").unwrap_err().kind(), ErrorKind::UnknownKey);
    assert_eq!(
        kc.verify(b"m", &[0; 64]).unwrap_err().kind(),
        ErrorKind::UnknownKey
    );
    assert_eq!(
        kc.primary_for(Purpose::Sign).unwrap_err().kind(),
        ErrorKind::UnknownKey
    );
    assert_eq!(
        kc.add_key(Purpose::Sign).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // An encryption key is not a signing key.
    let enc = kc.primary().unwrap().key_id;
    assert_eq!(
        kc.public_key(enc, PublicKeyFormat::Pem).unwrap_err().kind(),
        ErrorKind::UnknownKey
    );
}

#[test]
fn rotation_keeps_old_signatures_and_disable_revokes_them() {
    let kc = Keychain::generate().unwrap();
    let v1 = kc.rotate_signing(Algorithm::EcdsaP256).unwrap();
    let old = kc.sign(b"doc").unwrap();
    let v2 = kc.rotate_signing(Algorithm::Ed25519).unwrap();
    assert_eq!(v2.version, 2);
    let new = kc.sign(b"doc").unwrap();
    assert_eq!(new.key_id, v2.key_id);
    assert_eq!(kc.verify(b"doc", &old.bytes).unwrap().key_id, v1.key_id);
    assert_eq!(kc.verify(b"doc", &new.bytes).unwrap().key_id, v2.key_id);
    // The primary cannot be disabled; an old key can, and then verifies nothing.
    assert_eq!(kc.disable(v2.key_id).unwrap_err().kind(), ErrorKind::Policy);
    kc.disable(v1.key_id).unwrap();
    assert_eq!(
        kc.verify(b"doc", &old.bytes).unwrap_err().kind(),
        ErrorKind::Authentication
    );
    assert_eq!(
        kc.verify_with(v1.key_id, b"doc", &old.bytes)
            .unwrap_err()
            .kind(),
        ErrorKind::KeyDisabled
    );
    // Its public key stays readable (to publish a revocation).
    kc.public_key(v1.key_id, PublicKeyFormat::Pem).unwrap();
    kc.enable(v1.key_id).unwrap();
    kc.verify(b"doc", &old.bytes).unwrap();
    kc.disable(v1.key_id).unwrap();
    kc.destroy(v1.key_id).unwrap();
    assert_eq!(
        kc.public_key(v1.key_id, PublicKeyFormat::Pem)
            .unwrap_err()
            .kind(),
        ErrorKind::KeyDestroyed
    );
    // Two-phase: add, then promote.
    let v3 = kc.add_signing_key(Algorithm::EcdsaSecp256k1).unwrap();
    assert!(!v3.primary);
    assert_eq!(kc.sign(b"x").unwrap().key_id, v2.key_id);
    kc.promote(v3.key_id).unwrap();
    assert_eq!(kc.sign(b"x").unwrap().key_id, v3.key_id);
}

#[test]
fn signing_keys_are_saved_and_loaded() {
    let root = AgeRoot::generate();
    let kc = Keychain::generate().unwrap();
    let info = kc.rotate_signing(Algorithm::EcdsaSecp256k1).unwrap();
    let sig = kc.sign(b"persisted").unwrap();
    let pem = kc.public_key(info.key_id, PublicKeyFormat::Pem).unwrap();
    let back = Keychain::load(&kc.save(&root).unwrap(), &root).unwrap();
    assert_eq!(back.keys().unwrap(), kc.keys().unwrap());
    assert_eq!(
        back.public_key(info.key_id, PublicKeyFormat::Pem).unwrap(),
        pem
    );
    back.verify(b"persisted", &sig.bytes).unwrap();
    let again = back.sign(b"persisted").unwrap();
    assert_eq!(again.key_id, info.key_id);
    kc.verify(b"persisted", &again.bytes).unwrap();
}

#[test]
fn bound_keychains_share_signing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.ks");
    let root = AgeRoot::generate();
    let a = Keychain::open(&path, &root).unwrap();
    let b = Keychain::open(&path, &root).unwrap();
    a.rotate_signing(Algorithm::Ed25519).unwrap();
    let sig = a.sign(b"fleet").unwrap();
    // b finds the new key when it reads the store.
    b.refresh().unwrap();
    assert_eq!(b.verify(b"fleet", &sig.bytes).unwrap().key_id, sig.key_id);
    assert_eq!(b.primary_for(Purpose::Sign).unwrap().key_id, sig.key_id);
}

#[test]
fn every_signature_and_failed_verification_is_audited() {
    let kc = Keychain::generate().unwrap();
    kc.rotate_signing(Algorithm::EcdsaP256).unwrap();
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let s2 = Arc::clone(&seen);
    kc.subscribe(move |e| s2.lock().unwrap().push(e.clone()))
        .unwrap();
    let sig = kc.sign(b"audited").unwrap();
    let digest: [u8; 32] = Sha256::digest(b"other").into();
    kc.sign_digest(&digest, SignatureFormat::Raw).unwrap();
    assert_eq!(
        kc.verify(b"tampered", &sig.bytes).unwrap_err().kind(),
        ErrorKind::Authentication
    );
    kc.verify(b"audited", &sig.bytes).unwrap();
    let seen = seen.lock().unwrap();
    let signed: Vec<&Event> = seen
        .iter()
        .filter(|e| e.kind == EventKind::Signed)
        .collect();
    assert_eq!(signed.len(), 2);
    assert_eq!(signed[0].key_id, Some(sig.key_id));
    assert_eq!(signed[0].algorithm, Some(Algorithm::EcdsaP256));
    assert_eq!(signed[0].digest, Some(Sha256::digest(b"audited").into()));
    assert_eq!(signed[1].digest, Some(digest));
    let failed: Vec<&Event> = seen
        .iter()
        .filter(|e| e.kind == EventKind::VerifyFailed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error, Some(ErrorKind::Authentication));
    assert_eq!(failed[0].digest, Some(Sha256::digest(b"tampered").into()));
    let c = kc.counters();
    assert_eq!((c.sign, c.verify_ok, c.verify_failed), (2, 1, 1));
}

#[test]
fn hostile_signing_keys_in_a_saved_keychain_are_format_errors() {
    let kc = Keychain::generate().unwrap();
    kc.rotate_signing(Algorithm::EcdsaP256).unwrap();
    let root = AgeRoot::generate();
    let json = String::from_utf8(age_decrypt(&kc.save(&root).unwrap(), &root)).unwrap();
    assert!(json.contains("\"algorithm\": \"ecdsa-p256\""));
    assert!(json.contains("\"sign\": "));
    let cases = [
        json.replace("\"algorithm\": \"ecdsa-p256\", ", ""),
        json.replace("ecdsa-p256", "ecdsa-p384"),
        json.replace(
            "\"purpose\": \"encrypt\", ",
            "\"purpose\": \"encrypt\", \"algorithm\": \"ed25519\", ",
        ),
    ];
    for (i, bad) in cases.iter().enumerate() {
        assert_ne!(bad, &json, "case {i} changed nothing");
        let saved = age_encrypt(bad.as_bytes(), &root);
        assert_eq!(
            Keychain::load(&saved, &root).unwrap_err().kind(),
            ErrorKind::Format,
            "case {i}"
        );
    }
    // A scalar that is not a valid P-256 key (all 0xff is above the order).
    let sign_key = json.split("\"purpose\": \"sign\"").nth(1).unwrap();
    let material = sign_key
        .split("\"material\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let bad = json.replace(material, "//////////////////////////////////////////8=");
    let saved = age_encrypt(bad.as_bytes(), &root);
    assert_eq!(
        Keychain::load(&saved, &root).unwrap_err().kind(),
        ErrorKind::Format
    );
}

fn age_decrypt(saved: &[u8], root: &AgeRoot) -> Vec<u8> {
    use keystrata::Root;
    root.unprotect(saved).unwrap().to_vec()
}

fn age_encrypt(json: &[u8], root: &AgeRoot) -> Vec<u8> {
    use keystrata::Root;
    root.protect(json).unwrap()
}

#[test]
fn statuses_of_signing_keys_show_in_keys() {
    let kc = Keychain::generate().unwrap();
    let a = kc.rotate_signing(Algorithm::Ed25519).unwrap();
    kc.rotate_signing(Algorithm::Ed25519).unwrap();
    kc.disable(a.key_id).unwrap();
    let keys = kc.keys().unwrap();
    let signing: Vec<_> = keys.iter().filter(|k| k.purpose == Purpose::Sign).collect();
    assert_eq!(signing.len(), 2);
    assert_eq!(signing[0].status, KeyStatus::Disabled);
    assert!(signing[1].primary && signing[1].algorithm == Some(Algorithm::Ed25519));
    assert!(keys
        .iter()
        .filter(|k| k.purpose != Purpose::Sign)
        .all(|k| k.algorithm.is_none()));
}

// ---------------------------------------------------------------------
// minisign: the real `minisign` binary both ways.
// ---------------------------------------------------------------------

fn minisign(args: &[&str], dir: &std::path::Path, stdin: Option<&str>) -> std::process::Output {
    use std::io::Write as _;
    let mut cmd = Command::new("minisign");
    cmd.args(args).current_dir(dir);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("minisign is missing: apt-get install -y minisign (scripts/setup.sh installs it)");
    if let Some(input) = stdin {
        // minisign reads stdin only when it needs a password: a closed pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// `minisign` run under `ulimit -v 65536` (see the caller).
fn minisign_limited(
    args: &[&str],
    dir: &std::path::Path,
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write as _;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("ulimit -v 65536 && exec minisign \"$@\"")
        .arg("minisign")
        .args(args)
        .current_dir(dir);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("sh");
    if let Some(input) = stdin {
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[test]
fn minisign_verifies_what_the_keychain_signs() {
    let dir = tempfile::tempdir().unwrap();
    let kc = Keychain::generate().unwrap();
    let info = kc.rotate_signing(Algorithm::Ed25519).unwrap();
    std::fs::write(dir.path().join("release.tar"), b"the release").unwrap();
    let sig = kc
        .sign_minisign(b"the release", "release 1.2.3 by keystrata")
        .unwrap();
    std::fs::write(dir.path().join("release.tar.minisig"), &sig).unwrap();
    std::fs::write(
        dir.path().join("k.pub"),
        kc.public_key(info.key_id, PublicKeyFormat::Minisign)
            .unwrap(),
    )
    .unwrap();
    let out = minisign(&["-Vm", "release.tar", "-p", "k.pub"], dir.path(), None);
    assert!(
        out.status.success(),
        "minisign -V: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("release 1.2.3 by keystrata"));
    // A changed file fails in minisign too.
    std::fs::write(dir.path().join("release.tar"), b"the releasf").unwrap();
    assert!(
        !minisign(&["-Vm", "release.tar", "-p", "k.pub"], dir.path(), None)
            .status
            .success()
    );
    // And the keychain verifies its own, finding the key by its key ID.
    assert_eq!(
        kc.verify_minisign(b"the release", &sig).unwrap().key_id,
        info.key_id
    );
    assert_eq!(
        kc.verify_minisign(b"the releasf", &sig).unwrap_err().kind(),
        ErrorKind::Authentication
    );
    let c = kc.counters();
    assert_eq!((c.sign, c.verify_ok, c.verify_failed), (1, 1, 1));
    // An ECDSA primary cannot make minisign signatures.
    kc.rotate_signing(Algorithm::EcdsaP256).unwrap();
    assert_eq!(
        kc.sign_minisign(b"x", "").unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        kc.sign_minisign(b"x", "two\nlines").unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    kc.promote(info.key_id).unwrap();
    assert_eq!(
        kc.sign_minisign(b"x", "two\nlines").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn minisign_secret_keys_import_with_their_key_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Without a password (-W), and with one read from stdin.
    assert!(
        minisign(&["-G", "-W", "-p", "plain.pub", "-s", "plain.key"], d, None)
            .status
            .success()
    );
    // Under a 64 MiB address-space limit minisign halves its scrypt limits
    // until they fit (32 MiB here): the same format as its 1 GiB default,
    // at a cost a debug-build test can afford three times.
    let out = minisign_limited(
        &["-G", "-p", "pw.pub", "-s", "pw.key"],
        d,
        Some("hunter2\nhunter2\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = AgeRoot::generate();
    for (name, password) in [("plain", None), ("pw", Some(&b"hunter2"[..]))] {
        let kc = Keychain::generate().unwrap();
        let text = std::fs::read_to_string(d.join(format!("{name}.key"))).unwrap();
        if password.is_some() {
            assert_eq!(
                kc.import_minisign_secret_key(&text, Some(b"wrong"))
                    .unwrap_err()
                    .kind(),
                ErrorKind::Authentication
            );
            assert_eq!(
                kc.import_minisign_secret_key(&text, None)
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidInput
            );
        }
        let info = kc.import_minisign_secret_key(&text, password).unwrap();
        assert!(info.primary && info.algorithm == Some(Algorithm::Ed25519));
        assert_eq!(
            kc.import_minisign_secret_key(&text, password)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        // Our export of the public key is the .pub minisign wrote (same key ID).
        let ours = String::from_utf8(
            kc.public_key(info.key_id, PublicKeyFormat::Minisign)
                .unwrap(),
        )
        .unwrap();
        let theirs = std::fs::read_to_string(d.join(format!("{name}.pub"))).unwrap();
        assert_eq!(ours.lines().nth(1), theirs.lines().nth(1), "{name}");
        // What the keychain signs verifies against minisign's own .pub ...
        std::fs::write(d.join("doc"), b"document").unwrap();
        std::fs::write(
            d.join("doc.minisig"),
            kc.sign_minisign(b"document", "imported").unwrap(),
        )
        .unwrap();
        let out = minisign(&["-Vm", "doc", "-p", &format!("{name}.pub")], d, None);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // ... and what minisign signs with the file verifies here, also after save/load.
        std::fs::remove_file(d.join("doc.minisig")).unwrap();
        let out = minisign(
            &[
                "-Sm",
                "doc",
                "-s",
                &format!("{name}.key"),
                "-t",
                "by minisign",
            ],
            d,
            Some("hunter2\n"),
        );
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sig = std::fs::read_to_string(d.join("doc.minisig")).unwrap();
        let back = Keychain::load(&kc.save(&root).unwrap(), &root).unwrap();
        assert_eq!(
            back.verify_minisign(b"document", &sig).unwrap().key_id,
            info.key_id
        );
        assert_eq!(
            back.public_key(info.key_id, PublicKeyFormat::Minisign)
                .unwrap(),
            ours.as_bytes()
        );
    }
}
