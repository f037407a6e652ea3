//! The pure part of the C ABI: the status enum, per-call error objects,
//! library-allocated buffers, caller-sized outputs and the pointer helpers
//! every `extern "C"` function goes through.
//!
//! Nothing here calls keystrata's core or any crypto, so the module is
//! compiled twice: as `keystrata_ffi::abi`, and alone by the tiny crate
//! `ffi/abi-miri` (no aws-lc), where `make miri` runs its tests under Miri:
//! C tests cannot see undefined behaviour on the Rust side.

use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

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
    /// A caller-sized output is too small: `*out_len` (or the count) holds
    /// the size needed and nothing else was written or used; call again
    /// with a buffer that large.
    KS_ERR_BUFFER_TOO_SMALL = 101,
}

// ---------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------

/// An error inside the FFI layer: a status and a message.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub(crate) status: ks_status,
    pub(crate) message: String,
}

impl FfiError {
    /// An error of `status` with `message` as it stands.
    pub(crate) fn new(status: ks_status, message: impl Into<String>) -> FfiError {
        FfiError {
            status,
            message: message.into(),
        }
    }

    /// A required pointer was NULL.
    pub(crate) fn null(what: &str) -> FfiError {
        FfiError::new(
            ks_status::KS_ERR_NULL_ARGUMENT,
            format!("NullArgument: {what} is NULL"),
        )
    }

    /// A malformed argument.
    pub(crate) fn invalid(message: impl Into<String>) -> FfiError {
        FfiError::new(
            ks_status::KS_ERR_INVALID_INPUT,
            format!("InvalidInput: {}", message.into()),
        )
    }

    /// A caller-sized output that cannot hold `needed`.
    pub(crate) fn too_small(what: &str, cap: usize, needed: usize) -> FfiError {
        FfiError::new(
            ks_status::KS_ERR_BUFFER_TOO_SMALL,
            format!("BufferTooSmall: {what} holds {cap}; {needed} are needed"),
        )
    }
}

/// The result of an FFI body.
pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

/// The error of one failed call: its status and a message. Made by the
/// library when a fallible function fails and its `err` argument is
/// non-NULL; read with ks_error_status and ks_error_message; released by
/// ks_error_free (once, by the caller).
///
/// Thread safety: immutable; may be read from any thread and moved between
/// threads. It belongs to no thread and to no handle: it stays valid after
/// the handle whose call made it is freed.
pub struct ks_error {
    status: ks_status,
    message: CString,
}

impl ks_error {
    /// A new error object on the heap. A NUL inside the message becomes a
    /// space, so the C string holds all of it.
    fn boxed(status: ks_status, message: &str) -> *mut ks_error {
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        Box::into_raw(Box::new(ks_error { status, message }))
    }
}

/// Writes the outcome of a call to `err` (when non-NULL): NULL on success,
/// a new error object on failure.
fn report(err: *mut *mut ks_error, status: ks_status, message: &str) {
    if err.is_null() {
        return;
    }
    let value = if status == ks_status::KS_OK {
        ptr::null_mut()
    } else {
        ks_error::boxed(status, message)
    };
    // SAFETY: non-NULL; the caller passes a writable `ks_error *` per the
    // header's conventions.
    unsafe { err.write(value) };
}

/// Runs the body of a fallible extern fn: the one path every such function
/// takes. Catches panics (KS_ERR_INTERNAL), reports the outcome through
/// `err`, and returns the status.
pub(crate) fn guard(err: *mut *mut ks_error, body: impl FnOnce() -> FfiResult) -> ks_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            report(err, ks_status::KS_OK, "");
            ks_status::KS_OK
        }
        Ok(Err(e)) => {
            report(err, e.status, &e.message);
            e.status
        }
        Err(_) => {
            report(
                err,
                ks_status::KS_ERR_INTERNAL,
                "Internal: a panic was caught at the C boundary (a bug in keystrata)",
            );
            ks_status::KS_ERR_INTERNAL
        }
    }
}

/// Like [`guard`] for functions that cannot fail (accessors, `_free`): a
/// panic is swallowed and `fallback` returned.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// The status of an error object; KS_OK for NULL (no error).
#[no_mangle]
pub unsafe extern "C" fn ks_error_status(err: *const ks_error) -> ks_status {
    guard_value(ks_status::KS_ERR_INTERNAL, || {
        // SAFETY: NULL or an error object the library made and the caller
        // has not freed.
        match unsafe { err.as_ref() } {
            Some(e) => e.status,
            None => ks_status::KS_OK,
        }
    })
}

