//! A blocking KMIP client: binary TTLV over TLS 1.2+ with a client
//! certificate, or JSON TTLV posted over HTTPS (Cosmian KMS's API, see
//! [`KmipTransport`]); one request per round trip.
//!
//! Connections are kept in a small pool (at most [`MAX_CONNECTIONS`] open
//! at once) and made on demand. Connecting, the TLS handshake and every
//! request are bounded by the configured timeout. Any I/O failure drops the
//! connection and gives [`ErrorKind::Unavailable`]; the next call connects
//! again, so a restarted server is picked up without intervention. A pooled
//! connection that turns out to be dead (the server restarted while it was
//! idle) is replaced and the request retried once before reporting.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use zeroize::Zeroizing;

use super::json::quote;
use super::tags::{self, operation, result_reason};
use super::ttlv::{decode_header, Item, Tag, Value};
use super::{http, json, KmipConfig, KmipTransport, KmipVersion, COSMIAN_JSON_PATH};
use crate::error::{Error, ErrorKind, Result};

/// The most connections one [`Client`] opens to its server at once.
pub const MAX_CONNECTIONS: usize = 4;
/// The largest response the client accepts, in bytes.
pub const MAX_RESPONSE_LEN: usize = 1 << 20;

type Conn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// The lifecycle state of a KMIP object (KMIP 1.4 §3.22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Created but not yet usable.
    PreActive,
    /// Usable.
    Active,
    /// Revoked or past its deactivation date: decrypt-only at most.
    Deactivated,
    /// Revoked because it was compromised.
    Compromised,
    /// Its material was destroyed.
    Destroyed,
    /// Destroyed after being compromised.
    DestroyedCompromised,
    /// A state keystrata does not know.
    Other(u32),
}

impl KeyState {
    fn from_enum(v: u32) -> KeyState {
        match v {
            1 => KeyState::PreActive,
            2 => KeyState::Active,
            3 => KeyState::Deactivated,
            4 => KeyState::Compromised,
            5 => KeyState::Destroyed,
            6 => KeyState::DestroyedCompromised,
            v => KeyState::Other(v),
        }
    }

    /// `Ok` for an active key; `KeyDisabled` or `KeyDestroyed` otherwise,
    /// with a message naming the key and its state.
    pub fn check_active(self, key_id: &str) -> Result<()> {
        let (kind, what) = match self {
            KeyState::Active => return Ok(()),
            KeyState::PreActive => (ErrorKind::KeyDisabled, "is pre-active (not activated yet)"),
            KeyState::Deactivated => (ErrorKind::KeyDisabled, "was revoked (deactivated)"),
            KeyState::Compromised => (ErrorKind::KeyDisabled, "was revoked as compromised"),
            KeyState::Destroyed | KeyState::DestroyedCompromised => {
                (ErrorKind::KeyDestroyed, "was destroyed")
            }
            KeyState::Other(_) => (ErrorKind::KeyDisabled, "is not active"),
        };
        Err(Error::new(
            kind,
            format!("KMIP key {key_id:?} {what}; it cannot wrap or unwrap"),
        ))
    }
}

/// Why a key is revoked (KMIP Revocation Reason Code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationReason {
    /// Unspecified.
    Unspecified,
    /// The key was compromised (the key becomes Compromised).
    KeyCompromise,
    /// The key is superseded.
    Superseded,
    /// The key is no longer used.
    CessationOfOperation,
}

impl RevocationReason {
    fn code(self) -> u32 {
        match self {
            RevocationReason::Unspecified => 1,
            RevocationReason::KeyCompromise => 2,
            RevocationReason::Superseded => 5,
            RevocationReason::CessationOfOperation => 6,
        }
    }
}

struct Pool {
    idle: Vec<Conn>,
    open: usize,
}

/// A KMIP client bound to one server.
///
/// Thread-safe: calls from many threads share a pool of connections.
pub struct Client {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    version: KmipVersion,
    transport: KmipTransport,
    timeout: Duration,
    pool: Mutex<Pool>,
    slot_free: Condvar,
    closed: AtomicBool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("version", &self.version)
            .field("transport", &self.transport)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn pem_error(what: &str) -> impl Fn(rustls::pki_types::pem::Error) -> Error + '_ {
    // Never echo the PEM: it may hold the private key.
    move |e| Error::invalid(format!("KMIP {what} is not valid PEM: {}", pem_reason(&e)))
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::NoItemsFound => "no PEM section of the expected kind",
        E::MissingSectionEnd { .. } => "a PEM section has no end line",
        E::IllegalSectionStart { .. } => "a PEM section start line is malformed",
        E::Base64Decode(_) => "bad base64",
        _ => "unreadable",
    }
}

