//! Roots: ks_root handles.

use std::ffi::c_char;

use std::time::Duration;

use keystrata::root::kmip::{KmipConfig, KmipKeyRef, KmipRoot, KmipTransport, KmipVersion};
use keystrata::root::{Pkcs11Config, Pkcs11Pin, Pkcs11Root, SecretString};
use keystrata::{AgeRoot, KeyManager, PassphraseRoot, Root};

use crate::*;

/// What a ks_root holds.
#[derive(Clone)]
pub(crate) enum RootKind {
    Age(AgeRoot),
    Passphrase(PassphraseRoot),
    Pkcs11(Pkcs11Root),
    Kmip(KmipRoot),
    /// Any other root: one named by a URI (keystrata::root::from_uri), so
    /// a new kind of root needs no code here, or one of the caller's own
    /// (ks_root_custom_new).
    Other(std::sync::Arc<dyn Root>),
}

impl RootKind {
    fn root(&self) -> &dyn Root {
        match self {
            RootKind::Age(a) => a,
            RootKind::Passphrase(p) => p,
            RootKind::Pkcs11(p) => p,
            RootKind::Kmip(k) => k,
            RootKind::Other(r) => &**r,
        }
    }

    fn key_manager(&self) -> &dyn KeyManager {
        match self {
            RootKind::Age(a) => a,
            RootKind::Passphrase(p) => p,
            RootKind::Pkcs11(p) => p,
            RootKind::Kmip(k) => k,
            RootKind::Other(r) => &**r,
        }
    }
}

impl KeyManager for RootKind {
    fn provider(&self) -> &str {
        self.key_manager().provider()
    }
    fn wrap_key(&self, key: &[u8], context: &[u8]) -> keystrata::Result<keystrata::Envelope> {
        self.key_manager().wrap_key(key, context)
    }
    fn unwrap_key(
        &self,
        envelope: &keystrata::Envelope,
        context: &[u8],
    ) -> keystrata::Result<keystrata::SecretBytes> {
        self.key_manager().unwrap_key(envelope, context)
    }
    fn active_key_version(&self) -> keystrata::Result<u32> {
        self.key_manager().active_key_version()
    }
    fn health_check(&self) -> keystrata::Result<()> {
        self.key_manager().health_check()
    }
    fn close(&self) -> keystrata::Result<()> {
        self.key_manager().close()
    }
}

// Forwards the at-rest format too (the age roots have their own).
impl Root for RootKind {
    fn protect(&self, keychain_json: &[u8]) -> keystrata::Result<Vec<u8>> {
        self.root().protect(keychain_json)
    }
    fn unprotect(&self, stored: &[u8]) -> keystrata::Result<zeroize::Zeroizing<Vec<u8>>> {
        self.root().unprotect(stored)
    }
}

/// A root: what protects a keychain at rest (an age identity set, a
/// passphrase, a key in a PKCS#11 token, a key in a KMIP server). Create
/// with ks_root_age_new, ks_root_age_generate, ks_root_passphrase_new,
/// ks_root_pkcs11_new or ks_root_kmip_new; release with ks_root_free.
/// A root also decrypts portable ciphertexts (ks_root_decrypt_portable)
/// and keeps the KEKs it unwrapped for them.
///
/// Thread safety: shareable between threads (the KEK cache is internally
/// synchronized).
pub struct ks_root {
    pub(crate) kind: RootKind,
    /// Decrypts portable ciphertexts with this root, keeping the KEKs it
    /// unwrapped (made on first use; wiped by ks_root_free).
    pub(crate) portable: std::sync::OnceLock<keystrata::PortableDecryptor>,
}

impl ks_root {
    pub(crate) fn new(kind: RootKind) -> ks_root {
        ks_root {
            kind,
            portable: std::sync::OnceLock::new(),
        }
    }
}

