//! What keystrata's fuzz targets share: the fixed keys of the test vectors
//! (so seeds taken from `tests/vectors/` decrypt, and the fuzzer starts from
//! inputs that reach the deepest code), the roots the targets load
//! keychains through, the splitting of one input into fields, and the
//! checks every target applies to an error.
//!
//! The checks, for every error a target sees:
//! - its kind is one the operation documents (never `Internal`);
//! - an `Authentication` error of the keychain's own formats carries the
//!   one opaque message (it never says which check failed);
//! - its message is at most [`max_message_len`] bytes (caller input is
//!   echoed capped, never whole);
//! - its message holds none of the fixtures' secrets (key material, age
//!   identities, passphrases) unless the input itself held it.
//!
//! A panic anywhere, an allocation over libFuzzer's `-malloc_limit_mb` and
//! an input slower than `-timeout` are crashes too (`scripts/fuzz.sh` sets
//! both).

#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use keystrata::root::wrapped;
use keystrata::root::AGE_PROVIDER;
use keystrata::{
    AgeRoot, Envelope, Error, ErrorKind, EventKind, KeyManager, Keychain, Result, Root, SecretBytes,
};
use serde_json::Value;
use zeroize::Zeroizing;

/// `tests/vectors/keystrata.json`, compiled in.
pub const KEYSTRATA_VECTORS: &str = include_str!("../../tests/vectors/keystrata.json");
/// `tests/vectors/portable.json`, compiled in.
pub const PORTABLE_VECTORS: &str = include_str!("../../tests/vectors/portable.json");
/// `tests/vectors/tink.json`, compiled in.
pub const TINK_VECTORS: &str = include_str!("../../tests/vectors/tink.json");

/// The first line of every age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// The keys and roots every target uses, built once per process.
pub struct Fixtures {
    /// The keychain of `keystrata.json` (4 encryption keys: v1 destroyed,
    /// v2 disabled, v3 enabled, v4 primary; 1 derivation key).
    pub keychain: Keychain,
    /// Its age identity (`keychain.age_identity`).
    pub age_root: AgeRoot,
    /// The passphrase of `saved_passphrase`.
    pub passphrase: String,
    /// The `age` root of `portable.json`.
    pub portable_age_root: AgeRoot,
    /// The message of every `Authentication` error of the keychain's own
    /// formats, as the library writes it.
    pub auth_message: String,
    /// Secrets no error message may show: key material (base64 and hex),
    /// age identities, passphrases.
    pub secrets: Vec<String>,
}

fn parse(json: &str) -> Value {
    serde_json::from_str(json).expect("a vector file is valid JSON")
}

/// A string field of a vector file.
pub fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut at = v;
    for p in path {
        at = &at[*p];
    }
    at.as_str()
        .unwrap_or_else(|| panic!("vector field {path:?} is not a string"))
}

