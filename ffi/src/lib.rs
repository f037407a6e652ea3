//! The C ABI of keystrata. Every `unsafe` of the project lives in this crate.
//!
//! The header `include/keystrata.h` is generated from this crate by
//! cbindgen; the doc comments here are the header's documentation.

#![allow(non_camel_case_types)]
#![deny(clippy::unwrap_used)]
#![allow(clippy::missing_safety_doc)] // documented in the header comments

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use keystrata::{Error, ErrorKind};

mod envelope;
mod events;
mod hazmat;
mod keychain;
mod portable;
mod root;

pub use envelope::*;
pub use events::*;
pub use hazmat::*;
pub use keychain::*;
pub use portable::*;
pub use root::*;

/// The result of every fallible ks_ function. Numbers are stable and never
/// reused: 1-12 are keystrata's error kinds (the same in Rust, Go and
/// Python); 100 and up are C-specific.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_status {
    /// Success.
    KS_OK = 0,
    /// An argument is malformed: wrong length, out of range, empty.
    KS_ERR_INVALID_INPUT = 1,
    /// A ciphertext or envelope failed authentication (says nothing more).
    KS_ERR_AUTHENTICATION = 2,
    /// No key in the keychain has the key ID the input names.
    KS_ERR_UNKNOWN_KEY = 3,
    /// The key exists but is disabled.
    KS_ERR_KEY_DISABLED = 4,
    /// The key exists but its material was destroyed.
    KS_ERR_KEY_DESTROYED = 5,
    /// Refused by the keychain's rules or rotation policy.
    KS_ERR_POLICY = 6,
    /// Well-formed input keystrata does not support.
    KS_ERR_UNSUPPORTED = 7,
    /// A root backend reported a failure.
    KS_ERR_BACKEND = 8,
    /// The handle or backend cannot serve calls: closed, or unreachable.
    KS_ERR_UNAVAILABLE = 9,
    /// Bytes that should be in a keystrata or Tink format are not.
    KS_ERR_FORMAT = 10,
    /// Reading or writing a file failed.
    KS_ERR_IO = 11,
    /// A bug in keystrata (including a caught panic). Please report it.
    KS_ERR_INTERNAL = 12,
    /// A required pointer argument was NULL.
    KS_ERR_NULL_ARGUMENT = 100,
    /// A caller-provided array is too small.
    KS_ERR_BUFFER_TOO_SMALL = 101,
}

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
            _ => KS_ERR_INTERNAL,
        }
    }
}

/// An error inside the FFI layer: a status and a message.
pub(crate) struct FfiError {
    status: ks_status,
    message: String,
}

impl From<Error> for FfiError {
    fn from(e: Error) -> FfiError {
        FfiError {
            status: ks_status::from_kind(e.kind()),
            message: e.to_string(),
        }
    }
}

impl FfiError {
    pub(crate) fn null(what: &str) -> FfiError {
        FfiError {
            status: ks_status::KS_ERR_NULL_ARGUMENT,
            message: format!("NullArgument: {what} is NULL"),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> FfiError {
        FfiError {
            status: ks_status::KS_ERR_INVALID_INPUT,
            message: format!("InvalidInput: {}", message.into()),
        }
    }

    pub(crate) fn too_small(message: impl Into<String>) -> FfiError {
        FfiError {
            status: ks_status::KS_ERR_BUFFER_TOO_SMALL,
            message: format!("BufferTooSmall: {}", message.into()),
        }
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = c);
}

fn clear_last_error() {
    LAST_ERROR.with(|l| {
        let mut l = l.borrow_mut();
        if !l.as_bytes().is_empty() {
            *l = CString::default();
        }
    });
}

/// Runs an FFI body: catches panics, records the error message for the
/// calling thread, and turns the result into a status.
pub(crate) fn guard(body: impl FnOnce() -> FfiResult) -> ks_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            clear_last_error();
            ks_status::KS_OK
        }
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.status
        }
        Err(_) => {
            set_last_error("Internal: a panic was caught at the C boundary (a bug in keystrata)");
            ks_status::KS_ERR_INTERNAL
        }
    }
}

/// Like [`guard`] for functions that return no status: a panic is
/// swallowed and `fallback` returned.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Bytes allocated by keystrata and owned by the caller. Release with
/// ks_buffer_free, which wipes them. An empty result has data == NULL and
/// len == 0.
#[repr(C)]
pub struct ks_buffer {
    /// The bytes; NULL when len is 0.
    pub data: *mut u8,
    /// Number of bytes.
    pub len: usize,
}

impl ks_buffer {
    pub(crate) fn from_vec(v: Vec<u8>) -> ks_buffer {
        if v.is_empty() {
            return ks_buffer {
                data: std::ptr::null_mut(),
                len: 0,
            };
        }
        let b: Box<[u8]> = v.into_boxed_slice();
        let len = b.len();
        let data = Box::into_raw(b) as *mut u8;
        ks_buffer { data, len }
    }
}