/// Creates an age root from `n_identities` identities (each an
/// "AGE-SECRET-KEY-1..." string, or the whole text age-keygen prints,
/// comments included) and `n_recipients` recipients ("age1..."). Keychains
/// are encrypted to the recipients and to the identities' public keys; at
/// least one of the two lists must be non-empty. A root without identities
/// can save but not load.
///
/// Ownership: the strings are copied; the caller keeps them. On success
/// `*out` is a new handle to release with ks_root_free.
/// NULL: a list may be NULL only when its count is 0; `out` must not be NULL.
/// Errors: KS_ERR_INVALID_INPUT for a string that does not parse (the
/// message never repeats an identity).
/// Thread safety: safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn ks_root_age_new(
    identities: *const *const c_char,
    n_identities: usize,
    recipients: *const *const c_char,
    n_recipients: usize,
    out: *mut *mut ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let ids = unsafe { c_strings(identities, n_identities, "identities")? };
        let recs = unsafe { c_strings(recipients, n_recipients, "recipients")? };
        let root = AgeRoot::new(ids, recs)?;
        unsafe { put_handle(out, ks_root::new(RootKind::Age(root))) };
        Ok(())
    })
}

/// Creates an age root with one freshly generated X25519 identity. Read it
/// with ks_root_age_identity to store it. `*out` is released with
/// ks_root_free.
#[no_mangle]
pub unsafe extern "C" fn ks_root_age_generate(
    out: *mut *mut ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        unsafe { put_handle(out, ks_root::new(RootKind::Age(AgeRoot::generate()))) };
        Ok(())
    })
}

/// Copies identity number `index` of an age root, as an
/// "AGE-SECRET-KEY-1..." string (no NUL), into `*out`. This is the root's
/// secret: store it as such; ks_buffer_free wipes the copy.
/// Errors: KS_ERR_INVALID_INPUT if the root is not an age root or `index`
/// is out of range.
#[no_mangle]
pub unsafe extern "C" fn ks_root_age_identity(
    root: *const ks_root,
    index: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let root = unsafe { handle(root, "root")? };
        let out = out_ptr(out, "out")?;
        let RootKind::Age(a) = &root.kind else {
            return Err(FfiError::invalid("not an age root"));
        };
        use keystrata::root::ExposeSecret;
        let ids = a.insecure_identity_strings();
        let id = ids.get(index).ok_or_else(|| {
            FfiError::invalid(format!(
                "identity index {index} out of range ({})",
                ids.len()
            ))
        })?;
        unsafe { put_buffer(out, id.expose_secret().as_bytes().to_vec()) };
        Ok(())
    })
}

/// Copies recipient number `index` ("age1...", no NUL) of an age root into
/// `*out`. Errors: KS_ERR_INVALID_INPUT if not an age root or out of range.
#[no_mangle]
pub unsafe extern "C" fn ks_root_age_recipient(
    root: *const ks_root,
    index: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let root = unsafe { handle(root, "root")? };
        let out = out_ptr(out, "out")?;
        let RootKind::Age(a) = &root.kind else {
            return Err(FfiError::invalid("not an age root"));
        };
        let recs = a.recipients();
        let r = recs.get(index).ok_or_else(|| {
            FfiError::invalid(format!(
                "recipient index {index} out of range ({})",
                recs.len()
            ))
        })?;
        unsafe { put_buffer(out, r.as_bytes().to_vec()) };
        Ok(())
    })
}

/// Creates a passphrase root (age scrypt) from `passphrase_len` bytes of
/// UTF-8. `work_factor` is scrypt's log2(N) for saves, 1..30, or 0 for the
/// default (18, about one second). The passphrase is copied and wiped when
/// the root is freed.
/// Errors: KS_ERR_INVALID_INPUT for an empty or non-UTF-8 passphrase or a
/// work factor above 30.
#[no_mangle]
pub unsafe extern "C" fn ks_root_passphrase_new(
    passphrase: *const u8,
    passphrase_len: usize,
    work_factor: u8,
    out: *mut *mut ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let p = unsafe { bytes(passphrase, passphrase_len, "passphrase")? };
        let p =
            std::str::from_utf8(p).map_err(|_| FfiError::invalid("the passphrase is not UTF-8"))?;
        let wf = if work_factor == 0 {
            keystrata::root::DEFAULT_SCRYPT_WORK_FACTOR
        } else {
            work_factor
        };
        let root = PassphraseRoot::with_work_factor(p, wf)?;
        unsafe { put_handle(out, ks_root::new(RootKind::Passphrase(root))) };
        Ok(())
    })
}

