//! Signing with the keychain's keys of purpose `sign` (Ed25519, ECDSA P-256
//! and secp256k1): rotation, signatures, verification and public keys.
//! Every signature emits a `Signed` event and every failed verification a
//! `VerifyFailed` one (the audit trail); counters count both.

use sha2::{Digest as _, Sha256};

use super::Keychain;
use crate::error::{Error, Result};
use crate::events::{Counter, Event, EventKind};
use crate::key::{Key, KeyInfo, KeyStatus, Purpose, Usage};
use crate::metrics::{Op, Started};
use crate::sign::{minisign_key_id, Algorithm, PublicKeyFormat, SignatureFormat};

/// A signature and the key that made it.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// The signing key's ID (for its public key: [`Keychain::public_key`]).
    pub key_id: u32,
    /// That key's version.
    pub key_version: u32,
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// The signature: 64 bytes for Ed25519; for ECDSA, DER (at most 72
    /// bytes) or raw `r ‖ s` (64 bytes) as asked.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signature")
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .field("algorithm", &self.algorithm)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// What a message is, for the audit event: the message itself (hashed only
/// if someone listens) or a digest the caller gave.
enum Signed<'a> {
    Message(&'a [u8]),
    Digest(&'a [u8]),
}

impl Signed<'_> {
    fn digest(&self) -> Option<[u8; 32]> {
        match self {
            Signed::Message(m) => Some(Sha256::digest(m).into()),
            Signed::Digest(d) => <[u8; 32]>::try_from(*d).ok(),
        }
    }
}

impl Keychain {
    /// Makes a new signing key of `algorithm` the signing primary: what
    /// [`sign`](Keychain::sign) uses from now on. Older signing keys stay
    /// enabled, so their signatures keep verifying.
    pub fn rotate_signing(&self, algorithm: Algorithm) -> Result<KeyInfo> {
        let r = self.new_signing_key(algorithm, true);
        self.track(r)
    }

    /// Adds an enabled signing key that is not primary: the first phase of
    /// a two-phase rotation (publish its public key to verifiers, then
    /// [`promote`](Keychain::promote) it).
    pub fn add_signing_key(&self, algorithm: Algorithm) -> Result<KeyInfo> {
        let r = self.new_signing_key(algorithm, false);
        self.track(r)
    }

    fn new_signing_key(&self, algorithm: Algorithm, primary: bool) -> Result<KeyInfo> {
        let (info, changed) = self.mutate(|set, bound| {
            let usage = if bound {
                Usage::bound()
            } else {
                Usage::unbound(0)
            };
            let pos = set.push_new_signing(algorithm, usage)?;
            if primary {
                set.set_primary(Purpose::Sign, pos);
            }
            let k = &set.keys[pos];
            let mut events = vec![Event::key(
                EventKind::KeyCreated,
                k.id,
                k.version,
                Purpose::Sign,
            )];
            if primary {
                events.push(Event::key(
                    EventKind::KeyRotated,
                    k.id,
                    k.version,
                    Purpose::Sign,
                ));
            }
            Ok((Some(set.info(pos)), events))
        })?;
        if changed && primary {
            self.telemetry.count(Counter::RotationsSign);
        }
        info.ok_or_else(|| Error::internal("rotate_signing produced no key"))
    }

    /// Signs `message` with the signing primary. ECDSA signatures are DER
    /// ([`sign_as`](Keychain::sign_as) for raw `r ‖ s`). `UnknownKey` if
    /// the keychain has no signing key yet ([`rotate_signing`]).
    ///
    /// [`rotate_signing`]: Keychain::rotate_signing
    pub fn sign(&self, message: &[u8]) -> Result<Signature> {
        self.sign_as(message, SignatureFormat::Der)
    }

    /// [`sign`](Keychain::sign) with the ECDSA signature encoding chosen
    /// (Ed25519 signatures are the same in both).
    pub fn sign_as(&self, message: &[u8], format: SignatureFormat) -> Result<Signature> {
        let started = self.start(Op::Sign);
        let r = self.with_primary_signer(|key, alg, pair| {
            let bytes = pair.sign(message, format)?;
            Ok(signature(key, alg, bytes))
        });
        self.done_sign(r, Signed::Message(message), started)
    }

