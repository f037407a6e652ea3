//! Roots: ks_root handles.

use std::ffi::c_char;

use keystrata::{AgeRoot, PassphraseRoot, Root};

use crate::*;

/// What a ks_root holds.
#[derive(Clone)]
pub(crate) enum RootKind {
    Age(AgeRoot),
    Passphrase(PassphraseRoot),
}

impl RootKind {
    fn root(&self) -> &dyn Root {
        match self {
            RootKind::Age(a) => a,
            RootKind::Passphrase(p) => p,
        }
    }
}

impl Root for RootKind {
    fn provider(&self) -> &str {
        self.root().provider()
    }
    fn protect(&self, keychain_json: &[u8]) -> keystrata::Result<Vec<u8>> {
        self.root().protect(keychain_json)
    }
    fn unprotect(&self, stored: &[u8]) -> keystrata::Result<zeroize::Zeroizing<Vec<u8>>> {
        self.root().unprotect(stored)
    }
}

/// A root: what protects a keychain at rest (an age identity set, or a
/// passphrase). Create with ks_root_age_new, ks_root_age_generate or
/// ks_root_passphrase_new; release with ks_root_free.
///
/// Thread safety: immutable and shareable between threads.
pub struct ks_root {
    pub(crate) kind: RootKind,
}

impl ks_root {
    fn new(kind: RootKind) -> ks_root {
        ks_root { kind }
    }
}

unsafe fn strings<'a>(ptr: *const *const c_char, n: usize, what: &str) -> FfiResult<Vec<&'a str>> {
    let list = unsafe { array(ptr, n, what)? };
    list.iter()
        .enumerate()
        .map(|(i, p)| unsafe { c_str(*p, &format!("{what}[{i}]")) })
        .collect()
}

/// Creates an age root from `n_identities` identities (each an
/// "AGE-SECRET-KEY-1..." string, or the whole text age-keygen prints,
/// comments included) and `n_recipients` recipients ("age1..."). Keychains
/// are encrypted to the recipients and to the identities' public keys; at
/// least one of the two lists must be non-empty. A root without identities
/// can save but not load.
///
/// Ownership: the strings are copied; the caller keeps them. On success
/// `*out` is a new handle to release with ks_root_free.
/// NULL: a list may be NULL only when its count is 0; `out` must not be NULL.
/// Errors: KS_ERR_INVALID_INPUT for a string that does not parse (the
/// message never repeats an identity).
/// Thread safety: safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn ks_root_age_new(
    identities: *const *const c_char,
    n_identities: usize,
    recipients: *const *const c_char,
    n_recipients: usize,
    out: *mut *mut ks_root,
) -> ks_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let ids = unsafe { strings(identities, n_identities, "identities")? };
        let recs = unsafe { strings(recipients, n_recipients, "recipients")? };
        let root = AgeRoot::new(ids, recs)?;
        unsafe { put_handle(out, ks_root::new(RootKind::Age(root))) };
        Ok(())
    })
}

/// Creates an age root with one freshly generated X25519 identity. Read it
/// with ks_root_age_identity to store it. `*out` is released with
/// ks_root_free.
#[no_mangle]
pub unsafe extern "C" fn ks_root_age_generate(out: *mut *mut ks_root) -> ks_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        unsafe { put_handle(out, ks_root::new(RootKind::Age(AgeRoot::generate()))) };
        Ok(())
    })
}

/// Copies identity number `index` of an age root, as an
/// "AGE-SECRET-KEY-1..." string (no NUL), into `*out`. This is the root's
/// secret: store it as such; ks_buffer_free wipes the copy.
/// Errors: KS_ERR_INVALID_INPUT if the root is not an age root or `index`
/// is out of range.
#[no_mangle]
pub unsafe extern "C" fn ks_root_age_identity(
    root: *const ks_root,
    index: usize,
    out: *mut ks_buffer,
) -> ks_status {
    guard(|| {
        let root = unsafe { handle(root, "root")? };
        let out = out_ptr(out, "out")?;
        let RootKind::Age(a) = &root.kind else {
            return Err(FfiError::invalid("not an age root"));
        };
        use keystrata::root::ExposeSecret;
        let ids = a.insecure_identity_strings();
        let id = ids.get(index).ok_or_else(|| {
            FfiError::invalid(format!(
                "identity index {index} out of range ({})",
                ids.len()
            ))
        })?;
        unsafe { put_buffer(out, id.expose_secret().as_bytes().to_vec()) };
        Ok(())
    })
}

/// Copies recipient number `index` ("age1...", no NUL) of an age root into
/// `*out`. Errors: KS_ERR_INVALID_INPUT if not an age root or out of range.
#[no_mangle]
pub unsafe extern "C" fn ks_root_age_recipient(
    root: *const ks_root,
    index: usize,
    out: *mut ks_buffer,
) -> ks_status {
    guard(|| {
        let root = unsafe { handle(root, "root")? };
        let out = out_ptr(out, "out")?;
        let RootKind::Age(a) = &root.kind else {
            return Err(FfiError::invalid("not an age root"));
        };
        let recs = a.recipients();
        let r = recs.get(index).ok_or_else(|| {
            FfiError::invalid(format!(
                "recipient index {index} out of range ({})",
                recs.len()
            ))
        })?;
        unsafe { put_buffer(out, r.as_bytes().to_vec()) };
        Ok(())
    })
}

/// Creates a passphrase root (age scrypt) from `passphrase_len` bytes of
/// UTF-8. `work_factor` is scrypt's log2(N) for saves, 1..30, or 0 for the
/// default (18, about one second). The passphrase is copied and wiped when
/// the root is freed.
/// Errors: KS_ERR_INVALID_INPUT for an empty or non-UTF-8 passphrase or a
/// work factor above 30.
#[no_mangle]
pub unsafe extern "C" fn ks_root_passphrase_new(
    passphrase: *const u8,
    passphrase_len: usize,
    work_factor: u8,
    out: *mut *mut ks_root,
) -> ks_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let p = unsafe { bytes(passphrase, passphrase_len, "passphrase")? };
        let p =
            std::str::from_utf8(p).map_err(|_| FfiError::invalid("the passphrase is not UTF-8"))?;
        let wf = if work_factor == 0 {
            keystrata::root::DEFAULT_SCRYPT_WORK_FACTOR
        } else {
            work_factor
        };
        let root = PassphraseRoot::with_work_factor(p, wf)?;
        unsafe { put_handle(out, ks_root::new(RootKind::Passphrase(root))) };
        Ok(())
    })
}

/// Releases a root and wipes its secrets. NULL is a no-op. Keychains opened
/// with it (ks_keychain_open) keep their own reference and stay usable.
#[no_mangle]
pub unsafe extern "C" fn ks_root_free(root: *mut ks_root) {
    guard_value((), || {
        if !root.is_null() {
            // SAFETY: allocated by Box::into_raw in put_handle.
            drop(unsafe { Box::from_raw(root) });
        }
    })
}
