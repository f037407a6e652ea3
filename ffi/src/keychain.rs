//! ks_keychain: the keychain and every operation on it.

use std::ffi::c_char;

use keystrata::{KeyInfo, KeyManager, KeyStatus, Keychain, Policy, Purpose};

use crate::*;

/// A keychain: AES-256 keys with one primary per purpose. Create with
/// ks_keychain_generate, ks_keychain_load, ks_keychain_load_file,
/// ks_keychain_open or ks_keychain_import_tink_cleartext; release with
/// ks_keychain_free.
///
/// Thread safety: shareable between threads. Every function taking a
/// `const ks_keychain *` may run concurrently with any other, including the
/// lifecycle functions (rotate, promote, ...), which take `ks_keychain *`
/// only to say they change state; they are internally synchronized. Only
/// ks_keychain_free must not race with any other call on the handle.
pub struct ks_keychain {
    /// Shared, so a handle made from this one (ks_keychain_signer) keeps
    /// the keychain alive after ks_keychain_free.
    pub(crate) inner: std::sync::Arc<Keychain>,
}

/// What a key is for.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_purpose {
    /// No purpose (used in events that concern no key).
    KS_PURPOSE_NONE = 0,
    /// A key-encryption key: seal, encrypt, wrap_key.
    KS_PURPOSE_ENCRYPT = 1,
    /// An HKDF master: derive_origin_key, derive.
    KS_PURPOSE_DERIVE = 2,
    /// A signing key (its ks_algorithm in ks_key_info.algorithm).
    KS_PURPOSE_SIGN = 3,
    /// A streaming key (Tink's AES-GCM-HKDF streaming AEAD).
    KS_PURPOSE_STREAM = 4,
}

/// Whether a key may be used.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_key_status {
    /// Usable.
    KS_KEY_ENABLED = 1,
    /// Kept but refused for every operation.
    KS_KEY_DISABLED = 2,
    /// Material wiped; its ciphertexts fail with KS_ERR_KEY_DESTROYED.
    KS_KEY_DESTROYED = 3,
    /// A status this build of the header does not name (a newer library);
    /// never a known status in disguise.
    KS_KEY_STATUS_UNKNOWN = 0,
}

/// Metadata of one key. No material.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ks_key_info {
    /// The key ID written on the wire.
    pub key_id: u32,
    /// 1, 2, 3 ... in order of creation, per purpose.
    pub version: u32,
    /// What the key is for.
    pub purpose: ks_purpose,
    /// Enabled, disabled or destroyed.
    pub status: ks_key_status,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// Encryptions so far (for a bound keychain, the count reserved in its file).
    pub usage: u64,
    /// Whether it is the primary of its purpose.
    pub primary: bool,
    /// For a signing key, its algorithm; KS_ALG_NONE for other purposes.
    pub algorithm: ks_algorithm,
    /// For a streaming key, its format (a ks_stream_format value); 0 for
    /// other purposes.
    pub stream_format: u32,
}

pub(crate) fn purpose_to_c(p: Purpose) -> ks_purpose {
    match p {
        Purpose::Encrypt => ks_purpose::KS_PURPOSE_ENCRYPT,
        Purpose::Derive => ks_purpose::KS_PURPOSE_DERIVE,
        Purpose::Sign => ks_purpose::KS_PURPOSE_SIGN,
        Purpose::Stream => ks_purpose::KS_PURPOSE_STREAM,
        _ => ks_purpose::KS_PURPOSE_NONE,
    }
}

fn purpose_from_c(p: u32) -> FfiResult<Purpose> {
    Purpose::from_code(p).ok_or_else(|| {
        FfiError::invalid(format!(
            "{p} is not a ks_purpose (KS_PURPOSE_ENCRYPT, _DERIVE, _SIGN or _STREAM)"
        ))
    })
}

fn status_to_c(s: KeyStatus) -> ks_key_status {
    match s {
        KeyStatus::Enabled => ks_key_status::KS_KEY_ENABLED,
        KeyStatus::Disabled => ks_key_status::KS_KEY_DISABLED,
        KeyStatus::Destroyed => ks_key_status::KS_KEY_DESTROYED,
        _ => ks_key_status::KS_KEY_STATUS_UNKNOWN,
    }
}

