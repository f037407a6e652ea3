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
#[cfg(feature = "aws-kms")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-kms")))]
pub mod aws_kms;
pub mod custom;
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
#[cfg(all(feature = "aws-kms", feature = "aws-lc"))]
pub use self::aws_kms::AwsKmsSigner;
#[cfg(feature = "aws-kms")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-kms")))]
pub use self::aws_kms::{AwsKmsConfig, AwsKmsRoot, AWS_KMS_PROVIDER, DEFAULT_AWS_KMS_TIMEOUT};
pub use self::custom::CustomRoot;
#[cfg(feature = "kmip")]
#[cfg_attr(docsrs, doc(cfg(feature = "kmip")))]
pub use self::kmip::{
    KmipConfig, KmipKeyRef, KmipRoot, KmipTransport, KmipVersion, DEFAULT_KMIP_PORT,
    DEFAULT_KMIP_REFRESH, DEFAULT_KMIP_TIMEOUT, KMIP_PROVIDER,
};
#[cfg(all(feature = "pkcs11", feature = "aws-lc"))]
pub use self::pkcs11::Pkcs11Signer;
#[cfg(feature = "pkcs11")]
pub use self::pkcs11::{Pkcs11Config, Pkcs11Pin, Pkcs11Root, PKCS11_PROVIDER};
pub use self::uri::from_uri;
/// The secret-string type [`AgeRoot::insecure_identity_strings`] returns,
/// and the trait to read it (re-exported from the `age` crate).
pub use ::age::secrecy::{ExposeSecret, SecretString};

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::Result;
use crate::key_manager::KeyManager;

/// Protects a keychain at rest, and wraps data keys: every root is a
/// [`KeyManager`] (one trait with defaults, as age's `Identity` and
/// `Recipient` are for its backends).
///
/// [`protect`](Root::protect) and [`unprotect`](Root::unprotect) default to
/// the [`wrapped`] form: the keychain's JSON encrypted locally under a fresh
/// data key that this root's [`wrap_key`](KeyManager::wrap_key) wraps (one
/// call to the device per save or load). The device roots (PKCS#11, KMIP)
/// use the defaults, and so does any `KeyManager` of your own: implement
/// `KeyManager`, then `impl Root for MyKms {}`. The age roots override them
/// with age's own file format.
///
/// A root that wraps another root (a handle, a counter) must forward
/// `protect` and `unprotect` too, or it gets the wrapped form instead of
/// the inner root's format; the impls for `Arc`, `Box` and `&` do.
///
/// ```
/// use keystrata::{Envelope, KeyManager, Keychain, Root, SecretBytes};
///
/// /// A KeyManager of your own (here: a keychain standing in for a KMS).
/// struct MyKms(Keychain);
///
/// impl KeyManager for MyKms {
///     fn provider(&self) -> &str { "my-kms" }
///     fn wrap_key(&self, key: &[u8], ctx: &[u8]) -> keystrata::Result<Envelope> {
///         let mut env = self.0.wrap_key(key, ctx)?;
///         env.provider = "my-kms".into();
///         Ok(env)
///     }
///     fn unwrap_key(&self, env: &Envelope, ctx: &[u8]) -> keystrata::Result<SecretBytes> {
///         let mut env = env.clone();
///         env.provider = "keystrata".into();
///         self.0.unwrap_key(&env, ctx)
///     }
///     fn active_key_version(&self) -> keystrata::Result<u32> { self.0.active_key_version() }
///     fn health_check(&self) -> keystrata::Result<()> { self.0.health_check() }
///     fn close(&self) -> keystrata::Result<()> { self.0.close() }
/// }
///
/// // The defaults make it a root: keychains saved under it are in the
/// // wrapped form.
/// impl Root for MyKms {}
///
/// let root = MyKms(Keychain::generate()?);
/// let kc = Keychain::generate()?;
/// let saved = kc.save(&root)?;
/// assert!(keystrata::root::wrapped::is_wrapped(&saved));
/// assert_eq!(Keychain::load(&saved, &root)?.keys()?, kc.keys()?);
/// # Ok::<(), keystrata::Error>(())
/// ```
pub trait Root: KeyManager {
    /// Encrypts the keychain's plaintext JSON into the bytes to store.
    /// Default: the [`wrapped`] form through [`wrap_key`](KeyManager::wrap_key).
    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
        wrapped::protect(self, keychain_json)
    }

    /// Decrypts stored bytes back into the keychain's plaintext JSON.
    /// Wrong key, tampering, or a payload cut short: `Authentication`; not
    /// this root's format, or a header cut short: `Format`. Default: the
    /// [`wrapped`] form through [`unwrap_key`](KeyManager::unwrap_key).
    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        wrapped::unprotect(self, stored)
    }
}

impl<R: Root + ?Sized> Root for Arc<R> {
    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
        (**self).protect(keychain_json)
    }
    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        (**self).unprotect(stored)
    }
}

impl<R: Root + ?Sized> Root for Box<R> {
    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
        (**self).protect(keychain_json)
    }
    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        (**self).unprotect(stored)
    }
}

impl<R: Root + ?Sized> Root for &R {
    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
        (**self).protect(keychain_json)
    }
    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        (**self).unprotect(stored)
    }
}
