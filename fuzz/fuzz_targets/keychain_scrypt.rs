//! `Keychain::load` under a `PassphraseRoot` (age scrypt stanza) that
//! accepts work factors up to 2: a hostile work factor must be refused
//! (`Policy`) before any scrypt work, and the fuzzer stays fast.
//!
//! Input: the saved bytes.
#![no_main]

use std::sync::OnceLock;

use keystrata::ErrorKind::*;
use keystrata::{Keychain, PassphraseRoot};
use keystrata_fuzz::{check_error, fixtures, Auth};
use libfuzzer_sys::fuzz_target;

/// The largest scrypt work factor this target lets the root accept.
const MAX_LOG_N: u8 = 2;

fn root() -> &'static PassphraseRoot {
    static R: OnceLock<PassphraseRoot> = OnceLock::new();
    R.get_or_init(|| {
        PassphraseRoot::with_limits(fixtures().passphrase.as_str(), 1, MAX_LOG_N)
            .expect("valid limits")
    })
}

fuzz_target!(|data: &[u8]| {
    match Keychain::load(data, root()) {
        Ok(kc) => assert!(kc.primary().is_ok()),
        Err(e) => check_error(
            "load under PassphraseRoot",
            &e,
            data,
            &[Format, Authentication, Unsupported, Policy],
            Auth::AnyMessage,
        ),
    }
});
