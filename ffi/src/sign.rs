//! Signing with a keychain's keys of purpose sign, and verification with a
//! public key alone. The rules are the core's (core/src/keychain/sign.rs);
//! this file translates.

use keystrata::{Algorithm, KeyInfo, PublicKeyFormat, SignatureFormat};

use crate::keychain::{ks_key_info, ks_keychain};
use crate::*;

/// A signing algorithm (the core's Algorithm codes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_algorithm {
    /// No algorithm (a key of another purpose).
    KS_ALG_NONE = 0,
    /// Ed25519 (RFC 8032): 64-byte signatures; minisign's algorithm.
    KS_ALG_ED25519 = 1,
    /// ECDSA on NIST P-256 with SHA-256 (AWS KMS ECC_NIST_P256).
    KS_ALG_ECDSA_P256 = 2,
    /// ECDSA on secp256k1 with SHA-256 (AWS KMS ECC_SECG_P256K1).
    KS_ALG_ECDSA_SECP256K1 = 3,
}

/// How an ECDSA signature is encoded (Ed25519 signatures are 64 bytes in
/// both).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_signature_format {
    /// ASN.1 DER (X9.62), at most 72 bytes: what OpenSSL and AWS KMS use.
    KS_SIG_DER = 1,
    /// r ‖ s, 32 bytes each (IEEE P1363).
    KS_SIG_RAW = 2,
}

/// How a public key is encoded.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_public_key_format {
    /// PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----").
    KS_PUBKEY_PEM = 1,
    /// DER SubjectPublicKeyInfo.
    KS_PUBKEY_DER = 2,
    /// The bare key: 32 bytes (Ed25519) or the 65-byte point 04 ‖ x ‖ y.
    KS_PUBKEY_RAW = 3,
    /// The text of a minisign .pub file (Ed25519 keys only).
    KS_PUBKEY_MINISIGN = 4,
}

/// Which key made a signature (filled by ks_keychain_sign and
/// ks_keychain_sign_digest).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ks_signature_info {
    /// The signing key's ID (its public key: ks_keychain_public_key).
    pub key_id: u32,
    /// That key's version.
    pub key_version: u32,
    /// Its algorithm.
    pub algorithm: ks_algorithm,
}

/// The longest signature any algorithm makes, in bytes.
pub const KS_MAX_SIGNATURE_LEN: usize = 72;

const _: () = assert!(KS_MAX_SIGNATURE_LEN == keystrata::sign::MAX_SIGNATURE_LEN);

pub(crate) fn algorithm_to_c(a: Option<Algorithm>) -> ks_algorithm {
    use ks_algorithm::*;
    match a {
        None => KS_ALG_NONE,
        Some(Algorithm::Ed25519) => KS_ALG_ED25519,
        Some(Algorithm::EcdsaP256) => KS_ALG_ECDSA_P256,
        Some(Algorithm::EcdsaSecp256k1) => KS_ALG_ECDSA_SECP256K1,
        // A newer algorithm than this header names.
        Some(_) => KS_ALG_NONE,
    }
}

pub(crate) fn algorithm_from_c(a: u32) -> FfiResult<Algorithm> {
    Algorithm::from_code(a).ok_or_else(|| {
        FfiError::invalid(format!(
            "{a} is not a ks_algorithm (KS_ALG_ED25519, KS_ALG_ECDSA_P256 or KS_ALG_ECDSA_SECP256K1)"
        ))
    })
}

fn signature_format_from_c(f: u32) -> FfiResult<SignatureFormat> {
    SignatureFormat::from_code(f).ok_or_else(|| {
        FfiError::invalid(format!(
            "{f} is not a ks_signature_format (KS_SIG_DER or KS_SIG_RAW)"
        ))
    })
}

pub(crate) fn public_key_format_from_c(f: u32) -> FfiResult<PublicKeyFormat> {
    PublicKeyFormat::from_code(f).ok_or_else(|| {
        FfiError::invalid(format!(
            "{f} is not a ks_public_key_format (KS_PUBKEY_PEM, _DER, _RAW or _MINISIGN)"
        ))
    })
}

pub(crate) unsafe fn put_key_info(out: *mut ks_key_info, info: &KeyInfo) {
    unsafe { put_opt(out, crate::keychain::info_to_c(info)) };
}

/// Makes a new signing key of `algorithm` (a ks_algorithm value) the
/// signing primary; older signing keys stay enabled and keep verifying.
/// Writes its info to `*out` unless `out` is NULL. A bound keychain writes
/// its file first. Errors: KS_ERR_INVALID_INPUT (unknown algorithm),
/// KS_ERR_UNAVAILABLE (closed), and those of writing a bound keychain.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_rotate_signing(
    kc: *mut ks_keychain,
    algorithm: u32,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let info = kc.inner.rotate_signing(algorithm_from_c(algorithm)?)?;
        unsafe { put_key_info(out, &info) };
        Ok(())
    })
}

