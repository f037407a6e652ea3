//! Signers: `Pkcs11Signer` (a key that never leaves a PKCS#11 token),
//! `AwsKmsSigner` (one that never leaves AWS KMS) and
//! `KeychainSigner` (a keychain's signing primary, from
//! `Keychain.signer()`), both the core's `Signer` contract; and
//! `sign_minisign`, a `.minisig` made through either. The methods of the
//! contract are written once, in `signer_pymethods!`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use keystrata::sign::minisign;
use keystrata::sign::Signer;
use keystrata::PublicKeyFormat;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buf::{bytes_out, type_name, BytesIn};
use crate::errors::call;
use crate::keychain::PyKeychain;
use crate::roots::{aws_kms_config, pkcs11_config};
use crate::sign::{algorithm_from, public_key_format_from};
use crate::types::py_repr;

/// A Python signer object: how it reaches its core `Signer`.
pub(crate) trait HoldsSigner {
    /// Whether `health_check` and `close` may reach a device or a service
    /// (and so run with the interpreter released).
    const REMOTE: bool;

    /// Runs `f` on the core signer through `call` (the one error
    /// conversion), with the interpreter released when `detach`.
    fn run<T, F>(&self, py: Python<'_>, detach: bool, f: F) -> PyResult<T>
    where
        F: FnOnce(&dyn Signer) -> keystrata::Result<T> + Send,
        T: Send;

    /// Closes the signer (idempotent).
    fn close_signer(&self, py: Python<'_>) -> PyResult<()>;
}

/// `#[pymethods]` for a signer class: the class's own items, then the
/// `Signer` contract (the same for every signer; pymethods cannot be
/// generic). Signing always runs with the interpreter released: public-key
/// arithmetic (30 to 400 µs), or a round trip to a token.
macro_rules! signer_pymethods {
    (impl $ty:ident { $($own:tt)* }) => {
        #[pymethods]
        impl $ty {
            $($own)*

            /// The key's algorithm: ``"ed25519"``, ``"ecdsa-p256"`` or
            /// ``"ecdsa-secp256k1"``. Raises ``UnavailableError`` once
            /// closed.
            #[getter]
            fn algorithm(&self, py: Python<'_>) -> PyResult<&'static str> {
                self.run(py, false, |s| s.algorithm()).map(keystrata::Algorithm::name)
            }

            /// The public key (bytes) in ``format``: ``"pem"`` (the
            /// default; SubjectPublicKeyInfo), ``"der"``, ``"raw"`` (32
            /// bytes for Ed25519, the 65-byte uncompressed point for ECDSA;
            /// what ``verify_signature`` takes) or ``"minisign"`` (the text
            /// of a ``.pub`` file; Ed25519 only, ``UnsupportedError``
            /// otherwise). Another ``format`` raises ``InvalidInputError``.
            #[pyo3(signature = (format = "pem"))]
            fn public_key<'py>(
                &self,
                py: Python<'py>,
                format: &str,
            ) -> PyResult<Bound<'py, PyBytes>> {
                let format = public_key_format_from(format)?;
                let key = self.run(py, false, |s| s.public_key(format))?;
                Ok(bytes_out(py, &key))
            }

            /// Signs ``message``; returns the signature (bytes): 64 bytes
            /// for Ed25519 (RFC 8032), DER for ECDSA over SHA-256(message),
            /// as OpenSSL and ``cryptography`` verify it with the PEM public
            /// key. Runs with the GIL released.
            fn sign<'py>(
                &self,
                py: Python<'py>,
                message: BytesIn<'_, '_>,
            ) -> PyResult<Bound<'py, PyBytes>> {
                let m = message.as_slice();
                let sig = self.run(py, true, |s| s.sign(m))?;
                Ok(bytes_out(py, &sig))
            }

            /// Signs a SHA-256 ``digest`` (32 bytes) computed elsewhere;
            /// the DER signature verifies as one of the message itself.
            /// ECDSA only: an Ed25519 key raises ``UnsupportedError``, a
            /// digest of another length ``InvalidInputError``. Runs with
            /// the GIL released.
            fn sign_digest<'py>(
                &self,
                py: Python<'py>,
                digest: BytesIn<'_, '_>,
            ) -> PyResult<Bound<'py, PyBytes>> {
                let d = digest.as_slice();
                let sig = self.run(py, true, |s| s.sign_digest(d))?;
                Ok(bytes_out(py, &sig))
            }

            /// Raises if the signer cannot serve: ``UnavailableError`` once
            /// closed or when its device is unreachable, the key's own
            /// error when it is gone.
            fn health_check(&self, py: Python<'_>) -> PyResult<()> {
                self.run(py, Self::REMOTE, |s| s.health_check())
            }

            /// Closes the signer (idempotent): every later call raises
            /// ``UnavailableError``.
            fn close(&self, py: Python<'_>) -> PyResult<()> {
                self.close_signer(py)
            }

            /// Returns the signer itself, for ``with``.
            fn __enter__(slf: Py<Self>) -> Py<Self> {
                slf
            }

            /// Closes the signer; an exception raised in the ``with`` block
            /// propagates.
            #[pyo3(signature = (*exc_info))]
            fn __exit__(
                &self,
                py: Python<'_>,
                exc_info: &Bound<'_, pyo3::types::PyTuple>,
            ) -> PyResult<bool> {
                let _ = exc_info;
                self.close_signer(py)?;
                Ok(false)
            }
        }
    };
}