/// The message of an error object: NUL-terminated UTF-8, never NULL, owned
/// by the object and valid until ks_error_free. "" for NULL. Messages never
/// contain key material, plaintext, PINs or passphrases, and echo at most a
/// short prefix of other input.
#[no_mangle]
pub unsafe extern "C" fn ks_error_message(err: *const ks_error) -> *const c_char {
    static EMPTY: &CStr = c"";
    guard_value(EMPTY.as_ptr(), || {
        // SAFETY: as in ks_error_status.
        match unsafe { err.as_ref() } {
            Some(e) => e.message.as_ptr(),
            None => EMPTY.as_ptr(),
        }
    })
}

/// Makes an error object, for a callback of yours to hand back through its
/// `err` argument (ks_custom_root_callbacks): the library takes it and
/// frees it. `status` is a KS_ERR_* value; `message` is NUL-terminated
/// UTF-8 (invalid bytes become U+FFFD) or NULL for none, and is copied.
/// Never put a secret in it. Returns NULL for KS_OK (no error) or when
/// out of memory; otherwise release it with ks_error_free if you do not
/// hand it over.
#[no_mangle]
pub unsafe extern "C" fn ks_error_new(status: c_int, message: *const c_char) -> *mut ks_error {
    guard_value(std::ptr::null_mut(), || {
        if status == ks_status::KS_OK as c_int {
            return std::ptr::null_mut();
        }
        let message = if message.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated string (the contract).
            unsafe { CStr::from_ptr(message) }
                .to_string_lossy()
                .into_owned()
        };
        ks_error::boxed(status_from_int(status), &message)
    })
}

/// A status number from C as a ks_status: an unknown number is
/// KS_ERR_INTERNAL (never an invalid enum value).
pub(crate) fn status_from_int(status: c_int) -> ks_status {
    use ks_status::*;
    [
        KS_OK,
        KS_ERR_INVALID_INPUT,
        KS_ERR_AUTHENTICATION,
        KS_ERR_UNKNOWN_KEY,
        KS_ERR_KEY_DISABLED,
        KS_ERR_KEY_DESTROYED,
        KS_ERR_POLICY,
        KS_ERR_UNSUPPORTED,
        KS_ERR_BACKEND,
        KS_ERR_UNAVAILABLE,
        KS_ERR_FORMAT,
        KS_ERR_IO,
        KS_ERR_INTERNAL,
        KS_ERR_NULL_ARGUMENT,
        KS_ERR_BUFFER_TOO_SMALL,
    ]
    .into_iter()
    .find(|s| *s as c_int == status)
    .unwrap_or(KS_ERR_INTERNAL)
}

/// Takes an error object a callback handed over: its message, and frees
/// it. NULL gives None.
///
/// # Safety
/// `err` is NULL or an object from ks_error_new not yet freed.
pub(crate) unsafe fn take_error_message(err: *mut ks_error) -> Option<String> {
    if err.is_null() {
        return None;
    }
    // SAFETY: made by Box::into_raw in ks_error::boxed (the contract).
    let e = unsafe { Box::from_raw(err) };
    Some(e.message.to_string_lossy().into_owned())
}

/// Releases an error object. NULL is a no-op. Freeing one twice is not.
#[no_mangle]
pub unsafe extern "C" fn ks_error_free(err: *mut ks_error) {
    guard_value((), || {
        if !err.is_null() {
            // SAFETY: made by Box::into_raw in ks_error::boxed; freed once.
            drop(unsafe { Box::from_raw(err) });
        }
    })
}

// ---------------------------------------------------------------------
// Library-allocated bytes
// ---------------------------------------------------------------------

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

/// Hands `v` to C as (pointer, length); (NULL, 0) when empty. Release with
/// [`free_raw_bytes`].
pub(crate) fn into_raw_bytes(v: Vec<u8>) -> (*mut u8, usize) {
    if v.is_empty() {
        return (ptr::null_mut(), 0);
    }
    let b: Box<[u8]> = v.into_boxed_slice();
    let len = b.len();
    (Box::into_raw(b).cast::<u8>(), len)
}