impl Client {
    /// A client for the server and credentials of `config`. Does not
    /// connect yet. Malformed PEM: `InvalidInput`.
    pub fn new(config: &KmipConfig) -> Result<Client> {
        if config.host.is_empty() {
            return Err(Error::invalid("the KMIP server host is empty"));
        }
        if config.timeout.is_zero() {
            return Err(Error::invalid("the KMIP timeout must be above zero"));
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&config.ca_pem) {
            let cert = cert.map_err(pem_error("CA certificate"))?;
            roots.add(cert).map_err(|e| {
                Error::invalid(format!("the KMIP CA certificate is not usable: {e}"))
            })?;
        }
        if roots.is_empty() {
            return Err(Error::invalid(
                "no CA certificate given to verify the KMIP server (ca_pem)",
            ));
        }
        let certs = CertificateDer::pem_slice_iter(&config.client_cert_pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(pem_error("client certificate"))?;
        if certs.is_empty() {
            return Err(Error::invalid(
                "no client certificate given for the KMIP server (client_cert_pem)",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&config.client_key_pem)
            .map_err(pem_error("client private key"))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| {
                Error::invalid(format!(
                    "the KMIP client certificate and key do not fit together: {e}"
                ))
            })?;
        if config.transport == KmipTransport::HttpsJson {
            // The client speaks HTTP/1.1 only; say so, so that a server
            // that offers HTTP/2 does not pick it.
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            // Cosmian KMS 5.0's HTTPS server (OpenSSL, client certificates
            // required) answers a resumed session with an Internal Error
            // alert: every connection after the first (a second pooled
            // one, a reconnect after its idle timeout) would fail. Full
            // handshakes only.
            tls.resumption = rustls::client::Resumption::disabled();
        }
        let name = config
            .server_name
            .clone()
            .unwrap_or_else(|| config.host.clone());
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| Error::invalid(format!("{name:?} is not a valid TLS server name")))?;
        Ok(Client {
            host: config.host.clone(),
            port: config.port,
            server_name,
            tls: Arc::new(tls),
            version: config.version,
            transport: config.transport,
            timeout: config.timeout,
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 0,
            }),
            slot_free: Condvar::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// The protocol version this client speaks.
    pub fn version(&self) -> KmipVersion {
        self.version
    }

    /// How this client reaches its server.
    pub fn transport(&self) -> KmipTransport {
        self.transport
    }

    /// Drops every connection; later calls fail with `Unavailable`.
    /// Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut pool = self.lock_pool();
        let n = pool.idle.len();
        pool.idle.clear();
        pool.open -= n;
        drop(pool);
        self.slot_free.notify_all();
    }

    /// Discover Versions: the protocol versions the server speaks, as
    /// (major, minor), most preferred first.
    pub fn discover_versions(&self) -> Result<Vec<(i32, i32)>> {
        let payload = self.call(operation::DISCOVER_VERSIONS, vec![])?;
        Ok(payload
            .children(tags::PROTOCOL_VERSION)
            .filter_map(|v| {
                let major = v.child(tags::PROTOCOL_VERSION_MAJOR)?.as_int()?;
                let minor = v.child(tags::PROTOCOL_VERSION_MINOR)?.as_int()?;
                Some((major, minor))
            })
            .collect())
    }

    /// Create: a new AES-256 key usable for encrypt and decrypt, with an
    /// optional Name. Returns its unique identifier. The key starts
    /// pre-active on most servers (Cosmian KMS 5.0 makes it active):
    /// [`create_active_aes256`](Client::create_active_aes256) also
    /// activates it when needed.
    pub fn create_aes256(&self, name: Option<&str>) -> Result<String> {
        let mut attrs = vec![
            (
                tags::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(tags::ALGORITHM_AES),
            ),
            (tags::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
            (
                tags::CRYPTOGRAPHIC_USAGE_MASK,
                Value::Integer(tags::USAGE_ENCRYPT_DECRYPT),
            ),
        ];
        if let Some(name) = name {
            attrs.push((tags::NAME, name_value(name)));
        }
        let attrs = match self.version {
            KmipVersion::V1_4 => Item::structure(tags::TEMPLATE_ATTRIBUTE, attributes_v1(attrs)),
            KmipVersion::V2_0 => Item::structure(tags::ATTRIBUTES, attributes_v2(attrs)),
        };
        let payload = self.call(
            operation::CREATE,
            vec![
                Item::enumeration(tags::OBJECT_TYPE, tags::OBJECT_TYPE_SYMMETRIC_KEY),
                attrs,
            ],
        )?;
        unique_id(&payload, operation::CREATE)
    }

    /// Create, then Activate if the server made the key pre-active (as the
    /// KMIP specification says it should, and PyKMIP does; Cosmian KMS 5.0
    /// creates keys active and has no Activate operation). Returns the
    /// unique identifier of a key that is Active.
    pub fn create_active_aes256(&self, name: Option<&str>) -> Result<String> {
        let id = self.create_aes256(name)?;
        match self.state(&id)? {
            KeyState::Active => {}
            KeyState::PreActive => {
                self.activate(&id)?;
                self.state(&id)?.check_active(&id)?;
            }
            other => {
                return Err(backend(format!(
                    "the key {id:?} just created is {other:?}, not pre-active or active"
                )))
            }
        }
        Ok(id)
    }

    /// Activate: makes a pre-active key active.
    pub fn activate(&self, id: &str) -> Result<()> {
        self.call(
            operation::ACTIVATE,
            vec![Item::text(tags::UNIQUE_IDENTIFIER, id)],
        )?;
        Ok(())
    }

    /// Get Attributes: the attributes of `id` named by their tags (for
    /// example [`tags::STATE`]). Each returned item carries the attribute's
    /// own tag, whatever the protocol version. KMIP 1.4 can ask only for
    /// the attributes keystrata knows by name (Unique Identifier, Name,
    /// Object Type, Cryptographic Algorithm / Length / Usage Mask, State).
    pub fn get_attributes(&self, id: &str, wanted: &[Tag]) -> Result<Vec<Item>> {
        let mut req = vec![Item::text(tags::UNIQUE_IDENTIFIER, id)];
        for &tag in wanted {
            req.push(match self.version {
                KmipVersion::V1_4 => {
                    let name = tags::attribute_name(tag).ok_or_else(|| {
                        Error::unsupported(format!("no KMIP 1.4 attribute name for tag {tag}"))
                    })?;
                    Item::text(tags::ATTRIBUTE_NAME, name)
                }
                KmipVersion::V2_0 => Item::enumeration(tags::ATTRIBUTE_REFERENCE, tag.value()),
            });
        }
        let payload = self.call(operation::GET_ATTRIBUTES, req)?;
        Ok(match self.version {
            KmipVersion::V1_4 => payload
                .children(tags::ATTRIBUTE)
                .filter_map(|a| {
                    let tag = tags::attribute_tag(a.child(tags::ATTRIBUTE_NAME)?.as_text()?)?;
                    let value = a.child(tags::ATTRIBUTE_VALUE)?.value.clone();
                    Some(Item::new(tag, value))
                })
                .collect(),
            KmipVersion::V2_0 => payload
                .child(tags::ATTRIBUTES)
                .map(|a| a.items().to_vec())
                .unwrap_or_default(),
        })
    }

    /// The lifecycle state of `id` (Get Attributes of State).
    ///
    /// An identifier the server does not find: `UnknownKey`, whose message
    /// says that the key may also be revoked or destroyed, as some servers
    /// (Cosmian KMS 5.0) find only active keys.
    pub fn state(&self, id: &str) -> Result<KeyState> {
        let attrs = self.get_attributes(id, &[tags::STATE]).map_err(|e| {
            if e.kind() != ErrorKind::UnknownKey {
                return e;
            }
            Error::new(
                ErrorKind::UnknownKey,
                format!(
                    "the KMIP server has no key {id:?}, or none it still shows: servers that \
                     find only active keys (Cosmian KMS 5.0) say the same of a revoked or \
                     destroyed one ({})",
                    e.message()
                ),
            )
        })?;
        let v = attrs
            .iter()
            .find(|a| a.tag == tags::STATE)
            .and_then(Item::as_enum)
            .ok_or_else(|| backend("Get Attributes returned no State"))?;
        Ok(KeyState::from_enum(v))
    }

    /// Encrypt with AES-GCM under key `id`: the caller's 12-byte `iv`, a
    /// 16-byte tag, `aad` as the Authenticated Encryption Additional Data.
    /// Returns the ciphertext and the tag.
    pub fn encrypt(
        &self,
        id: &str,
        plaintext: &[u8],
        iv: &[u8],
        aad: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let req = Zeroizing::new(vec![
            Item::text(tags::UNIQUE_IDENTIFIER, id),
            gcm_parameters(),
            Item::bytes(tags::DATA, plaintext),
            Item::bytes(tags::IV_COUNTER_NONCE, iv),
            Item::bytes(tags::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad),
        ]);
        let payload = self.call(operation::ENCRYPT, req.to_vec())?;
        let ct = payload
            .child(tags::DATA)
            .and_then(Item::as_bytes)
            .ok_or_else(|| backend("Encrypt returned no Data"))?;
        let tag = payload
            .child(tags::AUTHENTICATED_ENCRYPTION_TAG)
            .and_then(Item::as_bytes)
            .ok_or_else(|| backend("Encrypt returned no Authenticated Encryption Tag"))?;
        Ok((ct.to_vec(), tag.to_vec()))
    }

    /// Decrypt with AES-GCM under key `id`. A tag that does not verify:
    /// `Authentication`, nothing more.
    pub fn decrypt(
        &self,
        id: &str,
        ciphertext: &[u8],
        iv: &[u8],
        aad: &[u8],
        tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let req = vec![
            Item::text(tags::UNIQUE_IDENTIFIER, id),
            gcm_parameters(),
            Item::bytes(tags::DATA, ciphertext),
            Item::bytes(tags::IV_COUNTER_NONCE, iv),
            Item::bytes(tags::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad),
            Item::bytes(tags::AUTHENTICATED_ENCRYPTION_TAG, tag),
        ];
        let mut payload = self.call(operation::DECRYPT, req)?;
        let pt = payload
            .child(tags::DATA)
            .and_then(Item::as_bytes)
            .map(|b| Zeroizing::new(b.to_vec()))
            .ok_or_else(|| backend("Decrypt returned no Data"));
        zeroize::Zeroize::zeroize(&mut payload);
        pt
    }

    /// Revoke: the key becomes Deactivated (Compromised for
    /// [`RevocationReason::KeyCompromise`]) and can no longer encrypt.
    pub fn revoke(&self, id: &str, reason: RevocationReason) -> Result<()> {
        self.call(
            operation::REVOKE,
            vec![
                Item::text(tags::UNIQUE_IDENTIFIER, id),
                Item::structure(
                    tags::REVOCATION_REASON,
                    vec![Item::enumeration(
                        tags::REVOCATION_REASON_CODE,
                        reason.code(),
                    )],
                ),
            ],
        )?;
        Ok(())
    }

    /// Destroy: the key's material is destroyed (an active key must be
    /// revoked first).
    pub fn destroy(&self, id: &str) -> Result<()> {
        self.call(
            operation::DESTROY,
            vec![Item::text(tags::UNIQUE_IDENTIFIER, id)],
        )?;
        Ok(())
    }

    /// The values of the Name attributes of `id` (an object may have
    /// several names, or none).
    pub fn names(&self, id: &str) -> Result<Vec<String>> {
        Ok(self
            .get_attributes(id, &[tags::NAME])?
            .iter()
            .filter(|a| a.tag == tags::NAME)
            .filter_map(|a| a.child(tags::NAME_VALUE)?.as_text().map(str::to_owned))
            .collect())
    }

    /// The unique identifiers of the objects whose Name is `name`.
    ///
    /// A Locate with the Name (KMIP 1.4: an `Attribute` {"Name", Name}; 2.0:
    /// `Attributes` {Name}) proposes candidates, and each candidate's Name
    /// is then read back with Get Attributes: only the objects that carry
    /// the name are returned, never an object the server returned for
    /// another reason (Cosmian KMS 5.0 ignores the Name in a KMIP 2.x
    /// Locate and returns every active object the client may use). A
    /// candidate that vanished in between is left out. Costs one Get
    /// Attributes per candidate.
    pub fn locate_by_name(&self, name: &str) -> Result<Vec<String>> {
        let mut named = Vec::new();
        for id in self.locate_candidates(name)? {
            match self.names(&id) {
                Ok(names) if names.iter().any(|n| n == name) => named.push(id),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::UnknownKey => {}
                Err(e) => return Err(e),
            }
        }
        Ok(named)
    }

    /// Locate with a Name: what the server returns, unchecked.
    fn locate_candidates(&self, name: &str) -> Result<Vec<String>> {
        let attr = vec![(tags::NAME, name_value(name))];
        let req = match self.version {
            KmipVersion::V1_4 => attributes_v1(attr),
            KmipVersion::V2_0 => vec![Item::structure(tags::ATTRIBUTES, attributes_v2(attr))],
        };
        let payload = self.call(operation::LOCATE, req)?;
        let mut ids: Vec<String> = payload
            .children(tags::UNIQUE_IDENTIFIER)
            .filter_map(|i| i.as_text().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Sends one request with one batch item and returns the response
    /// payload (an empty structure if the server sent none).
    pub fn call(&self, op: u32, payload: Vec<Item>) -> Result<Item> {
        let (major, minor) = match self.version {
            KmipVersion::V1_4 => (1, 4),
            KmipVersion::V2_0 => (2, 0),
        };
        let request = Zeroizing::new(Item::structure(
            tags::REQUEST_MESSAGE,
            vec![
                Item::structure(
                    tags::REQUEST_HEADER,
                    vec![
                        Item::structure(
                            tags::PROTOCOL_VERSION,
                            vec![
                                Item::integer(tags::PROTOCOL_VERSION_MAJOR, major),
                                Item::integer(tags::PROTOCOL_VERSION_MINOR, minor),
                            ],
                        ),
                        Item::integer(tags::BATCH_COUNT, 1),
                    ],
                ),
                Item::structure(
                    tags::BATCH_ITEM,
                    vec![
                        Item::enumeration(tags::OPERATION, op),
                        Item::structure(tags::REQUEST_PAYLOAD, payload),
                    ],
                ),
            ],
        ));
        match self.transport {
            KmipTransport::Ttlv => {
                let mut bytes = Zeroizing::new(Vec::new());
                request.encode_into(&mut bytes)?;
                let response = self.round_trip(&bytes, op)?;
                parse_response(Item::decode(&response), op)
            }
            KmipTransport::HttpsJson => {
                let body = json::encode(&request)?;
                let head = http::post_head(&self.host, self.port, COSMIAN_JSON_PATH, body.len());
                let mut bytes = Zeroizing::new(head.into_bytes());
                bytes.extend_from_slice(&body);
                let response = self.round_trip(&bytes, op)?;
                parse_response(json::decode(&response), op)
            }
        }
    }

    fn lock_pool(&self) -> MutexGuard<'_, Pool> {
        crate::sync::lock(&self.pool)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::unavailable("this KMIP client was closed"))
        } else {
            Ok(())
        }
    }

    /// Takes an idle connection, or a slot to open one (`None`).
    fn checkout(&self) -> Result<Option<Conn>> {
        let mut pool = self.lock_pool();
        loop {
            self.check_open()?;
            if let Some(c) = pool.idle.pop() {
                return Ok(Some(c));
            }
            if pool.open < MAX_CONNECTIONS {
                pool.open += 1;
                return Ok(None);
            }
            pool = self.slot_free.wait(pool).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn checkin(&self, conn: Option<Conn>) {
        let mut pool = self.lock_pool();
        match conn {
            Some(c) if !self.closed.load(Ordering::Acquire) => pool.idle.push(c),
            _ => pool.open -= 1,
        }
        drop(pool);
        self.slot_free.notify_one();
    }

    fn round_trip(&self, request: &[u8], op: u32) -> Result<Zeroizing<Vec<u8>>> {
        let pooled = self.checkout()?;
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => match self.connect() {
                Ok(c) => c,
                Err(e) => {
                    self.checkin(None);
                    return Err(e);
                }
            },
        };
        let exchange = |conn: &mut Conn| match self.transport {
            KmipTransport::Ttlv => exchange(conn, request, self.timeout).map(|r| (Ok(r), true)),
            KmipTransport::HttpsJson => self.exchange_http(conn, request, op),
        };
        let first = exchange(&mut conn);
        let result = match first {
            Ok(r) => Ok((conn, r)),
            // A connection that sat idle may have been closed by a server
            // restart: retry once on a fresh one, unless it merely timed out.
            Err(e) if reused && !e.timed_out => {
                drop(conn);
                self.connect().and_then(|mut c| {
                    exchange(&mut c)
                        .map(|r| (c, r))
                        .map_err(|e| e.into_error(&self.host, self.port, op))
                })
            }
            Err(e) => Err(e.into_error(&self.host, self.port, op)),
        };
        match result {
            Ok((conn, (response, reusable))) => {
                self.checkin(reusable.then_some(conn));
                response
            }
            Err(e) => {
                self.checkin(None);
                Err(e)
            }
        }
    }

    /// Posts one HTTP request and reads its response, within the timeout.
    /// The outer error is an I/O failure (the connection is dropped); the
    /// inner one an HTTP status other than 200, on a connection that may
    /// be reused (the flag).
    #[allow(clippy::type_complexity)]
    fn exchange_http(
        &self,
        conn: &mut Conn,
        request: &[u8],
        op: u32,
    ) -> std::result::Result<(Result<Zeroizing<Vec<u8>>>, bool), IoFailure> {
        let deadline = Instant::now() + self.timeout;
        conn.write_all(request)?;
        conn.flush()?;
        let response =
            http::read_response(|buf| read_some_by(conn, buf, deadline), MAX_RESPONSE_LEN)?;
        if response.status == 200 {
            return Ok((Ok(response.body), response.keep_alive));
        }
        let text = String::from_utf8_lossy(&response.body);
        let kind = match response.status {
            502..=504 => ErrorKind::Unavailable,
            _ => ErrorKind::Backend,
        };
        let err = Error::new(
            kind,
            format!(
                "KMIP server {}:{} answered {} with HTTP status {}: {}",
                self.host,
                self.port,
                operation::name(op),
                response.status,
                quote(text.trim())
            ),
        );
        Ok((Err(err), response.keep_alive))
    }

    fn connect(&self) -> Result<Conn> {
        let unavailable = |what: String| {
            Error::unavailable(format!(
                "KMIP server {}:{} is unreachable: {what}",
                self.host, self.port
            ))
        };
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| unavailable(format!("cannot resolve the host: {e}")))?
            .collect();
        let deadline = Instant::now() + self.timeout;
        let mut last = None;
        let mut sock = None;
        for addr in &addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(addr, left) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let sock = sock.ok_or_else(|| {
            unavailable(match last {
                Some(e) if is_timeout(&e) => format!("connect timed out after {:?}", self.timeout),
                Some(e) => e.to_string(),
                None => "no address to connect to".to_owned(),
            })
        })?;
        let setup = |e: io::Error| unavailable(e.to_string());
        sock.set_nodelay(true).map_err(setup)?;
        sock.set_write_timeout(Some(self.timeout)).map_err(setup)?;
        let tls = rustls::ClientConnection::new(self.tls.clone(), self.server_name.clone())
            .map_err(|e| Error::new(ErrorKind::Backend, format!("TLS setup: {e}")))?;
        let mut conn = rustls::StreamOwned::new(tls, sock);
        while conn.conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(unavailable(format!(
                    "TLS handshake timed out after {:?}",
                    self.timeout
                )));
            }
            conn.sock.set_read_timeout(Some(left)).map_err(setup)?;
            conn.conn
                .complete_io(&mut conn.sock)
                .map_err(|e| IoFailure::from(e).into_error(&self.host, self.port, 0))?;
        }
        Ok(conn)
    }
}

