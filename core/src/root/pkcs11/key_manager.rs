//! The `KeyManager` and `Root` implementations: `wrap_key` is one
//! `C_Encrypt` with `CKM_AES_GCM`; keychains are saved in the
//! [`wrapped`](crate::root::wrapped) format.

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use zeroize::Zeroizing;

use super::errors::Op;
use super::{Pkcs11Root, PKCS11_PROVIDER};
use crate::aead::{fill_random, NONCE_LEN, TAG_LEN};
use crate::error::{Error, ErrorKind, Result};
use crate::key_manager::{check_wrap_input, KeyManager};
use crate::root::{device, Root};
use crate::secret::SecretBytes;
use crate::wrapped_key::Envelope;

impl KeyManager for Pkcs11Root {
    fn provider(&self) -> &str {
        PKCS11_PROVIDER
    }

    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        self.check_open()?;
        check_wrap_input(plaintext_key)?;
        let aad = device::aad(
            PKCS11_PROVIDER,
            &self.0.key_label,
            device::KEY_VERSION,
            context,
        )?;
        let mut iv = [0u8; NONCE_LEN];
        fill_random(&mut iv)?;
        let (iv, ct) = self.call(Op::Encrypt, |session, key| {
            // Some HSMs write the IV they used back into the parameters.
            let mut used = iv;
            let ct = {
                let params = GcmParams::new(&mut used, &aad, (TAG_LEN as u64 * 8).into())?;
                session.encrypt(&Mechanism::AesGcm(params), key, plaintext_key)?
            };
            Ok((used, ct))
        })?;
        if ct.len() != plaintext_key.len() + TAG_LEN {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "PKCS#11 AES-GCM encryption on token '{}' returned {} bytes for {}",
                    self.0.token_label,
                    ct.len(),
                    plaintext_key.len()
                ),
            ));
        }
        Ok(device::envelope(
            PKCS11_PROVIDER,
            &self.0.key_label,
            device::KEY_VERSION,
            &[&iv, &ct],
        ))
    }

    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        self.check_open()?;
        let sealed = device::open(
            envelope,
            context,
            PKCS11_PROVIDER,
            &self.0.key_label,
            || {
                format!(
                    "this root holds '{}' on token '{}'",
                    self.0.key_label, self.0.token_label
                )
            },
        )?;
        let pt = self.call(Op::Decrypt, |session, key| {
            let mut iv = sealed.iv;
            let params = GcmParams::new(&mut iv, &sealed.aad, (TAG_LEN as u64 * 8).into())?;
            session
                .decrypt(&Mechanism::AesGcm(params), key, sealed.body)
                .map(Zeroizing::new)
        })?;
        Ok(SecretBytes::from_zeroizing(pt))
    }

    fn active_key_version(&self) -> Result<u32> {
        self.check_open()?;
        Ok(device::KEY_VERSION)
    }

    fn health_check(&self) -> Result<()> {
        self.0.health_check()
    }

    fn close(&self) -> Result<()> {
        self.0.close();
        Ok(())
    }
}

/// Keychains in the [`wrapped`](crate::root::wrapped) form: the defaults.
impl Root for Pkcs11Root {}
