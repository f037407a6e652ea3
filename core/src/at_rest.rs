//! The keychain's plaintext JSON: what a root protects at rest.
//!
//! ```json
//! {
//!   "format": "keystrata.keychain",
//!   "version": 1,
//!   "revision": 7,
//!   "policy": {"max_encryptions_per_key": 4294967296, "max_key_age_secs": null, "usage_block": 65536},
//!   "primary": {"encrypt": 1734567890, "derive": 912345678, "sign": 55512345},
//!   "keys": [
//!     {"key_id": 1734567890, "version": 1, "purpose": "encrypt", "status": "enabled",
//!      "created_at": 1763890000, "usage": 65536, "material": "<base64, 32 bytes>"},
//!     {"key_id": 55512345, "version": 1, "purpose": "sign", "algorithm": "ed25519",
//!      "status": "enabled", "created_at": 1763890000, "usage": 0, "material": "<base64>"}
//!   ]
//! }
//! ```
//!
//! `primary.sign` and a key's `algorithm` appear only when the keychain has
//! signing keys (a keychain without them is written as before).
//!
//! The writer builds the text by hand into a buffer reserved up front, so no
//! reallocation leaves copies of key material behind; the reader decodes
//! material straight into zeroizing storage.

use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::aead::KEY_LEN;
use crate::error::{truncate_for_message, Error, Result};
use crate::key::{Key, KeyStatus, Purpose, Secret, Usage};
use crate::keyset::KeySet;
use crate::policy::Policy;
use crate::secret::KeyMaterial;
use crate::sign::Algorithm;

/// The `format` field of a saved keychain.
pub const FORMAT_NAME: &str = "keystrata.keychain";
/// The newest `version` this library reads and the one it writes.
pub const FORMAT_VERSION: u32 = 1;

/// Serializes `set`.
pub(crate) fn to_json(set: &KeySet) -> Result<Zeroizing<Vec<u8>>> {
    let mut s = Zeroizing::new(String::with_capacity(512 + set.keys.len() * 256));
    let p = &set.policy;
    let age = match p.max_key_age_secs {
        Some(a) => a.to_string(),
        None => "null".to_owned(),
    };
    let fmt_err = |_| Error::internal("formatting the keychain failed");
    write!(
        s,
        "{{\n  \"format\": \"{FORMAT_NAME}\",\n  \"version\": {FORMAT_VERSION},\n  \"revision\": {},\n  \"policy\": {{\"max_encryptions_per_key\": {}, \"max_key_age_secs\": {age}, \"usage_block\": {}}},\n  \"primary\": {{\"encrypt\": {}, \"derive\": {}",
        set.revision,
        p.max_encryptions_per_key,
        p.usage_block,
        set.primary_id(Purpose::Encrypt),
        set.primary_id(Purpose::Derive),
    )
    .map_err(fmt_err)?;
    if set.primary_sign.is_some() {
        write!(s, ", \"sign\": {}", set.primary_id(Purpose::Sign)).map_err(fmt_err)?;
    }
    if set.primary_stream.is_some() {
        write!(s, ", \"stream\": {}", set.primary_id(Purpose::Stream)).map_err(fmt_err)?;
    }
    s.push_str("},\n  \"keys\": [");
    let mut b64 = Zeroizing::new([0u8; 48]);
    for (i, k) in set.keys.iter().enumerate() {
        let usage = k.persisted_usage();
        write!(
            s,
            "{}\n    {{\"key_id\": {}, \"version\": {}, \"purpose\": \"{}\", {}\"status\": \"{}\", \"created_at\": {}, \"usage\": {}, \"material\": ",
            if i == 0 { "" } else { "," },
            k.id,
            k.version,
            k.purpose,
            match (k.algorithm, k.minisign_key_id) {
                (Some(a), Some(id)) => format!(
                    "\"algorithm\": \"{a}\", \"minisign_key_id\": \"{}\", ",
                    hex8(&id)
                ),
                (Some(a), None) => format!("\"algorithm\": \"{a}\", "),
                (None, _) => match k.stream_format {
                    Some(f) => format!("\"stream_format\": \"{}\", ", f.name()),
                    None => String::new(),
                },
            },
            k.status,
            k.created_at,
            usage
        )
        .map_err(fmt_err)?;
        match &k.secret {
            Some(secret) => {
                let n = base64::engine::general_purpose::STANDARD
                    .encode_slice(secret.material.0, &mut b64[..])
                    .map_err(|_| Error::internal("base64 buffer too small"))?;
                s.push('"');
                s.push_str(
                    std::str::from_utf8(&b64[..n])
                        .map_err(|_| Error::internal("base64 is ASCII"))?,
                );
                s.push_str("\"}");
            }
            None => s.push_str("null}"),
        }
    }
    s.push_str("\n  ]\n}\n");
    // `into_bytes` reuses the allocation: no unzeroized copy is left.
    Ok(Zeroizing::new(std::mem::take(&mut *s).into_bytes()))
}

