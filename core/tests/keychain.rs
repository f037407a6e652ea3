//! Behaviour of the keychain through its public API: lifecycle rules,
//! errors, events, counters, policy, saving and loading.

use std::sync::{Arc, Mutex};

use keystrata::{
    AgeRoot, Envelope, ErrorKind, Event, EventKind, KeyManager, KeyStatus, Keychain,
    PassphraseRoot, Policy, Purpose, Root,
};

fn kind<T: std::fmt::Debug>(r: keystrata::Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

#[test]
fn seal_unseal_encrypt_decrypt_round_trip() {
    let kc = Keychain::generate().unwrap();
    for len in [0usize, 1, 31, 32, 33, 4096, 100_000] {
        let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let ct = kc.seal(&pt, b"aad").unwrap();
        assert_eq!(ct.len(), pt.len() + keystrata::seal::SEAL_OVERHEAD);
        assert_eq!(ct[0], 1);
        assert_eq!(
            u32::from_be_bytes(ct[1..5].try_into().unwrap()),
            kc.primary().unwrap().key_id
        );
        assert_eq!(kc.unseal(&ct, b"aad").unwrap(), pt);
        let blob = kc.encrypt(&pt, b"aad").unwrap();
        assert_eq!(
            blob.len(),
            pt.len() + keystrata::envelope_encryption::ENCRYPT_OVERHEAD
        );
        assert_eq!(&blob[..4], &67u32.to_be_bytes());
        assert_eq!(kc.decrypt(&blob, b"aad").unwrap(), pt);
    }
}

#[test]
fn two_seals_of_one_message_differ() {
    let kc = Keychain::generate().unwrap();
    assert_ne!(kc.seal(b"x", b"").unwrap(), kc.seal(b"x", b"").unwrap());
    assert_ne!(
        kc.encrypt(b"x", b"").unwrap(),
        kc.encrypt(b"x", b"").unwrap()
    );
}

#[test]
fn bad_ciphertexts_get_documented_kinds() {
    let kc = Keychain::generate().unwrap();
    let ct = kc.seal(b"secret", b"a").unwrap();
    assert_eq!(kind(kc.unseal(&ct, b"b")), ErrorKind::Authentication);
    assert_eq!(
        kind(kc.unseal(&ct[..ct.len() - 1], b"a")),
        ErrorKind::Authentication
    );
    assert_eq!(kind(kc.unseal(&ct[..32], b"a")), ErrorKind::Format);
    assert_eq!(kind(kc.unseal(&[], b"a")), ErrorKind::Format);
    let mut v = ct.clone();
    v[0] = 0;
    assert_eq!(kind(kc.unseal(&v, b"a")), ErrorKind::Format);
    let mut v = ct.clone();
    v[1] ^= 0x80; // key IDs we generate are < 2^31: this one is unknown.
    assert_eq!(kind(kc.unseal(&v, b"a")), ErrorKind::UnknownKey);
    let mut v = ct.clone();
    let last = v.len() - 1;
    v[last] ^= 1;
    assert_eq!(kind(kc.unseal(&v, b"a")), ErrorKind::Authentication);

    let blob = kc.encrypt(b"doc", b"a").unwrap();
    assert_eq!(kind(kc.decrypt(&blob, b"b")), ErrorKind::Authentication);
    assert_eq!(kind(kc.decrypt(&blob[..3], b"a")), ErrorKind::Format);
    assert_eq!(kind(kc.decrypt(&blob[..80], b"a")), ErrorKind::Format);
    let mut v = blob.clone();
    v[3] = 200; // length field past the end
    assert_eq!(kind(kc.decrypt(&v, b"a")), ErrorKind::Format);
    let mut v = blob.clone();
    v[30] ^= 1; // inside enc_dek
    assert_eq!(kind(kc.decrypt(&v, b"a")), ErrorKind::Authentication);
    let mut v = blob;
    let last = v.len() - 1;
    v[last] ^= 1;
    assert_eq!(kind(kc.decrypt(&v, b"a")), ErrorKind::Authentication);

    // A ciphertext from another keychain names a key this one lacks.
    let other = Keychain::generate().unwrap();
    assert_eq!(kind(other.unseal(&ct, b"a")), ErrorKind::UnknownKey);
}

#[test]
fn authentication_errors_say_nothing_more() {
    let kc = Keychain::generate().unwrap();
    let ct = kc.seal(b"secret", b"a").unwrap();
    let e1 = kc.unseal(&ct, b"b").unwrap_err();
    let mut v = ct.clone();
    v[20] ^= 1;
    let e2 = kc.unseal(&v, b"a").unwrap_err();
    assert_eq!(e1.to_string(), e2.to_string());
    assert!(!e1.to_string().contains("secret"));
}

#[test]
fn rotate_keeps_old_ciphertexts_and_moves_primary() {
    let kc = Keychain::generate().unwrap();
    let p1 = kc.primary().unwrap();
    let ct1 = kc.seal(b"one", b"").unwrap();
    let blob1 = kc.encrypt(b"one", b"").unwrap();
    let p2 = kc.rotate().unwrap();
    assert_ne!(p1.key_id, p2.key_id);
    assert_eq!(p2.version, 2);
    assert!(p2.primary);
    assert_eq!(kc.primary().unwrap().key_id, p2.key_id);
    let ct2 = kc.seal(b"two", b"").unwrap();
    assert_eq!(u32::from_be_bytes(ct2[1..5].try_into().unwrap()), p2.key_id);
    assert_eq!(kc.unseal(&ct1, b"").unwrap(), b"one");
    assert_eq!(kc.decrypt(&blob1, b"").unwrap(), b"one");
    assert_eq!(kc.active_key_version().unwrap(), 2);
    let keys = kc.keys().expect("keys");
    assert_eq!(keys.len(), 3);
    assert!(!keys.iter().find(|k| k.key_id == p1.key_id).unwrap().primary);
}

#[test]
fn derive_is_stable_across_encryption_rotation_only() {
    let kc = Keychain::generate().unwrap();
    let a = kc.derive_origin_key("https://a.example", "i-1", 7).unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(
        a,
        kc.derive_origin_key("https://a.example", "i-1", 8).unwrap()
    );
    assert_ne!(
        a,
        kc.derive_origin_key("https://a.example", "i-2", 7).unwrap()
    );
    assert_ne!(
        a,
        kc.derive_origin_key("https://b.example", "i-1", 7).unwrap()
    );
    // Length prefixes keep ("ab","c") and ("a","bc") apart.
    assert_ne!(
        kc.derive_origin_key("ab", "c", 0).unwrap(),
        kc.derive_origin_key("a", "bc", 0).unwrap()
    );
    kc.rotate().unwrap();
    assert_eq!(
        a,
        kc.derive_origin_key("https://a.example", "i-1", 7).unwrap()
    );
    let old = kc.primary_for(Purpose::Derive).unwrap();
    let new = kc.rotate_derivation().unwrap();
    assert_eq!(new.purpose, Purpose::Derive);
    assert_eq!(new.version, 2);
    assert_ne!(
        a,
        kc.derive_origin_key("https://a.example", "i-1", 7).unwrap()
    );
    assert_eq!(
        a,
        kc.derive_origin_key_with(old.key_id, "https://a.example", "i-1", 7)
            .unwrap()
    );

    let g = kc.derive(b"info", 100).unwrap();
    assert_eq!(g.len(), 100);
    assert_eq!(kind(kc.derive(b"info", 0)), ErrorKind::InvalidInput);
    assert_eq!(kind(kc.derive(b"info", 8161)), ErrorKind::InvalidInput);
    assert_eq!(kc.derive(b"info", 8160).unwrap().len(), 8160);
    // An encryption key cannot derive.
    let enc = kc.primary().unwrap().key_id;
    assert_eq!(
        kind(kc.derive_with(enc, b"info", 32)),
        ErrorKind::UnknownKey
    );
}

#[test]
fn derive_matches_rfc5869_hkdf_by_hand() {
    // derive_origin_key = HKDF-SHA256(ikm = derivation key, no salt, info).
    // Check the info encoding against derive(), which takes info verbatim.
    let kc = Keychain::generate().unwrap();
    let mut info = b"keystrata/derive/v1".to_vec();
    info.extend_from_slice(&3u32.to_be_bytes());
    info.extend_from_slice(b"org");
    info.extend_from_slice(&4u32.to_be_bytes());
    info.extend_from_slice(b"inst");
    info.extend_from_slice(&42u64.to_be_bytes());
    assert_eq!(
        kc.derive_origin_key("org", "inst", 42).unwrap(),
        kc.derive(&info, 32).unwrap()
    );
}

#[test]
fn two_phase_rotation() {
    let kc = Keychain::generate().unwrap();
    let p1 = kc.primary().unwrap();
    let added = kc.add_key(Purpose::Encrypt).unwrap();
    assert!(!added.primary);
    assert_eq!(kc.primary().unwrap().key_id, p1.key_id);
    // Readers that have the new key can already decrypt under it once promoted.
    let promoted = kc.promote(added.key_id).unwrap();
    assert!(promoted.primary);
    assert_eq!(kc.primary().unwrap().key_id, added.key_id);
    let ct = kc.seal(b"x", b"").unwrap();
    assert_eq!(
        u32::from_be_bytes(ct[1..5].try_into().unwrap()),
        added.key_id
    );
    // Promoting the primary again is harmless.
    kc.promote(added.key_id).unwrap();
}

#[test]
fn lifecycle_rules() {
    let kc = Keychain::generate().unwrap();
    let p1 = kc.primary().unwrap().key_id;
    let d1 = kc.primary_for(Purpose::Derive).unwrap().key_id;
    let ct1 = kc.seal(b"one", b"").unwrap();
    let env1 = kc.wrap_key(&[1u8; 32], b"").unwrap();
    assert_eq!(kind(kc.disable(p1)), ErrorKind::Policy);
    assert_eq!(kind(kc.destroy(p1)), ErrorKind::Policy);
    assert_eq!(kind(kc.destroy(d1)), ErrorKind::Policy);
    assert_eq!(kind(kc.disable(12345)), ErrorKind::UnknownKey);
    assert_eq!(kind(kc.promote(12345)), ErrorKind::UnknownKey);

    kc.rotate().unwrap();
    kc.disable(p1).unwrap();
    assert_eq!(kind(kc.unseal(&ct1, b"")), ErrorKind::KeyDisabled);
    assert_eq!(kind(kc.unwrap_key(&env1, b"")), ErrorKind::KeyDisabled);
    assert_eq!(kind(kc.promote(p1)), ErrorKind::Policy);
    let info = kc
        .keys()
        .expect("keys")
        .into_iter()
        .find(|k| k.key_id == p1)
        .unwrap();
    assert_eq!(info.status, KeyStatus::Disabled);
    kc.enable(p1).unwrap();
    assert_eq!(kc.unseal(&ct1, b"").unwrap(), b"one");
    kc.destroy(p1).unwrap();
    kc.destroy(p1).unwrap(); // idempotent
    assert_eq!(kind(kc.unseal(&ct1, b"")), ErrorKind::KeyDestroyed);
    assert_eq!(kind(kc.enable(p1)), ErrorKind::Policy);
    assert_eq!(kind(kc.disable(p1)), ErrorKind::Policy);
    assert_eq!(kind(kc.promote(p1)), ErrorKind::Policy);
    let info = kc
        .keys()
        .expect("keys")
        .into_iter()
        .find(|k| k.key_id == p1)
        .unwrap();
    assert_eq!(info.status, KeyStatus::Destroyed);
    // A destroyed key is kept (so its ciphertexts say KeyDestroyed), and
    // its material is not in the saved form.
    let root = AgeRoot::generate();
    let json = root.unprotect(&kc.save(&root).unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let k = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == p1)
        .unwrap();
    assert!(k["material"].is_null());
    assert_eq!(k["status"], "destroyed");
    let again = Keychain::load(&kc.save(&root).unwrap(), &root).unwrap();
    assert_eq!(kind(again.unseal(&ct1, b"")), ErrorKind::KeyDestroyed);
}

#[test]
fn wrap_unwrap_binds_identity_and_context() {
    let kc = Keychain::generate().unwrap();
    assert_eq!(kc.provider(), "keystrata");
    for len in [16usize, 24, 32, 64] {
        let dek = vec![0x5a; len];
        let env = kc.wrap_key(&dek, b"tenant=7").unwrap();
        assert_eq!(env.provider, "keystrata");
        assert_eq!(env.key_version, 1);
        assert_eq!(env.key_id, kc.primary().unwrap().key_id.to_string());
        assert_eq!(
            kc.unwrap_key(&env, b"tenant=7").unwrap().expose_secret(),
            &dek[..]
        );
        assert_eq!(
            kind(kc.unwrap_key(&env, b"tenant=8")),
            ErrorKind::Authentication
        );
        let mut e = env.clone();
        e.key_version = 2;
        assert_eq!(
            kind(kc.unwrap_key(&e, b"tenant=7")),
            ErrorKind::Authentication
        );
        let mut e = env.clone();
        e.provider = "other".into();
        assert_eq!(
            kind(kc.unwrap_key(&e, b"tenant=7")),
            ErrorKind::InvalidInput
        );
        let mut e = env.clone();
        e.key_id = "x".into();
        assert_eq!(kind(kc.unwrap_key(&e, b"tenant=7")), ErrorKind::Format);
        let mut e = env.clone();
        e.key_id = "7".into();
        assert_eq!(
            kind(kc.unwrap_key(&e, b"tenant=7")),
            ErrorKind::Authentication
        );
        let mut e = env.clone();
        let n = e.ciphertext.len();
        e.ciphertext[n - 3] ^= 4;
        assert_eq!(
            kind(kc.unwrap_key(&e, b"tenant=7")),
            ErrorKind::Authentication
        );
        // The metadata form carries everything.
        let back = Envelope::from_metadata(env.to_metadata()).unwrap();
        assert_eq!(back, env);
        assert_eq!(
            kc.unwrap_key(&back, b"tenant=7").unwrap().expose_secret(),
            &dek[..]
        );
    }
    assert_eq!(kind(kc.wrap_key(&[], b"")), ErrorKind::InvalidInput);
    assert_eq!(
        kind(kc.wrap_key(&[0u8; 4097], b"")),
        ErrorKind::InvalidInput
    );
}

#[test]
fn close_makes_everything_unavailable() {
    let kc = Keychain::generate().unwrap();
    let ct = kc.seal(b"x", b"").unwrap();
    kc.health_check().unwrap();
    kc.close().unwrap();
    kc.close().unwrap();
    assert_eq!(kind(kc.health_check()), ErrorKind::Unavailable);
    assert_eq!(kind(kc.seal(b"x", b"")), ErrorKind::Unavailable);
    assert_eq!(kind(kc.unseal(&ct, b"")), ErrorKind::Unavailable);
    assert_eq!(kind(kc.encrypt(b"x", b"")), ErrorKind::Unavailable);
    assert_eq!(kind(kc.wrap_key(&[1; 16], b"")), ErrorKind::Unavailable);
    assert_eq!(kind(kc.derive(b"i", 32)), ErrorKind::Unavailable);
    assert_eq!(kind(kc.rotate()), ErrorKind::Unavailable);
    assert_eq!(kind(kc.active_key_version()), ErrorKind::Unavailable);
    assert_eq!(kind(kc.save(&AgeRoot::generate())), ErrorKind::Unavailable);
    assert_eq!(kind(kc.keys()), ErrorKind::Unavailable);
    assert_eq!(kind(kc.policy()), ErrorKind::Unavailable);
    assert_eq!(kind(kc.refresh()), ErrorKind::Unavailable);
}

#[test]
fn events_are_delivered_and_a_panicking_subscriber_is_contained() {
    let kc = Arc::new(Keychain::generate().unwrap());
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let s2 = Arc::clone(&seen);
    let id = kc
        .subscribe(move |e| s2.lock().unwrap().push(e.clone()))
        .unwrap();
    let _bad = kc.subscribe(|_| panic!("subscriber bug")).unwrap();
    // A subscriber may call back into the keychain without deadlocking.
    let kc2 = Arc::clone(&kc);
    let _reentrant = kc
        .subscribe(move |_| {
            let _ = kc2.keys().expect("keys");
        })
        .unwrap();

    let r = kc.rotate().unwrap();
    let added = kc.add_key(Purpose::Encrypt).unwrap();
    kc.promote(added.key_id).unwrap();
    kc.disable(r.key_id).unwrap();
    kc.enable(r.key_id).unwrap();
    kc.destroy(r.key_id).unwrap();
    kc.derive_origin_key("o", "i", 1).unwrap();
    let _ = kc.unseal(b"garbage", b"");
    let kinds: Vec<EventKind> = seen.lock().unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::KeyCreated,
            EventKind::KeyRotated,
            EventKind::KeyCreated,
            EventKind::KeyPromoted,
            EventKind::KeyDisabled,
            EventKind::KeyEnabled,
            EventKind::KeyDestroyed,
            EventKind::KeyDerived,
            EventKind::DecryptFailed,
        ]
    );
    let ev = seen.lock().unwrap().clone();
    assert_eq!(ev[1].key_id, Some(r.key_id));
    assert!(!ev[1].automatic);
    assert_eq!(ev[8].error, Some(ErrorKind::Format));
    // The keychain still works after the panicking subscriber.
    let ct = kc.seal(b"still fine", b"").unwrap();
    assert_eq!(kc.unseal(&ct, b"").unwrap(), b"still fine");
    assert!(kc.unsubscribe(id));
    assert!(!kc.unsubscribe(id));
    kc.rotate().unwrap();
    assert_eq!(seen.lock().unwrap().len(), 9);
}

