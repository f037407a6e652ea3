//! The rest of signing: minisign signatures with the keychain and with a
//! public key alone, trust files (ks_trusted_keys), and signers whose key
//! lives outside the keychain (ks_signer). The rules are the core's
//! (core/src/keychain/sign.rs, core/src/sign/{minisign,trust,signer}.rs);
//! this file translates.

use std::ffi::c_char;
use std::sync::OnceLock;

use keystrata::sign::trust::{TrustKind, TrustVerified, TrustedKeys, MAX_TRUST_FILE_LEN};
use keystrata::sign::{minisign, Pkcs11Signer, Signer};
use keystrata::KeyManager as _;
use zeroize::Zeroizing;

use crate::keychain::{ks_key_info, ks_keychain};
use crate::sign::{
    algorithm_from_c, algorithm_to_c, ks_algorithm, public_key_format_from_c, put_key_info,
    KS_MAX_SIGNATURE_LEN,
};
use crate::*;

/// Text the caller passed as (pointer, length): UTF-8, or KS_ERR_FORMAT
/// (none of these texts can be well-formed otherwise).
unsafe fn text_arg<'a>(ptr: *const u8, len: usize, what: &str) -> FfiResult<&'a str> {
    let b = unsafe { bytes(ptr, len, what)? };
    std::str::from_utf8(b).map_err(|_| {
        FfiError::new(
            ks_status::KS_ERR_FORMAT,
            format!("Format: the {what} is not UTF-8 text"),
        )
    })
}

// ---------------------------------------------------------------------
// minisign
// ---------------------------------------------------------------------

/// Signs `data_len` bytes at `data` as `minisign -S` does, with the signing
/// primary (which must be Ed25519), and writes the text of the `.minisig`
/// file (UTF-8, no NUL) to `*out` (release with ks_buffer_free):
/// a prehashed signature and `trusted_comment` (NUL-terminated UTF-8, ""
/// for none; unlike minisign's CLI nothing is added to it) under the
/// global signature. `minisign -Vm FILE -p KEY.pub` verifies it with the
/// key's KS_PUBKEY_MINISIGN public key (ks_keychain_public_key). Emits
/// KS_EVENT_SIGNED like every signature.
/// Errors: KS_ERR_UNKNOWN_KEY (no signing key), KS_ERR_UNSUPPORTED (an
/// ECDSA signing primary), KS_ERR_INVALID_INPUT (a comment minisign cannot
/// carry: a line end or another control character, over 8173 bytes, not
/// UTF-8), KS_ERR_UNAVAILABLE (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_sign_minisign(
    kc: *const ks_keychain,
    data: *const u8,
    data_len: usize,
    trusted_comment: *const c_char,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let data = unsafe { bytes(data, data_len, "data")? };
        let comment = unsafe { c_str(trusted_comment, "trusted_comment")? };
        let out = out_ptr(out, "out")?;
        let text = kc.inner.sign_minisign(data, comment)?;
        unsafe { put_buffer(out, text.into_bytes()) };
        Ok(())
    })
}

/// Verifies a minisign signature (`signature_len` bytes of `.minisig`
/// text at `signature`, prehashed or legacy, as `minisign -S` or
/// ks_keychain_sign_minisign make it) of `data` with the enabled Ed25519
/// signing key whose minisign key ID it names (imported keys keep theirs),
/// and writes that key to `*out` unless `out` is NULL. A failure emits
/// KS_EVENT_VERIFY_FAILED.
/// Errors: KS_ERR_AUTHENTICATION (does not verify, trusted comment
/// included; says nothing more), KS_ERR_UNKNOWN_KEY (no enabled key has the
/// key ID), KS_ERR_FORMAT (not a minisign signature, over 64 KiB),
/// KS_ERR_UNSUPPORTED (an unknown signature algorithm), KS_ERR_UNAVAILABLE
/// (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_verify_minisign(
    kc: *const ks_keychain,
    data: *const u8,
    data_len: usize,
    signature: *const u8,
    signature_len: usize,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let data = unsafe { bytes(data, data_len, "data")? };
        let sig = unsafe { text_arg(signature, signature_len, "minisign signature")? };
        let info = kc.inner.verify_minisign(data, sig)?;
        unsafe { put_key_info(out, &info) };
        Ok(())
    })
}

