//! `Pkcs11Signer`: a signing key that never leaves a PKCS#11 token.
//! ECDSA (P-256, secp256k1) signs with `CKM_ECDSA` over a SHA-256 digest
//! computed in software (the token returns `r ‖ s`, made DER here); Ed25519
//! with `CKM_EDDSA`. The private key is found by label, or generated
//! non-extractable and sensitive when `create_key` is set; its public half
//! (the `CKO_PUBLIC_KEY` with the same label) is read once when opening.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use sha2::{Digest, Sha256};

use super::errors::{ck_error, Op};
use super::token::{find_slot, load_module, open_session};
use super::{Inner, Pkcs11Config};
use crate::error::{Error, ErrorKind, Result};
use crate::sign::{encode_public_key, minisign_key_id, Algorithm, PublicKeyFormat, Signer};
use crate::sync::lock;

/// DER of the curve's OID, as `CKA_EC_PARAMS` holds it.
fn ec_params(alg: Algorithm) -> &'static [u8] {
    match alg {
        // prime256v1 1.2.840.10045.3.1.7
        Algorithm::EcdsaP256 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        // secp256k1 1.3.132.0.10
        Algorithm::EcdsaSecp256k1 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
        // id-Ed25519 1.3.101.112 (PKCS#11 3.0 also allows the printable
        // string "edwards25519", which some tokens return instead)
        Algorithm::Ed25519 => &[0x06, 0x03, 0x2b, 0x65, 0x70],
    }
}

fn algorithm_of_params(params: &[u8]) -> Option<Algorithm> {
    const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";
    Algorithm::ALL
        .into_iter()
        .find(|a| ec_params(*a) == params)
        .or((params == ED25519_NAME).then_some(Algorithm::Ed25519))
}

/// The raw public key in `CKA_EC_POINT`: tokens return it DER-wrapped in an
/// OCTET STRING (as PKCS#11 says), some bare.
fn raw_point(alg: Algorithm, point: &[u8]) -> Option<Vec<u8>> {
    let bare = if alg.is_ecdsa() { 65 } else { 32 };
    match point {
        [0x04, n, rest @ ..] if usize::from(*n) == bare && rest.len() == bare => {
            Some(rest.to_vec())
        }
        p if p.len() == bare => Some(p.to_vec()),
        _ => None,
    }
}

