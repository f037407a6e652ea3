//! Tink cleartext JSON keysets: import and export of AES-256-GCM keys.
//!
//! keystrata's seal format is Tink's AES-GCM AEAD with the TINK output
//! prefix, so a Tink keyset of 32-byte `AesGcmKey`s with `TINK` prefixes can
//! be imported and keeps decrypting the ciphertexts Tink made, and a
//! keychain's encryption keys can be exported for Tink to use.

use base64::Engine as _;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::aead::KEY_LEN;
use crate::error::{truncate_for_message, Error, Result};
use crate::key::KeyStatus;

/// Tink's type URL for AES-GCM keys.
pub const AES_GCM_TYPE_URL: &str = "type.googleapis.com/google.crypto.tink.AesGcmKey";

/// The type URL of Tink's streaming AEAD keys (AES-GCM-HKDF).
pub const AES_GCM_HKDF_STREAMING_TYPE_URL: &str =
    "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey";

/// One key read from a Tink keyset.
pub(crate) struct TinkKey {
    pub(crate) key_id: u32,
    pub(crate) status: KeyStatus,
    /// `None` for a destroyed key whose data Tink cleared.
    pub(crate) material: Option<Zeroizing<[u8; KEY_LEN]>>,
    /// For a streaming key, its format (`None`: an AES-GCM AEAD key).
    pub(crate) stream: Option<crate::stream::StreamFormat>,
}

/// A Tink keyset, parsed.
pub(crate) struct TinkKeyset {
    pub(crate) primary_key_id: u32,
    pub(crate) keys: Vec<TinkKey>,
}

fn unsupported_key(id: u64, what: &str) -> Error {
    Error::unsupported(format!(
        "Tink key {id}: {what}; keystrata imports 32-byte AesGcmKey keys with TINK output prefix \
         and AesGcmHkdfStreamingKey keys (4 KB or 1 MB segments) with RAW prefix"
    ))
}

/// Parses the protobuf of a Tink `AesGcmKey`: `version` (field 1, must be
/// 0), `key_value` (field 3, must be 32 bytes). Nothing else is accepted.
pub(crate) fn aes_gcm_key_from_proto(proto: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let mut i = 0;
    let mut key: Option<Zeroizing<[u8; KEY_LEN]>> = None;
    let mut version_seen = false;
    let bad = |m: &str| Error::unsupported(format!("AesGcmKey protobuf: {m}"));
    while i < proto.len() {
        match proto[i] {
            0x08 => {
                // field 1, varint: the key version; only 0 exists. Each
                // field at most once (docs/FORMAT.md §3): a repeated field
                // would let two encodings of one key disagree.
                if std::mem::replace(&mut version_seen, true) {
                    return Err(bad("the version field is repeated"));
                }
                if proto.get(i + 1) != Some(&0) {
                    return Err(bad("unsupported key version"));
                }
                i += 2;
            }
            0x1a => {
                if key.is_some() {
                    return Err(bad("the key_value field is repeated"));
                }
                if proto.get(i + 1) != Some(&(KEY_LEN as u8)) {
                    return Err(bad("key_value is not 32 bytes"));
                }
                let start = i + 2;
                let end = start + KEY_LEN;
                let src = proto
                    .get(start..end)
                    .ok_or_else(|| Error::format("AesGcmKey protobuf is truncated"))?;
                let mut k = Zeroizing::new([0u8; KEY_LEN]);
                k.copy_from_slice(src);
                key = Some(k);
                i = end;
            }
            tag => return Err(bad(&format!("unexpected field tag 0x{tag:02x}"))),
        }
    }
    key.ok_or_else(|| bad("no key_value"))
}

