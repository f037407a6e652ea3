//! Roots: what protects a keychain at rest (`AgeRoot`, `PassphraseRoot`,
//! `Pkcs11Root`, `KmipRoot`, `UriRoot`; `CustomRoot` in `custom_root`).
//! Every root is also a key manager; the methods of that contract are
//! written once, in `key_manager_pymethods!`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use keystrata::root::kmip::{KmipConfig, KmipKeyRef, KmipTransport, KmipVersion};
use keystrata::root::{ExposeSecret, Pkcs11Config, Pkcs11Pin, SecretString};
use keystrata::{KeyManager, Root};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::buf::{payload_out, secret_out, type_name, BytesIn};
use crate::custom_root::PyCustomRoot;
use crate::errors::call;
use crate::types::{py_repr, PyEnvelope};

/// `#[pymethods]` for a root class: the class's own items, then the
/// key-manager contract (the same for every root; pymethods cannot be
/// generic). Every call that may reach a device or a server runs with the
/// interpreter released.
macro_rules! key_manager_pymethods {
    (impl $ty:ident { $($own:tt)* }) => {
        #[pymethods]
        impl $ty {
            $($own)*

            /// The provider name written into envelopes (``"age"``,
            /// ``"age-scrypt"``, ``"pkcs11"``, ``"kmip"``, ``"aws-kms"``, or a
            /// ``CustomRoot``'s own).
            #[getter]
            fn provider(&self) -> String {
                KeyManager::provider(&self.inner).to_owned()
            }

            /// Wraps a data key (1 to 4096 bytes) under the root's key,
            /// bound to ``context``.
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

            /// The data key from an envelope made by ``wrap_key`` with the
            /// same context. The returned bytes are outside keystrata's
            /// zeroization.
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

            /// The version of the key new envelopes are wrapped under: 1 for
            /// every root but a ``KmipRoot`` named by ``key_name``, which
            /// reports the newest version it has taken up (``NAME@k`` is
            /// version k; docs/KMIP.md, "Rotating the root key").
            fn active_key_version(&self, py: Python<'_>) -> PyResult<u32> {
                call(py, true, || self.inner.active_key_version())
            }

            /// Raises if the root cannot serve: ``UnavailableError`` when
            /// closed or when its device or server is unreachable.
            fn health_check(&self, py: Python<'_>) -> PyResult<()> {
                call(py, true, || self.inner.health_check())
            }

            /// Closes the root (idempotent): later calls raise
            /// ``UnavailableError``. Clones passed to keychains share it.
            /// The KEKs ``decrypt_portable`` cached are wiped.
            fn close(&self, py: Python<'_>) -> PyResult<()> {
                if let Some(d) = self.portable.get() {
                    d.clear();
                }
                call(py, true, || self.inner.close())
            }

            /// Decrypts a portable ciphertext (``Keychain.encrypt_portable``)
            /// with this root alone, with the same ``aad``. The KEKs it
            /// unwraps are cached in this root object (up to 1024, keyed by
            /// the hash of the wrapped bytes, wiped when they leave), so the
            /// root is called once per wrapped KEK, not once per message.
            /// Runs with the interpreter released.
            ///
            /// Raises ``FormatError`` for bad framing (or a wrapped part that
            /// is not a portable KEK record), ``UnsupportedError`` for
            /// another format version, the root's own errors when
            /// unwrapping (``AuthenticationError`` for a wrong age identity
            /// or passphrase; ``UnavailableError`` from a device,
            /// ``UnknownKeyError`` for a KEK wrapped under another device
            /// key), and ``AuthenticationError`` for tampering or a wrong
            /// ``aad``. No keychain is consulted: the KEK travels with the
            /// data.
            #[pyo3(signature = (blob, aad = b"".as_slice().into()), text_signature = "($self, blob, aad=b'')")]
            fn decrypt_portable<'py>(
                &self,
                py: Python<'py>,
                blob: BytesIn<'_, '_>,
                aad: BytesIn<'_, '_>,
            ) -> PyResult<Bound<'py, PyBytes>> {
                let (b, a) = (blob.as_slice(), aad.as_slice());
                let dec = self.portable.get_or_init(|| {
                    keystrata::PortableDecryptor::new(Arc::new(self.inner.clone()))
                });
                // Bad framing leaves the buffer empty; decrypt_to reports it.
                let len = keystrata::PortableDecryptor::decrypted_len(b).unwrap_or(0);
                payload_out(py, len, true, |out| dec.decrypt_to(b, a, out))
            }

            /// Counters of this root's ``decrypt_portable`` calls: a dict
            /// with ``decrypt_ok``, ``decrypt_failed``, ``root_calls`` (KEKs
            /// unwrapped by the root, one per wrapped KEK not cached) and
            /// ``cached_keks`` (KEKs cached now).
            fn portable_counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let c = self.portable.get().map(|d| d.counters()).unwrap_or_default();
                let d = PyDict::new(py);
                d.set_item("decrypt_ok", c.decrypt_ok)?;
                d.set_item("decrypt_failed", c.decrypt_failed)?;
                d.set_item("root_calls", c.root_calls)?;
                d.set_item("cached_keks", c.cached_keks)?;
                Ok(d)
            }
        }
    };
}
pub(crate) use key_manager_pymethods;

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
    /// Decrypts portable ciphertexts, caching KEKs (made on first use).
    portable: OnceLock<keystrata::PortableDecryptor>,
}

