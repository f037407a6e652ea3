//! The trust file: `keystrata.TrustedKeys` (a KEYS.txt of named official
//! and community keys), `TrustedKey` and `TrustVerified`. The format and
//! every rule (which key verifies, what revoked means) are the core's
//! (`keystrata::sign::trust`).

use std::path::PathBuf;

use keystrata::sign::minisign::key_id_hex;
use keystrata::sign::{TrustVerified, TrustedKey, TrustedKeys};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList, PyString};

use crate::buf::{bytes_out, type_name, TextOrBytes, DETACH_ABOVE};
use crate::errors::call;
use crate::sign::SignatureIn;
use crate::types::py_repr;

/// The keys of a trust file (the ``KEYS.txt`` a verifier ships with):
/// official keys (ECDSA P-256 or secp256k1, whose private half stays in an
/// HSM or AWS KMS) and community keys (minisign), each named and active or
/// revoked. One key per line, five fields::
///
///     # name        kind       status   algorithm        public key
///     release-2026  official   active   ecdsa-p256       <base64 of the DER SubjectPublicKeyInfo>
///     alice         community  active   minisign         <the base64 line of alice's minisign .pub>
///
/// Make one with ``TrustedKeys.parse(text)`` or ``TrustedKeys.load(path)``;
/// ``len()``, iteration and ``keys`` give the ``TrustedKey`` entries in file
/// order; ``verify(data, signature)`` says which key signed. Immutable and
/// safe to share between threads.
#[pyclass(frozen, name = "TrustedKeys", module = "keystrata")]
pub(crate) struct PyTrustedKeys {
    inner: TrustedKeys,
}

#[pymethods]
impl PyTrustedKeys {
    /// Parses the text of a trust file (str, or UTF-8 bytes). Raises
    /// ``FormatError`` for a malformed line (the message names its number),
    /// a public key that does not parse or does not match its algorithm, or
    /// two keys with one name or one public key; ``InvalidInputError`` for a
    /// file over 1 MiB or 10000 keys.
    #[staticmethod]
    fn parse(py: Python<'_>, text: TextOrBytes<'_, '_>) -> PyResult<PyTrustedKeys> {
        let text = text.as_text("a trust file")?;
        call(py, text.len() > DETACH_ABOVE, || TrustedKeys::parse(text))
            .map(|inner| PyTrustedKeys { inner })
    }

    /// Reads and parses the trust file at ``path`` (str or os.PathLike);
    /// ``IoError`` if it cannot be read, then errors as for ``parse``.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyTrustedKeys> {
        call(py, true, || TrustedKeys::load(&path)).map(|inner| PyTrustedKeys { inner })
    }

    /// The keys (a list of ``TrustedKey``), in file order.
    #[getter]
    fn keys(&self) -> Vec<PyTrustedKey> {
        self.inner.keys().iter().map(PyTrustedKey::from).collect()
    }

    fn __len__(&self) -> usize {
        self.inner.keys().len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        PyList::new(py, self.keys())?.try_iter()
    }

    /// Verifies ``signature`` over ``data`` and says which key made it (a
    /// ``TrustVerified``). Minisign text (a str, or the bytes of a
    /// ``.minisig`` file) is checked against the community key its key ID
    /// names; any other signature (bytes or a ``Signature``; DER or raw
    /// ``r ‖ s``) against the official keys. Runs with the GIL released.
    ///
    /// Raises ``KeyDisabledError`` if the key that verifies was revoked
    /// (the message names it), ``UnknownKeyError`` if no listed key has the
    /// signature's minisign key ID or no official key is listed,
    /// ``AuthenticationError`` if no key verifies, ``FormatError`` for
    /// minisign text that does not parse.
    fn verify(
        &self,
        py: Python<'_>,
        data: crate::buf::BytesIn<'_, '_>,
        signature: TrustSignatureIn<'_, '_>,
    ) -> PyResult<PyTrustVerified> {
        let (d, s) = (data.as_slice(), signature.as_slice());
        call(py, true, || self.inner.verify(d, s)).map(PyTrustVerified::from)
    }

    fn __repr__(&self) -> String {
        format!("<TrustedKeys: {} keys>", self.inner.keys().len())
    }
}

/// `TrustedKeys.verify`'s `signature`: minisign text as a `str` (its
/// UTF-8), or a `Signature` or bytes-like object.
pub(crate) enum TrustSignatureIn<'a, 'py> {
    Text(String),
    Bytes(SignatureIn<'a, 'py>),
}

