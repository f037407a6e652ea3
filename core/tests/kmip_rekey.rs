//! Server-side rotation on Cosmian KMS 5.0 (scripts/peers/cosmian.sh),
//! pinned as it is, because it loses keys: Cosmian's ReKey of a symmetric
//! key makes new key material under the SAME Unique Identifier and throws
//! the old material away (cosmian_kms_server 5.0.0,
//! `core/operations/rekey.rs`: an Import with `replace_existing`), where
//! KMIP specifies a new object linked to the old one. Everything wrapped
//! under the key before, a keychain saved under a `KmipRoot` included, no
//! longer opens. docs/KMIP.md warns against it; this test fails the day a
//! Cosmian release keeps the old material, so the warning can go.

use std::process::Command;
use std::time::Duration;

use keystrata::{ErrorKind, KeyManager, Keychain, KmipConfig, KmipKeyRef, KmipRoot, KmipVersion};

fn env(name: &str) -> String {
    let var = format!("KS_TEST_COSMIAN_{name}");
    std::env::var(&var).unwrap_or_else(|_| {
        panic!(
            "Cosmian KMS peer not started ({var} is not set): run `eval \"$(bash \
             scripts/peers.sh start)\"` first (installed by `bash scripts/setup.sh`)"
        )
    })
}

/// One request to Cosmian's JSON TTLV API; the response body.
fn cosmian_json(request: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(env("CA"))
        .arg("--cert")
        .arg(env("CERT"))
        .arg("--key")
        .arg(env("KEY"))
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(request)
        .arg(format!(
            "https://{}:{}/kmip/2_1",
            env("HOST"),
            env("HTTPS_PORT")
        ))
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn cosmian_rekey_replaces_the_key_in_place_and_a_saved_keychain_is_lost() {
    let port = env("PORT").parse().expect("the server's port");
    let mut c = KmipConfig::new(
        env("HOST"),
        port,
        KmipKeyRef::Name(format!("rekey-{}", std::process::id())),
    )
    .with_pem_files(env("CA"), env("CERT"), env("KEY"))
    .expect("read the test certificates");
    c.timeout = Duration::from_secs(30);
    c.version = KmipVersion::V2_0;
    c.create_key = true;
    let root = KmipRoot::connect(c).expect("connect to Cosmian");
    let kc = Keychain::generate().expect("generate");
    let saved = kc.save(&root).expect("save");
    Keychain::load(&saved, &root).expect("loads before the ReKey");
    let wrapped = root.wrap_key(&[9; 32], b"ctx").expect("wrap");

    let body = cosmian_json(&format!(
        r#"{{"tag":"ReKey","value":[{{"tag":"UniqueIdentifier","type":"TextString","value":"{}"}}]}}"#,
        root.key_id()
    ));
    assert!(body.contains("ReKeyResponse"), "ReKey: {body}");
    // The same identifier, still active: nothing says the key changed...
    assert!(
        body.contains(&root.key_id()),
        "ReKey kept the identifier: {body}"
    );
    root.health_check().expect("the key is still active");
    // ...but what it protected is gone.
    let e = Keychain::load(&saved, &root).expect_err("the keychain saved before the ReKey");
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    let e = root
        .unwrap_key(&wrapped, b"ctx")
        .expect_err("a key wrapped before");
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    // New work under the new material is fine.
    let again = kc.save(&root).expect("save after");
    Keychain::load(&again, &root).expect("load after");
}
