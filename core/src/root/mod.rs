//! Roots: what protects a keychain at rest.
//!
//! A root turns the keychain's plaintext JSON into bytes safe to store, and
//! back. The development roots are [`AgeRoot`] (age X25519 identities) and
//! [`PassphraseRoot`] (age scrypt); with either, the saved keychain is a
//! plain age file that `age -d` can open.
//!
//! The production roots keep their key where it cannot be copied out:
//! `Pkcs11Root` (feature `pkcs11`) in an HSM or token, `KmipRoot` (feature
//! `kmip`) in a KMIP server. Both save keychains in the [`wrapped`] format.

mod age;
#[cfg(any(feature = "pkcs11", feature = "kmip"))]
mod device;
#[cfg(feature = "kmip")]
#[cfg_attr(docsrs, doc(cfg(feature = "kmip")))]
pub mod kmip;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod uri;
pub mod wrapped;

pub use self::age::{
    AgeRoot, PassphraseRoot, AGE_PROVIDER, DEFAULT_MAX_SCRYPT_WORK_FACTOR,
    DEFAULT_SCRYPT_WORK_FACTOR, MAX_AGE_HEADER_LEN, MAX_AGE_STANZAS, SCRYPT_PROVIDER,
};
#[cfg(feature = "kmip")]
#[cfg_attr(docsrs, doc(cfg(feature = "kmip")))]
pub use self::kmip::{
    KmipConfig, KmipKeyRef, KmipRoot, KmipVersion, DEFAULT_KMIP_PORT, DEFAULT_KMIP_TIMEOUT,
    KMIP_PROVIDER,
};
#[cfg(feature = "pkcs11")]
pub use self::pkcs11::{Pkcs11Config, Pkcs11Pin, Pkcs11Root, PKCS11_PROVIDER};
pub use self::uri::from_uri;
/// The secret-string type [`AgeRoot::insecure_identity_strings`] returns,
/// and the trait to read it (re-exported from the `age` crate).
pub use ::age::secrecy::{ExposeSecret, SecretString};

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::Result;

/// Protects a keychain at rest.
pub trait Root: Send + Sync {
    /// A short name of the kind of root (`"age"`, `"age-scrypt"`).
    fn provider(&self) -> &str;

    /// Encrypts the keychain's plaintext JSON into the bytes to store.
    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>>;

    /// Decrypts stored bytes back into the keychain's plaintext JSON.
    /// Wrong key, tampering, or a payload cut short: `Authentication`; not
    /// this root's format, or a header cut short: `Format`.
    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
}

impl<R: Root + ?Sized> Root for Arc<R> {
    fn provider(&self) -> &str {
        (**self).provider()
    }
    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
        (**self).protect(keychain_json)
    }
    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        (**self).unprotect(stored)
    }
}

impl<R: Root + ?Sized> Root for &R {
    fn provider(&self) -> &str {
        (**self).provider()
    }
    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
        (**self).protect(keychain_json)
    }
    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        (**self).unprotect(stored)
    }
}
