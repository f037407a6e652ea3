//! The trust file: a `KEYS.txt` of the public keys a verifier trusts,
//! official (ECDSA, kept in an HSM or AWS KMS) and community (minisign),
//! each named and either active or revoked. docs/SIGNING.md has the format.
//!
//! ```text
//! # keystrata trusted keys v1
//! # name            kind       status   algorithm        public key
//! release-2026      official   active   ecdsa-p256       MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...
//! release-2025      official   revoked  ecdsa-secp256k1  MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAE...
//! alice             community  active   minisign         RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3
//! ```
//!
//! One key per line, five fields separated by spaces or tabs; `#` starts a
//! comment line; blank lines are ignored. Official keys are base64 of the
//! DER SubjectPublicKeyInfo (`public_key(…, Der)`, or `openssl pkey -pubin
//! -outform DER | base64 -w0`); community keys are the base64 line of a
//! minisign `.pub` file.

use base64::Engine as _;

use super::minisign;
use super::Algorithm;
use crate::error::{truncate_for_message, Error, ErrorKind, Result};

/// The largest trust file accepted, in bytes.
pub const MAX_TRUST_FILE_LEN: usize = 1 << 20;
/// The most keys a trust file may list.
pub const MAX_TRUSTED_KEYS: usize = 10_000;

/// Which of the two signing paths a key belongs to.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrustKind {
    /// An official key: ECDSA (P-256 or secp256k1) whose private half never
    /// leaves an HSM or AWS KMS; signatures are DER or raw `r ‖ s`.
    Official,
    /// A community author's minisign key (Ed25519); signatures are
    /// `.minisig` text.
    Community,
}

impl TrustKind {
    /// Every kind, in numeric order.
    pub const ALL: [TrustKind; 2] = [TrustKind::Official, TrustKind::Community];

    /// The stable number (official 1, community 2), shared by every
    /// binding (the C `KS_TRUST_*` values; 0 is left for "unknown").
    pub const fn code(self) -> u32 {
        match self {
            TrustKind::Official => 1,
            TrustKind::Community => 2,
        }
    }

    /// The kind with the given stable number, if there is one.
    pub const fn from_code(code: u32) -> Option<TrustKind> {
        match code {
            1 => Some(TrustKind::Official),
            2 => Some(TrustKind::Community),
            _ => None,
        }
    }

    /// `"official"` or `"community"`.
    pub const fn name(self) -> &'static str {
        match self {
            TrustKind::Official => "official",
            TrustKind::Community => "community",
        }
    }
}

/// One trusted key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    /// The key's name in the file.
    pub name: String,
    /// Official or community.
    pub kind: TrustKind,
    /// Whether the key was revoked: its signatures fail, saying so.
    pub revoked: bool,
    /// The algorithm (`Ed25519` for community keys).
    pub algorithm: Algorithm,
    /// The raw public key (32 bytes, or the 65-byte ECDSA point).
    pub public_key: Vec<u8>,
    /// For a community key, its minisign key ID.
    pub minisign_key_id: Option<[u8; 8]>,
}

/// What a successful [`TrustedKeys::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrustVerified {
    /// The name of the key that verified.
    pub name: String,
    /// Its kind.
    pub kind: TrustKind,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// For a minisign signature, its trusted comment (authenticated).
    pub trusted_comment: Option<String>,
}

