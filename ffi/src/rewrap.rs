//! Rewrap (a ciphertext made again under the current encryption primary,
//! the plaintext never leaving the library), the key ID a ciphertext
//! names, and the keychain's metrics as Prometheus text. The rules are the
//! core's (core/src/keychain/rewrap.rs, core/src/metrics.rs); this file
//! translates.

use keystrata::Keychain;

use crate::envelope::{envelope_in, ks_envelope, put_envelope};
use crate::keychain::{bytes_op, ks_keychain};
use crate::*;

/// Seals again, under the current encryption primary, what
/// ks_keychain_seal made under any key of the keychain: opened with the
/// key it names and `aad`, sealed with the same `aad` (release `*out`
/// with ks_buffer_free). The plaintext is wiped inside the library and
/// never returned. For moving data off a key before it is disabled and
/// destroyed; ks_sealed_key_id says which key a ciphertext needs.
/// Errors: as ks_keychain_unseal for the input (KS_ERR_FORMAT,
/// KS_ERR_UNKNOWN_KEY, KS_ERR_KEY_DISABLED, KS_ERR_KEY_DESTROYED,
/// KS_ERR_AUTHENTICATION), then as ks_keychain_seal.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_rewrap_sealed(
    kc: *const ks_keychain,
    input: *const u8,
    input_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    unsafe {
        bytes_op(
            kc,
            input,
            input_len,
            aad,
            aad_len,
            out,
            Keychain::rewrap_sealed,
            err,
        )
    }
}

/// Wraps again, under the current encryption primary, the data key of
/// what ks_keychain_encrypt (or Tink's KmsEnvelopeAead) made: only the
/// data key is unwrapped and wrapped; the payload is copied unchanged, so
/// no aad is needed (its tag still binds it; ks_keychain_decrypt checks
/// it). Output: the same length as the input (release with
/// ks_buffer_free). ks_encrypted_key_id says which key a blob needs.
/// Errors: as ks_keychain_decrypt for the framing and the data key
/// (KS_ERR_FORMAT, KS_ERR_UNKNOWN_KEY, KS_ERR_KEY_DISABLED,
/// KS_ERR_KEY_DESTROYED, KS_ERR_AUTHENTICATION, KS_ERR_UNSUPPORTED), then
/// as ks_keychain_encrypt.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_rewrap_encrypted(
    kc: *const ks_keychain,
    input: *const u8,
    input_len: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    unsafe {
        bytes_op(
            kc,
            input,
            input_len,
            std::ptr::null(),
            0,
            out,
            |kc, blob, _| kc.rewrap_encrypted(blob),
            err,
        )
    }
}

/// Wraps again, under the current encryption primary, a key that
/// ks_keychain_wrap_key or ks_keychain_wrap_key_with wrapped: the same
/// form and the same `context`. Fills `*out` (release its fields with
/// ks_envelope_clear); the key is wiped inside the library.
/// Errors: as ks_keychain_unwrap_key, then as ks_keychain_wrap_key.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_rewrap_envelope(
    kc: *const ks_keychain,
    envelope: *const ks_envelope,
    context: *const u8,
    context_len: usize,
    out: *mut ks_envelope,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let env = unsafe { envelope_in(envelope)? };
        let context = unsafe { bytes(context, context_len, "context")? };
        let out = out_ptr(out, "out")?;
        let again = kc.inner.rewrap_envelope(&env, context)?;
        unsafe { put_envelope(out, again) }
    })
}

/// The key ID a sealed ciphertext (ks_keychain_seal) names, read from its
/// prefix without any key, to `*out`.
/// Errors: KS_ERR_FORMAT (it cannot be a sealed ciphertext).
#[no_mangle]
pub unsafe extern "C" fn ks_sealed_key_id(
    input: *const u8,
    input_len: usize,
    out: *mut u32,
    err: *mut *mut ks_error,
) -> ks_status {
    unsafe { key_id_op(input, input_len, out, keystrata::sealed_key_id, err) }
}

/// The key ID an envelope-encrypted blob (ks_keychain_encrypt) needs, read
/// from its framing without any key, to `*out`.
/// Errors: KS_ERR_FORMAT (wrong framing).
#[no_mangle]
pub unsafe extern "C" fn ks_encrypted_key_id(
    input: *const u8,
    input_len: usize,
    out: *mut u32,
    err: *mut *mut ks_error,
) -> ks_status {
    unsafe { key_id_op(input, input_len, out, keystrata::encrypted_key_id, err) }
}

/// The shape of ks_sealed_key_id and ks_encrypted_key_id: bytes in, the
/// key ID the core reads from them out.
unsafe fn key_id_op(
    input: *const u8,
    input_len: usize,
    out: *mut u32,
    read: fn(&[u8]) -> keystrata::Result<u32>,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let input = unsafe { bytes(input, input_len, "input")? };
        let out = out_ptr(out, "out")?;
        let id = read(input)?;
        unsafe { put(out, id) };
        Ok(())
    })
}

/// The keychain's metrics as Prometheus text (exposition format 0.0.4;
/// UTF-8, no NUL; release with ks_buffer_free): calls by outcome
/// (kms_seal_total{ok} and the others), kms_derivations_total{origin},
/// kms_errors_total{kind}, kms_rotations_total{scope} and the latency
/// histogram kms_operation_duration_seconds{op} (docs/METRICS.md). Serve
/// it on /metrics as it is. Readable after ks_keychain_close.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_metrics_text(
    kc: *const ks_keychain,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        unsafe { put_buffer(out, kc.inner.metrics_text().into_bytes()) };
        Ok(())
    })
}
