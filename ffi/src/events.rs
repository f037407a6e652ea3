//! Events and counters.

use std::ffi::c_void;

use keystrata::{Event, EventKind};

use crate::*;

/// What happened to a keychain.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_event_kind {
    /// A key was created.
    KS_EVENT_KEY_CREATED = 1,
    /// A new primary was created (automatic tells whether the policy did it).
    KS_EVENT_KEY_ROTATED = 2,
    /// An existing key was made primary.
    KS_EVENT_KEY_PROMOTED = 3,
    /// A key was disabled.
    KS_EVENT_KEY_DISABLED = 4,
    /// A key was enabled.
    KS_EVENT_KEY_ENABLED = 5,
    /// A key's material was destroyed.
    KS_EVENT_KEY_DESTROYED = 6,
    /// A key was derived.
    KS_EVENT_KEY_DERIVED = 7,
    /// An unseal, decrypt or unwrap failed.
    KS_EVENT_DECRYPT_FAILED = 8,
    /// A signature was made (key_id, algorithm, digest: the audit trail).
    KS_EVENT_SIGNED = 9,
    /// A signature did not verify (error says how).
    KS_EVENT_VERIFY_FAILED = 10,
    /// A kind this build of the header does not name (a newer library);
    /// never a known kind in disguise.
    KS_EVENT_UNKNOWN = 0,
}

/// One lifecycle event. Identifiers only, never material.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ks_event {
    /// What happened.
    pub kind: ks_event_kind,
    /// The key concerned; 0 if none or unknown.
    pub key_id: u32,
    /// That key's version; 0 if unknown.
    pub key_version: u32,
    /// That key's purpose; KS_PURPOSE_NONE if unknown.
    pub purpose: ks_purpose,
    /// For KS_EVENT_KEY_ROTATED: whether the rotation policy triggered it.
    pub automatic: bool,
    /// For KS_EVENT_DECRYPT_FAILED and KS_EVENT_VERIFY_FAILED: the status
    /// returned to the caller; else KS_OK.
    pub error: ks_status,
    /// For KS_EVENT_SIGNED: the signing algorithm; else KS_ALG_NONE.
    pub algorithm: ks_algorithm,
    /// For KS_EVENT_SIGNED and KS_EVENT_VERIFY_FAILED: whether `digest`
    /// holds the SHA-256 digest of the message.
    pub has_digest: bool,
    /// The SHA-256 digest of the message signed or verified (for a digest
    /// signed as such, that digest); zeros when has_digest is false.
    pub digest: [u8; 32],
}

/// An event callback. It runs on the thread that caused the event, with no
/// keychain lock held (it may call the keychain), possibly on several
/// threads at once. `event` is valid only during the call.
pub type ks_event_callback =
    Option<unsafe extern "C" fn(event: *const ks_event, user_data: *mut c_void)>;

struct UserData(*mut c_void);
// SAFETY: the caller promises (documented) that user_data may be used from
// any thread; keystrata only passes it back.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    fn get(&self) -> *mut c_void {
        self.0
    }
}

fn kind_to_c(k: EventKind) -> ks_event_kind {
    use ks_event_kind::*;
    match k {
        EventKind::KeyCreated => KS_EVENT_KEY_CREATED,
        EventKind::KeyRotated => KS_EVENT_KEY_ROTATED,
        EventKind::KeyPromoted => KS_EVENT_KEY_PROMOTED,
        EventKind::KeyDisabled => KS_EVENT_KEY_DISABLED,
        EventKind::KeyEnabled => KS_EVENT_KEY_ENABLED,
        EventKind::KeyDestroyed => KS_EVENT_KEY_DESTROYED,
        EventKind::KeyDerived => KS_EVENT_KEY_DERIVED,
        EventKind::DecryptFailed => KS_EVENT_DECRYPT_FAILED,
        EventKind::Signed => KS_EVENT_SIGNED,
        EventKind::VerifyFailed => KS_EVENT_VERIFY_FAILED,
        _ => KS_EVENT_UNKNOWN,
    }
}

fn event_to_c(e: &Event) -> ks_event {
    ks_event {
        kind: kind_to_c(e.kind),
        key_id: e.key_id.unwrap_or(0),
        key_version: e.key_version.unwrap_or(0),
        purpose: e
            .purpose
            .map(purpose_to_c)
            .unwrap_or(ks_purpose::KS_PURPOSE_NONE),
        automatic: e.automatic,
        error: e
            .error
            .map(ks_status::from_kind)
            .unwrap_or(ks_status::KS_OK),
        algorithm: crate::sign::algorithm_to_c(e.algorithm),
        has_digest: e.digest.is_some(),
        digest: e.digest.unwrap_or([0; 32]),
    }
}

