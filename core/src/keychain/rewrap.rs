//! Rewrap: a ciphertext made under an older key, made again under the
//! current encryption primary, without the plaintext leaving the library
//! (Vault transit's `rewrap`, KMS `ReEncrypt`). For migrating data off a
//! key before it is disabled and destroyed; which key a ciphertext needs
//! is on the wire ([`crate::sealed_key_id`], [`crate::encrypted_key_id`],
//! [`Envelope::key_id`]).
//!
//! A rewrap counts as one `rewrap` (`kms_rewrap_total{ok}` and its
//! latency) and draws on the primary's usage like a seal or an encrypt;
//! it is not also counted as an unseal or a seal.

use zeroize::Zeroizing;

use super::Keychain;
use crate::envelope_encryption;
use crate::error::Result;
use crate::events::Counter;
use crate::key::Purpose;
use crate::metrics::Op;
use crate::seal;
use crate::secret::SecretBytes;
use crate::wrapped_key::Envelope;

impl Keychain {
    /// A sealed ciphertext ([`seal`](Keychain::seal)) under the current
    /// encryption primary: opened with the key it names and `aad`, sealed
    /// again with the same `aad`. The plaintext is wiped before this
    /// returns.
    ///
    /// Errors: as [`unseal`](Keychain::unseal) for the input (`Format`,
    /// `UnknownKey`, `KeyDisabled`, `KeyDestroyed`, `Authentication`), then
    /// as [`seal`](Keychain::seal) (`Policy` at an unbound keychain's
    /// usage limit, `Unavailable` once closed).
    pub fn rewrap_sealed(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let started = self.start(Op::Rewrap);
        let r = self.rewrap_sealed_inner(ciphertext, aad);
        self.done(r, Counter::RewrapOk, started)
    }

    fn rewrap_sealed_inner(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let id = seal::key_id(ciphertext)?;
        let plaintext = {
            let set = self.set_with_key(id)?;
            let (_, secret) = set.usable(id, Purpose::Encrypt)?;
            Zeroizing::new(seal::open(&secret.cipher, ciphertext, aad)?)
        };
        self.with_encryption_key(|key, secret| seal::seal(&secret.cipher, key.id, &plaintext, aad))
    }

    /// An envelope-encrypted blob ([`encrypt`](Keychain::encrypt)) under
    /// the current encryption primary: only its data key is unwrapped and
    /// wrapped again; the payload is copied unchanged, so no `aad` is
    /// needed and the cost does not grow with the payload beyond a copy.
    /// The payload is not authenticated here (its tag still binds it to
    /// the data key and the aad: [`decrypt`](Keychain::decrypt) checks
    /// it); Tink-made blobs come out in keystrata's own form.
    ///
    /// Errors: as [`decrypt`](Keychain::decrypt) for the framing and the
    /// data key (`Format`, `UnknownKey`, `KeyDisabled`, `KeyDestroyed`,
    /// `Authentication`, `Unsupported`), then as
    /// [`encrypt`](Keychain::encrypt).
    pub fn rewrap_encrypted(&self, blob: &[u8]) -> Result<Vec<u8>> {
        let started = self.start(Op::Rewrap);
        let r = self.rewrap_encrypted_inner(blob);
        self.done(r, Counter::RewrapOk, started)
    }

    fn rewrap_encrypted_inner(&self, blob: &[u8]) -> Result<Vec<u8>> {
        let parsed = envelope_encryption::parse(blob)?;
        let id = seal::key_id(parsed.enc_dek)?;
        let old = self.set_with_key(id)?;
        let (_, old_secret) = old.usable(id, Purpose::Encrypt)?;
        self.with_encryption_key(|key, secret| {
            envelope_encryption::rewrap(&old_secret.cipher, &parsed, &secret.cipher, key.id)
        })
    }

    /// A wrapped key ([`wrap_key`](crate::KeyManager::wrap_key) or
    /// [`wrap_key_with`](Keychain::wrap_key_with)) wrapped again under the
    /// current encryption primary, in the same form and bound to the same
    /// `context`. The key is wiped before this returns.
    ///
    /// Errors: as [`unwrap_key`](crate::KeyManager::unwrap_key), then as
    /// [`wrap_key`](crate::KeyManager::wrap_key).
    pub fn rewrap_envelope(&self, envelope: &Envelope, context: &[u8]) -> Result<Envelope> {
        let started = self.start(Op::Rewrap);
        let r = self.rewrap_envelope_inner(envelope, context);
        self.done(r, Counter::RewrapOk, started)
    }

