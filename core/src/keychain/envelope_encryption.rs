//! Envelope encryption: encrypt and decrypt in Tink's KmsEnvelopeAead
//! layout, a fresh data key per message wrapped by the encryption primary
//! (`crate::envelope_encryption` holds the byte layout).
//!
//! As for seal, each operation also comes as `_to`, writing into a buffer
//! the caller sized: [`encrypt_to`](Keychain::encrypt_to) writes exactly
//! `plaintext.len() + ENCRYPT_OVERHEAD` bytes and
//! [`Keychain::decrypted_len`] gives the plaintext size. A buffer of any
//! other length is an `InvalidInput` error that uses no key. On any error
//! the buffer is left zeroed.

use zeroize::Zeroize;

use super::{check_len, zero_on_error, Keychain};
use crate::envelope_encryption::{self, ENCRYPT_OVERHEAD};
use crate::error::Result;
use crate::events::Counter;
use crate::key::Purpose;
use crate::metrics::Op;
use crate::seal;

impl Keychain {
    /// Envelope-encrypts `plaintext`: a fresh 32-byte data key (DEK) per
    /// message encrypts the payload, and the encryption primary wraps the
    /// DEK. Output: Tink's KmsEnvelopeAead layout (see docs/FORMAT.md).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; plaintext.len().checked_add(ENCRYPT_OVERHEAD).unwrap_or(0)];
        self.encrypt_to(plaintext, aad, &mut out).map(|()| out)
    }

    /// Decrypts what [`encrypt`](Keychain::encrypt) (or Tink's
    /// KmsEnvelopeAead with this keychain as the remote AEAD) produced.
    pub fn decrypt(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; Keychain::decrypted_len(ciphertext).unwrap_or(0)];
        self.decrypt_to(ciphertext, aad, &mut out).map(|()| out)
    }

    /// The length of [`decrypt`](Keychain::decrypt)'s plaintext for
    /// `ciphertext`; a `Format` error if its framing is wrong.
    pub fn decrypted_len(ciphertext: &[u8]) -> Result<usize> {
        Ok(envelope_encryption::parse(ciphertext)?.plaintext_len())
    }

    /// [`encrypt`](Keychain::encrypt) into `out`, which must be exactly
    /// `plaintext.len() + ENCRYPT_OVERHEAD` bytes.
    pub fn encrypt_to(&self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
        let started = self.start(Op::Encrypt);
        let r = check_len(
            "encrypt",
            out.len(),
            plaintext.len().checked_add(ENCRYPT_OVERHEAD),
        )
        .and_then(|()| {
            self.with_encryption_key(|key, secret| {
                envelope_encryption::encrypt_to_slice(&secret.cipher, key.id, plaintext, aad, out)
            })
        });
        let r = zero_on_error(r, out);
        self.done(r, Counter::Encrypt, started)
    }

    /// [`decrypt`](Keychain::decrypt) into `out`, which must be exactly
    /// [`decrypted_len`](Keychain::decrypted_len) bytes. Errors as for
    /// `decrypt`.
    pub fn decrypt_to(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
        let started = self.start(Op::Decrypt);
        let parts = envelope_encryption::parse(ciphertext);
        if let Ok(p) = &parts {
            if let Err(e) = check_len("decrypt", out.len(), Some(p.plaintext_len())) {
                out.zeroize();
                return self.track(Err(e));
            }
        }
        let key_id = parts
            .as_ref()
            .ok()
            .and_then(|p| seal::key_id(p.enc_dek).ok());
        let r = parts.and_then(|p| {
            let id = seal::key_id(p.enc_dek)?;
            let set = self.set_with_key(id)?;
            let (_, secret) = set.usable(id, Purpose::Encrypt)?;
            envelope_encryption::open_to_slice(&secret.cipher, &p, aad, out)
        });
        let r = zero_on_error(r, out);
        self.done_decrypt(
            r,
            Counter::DecryptOk,
            Counter::DecryptFailed,
            key_id,
            started,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_to_and_decrypt_to_match_the_vec_forms() {
        let kc = Keychain::generate().unwrap();
        for n in [0usize, 1, 100, 70000] {
            let pt = vec![0x5au8; n];
            let mut blob = vec![0u8; n + ENCRYPT_OVERHEAD];
            kc.encrypt_to(&pt, b"doc", &mut blob).unwrap();
            assert_eq!(kc.decrypt(&blob, b"doc").unwrap(), pt);
            let blob2 = kc.encrypt(&pt, b"doc").unwrap();
            assert_eq!(Keychain::decrypted_len(&blob2).unwrap(), n);
            let mut out = vec![1u8; n];
            kc.decrypt_to(&blob2, b"doc", &mut out).unwrap();
            assert_eq!(out, pt);
        }
        let c = kc.counters();
        assert_eq!((c.encrypt, c.decrypt_ok), (8, 8));
    }
}