pub(crate) fn info_to_c(i: &KeyInfo) -> ks_key_info {
    ks_key_info {
        key_id: i.key_id,
        version: i.version,
        purpose: purpose_to_c(i.purpose),
        status: status_to_c(i.status),
        created_at: i.created_at,
        usage: i.usage,
        primary: i.primary,
        algorithm: crate::sign::algorithm_to_c(i.algorithm),
        stream_format: i.stream_format.map_or(0, |f| f.code()),
    }
}

/// A rotation policy. Get the defaults from ks_policy_default.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ks_policy {
    /// Maximum encryptions under one key, 1..2^32 (default 2^32).
    pub max_encryptions_per_key: u64,
    /// Maximum age of the encryption primary in seconds; 0 = no limit (default).
    pub max_key_age_secs: u64,
    /// Usage counts a bound keychain reserves in its file at a time (default 65536).
    pub usage_block: u64,
}

fn policy_from_c(p: &ks_policy) -> Policy {
    Policy {
        max_encryptions_per_key: p.max_encryptions_per_key,
        max_key_age_secs: (p.max_key_age_secs != 0).then_some(p.max_key_age_secs),
        usage_block: p.usage_block,
    }
}

fn policy_to_c(p: &Policy) -> ks_policy {
    ks_policy {
        max_encryptions_per_key: p.max_encryptions_per_key,
        max_key_age_secs: p.max_key_age_secs.unwrap_or(0),
        usage_block: p.usage_block,
    }
}

/// The default policy: 2^32 encryptions per key, no age limit, blocks of 65536.
#[no_mangle]
pub extern "C" fn ks_policy_default() -> ks_policy {
    policy_to_c(&Policy::default())
}

unsafe fn put_keychain(out: *mut *mut ks_keychain, kc: Keychain) {
    unsafe {
        put_handle(
            out,
            ks_keychain {
                inner: std::sync::Arc::new(kc),
            },
        )
    }
}

// ---------------------------------------------------------------------
// Construction, saving, loading
// ---------------------------------------------------------------------

/// Generates a keychain with one encryption and one derivation key, both
/// primary, and `policy` (NULL for the default). It is not bound to a file.
/// `*out` is released with ks_keychain_free.
/// Errors: KS_ERR_INVALID_INPUT for an invalid policy.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_generate(
    policy: *const ks_policy,
    out: *mut *mut ks_keychain,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let policy = if policy.is_null() {
            Policy::default()
        } else {
            policy_from_c(unsafe { &*policy })
        };
        let kc = Keychain::generate_with_policy(policy)?;
        unsafe { put_keychain(out, kc) };
        Ok(())
    })
}

/// Loads a keychain from `len` bytes made by ks_keychain_save, opening
/// them with `root`. The result is unbound (it never rotates by itself).
/// Errors: KS_ERR_AUTHENTICATION (wrong identity or passphrase, tampered),
/// KS_ERR_FORMAT (not a saved keychain, truncated header),
/// KS_ERR_UNSUPPORTED (newer format version).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_load(
    data: *const u8,
    len: usize,
    root: *const ks_root,
    out: *mut *mut ks_keychain,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let data = unsafe { bytes(data, len, "data")? };
        let root = unsafe { handle(root, "root")? };
        let kc = Keychain::load(data, &root.kind)?;
        unsafe { put_keychain(out, kc) };
        Ok(())
    })
}

/// Saves the keychain protected by `root` into `*out` (under an age root:
/// an age file). Release `*out` with ks_buffer_free.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_save(
    kc: *const ks_keychain,
    root: *const ks_root,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let root = unsafe { handle(root, "root")? };
        let out = out_ptr(out, "out")?;
        let v = kc.inner.save(&root.kind)?;
        unsafe { put_buffer(out, v) };
        Ok(())
    })
}