key_manager_pymethods! {
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
        Ok(PyAgeRoot {
            inner,
            identities,
            portable: OnceLock::new(),
        })
    }

    /// A root with one freshly generated X25519 identity.
    #[staticmethod]
    fn generate() -> Self {
        PyAgeRoot {
            inner: keystrata::AgeRoot::generate(),
            identities: 1,
            portable: OnceLock::new(),
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

    fn __repr__(&self) -> String {
        let recipients: Vec<String> = self.inner.recipients().iter().map(|r| py_repr(r)).collect();
        format!(
            "AgeRoot(recipients=[{}], identities={})",
            recipients.join(", "),
            self.identities
        )
    }
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
    /// Decrypts portable ciphertexts, caching KEKs (made on first use).
    portable: OnceLock<keystrata::PortableDecryptor>,
}

key_manager_pymethods! {
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
            portable: OnceLock::new(),
        })
    }

    /// The scrypt work factor (log2 N) used when saving.
    #[getter]
    fn work_factor(&self) -> u8 {
        self.work_factor
    }

    fn __repr__(&self) -> String {
        format!("PassphraseRoot(work_factor={})", self.work_factor)
    }
}
}

/// The configuration of a PKCS#11 key from the Python arguments that
/// `Pkcs11Root` and `Pkcs11Signer` share: exactly one of `pin` and
/// `pin_env` (`ValueError` otherwise).
pub(crate) fn pkcs11_config(
    module: PathBuf,
    token_label: String,
    key_label: String,
    pin: Option<String>,
    pin_env: Option<String>,
    create_key: bool,
) -> PyResult<Pkcs11Config> {
    let pin = match (pin, pin_env) {
        (Some(p), None) => Pkcs11Pin::Value(SecretString::from(p)),
        (None, Some(e)) => Pkcs11Pin::Env(e),
        _ => {
            return Err(PyValueError::new_err(
                "give exactly one of pin= and pin_env=",
            ))
        }
    };
    let mut config = Pkcs11Config::new(module, token_label, pin, key_label);
    config.create_key = create_key;
    Ok(config)
}

/// A root whose AES-256 key stays in a PKCS#11 token or HSM.
///
/// ``module`` is the path of the PKCS#11 library (SoftHSM2:
/// ``/usr/lib/softhsm/libsofthsm2.so``), ``token_label`` the token's label
/// (tokens are found by label, never by slot number), ``key_label`` the
/// key's ``CKA_LABEL``. Give the user PIN as ``pin`` or, better, as
/// ``pin_env``, the name of an environment variable holding it. With
/// ``create_key=True`` a missing key is generated in the token
/// (non-extractable, sensitive).
///
/// Keychains saved under it can be loaded only through the same token key.
/// Data keys are wrapped with AES-256-GCM inside the token. Errors:
/// ``InvalidInputError`` (module cannot be loaded, PIN variable unset),
/// ``UnavailableError`` (no such token), ``BackendError`` (login refused,
/// e.g. a wrong PIN), ``UnknownKeyError`` (no such key). Calls release the
/// interpreter while the token works; the root is safe to share between
/// threads.
#[pyclass(frozen, name = "Pkcs11Root", module = "keystrata")]
pub(crate) struct PyPkcs11Root {
    pub(crate) inner: keystrata::root::Pkcs11Root,
    /// Decrypts portable ciphertexts, caching KEKs (made on first use).
    portable: OnceLock<keystrata::PortableDecryptor>,
}

