//! What the device roots (PKCS#11, KMIP) share around their device's
//! AES-256-GCM: one envelope shape, `iv(12) ‖ ct ‖ tag(16)` under the key
//! named by `key_id` (version 1), with the wrap AAD as the GCM additional
//! data, and the checks made before a device is asked to unwrap.

use crate::aead::{NONCE_LEN, TAG_LEN};
use crate::error::{Error, ErrorKind, Result};
use crate::wrapped_key::{wrap_aad, Envelope};

/// A device key without versions (PKCS#11; a KMIP key named by
/// identifier) is version 1.
pub(crate) const KEY_VERSION: u32 = 1;

/// The GCM additional data a device root wraps `key_id`'s data keys with,
/// under the key's `version`.
pub(crate) fn aad(provider: &str, key_id: &str, version: u32, context: &[u8]) -> Result<Vec<u8>> {
    wrap_aad(provider, key_id, version, context)
}

/// The envelope of a device's `iv ‖ ct ‖ tag` (the caller checked the
/// lengths the device returned).
pub(crate) fn envelope(provider: &str, key_id: &str, version: u32, parts: &[&[u8]]) -> Envelope {
    Envelope {
        key_id: key_id.to_owned(),
        key_version: version,
        provider: provider.to_owned(),
        ciphertext: parts.concat(),
    }
}

/// An envelope a device root may hand its device.
pub(crate) struct Sealed<'e> {
    /// The additional data rebuilt from the envelope's own fields.
    pub(crate) aad: Vec<u8>,
    pub(crate) iv: [u8; NONCE_LEN],
    /// `ct ‖ tag`, at least one byte of ciphertext.
    pub(crate) body: &'e [u8],
}

/// Checks `env` names this root (`provider`, `key_id`) before any device
/// work: another provider is `InvalidInput`, another key `UnknownKey`
/// (with `whose_key` saying which key this root holds), a ciphertext too
/// short to hold an IV, a byte and a tag `Authentication`.
pub(crate) fn open<'e>(
    env: &'e Envelope,
    context: &[u8],
    provider: &str,
    key_id: &str,
    whose_key: impl FnOnce() -> String,
) -> Result<Sealed<'e>> {
    crate::key_manager::check_provider(env, provider)?;
    if env.key_id != key_id {
        return Err(Error::new(
            ErrorKind::UnknownKey,
            format!(
                "envelope is wrapped under {provider} key {:?}; {}",
                env.key_id,
                whose_key()
            ),
        ));
    }
    if env.ciphertext.len() <= NONCE_LEN + TAG_LEN {
        return Err(Error::authentication());
    }
    // The version is bound through the AAD: another one fails the tag.
    let aad = wrap_aad(provider, &env.key_id, env.key_version, context)?;
    let (iv, body) = env.ciphertext.split_at(NONCE_LEN);
    let mut iv_arr = [0u8; NONCE_LEN];
    iv_arr.copy_from_slice(iv);
    Ok(Sealed {
        aad,
        iv: iv_arr,
        body,
    })
}
