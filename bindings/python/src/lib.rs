//! `keystrata._native`: the PyO3 extension behind the `keystrata` Python
//! package. It binds the `keystrata` core crate directly (no C hop).
//!
//! Layout, after pyca/cryptography's Rust side:
//! - `errors`: the one conversion from a core error (or panic) to a Python
//!   exception; the exception classes themselves are pure Python
//!   (`keystrata/exceptions.py`).
//! - `buf`: bytes in (any bytes-like object) and bytes out.
//! - `types`: frozen value classes (`Envelope`, `KeyInfo`, `Policy`, `Event`,
//!   `RotationPlan`).
//! - `roots`: `AgeRoot`, `PassphraseRoot`, `Pkcs11Root`, `KmipRoot`, `AwsKmsRoot`,
//!   `UriRoot`, and the `root` argument every method takes.
//! - `custom_root`: `CustomRoot`, a Python object as a root.
//! - `sign`: `Signature`, the algorithm and format names,
//!   `verify_signature` and `verify_minisign`.
//! - `signer`: `Pkcs11Signer`, `AwsKmsSigner`, `KeychainSigner` (the `Signer` contract) and
//!   `sign_minisign` through either.
//! - `trust`: `TrustedKeys`, `TrustedKey`, `TrustVerified` (the trust
//!   file).
//! - `stream`: `EncryptingWriter`, `DecryptingReader`,
//!   `SeekableDecryptor` (streaming encryption as Python file objects).
//! - `keychain`: `Keychain`.
//!
//! Every class is `frozen`: shared freely between threads, no borrow
//! checking at run time.

// One function may use unsafe: `buf::payload_out`, which allocates an
// output `bytes` object uninitialised so the per-byte work runs with the
// interpreter released.
#![deny(unsafe_code)]
#![deny(clippy::unwrap_used)]

mod buf;
mod custom_root;
mod errors;
mod keychain;
mod roots;
mod sign;
mod signer;
mod stream;
mod trust;
mod types;

use keystrata::MetadataBinding;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::buf::{bytes_out, secret_out, type_name, BytesIn, DETACH_ABOVE};
use crate::errors::{call, raise};

/// hkdf_sha256(salt, ikm, info, length) -> bytes
///
/// Plain HKDF-SHA256 (RFC 5869): ``length`` bytes (1 to 8160) from
/// ``salt`` (None means 32 zero bytes, like an empty salt), ``ikm`` and
/// ``info``. The low-level function the keychain's derivations use, with
/// no salt and the key's material as ``ikm``; exposed for known-answer
/// tests (Wycheproof). Out-of-range ``length`` raises ``InvalidInputError``.
///
/// The returned bytes are outside keystrata's zeroization.
#[pyfunction]
fn hkdf_sha256<'py>(
    py: Python<'py>,
    salt: Option<BytesIn<'_, '_>>,
    ikm: BytesIn<'_, '_>,
    info: BytesIn<'_, '_>,
    length: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let salt = salt.as_ref().map(BytesIn::as_slice);
    let (ikm, info) = (ikm.as_slice(), info.as_slice());
    let detach = ikm.len().saturating_add(info.len()).saturating_add(length) > DETACH_ABOVE;
    let okm = call(py, detach, || {
        keystrata::derive::hkdf_sha256(salt, ikm, info, length)
    })?;
    Ok(secret_out(py, okm))
}

/// metadata_context(metadata, bind=None) -> bytes
///
/// The context bytes an object-store gateway gives ``wrap_key`` and
/// ``unwrap_key`` for an object's ``metadata`` (docs/FORMAT.md §4.2),
/// computed by the core so every language derives the same bytes: the
/// bound entries sorted by name, each ``name=value\n`` with ``%``, ``=``
/// and newline escaped. The four envelope entries are never bound.
///
/// ``metadata``: a mapping of str to str, or an iterable of ``(name,
/// value)`` pairs (a name given twice raises ``InvalidInputError``).
/// ``bind``: ``None`` or ``"nothing"`` (the default: empty bytes, as
/// gateways pass one map when wrapping and another when unwrapping),
/// ``"all"`` (every entry), or an iterable of names (exactly those entries
/// that are present). Another string raises ``InvalidInputError``; wrong
/// types raise ``TypeError``.
#[pyfunction]
#[pyo3(signature = (metadata, bind = None))]
fn metadata_context<'py>(
    py: Python<'py>,
    metadata: &Bound<'py, PyAny>,
    bind: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let binding = binding_from(bind)?;
    let entries = entries_from(metadata)?;
    let len: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
    let ctx = call(py, len > DETACH_ABOVE, || {
        keystrata::metadata_context(entries, &binding)
    })?;
    Ok(bytes_out(py, &ctx))
}

