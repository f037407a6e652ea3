//! The wrapped-key [`Envelope`] that [`KeyManager::wrap_key`](crate::KeyManager::wrap_key)
//! returns, its object-metadata form, and the additional data every
//! wrapper binds. (Envelope *encryption*, `Keychain::encrypt`, is in
//! [`envelope_encryption`](crate::envelope_encryption).)

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;

use zeroize::Zeroizing;

use crate::aead::{fill_random, AeadEngine, Aes256Gcm, NONCE_LEN};
use crate::error::{Error, Result};
use crate::secret::SecretBytes;

/// Metadata key holding the base64 (standard, padded) wrapped key.
pub const META_WRAPPED_KEY: &str = "x-amz-meta-encryption-wrapped-key";
/// Metadata key holding the key ID.
pub const META_KMS_ID: &str = "x-amz-meta-encryption-kms-id";
/// Metadata key holding the provider name.
pub const META_PROVIDER: &str = "x-amz-meta-encryption-kms-provider";
/// Metadata key holding the decimal key version.
pub const META_KEY_VERSION: &str = "x-amz-meta-encryption-key-version";

/// A data key wrapped by a [`KeyManager`](crate::KeyManager).
///
/// Store it beside the data it protects; give it back to
/// [`KeyManager::unwrap_key`](crate::KeyManager::unwrap_key) with the same
/// context to get the key back. The envelope is bound to its provider,
/// key ID, key version and context: changing any of them makes unwrapping
/// fail.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The wrapping key's ID (for the keychain: the decimal key ID).
    pub key_id: String,
    /// The wrapping key's version.
    pub key_version: u32,
    /// Which KeyManager made it (`"keystrata"` for a keychain).
    pub provider: String,
    /// The wrapped key. For a keychain, a sealed ciphertext.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .field("provider", &self.provider)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

impl Envelope {
    /// The length of the key a keychain's envelope holds, read from the
    /// ciphertext's length without unwrapping it: for the full form (first
    /// byte 0x01, a sealed ciphertext) [`crate::seal::unsealed_len`], for
    /// the compact form (0x02, FORMAT.md §4.1) the length less
    /// [`COMPACT_WRAP_OVERHEAD`]. A `Format` error if the ciphertext is
    /// neither. (Envelopes of other providers have formats of their own.)
    pub fn keychain_key_len(&self) -> Result<usize> {
        match self.keychain_form()? {
            WrapForm::Compact => Ok(self.ciphertext.len() - COMPACT_WRAP_OVERHEAD),
            WrapForm::Full => crate::seal::unsealed_len(&self.ciphertext),
        }
    }

    /// The form of a keychain's envelope, from its first byte; a compact
    /// one is checked to hold at least one key byte. `Format` otherwise.
    pub(crate) fn keychain_form(&self) -> Result<WrapForm> {
        match self.ciphertext.first() {
            Some(&COMPACT_PREFIX_BYTE) => {
                let len = self.ciphertext.len();
                if len <= COMPACT_WRAP_OVERHEAD {
                    return Err(Error::format(format!(
                        "compact wrapped key is {len} bytes; the minimum is {}",
                        COMPACT_WRAP_OVERHEAD + 1
                    )));
                }
                Ok(WrapForm::Compact)
            }
            Some(&crate::seal::PREFIX_BYTE) => Ok(WrapForm::Full),
            Some(other) => Err(Error::format(format!(
                "wrapped key starts with 0x{other:02x}; expected 0x01 (full form) or 0x02 (compact form)"
            ))),
            None => Err(Error::format("wrapped key is empty")),
        }
    }

    /// The object-metadata form: four string entries, named as S3 gateways
    /// name them (`x-amz-meta-encryption-*`).
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert(
            META_WRAPPED_KEY.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(&self.ciphertext),
        );
        m.insert(META_KMS_ID.to_owned(), self.key_id.clone());
        m.insert(META_PROVIDER.to_owned(), self.provider.clone());
        m.insert(META_KEY_VERSION.to_owned(), self.key_version.to_string());
        m
    }

    /// Reads an envelope back from its metadata form. Other entries in the
    /// map are ignored; a missing or malformed entry is a Format error.
    pub fn from_metadata<K, V>(metadata: impl IntoIterator<Item = (K, V)>) -> Result<Envelope>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let (mut ct, mut id, mut prov, mut ver) = (None, None, None, None);
        for (k, v) in metadata {
            let v = v.as_ref();
            match k.as_ref() {
                META_WRAPPED_KEY => ct = Some(v.to_owned()),
                META_KMS_ID => id = Some(v.to_owned()),
                META_PROVIDER => prov = Some(v.to_owned()),
                META_KEY_VERSION => ver = Some(v.to_owned()),
                _ => {}
            }
        }
        let missing = |name: &str| Error::format(format!("envelope metadata lacks {name}"));
        let ct = ct.ok_or_else(|| missing(META_WRAPPED_KEY))?;
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(ct.as_bytes())
            .map_err(|_| Error::format(format!("{META_WRAPPED_KEY} is not valid base64")))?;
        let ver = ver.ok_or_else(|| missing(META_KEY_VERSION))?;
        let key_version = parse_decimal_u32(&ver)
            .ok_or_else(|| Error::format(format!("{META_KEY_VERSION} is not a decimal u32")))?;
        Ok(Envelope {
            key_id: id.ok_or_else(|| missing(META_KMS_ID))?,
            key_version,
            provider: prov.ok_or_else(|| missing(META_PROVIDER))?,
            ciphertext,
        })
    }
}