/// Saves the keychain to the file `path` atomically (temporary file, fsync,
/// rename, fsync of the directory). The keychain stays unbound.
/// Errors: KS_ERR_IO.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_save_file(
    kc: *const ks_keychain,
    path: *const c_char,
    root: *const ks_root,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let path = unsafe { c_str(path, "path")? };
        let root = unsafe { handle(root, "root")? };
        kc.inner.save_file(path, &root.kind)?;
        Ok(())
    })
}

/// Loads a keychain from the file `path` (unbound).
/// Errors: as ks_keychain_load, plus KS_ERR_IO if the file cannot be read.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_load_file(
    path: *const c_char,
    root: *const ks_root,
    out: *mut *mut ks_keychain,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let path = unsafe { c_str(path, "path")? };
        let root = unsafe { handle(root, "root")? };
        let kc = Keychain::load_file(path, &root.kind)?;
        unsafe { put_keychain(out, kc) };
        Ok(())
    })
}

/// Opens the keychain at `location`, creating it if the store is empty,
/// and binds it to that store. `location` is a file path (or `file://`
/// URL), or `etcd://[user@]host:port[,host:port...]/key/path` (`etcds://`
/// for TLS; see docs/STORES.md and docs/ETCD.md).
///
/// Any number of handles, processes and machines may open one location at
/// once; none ever loses what another wrote. Every change of state
/// (rotation, a block of usage counts) is applied to the latest stored
/// state and written by compare-and-swap before the first ciphertext under
/// it is returned; usage limits hold for all writers together, and at the
/// limit exactly one of them rotates. A ciphertext under a key another
/// writer made decrypts at once; a new primary is adopted within a second.
/// After fork() the child may keep using the handle (it reserves its own
/// usage block); fork only while no other thread is inside a ks_ call.
///
/// `policy` (NULL: keep the stored one, or the default for a new keychain)
/// replaces the stored policy. The keychain keeps its own reference to
/// `root`. A store whose contents do not open with `root` is an error and
/// is left untouched. Errors: KS_ERR_INVALID_INPUT (unknown scheme, bad
/// URL), KS_ERR_UNAVAILABLE (store unreachable), KS_ERR_IO, and those of
/// loading.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_open(
    location: *const c_char,
    root: *const ks_root,
    policy: *const ks_policy,
    out: *mut *mut ks_keychain,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let location = unsafe { c_str(location, "location")? };
        let root = unsafe { handle(root, "root")? };
        let policy = if policy.is_null() {
            None
        } else {
            Some(policy_from_c(unsafe { &*policy }))
        };
        let kc = Keychain::open_with_policy(location, &root.kind, policy)?;
        unsafe { put_keychain(out, kc) };
        Ok(())
    })
}

/// Releases a keychain; its key material is wiped. NULL is a no-op. Must
/// not race with other calls on the same handle.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_free(kc: *mut ks_keychain) {
    // SAFETY: NULL or a handle from put_handle, freed once (the contract).
    guard_value((), || unsafe { free_handle(kc) })
}

/// Closes the keychain: its material is wiped, every subscription is
/// removed (no event after close reaches its callback, though one already
/// being delivered on another thread may finish; ks_keychain_unsubscribe
/// of it still gives KS_OK), and every later call on it fails with
/// KS_ERR_UNAVAILABLE,
/// except ks_keychain_counters (final metrics), ks_keychain_unsubscribe,
/// ks_keychain_is_bound (a fact about the handle) and ks_keychain_close
/// itself, which keep working. Idempotent. The handle must still be released with
/// ks_keychain_free.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_close(
    kc: *const ks_keychain,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        kc.inner.close()?;
        Ok(())
    })
}

/// KS_OK if the keychain can serve calls; KS_ERR_UNAVAILABLE once closed.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_health_check(
    kc: *const ks_keychain,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        kc.inner.health_check()?;
        Ok(())
    })
}

/// Writes the encryption primary's version (what new envelopes carry).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_active_key_version(
    kc: *const ks_keychain,
    out: *mut u32,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        let v = kc.inner.active_key_version()?;
        unsafe { put(out, v) };
        Ok(())
    })
}