/// Creates a root from a URI, the forms the CLI's --root takes
/// (docs/ROOTS.md): "age:FILE", "age-recipient:age1...[,...]",
/// "passphrase:VAR", "passphrase:env:VAR", "passphrase:file:PATH",
/// "pkcs11:token=...;object=...?module-path=...&pin-source=env:VAR",
/// "kmip://HOST[:PORT]?key-name=...&ca=...&cert=...&client-key=...".
/// Secrets come from the files and environment variables the URI names,
/// never from the URI itself. `uri` is NUL-terminated UTF-8. On success
/// `*out` is a new handle to release with ks_root_free. Errors:
/// KS_ERR_INVALID_INPUT (an unknown scheme, a malformed URI, a secret given
/// inline; the message echoes at most 64 characters of any part),
/// KS_ERR_UNSUPPORTED, KS_ERR_IO (a file the URI names), and the kinds of
/// the root's own constructor (KS_ERR_BACKEND, KS_ERR_UNAVAILABLE).
#[no_mangle]
pub unsafe extern "C" fn ks_root_from_uri(
    uri: *const c_char,
    out: *mut *mut ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let uri = unsafe { c_str(uri, "uri")? };
        let root: std::sync::Arc<dyn Root> = keystrata::root::from_uri(uri)?.into();
        unsafe { put_handle(out, ks_root::new(RootKind::Other(root))) };
        Ok(())
    })
}

/// Flag of ks_root_pkcs11_new and ks_root_kmip_new: create the root key
/// (AES-256, non-extractable) if none with the given label or name exists.
pub const KS_ROOT_CREATE_KEY: u32 = 1;

/// Flag of ks_root_kmip_new: speak JSON TTLV over HTTPS to Cosmian KMS's
/// KMIP API (`/kmip/2_1`) instead of binary TTLV; `port` is then the
/// server's HTTPS port (docs/KMIP.md).
pub const KS_KMIP_HTTPS_JSON: u32 = 2;

fn create_flag(flags: u32) -> FfiResult<bool> {
    if flags & !KS_ROOT_CREATE_KEY != 0 {
        return Err(FfiError::invalid(format!("unknown flags {flags:#x}")));
    }
    Ok(flags & KS_ROOT_CREATE_KEY != 0)
}

/// The PKCS#11 config the C arguments of ks_root_pkcs11_new and
/// ks_signer_pkcs11_new name: exactly one of `pin` and `pin_env`, and only
/// KS_ROOT_CREATE_KEY in `flags`.
pub(crate) unsafe fn pkcs11_config(
    module_path: *const c_char,
    token_label: *const c_char,
    pin: *const c_char,
    pin_env: *const c_char,
    key_label: *const c_char,
    flags: u32,
) -> FfiResult<Pkcs11Config> {
    let module = unsafe { c_str(module_path, "module_path")? };
    let token = unsafe { c_str(token_label, "token_label")? };
    let label = unsafe { c_str(key_label, "key_label")? };
    let pin = match unsafe { (opt_str(pin, "pin")?, opt_str(pin_env, "pin_env")?) } {
        (Some(p), None) => Pkcs11Pin::Value(SecretString::from(p.to_owned())),
        (None, Some(e)) => Pkcs11Pin::Env(e.to_owned()),
        _ => {
            return Err(FfiError::invalid(
                "give exactly one of pin and pin_env (the other NULL)",
            ))
        }
    };
    let mut config = Pkcs11Config::new(module, token, pin, label);
    config.create_key = create_flag(flags)?;
    Ok(config)
}