/// Domain label of the wrap AAD.
pub(crate) const WRAP_AAD_LABEL: &[u8] = b"keystrata/wrap/v1";
/// Domain label of the compact form's wrap AAD (FORMAT.md §4.1).
pub(crate) const WRAP_COMPACT_AAD_LABEL: &[u8] = b"keystrata/wrap/c1";

/// The first byte of a compact wrapped key (FORMAT.md §4.1). The full form
/// starts with 0x01, the Tink prefix of a sealed ciphertext.
pub const COMPACT_PREFIX_BYTE: u8 = 0x02;
/// Bytes the compact form adds to the wrapped key: 1 + 12 + 16 (61 bytes
/// for a 32-byte key, inside the 32..64 window AES key-wrap gateways check).
pub const COMPACT_WRAP_OVERHEAD: usize = 1 + crate::aead::NONCE_LEN + crate::aead::TAG_LEN;

/// The layout of an envelope's ciphertext, chosen when wrapping; unwrapping
/// reads it from the first byte and accepts both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WrapForm {
    /// A sealed ciphertext (FORMAT.md §4): it names its key itself
    /// (`0x01 ‖ key_id ‖ nonce ‖ ct ‖ tag`, key + 33 bytes).
    #[default]
    Full,
    /// `0x02 ‖ nonce ‖ ct ‖ tag` (key + 29 bytes): the key ID and version
    /// travel only in the envelope's fields, as object-store gateways store
    /// them (FORMAT.md §4.1).
    Compact,
}

impl WrapForm {
    /// The stable number of this form, shared by every binding (the C
    /// `KS_WRAP_*` values; 0 is left for "none"). Never reused; next free
    /// number: 3.
    pub const fn code(self) -> u32 {
        match self {
            WrapForm::Full => 1,
            WrapForm::Compact => 2,
        }
    }

    /// The form with the given stable number, if there is one.
    pub const fn from_code(code: u32) -> Option<WrapForm> {
        Some(match code {
            1 => WrapForm::Full,
            2 => WrapForm::Compact,
            _ => return None,
        })
    }

