//! Wycheproof's signature vectors (tests/vectors/wycheproof/, README there)
//! through keystrata's verifiers: every case of ECDSA P-256 and secp256k1
//! with SHA-256 (DER and P1363) and Ed25519. A `valid` case verifies; an
//! `invalid` one fails with Authentication, or InvalidInput for a public key
//! keystrata refuses; an `acceptable` one may do either. Both verifiers are
//! checked: `verify_strict` (the file's own encoding only) and `verify`
//! (DER, or raw `r ‖ s` at 64 bytes), which every binding exposes.
#![cfg(feature = "aws-lc")]

use keystrata::sign::{verify, verify_strict};
use keystrata::{Algorithm, ErrorKind, SignatureFormat};
use serde_json::Value;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Runs one file; returns (valid, invalid) counts checked.
fn run(file: &str, alg: Algorithm, format: SignatureFormat) -> (usize, usize) {
    let path = format!(
        "{}/../tests/vectors/wycheproof/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect("json");
    let (mut valid, mut invalid, mut total) = (0, 0, 0);
    for g in doc["testGroups"].as_array().expect("groups") {
        let pk = match alg {
            Algorithm::Ed25519 => unhex(g["publicKey"]["pk"].as_str().expect("pk")),
            _ => unhex(
                g["publicKey"]["uncompressed"]
                    .as_str()
                    .expect("uncompressed"),
            ),
        };
        if let Some(sha) = g.get("sha") {
            assert_eq!(sha, "SHA-256", "{file}");
        }
        for t in g["tests"].as_array().expect("tests") {
            total += 1;
            let id = t["tcId"].as_u64().expect("tcId");
            let (msg, sig) = (
                unhex(t["msg"].as_str().expect("msg")),
                unhex(t["sig"].as_str().expect("sig")),
            );
            let strict = verify_strict(alg, &pk, &msg, &sig, format);
            match t["result"].as_str().expect("result") {
                "valid" => {
                    assert!(
                        strict.is_ok(),
                        "{file} #{id} ({}): valid but {strict:?}",
                        t["comment"]
                    );
                    // The lenient verifier (DER or raw) accepts it too.
                    assert!(
                        verify(alg, &pk, &msg, &sig).is_ok(),
                        "{file} #{id}: lenient verify refuses"
                    );
                    valid += 1;
                }
                "invalid" => {
                    let kind = strict
                        .expect_err(&format!(
                            "{file} #{id} ({}): invalid but verifies",
                            t["comment"]
                        ))
                        .kind();
                    assert!(
                        matches!(kind, ErrorKind::Authentication | ErrorKind::InvalidInput),
                        "{file} #{id}: {kind:?}"
                    );
                    // The lenient verifier (DER, or raw at 64 bytes: what the
                    // bindings' verify_signature uses) refuses it too.
                    assert!(
                        verify(alg, &pk, &msg, &sig).is_err(),
                        "{file} #{id}: lenient verify accepts"
                    );
                    invalid += 1;
                }
                "acceptable" => {}
                other => panic!("{file} #{id}: unknown result {other}"),
            }
        }
    }
    assert_eq!(
        total as u64,
        doc["numberOfTests"].as_u64().expect("numberOfTests"),
        "{file}"
    );
    (valid, invalid)
}

#[test]
fn ecdsa_p256_sha256_der() {
    assert_eq!(
        run(
            "ecdsa_secp256r1_sha256_test.json",
            Algorithm::EcdsaP256,
            SignatureFormat::Der
        ),
        (174, 310)
    );
}

#[test]
fn ecdsa_p256_sha256_p1363() {
    assert_eq!(
        run(
            "ecdsa_secp256r1_sha256_p1363_test.json",
            Algorithm::EcdsaP256,
            SignatureFormat::Raw
        ),
        (173, 89)
    );
}

#[test]
fn ecdsa_secp256k1_sha256_der() {
    assert_eq!(
        run(
            "ecdsa_secp256k1_sha256_test.json",
            Algorithm::EcdsaSecp256k1,
            SignatureFormat::Der
        ),
        (168, 308)
    );
}

#[test]
fn ecdsa_secp256k1_sha256_p1363() {
    assert_eq!(
        run(
            "ecdsa_secp256k1_sha256_p1363_test.json",
            Algorithm::EcdsaSecp256k1,
            SignatureFormat::Raw
        ),
        (167, 85)
    );
}

#[test]
fn ed25519() {
    assert_eq!(
        run(
            "ed25519_test.json",
            Algorithm::Ed25519,
            SignatureFormat::Der
        ),
        (88, 63)
    );
}