fn find_object(
    session: &Session,
    token: &str,
    label: &str,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>> {
    let template = [
        Attribute::Class(class),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let handles = session
        .find_objects(&template)
        .map_err(|e| ck_error(e, Op::FindKey, token))?;
    match handles.as_slice() {
        [] => Ok(None),
        [h] => Ok(Some(*h)),
        _ => Err(Error::new(
            ErrorKind::Backend,
            format!(
                "{} objects of one class are labelled '{label}' on token '{token}'; the key \
                 label must be unique",
                handles.len()
            ),
        )),
    }
}

fn find_private_key(session: &Session, token: &str, label: &str) -> Result<Option<ObjectHandle>> {
    find_object(session, token, label, ObjectClass::PRIVATE_KEY)
}

/// The algorithm and raw public key of the public key labelled `label`.
fn read_public(
    session: &Session,
    token: &str,
    label: &str,
) -> Result<Option<(Algorithm, Vec<u8>)>> {
    let Some(h) = find_object(session, token, label, ObjectClass::PUBLIC_KEY)? else {
        return Ok(None);
    };
    let attrs = session
        .get_attributes(
            h,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::EcPoint,
            ],
        )
        .map_err(|e| ck_error(e, Op::FindKey, token))?;
    let (mut kind, mut params, mut point) = (None, Vec::new(), Vec::new());
    for a in attrs {
        match a {
            Attribute::KeyType(t) => kind = Some(t),
            Attribute::EcParams(p) => params = p,
            Attribute::EcPoint(p) => point = p,
            _ => {}
        }
    }
    let unsupported = || {
        Error::unsupported(format!(
            "key '{label}' on token '{token}' is not an Ed25519, P-256 or secp256k1 key"
        ))
    };
    let alg = algorithm_of_params(&params).ok_or_else(unsupported)?;
    let want = if alg.is_ecdsa() {
        KeyType::EC
    } else {
        KeyType::EC_EDWARDS
    };
    if kind != Some(want) {
        return Err(unsupported());
    }
    let raw = raw_point(alg, &point).ok_or_else(|| {
        Error::new(
            ErrorKind::Backend,
            format!("the public key '{label}' on token '{token}' has a malformed CKA_EC_POINT"),
        )
    })?;
    Ok(Some((alg, raw)))
}

fn generate_key_pair(session: &Session, token: &str, label: &str, alg: Algorithm) -> Result<()> {
    let mechanism = if alg.is_ecdsa() {
        Mechanism::EccKeyPairGen
    } else {
        Mechanism::EccEdwardsKeyPairGen
    };
    let public = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(ec_params(alg).to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session
        .generate_key_pair(&mechanism, &public, &private)
        .map(|_| ())
        .map_err(|e| ck_error(e, Op::GenerateKey, token))
}

/// A signing key in a PKCS#11 token or HSM: Ed25519, ECDSA P-256 or ECDSA
/// secp256k1, found by label (`config.key_label`) on the token found by
/// label. A [`Signer`]: its signatures verify with the public key it
/// exports (PEM, DER, raw, minisign for Ed25519), in OpenSSL and every
/// keystrata language.
///
/// Thread-safe: each call borrows a logged-in session from a small pool,
/// as [`Pkcs11Root`](super::Pkcs11Root) does. `Debug` never prints the PIN.
#[cfg_attr(docsrs, doc(cfg(all(feature = "pkcs11", feature = "aws-lc"))))]
#[derive(Clone)]
pub struct Pkcs11Signer {
    inner: Arc<Inner>,
    algorithm: Algorithm,
    public_raw: Arc<[u8]>,
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("module", &self.inner.module_path)
            .field("token_label", &self.inner.token_label)
            .field("key_label", &self.inner.key_label)
            .field("algorithm", &self.algorithm)
            .field("closed", &self.inner.closed.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl Pkcs11Signer {
    /// Opens the signing key labelled `config.key_label`. If the token has
    /// none and `config.create_key` is set, generates a key pair of
    /// `algorithm` (private half sensitive and non-extractable). An existing
    /// key must be of `algorithm`.
    ///
    /// Errors: as [`Pkcs11Root::open`](super::Pkcs11Root::open) for the
    /// module, token and PIN; no key and no `create_key`: `UnknownKey`; a
    /// key of another algorithm, or a kind keystrata cannot sign with:
    /// `Unsupported`; a private key without its public key: `Backend`.
    pub fn open(config: &Pkcs11Config, algorithm: Algorithm) -> Result<Pkcs11Signer> {
        if config.token_label.is_empty() {
            return Err(Error::invalid("the PKCS#11 token label is empty"));
        }
        if config.key_label.is_empty() || config.key_label.len() > usize::from(u16::MAX) {
            return Err(Error::invalid("the PKCS#11 key label is empty or too long"));
        }
        let pin = config.pin.resolve()?;
        let module = load_module(&config.module)?;
        let token = config.token_label.as_str();
        let label = config.key_label.as_str();
        let slot = find_slot(&module, &config.module, token)?;
        let session = open_session(&module, slot, token, &pin)?;
        let (private, alg, public_raw) = {
            let _guard = lock(&module.keygen);
            if find_private_key(&session, token, label)?.is_none() {
                if !config.create_key {
                    return Err(Error::new(
                        ErrorKind::UnknownKey,
                        format!(
                            "no private key labelled '{label}' on token '{token}' (set \
                             create_key to generate one)"
                        ),
                    ));
                }
                let rw = module
                    .ctx
                    .open_rw_session(slot)
                    .map_err(|e| ck_error(e, Op::OpenSession, token))?;
                generate_key_pair(&rw, token, label, algorithm)?;
            }
            let private = find_private_key(&session, token, label)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::Backend,
                    format!("the private key '{label}' on token '{token}' cannot be found"),
                )
            })?;
            let (alg, raw) = read_public(&session, token, label)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::Backend,
                    format!(
                        "the private key '{label}' on token '{token}' has no public key with its \
                         label"
                    ),
                )
            })?;
            (private, alg, raw)
        };
        if alg != algorithm {
            return Err(Error::unsupported(format!(
                "key '{label}' on token '{token}' is {alg}, not {algorithm}"
            )));
        }
        Ok(Pkcs11Signer {
            inner: Arc::new(Inner {
                module,
                module_path: config.module.clone(),
                token_label: config.token_label.clone(),
                key_label: config.key_label.clone(),
                slot,
                pin,
                key: Mutex::new(private),
                idle: Mutex::new(vec![session]),
                closed: AtomicBool::new(false),
                find: find_private_key,
                key_kind: "private key",
                owner: "Pkcs11Signer",
            }),
            algorithm: alg,
            public_raw: public_raw.into(),
        })
    }

    /// The label of the key on the token.
    pub fn key_label(&self) -> &str {
        &self.inner.key_label
    }

    fn sign_raw(&self, data: &[u8], op: Op) -> Result<Vec<u8>> {
        let alg = self.algorithm;
        let sig = self.inner.call(op, |session, key| {
            if alg.is_ecdsa() {
                session.sign(&Mechanism::Ecdsa, key, data)
            } else {
                let params = EddsaParams::new(EddsaSignatureScheme::Pure);
                session.sign(&Mechanism::Eddsa(params), key, data)
            }
        })?;
        if sig.len() != 64 {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "PKCS#11 signing on token '{}' returned {} bytes, not 64",
                    self.inner.token_label,
                    sig.len()
                ),
            ));
        }
        if alg.is_ecdsa() {
            crate::sign::ecdsa_raw_to_der(&sig)
        } else {
            Ok(sig)
        }
    }
}

impl Signer for Pkcs11Signer {
    fn algorithm(&self) -> Result<Algorithm> {
        self.inner.check_open()?;
        Ok(self.algorithm)
    }

    fn public_key(&self, format: PublicKeyFormat) -> Result<Vec<u8>> {
        self.inner.check_open()?;
        let id = <[u8; 32]>::try_from(&self.public_raw[..])
            .map(|pk| minisign_key_id(&pk))
            .unwrap_or([0; 8]);
        encode_public_key(self.algorithm, &self.public_raw, format, id)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.inner.check_open()?;
        if self.algorithm.is_ecdsa() {
            self.sign_raw(&Sha256::digest(message), Op::Sign)
        } else {
            self.sign_raw(message, Op::Sign)
        }
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        self.inner.check_open()?;
        if !self.algorithm.is_ecdsa() {
            return Err(Error::unsupported(
                "ed25519 signs messages, not digests (use sign)",
            ));
        }
        if digest.len() != 32 {
            return Err(Error::invalid(format!(
                "a SHA-256 digest is 32 bytes, got {}",
                digest.len()
            )));
        }
        self.sign_raw(digest, Op::Sign)
    }

    fn health_check(&self) -> Result<()> {
        self.inner.health_check()
    }

    fn close(&self) -> Result<()> {
        self.inner.close();
        Ok(())
    }
}
