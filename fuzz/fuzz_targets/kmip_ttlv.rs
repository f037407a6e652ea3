//! KMIP's binary TTLV decoder (`keystrata::root::kmip::ttlv::Item::decode`,
//! what every KMIP server response goes through). Decoding is strict, so
//! what decodes must encode back to exactly the input.
//!
//! Input: the TTLV bytes.
#![no_main]

use keystrata::root::kmip::ttlv::Item;
use keystrata::ErrorKind::*;
use keystrata_fuzz::{check_error, Auth};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Item::decode(data) {
        Ok(item) => assert_eq!(
            item.encode().expect("a decoded item encodes"),
            data,
            "encode(decode(x)) != x"
        ),
        Err(e) => check_error("Item::decode", &e, data, &[Format], Auth::Opaque),
    }
});
