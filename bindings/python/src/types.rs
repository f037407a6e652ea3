//! Immutable value objects: `Envelope`, `KeyInfo`, `Policy`, `Event`,
//! `RotationPlan` (and, in `sign`, `Signature`).

use std::collections::BTreeMap;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::buf::{bytes_out, type_name, BytesIn};
use crate::errors::raise;

/// A data key wrapped by ``Keychain.wrap_key`` (or a root's ``wrap_key``).
///
/// Store it beside the data it protects and give it back to ``unwrap_key``
/// with the same context. It is bound to its provider, key ID, key version
/// and context: changing any of them makes unwrapping fail with
/// ``AuthenticationError``.
///
/// ``to_metadata()`` gives the object-metadata form S3 gateways use
/// (``x-amz-meta-encryption-*`` entries) and ``Envelope.from_metadata()``
/// reads it back. Envelopes compare equal when all four fields are equal.
#[pyclass(frozen, eq, hash, name = "Envelope", module = "keystrata")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyEnvelope {
    key_id: String,
    key_version: u32,
    provider: String,
    ciphertext: Vec<u8>,
}

impl PyEnvelope {
    pub(crate) fn from_core(e: keystrata::Envelope) -> PyEnvelope {
        PyEnvelope {
            key_id: e.key_id,
            key_version: e.key_version,
            provider: e.provider,
            ciphertext: e.ciphertext,
        }
    }

    pub(crate) fn to_core(&self) -> keystrata::Envelope {
        keystrata::Envelope {
            key_id: self.key_id.clone(),
            key_version: self.key_version,
            provider: self.provider.clone(),
            ciphertext: self.ciphertext.clone(),
        }
    }
}

#[pymethods]
impl PyEnvelope {
    /// Builds an envelope from its four fields (for example read from your
    /// own storage). Usually you get one from ``wrap_key`` or
    /// ``Envelope.from_metadata``.
    #[new]
    fn new(
        key_id: String,
        key_version: u32,
        provider: String,
        ciphertext: BytesIn<'_, '_>,
    ) -> Self {
        PyEnvelope {
            key_id,
            key_version,
            provider,
            ciphertext: ciphertext.as_slice().to_vec(),
        }
    }

    /// The wrapping key's ID (for a keychain: the decimal key ID, as a str).
    #[getter]
    fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The wrapping key's version (1, 2, 3 …).
    #[getter]
    fn key_version(&self) -> u32 {
        self.key_version
    }

    /// Which key manager made it: ``"keystrata"`` for a keychain, ``"age"``
    /// or ``"age-scrypt"`` for a root.
    #[getter]
    fn provider(&self) -> &str {
        &self.provider
    }

    /// The wrapped key (bytes).
    #[getter]
    fn ciphertext<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes_out(py, &self.ciphertext)
    }

    /// The object-metadata form: a dict of four str entries,
    /// ``x-amz-meta-encryption-wrapped-key`` (base64 ciphertext),
    /// ``x-amz-meta-encryption-kms-id``, ``x-amz-meta-encryption-kms-provider``
    /// and ``x-amz-meta-encryption-key-version``.
    fn to_metadata(&self) -> BTreeMap<String, String> {
        self.to_core().to_metadata()
    }

    /// Reads an envelope back from its metadata form (any mapping of str to
    /// str). Other entries are ignored; a missing or malformed entry raises
    /// ``FormatError``.
    #[staticmethod]
    fn from_metadata(metadata: &Bound<'_, PyAny>) -> PyResult<PyEnvelope> {
        let items = if let Ok(d) = metadata.cast::<PyDict>() {
            d.items().into_any()
        } else if metadata.hasattr(pyo3::intern!(metadata.py(), "items"))? {
            metadata.call_method0(pyo3::intern!(metadata.py(), "items"))?
        } else {
            return Err(PyTypeError::new_err(format!(
                "metadata must be a mapping of str to str, not {}",
                type_name(metadata)
            )));
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for item in items.try_iter()? {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<String>()) else {
                return Err(PyTypeError::new_err(format!(
                    "metadata must map str to str; found a {} key with a {} value",
                    type_name(&k),
                    type_name(&v)
                )));
            };
            pairs.push((k, v));
        }
        keystrata::Envelope::from_metadata(pairs)
            .map(PyEnvelope::from_core)
            .map_err(raise)
    }

    fn __repr__(&self) -> String {
        format!(
            "Envelope(key_id={}, key_version={}, provider={}, ciphertext=<{} bytes>)",
            py_repr(&self.key_id),
            self.key_version,
            py_repr(&self.provider),
            self.ciphertext.len()
        )
    }
}