/// Imports a minisign secret key (`text_len` bytes at `text`: the file
/// `minisign -G` writes) as an Ed25519 signing key that keeps its minisign
/// key ID, so its signatures verify against the `.pub` file published
/// before. It becomes the signing primary if the keychain has none
/// (otherwise ks_keychain_promote it). `password` (`password_len` bytes)
/// decrypts an encrypted key; pass NULL and 0 for a key made with
/// `minisign -G -W` (a password given for it is ignored). The password is
/// copied, and the copy wiped before return; no message contains it.
/// Writes the new key's info to `*out` unless `out` is NULL. A bound
/// keychain writes its file first. Decrypting runs scrypt with the key's
/// own limits (at most minisign's: about 1 GiB and seconds).
/// Errors: KS_ERR_AUTHENTICATION (wrong password), KS_ERR_INVALID_INPUT
/// (an encrypted key and no password; the key is in the keychain already),
/// KS_ERR_POLICY (scrypt limits above minisign's own), KS_ERR_UNSUPPORTED
/// (unknown algorithms), KS_ERR_FORMAT (not a minisign secret key),
/// KS_ERR_UNAVAILABLE (closed), and those of writing a bound keychain.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_import_minisign_secret_key(
    kc: *mut ks_keychain,
    text: *const u8,
    text_len: usize,
    password: *const u8,
    password_len: usize,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let text = unsafe { text_arg(text, text_len, "minisign secret key")? };
        let password = unsafe { bytes(password, password_len, "password")? };
        let password = (!password.is_empty()).then(|| Zeroizing::new(password.to_vec()));
        let info = kc
            .inner
            .import_minisign_secret_key(text, password.as_ref().map(|p| p.as_slice()))?;
        unsafe { put_key_info(out, &info) };
        Ok(())
    })
}

/// Verifies a minisign signature (`.minisig` text, prehashed or legacy)
/// of `data` with a minisign public key alone, no keychain: `public_key`
/// is NUL-terminated, the text of a `.pub` file or its base64 line alone
/// (what `minisign -P` takes). On success the signature's trusted comment
/// (authenticated; UTF-8, no NUL) goes to `*trusted_comment` unless it is
/// NULL (release it with ks_buffer_free).
/// Errors: KS_ERR_AUTHENTICATION (does not verify), KS_ERR_UNKNOWN_KEY
/// (the signature names another key ID; the message gives both as
/// minisign prints them), KS_ERR_FORMAT (a key or signature that does not
/// parse), KS_ERR_UNSUPPORTED (an unknown algorithm), KS_ERR_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn ks_minisign_verify(
    public_key: *const c_char,
    data: *const u8,
    data_len: usize,
    signature: *const u8,
    signature_len: usize,
    trusted_comment: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let pk = unsafe { c_str(public_key, "public_key") }.map_err(|e| {
            if e.status == ks_status::KS_ERR_INVALID_INPUT {
                FfiError::new(
                    ks_status::KS_ERR_FORMAT,
                    "Format: the minisign public key is not UTF-8 text",
                )
            } else {
                e
            }
        })?;
        let data = unsafe { bytes(data, data_len, "data")? };
        let sig = unsafe { text_arg(signature, signature_len, "minisign signature")? };
        let pk = minisign::PublicKey::from_text(pk)?;
        let v = minisign::verify(&pk, data, sig)?;
        if !trusted_comment.is_null() {
            unsafe { put_buffer(trusted_comment, v.trusted_comment.into_bytes()) };
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------
// Trust files
// ---------------------------------------------------------------------

/// The keys of a trust file (a KEYS.txt, docs/SIGNING.md): named public
/// keys, official (ECDSA P-256 or secp256k1, base64 of the DER
/// SubjectPublicKeyInfo) or community (minisign), each active or revoked.
/// Create with ks_trusted_keys_parse or ks_trusted_keys_load; release with
/// ks_trusted_keys_free.
///
/// Thread safety: immutable and shareable between threads.
pub struct ks_trusted_keys {
    inner: TrustedKeys,
}

/// Which of the two signing paths a trusted key belongs to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_trust_kind {
    /// A kind this build of the header does not name (a newer library);
    /// never a known kind in disguise.
    KS_TRUST_UNKNOWN = 0,
    /// An official key: ECDSA, whose private half stays in an HSM or KMS;
    /// its signatures are DER or raw r ‖ s.
    KS_TRUST_OFFICIAL = 1,
    /// A community author's minisign key (Ed25519); its signatures are
    /// `.minisig` text.
    KS_TRUST_COMMUNITY = 2,
}

