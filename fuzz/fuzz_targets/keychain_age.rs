//! `Keychain::load` under an `AgeRoot`: an age v1 file (X25519 stanzas),
//! hostile headers included, then the keychain's JSON inside.
//!
//! Input: the saved bytes.
#![no_main]

use keystrata::ErrorKind::*;
use keystrata::Keychain;
use keystrata_fuzz::{check_error, fixtures, Auth};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Keychain::load(data, &fixtures().age_root) {
        Ok(kc) => assert!(kc.primary().is_ok()),
        Err(e) => check_error(
            "load under AgeRoot",
            &e,
            data,
            &[Format, Authentication, Unsupported],
            Auth::AnyMessage,
        ),
    }
});
