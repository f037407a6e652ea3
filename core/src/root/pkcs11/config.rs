//! What a [`Pkcs11Root`](super::Pkcs11Root) opens: the module, the token,
//! where the PIN comes from, and the key.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::root::{ExposeSecret, SecretString};

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
    pub(super) fn resolve(&self) -> Result<SecretString> {
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

/// How to reach the root key of a [`Pkcs11Root`](super::Pkcs11Root): the module, the token (by
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_debug_is_redacted() {
        let pin = Pkcs11Pin::Value(SecretString::from("123456".to_owned()));
        assert!(!format!("{pin:?}").contains("123456"));
        let config = Pkcs11Config::new("m.so", "t", pin, "k");
        assert!(!format!("{config:?}").contains("123456"));
        assert!(format!("{:?}", Pkcs11Pin::Env("HSM_PIN".into())).contains("HSM_PIN"));
    }
}
