//! The token side: loading and initializing a module (once per process),
//! finding the token by label, logging in, and finding or generating the
//! root key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use sha2::{Digest, Sha256};

use super::errors::{ck_error, Op};
use crate::aead::fill_random;
use crate::error::{Error, ErrorKind, Result};
use crate::root::{ExposeSecret, SecretString};
use crate::sync::lock;

/// The length of the root key generated on the token, in bytes (AES-256).
pub(super) const KEY_BYTES: u64 = 32;

/// One loaded and initialized PKCS#11 module, shared by every root of the
/// process that names it.
pub(super) struct Module {
    pub(super) ctx: Pkcs11,
    /// Per slot: a salted digest of the PIN this process logged in with, so
    /// that a wrong PIN is refused even while the token is already logged
    /// in (PKCS#11 login state belongs to the whole process).
    pub(super) logins: Mutex<HashMap<u64, [u8; 32]>>,
    /// Serialises finding-or-creating keys, so two roots opened at once
    /// never create two keys with one label.
    pub(super) keygen: Mutex<()>,
}

/// The process-wide registry of loaded modules: `C_Initialize` may be
/// called once per module and process, so every root of one module shares
/// one context. Modules are never unloaded or finalized.
pub(super) fn load_module(path: &Path) -> Result<Arc<Module>> {
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
pub(super) fn pin_digest(pin: &SecretString) -> Result<[u8; 32]> {
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

/// The slot whose token has `label` (compared without the blank padding
/// PKCS#11 labels carry).
pub(super) fn find_slot(module: &Module, module_path: &Path, label: &str) -> Result<Slot> {
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
pub(super) fn login(
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

pub(super) fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) fn open_session(
    module: &Module,
    slot: Slot,
    token: &str,
    pin: &SecretString,
) -> Result<Session> {
    let session = module
        .ctx
        .open_ro_session(slot)
        .map_err(|e| ck_error(e, Op::OpenSession, token))?;
    login(module, slot, token, &session, pin)?;
    Ok(session)
}

/// The one AES secret key labelled `label`, if any.
pub(super) fn find_key(
    session: &Session,
    token: &str,
    label: &str,
) -> Result<Option<ObjectHandle>> {
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

pub(super) fn generate_key(
    module: &Module,
    slot: Slot,
    token: &str,
    label: &str,
) -> Result<ObjectHandle> {
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