/// Creates a root whose key stays in a PKCS#11 token or HSM: the AES-256
/// key labelled `key_label` in the token labelled `token_label` (tokens are
/// found by label, never by slot number) of the module at `module_path`
/// (for SoftHSM2, "/usr/lib/softhsm/libsofthsm2.so"). The user PIN is
/// given either as `pin` or as `pin_env`, the name of an environment
/// variable holding it: exactly one of the two is non-NULL. With
/// KS_ROOT_CREATE_KEY in `flags`, a missing key is generated in the token
/// (non-extractable, sensitive); otherwise it must exist.
///
/// Keys are wrapped with AES-256-GCM inside the token (docs/PKCS11.md).
/// Connects and logs in before returning. `*out` is released with
/// ks_root_free, which logs out.
/// NULL: `module_path`, `token_label`, `key_label`, `out` must not be NULL.
/// Errors: KS_ERR_INVALID_INPUT (module cannot be loaded, both or neither
/// PIN argument, PIN variable unset, unknown flags); KS_ERR_UNAVAILABLE (no
/// token with that label); KS_ERR_BACKEND (login refused, e.g. a wrong PIN;
/// the message never contains the PIN); KS_ERR_UNKNOWN_KEY (no key with
/// that label and no KS_ROOT_CREATE_KEY).
/// Thread safety: safe to call from any thread; the root is shareable.
#[no_mangle]
pub unsafe extern "C" fn ks_root_pkcs11_new(
    module_path: *const c_char,
    token_label: *const c_char,
    pin: *const c_char,
    pin_env: *const c_char,
    key_label: *const c_char,
    flags: u32,
    out: *mut *mut ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let config =
            unsafe { pkcs11_config(module_path, token_label, pin, pin_env, key_label, flags)? };
        let root = Pkcs11Root::open(&config)?;
        unsafe { put_handle(out, ks_root::new(RootKind::Pkcs11(root))) };
        Ok(())
    })
}

/// Creates a root whose key stays in a KMIP server (PyKMIP, Cosmian KMS,
/// or any server speaking binary KMIP over TLS): connects to `host`:`port`
/// (0 for 5696) with mutual TLS (with KS_KMIP_HTTPS_JSON in `flags`, to
/// Cosmian KMS's HTTPS JSON TTLV API on its HTTPS port `port` instead),
/// verifying the server against the CA in the PEM file `ca_pem_path`
/// under the name `server_name` (NULL: `host`),
/// and presenting the client certificate and private key in the PEM files
/// `cert_pem_path` and `key_pem_path`. The key is named by its unique
/// identifier `key_id` or by its Name attribute `key_name`: exactly one of
/// the two is non-NULL. With KS_ROOT_CREATE_KEY, a missing named key is
/// created and activated. `kmip_version` is 14 (KMIP 1.4, also 0) or 20
/// (KMIP 2.0); `timeout_ms` bounds the connect and every request (0: 5000).
///
/// Keys are wrapped with the server's AES-256-GCM Encrypt (docs/KMIP.md).
/// A server that goes away gives KS_ERR_UNAVAILABLE; the root reconnects
/// when it is back. `*out` is released with ks_root_free.
/// Errors: KS_ERR_INVALID_INPUT (bad arguments), KS_ERR_IO (a PEM file
/// cannot be read), KS_ERR_UNAVAILABLE (cannot connect in time),
/// KS_ERR_BACKEND (TLS or server refusal), KS_ERR_UNKNOWN_KEY (no such key),
/// KS_ERR_KEY_DISABLED (the key is not active, e.g. revoked),
/// KS_ERR_KEY_DESTROYED.
/// Thread safety: safe to call from any thread; the root is shareable.
#[no_mangle]
pub unsafe extern "C" fn ks_root_kmip_new(
    host: *const c_char,
    port: u16,
    server_name: *const c_char,
    ca_pem_path: *const c_char,
    cert_pem_path: *const c_char,
    key_pem_path: *const c_char,
    key_id: *const c_char,
    key_name: *const c_char,
    kmip_version: u32,
    timeout_ms: u32,
    flags: u32,
    out: *mut *mut ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let host = unsafe { c_str(host, "host")? };
        let server_name = unsafe { opt_str(server_name, "server_name")? };
        let ca = unsafe { c_str(ca_pem_path, "ca_pem_path")? };
        let cert = unsafe { c_str(cert_pem_path, "cert_pem_path")? };
        let key = unsafe { c_str(key_pem_path, "key_pem_path")? };
        let key_ref = match unsafe { (opt_str(key_id, "key_id")?, opt_str(key_name, "key_name")?) }
        {
            (Some(id), None) => KmipKeyRef::Id(id.to_owned()),
            (None, Some(name)) => KmipKeyRef::Name(name.to_owned()),
            _ => {
                return Err(FfiError::invalid(
                    "give exactly one of key_id and key_name (the other NULL)",
                ))
            }
        };
        let version = match kmip_version {
            0 | 14 => KmipVersion::V1_4,
            20 => KmipVersion::V2_0,
            v => {
                return Err(FfiError::invalid(format!(
                    "kmip_version must be 14 or 20, got {v}"
                )))
            }
        };
        let port = if port == 0 {
            keystrata::root::kmip::DEFAULT_KMIP_PORT
        } else {
            port
        };
        let mut config = KmipConfig::new(host, port, key_ref).with_pem_files(ca, cert, key)?;
        config.server_name = server_name.map(str::to_owned);
        config.version = version;
        if timeout_ms != 0 {
            config.timeout = Duration::from_millis(u64::from(timeout_ms));
        }
        config.create_key = create_flag(flags & !KS_KMIP_HTTPS_JSON)?;
        if flags & KS_KMIP_HTTPS_JSON != 0 {
            config.transport = KmipTransport::HttpsJson;
        }
        let root = KmipRoot::connect(config)?;
        unsafe { put_handle(out, ks_root::new(RootKind::Kmip(root))) };
        Ok(())
    })
}