impl TrustSignatureIn<'_, '_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            TrustSignatureIn::Text(s) => s.as_bytes(),
            TrustSignatureIn::Bytes(b) => b.as_slice(),
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for TrustSignatureIn<'a, 'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(TrustSignatureIn::Text(s.to_cow()?.into_owned()));
        }
        SignatureIn::extract(obj)
            .map(TrustSignatureIn::Bytes)
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "signature must be a str (minisign), a Signature or a bytes-like object, \
                     not {}",
                    type_name(&obj)
                ))
            })
    }
}

/// One key of a trust file. Not a secret.
///
/// Attributes: ``name``; ``kind`` (``"official"`` or ``"community"``);
/// ``revoked`` (bool); ``algorithm`` (``"ecdsa-p256"`` or
/// ``"ecdsa-secp256k1"`` for official keys, ``"ed25519"`` for community
/// ones); ``public_key``, the raw key (the 65-byte uncompressed point or 32
/// bytes; what ``verify_signature`` takes); ``minisign_key_id``, for a
/// community key its minisign key ID as minisign prints it (16 hex digits),
/// else None. Keys compare equal when every attribute is equal.
#[pyclass(frozen, eq, hash, name = "TrustedKey", module = "keystrata")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyTrustedKey {
    name: String,
    kind: &'static str,
    revoked: bool,
    algorithm: &'static str,
    public_key: Vec<u8>,
    minisign_key_id: Option<String>,
}

impl From<&TrustedKey> for PyTrustedKey {
    fn from(k: &TrustedKey) -> PyTrustedKey {
        PyTrustedKey {
            name: k.name.clone(),
            kind: k.kind.name(),
            revoked: k.revoked,
            algorithm: k.algorithm.name(),
            public_key: k.public_key.clone(),
            minisign_key_id: k.minisign_key_id.map(key_id_hex),
        }
    }
}

#[pymethods]
impl PyTrustedKey {
    /// The key's name in the file.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// ``"official"`` or ``"community"``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether the key was revoked (its signatures raise
    /// ``KeyDisabledError``).
    #[getter]
    fn revoked(&self) -> bool {
        self.revoked
    }

    /// ``"ecdsa-p256"``, ``"ecdsa-secp256k1"`` or ``"ed25519"``.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// The raw public key (bytes).
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes_out(py, &self.public_key)
    }

    /// A community key's minisign key ID (16 hex digits, as minisign
    /// prints it), or None.
    #[getter]
    fn minisign_key_id(&self) -> Option<&str> {
        self.minisign_key_id.as_deref()
    }

    fn __repr__(&self) -> String {
        format!(
            "TrustedKey(name={}, kind={}, revoked={}, algorithm={})",
            py_repr(&self.name),
            py_repr(self.kind),
            if self.revoked { "True" } else { "False" },
            py_repr(self.algorithm)
        )
    }
}

/// What ``TrustedKeys.verify`` found: the key that made a signature.
///
/// Attributes: ``name``, ``kind`` (``"official"`` or ``"community"``),
/// ``algorithm``, and ``trusted_comment``: for a minisign signature its
/// trusted comment (authenticated by the signature), else None.
#[pyclass(frozen, eq, hash, name = "TrustVerified", module = "keystrata")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyTrustVerified {
    name: String,
    kind: &'static str,
    algorithm: &'static str,
    trusted_comment: Option<String>,
}

impl From<TrustVerified> for PyTrustVerified {
    fn from(v: TrustVerified) -> PyTrustVerified {
        PyTrustVerified {
            name: v.name,
            kind: v.kind.name(),
            algorithm: v.algorithm.name(),
            trusted_comment: v.trusted_comment,
        }
    }
}

#[pymethods]
impl PyTrustVerified {
    /// The name of the key that verified.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// ``"official"`` or ``"community"``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// The key's algorithm.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// A minisign signature's trusted comment, or None.
    #[getter]
    fn trusted_comment(&self) -> Option<&str> {
        self.trusted_comment.as_deref()
    }

    fn __repr__(&self) -> String {
        format!(
            "TrustVerified(name={}, kind={}, algorithm={}, trusted_comment={})",
            py_repr(&self.name),
            py_repr(self.kind),
            py_repr(self.algorithm),
            self.trusted_comment
                .as_deref()
                .map_or_else(|| "None".to_owned(), py_repr)
        )
    }
}
