//! Roots of the caller's own: a KMS client written in C, Go or Python,
//! plugged in through a binding, checked here so every language gets the
//! same rules.
//!
//! In Rust, a key manager of your own becomes a root with
//! `impl Root for MyKms {}` (see [`Root`]). The bindings cannot write Rust
//! impls, so each one translates its language's form (a C callback table,
//! a Go interface, a Python object with the `KeyManager` protocol's
//! methods) into a [`KeyManager`] and hands it to [`CustomRoot::new`].
//! `CustomRoot` then holds the rules, once for all languages:
//!
//! - the provider name is 1 to [`MAX_CUSTOM_PROVIDER_LEN`] characters of
//!   `[a-z0-9._-]`, and not a name keystrata uses itself;
//! - the envelopes it returns carry that provider (the binding need not
//!   set it), a key ID of at most [`MAX_CUSTOM_KEY_ID_LEN`] bytes, a
//!   version ≥ 1 and a ciphertext of 1 to [`MAX_CUSTOM_CIPHERTEXT_LEN`]
//!   bytes; it unwraps only envelopes of its own provider, and what it
//!   unwraps is 1 to [`MAX_WRAPPED_KEY_LEN`] bytes;
//! - a backend that breaks these rules gets a `Backend` error naming the
//!   rule, never a panic; a backend's own error keeps its kind, and its
//!   message is cut to [`MAX_CUSTOM_MESSAGE_LEN`] characters;
//! - after [`close`](KeyManager::close) every call fails with
//!   `Unavailable` without reaching the backend, and the backend's own
//!   close runs once.
//!
//! Keychains saved under a custom root are in the [`wrapped`] form
//! (docs/FORMAT.md §7.1): one `wrap_key` per save, one `unwrap_key` per load.
//!
//! [`wrapped`]: super::wrapped
//! [`Root`]: super::Root

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{truncate_for_message, Error, ErrorKind, Result};
use crate::key_manager::{check_provider, check_wrap_input, KeyManager, MAX_WRAPPED_KEY_LEN};
use crate::secret::SecretBytes;
use crate::wrapped_key::Envelope;

use super::Root;

/// The longest provider name a custom root may have, in characters.
pub const MAX_CUSTOM_PROVIDER_LEN: usize = 64;
/// The longest key ID a custom root's envelope may carry, in bytes.
pub const MAX_CUSTOM_KEY_ID_LEN: usize = 256;
/// The longest wrapped key a custom root may return, in bytes.
pub const MAX_CUSTOM_CIPHERTEXT_LEN: usize = 65536;
/// How much of a backend's error message is kept, in characters.
pub const MAX_CUSTOM_MESSAGE_LEN: usize = 256;

/// Provider names keystrata's own key managers use; a custom root cannot
/// take one (its envelopes would look like theirs).
const RESERVED_PROVIDERS: &[&str] = &[
    "keystrata",
    "age",
    "age-scrypt",
    "pkcs11",
    "kmip",
    "aws-kms",
];

/// A [`KeyManager`] of the caller's own, checked, and usable as a
/// [`Root`]. See the [module docs](crate::root::custom) for the rules.
///
/// ```
/// use keystrata::root::CustomRoot;
/// use keystrata::{Envelope, KeyManager, Keychain, SecretBytes};
///
/// struct MyKms(Keychain);
/// impl KeyManager for MyKms {
///     fn provider(&self) -> &str { "my-kms" }
///     fn wrap_key(&self, key: &[u8], ctx: &[u8]) -> keystrata::Result<Envelope> {
///         self.0.wrap_key(key, ctx) // CustomRoot sets the provider
///     }
///     fn unwrap_key(&self, env: &Envelope, ctx: &[u8]) -> keystrata::Result<SecretBytes> {
///         let mut env = env.clone();
///         env.provider = "keystrata".into();
///         self.0.unwrap_key(&env, ctx)
///     }
///     fn active_key_version(&self) -> keystrata::Result<u32> { self.0.active_key_version() }
///     fn health_check(&self) -> keystrata::Result<()> { Ok(()) }
///     fn close(&self) -> keystrata::Result<()> { Ok(()) }
/// }
///
/// let root = CustomRoot::new(MyKms(Keychain::generate()?))?;
/// let kc = Keychain::generate()?;
/// let saved = kc.save(&root)?;
/// assert_eq!(Keychain::load(&saved, &root)?.keys()?, kc.keys()?);
/// # Ok::<(), keystrata::Error>(())
/// ```
pub struct CustomRoot<K> {
    inner: K,
    provider: String,
    closed: AtomicBool,
}

