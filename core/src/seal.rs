//! The seal format: Tink's AEAD ciphertext with a TINK output prefix.
//!
//! ```text
//! 0x01 ‖ BE32(key_id) ‖ nonce(12) ‖ ciphertext ‖ tag(16)
//! ```
//!
//! The AAD given to AES-GCM is the caller's aad only: the 5-byte prefix is
//! not authenticated by GCM itself, but a changed key ID selects another key
//! (or none) and so fails anyway.

use crate::aead::{fill_random, AeadEngine, Aes256Gcm, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};

/// The first byte of every sealed ciphertext (Tink's TINK prefix type).
pub const PREFIX_BYTE: u8 = 0x01;
/// Length of the prefix: the version byte and the big-endian key ID.
pub const PREFIX_LEN: usize = 5;
/// Bytes a sealed ciphertext adds to its plaintext: 5 + 12 + 16.
pub const SEAL_OVERHEAD: usize = PREFIX_LEN + NONCE_LEN + TAG_LEN;

/// The length of a sealed ciphertext of `plaintext_len` bytes: 33 more. An
/// `InvalidInput` error if that length does not fit in a `usize`.
pub fn sealed_len(plaintext_len: usize) -> Result<usize> {
    plaintext_len
        .checked_add(SEAL_OVERHEAD)
        .ok_or_else(|| Error::invalid("plaintext too long"))
}

/// The length of the plaintext in the sealed ciphertext `ciphertext`,
/// read from its length without opening it; a `Format` error if it cannot
/// be a sealed ciphertext (too short, another first byte).
pub fn unsealed_len(ciphertext: &[u8]) -> Result<usize> {
    key_id(ciphertext)?;
    Ok(ciphertext.len() - SEAL_OVERHEAD)
}

/// The key ID a sealed ciphertext names (the key that
/// [`Keychain::unseal`](crate::Keychain::unseal) needs), read from its
/// prefix without any key; `Format` if it cannot be a sealed ciphertext.
pub fn sealed_key_id(ciphertext: &[u8]) -> Result<u32> {
    key_id(ciphertext)
}

/// Reads the key ID a sealed ciphertext names, checking its shape.
pub(crate) fn key_id(ciphertext: &[u8]) -> Result<u32> {
    if ciphertext.len() < SEAL_OVERHEAD {
        return Err(Error::format(format!(
            "sealed ciphertext is {} bytes; the minimum is {SEAL_OVERHEAD}",
            ciphertext.len()
        )));
    }
    if ciphertext[0] != PREFIX_BYTE {
        return Err(Error::format(format!(
            "sealed ciphertext starts with 0x{:02x}, expected 0x01 (Tink prefix)",
            ciphertext[0]
        )));
    }
    Ok(u32::from_be_bytes([
        ciphertext[1],
        ciphertext[2],
        ciphertext[3],
        ciphertext[4],
    ]))
}

/// Writes `seal(plaintext, aad)` under `cipher` / `key_id` with `nonce`
/// into `out`, which must be exactly `plaintext.len() + SEAL_OVERHEAD`
/// bytes. The nonce must be fresh and random.
pub(crate) fn seal_to_slice(
    cipher: &Aes256Gcm,
    key_id: u32,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<()> {
    if Some(out.len()) != plaintext.len().checked_add(SEAL_OVERHEAD) {
        return Err(Error::internal("seal output buffer has the wrong length"));
    }
    out[0] = PREFIX_BYTE;
    out[1..PREFIX_LEN].copy_from_slice(&key_id.to_be_bytes());
    let (nonce_out, body) = out[PREFIX_LEN..].split_at_mut(NONCE_LEN);
    nonce_out.copy_from_slice(nonce);
    cipher.seal_into(nonce, aad, plaintext, body)
}

/// Seals into a fresh vector of exactly the right size.
pub(crate) fn seal(
    cipher: &Aes256Gcm,
    key_id: u32,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    let total = sealed_len(plaintext.len())?;
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut out = vec![0u8; total];
    seal_to_slice(cipher, key_id, &nonce, plaintext, aad, &mut out)?;
    Ok(out)
}

/// Opens `nonce(12) ‖ ct ‖ tag(16)` into `out`, which must be exactly
/// `nonce_ct_tag.len() - NONCE_LEN - TAG_LEN` bytes. Used for sealed
/// ciphertexts (after their 5-byte prefix) and for envelope payloads.
pub(crate) fn open_to_slice(
    cipher: &Aes256Gcm,
    nonce_ct_tag: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<()> {
    if nonce_ct_tag.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::authentication());
    }
    let (nonce, ct_tag) = nonce_ct_tag.split_at(NONCE_LEN);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    cipher.open_into(&n, aad, ct_tag, out)
}

/// Opens a sealed ciphertext whose prefix was already checked by [`key_id`].
pub(crate) fn open(cipher: &Aes256Gcm, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut out = vec![0u8; ciphertext.len() - SEAL_OVERHEAD];
    open_to_slice(cipher, &ciphertext[PREFIX_LEN..], aad, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn lengths_follow_the_format() {
        assert_eq!(sealed_len(0).expect("fits"), 33);
        assert_eq!(sealed_len(5).expect("fits"), 38);
        assert_eq!(
            sealed_len(usize::MAX).map_err(|e| e.kind()),
            Err(ErrorKind::InvalidInput)
        );
        let cipher = Aes256Gcm::new(&[7u8; 32]);
        let ct = seal(&cipher, 9, b"hello", b"").expect("seal");
        assert_eq!(ct.len(), sealed_len(5).expect("fits"));
        assert_eq!(unsealed_len(&ct).expect("sealed"), 5);
        assert_eq!(
            unsealed_len(&ct[..32]).map_err(|e| e.kind()),
            Err(ErrorKind::Format)
        );
        let mut other = ct.clone();
        other[0] = 0x00;
        assert_eq!(
            unsealed_len(&other).map_err(|e| e.kind()),
            Err(ErrorKind::Format)
        );
    }
}
