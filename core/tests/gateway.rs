//! What an object-store gateway needs from a keychain's KeyManager, as
//! kenchrcum/s3-encryption-gateway's engine uses it: wrapped keys inside a
//! 32..64-byte window (the compact form), metadata that differs between
//! wrap and unwrap (opt-in binding), and two-step rotation by version.

use keystrata::metadata::{metadata_context, MetadataBinding};
use keystrata::{ErrorKind, KeyManager, Keychain, Purpose, WrapForm};

/// The engine refuses a stored wrapped key outside this window.
const ENGINE_WINDOW: std::ops::RangeInclusive<usize> = 32..=64;

#[test]
fn compact_form_fits_the_engines_window_and_round_trips() {
    let kc = Keychain::generate().expect("generate");
    for len in [16usize, 24, 32, 35] {
        let key = vec![0x42u8; len];
        let env = kc
            .wrap_key_with(&key, b"", WrapForm::Compact)
            .expect("wrap");
        assert_eq!(env.ciphertext.len(), len + 29);
        assert_eq!(env.ciphertext[0], 0x02);
        assert_eq!(
            env.key_id,
            kc.primary().expect("primary").key_id.to_string()
        );
        let got = kc.unwrap_key(&env, b"").expect("unwrap");
        assert_eq!(got.expose_secret(), &key[..]);
    }
    // The full form of a 32-byte key is 65 bytes: outside the window,
    // which is why the compact form exists.
    let full = kc.wrap_key(&[1; 32], b"").expect("wrap");
    assert!(!ENGINE_WINDOW.contains(&full.ciphertext.len()));
    let compact = kc
        .wrap_key_with(&[1; 32], b"", WrapForm::Compact)
        .expect("wrap");
    assert!(ENGINE_WINDOW.contains(&compact.ciphertext.len()));
}

#[test]
fn every_changed_byte_of_a_compact_envelope_fails_closed() {
    let kc = Keychain::generate().expect("generate");
    let env = kc
        .wrap_key_with(&[7; 32], b"ctx", WrapForm::Compact)
        .expect("wrap");
    for i in 0..env.ciphertext.len() {
        for bit in [0x01u8, 0x80] {
            let mut e = env.clone();
            e.ciphertext[i] ^= bit;
            let err = kc.unwrap_key(&e, b"ctx").expect_err("tampered");
            // The first byte becomes 0x03 or 0x82: no form has it.
            let want = if i == 0 {
                ErrorKind::Format
            } else {
                ErrorKind::Authentication
            };
            assert_eq!(err.kind(), want, "byte {i} bit {bit:#x}: {err}");
        }
    }
    let mut e = env.clone();
    e.ciphertext.truncate(29);
    assert_eq!(
        kc.unwrap_key(&e, b"ctx").expect_err("short").kind(),
        ErrorKind::Format
    );
    let mut e = env.clone();
    e.key_version += 1;
    assert_eq!(
        kc.unwrap_key(&e, b"ctx").expect_err("version").kind(),
        ErrorKind::Authentication
    );
}

#[test]
fn compact_envelopes_survive_rotation_and_follow_key_status() {
    let kc = Keychain::generate().expect("generate");
    let old = kc
        .wrap_key_with(&[9; 32], b"", WrapForm::Compact)
        .expect("wrap");
    kc.rotate().expect("rotate");
    let new = kc
        .wrap_key_with(&[8; 32], b"", WrapForm::Compact)
        .expect("wrap");
    assert_ne!(old.key_id, new.key_id);
    assert_eq!(
        kc.unwrap_key(&old, b"").expect("old").expose_secret(),
        &[9; 32]
    );
    let old_id: u32 = old.key_id.parse().expect("decimal");
    kc.disable(old_id).expect("disable");
    assert_eq!(
        kc.unwrap_key(&old, b"").expect_err("disabled").kind(),
        ErrorKind::KeyDisabled
    );
    kc.destroy(old_id).expect("destroy");
    assert_eq!(
        kc.unwrap_key(&old, b"").expect_err("destroyed").kind(),
        ErrorKind::KeyDestroyed
    );
    let other = Keychain::generate().expect("generate");
    assert_eq!(
        other
            .unwrap_key(&new, b"")
            .expect_err("other keychain")
            .kind(),
        ErrorKind::UnknownKey
    );
}

