//! `CustomRoot`: a root of the caller's own, a Python object with the
//! `KeyManager` protocol's methods (for example a client of their KMS).
//!
//! The rules (provider names, output sizes, what "closed" means, message
//! lengths) are the core's `keystrata::root::CustomRoot`; this file only
//! translates: Python calls into `KeyManager` calls, return values into core
//! types, exceptions into core errors (`errors::from_python`).

use std::sync::{Arc, OnceLock};

use keystrata::root::CustomRoot;
use keystrata::{Envelope, Error, ErrorKind, KeyManager, Root, SecretBytes};
use pyo3::exceptions::{PyAttributeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyString, PyTuple};

use crate::buf::{payload_out, secret_out, type_name, BytesIn};
use crate::errors::{call, from_python};
use crate::roots::key_manager_pymethods;
use crate::types::{py_repr, PyEnvelope};

/// A Python key manager as a core `KeyManager`. Each call attaches to the
/// interpreter (the core calls it with the interpreter released, from any
/// thread) and never panics: a wrong return type is a `Backend` error.
struct PyKeyManager {
    obj: Py<PyAny>,
    /// Read once, at construction.
    provider: String,
    /// Which optional methods the object has.
    has_active_key_version: bool,
    has_health_check: bool,
    has_close: bool,
}

/// What a call into a Python key manager returned that it should not have:
/// a `Backend` error (the core prefixes the method's name).
fn wrong_return(what: String) -> Error {
    Error::new(ErrorKind::Backend, what)
}

impl PyKeyManager {
    /// Reads `provider` and checks the methods: the required ones
    /// (`wrap_key`, `unwrap_key`) must be there, and any method present
    /// must be callable. `TypeError` otherwise.
    fn new(obj: &Bound<'_, PyAny>) -> PyResult<PyKeyManager> {
        let py = obj.py();
        let no = |what: &str| {
            PyTypeError::new_err(format!(
                "key_manager must have {what} (the keystrata.KeyManager protocol); \
                 {} has none",
                type_name(obj)
            ))
        };
        let provider = match obj.getattr(pyo3::intern!(py, "provider")) {
            Ok(p) => p,
            Err(e) if e.is_instance_of::<PyAttributeError>(py) => {
                return Err(no("a provider attribute (str)"))
            }
            Err(e) => return Err(e),
        };
        let Ok(provider) = provider.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "key_manager.provider must be a str, not {}",
                type_name(&provider)
            )));
        };
        let provider = provider.to_cow()?.into_owned();
        let method = |name: &str| -> PyResult<bool> {
            match obj.getattr(name) {
                Ok(m) if m.is_callable() => Ok(true),
                Ok(m) => Err(PyTypeError::new_err(format!(
                    "key_manager.{name} must be a method, not {}",
                    type_name(&m)
                ))),
                Err(e) if e.is_instance_of::<PyAttributeError>(py) => Ok(false),
                Err(e) => Err(e),
            }
        };
        for name in ["wrap_key", "unwrap_key"] {
            if !method(name)? {
                return Err(no(&format!("a {name} method")));
            }
        }
        Ok(PyKeyManager {
            provider,
            has_active_key_version: method("active_key_version")?,
            has_health_check: method("health_check")?,
            has_close: method("close")?,
            obj: obj.clone().unbind(),
        })
    }

    /// Calls `self.obj.<name>(*args)` with the interpreter attached and
    /// converts its result with `convert`; an exception becomes the core
    /// error `errors::from_python` gives.
    fn invoke<T>(
        &self,
        name: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
        convert: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> keystrata::Result<T>,
    ) -> keystrata::Result<T> {
        Python::try_attach(|py| {
            let ret = args(py)
                .and_then(|args| self.obj.bind(py).call_method1(name, args))
                .map_err(|e| from_python(py, &e))?;
            convert(&ret)
        })
        .unwrap_or_else(|| {
            Err(Error::new(
                ErrorKind::Unavailable,
                "the Python interpreter is shutting down",
            ))
        })
    }
}

impl KeyManager for PyKeyManager {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn wrap_key(&self, key: &[u8], context: &[u8]) -> keystrata::Result<Envelope> {
        self.invoke(
            "wrap_key",
            |py| PyTuple::new(py, [PyBytes::new(py, key), PyBytes::new(py, context)]),
            |ret| match ret.cast::<PyEnvelope>() {
                Ok(env) => Ok(env.get().to_core()),
                Err(_) => Err(wrong_return(format!(
                    "returned {}, not a keystrata.Envelope",
                    type_name(ret)
                ))),
            },
        )
    }

    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> keystrata::Result<SecretBytes> {
        self.invoke(
            "unwrap_key",
            |py| {
                let env = Bound::new(py, PyEnvelope::from_core(envelope.clone()))?;
                PyTuple::new(py, [env.into_any(), PyBytes::new(py, context).into_any()])
            },
            |ret| match BytesIn::extract(ret.as_borrowed()) {
                Ok(key) => Ok(SecretBytes::from(key.as_slice().to_vec())),
                Err(_) => Err(wrong_return(format!(
                    "returned {}, not bytes",
                    type_name(ret)
                ))),
            },
        )
    }

