//! Signing: `keystrata.Signature`, the `signature` argument (a `Signature`
//! or bytes), the algorithm and format names, `verify_signature` and
//! `verify_minisign`. The keychain's signing methods live with the rest of
//! `Keychain`; signers in `signer`, the trust file in `trust`.

use keystrata::sign::minisign;
use keystrata::{Algorithm, PublicKeyFormat, SignatureFormat};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buf::{bytes_out, type_name, BytesIn, TextOrBytes};
use crate::errors::{call, invalid};
use crate::types::py_repr;

/// `InvalidInput` for an unknown `what` called `name`, listing the names
/// the core knows.
fn unknown(what: &str, name: &str, names: impl Iterator<Item = &'static str>) -> PyErr {
    let names: Vec<String> = names.map(|n| format!("{n:?}")).collect();
    invalid(format!(
        "{what} must be {}, not {name:?}",
        names.join(" or ")
    ))
}

/// A signing algorithm from its name (`Algorithm::from_name`, the one
/// table).
pub(crate) fn algorithm_from(name: &str) -> PyResult<Algorithm> {
    Algorithm::from_name(name).ok_or_else(|| {
        unknown(
            "algorithm",
            name,
            Algorithm::ALL.into_iter().map(Algorithm::name),
        )
    })
}

/// Every signature format, from the core's numbered table (read until it
/// ends).
fn signature_formats() -> impl Iterator<Item = SignatureFormat> {
    (1..).map_while(SignatureFormat::from_code)
}

/// Every public-key format, from the core's numbered table.
fn public_key_formats() -> impl Iterator<Item = PublicKeyFormat> {
    (1..).map_while(PublicKeyFormat::from_code)
}

/// A signature format (`"der"`, `"raw"`) from its name, as the core
/// spells it.
pub(crate) fn signature_format_from(name: &str) -> PyResult<SignatureFormat> {
    signature_formats()
        .find(|f| f.name() == name)
        .ok_or_else(|| {
            unknown(
                "signature format",
                name,
                signature_formats().map(SignatureFormat::name),
            )
        })
}

/// A public-key format (`"pem"`, `"der"`, …) from its name, as the core
/// spells it.
pub(crate) fn public_key_format_from(name: &str) -> PyResult<PublicKeyFormat> {
    public_key_formats()
        .find(|f| f.name() == name)
        .ok_or_else(|| {
            unknown(
                "public key format",
                name,
                public_key_formats().map(PublicKeyFormat::name),
            )
        })
}

/// A signature made by ``Keychain.sign`` or ``Keychain.sign_digest``, and
/// the key that made it. Not a secret.
///
/// Attributes: ``key_id`` (int; ``Keychain.public_key(key_id)`` gives its
/// public key), ``key_version`` (int), ``algorithm`` (``"ed25519"``,
/// ``"ecdsa-p256"`` or ``"ecdsa-secp256k1"``) and ``bytes``: 64 bytes for
/// Ed25519; for ECDSA, DER (at most 72 bytes, the default) or raw
/// ``r ‖ s`` (64 bytes). ``bytes(sig)`` and ``len(sig)`` give the same
/// bytes and their length; every ``verify`` accepts a ``Signature`` or
/// its bytes. Signatures compare equal when all four fields are equal.
#[pyclass(frozen, eq, hash, name = "Signature", module = "keystrata")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PySignature {
    key_id: u32,
    key_version: u32,
    algorithm: &'static str,
    bytes: Vec<u8>,
}

impl From<keystrata::Signature> for PySignature {
    fn from(s: keystrata::Signature) -> PySignature {
        PySignature {
            key_id: s.key_id,
            key_version: s.key_version,
            algorithm: s.algorithm.name(),
            bytes: s.bytes,
        }
    }
}

#[pymethods]
impl PySignature {
    /// The signing key's ID (int).
    #[getter]
    fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signing key's version (1, 2, 3 … among signing keys).
    #[getter]
    fn key_version(&self) -> u32 {
        self.key_version
    }