/// Metadata of one key of a keychain (never its material), as returned by
/// ``Keychain.keys().expect("keys")``, ``Keychain.primary``, ``rotate()`` and friends.
///
/// Attributes: ``key_id`` (int, written on the wire), ``version`` (1, 2, 3 …
/// per purpose), ``purpose`` (``"encrypt"``, ``"derive"`` or ``"sign"``),
/// ``status`` (``"enabled"``, ``"disabled"`` or ``"destroyed"``),
/// ``created_at`` (Unix seconds), ``usage`` (encryptions so far),
/// ``primary`` (bool), ``algorithm`` (for a signing key
/// ``"ed25519"``, ``"ecdsa-p256"`` or ``"ecdsa-secp256k1"``; else None)
/// and ``stream_format`` (for a streaming key ``"aes256-gcm-hkdf-4kb"`` or
/// ``"aes256-gcm-hkdf-1mb"``; else None).
#[pyclass(frozen, eq, hash, get_all, name = "KeyInfo", module = "keystrata")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyKeyInfo {
    /// The key ID written on the wire (int).
    key_id: u32,
    /// 1, 2, 3 … in order of creation, counted per purpose.
    version: u32,
    /// ``"encrypt"``, ``"derive"``, ``"sign"`` or ``"stream"``.
    purpose: &'static str,
    /// ``"enabled"``, ``"disabled"`` or ``"destroyed"``.
    status: &'static str,
    /// Creation time, in seconds since the Unix epoch.
    created_at: u64,
    /// Encryptions made with this key so far (for a bound keychain, the
    /// count reserved in the file, which may be slightly ahead).
    usage: u64,
    /// Whether this key is the primary key of its purpose.
    primary: bool,
    /// For a signing key, its algorithm (``"ed25519"``, ``"ecdsa-p256"``,
    /// ``"ecdsa-secp256k1"``); None for the other purposes.
    algorithm: Option<&'static str>,
    /// For a streaming key, its format (``"aes256-gcm-hkdf-4kb"`` or
    /// ``"aes256-gcm-hkdf-1mb"``); None for the other purposes.
    stream_format: Option<&'static str>,
}

impl From<keystrata::KeyInfo> for PyKeyInfo {
    fn from(k: keystrata::KeyInfo) -> PyKeyInfo {
        PyKeyInfo {
            key_id: k.key_id,
            version: k.version,
            purpose: k.purpose.as_str(),
            status: k.status.as_str(),
            created_at: k.created_at,
            usage: k.usage,
            primary: k.primary,
            algorithm: k.algorithm.map(keystrata::Algorithm::name),
            stream_format: k.stream_format.map(keystrata::StreamFormat::name),
        }
    }
}

#[pymethods]
impl PyKeyInfo {
    fn __repr__(&self) -> String {
        // The algorithm only where there is one (a signing key).
        let algorithm = self
            .algorithm
            .map_or_else(String::new, |a| format!(", algorithm={}", py_repr(a)));
        // The format only where there is one (a streaming key).
        let stream_format = self
            .stream_format
            .map_or_else(String::new, |f| format!(", stream_format={}", py_repr(f)));
        format!(
            "KeyInfo(key_id={}, version={}, purpose={}, status={}, created_at={}, usage={}, primary={}{}{})",
            self.key_id,
            self.version,
            py_repr(self.purpose),
            py_repr(self.status),
            self.created_at,
            self.usage,
            if self.primary { "True" } else { "False" },
            algorithm,
            stream_format
        )
    }
}