/// Writes `v` into `*out` as a ks_buffer. `out` was checked non-NULL.
pub(crate) unsafe fn put_buffer(out: *mut ks_buffer, v: Vec<u8>) {
    // SAFETY: the caller checked `out` is non-NULL; it points to writable
    // memory per the API contract.
    unsafe { out.write(ks_buffer::from_vec(v)) };
}

/// Wipes and frees the bytes of `buf`, then sets `buf->data` to NULL and
/// `buf->len` to 0. NULL, or a buffer with NULL data, is a no-op.
/// Calling it twice on the same ks_buffer is safe; freeing a copy of a
/// buffer already freed is not.
#[no_mangle]
pub unsafe extern "C" fn ks_buffer_free(buf: *mut ks_buffer) {
    guard_value((), || {
        if buf.is_null() {
            return;
        }
        // SAFETY: non-NULL; the caller passes a ks_buffer we filled.
        let b = unsafe { &mut *buf };
        if !b.data.is_null() && b.len > 0 {
            // SAFETY: data/len came from Box<[u8]>::into_raw in from_vec.
            let mut boxed =
                unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(b.data, b.len)) };
            zeroize::Zeroize::zeroize(&mut *boxed);
            drop(boxed);
        }
        b.data = std::ptr::null_mut();
        b.len = 0;
    })
}

/// The message of the last failed ks_ call on the calling thread, or "" if
/// the last call succeeded. Never NULL. Valid until the next ks_ call on
/// this thread. Messages never contain key material or plaintext.
///
/// Languages whose threads migrate between calls (Go goroutines) must read
/// it within the same foreign call as the failing function.
#[no_mangle]
pub extern "C" fn ks_last_error_message() -> *const c_char {
    static EMPTY: &CStr = c"";
    guard_value(EMPTY.as_ptr(), || LAST_ERROR.with(|l| l.borrow().as_ptr()))
}

/// The name of a status (a ks_status value, passed as int so any number is
/// safe), e.g. "KS_ERR_AUTHENTICATION". Never NULL; an unknown number gives
/// "KS_ERR_UNKNOWN_STATUS". Static storage.
#[no_mangle]
pub extern "C" fn ks_status_name(status: std::ffi::c_int) -> *const c_char {
    let s: &CStr = match status {
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
    };
    s.as_ptr()
}

/// keystrata's version, e.g. "0.1.0". Static storage.
#[no_mangle]
pub extern "C" fn ks_version() -> *const c_char {
    static V: &CStr = c"0.1.0";
    V.as_ptr()
}

// ---------------------------------------------------------------------
// Argument helpers
// ---------------------------------------------------------------------

/// A byte slice from (ptr, len); NULL is allowed only with len 0.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::null(what));
    }
    if len > isize::MAX as usize {
        return Err(FfiError::invalid(format!(
            "{what}: length {len} is out of range"
        )));
    }
    // SAFETY: non-NULL, length checked; the caller guarantees `len`
    // readable bytes for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A C array of `n` elements (e.g. `const char *const *`); NULL is allowed
/// only with `n` 0. A count no array can have is InvalidInput, checked
/// before anything is read.
pub(crate) unsafe fn array<'a, T>(ptr: *const T, n: usize, what: &str) -> FfiResult<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::null(what));
    }
    if n > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(FfiError::invalid(format!(
            "{what}: count {n} is out of range"
        )));
    }
    // SAFETY: non-NULL, count checked against the largest possible array;
    // the caller guarantees `n` readable elements for the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// A UTF-8 string from a NUL-terminated C string.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(FfiError::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated per the API contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| FfiError::invalid(format!("{what} is not UTF-8")))
}

/// A shared reference from a handle pointer.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, what: &str) -> FfiResult<&'a T> {
    if ptr.is_null() {
        return Err(FfiError::null(what));
    }
    // SAFETY: non-NULL; the caller passes a live handle we allocated.
    Ok(unsafe { &*ptr })
}

/// Checks an output pointer is non-NULL.
pub(crate) fn out_ptr<T>(ptr: *mut T, what: &str) -> FfiResult<*mut T> {
    if ptr.is_null() {
        Err(FfiError::null(what))
    } else {
        Ok(ptr)
    }
}

/// Writes a boxed handle into `*out`. `out` was checked non-NULL.
pub(crate) unsafe fn put_handle<T>(out: *mut *mut T, value: T) {
    // SAFETY: `out` checked non-NULL by the caller; writable per contract.
    unsafe { out.write(Box::into_raw(Box::new(value))) };
}

/// Writes a value into `*out`. `out` was checked non-NULL.
pub(crate) unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: `out` checked non-NULL by the caller; writable per contract.
    unsafe { out.write(value) };
}