/// The engine passes the user's metadata when wrapping and the stored,
/// expanded metadata when unwrapping (for multipart uploads: bucket and
/// upload ID only).
#[test]
fn metadata_binding_is_opt_in() {
    let kc = Keychain::generate().expect("generate");
    let at_wrap = [
        ("x-amz-meta-owner", "alice"),
        ("bucket", "b"),
        ("uploadId", "u"),
    ];
    let at_unwrap = [
        ("x-amz-meta-owner", "alice"),
        ("bucket", "b"),
        ("uploadId", "u"),
        ("x-amz-meta-encryption-algorithm", "AES256-GCM"),
        ("x-amz-meta-encryption-chunked", "true"),
    ];
    let multipart = [("bucket", "b"), ("uploadId", "u")];

    // Nothing bound: any map unwraps.
    let none = MetadataBinding::default();
    let ctx = metadata_context(at_wrap, &none).expect("ctx");
    let env = kc
        .wrap_key_with(&[3; 32], &ctx, WrapForm::Compact)
        .expect("wrap");
    for m in [&at_unwrap[..], &multipart[..], &[][..]] {
        let c = metadata_context(m.iter().copied(), &none).expect("ctx");
        assert!(kc.unwrap_key(&env, &c).is_ok());
    }

    // Bucket and upload ID bound: the expanded map and the multipart map
    // unwrap; a different bucket does not.
    let named = MetadataBinding::only(["bucket", "uploadId"]);
    let ctx = metadata_context(at_wrap, &named).expect("ctx");
    let env = kc
        .wrap_key_with(&[4; 32], &ctx, WrapForm::Compact)
        .expect("wrap");
    for m in [&at_unwrap[..], &multipart[..]] {
        let c = metadata_context(m.iter().copied(), &named).expect("ctx");
        assert_eq!(
            kc.unwrap_key(&env, &c).expect("unwrap").expose_secret(),
            &[4; 32]
        );
    }
    let moved = metadata_context([("bucket", "other"), ("uploadId", "u")], &named).expect("ctx");
    assert_eq!(
        kc.unwrap_key(&env, &moved).expect_err("moved").kind(),
        ErrorKind::Authentication
    );

    // Everything bound (0.1's behaviour): the expanded map fails, which is
    // what broke the gateway's chunked mode.
    let all = MetadataBinding::All;
    let ctx = metadata_context(at_wrap, &all).expect("ctx");
    let env = kc
        .wrap_key_with(&[5; 32], &ctx, WrapForm::Compact)
        .expect("wrap");
    let c = metadata_context(at_unwrap, &all).expect("ctx");
    assert_eq!(
        kc.unwrap_key(&env, &c).expect_err("expanded").kind(),
        ErrorKind::Authentication
    );
}

#[test]
fn two_step_rotation_by_version() {
    let kc = Keychain::generate().expect("generate");
    let v1 = kc.primary().expect("primary");
    // Nothing staged: a key is added, not yet active.
    let plan = kc.prepare_rotation(None).expect("prepare");
    assert_eq!(plan.current_version, v1.version);
    assert_eq!(plan.target_version, v1.version + 1);
    assert_eq!(kc.active_key_version().expect("active"), v1.version);
    assert!(kc
        .keys()
        .expect("keys")
        .iter()
        .any(|k| k.key_id == plan.target_key_id && !k.primary));
    // Preparing again picks the staged key rather than adding another.
    let again = kc.prepare_rotation(None).expect("prepare");
    assert_eq!(again, plan);
    let env_v1 = kc
        .wrap_key_with(&[1; 32], b"", WrapForm::Compact)
        .expect("wrap");
    let promoted = kc.promote_version(&plan).expect("promote");
    assert_eq!(promoted.version, plan.target_version);
    assert_eq!(
        kc.active_key_version().expect("active"),
        plan.target_version
    );
    assert!(kc.unwrap_key(&env_v1, b"").is_ok());
    // A stale plan is a conflict and changes nothing.
    let err = kc.promote_version(&plan).expect_err("stale");
    assert_eq!(err.kind(), ErrorKind::Policy);
    assert!(err.to_string().contains("conflict"), "{err}");
    // Named targets: back to v1, unknown, active, disabled.
    let back = kc.prepare_rotation(Some(v1.version)).expect("prepare v1");
    assert_eq!(back.target_key_id, v1.key_id);
    assert_eq!(
        kc.prepare_rotation(Some(99)).expect_err("unknown").kind(),
        ErrorKind::UnknownKey
    );
    assert_eq!(
        kc.prepare_rotation(Some(plan.target_version))
            .expect_err("active")
            .kind(),
        ErrorKind::Policy
    );
    kc.disable(v1.key_id).expect("disable");
    assert_eq!(
        kc.promote_version(&back).expect_err("disabled").kind(),
        ErrorKind::KeyDisabled
    );
    assert_eq!(
        kc.prepare_rotation(Some(v1.version))
            .expect_err("disabled")
            .kind(),
        ErrorKind::KeyDisabled
    );
    // Derivation keys are never rotation targets.
    assert!(kc
        .keys()
        .expect("keys")
        .iter()
        .filter(|k| k.purpose == Purpose::Derive)
        .all(|k| k.version == 1));
}

/// Two handles on one file: a plan made by one handle and promoted after
/// the other rotated is a conflict, and the key the plan staged is in the
/// file for both.
#[test]
fn rotation_plans_go_to_the_stored_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kc.age");
    let root = keystrata::AgeRoot::generate();
    let a = Keychain::open(path.to_str().expect("utf-8"), &root).expect("open a");
    let b = Keychain::open(path.to_str().expect("utf-8"), &root).expect("open b");
    let plan = a.prepare_rotation(None).expect("prepare");
    b.refresh().expect("refresh");
    assert!(b
        .keys()
        .expect("keys")
        .iter()
        .any(|k| k.key_id == plan.target_key_id));
    b.rotate().expect("b rotates");
    let err = a.promote_version(&plan).expect_err("conflict");
    assert_eq!(err.kind(), ErrorKind::Policy, "{err}");
}
