//! The KMIP root: a root key kept in a KMIP server (PyKMIP, Cosmian KMS, an
//! HSM with a KMIP front end), used over binary TTLV and mutual TLS, or over
//! Cosmian KMS's HTTPS JSON TTLV API ([`KmipTransport`]).
//!
//! The key never leaves the server. [`KmipRoot`] wraps data keys with the
//! server's Encrypt operation (AES-256-GCM, a locally generated 12-byte IV,
//! the envelope's identity and context bound as Authenticated Encryption
//! Additional Data) and saves keychains in the [`wrapped`](super::wrapped)
//! format. Setup, certificates and Cosmian KMS: `docs/KMIP.md`.
//!
//! ```no_run
//! use keystrata::{Keychain, KmipConfig, KmipKeyRef, KmipRoot};
//!
//! let mut config = KmipConfig::new("kms.example", 5696, KmipKeyRef::Name("keystrata-root".into()))
//!     .with_pem_files("ca.pem", "client.pem", "client.key")?;
//! config.create_key = true; // create and activate the key if no key has that name
//! let root = KmipRoot::connect(config)?;
//! let kc = Keychain::generate()?;
//! let saved = kc.save(&root)?;
//! let again = Keychain::load(&saved, &root)?;
//! # Ok::<(), keystrata::Error>(())
//! ```

pub mod client;
pub mod gateway;
pub mod http;
pub mod json;
pub mod tags;
pub mod ttlv;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

pub use self::client::{Client, KeyState, RevocationReason};
use super::{device, Root};
use crate::aead::{fill_random, NONCE_LEN, TAG_LEN};
use crate::error::{Error, ErrorKind, Result};
use crate::key_manager::{check_wrap_input, KeyManager};
use crate::secret::SecretBytes;
use crate::wrapped_key::Envelope;

/// Provider name of [`KmipRoot`], written into envelopes.
pub const KMIP_PROVIDER: &str = "kmip";
/// The IANA port of KMIP over TLS.
pub const DEFAULT_KMIP_PORT: u16 = 5696;
/// How long connecting, the handshake and each request may take, by
/// default.
pub const DEFAULT_KMIP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often, by default, a root named by Name looks for a newer version
/// of its key ([`KmipConfig::refresh`]).
pub const DEFAULT_KMIP_REFRESH: Duration = Duration::from_secs(60);

/// Which key on the server is the root's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KmipKeyRef {
    /// The key's Unique Identifier.
    Id(String),
    /// The key's Name attribute (found with Locate; must name one key).
    Name(String),
}

/// The KMIP protocol version the client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KmipVersion {
    /// KMIP 1.4 (the default: the most widely deployed version with
    /// AES-GCM additional data).
    #[default]
    V1_4,
    /// KMIP 2.0.
    V2_0,
}

impl fmt::Display for KmipVersion {
    /// `1.4` or `2.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KmipVersion::V1_4 => "1.4",
            KmipVersion::V2_0 => "2.0",
        })
    }
}

/// How requests reach the server. Both carry the same KMIP messages, over
/// TLS with the same certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KmipTransport {
    /// Binary TTLV over TLS, KMIP's own transport (port 5696).
    #[default]
    Ttlv,
    /// JSON TTLV posted over HTTPS (HTTP/1.1, keep-alive) to Cosmian KMS's
    /// KMIP API, [`COSMIAN_JSON_PATH`] on its HTTPS port.
    HttpsJson,
}

impl fmt::Display for KmipTransport {
    /// `ttlv` or `https-json`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KmipTransport::Ttlv => "ttlv",
            KmipTransport::HttpsJson => "https-json",
        })
    }
}

/// The path of Cosmian KMS's JSON TTLV API, which [`KmipTransport::HttpsJson`]
/// posts to.
pub const COSMIAN_JSON_PATH: &str = "/kmip/2_1";

