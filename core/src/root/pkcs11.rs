//! The PKCS#11 root: a root key kept in an HSM or token, reached through
//! the PKCS#11 C API (via the `cryptoki` crate).
//!
//! The root key is a non-extractable AES-256 secret key on the token, found
//! by its `CKA_LABEL` on the token found by its label. `wrap_key` is one
//! `C_Encrypt` with `CKM_AES_GCM`: a fresh 12-byte IV per call, a 128-bit
//! tag, and as AAD [`wrap_aad`]`("pkcs11", key_label, 1, context)`. The
//! envelope's ciphertext is `iv(12) ‖ ct ‖ tag(16)`. Keychains are saved in
//! the [`wrapped`](super::wrapped) format. `docs/PKCS11.md` says why GCM
//! rather than `CKM_AES_KEY_WRAP_PAD`, and how to set up a real HSM.
//!
//! Threads: a PKCS#11 session must not be used by two threads at once, so
//! the root keeps a small pool of logged-in sessions and lends one to each
//! call. A module is loaded and `C_Initialize`d once per process and shared
//! by every root that names it; it stays loaded until the process exits.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{device, wrapped, ExposeSecret, Root, SecretString};
use crate::aead::{fill_random, NONCE_LEN, TAG_LEN};
use crate::envelope::Envelope;
use crate::error::{Error, ErrorKind, Result};
use crate::key_manager::{check_wrap_input, KeyManager};
use crate::secret::SecretBytes;
use crate::sync::lock;

/// Provider name of [`Pkcs11Root`], written into its envelopes.
#[cfg_attr(docsrs, doc(cfg(feature = "pkcs11")))]
pub const PKCS11_PROVIDER: &str = "pkcs11";

/// The length of the root key generated on the token, in bytes (AES-256).
const KEY_BYTES: u64 = 32;
/// Idle sessions a root keeps open for later calls; more are opened under
/// load and closed when given back.
const MAX_IDLE_SESSIONS: usize = 8;

/// Where the user PIN of a [`Pkcs11Config`] comes from.
///
/// `Debug` never prints the PIN itself, only the name of its environment
/// variable.
///
/// ```no_run
/// use keystrata::Pkcs11Pin;
/// use keystrata::root::SecretString;
///
/// let from_env = Pkcs11Pin::Env("HSM_PIN".to_owned());
/// let inline = Pkcs11Pin::Value(SecretString::from("1234".to_owned()));
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "pkcs11")))]
#[derive(Clone)]
pub enum Pkcs11Pin {
    /// The PIN itself, zeroized when dropped.
    Value(SecretString),
    /// The name of an environment variable that holds the PIN, read when
    /// the root is opened. An unset variable fails with `InvalidInput`.
    Env(String),
}

impl fmt::Debug for Pkcs11Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkcs11Pin::Value(_) => f.write_str("Value(<redacted>)"),
            Pkcs11Pin::Env(name) => f.debug_tuple("Env").field(name).finish(),
        }
    }
}

impl Pkcs11Pin {
    fn resolve(&self) -> Result<SecretString> {
        let pin = match self {
            Pkcs11Pin::Value(pin) => pin.clone(),
            Pkcs11Pin::Env(name) => match std::env::var(name) {
                Ok(v) => SecretString::from(v),
                Err(std::env::VarError::NotPresent) => {
                    return Err(Error::invalid(format!(
                        "environment variable {name} (the PKCS#11 user PIN) is not set"
                    )))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(Error::invalid(format!(
                        "environment variable {name} (the PKCS#11 user PIN) is not valid UTF-8"
                    )))
                }
            },
        };
        if pin.expose_secret().is_empty() {
            return Err(Error::invalid("the PKCS#11 user PIN is empty"));
        }
        Ok(pin)
    }
}

