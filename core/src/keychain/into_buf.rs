//! Seal, unseal, encrypt and decrypt into a buffer the caller allocated.
//!
//! The same operations, bytes, counters and events as
//! [`Keychain::seal`] and friends, for callers that own the output memory:
//! a language binding builds its own byte-string object and has keystrata
//! write straight into it, rather than copying a returned `Vec` (for large
//! payloads the second buffer costs more than the encryption).
//!
//! Output sizes: [`seal_to`](Keychain::seal_to) writes exactly
//! `plaintext.len() + SEAL_OVERHEAD` bytes, [`encrypt_to`](Keychain::encrypt_to)
//! `plaintext.len() + ENCRYPT_OVERHEAD`; [`Keychain::unsealed_len`] and
//! [`Keychain::decrypted_len`] give the plaintext sizes. A buffer of any
//! other length is an `InvalidInput` error that uses no key. On any error
//! the buffer is left zeroed.

use zeroize::Zeroize;

use super::Keychain;
use crate::aead::{fill_random, NONCE_LEN};
use crate::encrypt::{self, ENCRYPT_OVERHEAD};
use crate::error::{Error, Result};
use crate::events::Counter;
use crate::key::Purpose;
use crate::seal::{self, PREFIX_LEN, SEAL_OVERHEAD};

fn check_len(what: &str, got: usize, want: Option<usize>) -> Result<()> {
    match want {
        Some(w) if w == got => Ok(()),
        Some(w) => Err(Error::invalid(format!(
            "{what} output buffer is {got} bytes; it must be exactly {w}"
        ))),
        None => Err(Error::invalid("plaintext too long")),
    }
}

fn zero_on_error(r: Result<()>, out: &mut [u8]) -> Result<()> {
    if r.is_err() {
        out.zeroize();
    }
    r
}

impl Keychain {
    /// The length of [`unseal`](Keychain::unseal)'s plaintext for
    /// `ciphertext`; a `Format` error if it cannot be a sealed ciphertext.
    pub fn unsealed_len(ciphertext: &[u8]) -> Result<usize> {
        seal::key_id(ciphertext)?;
        Ok(ciphertext.len() - SEAL_OVERHEAD)
    }

    /// The length of [`decrypt`](Keychain::decrypt)'s plaintext for
    /// `ciphertext`; a `Format` error if its framing is wrong.
    pub fn decrypted_len(ciphertext: &[u8]) -> Result<usize> {
        Ok(encrypt::parse(ciphertext)?.plaintext_len())
    }

    /// [`seal`](Keychain::seal) into `out`, which must be exactly
    /// `plaintext.len() + SEAL_OVERHEAD` bytes.
    pub fn seal_to(&self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
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
        self.done(r, Counter::Seal)
    }

    /// [`encrypt`](Keychain::encrypt) into `out`, which must be exactly
    /// `plaintext.len() + ENCRYPT_OVERHEAD` bytes.
    pub fn encrypt_to(&self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
        let r = check_len(
            "encrypt",
            out.len(),
            plaintext.len().checked_add(ENCRYPT_OVERHEAD),
        )
        .and_then(|()| {
            self.with_encryption_key(|key, secret| {
                encrypt::encrypt_to_slice(&secret.cipher, key.id, plaintext, aad, out)
            })
        });
        let r = zero_on_error(r, out);
        self.done(r, Counter::Encrypt)
    }

    /// [`unseal`](Keychain::unseal) into `out`, which must be exactly
    /// [`unsealed_len`](Keychain::unsealed_len) bytes. Errors as for
    /// `unseal`.
    pub fn unseal_to(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
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
        self.done_decrypt(r, Counter::UnsealOk, Counter::UnsealFailed, named)
    }

    /// [`decrypt`](Keychain::decrypt) into `out`, which must be exactly
    /// [`decrypted_len`](Keychain::decrypted_len) bytes. Errors as for
    /// `decrypt`.
    pub fn decrypt_to(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
        let parts = encrypt::parse(ciphertext);
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
            encrypt::open_to_slice(&secret.cipher, &p, aad, out)
        });
        let r = zero_on_error(r, out);
        self.done_decrypt(r, Counter::DecryptOk, Counter::DecryptFailed, key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, KeyManager};

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

    #[test]
    fn wrong_buffer_lengths_are_invalid_input_and_use_no_key() {
        let kc = Keychain::generate().unwrap();
        let mut short = [0u8; 10];
        let e = kc.seal_to(b"hello", b"", &mut short).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = kc.encrypt_to(b"hello", b"", &mut short).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(kc.primary().unwrap().usage, 0);
        let ct = kc.seal(b"hello", b"").unwrap();
        let e = kc.unseal_to(&ct, b"", &mut short).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let blob = kc.encrypt(b"hello", b"").unwrap();
        let e = kc.decrypt_to(&blob, b"", &mut short).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(kc.counters().errors_of(ErrorKind::InvalidInput), 4);
    }

    #[test]
    fn failures_match_the_vec_forms_and_leave_the_buffer_zeroed() {
        let kc = Keychain::generate().unwrap();
        let mut ct = kc.seal(b"secret", b"a").unwrap();
        let mut out = [7u8; 6];
        let e = kc.unseal_to(&ct, b"b", &mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Authentication);
        assert_eq!(out, [0u8; 6]);
        let n = ct.len();
        ct[n - 1] ^= 1;
        assert_eq!(
            kc.unseal_to(&ct, b"a", &mut out).unwrap_err().kind(),
            ErrorKind::Authentication
        );
        assert_eq!(
            kc.unseal_to(&ct[..4], b"a", &mut []).unwrap_err().kind(),
            ErrorKind::Format
        );
        assert_eq!(
            Keychain::decrypted_len(b"\x00\x00").unwrap_err().kind(),
            ErrorKind::Format
        );
        let blob = kc.encrypt(b"secret", b"a").unwrap();
        let mut out = [7u8; 6];
        assert_eq!(
            kc.decrypt_to(&blob, b"b", &mut out).unwrap_err().kind(),
            ErrorKind::Authentication
        );
        assert_eq!(out, [0u8; 6]);
        let c = kc.counters();
        assert_eq!((c.unseal_failed, c.decrypt_failed), (3, 1));
        kc.close().unwrap();
        let mut out = [0u8; SEAL_OVERHEAD + 1];
        assert_eq!(
            kc.seal_to(b"x", b"", &mut out).unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }
}