/// A signing key that never leaves a PKCS#11 token or HSM: Ed25519
/// (``CKM_EDDSA``), ECDSA P-256 or secp256k1 (``CKM_ECDSA`` over a SHA-256
/// computed here; DER out). A ``keystrata.Signer``.
///
/// ``module`` is the path of the PKCS#11 library (SoftHSM2:
/// ``/usr/lib/softhsm/libsofthsm2.so``), ``token_label`` the token's
/// label, ``key_label`` the ``CKA_LABEL`` of the private key (and of its
/// public key), ``algorithm`` the key's algorithm. Give the user PIN as
/// ``pin`` or, better, as ``pin_env``, the name of an environment variable
/// holding it. With ``create_key=True`` a missing key pair is generated in
/// the token, the private half sensitive and never extractable.
///
/// Errors: ``InvalidInputError`` (module cannot be loaded, PIN variable
/// unset, unknown algorithm name), ``UnavailableError`` (no such token),
/// ``BackendError`` (login refused), ``UnknownKeyError`` (no such key and
/// no ``create_key``), ``UnsupportedError`` (a key of another algorithm);
/// ``ValueError`` unless exactly one of ``pin`` and ``pin_env`` is given.
/// Every call that reaches the token releases the GIL; the signer is safe
/// to share between threads. A context manager: ``with`` closes it.
#[pyclass(frozen, name = "Pkcs11Signer", module = "keystrata")]
pub(crate) struct PyPkcs11Signer {
    inner: keystrata::sign::Pkcs11Signer,
    /// As given (for `token_label` and `repr`).
    token_label: String,
}

impl HoldsSigner for PyPkcs11Signer {
    const REMOTE: bool = true;

    fn run<T, F>(&self, py: Python<'_>, detach: bool, f: F) -> PyResult<T>
    where
        F: FnOnce(&dyn Signer) -> keystrata::Result<T> + Send,
        T: Send,
    {
        call(py, detach, || f(&self.inner))
    }

    fn close_signer(&self, py: Python<'_>) -> PyResult<()> {
        call(py, true, || self.inner.close())
    }
}

signer_pymethods! {
impl PyPkcs11Signer {
    #[new]
    #[pyo3(signature = (module, token_label, key_label, algorithm, *, pin = None, pin_env = None, create_key = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        module: PathBuf,
        token_label: String,
        key_label: String,
        algorithm: &str,
        pin: Option<String>,
        pin_env: Option<String>,
        create_key: bool,
    ) -> PyResult<Self> {
        let alg = algorithm_from(algorithm)?;
        let config = pkcs11_config(module, token_label.clone(), key_label, pin, pin_env, create_key)?;
        let inner = call(py, true, || keystrata::sign::Pkcs11Signer::open(&config, alg))?;
        Ok(PyPkcs11Signer { inner, token_label })
    }

    /// The label of the key on the token.
    #[getter]
    fn key_label(&self) -> String {
        self.inner.key_label().to_owned()
    }

    /// The label of the token.
    #[getter]
    fn token_label(&self) -> String {
        self.token_label.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Pkcs11Signer(token_label={}, key_label={})",
            py_repr(&self.token_label),
            py_repr(self.inner.key_label())
        )
    }
}
}