#[test]
fn counters_count() {
    let kc = Keychain::generate().unwrap();
    let ct = kc.seal(b"x", b"").unwrap();
    kc.unseal(&ct, b"").unwrap();
    let _ = kc.unseal(&ct, b"wrong");
    let _ = kc.unseal(b"", b"");
    let b = kc.encrypt(b"x", b"").unwrap();
    kc.decrypt(&b, b"").unwrap();
    let _ = kc.decrypt(&b, b"no");
    let env = kc.wrap_key(&[1; 32], b"").unwrap();
    kc.unwrap_key(&env, b"").unwrap();
    let _ = kc.unwrap_key(&env, b"c");
    kc.derive(b"i", 16).unwrap();
    kc.derive_origin_key("o", "i", 0).unwrap();
    kc.rotate().unwrap();
    let _ = kc.disable(1);
    let c = kc.counters();
    assert_eq!(
        (
            c.seal,
            c.unseal_ok,
            c.unseal_failed,
            c.encrypt,
            c.decrypt_ok,
            c.decrypt_failed
        ),
        (1, 1, 2, 1, 1, 1)
    );
    assert_eq!(
        (c.wrap, c.unwrap_ok, c.unwrap_failed, c.derive, c.rotations),
        (1, 1, 1, 2, 1)
    );
    assert_eq!(c.errors_of(ErrorKind::Authentication), 3);
    assert_eq!(c.errors_of(ErrorKind::Format), 1);
    assert_eq!(c.errors_of(ErrorKind::UnknownKey), 1);
    assert_eq!(c.errors.iter().sum::<u64>(), 5);
}

