//! Roots: what protects a keychain at rest (`AgeRoot`, `PassphraseRoot`).

use keystrata::root::ExposeSecret;
use keystrata::KeyManager;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buf::{secret_out, type_name, BytesIn};
use crate::errors::call;
use crate::types::{py_repr, PyEnvelope};

/// A root of age X25519 keys: keychains are saved as age files encrypted to
/// the recipients (``age1…``) and opened with the identities
/// (``AGE-SECRET-KEY-1…``, or the whole text ``age-keygen`` writes,
/// comments included). The public keys of the identities are recipients
/// too; at least one identity or recipient is needed. A root with
/// recipients only can save but not load.
///
/// A saved keychain is a plain age file: ``age -d -i identity.txt
/// keychain.age`` prints its JSON, so keys can be recovered with the
/// standard tool.
///
/// Also a key manager (provider ``"age"``): ``wrap_key``/``unwrap_key``
/// encrypt a data key to the recipients. ``close()`` makes every later
/// call raise ``UnavailableError``.
///
/// The identity strings you pass are Python ``str`` objects, which
/// keystrata cannot wipe; the parsed keys it holds are wiped when the root
/// is freed.
#[pyclass(frozen, name = "AgeRoot", module = "keystrata")]
pub(crate) struct PyAgeRoot {
    pub(crate) inner: keystrata::AgeRoot,
    /// How many identities it holds (for `repr`, without touching them).
    identities: usize,
}

#[pymethods]
impl PyAgeRoot {
    #[new]
    #[pyo3(signature = (identities = None, recipients = None))]
    fn new(
        py: Python<'_>,
        identities: Option<Vec<String>>,
        recipients: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let ids = identities.unwrap_or_default();
        let rs = recipients.unwrap_or_default();
        let inner = call(py, false, || keystrata::AgeRoot::new(&ids, &rs))?;
        // The core accepts several keys in one string (an age-keygen file):
        // count what it parsed, not the strings.
        let identities = inner.insecure_identity_strings().len();
        Ok(PyAgeRoot { inner, identities })
    }

    /// A root with one freshly generated X25519 identity.
    #[staticmethod]
    fn generate() -> Self {
        PyAgeRoot {
            inner: keystrata::AgeRoot::generate(),
            identities: 1,
        }
    }

    /// The recipients (``age1…`` strings) keychains are encrypted to.
    #[getter]
    fn recipients(&self) -> Vec<String> {
        self.inner.recipients()
    }

    /// The identities as ``AGE-SECRET-KEY-1…`` strings, to store them
    /// elsewhere (for example a file for ``age -d -i``). The name is a
    /// warning: these are the root's secrets, and the returned ``str``
    /// objects are outside keystrata's zeroization.
    fn insecure_identity_strings(&self) -> Vec<String> {
        self.inner
            .insecure_identity_strings()
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect()
    }

    /// The provider name written into envelopes: ``"age"``.
    #[getter]
    fn provider(&self) -> &'static str {
        keystrata::root::AGE_PROVIDER
    }

    /// Encrypts a data key (1 to 4096 bytes) to the recipients, bound to
    /// ``context``.
    #[pyo3(signature = (key, context = b"".as_slice().into()), text_signature = "($self, key, context=b'')")]
    fn wrap_key(
        &self,
        py: Python<'_>,
        key: BytesIn<'_, '_>,
        context: BytesIn<'_, '_>,
    ) -> PyResult<PyEnvelope> {
        let (k, c) = (key.as_slice(), context.as_slice());
        call(py, true, || self.inner.wrap_key(k, c)).map(PyEnvelope::from_core)
    }

    /// The data key from an envelope made by ``wrap_key`` with the same
    /// context. The returned bytes are outside keystrata's zeroization.
    #[pyo3(signature = (envelope, context = b"".as_slice().into()), text_signature = "($self, envelope, context=b'')")]
    fn unwrap_key<'py>(
        &self,
        py: Python<'py>,
        envelope: &PyEnvelope,
        context: BytesIn<'_, '_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (env, c) = (envelope.to_core(), context.as_slice());
        let secret = call(py, true, || self.inner.unwrap_key(&env, c))?;
        Ok(secret_out(py, secret))
    }

    /// The version of the key new envelopes are wrapped under (always 1).
    fn active_key_version(&self, py: Python<'_>) -> PyResult<u32> {
        call(py, false, || self.inner.active_key_version())
    }

    /// Raises ``UnavailableError`` if the root was closed.
    fn health_check(&self, py: Python<'_>) -> PyResult<()> {
        call(py, false, || self.inner.health_check())
    }

    /// Closes the root (idempotent): later calls raise ``UnavailableError``.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        call(py, false, || self.inner.close())
    }

    fn __repr__(&self) -> String {
        let recipients: Vec<String> = self.inner.recipients().iter().map(|r| py_repr(r)).collect();
        format!(
            "AgeRoot(recipients=[{}], identities={})",
            recipients.join(", "),
            self.identities
        )
    }
}

