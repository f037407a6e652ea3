//! Signing: Ed25519 and ECDSA (P-256, secp256k1, both with SHA-256) keys,
//! signatures and public-key encodings, and the minisign formats.
//!
//! The names ([`Algorithm`], [`SignatureFormat`], [`PublicKeyFormat`]) are
//! always compiled; the cryptography needs the default `aws-lc` feature
//! (aws-lc-rs has all three algorithms), and without it every signing call
//! is `Unsupported`.
//!
//! Every signing key is 32 secret bytes, stored in the keychain like any
//! other key's material: an Ed25519 seed (RFC 8032), or an ECDSA private
//! scalar, big-endian (SEC 1). docs/FORMAT.md §12 has the encodings.

use std::fmt;

#[cfg(feature = "aws-lc")]
pub mod minisign;
#[cfg(feature = "aws-lc")]
mod pair;
#[cfg(feature = "aws-lc")]
mod signer;
#[cfg(feature = "aws-lc")]
pub mod trust;

#[cfg(feature = "aws-lc")]
pub(crate) use self::pair::KeyPair;
#[cfg(feature = "aws-lc")]
pub use self::pair::{ecdsa_raw_to_der, encode_public_key, verify, verify_digest, verify_strict};
#[cfg(feature = "aws-lc")]
pub use self::signer::{KeychainSigner, Signer};
#[cfg(feature = "aws-lc")]
pub use self::trust::{TrustKind, TrustVerified, TrustedKey, TrustedKeys};
/// A signing key in AWS KMS (features `aws-kms` and `aws-lc`).
#[cfg(all(feature = "aws-kms", feature = "aws-lc"))]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-kms")))]
pub use crate::root::AwsKmsSigner;
/// A signing key in a PKCS#11 token (features `pkcs11` and `aws-lc`).
#[cfg(all(feature = "pkcs11", feature = "aws-lc"))]
#[cfg_attr(docsrs, doc(cfg(feature = "pkcs11")))]
pub use crate::root::Pkcs11Signer;

/// A signing algorithm.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032): 64-byte signatures; minisign's algorithm.
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256 (AWS KMS `ECC_NIST_P256`).
    EcdsaP256,
    /// ECDSA on secp256k1 with SHA-256 (AWS KMS `ECC_SECG_P256K1`).
    EcdsaSecp256k1,
}

impl Algorithm {
    /// Every algorithm, in numeric order.
    pub const ALL: [Algorithm; 3] = [
        Algorithm::Ed25519,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaSecp256k1,
    ];

    /// The stable number of this algorithm, shared by every binding (the C
    /// `KS_ALG_*` values; 0 is left for "none"). Never reused. Next free: 4.
    pub const fn code(self) -> u32 {
        match self {
            Algorithm::Ed25519 => 1,
            Algorithm::EcdsaP256 => 2,
            Algorithm::EcdsaSecp256k1 => 3,
        }
    }

    /// The algorithm with the given stable number, if there is one.
    pub const fn from_code(code: u32) -> Option<Algorithm> {
        Some(match code {
            1 => Algorithm::Ed25519,
            2 => Algorithm::EcdsaP256,
            3 => Algorithm::EcdsaSecp256k1,
            _ => return None,
        })
    }

    /// The name used in the keychain JSON and in every binding:
    /// `"ed25519"`, `"ecdsa-p256"`, `"ecdsa-secp256k1"`.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::EcdsaSecp256k1 => "ecdsa-secp256k1",
        }
    }

    /// The algorithm named `name` (as [`name`](Algorithm::name) spells it).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Whether this is an ECDSA algorithm (SHA-256 digests, DER or raw
    /// signatures).
    pub const fn is_ecdsa(self) -> bool {
        matches!(self, Algorithm::EcdsaP256 | Algorithm::EcdsaSecp256k1)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How an ECDSA signature is encoded. Ed25519 signatures are always the
/// 64 bytes of RFC 8032, whatever is asked.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SignatureFormat {
    /// ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }` (X9.62): what
    /// OpenSSL, AWS KMS and most verifiers use. The default.
    #[default]
    Der,
    /// `r ‖ s`, 32 bytes each, big-endian (IEEE P1363; JOSE, WebCrypto).
    Raw,
}