#[test]
fn unbound_keychain_refuses_past_the_limit() {
    let policy = Policy {
        max_encryptions_per_key: 3,
        ..Policy::default()
    };
    let kc = Keychain::generate_with_policy(policy).unwrap();
    kc.seal(b"1", b"").unwrap();
    kc.encrypt(b"2", b"").unwrap();
    kc.wrap_key(&[0; 16], b"").unwrap();
    let e = kc.seal(b"4", b"").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Policy);
    assert!(e.message().contains("rotate"), "{e}");
    assert_eq!(kind(kc.encrypt(b"4", b"")), ErrorKind::Policy);
    // Refused attempts use no count.
    assert_eq!(kc.primary().unwrap().usage, 3);
    // Decrypting and deriving are not limited.
    kc.derive(b"x", 32).unwrap();
    kc.rotate().unwrap();
    kc.seal(b"5", b"").unwrap();
    // Usage survives save/load.
    let root = AgeRoot::generate();
    let loaded = Keychain::load(&kc.save(&root).unwrap(), &root).unwrap();
    assert_eq!(
        loaded.policy().expect("policy"),
        kc.policy().expect("policy")
    );
    assert_eq!(loaded.primary().unwrap().usage, 1);
    loaded.seal(b"6", b"").unwrap();
    loaded.seal(b"7", b"").unwrap();
    assert_eq!(kind(loaded.seal(b"8", b"")), ErrorKind::Policy);
}