/// How to reach the root key of a [`Pkcs11Root`]: the module, the token (by
/// label, never by slot number: slot numbers change), the user PIN and the
/// key's label.
///
/// ```no_run
/// use keystrata::{Pkcs11Config, Pkcs11Pin};
///
/// let mut config = Pkcs11Config::new(
///     "/usr/lib/softhsm/libsofthsm2.so",
///     "keystrata-prod",
///     Pkcs11Pin::Env("HSM_PIN".to_owned()),
///     "keystrata-root",
/// );
/// config.create_key = true; // generate the key if the token has none
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "pkcs11")))]
#[derive(Clone, Debug)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (the vendor's shared library).
    pub module: PathBuf,
    /// The token's label (`CKA_LABEL` of the token, without its padding).
    pub token_label: String,
    /// The user PIN.
    pub pin: Pkcs11Pin,
    /// The `CKA_LABEL` of the AES-256 secret key on the token.
    pub key_label: String,
    /// Generate the key on the token when none has `key_label`
    /// (non-extractable, sensitive, token, private; encrypt and decrypt
    /// only). When false, a missing key fails with `UnknownKey`.
    pub create_key: bool,
}

impl Pkcs11Config {
    /// A configuration with `create_key` false: the key must already exist.
    ///
    /// ```no_run
    /// use keystrata::{Pkcs11Config, Pkcs11Pin};
    ///
    /// let config = Pkcs11Config::new(
    ///     "/usr/lib/softhsm/libsofthsm2.so",
    ///     "keystrata-prod",
    ///     Pkcs11Pin::Env("HSM_PIN".to_owned()),
    ///     "keystrata-root",
    /// );
    /// assert!(!config.create_key);
    /// ```
    pub fn new(
        module: impl Into<PathBuf>,
        token_label: impl Into<String>,
        pin: Pkcs11Pin,
        key_label: impl Into<String>,
    ) -> Self {
        Pkcs11Config {
            module: module.into(),
            token_label: token_label.into(),
            pin,
            key_label: key_label.into(),
            create_key: false,
        }
    }
}

/// One loaded and initialized PKCS#11 module, shared by every root of the
/// process that names it.
struct Module {
    ctx: Pkcs11,
    /// Per slot: a salted digest of the PIN this process logged in with, so
    /// that a wrong PIN is refused even while the token is already logged
    /// in (PKCS#11 login state belongs to the whole process).
    logins: Mutex<HashMap<u64, [u8; 32]>>,
    /// Serialises finding-or-creating keys, so two roots opened at once
    /// never create two keys with one label.
    keygen: Mutex<()>,
}

/// The process-wide registry of loaded modules: `C_Initialize` may be
/// called once per module and process, so every root of one module shares
/// one context. Modules are never unloaded or finalized.
fn load_module(path: &Path) -> Result<Arc<Module>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(m) = modules.get(&key) {
        return Ok(Arc::clone(m));
    }
    let ctx = Pkcs11::new(&key).map_err(|e| ck_error(e, Op::Load, &path.display().to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Initialized already by other code in this process: usable as is.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(ck_error(e, Op::Initialize, &path.display().to_string())),
    }
    let m = Arc::new(Module {
        ctx,
        logins: Mutex::new(HashMap::new()),
        keygen: Mutex::new(()),
    });
    modules.insert(key, Arc::clone(&m));
    Ok(m)
}

/// A salted SHA-256 of a PIN (the salt is random per process), kept to
/// compare PINs without keeping them.
fn pin_digest(pin: &SecretString) -> Result<[u8; 32]> {
    static SALT: OnceLock<[u8; 32]> = OnceLock::new();
    let salt = match SALT.get() {
        Some(s) => s,
        None => {
            let mut s = [0u8; 32];
            fill_random(&mut s)?;
            SALT.get_or_init(|| s)
        }
    };
    let mut h = Sha256::new();
    h.update(salt);
    h.update(pin.expose_secret().as_bytes());
    Ok(h.finalize().into())
}

/// What a PKCS#11 call was doing, for its error message and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Load,
    Initialize,
    ListTokens,
    OpenSession,
    Login,
    FindKey,
    GenerateKey,
    Encrypt,
    Decrypt,
}

impl Op {
    fn describe(self, target: &str) -> String {
        match self {
            Op::Load => format!("cannot load PKCS#11 module {target}"),
            Op::Initialize => format!("PKCS#11 C_Initialize of {target} failed"),
            Op::ListTokens => format!("PKCS#11 listing the tokens of {target} failed"),
            Op::OpenSession => format!("PKCS#11 opening a session on token '{target}' failed"),
            Op::Login => format!("PKCS#11 login to token '{target}' failed"),
            Op::FindKey => format!("PKCS#11 finding the key on token '{target}' failed"),
            Op::GenerateKey => format!("PKCS#11 generating the key on token '{target}' failed"),
            Op::Encrypt => format!("PKCS#11 AES-GCM encryption on token '{target}' failed"),
            Op::Decrypt => format!("PKCS#11 AES-GCM decryption on token '{target}' failed"),
        }
    }
}