/// The fixtures, built on first use.
pub fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let ks = parse(KEYSTRATA_VECTORS);
        let pv = parse(PORTABLE_VECTORS);
        let plain = text(&ks, &["keychain", "plaintext_json"]);
        let keychain = Keychain::load(plain.as_bytes(), &IdentityRoot)
            .expect("the vector keychain's JSON loads");
        // Every DecryptFailed event names the kind returned to the caller.
        keychain
            .subscribe(|ev| {
                if ev.kind == EventKind::DecryptFailed {
                    assert!(
                        ev.error.is_some(),
                        "a DecryptFailed event without its error kind"
                    );
                }
            })
            .expect("subscribe to an open keychain");
        let identity = text(&ks, &["keychain", "age_identity"]);
        let age_root =
            AgeRoot::new([identity], Vec::<&str>::new()).expect("the vector identity parses");
        let passphrase = text(&ks, &["saved_passphrase", "passphrase"]).to_owned();
        let portable_identity = text(&pv, &["roots", "age", "age_identity"]);
        let portable_age_root = AgeRoot::new([portable_identity], Vec::<&str>::new())
            .expect("the portable vector identity parses");

        let mut secrets = vec![identity.to_owned(), passphrase.clone()];
        for (_, root) in pv["roots"].as_object().expect("roots").iter() {
            for field in ["age_identity", "passphrase"] {
                if let Some(s) = root[field].as_str() {
                    secrets.push(s.to_owned());
                }
            }
        }
        for which in ["keychain", "saved_passphrase"] {
            let doc = parse(text(&ks, &[which, "plaintext_json"]));
            for k in doc["keys"].as_array().expect("keys") {
                if let Some(m) = k["material"].as_str() {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(m)
                        .expect("material is base64");
                    secrets.push(m.to_owned());
                    secrets.push(hex(&raw));
                }
            }
        }
        for case in pv["decrypt"].as_array().expect("decrypt") {
            // The KEK is the record's last 32 bytes.
            let record = text(case, &["record_hex"]);
            secrets.push(record[record.len() - 64..].to_owned());
        }

        // The opaque message, read from the library rather than copied.
        let primary = keychain.primary().expect("primary").key_id;
        let mut forged = vec![0x01];
        forged.extend_from_slice(&primary.to_be_bytes());
        forged.resize(keystrata::seal::SEAL_OVERHEAD, 0);
        let auth = keychain
            .unseal(&forged, b"")
            .expect_err("a zero tag is refused");
        assert_eq!(auth.kind(), ErrorKind::Authentication);

        Fixtures {
            keychain,
            age_root,
            passphrase,
            portable_age_root,
            auth_message: auth.message().to_owned(),
            secrets,
        }
    })
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from lowercase or uppercase hex.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The longest error message the checks accept, in bytes: 1024, or
/// `KS_FUZZ_MAX_MESSAGE` (0 turns the check off).
pub fn max_message_len() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("KS_FUZZ_MAX_MESSAGE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1024)
    })
}

/// Which `Authentication` messages a target may see.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The keychain's own formats: always the one opaque message.
    Opaque,
    /// age files: the root says what it can (wrong identity, tampered).
    AnyMessage,
}