fn trust_kind_to_c(k: TrustKind) -> ks_trust_kind {
    match k {
        TrustKind::Official => ks_trust_kind::KS_TRUST_OFFICIAL,
        TrustKind::Community => ks_trust_kind::KS_TRUST_COMMUNITY,
        _ => ks_trust_kind::KS_TRUST_UNKNOWN,
    }
}

/// The core's trust kinds, in the order of their numbers (1, 2, ...).
const TRUST_KINDS: [TrustKind; 2] = TrustKind::ALL;

/// Which trusted key made a signature: filled by ks_trusted_keys_verify.
/// Every pointer is library-allocated; release them with
/// ks_trust_result_clear, which also zeroes the struct. Never pass a
/// struct the caller filled to ks_trust_result_clear.
///
/// Thread safety: plain data.
#[repr(C)]
pub struct ks_trust_result {
    /// The key's name in the trust file, NUL-terminated.
    pub name: *mut c_char,
    /// Official or community.
    pub kind: ks_trust_kind,
    /// The key's algorithm (KS_ALG_ED25519 for community keys).
    pub algorithm: ks_algorithm,
    /// For a minisign signature, its trusted comment (authenticated),
    /// NUL-terminated; NULL for an official key's signature.
    pub trusted_comment: *mut c_char,
}

/// Fills `*out` with library-allocated copies; nothing is written unless
/// every field converts.
unsafe fn put_trust_result(out: *mut ks_trust_result, v: TrustVerified) -> FfiResult {
    let name = into_c_string(v.name, "the key name")?;
    let comment = match v.trusted_comment {
        None => std::ptr::null_mut(),
        Some(c) => match into_c_string(c, "the trusted comment") {
            Ok(c) => c,
            Err(e) => {
                unsafe { free_c_string(name) };
                return Err(e);
            }
        },
    };
    unsafe {
        put(
            out,
            ks_trust_result {
                name,
                kind: trust_kind_to_c(v.kind),
                algorithm: algorithm_to_c(Some(v.algorithm)),
                trusted_comment: comment,
            },
        )
    };
    Ok(())
}

/// Parses a trust file from `text_len` bytes of UTF-8 at `text`. On
/// success `*out` is a new handle to release with ks_trusted_keys_free.
/// Errors: KS_ERR_FORMAT (a malformed line: the message names its number
/// and echoes at most 64 characters of it; a public key that does not
/// parse or does not match its algorithm; two keys with one name or one
/// key; text that is not UTF-8), KS_ERR_INVALID_INPUT (over 1 MiB or
/// 10000 keys).
#[no_mangle]
pub unsafe extern "C" fn ks_trusted_keys_parse(
    text: *const u8,
    text_len: usize,
    out: *mut *mut ks_trusted_keys,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let b = unsafe { bytes(text, text_len, "text")? };
        if b.len() > MAX_TRUST_FILE_LEN {
            // Refused as the core refuses it, before reading it through.
            return Err(FfiError::invalid(format!(
                "a trust file is at most {MAX_TRUST_FILE_LEN} bytes, got {}",
                b.len()
            )));
        }
        let text = unsafe { text_arg(text, text_len, "trust file")? };
        let keys = TrustedKeys::parse(text)?;
        unsafe { put_handle(out, ks_trusted_keys { inner: keys }) };
        Ok(())
    })
}

/// Reads and parses the trust file at `path` (NUL-terminated). On success
/// `*out` is a new handle to release with ks_trusted_keys_free.
/// Errors: KS_ERR_IO (cannot be read, not UTF-8), and those of
/// ks_trusted_keys_parse.
#[no_mangle]
pub unsafe extern "C" fn ks_trusted_keys_load(
    path: *const c_char,
    out: *mut *mut ks_trusted_keys,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let path = unsafe { c_str(path, "path")? };
        let keys = TrustedKeys::load(path)?;
        unsafe { put_handle(out, ks_trusted_keys { inner: keys }) };
        Ok(())
    })
}

/// The number of keys the trust file lists, revoked ones included; 0 for
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn ks_trusted_keys_count(tk: *const ks_trusted_keys) -> usize {
    guard_value(0, || {
        // SAFETY: NULL or a live handle (the contract).
        unsafe { tk.as_ref() }.map_or(0, |t| t.inner.keys().len())
    })
}