/// The `CKR_…` name of a return value (`PinIncorrect` → `CKR_PIN_INCORRECT`).
fn ckr_name(rv: &RvError) -> String {
    match rv {
        RvError::VendorDefined(code) => format!("CKR_VENDOR_DEFINED (0x{code:08x})"),
        RvError::UnknownErrorCode(code) => format!("CKR 0x{code:08x}"),
        other => {
            let camel = format!("{other:?}");
            let mut out = String::from("CKR");
            for c in camel.chars() {
                if c.is_ascii_uppercase() {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}

/// The kind a `cryptoki` error maps to, given what the call was doing.
/// A failed GCM decryption is `Authentication`.
fn classify(err: &CkError, op: Op) -> ErrorKind {
    match err {
        CkError::LibraryLoading(_) | CkError::MissingSymbol(_) => ErrorKind::InvalidInput,
        CkError::Pkcs11(rv, _) => match rv {
            RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange
            | RvError::DataInvalid
            | RvError::DataLenRange
            | RvError::FunctionFailed
            | RvError::GeneralError
                if op == Op::Decrypt =>
            {
                ErrorKind::Authentication
            }
            RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::DeviceRemoved
            | RvError::SlotIdInvalid
            | RvError::SessionClosed
            | RvError::SessionHandleInvalid
            | RvError::CryptokiNotInitialized => ErrorKind::Unavailable,
            RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid => ErrorKind::UnknownKey,
            RvError::MechanismInvalid
            | RvError::MechanismParamInvalid
            | RvError::FunctionNotSupported
            | RvError::KeyTypeInconsistent
            | RvError::KeyFunctionNotPermitted
            | RvError::KeySizeRange => ErrorKind::Unsupported,
            _ => ErrorKind::Backend,
        },
        CkError::NotSupported => ErrorKind::Unsupported,
        _ => ErrorKind::Backend,
    }
}

/// The one mapping from `cryptoki` errors to keystrata errors: the kind
/// from [`classify`], and a message naming the operation, the token (or
/// module path, for `target`) and the `CKR_…` code. An `Authentication`
/// error says nothing more.
fn ck_error(err: CkError, op: Op, target: &str) -> Error {
    let kind = classify(&err, op);
    if kind == ErrorKind::Authentication {
        return Error::authentication();
    }
    let detail = match &err {
        CkError::Pkcs11(rv, _) => ckr_name(rv),
        CkError::MissingSymbol(s) => format!("not a PKCS#11 module (no symbol {s})"),
        other => other.to_string(),
    };
    Error::new(kind, format!("{}: {detail}", op.describe(target))).with_source(err)
}

/// Session errors after which a fresh session may succeed.
fn is_stale_session(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::OperationActive,
            _
        )
    )
}

/// Errors after which the key should be looked up again.
fn is_stale_key(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)
    )
}

struct Inner {
    module: Arc<Module>,
    module_path: PathBuf,
    token_label: String,
    key_label: String,
    slot: Slot,
    pin: SecretString,
    key: Mutex<ObjectHandle>,
    idle: Mutex<Vec<Session>>,
    closed: AtomicBool,
}

/// A root whose key is a non-extractable AES-256 key in a PKCS#11 token or
/// HSM. Wraps data keys with `CKM_AES_GCM` through `C_Encrypt`; saves
/// keychains in the [`wrapped`](crate::root::wrapped) format.
///
/// Safe to share between threads: each call borrows a logged-in session
/// from a small pool. Clones share one handle: closing one closes all.
/// `Debug` prints the module, token and key labels, never the PIN.
///
/// ```no_run
/// use keystrata::{Keychain, KeyManager, Pkcs11Config, Pkcs11Pin, Pkcs11Root};
///
/// let mut config = Pkcs11Config::new(
///     "/usr/lib/softhsm/libsofthsm2.so",
///     "keystrata-prod",
///     Pkcs11Pin::Env("HSM_PIN".to_owned()),
///     "keystrata-root",
/// );
/// config.create_key = true;
/// let root = Pkcs11Root::open(&config)?;
///
/// // Keep a keychain at rest under the HSM key...
/// let kc = Keychain::generate()?;
/// let saved = kc.save(&root)?;
/// let loaded = Keychain::load(&saved, &root)?;
///
/// // ...or wrap data keys with it directly.
/// let env = root.wrap_key(&[7u8; 32], b"bucket/object")?;
/// assert_eq!(root.unwrap_key(&env, b"bucket/object")?.expose_secret(), &[7u8; 32]);
/// # Ok::<(), keystrata::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "pkcs11")))]
#[derive(Clone)]
pub struct Pkcs11Root(Arc<Inner>);