/// An I/O failure of one exchange, before it becomes an [`Error`].
struct IoFailure {
    err: io::Error,
    timed_out: bool,
}

impl From<io::Error> for IoFailure {
    fn from(err: io::Error) -> IoFailure {
        IoFailure {
            timed_out: is_timeout(&err),
            err,
        }
    }
}

impl IoFailure {
    fn into_error(self, host: &str, port: u16, op: u32) -> Error {
        let during = if op == 0 {
            "TLS handshake".to_owned()
        } else {
            operation::name(op).to_owned()
        };
        if let Some(tls) = self
            .err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            return Error::new(
                ErrorKind::Backend,
                format!("KMIP server {host}:{port}: TLS failure during {during}: {tls}"),
            );
        }
        if self.timed_out {
            return Error::unavailable(format!(
                "KMIP server {host}:{port} did not answer {during} in time"
            ));
        }
        if self.err.kind() == io::ErrorKind::InvalidData {
            return Error::new(
                ErrorKind::Backend,
                format!("KMIP server {host}:{port}: {during}: {}", self.err),
            );
        }
        Error::unavailable(format!(
            "KMIP server {host}:{port} went away during {during}: {}",
            self.err
        ))
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// Writes one request and reads one response message, all within
/// `timeout`.
fn exchange(
    conn: &mut Conn,
    request: &[u8],
    timeout: Duration,
) -> std::result::Result<Zeroizing<Vec<u8>>, IoFailure> {
    let deadline = Instant::now() + timeout;
    conn.write_all(request)?;
    conn.flush()?;
    let mut header = [0u8; 8];
    read_exact_by(conn, &mut header, deadline)?;
    let (tag, ty, len) = decode_header(&header);
    let len = len as usize;
    if tag != tags::RESPONSE_MESSAGE
        || ty != 0x01
        || len > MAX_RESPONSE_LEN
        || !len.is_multiple_of(8)
    {
        return Err(IoFailure::from(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a KMIP response message (tag {tag}, type {ty}, length {len})"),
        )));
    }
    let mut msg = Zeroizing::new(vec![0u8; 8 + len]);
    msg[..8].copy_from_slice(&header);
    read_exact_by(conn, &mut msg[8..], deadline)?;
    Ok(msg)
}