impl<K: KeyManager> CustomRoot<K> {
    /// Checks `inner`'s provider name and wraps it. `InvalidInput` for a
    /// name that is empty, too long, has characters outside `[a-z0-9._-]`,
    /// or is one keystrata uses (`keystrata`, `age`, `age-scrypt`,
    /// `pkcs11`, `kmip`, `aws-kms`).
    pub fn new(inner: K) -> Result<Self> {
        let provider = inner.provider().to_owned();
        check_provider_name(&provider)?;
        Ok(CustomRoot {
            inner,
            provider,
            closed: AtomicBool::new(false),
        })
    }

    /// The backend this root calls.
    pub fn inner(&self) -> &K {
        &self.inner
    }

    fn open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::unavailable(format!(
                "custom root {:?} is closed",
                self.provider
            )));
        }
        Ok(())
    }

    /// The backend's error, kind kept, message cut and prefixed.
    fn backend_error(&self, what: &str, e: Error) -> Error {
        Error::new(
            e.kind(),
            format!(
                "custom root {:?}: {what}: {}",
                self.provider,
                truncate_for_message(e.message(), MAX_CUSTOM_MESSAGE_LEN)
            ),
        )
    }

    fn broken(&self, rule: String) -> Error {
        Error::new(
            ErrorKind::Backend,
            format!("custom root {:?}: {rule}", self.provider),
        )
    }
}

/// Checks a custom root's provider name (see [`CustomRoot::new`]).
pub fn check_provider_name(provider: &str) -> Result<()> {
    let ok_chars = provider
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if provider.is_empty() || provider.chars().count() > MAX_CUSTOM_PROVIDER_LEN || !ok_chars {
        return Err(Error::invalid(format!(
            "a custom root's provider name must be 1 to {MAX_CUSTOM_PROVIDER_LEN} characters of \
             [a-z0-9._-], got {:?}",
            truncate_for_message(provider, MAX_CUSTOM_PROVIDER_LEN)
        )));
    }
    if RESERVED_PROVIDERS.contains(&provider) {
        return Err(Error::invalid(format!(
            "the provider name {provider:?} is keystrata's own; pick another for a custom root"
        )));
    }
    Ok(())
}

impl<K: KeyManager> KeyManager for CustomRoot<K> {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        self.open()?;
        check_wrap_input(plaintext_key)?;
        let mut env = self
            .inner
            .wrap_key(plaintext_key, context)
            .map_err(|e| self.backend_error("wrap_key", e))?;
        if env.ciphertext.is_empty() || env.ciphertext.len() > MAX_CUSTOM_CIPHERTEXT_LEN {
            return Err(self.broken(format!(
                "wrap_key returned a wrapped key of {} bytes (1 to {MAX_CUSTOM_CIPHERTEXT_LEN} allowed)",
                env.ciphertext.len()
            )));
        }
        if env.key_id.len() > MAX_CUSTOM_KEY_ID_LEN {
            return Err(self.broken(format!(
                "wrap_key returned a key ID of {} bytes (at most {MAX_CUSTOM_KEY_ID_LEN})",
                env.key_id.len()
            )));
        }
        if env.key_version == 0 {
            return Err(self.broken("wrap_key returned key version 0 (versions start at 1)".into()));
        }
        env.provider.clone_from(&self.provider);
        Ok(env)
    }

    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        self.open()?;
        check_provider(envelope, &self.provider)?;
        let key = self
            .inner
            .unwrap_key(envelope, context)
            .map_err(|e| self.backend_error("unwrap_key", e))?;
        let n = key.expose_secret().len();
        if n == 0 || n > MAX_WRAPPED_KEY_LEN {
            return Err(self.broken(format!(
                "unwrap_key returned a key of {n} bytes (1 to {MAX_WRAPPED_KEY_LEN} allowed)"
            )));
        }
        Ok(key)
    }

    fn active_key_version(&self) -> Result<u32> {
        self.open()?;
        match self.inner.active_key_version() {
            Ok(0) => Err(self.broken("active_key_version returned 0 (versions start at 1)".into())),
            Ok(v) => Ok(v),
            Err(e) => Err(self.backend_error("active_key_version", e)),
        }
    }

    fn health_check(&self) -> Result<()> {
        self.open()?;
        self.inner
            .health_check()
            .map_err(|e| self.backend_error("health_check", e))
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner
            .close()
            .map_err(|e| self.backend_error("close", e))
    }
}

