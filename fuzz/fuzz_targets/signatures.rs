//! The signing parsers: minisign public keys, `.minisig` signatures (and
//! their verification), minisign secret key files (without a password, so
//! no scrypt work), trust files (`KEYS.txt`) and their verification.
//!
//! Input: a mode byte, then the text (invalid UTF-8 replaced).
//! Mode % 4: 0 public key, 1 signature verified against the fixture key,
//! 2 secret key file, 3 trust file verifying the fixture signature.
#![no_main]

use keystrata::sign::minisign::{self, PublicKey, SecretKey};
use keystrata::sign::TrustedKeys;
use keystrata::ErrorKind::*;
use keystrata_fuzz::{check_error, Auth};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A fixed minisign key (seed and ID) and a signature of b"data" by it.
fn fixture() -> &'static (SecretKey, String) {
    static F: OnceLock<(SecretKey, String)> = OnceLock::new();
    F.get_or_init(|| {
        let sk = SecretKey::from_seed(&[7; 32], [1, 2, 3, 4, 5, 6, 7, 8]).expect("fixture key");
        let sig = sk
            .sign(b"data", "fixture", None)
            .expect("fixture signature");
        (sk, sig)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (sk, sig) = fixture();
    match mode % 4 {
        0 => match PublicKey::from_text(&text) {
            // What parses writes back to the same key.
            Ok(pk) => assert_eq!(PublicKey::from_text(&pk.to_text()).expect("round trip"), pk),
            Err(e) => check_error(
                "minisign public key",
                &e,
                rest,
                &[Format, Unsupported],
                Auth::AnyMessage,
            ),
        },
        1 => match minisign::verify(sk.public_key(), b"data", &text) {
            // Only a signature by the fixture key over b"data" verifies.
            Ok(v) => assert_eq!(v.key_id, sk.key_id()),
            Err(e) => check_error(
                "minisign verify",
                &e,
                rest,
                &[Format, Unsupported, UnknownKey, Authentication],
                Auth::AnyMessage,
            ),
        },
        2 => match SecretKey::from_text(&text, None) {
            Ok(k) => assert_eq!(
                PublicKey::from_text(&k.public_key().to_text()).expect("pk"),
                *k.public_key()
            ),
            Err(e) => check_error(
                "minisign secret key",
                &e,
                rest,
                &[Format, Unsupported, InvalidInput, Policy],
                Auth::AnyMessage,
            ),
        },
        _ => match TrustedKeys::parse(&text) {
            Ok(t) => match t.verify(b"data", sig.as_bytes()) {
                Ok(v) => assert!(t.keys().iter().any(|k| k.name == v.name && !k.revoked)),
                Err(e) => check_error(
                    "trust verify",
                    &e,
                    rest,
                    &[UnknownKey, Authentication, KeyDisabled, Format],
                    Auth::AnyMessage,
                ),
            },
            Err(e) => check_error(
                "trust file",
                &e,
                rest,
                &[Format, InvalidInput],
                Auth::AnyMessage,
            ),
        },
    }
});
