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

use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::OnceLock;

use keystrata::{Error, ErrorKind};

mod abi;
mod custom_root;
mod envelope;
mod events;
mod hazmat;
mod keychain;
mod portable;
mod rewrap;
mod root;
mod sign;
mod sign_more;
mod stream;

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
pub use sign::*;
pub use sign_more::*;
pub use stream::*;

impl ks_status {
    /// The status of a core error kind: the kind's own number
    /// (ErrorKind::code), so this crate holds no table of its own.
    pub(crate) fn from_kind(kind: ErrorKind) -> ks_status {
        status_from_int(kind.code() as c_int)
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

fn status_name(status: c_int) -> &'static CStr {
    // The kinds' names, spelled from the core's (UnknownKey:
    // KS_ERR_UNKNOWN_KEY), made once.
    static KIND_NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    match status {
        0 => c"KS_OK",
        100 => c"KS_ERR_NULL_ARGUMENT",
        101 => c"KS_ERR_BUFFER_TOO_SMALL",
        _ => match u32::try_from(status).ok().and_then(ErrorKind::from_code) {
            Some(kind) => {
                let names = KIND_NAMES
                    .get_or_init(|| ErrorKind::ALL.iter().map(|k| c_name(k.name())).collect());
                names
                    .get(kind.code() as usize - 1)
                    .map_or(c"KS_ERR_UNKNOWN_STATUS", |n| n.as_c_str())
            }
            None => c"KS_ERR_UNKNOWN_STATUS",
        },
    }
}

/// "UnknownKey" as "KS_ERR_UNKNOWN_KEY".
fn c_name(camel: &str) -> CString {
    let mut s = String::from("KS_ERR_");
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(ch.to_ascii_uppercase());
    }
    CString::new(s).unwrap_or_default()
}

/// The core's names, made once as C strings, indexed by code - 1.
pub(crate) fn c_names(cell: &'static OnceLock<Vec<CString>>, names: &[&str]) -> &'static [CString] {
    cell.get_or_init(|| {
        names
            .iter()
            .map(|n| CString::new(*n).unwrap_or_default())
            .collect()
    })
}

pub(crate) fn name_at(names: &'static [CString], code: Option<u32>) -> *const c_char {
    code.and_then(|c| names.get((c as usize).checked_sub(1)?))
        .map_or(std::ptr::null(), |n| n.as_ptr())
}

/// The name of an event kind (a ks_event_kind value, passed as int), the
/// same in every language: "key_created", "key_rotated", ... NULL for a
/// number this library does not know. Static storage.
#[no_mangle]
pub extern "C" fn ks_event_kind_name(kind: c_int) -> *const c_char {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    guard_value(std::ptr::null(), || {
        let all: Vec<&str> = keystrata::EventKind::ALL.iter().map(|k| k.name()).collect();
        let code = u32::try_from(kind)
            .ok()
            .filter(|&c| keystrata::EventKind::from_code(c).is_some());
        name_at(c_names(&NAMES, &all), code)
    })
}

/// The name of a purpose (a ks_purpose value, passed as int): "encrypt",
/// "derive", ...; "none" for KS_PURPOSE_NONE (0); NULL for a number this
/// library does not know. Static storage.
#[no_mangle]
pub extern "C" fn ks_purpose_name(purpose: c_int) -> *const c_char {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    guard_value(std::ptr::null(), || {
        if purpose == 0 {
            return c"none".as_ptr();
        }
        let all: Vec<&str> = keystrata::Purpose::ALL.iter().map(|p| p.name()).collect();
        let code = u32::try_from(purpose)
            .ok()
            .filter(|&c| keystrata::Purpose::from_code(c).is_some());
        name_at(c_names(&NAMES, &all), code)
    })
}

/// The name of a key status (a ks_key_status value, passed as int):
/// "enabled", "disabled", "destroyed"; NULL for a number this library does
/// not know. Static storage.
#[no_mangle]
pub extern "C" fn ks_key_status_name(status: c_int) -> *const c_char {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    guard_value(std::ptr::null(), || {
        let all: Vec<&str> = keystrata::KeyStatus::ALL.iter().map(|s| s.name()).collect();
        let code = u32::try_from(status)
            .ok()
            .filter(|&c| keystrata::KeyStatus::from_code(c).is_some());
        name_at(c_names(&NAMES, &all), code)
    })
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

    /// Every core error kind has a ks_status variant with the core's
    /// number and the core's name (the header's enum is literal, for
    /// cbindgen: this is what keeps it in step), and ks_status_name says
    /// the same.
    #[test]
    fn statuses_are_the_core_codes_and_names() {
        for k in ErrorKind::ALL {
            let st = ks_status::from_kind(k);
            assert_eq!(st as u32, k.code(), "{k:?}");
            let want = c_name(k.name());
            assert_eq!(format!("{st:?}"), want.to_str().expect("ascii"), "{k:?}");
            assert_eq!(status_name(st as c_int), want.as_c_str(), "{k:?}");
        }
        assert_eq!(status_name(0), c"KS_OK");
        assert_eq!(status_name(13), c"KS_ERR_UNKNOWN_STATUS");
        assert_eq!(status_name(-1), c"KS_ERR_UNKNOWN_STATUS");
        assert_eq!(c_name("UnknownKey").as_c_str(), c"KS_ERR_UNKNOWN_KEY");
    }

    /// The statuses C can see are KS_OK, the core's kinds and the two
    /// C-level ones, and nothing else.
    #[test]
    fn the_statuses_are_ok_the_core_kinds_and_two_c_ones() {
        let known: Vec<c_int> = (-1000..1000)
            .filter(|&n| status_from_int(n) as c_int == n)
            .collect();
        let mut want: Vec<c_int> = vec![0];
        want.extend(ErrorKind::ALL.iter().map(|k| k.code() as c_int));
        want.extend([100, 101]);
        assert_eq!(known, want);
    }

    /// The enum names C and Go read are the core's, at the core's codes
    /// (ALL is in code order, pinned by core/tests/codes.rs).
    #[test]
    fn enum_names_are_the_cores() {
        let read = |p: *const c_char| unsafe {
            p.as_ref()
                .map(|_| CStr::from_ptr(p).to_str().expect("utf-8"))
        };
        for k in keystrata::EventKind::ALL {
            assert_eq!(read(ks_event_kind_name(k.code() as c_int)), Some(k.name()));
        }
        for p in keystrata::Purpose::ALL {
            assert_eq!(read(ks_purpose_name(p.code() as c_int)), Some(p.name()));
        }
        for st in keystrata::KeyStatus::ALL {
            assert_eq!(
                read(ks_key_status_name(st.code() as c_int)),
                Some(st.name())
            );
        }
        assert_eq!(read(ks_purpose_name(0)), Some("none"));
        for bad in [-1, 0, 99, c_int::MAX] {
            assert_eq!(read(ks_event_kind_name(bad)), None);
            assert_eq!(read(ks_key_status_name(bad)), None);
        }
        assert_eq!(read(ks_purpose_name(-1)), None);
        assert_eq!(read(ks_purpose_name(5)), None);
    }
}
