//! `keystrata::root::from_uri` for the roots that need no peer: `age:`,
//! `age-recipient:` and `passphrase:` (docs/ROOTS.md). The `pkcs11:` and
//! `kmip:` forms are tested against SoftHSM2 and PyKMIP in
//! conformance_pkcs11.rs and conformance_kmip.rs; the parser's error
//! cases in `core/src/root/uri.rs`.

use keystrata::root::{from_uri, ExposeSecret};
use keystrata::{AgeRoot, ErrorKind, Keychain, PassphraseRoot};

fn err(uri: &str) -> keystrata::Error {
    match from_uri(uri) {
        Ok(r) => panic!("{uri} opened a {} root", r.provider()),
        Err(e) => e,
    }
}

#[test]
fn age_identity_file_saves_and_loads_with_the_identity() {
    let id = AgeRoot::generate();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keystrata.key");
    // What age-keygen writes: comments, then the identity.
    let text = format!(
        "# created: 2026-01-01T00:00:00Z\n# public key: {}\n{}\n",
        id.recipients()[0],
        id.insecure_identity_strings()[0].expose_secret()
    );
    std::fs::write(&path, text).unwrap();
    let root = from_uri(&format!("age:{}", path.display())).unwrap();
    assert_eq!(root.provider(), "age");
    let kc = Keychain::generate().unwrap();
    let saved = kc.save(&*root).unwrap();
    // The recipients were derived from the identity: the original opens it.
    assert_eq!(
        Keychain::load(&saved, &id).unwrap().keys().expect("keys"),
        kc.keys().expect("keys")
    );
    assert_eq!(
        Keychain::load(&saved, &*root)
            .unwrap()
            .keys()
            .expect("keys"),
        kc.keys().expect("keys")
    );
    // And what the identity saved, the URI root loads.
    let other = kc.save(&id).unwrap();
    assert_eq!(
        Keychain::load(&other, &*root)
            .unwrap()
            .keys()
            .expect("keys"),
        kc.keys().expect("keys")
    );
}

#[test]
fn age_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none");
    assert_eq!(
        err(&format!("age:{}", missing.display())).kind(),
        ErrorKind::Io
    );
    let junk = dir.path().join("junk");
    std::fs::write(&junk, "not-an-identity-TOPSECRET\n").unwrap();
    let e = err(&format!("age:{}", junk.display()));
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(!e.message().contains("TOPSECRET"), "{e}");
    assert_eq!(err("age:").kind(), ErrorKind::InvalidInput);
}

#[test]
fn age_recipients_save_but_do_not_load() {
    let a = AgeRoot::generate();
    let b = AgeRoot::generate();
    let root = from_uri(&format!(
        "age-recipient:{},{}",
        a.recipients()[0],
        b.recipients()[0]
    ))
    .unwrap();
    let kc = Keychain::generate().unwrap();
    let saved = kc.save(&*root).unwrap();
    assert_eq!(
        Keychain::load(&saved, &a).unwrap().keys().expect("keys"),
        kc.keys().expect("keys")
    );
    assert_eq!(
        Keychain::load(&saved, &b).unwrap().keys().expect("keys"),
        kc.keys().expect("keys")
    );
    assert!(Keychain::load(&saved, &*root).is_err());
    let e = err(&format!(
        "age-recipient:{}",
        a.insecure_identity_strings()[0].expose_secret()
    ));
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(!e
        .message()
        .contains(a.insecure_identity_strings()[0].expose_secret()));
}

#[test]
fn passphrase_from_the_environment_in_both_spellings() {
    let var = format!("KS_URI_PASS_{}", std::process::id());
    std::env::set_var(&var, "correct horse battery staple");
    let original = PassphraseRoot::with_work_factor("correct horse battery staple", 10).unwrap();
    let kc = Keychain::generate().unwrap();
    let saved = kc.save(&original).unwrap();
    // DESIGN.md's `passphrase:ENV`, and the explicit `passphrase:env:ENV`.
    for uri in [format!("passphrase:{var}"), format!("passphrase:env:{var}")] {
        let root = from_uri(&uri).unwrap();
        assert_eq!(root.provider(), "age-scrypt");
        assert_eq!(
            Keychain::load(&saved, &*root)
                .unwrap()
                .keys()
                .expect("keys"),
            kc.keys().expect("keys")
        );
    }
    std::env::set_var(&var, "");
    assert_eq!(
        err(&format!("passphrase:{var}")).kind(),
        ErrorKind::InvalidInput
    );
    std::env::remove_var(&var);
    let e = err(&format!("passphrase:env:{var}"));
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.message().contains(&var) && e.message().contains("not set"),
        "{e}"
    );
}

#[test]
fn passphrase_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pass");
    std::fs::write(&path, "tr0ub4dor&3\r\n").unwrap();
    let original = PassphraseRoot::with_work_factor("tr0ub4dor&3", 10).unwrap();
    let kc = Keychain::generate().unwrap();
    let saved = kc.save(&original).unwrap();
    let root = from_uri(&format!("passphrase:file:{}", path.display())).unwrap();
    assert_eq!(
        Keychain::load(&saved, &*root)
            .unwrap()
            .keys()
            .expect("keys"),
        kc.keys().expect("keys")
    );
    // Only one line ending is dropped: the rest is the passphrase.
    std::fs::write(&path, "tr0ub4dor&3\n\n").unwrap();
    let root = from_uri(&format!("passphrase:file:{}", path.display())).unwrap();
    assert_eq!(
        Keychain::load(&saved, &*root).unwrap_err().kind(),
        ErrorKind::Authentication
    );
    std::fs::write(&path, "").unwrap();
    let e = err(&format!("passphrase:file:{}", path.display()));
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}
