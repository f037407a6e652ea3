//! PKCS#11 return values to keystrata errors: which kind, and a message
//! naming the operation and the `CKR_` value (never a PIN). A failed
//! `C_Decrypt` is the one opaque authentication error.

use cryptoki::error::{Error as CkError, RvError};

use crate::error::{Error, ErrorKind};

/// What a PKCS#11 call was doing, for its error message and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Load,
    Initialize,
    ListTokens,
    OpenSession,
    Login,
    FindKey,
    GenerateKey,
    Encrypt,
    Decrypt,
    Sign,
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
            Op::Sign => format!("PKCS#11 signing on token '{target}' failed"),
        }
    }
}

/// The `CKR_…` name of a return value (`PinIncorrect` → `CKR_PIN_INCORRECT`).
pub(super) fn ckr_name(rv: &RvError) -> String {
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
pub(super) fn classify(err: &CkError, op: Op) -> ErrorKind {
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
pub(super) fn ck_error(err: CkError, op: Op, target: &str) -> Error {
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
pub(super) fn is_stale_session(e: &CkError) -> bool {
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
pub(super) fn is_stale_key(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)
    )
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
}
