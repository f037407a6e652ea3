//! ks_envelope: a wrapped data key as a flat struct, and its
//! object-metadata form.

use std::ffi::c_char;

use keystrata::{Envelope, KeyManager};

use crate::*;

/// A wrapped data key: {key_id, key_version, provider, ciphertext}, as a
/// plain struct a caller can declare on the stack.
///
/// Filled by the library (ks_keychain_wrap_key, ks_envelope_from_metadata):
/// every pointer is library-allocated; release them all with
/// ks_envelope_clear, which also zeroes the struct.
///
/// Filled by the caller (to pass to ks_keychain_unwrap_key,
/// ks_keychain_unwrap_key_to or ks_envelope_to_metadata): the strings are
/// NUL-terminated UTF-8 and the ciphertext may be NULL only when
/// ciphertext_len is 0; the library only reads them during the call and
/// keeps no pointer. Never pass such a struct to ks_envelope_clear.
///
/// Thread safety: plain data; the library never mutates an envelope it was
/// given as `const ks_envelope *`.
#[repr(C)]
pub struct ks_envelope {
    /// The wrapping key's ID, NUL-terminated (for a keychain: its decimal
    /// key ID).
    pub key_id: *mut c_char,
    /// The wrapping key's version.
    pub key_version: u32,
    /// Which key manager made it ("keystrata" for a keychain),
    /// NUL-terminated.
    pub provider: *mut c_char,
    /// The wrapped key's bytes.
    pub ciphertext: *mut u8,
    /// Number of bytes at `ciphertext`.
    pub ciphertext_len: usize,
}

/// One object-metadata entry: `name` = `value`, both NUL-terminated.
#[repr(C)]
pub struct ks_metadata_entry {
    /// The entry's name, e.g. "x-amz-meta-encryption-kms-id".
    pub name: *mut c_char,
    /// Its value.
    pub value: *mut c_char,
}

/// An envelope's object-metadata form, filled by ks_envelope_to_metadata:
/// `count` entries (four today: x-amz-meta-encryption-wrapped-key, -kms-id,
/// -kms-provider, -key-version), sorted by name. Release with
/// ks_metadata_clear.
#[repr(C)]
pub struct ks_metadata {
    /// The entries; NULL when count is 0.
    pub entries: *mut ks_metadata_entry,
    /// Number of entries.
    pub count: usize,
}

/// Reads a caller's envelope into the core's type (copies).
pub(crate) unsafe fn envelope_in(env: *const ks_envelope) -> FfiResult<Envelope> {
    let e = unsafe { handle(env, "envelope")? };
    Ok(Envelope {
        key_id: unsafe { c_str(e.key_id, "envelope->key_id")? }.to_owned(),
        key_version: e.key_version,
        provider: unsafe { c_str(e.provider, "envelope->provider")? }.to_owned(),
        ciphertext: unsafe { bytes(e.ciphertext, e.ciphertext_len, "envelope->ciphertext")? }
            .to_vec(),
    })
}

/// Fills `*out` with library-allocated copies of `env`'s fields. Nothing
/// is written unless every field converts.
pub(crate) unsafe fn put_envelope(out: *mut ks_envelope, env: Envelope) -> FfiResult {
    let key_id = into_c_string(env.key_id, "key_id")?;
    let provider = match into_c_string(env.provider, "provider") {
        Ok(p) => p,
        Err(e) => {
            unsafe { free_c_string(key_id) };
            return Err(e);
        }
    };
    let (ciphertext, ciphertext_len) = into_raw_bytes(env.ciphertext);
    unsafe {
        put(
            out,
            ks_envelope {
                key_id,
                key_version: env.key_version,
                provider,
                ciphertext,
                ciphertext_len,
            },
        )
    };
    Ok(())
}