#[derive(Deserialize)]
struct Doc {
    format: String,
    version: u32,
    /// Absent in keychains saved before stores had revisions.
    #[serde(default)]
    revision: u64,
    #[serde(default)]
    policy: Option<PolicyDoc>,
    primary: PrimaryDoc,
    keys: Vec<KeyDoc>,
}

#[derive(Deserialize)]
struct PolicyDoc {
    max_encryptions_per_key: u64,
    max_key_age_secs: Option<u64>,
    usage_block: u64,
}

#[derive(Deserialize)]
struct PrimaryDoc {
    encrypt: u32,
    derive: u32,
    /// Absent in keychains without signing keys.
    #[serde(default)]
    sign: Option<u32>,
    /// Absent in keychains without streaming keys.
    #[serde(default)]
    stream: Option<u32>,
}

#[derive(Deserialize)]
struct KeyDoc {
    key_id: u32,
    version: u32,
    purpose: String,
    /// Only for signing keys.
    #[serde(default)]
    algorithm: Option<String>,
    /// Only for Ed25519 keys imported from minisign: their key ID, 16 hex
    /// digits (the 8 bytes in order).
    #[serde(default)]
    minisign_key_id: Option<String>,
    /// Only for streaming keys: their format's name.
    #[serde(default)]
    stream_format: Option<String>,
    status: String,
    created_at: u64,
    usage: u64,
    material: Option<Material>,
}

/// Key material decoded from base64 straight into zeroizing storage.
struct Material(KeyMaterial);

impl<'de> Deserialize<'de> for Material {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Material, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Material;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("base64 of 32 bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Material, E> {
                let mut buf = Zeroizing::new([0u8; KEY_LEN + 3]);
                let n = base64::engine::general_purpose::STANDARD
                    .decode_slice(v, &mut buf[..])
                    .map_err(|_| E::custom("key material is not base64 of 32 bytes"))?;
                if n != KEY_LEN {
                    return Err(E::custom("key material is not 32 bytes"));
                }
                let mut m = KeyMaterial([0u8; KEY_LEN]);
                m.0.copy_from_slice(&buf[..KEY_LEN]);
                Ok(Material(m))
            }
        }
        d.deserialize_str(V)
    }
}

