//! `Envelope::from_metadata` (the `x-amz-meta-encryption-*` map) and
//! `unwrap_key` of what it reads, by the vector keychain and, for provider
//! `"age"`, by the vector age root.
//!
//! Input: NUL-separated fields `key ‖ 0 ‖ value ‖ 0 ‖ key ‖ 0 ‖ value …`,
//! each read as UTF-8 (lossy); an odd last field is the unwrap context.
#![no_main]

use keystrata::root::AGE_PROVIDER;
use keystrata::ErrorKind::*;
use keystrata::{Envelope, KeyManager};
use keystrata_fuzz::{check_error, fixtures, Auth};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fields: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    let pairs: Vec<(String, String)> = fields
        .chunks_exact(2)
        .map(|kv| {
            (
                String::from_utf8_lossy(kv[0]).into_owned(),
                String::from_utf8_lossy(kv[1]).into_owned(),
            )
        })
        .collect();
    let context: &[u8] = if fields.len() % 2 == 1 {
        fields[fields.len() - 1]
    } else {
        b""
    };
    let env = match Envelope::from_metadata(pairs.iter().map(|(k, v)| (k, v))) {
        Ok(env) => env,
        Err(e) => {
            check_error("from_metadata", &e, data, &[Format], Auth::Opaque);
            return;
        }
    };
    let again = Envelope::from_metadata(&env.to_metadata()).expect("to_metadata reads back");
    assert_eq!(again, env, "from_metadata(to_metadata(e)) != e");

    let f = fixtures();
    match f.keychain.unwrap_key(&env, context) {
        Ok(key) => assert!((1..=keystrata::MAX_WRAPPED_KEY_LEN).contains(&key.len())),
        Err(e) => check_error(
            "keychain unwrap_key",
            &e,
            data,
            &[
                InvalidInput,
                Format,
                Authentication,
                UnknownKey,
                KeyDisabled,
                KeyDestroyed,
            ],
            Auth::Opaque,
        ),
    }
    if env.provider == AGE_PROVIDER {
        if let Err(e) = f.age_root.unwrap_key(&env, context) {
            check_error(
                "age unwrap_key",
                &e,
                data,
                &[Format, Authentication, Unsupported],
                Auth::AnyMessage,
            );
        }
    }
});