/// An ECDSA signing key kept in AWS KMS (an asymmetric ``SIGN_VERIFY`` key
/// of spec ``ECC_NIST_P256``, ``"ecdsa-p256"``, or ``ECC_SECG_P256K1``,
/// ``"ecdsa-secp256k1"``). A ``keystrata.Signer``.
///
/// ``key_id``, ``region``, ``endpoint_url``, ``profile`` and ``timeout``
/// are as for ``AwsKmsRoot``, and so are the credentials (the AWS SDK's
/// default chain, never an argument). The key is checked and its public
/// key fetched before the constructor returns. ``sign`` hashes the message
/// here and calls KMS ``Sign`` with ``MessageType=DIGEST`` and
/// ``ECDSA_SHA_256``; every signature is checked against the public key
/// before it is returned (DER). The key never leaves KMS.
///
/// Errors: as ``AwsKmsRoot``; ``UnsupportedError`` for a key of another
/// spec or usage (RSA, P-384, symmetric...). Once the key is disabled in
/// KMS, ``sign`` raises ``KeyDisabledError``. Every call that reaches KMS
/// releases the GIL; the signer is safe to share between threads. A
/// context manager: ``with`` closes it.
#[pyclass(frozen, name = "AwsKmsSigner", module = "keystrata")]
pub(crate) struct PyAwsKmsSigner {
    inner: keystrata::sign::AwsKmsSigner,
}

impl HoldsSigner for PyAwsKmsSigner {
    const REMOTE: bool = true;

    fn run<T, F>(&self, py: Python<'_>, detach: bool, f: F) -> PyResult<T>
    where
        F: FnOnce(&dyn Signer) -> keystrata::Result<T> + Send,
        T: Send,
    {
        call(py, detach, || f(&self.inner))
    }

    fn close_signer(&self, py: Python<'_>) -> PyResult<()> {
        call(py, true, || self.inner.close())
    }
}

signer_pymethods! {
impl PyAwsKmsSigner {
    #[new]
    #[pyo3(signature = (key_id, *, region = None, endpoint_url = None, profile = None, timeout = 5.0))]
    fn new(
        py: Python<'_>,
        key_id: String,
        region: Option<String>,
        endpoint_url: Option<String>,
        profile: Option<String>,
        timeout: f64,
    ) -> PyResult<Self> {
        let config = aws_kms_config(key_id, region, endpoint_url, profile, timeout)?;
        let inner = call(py, true, || keystrata::sign::AwsKmsSigner::open(config))?;
        Ok(PyAwsKmsSigner { inner })
    }

    /// The key's ARN (an alias is resolved to it).
    #[getter]
    fn key_arn(&self) -> String {
        self.inner.key_arn().to_owned()
    }

    fn __repr__(&self) -> String {
        format!("AwsKmsSigner(key_arn={})", py_repr(self.inner.key_arn()))
    }
}
}

/// A keychain's signing primary as a ``keystrata.Signer``, from
/// ``Keychain.signer()``: each call signs with whichever key is primary at
/// that moment (so a rotation takes effect at once), with the keychain's
/// events and counters. ``sign`` gives what ``Keychain.sign(message).bytes``
/// gives (DER for ECDSA). Closing it closes nothing of the keychain; a
/// closed keychain makes every call raise ``UnavailableError`` too. No
/// public constructor.
#[pyclass(frozen, name = "KeychainSigner", module = "keystrata")]
pub(crate) struct PyKeychainSigner {
    keychain: Py<PyKeychain>,
    /// Whether `close` was called. The core's `KeychainSigner` borrows the
    /// keychain, so one is made per call; a closed one is closed again
    /// before use, so what "closed" means (the error and its message)
    /// stays the core's.
    closed: AtomicBool,
}

impl PyKeychainSigner {
    pub(crate) fn new(keychain: Py<PyKeychain>) -> PyKeychainSigner {
        PyKeychainSigner {
            keychain,
            closed: AtomicBool::new(false),
        }
    }
}

impl HoldsSigner for PyKeychainSigner {
    const REMOTE: bool = false;