/// Where the KMIP server is, how to authenticate, and which key to use.
///
/// `Debug` does not print the private key.
#[derive(Clone)]
pub struct KmipConfig {
    /// Host name or IP address of the server.
    pub host: String,
    /// TCP port ([`DEFAULT_KMIP_PORT`] is 5696; with
    /// [`KmipTransport::HttpsJson`], the server's HTTPS port).
    pub port: u16,
    /// The name the server's certificate must carry (a DNS name or an IP
    /// address); `None` means `host`.
    pub server_name: Option<String>,
    /// PEM of the CA certificate(s) the server's certificate must chain to.
    pub ca_pem: Vec<u8>,
    /// PEM of the client certificate (and any intermediates).
    pub client_cert_pem: Vec<u8>,
    /// PEM of the client's private key (PKCS#8, SEC1 or PKCS#1).
    pub client_key_pem: Zeroizing<Vec<u8>>,
    /// The root's key.
    pub key: KmipKeyRef,
    /// The protocol version to speak.
    pub version: KmipVersion,
    /// How requests reach the server.
    pub transport: KmipTransport,
    /// The bound on connecting and on every request.
    pub timeout: Duration,
    /// With [`KmipKeyRef::Name`]: create and activate an AES-256 key with
    /// that name if the server has none.
    pub create_key: bool,
    /// With [`KmipKeyRef::Name`]: how often the root looks on the server
    /// for a newer version of its key (`NAME@k`, see
    /// [`KmipRoot::rotate_key`]) when it wraps or is asked its active
    /// version; [`DEFAULT_KMIP_REFRESH`] by default. `health_check` always
    /// looks.
    pub refresh: Duration,
}

impl fmt::Debug for KmipConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmipConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("server_name", &self.server_name)
            .field("key", &self.key)
            .field("version", &self.version)
            .field("transport", &self.transport)
            .field("timeout", &self.timeout)
            .field("create_key", &self.create_key)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl KmipConfig {
    /// A configuration for `host:port` and `key`, with KMIP 1.4 in binary
    /// TTLV, a 5 s timeout, no key creation, and no certificates yet (set
    /// them, or use [`with_pem_files`](KmipConfig::with_pem_files)).
    pub fn new(host: impl Into<String>, port: u16, key: KmipKeyRef) -> Self {
        KmipConfig {
            host: host.into(),
            port,
            server_name: None,
            ca_pem: Vec::new(),
            client_cert_pem: Vec::new(),
            client_key_pem: Zeroizing::new(Vec::new()),
            key,
            version: KmipVersion::default(),
            transport: KmipTransport::default(),
            timeout: DEFAULT_KMIP_TIMEOUT,
            create_key: false,
            refresh: DEFAULT_KMIP_REFRESH,
        }
    }

    /// This configuration with the CA certificate, client certificate and
    /// client key read from PEM files. A file that cannot be read: `Io`.
    pub fn with_pem_files(
        mut self,
        ca: impl AsRef<Path>,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| Error::io(format!("reading {}", p.display()), e))
        };
        self.ca_pem = read(ca.as_ref())?;
        self.client_cert_pem = read(cert.as_ref())?;
        self.client_key_pem = Zeroizing::new(read(key.as_ref())?);
        Ok(self)
    }
}

struct Inner {
    client: Client,
    /// The key's Name when the root was given one: version `k ≥ 2` of the
    /// key is the key named `{name}@{k}` ([`version_name`]).
    name: Option<String>,
    /// The active version and its Unique Identifier.
    active: RwLock<(u32, String)>,
    /// The keys known to be versions of this root's key: Unique Identifier
    /// → version. Grows by one entry per version met.
    known: RwLock<HashMap<String, u32>>,
    /// How often a named root looks for a newer version on its own.
    refresh: Duration,
    /// When it looked last.
    checked: Mutex<Instant>,
    closed: AtomicBool,
}

/// The Name of version `version` of the key named `name`: `name` itself
/// for version 1, `name@version` after.
pub fn version_name(name: &str, version: u32) -> String {
    if version <= 1 {
        name.to_owned()
    } else {
        format!("{name}@{version}")
    }
}

/// The most versions a root walks through when it looks for newer ones,
/// in one look.
const MAX_VERSION_STEPS: u32 = 1024;