/// The keys of a trust file. See the [module docs](crate::sign::trust) for the format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    /// Parses a trust file. `Format` for a malformed line (the message
    /// names the line number and echoes at most 64 characters of it), a
    /// public key that does not parse or does not match its algorithm, two
    /// keys with one name or one public key; `InvalidInput` for a file over
    /// [`MAX_TRUST_FILE_LEN`] bytes or [`MAX_TRUSTED_KEYS`] keys.
    pub fn parse(text: &str) -> Result<TrustedKeys> {
        if text.len() > MAX_TRUST_FILE_LEN {
            return Err(Error::invalid(format!(
                "a trust file is at most {MAX_TRUST_FILE_LEN} bytes, got {}",
                text.len()
            )));
        }
        let mut keys: Vec<TrustedKey> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| {
                Error::format(format!(
                    "trust file line {n}: {why}: {:?}",
                    truncate_for_message(line, 64)
                ))
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, kind, status, alg, key] = fields[..] else {
                return Err(bad(
                    "expected 5 fields: name kind status algorithm public-key",
                ));
            };
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
            {
                return Err(bad("a name is 1 to 64 characters of [A-Za-z0-9._-@]"));
            }
            let revoked = match status {
                "active" => false,
                "revoked" => true,
                _ => return Err(bad("status is active or revoked")),
            };
            let key = match (kind, alg) {
                ("community", "minisign") => {
                    let pk = minisign::PublicKey::from_text(key)
                        .map_err(|_| bad("not a minisign public key"))?;
                    TrustedKey {
                        name: name.to_owned(),
                        kind: TrustKind::Community,
                        revoked,
                        algorithm: Algorithm::Ed25519,
                        public_key: pk.key.to_vec(),
                        minisign_key_id: Some(pk.key_id),
                    }
                }
                ("official", a) => {
                    let algorithm = Algorithm::from_name(a)
                        .filter(|a| a.is_ecdsa())
                        .ok_or_else(|| bad("an official key is ecdsa-p256 or ecdsa-secp256k1"))?;
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(key)
                        .map_err(|_| bad("the public key is not base64"))?;
                    let raw = spki_point(algorithm, &der)
                        .ok_or_else(|| bad("not a DER public key of this algorithm"))?;
                    TrustedKey {
                        name: name.to_owned(),
                        kind: TrustKind::Official,
                        revoked,
                        algorithm,
                        public_key: raw,
                        minisign_key_id: None,
                    }
                }
                ("community", _) => return Err(bad("a community key's algorithm is minisign")),
                _ => return Err(bad("kind is official or community")),
            };
            if keys.len() == MAX_TRUSTED_KEYS {
                return Err(Error::invalid(format!(
                    "a trust file lists at most {MAX_TRUSTED_KEYS} keys"
                )));
            }
            if keys.iter().any(|k| k.name == key.name) {
                return Err(bad("a key with this name is listed already"));
            }
            if keys.iter().any(|k| k.public_key == key.public_key) {
                return Err(bad("this public key is listed already"));
            }
            keys.push(key);
        }
        Ok(TrustedKeys { keys })
    }

    /// Reads and parses a trust file (`Io` if it cannot be read; a file
    /// over [`MAX_TRUST_FILE_LEN`] is refused before it is read whole).
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<TrustedKeys> {
        use std::io::Read as _;
        let path = path.as_ref();
        let f = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
        let mut text = String::new();
        f.take(MAX_TRUST_FILE_LEN as u64 + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::io(path.display(), e))?;
        TrustedKeys::parse(&text)
    }

    /// The keys, in file order.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// Verifies `signature` over `data` and says which key made it.
    /// A signature that is minisign text is checked against the community
    /// key its key ID names; any other bytes against the official keys
    /// (ECDSA, DER or raw `r ‖ s`).
    ///
    /// Errors: `KeyDisabled` if the key that verifies was revoked (the
    /// message names it); `UnknownKey` if no listed key has the minisign
    /// key ID, or no official key is listed; `Authentication` if no key
    /// verifies; `Format` for minisign text that does not parse.
    pub fn verify(&self, data: &[u8], signature: &[u8]) -> Result<TrustVerified> {
        let text = std::str::from_utf8(signature).ok();
        if let Some(text) = text.filter(|t| t.trim_start().starts_with("untrusted comment:")) {
            return self.verify_minisign(data, text);
        }
        let mut any = false;
        for k in self.keys.iter().filter(|k| k.kind == TrustKind::Official) {
            any = true;
            if super::verify(k.algorithm, &k.public_key, data, signature).is_ok() {
                return verified(k, None);
            }
        }
        if !any {
            return Err(Error::new(
                ErrorKind::UnknownKey,
                "the trust file lists no official key",
            ));
        }
        Err(Error::bad_signature())
    }

    fn verify_minisign(&self, data: &[u8], text: &str) -> Result<TrustVerified> {
        let id = minisign::signature_key_id(text)?;
        let k = self
            .keys
            .iter()
            .find(|k| k.minisign_key_id == Some(id))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UnknownKey,
                    format!(
                        "no trusted community key has minisign key ID {}",
                        minisign::key_id_hex(id)
                    ),
                )
            })?;
        let mut pk = minisign::PublicKey {
            key_id: id,
            key: [0; 32],
        };
        pk.key.copy_from_slice(&k.public_key);
        let v = minisign::verify(&pk, data, text)?;
        verified(k, Some(v.trusted_comment))
    }
}

fn verified(k: &TrustedKey, trusted_comment: Option<String>) -> Result<TrustVerified> {
    if k.revoked {
        return Err(Error::new(
            ErrorKind::KeyDisabled,
            format!(
                "signed by {} key '{}', which was revoked",
                k.kind.name(),
                k.name
            ),
        ));
    }
    Ok(TrustVerified {
        name: k.name.clone(),
        kind: k.kind,
        algorithm: k.algorithm,
        trusted_comment,
    })
}