impl fmt::Debug for Pkcs11Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Root")
            .field("module", &self.0.module_path)
            .field("token_label", &self.0.token_label)
            .field("key_label", &self.0.key_label)
            .field("slot", &self.0.slot.id())
            .field("closed", &self.0.closed.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

/// The slot whose token has `label` (compared without the blank padding
/// PKCS#11 labels carry).
fn find_slot(module: &Module, module_path: &Path, label: &str) -> Result<Slot> {
    let target = module_path.display().to_string();
    let slots = module
        .ctx
        .get_slots_with_token()
        .map_err(|e| ck_error(e, Op::ListTokens, &target))?;
    let want = label.trim_end_matches([' ', '\0']);
    let mut found = Vec::new();
    for slot in slots {
        let info = match module.ctx.get_token_info(slot) {
            Ok(info) => info,
            // A token that went away while we looked is simply not it.
            Err(_) => continue,
        };
        if info.label().trim_end_matches([' ', '\0']) == want {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [] => Err(Error::unavailable(format!(
            "no token labelled '{label}' in {target}"
        ))),
        [slot] => Ok(*slot),
        _ => Err(Error::new(
            ErrorKind::Backend,
            format!(
                "{} tokens are labelled '{label}' in {target}; token labels must be unique",
                found.len()
            ),
        )),
    }
}

/// Logs the process in as the user on the session's token. Already logged
/// in (by another root of this process): fine if the PIN is the one that
/// logged in, refused otherwise.
fn login(
    module: &Module,
    slot: Slot,
    token: &str,
    session: &Session,
    pin: &SecretString,
) -> Result<()> {
    let digest = pin_digest(pin)?;
    match session.login(UserType::User, Some(pin)) {
        Ok(()) => {
            lock(&module.logins).insert(slot.id(), digest);
            Ok(())
        }
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
            match lock(&module.logins).get(&slot.id()) {
                Some(known) if !digests_equal(known, &digest) => Err(Error::new(
                    ErrorKind::Backend,
                    format!(
                        "PKCS#11 login to token '{token}' failed: this process is already \
                         logged in to the token with a different PIN"
                    ),
                )),
                _ => Ok(()),
            }
        }
        Err(e) => Err(ck_error(e, Op::Login, token)),
    }
}

fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn open_session(module: &Module, slot: Slot, token: &str, pin: &SecretString) -> Result<Session> {
    let session = module
        .ctx
        .open_ro_session(slot)
        .map_err(|e| ck_error(e, Op::OpenSession, token))?;
    login(module, slot, token, &session, pin)?;
    Ok(session)
}

/// The one AES secret key labelled `label`, if any.
fn find_key(session: &Session, token: &str, label: &str) -> Result<Option<ObjectHandle>> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let handles = session
        .find_objects(&template)
        .map_err(|e| ck_error(e, Op::FindKey, token))?;
    let handle = match handles.as_slice() {
        [] => return Ok(None),
        [h] => *h,
        _ => {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "{} secret keys are labelled '{label}' on token '{token}'; \
                     the key label must be unique",
                    handles.len()
                ),
            ))
        }
    };
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::ValueLen,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
            ],
        )
        .map_err(|e| ck_error(e, Op::FindKey, token))?;
    let (mut aes, mut len, mut enc, mut dec) = (false, 0u64, false, false);
    for a in attrs {
        match a {
            Attribute::KeyType(t) => aes = t == KeyType::AES,
            Attribute::ValueLen(n) => len = n.into(),
            Attribute::Encrypt(b) => enc = b,
            Attribute::Decrypt(b) => dec = b,
            _ => {}
        }
    }
    if !(aes && len == KEY_BYTES && enc && dec) {
        return Err(Error::unsupported(format!(
            "key '{label}' on token '{token}' must be an AES-256 key with CKA_ENCRYPT and \
             CKA_DECRYPT set"
        )));
    }
    Ok(Some(handle))
}