/// Adopts the latest state of the store the keychain is bound to now,
/// rather than within its refresh interval (a second). Does nothing for an
/// unbound keychain. Errors: KS_ERR_UNAVAILABLE (store unreachable, or the
/// handle is closed), KS_ERR_IO, and those of loading.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_refresh(
    kc: *const ks_keychain,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        kc.inner.refresh()?;
        Ok(())
    })
}

/// Writes 1 to `*out` if the keychain is bound to a store (ks_keychain_open), else 0.
/// Answers after ks_keychain_close too.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_is_bound(
    kc: *const ks_keychain,
    out: *mut bool,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        unsafe { put(out, kc.inner.is_bound()) };
        Ok(())
    })
}

// ---------------------------------------------------------------------
// Seal, encrypt
// ---------------------------------------------------------------------

pub(crate) type BytesOp = fn(&Keychain, &[u8], &[u8]) -> keystrata::Result<Vec<u8>>;

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn bytes_op(
    kc: *const ks_keychain,
    input: *const u8,
    input_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut ks_buffer,
    op: BytesOp,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let input = unsafe { bytes(input, input_len, "input")? };
        let aad = unsafe { bytes(aad, aad_len, "aad")? };
        let out = out_ptr(out, "out")?;
        let v = op(&kc.inner, input, aad)?;
        unsafe { put_buffer(out, v) };
        Ok(())
    })
}

/// Seals `input` (a small secret) under the encryption primary with
/// associated data `aad`. Output (release with ks_buffer_free): Tink's
/// AEAD format, 0x01 | BE32(key_id) | nonce(12) | ciphertext | tag(16),
/// input_len + 33 bytes.
/// Errors: KS_ERR_POLICY (usage limit of an unbound keychain reached:
/// rotate and save), KS_ERR_IO (a bound keychain could not write its
/// file), KS_ERR_UNAVAILABLE (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_seal(
    kc: *const ks_keychain,
    input: *const u8,
    input_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    unsafe { bytes_op(kc, input, input_len, aad, aad_len, out, Keychain::seal, err) }
}

/// Opens what ks_keychain_seal (or Tink) produced, with the same `aad`.
/// Errors: KS_ERR_FORMAT (malformed), KS_ERR_UNKNOWN_KEY,
/// KS_ERR_KEY_DISABLED, KS_ERR_KEY_DESTROYED, KS_ERR_AUTHENTICATION
/// (tampered, truncated, wrong aad).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_unseal(
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
            Keychain::unseal,
            err,
        )
    }
}

/// Envelope-encrypts `input` with a fresh 32-byte data key wrapped by
/// the encryption primary. Output: Tink's KmsEnvelopeAead layout,
/// BE32(len(enc_dek)) | enc_dek | nonce(12) | ciphertext | tag(16),
/// input_len + 99 bytes. Errors: as ks_keychain_seal.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_encrypt(
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
            Keychain::encrypt,
            err,
        )
    }
}

/// Decrypts what ks_keychain_encrypt (or Tink's KmsEnvelopeAead with this
/// keychain as remote AEAD) produced. Errors: as ks_keychain_unseal.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_decrypt(
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
            Keychain::decrypt,
            err,
        )
    }
}

// ---------------------------------------------------------------------
// Seal, encrypt into a buffer the caller sizes
// ---------------------------------------------------------------------

/// How an operation into a caller's buffer learns its output length.
enum Len {
    /// From the input's length alone (seal, encrypt).
    Of(fn(usize) -> keystrata::Result<usize>),
    /// From the input's framing (unseal, decrypt): no key is used.
    From(fn(&[u8]) -> keystrata::Result<usize>),
}

type ToOp = fn(&Keychain, &[u8], &[u8], &mut [u8]) -> keystrata::Result<()>;