#[test]
fn max_key_age_is_enforced() {
    let kc = Keychain::generate().unwrap();
    kc.set_policy(Policy {
        max_key_age_secs: Some(1),
        ..Policy::default()
    })
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(kind(kc.seal(b"x", b"")), ErrorKind::Policy);
    kc.rotate().unwrap();
    kc.seal(b"x", b"").unwrap();
}

#[test]
fn invalid_policies_are_refused() {
    for p in [
        Policy {
            max_encryptions_per_key: 0,
            ..Policy::default()
        },
        Policy {
            max_encryptions_per_key: (1 << 32) + 1,
            ..Policy::default()
        },
        Policy {
            usage_block: 0,
            ..Policy::default()
        },
        Policy {
            max_key_age_secs: Some(0),
            ..Policy::default()
        },
    ] {
        assert_eq!(
            kind(Keychain::generate_with_policy(p)),
            ErrorKind::InvalidInput
        );
    }
}

#[test]
fn save_load_under_age_and_passphrase() {
    let kc = Keychain::generate().unwrap();
    kc.rotate().unwrap();
    let ct = kc.seal(b"s", b"").unwrap();
    let d = kc.derive_origin_key("o", "i", 0).unwrap();

    let root = AgeRoot::generate();
    let saved = kc.save(&root).unwrap();
    assert!(saved.starts_with(b"age-encryption.org/v1\n"));
    let back = Keychain::load(&saved, &root).unwrap();
    assert_eq!(back.unseal(&ct, b"").unwrap(), b"s");
    assert_eq!(back.derive_origin_key("o", "i", 0).unwrap(), d);
    assert_eq!(back.keys().expect("keys"), kc.keys().expect("keys"));
    assert!(!back.is_bound());

    let pass = PassphraseRoot::with_work_factor("correct horse", 10).unwrap();
    let saved_p = kc.save(&pass).unwrap();
    let back = Keychain::load(&saved_p, &pass).unwrap();
    assert_eq!(back.unseal(&ct, b"").unwrap(), b"s");

    // Wrong roots.
    let wrong = PassphraseRoot::with_work_factor("battery staple", 10).unwrap();
    assert_eq!(
        kind(Keychain::load(&saved_p, &wrong)),
        ErrorKind::Authentication
    );
    assert_eq!(
        kind(Keychain::load(&saved, &AgeRoot::generate())),
        ErrorKind::Authentication
    );
    assert_eq!(
        kind(Keychain::load(&saved, &pass)),
        ErrorKind::Authentication
    );
    assert_eq!(
        kind(Keychain::load(&saved_p, &root)),
        ErrorKind::Authentication
    );
    // Truncated, tampered, not an age file. A payload cut short is
    // indistinguishable from a tampered one (age's STREAM authenticates
    // the end): Authentication; a header cut short is Format.
    let e = Keychain::load(&saved[..saved.len() - 10], &root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    assert!(e.message().contains("truncated"), "{e}");
    assert_eq!(
        kind(Keychain::load(&saved[..100], &root)),
        ErrorKind::Format
    );
    let mut t = saved.clone();
    let n = t.len();
    t[n - 20] ^= 1;
    assert_eq!(kind(Keychain::load(&t, &root)), ErrorKind::Authentication);
    assert_eq!(
        kind(Keychain::load(b"{\"format\":1}", &root)),
        ErrorKind::Format
    );
    assert_eq!(kind(Keychain::load(b"", &root)), ErrorKind::Format);
}

#[test]
fn unknown_format_versions_and_bad_json_are_refused() {
    let root = AgeRoot::generate();
    let kc = Keychain::generate().unwrap();
    let json = root.unprotect(&kc.save(&root).unwrap()).unwrap();
    let text = String::from_utf8(json.to_vec()).unwrap();
    let v2 = text.replace("\"version\": 1,", "\"version\": 2,");
    assert_ne!(v2, text);
    let e = Keychain::load(&root.protect(v2.as_bytes()).unwrap(), &root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("version 2"), "{e}");
    for bad in [
        text.replace("keystrata.keychain", "other"),
        text.replace("\"purpose\": \"encrypt\"", "\"purpose\": \"sign\""),
        text.replace("\"status\": \"enabled\"", "\"status\": \"gone\""),
        text.replace(
            "\"primary\": {\"encrypt\": ",
            "\"primary\": {\"encrypt\": 1",
        ),
        "not json".to_owned(),
        text[..text.len() / 2].to_owned(),
    ] {
        let e = Keychain::load(&root.protect(bad.as_bytes()).unwrap(), &root).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Format, "{e}");
        // No material in messages.
        assert!(!e.message().contains("material\": \""), "{e}");
    }
}

