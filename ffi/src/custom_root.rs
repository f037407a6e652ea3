//! Roots of the caller's own: a key manager written in C, as a table of
//! callbacks (ks_root_custom_new). The rules (provider names, output sizes,
//! closed state, message caps) are the core's `CustomRoot`; this file only
//! translates pointers, statuses and ownership.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use keystrata::root::custom::{
    check_provider_name, MAX_CUSTOM_CIPHERTEXT_LEN, MAX_CUSTOM_KEY_ID_LEN,
};
use keystrata::root::CustomRoot;
use keystrata::{Envelope, Error, ErrorKind, KeyManager, SecretBytes, MAX_WRAPPED_KEY_LEN};
use zeroize::Zeroizing;

use crate::root::{ks_root, RootKind};
use crate::*;

/// The size of the `key_id` buffer the wrap_key callback writes: a key ID
/// of at most 256 bytes of UTF-8, then a NUL.
pub const KS_CUSTOM_KEY_ID_CAP: usize = 257;

/// The largest wrapped key a wrap_key callback may return, in bytes.
pub const KS_CUSTOM_MAX_CIPHERTEXT: usize = 65536;

// Literals above so cbindgen writes numbers; the core's limits are the source.
const _: () = assert!(KS_CUSTOM_KEY_ID_CAP == MAX_CUSTOM_KEY_ID_LEN + 1);
const _: () = assert!(KS_CUSTOM_MAX_CIPHERTEXT == MAX_CUSTOM_CIPHERTEXT_LEN);

/// The wrap_key callback: wraps `key` (`key_len` bytes, 1 to 4096) bound to
/// `context` (`context_len` bytes; NULL when 0) and writes the wrapped key
/// into `out` (room for `cap` bytes) with its length in `*out_len`, the
/// wrapping key's ID into `key_id` (room for `key_id_cap` =
/// KS_CUSTOM_KEY_ID_CAP bytes, NUL-terminated UTF-8; may be "") and its
/// version (≥ 1) into `*key_version`. Returns KS_OK, or a KS_ERR_* status
/// and, optionally, an error object in `*err` (ks_error_new) whose message
/// the library keeps (cut to 256 characters): never put a secret in it.
/// If the wrapped key needs more than `cap` bytes, set `*out_len` to the
/// length needed and return KS_ERR_BUFFER_TOO_SMALL: the library calls
/// again once with that much room (up to KS_CUSTOM_MAX_CIPHERTEXT).
/// The pointers are valid only during the call.
pub type ks_custom_wrap_key_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        key: *const u8,
        key_len: usize,
        context: *const u8,
        context_len: usize,
        out: *mut u8,
        cap: usize,
        out_len: *mut usize,
        key_id: *mut c_char,
        key_id_cap: usize,
        key_version: *mut u32,
        err: *mut *mut ks_error,
    ) -> c_int,
>;

/// The unwrap_key callback: unwraps `envelope` (one this root's wrap_key
/// made; its provider is checked before the call) bound to `context`, and
/// writes the key into `out` (room for `cap` = 4096 bytes, which the
/// library wipes afterwards) with its length in `*out_len`. A wrong
/// context or a changed envelope must give KS_ERR_AUTHENTICATION. Returns
/// as wrap_key does. The pointers are valid only during the call.
pub type ks_custom_unwrap_key_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        envelope: *const ks_envelope,
        context: *const u8,
        context_len: usize,
        out: *mut u8,
        cap: usize,
        out_len: *mut usize,
        err: *mut *mut ks_error,
    ) -> c_int,
>;

/// The active_key_version callback: writes the version (≥ 1) new envelopes
/// are wrapped under into `*out`. Returns as wrap_key does.
pub type ks_custom_active_key_version_fn = Option<
    unsafe extern "C" fn(userdata: *mut c_void, out: *mut u32, err: *mut *mut ks_error) -> c_int,
>;

/// The health_check callback: KS_OK if the backend can serve (e.g.
/// KS_ERR_UNAVAILABLE when it is unreachable). Returns as wrap_key does.
pub type ks_custom_health_check_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, err: *mut *mut ks_error) -> c_int>;

/// The free_userdata callback: releases `userdata`. Called exactly once,
/// when the last reference to the root goes (ks_root_free, or the last
/// keychain opened with it freed), on whichever thread drops it.
pub type ks_custom_free_userdata_fn = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// A key manager of your own, as callbacks (ks_root_custom_new): e.g. a
/// client of your KMS. wrap_key and unwrap_key are required; the others
/// may be NULL (active_key_version: 1; health_check: KS_OK;
/// free_userdata: nothing to release). The struct is copied.
///
/// The callbacks may be called from several threads at once, and must not
/// call a keychain opened with this root (a save holds its lock).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ks_custom_root_callbacks {
    /// Required.
    pub wrap_key: ks_custom_wrap_key_fn,
    /// Required.
    pub unwrap_key: ks_custom_unwrap_key_fn,
    /// Optional (NULL: version 1).
    pub active_key_version: ks_custom_active_key_version_fn,
    /// Optional (NULL: always healthy).
    pub health_check: ks_custom_health_check_fn,
    /// Optional (NULL: nothing to release).
    pub free_userdata: ks_custom_free_userdata_fn,
}