/// Verifies `signature` over `data` and says which trusted key made it,
/// in `*out` (a struct the caller provides; release its fields with
/// ks_trust_result_clear). A signature that is minisign text is checked
/// against the community key its key ID names; any other bytes against the
/// official keys (ECDSA, DER or raw r ‖ s).
/// Errors: KS_ERR_KEY_DISABLED (the key that verifies was revoked; the
/// message names it), KS_ERR_UNKNOWN_KEY (no listed key has the minisign
/// key ID; no official key is listed), KS_ERR_AUTHENTICATION (no key
/// verifies), KS_ERR_FORMAT (minisign text that does not parse).
#[no_mangle]
pub unsafe extern "C" fn ks_trusted_keys_verify(
    tk: *const ks_trusted_keys,
    data: *const u8,
    data_len: usize,
    signature: *const u8,
    signature_len: usize,
    out: *mut ks_trust_result,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let tk = unsafe { handle(tk, "tk")? };
        let data = unsafe { bytes(data, data_len, "data")? };
        let sig = unsafe { bytes(signature, signature_len, "signature")? };
        let out = out_ptr(out, "out")?;
        let v = tk.inner.verify(data, sig)?;
        unsafe { put_trust_result(out, v) }
    })
}

/// Frees the fields of a ks_trust_result the library filled and zeroes
/// it. NULL, and a zeroed struct, are no-ops; clearing twice is safe.
#[no_mangle]
pub unsafe extern "C" fn ks_trust_result_clear(result: *mut ks_trust_result) {
    guard_value((), || {
        // SAFETY: NULL or a struct the library filled (the contract).
        let Some(r) = (unsafe { result.as_mut() }) else {
            return;
        };
        // SAFETY: from into_c_string in put_trust_result, freed once (the
        // pointers are reset below).
        unsafe {
            free_c_string(r.name);
            free_c_string(r.trusted_comment);
        }
        *r = ks_trust_result {
            name: std::ptr::null_mut(),
            kind: ks_trust_kind::KS_TRUST_UNKNOWN,
            algorithm: ks_algorithm::KS_ALG_NONE,
            trusted_comment: std::ptr::null_mut(),
        };
    })
}

/// Releases a trust file's keys. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn ks_trusted_keys_free(tk: *mut ks_trusted_keys) {
    // SAFETY: NULL or a handle from put_handle, freed once (the contract).
    guard_value((), || unsafe { free_handle(tk) })
}

/// The name of a trust kind (a ks_trust_kind value, passed as int), the
/// same in every language: "official", "community"; NULL for
/// KS_TRUST_UNKNOWN or a number this library does not know. Static
/// storage.
#[no_mangle]
pub extern "C" fn ks_trust_kind_name(kind: std::ffi::c_int) -> *const c_char {
    static NAMES: OnceLock<Vec<std::ffi::CString>> = OnceLock::new();
    guard_value(std::ptr::null(), || {
        let all: Vec<&str> = TRUST_KINDS.iter().map(|k| k.name()).collect();
        let code = u32::try_from(kind)
            .ok()
            .filter(|&c| TrustKind::from_code(c).is_some());
        name_at(c_names(&NAMES, &all), code)
    })
}

// ---------------------------------------------------------------------
// Signers
// ---------------------------------------------------------------------

/// A signing key that may live outside the keychain, behind one contract
/// (the core's Signer): a key in a PKCS#11 token (ks_signer_pkcs11_new),
/// a key in AWS KMS (ks_signer_aws_kms_new), or a keychain's signing
/// primary (ks_keychain_signer). Signatures are
/// Ed25519 (64 bytes) or DER ECDSA over SHA-256 of the message, and verify
/// with the signer's public key (ks_signer_public_key; ks_verify_signature
/// with its KS_PUBKEY_RAW form). Release with ks_signer_free.
///
/// Thread safety: shareable between threads; every call may run
/// concurrently with any other (ks_signer_close included), except
/// ks_signer_free.
pub struct ks_signer {
    inner: Box<dyn Signer>,
}

