//! Portable ciphertexts (`keystrata::decrypt_portable`,
//! `PortableDecryptor`): `"KSP" ‖ 0x01 ‖ BE32(len) ‖ wrapped_kek ‖
//! envelope`. The wrapped KEK is opened by the `age` root of
//! `portable.json` when it is an age file, and taken as the KEK record
//! itself otherwise, so the fuzzer writes records directly. The one-shot
//! call and a long-lived decryptor with a small cache must agree on every
//! input (a cache never changes an answer).
//!
//! Input: `len(aad) ‖ aad ‖ blob`.
#![no_main]

use std::sync::OnceLock;

use keystrata::ErrorKind::*;
use keystrata::{decrypt_portable, PortableDecryptor};
use keystrata_fuzz::{check_error, portable_root, split_field, Auth, PortableRoot};
use libfuzzer_sys::fuzz_target;

fn decryptor() -> &'static PortableDecryptor {
    static D: OnceLock<PortableDecryptor> = OnceLock::new();
    // Two KEKs: the fuzzer's inputs keep evicting each other.
    D.get_or_init(|| PortableDecryptor::with_capacity(portable_root(), 2))
}

fuzz_target!(|data: &[u8]| {
    let Some((aad, blob)) = split_field(data) else {
        return;
    };
    let allowed = &[Format, Unsupported, Authentication];
    let framed = PortableDecryptor::decrypted_len(blob);
    if let Err(e) = &framed {
        check_error(
            "decrypted_len",
            e,
            data,
            &[Format, Unsupported],
            Auth::Opaque,
        );
    }
    let one = decrypt_portable(blob, aad, &PortableRoot);
    let cached = decryptor().decrypt(blob, aad);
    match (&one, &cached) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "decrypt_portable and the decryptor disagree");
            assert_eq!(Ok(a.len()), framed.map_err(|e| e.kind()));
        }
        (Err(a), Err(b)) => {
            check_error("decrypt_portable", a, data, allowed, Auth::Opaque);
            check_error("PortableDecryptor::decrypt", b, data, allowed, Auth::Opaque);
            assert_eq!(a.kind(), b.kind(), "one-shot {a} / cached {b}");
        }
        _ => panic!("decrypt_portable {one:?} but the decryptor {cached:?}"),
    }
});
