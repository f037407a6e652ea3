//! The one error type of keystrata, and its stable kinds.

use std::fmt;

/// What went wrong, in one of twelve stable categories.
///
/// The same kinds exist, with the same numbers, in every language keystrata
/// is bound to: the C `ks_status` enum (`KS_ERR_<KIND>`), the Go sentinel
/// errors and the Python exception classes. A number is never reused: a
/// retired kind stays below as a comment with its number. [`code`](ErrorKind::code),
/// [`from_code`](ErrorKind::from_code) and [`name`](ErrorKind::name) are
/// the one table every binding reads. Numbers from 100 up are left to the
/// bindings' own statuses (C: `KS_ERR_NULL_ARGUMENT = 100`,
/// `KS_ERR_BUFFER_TOO_SMALL = 101`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorKind {
    /// An argument is malformed: wrong length, out of range, empty where it
    /// must not be.
    InvalidInput = 1,
    /// A ciphertext or envelope failed authentication. Deliberately says
    /// nothing more: not which check failed, nor why.
    Authentication = 2,
    /// No key in the keychain has the key ID the input names.
    UnknownKey = 3,
    /// The key exists but is disabled.
    KeyDisabled = 4,
    /// The key exists but its material was destroyed.
    KeyDestroyed = 5,
    /// The operation is refused by the keychain's rules or rotation policy
    /// (for example disabling the primary, or a usage limit reached).
    Policy = 6,
    /// The input is well-formed but uses something keystrata does not
    /// support (a Tink key type, a format version).
    Unsupported = 7,
    /// A root backend (HSM, KMIP server, age) reported a failure.
    Backend = 8,
    /// The backend or handle cannot serve calls: closed, or unreachable.
    Unavailable = 9,
    /// Bytes that should be in a keystrata or Tink format are not.
    Format = 10,
    /// Reading or writing a file failed.
    Io = 11,
    /// A bug in keystrata. Please report it.
    Internal = 12,
    // Retired numbers: none yet. Next free number: 13.
}

impl ErrorKind {
    /// Every kind, in numeric order.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::InvalidInput,
        ErrorKind::Authentication,
        ErrorKind::UnknownKey,
        ErrorKind::KeyDisabled,
        ErrorKind::KeyDestroyed,
        ErrorKind::Policy,
        ErrorKind::Unsupported,
        ErrorKind::Backend,
        ErrorKind::Unavailable,
        ErrorKind::Format,
        ErrorKind::Io,
        ErrorKind::Internal,
    ];

    /// The stable number of this kind (1..=12), shared by every binding.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The kind with the given stable number, if there is one.
    pub const fn from_code(code: u32) -> Option<ErrorKind> {
        Some(match code {
            1 => ErrorKind::InvalidInput,
            2 => ErrorKind::Authentication,
            3 => ErrorKind::UnknownKey,
            4 => ErrorKind::KeyDisabled,
            5 => ErrorKind::KeyDestroyed,
            6 => ErrorKind::Policy,
            7 => ErrorKind::Unsupported,
            8 => ErrorKind::Backend,
            9 => ErrorKind::Unavailable,
            10 => ErrorKind::Format,
            11 => ErrorKind::Io,
            12 => ErrorKind::Internal,
            _ => return None,
        })
    }

    /// The kind named `name` (as [`name`](ErrorKind::name) spells it).
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The kind's name in CamelCase, as used in every binding
    /// (`"Authentication"`, `"UnknownKey"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::Authentication => "Authentication",
            ErrorKind::UnknownKey => "UnknownKey",
            ErrorKind::KeyDisabled => "KeyDisabled",
            ErrorKind::KeyDestroyed => "KeyDestroyed",
            ErrorKind::Policy => "Policy",
            ErrorKind::Unsupported => "Unsupported",
            ErrorKind::Backend => "Backend",
            ErrorKind::Unavailable => "Unavailable",
            ErrorKind::Format => "Format",
            ErrorKind::Io => "Io",
            ErrorKind::Internal => "Internal",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize - 1
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A keystrata error: an [`ErrorKind`] and a message meant for humans.
///
/// Messages never contain key material, plaintext or passphrases. An
/// [`ErrorKind::Authentication`] error always carries the same message.
#[derive(thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// The message of every authentication failure of a ciphertext.
pub(crate) const AUTH_MESSAGE: &str = "ciphertext could not be authenticated";

/// The message of every signature that does not verify.
#[cfg(feature = "aws-lc")]
pub(crate) const BAD_SIGNATURE_MESSAGE: &str = "signature did not verify";

impl Error {
    /// A new error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// This error with an underlying cause attached (reachable through
    /// [`std::error::Error::source`]).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn authentication() -> Error {
        Error::new(ErrorKind::Authentication, AUTH_MESSAGE)
    }

    /// A signature that does not verify: `Authentication`, with one fixed
    /// message that says nothing more.
    #[cfg(feature = "aws-lc")]
    pub(crate) fn bad_signature() -> Error {
        Error::new(ErrorKind::Authentication, BAD_SIGNATURE_MESSAGE)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn format(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Format, message)
    }

    pub(crate) fn policy(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Policy, message)
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unsupported, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unavailable, message)
    }

    pub(crate) fn io(context: impl fmt::Display, err: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{context}: {err}")).with_source(err)
    }
}

/// `text` cut to at most `max` characters (with `…` when cut), for echoing
/// caller input in a message without echoing unbounded input.
pub(crate) fn truncate_for_message(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// `Result<T, keystrata::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_dense() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.code() as usize, i + 1);
            assert_eq!(ErrorKind::from_code(k.code()), Some(*k));
            assert_eq!(k.index(), i);
        }
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::from_code(13), None);
        assert_eq!(ErrorKind::Authentication.code(), 2);
        assert_eq!(ErrorKind::Internal.code(), 12);
    }

    #[test]
    fn display_has_kind_and_message() {
        let e = Error::new(ErrorKind::UnknownKey, "no key 7");
        assert_eq!(e.to_string(), "UnknownKey: no key 7");
        assert_eq!(Error::authentication().message(), AUTH_MESSAGE);
    }
}