    fn rewrap_envelope_inner(&self, envelope: &Envelope, context: &[u8]) -> Result<Envelope> {
        let key: SecretBytes = self.unwrap_inner(envelope, context)?;
        let form = envelope.keychain_form()?;
        self.wrap_inner(key.expose_secret(), context, form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, KeyManager, WrapForm};

    fn two_keys() -> (Keychain, u32, u32) {
        let kc = Keychain::generate().unwrap();
        let old = kc.primary().unwrap().key_id;
        let new = kc.rotate().unwrap().key_id;
        kc.promote(old).unwrap();
        (kc, old, new)
    }

    #[test]
    fn sealed_moves_to_the_primary_and_keeps_its_plaintext() {
        let (kc, old, new) = two_keys();
        let ct = kc.seal(b"secret", b"aad").unwrap();
        assert_eq!(seal::sealed_key_id(&ct).unwrap(), old);
        kc.promote(new).unwrap();
        let again = kc.rewrap_sealed(&ct, b"aad").unwrap();
        assert_eq!(seal::sealed_key_id(&again).unwrap(), new);
        kc.disable(old).unwrap();
        assert_eq!(kc.unseal(&again, b"aad").unwrap(), b"secret");
        assert_eq!(
            kc.unseal(&ct, b"aad").unwrap_err().kind(),
            ErrorKind::KeyDisabled
        );
        kc.enable(old).unwrap();
        assert_eq!(
            kc.rewrap_sealed(&ct, b"other").unwrap_err().kind(),
            ErrorKind::Authentication
        );
        let c = kc.counters();
        assert_eq!((c.seal, c.unseal_ok), (1, 1));
        let text = kc.metrics_text();
        assert!(text.contains("kms_rewrap_total{ok=\"true\"} 1\n"), "{text}");
        assert!(
            text.contains("kms_rewrap_total{ok=\"false\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn encrypted_rewraps_only_the_data_key() {
        let (kc, old, new) = two_keys();
        let blob = kc.encrypt(&vec![7u8; 5000], b"doc").unwrap();
        assert_eq!(envelope_encryption::encrypted_key_id(&blob).unwrap(), old);
        kc.promote(new).unwrap();
        let again = kc.rewrap_encrypted(&blob).unwrap();
        assert_eq!(again.len(), blob.len());
        assert_eq!(envelope_encryption::encrypted_key_id(&again).unwrap(), new);
        // The payload (nonce, ciphertext, tag) is the same bytes.
        assert_eq!(again[71..], blob[71..]);
        kc.destroy(old).unwrap();
        assert_eq!(kc.decrypt(&again, b"doc").unwrap(), vec![7u8; 5000]);
        assert_eq!(
            kc.rewrap_encrypted(&blob).unwrap_err().kind(),
            ErrorKind::KeyDestroyed
        );
        let mut bad = again.clone();
        bad[20] ^= 1;
        assert_eq!(
            kc.rewrap_encrypted(&bad).unwrap_err().kind(),
            ErrorKind::Authentication
        );
        assert_eq!(
            kc.rewrap_encrypted(&again[..50]).unwrap_err().kind(),
            ErrorKind::Format
        );
    }

    #[test]
    fn envelopes_keep_their_form_and_context() {
        let (kc, old, new) = two_keys();
        for form in [WrapForm::Full, WrapForm::Compact] {
            kc.promote(old).unwrap();
            let env = kc.wrap_key_with(&[9u8; 32], b"bucket/obj", form).unwrap();
            kc.promote(new).unwrap();
            let again = kc.rewrap_envelope(&env, b"bucket/obj").unwrap();
            assert_eq!(again.key_id, new.to_string());
            assert_eq!(again.ciphertext.len(), env.ciphertext.len());
            assert_eq!(again.keychain_form().unwrap(), form);
            assert_eq!(
                kc.unwrap_key(&again, b"bucket/obj")
                    .unwrap()
                    .expose_secret(),
                &[9u8; 32]
            );
            assert_eq!(
                kc.rewrap_envelope(&env, b"bucket/other")
                    .unwrap_err()
                    .kind(),
                ErrorKind::Authentication
            );
        }
    }

    #[test]
    fn nothing_is_rewrapped_after_close() {
        let (kc, _, _) = two_keys();
        let ct = kc.seal(b"x", b"").unwrap();
        kc.close().unwrap();
        assert_eq!(
            kc.rewrap_sealed(&ct, b"").unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }
}