/// Registers `callback` (with `user_data`, passed back untouched) for the
/// keychain's lifecycle events; the subscription's ID goes to
/// `*subscription`. `user_data` must stay valid, and be usable from any
/// thread, until ks_keychain_free: a callback already running on another
/// thread may still be running, with `user_data`, when
/// ks_keychain_unsubscribe returns.
/// The callback must not unwind (longjmp, C++ exceptions) into keystrata.
/// Errors: KS_ERR_NULL_ARGUMENT; KS_ERR_UNAVAILABLE after ks_keychain_close.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_subscribe(
    kc: *const ks_keychain,
    callback: ks_event_callback,
    user_data: *mut c_void,
    subscription: *mut u64,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let cb = callback.ok_or_else(|| FfiError::null("callback"))?;
        let subscription = out_ptr(subscription, "subscription")?;
        let ud = UserData(user_data);
        let id = kc.inner.subscribe(move |e| {
            let ev = event_to_c(e);
            // SAFETY: a C function pointer the caller registered.
            unsafe { cb(&ev, ud.get()) };
        })?;
        unsafe { put(subscription, id.into_raw()) };
        Ok(())
    })
}

/// Removes a subscription (after ks_keychain_close, which removed them all,
/// any ID it gave out is KS_OK). An event already being delivered on
/// another thread may still finish its callback. Errors:
/// KS_ERR_INVALID_INPUT if there is no subscription with that ID.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_unsubscribe(
    kc: *const ks_keychain,
    subscription: u64,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        if kc
            .inner
            .unsubscribe(keystrata::SubscriptionId::from_raw(subscription))
        {
            Ok(())
        } else {
            Err(FfiError::invalid(format!("no subscription {subscription}")))
        }
    })
}

/// A snapshot of a keychain's operation counters.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ks_counters {
    /// Successful seals.
    pub seal: u64,
    /// Successful unseals.
    pub unseal_ok: u64,
    /// Failed unseals.
    pub unseal_failed: u64,
    /// Successful encrypts.
    pub encrypt: u64,
    /// Successful decrypts.
    pub decrypt_ok: u64,
    /// Failed decrypts.
    pub decrypt_failed: u64,
    /// Successful wraps.
    pub wrap: u64,
    /// Successful unwraps.
    pub unwrap_ok: u64,
    /// Failed unwraps.
    pub unwrap_failed: u64,
    /// Successful derivations.
    pub derive: u64,
    /// Rotations (manual or automatic, any purpose).
    pub rotations: u64,
    /// Signatures made.
    pub sign: u64,
    /// Successful verifications.
    pub verify_ok: u64,
    /// Failed verifications.
    pub verify_failed: u64,
    /// Errors returned, indexed by status - 1 (KS_ERR_INVALID_INPUT .. KS_ERR_INTERNAL).
    pub errors: [u64; 12],
}

/// Writes a snapshot of the counters to `*out`.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_counters(
    kc: *const ks_keychain,
    out: *mut ks_counters,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let out = out_ptr(out, "out")?;
        let c = kc.inner.counters();
        unsafe {
            put(
                out,
                ks_counters {
                    seal: c.seal,
                    unseal_ok: c.unseal_ok,
                    unseal_failed: c.unseal_failed,
                    encrypt: c.encrypt,
                    decrypt_ok: c.decrypt_ok,
                    decrypt_failed: c.decrypt_failed,
                    wrap: c.wrap,
                    unwrap_ok: c.unwrap_ok,
                    unwrap_failed: c.unwrap_failed,
                    derive: c.derive,
                    rotations: c.rotations,
                    sign: c.sign,
                    verify_ok: c.verify_ok,
                    verify_failed: c.verify_failed,
                    errors: c.errors,
                },
            )
        };
        Ok(())
    })
}

#[cfg(test)]
mod table_tests {
    use super::*;

    /// The C numbers are the core's codes, for every kind the core has.
    #[test]
    fn event_kinds_are_the_core_codes() {
        for k in EventKind::ALL {
            assert_eq!(kind_to_c(k) as u32, k.code(), "{k:?}");
        }
    }
}