/// The callbacks and their userdata, as a core KeyManager.
struct CallbackKm {
    provider: String,
    cb: ks_custom_root_callbacks,
    userdata: *mut c_void,
    /// Set once the root exists: from then on, dropping it frees userdata
    /// (a failed ks_root_custom_new leaves userdata to the caller).
    owns_userdata: AtomicBool,
}

// SAFETY: the callbacks' contract (ks_custom_root_callbacks) is that they
// may be called from any thread at once, and free_userdata from any thread.
unsafe impl Send for CallbackKm {}
unsafe impl Sync for CallbackKm {}

impl Drop for CallbackKm {
    fn drop(&mut self) {
        if let (true, Some(free)) = (
            self.owns_userdata.load(Ordering::Acquire),
            self.cb.free_userdata,
        ) {
            // SAFETY: the caller's function and pointer, called once (the
            // last reference is going away).
            unsafe { free(self.userdata) };
        }
    }
}

/// What a callback's status and error object say, as a core error.
/// The callback's error object is consumed here.
fn callback_error(what: &str, status: c_int, err: *mut ks_error) -> Error {
    // SAFETY: NULL, or an object the callback made with ks_error_new and
    // handed over by writing it to *err.
    let message = unsafe { take_error_message(err) };
    let kind = u32::try_from(status)
        .ok()
        .and_then(ErrorKind::from_code)
        .unwrap_or(ErrorKind::Backend);
    let message = message.unwrap_or_else(|| {
        let name = unsafe { CStr::from_ptr(ks_status_name(status)) };
        format!("{what} callback returned {}", name.to_string_lossy())
    });
    Error::new(kind, message)
}

impl CallbackKm {
    fn broken(&self, rule: &str) -> Error {
        Error::new(ErrorKind::Backend, rule.to_owned())
    }
}

impl KeyManager for CallbackKm {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn wrap_key(&self, key: &[u8], context: &[u8]) -> keystrata::Result<Envelope> {
        let wrap = self
            .cb
            .wrap_key
            .ok_or_else(|| self.broken("no wrap_key callback"))?;
        let mut cap = key.len() + 1024;
        let mut retried = false;
        loop {
            let mut out = vec![0u8; cap];
            let mut out_len = 0usize;
            let mut key_id = [0u8; KS_CUSTOM_KEY_ID_CAP];
            let mut version = 0u32;
            let mut err: *mut ks_error = std::ptr::null_mut();
            // SAFETY: every pointer is valid for the call with the sizes
            // given; the callback's contract is the header's.
            let status = unsafe {
                wrap(
                    self.userdata,
                    key.as_ptr(),
                    key.len(),
                    nullable(context),
                    context.len(),
                    out.as_mut_ptr(),
                    cap,
                    &mut out_len,
                    key_id.as_mut_ptr().cast(),
                    KS_CUSTOM_KEY_ID_CAP,
                    &mut version,
                    &mut err,
                )
            };
            if status == ks_status::KS_ERR_BUFFER_TOO_SMALL as c_int
                && !retried
                && out_len > cap
                && out_len <= KS_CUSTOM_MAX_CIPHERTEXT
            {
                // SAFETY: as in callback_error.
                drop(unsafe { take_error_message(err) });
                cap = out_len;
                retried = true;
                continue;
            }
            if status != ks_status::KS_OK as c_int {
                return Err(callback_error("wrap_key", status, err));
            }
            // SAFETY: as in callback_error (an error object with KS_OK is
            // dropped).
            drop(unsafe { take_error_message(err) });
            if out_len > cap {
                return Err(
                    self.broken("wrap_key callback reported more bytes than it had room for")
                );
            }
            let key_id = CStr::from_bytes_until_nul(&key_id)
                .map_err(|_| self.broken("wrap_key callback wrote a key ID without a NUL"))?
                .to_str()
                .map_err(|_| self.broken("wrap_key callback wrote a key ID that is not UTF-8"))?
                .to_owned();
            out.truncate(out_len);
            return Ok(Envelope {
                key_id,
                key_version: version,
                provider: self.provider.clone(),
                ciphertext: out,
            });
        }
    }

    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> keystrata::Result<SecretBytes> {
        let unwrap = self
            .cb
            .unwrap_key
            .ok_or_else(|| self.broken("no unwrap_key callback"))?;
        let to_c = |s: &str| {
            std::ffi::CString::new(s)
                .map_err(|_| Error::new(ErrorKind::InvalidInput, "envelope string holds a NUL"))
        };
        let key_id = to_c(&envelope.key_id)?;
        let provider = to_c(&envelope.provider)?;
        let mut ciphertext = envelope.ciphertext.clone();
        let env = ks_envelope {
            key_id: key_id.as_ptr().cast_mut(),
            key_version: envelope.key_version,
            provider: provider.as_ptr().cast_mut(),
            ciphertext: ciphertext.as_mut_ptr(),
            ciphertext_len: ciphertext.len(),
        };
        let mut out = Zeroizing::new(vec![0u8; MAX_WRAPPED_KEY_LEN]);
        let mut out_len = 0usize;
        let mut err: *mut ks_error = std::ptr::null_mut();
        // SAFETY: as in wrap_key; `env` points at buffers alive for the call.
        let status = unsafe {
            unwrap(
                self.userdata,
                &env,
                nullable(context),
                context.len(),
                out.as_mut_ptr(),
                out.len(),
                &mut out_len,
                &mut err,
            )
        };
        if status != ks_status::KS_OK as c_int {
            return Err(callback_error("unwrap_key", status, err));
        }
        // SAFETY: as in callback_error.
        drop(unsafe { take_error_message(err) });
        if out_len > out.len() {
            return Err(self.broken("unwrap_key callback reported more bytes than it had room for"));
        }
        Ok(SecretBytes::from(out[..out_len].to_vec()))
    }