/// The checks every error goes through (see the crate docs). `input` is
/// the whole fuzz input, `op` names the call in the panic message.
pub fn check_error(op: &str, e: &Error, input: &[u8], allowed: &[ErrorKind], auth: Auth) {
    let kind = e.kind();
    assert!(
        kind != ErrorKind::Internal && allowed.contains(&kind),
        "{op}: error kind {kind:?} is not one it documents ({allowed:?}): {e}"
    );
    if kind == ErrorKind::Authentication && auth == Auth::Opaque {
        assert_eq!(
            e.message(),
            fixtures().auth_message,
            "{op}: an Authentication error says more than the opaque message"
        );
    }
    let max = max_message_len();
    assert!(
        max == 0 || e.message().len() <= max,
        "{op}: a {}-byte error message (the cap is {max}): {:.200}…",
        e.message().len(),
        e.message()
    );
    for s in &fixtures().secrets {
        if e.message().contains(s.as_str()) {
            assert!(
                contains(input, s.as_bytes()),
                "{op}: an error message shows a secret the input did not hold: {kind:?}"
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Splits `data` into a first field of `data[0]` bytes (fewer if the input
/// ends) and the rest. `None` for an empty input.
pub fn split_field(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = data.split_first()?;
    Some(rest.split_at(usize::from(n).min(rest.len())))
}

/// The inverse of [`split_field`] (for writing seeds).
pub fn join_field(first: &[u8], rest: &[u8]) -> Vec<u8> {
    let n = u8::try_from(first.len()).expect("a first field is at most 255 bytes");
    let mut out = vec![n];
    out.extend_from_slice(first);
    out.extend_from_slice(rest);
    out
}

// ---------------------------------------------------------------------
// Roots
// ---------------------------------------------------------------------

/// A root whose protection is the identity: the stored bytes are the
/// keychain's JSON. Reaches the JSON parser (private `at_rest`) with
/// fuzzer-chosen bytes, and portable KEK records likewise.
pub struct IdentityRoot;

/// Every root is a `KeyManager`; these fuzzing roots only do the at-rest
/// half, so their key wrapping is `Unsupported`.
macro_rules! at_rest_only {
    ($t:ty, $provider:expr) => {
        impl KeyManager for $t {
            fn provider(&self) -> &str {
                $provider
            }
            fn wrap_key(&self, _: &[u8], _: &[u8]) -> Result<Envelope> {
                Err(Error::new(
                    ErrorKind::Unsupported,
                    "an at-rest-only fuzzing root",
                ))
            }
            fn unwrap_key(&self, _: &Envelope, _: &[u8]) -> Result<SecretBytes> {
                Err(Error::new(
                    ErrorKind::Unsupported,
                    "an at-rest-only fuzzing root",
                ))
            }
            fn active_key_version(&self) -> Result<u32> {
                Ok(1)
            }
            fn health_check(&self) -> Result<()> {
                Ok(())
            }
            fn close(&self) -> Result<()> {
                Ok(())
            }
        }
    };
}

at_rest_only!(IdentityRoot, "fuzz-identity");
at_rest_only!(PortableRoot, "fuzz-portable");

impl Root for IdentityRoot {
    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
        Ok(keychain_json.to_vec())
    }
    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(stored.to_vec()))
    }
}

/// For portable ciphertexts: an age file is opened by the `age` root of
/// `portable.json` (so its vectors decrypt as they are), anything else is
/// taken as the record itself (so the fuzzer writes records directly).
pub struct PortableRoot;

impl Root for PortableRoot {
    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
        Ok(keychain_json.to_vec())
    }
    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if stored.starts_with(AGE_MAGIC) {
            fixtures().portable_age_root.unprotect(stored)
        } else {
            Ok(Zeroizing::new(stored.to_vec()))
        }
    }
}

/// The KeyManager behind [`WrappedRoot`]: envelopes of provider `"age"`
/// go to the vector age root, all others to the vector keychain (which
/// refuses other providers itself).
pub struct WrappedKeyManager;

impl KeyManager for WrappedKeyManager {
    fn provider(&self) -> &str {
        keystrata::KEYCHAIN_PROVIDER
    }
    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        fixtures().keychain.wrap_key(plaintext_key, context)
    }
    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        let f = fixtures();
        if envelope.provider == AGE_PROVIDER {
            f.age_root.unwrap_key(envelope, context)
        } else {
            f.keychain.unwrap_key(envelope, context)
        }
    }
    fn active_key_version(&self) -> Result<u32> {
        fixtures().keychain.active_key_version()
    }
    fn health_check(&self) -> Result<()> {
        Ok(())
    }
    fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// A root in the device-root format (`KSWR`, [`keystrata::root::wrapped`])
/// over [`WrappedKeyManager`]: what a PKCS#11 or KMIP root does, with the
/// device replaced by keys the fuzzer's seeds were made with.
pub struct WrappedRoot;

impl KeyManager for WrappedRoot {
    fn provider(&self) -> &str {
        "fuzz-wrapped"
    }
    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        WrappedKeyManager.wrap_key(plaintext_key, context)
    }
    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        WrappedKeyManager.unwrap_key(envelope, context)
    }
    fn active_key_version(&self) -> Result<u32> {
        WrappedKeyManager.active_key_version()
    }
    fn health_check(&self) -> Result<()> {
        Ok(())
    }
    fn close(&self) -> Result<()> {
        Ok(())
    }
}

impl Root for WrappedRoot {
    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
        wrapped::protect(&WrappedKeyManager, keychain_json)
    }
    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        wrapped::unprotect(&WrappedKeyManager, stored)
    }
}

/// A shared handle to [`PortableRoot`], for `PortableDecryptor`.
pub fn portable_root() -> Arc<dyn Root> {
    Arc::new(PortableRoot)
}