/// When a key has done enough work and must be replaced.
///
/// - ``max_encryptions_per_key``: encryptions (seal, encrypt, wrap_key)
///   under one key, 1 to 2**32 (the NIST SP 800-38D bound for random
///   96-bit nonces, and the default).
/// - ``max_key_age_secs``: maximum age of the encryption primary in
///   seconds, or None for no limit (the default).
/// - ``usage_block``: how many usage counts a keychain bound to a file
///   reserves per write (default 65536): a crash skips at most this many.
///
/// An unbound keychain refuses to encrypt past a limit (``PolicyError``:
/// rotate and save); a keychain bound to a file (``Keychain.open``) rotates
/// by itself, writing the new key to the file before using it. Out-of-range
/// values raise ``InvalidInputError``.
#[pyclass(
    frozen,
    eq,
    hash,
    get_all,
    from_py_object,
    name = "Policy",
    module = "keystrata"
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PyPolicy {
    /// Maximum encryptions under one key (1 to 2**32).
    max_encryptions_per_key: u64,
    /// Maximum age of the encryption primary in seconds, or None.
    max_key_age_secs: Option<u64>,
    /// Usage counts a bound keychain reserves in its file per write.
    usage_block: u64,
}

impl PyPolicy {
    pub(crate) fn to_core(self) -> keystrata::Policy {
        keystrata::Policy {
            max_encryptions_per_key: self.max_encryptions_per_key,
            max_key_age_secs: self.max_key_age_secs,
            usage_block: self.usage_block,
        }
    }
}

impl From<keystrata::Policy> for PyPolicy {
    fn from(p: keystrata::Policy) -> PyPolicy {
        PyPolicy {
            max_encryptions_per_key: p.max_encryptions_per_key,
            max_key_age_secs: p.max_key_age_secs,
            usage_block: p.usage_block,
        }
    }
}

#[pymethods]
impl PyPolicy {
    #[new]
    #[pyo3(signature = (max_encryptions_per_key = keystrata::policy::DEFAULT_MAX_ENCRYPTIONS, max_key_age_secs = None, usage_block = keystrata::policy::DEFAULT_USAGE_BLOCK), text_signature = "(max_encryptions_per_key=4294967296, max_key_age_secs=None, usage_block=65536)")]
    fn new(
        max_encryptions_per_key: u64,
        max_key_age_secs: Option<u64>,
        usage_block: u64,
    ) -> PyResult<Self> {
        let p = PyPolicy {
            max_encryptions_per_key,
            max_key_age_secs,
            usage_block,
        };
        p.to_core().validate().map_err(raise)?;
        Ok(p)
    }

    fn __repr__(&self) -> String {
        let age = match self.max_key_age_secs {
            Some(s) => s.to_string(),
            None => "None".to_owned(),
        };
        format!(
            "Policy(max_encryptions_per_key={}, max_key_age_secs={}, usage_block={})",
            self.max_encryptions_per_key, age, self.usage_block
        )
    }
}

/// A rotation prepared by ``Keychain.prepare_rotation``: the encryption key
/// version active when it was prepared (``current_version``), and the
/// version (``target_version``, key ``target_key_id``) that
/// ``Keychain.promote_version`` makes active. Plans compare equal when all
/// three fields are equal; ``RotationPlan(current_version, target_version,
/// target_key_id)`` rebuilds one (for example in another process).
#[pyclass(frozen, eq, hash, get_all, name = "RotationPlan", module = "keystrata")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PyRotationPlan {
    /// The version of the encryption primary when the plan was made.
    current_version: u32,
    /// The version that becomes active.
    target_version: u32,
    /// The key ID of the target version.
    target_key_id: u32,
}

impl PyRotationPlan {
    pub(crate) fn to_core(self) -> keystrata::RotationPlan {
        keystrata::RotationPlan {
            current_version: self.current_version,
            target_version: self.target_version,
            target_key_id: self.target_key_id,
        }
    }
}

impl From<keystrata::RotationPlan> for PyRotationPlan {
    fn from(p: keystrata::RotationPlan) -> PyRotationPlan {
        PyRotationPlan {
            current_version: p.current_version,
            target_version: p.target_version,
            target_key_id: p.target_key_id,
        }
    }
}

#[pymethods]
impl PyRotationPlan {
    #[new]
    fn new(current_version: u32, target_version: u32, target_key_id: u32) -> PyRotationPlan {
        PyRotationPlan {
            current_version,
            target_version,
            target_key_id,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "RotationPlan(current_version={}, target_version={}, target_key_id={})",
            self.current_version, self.target_version, self.target_key_id
        )
    }
}