    /// `"full"` or `"compact"`, as every binding spells it.
    pub const fn name(self) -> &'static str {
        match self {
            WrapForm::Full => "full",
            WrapForm::Compact => "compact",
        }
    }

    /// Every form, in numeric order.
    pub const ALL: [WrapForm; 2] = [WrapForm::Full, WrapForm::Compact];

    /// The form named `name` (as [`name`](WrapForm::name) spells it).
    pub fn from_name(name: &str) -> Option<WrapForm> {
        WrapForm::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl std::str::FromStr for WrapForm {
    type Err = Error;

    /// [`WrapForm::from_name`], or `InvalidInput` saying which names exist
    /// (echoing at most 64 characters of `name`): the message every
    /// binding gives.
    fn from_str(name: &str) -> Result<WrapForm> {
        WrapForm::from_name(name).ok_or_else(|| {
            Error::invalid(format!(
                "form must be \"full\" or \"compact\", not {:?}",
                crate::error::truncate_for_message(name, 64)
            ))
        })
    }
}

/// The AAD that binds a wrapped key to its identity and context:
///
/// ```text
/// "keystrata/wrap/v1" ‖ u32be(len) ‖ provider ‖ u32be(len) ‖ key_id
///                     ‖ u32be(key_version) ‖ u32be(len) ‖ context
/// ```
pub fn wrap_aad(provider: &str, key_id: &str, key_version: u32, context: &[u8]) -> Result<Vec<u8>> {
    labelled_wrap_aad(WRAP_AAD_LABEL, provider, key_id, key_version, context)
}

/// The AAD of the compact form: [`wrap_aad`]'s layout under the label
/// `"keystrata/wrap/c1"`, so a ciphertext of one form never opens as the
/// other.
pub fn wrap_aad_compact(
    provider: &str,
    key_id: &str,
    key_version: u32,
    context: &[u8],
) -> Result<Vec<u8>> {
    labelled_wrap_aad(
        WRAP_COMPACT_AAD_LABEL,
        provider,
        key_id,
        key_version,
        context,
    )
}

fn labelled_wrap_aad(
    label: &[u8],
    provider: &str,
    key_id: &str,
    key_version: u32,
    context: &[u8],
) -> Result<Vec<u8>> {
    let mut out =
        Vec::with_capacity(label.len() + 16 + provider.len() + key_id.len() + context.len());
    out.extend_from_slice(label);
    for part in [provider.as_bytes(), key_id.as_bytes()] {
        out.extend_from_slice(&len32(part.len())?.to_be_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&key_version.to_be_bytes());
    out.extend_from_slice(&len32(context.len())?.to_be_bytes());
    out.extend_from_slice(context);
    Ok(out)
}

/// The compact form (FORMAT.md §4.1): `0x02 ‖ nonce ‖ ct ‖ tag` of `key`
/// under `cipher` with `aad` (made by [`wrap_aad_compact`]).
pub(crate) fn seal_compact(cipher: &Aes256Gcm, key: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut out = vec![0u8; key.len() + COMPACT_WRAP_OVERHEAD];
    out[0] = COMPACT_PREFIX_BYTE;
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let (nonce_out, body) = out[1..].split_at_mut(NONCE_LEN);
    nonce_out.copy_from_slice(&nonce);
    cipher.seal_into(&nonce, aad, key, body)?;
    Ok(out)
}

/// Opens what [`seal_compact`] made; `ciphertext`'s form was checked by
/// [`Envelope::keychain_form`].
pub(crate) fn open_compact(
    cipher: &Aes256Gcm,
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<SecretBytes> {
    let mut out = Zeroizing::new(vec![0u8; ciphertext.len() - COMPACT_WRAP_OVERHEAD]);
    crate::seal::open_to_slice(cipher, &ciphertext[1..], aad, &mut out)?;
    Ok(SecretBytes::from_zeroizing(out))
}

/// Parses ASCII digits only (no sign, no spaces, no underscores), so every
/// language reads the same strings the same way.
pub(crate) fn parse_decimal_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn len32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::invalid("field longer than 2^32-1 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trip_and_errors() {
        let e = Envelope {
            key_id: "42".into(),
            key_version: 3,
            provider: "keystrata".into(),
            ciphertext: vec![1, 2, 3, 250],
        };
        let m = e.to_metadata();
        assert_eq!(m[META_KEY_VERSION], "3");
        assert_eq!(m[META_WRAPPED_KEY], "AQID+g==");
        assert_eq!(Envelope::from_metadata(&m).expect("parse"), e);
        let mut bad = m.clone();
        bad.remove(META_PROVIDER);
        assert_eq!(
            Envelope::from_metadata(&bad).unwrap_err().kind(),
            crate::ErrorKind::Format
        );
        let mut bad = m.clone();
        bad.insert(META_KEY_VERSION.into(), "x".into());
        assert!(Envelope::from_metadata(&bad).is_err());
        let mut bad = m;
        bad.insert(META_WRAPPED_KEY.into(), "***".into());
        assert!(Envelope::from_metadata(&bad).is_err());
    }

    #[test]
    fn keychain_key_len_reads_the_sealed_length() {
        let mut e = Envelope {
            key_id: "42".into(),
            key_version: 1,
            provider: "keystrata".into(),
            ciphertext: vec![0u8; crate::seal::SEAL_OVERHEAD + 32],
        };
        e.ciphertext[0] = crate::seal::PREFIX_BYTE;
        assert_eq!(e.keychain_key_len().expect("sealed"), 32);
        e.ciphertext.truncate(10);
        assert_eq!(
            e.keychain_key_len().map_err(|e| e.kind()),
            Err(crate::ErrorKind::Format)
        );
        e.ciphertext = vec![COMPACT_PREFIX_BYTE; COMPACT_WRAP_OVERHEAD + 32];
        assert_eq!(e.keychain_key_len().expect("compact"), 32);
        e.ciphertext.truncate(COMPACT_WRAP_OVERHEAD);
        assert_eq!(
            e.keychain_key_len().map_err(|e| e.kind()),
            Err(crate::ErrorKind::Format)
        );
        for bad in [vec![], vec![0x03; 61]] {
            e.ciphertext = bad;
            assert_eq!(
                e.keychain_key_len().map_err(|e| e.kind()),
                Err(crate::ErrorKind::Format)
            );
        }
    }

    #[test]
    fn wrap_aad_layout() {
        let a = wrap_aad("p", "k1", 2, b"ctx").expect("aad");
        let mut want = b"keystrata/wrap/v1".to_vec();
        want.extend_from_slice(&[
            0, 0, 0, 1, b'p', 0, 0, 0, 2, b'k', b'1', 0, 0, 0, 2, 0, 0, 0, 3,
        ]);
        want.extend_from_slice(b"ctx");
        assert_eq!(a, want);
    }
}
