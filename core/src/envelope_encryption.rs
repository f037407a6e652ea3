//! Envelope encryption (`Keychain::encrypt`) in Tink's KmsEnvelopeAead
//! layout. (The [`Envelope`](crate::Envelope) that `wrap_key` returns is
//! another thing, in [`wrapped_key`](crate::wrapped_key).)
//!
//! ```text
//! BE32(len(enc_dek)) ‖ enc_dek ‖ nonce(12) ‖ ciphertext ‖ tag(16)
//! enc_dek = seal(0x1a 0x20 ‖ dek, aad = "")   under the keychain's primary
//! ```
//!
//! `0x1a 0x20 ‖ dek` is the protobuf serialization of a Tink `AesGcmKey`
//! (field 3, 32 bytes); the payload is AES-256-GCM under the DEK with the
//! caller's aad. A fresh DEK is drawn for every message.

use zeroize::Zeroizing;

use crate::aead::{fill_random, AeadEngine, Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::seal::{self, SEAL_OVERHEAD};
use crate::tink;

/// Length of the serialized DEK (`0x1a 0x20 ‖ 32 bytes`).
pub(crate) const DEK_PROTO_LEN: usize = 2 + KEY_LEN;
/// Length of `enc_dek` when keystrata wrote it.
pub const ENCRYPTED_DEK_LEN: usize = SEAL_OVERHEAD + DEK_PROTO_LEN;
/// Bytes `encrypt` adds to its plaintext: 4 + 67 + 12 + 16 = 99.
pub const ENCRYPT_OVERHEAD: usize = 4 + ENCRYPTED_DEK_LEN + NONCE_LEN + TAG_LEN;

/// The length of an envelope ciphertext of `plaintext_len` bytes, as
/// `encrypt` writes it: 99 more. An `InvalidInput` error if that length
/// does not fit in a `usize`.
pub fn encrypted_len(plaintext_len: usize) -> Result<usize> {
    plaintext_len
        .checked_add(ENCRYPT_OVERHEAD)
        .ok_or_else(|| Error::invalid("plaintext too long"))
}

/// Encrypts `plaintext` under a fresh DEK wrapped by `kek` / `kek_id` into
/// `out`, which must be exactly `plaintext.len() + ENCRYPT_OVERHEAD` bytes.
pub(crate) fn encrypt_to_slice(
    kek: &Aes256Gcm,
    kek_id: u32,
    plaintext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<()> {
    if Some(out.len()) != plaintext.len().checked_add(ENCRYPT_OVERHEAD) {
        return Err(Error::internal(
            "encrypt output buffer has the wrong length",
        ));
    }
    // One system call draws the DEK and both nonces.
    let mut rnd = Zeroizing::new([0u8; KEY_LEN + 2 * NONCE_LEN]);
    fill_random(&mut rnd[..])?;
    let mut dek_proto = Zeroizing::new([0u8; DEK_PROTO_LEN]);
    dek_proto[0] = 0x1a;
    dek_proto[1] = 0x20;
    dek_proto[2..].copy_from_slice(&rnd[..KEY_LEN]);
    let mut dek = Zeroizing::new([0u8; KEY_LEN]);
    dek.copy_from_slice(&rnd[..KEY_LEN]);
    let mut dek_nonce = [0u8; NONCE_LEN];
    dek_nonce.copy_from_slice(&rnd[KEY_LEN..KEY_LEN + NONCE_LEN]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&rnd[KEY_LEN + NONCE_LEN..]);

    let (len_field, rest) = out.split_at_mut(4);
    len_field.copy_from_slice(&(ENCRYPTED_DEK_LEN as u32).to_be_bytes());
    let (enc_dek, payload) = rest.split_at_mut(ENCRYPTED_DEK_LEN);
    seal::seal_to_slice(kek, kek_id, &dek_nonce, &dek_proto[..], b"", enc_dek)?;
    let (nonce_out, body) = payload.split_at_mut(NONCE_LEN);
    nonce_out.copy_from_slice(&nonce);
    Aes256Gcm::new(&dek).seal_into(&nonce, aad, plaintext, body)
}

/// The parts of an envelope ciphertext.
pub(crate) struct Parsed<'a> {
    pub(crate) enc_dek: &'a [u8],
    pub(crate) payload: &'a [u8],
}

impl Parsed<'_> {
    /// Length of the plaintext the payload holds.
    pub(crate) fn plaintext_len(&self) -> usize {
        self.payload.len() - NONCE_LEN - TAG_LEN
    }
}