/// The caller-sized forms: `out` NULL asks only for the length (KS_OK; no
/// key, counter or event is touched); `cap` below it gives
/// KS_ERR_BUFFER_TOO_SMALL with the length in `*out_len`, before any key is
/// used; otherwise the core writes exactly that many bytes.
#[allow(clippy::too_many_arguments)]
unsafe fn to_op(
    kc: *const ks_keychain,
    input: *const u8,
    input_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    len: Len,
    op: ToOp,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let dst = SizedOut::new(out, cap, out_len, "out")?;
        let ins = [(input, input_len), (aad, aad_len)];
        let input_s = unsafe { bytes(input, input_len, "input")? };
        let aad_s = unsafe { bytes(aad, aad_len, "aad")? };
        let needed = match len {
            Len::Of(f) => f(input_len),
            Len::From(f) => f(input_s),
        };
        let needed = match needed {
            Ok(n) => n,
            // A query answers with the error alone. An operation runs in
            // the core anyway, so the failure is counted (and raises the
            // event) exactly as the ks_buffer form does.
            Err(e) if dst.is_query() => return Err(e.into()),
            Err(e) => {
                op(&kc.inner, input_s, aad_s, &mut [])?;
                return Err(e.into());
            }
        };
        match unsafe { dst.slice(needed, &ins)? } {
            None => kc.inner.health_check()?,
            Some(buf) => op(&kc.inner, input_s, aad_s, buf)?,
        }
        dst.set_len(needed);
        Ok(())
    })
}

/// ks_keychain_seal into a buffer the caller sizes: writes input_len + 33
/// bytes to `out` and that length to `*out_len`. With `out` NULL only `*out_len` is written (and
/// `cap` is ignored); a `cap` below the length gives
/// KS_ERR_BUFFER_TOO_SMALL with `*out_len` set, and no key is used. The
/// bytes written must not overlap `input` or `aad` (KS_ERR_INVALID_INPUT);
/// the rest of `out` is untouched. On any other error the bytes that would
/// have been written are zeroed. Saves an allocation and a copy per call;
/// the bytes are those of ks_keychain_seal. Errors: as ks_keychain_seal.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_seal_to(
    kc: *const ks_keychain,
    input: *const u8,
    input_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    unsafe {
        to_op(
            kc,
            input,
            input_len,
            aad,
            aad_len,
            out,
            cap,
            out_len,
            Len::Of(keystrata::seal::sealed_len),
            Keychain::seal_to,
            err,
        )
    }
}

/// ks_keychain_unseal into a buffer the caller sizes: the plaintext,
/// input_len - 33 bytes, read from the ciphertext's length without
/// decrypting (a malformed one gives KS_ERR_FORMAT, even for a query).
/// `out`, `cap` and `*out_len` as for ks_keychain_seal_to. Errors: as
/// ks_keychain_unseal.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_unseal_to(
    kc: *const ks_keychain,
    input: *const u8,
    input_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    unsafe {
        to_op(
            kc,
            input,
            input_len,
            aad,
            aad_len,
            out,
            cap,
            out_len,
            Len::From(Keychain::unsealed_len),
            Keychain::unseal_to,
            err,
        )
    }
}

/// ks_keychain_encrypt into a buffer the caller sizes: input_len + 99
/// bytes. `out`, `cap` and `*out_len` as for ks_keychain_seal_to.
/// Errors: as ks_keychain_encrypt.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_encrypt_to(
    kc: *const ks_keychain,
    input: *const u8,
    input_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    unsafe {
        to_op(
            kc,
            input,
            input_len,
            aad,
            aad_len,
            out,
            cap,
            out_len,
            Len::Of(keystrata::encrypt::encrypted_len),
            Keychain::encrypt_to,
            err,
        )
    }
}

/// ks_keychain_decrypt into a buffer the caller sizes: the plaintext, its
/// length read from the ciphertext's framing without decrypting (bad
/// framing gives KS_ERR_FORMAT, even for a query). `out`, `cap` and
/// `*out_len` as for ks_keychain_seal_to. Errors: as ks_keychain_decrypt.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_decrypt_to(
    kc: *const ks_keychain,
    input: *const u8,
    input_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    unsafe {
        to_op(
            kc,
            input,
            input_len,
            aad,
            aad_len,
            out,
            cap,
            out_len,
            Len::From(Keychain::decrypted_len),
            Keychain::decrypt_to,
            err,
        )
    }
}

// ---------------------------------------------------------------------
// Derivation
// ---------------------------------------------------------------------

