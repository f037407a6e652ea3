//! `Keychain::import_tink_cleartext`: Tink's cleartext JSON keysets and
//! the `AesGcmKey` protobuf inside. What imports must export and import
//! again to the same encryption keys.
//!
//! Input: the JSON (invalid UTF-8 replaced).
#![no_main]

use keystrata::ErrorKind::*;
use keystrata::{KeyInfo, KeyStatus, Keychain, Purpose};
use keystrata_fuzz::{check_error, Auth};
use libfuzzer_sys::fuzz_target;

/// What an export keeps: encryption keys that are not destroyed.
fn exported(keys: Vec<KeyInfo>) -> Vec<(u32, KeyStatus, bool)> {
    keys.into_iter()
        .filter(|k| k.purpose == Purpose::Encrypt && k.status != KeyStatus::Destroyed)
        .map(|k| (k.key_id, k.status, k.primary))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let json = String::from_utf8_lossy(data);
    let kc = match Keychain::import_tink_cleartext(&json) {
        Ok(kc) => kc,
        Err(e) => {
            check_error(
                "import_tink_cleartext",
                &e,
                data,
                &[Format, Unsupported],
                Auth::Opaque,
            );
            return;
        }
    };
    let out = kc
        .insecure_export_tink_cleartext()
        .expect("an imported keyset exports");
    let back = Keychain::import_tink_cleartext(&out).expect("an exported keyset imports");
    assert_eq!(
        exported(back.keys().expect("keys")),
        exported(kc.keys().expect("keys"))
    );
});