/// Wipes and frees bytes made by [`into_raw_bytes`]. (NULL, _) and
/// (_, 0) are no-ops.
///
/// # Safety
/// `data`/`len` come from one `into_raw_bytes` call and are freed once.
pub(crate) unsafe fn free_raw_bytes(data: *mut u8, len: usize) {
    if data.is_null() || len == 0 {
        return;
    }
    // SAFETY: per the contract, a Box<[u8]> of `len` bytes at `data`.
    let mut boxed = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(data, len)) };
    zeroize::Zeroize::zeroize(&mut *boxed);
}

impl ks_buffer {
    pub(crate) fn from_vec(v: Vec<u8>) -> ks_buffer {
        let (data, len) = into_raw_bytes(v);
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
        // SAFETY: NULL or a ks_buffer the library filled.
        let Some(b) = (unsafe { buf.as_mut() }) else {
            return;
        };
        // SAFETY: data/len came from into_raw_bytes (ks_buffer::from_vec).
        unsafe { free_raw_bytes(b.data, b.len) };
        b.data = ptr::null_mut();
        b.len = 0;
    })
}

// ---------------------------------------------------------------------
// Strings the library hands out
// ---------------------------------------------------------------------

/// A library-allocated C string for a struct field; InvalidInput if `s`
/// holds a NUL. Release with [`free_c_string`].
pub(crate) fn into_c_string(s: String, what: &str) -> FfiResult<*mut c_char> {
    CString::new(s)
        .map(CString::into_raw)
        .map_err(|_| FfiError::invalid(format!("{what} contains a NUL byte")))
}

/// Frees a string made by [`into_c_string`]; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from `into_c_string` and is freed once.
pub(crate) unsafe fn free_c_string(p: *mut c_char) {
    if !p.is_null() {
        // SAFETY: per the contract, from CString::into_raw.
        drop(unsafe { CString::from_raw(p) });
    }
}

// ---------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------

/// A byte slice from (ptr, len); NULL is allowed only with len 0.
///
/// # Safety
/// A non-NULL `ptr` points to `len` readable bytes for `'a`.
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
///
/// # Safety
/// A non-NULL `ptr` points to `n` initialized elements for `'a`.
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
///
/// # Safety
/// A non-NULL `ptr` points to a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(FfiError::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated per the API contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| FfiError::invalid(format!("{what} is not UTF-8")))
}

/// `n` UTF-8 strings from an array of NUL-terminated C strings; the
/// message names the element (`what[i]`) that is NULL or not UTF-8.
///
/// # Safety
/// As [`array`] for the array, and [`c_str`] for each element.
pub(crate) unsafe fn c_strings<'a>(
    ptr: *const *const c_char,
    n: usize,
    what: &str,
) -> FfiResult<Vec<&'a str>> {
    // SAFETY: as the caller guarantees.
    let list = unsafe { array(ptr, n, what)? };
    list.iter()
        .enumerate()
        // SAFETY: each element as the caller guarantees.
        .map(|(i, p)| unsafe { c_str(*p, &format!("{what}[{i}]")) })
        .collect()
}

/// An optional C string: NULL is None.
///
/// # Safety
/// As [`c_str`].
pub(crate) unsafe fn opt_str<'a>(ptr: *const c_char, what: &str) -> FfiResult<Option<&'a str>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: as the caller guarantees for c_str.
        unsafe { c_str(ptr, what) }.map(Some)
    }
}

/// A shared reference from a handle pointer.
///
/// # Safety
/// A non-NULL `ptr` is a live handle the library allocated.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, what: &str) -> FfiResult<&'a T> {
    // SAFETY: NULL or a live handle per the contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::null(what))
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

/// Frees a handle made by [`put_handle`]; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from `put_handle` and is freed once, with no call
/// on it in flight.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: per the contract, from Box::into_raw in put_handle.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Writes a value into `*out`. `out` was checked non-NULL.
pub(crate) unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: `out` checked non-NULL by the caller; writable per contract.
    unsafe { out.write(value) };
}

/// Writes a value into `*out` unless `out` is NULL (an optional output).
pub(crate) unsafe fn put_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL; writable per contract.
        unsafe { out.write(value) };
    }
}

/// Whether the ranges `[a, a + a_len)` and `[b, b + b_len)` share a byte.
/// Compared as addresses, before any reference to either exists (an
/// overlapping `&[u8]` and `&mut [u8]` may not even be created).
pub(crate) fn overlaps(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    let (a0, b0) = (a as usize, b as usize);
    a_len != 0 && b_len != 0 && a0 < b0.saturating_add(b_len) && b0 < a0.saturating_add(a_len)
}