/// Opens a signing key in a PKCS#11 token or HSM: the private key labelled
/// `key_label` (and its public key, with the same label) in the token
/// labelled `token_label` of the module at `module_path` (tokens are found
/// by label, never by slot number). The user PIN is given either as `pin`
/// or as `pin_env`, the name of an environment variable holding it:
/// exactly one of the two is non-NULL. `algorithm` is a ks_algorithm. With
/// KS_ROOT_CREATE_KEY in `flags`, a missing key pair of `algorithm` is
/// generated in the token (private half sensitive and never extractable);
/// otherwise it must exist, and be of `algorithm`.
///
/// Ed25519 signs with CKM_EDDSA; ECDSA with CKM_ECDSA over a SHA-256
/// computed here, the token's r ‖ s made DER. The key never leaves the
/// token. Connects and logs in before returning; `*out` is released with
/// ks_signer_free.
/// NULL: `module_path`, `token_label`, `key_label`, `out` must not be NULL.
/// Errors: KS_ERR_INVALID_INPUT (module cannot be loaded, both or neither
/// PIN argument, PIN variable unset, unknown algorithm or flags);
/// KS_ERR_UNAVAILABLE (no token with that label); KS_ERR_BACKEND (login
/// refused, e.g. a wrong PIN; the message never contains the PIN);
/// KS_ERR_UNKNOWN_KEY (no key with that label and no KS_ROOT_CREATE_KEY);
/// KS_ERR_UNSUPPORTED (the key is of another algorithm).
/// Thread safety: safe to call from any thread; the signer is shareable.
#[no_mangle]
pub unsafe extern "C" fn ks_signer_pkcs11_new(
    module_path: *const c_char,
    token_label: *const c_char,
    pin: *const c_char,
    pin_env: *const c_char,
    key_label: *const c_char,
    algorithm: u32,
    flags: u32,
    out: *mut *mut ks_signer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let config = unsafe {
            crate::root::pkcs11_config(module_path, token_label, pin, pin_env, key_label, flags)?
        };
        let algorithm = algorithm_from_c(algorithm)?;
        let signer = Pkcs11Signer::open(&config, algorithm)?;
        unsafe { put_signer(out, signer) };
        Ok(())
    })
}

/// Opens a signing key kept in AWS KMS: an asymmetric SIGN_VERIFY key of
/// spec ECC_NIST_P256 (KS_ALG_ECDSA_P256) or ECC_SECG_P256K1
/// (KS_ALG_ECDSA_SECP256K1). `key_id`, `region`, `endpoint_url`,
/// `profile` and `timeout_ms` are as for ks_root_aws_kms_new, credentials
/// too (the SDK's default chain, never an argument).
///
/// Checks the key (DescribeKey) and fetches its public key (GetPublicKey)
/// before returning. Signing hashes the message here and calls KMS Sign
/// with MessageType=DIGEST and ECDSA_SHA_256; every signature is checked
/// against the public key before it is returned. The key never leaves
/// KMS. `*out` is released with ks_signer_free.
/// NULL: `key_id` and `out` must not be NULL; the others may.
/// Errors: as ks_root_aws_kms_new; KS_ERR_UNSUPPORTED (a key of another
/// spec or usage: RSA, P-384, symmetric...); KS_ERR_KEY_DISABLED from
/// ks_signer_sign once the key is disabled in KMS.
/// Thread safety: safe to call from any thread; the signer is shareable.
#[no_mangle]
pub unsafe extern "C" fn ks_signer_aws_kms_new(
    key_id: *const c_char,
    region: *const c_char,
    endpoint_url: *const c_char,
    profile: *const c_char,
    timeout_ms: u32,
    out: *mut *mut ks_signer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let config = unsafe {
            crate::root::aws_kms_config(key_id, region, endpoint_url, profile, timeout_ms)?
        };
        let signer = keystrata::sign::AwsKmsSigner::open(config)?;
        unsafe { put_signer(out, signer) };
        Ok(())
    })
}

/// A new ks_signer over any of the core's signers: each constructor is
/// this and nothing else.
unsafe fn put_signer(out: *mut *mut ks_signer, signer: impl Signer + 'static) {
    unsafe {
        put_handle(
            out,
            ks_signer {
                inner: Box::new(signer),
            },
        )
    };
}

