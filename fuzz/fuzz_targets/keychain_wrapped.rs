//! `Keychain::load` in the device-root format (`KSWR`,
//! `keystrata::root::wrapped`): header, wrapped data key unwrapped by the
//! vector keychain (or, for provider `"age"`, the vector age root), body.
//!
//! Input: the saved bytes.
#![no_main]

use keystrata::ErrorKind::*;
use keystrata::Keychain;
use keystrata_fuzz::{check_error, Auth, WrappedRoot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Keychain::load(data, &WrappedRoot) {
        Ok(kc) => assert!(kc.primary().is_ok()),
        Err(e) => check_error(
            "load under a device-format root",
            &e,
            data,
            &[
                Format,
                Authentication,
                InvalidInput,
                UnknownKey,
                KeyDisabled,
                KeyDestroyed,
                Unsupported,
            ],
            Auth::AnyMessage,
        ),
    }
});