/// A root whose key lives in a KMIP server.
///
/// Clones share one handle (one connection pool): closing one closes all.
/// Thread-safe.
#[derive(Clone)]
pub struct KmipRoot(Arc<Inner>);

impl fmt::Debug for KmipRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (version, key_id) = self.active();
        f.debug_struct("KmipRoot")
            .field("client", &self.0.client)
            .field("name", &self.0.name)
            .field("version", &version)
            .field("key_id", &key_id)
            .finish_non_exhaustive()
    }
}

impl KmipRoot {
    /// Connects to the server and finds the root's key.
    ///
    /// A key named by [`KmipKeyRef::Name`] is found with Locate, and only
    /// an object that carries the Name counts, whatever else the server
    /// returns ([`Client::locate_by_name`]). Its versions are the keys
    /// named `NAME`, `NAME@2`, `NAME@3`… ([`version_name`]): the newest
    /// that is active is the one that wraps (see
    /// [`rotate_key`](KmipRoot::rotate_key)). If there is none, a key
    /// named `NAME` is created (and activated if the server made it
    /// pre-active) when `create_key` is set, else `UnknownKey`; several
    /// keys named `NAME`: `Backend`; a server without Locate in this
    /// protocol version: `Unsupported`. The key must be active: a revoked
    /// one gives `KeyDisabled`, a destroyed one `KeyDestroyed` (both
    /// `UnknownKey` on a server that hides keys that are no longer active,
    /// as Cosmian KMS 5.0 does). Server unreachable: `Unavailable`; TLS or
    /// certificate failure: `Backend`; bad PEM: `InvalidInput`.
    pub fn connect(config: KmipConfig) -> Result<KmipRoot> {
        let client = Client::new(&config)?;
        let (name, version, key_id) = match &config.key {
            KmipKeyRef::Id(id) => {
                if id.is_empty() {
                    return Err(Error::invalid("the KMIP key identifier is empty"));
                }
                client.state(id)?.check_active(id)?;
                (None, 1, id.clone())
            }
            KmipKeyRef::Name(name) => {
                if name.is_empty() {
                    return Err(Error::invalid("the KMIP key name is empty"));
                }
                let ids = client.locate_by_name(name).map_err(|e| {
                    if e.kind() != ErrorKind::Unsupported {
                        return e;
                    }
                    // Cosmian KMS 5.0 has no Locate in KMIP 1.4.
                    Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "{}; this server cannot find keys by name in KMIP {}: name the \
                             key by its unique identifier, or try another protocol version",
                            e.message(),
                            config.version
                        ),
                    )
                })?;
                let first = match ids.as_slice() {
                    [id] => Some(id.clone()),
                    [] => None,
                    more => {
                        return Err(Error::new(
                            ErrorKind::Backend,
                            format!(
                                "{} KMIP objects are named {name:?}; name the key by its \
                                 unique identifier instead",
                                more.len()
                            ),
                        ))
                    }
                };
                let newer = newest_active(&client, name, 1)?;
                match (first, newer) {
                    (_, Some((v, id))) => (Some(name.clone()), v, id),
                    (Some(id), None) => {
                        client.state(&id)?.check_active(&id)?;
                        (Some(name.clone()), 1, id)
                    }
                    (None, None) if config.create_key => (
                        Some(name.clone()),
                        1,
                        client.create_active_aes256(Some(name))?,
                    ),
                    (None, None) => {
                        return Err(Error::new(
                            ErrorKind::UnknownKey,
                            format!(
                                "the KMIP server has no key named {name:?} \
                                 (set create_key to create it)"
                            ),
                        ))
                    }
                }
            }
        };
        let mut known = HashMap::new();
        known.insert(key_id.clone(), version);
        Ok(KmipRoot(Arc::new(Inner {
            client,
            name,
            active: RwLock::new((version, key_id)),
            known: RwLock::new(known),
            refresh: config.refresh,
            checked: Mutex::new(Instant::now()),
            closed: AtomicBool::new(false),
        })))
    }

    /// The unique identifier of the key that wraps now (the active
    /// version's).
    pub fn key_id(&self) -> String {
        self.active().1
    }

    /// The key's Name, when the root was given one.
    pub fn key_name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// The underlying KMIP client, for operations beyond wrapping
    /// (revoking or destroying keys, locating, creating).
    pub fn client(&self) -> &Client {
        &self.0.client
    }

    /// Makes a new version of the root's key on the server, the key named
    /// `NAME@k` for the next `k`, and wraps under it from now on; returns
    /// its version. Everything wrapped under older versions keeps
    /// unwrapping while their keys stay on the server. Other roots on the
    /// same name take the new version up within their
    /// [`refresh`](KmipConfig::refresh) (at once on `health_check`). A
    /// root named by identifier has no versions: `InvalidInput`.
    ///
    /// This is rotation by a new key, not KMIP ReKey: Cosmian KMS 5.0's
    /// ReKey replaces a key's material in place and loses what it wrapped
    /// (docs/KMIP.md).
    pub fn rotate_key(&self) -> Result<u32> {
        self.check_open()?;
        let name = self.0.name.as_deref().ok_or_else(|| {
            Error::invalid(
                "this KMIP root names its key by identifier, which has no versions: \
                 name the key by its Name to rotate it",
            )
        })?;
        self.look_for_newer()?;
        let next = self
            .active()
            .0
            .checked_add(1)
            .ok_or_else(|| Error::policy("the KMIP key has run out of versions"))?;
        let id = self
            .0
            .client
            .create_active_aes256(Some(&version_name(name, next)))?;
        self.adopt(next, id);
        Ok(next)
    }

    fn active(&self) -> (u32, String) {
        match self.0.active.read() {
            Ok(a) => a.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Makes `version` (key `id`) the active one, unless a newer one is.
    fn adopt(&self, version: u32, id: String) {
        if let Ok(mut k) = self.0.known.write() {
            k.insert(id.clone(), version);
        }
        let mut a = match self.0.active.write() {
            Ok(a) => a,
            Err(p) => p.into_inner(),
        };
        if version > a.0 {
            *a = (version, id);
        }
    }

    /// Looks on the server for a version newer than the active one, and
    /// adopts the newest that is active.
    fn look_for_newer(&self) -> Result<()> {
        let Some(name) = &self.0.name else {
            return Ok(());
        };
        if let Ok(mut c) = self.0.checked.lock() {
            *c = Instant::now();
        }
        if let Some((v, id)) = newest_active(&self.0.client, name, self.active().0)? {
            self.adopt(v, id);
        }
        Ok(())
    }

    /// [`look_for_newer`](Self::look_for_newer) once `refresh` has passed
    /// since the last look.
    fn look_if_due(&self) -> Result<()> {
        if self.0.name.is_none() {
            return Ok(());
        }
        let due = match self.0.checked.lock() {
            Ok(c) => c.elapsed() >= self.0.refresh,
            Err(_) => true,
        };
        if due {
            self.look_for_newer()?;
        }
        Ok(())
    }

    /// The version of key `id` if it is one of this root's: known, or (for
    /// a named root) carrying the Name of one of its versions on the
    /// server. Anything else: `UnknownKey`.
    fn version_of(&self, id: &str) -> Result<u32> {
        if let Some(v) = self.0.known.read().ok().and_then(|k| k.get(id).copied()) {
            return Ok(v);
        }
        let not_ours = || {
            Error::new(
                ErrorKind::UnknownKey,
                format!(
                    "envelope is wrapped under KMIP key {:?}, which is not a version of this \
                     root's key ({})",
                    crate::error::truncate_for_message(id, 64),
                    match &self.0.name {
                        Some(n) => format!("named {n:?}"),
                        None => format!("{:?}", self.key_id()),
                    }
                ),
            )
        };
        let Some(name) = &self.0.name else {
            return Err(not_ours());
        };
        if id.is_empty() || id.len() > 256 {
            return Err(not_ours());
        }
        let names = match self.0.client.names(id) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::UnknownKey => return Err(not_ours()),
            Err(e) => return Err(e),
        };
        let version = names.iter().find_map(|n| {
            if n == name {
                return Some(1);
            }
            let v: u32 = n
                .strip_prefix(name.as_str())?
                .strip_prefix('@')?
                .parse()
                .ok()?;
            (v >= 2 && version_name(name, v) == *n).then_some(v)
        });
        let v = version.ok_or_else(not_ours)?;
        if let Ok(mut k) = self.0.known.write() {
            k.insert(id.to_owned(), v);
        }
        Ok(v)
    }

    fn check_open(&self) -> Result<()> {
        if self.0.closed.load(Ordering::Acquire) {
            Err(Error::unavailable("this KmipRoot was closed"))
        } else {
            Ok(())
        }
    }

    /// Turns a server refusal into `KeyDisabled` / `KeyDestroyed` when key
    /// `id` is no longer active (servers say so in different ways:
    /// Permission Denied, Wrong Key Lifecycle State, Illegal Operation;
    /// Cosmian KMS 5.0 answers Item Not Found, as it looks only among
    /// active keys).
    fn explain(&self, id: &str, err: Error) -> Error {
        if !matches!(
            err.kind(),
            ErrorKind::Backend | ErrorKind::Unsupported | ErrorKind::UnknownKey
        ) {
            return err;
        }
        match self.0.client.state(id) {
            Ok(state) => state.check_active(id).err().unwrap_or(err),
            Err(e) if e.kind() == ErrorKind::UnknownKey => e,
            Err(_) => err,
        }
    }
}