/// Wraps `key_len` bytes (1..4096) of `key`, binding the result to the
/// keychain, the primary's key ID and version, and `context`. Fills `*out`
/// (a struct the caller provides, e.g. on its stack); release its fields
/// with ks_envelope_clear. Errors: KS_ERR_INVALID_INPUT (length), and as
/// ks_keychain_seal.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_wrap_key(
    kc: *const ks_keychain,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut ks_envelope,
    err: *mut *mut ks_error,
) -> ks_status {
    // SAFETY: the same contract, passed through.
    unsafe {
        ks_keychain_wrap_key_with(
            kc,
            key,
            key_len,
            context,
            context_len,
            KS_WRAP_FULL,
            out,
            err,
        )
    }
}

/// Unwraps `envelope` (made by ks_keychain_wrap_key, filled by the library
/// or by the caller) with the same `context`; the key is written to `*out`
/// (secret: release with ks_buffer_free, which wipes it).
/// Errors: KS_ERR_AUTHENTICATION (changed envelope or context),
/// KS_ERR_INVALID_INPUT (another provider, a field that is not UTF-8),
/// KS_ERR_FORMAT, KS_ERR_UNKNOWN_KEY, KS_ERR_KEY_DISABLED,
/// KS_ERR_KEY_DESTROYED.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_unwrap_key(
    kc: *const ks_keychain,
    envelope: *const ks_envelope,
    context: *const u8,
    context_len: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let env = unsafe { envelope_in(envelope)? };
        let context = unsafe { bytes(context, context_len, "context")? };
        let out = out_ptr(out, "out")?;
        let k = kc.inner.unwrap_key(&env, context)?;
        unsafe { put_buffer(out, k.expose_secret().to_vec()) };
        Ok(())
    })
}

/// ks_keychain_unwrap_key into a buffer the caller sizes: the key's length
/// is read from the envelope's ciphertext without unwrapping (32 for a
/// 32-byte data key). The key is never longer than the envelope's
/// ciphertext_len, so a buffer that large always has room. With `out` NULL only `*out_len` is written (`cap` is
/// ignored; a malformed ciphertext gives KS_ERR_FORMAT); a `cap` below the
/// length gives KS_ERR_BUFFER_TOO_SMALL with `*out_len` set, and nothing is
/// unwrapped. The library's own copy of the key is wiped before return.
/// Errors: as ks_keychain_unwrap_key.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_unwrap_key_to(
    kc: *const ks_keychain,
    envelope: *const ks_envelope,
    context: *const u8,
    context_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let dst = SizedOut::new(out, cap, out_len, "out")?;
        let env = unsafe { envelope_in(envelope)? };
        let context_s = unsafe { bytes(context, context_len, "context")? };
        match env.keychain_key_len() {
            Ok(n) => {
                if dst.is_query() {
                    kc.inner.health_check()?;
                    dst.set_len(n);
                    return Ok(());
                }
                // Refuse a short buffer before unwrapping anything.
                dst.room(n)?;
            }
            // A query answers with the error alone; an unwrap runs in the
            // core, which counts the failure and reports its own error.
            Err(e) if dst.is_query() => return Err(e.into()),
            Err(_) => {}
        }
        let key = kc.inner.unwrap_key(&env, context_s)?;
        // Inputs were all read (the envelope copied) before `out` is
        // written, so `out` may overlap them.
        unsafe { dst.copy_from(key.expose_secret()) }
    })
}

/// Reads an envelope from `count` metadata entries (`names[i]` = `values[i]`,
/// NUL-terminated UTF-8) into `*out`; release its fields with
/// ks_envelope_clear. Other entries are ignored.
/// Errors: KS_ERR_FORMAT if an entry is missing or malformed.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_from_metadata(
    names: *const *const c_char,
    values: *const *const c_char,
    count: usize,
    out: *mut ks_envelope,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let names = unsafe { c_strings(names, count, "names")? };
        let values = unsafe { c_strings(values, count, "values")? };
        let env = Envelope::from_metadata(names.into_iter().zip(values))?;
        unsafe { put_envelope(out, env) }
    })
}