fn generate_key(module: &Module, slot: Slot, token: &str, label: &str) -> Result<ObjectHandle> {
    // Token objects need a read-write session; the login is per process.
    let session = module
        .ctx
        .open_rw_session(slot)
        .map_err(|e| ck_error(e, Op::OpenSession, token))?;
    let template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::ValueLen(KEY_BYTES.into()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(|e| ck_error(e, Op::GenerateKey, token))
}

impl Pkcs11Root {
    /// Opens the root: loads the module (once per process), finds the token
    /// by label, logs in as the user and finds the key by label, generating
    /// it when `config.create_key` is set and the token has none.
    ///
    /// Errors: a module that cannot be loaded, an unset PIN variable or an
    /// empty label: `InvalidInput`; no token with the label: `Unavailable`;
    /// a wrong PIN: `Backend` (the message names the token, never the PIN);
    /// no key with the label and `create_key` false: `UnknownKey`; two
    /// tokens or two keys with one label: `Backend`.
    ///
    /// ```no_run
    /// use keystrata::{Pkcs11Config, Pkcs11Pin, Pkcs11Root};
    ///
    /// let config = Pkcs11Config::new(
    ///     "/usr/lib/softhsm/libsofthsm2.so",
    ///     "keystrata-prod",
    ///     Pkcs11Pin::Env("HSM_PIN".to_owned()),
    ///     "keystrata-root",
    /// );
    /// let root = Pkcs11Root::open(&config)?;
    /// assert_eq!(root.key_label(), "keystrata-root");
    /// # Ok::<(), keystrata::Error>(())
    /// ```
    pub fn open(config: &Pkcs11Config) -> Result<Pkcs11Root> {
        if config.token_label.is_empty() {
            return Err(Error::invalid("the PKCS#11 token label is empty"));
        }
        if config.key_label.is_empty() {
            return Err(Error::invalid("the PKCS#11 key label is empty"));
        }
        if config.key_label.len() > usize::from(u16::MAX) {
            return Err(Error::invalid("the PKCS#11 key label is too long"));
        }
        let pin = config.pin.resolve()?;
        let module = load_module(&config.module)?;
        let token = config.token_label.as_str();
        let slot = find_slot(&module, &config.module, token)?;
        let session = open_session(&module, slot, token, &pin)?;
        let key = {
            let _guard = lock(&module.keygen);
            match find_key(&session, token, &config.key_label)? {
                Some(h) => h,
                None if config.create_key => {
                    generate_key(&module, slot, token, &config.key_label)?;
                    // Find it again: also proves the label is unique.
                    find_key(&session, token, &config.key_label)?.ok_or_else(|| {
                        Error::new(
                            ErrorKind::Backend,
                            format!(
                                "the key '{}' generated on token '{token}' cannot be found",
                                config.key_label
                            ),
                        )
                    })?
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::UnknownKey,
                        format!(
                            "no AES key labelled '{}' on token '{token}' (set create_key to \
                             generate one)",
                            config.key_label
                        ),
                    ))
                }
            }
        };
        Ok(Pkcs11Root(Arc::new(Inner {
            module,
            module_path: config.module.clone(),
            token_label: config.token_label.clone(),
            key_label: config.key_label.clone(),
            slot,
            pin,
            key: Mutex::new(key),
            idle: Mutex::new(vec![session]),
            closed: AtomicBool::new(false),
        })))
    }

    /// The label of the root key: the `key_id` of every envelope.
    ///
    /// ```no_run
    /// # use keystrata::{Pkcs11Config, Pkcs11Pin, Pkcs11Root};
    /// # let root = Pkcs11Root::open(&Pkcs11Config::new("m.so", "t", Pkcs11Pin::Env("P".into()), "k"))?;
    /// assert_eq!(root.key_label(), "k");
    /// # Ok::<(), keystrata::Error>(())
    /// ```
    pub fn key_label(&self) -> &str {
        &self.0.key_label
    }

    /// The label of the token the key lives in.
    ///
    /// ```no_run
    /// # use keystrata::{Pkcs11Config, Pkcs11Pin, Pkcs11Root};
    /// # let root = Pkcs11Root::open(&Pkcs11Config::new("m.so", "t", Pkcs11Pin::Env("P".into()), "k"))?;
    /// assert_eq!(root.token_label(), "t");
    /// # Ok::<(), keystrata::Error>(())
    /// ```
    pub fn token_label(&self) -> &str {
        &self.0.token_label
    }

    fn check_open(&self) -> Result<()> {
        if self.0.closed.load(Ordering::Acquire) {
            Err(Error::unavailable("this Pkcs11Root was closed"))
        } else {
            Ok(())
        }
    }

    /// Borrows an idle session, or opens (and logs in) a new one.
    fn lease(&self) -> Result<Lease<'_>> {
        let idle = lock(&self.0.idle).pop();
        let session = match idle {
            Some(s) => s,
            None => open_session(
                &self.0.module,
                self.0.slot,
                &self.0.token_label,
                &self.0.pin,
            )?,
        };
        Ok(Lease {
            inner: &self.0,
            session: Some(session),
        })
    }

    /// Runs `f` on a borrowed session with the key's handle. A dead session
    /// is replaced and a stale key handle looked up again, once.
    fn call<T>(
        &self,
        op: Op,
        f: impl Fn(&Session, ObjectHandle) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        let mut retried = false;
        loop {
            self.check_open()?;
            let mut lease = self.lease()?;
            let key = *lock(&self.0.key);
            let err = match f(lease.session()?, key) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let mapped_kind = classify(&err, op);
            if !retried && is_stale_key(&err) {
                retried = true;
                self.refresh_key(lease.session()?)?;
                continue;
            }
            if mapped_kind != ErrorKind::Authentication {
                // Not a clean failure of the operation itself: do not reuse
                // a session in an unknown state.
                lease.discard();
            }
            if !retried && is_stale_session(&err) {
                retried = true;
                continue;
            }
            return Err(ck_error(err, op, &self.0.token_label));
        }
    }

    /// Looks the key up again (its handle may change when the token is
    /// reinserted) and caches the new handle.
    fn refresh_key(&self, session: &Session) -> Result<()> {
        let handle =
            find_key(session, &self.0.token_label, &self.0.key_label)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::UnknownKey,
                    format!(
                        "no AES key labelled '{}' on token '{}' any more",
                        self.0.key_label, self.0.token_label
                    ),
                )
            })?;
        *lock(&self.0.key) = handle;
        Ok(())
    }
}