/// Adds a signing key of `algorithm` that is not primary (promote it with
/// ks_keychain_promote once verifiers have its public key). As
/// ks_keychain_rotate_signing otherwise.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_add_signing_key(
    kc: *mut ks_keychain,
    algorithm: u32,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let info = kc.inner.add_signing_key(algorithm_from_c(algorithm)?)?;
        unsafe { put_key_info(out, &info) };
        Ok(())
    })
}

/// Signs `message_len` bytes at `message` with the signing primary and
/// writes the signature into `out` (room for `cap` bytes; at most
/// KS_MAX_SIGNATURE_LEN are ever needed) with its length in `*out_len`;
/// which key signed (ID, version, algorithm) goes to `*info` unless `info`
/// is NULL.
/// `format` (a ks_signature_format) chooses DER or raw ECDSA signatures.
/// Every signature emits KS_EVENT_SIGNED. `out` NULL asks only for the
/// length: KS_MAX_SIGNATURE_LEN (no signature is made).
/// Errors: KS_ERR_UNKNOWN_KEY (no signing key: ks_keychain_rotate_signing
/// first), KS_ERR_INVALID_INPUT, KS_ERR_BUFFER_TOO_SMALL (`*out_len` says
/// how much), KS_ERR_UNAVAILABLE (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_sign(
    kc: *const ks_keychain,
    message: *const u8,
    message_len: usize,
    format: u32,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    info: *mut ks_signature_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let msg = unsafe { bytes(message, message_len, "message")? };
        let format = signature_format_from_c(format)?;
        unsafe { sign_out(out, cap, out_len, info, || kc.inner.sign_as(msg, format)) }
    })
}

/// Signs a 32-byte SHA-256 `digest` computed elsewhere (ECDSA keys only,
/// as AWS KMS's MessageType=DIGEST). Outputs as ks_keychain_sign.
/// Errors: KS_ERR_INVALID_INPUT (not 32 bytes), KS_ERR_UNSUPPORTED (an
/// Ed25519 primary), and those of ks_keychain_sign.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_sign_digest(
    kc: *const ks_keychain,
    digest: *const u8,
    digest_len: usize,
    format: u32,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    info: *mut ks_signature_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let d = unsafe { bytes(digest, digest_len, "digest")? };
        let format = signature_format_from_c(format)?;
        unsafe { sign_out(out, cap, out_len, info, || kc.inner.sign_digest(d, format)) }
    })
}

unsafe fn sign_out(
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    info: *mut ks_signature_info,
    sign: impl FnOnce() -> keystrata::Result<keystrata::Signature>,
) -> FfiResult {
    let out_len = out_ptr(out_len, "out_len")?;
    if out.is_null() {
        unsafe { put(out_len, KS_MAX_SIGNATURE_LEN) };
        return Ok(());
    }
    if cap < KS_MAX_SIGNATURE_LEN {
        // A DER signature's length is known only once made: ask for room
        // for the longest, so no signature is made and then dropped.
        unsafe { put(out_len, KS_MAX_SIGNATURE_LEN) };
        return Err(FfiError::too_small("out", cap, KS_MAX_SIGNATURE_LEN));
    }
    let sig = sign()?;
    let dst = unsafe { std::slice::from_raw_parts_mut(out, cap) };
    dst[..sig.bytes.len()].copy_from_slice(&sig.bytes);
    unsafe { put(out_len, sig.bytes.len()) };
    let who = ks_signature_info {
        key_id: sig.key_id,
        key_version: sig.key_version,
        algorithm: algorithm_to_c(Some(sig.algorithm)),
    };
    unsafe { put_opt(info, who) };
    Ok(())
}

/// Verifies `signature` over `message` with the keychain's enabled signing
/// keys (newest first; a disabled key verifies nothing). Writes the key
/// that verified to `*out` unless `out` is NULL. A failure emits
/// KS_EVENT_VERIFY_FAILED. Errors: KS_ERR_AUTHENTICATION (does not verify;
/// says nothing more), KS_ERR_UNKNOWN_KEY (no enabled signing key),
/// KS_ERR_UNAVAILABLE (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_verify(
    kc: *const ks_keychain,
    message: *const u8,
    message_len: usize,
    signature: *const u8,
    signature_len: usize,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let msg = unsafe { bytes(message, message_len, "message")? };
        let sig = unsafe { bytes(signature, signature_len, "signature")? };
        let info = kc.inner.verify(msg, sig)?;
        unsafe { put_key_info(out, &info) };
        Ok(())
    })
}

/// Verifies with one key, `key_id`. Errors: KS_ERR_UNKNOWN_KEY,
/// KS_ERR_KEY_DISABLED, KS_ERR_KEY_DESTROYED (not an enabled signing key),
/// KS_ERR_AUTHENTICATION. Otherwise as ks_keychain_verify.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_verify_with(
    kc: *const ks_keychain,
    key_id: u32,
    message: *const u8,
    message_len: usize,
    signature: *const u8,
    signature_len: usize,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let msg = unsafe { bytes(message, message_len, "message")? };
        let sig = unsafe { bytes(signature, signature_len, "signature")? };
        let info = kc.inner.verify_with(key_id, msg, sig)?;
        unsafe { put_key_info(out, &info) };
        Ok(())
    })
}