key_manager_pymethods! {
impl PyPkcs11Root {
    #[new]
    #[pyo3(signature = (module, token_label, key_label, *, pin = None, pin_env = None, create_key = false))]
    fn new(
        py: Python<'_>,
        module: PathBuf,
        token_label: String,
        key_label: String,
        pin: Option<String>,
        pin_env: Option<String>,
        create_key: bool,
    ) -> PyResult<Self> {
        let config = pkcs11_config(module, token_label, key_label, pin, pin_env, create_key)?;
        let inner = call(py, true, || keystrata::root::Pkcs11Root::open(&config))?;
        Ok(PyPkcs11Root {
            inner,
            portable: OnceLock::new(),
        })
    }

    /// The label of the token key.
    #[getter]
    fn key_label(&self) -> String {
        self.inner.key_label().to_owned()
    }

    /// The label of the token.
    #[getter]
    fn token_label(&self) -> String {
        self.inner.token_label().to_owned()
    }

    fn __repr__(&self) -> String {
        format!(
            "Pkcs11Root(token_label={}, key_label={})",
            py_repr(self.inner.token_label()),
            py_repr(self.inner.key_label())
        )
    }
}
}

// The signature below spells the default port out (a path would show as
// `...` in the text signature); keep it equal to the core's.
const _: () = assert!(keystrata::root::kmip::DEFAULT_KMIP_PORT == 5696);

/// A root whose AES-256 key stays in a KMIP server (PyKMIP, Cosmian KMS, or
/// any server speaking binary KMIP over TLS).
///
/// Connects to ``host``:``port`` with mutual TLS: the server is verified
/// against the CA certificate in the PEM file ``ca`` (under the name
/// ``server_name``, default ``host``), and presents the client certificate
/// ``cert`` and private key ``key`` (PEM files). Name the root key by its
/// unique identifier (``key_id=``) or its Name attribute (``key_name=``);
/// with ``create_key=True`` a missing named key is created and activated.
/// ``version`` is ``"1.4"`` or ``"2.0"``; ``timeout`` (seconds) bounds the
/// connect and every request. With ``https_json=True`` the root speaks JSON
/// TTLV over HTTPS to Cosmian KMS's KMIP API (``/kmip/2_1``) instead of
/// binary TTLV, and ``port`` is the server's HTTPS port.
///
/// A server that goes away raises ``UnavailableError`` within the timeout;
/// the root reconnects by itself when it is back. A revoked key raises
/// ``KeyDisabledError``. Calls release the interpreter while waiting on the
/// network.
#[pyclass(frozen, name = "KmipRoot", module = "keystrata")]
pub(crate) struct PyKmipRoot {
    pub(crate) inner: keystrata::root::kmip::KmipRoot,
    /// Decrypts portable ciphertexts, caching KEKs (made on first use).
    portable: OnceLock<keystrata::PortableDecryptor>,
}

key_manager_pymethods! {
impl PyKmipRoot {
    #[new]
    #[pyo3(signature = (host, port = 5696, *, ca, cert, key, key_id = None, key_name = None, server_name = None, version = "1.4", timeout = 5.0, create_key = false, https_json = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: String,
        port: u16,
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
        key_id: Option<String>,
        key_name: Option<String>,
        server_name: Option<String>,
        version: &str,
        timeout: f64,
        create_key: bool,
        https_json: bool,
    ) -> PyResult<Self> {
        let key_ref = match (key_id, key_name) {
            (Some(id), None) => KmipKeyRef::Id(id),
            (None, Some(name)) => KmipKeyRef::Name(name),
            _ => return Err(PyValueError::new_err("give exactly one of key_id= and key_name=")),
        };
        let version = match version {
            "1.4" => KmipVersion::V1_4,
            "2.0" => KmipVersion::V2_0,
            v => return Err(PyValueError::new_err(format!("version must be \"1.4\" or \"2.0\", not {v:?}"))),
        };
        let timeout = timeout_arg(timeout)?;
        let inner = call(py, true, || {
            let mut config = KmipConfig::new(host, port, key_ref).with_pem_files(&ca, &cert, &key)?;
            config.server_name = server_name;
            config.version = version;
            config.timeout = timeout;
            config.create_key = create_key;
            if https_json {
                config.transport = KmipTransport::HttpsJson;
            }
            keystrata::root::kmip::KmipRoot::connect(config)
        })?;
        Ok(PyKmipRoot {
            inner,
            portable: OnceLock::new(),
        })
    }

    /// The unique identifier of the root key in the server (of the active
    /// version's key, for a root named by ``key_name``).
    #[getter]
    fn key_id(&self) -> String {
        self.inner.key_id().to_owned()
    }

    /// Rotates a root named by ``key_name``: creates and activates the key
    /// ``NAME@k`` for the next version k, wraps under it from now on and
    /// returns k. Keychains and envelopes made under older versions keep
    /// loading (keep those keys active); other roots on the same name take
    /// the new version up within their refresh interval (60 s), at once on
    /// ``health_check()`` (docs/KMIP.md, "Rotating the root key"). Not KMIP
    /// ReKey. Runs with the interpreter released.
    ///
    /// Raises ``InvalidInputError`` for a root named by ``key_id`` (one
    /// version only), ``UnavailableError`` when closed or the server is
    /// unreachable, ``BackendError`` when the server refuses the new key.
    fn rotate_key(&self, py: Python<'_>) -> PyResult<u32> {
        call(py, true, || self.inner.rotate_key())
    }

    fn __repr__(&self) -> String {
        format!("KmipRoot(key_id={})", py_repr(&self.inner.key_id()))
    }
}
}

