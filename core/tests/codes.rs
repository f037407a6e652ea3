//! Pins the stable numbers and names of the core enums every binding reads
//! (`code`, `from_code`, `name`, `from_name`). A failure here means a
//! number or name changed: that breaks every binding and every stored
//! event consumer. Add new variants at the end with a new number; never
//! reuse one.

use keystrata::{ErrorKind, EventKind, KeyStatus, Purpose};

/// Checks `table` is exactly `all`, in order, and that `code`/`from_code`
/// and `name`/`from_name` agree with it; unknown numbers and names map to
/// `None`, never to a variant.
fn check<T: Copy + PartialEq + std::fmt::Debug>(
    all: &[T],
    table: &[(T, u32, &str)],
    code: fn(T) -> u32,
    from_code: fn(u32) -> Option<T>,
    name: fn(T) -> &'static str,
    from_name: fn(&str) -> Option<T>,
) {
    let listed: Vec<T> = table.iter().map(|(v, _, _)| *v).collect();
    assert_eq!(all, &listed[..], "ALL differs from the pinned table");
    for &(v, c, n) in table {
        assert_eq!(code(v), c, "{v:?}");
        assert_eq!(from_code(c), Some(v), "{c}");
        assert_eq!(name(v), n, "{v:?}");
        assert_eq!(from_name(n), Some(v), "{n}");
    }
    let max = table.iter().map(|(_, c, _)| *c).max().unwrap_or(0);
    for c in (0..=max + 2).chain([u32::MAX]) {
        if !table.iter().any(|(_, tc, _)| *tc == c) {
            assert_eq!(from_code(c), None, "unknown code {c}");
        }
    }
    for bad in [
        "",
        "x",
        "ENCRYPT",
        "Encrypt ",
        "authentication",
        "KeyCreated",
    ] {
        if !table.iter().any(|(_, _, n)| *n == bad) {
            assert_eq!(from_name(bad), None, "unknown name {bad:?}");
        }
    }
}

#[test]
fn error_kind_codes() {
    check(
        &ErrorKind::ALL,
        &[
            (ErrorKind::InvalidInput, 1, "InvalidInput"),
            (ErrorKind::Authentication, 2, "Authentication"),
            (ErrorKind::UnknownKey, 3, "UnknownKey"),
            (ErrorKind::KeyDisabled, 4, "KeyDisabled"),
            (ErrorKind::KeyDestroyed, 5, "KeyDestroyed"),
            (ErrorKind::Policy, 6, "Policy"),
            (ErrorKind::Unsupported, 7, "Unsupported"),
            (ErrorKind::Backend, 8, "Backend"),
            (ErrorKind::Unavailable, 9, "Unavailable"),
            (ErrorKind::Format, 10, "Format"),
            (ErrorKind::Io, 11, "Io"),
            (ErrorKind::Internal, 12, "Internal"),
        ],
        ErrorKind::code,
        ErrorKind::from_code,
        ErrorKind::name,
        ErrorKind::from_name,
    );
}

#[test]
fn event_kind_codes() {
    check(
        &EventKind::ALL,
        &[
            (EventKind::KeyCreated, 1, "key_created"),
            (EventKind::KeyRotated, 2, "key_rotated"),
            (EventKind::KeyPromoted, 3, "key_promoted"),
            (EventKind::KeyDisabled, 4, "key_disabled"),
            (EventKind::KeyEnabled, 5, "key_enabled"),
            (EventKind::KeyDestroyed, 6, "key_destroyed"),
            (EventKind::KeyDerived, 7, "key_derived"),
            (EventKind::DecryptFailed, 8, "decrypt_failed"),
            (EventKind::Signed, 9, "signed"),
            (EventKind::VerifyFailed, 10, "verify_failed"),
        ],
        EventKind::code,
        EventKind::from_code,
        EventKind::name,
        EventKind::from_name,
    );
}

#[test]
fn purpose_codes() {
    check(
        &Purpose::ALL,
        &[
            (Purpose::Encrypt, 1, "encrypt"),
            (Purpose::Derive, 2, "derive"),
            (Purpose::Sign, 3, "sign"),
            (Purpose::Stream, 4, "stream"),
        ],
        Purpose::code,
        Purpose::from_code,
        Purpose::name,
        Purpose::from_name,
    );
    // 0 is the C ABI's "no purpose", never a purpose.
    assert_eq!(Purpose::from_code(0), None);
}

#[test]
fn key_status_codes() {
    check(
        &KeyStatus::ALL,
        &[
            (KeyStatus::Enabled, 1, "enabled"),
            (KeyStatus::Disabled, 2, "disabled"),
            (KeyStatus::Destroyed, 3, "destroyed"),
        ],
        KeyStatus::code,
        KeyStatus::from_code,
        KeyStatus::name,
        KeyStatus::from_name,
    );
}

#[test]
fn names_are_what_display_prints() {
    for k in ErrorKind::ALL {
        assert_eq!(k.to_string(), k.name());
    }
    for p in Purpose::ALL {
        assert_eq!(p.to_string(), p.name());
    }
    for s in KeyStatus::ALL {
        assert_eq!(s.to_string(), s.name());
    }
}

#[test]
fn algorithm_codes() {
    use keystrata::Algorithm;
    check(
        &Algorithm::ALL,
        &[
            (Algorithm::Ed25519, 1, "ed25519"),
            (Algorithm::EcdsaP256, 2, "ecdsa-p256"),
            (Algorithm::EcdsaSecp256k1, 3, "ecdsa-secp256k1"),
        ],
        Algorithm::code,
        Algorithm::from_code,
        Algorithm::name,
        Algorithm::from_name,
    );
}

#[test]
fn stream_format_codes() {
    use keystrata::StreamFormat;
    check(
        &StreamFormat::ALL,
        &[
            (StreamFormat::AesGcmHkdf4Kb, 1, "aes256-gcm-hkdf-4kb"),
            (StreamFormat::AesGcmHkdf1Mb, 2, "aes256-gcm-hkdf-1mb"),
        ],
        StreamFormat::code,
        StreamFormat::from_code,
        StreamFormat::name,
        StreamFormat::from_name,
    );
}