    /// ``"ed25519"``, ``"ecdsa-p256"`` or ``"ecdsa-secp256k1"``.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// The signature (bytes).
    #[getter]
    fn bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes_out(py, &self.bytes)
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes_out(py, &self.bytes)
    }

    fn __len__(&self) -> usize {
        self.bytes.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Signature(key_id={}, key_version={}, algorithm={}, bytes=<{} bytes>)",
            self.key_id,
            self.key_version,
            py_repr(self.algorithm),
            self.bytes.len()
        )
    }
}

/// A `signature` argument: a `Signature` (its bytes, read in place) or
/// any bytes-like object.
pub(crate) enum SignatureIn<'a, 'py> {
    Signature(&'a PySignature),
    Bytes(BytesIn<'a, 'py>),
}

impl SignatureIn<'_, '_> {
    /// The signature's bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            SignatureIn::Signature(s) => &s.bytes,
            SignatureIn::Bytes(b) => b.as_slice(),
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for SignatureIn<'a, 'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PySignature>() {
            return Ok(SignatureIn::Signature(s.get()));
        }
        BytesIn::extract(obj).map(SignatureIn::Bytes).map_err(|_| {
            PyTypeError::new_err(format!(
                "signature must be a Signature or a bytes-like object, not {}",
                type_name(&obj)
            ))
        })
    }
}

/// verify_signature(algorithm, public_key, message, signature) -> None
///
/// Verifies ``signature`` over ``message`` with a bare public key, no
/// keychain needed: ``public_key`` is ``Keychain.public_key(key_id,
/// "raw")`` (32 bytes for ``"ed25519"``, the 65-byte uncompressed point
/// ``04 ‖ x ‖ y`` for ``"ecdsa-p256"`` and ``"ecdsa-secp256k1"``).
/// ``signature`` is a ``Signature`` or bytes; an ECDSA signature may be
/// DER or raw ``r ‖ s``. Returns None when it verifies.
///
/// Raises ``AuthenticationError`` when it does not (saying nothing more),
/// ``InvalidInputError`` for an unknown algorithm name or a public key
/// that is not one of ``algorithm``. Runs with the GIL released.
#[pyfunction]
pub(crate) fn verify_signature(
    py: Python<'_>,
    algorithm: &str,
    public_key: BytesIn<'_, '_>,
    message: BytesIn<'_, '_>,
    signature: SignatureIn<'_, '_>,
) -> PyResult<()> {
    let alg = algorithm_from(algorithm)?;
    let (pk, m, s) = (
        public_key.as_slice(),
        message.as_slice(),
        signature.as_slice(),
    );
    call(py, true, || keystrata::sign::verify(alg, pk, m, s))
}

/// verify_minisign(public_key, data, signature) -> str
///
/// Verifies a minisign ``signature`` (the text of a ``.minisig`` file;
/// prehashed, as ``minisign -S`` writes by default, or legacy) of ``data``
/// as ``minisign -V`` does, with ``public_key``: the text of a minisign
/// ``.pub`` file or its base64 line alone (what ``minisign -P`` takes), as
/// ``Keychain.public_key(key_id, "minisign")`` gives it. Both texts may be
/// str or UTF-8 bytes. Returns the trusted comment, which the signature
/// authenticates. No keychain needed.
///
/// Raises ``AuthenticationError`` when the signature or its trusted
/// comment does not verify, ``UnknownKeyError`` when the signature names
/// another key ID than the public key's (the message gives both),
/// ``FormatError`` for text that is not a minisign public key or
/// signature, ``UnsupportedError`` for an algorithm minisign does not
/// define. Runs with the GIL released.
#[pyfunction]
pub(crate) fn verify_minisign(
    py: Python<'_>,
    public_key: TextOrBytes<'_, '_>,
    data: BytesIn<'_, '_>,
    signature: TextOrBytes<'_, '_>,
) -> PyResult<String> {
    let pk = public_key.as_text("a minisign public key")?;
    let sig = signature.as_text("a minisign signature")?;
    let d = data.as_slice();
    call(py, true, || {
        let pk = minisign::PublicKey::from_text(pk)?;
        minisign::verify(&pk, d, sig).map(|v| v.trusted_comment)
    })
}