    fn active_key_version(&self) -> keystrata::Result<u32> {
        let Some(f) = self.cb.active_key_version else {
            return Ok(1);
        };
        let mut v = 0u32;
        let mut err: *mut ks_error = std::ptr::null_mut();
        // SAFETY: as in wrap_key.
        let status = unsafe { f(self.userdata, &mut v, &mut err) };
        if status != ks_status::KS_OK as c_int {
            return Err(callback_error("active_key_version", status, err));
        }
        drop(unsafe { take_error_message(err) });
        Ok(v)
    }

    fn health_check(&self) -> keystrata::Result<()> {
        let Some(f) = self.cb.health_check else {
            return Ok(());
        };
        let mut err: *mut ks_error = std::ptr::null_mut();
        // SAFETY: as in wrap_key.
        let status = unsafe { f(self.userdata, &mut err) };
        if status != ks_status::KS_OK as c_int {
            return Err(callback_error("health_check", status, err));
        }
        drop(unsafe { take_error_message(err) });
        Ok(())
    }

    fn close(&self) -> keystrata::Result<()> {
        // userdata is released by free_userdata when the last reference
        // goes; there is no close of its own.
        Ok(())
    }
}

/// An empty slice as NULL (the header's "NULL when 0").
fn nullable(s: &[u8]) -> *const u8 {
    if s.is_empty() {
        std::ptr::null()
    } else {
        s.as_ptr()
    }
}

/// Creates a root from a key manager of your own: `callbacks` (copied)
/// called with `userdata`. `provider` (NUL-terminated) names it in the
/// envelopes it makes: 1 to 64 characters of [a-z0-9._-], not one of
/// keystrata's own ("keystrata", "age", "age-scrypt", "pkcs11", "kmip",
/// "aws-kms"). Keychains saved under it are in the wrapped form
/// (docs/FORMAT.md §7.1): one wrap_key per save, one unwrap_key per load.
///
/// The library checks what the callbacks return (docs/ROOTS.md, "A root of
/// your own"): a wrapped key of 1 to KS_CUSTOM_MAX_CIPHERTEXT bytes, a key
/// ID of at most 256 bytes of UTF-8, versions ≥ 1, an unwrapped key of 1 to
/// 4096 bytes; a callback breaking a rule gives KS_ERR_BACKEND. A
/// callback's own status is kept (an unknown one becomes KS_ERR_BACKEND).
///
/// Ownership: on success the root owns `userdata` and releases it with
/// free_userdata when its last reference goes; on failure the caller
/// keeps it (free_userdata is not called). `*out` is released with
/// ks_root_free.
/// NULL: `provider`, `callbacks`, `callbacks->wrap_key`,
/// `callbacks->unwrap_key` and `out` must not be NULL; `userdata` may be.
/// Errors: KS_ERR_NULL_ARGUMENT, KS_ERR_INVALID_INPUT (a bad provider name).
/// Thread safety: safe to call from any thread; the root is shareable.
#[no_mangle]
pub unsafe extern "C" fn ks_root_custom_new(
    provider: *const c_char,
    callbacks: *const ks_custom_root_callbacks,
    userdata: *mut c_void,
    out: *mut *mut ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let provider = unsafe { c_str(provider, "provider")? };
        let cb = *unsafe { handle(callbacks, "callbacks")? };
        if cb.wrap_key.is_none() {
            return Err(FfiError::null("callbacks->wrap_key"));
        }
        if cb.unwrap_key.is_none() {
            return Err(FfiError::null("callbacks->unwrap_key"));
        }
        check_provider_name(provider)?;
        let km = CallbackKm {
            provider: provider.to_owned(),
            cb,
            userdata,
            owns_userdata: AtomicBool::new(false),
        };
        let root = CustomRoot::new(km)?;
        root.inner().owns_userdata.store(true, Ordering::Release);
        let root: Arc<dyn keystrata::Root> = Arc::new(root);
        unsafe { put_handle(out, ks_root::new(RootKind::Other(root))) };
        Ok(())
    })
}
