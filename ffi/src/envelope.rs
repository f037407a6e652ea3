//! ks_envelope: a wrapped data key and its object-metadata form.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

use keystrata::{Envelope, KeyManager};

use crate::*;

/// A wrapped data key: {key_id, key_version, provider, ciphertext}, with an
/// object-metadata form of four string entries
/// (x-amz-meta-encryption-wrapped-key, -kms-id, -kms-provider,
/// -key-version). Create with ks_keychain_wrap_key, ks_envelope_new or
/// ks_envelope_from_metadata; release with ks_envelope_free.
///
/// Thread safety: immutable and shareable between threads.
pub struct ks_envelope {
    env: Envelope,
    key_id: CString,
    provider: CString,
    /// The metadata form, made on first use: most envelopes are only
    /// stored and unwrapped (making it eagerly was a third of the cost of
    /// a wrap from Go).
    metadata: OnceLock<Vec<(CString, CString)>>,
}

impl ks_envelope {
    fn new(env: Envelope) -> FfiResult<ks_envelope> {
        let c = |s: String| CString::new(s).map_err(|_| FfiError::invalid("a string contains NUL"));
        Ok(ks_envelope {
            key_id: c(env.key_id.clone())?,
            provider: c(env.provider.clone())?,
            metadata: OnceLock::new(),
            env,
        })
    }

    fn metadata(&self) -> &[(CString, CString)] {
        self.metadata.get_or_init(|| {
            // Names are constants; values are base64, decimal, and the key
            // ID and provider, which `new` checked hold no NUL.
            let c = |s: String| CString::new(s).unwrap_or_default();
            self.env
                .to_metadata()
                .into_iter()
                .map(|(k, v)| (c(k), c(v)))
                .collect()
        })
    }
}

/// Wraps `key_len` bytes (1..4096) of `key`, binding the result to the
/// keychain, the primary's key ID and version, and `context`. Release
/// `*out` with ks_envelope_free. Errors: KS_ERR_INVALID_INPUT (length),
/// and as ks_keychain_seal.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_wrap_key(
    kc: *const ks_keychain,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut *mut ks_envelope,
) -> ks_status {
    guard(|| {
        let kc = unsafe { handle(kc, "kc")? };
        let key = unsafe { bytes(key, key_len, "key")? };
        let context = unsafe { bytes(context, context_len, "context")? };
        let out = out_ptr(out, "out")?;
        let env = ks_envelope::new(kc.inner.wrap_key(key, context)?)?;
        unsafe { put_handle(out, env) };
        Ok(())
    })
}

/// Unwraps an envelope made by ks_keychain_wrap_key with the same
/// `context`; the key is written to `*out` (secret: release with
/// ks_buffer_free). Errors: KS_ERR_AUTHENTICATION (changed envelope or
/// context), KS_ERR_INVALID_INPUT (another provider), KS_ERR_FORMAT,
/// KS_ERR_UNKNOWN_KEY, KS_ERR_KEY_DISABLED, KS_ERR_KEY_DESTROYED.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_unwrap_key(
    kc: *const ks_keychain,
    envelope: *const ks_envelope,
    context: *const u8,
    context_len: usize,
    out: *mut ks_buffer,
) -> ks_status {
    guard(|| {
        let kc = unsafe { handle(kc, "kc")? };
        let env = unsafe { handle(envelope, "envelope")? };
        let context = unsafe { bytes(context, context_len, "context")? };
        let out = out_ptr(out, "out")?;
        let k = kc.inner.unwrap_key(&env.env, context)?;
        unsafe { put_buffer(out, k.expose_secret().to_vec()) };
        Ok(())
    })
}

/// Builds an envelope from its four fields (strings are copied). Release
/// with ks_envelope_free. Errors: KS_ERR_INVALID_INPUT for non-UTF-8.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_new(
    key_id: *const c_char,
    key_version: u32,
    provider: *const c_char,
    ciphertext: *const u8,
    ciphertext_len: usize,
    out: *mut *mut ks_envelope,
) -> ks_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let key_id = unsafe { c_str(key_id, "key_id")? };
        let provider = unsafe { c_str(provider, "provider")? };
        let ct = unsafe { bytes(ciphertext, ciphertext_len, "ciphertext")? };
        let env = ks_envelope::new(Envelope {
            key_id: key_id.to_owned(),
            key_version,
            provider: provider.to_owned(),
            ciphertext: ct.to_vec(),
        })?;
        unsafe { put_handle(out, env) };
        Ok(())
    })
}