/// A device's ``timeout=`` (seconds) as a duration: in (0, 3600].
fn timeout_arg(timeout: f64) -> PyResult<Duration> {
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
        return Err(PyValueError::new_err(
            "timeout must be a number of seconds in (0, 3600]",
        ));
    }
    Ok(Duration::from_secs_f64(timeout))
}

/// The settings of ``AwsKmsRoot`` and ``AwsKmsSigner``, read once here
/// (the core checks the key, endpoint, region and profile).
pub(crate) fn aws_kms_config(
    key_id: String,
    region: Option<String>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    timeout: f64,
) -> PyResult<keystrata::AwsKmsConfig> {
    let mut config = keystrata::AwsKmsConfig::new(key_id);
    config.region = region;
    config.endpoint_url = endpoint_url;
    config.profile = profile;
    config.timeout = timeout_arg(timeout)?;
    Ok(config)
}

/// A root whose key is a symmetric (``SYMMETRIC_DEFAULT``) AWS KMS key.
///
/// ``key_id`` is a key ID, key ARN, alias name (``"alias/..."``) or alias
/// ARN; ``region`` defaults to the key ARN's region, else the AWS SDK's
/// chain (``AWS_REGION``, the profile's region); ``endpoint_url`` to the
/// region's KMS endpoint (give one for a VPC or FIPS endpoint, or a local
/// stand-in such as moto's server); ``profile`` to ``AWS_PROFILE``, else
/// ``default``; ``timeout`` (seconds) bounds every KMS call, its retries
/// and the fetching of credentials included. Credentials come from the
/// SDK's default chain (environment, shared files and profiles, web
/// identity as GitHub's OIDC and EKS provide, ECS and EC2 roles): never an
/// argument.
///
/// The key is checked (``DescribeKey``) before the constructor returns.
/// Data keys are wrapped with KMS ``Encrypt`` under an encryption context
/// that binds keystrata's context; a keychain saved under it takes one KMS
/// call per save or load (docs/AWS-KMS.md).
///
/// Errors: ``InvalidInputError`` (empty or malformed key, an endpoint URL
/// with user information, no region anywhere), ``UnavailableError`` (KMS
/// unreachable or not answering within the timeout), ``BackendError``
/// (credentials missing or refused, no permission, throttling),
/// ``UnknownKeyError`` (no such key or alias), ``KeyDisabledError``,
/// ``KeyDestroyedError`` (pending deletion), ``UnsupportedError`` (not a
/// symmetric encryption key); ``ValueError`` for a timeout outside
/// (0, 3600]. Calls release the interpreter while waiting on the network.
#[pyclass(frozen, name = "AwsKmsRoot", module = "keystrata")]
pub(crate) struct PyAwsKmsRoot {
    pub(crate) inner: keystrata::AwsKmsRoot,
    /// Decrypts portable ciphertexts, caching KEKs (made on first use).
    portable: OnceLock<keystrata::PortableDecryptor>,
}

key_manager_pymethods! {
impl PyAwsKmsRoot {
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
        let inner = call(py, true, || keystrata::AwsKmsRoot::connect(config))?;
        Ok(PyAwsKmsRoot {
            inner,
            portable: OnceLock::new(),
        })
    }

    /// The key's ARN (what envelopes name; an alias is resolved to it).
    #[getter]
    fn key_arn(&self) -> String {
        self.inner.key_arn().to_owned()
    }

    fn __repr__(&self) -> String {
        format!("AwsKmsRoot(key_arn={})", py_repr(self.inner.key_arn()))
    }
}
}

/// A root named by a URI string (``keystrata.root_from_uri``): any root
/// the core's ``root::from_uri`` opens, with no per-root code here.
/// Usable wherever a root is (``Keychain.save``/``load``/``open`` and
/// their file forms, ``decrypt_portable``), and a key manager like every
/// root.
#[pyclass(frozen, name = "UriRoot", module = "keystrata")]
pub(crate) struct PyUriRoot {
    pub(crate) inner: Arc<dyn Root>,
    /// Decrypts portable ciphertexts, caching KEKs (made on first use).
    portable: OnceLock<keystrata::PortableDecryptor>,
}