/// A session borrowed from a root's pool; given back when dropped, unless
/// discarded or the root was closed meanwhile.
struct Lease<'a> {
    inner: &'a Inner,
    session: Option<Session>,
}

impl Lease<'_> {
    fn session(&self) -> Result<&Session> {
        self.session
            .as_ref()
            .ok_or_else(|| Error::internal("PKCS#11 session lease used after discard"))
    }

    fn discard(&mut self) {
        self.session = None;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if self.inner.closed.load(Ordering::Acquire) {
                return;
            }
            let mut idle = lock(&self.inner.idle);
            if idle.len() < MAX_IDLE_SESSIONS {
                idle.push(s);
            }
        }
    }
}

impl KeyManager for Pkcs11Root {
    fn provider(&self) -> &str {
        PKCS11_PROVIDER
    }

    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        self.check_open()?;
        check_wrap_input(plaintext_key)?;
        let aad = device::aad(PKCS11_PROVIDER, &self.0.key_label, context)?;
        let mut iv = [0u8; NONCE_LEN];
        fill_random(&mut iv)?;
        let (iv, ct) = self.call(Op::Encrypt, |session, key| {
            // Some HSMs write the IV they used back into the parameters.
            let mut used = iv;
            let ct = {
                let params = GcmParams::new(&mut used, &aad, (TAG_LEN as u64 * 8).into())?;
                session.encrypt(&Mechanism::AesGcm(params), key, plaintext_key)?
            };
            Ok((used, ct))
        })?;
        if ct.len() != plaintext_key.len() + TAG_LEN {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "PKCS#11 AES-GCM encryption on token '{}' returned {} bytes for {}",
                    self.0.token_label,
                    ct.len(),
                    plaintext_key.len()
                ),
            ));
        }
        Ok(device::envelope(
            PKCS11_PROVIDER,
            &self.0.key_label,
            &[&iv, &ct],
        ))
    }

    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        self.check_open()?;
        let sealed = device::open(
            envelope,
            context,
            PKCS11_PROVIDER,
            &self.0.key_label,
            || {
                format!(
                    "this root holds '{}' on token '{}'",
                    self.0.key_label, self.0.token_label
                )
            },
        )?;
        let pt = self.call(Op::Decrypt, |session, key| {
            let mut iv = sealed.iv;
            let params = GcmParams::new(&mut iv, &sealed.aad, (TAG_LEN as u64 * 8).into())?;
            session
                .decrypt(&Mechanism::AesGcm(params), key, sealed.body)
                .map(Zeroizing::new)
        })?;
        Ok(SecretBytes::from_zeroizing(pt))
    }

    fn active_key_version(&self) -> Result<u32> {
        self.check_open()?;
        Ok(device::KEY_VERSION)
    }

    fn health_check(&self) -> Result<()> {
        self.check_open()?;
        let mut lease = self.lease()?;
        match self.refresh_key(lease.session()?) {
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                // Maybe only this pooled session died: try a fresh one.
                lease.discard();
                drop(lease);
                let lease = self.lease()?;
                self.refresh_key(lease.session()?)
            }
            other => other,
        }
    }

    fn close(&self) -> Result<()> {
        self.0.closed.store(true, Ordering::Release);
        // Closing the sessions logs this root out; the token stays logged
        // in while other roots of the process keep sessions open.
        let sessions = std::mem::take(&mut *lock(&self.0.idle));
        drop(sessions);
        Ok(())
    }
}