/// Derives the stable 32-byte key for (origin, instance, epoch) by
/// HKDF-SHA256 under the derivation primary (`key_id` 0) or the
/// derivation key `key_id`. Unchanged by ks_keychain_rotate. The key is
/// secret: release `*out` with ks_buffer_free, which wipes it.
/// Errors: KS_ERR_UNKNOWN_KEY (key_id is not a derivation key),
/// KS_ERR_KEY_DISABLED, KS_ERR_KEY_DESTROYED.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_derive_origin_key(
    kc: *const ks_keychain,
    key_id: u32,
    origin: *const u8,
    origin_len: usize,
    instance: *const u8,
    instance_len: usize,
    epoch: u64,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let origin = unsafe { bytes(origin, origin_len, "origin")? };
        let instance = unsafe { bytes(instance, instance_len, "instance")? };
        let out = out_ptr(out, "out")?;
        let k = if key_id == 0 {
            kc.inner.derive_origin_key(origin, instance, epoch)?
        } else {
            kc.inner
                .derive_origin_key_with(key_id, origin, instance, epoch)?
        };
        unsafe { put_buffer(out, k.expose_secret().to_vec()) };
        Ok(())
    })
}

/// Derives `length` bytes (1..8160) of HKDF-SHA256 with `info` as given,
/// no salt, under the derivation primary (`key_id` 0) or key `key_id`.
/// Errors: KS_ERR_INVALID_INPUT for a length out of range; as
/// ks_keychain_derive_origin_key.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_derive(
    kc: *const ks_keychain,
    key_id: u32,
    info: *const u8,
    info_len: usize,
    length: usize,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let info = unsafe { bytes(info, info_len, "info")? };
        let out = out_ptr(out, "out")?;
        let k = if key_id == 0 {
            kc.inner.derive(info, length)?
        } else {
            kc.inner.derive_with(key_id, info, length)?
        };
        unsafe { put_buffer(out, k.expose_secret().to_vec()) };
        Ok(())
    })
}

// ---------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------

unsafe fn put_info(out: *mut ks_key_info, info: &KeyInfo) {
    unsafe { put_opt(out, info_to_c(info)) };
}

/// Adds an encryption key and makes it primary (old ciphertexts keep
/// decrypting; derived keys do not change). Writes the new key's info to
/// `*out` unless `out` is NULL. A bound keychain writes its file first.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_rotate(
    kc: *mut ks_keychain,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let i = kc.inner.rotate()?;
        unsafe { put_info(out, &i) };
        Ok(())
    })
}

/// Adds a derivation key and makes it the derivation primary: every derived
/// key changes (for compromise). `out` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_rotate_derivation(
    kc: *mut ks_keychain,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let i = kc.inner.rotate_derivation()?;
        unsafe { put_info(out, &i) };
        Ok(())
    })
}

/// Adds an enabled, non-primary key of `purpose` (a ks_purpose value: 1 or
/// 2): the first phase of a two-phase rotation. `out` may be NULL.
/// Errors: KS_ERR_INVALID_INPUT for another purpose value.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_add_key(
    kc: *mut ks_keychain,
    purpose: u32,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let p = purpose_from_c(purpose)?;
        let i = kc.inner.add_key(p)?;
        unsafe { put_info(out, &i) };
        Ok(())
    })
}

/// Makes the enabled key `key_id` the primary of its purpose. `out` may be NULL.
/// Errors: KS_ERR_UNKNOWN_KEY; KS_ERR_POLICY if the key is not enabled.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_promote(
    kc: *mut ks_keychain,
    key_id: u32,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let i = kc.inner.promote(key_id)?;
        unsafe { put_info(out, &i) };
        Ok(())
    })
}

/// A rotation prepared by ks_keychain_prepare_rotation.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ks_rotation_plan {
    /// The encryption primary's version when the plan was made.
    pub current_version: u32,
    /// The version ks_keychain_promote_version makes active.
    pub target_version: u32,
    /// The key ID of that version.
    pub target_key_id: u32,
}

