//! Property tests: every operation round-trips; any changed byte fails.

use std::sync::OnceLock;

use keystrata::{ErrorKind, KeyManager, Keychain};
use proptest::prelude::*;

fn kc() -> &'static Keychain {
    static KC: OnceLock<Keychain> = OnceLock::new();
    KC.get_or_init(|| {
        let kc = Keychain::generate().unwrap();
        kc.rotate().unwrap();
        kc
    })
}

/// What tampering byte `i` of a sealed ciphertext must give: the prefix
/// selects the format and the key, so changing it gives Format (version
/// byte) or UnknownKey (key ID); every other byte gives Authentication.
fn expected_seal_tamper(i: usize) -> &'static [ErrorKind] {
    match i {
        0 => &[ErrorKind::Format],
        1..=4 => &[ErrorKind::UnknownKey],
        _ => &[ErrorKind::Authentication],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn seal_round_trips(pt in proptest::collection::vec(any::<u8>(), 0..2048), aad in proptest::collection::vec(any::<u8>(), 0..64)) {
        let ct = kc().seal(&pt, &aad).unwrap();
        prop_assert_eq!(kc().unseal(&ct, &aad).unwrap(), pt);
    }

    #[test]
    fn seal_tampering_any_byte_fails(pt in proptest::collection::vec(any::<u8>(), 0..256), aad in proptest::collection::vec(any::<u8>(), 0..32), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut ct = kc().seal(&pt, &aad).unwrap();
        let i = pos.index(ct.len());
        ct[i] ^= flip;
        let e = kc().unseal(&ct, &aad).unwrap_err();
        prop_assert!(expected_seal_tamper(i).contains(&e.kind()), "byte {} gave {:?}", i, e.kind());
    }

    #[test]
    fn seal_wrong_aad_fails(pt in proptest::collection::vec(any::<u8>(), 0..256), aad in proptest::collection::vec(any::<u8>(), 0..32), other in proptest::collection::vec(any::<u8>(), 0..32)) {
        prop_assume!(aad != other);
        let ct = kc().seal(&pt, &aad).unwrap();
        prop_assert_eq!(kc().unseal(&ct, &other).unwrap_err().kind(), ErrorKind::Authentication);
    }

    #[test]
    fn encrypt_round_trips(pt in proptest::collection::vec(any::<u8>(), 0..4096), aad in proptest::collection::vec(any::<u8>(), 0..64)) {
        let ct = kc().encrypt(&pt, &aad).unwrap();
        prop_assert_eq!(kc().decrypt(&ct, &aad).unwrap(), pt);
    }

    #[test]
    fn encrypt_tampering_any_byte_fails(pt in proptest::collection::vec(any::<u8>(), 0..256), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut ct = kc().encrypt(&pt, b"").unwrap();
        let i = pos.index(ct.len());
        ct[i] ^= flip;
        let e = kc().decrypt(&ct, b"").unwrap_err();
        // Length field: Format; enc_dek prefix: Format / UnknownKey; the
        // rest: Authentication.
        let ok: &[ErrorKind] = match i {
            // A changed length either overruns (Format) or cuts enc_dek
            // short, which then fails to authenticate.
            0..=3 => &[ErrorKind::Format, ErrorKind::Authentication],
            4 => &[ErrorKind::Format],
            5..=8 => &[ErrorKind::UnknownKey],
            _ => &[ErrorKind::Authentication],
        };
        prop_assert!(ok.contains(&e.kind()), "byte {} gave {:?}", i, e.kind());
    }

    #[test]
    fn encrypt_wrong_aad_fails(pt in proptest::collection::vec(any::<u8>(), 0..256), aad in proptest::collection::vec(any::<u8>(), 1..32)) {
        let ct = kc().encrypt(&pt, &aad).unwrap();
        prop_assert_eq!(kc().decrypt(&ct, b"").unwrap_err().kind(), ErrorKind::Authentication);
    }

    #[test]
    fn wrap_round_trips_and_binds_context(key in proptest::collection::vec(any::<u8>(), 1..128), ctx in proptest::collection::vec(any::<u8>(), 0..64), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let env = kc().wrap_key(&key, &ctx).unwrap();
        let back = kc().unwrap_key(&env, &ctx).unwrap();
        prop_assert_eq!(back.expose_secret(), &key[..]);
        let mut other = ctx.clone();
        other.push(0);
        prop_assert_eq!(kc().unwrap_key(&env, &other).unwrap_err().kind(), ErrorKind::Authentication);
        let mut t = env.clone();
        let i = pos.index(t.ciphertext.len());
        t.ciphertext[i] ^= flip;
        let e = kc().unwrap_key(&t, &ctx).unwrap_err();
        let ok: &[ErrorKind] = match i {
            0 => &[ErrorKind::Format],
            _ => &[ErrorKind::Authentication],
        };
        prop_assert!(ok.contains(&e.kind()), "byte {} gave {:?}", i, e.kind());
        let back = keystrata::Envelope::from_metadata(env.to_metadata()).unwrap();
        prop_assert_eq!(back, env);
    }

    #[test]
    fn derive_is_deterministic_and_injective_on_fields(a in ".{0,20}", b in ".{0,20}", e in any::<u64>()) {
        let k = kc().derive_origin_key(&a, &b, e).unwrap();
        prop_assert_eq!(&k, &kc().derive_origin_key(&a, &b, e).unwrap());
        prop_assert_ne!(&k, &kc().derive_origin_key(&a, &b, e.wrapping_add(1)).unwrap());
        let mut a2 = a.clone();
        a2.push('x');
        prop_assert_ne!(&k, &kc().derive_origin_key(&a2, &b, e).unwrap());
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(kc().unseal(&bytes, b"").is_err());
        prop_assert!(kc().decrypt(&bytes, b"").is_err());
        let _ = keystrata::Keychain::import_tink_cleartext(&String::from_utf8_lossy(&bytes));
    }
}