/// Writes the object-metadata form of `envelope` (filled by the library or
/// by the caller) to `*out`: the entries ks_envelope_from_metadata reads.
/// Release with ks_metadata_clear.
/// Errors: KS_ERR_INVALID_INPUT (a field that is not UTF-8).
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_to_metadata(
    envelope: *const ks_envelope,
    out: *mut ks_metadata,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let env = unsafe { envelope_in(envelope)? };
        let out = out_ptr(out, "out")?;
        let mut entries = Vec::new();
        let mut failed = None;
        for (k, v) in env.to_metadata() {
            match (into_c_string(k, "name"), into_c_string(v, "value")) {
                (Ok(name), Ok(value)) => entries.push(ks_metadata_entry { name, value }),
                (name, value) => {
                    for p in [name, value].into_iter().flatten() {
                        unsafe { free_c_string(p) };
                    }
                    failed = Some(FfiError::invalid("an envelope field contains a NUL byte"));
                    break;
                }
            }
        }
        if let Some(e) = failed {
            unsafe { free_entries(entries) };
            return Err(e);
        }
        let count = entries.len();
        let entries = if count == 0 {
            std::ptr::null_mut()
        } else {
            Box::into_raw(entries.into_boxed_slice()).cast::<ks_metadata_entry>()
        };
        unsafe { put(out, ks_metadata { entries, count }) };
        Ok(())
    })
}

unsafe fn free_entries(entries: Vec<ks_metadata_entry>) {
    for e in entries {
        unsafe {
            free_c_string(e.name);
            free_c_string(e.value);
        }
    }
}

/// Frees the fields of an envelope the library filled and zeroes it (all
/// pointers NULL, lengths and version 0). NULL, or an envelope already
/// cleared (or zero-initialized), is a no-op. Never pass an envelope whose
/// fields the caller set.
#[no_mangle]
pub unsafe extern "C" fn ks_envelope_clear(envelope: *mut ks_envelope) {
    guard_value((), || {
        // SAFETY: NULL or an envelope the library filled.
        let Some(e) = (unsafe { envelope.as_mut() }) else {
            return;
        };
        // SAFETY: every field came from put_envelope and is freed once:
        // the struct is zeroed right after.
        unsafe {
            free_c_string(e.key_id);
            free_c_string(e.provider);
            free_raw_bytes(e.ciphertext, e.ciphertext_len);
            envelope.write(ks_envelope {
                key_id: std::ptr::null_mut(),
                key_version: 0,
                provider: std::ptr::null_mut(),
                ciphertext: std::ptr::null_mut(),
                ciphertext_len: 0,
            });
        }
    })
}

/// Frees the entries of a ks_metadata filled by ks_envelope_to_metadata
/// and zeroes it. NULL, or one already cleared, is a no-op.
#[no_mangle]
pub unsafe extern "C" fn ks_metadata_clear(metadata: *mut ks_metadata) {
    guard_value((), || {
        // SAFETY: NULL or a ks_metadata the library filled.
        let Some(m) = (unsafe { metadata.as_mut() }) else {
            return;
        };
        if !m.entries.is_null() && m.count > 0 {
            // SAFETY: a Box<[ks_metadata_entry]> of `count` entries made by
            // ks_envelope_to_metadata, freed once (zeroed below).
            let b =
                unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(m.entries, m.count)) };
            unsafe { free_entries(b.into_vec()) };
        }
        m.entries = std::ptr::null_mut();
        m.count = 0;
    })
}

/// ks_keychain_wrap_key_with: the full form (the Tink-prefixed sealed
/// ciphertext, key + 33 bytes; what ks_keychain_wrap_key makes).
pub const KS_WRAP_FULL: u32 = 1;
/// ks_keychain_wrap_key_with: the compact form (key + 29 bytes: 61 for a
/// 32-byte key, inside the 32..64-byte window of gateways built for AES
/// key wrap; the key ID travels only in the envelope's key_id). See
/// docs/FORMAT.md §4.1.
pub const KS_WRAP_COMPACT: u32 = 2;