/// Prepares a two-step rotation of the encryption primary (the shape of
/// object-store gateways' rotation interface). `target_version` 0: the
/// newest enabled encryption key newer than the primary, or, if there is
/// none, a new key, added (and stored, when bound) but not made primary.
/// Otherwise that version. Fills `*out`. Nothing becomes active until
/// ks_keychain_promote_version. Errors: KS_ERR_UNKNOWN_KEY (no encryption
/// key has the version), KS_ERR_KEY_DISABLED, KS_ERR_KEY_DESTROYED,
/// KS_ERR_POLICY (already active).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_prepare_rotation(
    kc: *mut ks_keychain,
    target_version: u32,
    out: *mut ks_rotation_plan,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        let target = (target_version != 0).then_some(target_version);
        let p = kc.inner.prepare_rotation(target)?;
        unsafe {
            put(
                out,
                ks_rotation_plan {
                    current_version: p.current_version,
                    target_version: p.target_version,
                    target_key_id: p.target_key_id,
                },
            )
        };
        Ok(())
    })
}

/// Makes `plan`'s target the encryption primary if the active version is
/// still the plan's current_version (checked and changed in one step, in
/// the store when bound). Writes the new primary's info to `*out` unless
/// `out` is NULL. Errors: KS_ERR_POLICY ("rotation conflict": another
/// rotation happened since the plan), KS_ERR_UNKNOWN_KEY,
/// KS_ERR_KEY_DISABLED, KS_ERR_KEY_DESTROYED, KS_ERR_INVALID_INPUT (a plan
/// whose key is not that encryption version).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_promote_version(
    kc: *mut ks_keychain,
    plan: *const ks_rotation_plan,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let plan = unsafe { handle(plan, "plan")? };
        let i = kc.inner.promote_version(&keystrata::RotationPlan {
            current_version: plan.current_version,
            target_version: plan.target_version,
            target_key_id: plan.target_key_id,
        })?;
        unsafe { put_info(out, &i) };
        Ok(())
    })
}

/// Disables `key_id`. Errors: KS_ERR_UNKNOWN_KEY; KS_ERR_POLICY for a
/// primary or a destroyed key.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_disable(
    kc: *mut ks_keychain,
    key_id: u32,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        kc.inner.disable(key_id)?;
        Ok(())
    })
}

/// Enables a disabled key. Errors: KS_ERR_UNKNOWN_KEY; KS_ERR_POLICY for a
/// destroyed key.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_enable(
    kc: *mut ks_keychain,
    key_id: u32,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        kc.inner.enable(key_id)?;
        Ok(())
    })
}

/// Destroys `key_id`'s material, irreversibly; its ciphertexts then fail
/// with KS_ERR_KEY_DESTROYED. Destroying a destroyed key is KS_OK.
/// Errors: KS_ERR_UNKNOWN_KEY; KS_ERR_POLICY for a primary.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_destroy(
    kc: *mut ks_keychain,
    key_id: u32,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        kc.inner.destroy(key_id)?;
        Ok(())
    })
}

/// Writes the number of keys to `*count`. With concurrent rotation the
/// count may grow between this call and ks_keychain_key_info; use
/// ks_keychain_keys for a consistent listing (`out` NULL asks it for the
/// count alone).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_key_count(
    kc: *const ks_keychain,
    count: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let count = out_ptr(count, "count")?;
        unsafe { put(count, kc.inner.keys()?.len()) };
        Ok(())
    })
}

/// Writes the info of key number `index` (in order of creation).
/// Errors: KS_ERR_INVALID_INPUT if `index` is out of range.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_key_info(
    kc: *const ks_keychain,
    index: usize,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        let keys = kc.inner.keys()?;
        let k = keys.get(index).ok_or_else(|| {
            FfiError::invalid(format!("key index {index} out of range ({})", keys.len()))
        })?;
        unsafe { put(out, info_to_c(k)) };
        Ok(())
    })
}