// ---------------------------------------------------------------------
// Outputs the caller sizes
// ---------------------------------------------------------------------

/// What a caller-sized output can take.
pub(crate) enum Room<T> {
    /// `out` was NULL: the call only reports the length.
    Query,
    /// `out` has room for the length asked; exactly that many elements
    /// start here.
    Fits(*mut T),
}

/// A caller-sized output `(T *out, size_t cap, size_t *out_len)`: `out`
/// NULL asks only for the length; a `cap` below the length needed gives
/// KS_ERR_BUFFER_TOO_SMALL with the length in `*out_len`.
pub(crate) struct SizedOut<T> {
    out: *mut T,
    cap: usize,
    out_len: *mut usize,
    what: &'static str,
}

impl<T> SizedOut<T> {
    /// Checks the arguments: `out_len` must not be NULL, and `cap` must be
    /// a possible array length when `out` is not NULL.
    pub(crate) fn new(
        out: *mut T,
        cap: usize,
        out_len: *mut usize,
        what: &'static str,
    ) -> FfiResult<SizedOut<T>> {
        out_ptr(out_len, "out_len")?;
        if !out.is_null() && cap > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
            return Err(FfiError::invalid(format!(
                "{what}: capacity {cap} is out of range"
            )));
        }
        Ok(SizedOut {
            out,
            cap,
            out_len,
            what,
        })
    }

    /// Whether the call only reports the length.
    pub(crate) fn is_query(&self) -> bool {
        self.out.is_null()
    }

    /// Room for `needed` elements: [`Room::Query`] when `out` is NULL,
    /// [`Room::Fits`] when `cap >= needed`; otherwise `*out_len = needed`
    /// and KS_ERR_BUFFER_TOO_SMALL.
    pub(crate) fn room(&self, needed: usize) -> FfiResult<Room<T>> {
        if self.out.is_null() {
            return Ok(Room::Query);
        }
        if self.cap < needed {
            // SAFETY: checked non-NULL in `new`; writable per contract.
            unsafe { self.out_len.write(needed) };
            return Err(FfiError::too_small(self.what, self.cap, needed));
        }
        Ok(Room::Fits(self.out))
    }

    /// Writes the length of the result (or of the answer to a query).
    pub(crate) fn set_len(&self, n: usize) {
        // SAFETY: checked non-NULL in `new`; writable per contract.
        unsafe { self.out_len.write(n) };
    }
}