/// The AWS KMS settings of ks_root_aws_kms_new and ks_signer_aws_kms_new,
/// read once here. The core checks them (key, endpoint, empty strings).
pub(crate) unsafe fn aws_kms_config(
    key_id: *const c_char,
    region: *const c_char,
    endpoint_url: *const c_char,
    profile: *const c_char,
    timeout_ms: u32,
) -> FfiResult<keystrata::AwsKmsConfig> {
    let key_id = unsafe { c_str(key_id, "key_id")? };
    let mut config = keystrata::AwsKmsConfig::new(key_id);
    config.region = unsafe { opt_str(region, "region")? }.map(str::to_owned);
    config.endpoint_url = unsafe { opt_str(endpoint_url, "endpoint_url")? }.map(str::to_owned);
    config.profile = unsafe { opt_str(profile, "profile")? }.map(str::to_owned);
    if timeout_ms != 0 {
        config.timeout = Duration::from_millis(u64::from(timeout_ms));
    }
    Ok(config)
}

/// Creates a root whose key is a symmetric (SYMMETRIC_DEFAULT) AWS KMS key:
/// `key_id` is a key ID, key ARN, alias name (`alias/...`) or alias ARN;
/// `region` (NULL: the key ARN's region, else the SDK's chain: AWS_REGION,
/// the profile's region), `endpoint_url` (NULL: the region's endpoint; a
/// VPC or FIPS endpoint, or a local stand-in such as moto's server),
/// `profile` (NULL: AWS_PROFILE, else `default`), `timeout_ms` bounding
/// every KMS call, its retries and the fetching of credentials included
/// (0: 5000). Credentials come from the AWS SDK's default chain
/// (environment, shared files and profiles, web identity, ECS and EC2
/// roles): nothing secret is ever an argument.
///
/// Checks the key before returning (DescribeKey: enabled, symmetric,
/// ENCRYPT_DECRYPT). Data keys are wrapped with KMS Encrypt under an
/// encryption context binding keystrata's context; keychains saved under
/// it take one KMS call per save or load (docs/AWS-KMS.md). `*out` is
/// released with ks_root_free.
/// NULL: `key_id` and `out` must not be NULL; the others may.
/// Errors: KS_ERR_INVALID_INPUT (empty or malformed key, endpoint URL with
/// user information, empty region or profile, no region anywhere);
/// KS_ERR_UNAVAILABLE (KMS unreachable or not answering within the
/// timeout); KS_ERR_BACKEND (credentials missing or refused, no
/// permission, throttling); KS_ERR_UNKNOWN_KEY (no such key or alias); KS_ERR_KEY_DISABLED (disabled key); KS_ERR_KEY_DESTROYED
/// (pending deletion); KS_ERR_UNSUPPORTED (not a symmetric encryption
/// key).
/// Thread safety: safe to call from any thread; the root is shareable.
#[no_mangle]
pub unsafe extern "C" fn ks_root_aws_kms_new(
    key_id: *const c_char,
    region: *const c_char,
    endpoint_url: *const c_char,
    profile: *const c_char,
    timeout_ms: u32,
    out: *mut *mut ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let config = unsafe { aws_kms_config(key_id, region, endpoint_url, profile, timeout_ms)? };
        let root = keystrata::AwsKmsRoot::connect(config)?;
        unsafe {
            put_handle(
                out,
                ks_root::new(RootKind::Other(std::sync::Arc::new(root))),
            )
        };
        Ok(())
    })
}

