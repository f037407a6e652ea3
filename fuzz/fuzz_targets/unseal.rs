//! `Keychain::unseal`: Tink's AEAD format, `0x01 ‖ BE32(key_id) ‖ nonce ‖
//! ciphertext ‖ tag`, under the vector keychain (keys enabled, disabled,
//! destroyed, and a derivation key).
//!
//! Input: `len(aad) ‖ aad ‖ ciphertext` (see `split_field`).
#![no_main]

use keystrata::seal::SEAL_OVERHEAD;
use keystrata::ErrorKind::*;
use keystrata::Keychain;
use keystrata_fuzz::{check_error, fixtures, split_field, Auth};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((aad, ct)) = split_field(data) else {
        return;
    };
    let kc = &fixtures().keychain;
    let framed = Keychain::unsealed_len(ct);
    match &framed {
        Ok(n) => assert_eq!(n + SEAL_OVERHEAD, ct.len()),
        Err(e) => check_error("unsealed_len", e, data, &[Format], Auth::Opaque),
    }
    match kc.unseal(ct, aad) {
        Ok(pt) => assert_eq!(Ok(pt.len()), framed.map_err(|e| e.kind())),
        Err(e) => {
            check_error(
                "unseal",
                &e,
                data,
                &[
                    Format,
                    UnknownKey,
                    KeyDisabled,
                    KeyDestroyed,
                    Authentication,
                ],
                Auth::Opaque,
            );
            // Framing is judged before any key is looked up.
            assert_eq!(framed.is_err(), e.kind() == Format, "unseal: {e}");
        }
    }
});
