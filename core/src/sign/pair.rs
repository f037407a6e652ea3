//! Signing key pairs over aws-lc-rs, made from a keychain key's 32 secret
//! bytes, and verification against a public key.

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, Ed25519KeyPair, KeyPair as _,
    ParsedPublicKey, UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256K1_SHA256_ASN1,
    ECDSA_P256K1_SHA256_ASN1_SIGNING, ECDSA_P256K1_SHA256_FIXED, ECDSA_P256K1_SHA256_FIXED_SIGNING,
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, ED25519,
};
use zeroize::Zeroizing;

use super::{Algorithm, PublicKeyFormat, SignatureFormat};
use crate::error::{Error, ErrorKind, Result};

/// A signing key ready to sign: built once per key and kept with its
/// material (the ECDSA public point costs a scalar multiplication).
pub(crate) enum KeyPair {
    Ed25519(Ed25519KeyPair),
    Ecdsa {
        alg: Algorithm,
        der: EcdsaKeyPair,
        raw: EcdsaKeyPair,
    },
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

fn signing_algs(
    alg: Algorithm,
) -> (
    &'static EcdsaSigningAlgorithm,
    &'static EcdsaSigningAlgorithm,
) {
    match alg {
        Algorithm::EcdsaSecp256k1 => (
            &ECDSA_P256K1_SHA256_ASN1_SIGNING,
            &ECDSA_P256K1_SHA256_FIXED_SIGNING,
        ),
        _ => (
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &ECDSA_P256_SHA256_FIXED_SIGNING,
        ),
    }
}

fn verification_algs(
    alg: Algorithm,
) -> (
    &'static EcdsaVerificationAlgorithm,
    &'static EcdsaVerificationAlgorithm,
) {
    match alg {
        Algorithm::EcdsaSecp256k1 => (&ECDSA_P256K1_SHA256_ASN1, &ECDSA_P256K1_SHA256_FIXED),
        _ => (&ECDSA_P256_SHA256_ASN1, &ECDSA_P256_SHA256_FIXED),
    }
}

/// RFC 5915 `ECPrivateKey` holding only the scalar and the curve: aws-lc
/// computes the public point.
fn ec_private_der(alg: Algorithm, scalar: &[u8; 32]) -> Zeroizing<Vec<u8>> {
    // OIDs: prime256v1 1.2.840.10045.3.1.7, secp256k1 1.3.132.0.10.
    let oid: &[u8] = match alg {
        Algorithm::EcdsaSecp256k1 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
        _ => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
    };
    let body_len = 3 + 2 + 32 + 2 + oid.len();
    let mut der = Zeroizing::new(Vec::with_capacity(2 + body_len));
    der.extend_from_slice(&[0x30, body_len as u8, 0x02, 0x01, 0x01, 0x04, 0x20]);
    der.extend_from_slice(scalar);
    der.extend_from_slice(&[0xa0, oid.len() as u8]);
    der.extend_from_slice(oid);
    der
}

impl KeyPair {
    /// The key pair of a keychain key: `secret` is an Ed25519 seed or an
    /// ECDSA scalar. `Format` if the scalar is not a valid private key
    /// (zero, or not below the group order).
    pub(crate) fn from_secret(alg: Algorithm, secret: &[u8; 32]) -> Result<KeyPair> {
        let rejected = |_| Error::format(format!("not a valid {alg} private key"));
        Ok(match alg {
            Algorithm::Ed25519 => {
                KeyPair::Ed25519(Ed25519KeyPair::from_seed_unchecked(secret).map_err(rejected)?)
            }
            Algorithm::EcdsaP256 | Algorithm::EcdsaSecp256k1 => {
                let der = ec_private_der(alg, secret);
                let (asn1, fixed) = signing_algs(alg);
                KeyPair::Ecdsa {
                    alg,
                    der: EcdsaKeyPair::from_private_key_der(asn1, &der).map_err(rejected)?,
                    raw: EcdsaKeyPair::from_private_key_der(fixed, &der).map_err(rejected)?,
                }
            }
        })
    }