key_manager_pymethods! {
impl PyUriRoot {
    fn __repr__(&self) -> String {
        format!("UriRoot(provider={})", py_repr(self.inner.provider()))
    }
}
}

/// Opens the root a URI names (``docs/ROOTS.md``): ``age:FILE``,
/// ``age-recipient:age1…``, ``passphrase:VAR``, ``passphrase:env:VAR``,
/// ``passphrase:file:PATH``, ``pkcs11:…`` (RFC 7512) or ``kmip://…``.
/// Secrets come from the environment or files, never from the URI.
/// Raises ``InvalidInputError`` for a malformed URI, ``UnsupportedError``
/// for a scheme this build does not serve, ``IoError`` for an unreadable
/// file, or what opening the root raises. Runs with the interpreter
/// released (it may reach a device or a server).
#[pyfunction]
pub(crate) fn root_from_uri(py: Python<'_>, uri: &str) -> PyResult<PyUriRoot> {
    let root = call(py, true, || keystrata::root::from_uri(uri))?;
    Ok(PyUriRoot {
        inner: Arc::from(root),
        portable: OnceLock::new(),
    })
}

/// A `root` argument: any root class. Cloning a core root is cheap (an
/// `Arc`), and clones share the handle.
#[derive(Clone)]
pub(crate) enum RootArg {
    Age(keystrata::AgeRoot),
    Passphrase(keystrata::PassphraseRoot),
    Pkcs11(keystrata::root::Pkcs11Root),
    Kmip(keystrata::root::kmip::KmipRoot),
    AwsKms(keystrata::AwsKmsRoot),
    Uri(Arc<dyn Root>),
    Custom(Arc<dyn Root>),
}

impl RootArg {
    pub(crate) fn as_root(&self) -> &dyn Root {
        match self {
            RootArg::Age(r) => r,
            RootArg::Passphrase(r) => r,
            RootArg::Pkcs11(r) => r,
            RootArg::Kmip(r) => r,
            RootArg::AwsKms(r) => r,
            RootArg::Uri(r) | RootArg::Custom(r) => &**r,
        }
    }
}

impl KeyManager for RootArg {
    fn provider(&self) -> &str {
        self.as_root().provider()
    }
    fn wrap_key(&self, key: &[u8], context: &[u8]) -> keystrata::Result<keystrata::Envelope> {
        self.as_root().wrap_key(key, context)
    }
    fn unwrap_key(
        &self,
        envelope: &keystrata::Envelope,
        context: &[u8],
    ) -> keystrata::Result<keystrata::SecretBytes> {
        self.as_root().unwrap_key(envelope, context)
    }
    fn active_key_version(&self) -> keystrata::Result<u32> {
        self.as_root().active_key_version()
    }
    fn health_check(&self) -> keystrata::Result<()> {
        self.as_root().health_check()
    }
    fn close(&self) -> keystrata::Result<()> {
        self.as_root().close()
    }
}

// Forwards the at-rest format too (the age roots have their own).
impl Root for RootArg {
    fn protect(&self, keychain_json: &[u8]) -> keystrata::Result<Vec<u8>> {
        self.as_root().protect(keychain_json)
    }
    fn unprotect(&self, stored: &[u8]) -> keystrata::Result<zeroize::Zeroizing<Vec<u8>>> {
        self.as_root().unprotect(stored)
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
        if let Ok(r) = obj.cast::<PyPkcs11Root>() {
            return Ok(RootArg::Pkcs11(r.get().inner.clone()));
        }
        if let Ok(r) = obj.cast::<PyKmipRoot>() {
            return Ok(RootArg::Kmip(r.get().inner.clone()));
        }
        if let Ok(r) = obj.cast::<PyAwsKmsRoot>() {
            return Ok(RootArg::AwsKms(r.get().inner.clone()));
        }
        if let Ok(r) = obj.cast::<PyUriRoot>() {
            return Ok(RootArg::Uri(r.get().inner.clone()));
        }
        if let Ok(r) = obj.cast::<PyCustomRoot>() {
            return Ok(RootArg::Custom(r.get().inner.clone()));
        }
        Err(PyTypeError::new_err(format!(
            "root must be an AgeRoot, PassphraseRoot, Pkcs11Root, KmipRoot, AwsKmsRoot, UriRoot or \
             CustomRoot, not {}",
            type_name(&obj)
        )))
    }
}
