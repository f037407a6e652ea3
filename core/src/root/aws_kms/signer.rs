//! `AwsKmsSigner`: an ECDSA signing key that never leaves AWS KMS.
//! `GetPublicKey` once when opening; every signature is KMS `Sign` over a
//! SHA-256 digest computed here (`MessageType=DIGEST`,
//! `SigningAlgorithm=ECDSA_SHA_256`; KMS returns DER), checked against the
//! public key before it is returned.

use std::fmt;
use std::sync::Arc;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use sha2::{Digest, Sha256};

use super::client::{check_state, Client, Op};
use super::AwsKmsConfig;
use crate::error::{truncate_for_message, Error, ErrorKind, Result};
use crate::sign::{
    encode_public_key, verify_digest, Algorithm, PublicKeyFormat, Signer, MAX_SIGNATURE_LEN,
};

/// The length of an uncompressed P-256 or secp256k1 point, `04 ‖ x ‖ y`.
const POINT_LEN: usize = 65;

struct Inner {
    client: Client,
    arn: String,
    algorithm: Algorithm,
    public_raw: Vec<u8>,
}

/// A signing key in AWS KMS: an asymmetric `SIGN_VERIFY` key of spec
/// `ECC_NIST_P256` ([`Algorithm::EcdsaP256`]) or `ECC_SECG_P256K1`
/// ([`Algorithm::EcdsaSecp256k1`]). A [`Signer`]: its DER signatures verify
/// with the public key it exports (PEM, DER, raw), in OpenSSL and every
/// keystrata language.
///
/// The key is resolved to its ARN when opened (an alias is followed once);
/// its state is not cached, so a key disabled in KMS stops signing at the
/// next call (`KeyDisabled`). Every signature KMS returns is verified
/// against the public key read at open before it is handed out; one that
/// does not verify is a `Backend` error.
///
/// Needs `kms:DescribeKey`, `kms:GetPublicKey` and `kms:Sign`. Clones share
/// one handle: closing one closes all. Thread-safe.
#[cfg_attr(docsrs, doc(cfg(all(feature = "aws-kms", feature = "aws-lc"))))]
#[derive(Clone)]
pub struct AwsKmsSigner(Arc<Inner>);

impl fmt::Debug for AwsKmsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsSigner")
            .field("key_arn", &self.0.arn)
            .field("algorithm", &self.0.algorithm)
            .field("client", &self.0.client)
            .finish_non_exhaustive()
    }
}

impl AwsKmsSigner {
    /// Opens the key `config.key_id` names: `DescribeKey` (it must be an
    /// enabled `SIGN_VERIFY` key of spec `ECC_NIST_P256` or
    /// `ECC_SECG_P256K1`), then `GetPublicKey`.
    ///
    /// Errors: as [`AwsKmsRoot::connect`](super::AwsKmsRoot::connect); a key
    /// of another spec or usage (RSA, P-384, Ed25519, symmetric…):
    /// `Unsupported`.
    pub fn open(config: AwsKmsConfig) -> Result<AwsKmsSigner> {
        let client = Client::new(&config, "AwsKmsSigner")?;
        let meta = client.describe(&config.key_id)?;
        let arn = meta
            .arn()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| client.malformed(Op::DescribeKey, &config.key_id, "the key's ARN"))?
            .to_owned();
        let shown = truncate_for_message(&arn, 200);
        let spec = meta.key_spec();
        let algorithm = match (meta.key_usage(), spec) {
            (Some(KeyUsageType::SignVerify), Some(KeySpec::EccNistP256)) => Algorithm::EcdsaP256,
            (Some(KeyUsageType::SignVerify), Some(KeySpec::EccSecgP256K1)) => {
                Algorithm::EcdsaSecp256k1
            }
            (usage, _) => {
                return Err(Error::unsupported(format!(
                    "AWS KMS key {shown} is a {} key for {}; a signer needs an ECC_NIST_P256 or \
                     ECC_SECG_P256K1 key for SIGN_VERIFY",
                    spec.map_or("(unnamed)", |s| s.as_str()),
                    usage.map_or("(unnamed)", |u| u.as_str()),
                )))
            }
        };
        check_state(&meta, &arn)?;
        let out = client
            .run(Op::GetPublicKey, &arn, |kms| {
                let req = kms.get_public_key().key_id(arn.clone());
                async move { req.send().await }
            })
            .map_err(|e| client.explain(&arn, e))?;
        // KMS names the spec in its answer (moto does not).
        if out.key_spec().is_some_and(|s| Some(s) != spec)
            || !out
                .signing_algorithms()
                .contains(&SigningAlgorithmSpec::EcdsaSha256)
        {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "AWS KMS GetPublicKey of key {shown} disagrees with DescribeKey about its spec \
                     or offers no ECDSA_SHA_256"
                ),
            ));
        }
        let spki = out
            .public_key
            .map(Blob::into_inner)
            .ok_or_else(|| client.malformed(Op::GetPublicKey, &arn, "a PublicKey"))?;
        let public_raw = raw_point(algorithm, &spki).ok_or_else(|| {
            Error::new(
                ErrorKind::Backend,
                format!(
                    "AWS KMS GetPublicKey of key {shown} returned a public key that is not a \
                     {algorithm} SubjectPublicKeyInfo"
                ),
            )
        })?;
        Ok(AwsKmsSigner(Arc::new(Inner {
            client,
            arn,
            algorithm,
            public_raw,
        })))
    }

    /// The key's ARN.
    pub fn key_arn(&self) -> &str {
        &self.0.arn
    }

    /// KMS `Sign` of a SHA-256 digest, checked against the public key.
    fn sign_checked(&self, digest: &[u8]) -> Result<Vec<u8>> {
        let inner = &*self.0;
        let arn = &inner.arn;
        let out = inner
            .client
            .run(Op::Sign, arn, |kms| {
                let req = kms
                    .sign()
                    .key_id(arn.clone())
                    .message(Blob::new(digest.to_vec()))
                    .message_type(MessageType::Digest)
                    .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256);
                async move { req.send().await }
            })
            .map_err(|e| inner.client.explain(arn, e))?;
        let signature = out
            .signature
            .map(Blob::into_inner)
            .filter(|s| !s.is_empty() && s.len() <= MAX_SIGNATURE_LEN)
            .ok_or_else(|| {
                inner
                    .client
                    .malformed(Op::Sign, arn, "a signature of at most 72 bytes")
            })?;
        verify_digest(inner.algorithm, &inner.public_raw, digest, &signature).map_err(|_| {
            Error::new(
                ErrorKind::Backend,
                format!(
                    "AWS KMS Sign with key {} returned a signature that does not verify under \
                     the key's public key (was MessageType=DIGEST ignored?)",
                    truncate_for_message(arn, 200)
                ),
            )
        })?;
        Ok(signature)
    }
}

