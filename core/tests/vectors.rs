//! The shared test vectors in `tests/vectors/`, run against the Rust core:
//!
//! - `keystrata.json` — keystrata's own known-answer vectors (every case);
//! - `tink.json` — vectors made by Google Tink (Python);
//! - `wycheproof/aes_gcm_test.json` — through the AES-GCM engine(s) and
//!   through `unseal` with an imported one-key Tink keyset;
//! - `wycheproof/hkdf_sha256_test.json` — through `derive::hkdf_sha256`.
//!
//! Every test counts the cases it ran and fails if that is not the number
//! the file holds, so an emptied or reshaped file cannot pass silently.

use std::path::PathBuf;

use base64::Engine as _;
use keystrata::aead::{AeadEngine, Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};
use keystrata::tink::AES_GCM_TYPE_URL;
use keystrata::{
    AgeRoot, Envelope, ErrorKind, KeyManager, Keychain, PassphraseRoot, Purpose, Root,
};
use serde_json::Value;

// ---------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn load(rel: &str) -> Value {
    let path = vectors_dir().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn h(v: &Value, field: &str) -> Vec<u8> {
    unhex(
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing in {v}")),
    )
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

fn arr<'a>(v: &'a Value, field: &str) -> &'a Vec<Value> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} is not an array"))
}