/// A root of one passphrase (age scrypt): the saved keychain is an age file
/// that ``age -d`` opens with the passphrase. ``work_factor`` is scrypt's
/// log2(N), 1 to 30; each save and load costs one scrypt (about 1 s at the
/// default 18), during which other Python threads run. Loading accepts
/// files made with a work factor up to max(work_factor, 22).
///
/// For people, not programs: a program should hold an ``AgeRoot``
/// identity. An empty passphrase raises ``InvalidInputError``. The
/// passphrase ``str`` you pass is outside keystrata's zeroization.
///
/// Also a key manager (provider ``"age-scrypt"``).
#[pyclass(frozen, name = "PassphraseRoot", module = "keystrata")]
pub(crate) struct PyPassphraseRoot {
    pub(crate) inner: keystrata::PassphraseRoot,
    work_factor: u8,
}

#[pymethods]
impl PyPassphraseRoot {
    #[new]
    #[pyo3(signature = (passphrase, work_factor = keystrata::root::DEFAULT_SCRYPT_WORK_FACTOR as i64), text_signature = "(passphrase, work_factor=18)")]
    fn new(py: Python<'_>, passphrase: String, work_factor: i64) -> PyResult<Self> {
        // Out of range for u8 becomes 0, which the core refuses with a clear
        // InvalidInput message.
        let wf = u8::try_from(work_factor).unwrap_or(0);
        let inner = call(py, false, || {
            keystrata::PassphraseRoot::with_work_factor(passphrase, wf)
        })?;
        Ok(PyPassphraseRoot {
            inner,
            work_factor: wf,
        })
    }

    /// The scrypt work factor (log2 N) used when saving.
    #[getter]
    fn work_factor(&self) -> u8 {
        self.work_factor
    }

    /// The provider name written into envelopes: ``"age-scrypt"``.
    #[getter]
    fn provider(&self) -> &'static str {
        keystrata::root::SCRYPT_PROVIDER
    }

    /// Encrypts a data key (1 to 4096 bytes) under the passphrase, bound to
    /// ``context``. Costs one scrypt.
    #[pyo3(signature = (key, context = b"".as_slice().into()), text_signature = "($self, key, context=b'')")]
    fn wrap_key(
        &self,
        py: Python<'_>,
        key: BytesIn<'_, '_>,
        context: BytesIn<'_, '_>,
    ) -> PyResult<PyEnvelope> {
        let (k, c) = (key.as_slice(), context.as_slice());
        call(py, true, || self.inner.wrap_key(k, c)).map(PyEnvelope::from_core)
    }

    /// The data key from an envelope made by ``wrap_key`` with the same
    /// context. Costs one scrypt. The returned bytes are outside
    /// keystrata's zeroization.
    #[pyo3(signature = (envelope, context = b"".as_slice().into()), text_signature = "($self, envelope, context=b'')")]
    fn unwrap_key<'py>(
        &self,
        py: Python<'py>,
        envelope: &PyEnvelope,
        context: BytesIn<'_, '_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (env, c) = (envelope.to_core(), context.as_slice());
        let secret = call(py, true, || self.inner.unwrap_key(&env, c))?;
        Ok(secret_out(py, secret))
    }

    /// The version of the key new envelopes are wrapped under (always 1).
    fn active_key_version(&self, py: Python<'_>) -> PyResult<u32> {
        call(py, false, || self.inner.active_key_version())
    }

    /// Raises ``UnavailableError`` if the root was closed.
    fn health_check(&self, py: Python<'_>) -> PyResult<()> {
        call(py, false, || self.inner.health_check())
    }

    /// Closes the root (idempotent): later calls raise ``UnavailableError``.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        call(py, false, || self.inner.close())
    }

    fn __repr__(&self) -> String {
        format!("PassphraseRoot(work_factor={})", self.work_factor)
    }
}

/// A `root` argument: any root class. Cloning a core root is cheap (an
/// `Arc`), and clones share the handle.
#[derive(Clone)]
pub(crate) enum RootArg {
    Age(keystrata::AgeRoot),
    Passphrase(keystrata::PassphraseRoot),
}

impl RootArg {
    pub(crate) fn as_root(&self) -> &dyn keystrata::Root {
        match self {
            RootArg::Age(r) => r,
            RootArg::Passphrase(r) => r,
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for RootArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(r) = obj.cast::<PyAgeRoot>() {
            return Ok(RootArg::Age(r.get().inner.clone()));
        }
        if let Ok(r) = obj.cast::<PyPassphraseRoot>() {
            return Ok(RootArg::Passphrase(r.get().inner.clone()));
        }
        Err(PyTypeError::new_err(format!(
            "root must be an AgeRoot or a PassphraseRoot, not {}",
            type_name(&obj)
        )))
    }
}