/// Reads an envelope from `count` metadata entries (`names[i]` = `values[i]`,
/// NUL-terminated UTF-8). Other entries are ignored.
/// Errors: KS_ERR_FORMAT if an entry is missing or malformed.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_from_metadata(
    names: *const *const c_char,
    values: *const *const c_char,
    count: usize,
    out: *mut *mut ks_envelope,
) -> ks_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let n = unsafe { array(names, count, "names")? };
        let v = unsafe { array(values, count, "values")? };
        let mut pairs = Vec::with_capacity(n.len());
        for (k, val) in n.iter().zip(v) {
            let k = unsafe { c_str(*k, "names[i]")? };
            let val = unsafe { c_str(*val, "values[i]")? };
            pairs.push((k, val));
        }
        let env = ks_envelope::new(Envelope::from_metadata(pairs)?)?;
        unsafe { put_handle(out, env) };
        Ok(())
    })
}

/// The key ID (NUL-terminated; owned by the envelope). NULL if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_key_id(env: *const ks_envelope) -> *const c_char {
    guard_value(std::ptr::null(), || match unsafe { handle(env, "env") } {
        Ok(e) => e.key_id.as_ptr(),
        Err(_) => std::ptr::null(),
    })
}

/// The key version; 0 if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_key_version(env: *const ks_envelope) -> u32 {
    guard_value(0, || {
        unsafe { handle(env, "env") }
            .map(|e| e.env.key_version)
            .unwrap_or(0)
    })
}

/// The provider ("keystrata" for a keychain; owned by the envelope). NULL
/// if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_provider(env: *const ks_envelope) -> *const c_char {
    guard_value(std::ptr::null(), || match unsafe { handle(env, "env") } {
        Ok(e) => e.provider.as_ptr(),
        Err(_) => std::ptr::null(),
    })
}

/// The wrapped key's bytes (owned by the envelope); its length goes to
/// `*len`. NULL (and *len = 0) if `env` is NULL; `len` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_ciphertext(
    env: *const ks_envelope,
    len: *mut usize,
) -> *const u8 {
    guard_value(std::ptr::null(), || {
        let e = unsafe { handle(env, "env") }.ok();
        if !len.is_null() {
            unsafe { put(len, e.map(|e| e.env.ciphertext.len()).unwrap_or(0)) };
        }
        e.map(|e| e.env.ciphertext.as_ptr())
            .unwrap_or(std::ptr::null())
    })
}

/// The number of metadata entries (4); 0 if `env` is NULL.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_metadata_count(env: *const ks_envelope) -> usize {
    guard_value(0, || {
        unsafe { handle(env, "env") }
            .map(|e| e.metadata().len())
            .unwrap_or(0)
    })
}

/// Metadata entry `index` (0..count): `*name` and `*value` point to
/// NUL-terminated strings owned by the envelope.
/// Errors: KS_ERR_INVALID_INPUT if `index` is out of range.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_metadata_entry(
    env: *const ks_envelope,
    index: usize,
    name: *mut *const c_char,
    value: *mut *const c_char,
) -> ks_status {
    guard(|| {
        let e = unsafe { handle(env, "env")? };
        let name = out_ptr(name, "name")?;
        let value = out_ptr(value, "value")?;
        let metadata = e.metadata();
        let (k, v) = metadata.get(index).ok_or_else(|| {
            FfiError::invalid(format!(
                "metadata index {index} out of range ({})",
                metadata.len()
            ))
        })?;
        unsafe {
            put(name, k.as_ptr());
            put(value, v.as_ptr());
        }
        Ok(())
    })
}

/// Releases an envelope. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_free(env: *mut ks_envelope) {
    guard_value((), || {
        if !env.is_null() {
            // SAFETY: allocated by Box::into_raw in put_handle.
            drop(unsafe { Box::from_raw(env) });
        }
    })
}