impl SizedOut<u8> {
    /// The first `needed` bytes of `out` as a slice, after checking they
    /// overlap none of `inputs` (InvalidInput otherwise). None for a query;
    /// KS_ERR_BUFFER_TOO_SMALL as [`SizedOut::room`].
    ///
    /// # Safety
    /// A non-NULL `out` points to `cap` writable bytes for `'a`, which no
    /// other reference uses meanwhile except through `inputs`.
    pub(crate) unsafe fn slice<'a>(
        &self,
        needed: usize,
        inputs: &[(*const u8, usize)],
    ) -> FfiResult<Option<&'a mut [u8]>> {
        let p = match self.room(needed)? {
            Room::Query => return Ok(None),
            Room::Fits(p) => p,
        };
        if inputs.iter().any(|&(q, n)| overlaps(p, needed, q, n)) {
            return Err(FfiError::invalid(format!(
                "{} overlaps an input",
                self.what
            )));
        }
        if needed == 0 {
            return Ok(Some(&mut []));
        }
        // SAFETY: non-NULL, `needed <= cap` bytes writable per contract,
        // disjoint from every input (checked above).
        Ok(Some(unsafe { std::slice::from_raw_parts_mut(p, needed) }))
    }

    /// Copies `src` out: reports its length for a query, refuses a buffer
    /// too small, else copies it and writes `*out_len`. Checks `src` does
    /// not overlap the output.
    ///
    /// # Safety
    /// As [`SizedOut::slice`].
    pub(crate) unsafe fn copy_from(&self, src: &[u8]) -> FfiResult {
        // SAFETY: as the caller guarantees.
        if let Some(dst) = unsafe { self.slice(src.len(), &[(src.as_ptr(), src.len())])? } {
            dst.copy_from_slice(src);
        }
        self.set_len(src.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st<T>(r: FfiResult<T>) -> ks_status {
        match r {
            Ok(_) => ks_status::KS_OK,
            Err(e) => e.status,
        }
    }

    fn err_of(f: impl FnOnce(*mut *mut ks_error) -> ks_status) -> (ks_status, *mut ks_error) {
        let mut e: *mut ks_error = ptr::NonNull::dangling().as_ptr(); // must be overwritten
        let st = f(&mut e);
        (st, e)
    }

    fn message(e: *const ks_error) -> String {
        // SAFETY: a live error object or NULL.
        unsafe { CStr::from_ptr(ks_error_message(e)) }
            .to_str()
            .expect("UTF-8")
            .to_owned()
    }

    #[test]
    fn success_writes_null_and_failure_an_error_object() {
        let (st, e) = err_of(|err| guard(err, || Ok(())));
        assert_eq!(st, ks_status::KS_OK);
        assert!(e.is_null());

        let (st, e) = err_of(|err| guard(err, || Err(FfiError::invalid("bad \0 thing"))));
        assert_eq!(st, ks_status::KS_ERR_INVALID_INPUT);
        assert!(!e.is_null());
        // SAFETY: a live error object.
        assert_eq!(
            unsafe { ks_error_status(e) },
            ks_status::KS_ERR_INVALID_INPUT
        );
        assert_eq!(message(e), "InvalidInput: bad   thing");
        // The message pointer stays put while the object lives.
        // SAFETY: live object.
        let (p1, p2) = unsafe { (ks_error_message(e), ks_error_message(e)) };
        assert_eq!(p1, p2);
        // SAFETY: freed once.
        unsafe { ks_error_free(e) };

        // NULL err: the status alone.
        assert_eq!(
            guard(ptr::null_mut(), || Err(FfiError::null("x"))),
            ks_status::KS_ERR_NULL_ARGUMENT
        );
    }

    #[test]
    fn a_panic_is_internal_and_reported() {
        let (st, e) = err_of(|err| guard(err, || panic!("boom")));
        assert_eq!(st, ks_status::KS_ERR_INTERNAL);
        // SAFETY: a live error object, freed once.
        unsafe {
            assert_eq!(ks_error_status(e), ks_status::KS_ERR_INTERNAL);
            assert!(message(e).starts_with("Internal: a panic"));
            ks_error_free(e);
        }
        assert_eq!(guard_value(7, || panic!("boom")), 7);
    }

    #[test]
    fn callbacks_make_error_objects_the_library_takes() {
        unsafe {
            assert!(ks_error_new(0, c"x".as_ptr()).is_null());
            let e = ks_error_new(
                ks_status::KS_ERR_UNAVAILABLE as c_int,
                c"down \xff".as_ptr().cast(),
            );
            assert_eq!(ks_error_status(e), ks_status::KS_ERR_UNAVAILABLE);
            assert_eq!(take_error_message(e).as_deref(), Some("down \u{fffd}"));
            let e = ks_error_new(4242, ptr::null());
            assert_eq!(ks_error_status(e), ks_status::KS_ERR_INTERNAL);
            assert_eq!(message(e), "");
            ks_error_free(e);
            assert_eq!(take_error_message(ptr::null_mut()), None);
        }
        for st in [0, 1, 12, 100, 101] {
            assert_eq!(status_from_int(st) as c_int, st);
        }
        for st in [-1, 13, 99, 102, c_int::MAX] {
            assert_eq!(status_from_int(st), ks_status::KS_ERR_INTERNAL);
        }
    }

    #[test]
    fn null_error_objects_read_as_success() {
        // SAFETY: NULL is allowed everywhere.
        unsafe {
            assert_eq!(ks_error_status(ptr::null()), ks_status::KS_OK);
            assert_eq!(message(ptr::null()), "");
            ks_error_free(ptr::null_mut());
        }
    }

    #[test]
    fn error_objects_move_between_threads() {
        let handles: Vec<_> = (0..4usize)
            .map(|i| {
                std::thread::spawn(move || {
                    let mut e = ptr::null_mut();
                    guard(&mut e, || Err(FfiError::invalid(format!("thread {i}"))));
                    e as usize
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let e = h.join().expect("thread") as *mut ks_error;
            assert_eq!(message(e), format!("InvalidInput: thread {i}"));
            // SAFETY: made on another thread, freed once here.
            unsafe { ks_error_free(e) };
        }
    }

    #[test]
    fn buffers_are_wiped_freed_and_reset() {
        let mut b = ks_buffer::from_vec(vec![1, 2, 3]);
        assert_eq!(b.len, 3);
        // SAFETY: a buffer the library filled; freeing twice is allowed.
        unsafe {
            ks_buffer_free(&mut b);
            assert!(b.data.is_null() && b.len == 0);
            ks_buffer_free(&mut b);
            ks_buffer_free(ptr::null_mut());
        }
        let e = ks_buffer::from_vec(Vec::new());
        assert!(e.data.is_null() && e.len == 0);
        let mut out = ks_buffer {
            data: ptr::null_mut(),
            len: 9,
        };
        // SAFETY: a writable ks_buffer.
        unsafe { put_buffer(&mut out, vec![5; 40]) };
        // SAFETY: data/len from put_buffer.
        assert_eq!(
            unsafe { std::slice::from_raw_parts(out.data, out.len) },
            &[5; 40]
        );
        // SAFETY: freed once.
        unsafe { ks_buffer_free(&mut out) };
    }

    #[test]
    fn strings_handed_out_round_trip() {
        let p = into_c_string("key-7".into(), "key_id").expect("no NUL");
        // SAFETY: from into_c_string.
        assert_eq!(unsafe { c_str(p, "p") }.expect("UTF-8"), "key-7");
        // SAFETY: freed once; NULL is a no-op.
        unsafe {
            free_c_string(p);
            free_c_string(ptr::null_mut());
        }
        assert_eq!(
            st(into_c_string("a\0b".into(), "key_id")),
            ks_status::KS_ERR_INVALID_INPUT
        );
    }

    #[test]
    fn argument_helpers_check_null_and_range() {
        let data = [1u8, 2, 3];
        // SAFETY: each pointer is NULL or valid for its length.
        unsafe {
            assert_eq!(bytes(data.as_ptr(), 3, "d").expect("ok"), &data);
            assert_eq!(bytes(ptr::null(), 0, "d").expect("ok"), &[] as &[u8]);
            assert_eq!(
                st(bytes(ptr::null(), 1, "d")),
                ks_status::KS_ERR_NULL_ARGUMENT
            );
            // Checked before anything is read: the pointer is never used.
            assert_eq!(
                st(bytes(data.as_ptr(), usize::MAX, "d")),
                ks_status::KS_ERR_INVALID_INPUT
            );
            let ptrs = [c"a".as_ptr(), c"bc".as_ptr()];
            let a = array(ptrs.as_ptr(), 2, "names").expect("ok");
            assert_eq!(c_str(a[1], "names[1]").expect("ok"), "bc");
            assert_eq!(
                st(array::<u64>(ptr::null(), 2, "n")),
                ks_status::KS_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                st(array(ptrs.as_ptr(), usize::MAX / 2, "n")),
                ks_status::KS_ERR_INVALID_INPUT
            );
            let bad = [0xffu8, 0];
            assert_eq!(
                st(c_str(bad.as_ptr().cast(), "s")),
                ks_status::KS_ERR_INVALID_INPUT
            );
            assert_eq!(
                c_strings(ptrs.as_ptr(), 2, "names").expect("ok"),
                ["a", "bc"]
            );
            assert!(c_strings(ptr::null(), 0, "names").expect("ok").is_empty());
            let with_null = [c"a".as_ptr(), ptr::null()];
            let e = c_strings(with_null.as_ptr(), 2, "names").expect_err("NULL element");
            assert_eq!(e.status, ks_status::KS_ERR_NULL_ARGUMENT);
            assert!(e.message.contains("names[1]"), "{}", e.message);
            let with_bad = [c"a".as_ptr(), bad.as_ptr().cast()];
            assert_eq!(
                st(c_strings(with_bad.as_ptr(), 2, "names")),
                ks_status::KS_ERR_INVALID_INPUT
            );
            assert_eq!(opt_str(ptr::null(), "s").expect("ok"), None);
            assert_eq!(
                st(handle::<u8>(ptr::null(), "h")),
                ks_status::KS_ERR_NULL_ARGUMENT
            );
        }
        assert!(out_ptr::<u8>(ptr::null_mut(), "o").is_err());
    }

    #[test]
    fn handles_and_out_params() {
        let mut h: *mut String = ptr::null_mut();
        let mut n = 0u32;
        // SAFETY: writable out-params; the handle is freed once.
        unsafe {
            put_handle(&mut h, String::from("x"));
            assert_eq!(*h, "x");
            free_handle(h);
            free_handle::<String>(ptr::null_mut());
            put(&mut n, 5);
            put_opt(ptr::null_mut::<u32>(), 6);
            put_opt(&mut n, 7);
        }
        assert_eq!(n, 7);
    }

    #[test]
    fn overlap_is_checked_on_addresses() {
        let buf = [0u8; 16];
        let p = buf.as_ptr();
        // SAFETY: offsets within `buf`.
        let (p4, p8) = unsafe { (p.add(4), p.add(8)) };
        assert!(overlaps(p, 8, p4, 8));
        assert!(!overlaps(p, 8, p8, 8));
        assert!(!overlaps(p, 0, p, 8));
        assert!(!overlaps(p, 8, p4, 0));
    }

    #[test]
    fn caller_sized_outputs() {
        let mut out_len = 0usize;
        // A query: out NULL, cap ignored.
        let s = SizedOut::<u8>::new(ptr::null_mut(), 99, &mut out_len, "out").expect("ok");
        // SAFETY: nothing is written for a query but out_len.
        unsafe { s.copy_from(b"hello").expect("query") };
        assert_eq!(out_len, 5);

        // Too small: the length needed, nothing else.
        let mut buf = [0xaau8; 4];
        out_len = 0;
        let s = SizedOut::new(buf.as_mut_ptr(), buf.len(), &mut out_len, "out").expect("ok");
        // SAFETY: buf is 4 writable bytes.
        let e = unsafe { s.copy_from(b"hello") };
        assert_eq!(st(e), ks_status::KS_ERR_BUFFER_TOO_SMALL);
        assert_eq!(out_len, 5);
        assert_eq!(buf, [0xaa; 4]);

        // Fits: copied, the rest untouched.
        let mut buf = [0xaau8; 8];
        let s = SizedOut::new(buf.as_mut_ptr(), buf.len(), &mut out_len, "out").expect("ok");
        // SAFETY: buf is 8 writable bytes.
        unsafe { s.copy_from(b"hello").expect("fits") };
        assert_eq!(&buf, b"hello\xaa\xaa\xaa");
        assert_eq!(out_len, 5);

        // A zero-length result into a zero-capacity (non-NULL) buffer.
        let s = SizedOut::new(buf.as_mut_ptr(), 0, &mut out_len, "out").expect("ok");
        // SAFETY: nothing is written.
        unsafe { s.copy_from(b"").expect("empty") };
        assert_eq!(out_len, 0);

        // Overlap with an input is refused before any reference exists.
        let mut buf = [0u8; 16];
        let p = buf.as_mut_ptr();
        let s = SizedOut::new(p, 16, &mut out_len, "out").expect("ok");
        // SAFETY: an address inside buf, compared only.
        let inside = unsafe { p.add(4) } as *const u8;
        // SAFETY: buf is 16 writable bytes.
        let e = unsafe { s.slice(8, &[(inside, 4)]) };
        assert_eq!(st(e), ks_status::KS_ERR_INVALID_INPUT);
        // Past the bytes that would be written, an input is fine.
        // SAFETY: as above.
        let got = unsafe { s.slice(4, &[(inside, 4)]) }.expect("disjoint");
        assert_eq!(got.map(|b| b.len()), Some(4));

        // out_len is required; a capacity no array can have is refused.
        assert_eq!(
            SizedOut::<u8>::new(p, 1, ptr::null_mut(), "out")
                .err()
                .map(|e| e.status),
            Some(ks_status::KS_ERR_NULL_ARGUMENT)
        );
        assert_eq!(
            SizedOut::<u64>::new(p.cast(), usize::MAX / 4, &mut out_len, "out")
                .err()
                .map(|e| e.status),
            Some(ks_status::KS_ERR_INVALID_INPUT)
        );
    }

    #[test]
    fn raw_bytes_round_trip() {
        let (p, n) = into_raw_bytes(vec![9; 10]);
        assert_eq!(n, 10);
        // SAFETY: from into_raw_bytes, freed once.
        unsafe { free_raw_bytes(p, n) };
        let (p, n) = into_raw_bytes(Vec::new());
        assert!(p.is_null() && n == 0);
        // SAFETY: a no-op.
        unsafe { free_raw_bytes(p, n) };
    }
}