/// Reads some bytes (0 at the end of the stream) before `deadline`.
fn read_some_by(conn: &mut Conn, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        conn.sock.set_read_timeout(Some(left))?;
        match conn.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn read_exact_by(conn: &mut Conn, mut buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        conn.sock.set_read_timeout(Some(left))?;
        match conn.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn backend(message: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Backend, format!("KMIP server: {message}"))
}

/// The payload of a decoded response message, or its failure.
fn parse_response(decoded: Result<Item>, op: u32) -> Result<Item> {
    let mut msg = decoded.map_err(|e| backend(format!("malformed response: {}", e.message())))?;
    if msg.tag != tags::RESPONSE_MESSAGE {
        return Err(backend(format!("{} is not a response message", msg.tag)));
    }
    let result = (|| {
        let item = msg
            .child(tags::BATCH_ITEM)
            .ok_or_else(|| backend("response has no batch item"))?;
        let status = item
            .child(tags::RESULT_STATUS)
            .and_then(Item::as_enum)
            .ok_or_else(|| backend("response has no result status"))?;
        if status != tags::result_status::SUCCESS {
            let reason = item.child(tags::RESULT_REASON).and_then(Item::as_enum);
            let message = item
                .child(tags::RESULT_MESSAGE)
                .and_then(Item::as_text)
                .unwrap_or("");
            return Err(failure(op, status, reason, message));
        }
        Ok(item
            .child(tags::RESPONSE_PAYLOAD)
            .cloned()
            .unwrap_or_else(|| Item::structure(tags::RESPONSE_PAYLOAD, vec![])))
    })();
    zeroize::Zeroize::zeroize(&mut msg);
    result
}

/// Maps a failed result to an error kind.
fn failure(op: u32, status: u32, reason: Option<u32>, message: &str) -> Error {
    use result_reason as r;
    let name = operation::name(op);
    let reason_name = reason.map_or("no reason given", r::name);
    let detail = if message.is_empty() {
        format!("KMIP {name} failed: {reason_name} (status {status})")
    } else {
        format!("KMIP {name} failed: {reason_name}: {}", quote(message))
    };
    let kind = match reason {
        // PyKMIP reports a GCM tag mismatch as General Failure, others as
        // Cryptographic Failure: either way, say nothing more.
        Some(r::CRYPTOGRAPHIC_FAILURE | r::GENERAL_FAILURE) if op == operation::DECRYPT => {
            return Error::authentication();
        }
        // Cosmian KMS 5.0 reports every failure outside its KMIP error type
        // as Operation Not Supported, a tag mismatch among them ("Cryptographic
        // error: OpenSSL Error: ..."); only that message is read as one.
        Some(r::OPERATION_NOT_SUPPORTED)
            if op == operation::DECRYPT && message.starts_with("Cryptographic error") =>
        {
            return Error::authentication();
        }
        Some(r::ITEM_NOT_FOUND | r::OBJECT_NOT_FOUND) => ErrorKind::UnknownKey,
        Some(r::OBJECT_DESTROYED) => ErrorKind::KeyDestroyed,
        Some(r::INVALID_MESSAGE | r::OPERATION_NOT_SUPPORTED | r::FEATURE_NOT_SUPPORTED) => {
            ErrorKind::Unsupported
        }
        _ => ErrorKind::Backend,
    };
    Error::new(kind, detail)
}

fn name_value(name: &str) -> Value {
    Value::Structure(vec![
        Item::text(tags::NAME_VALUE, name),
        Item::enumeration(tags::NAME_TYPE, tags::NAME_TYPE_TEXT),
    ])
}

/// KMIP 1.x attributes: `Attribute { Attribute Name, Attribute Value }`.
fn attributes_v1(attrs: Vec<(Tag, Value)>) -> Vec<Item> {
    attrs
        .into_iter()
        .filter_map(|(tag, value)| {
            let name = tags::attribute_name(tag)?;
            Some(Item::structure(
                tags::ATTRIBUTE,
                vec![
                    Item::text(tags::ATTRIBUTE_NAME, name),
                    Item::new(tags::ATTRIBUTE_VALUE, value),
                ],
            ))
        })
        .collect()
}

/// KMIP 2.0 attributes: each attribute is an item with its own tag.
fn attributes_v2(attrs: Vec<(Tag, Value)>) -> Vec<Item> {
    attrs
        .into_iter()
        .map(|(tag, value)| Item::new(tag, value))
        .collect()
}

fn gcm_parameters() -> Item {
    Item::structure(
        tags::CRYPTOGRAPHIC_PARAMETERS,
        vec![
            Item::enumeration(tags::BLOCK_CIPHER_MODE, tags::MODE_GCM),
            Item::enumeration(tags::CRYPTOGRAPHIC_ALGORITHM, tags::ALGORITHM_AES),
            Item::integer(tags::TAG_LENGTH, 16),
        ],
    )
}

fn unique_id(payload: &Item, op: u32) -> Result<String> {
    payload
        .child(tags::UNIQUE_IDENTIFIER)
        .and_then(Item::as_text)
        .map(str::to_owned)
        .ok_or_else(|| {
            backend(format!(
                "{} returned no Unique Identifier",
                operation::name(op)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_kinds() {
        use result_reason as r;
        let k = |op, reason| failure(op, 1, Some(reason), "m").kind();
        assert_eq!(
            k(operation::DECRYPT, r::CRYPTOGRAPHIC_FAILURE),
            ErrorKind::Authentication
        );
        assert_eq!(
            failure(operation::DECRYPT, 1, Some(r::GENERAL_FAILURE), "detail").message(),
            crate::error::AUTH_MESSAGE
        );
        assert_eq!(
            k(operation::ENCRYPT, r::ITEM_NOT_FOUND),
            ErrorKind::UnknownKey
        );
        assert_eq!(
            k(operation::GET_ATTRIBUTES, r::OBJECT_NOT_FOUND),
            ErrorKind::UnknownKey
        );
        assert_eq!(
            k(operation::ENCRYPT, r::OBJECT_DESTROYED),
            ErrorKind::KeyDestroyed
        );
        assert_eq!(
            k(operation::CREATE, r::OPERATION_NOT_SUPPORTED),
            ErrorKind::Unsupported
        );
        assert_eq!(
            k(operation::DECRYPT, r::OPERATION_NOT_SUPPORTED),
            ErrorKind::Unsupported
        );
        let cosmian =
            "Cryptographic error: OpenSSL Error: Error: OpenSSL error. Details: ErrorStack([])";
        let e = failure(
            operation::DECRYPT,
            1,
            Some(r::OPERATION_NOT_SUPPORTED),
            cosmian,
        );
        assert_eq!(e.kind(), ErrorKind::Authentication);
        assert_eq!(e.message(), crate::error::AUTH_MESSAGE);
        assert_eq!(
            failure(
                operation::ENCRYPT,
                1,
                Some(r::OPERATION_NOT_SUPPORTED),
                cosmian
            )
            .kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            k(operation::ENCRYPT, r::PERMISSION_DENIED),
            ErrorKind::Backend
        );
        let e = failure(operation::ENCRYPT, 1, Some(r::INVALID_FIELD), "bad iv");
        assert!(e.message().contains("Invalid Field") && e.message().contains("bad iv"));
    }

    #[test]
    fn a_failed_response_is_parsed() {
        let msg = Item::structure(
            tags::RESPONSE_MESSAGE,
            vec![
                Item::structure(tags::RESPONSE_HEADER, vec![]),
                Item::structure(
                    tags::BATCH_ITEM,
                    vec![
                        Item::enumeration(tags::OPERATION, operation::ENCRYPT),
                        Item::enumeration(tags::RESULT_STATUS, 1),
                        Item::enumeration(tags::RESULT_REASON, result_reason::ITEM_NOT_FOUND),
                        Item::text(tags::RESULT_MESSAGE, "no such object"),
                    ],
                ),
            ],
        );
        let bytes = msg.encode().unwrap();
        let e = parse_response(Item::decode(&bytes), operation::ENCRYPT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownKey);
        assert!(e.message().contains("no such object"));
        // The same message in JSON.
        let e = parse_response(
            json::decode(&json::encode(&msg).unwrap()),
            operation::ENCRYPT,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownKey);
        assert!(e.message().contains("no such object"));
        let e = parse_response(Item::decode(&[1, 2, 3]), operation::ENCRYPT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend);
        let e =
            parse_response(json::decode(b"{\"tag\":\"Nope\"}"), operation::ENCRYPT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend);
        // Not a response message.
        let e = parse_response(Ok(Item::structure(tags::REQUEST_MESSAGE, vec![])), 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend);
        // A server's message is quoted, not echoed without bound.
        let e = failure(operation::ENCRYPT, 1, Some(0x07), &"x".repeat(100_000));
        assert!(e.message().len() < 400, "{}", e.message().len());
    }
}
