//! The keychain as a [`KeyManager`]: wrapping data keys under the
//! encryption primary (provider [`KEYCHAIN_PROVIDER`]), and closing.

use std::sync::Arc;

use super::{Keychain, KEYCHAIN_PROVIDER};
use crate::error::{Error, Result};
use crate::events::Counter;
use crate::key::Purpose;
use crate::key_manager::{check_wrap_input, KeyManager};
use crate::keyset::KeySet;
use crate::metrics::Op;
use crate::seal;
use crate::secret::SecretBytes;
use crate::wrapped_key::{
    open_compact, seal_compact, wrap_aad, wrap_aad_compact, Envelope, WrapForm,
};

impl Keychain {
    /// Wraps `plaintext_key` like [`wrap_key`](KeyManager::wrap_key), in the
    /// chosen [`WrapForm`]. [`WrapForm::Compact`] makes a 61-byte ciphertext
    /// for a 32-byte key (the key ID and version travel in the envelope's
    /// fields only), for gateways that check an AES key-wrap size window of
    /// 32 to 64 bytes. [`unwrap_key`](KeyManager::unwrap_key) opens both
    /// forms.
    pub fn wrap_key_with(
        &self,
        plaintext_key: &[u8],
        context: &[u8],
        form: WrapForm,
    ) -> Result<Envelope> {
        let started = self.start(Op::Wrap);
        let r = self.wrap_inner(plaintext_key, context, form);
        self.done(r, Counter::Wrap, started)
    }

    pub(super) fn wrap_inner(
        &self,
        plaintext_key: &[u8],
        context: &[u8],
        form: WrapForm,
    ) -> Result<Envelope> {
        check_wrap_input(plaintext_key)?;
        self.with_encryption_key(|key, secret| {
            let key_id = key.id.to_string();
            let ciphertext = match form {
                WrapForm::Full => {
                    let aad = wrap_aad(KEYCHAIN_PROVIDER, &key_id, key.version, context)?;
                    seal::seal(&secret.cipher, key.id, plaintext_key, &aad)?
                }
                WrapForm::Compact => {
                    let aad = wrap_aad_compact(KEYCHAIN_PROVIDER, &key_id, key.version, context)?;
                    seal_compact(&secret.cipher, plaintext_key, &aad)?
                }
            };
            Ok(Envelope {
                ciphertext,
                key_id,
                key_version: key.version,
                provider: KEYCHAIN_PROVIDER.to_owned(),
            })
        })
    }

    pub(super) fn unwrap_inner(&self, env: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        self.check_open()?;
        #[cfg(feature = "kmip")]
        if env.provider == crate::root::kmip::gateway::GATEWAY_COSMIAN_PROVIDER {
            return self.unwrap_by_kmip_root(env, context);
        }
        crate::key_manager::check_provider(env, KEYCHAIN_PROVIDER)?;
        let id = crate::wrapped_key::parse_decimal_u32(&env.key_id)
            .ok_or_else(|| Error::format("envelope key_id is not a decimal key ID"))?;
        // The form, by its first byte (checked with the length in
        // wrapped_key.rs, the one place the layouts live).
        if env.keychain_form()? == WrapForm::Compact {
            let set = self.set_with_key(id)?;
            let (_, secret) = set.usable(id, Purpose::Encrypt)?;
            let aad = wrap_aad_compact(KEYCHAIN_PROVIDER, &env.key_id, env.key_version, context)?;
            return open_compact(&secret.cipher, &env.ciphertext, &aad);
        }
        if seal::key_id(&env.ciphertext)? != id {
            return Err(Error::authentication());
        }
        let set = self.set_with_key(id)?;
        let (_, secret) = set.usable(id, Purpose::Encrypt)?;
        let aad = wrap_aad(KEYCHAIN_PROVIDER, &env.key_id, env.key_version, context)?;
        Ok(SecretBytes::new(seal::open(
            &secret.cipher,
            &env.ciphertext,
            &aad,
        )?))
    }
}

impl KeyManager for Keychain {
    fn provider(&self) -> &str {
        KEYCHAIN_PROVIDER
    }

    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        let started = self.start(Op::Wrap);
        let r = self.wrap_inner(plaintext_key, context, WrapForm::Full);
        self.done(r, Counter::Wrap, started)
    }

    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        let started = self.start(Op::Unwrap);
        let r = self.unwrap_inner(envelope, context);
        let id = crate::wrapped_key::parse_decimal_u32(&envelope.key_id);
        self.done_decrypt(r, Counter::UnwrapOk, Counter::UnwrapFailed, id, started)
    }

    fn active_key_version(&self) -> Result<u32> {
        Ok(self.primary()?.version)
    }

    fn health_check(&self) -> Result<()> {
        self.check_open()
    }

    /// Closes the keychain: every later call fails with `Unavailable`, the
    /// key material is wiped once calls in flight finish, and every
    /// subscription is removed (its callback dropped), in every language.
    fn close(&self) -> Result<()> {
        {
            let _w = self.lock_writer();
            if let Some(b) = &self.bound {
                b.store.close();
            }
            // An empty snapshot is what "closed" means: no keychain is ever
            // empty otherwise, and every call loads through `live()`.
            self.state.store(Arc::new(KeySet::empty()));
        }
        self.telemetry.unsubscribe_all();
        Ok(())
    }
}

#[cfg(feature = "kmip")]
impl Keychain {
    /// An envelope of the S3 gateway's own Cosmian key manager (provider
    /// `cosmian-kmip`): read by the KMIP root this keychain is bound to,
    /// which asks its server to unwrap it (`root::kmip::gateway`), so a
    /// gateway that moves to keystrata keeps reading what it wrote before.
    /// Any other keychain: `InvalidInput`, saying what reads it.
    fn unwrap_by_kmip_root(&self, env: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        match &self.bound {
            Some(b) if b.root.provider() == crate::root::kmip::KMIP_PROVIDER => {
                b.root.unwrap_key(env, context)
            }
            _ => Err(Error::invalid(format!(
                "envelope is from provider {:?} (the S3 gateway's Cosmian key manager): \
                 only a keychain bound to a KMIP root on that server reads it",
                crate::root::kmip::gateway::GATEWAY_COSMIAN_PROVIDER
            ))),
        }
    }
}