/// Verifies an ECDSA signature over a 32-byte SHA-256 `digest` with the
/// enabled ECDSA signing keys. As ks_keychain_verify otherwise;
/// KS_ERR_INVALID_INPUT for a digest that is not 32 bytes.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_verify_digest(
    kc: *const ks_keychain,
    digest: *const u8,
    digest_len: usize,
    signature: *const u8,
    signature_len: usize,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let d = unsafe { bytes(digest, digest_len, "digest")? };
        let sig = unsafe { bytes(signature, signature_len, "signature")? };
        let info = kc.inner.verify_digest(d, sig)?;
        unsafe { put_key_info(out, &info) };
        Ok(())
    })
}

/// Copies the public key of signing key `key_id` in `format` (a
/// ks_public_key_format) into `*out` (release with ks_buffer_free). PEM
/// and minisign are text without a NUL. Disabled keys have one too.
/// Errors: KS_ERR_UNKNOWN_KEY (not a signing key), KS_ERR_KEY_DESTROYED,
/// KS_ERR_UNSUPPORTED (minisign for an ECDSA key), KS_ERR_INVALID_INPUT,
/// KS_ERR_UNAVAILABLE (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_public_key(
    kc: *const ks_keychain,
    key_id: u32,
    format: u32,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        let pk = kc
            .inner
            .public_key(key_id, public_key_format_from_c(format)?)?;
        unsafe { put_buffer(out, pk) };
        Ok(())
    })
}

/// Verifies `signature` over `message` with a bare public key alone (no
/// keychain): `public_key` is 32 bytes for KS_ALG_ED25519, the 65-byte
/// point 04 ‖ x ‖ y for ECDSA (KS_PUBKEY_RAW of the signer). ECDSA
/// signatures may be DER or raw. Errors: KS_ERR_AUTHENTICATION (does not
/// verify), KS_ERR_INVALID_INPUT (unknown algorithm, a public key of the
/// wrong length), KS_ERR_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn ks_verify_signature(
    algorithm: u32,
    public_key: *const u8,
    public_key_len: usize,
    message: *const u8,
    message_len: usize,
    signature: *const u8,
    signature_len: usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let alg = algorithm_from_c(algorithm)?;
        let pk = unsafe { bytes(public_key, public_key_len, "public_key")? };
        let msg = unsafe { bytes(message, message_len, "message")? };
        let sig = unsafe { bytes(signature, signature_len, "signature")? };
        keystrata::sign::verify(alg, pk, msg, sig)?;
        Ok(())
    })
}

/// The name of an algorithm (a ks_algorithm value, passed as int), the
/// same in every language: "ed25519", "ecdsa-p256", "ecdsa-secp256k1";
/// NULL for KS_ALG_NONE or a number this library does not know. Static
/// storage.
#[no_mangle]
pub extern "C" fn ks_algorithm_name(algorithm: std::ffi::c_int) -> *const std::ffi::c_char {
    static NAMES: std::sync::OnceLock<Vec<std::ffi::CString>> = std::sync::OnceLock::new();
    guard_value(std::ptr::null(), || {
        let all: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        let code = u32::try_from(algorithm)
            .ok()
            .filter(|&c| Algorithm::from_code(c).is_some());
        crate::name_at(crate::c_names(&NAMES, &all), code)
    })
}

#[cfg(test)]
mod table_tests {
    use super::*;

    /// The C numbers and names are the core's, for every algorithm.
    #[test]
    fn algorithms_are_the_core_codes_and_names() {
        for a in Algorithm::ALL {
            assert_eq!(algorithm_to_c(Some(a)) as u32, a.code(), "{a:?}");
            let name = ks_algorithm_name(a.code() as std::ffi::c_int);
            let name = unsafe { std::ffi::CStr::from_ptr(name) };
            assert_eq!(name.to_str().expect("utf-8"), a.name());
        }
        assert!(ks_algorithm_name(0).is_null());
        assert!(ks_algorithm_name(4).is_null());
        for f in [SignatureFormat::Der, SignatureFormat::Raw] {
            assert!(signature_format_from_c(f.code()).is_ok());
        }
        assert_eq!(
            ks_signature_format::KS_SIG_DER as u32,
            SignatureFormat::Der.code()
        );
        assert_eq!(
            ks_signature_format::KS_SIG_RAW as u32,
            SignatureFormat::Raw.code()
        );
        assert_eq!(
            ks_public_key_format::KS_PUBKEY_PEM as u32,
            PublicKeyFormat::Pem.code()
        );
        assert_eq!(
            ks_public_key_format::KS_PUBKEY_DER as u32,
            PublicKeyFormat::Der.code()
        );
        assert_eq!(
            ks_public_key_format::KS_PUBKEY_RAW as u32,
            PublicKeyFormat::Raw.code()
        );
        assert_eq!(
            ks_public_key_format::KS_PUBKEY_MINISIGN as u32,
            PublicKeyFormat::Minisign.code()
        );
    }
}
