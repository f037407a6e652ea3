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

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    key_id: String,
    closed: AtomicBool,
}

/// A root whose key lives in a KMIP server.
///
/// Clones share one handle (one connection pool): closing one closes all.
/// Thread-safe.
#[derive(Clone)]
pub struct KmipRoot(Arc<Inner>);

impl fmt::Debug for KmipRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmipRoot")
            .field("client", &self.0.client)
            .field("key_id", &self.0.key_id)
            .finish_non_exhaustive()
    }
}

impl KmipRoot {
    /// Connects to the server and finds the root's key.
    ///
    /// A key named by [`KmipKeyRef::Name`] is found with Locate, and only
    /// an object that carries the Name counts, whatever else the server
    /// returns ([`Client::locate_by_name`]); if there is none, it is created
    /// (and activated if the server made it pre-active) when `create_key` is
    /// set, else `UnknownKey`; several keys with the name: `Backend`; a
    /// server without Locate in this protocol version: `Unsupported`. The key
    /// must be active: a revoked one gives `KeyDisabled`, a destroyed one
    /// `KeyDestroyed` (both `UnknownKey` on a server that hides keys that
    /// are no longer active, as Cosmian KMS 5.0 does). Server unreachable: `Unavailable`; TLS or
    /// certificate failure: `Backend`; bad PEM: `InvalidInput`.
    pub fn connect(config: KmipConfig) -> Result<KmipRoot> {
        let client = Client::new(&config)?;
        let key_id = match &config.key {
            KmipKeyRef::Id(id) => {
                if id.is_empty() {
                    return Err(Error::invalid("the KMIP key identifier is empty"));
                }
                id.clone()
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
                match ids.as_slice() {
                    [id] => id.clone(),
                    [] if config.create_key => client.create_active_aes256(Some(name))?,
                    [] => {
                        return Err(Error::new(
                            ErrorKind::UnknownKey,
                            format!(
                                "the KMIP server has no key named {name:?} \
                                 (set create_key to create it)"
                            ),
                        ))
                    }
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
                }
            }
        };
        client.state(&key_id)?.check_active(&key_id)?;
        Ok(KmipRoot(Arc::new(Inner {
            client,
            key_id,
            closed: AtomicBool::new(false),
        })))
    }

    /// The unique identifier of the root's key on the server.
    pub fn key_id(&self) -> &str {
        &self.0.key_id
    }

    /// The underlying KMIP client, for operations beyond wrapping
    /// (revoking or destroying keys, locating, creating).
    pub fn client(&self) -> &Client {
        &self.0.client
    }

    fn check_open(&self) -> Result<()> {
        if self.0.closed.load(Ordering::Acquire) {
            Err(Error::unavailable("this KmipRoot was closed"))
        } else {
            Ok(())
        }
    }

    /// Turns a server refusal into `KeyDisabled` / `KeyDestroyed` when the
    /// key is no longer active (servers say so in different ways: Permission
    /// Denied, Wrong Key Lifecycle State, Illegal Operation; Cosmian KMS 5.0
    /// answers Item Not Found, as it looks only among active keys).
    fn explain(&self, err: Error) -> Error {
        if !matches!(
            err.kind(),
            ErrorKind::Backend | ErrorKind::Unsupported | ErrorKind::UnknownKey
        ) {
            return err;
        }
        match self.0.client.state(&self.0.key_id) {
            Ok(state) => state.check_active(&self.0.key_id).err().unwrap_or(err),
            Err(e) if e.kind() == ErrorKind::UnknownKey => e,
            Err(_) => err,
        }
    }
}

impl KeyManager for KmipRoot {
    fn provider(&self) -> &str {
        KMIP_PROVIDER
    }

    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        self.check_open()?;
        check_wrap_input(plaintext_key)?;
        let key_id = &self.0.key_id;
        let aad = device::aad(KMIP_PROVIDER, key_id, context)?;
        let mut iv = [0u8; NONCE_LEN];
        let mut attempts = 0;
        let (ct, tag) = loop {
            fill_random(&mut iv)?;
            let (ct, tag) = self
                .0
                .client
                .encrypt(key_id, plaintext_key, &iv, &aad)
                .map_err(|e| self.explain(e))?;
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
        Ok(device::envelope(KMIP_PROVIDER, key_id, &[&iv, &ct, &tag]))
    }

    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        self.check_open()?;
        if envelope.provider == gateway::GATEWAY_COSMIAN_PROVIDER {
            // The S3 gateway's own Cosmian key manager wrote it (read
            // only: keystrata never writes this form).
            return gateway::unwrap(&self.0.client, envelope);
        }
        let sealed = device::open(envelope, context, KMIP_PROVIDER, &self.0.key_id, || {
            format!("this root's key is {:?}", self.0.key_id)
        })?;
        let (ct, tag) = sealed.body.split_at(sealed.body.len() - TAG_LEN);
        let pt = self
            .0
            .client
            .decrypt(&self.0.key_id, ct, &sealed.iv, &sealed.aad, tag)
            .map_err(|e| self.explain(e))?;
        if pt.len() != ct.len() {
            return Err(Error::new(
                ErrorKind::Backend,
                "KMIP Decrypt returned a plaintext of the wrong length",
            ));
        }
        Ok(SecretBytes::from_zeroizing(pt))
    }

    fn active_key_version(&self) -> Result<u32> {
        self.check_open()?;
        Ok(device::KEY_VERSION)
    }

    fn health_check(&self) -> Result<()> {
        self.check_open()?;
        self.0
            .client
            .state(&self.0.key_id)?
            .check_active(&self.0.key_id)
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