    fn run<T, F>(&self, py: Python<'_>, detach: bool, f: F) -> PyResult<T>
    where
        F: FnOnce(&dyn Signer) -> keystrata::Result<T> + Send,
        T: Send,
    {
        let kc = &self.keychain.get().inner;
        let closed = self.closed.load(Ordering::Acquire);
        call(py, detach, move || {
            let signer = kc.signer();
            if closed {
                signer.close()?;
            }
            f(&signer)
        })
    }

    fn close_signer(&self, py: Python<'_>) -> PyResult<()> {
        self.closed.store(true, Ordering::Release);
        self.run(py, false, |s| s.close())
    }
}

signer_pymethods! {
impl PyKeychainSigner {
    fn __repr__(&self) -> String {
        if self.closed.load(Ordering::Acquire) {
            "<KeychainSigner (closed)>".to_owned()
        } else {
            "<KeychainSigner of a keychain's signing primary>".to_owned()
        }
    }
}
}

/// A `signer` argument: one of the signer classes.
pub(crate) enum SignerArg<'a> {
    Pkcs11(&'a PyPkcs11Signer),
    AwsKms(&'a PyAwsKmsSigner),
    Keychain(&'a PyKeychainSigner),
}

impl<'a, 'py> FromPyObject<'a, 'py> for SignerArg<'a> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyPkcs11Signer>() {
            return Ok(SignerArg::Pkcs11(s.get()));
        }
        if let Ok(s) = obj.cast::<PyAwsKmsSigner>() {
            return Ok(SignerArg::AwsKms(s.get()));
        }
        if let Ok(s) = obj.cast::<PyKeychainSigner>() {
            return Ok(SignerArg::Keychain(s.get()));
        }
        Err(PyTypeError::new_err(format!(
            "signer must be a Pkcs11Signer, an AwsKmsSigner or a KeychainSigner, not {}",
            type_name(&obj)
        )))
    }
}

/// The `.minisig` text of `data` signed by `signer`: the core's
/// `minisign::sign_with` over the signer's Ed25519 signing, under the key
/// ID of the minisign public key the signer itself publishes (so
/// `minisign -V` verifies it against `public_key("minisign")`; an ECDSA
/// signer has none and says so).
fn minisign_with(
    signer: &dyn Signer,
    data: &[u8],
    trusted_comment: &str,
) -> keystrata::Result<String> {
    let text = signer.public_key(PublicKeyFormat::Minisign)?;
    let text = std::str::from_utf8(&text).map_err(|_| {
        keystrata::Error::new(
            keystrata::ErrorKind::Internal,
            "a signer's minisign public key is not UTF-8",
        )
    })?;
    let key_id = minisign::PublicKey::from_text(text)?.key_id;
    minisign::sign_with(
        &|m: &[u8]| signer.sign(m),
        key_id,
        data,
        trusted_comment,
        None,
    )
}

/// sign_minisign(signer, data, trusted_comment="") -> str
///
/// Signs ``data`` as ``minisign -S`` does through ``signer`` (a
/// ``Pkcs11Signer`` or a ``KeychainSigner`` of an Ed25519 key) and returns
/// the text of the ``.minisig`` file, which ``minisign -V`` verifies with
/// ``signer.public_key("minisign")``: so a key that never leaves a token
/// makes minisign signatures. The signer signs twice (the BLAKE2b-512 of
/// ``data``, then the signature and trusted comment). For a keychain,
/// ``Keychain.sign_minisign`` does the same in one step.
///
/// Raises ``UnsupportedError`` for an ECDSA signer, ``InvalidInputError``
/// for a trusted comment minisign cannot carry, the signer's own errors
/// (``UnavailableError`` once closed), ``TypeError`` for another kind of
/// ``signer``. Runs with the GIL released.
#[pyfunction]
#[pyo3(signature = (signer, data, trusted_comment = ""))]
pub(crate) fn sign_minisign(
    py: Python<'_>,
    signer: SignerArg<'_>,
    data: BytesIn<'_, '_>,
    trusted_comment: &str,
) -> PyResult<String> {
    let d = data.as_slice();
    let sign = |s: &dyn Signer| minisign_with(s, d, trusted_comment);
    match signer {
        SignerArg::Pkcs11(s) => s.run(py, true, sign),
        SignerArg::AwsKms(s) => s.run(py, true, sign),
        SignerArg::Keychain(s) => s.run(py, true, sign),
    }
}