/// Parses and checks a keychain's plaintext JSON.
pub(crate) fn from_json(json: &[u8]) -> Result<KeySet> {
    // Read the header first, so a newer version is reported as such even if
    // the rest of its layout changed.
    #[derive(Deserialize)]
    struct Header {
        format: Option<String>,
        version: Option<u32>,
    }
    let h: Header = serde_json::from_slice(json)
        .map_err(|_| Error::format("the saved keychain is not keystrata JSON"))?;
    if h.format.as_deref() != Some(FORMAT_NAME) {
        return Err(Error::format(format!(
            "the saved keychain's format is {:?}, expected {FORMAT_NAME:?}",
            truncate_for_message(&h.format.unwrap_or_default(), 64)
        )));
    }
    match h.version {
        Some(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(Error::unsupported(format!(
                "the saved keychain has format version {v}; this library reads version {FORMAT_VERSION}"
            )))
        }
        None => return Err(Error::format("the saved keychain has no format version")),
    }
    let doc: Doc = serde_json::from_slice(json)
        // serde_json's message names the field and position, never values
        // of key material (the Material visitor's errors are fixed text).
        // serde_json's message may quote a field's value: cut it short.
        .map_err(|e| {
            Error::format(format!(
                "the saved keychain is malformed: {}",
                truncate_for_message(&e.to_string(), 160)
            ))
        })?;
    debug_assert_eq!(doc.format, FORMAT_NAME);
    debug_assert_eq!(doc.version, FORMAT_VERSION);
    let policy = match doc.policy {
        Some(p) => Policy {
            max_encryptions_per_key: p.max_encryptions_per_key,
            max_key_age_secs: p.max_key_age_secs,
            usage_block: p.usage_block,
        },
        None => Policy::default(),
    };
    policy.validate().map_err(|e| {
        Error::format(format!(
            "the saved keychain's policy is invalid: {}",
            e.message()
        ))
    })?;
    let mut keys = Vec::with_capacity(doc.keys.len());
    for k in doc.keys {
        let purpose = Purpose::parse(&k.purpose).ok_or_else(|| {
            Error::format(format!(
                "key {}: unknown purpose {:?}",
                k.key_id,
                truncate_for_message(&k.purpose, 64)
            ))
        })?;
        let status = KeyStatus::parse(&k.status).ok_or_else(|| {
            Error::format(format!(
                "key {}: unknown status {:?}",
                k.key_id,
                truncate_for_message(&k.status, 64)
            ))
        })?;
        if k.key_id == 0 || k.version == 0 {
            return Err(Error::format("a key has key_id or version 0"));
        }
        let algorithm = match (purpose, &k.algorithm) {
            (Purpose::Sign, Some(a)) => Some(Algorithm::from_name(a).ok_or_else(|| {
                Error::format(format!(
                    "key {}: unknown signing algorithm {:?}",
                    k.key_id,
                    truncate_for_message(a, 64)
                ))
            })?),
            (Purpose::Sign, None) => {
                return Err(Error::format(format!(
                    "signing key {} has no algorithm",
                    k.key_id
                )))
            }
            (_, Some(_)) => {
                return Err(Error::format(format!(
                    "key {} is a {purpose} key but names a signing algorithm",
                    k.key_id
                )))
            }
            (_, None) => None,
        };
        let stream_format = match (purpose, &k.stream_format) {
            (Purpose::Stream, Some(f)) => {
                Some(crate::stream::StreamFormat::from_name(f).ok_or_else(|| {
                    Error::format(format!(
                        "key {}: unknown stream format {:?}",
                        k.key_id,
                        truncate_for_message(f, 64)
                    ))
                })?)
            }
            (Purpose::Stream, None) => {
                return Err(Error::format(format!(
                    "streaming key {} has no stream_format",
                    k.key_id
                )))
            }
            (_, Some(_)) => {
                return Err(Error::format(format!(
                    "key {} is a {purpose} key but names a stream format",
                    k.key_id
                )))
            }
            (_, None) => None,
        };
        let minisign_key_id = match (&k.minisign_key_id, algorithm) {
            (None, _) => None,
            (Some(h), Some(crate::sign::Algorithm::Ed25519)) => {
                Some(unhex8(h).ok_or_else(|| {
                    Error::format(format!(
                        "key {}: minisign_key_id is not 16 hex digits",
                        k.key_id
                    ))
                })?)
            }
            (Some(_), _) => {
                return Err(Error::format(format!(
                    "key {} has a minisign_key_id but is not an ed25519 signing key",
                    k.key_id
                )))
            }
        };
        let secret = match (status, k.material) {
            (KeyStatus::Destroyed, _) => None,
            (_, Some(m)) => {
                let secret = Secret::new(m.0);
                // A signing key's material must be a valid private key of
                // its algorithm: checked (and its key pair kept) now.
                #[cfg(feature = "aws-lc")]
                if let Some(alg) = algorithm {
                    secret.key_pair(alg).map_err(|_| {
                        Error::format(format!(
                            "signing key {} does not hold a valid {alg} private key",
                            k.key_id
                        ))
                    })?;
                }
                Some(Arc::new(secret))
            }
            (_, None) => {
                return Err(Error::format(format!(
                    "key {} is {status} but has no material",
                    k.key_id
                )))
            }
        };
        keys.push(Key {
            id: k.key_id,
            version: k.version,
            purpose,
            status,
            created_at: k.created_at,
            algorithm,
            minisign_key_id,
            stream_format,
            secret,
            usage: Arc::new(Usage::unbound(k.usage)),
            stored_usage: k.usage,
        });
    }
    let mut set = KeySet::new(keys, doc.primary.encrypt, doc.primary.derive, policy)?;
    if let Some(id) = doc.primary.sign {
        set.primary_sign = Some(set.primary_position(id, Purpose::Sign)?);
    }
    if let Some(id) = doc.primary.stream {
        set.primary_stream = Some(set.primary_position(id, Purpose::Stream)?);
    }
    set.revision = doc.revision;
    Ok(set)
}
/// 8 bytes as 16 lower-case hex digits.
fn hex8(b: &[u8; 8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex8(s: &str) -> Option<[u8; 8]> {
    if s.len() != 16 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
