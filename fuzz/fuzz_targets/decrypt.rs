//! `Keychain::decrypt`: Tink's KmsEnvelopeAead layout, `BE32(len) ‖ enc_dek
//! ‖ nonce ‖ ciphertext ‖ tag`, under the vector keychain.
//!
//! Input: `mode ‖ len(aad) ‖ aad ‖ rest`. With the mode's low bit clear,
//! `rest` is the ciphertext. With it set, `rest` is `len(dek_proto) ‖
//! dek_proto ‖ payload`, and the target seals `dek_proto` under the
//! keychain's primary itself to build the ciphertext: that reaches the
//! parser of the DEK's protobuf, which only a key holder can feed.
#![no_main]

use keystrata::ErrorKind::*;
use keystrata::Keychain;
use keystrata_fuzz::{check_error, fixtures, split_field, Auth};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((aad, rest)) = split_field(rest) else {
        return;
    };
    let kc = &fixtures().keychain;
    let (blob, allowed): (Vec<u8>, &[_]) = if mode & 1 == 0 {
        (
            rest.to_vec(),
            &[
                Format,
                UnknownKey,
                KeyDisabled,
                KeyDestroyed,
                Authentication,
            ],
        )
    } else {
        let Some((proto, payload)) = split_field(rest) else {
            return;
        };
        let enc_dek = kc.seal(proto, b"").expect("the primary seals");
        let mut blob = (enc_dek.len() as u32).to_be_bytes().to_vec();
        blob.extend_from_slice(&enc_dek);
        blob.extend_from_slice(payload);
        // A DEK protobuf keystrata does not accept: Unsupported, or Format
        // when cut short.
        (blob, &[Format, Unsupported, Authentication])
    };
    let framed = Keychain::decrypted_len(&blob);
    if let Err(e) = &framed {
        check_error("decrypted_len", e, data, &[Format], Auth::Opaque);
    }
    match kc.decrypt(&blob, aad) {
        Ok(pt) => assert_eq!(Ok(pt.len()), framed.map_err(|e| e.kind())),
        Err(e) => {
            check_error("decrypt", &e, data, allowed, Auth::Opaque);
            if framed.is_err() {
                assert_eq!(e.kind(), Format, "decrypt: {e}");
            }
        }
    }
});