/// Reads a protobuf varint at `*i`.
fn varint(proto: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *proto.get(*i)?;
        *i += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Parses the protobuf of a Tink `AesGcmHkdfStreamingKey`: `version`
/// (field 1, 0), `params` (field 2: `ciphertext_segment_size` 4096 or
/// 1048576, `derived_key_size` 32, `hkdf_hash_type` SHA256 = 3), and
/// `key_value` (field 3, 32 bytes). Each field at most once; nothing else.
pub(crate) fn streaming_key_from_proto(
    proto: &[u8],
) -> Result<(Zeroizing<[u8; KEY_LEN]>, crate::stream::StreamFormat)> {
    let bad = |m: &str| Error::unsupported(format!("AesGcmHkdfStreamingKey protobuf: {m}"));
    let cut = || Error::format("AesGcmHkdfStreamingKey protobuf is truncated");
    let (mut i, mut key, mut params, mut version) = (0, None, None, false);
    while i < proto.len() {
        let tag = varint(proto, &mut i).ok_or_else(cut)?;
        match tag {
            0x08 => {
                if std::mem::replace(&mut version, true)
                    || varint(proto, &mut i).ok_or_else(cut)? != 0
                {
                    return Err(bad("a repeated or non-zero version"));
                }
            }
            0x12 | 0x1a => {
                let n =
                    usize::try_from(varint(proto, &mut i).ok_or_else(cut)?).map_err(|_| cut())?;
                let end = i
                    .checked_add(n)
                    .filter(|&e| e <= proto.len())
                    .ok_or_else(cut)?;
                let field = &proto[i..end];
                i = end;
                if tag == 0x12 {
                    if params.replace(field).is_some() {
                        return Err(bad("the params field is repeated"));
                    }
                } else {
                    if key.is_some() || n != KEY_LEN {
                        return Err(bad("key_value is repeated or not 32 bytes"));
                    }
                    let mut k = Zeroizing::new([0u8; KEY_LEN]);
                    k.copy_from_slice(field);
                    key = Some(k);
                }
            }
            t => return Err(bad(&format!("unexpected field tag 0x{t:02x}"))),
        }
    }
    let params = params.ok_or_else(|| bad("no params"))?;
    let (mut j, mut seg, mut derived, mut hash) = (0, None, None, None);
    while j < params.len() {
        let tag = varint(params, &mut j).ok_or_else(cut)?;
        let v = varint(params, &mut j).ok_or_else(cut)?;
        let slot = match tag {
            0x08 => &mut seg,
            0x10 => &mut derived,
            0x18 => &mut hash,
            t => return Err(bad(&format!("unexpected params field tag 0x{t:02x}"))),
        };
        if slot.replace(v).is_some() {
            return Err(bad("a params field is repeated"));
        }
    }
    if derived != Some(KEY_LEN as u64) || hash != Some(3) {
        return Err(bad(
            "only a 32-byte derived key with HKDF-SHA256 is supported",
        ));
    }
    let format = seg
        .and_then(crate::stream::StreamFormat::from_segment_size)
        .ok_or_else(|| bad("ciphertext_segment_size must be 4096 or 1048576"))?;
    Ok((key.ok_or_else(|| bad("no key_value"))?, format))
}

/// The protobuf of a Tink `AesGcmHkdfStreamingKey` (version 0 left out, as
/// proto3 does).
pub(crate) fn streaming_key_proto(
    material: &[u8; KEY_LEN],
    format: crate::stream::StreamFormat,
) -> Zeroizing<Vec<u8>> {
    let mut params = Vec::with_capacity(12);
    params.push(0x08);
    push_varint(&mut params, format.segment_size() as u64);
    params.extend_from_slice(&[0x10, KEY_LEN as u8, 0x18, 0x03]);
    let mut out = Zeroizing::new(Vec::with_capacity(4 + params.len() + KEY_LEN));
    out.push(0x12);
    out.push(params.len() as u8);
    out.extend_from_slice(&params);
    out.extend_from_slice(&[0x1a, KEY_LEN as u8]);
    out.extend_from_slice(material);
    out
}

fn u32_field(v: &Value, name: &str) -> Result<u32> {
    let n = v
        .get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::format(format!("Tink keyset: missing or non-integer \"{name}\"")))?;
    u32::try_from(n).map_err(|_| Error::format(format!("Tink keyset: \"{name}\" exceeds 32 bits")))
}

