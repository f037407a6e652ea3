//! The Signer conformance suite: every signer (the keychain's signing key,
//! a PKCS#11 token's key, an AWS KMS key) passes the same checks.
//! `signer_suite!(make)` expands to one #[test] per check, where `make()`
//! returns a fresh `Box<dyn Signer>` over a new key.
#![allow(dead_code)]

use std::process::Command;

use keystrata::sign::{verify, verify_digest, Signer};
use keystrata::{Algorithm, ErrorKind, PublicKeyFormat};
use sha2::{Digest, Sha256};

/// Signatures verify with the raw public key, and not over another message.
pub fn signs_what_verifies(s: &dyn Signer) {
    let alg = s.algorithm().unwrap();
    let raw = s.public_key(PublicKeyFormat::Raw).unwrap();
    for msg in [&b""[..], b"release 1.2.3", &[0xa5; 5000][..]] {
        let sig = s.sign(msg).unwrap();
        verify(alg, &raw, msg, &sig).unwrap();
        assert_eq!(
            verify(alg, &raw, b"other", &sig).unwrap_err().kind(),
            ErrorKind::Authentication
        );
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(verify(alg, &raw, msg, &bad).is_err());
    }
}

/// ECDSA signs digests (as AWS KMS's MessageType=DIGEST); Ed25519 refuses.
pub fn signs_digests(s: &dyn Signer) {
    let alg = s.algorithm().unwrap();
    let raw = s.public_key(PublicKeyFormat::Raw).unwrap();
    let d = Sha256::digest(b"digest me");
    if alg.is_ecdsa() {
        let sig = s.sign_digest(&d).unwrap();
        verify(alg, &raw, b"digest me", &sig).unwrap();
        verify_digest(alg, &raw, &d, &sig).unwrap();
        assert_eq!(
            s.sign_digest(&d[..31]).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    } else {
        assert_eq!(
            s.sign_digest(&d).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}

/// The PEM public key is what OpenSSL reads, and OpenSSL verifies.
pub fn openssl_verifies(s: &dyn Signer) {
    let alg = s.algorithm().unwrap();
    let pem = s.public_key(PublicKeyFormat::Pem).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (p, m, g) = (
        dir.path().join("pub.pem"),
        dir.path().join("msg"),
        dir.path().join("sig"),
    );
    std::fs::write(&p, &pem).unwrap();
    std::fs::write(&m, b"checked by openssl").unwrap();
    std::fs::write(&g, s.sign(b"checked by openssl").unwrap()).unwrap();
    let mut cmd = Command::new("openssl");
    if alg == Algorithm::Ed25519 {
        cmd.args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&p)
            .arg("-in")
            .arg(&m)
            .arg("-sigfile")
            .arg(&g);
    } else {
        cmd.args(["dgst", "-sha256", "-verify"])
            .arg(&p)
            .arg("-signature")
            .arg(&g)
            .arg(&m);
    }
    let out = cmd.output().expect("openssl (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // DER is the PEM's body; raw is its tail.
    let der = s.public_key(PublicKeyFormat::Der).unwrap();
    let raw = s.public_key(PublicKeyFormat::Raw).unwrap();
    assert!(der.ends_with(&raw));
}

/// Many threads sign at once.
pub fn concurrent(s: &dyn Signer) {
    let alg = s.algorithm().unwrap();
    let raw = s.public_key(PublicKeyFormat::Raw).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let raw = &raw;
            scope.spawn(move || {
                for i in 0..25u8 {
                    let msg = [t, i];
                    verify(alg, raw, &msg, &s.sign(&msg).unwrap()).unwrap();
                }
            });
        }
    });
}

/// Healthy while open; every call Unavailable after close; close twice is fine.
pub fn close(s: &dyn Signer) {
    s.health_check().unwrap();
    s.close().unwrap();
    s.close().unwrap();
    for kind in [
        s.sign(b"m").unwrap_err().kind(),
        s.sign_digest(&[0; 32]).unwrap_err().kind(),
        s.algorithm().unwrap_err().kind(),
        s.public_key(PublicKeyFormat::Pem).unwrap_err().kind(),
        s.health_check().unwrap_err().kind(),
    ] {
        assert_eq!(kind, ErrorKind::Unavailable);
    }
}

macro_rules! signer_suite {
    ($make:path) => {
        #[test]
        fn signer_signs_what_verifies() {
            $crate::signer_conformance::signs_what_verifies(&*$make());
        }
        #[test]
        fn signer_signs_digests() {
            $crate::signer_conformance::signs_digests(&*$make());
        }
        #[test]
        fn signer_openssl_verifies() {
            $crate::signer_conformance::openssl_verifies(&*$make());
        }
        #[test]
        fn signer_concurrent() {
            $crate::signer_conformance::concurrent(&*$make());
        }
        #[test]
        fn signer_close() {
            $crate::signer_conformance::close(&*$make());
        }
    };
}
pub(crate) use signer_suite;