#[test]
fn age_roots_parse_keygen_output_and_refuse_garbage() {
    let text = "# created: 2026-11-23T09:00:00Z\n# public key: age1...\nAGE-SECRET-KEY-1QQPQQ\n";
    let e = AgeRoot::new([text], [] as [&str; 0]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(!e.message().contains("QQPQQ"), "identity echoed: {e}");
    assert_eq!(
        kind(AgeRoot::new([] as [&str; 0], ["age1nope"])),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(AgeRoot::new([] as [&str; 0], [] as [&str; 0])),
        ErrorKind::InvalidInput
    );
    assert_eq!(kind(PassphraseRoot::new("")), ErrorKind::InvalidInput);

    let g = AgeRoot::generate();
    use age::secrecy::ExposeSecret;
    let ids: Vec<String> = g
        .insecure_identity_strings()
        .iter()
        .map(|s| {
            format!(
                "# created: now\n# public key: {}\n{}\n",
                g.recipients()[0],
                s.expose_secret()
            )
        })
        .collect();
    let parsed = AgeRoot::new(&ids, [] as [&str; 0]).unwrap();
    assert_eq!(parsed.recipients(), g.recipients());
    // Recipients only: can save, cannot load.
    let public = AgeRoot::new([] as [&str; 0], g.recipients()).unwrap();
    let kc = Keychain::generate().unwrap();
    let saved = kc.save(&public).unwrap();
    assert_eq!(
        kind(Keychain::load(&saved, &public)),
        ErrorKind::InvalidInput
    );
    Keychain::load(&saved, &parsed).unwrap();
    assert!(!format!("{parsed:?}").contains("AGE-SECRET-KEY"));
}

#[test]
fn tink_export_import_round_trip() {
    let kc = Keychain::generate().unwrap();
    let ct1 = kc.seal(b"one", b"a").unwrap();
    let p1 = kc.primary().unwrap().key_id;
    kc.rotate().unwrap();
    let ct2 = kc.seal(b"two", b"a").unwrap();
    let blob = kc.encrypt(b"doc", b"a").unwrap();
    kc.rotate().unwrap();
    kc.disable(p1).unwrap();
    let json = kc.insecure_export_tink_cleartext().unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["primaryKeyId"], kc.primary().unwrap().key_id);
    assert_eq!(v["key"].as_array().unwrap().len(), 3);
    let back = Keychain::import_tink_cleartext(&json).unwrap();
    assert_eq!(kind(back.unseal(&ct1, b"a")), ErrorKind::KeyDisabled);
    assert_eq!(back.unseal(&ct2, b"a").unwrap(), b"two");
    assert_eq!(back.decrypt(&blob, b"a").unwrap(), b"doc");
    assert_eq!(back.primary().unwrap().key_id, kc.primary().unwrap().key_id);
    assert_eq!(back.keys().expect("keys").len(), 4); // three encryption keys and a fresh derivation key
                                                     // Destroyed keys are left out of the export.
    kc.destroy(p1).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&kc.insecure_export_tink_cleartext().unwrap()).unwrap();
    assert_eq!(v["key"].as_array().unwrap().len(), 2);
}