/// Checks the root can serve: for a PKCS#11 root, opens a session and finds
/// the key; for a KMIP root, asks the server for the key's state (it must
/// be active); for an AWS KMS root, DescribeKey (it must be enabled); for
/// age roots, KS_OK unless closed.
/// Errors: KS_ERR_UNAVAILABLE (device or server unreachable),
/// KS_ERR_KEY_DISABLED / KS_ERR_KEY_DESTROYED (key no longer active),
/// KS_ERR_UNKNOWN_KEY, KS_ERR_BACKEND.
/// Thread safety: safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn ks_root_health_check(
    root: *const ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let root = unsafe { handle(root, "root")? };
        root.kind.key_manager().health_check()?;
        Ok(())
    })
}

/// Writes to `*out` the version of the root key new envelopes are wrapped
/// under. It is 1 for every root but a KMIP root that names its key by
/// Name, whose versions are the keys NAME, NAME@2, NAME@3, … (docs/KMIP.md,
/// "Rotating the root key"): such a root reports the newest one it has
/// taken up, and first looks for a newer one once its refresh interval
/// (60 s) has passed; ks_root_health_check looks at once.
/// NULL: `root` and `out` must not be NULL.
/// Errors: KS_ERR_UNAVAILABLE (server unreachable during a look), and the
/// server's refusals (KS_ERR_BACKEND, …).
/// Thread safety: safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn ks_root_active_key_version(
    root: *const ks_root,
    out: *mut u32,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let root = unsafe { handle(root, "root")? };
        let out = out_ptr(out, "out")?;
        let v = root.kind.key_manager().active_key_version()?;
        unsafe { put(out, v) };
        Ok(())
    })
}

/// Rotates the root key of a KMIP root that names its key by Name: creates
/// and activates the key NAME@k for the next version k, wraps under it from
/// now on and writes k to `*out_version`. Keychains and envelopes made
/// under older versions keep loading (keep those keys active); other roots
/// on the same name take the new version up within their refresh interval,
/// at once on ks_root_health_check (docs/KMIP.md, "Rotating the root key").
/// Not KMIP ReKey.
/// NULL: `root` and `out_version` must not be NULL.
/// Errors: KS_ERR_INVALID_INPUT (not a KMIP root, or one that names its key
/// by identifier, which has one version); KS_ERR_UNAVAILABLE (server
/// unreachable); KS_ERR_BACKEND (the server refused to create the
/// key); KS_ERR_POLICY (no version number left).
/// Thread safety: safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn ks_root_rotate_key(
    root: *const ks_root,
    out_version: *mut u32,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let root = unsafe { handle(root, "root")? };
        let out = out_ptr(out_version, "out_version")?;
        let RootKind::Kmip(k) = &root.kind else {
            return Err(FfiError::invalid(
                "not a KMIP root: only a KMIP root named by Name rotates its key",
            ));
        };
        let v = k.rotate_key()?;
        unsafe { put(out, v) };
        Ok(())
    })
}

/// Releases a root and wipes its secrets. NULL is a no-op. Keychains opened
/// with it (ks_keychain_open) keep their own reference and stay usable.
#[no_mangle]
pub unsafe extern "C" fn ks_root_free(root: *mut ks_root) {
    // SAFETY: NULL or a handle from put_handle, freed once (the contract).
    guard_value((), || unsafe { free_handle(root) })
}
