//! Seal and unseal: small secrets directly under the encryption primary,
//! in Tink's AEAD format (`crate::seal` holds the byte layout).
//!
//! Each operation comes in two forms with the same bytes, counters and
//! events: one returns a `Vec`, the other (`_to`) writes into a buffer the
//! caller sized, so a language binding can have keystrata write straight
//! into its own byte-string object (for large payloads the second buffer
//! costs more than the encryption). [`seal_to`](Keychain::seal_to) writes
//! exactly `plaintext.len() + SEAL_OVERHEAD` bytes and
//! [`Keychain::unsealed_len`] gives the plaintext size. A buffer of any
//! other length is an `InvalidInput` error that uses no key. On any error
//! the buffer is left zeroed.

use zeroize::Zeroize;

use super::{check_len, zero_on_error, Keychain};
use crate::aead::{fill_random, NONCE_LEN};
use crate::error::Result;
use crate::events::Counter;
use crate::key::Purpose;
use crate::metrics::Op;
use crate::seal::{self, PREFIX_LEN, SEAL_OVERHEAD};

impl Keychain {
    /// Encrypts a small secret directly under the encryption primary.
    ///
    /// Output: Tink's AEAD format, `0x01 ‖ BE32(key_id) ‖ nonce(12) ‖
    /// ciphertext ‖ tag(16)`, with `aad` authenticated but not included.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        // An impossible length leaves the buffer empty; seal_to reports it.
        let mut out = vec![0u8; plaintext.len().checked_add(SEAL_OVERHEAD).unwrap_or(0)];
        self.seal_to(plaintext, aad, &mut out).map(|()| out)
    }

    /// Decrypts what [`seal`](Keychain::seal) (or Tink, with an imported
    /// keyset) produced, with the same `aad`.
    ///
    /// Errors: malformed input `Format`; a key_id not in the keychain
    /// `UnknownKey`; a disabled or destroyed key `KeyDisabled` /
    /// `KeyDestroyed`; anything else (tampering, wrong aad) `Authentication`.
    pub fn unseal(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        // Malformed input leaves the buffer empty; unseal_to reports it.
        let mut out = vec![0u8; Keychain::unsealed_len(ciphertext).unwrap_or(0)];
        self.unseal_to(ciphertext, aad, &mut out).map(|()| out)
    }

    /// The length of [`unseal`](Keychain::unseal)'s plaintext for
    /// `ciphertext`; a `Format` error if it cannot be a sealed ciphertext.
    pub fn unsealed_len(ciphertext: &[u8]) -> Result<usize> {
        seal::key_id(ciphertext)?;
        Ok(ciphertext.len() - SEAL_OVERHEAD)
    }

    /// [`seal`](Keychain::seal) into `out`, which must be exactly
    /// `plaintext.len() + SEAL_OVERHEAD` bytes.
    pub fn seal_to(&self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
        let started = self.start(Op::Seal);
        let r = check_len(
            "seal",
            out.len(),
            plaintext.len().checked_add(SEAL_OVERHEAD),
        )
        .and_then(|()| {
            self.with_encryption_key(|key, secret| {
                let mut nonce = [0u8; NONCE_LEN];
                fill_random(&mut nonce)?;
                seal::seal_to_slice(&secret.cipher, key.id, &nonce, plaintext, aad, out)
            })
        });
        let r = zero_on_error(r, out);
        self.done(r, Counter::Seal, started)
    }

    /// [`unseal`](Keychain::unseal) into `out`, which must be exactly
    /// [`unsealed_len`](Keychain::unsealed_len) bytes. Errors as for
    /// `unseal`.
    pub fn unseal_to(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
        let started = self.start(Op::Unseal);
        let key_id = seal::key_id(ciphertext);
        if key_id.is_ok() {
            if let Err(e) = check_len("unseal", out.len(), Some(ciphertext.len() - SEAL_OVERHEAD)) {
                out.zeroize();
                return self.track(Err(e));
            }
        }
        let named = key_id.as_ref().ok().copied();
        let r = key_id.and_then(|id| {
            let set = self.set_with_key(id)?;
            let (_, secret) = set.usable(id, Purpose::Encrypt)?;
            seal::open_to_slice(&secret.cipher, &ciphertext[PREFIX_LEN..], aad, out)
        });
        let r = zero_on_error(r, out);
        self.done_decrypt(r, Counter::UnsealOk, Counter::UnsealFailed, named, started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_to_and_unseal_to_match_the_vec_forms() {
        let kc = Keychain::generate().unwrap();
        for n in [0usize, 1, 100, 5000] {
            let pt = vec![0xabu8; n];
            let mut ct = vec![0u8; n + SEAL_OVERHEAD];
            kc.seal_to(&pt, b"aad", &mut ct).unwrap();
            assert_eq!(kc.unseal(&ct, b"aad").unwrap(), pt);
            let ct2 = kc.seal(&pt, b"aad").unwrap();
            assert_eq!(Keychain::unsealed_len(&ct2).unwrap(), n);
            let mut out = vec![1u8; n];
            kc.unseal_to(&ct2, b"aad", &mut out).unwrap();
            assert_eq!(out, pt);
        }
        let c = kc.counters();
        assert_eq!((c.seal, c.unseal_ok), (8, 8));
    }
}