    /// Signs a SHA-256 digest computed elsewhere (ECDSA keys only: what
    /// AWS KMS calls `MessageType=DIGEST`). `InvalidInput` unless the
    /// digest is 32 bytes; `Unsupported` for an Ed25519 primary.
    pub fn sign_digest(&self, digest: &[u8], format: SignatureFormat) -> Result<Signature> {
        let started = self.start(Op::Sign);
        let r = self.with_primary_signer(|key, alg, pair| {
            let bytes = pair.sign_digest(digest, format)?;
            Ok(signature(key, alg, bytes))
        });
        self.done_sign(r, Signed::Digest(digest), started)
    }

    fn with_primary_signer<T>(
        &self,
        f: impl FnOnce(&Key, Algorithm, &crate::sign::KeyPair) -> Result<T>,
    ) -> Result<T> {
        let set = self.live()?;
        let pos = set.primary_sign_pos()?;
        let (key, secret) = set.usable(set.keys[pos].id, Purpose::Sign)?;
        let alg = algorithm_of(key)?;
        f(key, alg, secret.key_pair(alg)?)
    }

    fn done_sign(
        &self,
        r: Result<Signature>,
        what: Signed<'_>,
        started: Started,
    ) -> Result<Signature> {
        self.telemetry.latency.observe(started);
        match &r {
            Ok(sig) => {
                self.telemetry.count(Counter::Signed);
                if self.telemetry.wants_events() {
                    let mut ev = Event::key(
                        EventKind::Signed,
                        sig.key_id,
                        sig.key_version,
                        Purpose::Sign,
                    );
                    ev.algorithm = Some(sig.algorithm);
                    ev.digest = what.digest();
                    self.telemetry.emit(&[ev]);
                }
            }
            Err(e) => {
                self.telemetry.count(Counter::SignFailed);
                self.telemetry.error(e.kind())
            }
        }
        r
    }

