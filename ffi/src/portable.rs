//! Portable ciphertexts: ks_keychain_encrypt_portable, and decryption with
//! a ks_root alone (the KEK cache lives in the ks_root handle).

use std::sync::Arc;

use keystrata::PortableDecryptor;

use crate::*;

/// Envelope-encrypts `input` into a portable ciphertext: the encryption
/// primary, wrapped by the keychain's root, travels in front of the
/// envelope (ks_keychain_encrypt's bytes), so ks_root_decrypt_portable
/// decrypts it with the root alone: no keychain, no store. Layout:
/// "KSP" | 0x01 | BE32(len(wrapped_kek)) | wrapped_kek | envelope
/// (docs/FORMAT.md section 10). The root wraps each primary once; the
/// keychain keeps the wrapped form. Output (release with ks_buffer_free):
/// input_len + 107 + len(wrapped_kek) bytes (a few hundred under an age
/// root). Counts as an encrypt.
///
/// Anyone holding the root can unwrap the KEK and decrypt everything under
/// it; destroying the key does not revoke portable ciphertexts.
/// Errors: KS_ERR_POLICY for a keychain not opened with ks_keychain_open
/// (an unbound keychain has no root; also the usage limit), KS_ERR_UNSUPPORTED
/// (the root's wrapping exceeds 64 KiB), the root's own errors (e.g.
/// KS_ERR_UNAVAILABLE), KS_ERR_IO, KS_ERR_UNAVAILABLE (closed).
/// Thread safety: as ks_keychain_encrypt.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_encrypt_portable(
    kc: *const ks_keychain,
    input: *const u8,
    input_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let input = unsafe { bytes(input, input_len, "input")? };
        let aad = unsafe { bytes(aad, aad_len, "aad")? };
        let out = out_ptr(out, "out")?;
        let v = kc.inner.encrypt_portable(input, aad)?;
        unsafe { put_buffer(out, v) };
        Ok(())
    })
}

fn decryptor(root: &ks_root) -> &PortableDecryptor {
    root.portable
        .get_or_init(|| PortableDecryptor::new(Arc::new(root.kind.clone())))
}

/// Decrypts a portable ciphertext (ks_keychain_encrypt_portable) with the
/// root alone, with the same `aad`. Unwrapped KEKs are cached in the
/// `root` handle (up to 1024, keyed by the hash of the wrapped bytes, least
/// recently used leave first, wiped when they leave and by ks_root_free),
/// so the root is called once per wrapped KEK, not per message. Output:
/// the plaintext (release with ks_buffer_free, which wipes it).
/// Errors: KS_ERR_FORMAT (framing, including a wrapped KEK over 64 KiB, or
/// a wrapped part that is not a portable KEK record), KS_ERR_UNSUPPORTED
/// (version byte other than 1), the root's own errors when unwrapping
/// (age: KS_ERR_AUTHENTICATION for a wrong identity or tampering;
/// device roots: KS_ERR_UNAVAILABLE, KS_ERR_BACKEND, KS_ERR_UNKNOWN_KEY
/// for a KEK wrapped under another device key, ...), KS_ERR_AUTHENTICATION
/// (a wrapped KEK of another key, any tag mismatch, wrong aad). No keychain
/// is consulted: the KEK travels with the data.
/// Thread safety: safe to call concurrently on one root.
#[no_mangle]
pub unsafe extern "C" fn ks_root_decrypt_portable(
    root: *const ks_root,
    blob: *const u8,
    blob_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let root = unsafe { handle(root, "root")? };
        let blob = unsafe { bytes(blob, blob_len, "blob")? };
        let aad = unsafe { bytes(aad, aad_len, "aad")? };
        let out = out_ptr(out, "out")?;
        let v = decryptor(root).decrypt(blob, aad)?;
        unsafe { put_buffer(out, v) };
        Ok(())
    })
}

/// Counters of a root's portable decryptions.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ks_portable_counters {
    /// Successful ks_root_decrypt_portable calls.
    pub decrypt_ok: u64,
    /// Failed ks_root_decrypt_portable calls.
    pub decrypt_failed: u64,
    /// Calls to the root to unwrap a KEK (one per wrapped KEK not cached).
    pub root_calls: u64,
    /// Unwrapped KEKs cached in the root handle now.
    pub cached_keks: u64,
}

/// Writes a snapshot of the root's portable-decryption counters to `*out`
/// (all zero before the first ks_root_decrypt_portable).
#[no_mangle]
pub unsafe extern "C" fn ks_root_portable_counters(
    root: *const ks_root,
    out: *mut ks_portable_counters,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let root = unsafe { handle(root, "root")? };
        let out = out_ptr(out, "out")?;
        let c = root
            .portable
            .get()
            .map(|d| d.counters())
            .unwrap_or_default();
        unsafe {
            put(
                out,
                ks_portable_counters {
                    decrypt_ok: c.decrypt_ok,
                    decrypt_failed: c.decrypt_failed,
                    root_calls: c.root_calls,
                    cached_keks: c.cached_keks,
                },
            )
        };
        Ok(())
    })
}

/// Forgets (and wipes) the KEKs cached in `root` by
/// ks_root_decrypt_portable: the next ciphertext under each calls the root
/// again. Counters are kept.
#[no_mangle]
pub unsafe extern "C" fn ks_root_portable_clear(
    root: *const ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let root = unsafe { handle(root, "root")? };
        if let Some(d) = root.portable.get() {
            d.clear();
        }
        Ok(())
    })
}