/// Parses a Tink cleartext JSON keyset.
pub(crate) fn parse_keyset(json: &str) -> Result<TinkKeyset> {
    let v: Value = serde_json::from_str(json).map_err(|e| {
        Error::format(format!(
            "Tink keyset is not valid JSON: {}",
            truncate_for_message(&e.to_string(), 160)
        ))
    })?;
    let primary_key_id = u32_field(&v, "primaryKeyId")?;
    let list = v
        .get("key")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::format("Tink keyset: missing \"key\" array"))?;
    if list.is_empty() {
        return Err(Error::format("Tink keyset has no keys"));
    }
    let mut keys = Vec::with_capacity(list.len());
    for k in list {
        let key_id = u32_field(k, "keyId")?;
        let id = u64::from(key_id);
        if key_id == 0 {
            return Err(unsupported_key(id, "key ID 0 cannot be represented"));
        }
        let status = match k.get("status").and_then(Value::as_str) {
            Some("ENABLED") => KeyStatus::Enabled,
            Some("DISABLED") => KeyStatus::Disabled,
            Some("DESTROYED") => KeyStatus::Destroyed,
            other => {
                return Err(Error::format(format!(
                    "Tink key {id}: unknown status {:?}",
                    other.map(|o| truncate_for_message(o, 64))
                )))
            }
        };
        let prefix = match k.get("outputPrefixType").and_then(Value::as_str) {
            Some(p @ ("TINK" | "RAW")) => p,
            Some(other) => {
                return Err(unsupported_key(
                    id,
                    &format!("output prefix {}", truncate_for_message(other, 64)),
                ))
            }
            None => return Err(Error::format(format!("Tink key {id}: no outputPrefixType"))),
        };
        let data = k.get("keyData");
        if status == KeyStatus::Destroyed && data.is_none() {
            // Tink clears the key data of destroyed keys: keep the key ID
            // so its ciphertexts fail with KeyDestroyed.
            if keys.iter().any(|x: &TinkKey| x.key_id == key_id) {
                return Err(Error::format(format!(
                    "Tink keyset: key ID {id} appears twice"
                )));
            }
            keys.push(TinkKey {
                key_id,
                status,
                material: None,
                stream: None,
            });
            continue;
        }
        let data = data.ok_or_else(|| Error::format(format!("Tink key {id}: no keyData")))?;
        let type_url = data.get("typeUrl").and_then(Value::as_str).unwrap_or("");
        let streaming = match (type_url, prefix) {
            (AES_GCM_TYPE_URL, "TINK") => false,
            (AES_GCM_HKDF_STREAMING_TYPE_URL, "RAW") => true,
            (AES_GCM_TYPE_URL | AES_GCM_HKDF_STREAMING_TYPE_URL, p) => {
                return Err(unsupported_key(
                    id,
                    &format!("output prefix {p} for this key type"),
                ))
            }
            _ => {
                return Err(unsupported_key(
                    id,
                    &format!("key type {}", truncate_for_message(type_url, 128)),
                ))
            }
        };
        let value = data
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::format(format!("Tink key {id}: no keyData.value")))?;
        let proto = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| {
                    Error::format(format!("Tink key {id}: keyData.value is not base64"))
                })?,
        );
        let parsed = if streaming {
            streaming_key_from_proto(&proto).map(|(k, f)| (k, Some(f)))
        } else {
            aes_gcm_key_from_proto(&proto).map(|k| (k, None))
        };
        let (material, stream) = parsed.map_err(|e| {
            if e.kind() == crate::ErrorKind::Unsupported {
                unsupported_key(id, e.message())
            } else {
                e
            }
        })?;
        if keys.iter().any(|x: &TinkKey| x.key_id == key_id) {
            return Err(Error::format(format!(
                "Tink keyset: key ID {id} appears twice"
            )));
        }
        keys.push(TinkKey {
            key_id,
            status,
            material: Some(material),
            stream,
        });
    }
    let with_data = || keys.iter().filter(|k| k.material.is_some());
    if with_data().any(|k| k.stream.is_some()) && with_data().any(|k| k.stream.is_none()) {
        return Err(Error::format(
            "Tink keyset mixes AEAD and streaming AEAD keys (a keyset holds one primitive)",
        ));
    }
    match keys.iter().find(|k| k.key_id == primary_key_id) {
        Some(k) if k.status == KeyStatus::Enabled => {}
        Some(_) => return Err(Error::format("Tink keyset: the primary key is not enabled")),
        None => return Err(Error::format("Tink keyset: primaryKeyId names no key")),
    }
    Ok(TinkKeyset {
        primary_key_id,
        keys,
    })
}

