//! Why a command failed, and the exit code and message it gets.
//!
//! The exit codes (docs/CLI.md, [`EXIT_TABLE`]): 0 success, 2 a usage
//! error, 3 a `rewrap --check` that found a ciphertext under an old key,
//! and 10 + the kind's stable number for every keystrata error (11
//! InvalidInput … 22 Internal), so a script can tell a wrong root
//! (Authentication, 12) from a missing file (Io, 21) without parsing text.

use keystrata::{Error, ErrorKind};

/// Exit code of a usage error (clap's own).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `rewrap --check` when a ciphertext is not under the
/// current primary.
pub const EXIT_NOT_CURRENT: u8 = 3;
/// What is added to a keystrata error kind's number.
pub const KIND_BASE: u8 = 10;

/// The exit codes other than a keystrata error's, for `--help`, the man
/// page and docs/CLI.md: code, summary, details.
pub const EXIT_TABLE: [(&str, &str, &str); 3] = [
    ("0", "success", ""),
    (
        "2",
        "usage error",
        ": an unknown flag or command, a missing argument or option, output refused \
         on a terminal, an unconfirmed destroy",
    ),
    (
        "3",
        "rewrap --check: a ciphertext is not under the current primary",
        "",
    ),
];

/// The exit codes of keystrata errors: `(code, kind name)`, 11 to 22.
pub fn kind_codes() -> Vec<(u8, &'static str)> {
    ErrorKind::ALL
        .iter()
        .map(|k| (exit_code_of(*k), k.name()))
        .collect()
}

/// The table as `--help` prints it (lines under 80 columns).
pub fn exit_codes_help() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, short, _) in EXIT_TABLE {
        s.push_str(&format!("  {code:<4} {short}\n"));
    }
    s.push_str("  11+  a keystrata error: 10 + its kind's number");
    for row in kind_codes().chunks(4) {
        s.push_str("\n      ");
        let cells: Vec<String> = row.iter().map(|(c, n)| format!("{c} {n}")).collect();
        s.push_str(&cells.join(", "));
    }
    s
}

/// The table as the man page's EXIT STATUS section.
pub fn exit_codes_roff() -> String {
    let mut s = String::from(".SH \"EXIT STATUS\"\n");
    for (code, short, detail) in EXIT_TABLE {
        s.push_str(&format!(".TP\n{code}\n{short}{detail}\n"));
    }
    for (code, name) in kind_codes() {
        s.push_str(&format!(".TP\n{code}\na keystrata error of kind {name}\n"));
    }
    s
}

/// A failed command.
#[derive(Debug)]
pub enum Failure {
    /// An error from the library, or one of its kinds (a missing file is
    /// `Io`, a bad value `InvalidInput`).
    Keystrata(Error),
    /// The command was called wrongly (exit 2).
    Usage(String),
}

impl Failure {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Keystrata(e) => exit_code_of(e.kind()),
        }
    }

    /// The kind's name: a keystrata `ErrorKind` name, or `Usage`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Failure::Usage(_) => "Usage",
            Failure::Keystrata(e) => e.kind().name(),
        }
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Failure::Usage(m) => m,
            Failure::Keystrata(e) => e.message(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Keystrata(e)
    }
}

/// The exit code of a keystrata error kind: 10 + its stable number.
pub fn exit_code_of(kind: ErrorKind) -> u8 {
    // Kind numbers are small and never reused (ErrorKind::code); a number
    // that would not fit is reported as Internal's.
    u8::try_from(kind.code())
        .ok()
        .and_then(|c| c.checked_add(KIND_BASE))
        .unwrap_or(KIND_BASE + 12)
}

/// A keystrata error of `kind`.
pub fn err(kind: ErrorKind, message: impl Into<String>) -> Failure {
    Failure::Keystrata(Error::new(kind, message))
}

/// An `InvalidInput` error.
pub fn invalid(message: impl Into<String>) -> Failure {
    err(ErrorKind::InvalidInput, message)
}

/// An `Io` error about `what` (a file name, "stdin").
pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> Failure {
    err(ErrorKind::Io, format!("{what}: {e}"))
}

/// A usage error.
pub fn usage(message: impl Into<String>) -> Failure {
    Failure::Usage(message.into())
}

/// The result of a command: the exit code on success (0, or 3 for a check
/// that found old ciphertexts).
pub type Outcome = Result<u8, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code() {
        let codes: Vec<u8> = ErrorKind::ALL.iter().map(|k| exit_code_of(*k)).collect();
        assert_eq!(codes, (11..=22).collect::<Vec<u8>>());
        assert_eq!(exit_code_of(ErrorKind::Authentication), 12);
        assert_eq!(exit_code_of(ErrorKind::Io), 21);
    }
}