impl Root for Pkcs11Root {
    fn provider(&self) -> &str {
        PKCS11_PROVIDER
    }

    fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
        self.check_open()?;
        wrapped::protect(self, keychain_json)
    }

    fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.check_open()?;
        wrapped::unprotect(self, stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckr_names() {
        assert_eq!(ckr_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            ckr_name(&RvError::EncryptedDataLenRange),
            "CKR_ENCRYPTED_DATA_LEN_RANGE"
        );
        assert_eq!(
            ckr_name(&RvError::CryptokiAlreadyInitialized),
            "CKR_CRYPTOKI_ALREADY_INITIALIZED"
        );
    }

    #[test]
    fn error_kinds() {
        use cryptoki::context::Function;
        let kind = |rv, op| ck_error(CkError::Pkcs11(rv, Function::Decrypt), op, "T").kind();
        assert_eq!(
            kind(RvError::EncryptedDataInvalid, Op::Decrypt),
            ErrorKind::Authentication
        );
        assert_eq!(
            kind(RvError::EncryptedDataLenRange, Op::Decrypt),
            ErrorKind::Authentication
        );
        assert_eq!(kind(RvError::PinIncorrect, Op::Login), ErrorKind::Backend);
        assert_eq!(
            kind(RvError::DeviceRemoved, Op::Encrypt),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(RvError::MechanismInvalid, Op::Encrypt),
            ErrorKind::Unsupported
        );
        assert_eq!(kind(RvError::DataLenRange, Op::Encrypt), ErrorKind::Backend);
        let e = ck_error(
            CkError::Pkcs11(RvError::PinIncorrect, Function::Login),
            Op::Login,
            "T",
        );
        assert_eq!(
            e.message(),
            "PKCS#11 login to token 'T' failed: CKR_PIN_INCORRECT"
        );
        let e = ck_error(
            CkError::Pkcs11(RvError::EncryptedDataInvalid, Function::Decrypt),
            Op::Decrypt,
            "T",
        );
        assert_eq!(e.message(), crate::error::AUTH_MESSAGE);
    }

    #[test]
    fn pin_debug_is_redacted() {
        let pin = Pkcs11Pin::Value(SecretString::from("123456".to_owned()));
        assert!(!format!("{pin:?}").contains("123456"));
        let config = Pkcs11Config::new("m.so", "t", pin, "k");
        assert!(!format!("{config:?}").contains("123456"));
        assert!(format!("{:?}", Pkcs11Pin::Env("HSM_PIN".into())).contains("HSM_PIN"));
    }

    #[test]
    fn unloadable_module_is_invalid_input() {
        let config = Pkcs11Config::new(
            "/nonexistent/libnothing.so",
            "t",
            Pkcs11Pin::Value(SecretString::from("1234".to_owned())),
            "k",
        );
        let err = Pkcs11Root::open(&config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(!err.message().contains("1234"));
    }
}