/// ks_keychain_wrap_key in the chosen form, KS_WRAP_FULL or
/// KS_WRAP_COMPACT (any other value: KS_ERR_INVALID_INPUT).
/// ks_keychain_unwrap_key and ks_keychain_unwrap_key_to open both forms.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_wrap_key_with(
    kc: *const ks_keychain,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    form: u32,
    out: *mut ks_envelope,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let key = unsafe { bytes(key, key_len, "key")? };
        let context = unsafe { bytes(context, context_len, "context")? };
        let out = out_ptr(out, "out")?;
        let form = keystrata::WrapForm::from_code(form).ok_or_else(|| {
            FfiError::invalid(format!(
                "{form} is not a wrap form (KS_WRAP_FULL or KS_WRAP_COMPACT)"
            ))
        })?;
        let env = kc.inner.wrap_key_with(key, context, form)?;
        unsafe { put_envelope(out, env) }
    })
}

/// ks_metadata_context: bind no entry (the context is empty).
pub const KS_BIND_NOTHING: u32 = 1;
/// ks_metadata_context: bind exactly the entries named in `bound`.
pub const KS_BIND_ONLY: u32 = 2;
/// ks_metadata_context: bind every entry but the four envelope entries.
pub const KS_BIND_ALL: u32 = 3;

/// The wrap context of an object's metadata (docs/FORMAT.md §4.2): the
/// `count` entries `names[i]` = `values[i]` (NUL-terminated UTF-8), of
/// which `binding` (KS_BIND_NOTHING, KS_BIND_ONLY with the `bound_count`
/// names in `bound`, or KS_BIND_ALL) selects the bound ones, encoded
/// canonically. Pass the result as `context` to ks_keychain_wrap_key and
/// ks_keychain_unwrap_key. Written into a buffer the caller sizes (`out`
/// NULL: the length only). `bound` may be NULL when `bound_count` is 0.
/// Errors: KS_ERR_INVALID_INPUT (an unknown binding, a bound name given
/// twice, a string that is not UTF-8), KS_ERR_BUFFER_TOO_SMALL.
#[no_mangle]
pub unsafe extern "C" fn ks_metadata_context(
    names: *const *const c_char,
    values: *const *const c_char,
    count: usize,
    binding: u32,
    bound: *const *const c_char,
    bound_count: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let sized = SizedOut::new(out, cap, out_len, "out")?;
        let names = unsafe { c_strings(names, count, "names")? };
        let values = unsafe { c_strings(values, count, "values")? };
        let bound = unsafe { c_strings(bound, bound_count, "bound")? };
        let binding = keystrata::MetadataBinding::from_code(binding, bound).ok_or_else(|| {
            FfiError::invalid(format!(
                "{binding} is not a binding (KS_BIND_NOTHING, KS_BIND_ONLY or KS_BIND_ALL)"
            ))
        })?;
        let ctx = keystrata::metadata_context(names.into_iter().zip(values), &binding)?;
        unsafe { sized.copy_from(&ctx) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keystrata::{MetadataBinding, WrapForm};

    /// The C constants are the core's stable codes (one table, in the core).
    #[test]
    fn wrap_form_and_binding_constants_are_the_core_codes() {
        assert_eq!(KS_WRAP_FULL, WrapForm::Full.code());
        assert_eq!(KS_WRAP_COMPACT, WrapForm::Compact.code());
        let none: [&str; 0] = [];
        assert_eq!(KS_BIND_NOTHING, MetadataBinding::Nothing.code());
        assert_eq!(KS_BIND_ONLY, MetadataBinding::only(none).code());
        assert_eq!(KS_BIND_ALL, MetadataBinding::All.code());
        for c in 0..8 {
            let form = WrapForm::from_code(c).map(WrapForm::code);
            assert_eq!(
                form,
                (c == KS_WRAP_FULL || c == KS_WRAP_COMPACT).then_some(c)
            );
            let known = [KS_BIND_NOTHING, KS_BIND_ONLY, KS_BIND_ALL].contains(&c);
            let b = MetadataBinding::from_code(c, none).map(|b| b.code());
            assert_eq!(b, known.then_some(c));
        }
    }
}
