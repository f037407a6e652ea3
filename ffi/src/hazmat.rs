//! Low-level primitives, exposed so every language can check the shared
//! Wycheproof vectors. Not for applications: use the keychain.

use keystrata::aead::{AeadEngine, Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};

use crate::*;

fn fixed<const N: usize>(b: &[u8], what: &str) -> FfiResult<[u8; N]> {
    b.try_into()
        .map_err(|_| FfiError::invalid(format!("{what} must be {N} bytes, got {}", b.len())))
}

/// HAZMAT. AES-256-GCM encryption with a caller-chosen 12-byte nonce;
/// writes ciphertext | tag(16) to `*out`. Reusing a nonce under a key
/// destroys GCM's security. For test vectors only.
#[no_mangle]
pub unsafe extern "C" fn ks_hazmat_aes256gcm_encrypt(
    key: *const u8,
    key_len: usize,
    nonce: *const u8,
    nonce_len: usize,
    aad: *const u8,
    aad_len: usize,
    plaintext: *const u8,
    plaintext_len: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let key: [u8; KEY_LEN] = fixed(unsafe { bytes(key, key_len, "key")? }, "key")?;
        let nonce: [u8; NONCE_LEN] = fixed(unsafe { bytes(nonce, nonce_len, "nonce")? }, "nonce")?;
        let aad = unsafe { bytes(aad, aad_len, "aad")? };
        let pt = unsafe { bytes(plaintext, plaintext_len, "plaintext")? };
        let out = out_ptr(out, "out")?;
        let mut v = vec![0u8; pt.len() + TAG_LEN];
        Aes256Gcm::new(&key).seal_into(&nonce, aad, pt, &mut v)?;
        unsafe { put_buffer(out, v) };
        Ok(())
    })
}

/// HAZMAT. AES-256-GCM decryption of ciphertext | tag(16) with a 12-byte
/// nonce. Errors: KS_ERR_AUTHENTICATION, KS_ERR_INVALID_INPUT (sizes).
#[no_mangle]
pub unsafe extern "C" fn ks_hazmat_aes256gcm_decrypt(
    key: *const u8,
    key_len: usize,
    nonce: *const u8,
    nonce_len: usize,
    aad: *const u8,
    aad_len: usize,
    ciphertext: *const u8,
    ciphertext_len: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let key: [u8; KEY_LEN] = fixed(unsafe { bytes(key, key_len, "key")? }, "key")?;
        let nonce: [u8; NONCE_LEN] = fixed(unsafe { bytes(nonce, nonce_len, "nonce")? }, "nonce")?;
        let aad = unsafe { bytes(aad, aad_len, "aad")? };
        let ct = unsafe { bytes(ciphertext, ciphertext_len, "ciphertext")? };
        let out = out_ptr(out, "out")?;
        if ct.len() < TAG_LEN {
            return Err(keystrata::Error::new(
                keystrata::ErrorKind::Authentication,
                "ciphertext could not be authenticated",
            )
            .into());
        }
        let mut v = vec![0u8; ct.len() - TAG_LEN];
        Aes256Gcm::new(&key).open_into(&nonce, aad, ct, &mut v)?;
        unsafe { put_buffer(out, v) };
        Ok(())
    })
}

/// HAZMAT. HKDF-SHA256 (RFC 5869): `length` bytes (1..8160) from `salt`
/// (NULL with salt_len 0 = no salt), `ikm` and `info`.
#[no_mangle]
pub unsafe extern "C" fn ks_hazmat_hkdf_sha256(
    salt: *const u8,
    salt_len: usize,
    ikm: *const u8,
    ikm_len: usize,
    info: *const u8,
    info_len: usize,
    length: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let salt = if salt.is_null() && salt_len == 0 {
            None
        } else {
            Some(unsafe { bytes(salt, salt_len, "salt")? })
        };
        let ikm = unsafe { bytes(ikm, ikm_len, "ikm")? };
        let info = unsafe { bytes(info, info_len, "info")? };
        let out = out_ptr(out, "out")?;
        let k = keystrata::derive::hkdf_sha256(salt, ikm, info, length)?;
        unsafe { put_buffer(out, k.expose_secret().to_vec()) };
        Ok(())
    })
}