fn b64d(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

fn kind_named(name: &str) -> ErrorKind {
    ErrorKind::ALL
        .iter()
        .copied()
        .find(|k| k.name() == name)
        .unwrap_or_else(|| panic!("unknown error kind {name:?}"))
}

fn envelope(v: &Value) -> Envelope {
    Envelope {
        key_id: s(v, "key_id").to_owned(),
        key_version: u32::try_from(u(v, "key_version")).expect("u32"),
        provider: s(v, "provider").to_owned(),
        ciphertext: h(v, "ciphertext_hex"),
    }
}

fn metadata(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .expect("metadata object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
        .collect()
}

/// Per-section counts of `keystrata.json` cases run.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    unseal: usize,
    decrypt: usize,
    unwrap: usize,
    derive_origin_key: usize,
    derive: usize,
    invalid: usize,
}

/// Runs every case of the `keychain` section of keystrata.json on `kc`.
fn run_keychain_cases(kc: &Keychain, doc: &Value) -> Counts {
    let mut n = Counts::default();
    for c in arr(doc, "unseal") {
        let got = kc
            .unseal(&h(c, "ciphertext_hex"), &h(c, "aad_hex"))
            .unwrap_or_else(|e| panic!("unseal {}: {e}", c["comment"]));
        assert_eq!(got, h(c, "plaintext_hex"), "unseal {}", c["comment"]);
        // The prefix names the key the case says made it.
        let ct = h(c, "ciphertext_hex");
        assert_eq!(ct[0], 0x01);
        assert_eq!(
            u64::from(u32::from_be_bytes([ct[1], ct[2], ct[3], ct[4]])),
            u(c, "key_id")
        );
        n.unseal += 1;
    }
    for c in arr(doc, "decrypt") {
        let got = kc
            .decrypt(&h(c, "ciphertext_hex"), &h(c, "aad_hex"))
            .unwrap_or_else(|e| panic!("decrypt {}: {e}", c["comment"]));
        assert_eq!(got, h(c, "plaintext_hex"), "decrypt {}", c["comment"]);
        n.decrypt += 1;
    }
    for c in arr(doc, "unwrap") {
        let env = envelope(&c["envelope"]);
        assert_eq!(
            Envelope::from_metadata(metadata(&c["metadata"])).expect("metadata form"),
            env,
            "metadata form of {}",
            c["comment"]
        );
        // And the map keystrata writes is exactly the one in the file.
        let written: Vec<(String, String)> = env.to_metadata().into_iter().collect();
        let mut in_file = metadata(&c["metadata"]);
        in_file.sort();
        assert_eq!(written, in_file);
        let key = kc
            .unwrap_key(&env, &h(c, "context_hex"))
            .unwrap_or_else(|e| panic!("unwrap {}: {e}", c["comment"]));
        assert_eq!(
            key.expose_secret(),
            h(c, "key_hex"),
            "unwrap {}",
            c["comment"]
        );
        n.unwrap += 1;
    }
    for c in arr(doc, "derive_origin_key") {
        // `epoch` is a decimal string: 2^64-1 does not fit a JSON number
        // every reader (jansson's json_int_t) accepts.
        let epoch: u64 = s(c, "epoch").parse().expect("epoch");
        let (origin, instance) = (s(c, "origin"), s(c, "instance"));
        assert_eq!(
            keystrata::derive::origin_info(origin.as_bytes(), instance.as_bytes(), epoch)
                .expect("info"),
            h(c, "info_hex"),
            "info of {}",
            c["comment"]
        );
        let key = kc
            .derive_origin_key(origin, instance, epoch)
            .expect("derive_origin_key");
        assert_eq!(key.expose_secret(), h(c, "key_hex"), "{}", c["comment"]);
        n.derive_origin_key += 1;
    }
    for c in arr(doc, "derive") {
        let len = usize::try_from(u(c, "length")).expect("length");
        let okm = kc.derive(&h(c, "info_hex"), len).expect("derive");
        assert_eq!(okm.expose_secret(), h(c, "okm_hex"), "{}", c["comment"]);
        n.derive += 1;
    }
    for c in arr(doc, "invalid") {
        let want = kind_named(s(c, "error"));
        assert_eq!(
            u64::from(want.code()),
            u(c, "error_code"),
            "{}",
            c["comment"]
        );
        let result = match s(c, "op") {
            "unseal" => kc
                .unseal(&h(c, "ciphertext_hex"), &h(c, "aad_hex"))
                .map(|_| ()),
            "decrypt" => kc
                .decrypt(&h(c, "ciphertext_hex"), &h(c, "aad_hex"))
                .map(|_| ()),
            "unwrap" => kc
                .unwrap_key(&envelope(&c["envelope"]), &h(c, "context_hex"))
                .map(|_| ()),
            "derive" => kc
                .derive(
                    &h(c, "info_hex"),
                    usize::try_from(u(c, "length")).expect("length"),
                )
                .map(|_| ()),
            "envelope_from_metadata" => {
                Envelope::from_metadata(metadata(&c["metadata"])).map(|_| ())
            }
            other => panic!("unknown op {other:?}"),
        };
        match result {
            Ok(()) => panic!("invalid case {} succeeded", c["comment"]),
            Err(e) => assert_eq!(e.kind(), want, "invalid case {}: {e}", c["comment"]),
        }
        n.invalid += 1;
    }
    n
}

fn expected_counts(doc: &Value) -> Counts {
    Counts {
        unseal: arr(doc, "unseal").len(),
        decrypt: arr(doc, "decrypt").len(),
        unwrap: arr(doc, "unwrap").len(),
        derive_origin_key: arr(doc, "derive_origin_key").len(),
        derive: arr(doc, "derive").len(),
        invalid: arr(doc, "invalid").len(),
    }
}

// ---------------------------------------------------------------------
// keystrata.json
// ---------------------------------------------------------------------

#[test]
fn keystrata_json_age_keychain() {
    let doc = load("keystrata.json");
    let k = &doc["keychain"];
    assert_eq!(
        u(&doc, "keychain_format_version"),
        u64::from(keystrata::FORMAT_VERSION)
    );

    let root = AgeRoot::new([s(k, "age_identity")], Vec::<String>::new()).expect("identity");
    assert_eq!(root.recipients(), vec![s(k, "age_recipient").to_owned()]);
    let saved = b64d(s(k, "saved_age_base64"));
    assert!(
        saved.starts_with(b"age-encryption.org/v1\n"),
        "not an age file"
    );

    // The age file decrypts to exactly the plaintext JSON in the file.
    let plaintext = root.unprotect(&saved).expect("age decrypt");
    assert_eq!(&plaintext[..], s(k, "plaintext_json").as_bytes());

    // The loaded keychain has the keys the file lists.
    let kc = Keychain::load(&saved, &root).expect("load");
    let listed: Vec<(u64, u64, String, String, bool)> = arr(k, "keys")
        .iter()
        .map(|x| {
            (
                u(x, "key_id"),
                u(x, "version"),
                s(x, "purpose").to_owned(),
                s(x, "status").to_owned(),
                x["primary"].as_bool().expect("primary"),
            )
        })
        .collect();
    let actual: Vec<(u64, u64, String, String, bool)> = kc
        .keys()
        .expect("keys")
        .iter()
        .map(|x| {
            (
                u64::from(x.key_id),
                u64::from(x.version),
                x.purpose.as_str().to_owned(),
                x.status.as_str().to_owned(),
                x.primary,
            )
        })
        .collect();
    assert_eq!(listed, actual);

    // The invalid cases the brief requires are all present.
    let kinds: Vec<&str> = arr(k, "invalid").iter().map(|c| s(c, "error")).collect();
    for need in [
        "Authentication",
        "Format",
        "UnknownKey",
        "KeyDisabled",
        "KeyDestroyed",
        "InvalidInput",
    ] {
        assert!(kinds.contains(&need), "no invalid case expects {need}");
    }

    let want = expected_counts(k);
    let got = run_keychain_cases(&kc, k);
    assert_eq!(got, want);
    assert!(got.unseal > 0 && got.decrypt > 0 && got.unwrap > 0);
    assert!(got.derive_origin_key > 0 && got.derive > 0 && got.invalid > 0);
    eprintln!("keystrata.json (age keychain): {got:?}");

    // The plaintext JSON alone is a loadable keychain (what a C/Go/Python
    // reader gets from `age -d`): protect it under a fresh root and load.
    let fresh = AgeRoot::generate();
    let again = fresh
        .protect(s(k, "plaintext_json").as_bytes())
        .expect("protect");
    let kc2 = Keychain::load(&again, &fresh).expect("load from plaintext JSON");
    assert_eq!(run_keychain_cases(&kc2, k), want);

    // Another identity cannot open it.
    let other = AgeRoot::generate();
    assert_eq!(
        Keychain::load(&saved, &other).unwrap_err().kind(),
        ErrorKind::Authentication
    );
    // FORMAT.md §7: tampered or truncated payload → Authentication (age's
    // STREAM cannot tell a cut final chunk from a forged one); not age,
    // truncated or damaged header → Format.
    let mut tampered = saved.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let kind = |b: &[u8]| Keychain::load(b, &root).unwrap_err().kind();
    assert_eq!(kind(&tampered), ErrorKind::Authentication);
    assert_eq!(kind(&saved[..saved.len() - 20]), ErrorKind::Authentication);
    let header_end = saved
        .windows(4)
        .position(|w| w == b"\n---")
        .expect("age header end");
    assert_eq!(kind(&saved[..header_end]), ErrorKind::Format);
    assert_eq!(kind(&saved[..40]), ErrorKind::Format);
    assert_eq!(
        kind(b"{\"format\": \"keystrata.keychain\"}"),
        ErrorKind::Format
    );
    assert_eq!(kind(b""), ErrorKind::Format);
}

#[test]
fn keystrata_json_derivation_primary_is_the_only_derive_key() {
    // derive / derive_origin_key vectors are under the derivation primary;
    // check the file says so (a future file with several derivation keys
    // must name the key per case).
    let doc = load("keystrata.json");
    let k = &doc["keychain"];
    let derive_keys = arr(k, "keys")
        .iter()
        .filter(|x| s(x, "purpose") == Purpose::Derive.as_str())
        .count();
    assert_eq!(derive_keys, 1);
}

#[test]
fn keystrata_json_passphrase_keychain() {
    let doc = load("keystrata.json");
    let p = &doc["saved_passphrase"];
    let wf = u8::try_from(u(p, "work_factor")).expect("work factor");
    let root = PassphraseRoot::with_work_factor(s(p, "passphrase"), wf).expect("root");
    let saved = b64d(s(p, "saved_age_base64"));
    assert!(saved.starts_with(b"age-encryption.org/v1\n"));
    let plaintext = root.unprotect(&saved).expect("scrypt decrypt");
    assert_eq!(&plaintext[..], s(p, "plaintext_json").as_bytes());
    let kc = Keychain::load(&saved, &root).expect("load");
    let mut n = 0;
    for c in arr(p, "unseal") {
        let got = kc
            .unseal(&h(c, "ciphertext_hex"), &h(c, "aad_hex"))
            .expect("unseal");
        assert_eq!(got, h(c, "plaintext_hex"));
        n += 1;
    }
    assert!(n > 0);
    assert_eq!(n, arr(p, "unseal").len());
    eprintln!("keystrata.json (passphrase keychain): {n} unseal cases");

    let wrong = PassphraseRoot::with_work_factor("not the passphrase", wf).expect("root");
    assert_eq!(
        Keychain::load(&saved, &wrong).unwrap_err().kind(),
        ErrorKind::Authentication
    );
    // An age identity is not a passphrase.
    assert_eq!(
        Keychain::load(&saved, &AgeRoot::generate())
            .unwrap_err()
            .kind(),
        ErrorKind::Authentication
    );
}

// ---------------------------------------------------------------------
// tink.json
// ---------------------------------------------------------------------

#[test]
fn tink_json() {
    let doc = load("tink.json");
    let (mut aead, mut env, mut must_fail, mut keysets) = (0, 0, 0, 0);
    for ks in arr(&doc, "keysets") {
        let name = s(ks, "name");
        let kc = Keychain::import_tink_cleartext(s(ks, "keyset_json"))
            .unwrap_or_else(|e| panic!("import {name}: {e}"));
        assert_eq!(
            u64::from(kc.primary().expect("primary").key_id),
            u(ks, "primary_key_id"),
            "{name}"
        );
        for c in arr(ks, "aead") {
            let got = kc
                .unseal(&h(c, "ciphertext_hex"), &h(c, "aad_hex"))
                .unwrap_or_else(|e| panic!("{name} aead {}: {e}", c["comment"]));
            assert_eq!(got, h(c, "plaintext_hex"), "{name} aead {}", c["comment"]);
            aead += 1;
        }
        for c in ks["envelope"].as_array().into_iter().flatten() {
            let got = kc
                .decrypt(&h(c, "ciphertext_hex"), &h(c, "aad_hex"))
                .unwrap_or_else(|e| panic!("{name} envelope {}: {e}", c["comment"]));
            assert_eq!(
                got,
                h(c, "plaintext_hex"),
                "{name} envelope {}",
                c["comment"]
            );
            env += 1;
        }
        for c in ks["aead_must_fail"].as_array().into_iter().flatten() {
            let err = kc
                .unseal(&h(c, "ciphertext_hex"), &h(c, "aad_hex"))
                .expect_err("a ciphertext under a DISABLED key must fail");
            assert_eq!(
                err.kind(),
                ErrorKind::KeyDisabled,
                "{name} {}",
                c["comment"]
            );
            must_fail += 1;
        }
        // Export and re-import keeps every key (none are destroyed here).
        let back =
            Keychain::import_tink_cleartext(&kc.insecure_export_tink_cleartext().expect("export"))
                .expect("re-import");
        for c in arr(ks, "aead") {
            assert_eq!(
                back.unseal(&h(c, "ciphertext_hex"), &h(c, "aad_hex"))
                    .expect("unseal after re-import"),
                h(c, "plaintext_hex")
            );
        }
        keysets += 1;
    }
    let mut unsupported = 0;
    for c in arr(&doc, "unsupported") {
        let err = Keychain::import_tink_cleartext(s(c, "keyset_json"))
            .expect_err("an unsupported keyset must be refused");
        assert_eq!(
            err.kind(),
            ErrorKind::Unsupported,
            "{} ({}): {err}",
            s(c, "name"),
            s(c, "reason")
        );
        unsupported += 1;
    }
    eprintln!(
        "tink.json: {keysets} keysets, {aead} aead, {env} envelope, {must_fail} must-fail, {unsupported} unsupported"
    );
    // The file as committed (see tests/vectors/README.md): 2 keysets,
    // 20 AEAD, 12 envelope, 2 must-fail, 8 unsupported keysets.
    assert_eq!(keysets, 2);
    assert_eq!((aead, env, must_fail), (20, 12, 2));
    assert_eq!(unsupported, 8);
}

// ---------------------------------------------------------------------
// Wycheproof AES-GCM
// ---------------------------------------------------------------------

struct GcmCase {
    tc_id: u64,
    valid: bool,
    key: [u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
    aad: Vec<u8>,
    msg: Vec<u8>,
    /// ct ‖ tag
    sealed: Vec<u8>,
}

/// Cases in keystrata's format (AES-256, 96-bit IV, 128-bit tag), and the
/// number skipped because of key size and because of IV/tag size.
fn gcm_cases() -> (Vec<GcmCase>, usize, usize) {
    let doc = load("wycheproof/aes_gcm_test.json");
    assert_eq!(s(&doc, "algorithm"), "AES-GCM");
    let mut cases = Vec::new();
    let (mut skip_key, mut skip_iv_tag, mut total) = (0, 0, 0);
    for g in arr(&doc, "testGroups") {
        let tests = arr(g, "tests");
        total += tests.len();
        if u(g, "keySize") != 256 {
            skip_key += tests.len();
            continue;
        }
        if u(g, "ivSize") != 96 || u(g, "tagSize") != 128 {
            skip_iv_tag += tests.len();
            continue;
        }
        for t in tests {
            let valid = match s(t, "result") {
                "valid" => true,
                "invalid" => false,
                other => panic!("tcId {}: result {other:?} is not handled", u(t, "tcId")),
            };
            let mut sealed = h(t, "ct");
            sealed.extend_from_slice(&h(t, "tag"));
            cases.push(GcmCase {
                tc_id: u(t, "tcId"),
                valid,
                key: h(t, "key").try_into().expect("32-byte key"),
                nonce: h(t, "iv").try_into().expect("12-byte iv"),
                aad: h(t, "aad"),
                msg: h(t, "msg"),
                sealed,
            });
        }
    }
    assert_eq!(total, usize::try_from(u(&doc, "numberOfTests")).expect("n"));
    (cases, skip_key, skip_iv_tag)
}

/// What one engine does with a case: its seal output (valid cases) and its
/// open result.
fn run_engine<E: AeadEngine>(c: &GcmCase) -> (Option<Vec<u8>>, Result<Vec<u8>, ErrorKind>) {
    let e = E::new(&c.key);
    let sealed = c.valid.then(|| {
        let mut out = vec![0u8; c.msg.len() + TAG_LEN];
        e.seal_into(&c.nonce, &c.aad, &c.msg, &mut out)
            .expect("seal_into");
        out
    });
    let opened = if c.sealed.len() < TAG_LEN {
        // Not even a tag: engines refuse (the buffer would be negative).
        let mut out = [0u8; 0];
        e.open_into(&c.nonce, &c.aad, &c.sealed, &mut out)
            .map(|()| Vec::new())
            .map_err(|x| x.kind())
    } else {
        let mut out = vec![0u8; c.sealed.len() - TAG_LEN];
        e.open_into(&c.nonce, &c.aad, &c.sealed, &mut out)
            .map(|()| out)
            .map_err(|x| x.kind())
    };
    (sealed, opened)
}

fn check_engine_result(
    name: &str,
    c: &GcmCase,
    (sealed, opened): &(Option<Vec<u8>>, Result<Vec<u8>, ErrorKind>),
) {
    if c.valid {
        assert_eq!(
            sealed.as_deref(),
            Some(&c.sealed[..]),
            "{name} seal tcId {}",
            c.tc_id
        );
        assert_eq!(
            opened.as_deref(),
            Ok(&c.msg[..]),
            "{name} open tcId {}",
            c.tc_id
        );
    } else {
        assert_eq!(
            opened.as_ref().map(|_| ()).map_err(|k| *k),
            Err(ErrorKind::Authentication),
            "{name} open of invalid tcId {}",
            c.tc_id
        );
    }
}

/// A one-key Tink cleartext keyset holding `key` under `key_id`.
fn one_key_tink_keyset(key: &[u8; KEY_LEN], key_id: u32) -> String {
    let mut proto = vec![0x1a, 0x20];
    proto.extend_from_slice(key);
    let value = base64::engine::general_purpose::STANDARD.encode(proto);
    format!(
        r#"{{"primaryKeyId":{key_id},"key":[{{"keyData":{{"typeUrl":"{AES_GCM_TYPE_URL}","value":"{value}","keyMaterialType":"SYMMETRIC"}},"status":"ENABLED","keyId":{key_id},"outputPrefixType":"TINK"}}]}}"#
    )
}

/// Cases outside the format, as the committed file has them: 211 in
/// 128/192-bit-key groups, 39 in 256-bit groups with an IV other than 96
/// bits (tags are 128 bits throughout). 66 cases (39 valid, 27 invalid)
/// are in the format.
const WYCHEPROOF_GCM_IN_FORMAT: usize = 66;
const WYCHEPROOF_GCM_SKIP_KEY_SIZE: usize = 211;
const WYCHEPROOF_GCM_SKIP_IV_TAG: usize = 39;

#[test]
fn wycheproof_aes_gcm_engine() {
    let (cases, skip_key, skip_iv_tag) = gcm_cases();
    assert_eq!(cases.len(), WYCHEPROOF_GCM_IN_FORMAT);
    assert_eq!(skip_key, WYCHEPROOF_GCM_SKIP_KEY_SIZE);
    assert_eq!(skip_iv_tag, WYCHEPROOF_GCM_SKIP_IV_TAG);
    let mut engines_run = 0;
    for c in &cases {
        let r = run_engine::<Aes256Gcm>(c);
        check_engine_result(<Aes256Gcm as AeadEngine>::NAME, c, &r);
        #[cfg(all(feature = "aws-lc", feature = "rustcrypto"))]
        {
            let a = run_engine::<keystrata::aead::AwsLc>(c);
            let b = run_engine::<keystrata::aead::RustCrypto>(c);
            check_engine_result("aws-lc", c, &a);
            check_engine_result("rustcrypto", c, &b);
            assert_eq!(a, b, "engines disagree on tcId {}", c.tc_id);
            engines_run = 2;
        }
        #[cfg(not(all(feature = "aws-lc", feature = "rustcrypto")))]
        {
            engines_run = 1;
        }
    }
    let valid = cases.iter().filter(|c| c.valid).count();
    eprintln!(
        "wycheproof aes-gcm: {} cases run ({valid} valid, {} invalid) on {engines_run} engine(s); skipped {skip_key} (key size) + {skip_iv_tag} (iv/tag size)",
        cases.len(),
        cases.len() - valid
    );
}

#[test]
fn wycheproof_aes_gcm_through_unseal() {
    let (cases, _, _) = gcm_cases();
    assert_eq!(cases.len(), WYCHEPROOF_GCM_IN_FORMAT);
    let mut ran = 0;
    for c in &cases {
        // Any non-zero key ID; vary it, including one at or above 2^31
        // (Tink's IDs use all 32 bits).
        let key_id = if c.tc_id % 2 == 0 {
            0x8000_0000 | u32::try_from(c.tc_id).expect("tcId")
        } else {
            u32::try_from(c.tc_id).expect("tcId") + 1
        };
        let kc = Keychain::import_tink_cleartext(&one_key_tink_keyset(&c.key, key_id))
            .expect("import one-key keyset");
        let mut ct = vec![0x01];
        ct.extend_from_slice(&key_id.to_be_bytes());
        ct.extend_from_slice(&c.nonce);
        ct.extend_from_slice(&c.sealed);
        let r = kc.unseal(&ct, &c.aad);
        if c.valid {
            assert_eq!(r.expect("valid case unseals"), c.msg, "tcId {}", c.tc_id);
        } else {
            assert_eq!(
                r.expect_err("invalid case must fail").kind(),
                ErrorKind::Authentication,
                "tcId {}",
                c.tc_id
            );
        }
        ran += 1;
    }
    assert_eq!(ran, WYCHEPROOF_GCM_IN_FORMAT);
    eprintln!("wycheproof aes-gcm through unseal: {ran} cases");
}

// ---------------------------------------------------------------------
// Wycheproof HKDF-SHA256
// ---------------------------------------------------------------------

#[test]
fn wycheproof_hkdf_sha256() {
    let doc = load("wycheproof/hkdf_sha256_test.json");
    assert_eq!(s(&doc, "algorithm"), "HKDF-SHA-256");
    let (mut valid, mut invalid) = (0, 0);
    for g in arr(&doc, "testGroups") {
        for t in arr(g, "tests") {
            let size = usize::try_from(u(t, "size")).expect("size");
            // An empty salt is the empty byte string, which HKDF pads to
            // HashLen zero bytes: the same as no salt.
            let salt = h(t, "salt");
            let r = keystrata::derive::hkdf_sha256(Some(&salt), &h(t, "ikm"), &h(t, "info"), size);
            match s(t, "result") {
                "valid" => {
                    let okm = r.unwrap_or_else(|e| panic!("tcId {}: {e}", u(t, "tcId")));
                    assert_eq!(okm.expose_secret(), h(t, "okm"), "tcId {}", u(t, "tcId"));
                    if salt.is_empty() {
                        let none =
                            keystrata::derive::hkdf_sha256(None, &h(t, "ikm"), &h(t, "info"), size)
                                .expect("no salt");
                        assert_eq!(none.expose_secret(), h(t, "okm"));
                    }
                    valid += 1;
                }
                "invalid" => {
                    assert_eq!(
                        r.expect_err("invalid case must fail").kind(),
                        ErrorKind::InvalidInput,
                        "tcId {}",
                        u(t, "tcId")
                    );
                    invalid += 1;
                }
                other => panic!("tcId {}: result {other:?} is not handled", u(t, "tcId")),
            }
        }
    }
    eprintln!("wycheproof hkdf-sha256: {valid} valid, {invalid} invalid");
    assert_eq!(
        valid + invalid,
        usize::try_from(u(&doc, "numberOfTests")).expect("n")
    );
    assert_eq!((valid, invalid), (83, 3));
}

// ---------------------------------------------------------------------
// The error tables of docs/FORMAT.md §6 and §8
// ---------------------------------------------------------------------

/// Loads a keychain from plaintext JSON (as a reader of `age -d` output
/// would have it), through a fresh age root.
fn load_plaintext(json: &str) -> Result<Keychain, keystrata::Error> {
    let root = AgeRoot::generate();
    Keychain::load(&root.protect(json.as_bytes()).expect("protect"), &root)
}

#[test]
fn documented_keychain_json_errors() {
    let doc = load("keystrata.json");
    let good: Value = serde_json::from_str(s(&doc["keychain"], "plaintext_json")).expect("json");
    assert!(load_plaintext(&good.to_string()).is_ok());
    let primary_encrypt = good["primary"]["encrypt"].clone();
    let derive_id = good["primary"]["derive"].clone();
    let pos = |purpose: &str, status: &str| {
        good["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .position(|k| k["purpose"] == purpose && k["status"] == status)
            .expect("key")
    };
    let (destroyed, disabled) = (pos("encrypt", "destroyed"), pos("encrypt", "disabled"));
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, ErrorKind)> = vec![
        (
            "version 2",
            Box::new(|v| v["version"] = 2.into()),
            ErrorKind::Unsupported,
        ),
        (
            "version 2, other layout",
            Box::new(|v| {
                v["version"] = 2.into();
                v["keys"] = "new".into();
            }),
            ErrorKind::Unsupported,
        ),
        (
            "no version",
            Box::new(|v| {
                v.as_object_mut().expect("o").remove("version");
            }),
            ErrorKind::Format,
        ),
        (
            "wrong format name",
            Box::new(|v| v["format"] = "other".into()),
            ErrorKind::Format,
        ),
        (
            "policy max 0",
            Box::new(|v| v["policy"]["max_encryptions_per_key"] = 0.into()),
            ErrorKind::Format,
        ),
        (
            "policy max 2^32+1",
            Box::new(|v| v["policy"]["max_encryptions_per_key"] = ((1u64 << 32) + 1).into()),
            ErrorKind::Format,
        ),
        (
            "policy age 0",
            Box::new(|v| v["policy"]["max_key_age_secs"] = 0.into()),
            ErrorKind::Format,
        ),
        (
            "usage_block 0",
            Box::new(|v| v["policy"]["usage_block"] = 0.into()),
            ErrorKind::Format,
        ),
        (
            "primary.encrypt is the derive key",
            {
                let d = derive_id.clone();
                Box::new(move |v| v["primary"]["encrypt"] = d.clone())
            },
            ErrorKind::Format,
        ),
        (
            "primary.derive is an encrypt key",
            {
                let e = primary_encrypt.clone();
                Box::new(move |v| v["primary"]["derive"] = e.clone())
            },
            ErrorKind::Format,
        ),
        (
            "primary.encrypt names no key",
            Box::new(|v| v["primary"]["encrypt"] = 1.into()),
            ErrorKind::Format,
        ),
        (
            "primary is disabled",
            Box::new(move |v| {
                let id = v["keys"][disabled]["key_id"].clone();
                v["primary"]["encrypt"] = id;
            }),
            ErrorKind::Format,
        ),
        (
            "duplicate key_id",
            Box::new(move |v| {
                let id = v["keys"][0]["key_id"].clone();
                v["keys"][disabled]["key_id"] = id;
            }),
            ErrorKind::Format,
        ),
        (
            "key_id 0",
            Box::new(move |v| v["keys"][disabled]["key_id"] = 0.into()),
            ErrorKind::Format,
        ),
        (
            "version 0",
            Box::new(move |v| v["keys"][disabled]["version"] = 0.into()),
            ErrorKind::Format,
        ),
        (
            "unknown purpose",
            Box::new(move |v| v["keys"][disabled]["purpose"] = "sign".into()),
            ErrorKind::Format,
        ),
        (
            "unknown status",
            Box::new(move |v| v["keys"][disabled]["status"] = "paused".into()),
            ErrorKind::Format,
        ),
        (
            "disabled key without material",
            Box::new(move |v| v["keys"][disabled]["material"] = Value::Null),
            ErrorKind::Format,
        ),
        (
            "material of 31 bytes",
            Box::new(move |v| {
                v["keys"][disabled]["material"] =
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==".into()
            }),
            ErrorKind::Format,
        ),
        (
            "material not base64",
            Box::new(move |v| v["keys"][disabled]["material"] = "***".into()),
            ErrorKind::Format,
        ),
        (
            "destroyed key with bad material",
            Box::new(move |v| v["keys"][destroyed]["material"] = "***".into()),
            ErrorKind::Format,
        ),
        (
            "usage is a string",
            Box::new(move |v| v["keys"][disabled]["usage"] = "3".into()),
            ErrorKind::Format,
        ),
    ];
    let n = cases.len();
    for (name, edit, want) in cases {
        let mut v = good.clone();
        edit(&mut v);
        let err = load_plaintext(&v.to_string()).expect_err(name);
        assert_eq!(err.kind(), want, "{name}: {err}");
    }
    // Accepted variations: unknown fields, missing policy, a destroyed key
    // with (valid) material.
    let mut v = good.clone();
    v["future_field"] = 1.into();
    v.as_object_mut().expect("o").remove("policy");
    let m = v["keys"][disabled]["material"].clone();
    v["keys"][destroyed]["material"] = m;
    let kc = load_plaintext(&v.to_string()).expect("accepted variations");
    assert_eq!(kc.policy().expect("policy"), keystrata::Policy::default());
    eprintln!("keychain JSON error table: {n} cases");
}

#[test]
fn documented_tink_import_errors() {
    let key = [7u8; KEY_LEN];
    let good: Value = serde_json::from_str(&one_key_tink_keyset(&key, 42)).expect("json");
    assert!(Keychain::import_tink_cleartext(&good.to_string()).is_ok());
    fn proto(prefix: &[u8], key: &[u8]) -> String {
        let mut p = prefix.to_vec();
        p.extend_from_slice(key);
        base64::engine::general_purpose::STANDARD.encode(p)
    }
    // Version-0 field accepted.
    let mut v = good.clone();
    v["key"][0]["keyData"]["value"] = proto(&[0x08, 0x00, 0x1a, 0x20], &key).into();
    assert!(Keychain::import_tink_cleartext(&v.to_string()).is_ok());

    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, ErrorKind)> = vec![
        (
            "primaryKeyId missing",
            Box::new(|v| {
                v.as_object_mut().expect("o").remove("primaryKeyId");
            }),
            ErrorKind::Format,
        ),
        (
            "primaryKeyId > u32",
            Box::new(|v| v["primaryKeyId"] = (1u64 << 32).into()),
            ErrorKind::Format,
        ),
        (
            "key empty",
            Box::new(|v| v["key"] = Value::Array(vec![])),
            ErrorKind::Format,
        ),
        (
            "keyId missing",
            Box::new(|v| {
                v["key"][0].as_object_mut().expect("o").remove("keyId");
            }),
            ErrorKind::Format,
        ),
        (
            "unknown status",
            Box::new(|v| v["key"][0]["status"] = "UNKNOWN_STATUS".into()),
            ErrorKind::Format,
        ),
        (
            "no outputPrefixType",
            Box::new(|v| {
                v["key"][0]
                    .as_object_mut()
                    .expect("o")
                    .remove("outputPrefixType");
            }),
            ErrorKind::Format,
        ),
        (
            "no keyData",
            Box::new(|v| {
                v["key"][0].as_object_mut().expect("o").remove("keyData");
            }),
            ErrorKind::Format,
        ),
        (
            "value not base64",
            Box::new(|v| v["key"][0]["keyData"]["value"] = "***".into()),
            ErrorKind::Format,
        ),
        (
            "key_value truncated",
            Box::new(move |v| {
                v["key"][0]["keyData"]["value"] = proto(&[0x1a, 0x20], &key[..20]).into()
            }),
            ErrorKind::Format,
        ),
        (
            "duplicate keyId",
            Box::new(|v| {
                let k = v["key"][0].clone();
                v["key"].as_array_mut().expect("a").push(k);
            }),
            ErrorKind::Format,
        ),
        (
            "primaryKeyId names no key",
            Box::new(|v| v["primaryKeyId"] = 43.into()),
            ErrorKind::Format,
        ),
        (
            "primary disabled",
            Box::new(|v| v["key"][0]["status"] = "DISABLED".into()),
            ErrorKind::Format,
        ),
        (
            "keyId 0",
            Box::new(|v| {
                v["key"][0]["keyId"] = 0.into();
                v["primaryKeyId"] = 0.into();
            }),
            ErrorKind::Unsupported,
        ),
        (
            "RAW prefix",
            Box::new(|v| v["key"][0]["outputPrefixType"] = "RAW".into()),
            ErrorKind::Unsupported,
        ),
        (
            "LEGACY prefix",
            Box::new(|v| v["key"][0]["outputPrefixType"] = "LEGACY".into()),
            ErrorKind::Unsupported,
        ),
        (
            "other type",
            Box::new(|v| {
                v["key"][0]["keyData"]["typeUrl"] =
                    "type.googleapis.com/google.crypto.tink.AesEaxKey".into()
            }),
            ErrorKind::Unsupported,
        ),
        (
            "16-byte key",
            Box::new(move |v| {
                v["key"][0]["keyData"]["value"] = proto(&[0x1a, 0x10], &key[..16]).into()
            }),
            ErrorKind::Unsupported,
        ),
        (
            "version 1",
            Box::new(move |v| {
                v["key"][0]["keyData"]["value"] = proto(&[0x08, 0x01, 0x1a, 0x20], &key).into()
            }),
            ErrorKind::Unsupported,
        ),
        (
            "extra protobuf field",
            Box::new(move |v| {
                v["key"][0]["keyData"]["value"] = proto(&[0x12, 0x00, 0x1a, 0x20], &key).into()
            }),
            ErrorKind::Unsupported,
        ),
    ];
    let n = cases.len();
    for (name, edit, want) in cases {
        let mut v = good.clone();
        edit(&mut v);
        let err = Keychain::import_tink_cleartext(&v.to_string()).expect_err(name);
        assert_eq!(err.kind(), want, "{name}: {err}");
    }
    assert_eq!(
        Keychain::import_tink_cleartext("not json")
            .unwrap_err()
            .kind(),
        ErrorKind::Format
    );
    eprintln!("Tink import error table: {} cases", n + 1);
}

#[test]
fn decimal_fields_are_digits_only() {
    // FORMAT.md §4: key_id and the metadata key-version are ASCII digits
    // only, so every language parses them the same way.
    let kc = Keychain::generate().expect("generate");
    let env = kc.wrap_key(&[1u8; 32], b"").expect("wrap");
    let mut m = env.to_metadata();
    for bad in ["+1", " 1", "1 ", "1_0", "", "-1", "4294967296"] {
        m.insert("x-amz-meta-encryption-key-version".into(), bad.into());
        let e = Envelope::from_metadata(&m).expect_err(bad);
        assert_eq!(e.kind(), ErrorKind::Format, "{bad:?}");
        let mut e2 = env.clone();
        e2.key_id = format!("+{}", env.key_id);
        assert_eq!(
            kc.unwrap_key(&e2, b"").unwrap_err().kind(),
            ErrorKind::Format
        );
    }
}

#[test]
fn tink_destroyed_key_without_key_data_imports_as_destroyed() {
    // Tink clears keyData when it destroys a key; such a keyset imports and
    // the destroyed key's ciphertexts fail with KeyDestroyed.
    let kc = Keychain::generate().expect("generate");
    let old = kc.primary().expect("primary").key_id;
    let ct = kc.seal(b"x", b"").expect("seal");
    kc.rotate().expect("rotate");
    let mut v: serde_json::Value =
        serde_json::from_str(&kc.insecure_export_tink_cleartext().expect("export")).expect("json");
    for k in v["key"].as_array_mut().expect("keys") {
        if k["keyId"] == old {
            k["status"] = "DESTROYED".into();
            k.as_object_mut().expect("obj").remove("keyData");
        }
    }
    let back = Keychain::import_tink_cleartext(&v.to_string()).expect("import");
    assert_eq!(
        back.unseal(&ct, b"").unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
}

/// The root a case of portable.json names.
fn portable_root(doc: &Value, name: &str) -> std::sync::Arc<dyn Root> {
    let r = &doc["roots"][name];
    match r["age_identity"].as_str() {
        Some(id) => std::sync::Arc::new(AgeRoot::new([id], [] as [&str; 0]).expect("age root")),
        None => std::sync::Arc::new(
            PassphraseRoot::with_work_factor(
                s(r, "passphrase"),
                u8::try_from(u(r, "work_factor")).expect("u8"),
            )
            .expect("passphrase root"),
        ),
    }
}

#[test]
fn portable_json() {
    use keystrata::portable::KEK_RECORD_LABEL;
    use keystrata::{decrypt_portable, PortableDecryptor};
    let doc = load("portable.json");
    assert_eq!(u(&doc, "format_version"), 1);
    // One decryptor per root, kept across cases: the cache must not change
    // any answer.
    let decryptors: std::collections::HashMap<&str, PortableDecryptor> =
        ["age", "wrong_age", "passphrase", "wrong_passphrase"]
            .into_iter()
            .map(|name| (name, PortableDecryptor::new(portable_root(&doc, name))))
            .collect();
    let (mut ok, mut bad) = (0, 0);
    for c in arr(&doc, "decrypt") {
        let (blob, aad) = (h(c, "blob_hex"), h(c, "aad_hex"));
        let want = h(c, "plaintext_hex");
        let root = portable_root(&doc, s(c, "root"));
        assert_eq!(
            decrypt_portable(&blob, &aad, &*root)
                .unwrap_or_else(|e| panic!("{}: {e}", c["comment"])),
            want
        );
        let d = &decryptors[s(c, "root")];
        for _ in 0..2 {
            assert_eq!(d.decrypt(&blob, &aad).expect("cached decrypt"), want);
        }
        // The record: label, key_id (the envelope's), 32 bytes.
        let record = h(c, "record_hex");
        assert_eq!(&record[..KEK_RECORD_LABEL.len()], KEK_RECORD_LABEL);
        let l = KEK_RECORD_LABEL.len();
        let id = u32::from_be_bytes(record[l..l + 4].try_into().expect("4 bytes"));
        assert_eq!(u64::from(id), u(c, "key_id"), "{}", c["comment"]);
        assert_eq!(record.len(), l + 4 + 32);
        ok += 1;
    }
    for c in arr(&doc, "invalid") {
        let (blob, aad) = (h(c, "blob_hex"), h(c, "aad_hex"));
        let want = kind_named(s(c, "error"));
        assert_eq!(u64::from(want.code()), u(c, "error_code"));
        let root = portable_root(&doc, s(c, "root"));
        let e = decrypt_portable(&blob, &aad, &*root).expect_err(s(c, "comment"));
        assert_eq!(e.kind(), want, "{}: {e}", c["comment"]);
        let e = decryptors[s(c, "root")]
            .decrypt(&blob, &aad)
            .expect_err(s(c, "comment"));
        assert_eq!(e.kind(), want, "{} (cached): {e}", c["comment"]);
        bad += 1;
    }
    assert_eq!((ok, bad), (7, 28), "portable.json holds 7 + 28 cases");
    // Under the age root: three wrappings of two KEKs, and the forged
    // record (it unwraps; its envelope does not open), each once.
    let c = decryptors["age"].counters();
    assert_eq!(c.cached_keks, 4);
    // 2 × 6 valid decryptions and 26 invalid ones under "age": only the
    // four first uses and the 6 cases that fail at or after the root (not
    // cached) reached it; the framing cases never do.
    assert_eq!(c.decrypt_ok, 12);
    assert_eq!(c.root_calls, 4 + 6, "{c:?}");
}

/// The metadata context (FORMAT.md §4.2): every case, in every language.
#[test]
fn keystrata_json_metadata_context() {
    let doc = load("keystrata.json");
    let cases = doc["keychain"]["metadata_context"]
        .as_array()
        .expect("metadata_context");
    assert!(cases.len() >= 8);
    for c in cases {
        let entries: Vec<(String, String)> =
            serde_json::from_value(c["entries"].clone()).expect("entries");
        let binding = match &c["binding"] {
            Value::String(s) if s == "all" => keystrata::MetadataBinding::All,
            Value::String(s) if s == "nothing" => keystrata::MetadataBinding::Nothing,
            Value::Array(names) => keystrata::MetadataBinding::only(
                names.iter().map(|n| n.as_str().expect("name").to_owned()),
            ),
            other => panic!("binding {other}"),
        };
        let got = keystrata::metadata_context(entries, &binding);
        match c["error"].as_str() {
            None => assert_eq!(
                got.expect("context"),
                unhex(c["context_hex"].as_str().expect("context_hex")),
                "{}",
                c["comment"]
            ),
            Some(kind) => assert_eq!(
                got.expect_err("error").kind().name(),
                kind,
                "{}",
                c["comment"]
            ),
        }
    }
}