/// `metadata_context`'s `bind` argument as the core's binding.
fn binding_from(bind: Option<&Bound<'_, PyAny>>) -> PyResult<MetadataBinding> {
    let Some(bind) = bind else {
        return Ok(MetadataBinding::Nothing);
    };
    if let Ok(s) = bind.cast::<PyString>() {
        let s = s.to_cow()?;
        return MetadataBinding::from_name(s.as_ref()).map_err(raise);
    }
    let not_names = || {
        PyTypeError::new_err(format!(
            "bind must be None, \"nothing\", \"all\" or an iterable of str, not {}",
            type_name(bind)
        ))
    };
    if bind.cast::<PyBytes>().is_ok() {
        return Err(not_names());
    }
    let mut names = Vec::new();
    for name in bind.try_iter().map_err(|_| not_names())? {
        let name = name?;
        let Ok(name) = name.extract::<String>() else {
            return Err(PyTypeError::new_err(format!(
                "bind's names must be str, not {}",
                type_name(&name)
            )));
        };
        names.push(name);
    }
    Ok(MetadataBinding::only(names))
}

/// `metadata_context`'s `metadata` argument as (name, value) pairs, in the
/// caller's order (the core sorts and rejects duplicates).
fn entries_from(metadata: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let py = metadata.py();
    let shape = || {
        PyTypeError::new_err(format!(
            "metadata must be a mapping of str to str or an iterable of (str, str) pairs, not {}",
            type_name(metadata)
        ))
    };
    let items = if let Ok(d) = metadata.cast::<PyDict>() {
        d.items().into_any()
    } else if metadata.cast::<PyString>().is_ok() || metadata.cast::<PyBytes>().is_ok() {
        return Err(shape());
    } else if metadata.hasattr(pyo3::intern!(py, "items"))? {
        metadata.call_method0(pyo3::intern!(py, "items"))?
    } else {
        metadata.clone()
    };
    let mut pairs = Vec::new();
    for item in items.try_iter().map_err(|_| shape())? {
        let item = item?;
        // A tuple or a list (vectors read from JSON); a str is refused.
        let pair: Vec<Bound<'_, PyAny>> = item.extract().unwrap_or_default();
        let [k, v] = pair.as_slice() else {
            return Err(PyTypeError::new_err(format!(
                "metadata entries must be (name, value) pairs, not {}",
                type_name(&item)
            )));
        };
        let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<String>()) else {
            return Err(PyTypeError::new_err(format!(
                "metadata must map str to str; found a {} name with a {} value",
                type_name(k),
                type_name(v)
            )));
        };
        pairs.push((k, v));
    }
    Ok(pairs)
}

/// Test hook: raises the exception of error kind ``code`` (1 to 12) with
/// ``message``, through the same conversion every call uses. Lets the test
/// suite check kinds no public call can produce on demand (Backend,
/// Internal).
#[pyfunction]
fn raise_kind(py: Python<'_>, code: u32, message: String) -> PyResult<()> {
    call(py, false, || {
        let kind = keystrata::ErrorKind::from_code(code).ok_or_else(|| {
            keystrata::Error::new(keystrata::ErrorKind::InvalidInput, "no such code")
        })?;
        Err(keystrata::Error::new(kind, message))
    })
}

/// Test hook: panics inside the guard every call into the core goes
/// through, with the interpreter released or not; the panic must surface
/// as ``InternalError``.
#[pyfunction]
fn panic(py: Python<'_>, detach: bool) -> PyResult<()> {
    call(py, detach, || -> keystrata::Result<()> {
        panic!("test panic from keystrata._native._testing.panic")
    })
}