/// One lifecycle event, passed to the callables given to
/// ``Keychain.subscribe``. Carries identifiers only, never material.
///
/// - ``kind``: ``"key_created"``, ``"key_rotated"``, ``"key_promoted"``,
///   ``"key_disabled"``, ``"key_enabled"``, ``"key_destroyed"``,
///   ``"key_derived"``, ``"decrypt_failed"``, ``"signed"`` or
///   ``"verify_failed"``.
/// - ``key_id``, ``key_version``, ``purpose``: the key concerned, when
///   known (else None).
/// - ``automatic``: for ``"key_rotated"``, whether the rotation policy
///   triggered it.
/// - ``error``: for ``"decrypt_failed"`` and ``"verify_failed"``, the kind
///   of error returned to the caller (``"Authentication"``,
///   ``"UnknownKey"``, …), else None.
/// - ``algorithm``: for ``"signed"``, the signing algorithm, else None.
/// - ``digest``: for ``"signed"`` and ``"verify_failed"``, the SHA-256
///   digest (32 bytes) of the message (for ``sign_digest`` and
///   ``verify_digest``, the digest given), else None: the audit trail
///   names what was signed without holding it.
#[pyclass(frozen, eq, hash, name = "Event", module = "keystrata")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyEvent {
    /// What happened: ``"key_created"``, ``"key_rotated"``, … (snake_case).
    #[pyo3(get)]
    kind: &'static str,
    /// The key concerned, or None.
    #[pyo3(get)]
    key_id: Option<u32>,
    /// That key's version, or None.
    #[pyo3(get)]
    key_version: Option<u32>,
    /// That key's purpose (``"encrypt"``, ``"derive"``, ``"sign"``), or
    /// None.
    #[pyo3(get)]
    purpose: Option<&'static str>,
    /// For ``"key_rotated"``: whether the rotation policy triggered it.
    #[pyo3(get)]
    automatic: bool,
    /// For ``"decrypt_failed"`` and ``"verify_failed"``: the error kind
    /// name, else None.
    #[pyo3(get)]
    error: Option<&'static str>,
    /// For ``"signed"``: the signing algorithm, else None.
    #[pyo3(get)]
    algorithm: Option<&'static str>,
    /// Read through the `digest` getter (bytes, not a list of ints).
    digest: Option<[u8; 32]>,
}

impl From<&keystrata::Event> for PyEvent {
    fn from(e: &keystrata::Event) -> PyEvent {
        PyEvent {
            kind: e.kind.as_str(),
            key_id: e.key_id,
            key_version: e.key_version,
            purpose: e.purpose.map(|p| p.as_str()),
            automatic: e.automatic,
            error: e.error.map(|k| k.name()),
            algorithm: e.algorithm.map(keystrata::Algorithm::name),
            digest: e.digest,
        }
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_owned(), |x| x.to_string())
}

/// A Python-style repr of a str: single quotes, backslash escapes.
pub(crate) fn py_repr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn opt_str(v: Option<&str>) -> String {
    v.map_or_else(|| "None".to_owned(), py_repr)
}

#[pymethods]
impl PyEvent {
    /// For ``"signed"`` and ``"verify_failed"``: the SHA-256 digest of the
    /// message (32 bytes; for ``sign_digest``/``verify_digest``, the digest
    /// given), else None.
    #[getter]
    fn digest<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.digest.as_ref().map(|d| bytes_out(py, d))
    }

    fn __repr__(&self) -> String {
        // The signing fields only on events that have them.
        let mut signing = String::new();
        if let Some(a) = self.algorithm {
            signing.push_str(&format!(", algorithm={}", py_repr(a)));
        }
        if let Some(d) = &self.digest {
            let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
            signing.push_str(&format!(", digest=bytes.fromhex('{hex}')"));
        }
        format!(
            "Event(kind={}, key_id={}, key_version={}, purpose={}, automatic={}, error={}{})",
            py_repr(self.kind),
            opt(self.key_id),
            opt(self.key_version),
            opt_str(self.purpose),
            if self.automatic { "True" } else { "False" },
            opt_str(self.error),
            signing
        )
    }
}