    /// Fresh secret bytes for a new key of `alg` (an ECDSA scalar is
    /// drawn again in the negligible case it is not a valid key).
    pub(crate) fn generate_secret(alg: Algorithm) -> Result<Zeroizing<[u8; 32]>> {
        loop {
            let mut s = Zeroizing::new([0u8; 32]);
            crate::aead::fill_random(&mut s[..])?;
            if KeyPair::from_secret(alg, &s).is_ok() {
                return Ok(s);
            }
        }
    }

    pub(crate) fn algorithm(&self) -> Algorithm {
        match self {
            KeyPair::Ed25519(_) => Algorithm::Ed25519,
            KeyPair::Ecdsa { alg, .. } => *alg,
        }
    }

    /// Signs `message` (ECDSA hashes it with SHA-256).
    pub(crate) fn sign(&self, message: &[u8], format: SignatureFormat) -> Result<Vec<u8>> {
        let failed = |_| Error::internal("signing failed");
        Ok(match self {
            KeyPair::Ed25519(k) => k.sign(message).as_ref().to_vec(),
            KeyPair::Ecdsa { der, raw, .. } => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let k = if format == SignatureFormat::Raw {
                    raw
                } else {
                    der
                };
                k.sign(&rng, message).map_err(failed)?.as_ref().to_vec()
            }
        })
    }

    /// Signs a SHA-256 digest the caller computed (ECDSA only, as AWS KMS's
    /// `MessageType=DIGEST`).
    pub(crate) fn sign_digest(&self, digest: &[u8], format: SignatureFormat) -> Result<Vec<u8>> {
        match self {
            KeyPair::Ed25519(_) => Err(Error::unsupported(
                "ed25519 signs messages, not digests (use sign)",
            )),
            KeyPair::Ecdsa { der, raw, .. } => {
                let d = Digest::import_less_safe(digest, &SHA256).map_err(|_| {
                    Error::invalid(format!(
                        "a SHA-256 digest is 32 bytes, got {}",
                        digest.len()
                    ))
                })?;
                let k = if format == SignatureFormat::Raw {
                    raw
                } else {
                    der
                };
                Ok(k.sign_digest(&d)
                    .map_err(|_| Error::internal("signing failed"))?
                    .as_ref()
                    .to_vec())
            }
        }
    }

    /// The bare public key: 32 bytes (Ed25519) or the 65-byte point.
    /// The bare public key, borrowed (no copy: verification reads it for
    /// every candidate key).
    pub(crate) fn public_raw(&self) -> &[u8] {
        match self {
            KeyPair::Ed25519(k) => k.public_key().as_ref(),
            KeyPair::Ecdsa { der, .. } => der.public_key().as_ref(),
        }
    }

    /// The public key in `format`. `minisign_key_id` is the key ID a
    /// minisign `.pub` file carries.
    pub(crate) fn public_key(
        &self,
        format: PublicKeyFormat,
        minisign_key_id: [u8; 8],
    ) -> Result<Vec<u8>> {
        encode_public_key(self.algorithm(), self.public_raw(), format, minisign_key_id)
    }
}

/// A raw public key (32 bytes for Ed25519, the 65-byte point for ECDSA) in
/// `format`: the one encoder of every signer's public key. `InvalidInput`
/// for a raw key that is not a key of `alg` (e.g. a point off the curve).
pub fn encode_public_key(
    alg: Algorithm,
    public_raw: &[u8],
    format: PublicKeyFormat,
    minisign_key_id: [u8; 8],
) -> Result<Vec<u8>> {
    check_public(alg, public_raw)?;
    let spki = || -> Result<Vec<u8>> {
        let verification: &'static dyn VerificationAlgorithm = match alg {
            Algorithm::Ed25519 => &ED25519,
            _ => verification_algs(alg).0,
        };
        let parsed = ParsedPublicKey::new(verification, public_raw)
            .map_err(|_| Error::invalid(format!("not a {alg} public key")))?;
        let der: PublicKeyX509Der<'static> = parsed
            .as_der()
            .map_err(|_| Error::internal("encoding the public key failed"))?;
        Ok(der.as_ref().to_vec())
    };
    match format {
        // Parsed as the other forms are, so a point off the curve (or a
        // key of the other curve) is refused whatever the form asked for.
        PublicKeyFormat::Raw => spki().map(|_| public_raw.to_vec()),
        PublicKeyFormat::Der => spki(),
        PublicKeyFormat::Pem => Ok(pem("PUBLIC KEY", &spki()?).into_bytes()),
        PublicKeyFormat::Minisign if alg == Algorithm::Ed25519 => {
            Ok(minisign_public_text(minisign_key_id, public_raw).into_bytes())
        }
        PublicKeyFormat::Minisign => Err(Error::unsupported(format!(
            "minisign keys are ed25519, this key is {alg}"
        ))),
    }
}