/// The keychain's signing primary as a ks_signer, for code written against
/// signers: it signs with whichever key is primary at the time of each
/// call (so a rotation takes effect at once), emitting the keychain's
/// KS_EVENT_SIGNED events and counting in its counters. Closing the signer
/// (ks_signer_close) does not close the keychain; closing the keychain
/// makes the signer's calls fail with KS_ERR_UNAVAILABLE.
///
/// Lifetime: the signer keeps the keychain alive: ks_signer_free and
/// ks_keychain_free may come in either order, and the signer keeps
/// working after ks_keychain_free.
/// Errors: KS_ERR_UNAVAILABLE (the keychain is closed).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_signer(
    kc: *const ks_keychain,
    out: *mut *mut ks_signer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        kc.inner.health_check()?;
        unsafe { put_signer(out, keystrata::Keychain::shared_signer(&kc.inner)) };
        Ok(())
    })
}

/// The signer's algorithm, to `*out`.
/// Errors: KS_ERR_UNKNOWN_KEY (a keychain with no signing key),
/// KS_ERR_UNAVAILABLE (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_signer_algorithm(
    signer: *const ks_signer,
    out: *mut ks_algorithm,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let s = unsafe { handle(signer, "signer")? };
        let out = out_ptr(out, "out")?;
        let alg = s.inner.algorithm()?;
        unsafe { put(out, algorithm_to_c(Some(alg))) };
        Ok(())
    })
}

/// Copies the signer's public key in `format` (a ks_public_key_format)
/// into `*out` (release with ks_buffer_free). PEM and minisign are text
/// without a NUL.
/// Errors: KS_ERR_INVALID_INPUT (unknown format), KS_ERR_UNSUPPORTED
/// (minisign for an ECDSA key), KS_ERR_UNKNOWN_KEY (a keychain with no
/// signing key), KS_ERR_UNAVAILABLE (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_signer_public_key(
    signer: *const ks_signer,
    format: u32,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let s = unsafe { handle(signer, "signer")? };
        let out = out_ptr(out, "out")?;
        let pk = s.inner.public_key(public_key_format_from_c(format)?)?;
        unsafe { put_buffer(out, pk) };
        Ok(())
    })
}

/// A signature into a caller-sized output: `out` NULL asks for the length
/// (KS_MAX_SIGNATURE_LEN, nothing is signed); a `cap` below it is
/// KS_ERR_BUFFER_TOO_SMALL before anything is signed.
unsafe fn signature_out(
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    sign: impl FnOnce() -> keystrata::Result<Vec<u8>>,
) -> FfiResult {
    let dst = SizedOut::new(out, cap, out_len, "out")?;
    if dst.is_query() {
        dst.set_len(KS_MAX_SIGNATURE_LEN);
        return Ok(());
    }
    // A DER signature's length is known only once made: ask for room for
    // the longest, so no signature is made and then dropped.
    dst.room(KS_MAX_SIGNATURE_LEN)?;
    let sig = sign()?;
    if sig.len() > KS_MAX_SIGNATURE_LEN {
        return Err(FfiError::new(
            ks_status::KS_ERR_INTERNAL,
            format!(
                "Internal: a signer made {} bytes, over KS_MAX_SIGNATURE_LEN",
                sig.len()
            ),
        ));
    }
    // SAFETY: `out` has `cap` >= KS_MAX_SIGNATURE_LEN writable bytes.
    unsafe { dst.copy_from(&sig) }
}

/// Signs `message_len` bytes at `message`: an Ed25519 signature (64
/// bytes) or a DER ECDSA signature over SHA-256(message), written into
/// `out` (room for `cap` bytes; KS_MAX_SIGNATURE_LEN always suffices) with
/// its length in `*out_len`. `out` NULL asks only for the length:
/// KS_MAX_SIGNATURE_LEN (nothing is signed).
/// Errors: KS_ERR_BUFFER_TOO_SMALL (`*out_len` says how much; nothing is
/// signed), KS_ERR_UNKNOWN_KEY (a keychain with no signing key),
/// KS_ERR_UNAVAILABLE (closed, the device unreachable), KS_ERR_BACKEND.
#[no_mangle]
pub unsafe extern "C" fn ks_signer_sign(
    signer: *const ks_signer,
    message: *const u8,
    message_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let s = unsafe { handle(signer, "signer")? };
        let msg = unsafe { bytes(message, message_len, "message")? };
        unsafe { signature_out(out, cap, out_len, || s.inner.sign(msg)) }
    })
}