/// Keychains saved under a custom root use the wrapped form (the defaults).
impl<K: KeyManager> Root for CustomRoot<K> {}

impl<K> std::fmt::Debug for CustomRoot<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomRoot")
            .field("provider", &self.provider)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::Keychain;

    /// A backend whose answers the test sets: a keychain underneath, with
    /// knobs to break each rule.
    struct Backend {
        kc: Keychain,
        provider: &'static str,
        ciphertext_len: Option<usize>,
        key_id_len: Option<usize>,
        version: Option<u32>,
        unwrap_len: Option<usize>,
        fail: Option<ErrorKind>,
        closes: AtomicUsize,
    }

    impl Backend {
        fn new() -> Backend {
            Backend {
                kc: Keychain::generate().unwrap(),
                provider: "my-kms",
                ciphertext_len: None,
                key_id_len: None,
                version: None,
                unwrap_len: None,
                fail: None,
                closes: AtomicUsize::new(0),
            }
        }
    }

    impl KeyManager for Backend {
        fn provider(&self) -> &str {
            self.provider
        }
        fn wrap_key(&self, key: &[u8], ctx: &[u8]) -> Result<Envelope> {
            if let Some(kind) = self.fail {
                return Err(Error::new(kind, "x".repeat(10_000)));
            }
            let mut env = self.kc.wrap_key(key, ctx)?;
            if let Some(n) = self.ciphertext_len {
                env.ciphertext = vec![7; n];
            }
            if let Some(n) = self.key_id_len {
                env.key_id = "k".repeat(n);
            }
            if let Some(v) = self.version {
                env.key_version = v;
            }
            Ok(env)
        }
        fn unwrap_key(&self, env: &Envelope, ctx: &[u8]) -> Result<SecretBytes> {
            if let Some(n) = self.unwrap_len {
                return Ok(SecretBytes::from(vec![1; n]));
            }
            let mut env = env.clone();
            env.provider = "keystrata".into();
            self.kc.unwrap_key(&env, ctx)
        }
        fn active_key_version(&self) -> Result<u32> {
            Ok(self.version.unwrap_or(1))
        }
        fn health_check(&self) -> Result<()> {
            match self.fail {
                Some(kind) => Err(Error::new(kind, "down")),
                None => Ok(()),
            }
        }
        fn close(&self) -> Result<()> {
            self.closes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn saves_and_loads_a_keychain_in_the_wrapped_form() {
        let root = CustomRoot::new(Backend::new()).unwrap();
        let kc = Keychain::generate().unwrap();
        let saved = kc.save(&root).unwrap();
        assert!(crate::root::wrapped::is_wrapped(&saved));
        assert_eq!(
            Keychain::load(&saved, &root).unwrap().keys().unwrap(),
            kc.keys().unwrap()
        );
        let env = root.wrap_key(&[9; 32], b"ctx").unwrap();
        assert_eq!(env.provider, "my-kms");
        assert_eq!(
            root.unwrap_key(&env, b"ctx").unwrap().expose_secret(),
            &[9; 32]
        );
        let kind = root.unwrap_key(&env, b"other").unwrap_err().kind();
        assert_eq!(kind, ErrorKind::Authentication);
    }

    #[test]
    fn provider_names_are_checked() {
        for bad in [
            "",
            "My-KMS",
            "a b",
            "ké",
            "keystrata",
            "kmip",
            "age",
            &"a".repeat(65),
        ] {
            let mut b = Backend::new();
            b.provider = Box::leak(bad.to_owned().into_boxed_str());
            let e = CustomRoot::new(b).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(e.message().len() < 300);
        }
        let mut b = Backend::new();
        b.provider = "aws.kms-2_x";
        CustomRoot::new(b).unwrap();
    }

    #[test]
    fn a_backend_breaking_a_rule_gets_backend_errors() {
        type Breaks = Box<dyn Fn(&mut Backend)>;
        let cases: Vec<(&str, Breaks)> = vec![
            ("empty ciphertext", Box::new(|b| b.ciphertext_len = Some(0))),
            (
                "huge ciphertext",
                Box::new(|b| b.ciphertext_len = Some(MAX_CUSTOM_CIPHERTEXT_LEN + 1)),
            ),
            (
                "long key id",
                Box::new(|b| b.key_id_len = Some(MAX_CUSTOM_KEY_ID_LEN + 1)),
            ),
            ("version 0", Box::new(|b| b.version = Some(0))),
        ];
        for (what, set) in cases {
            let mut b = Backend::new();
            set(&mut b);
            let root = CustomRoot::new(b).unwrap();
            let e = root.wrap_key(&[1; 32], b"").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Backend, "{what}: {e}");
        }
        let mut b = Backend::new();
        b.version = Some(0);
        assert_eq!(
            CustomRoot::new(b)
                .unwrap()
                .active_key_version()
                .unwrap_err()
                .kind(),
            ErrorKind::Backend
        );
        // Limits themselves are allowed.
        let mut b = Backend::new();
        b.ciphertext_len = Some(MAX_CUSTOM_CIPHERTEXT_LEN);
        b.key_id_len = Some(MAX_CUSTOM_KEY_ID_LEN);
        CustomRoot::new(b).unwrap().wrap_key(&[1; 32], b"").unwrap();
        for n in [0, MAX_WRAPPED_KEY_LEN + 1] {
            let mut b = Backend::new();
            b.unwrap_len = Some(n);
            let root = CustomRoot::new(b).unwrap();
            let env = root.wrap_key(&[1; 32], b"").unwrap();
            assert_eq!(
                root.unwrap_key(&env, b"").unwrap_err().kind(),
                ErrorKind::Backend
            );
        }
    }

    #[test]
    fn backend_errors_keep_their_kind_with_a_bounded_message() {
        let mut b = Backend::new();
        b.fail = Some(ErrorKind::Unavailable);
        let root = CustomRoot::new(b).unwrap();
        let e = root.wrap_key(&[1; 32], b"").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(
            e.message().len() < MAX_CUSTOM_MESSAGE_LEN + 100,
            "{}",
            e.message().len()
        );
        assert!(e
            .message()
            .starts_with("custom root \"my-kms\": wrap_key: "));
        assert_eq!(
            root.health_check().unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn foreign_envelopes_and_bad_inputs_never_reach_the_backend() {
        let mut b = Backend::new();
        b.unwrap_len = Some(32);
        let root = CustomRoot::new(b).unwrap();
        let mut env = root.wrap_key(&[1; 32], b"").unwrap();
        env.provider = "keystrata".into();
        assert_eq!(
            root.unwrap_key(&env, b"").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            root.wrap_key(&[], b"").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let big = vec![0; MAX_WRAPPED_KEY_LEN + 1];
        assert_eq!(
            root.wrap_key(&big, b"").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn close_is_once_and_then_unavailable() {
        let root = CustomRoot::new(Backend::new()).unwrap();
        let env = root.wrap_key(&[1; 32], b"").unwrap();
        root.close().unwrap();
        root.close().unwrap();
        assert_eq!(root.inner().closes.load(Ordering::SeqCst), 1);
        for kind in [
            root.wrap_key(&[1; 32], b"").unwrap_err().kind(),
            root.unwrap_key(&env, b"").unwrap_err().kind(),
            root.active_key_version().unwrap_err().kind(),
            root.health_check().unwrap_err().kind(),
        ] {
            assert_eq!(kind, ErrorKind::Unavailable);
        }
    }
}