    fn active_key_version(&self) -> keystrata::Result<u32> {
        if !self.has_active_key_version {
            return Ok(1);
        }
        self.invoke(
            "active_key_version",
            |py| Ok(PyTuple::empty(py)),
            |ret| match ret.extract::<u32>() {
                Ok(v) => Ok(v),
                Err(_) if ret.is_instance_of::<PyInt>() => Err(wrong_return(format!(
                    "returned {}, not a version from 1 to {}",
                    ret.str()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|_| "an int".to_owned()),
                    u32::MAX
                ))),
                Err(_) => Err(wrong_return(format!(
                    "returned {}, not an int",
                    type_name(ret)
                ))),
            },
        )
    }

    fn health_check(&self) -> keystrata::Result<()> {
        if !self.has_health_check {
            return Ok(());
        }
        self.invoke("health_check", |py| Ok(PyTuple::empty(py)), |_| Ok(()))
    }

    fn close(&self) -> keystrata::Result<()> {
        if !self.has_close {
            return Ok(());
        }
        self.invoke("close", |py| Ok(PyTuple::empty(py)), |_| Ok(()))
    }
}

/// A root of your own: ``key_manager`` is any object with the
/// ``keystrata.KeyManager`` protocol's members, for example a client of
/// your KMS. keystrata calls it to wrap a keychain's key when saving and to
/// unwrap it when loading (the wrapped form, docs/FORMAT.md §9: one
/// ``wrap_key`` per save, one ``unwrap_key`` per load), and usable wherever
/// a root is (``Keychain.save``/``load``/``open`` and their file forms,
/// ``decrypt_portable``).
///
/// Members of ``key_manager``:
///
/// - ``provider`` (str, read once here): the name written into the
///   envelopes, 1 to 64 characters of ``[a-z0-9._-]`` and not one of
///   keystrata's own (``keystrata``, ``age``, ``age-scrypt``, ``pkcs11``,
///   ``kmip``, ``aws-kms``), else ``InvalidInputError``;
/// - ``wrap_key(key: bytes, context: bytes) -> Envelope`` and
///   ``unwrap_key(envelope: Envelope, context: bytes) -> bytes``
///   (required; unwrapping with another context must fail);
/// - ``active_key_version() -> int``, ``health_check() -> None`` and
///   ``close() -> None`` (optional: version 1, always healthy, nothing to
///   close).
///
/// A missing required member raises ``TypeError``. keystrata checks what
/// the methods return (a wrapped key of 1 to 65536 bytes, a key ID of at
/// most 256 bytes, versions from 1, an unwrapped key of 1 to 4096 bytes)
/// and sets the envelopes' provider itself. A method raising a
/// ``keystrata.Error`` subclass gives that error (``UnavailableError`` for
/// an unreachable KMS, ``AuthenticationError`` for a wrong context); any
/// other exception, or a wrong return type, gives ``BackendError`` naming
/// it. Messages are cut to 256 characters: never put a secret in them.
/// After ``close()`` (which calls ``key_manager.close()`` once) every call
/// raises ``UnavailableError``.
///
/// The methods may be called from several threads at once, always with
/// the GIL held, and may call keystrata (another keychain, for example),
/// but not a keychain opened with this root. A keychain opened with the
/// root keeps ``key_manager`` alive.
#[pyclass(frozen, name = "CustomRoot", module = "keystrata")]
pub(crate) struct PyCustomRoot {
    pub(crate) inner: Arc<dyn Root>,
    /// The object given, for the `key_manager` property.
    key_manager: Py<PyAny>,
    /// Decrypts portable ciphertexts, caching KEKs (made on first use).
    portable: OnceLock<keystrata::PortableDecryptor>,
}

key_manager_pymethods! {
impl PyCustomRoot {
    #[new]
    fn new(py: Python<'_>, key_manager: &Bound<'_, PyAny>) -> PyResult<Self> {
        let km = PyKeyManager::new(key_manager)?;
        let root = call(py, false, || CustomRoot::new(km))?;
        Ok(PyCustomRoot {
            inner: Arc::new(root),
            key_manager: key_manager.clone().unbind(),
            portable: OnceLock::new(),
        })
    }

    /// The object given to the constructor.
    #[getter]
    fn key_manager(&self, py: Python<'_>) -> Py<PyAny> {
        self.key_manager.clone_ref(py)
    }

    fn __repr__(&self) -> String {
        format!("CustomRoot(provider={})", py_repr(self.inner.provider()))
    }
}
}