/// Splits an envelope ciphertext, checking only its framing.
pub(crate) fn parse(blob: &[u8]) -> Result<Parsed<'_>> {
    if blob.len() < 4 {
        return Err(Error::format(
            "envelope ciphertext shorter than its 4-byte length field",
        ));
    }
    let n = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    let rest = &blob[4..];
    if n < SEAL_OVERHEAD || n > rest.len() {
        return Err(Error::format(format!(
            "envelope ciphertext names an encrypted DEK of {n} bytes; {} bytes follow",
            rest.len()
        )));
    }
    let (enc_dek, payload) = rest.split_at(n);
    if payload.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::format("envelope ciphertext payload is truncated"));
    }
    Ok(Parsed { enc_dek, payload })
}

/// Opens a parsed envelope ciphertext with `kek`, the key its `enc_dek`
/// names, into `out` (exactly [`Parsed::plaintext_len`] bytes): the DEK
/// (aad ""), then the payload with the caller's `aad`.
pub(crate) fn open_to_slice(
    kek: &Aes256Gcm,
    parsed: &Parsed<'_>,
    aad: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let proto = Zeroizing::new(seal::open(kek, parsed.enc_dek, b"")?);
    let dek = tink::aes_gcm_key_from_proto(&proto)?;
    seal::open_to_slice(&Aes256Gcm::new(&dek), parsed.payload, aad, out)
}

/// A parsed envelope ciphertext with its DEK wrapped again: opened with
/// `old_kek` (the key its `enc_dek` names, aad ""), checked to be an
/// AES-256 `AesGcmKey` as decryption would, and sealed under `new_kek` /
/// `new_kek_id` in keystrata's own form (67 bytes); the payload is copied
/// as it is, neither decrypted nor authenticated (its tag still binds it
/// to the DEK and the caller's aad).
pub(crate) fn rewrap(
    old_kek: &Aes256Gcm,
    parsed: &Parsed<'_>,
    new_kek: &Aes256Gcm,
    new_kek_id: u32,
) -> Result<Vec<u8>> {
    let proto = Zeroizing::new(seal::open(old_kek, parsed.enc_dek, b"")?);
    let dek = tink::aes_gcm_key_from_proto(&proto)?;
    let mut dek_proto = Zeroizing::new([0u8; DEK_PROTO_LEN]);
    dek_proto[0] = 0x1a;
    dek_proto[1] = 0x20;
    dek_proto[2..].copy_from_slice(&dek[..]);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut out = vec![0u8; 4 + ENCRYPTED_DEK_LEN + parsed.payload.len()];
    let (len_field, rest) = out.split_at_mut(4);
    len_field.copy_from_slice(&(ENCRYPTED_DEK_LEN as u32).to_be_bytes());
    let (enc_dek, payload) = rest.split_at_mut(ENCRYPTED_DEK_LEN);
    seal::seal_to_slice(new_kek, new_kek_id, &nonce, &dek_proto[..], b"", enc_dek)?;
    payload.copy_from_slice(parsed.payload);
    Ok(out)
}

/// The key ID an envelope ciphertext's wrapped DEK names (the key that
/// [`Keychain::decrypt`](crate::Keychain::decrypt) needs), read from its
/// framing without any key; `Format` if the framing is wrong.
pub fn encrypted_key_id(blob: &[u8]) -> Result<u32> {
    seal::key_id(parse(blob)?.enc_dek)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn encrypted_len_follows_the_format() {
        let kek = Aes256Gcm::new(&[3u8; 32]);
        for n in [0usize, 1, 1000] {
            let want = encrypted_len(n).expect("fits");
            let mut out = vec![0u8; want];
            encrypt_to_slice(&kek, 4, &vec![1u8; n], b"", &mut out).expect("encrypt");
            assert_eq!(parse(&out).expect("framing").plaintext_len(), n);
        }
        assert_eq!(encrypted_len(0).expect("fits"), 99);
        assert_eq!(
            encrypted_len(usize::MAX - 10).map_err(|e| e.kind()),
            Err(ErrorKind::InvalidInput)
        );
    }
}