/// A consistent listing of every key, in order of creation, into an array
/// the caller sizes: writes the infos to `out` and their number to
/// `*out_len`. With `out` NULL only `*out_len` is written (`cap` is
/// ignored). If `cap` is below the number of keys, nothing is written to
/// `out`, `*out_len` is set to the number needed and KS_ERR_BUFFER_TOO_SMALL
/// is returned; keys may be added concurrently, so call again with room to
/// spare.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_keys(
    kc: *const ks_keychain,
    out: *mut ks_key_info,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let dst = SizedOut::new(out, cap, out_len, "out")?;
        let keys = kc.inner.keys()?;
        if let Room::Fits(p) = dst.room(keys.len())? {
            for (i, k) in keys.iter().enumerate() {
                // SAFETY: cap >= keys.len() elements writable per contract;
                // written through the raw pointer, never read.
                unsafe { p.add(i).write(info_to_c(k)) };
            }
        }
        dst.set_len(keys.len());
        Ok(())
    })
}

/// Writes the info of the primary key of `purpose` (1 encrypt, 2 derive).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_primary(
    kc: *const ks_keychain,
    purpose: u32,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        let p = purpose_from_c(purpose)?;
        let i = kc.inner.primary_for(p)?;
        unsafe { put(out, info_to_c(&i)) };
        Ok(())
    })
}

/// Writes the keychain's rotation policy.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_get_policy(
    kc: *const ks_keychain,
    out: *mut ks_policy,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        unsafe { put(out, policy_to_c(&kc.inner.policy()?)) };
        Ok(())
    })
}

/// Replaces the rotation policy (written to the file if bound).
/// Errors: KS_ERR_INVALID_INPUT for an invalid policy.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_set_policy(
    kc: *mut ks_keychain,
    policy: *const ks_policy,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let p = unsafe { handle(policy, "policy")? };
        kc.inner.set_policy(policy_from_c(p))?;
        Ok(())
    })
}

// ---------------------------------------------------------------------
// Tink
// ---------------------------------------------------------------------

/// Creates a keychain from a Tink cleartext JSON keyset (`json_len` bytes
/// of UTF-8) of 32-byte AesGcmKey keys with TINK prefix. Tink's ciphertexts
/// keep decrypting; a fresh derivation key is added.
/// Errors: KS_ERR_UNSUPPORTED (another key type, size or prefix),
/// KS_ERR_FORMAT (not a keyset).
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_import_tink_cleartext(
    json: *const u8,
    json_len: usize,
    out: *mut *mut ks_keychain,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let out = out_ptr(out, "out")?;
        let json = unsafe { bytes(json, json_len, "json")? };
        let json =
            std::str::from_utf8(json).map_err(|_| FfiError::invalid("the keyset is not UTF-8"))?;
        let kc = Keychain::import_tink_cleartext(json)?;
        unsafe { put_keychain(out, kc) };
        Ok(())
    })
}

/// Writes the encryption keys as a Tink cleartext JSON keyset (UTF-8, no
/// NUL) to `*out`. It holds key material in the clear (the name is the
/// warning, as tink-go's insecurecleartextkeyset): release with
/// ks_buffer_free, which wipes it.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_insecure_export_tink_cleartext(
    kc: *const ks_keychain,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        let mut s = kc.inner.insecure_export_tink_cleartext()?;
        let v = std::mem::take(&mut *s).into_bytes();
        unsafe { put_buffer(out, v) };
        Ok(())
    })
}

/// Deprecated: the old name of ks_keychain_insecure_export_tink_cleartext,
/// kept for one release; it does exactly the same.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_export_tink_cleartext(
    kc: *const ks_keychain,
    out: *mut ks_buffer,
    err: *mut *mut ks_error,
) -> ks_status {
    // SAFETY: the same contract, passed through.
    unsafe { ks_keychain_insecure_export_tink_cleartext(kc, out, err) }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    /// The C numbers are the core's codes, for every value the core has.
    #[test]
    fn purposes_and_statuses_are_the_core_codes() {
        for p in Purpose::ALL {
            assert_eq!(purpose_to_c(p) as u32, p.code(), "{p:?}");
            assert_eq!(purpose_from_c(p.code()).ok(), Some(p));
        }
        assert!(purpose_from_c(0).is_err() && purpose_from_c(5).is_err());
        for s in KeyStatus::ALL {
            assert_eq!(status_to_c(s) as u32, s.code(), "{s:?}");
        }
    }
}
