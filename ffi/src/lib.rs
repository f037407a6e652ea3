//! The C ABI of keystrata. Every `unsafe` of the project lives in this crate.
//!
//! The header `include/keystrata.h` is generated from this crate by
//! cbindgen; the doc comments here are the header's documentation.
//!
//! Every fallible function takes a trailing `ks_error **err` and runs its
//! body through [`abi::guard`]; the pointer work lives in [`abi`], which
//! calls no crypto and is tested under Miri.

#![allow(non_camel_case_types)]
#![deny(clippy::unwrap_used)]
#![allow(clippy::missing_safety_doc)] // documented in the header comments

use std::ffi::{c_char, CStr};

use keystrata::{Error, ErrorKind};

mod abi;
mod custom_root;
mod envelope;
mod events;
mod hazmat;
mod keychain;
mod portable;
mod root;

pub(crate) use abi::*;
pub use abi::{
    ks_buffer, ks_buffer_free, ks_error, ks_error_free, ks_error_message, ks_error_new,
    ks_error_status, ks_status,
};
pub use custom_root::*;
pub use envelope::*;
pub use events::*;
pub use hazmat::*;
pub use keychain::*;
pub use portable::*;
pub use root::*;

impl ks_status {
    pub(crate) fn from_kind(kind: ErrorKind) -> ks_status {
        use ks_status::*;
        match kind {
            ErrorKind::InvalidInput => KS_ERR_INVALID_INPUT,
            ErrorKind::Authentication => KS_ERR_AUTHENTICATION,
            ErrorKind::UnknownKey => KS_ERR_UNKNOWN_KEY,
            ErrorKind::KeyDisabled => KS_ERR_KEY_DISABLED,
            ErrorKind::KeyDestroyed => KS_ERR_KEY_DESTROYED,
            ErrorKind::Policy => KS_ERR_POLICY,
            ErrorKind::Unsupported => KS_ERR_UNSUPPORTED,
            ErrorKind::Backend => KS_ERR_BACKEND,
            ErrorKind::Unavailable => KS_ERR_UNAVAILABLE,
            ErrorKind::Format => KS_ERR_FORMAT,
            ErrorKind::Io => KS_ERR_IO,
            ErrorKind::Internal => KS_ERR_INTERNAL,
            // A kind newer than this mapping is an internal inconsistency;
            // the test below fails the build's suite before one ships.
            _ => KS_ERR_INTERNAL,
        }
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> FfiError {
        FfiError::new(ks_status::from_kind(e.kind()), e.to_string())
    }
}

/// The name of a status (a ks_status value, passed as int so any number is
/// safe), e.g. "KS_ERR_AUTHENTICATION". Never NULL; an unknown number gives
/// "KS_ERR_UNKNOWN_STATUS". Static storage.
#[no_mangle]
pub extern "C" fn ks_status_name(status: std::ffi::c_int) -> *const c_char {
    guard_value(c"KS_ERR_UNKNOWN_STATUS".as_ptr(), || {
        status_name(status).as_ptr()
    })
}

fn status_name(status: std::ffi::c_int) -> &'static CStr {
    match status {
        0 => c"KS_OK",
        1 => c"KS_ERR_INVALID_INPUT",
        2 => c"KS_ERR_AUTHENTICATION",
        3 => c"KS_ERR_UNKNOWN_KEY",
        4 => c"KS_ERR_KEY_DISABLED",
        5 => c"KS_ERR_KEY_DESTROYED",
        6 => c"KS_ERR_POLICY",
        7 => c"KS_ERR_UNSUPPORTED",
        8 => c"KS_ERR_BACKEND",
        9 => c"KS_ERR_UNAVAILABLE",
        10 => c"KS_ERR_FORMAT",
        11 => c"KS_ERR_IO",
        12 => c"KS_ERR_INTERNAL",
        100 => c"KS_ERR_NULL_ARGUMENT",
        101 => c"KS_ERR_BUFFER_TOO_SMALL",
        _ => c"KS_ERR_UNKNOWN_STATUS",
    }
}

/// keystrata's version, e.g. "0.1.0". Static storage.
#[no_mangle]
pub extern "C" fn ks_version() -> *const c_char {
    static V: &CStr = c"0.1.0";
    guard_value(V.as_ptr(), || V.as_ptr())
}

#[cfg(test)]
mod table_tests {
    use super::*;

    /// Every core error kind has its own status, numbered by the core, and
    /// ks_status_name spells the core's name.
    #[test]
    fn statuses_are_the_core_codes_and_names() {
        for k in ErrorKind::ALL {
            let st = ks_status::from_kind(k);
            assert_eq!(st as u32, k.code(), "{k:?}");
            let mut want = String::from("KS_ERR_");
            for (i, ch) in k.name().chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    want.push('_');
                }
                want.push(ch.to_ascii_uppercase());
            }
            let got = status_name(st as std::ffi::c_int).to_str().expect("ascii");
            assert_eq!(got, want, "{k:?}");
        }
    }
}