/// The raw point of a P-256 or secp256k1 SubjectPublicKeyInfo, if `spki` is
/// exactly the SPKI keystrata encodes for that point (so the curve, the
/// point's form and the encoding are all checked).
fn raw_point(alg: Algorithm, spki: &[u8]) -> Option<Vec<u8>> {
    let raw = spki.get(spki.len().checked_sub(POINT_LEN)?..)?;
    let again = encode_public_key(alg, raw, PublicKeyFormat::Der, [0; 8]).ok()?;
    (again == spki).then(|| raw.to_vec())
}

impl Signer for AwsKmsSigner {
    fn algorithm(&self) -> Result<Algorithm> {
        self.0.client.check_open()?;
        Ok(self.0.algorithm)
    }

    fn public_key(&self, format: PublicKeyFormat) -> Result<Vec<u8>> {
        self.0.client.check_open()?;
        encode_public_key(self.0.algorithm, &self.0.public_raw, format, [0; 8])
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.0.client.check_open()?;
        self.sign_checked(&Sha256::digest(message))
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        self.0.client.check_open()?;
        if digest.len() != 32 {
            return Err(Error::invalid(format!(
                "a SHA-256 digest is 32 bytes, got {}",
                digest.len()
            )));
        }
        self.sign_checked(digest)
    }

    /// `DescribeKey`: the key exists and is enabled.
    fn health_check(&self) -> Result<()> {
        self.0.client.check_open()?;
        let meta = self.0.client.describe(&self.0.arn)?;
        check_state(&meta, &self.0.arn)
    }

    fn close(&self) -> Result<()> {
        self.0.client.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_points_of_spkis() {
        // A P-256 SPKI (the generator point as the public key).
        let kc = crate::Keychain::generate().unwrap();
        kc.rotate_signing(Algorithm::EcdsaP256).unwrap();
        let s = kc.signer();
        let der = s.public_key(PublicKeyFormat::Der).unwrap();
        let raw = s.public_key(PublicKeyFormat::Raw).unwrap();
        assert_eq!(raw_point(Algorithm::EcdsaP256, &der), Some(raw));
        // The same bytes are not a secp256k1 key; cut or changed ones are
        // nothing.
        assert_eq!(raw_point(Algorithm::EcdsaSecp256k1, &der), None);
        assert_eq!(raw_point(Algorithm::EcdsaP256, &der[1..]), None);
        assert_eq!(raw_point(Algorithm::EcdsaP256, &der[..20]), None);
        let mut bad = der.clone();
        bad[5] ^= 1;
        assert_eq!(raw_point(Algorithm::EcdsaP256, &bad), None);
    }
}
