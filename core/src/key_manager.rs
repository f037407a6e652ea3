//! The backend contract every key-wrapping backend implements.

use crate::error::Result;
use crate::secret::SecretBytes;
use crate::wrapped_key::Envelope;

/// Wraps and unwraps data keys: the contract shared by the keychain itself
/// (provider `"keystrata"`) and by every root (`"age"`, `"age-scrypt"`,
/// `"pkcs11"`, `"kmip"`). One conformance suite runs against all of them.
///
/// After [`close`](KeyManager::close), every call fails with
/// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable).
pub trait KeyManager: Send + Sync {
    /// The provider name written into envelopes.
    fn provider(&self) -> &str;

    /// Wraps `plaintext_key` (1 to 4096 bytes), binding the result to this
    /// provider, the wrapping key's ID and version, and `context`.
    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope>;

    /// Unwraps an envelope made by [`wrap_key`](KeyManager::wrap_key) with
    /// the same `context`. A changed envelope or context fails with
    /// `Authentication`; an envelope from another provider with
    /// `InvalidInput`.
    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes>;

    /// The version of the key new envelopes are wrapped under (≥ 1).
    fn active_key_version(&self) -> Result<u32>;

    /// Checks the backend can serve calls.
    fn health_check(&self) -> Result<()>;

    /// Releases the backend. Idempotent; later calls fail with
    /// `Unavailable`.
    fn close(&self) -> Result<()>;
}

macro_rules! forward_key_manager {
    ($($ptr:ty),*) => {$(
        impl<K: KeyManager + ?Sized> KeyManager for $ptr {
            fn provider(&self) -> &str {
                (**self).provider()
            }
            fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
                (**self).wrap_key(plaintext_key, context)
            }
            fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
                (**self).unwrap_key(envelope, context)
            }
            fn active_key_version(&self) -> Result<u32> {
                (**self).active_key_version()
            }
            fn health_check(&self) -> Result<()> {
                (**self).health_check()
            }
            fn close(&self) -> Result<()> {
                (**self).close()
            }
        }
    )*};
}

// A shared or borrowed key manager is one (and so a shared root is a root).
forward_key_manager!(std::sync::Arc<K>, Box<K>, &K);

/// The largest key `wrap_key` accepts, in bytes.
pub const MAX_WRAPPED_KEY_LEN: usize = 4096;

/// Refuses an envelope made by another provider. The message echoes at
/// most 64 characters of the envelope's provider (it is caller input).
pub(crate) fn check_provider(env: &crate::wrapped_key::Envelope, provider: &str) -> Result<()> {
    if env.provider == provider {
        return Ok(());
    }
    Err(crate::error::Error::invalid(format!(
        "envelope is from provider {:?}, not {provider:?}",
        crate::error::truncate_for_message(&env.provider, 64)
    )))
}

pub(crate) fn check_wrap_input(key: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > MAX_WRAPPED_KEY_LEN {
        return Err(crate::Error::invalid(format!(
            "a key to wrap must be 1 to {MAX_WRAPPED_KEY_LEN} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}
