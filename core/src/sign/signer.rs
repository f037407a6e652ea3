//! The `Signer` contract: one interface for every place a signing key can
//! live (the keychain, a PKCS#11 token, AWS KMS), and the keychain's own.

use super::{Algorithm, PublicKeyFormat};
use crate::error::Result;
use crate::key::Purpose;
use crate::keychain::Keychain;

/// Signs with a key that may never leave where it lives. Every signer
/// passes one conformance suite (core/tests/signer_conformance/), so code
/// written against `Signer` runs unchanged over the keychain's key, an
/// HSM's key or a KMS key.
///
/// - [`sign`](Signer::sign) returns an Ed25519 signature (64 bytes) or a
///   DER ECDSA signature over SHA-256(message);
///   [`sign_digest`](Signer::sign_digest) signs a SHA-256 digest (ECDSA
///   only, `Unsupported` for Ed25519).
/// - Signatures verify with [`verify`](crate::sign::verify) and the raw
///   public key, and with OpenSSL and the other languages' libraries using
///   the PEM one.
/// - After [`close`](Signer::close) every call fails with `Unavailable`.
pub trait Signer: Send + Sync {
    /// The key's algorithm.
    fn algorithm(&self) -> Result<Algorithm>;
    /// The public key in `format`.
    fn public_key(&self, format: PublicKeyFormat) -> Result<Vec<u8>>;
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
    /// Signs a 32-byte SHA-256 digest (ECDSA only).
    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>>;
    /// Checks the signer can serve (the device or service reachable, the
    /// key usable).
    fn health_check(&self) -> Result<()>;
    /// Releases the signer. Idempotent; later calls fail with
    /// `Unavailable`.
    fn close(&self) -> Result<()>;
}

/// The keychain's signing primary as a [`Signer`]: signs with whichever key
/// is primary at the time of the call (so a rotation takes effect at once),
/// with the keychain's events and counters. Made by [`Keychain::signer`].
/// Closing it closes nothing: the keychain stays the caller's.
#[derive(Debug)]
pub struct KeychainSigner<'a> {
    kc: KcRef<'a>,
    closed: std::sync::atomic::AtomicBool,
}

/// The keychain a [`KeychainSigner`] signs with: borrowed, or shared (the
/// signer keeps it alive).
#[derive(Debug)]
enum KcRef<'a> {
    Borrowed(&'a Keychain),
    Shared(std::sync::Arc<Keychain>),
}

impl Keychain {
    /// This keychain's signing primary as a [`Signer`].
    pub fn signer(&self) -> KeychainSigner<'_> {
        KeychainSigner {
            kc: KcRef::Borrowed(self),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The signing primary of a shared keychain as a [`Signer`] that keeps
    /// the keychain alive (for a signer that outlives its borrower: a C or
    /// Go handle).
    pub fn shared_signer(kc: &std::sync::Arc<Keychain>) -> KeychainSigner<'static> {
        KeychainSigner {
            kc: KcRef::Shared(std::sync::Arc::clone(kc)),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl KeychainSigner<'_> {
    fn open(&self) -> Result<&Keychain> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(crate::Error::new(
                crate::ErrorKind::Unavailable,
                "this keychain signer was closed",
            ));
        }
        Ok(match &self.kc {
            KcRef::Borrowed(k) => k,
            KcRef::Shared(k) => k,
        })
    }
}

impl Signer for KeychainSigner<'_> {
    fn algorithm(&self) -> Result<Algorithm> {
        let info = self.open()?.primary_for(Purpose::Sign)?;
        info.algorithm
            .ok_or_else(|| crate::Error::internal("the signing primary has no algorithm"))
    }

    fn public_key(&self, format: PublicKeyFormat) -> Result<Vec<u8>> {
        let kc = self.open()?;
        kc.public_key(kc.primary_for(Purpose::Sign)?.key_id, format)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.open()?.sign(message)?.bytes)
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .open()?
            .sign_digest(digest, super::SignatureFormat::Der)?
            .bytes)
    }

    fn health_check(&self) -> Result<()> {
        self.open()?.primary_for(Purpose::Sign).map(|_| ())
    }

    fn close(&self) -> Result<()> {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }
}

macro_rules! forward_signer {
    ($($ptr:ty),*) => {$(
        impl<S: Signer + ?Sized> Signer for $ptr {
            fn algorithm(&self) -> Result<Algorithm> { (**self).algorithm() }
            fn public_key(&self, format: PublicKeyFormat) -> Result<Vec<u8>> { (**self).public_key(format) }
            fn sign(&self, message: &[u8]) -> Result<Vec<u8>> { (**self).sign(message) }
            fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> { (**self).sign_digest(digest) }
            fn health_check(&self) -> Result<()> { (**self).health_check() }
            fn close(&self) -> Result<()> { (**self).close() }
        }
    )*};
}

forward_signer!(std::sync::Arc<S>, Box<S>, &S);