impl SignatureFormat {
    /// `"der"` or `"raw"`.
    pub const fn name(self) -> &'static str {
        match self {
            SignatureFormat::Der => "der",
            SignatureFormat::Raw => "raw",
        }
    }

    /// The stable number (C `KS_SIG_DER` = 1, `KS_SIG_RAW` = 2).
    pub const fn code(self) -> u32 {
        match self {
            SignatureFormat::Der => 1,
            SignatureFormat::Raw => 2,
        }
    }

    /// The format with the given stable number, if there is one.
    pub const fn from_code(code: u32) -> Option<SignatureFormat> {
        Some(match code {
            1 => SignatureFormat::Der,
            2 => SignatureFormat::Raw,
            _ => return None,
        })
    }
}

/// How a public key is encoded.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PublicKeyFormat {
    /// PEM of the SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`), as
    /// `openssl pkey -pubin` reads it.
    Pem,
    /// DER of the SubjectPublicKeyInfo (RFC 5280; RFC 8410 for Ed25519).
    Der,
    /// The bare key: 32 bytes for Ed25519, the 65-byte uncompressed point
    /// `04 ‖ x ‖ y` for ECDSA.
    Raw,
    /// The text of a minisign `.pub` file (Ed25519 only).
    Minisign,
}

impl PublicKeyFormat {
    /// `"pem"`, `"der"`, `"raw"` or `"minisign"`.
    pub const fn name(self) -> &'static str {
        match self {
            PublicKeyFormat::Pem => "pem",
            PublicKeyFormat::Der => "der",
            PublicKeyFormat::Raw => "raw",
            PublicKeyFormat::Minisign => "minisign",
        }
    }

    /// The stable number (C `KS_PUBKEY_PEM` = 1, `_DER` = 2, `_RAW` = 3,
    /// `_MINISIGN` = 4).
    pub const fn code(self) -> u32 {
        match self {
            PublicKeyFormat::Pem => 1,
            PublicKeyFormat::Der => 2,
            PublicKeyFormat::Raw => 3,
            PublicKeyFormat::Minisign => 4,
        }
    }

    /// The format with the given stable number, if there is one.
    pub const fn from_code(code: u32) -> Option<PublicKeyFormat> {
        Some(match code {
            1 => PublicKeyFormat::Pem,
            2 => PublicKeyFormat::Der,
            3 => PublicKeyFormat::Raw,
            4 => PublicKeyFormat::Minisign,
            _ => return None,
        })
    }
}

/// The longest signature any algorithm here makes (a DER ECDSA signature
/// of a 256-bit curve is at most 72 bytes).
pub const MAX_SIGNATURE_LEN: usize = 72;

/// The minisign key ID keystrata gives a keychain's Ed25519 key that was
/// not imported with one: the first 8 bytes of
/// SHA-256("keystrata/minisign-key-id/v1" ‖ public key), so every language
/// and every export of one key agree.
pub fn minisign_key_id(public_key: &[u8; 32]) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let d = Sha256::new()
        .chain_update(b"keystrata/minisign-key-id/v1")
        .chain_update(public_key)
        .finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for (i, a) in Algorithm::ALL.iter().enumerate() {
            assert_eq!(a.code() as usize, i + 1);
            assert_eq!(Algorithm::from_code(a.code()), Some(*a));
            assert_eq!(Algorithm::from_name(a.name()), Some(*a));
        }
        assert_eq!(Algorithm::from_code(0), None);
        assert_eq!(Algorithm::from_name("ecdsa"), None);
        for f in [SignatureFormat::Der, SignatureFormat::Raw] {
            assert_eq!(SignatureFormat::from_code(f.code()), Some(f));
        }
        for f in [
            PublicKeyFormat::Pem,
            PublicKeyFormat::Der,
            PublicKeyFormat::Raw,
            PublicKeyFormat::Minisign,
        ] {
            assert_eq!(PublicKeyFormat::from_code(f.code()), Some(f));
        }
    }
}
