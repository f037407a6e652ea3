//! Hostile keychain files and inputs: refused with a clear error of the
//! documented kind, in bounded time and memory, never echoing a secret.

use age::secrecy::ExposeSecret;
use keystrata::root::{MAX_AGE_HEADER_LEN, MAX_AGE_STANZAS};
use keystrata::{AgeRoot, ErrorKind, KeyManager, Keychain, PassphraseRoot};

fn age_header(body: &[u8]) -> Vec<u8> {
    let mut f = b"age-encryption.org/v1\n".to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn a_long_header_line_is_refused_before_the_age_parser_sees_it() {
    let root = AgeRoot::generate();
    // 1 MiB on one line: the age crate's parser is quadratic in this (256
    // KiB took 36 s before the check).
    let mut body = b"-> X25519 ".to_vec();
    body.resize(1 << 20, b'A');
    body.push(b'\n');
    let e = Keychain::load(&age_header(&body), &root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format);
    assert!(
        e.message().contains(&MAX_AGE_HEADER_LEN.to_string()),
        "{}",
        e.message()
    );
}

#[test]
fn too_many_stanzas_are_refused() {
    let root = AgeRoot::generate();
    let mut body = Vec::new();
    for _ in 0..=MAX_AGE_STANZAS {
        body.extend_from_slice(b"-> a b\nAAAA\n");
    }
    body.extend_from_slice(b"--- AAAA\n");
    let e = Keychain::load(&age_header(&body), &root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format);
    assert!(e.message().contains("stanzas"), "{}", e.message());
    // Many stanzas without a MAC line within the limit: the size check.
    let mut body = Vec::new();
    while body.len() < 1 << 20 {
        body.extend_from_slice(
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        );
    }
    let e = Keychain::load(&age_header(&body), &root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format);
}

#[test]
fn a_hostile_scrypt_work_factor_is_refused_before_any_work() {
    let cheap = PassphraseRoot::with_limits("pw", 2, 30).unwrap();
    let saved = Keychain::generate().unwrap().save(&cheap).unwrap();
    let text = String::from_utf8_lossy(&saved).into_owned();
    assert!(
        text.contains(" 2\n"),
        "the scrypt stanza ends in its work factor"
    );
    for hostile in [21u8, 22, 30] {
        let forged = text
            .replacen(" 2\n", &format!(" {hostile}\n"), 1)
            .into_bytes();
        let e = Keychain::load(&forged, &PassphraseRoot::new("pw").unwrap()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Policy, "work factor {hostile}: {e}");
        assert!(e.message().contains("limit is 20"), "{}", e.message());
    }
    // A configured higher limit lets the file through to age (whose MAC
    // check then fails, since the header was edited).
    let e = Keychain::load(
        &text.replacen(" 2\n", " 3\n", 1).into_bytes(),
        &PassphraseRoot::with_limits("pw", 2, 3).unwrap(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    assert!(PassphraseRoot::with_limits("pw", 5, 4).is_err());
    // The real file still loads.
    Keychain::load(&saved, &cheap).unwrap();
}

#[test]
fn an_identity_given_as_a_recipient_is_not_echoed() {
    let id = AgeRoot::generate();
    let secret = id.insecure_identity_strings()[0].expose_secret().to_owned();
    let e = AgeRoot::new([] as [&str; 0], [secret.as_str()]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(!e.to_string().contains(&secret[15..]), "secret echoed: {e}");
    assert!(e.message().contains("identity"), "{}", e.message());
    let e = AgeRoot::new([] as [&str; 0], [format!("x{}", &secret[1..]).as_str()]).unwrap_err();
    assert!(!e.to_string().contains(&secret[15..]), "secret echoed: {e}");
}

#[test]
fn a_version_at_the_end_of_u32_refuses_to_rotate_and_the_file_still_loads() {
    let root = AgeRoot::generate();
    let kc = Keychain::generate().unwrap();
    let json = root.unprotect_for_test(&kc.save(&root).unwrap());
    let primary = kc.primary().unwrap();
    let edited = json.replace(
        &format!("\"key_id\": {}, \"version\": 1,", primary.key_id),
        &format!("\"key_id\": {}, \"version\": 4294967295,", primary.key_id),
    );
    assert_ne!(edited, json);
    let kc = Keychain::load(&root.protect_for_test(&edited), &root).unwrap();
    let e = kc.rotate().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Policy);
    assert_eq!(kc.primary().unwrap().version, 4294967295);
    Keychain::load(&kc.save(&root).unwrap(), &root).unwrap();
}

#[test]
fn a_huge_provider_is_not_echoed_whole() {
    let kc = Keychain::generate().unwrap();
    let mut env = kc.wrap_key(&[1u8; 32], b"").unwrap();
    env.provider = "p".repeat(1 << 20);
    let e = kc.unwrap_key(&env, b"").unwrap_err();
    assert!(
        e.message().len() < 512,
        "message of {} bytes",
        e.message().len()
    );
}

/// Test helpers: the root's raw protect/unprotect as strings.
trait RawRoot {
    fn unprotect_for_test(&self, saved: &[u8]) -> String;
    fn protect_for_test(&self, json: &str) -> Vec<u8>;
}

impl RawRoot for AgeRoot {
    fn unprotect_for_test(&self, saved: &[u8]) -> String {
        let json = keystrata::Root::unprotect(self, saved).unwrap();
        String::from_utf8(json.to_vec()).unwrap()
    }
    fn protect_for_test(&self, json: &str) -> Vec<u8> {
        keystrata::Root::protect(self, json.as_bytes()).unwrap()
    }
}

/// The fuzzer's F1 reproducers (fuzz/artifacts): a field of a keychain's
/// JSON or of a Tink keyset, echoed whole in the error message.
#[test]
fn long_fields_in_keychain_json_and_tink_keysets_are_not_echoed_whole() {
    let long = "x".repeat(100_000);
    let material = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let key = |purpose: &str, status: &str| {
        format!(
            r#"{{"format":"keystrata.keychain","version":1,"primary":{{"encrypt":1,"derive":1}},"keys":[{{"key_id":1,"version":1,"purpose":"{purpose}","status":"{status}","created_at":0,"usage":0,"material":"{material}"}}]}}"#
        )
    };
    let jsons = [
        format!(r#"{{"format":"{long}","version":1}}"#),
        key(&long, "enabled"),
        key("encrypt", &long),
        format!(
            r#"{{"format":"keystrata.keychain","version":1,"primary":{{"encrypt":"{long}","derive":1}},"keys":[]}}"#
        ),
    ];
    let root = AgeRoot::generate();
    for json in &jsons {
        let saved = root.protect_for_test(json);
        let e = Keychain::load(&saved, &root).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Format);
        assert!(
            e.message().len() < 512,
            "{} bytes: {}",
            e.message().len(),
            &e.message()[..80]
        );
    }
    let value = "GiAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
    let tink = |status: &str, prefix: &str, url: &str| {
        format!(
            r#"{{"primaryKeyId":1,"key":[{{"keyId":1,"status":"{status}","outputPrefixType":"{prefix}","keyData":{{"typeUrl":"{url}","value":"{value}","keyMaterialType":"SYMMETRIC"}}}}]}}"#
        )
    };
    let url = "type.googleapis.com/google.crypto.tink.AesGcmKey";
    for json in [
        tink(&long, "TINK", url),
        tink("ENABLED", &long, url),
        tink("ENABLED", "TINK", &long),
    ] {
        let e = Keychain::import_tink_cleartext(&json).unwrap_err();
        assert!(e.message().len() < 512, "{} bytes", e.message().len());
    }
}

/// Fuzz finding F2: headers inside the 16 KiB cap that the age crate's
/// parser still took 0.3-0.6 s to refuse. Refused by the linear check now.
#[test]
fn stanzas_with_many_arguments_or_body_lines_are_refused() {
    let root = AgeRoot::generate();
    let mut many_args = String::new();
    for _ in 0..64 {
        many_args.push_str("-> A");
        many_args.push_str(&" A".repeat(100));
        many_args.push('\n');
    }
    let mut many_lines = String::from("-> X25519 AAAA\n");
    many_lines.push_str(&"A\n".repeat(8000));
    for (body, what) in [(many_args, "arguments"), (many_lines, "body lines")] {
        let mut f = age_header(body.as_bytes());
        f.extend_from_slice(b"--- AAAA\n");
        let e = Keychain::load(&f, &root).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Format);
        assert!(e.message().contains(what), "{}", e.message());
    }
}
