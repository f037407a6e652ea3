//! The keychain's plaintext JSON (the private `at_rest` module), reached
//! through `Keychain::load` under a root whose protection is the identity.
//! A keychain that loads must then work: save and load again to the same
//! bytes, seal and encrypt round trips, derive, rotate and save again.
//!
//! Input: the JSON.
#![no_main]

use keystrata::ErrorKind::*;
use keystrata::Keychain;
use keystrata_fuzz::{check_error, Auth, IdentityRoot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let kc = match Keychain::load(data, &IdentityRoot) {
        Ok(kc) => kc,
        Err(e) => {
            check_error("load JSON", &e, data, &[Format, Unsupported], Auth::Opaque);
            return;
        }
    };
    // What loads saves to a fixed point.
    let saved = kc.save(&IdentityRoot).expect("a loaded keychain saves");
    let again = Keychain::load(&saved, &IdentityRoot).expect("a saved keychain loads");
    assert_eq!(
        again.keys().expect("keys"),
        kc.keys().expect("keys"),
        "keys changed through save and load"
    );
    assert_eq!(
        again.policy().expect("policy"),
        kc.policy().expect("policy")
    );
    assert_eq!(
        again.save(&IdentityRoot).expect("saves again"),
        saved,
        "save(load(save(k))) != save(k)"
    );

    // The loaded keychain works, or says why not.
    let op_check = |op: &str, e: &keystrata::Error| {
        // An exhausted usage count or key age: Policy. Nothing else.
        check_error(op, e, data, &[Policy], Auth::Opaque);
    };
    match kc.seal(b"fuzz", b"aad") {
        Ok(ct) => assert_eq!(kc.unseal(&ct, b"aad").expect("unseal own seal"), b"fuzz"),
        Err(e) => op_check("seal", &e),
    }
    match kc.encrypt(b"fuzz", b"aad") {
        Ok(ct) => assert_eq!(kc.decrypt(&ct, b"aad").expect("decrypt own"), b"fuzz"),
        Err(e) => op_check("encrypt", &e),
    }
    kc.derive_origin_key("https://o.example", "i", 0)
        .expect("the derivation primary derives");
    match kc.rotate() {
        Ok(info) => {
            assert!(info.primary && info.version >= 1);
            let saved = kc.save(&IdentityRoot).expect("a rotated keychain saves");
            let back = Keychain::load(&saved, &IdentityRoot).expect("and loads again");
            assert_eq!(back.primary().expect("primary"), info);
        }
        // Every version number used: refused, never wrapped to 0.
        Err(e) => op_check("rotate", &e),
    }
});