/// The raw point of an ECDSA SubjectPublicKeyInfo of `alg`: the DER must
/// be exactly what [`encode_public_key`](super::encode_public_key) makes
/// for that point.
fn spki_point(alg: Algorithm, der: &[u8]) -> Option<Vec<u8>> {
    let raw = der.get(der.len().checked_sub(65)?..)?;
    let again = super::encode_public_key(alg, raw, super::PublicKeyFormat::Der, [0; 8]).ok()?;
    (again == der).then(|| raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{KeyPair, PublicKeyFormat, SignatureFormat};

    fn official(alg: Algorithm) -> (KeyPair, String) {
        let kp = KeyPair::from_secret(alg, &KeyPair::generate_secret(alg).unwrap()).unwrap();
        let der = kp.public_key(PublicKeyFormat::Der, [0; 8]).unwrap();
        (kp, base64::engine::general_purpose::STANDARD.encode(der))
    }

    fn community() -> (minisign::SecretKey, String) {
        let seed = KeyPair::generate_secret(Algorithm::Ed25519).unwrap();
        let sk = minisign::SecretKey::from_seed(&seed, [1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let b64 = sk.public_key().to_base64();
        (sk, b64)
    }

    #[test]
    fn official_and_community_keys_verify_and_revocation_is_named() {
        let (p256, p256_der) = official(Algorithm::EcdsaP256);
        let (k1, k1_der) = official(Algorithm::EcdsaSecp256k1);
        let (alice, alice_pub) = community();
        let file = format!(
            "# keystrata trusted keys v1\n\nrelease-2026 official active ecdsa-p256 {p256_der}\n\
             release-2025\tofficial\trevoked\tecdsa-secp256k1\t{k1_der}\n\
             alice community active minisign {alice_pub}\n"
        );
        let trust = TrustedKeys::parse(&file).unwrap();
        assert_eq!(trust.keys().len(), 3);
        let sig = p256.sign(b"doc", SignatureFormat::Der).unwrap();
        let v = trust.verify(b"doc", &sig).unwrap();
        assert_eq!(
            (v.name.as_str(), v.kind, v.algorithm),
            ("release-2026", TrustKind::Official, Algorithm::EcdsaP256)
        );
        let raw = p256.sign(b"doc", SignatureFormat::Raw).unwrap();
        assert_eq!(trust.verify(b"doc", &raw).unwrap().name, "release-2026");
        assert_eq!(
            trust.verify(b"other", &sig).unwrap_err().kind(),
            ErrorKind::Authentication
        );
        let revoked = k1.sign(b"doc", SignatureFormat::Der).unwrap();
        let e = trust.verify(b"doc", &revoked).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KeyDisabled);
        assert!(e.message().contains("release-2025") && e.message().contains("revoked"));
        let minisig = alice.sign(b"doc", "release notes", None).unwrap();
        let v = trust.verify(b"doc", minisig.as_bytes()).unwrap();
        assert_eq!((v.name.as_str(), v.kind), ("alice", TrustKind::Community));
        assert_eq!(v.trusted_comment.as_deref(), Some("release notes"));
        assert_eq!(
            trust.verify(b"dox", minisig.as_bytes()).unwrap_err().kind(),
            ErrorKind::Authentication
        );
        let (bob, _) = community();
        let other = minisign::SecretKey::from_seed(bob.insecure_seed(), [9; 8]).unwrap();
        let unknown = other.sign(b"doc", "", None).unwrap();
        assert_eq!(
            trust.verify(b"doc", unknown.as_bytes()).unwrap_err().kind(),
            ErrorKind::UnknownKey
        );
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        let (_, der) = official(Algorithm::EcdsaP256);
        let (_, p) = community();
        let cases = [
            "a official active ecdsa-p256".to_owned(),
            format!("a official maybe ecdsa-p256 {der}"),
            format!("a official active ed25519 {der}"),
            format!("a official active ecdsa-secp256k1 {der}"),
            format!("a official active ecdsa-p256 {}", &der[..der.len() - 4]),
            format!("a community active ecdsa-p256 {p}"),
            format!("a community active minisign {der}"),
            format!("a vendor active minisign {p}"),
            format!("bad/name official active ecdsa-p256 {der}"),
            format!("a official active ecdsa-p256 {der}\na official active ecdsa-p256 {der}"),
            format!("a official active ecdsa-p256 {der}\nb official active ecdsa-p256 {der}"),
        ];
        for (i, c) in cases.iter().enumerate() {
            let e = TrustedKeys::parse(c).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Format, "case {i}: {e}");
            assert!(e.message().contains("line "), "case {i}: {e}");
            assert!(e.message().len() < 200, "case {i}: {e}");
        }
        let huge = "#".repeat(MAX_TRUST_FILE_LEN + 1);
        assert_eq!(
            TrustedKeys::parse(&huge).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            TrustedKeys::parse("")
                .unwrap()
                .verify(b"d", &[0; 64])
                .unwrap_err()
                .kind(),
            ErrorKind::UnknownKey
        );
    }
}