#[test]
fn tink_import_refuses_what_it_cannot_keep() {
    let kc = Keychain::generate().unwrap();
    let json = kc.insecure_export_tink_cleartext().unwrap().to_string();
    for (bad, want) in [
        (json.replace("\"TINK\"", "\"RAW\""), ErrorKind::Unsupported),
        (
            json.replace("\"TINK\"", "\"LEGACY\""),
            ErrorKind::Unsupported,
        ),
        (
            json.replace("AesGcmKey", "AesEaxKey"),
            ErrorKind::Unsupported,
        ),
        (
            json.replace("\"value\":\"Gi", "\"value\":\"Gh"),
            ErrorKind::Unsupported,
        ),
        (
            json.replace("primaryKeyId\":", "primaryKeyId\":1"),
            ErrorKind::Format,
        ),
        ("{}".to_owned(), ErrorKind::Format),
        ("[".to_owned(), ErrorKind::Format),
    ] {
        let e = Keychain::import_tink_cleartext(&bad).unwrap_err();
        assert_eq!(e.kind(), want, "{e}");
    }
}

#[test]
fn debug_output_has_no_material() {
    let kc = Keychain::generate().unwrap();
    let root = AgeRoot::generate();
    let json = root.unprotect(&kc.save(&root).unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let material = v["keys"][0]["material"].as_str().unwrap().to_owned();
    let d = format!(
        "{kc:?} {:?} {:?}",
        kc.keys().expect("keys"),
        kc.derive(b"x", 32).unwrap()
    );
    assert!(!d.contains(&material));
    assert!(!d.contains("material"));
}

/// Closing removes every subscription and drops its callback (what it
/// captured is released), the same rule in every language.
#[test]
fn close_drops_every_subscription() {
    let kc = Keychain::generate().unwrap();
    let held = Arc::new(());
    let h2 = Arc::clone(&held);
    let id = kc
        .subscribe(move |_| {
            let _ = &h2;
        })
        .unwrap();
    assert_eq!(Arc::strong_count(&held), 2);
    kc.close().unwrap();
    assert_eq!(Arc::strong_count(&held), 1, "the callback was not dropped");
    // A subscription after close would never be called: refused, and the
    // callback dropped.
    let h3 = Arc::clone(&held);
    let err = kc.subscribe(move |_| {
        let _ = &h3;
    });
    assert_eq!(err.unwrap_err().kind(), keystrata::ErrorKind::Unavailable);
    assert_eq!(Arc::strong_count(&held), 1);
    assert!(!kc.is_bound(), "is_bound answers after close");
    // Cleanup after close is not an error; an ID never given out still is.
    assert!(kc.unsubscribe(id));
    assert!(!kc.unsubscribe(keystrata::SubscriptionId::from_raw(id.into_raw() + 1)));
}