    /// Verifies `signature` over `message` with this keychain's enabled
    /// signing keys (newest first; a disabled or destroyed key verifies
    /// nothing, so disabling a key revokes its signatures here). Returns
    /// the key that verified. `Authentication` if none does (saying nothing
    /// more); `UnknownKey` if the keychain has no enabled signing key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<KeyInfo> {
        let started = self.start(Op::Verify);
        let r = self.verify_by(None, |k, alg, public| {
            crate::sign::verify(alg, public, message, signature).map(|_| k)
        });
        self.done_verify(r, Signed::Message(message), started)
    }

    /// Verifies with one key: `UnknownKey`, `KeyDisabled` or `KeyDestroyed`
    /// when `key_id` is not an enabled signing key of this keychain,
    /// `Authentication` when the signature does not verify.
    pub fn verify_with(&self, key_id: u32, message: &[u8], signature: &[u8]) -> Result<KeyInfo> {
        let started = self.start(Op::Verify);
        let r = self.verify_by(Some(key_id), |k, alg, public| {
            crate::sign::verify(alg, public, message, signature).map(|_| k)
        });
        self.done_verify(r, Signed::Message(message), started)
    }

    /// Verifies an ECDSA signature over a SHA-256 digest (as
    /// [`sign_digest`](Keychain::sign_digest) makes), with the enabled
    /// ECDSA signing keys. Errors as [`verify`](Keychain::verify).
    pub fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> Result<KeyInfo> {
        let started = self.start(Op::Verify);
        if digest.len() != 32 {
            let e = Error::invalid(format!(
                "a SHA-256 digest is 32 bytes, got {}",
                digest.len()
            ));
            return self.done_verify(Err(e), Signed::Digest(digest), started);
        }
        let r = self.verify_by(None, |k, alg, public| {
            if !alg.is_ecdsa() {
                return Err(Error::bad_signature());
            }
            crate::sign::verify_digest(alg, public, digest, signature).map(|_| k)
        });
        self.done_verify(r, Signed::Digest(digest), started)
    }

    /// Runs `check` with each candidate key (one if `key_id` is given),
    /// until one succeeds. The error of a lone key is kept; several keys
    /// that all fail give `Authentication`.
    fn verify_by(
        &self,
        key_id: Option<u32>,
        check: impl Fn(KeyInfo, Algorithm, &[u8]) -> Result<KeyInfo>,
    ) -> Result<KeyInfo> {
        let set = self.live()?;
        if let Some(id) = key_id {
            let (key, secret) = set.usable(id, Purpose::Sign)?;
            let alg = algorithm_of(key)?;
            let public = secret.key_pair(alg)?.public_raw();
            let pos = set
                .position(id)
                .ok_or_else(|| Error::internal("usable key has no position"))?;
            return check(set.info(pos), alg, public);
        }
        let mut any = false;
        for pos in (0..set.keys.len()).rev() {
            let key = &set.keys[pos];
            let (Purpose::Sign, KeyStatus::Enabled, Some(secret)) =
                (key.purpose, key.status, &key.secret)
            else {
                continue;
            };
            any = true;
            let alg = algorithm_of(key)?;
            let public = secret.key_pair(alg)?.public_raw();
            if let Ok(info) = check(set.info(pos), alg, public) {
                return Ok(info);
            }
        }
        if !any {
            return Err(Error::new(
                crate::ErrorKind::UnknownKey,
                "this keychain has no enabled signing key",
            ));
        }
        Err(Error::bad_signature())
    }

    fn done_verify(
        &self,
        r: Result<KeyInfo>,
        what: Signed<'_>,
        started: Started,
    ) -> Result<KeyInfo> {
        self.telemetry.latency.observe(started);
        match &r {
            Ok(_) => self.telemetry.count(Counter::VerifyOk),
            Err(e) => {
                self.telemetry.count(Counter::VerifyFailed);
                self.telemetry.error(e.kind());
                if self.telemetry.wants_events() {
                    let ev = Event {
                        kind: EventKind::VerifyFailed,
                        key_id: None,
                        key_version: None,
                        purpose: Some(Purpose::Sign),
                        automatic: false,
                        error: Some(e.kind()),
                        algorithm: None,
                        digest: what.digest(),
                    };
                    self.telemetry.emit(&[ev]);
                }
            }
        }
        r
    }

    /// The public key of signing key `key_id` in `format` (PEM or DER
    /// SubjectPublicKeyInfo, raw, or a minisign `.pub` file for Ed25519).
    /// Disabled keys have one too; a destroyed key's is gone
    /// (`KeyDestroyed`). `UnknownKey` if `key_id` is not a signing key.
    pub fn public_key(&self, key_id: u32, format: PublicKeyFormat) -> Result<Vec<u8>> {
        let r = (|| {
            let set = self.live()?;
            let key = set
                .position(key_id)
                .map(|p| &set.keys[p])
                .filter(|k| k.purpose == Purpose::Sign)
                .ok_or_else(|| {
                    Error::new(
                        crate::ErrorKind::UnknownKey,
                        format!("no signing key with key_id {key_id} in this keychain"),
                    )
                })?;
            let secret = key.secret.as_ref().ok_or_else(|| {
                Error::new(
                    crate::ErrorKind::KeyDestroyed,
                    format!(
                        "signing key {key_id} (version {}) was destroyed",
                        key.version
                    ),
                )
            })?;
            let pair = secret.key_pair(algorithm_of(key)?)?;
            pair.public_key(format, minisign_id(key, pair))
        })();
        self.track(r)
    }

    /// Signs `data` as `minisign -S` does, with the signing primary (which
    /// must be Ed25519: `Unsupported` otherwise), and returns the text of
    /// the `.minisig` file: a prehashed signature and `trusted_comment`
    /// under the global signature. `minisign -V` verifies it with
    /// [`public_key`](Keychain::public_key)`(id, PublicKeyFormat::Minisign)`.
    /// Emits `Signed` (digest: SHA-256 of `data`) like every signature.
    /// `InvalidInput` for a comment minisign cannot carry.
    pub fn sign_minisign(&self, data: &[u8], trusted_comment: &str) -> Result<String> {
        let started = self.start(Op::Sign);
        let r = self.with_primary_signer(|key, alg, pair| {
            if alg != Algorithm::Ed25519 {
                return Err(Error::unsupported(format!(
                    "minisign signs with ed25519 keys; the signing primary is {alg}"
                )));
            }
            let text = crate::sign::minisign::sign_with(
                &|m: &[u8]| pair.sign(m, SignatureFormat::Der),
                minisign_id(key, pair),
                data,
                trusted_comment,
                None,
            )?;
            Ok((signature(key, alg, Vec::new()), text))
        });
        match r {
            Ok((sig, text)) => self
                .done_sign(Ok(sig), Signed::Message(data), started)
                .map(|_| text),
            Err(e) => self
                .done_sign(Err(e), Signed::Message(data), started)
                .map(|_| String::new()),
        }
    }

    /// Verifies a minisign signature (`.minisig` text, prehashed or legacy)
    /// of `data` with the enabled Ed25519 signing key whose minisign key ID
    /// it names; returns that key. `UnknownKey` if no enabled key has the
    /// ID, `Authentication` if it does not verify (trusted comment
    /// included), `Format` for text that is not a minisign signature.
    pub fn verify_minisign(&self, data: &[u8], signature: &str) -> Result<KeyInfo> {
        let started = self.start(Op::Verify);
        let r = (|| {
            let id = crate::sign::minisign::signature_key_id(signature)?;
            let set = self.live()?;
            for pos in (0..set.keys.len()).rev() {
                let key = &set.keys[pos];
                let (Purpose::Sign, KeyStatus::Enabled, Some(Algorithm::Ed25519), Some(secret)) =
                    (key.purpose, key.status, key.algorithm, &key.secret)
                else {
                    continue;
                };
                let pair = secret.key_pair(Algorithm::Ed25519)?;
                if minisign_id(key, pair) != id {
                    continue;
                }
                let mut pk = crate::sign::minisign::PublicKey {
                    key_id: id,
                    key: [0; 32],
                };
                pk.key.copy_from_slice(pair.public_raw());
                crate::sign::minisign::verify(&pk, data, signature)?;
                return Ok(set.info(pos));
            }
            Err(Error::new(
                crate::ErrorKind::UnknownKey,
                format!(
                    "no enabled ed25519 signing key has minisign key ID {}",
                    crate::sign::minisign::key_id_hex(id)
                ),
            ))
        })();
        self.done_verify(r, Signed::Message(data), started)
    }

    /// Imports a minisign secret key file (`minisign -G` output; `password`
    /// for an encrypted one, `None` for one made with `-W`) as an Ed25519
    /// signing key that keeps its minisign key ID, so signatures made with
    /// it verify against the `.pub` file published before. It becomes the
    /// signing primary if the keychain has none; otherwise promote it.
    ///
    /// Errors: `Authentication` (wrong password), `InvalidInput` (an
    /// encrypted key and no password), `Policy` (scrypt limits above
    /// minisign's own maximum), `Format`, and `InvalidInput` if the key is
    /// in the keychain already.
    pub fn import_minisign_secret_key(
        &self,
        text: &str,
        password: Option<&[u8]>,
    ) -> Result<KeyInfo> {
        let r = (|| {
            let sk = crate::sign::minisign::SecretKey::from_text(text, password)?;
            let (info, _) = self.mutate(|set, bound| {
                let dup = set.keys.iter().any(|k| {
                    k.purpose == Purpose::Sign
                        && k.algorithm == Some(Algorithm::Ed25519)
                        && k.secret
                            .as_ref()
                            .is_some_and(|s| s.material.0 == **sk.insecure_seed())
                });
                if dup {
                    return Err(Error::invalid(
                        "this minisign key is in the keychain already",
                    ));
                }
                let usage = if bound {
                    Usage::bound()
                } else {
                    Usage::unbound(0)
                };
                let pos = set.push_imported_minisign(sk.insecure_seed(), sk.key_id(), usage)?;
                let k = &set.keys[pos];
                let mut events = vec![Event::key(
                    EventKind::KeyCreated,
                    k.id,
                    k.version,
                    Purpose::Sign,
                )];
                if set.primary_sign.is_none() {
                    set.set_primary(Purpose::Sign, pos);
                    let k = &set.keys[pos];
                    events.push(Event::key(
                        EventKind::KeyPromoted,
                        k.id,
                        k.version,
                        Purpose::Sign,
                    ));
                }
                Ok((Some(set.info(pos)), events))
            })?;
            info.ok_or_else(|| Error::internal("import produced no key"))
        })();
        self.track(r)
    }
}

/// A signing key's minisign key ID: the one it was imported with, or the
/// one derived from its public key (FORMAT.md §12).
fn minisign_id(key: &Key, pair: &crate::sign::KeyPair) -> [u8; 8] {
    key.minisign_key_id.unwrap_or_else(|| {
        <[u8; 32]>::try_from(pair.public_raw())
            .map(|pk| minisign_key_id(&pk))
            .unwrap_or([0; 8])
    })
}

fn signature(key: &Key, algorithm: Algorithm, bytes: Vec<u8>) -> Signature {
    Signature {
        key_id: key.id,
        key_version: key.version,
        algorithm,
        bytes,
    }
}

fn algorithm_of(key: &Key) -> Result<Algorithm> {
    key.algorithm
        .ok_or_else(|| Error::internal(format!("signing key {} has no algorithm", key.id)))
}