/// Writes one streaming key entry (RAW prefix) of a Tink cleartext JSON
/// keyset into `out`.
pub(crate) fn write_stream_key_json(
    out: &mut Zeroizing<String>,
    key_id: u32,
    status: KeyStatus,
    material: &[u8; KEY_LEN],
    format: crate::stream::StreamFormat,
) {
    let proto = streaming_key_proto(material, format);
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&proto[..]));
    let status = match status {
        KeyStatus::Enabled => "ENABLED",
        KeyStatus::Disabled => "DISABLED",
        KeyStatus::Destroyed => "DESTROYED",
    };
    out.push_str("{\"keyData\":{\"typeUrl\":\"");
    out.push_str(AES_GCM_HKDF_STREAMING_TYPE_URL);
    out.push_str("\",\"value\":\"");
    out.push_str(&b64);
    out.push_str("\",\"keyMaterialType\":\"SYMMETRIC\"},\"status\":\"");
    out.push_str(status);
    out.push_str("\",\"keyId\":");
    out.push_str(&key_id.to_string());
    out.push_str(",\"outputPrefixType\":\"RAW\"}");
}

/// Writes one key entry of a Tink cleartext JSON keyset into `out`, whose
/// capacity the caller reserved (so no reallocation leaves copies behind).
pub(crate) fn write_key_json(
    out: &mut Zeroizing<String>,
    key_id: u32,
    status: KeyStatus,
    material: &[u8; KEY_LEN],
) {
    let mut proto = Zeroizing::new([0u8; 2 + KEY_LEN]);
    proto[0] = 0x1a;
    proto[1] = KEY_LEN as u8;
    proto[2..].copy_from_slice(material);
    let mut b64 = Zeroizing::new([0u8; 48]);
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(&proto[..], &mut b64[..])
        .unwrap_or(0);
    let status = match status {
        KeyStatus::Enabled => "ENABLED",
        KeyStatus::Disabled => "DISABLED",
        KeyStatus::Destroyed => "DESTROYED",
    };
    out.push_str("{\"keyData\":{\"typeUrl\":\"");
    out.push_str(AES_GCM_TYPE_URL);
    out.push_str("\",\"value\":\"");
    out.push_str(std::str::from_utf8(&b64[..n]).unwrap_or(""));
    out.push_str("\",\"keyMaterialType\":\"SYMMETRIC\"},\"status\":\"");
    out.push_str(status);
    out.push_str("\",\"keyId\":");
    out.push_str(&key_id.to_string());
    out.push_str(",\"outputPrefixType\":\"TINK\"}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_parser_accepts_only_aes256_gcm_keys() {
        let mut p = vec![0x1a, 0x20];
        p.extend_from_slice(&[5u8; 32]);
        assert_eq!(*aes_gcm_key_from_proto(&p).expect("ok"), [5u8; 32]);
        let mut v0 = vec![0x08, 0x00];
        v0.extend_from_slice(&p);
        assert!(aes_gcm_key_from_proto(&v0).is_ok());
        let mut short = vec![0x1a, 0x10];
        short.extend_from_slice(&[5u8; 16]);
        assert_eq!(
            aes_gcm_key_from_proto(&short).unwrap_err().kind(),
            crate::ErrorKind::Unsupported
        );
        assert!(aes_gcm_key_from_proto(&p[..20]).is_err());
        assert!(aes_gcm_key_from_proto(&[0x08, 0x01]).is_err());
        assert!(aes_gcm_key_from_proto(&[]).is_err());
    }

    #[test]
    fn repeated_fields_are_refused_as_the_format_says() {
        let mut key = vec![0x1a, 0x20];
        key.extend_from_slice(&[5u8; 32]);
        let mut other = vec![0x1a, 0x20];
        other.extend_from_slice(&[6u8; 32]);
        for proto in [
            [key.clone(), other].concat(),
            [key.clone(), key.clone()].concat(),
            [vec![0x08, 0x00, 0x08, 0x00], key.clone()].concat(),
            [vec![0x08, 0x00], key.clone(), vec![0x08, 0x00]].concat(),
        ] {
            let e = aes_gcm_key_from_proto(&proto).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Unsupported, "{proto:02x?}");
            assert!(e.message().contains("repeated"), "{}", e.message());
        }
    }
}