/// Signs a 32-byte SHA-256 `digest` computed elsewhere (ECDSA only: the
/// DER signature ks_signer_sign makes over the message). Outputs as
/// ks_signer_sign.
/// Errors: KS_ERR_INVALID_INPUT (not 32 bytes), KS_ERR_UNSUPPORTED (an
/// Ed25519 key), and those of ks_signer_sign.
#[no_mangle]
pub unsafe extern "C" fn ks_signer_sign_digest(
    signer: *const ks_signer,
    digest: *const u8,
    digest_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let s = unsafe { handle(signer, "signer")? };
        let d = unsafe { bytes(digest, digest_len, "digest")? };
        unsafe { signature_out(out, cap, out_len, || s.inner.sign_digest(d)) }
    })
}

/// Checks the signer can serve: for a token, opens a session and finds the
/// key; for a keychain, that it is open and has a signing key.
/// Errors: KS_ERR_UNAVAILABLE (closed, device unreachable),
/// KS_ERR_UNKNOWN_KEY, KS_ERR_BACKEND.
#[no_mangle]
pub unsafe extern "C" fn ks_signer_health_check(
    signer: *const ks_signer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let s = unsafe { handle(signer, "signer")? };
        s.inner.health_check()?;
        Ok(())
    })
}

/// Closes the signer: a token signer logs out and drops its sessions;
/// every later call on it fails with KS_ERR_UNAVAILABLE. A keychain's
/// signer closes only itself, not the keychain. Idempotent. The handle
/// must still be released with ks_signer_free.
#[no_mangle]
pub unsafe extern "C" fn ks_signer_close(
    signer: *const ks_signer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let s = unsafe { handle(signer, "signer")? };
        s.inner.close()?;
        Ok(())
    })
}

/// Releases a signer (a token signer's sessions with it). NULL is a
/// no-op. Must not race with other calls on the same handle.
#[no_mangle]
pub unsafe extern "C" fn ks_signer_free(signer: *mut ks_signer) {
    // SAFETY: NULL or a handle from put_handle, freed once (the contract).
    guard_value((), || unsafe { free_handle(signer) })
}

#[cfg(test)]
mod table_tests {
    use super::*;

    /// The trust kinds' C numbers and names are the core's names, in
    /// order; an unknown number has none.
    #[test]
    fn trust_kinds_have_the_core_names() {
        for (i, k) in TRUST_KINDS.iter().enumerate() {
            let c = trust_kind_to_c(*k);
            assert_eq!(c as usize, i + 1, "{k:?}");
            assert_eq!(c as u32, k.code(), "{k:?}");
            let name = ks_trust_kind_name(c as std::ffi::c_int);
            let name = unsafe { std::ffi::CStr::from_ptr(name) };
            assert_eq!(name.to_str().expect("utf-8"), k.name());
        }
        for bad in [-1, 0, 3, std::ffi::c_int::MAX] {
            assert!(ks_trust_kind_name(bad).is_null());
        }
    }

    /// The keychain's signer borrows nothing after free: a ks_signer over
    /// a keychain may be freed after the keychain.
    #[test]
    fn keychain_signer_signs_and_frees_after_the_keychain() {
        let mut kc: *mut ks_keychain = std::ptr::null_mut();
        let mut s: *mut ks_signer = std::ptr::null_mut();
        let mut buf = [0u8; KS_MAX_SIGNATURE_LEN];
        let mut n = 0usize;
        unsafe {
            assert_eq!(
                crate::ks_keychain_generate(std::ptr::null(), &mut kc, std::ptr::null_mut()),
                ks_status::KS_OK
            );
            assert_eq!(
                crate::ks_keychain_rotate_signing(
                    kc,
                    ks_algorithm::KS_ALG_ECDSA_P256 as u32,
                    std::ptr::null_mut(),
                    std::ptr::null_mut()
                ),
                ks_status::KS_OK
            );
            assert_eq!(
                ks_keychain_signer(kc, &mut s, std::ptr::null_mut()),
                ks_status::KS_OK
            );
            assert_eq!(
                ks_signer_sign(
                    s,
                    b"m".as_ptr(),
                    1,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut n,
                    std::ptr::null_mut()
                ),
                ks_status::KS_OK
            );
            assert_eq!(buf[0], 0x30);
            crate::ks_keychain_free(kc);
            ks_signer_free(s);
        }
    }
}