/// The newest version of the key named `name` after `after` whose key is
/// active: walks `NAME@(after+1)`, `NAME@(after+2)`… up to the first name
/// no key carries. Several keys with one version's name (two roots that
/// rotated at once): the active one with the smallest identifier.
fn newest_active(client: &Client, name: &str, after: u32) -> Result<Option<(u32, String)>> {
    let mut newest = None;
    let mut v = after.max(1);
    for _ in 0..MAX_VERSION_STEPS {
        let Some(next) = v.checked_add(1) else { break };
        let ids = client.locate_by_name(&version_name(name, next))?;
        if ids.is_empty() {
            break;
        }
        for id in ids {
            if client.state(&id)? == KeyState::Active {
                newest = Some((next, id));
                break;
            }
        }
        v = next;
    }
    Ok(newest)
}

impl KeyManager for KmipRoot {
    fn provider(&self) -> &str {
        KMIP_PROVIDER
    }

    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        self.check_open()?;
        check_wrap_input(plaintext_key)?;
        self.look_if_due()?;
        let (version, key_id) = self.active();
        let aad = device::aad(KMIP_PROVIDER, &key_id, version, context)?;
        let mut iv = [0u8; NONCE_LEN];
        let mut attempts = 0;
        let (ct, tag) = loop {
            fill_random(&mut iv)?;
            let (ct, tag) = self
                .0
                .client
                .encrypt(&key_id, plaintext_key, &iv, &aad)
                .map_err(|e| self.explain(&key_id, e))?;
            attempts += 1;
            if !looks_like_cosmian_bulk_data(&ct) || attempts == MAX_WRAP_ATTEMPTS {
                break (ct, tag);
            }
        };
        if ct.len() != plaintext_key.len() || tag.len() != TAG_LEN {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "KMIP Encrypt returned {} bytes and a {}-byte tag for {} bytes; \
                     expected AES-GCM with a 16-byte tag",
                    ct.len(),
                    tag.len(),
                    plaintext_key.len()
                ),
            ));
        }
        Ok(device::envelope(
            KMIP_PROVIDER,
            &key_id,
            version,
            &[&iv, &ct, &tag],
        ))
    }

    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        self.check_open()?;
        if envelope.provider == gateway::GATEWAY_COSMIAN_PROVIDER {
            // The S3 gateway's own Cosmian key manager wrote it (read
            // only: keystrata never writes this form).
            return gateway::unwrap(&self.0.client, envelope);
        }
        crate::key_manager::check_provider(envelope, KMIP_PROVIDER)?;
        // Which of this root's keys: the envelope's version is bound
        // through the additional data, so another one fails the tag.
        self.version_of(&envelope.key_id)?;
        let key_id = envelope.key_id.as_str();
        let sealed = device::open(envelope, context, KMIP_PROVIDER, key_id, String::new)?;
        let (ct, tag) = sealed.body.split_at(sealed.body.len() - TAG_LEN);
        let pt = self
            .0
            .client
            .decrypt(key_id, ct, &sealed.iv, &sealed.aad, tag)
            .map_err(|e| self.explain(key_id, e))?;
        if pt.len() != ct.len() {
            return Err(Error::new(
                ErrorKind::Backend,
                "KMIP Decrypt returned a plaintext of the wrong length",
            ));
        }
        Ok(SecretBytes::from_zeroizing(pt))
    }

    /// The active version: 1 for a key named by identifier, else the
    /// newest active version of the named key, looked for again once
    /// [`refresh`](KmipConfig::refresh) has passed.
    fn active_key_version(&self) -> Result<u32> {
        self.check_open()?;
        self.look_if_due()?;
        Ok(self.active().0)
    }

    /// Looks for a newer version of a named key, then checks that the
    /// active version's key is active on the server.
    fn health_check(&self) -> Result<()> {
        self.check_open()?;
        self.look_for_newer()?;
        let (_, id) = self.active();
        self.0.client.state(&id)?.check_active(&id)
    }

    fn close(&self) -> Result<()> {
        self.0.closed.store(true, Ordering::Release);
        self.0.client.close();
        Ok(())
    }
}