// CPython allocates objects 16-byte aligned: a pyclass that needs more
// would sit misaligned. Every pyclass of this module, checked at compile
// time (a `Keychain` held inline once needed 128).
const _: () = {
    use std::mem::align_of;
    assert!(align_of::<keychain::PyKeychain>() <= 16);
    assert!(align_of::<roots::PyAgeRoot>() <= 16);
    assert!(align_of::<roots::PyPassphraseRoot>() <= 16);
    assert!(align_of::<roots::PyPkcs11Root>() <= 16);
    assert!(align_of::<roots::PyKmipRoot>() <= 16);
    assert!(align_of::<roots::PyAwsKmsRoot>() <= 16);
    assert!(align_of::<roots::PyUriRoot>() <= 16);
    assert!(align_of::<custom_root::PyCustomRoot>() <= 16);
    assert!(align_of::<types::PyEnvelope>() <= 16);
    assert!(align_of::<types::PyKeyInfo>() <= 16);
    assert!(align_of::<types::PyPolicy>() <= 16);
    assert!(align_of::<types::PyEvent>() <= 16);
    assert!(align_of::<types::PyRotationPlan>() <= 16);
    assert!(align_of::<sign::PySignature>() <= 16);
    assert!(align_of::<signer::PyPkcs11Signer>() <= 16);
    assert!(align_of::<signer::PyAwsKmsSigner>() <= 16);
    assert!(align_of::<signer::PyKeychainSigner>() <= 16);
    assert!(align_of::<trust::PyTrustedKeys>() <= 16);
    assert!(align_of::<trust::PyTrustedKey>() <= 16);
    assert!(align_of::<trust::PyTrustVerified>() <= 16);
    assert!(align_of::<stream::PyEncryptingWriter>() <= 16);
    assert!(align_of::<stream::PyDecryptingReader>() <= 16);
    assert!(align_of::<stream::PySeekableDecryptor>() <= 16);
};

/// sealed_key_id(ciphertext) -> int
///
/// The key ID a sealed ciphertext (``Keychain.seal``) names, read from its
/// prefix without any key. Raises ``FormatError`` if it cannot be one.
#[pyfunction]
fn sealed_key_id(ciphertext: BytesIn<'_, '_>) -> PyResult<u32> {
    keystrata::sealed_key_id(ciphertext.as_slice()).map_err(raise)
}

/// encrypted_key_id(blob) -> int
///
/// The key ID an envelope-encrypted blob (``Keychain.encrypt``) needs,
/// read from its framing without any key. Raises ``FormatError`` for a
/// wrong framing.
#[pyfunction]
fn encrypted_key_id(blob: BytesIn<'_, '_>) -> PyResult<u32> {
    keystrata::encrypted_key_id(blob.as_slice()).map_err(raise)
}

/// The native half of the ``keystrata`` package. Import ``keystrata``, not
/// this module: it re-exports everything here with the exception classes.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::init(m.py())?;
    m.add_class::<keychain::PyKeychain>()?;
    m.add_class::<roots::PyAgeRoot>()?;
    m.add_class::<roots::PyPassphraseRoot>()?;
    m.add_class::<roots::PyPkcs11Root>()?;
    m.add_class::<roots::PyKmipRoot>()?;
    m.add_class::<roots::PyAwsKmsRoot>()?;
    m.add_class::<roots::PyUriRoot>()?;
    m.add_class::<custom_root::PyCustomRoot>()?;
    m.add_class::<types::PyEnvelope>()?;
    m.add_class::<types::PyKeyInfo>()?;
    m.add_class::<types::PyPolicy>()?;
    m.add_class::<types::PyEvent>()?;
    m.add_class::<types::PyRotationPlan>()?;
    m.add_class::<sign::PySignature>()?;
    m.add_class::<signer::PyPkcs11Signer>()?;
    m.add_class::<signer::PyAwsKmsSigner>()?;
    m.add_class::<signer::PyKeychainSigner>()?;
    m.add_class::<trust::PyTrustedKeys>()?;
    m.add_class::<trust::PyTrustedKey>()?;
    m.add_class::<trust::PyTrustVerified>()?;
    m.add_class::<stream::PyEncryptingWriter>()?;
    m.add_class::<stream::PyDecryptingReader>()?;
    m.add_class::<stream::PySeekableDecryptor>()?;
    m.add_function(wrap_pyfunction!(hkdf_sha256, m)?)?;
    m.add_function(wrap_pyfunction!(sealed_key_id, m)?)?;
    m.add_function(wrap_pyfunction!(encrypted_key_id, m)?)?;
    m.add_function(wrap_pyfunction!(metadata_context, m)?)?;
    m.add_function(wrap_pyfunction!(sign::verify_signature, m)?)?;
    m.add_function(wrap_pyfunction!(sign::verify_minisign, m)?)?;
    m.add_function(wrap_pyfunction!(signer::sign_minisign, m)?)?;
    m.add_function(wrap_pyfunction!(roots::root_from_uri, m)?)?;
    // Test hooks live in a private submodule, outside `__all__`.
    let testing = PyModule::new(m.py(), "_testing")?;
    testing.add_function(wrap_pyfunction!(raise_kind, &testing)?)?;
    testing.add_function(wrap_pyfunction!(panic, &testing)?)?;
    m.setattr("_testing", testing)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CORE_VERSION", keystrata::VERSION)?;
    Ok(())
}