/// A raw ECDSA signature `r ‖ s` (64 bytes, as PKCS#11's CKM_ECDSA returns
/// it) as DER `SEQUENCE { INTEGER r, INTEGER s }`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.len() != 64 {
        return Err(Error::invalid(format!(
            "a raw ECDSA signature is 64 bytes, got {}",
            raw.len()
        )));
    }
    let int = |x: &[u8]| -> Vec<u8> {
        let start = x.iter().position(|&b| b != 0).unwrap_or(x.len() - 1);
        let x = &x[start..];
        let mut v = vec![0x02];
        let pad = x[0] & 0x80 != 0;
        v.push((x.len() + usize::from(pad)) as u8);
        if pad {
            v.push(0);
        }
        v.extend_from_slice(x);
        v
    };
    let (r, s) = (int(&raw[..32]), int(&raw[32..]));
    let mut der = vec![0x30, (r.len() + s.len()) as u8];
    der.extend_from_slice(&r);
    der.extend_from_slice(&s);
    Ok(der)
}

/// A minisign `.pub` file: an untrusted comment naming the key ID (as
/// minisign prints it: the 8 bytes read as a little-endian number, in
/// upper-case hex), then base64 of "Ed" ‖ key ID ‖ public key.
fn minisign_public_text(key_id: [u8; 8], public: &[u8]) -> String {
    use base64::Engine as _;
    let mut blob = Vec::with_capacity(42);
    blob.extend_from_slice(b"Ed");
    blob.extend_from_slice(&key_id);
    blob.extend_from_slice(public);
    format!(
        "untrusted comment: minisign public key {:016X}\n{}\n",
        u64::from_le_bytes(key_id),
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// PEM armour: base64 in 64-character lines.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Verifies `signature` over `message` with the bare public key
/// `public_raw` (32 bytes for Ed25519, the 65-byte uncompressed point for
/// ECDSA). ECDSA signatures may be DER or raw `r ‖ s`: a 64-byte signature
/// is tried as raw first, anything else as strict DER. `Authentication`
/// for a signature that does not verify (it says nothing more);
/// `InvalidInput` for a public key that is not one of `alg`.
pub fn verify(alg: Algorithm, public_raw: &[u8], message: &[u8], signature: &[u8]) -> Result<()> {
    check_public(alg, public_raw)?;
    let ok = match alg {
        Algorithm::Ed25519 => UnparsedPublicKey::new(&ED25519, public_raw)
            .verify(message, signature)
            .is_ok(),
        Algorithm::EcdsaP256 | Algorithm::EcdsaSecp256k1 => {
            let (asn1, fixed) = verification_algs(alg);
            (signature.len() == 64 && fixed.verify_sig(public_raw, message, signature).is_ok())
                || asn1.verify_sig(public_raw, message, signature).is_ok()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::bad_signature())
    }
}

/// Verifies like [`verify`], accepting only one ECDSA encoding: strict DER
/// or raw `r ‖ s` of exactly 64 bytes (Ed25519 signatures have one form).
/// For verifiers that must refuse the other encoding.
pub fn verify_strict(
    alg: Algorithm,
    public_raw: &[u8],
    message: &[u8],
    signature: &[u8],
    format: SignatureFormat,
) -> Result<()> {
    check_public(alg, public_raw)?;
    let ok = match alg {
        Algorithm::Ed25519 => UnparsedPublicKey::new(&ED25519, public_raw)
            .verify(message, signature)
            .is_ok(),
        Algorithm::EcdsaP256 | Algorithm::EcdsaSecp256k1 => {
            let (asn1, fixed) = verification_algs(alg);
            match format {
                SignatureFormat::Raw => {
                    signature.len() == 64
                        && fixed.verify_sig(public_raw, message, signature).is_ok()
                }
                SignatureFormat::Der => asn1.verify_sig(public_raw, message, signature).is_ok(),
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::bad_signature())
    }
}

/// Verifies an ECDSA signature over a SHA-256 digest (as `sign_digest`
/// makes). Errors as [`verify`]; Ed25519 is `Unsupported`.
pub fn verify_digest(
    alg: Algorithm,
    public_raw: &[u8],
    digest: &[u8],
    signature: &[u8],
) -> Result<()> {
    if !alg.is_ecdsa() {
        return Err(Error::unsupported("ed25519 verifies messages, not digests"));
    }
    check_public(alg, public_raw)?;
    let d = Digest::import_less_safe(digest, &SHA256).map_err(|_| {
        Error::invalid(format!(
            "a SHA-256 digest is 32 bytes, got {}",
            digest.len()
        ))
    })?;
    let (asn1, fixed) = verification_algs(alg);
    let ok = (signature.len() == 64
        && UnparsedPublicKey::new(fixed, public_raw)
            .verify_digest(&d, signature)
            .is_ok())
        || UnparsedPublicKey::new(asn1, public_raw)
            .verify_digest(&d, signature)
            .is_ok();
    if ok {
        Ok(())
    } else {
        Err(Error::bad_signature())
    }
}

fn check_public(alg: Algorithm, public_raw: &[u8]) -> Result<()> {
    let want = if alg.is_ecdsa() { 65 } else { 32 };
    if public_raw.len() != want || (alg.is_ecdsa() && public_raw[0] != 0x04) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a raw {alg} public key is {want} bytes{}, got {}",
                if alg.is_ecdsa() {
                    " (04 ‖ x ‖ y)"
                } else {
                    ""
                },
                public_raw.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_of_the_other_curve_is_refused_in_every_form() {
        let secret = KeyPair::generate_secret(Algorithm::EcdsaSecp256k1).unwrap();
        let k1 = KeyPair::from_secret(Algorithm::EcdsaSecp256k1, &secret).unwrap();
        for fmt in [
            PublicKeyFormat::Raw,
            PublicKeyFormat::Der,
            PublicKeyFormat::Pem,
        ] {
            assert!(
                encode_public_key(Algorithm::EcdsaSecp256k1, k1.public_raw(), fmt, [0; 8]).is_ok()
            );
            let e =
                encode_public_key(Algorithm::EcdsaP256, k1.public_raw(), fmt, [0; 8]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{fmt:?}");
        }
    }

    #[test]
    fn every_algorithm_signs_and_verifies_in_both_formats() {
        for alg in Algorithm::ALL {
            let secret = KeyPair::generate_secret(alg).unwrap();
            let kp = KeyPair::from_secret(alg, &secret).unwrap();
            let public = kp.public_raw().to_vec();
            for fmt in [SignatureFormat::Der, SignatureFormat::Raw] {
                let sig = kp.sign(b"hello", fmt).unwrap();
                assert!(sig.len() <= super::super::MAX_SIGNATURE_LEN);
                if alg.is_ecdsa() && fmt == SignatureFormat::Raw || alg == Algorithm::Ed25519 {
                    assert_eq!(sig.len(), 64);
                }
                verify(alg, &public, b"hello", &sig).unwrap();
                assert_eq!(
                    verify(alg, &public, b"hellp", &sig).unwrap_err().kind(),
                    ErrorKind::Authentication
                );
                for i in 0..sig.len() {
                    let mut bad = sig.clone();
                    bad[i] ^= 0x01;
                    assert!(
                        verify(alg, &public, b"hello", &bad).is_err(),
                        "{alg} {fmt:?} byte {i}"
                    );
                }
                if alg.is_ecdsa() {
                    use sha2::{Digest as _, Sha256};
                    let d = Sha256::digest(b"hello");
                    let by_digest = kp.sign_digest(&d, fmt).unwrap();
                    verify(alg, &public, b"hello", &by_digest).unwrap();
                    verify_digest(alg, &public, &d, &sig).unwrap();
                }
            }
            // The same secret gives the same key.
            assert_eq!(
                KeyPair::from_secret(alg, &secret)
                    .unwrap()
                    .public_raw()
                    .to_vec(),
                public
            );
        }
    }

    #[test]
    fn invalid_scalars_and_public_keys_are_refused() {
        for alg in [Algorithm::EcdsaP256, Algorithm::EcdsaSecp256k1] {
            assert_eq!(
                KeyPair::from_secret(alg, &[0; 32]).unwrap_err().kind(),
                ErrorKind::Format
            );
            assert_eq!(
                KeyPair::from_secret(alg, &[0xff; 32]).unwrap_err().kind(),
                ErrorKind::Format
            );
        }
        assert_eq!(
            verify(Algorithm::EcdsaP256, &[4; 64], b"m", &[0; 64])
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            verify(Algorithm::Ed25519, &[0; 33], b"m", &[0; 64])
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        // A point not on the curve, or garbage signatures: Authentication.
        let mut p = vec![4u8];
        p.extend([1u8; 64]);
        assert_eq!(
            verify(Algorithm::EcdsaP256, &p, b"m", &[0; 64])
                .unwrap_err()
                .kind(),
            ErrorKind::Authentication
        );
        let kp = KeyPair::from_secret(Algorithm::Ed25519, &[7; 32]).unwrap();
        assert_eq!(
            kp.sign_digest(&[0; 32], SignatureFormat::Der)
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
        let kp = KeyPair::from_secret(Algorithm::EcdsaP256, &[7; 32]).unwrap();
        assert_eq!(
            kp.sign_digest(&[0; 31], SignatureFormat::Der)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn raw_signatures_convert_to_der_that_verifies() {
        for alg in [Algorithm::EcdsaP256, Algorithm::EcdsaSecp256k1] {
            let kp = KeyPair::from_secret(alg, &KeyPair::generate_secret(alg).unwrap()).unwrap();
            for i in 0..64u8 {
                let raw = kp.sign(&[i], SignatureFormat::Raw).unwrap();
                let der = ecdsa_raw_to_der(&raw).unwrap();
                verify_strict(alg, kp.public_raw(), &[i], &der, SignatureFormat::Der).unwrap();
            }
        }
        // Leading zeros are dropped and high bits padded.
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[32] = 0x80;
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 0x21, 0x00]);
        assert_eq!(
            ecdsa_raw_to_der(&[0; 63]).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn public_keys_in_every_format() {
        let kp = KeyPair::from_secret(Algorithm::EcdsaP256, &[7; 32]).unwrap();
        let pem = String::from_utf8(kp.public_key(PublicKeyFormat::Pem, [0; 8]).unwrap()).unwrap();
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\n")
                && pem.ends_with("-----END PUBLIC KEY-----\n")
        );
        let der = kp.public_key(PublicKeyFormat::Der, [0; 8]).unwrap();
        assert_eq!(der.len(), 91, "P-256 SPKI");
        assert!(der.ends_with(kp.public_raw()));
        assert_eq!(
            kp.public_key(PublicKeyFormat::Minisign, [0; 8])
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
        let kp = KeyPair::from_secret(Algorithm::Ed25519, &[7; 32]).unwrap();
        let der = kp.public_key(PublicKeyFormat::Der, [0; 8]).unwrap();
        assert_eq!(der.len(), 44, "Ed25519 SPKI (RFC 8410)");
    }
}