/// How often `wrap_key` draws a new IV for a ciphertext that Cosmian KMS
/// could not decrypt (see [`looks_like_cosmian_bulk_data`]).
const MAX_WRAP_ATTEMPTS: usize = 4;

/// Whether Cosmian KMS 5.0 would read `data` as its "BulkData" batch
/// format (two bytes 0x87 0x87, then a count and length-prefixed items)
/// instead of one ciphertext: its Decrypt then fails on a valid envelope.
/// About one ciphertext in 65536 starts so; `wrap_key` encrypts such a one
/// again under a fresh IV, so no envelope it returns has that prefix (a
/// plaintext key with the prefix cannot be helped: Cosmian's Encrypt then
/// returns another length, which `wrap_key` reports as `Backend`).
fn looks_like_cosmian_bulk_data(data: &[u8]) -> bool {
    data.len() > 2 && data[..2] == [0x87, 0x87]
}

/// Keychains in the [`wrapped`](super::wrapped) form: the defaults.
impl Root for KmipRoot {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_the_key() {
        let mut c = KmipConfig::new("h", 1, KmipKeyRef::Name("n".into()));
        c.client_key_pem = Zeroizing::new(b"-----BEGIN PRIVATE KEY-----SECRET".to_vec());
        let s = format!("{c:?}");
        assert!(!s.contains("SECRET") && !s.contains("PRIVATE"), "{s}");
        assert_eq!(c.timeout, DEFAULT_KMIP_TIMEOUT);
        assert_eq!(c.version, KmipVersion::V1_4);
        assert_eq!(c.transport, KmipTransport::Ttlv);
        assert_eq!(KmipTransport::HttpsJson.to_string(), "https-json");
    }

    #[test]
    fn the_bulk_data_prefix_is_recognised() {
        assert!(looks_like_cosmian_bulk_data(&[0x87, 0x87, 0]));
        assert!(!looks_like_cosmian_bulk_data(&[0x87, 0x87]));
        assert!(!looks_like_cosmian_bulk_data(&[0x87, 0x86, 0]));
        assert!(!looks_like_cosmian_bulk_data(&[]));
    }

    #[test]
    fn bad_pem_is_invalid_input() {
        let c = KmipConfig::new("127.0.0.1", 1, KmipKeyRef::Id("1".into()));
        let e = KmipRoot::connect(c).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = KmipConfig::new("h", 1, KmipKeyRef::Id("1".into()))
            .with_pem_files("/nonexistent/ca", "/nonexistent/c", "/nonexistent/k")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
    }
}
