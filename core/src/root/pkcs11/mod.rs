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
//!
//! One concern per file: `config.rs` (what to open: module, token, PIN,
//! key), `token.rs` (loading the module, finding the token, logging in,
//! finding or generating the key), `pool.rs` (the pool of logged-in
//! sessions and the retry around each call), `errors.rs` (PKCS#11 return
//! values to keystrata errors), `key_manager.rs` (the `KeyManager` and
//! `Root` implementations).

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use super::SecretString;
use crate::error::{Error, ErrorKind, Result};
use crate::sync::lock;

mod config;
mod errors;
mod key_manager;
mod pool;
#[cfg(feature = "aws-lc")]
mod signer;
mod token;

pub use self::config::{Pkcs11Config, Pkcs11Pin};
#[cfg(feature = "aws-lc")]
pub use self::signer::Pkcs11Signer;
use self::token::{find_key, find_slot, generate_key, load_module, open_session, Module};

/// Provider name of [`Pkcs11Root`], written into its envelopes.
#[cfg_attr(docsrs, doc(cfg(feature = "pkcs11")))]
pub const PKCS11_PROVIDER: &str = "pkcs11";

/// A key on a token and the pool of logged-in sessions that reach it:
/// what a [`Pkcs11Root`] (an AES key) and a `Pkcs11Signer` (a private key)
/// share.
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
    /// Finds the key by label again (its handle may change when the token
    /// is reinserted).
    find: FindKey,
    /// "AES key" or "private key", for messages.
    key_kind: &'static str,
    /// "Pkcs11Root" or "Pkcs11Signer", for messages.
    owner: &'static str,
}

/// Looks a key up by label on a session: `(session, token, label)`.
type FindKey = fn(&Session, &str, &str) -> Result<Option<ObjectHandle>>;

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
            find: find_key,
            key_kind: "AES key",
            owner: "Pkcs11Root",
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
        self.0.check_open()
    }

    fn call<T>(
        &self,
        op: errors::Op,
        f: impl Fn(&Session, ObjectHandle) -> std::result::Result<T, cryptoki::error::Error>,
    ) -> Result<T> {
        self.0.call(op, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
