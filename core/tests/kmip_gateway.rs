//! Envelopes of the S3 encryption gateway's own Cosmian KMS key manager
//! (provider hint `cosmian-kmip`), read by keystrata against the real
//! Cosmian KMS 5.0 (scripts/peers/cosmian.sh): each is made by posting to
//! Cosmian's JSON API exactly the Encrypt request that the gateway's
//! `keymanager_cosmian_json.go` posts (Block Cipher Mode NISTKeyWrap,
//! algorithm AES, the data key, IV A6A6A6A6A6A6A6A6), and kept as the
//! gateway keeps it: the response's Data as the wrapped key, the key's
//! Unique Identifier as the key ID. Then a `KmipRoot` and a keychain bound
//! to one read it in KMIP 1.4 and 2.0 and over Cosmian's JSON API; every way to get one wrong gives
//! its documented kind, and keystrata never writes the form.

use std::process::Command;
use std::time::Duration;

use keystrata::{
    Envelope, ErrorKind, KeyManager, Keychain, KmipConfig, KmipKeyRef, KmipRoot, KmipTransport,
    KmipVersion, OpenOptions,
};

const PROVIDER: &str = "cosmian-kmip";

fn env(name: &str) -> String {
    let var = format!("KS_TEST_COSMIAN_{name}");
    std::env::var(&var).unwrap_or_else(|_| {
        panic!(
            "Cosmian KMS peer not started ({var} is not set): run `eval \"$(bash \
             scripts/peers.sh start)\"` first (installed by `bash scripts/setup.sh`)"
        )
    })
}

/// One request to Cosmian's JSON TTLV API (/kmip/2_1), as the gateway
/// sends it; the response body.
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
        "curl to Cosmian's JSON API: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of the first `"tag":"NAME"` node in a JSON TTLV response.
fn field(body: &str, tag: &str) -> String {
    let at = body
        .find(&format!("\"tag\":\"{tag}\""))
        .unwrap_or_else(|| panic!("no {tag} in {body}"));
    let rest = &body[at..];
    let v = rest.find("\"value\":\"").expect("a value") + 9;
    rest[v..v + rest[v..].find('"').expect("end")].to_owned()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A new AES-256 key on Cosmian, made through its JSON API as an operator
/// of the gateway would; its Unique Identifier.
fn new_key() -> String {
    let body = cosmian_json(
        r#"{"tag":"Create","value":[{"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"},{"tag":"Attributes","value":[{"tag":"CryptographicAlgorithm","type":"Enumeration","value":"AES"},{"tag":"CryptographicLength","type":"Integer","value":256},{"tag":"CryptographicUsageMask","type":"Integer","value":12},{"tag":"KeyFormatType","type":"Enumeration","value":"TransparentSymmetricKey"},{"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"}]}]}"#,
    );
    field(&body, "UniqueIdentifier")
}

/// What the gateway's Cosmian key manager's WrapKey returns for `dek`
/// under key `id` (keymanager_cosmian_json.go: `encrypt`).
fn gateway_wrap(id: &str, dek: &[u8]) -> Envelope {
    let body = cosmian_json(&format!(
        r#"{{"tag":"Encrypt","value":[{{"tag":"UniqueIdentifier","type":"TextString","value":"{id}"}},{{"tag":"CryptographicParameters","value":[{{"tag":"BlockCipherMode","type":"Enumeration","value":"NISTKeyWrap"}},{{"tag":"CryptographicAlgorithm","type":"Enumeration","value":"AES"}}]}},{{"tag":"Data","type":"ByteString","value":"{}"}},{{"tag":"IVCounterNonce","type":"ByteString","value":"A6A6A6A6A6A6A6A6"}}]}}"#,
        hex(dek)
    ));
    assert!(
        body.contains("EncryptResponse"),
        "gateway-style Encrypt: {body}"
    );
    Envelope {
        key_id: field(&body, "UniqueIdentifier"),
        key_version: 1,
        provider: PROVIDER.into(),
        ciphertext: unhex(&field(&body, "Data")),
    }
}

/// How a test reaches Cosmian: binary TTLV in KMIP 1.4 or 2.0, or its
/// HTTPS JSON API (2.x).
#[derive(Clone, Copy, Debug)]
enum Way {
    Ttlv(KmipVersion),
    Json,
}

fn root(key: &str, way: Way) -> KmipRoot {
    let (port, version, transport) = match way {
        Way::Ttlv(v) => (env("PORT"), v, KmipTransport::Ttlv),
        Way::Json => (
            env("HTTPS_PORT"),
            KmipVersion::V2_0,
            KmipTransport::HttpsJson,
        ),
    };
    let port = port.parse().expect("the server's port");
    let mut c = KmipConfig::new(env("HOST"), port, KmipKeyRef::Id(key.into()))
        .with_pem_files(env("CA"), env("CERT"), env("KEY"))
        .expect("read the test certificates");
    c.timeout = Duration::from_secs(30);
    c.version = version;
    c.transport = transport;
    KmipRoot::connect(c).expect("connect to Cosmian")
}

fn versions() -> [Way; 3] {
    [
        Way::Ttlv(KmipVersion::V1_4),
        Way::Ttlv(KmipVersion::V2_0),
        Way::Json,
    ]
}

#[test]
fn a_kmip_root_reads_the_gateways_cosmian_envelopes() {
    let gw_key = new_key();
    let root_key = new_key();
    for version in versions() {
        // The root's own key differs from the one the gateway wrapped
        // under: the envelope names its key, as the gateway reads it.
        let r = root(&root_key, version);
        for len in [16usize, 32, 64] {
            let dek: Vec<u8> = (0..len).map(|i| (i * 11 + 3) as u8).collect();
            let env = gateway_wrap(&gw_key, &dek);
            assert_eq!(env.ciphertext.len(), len + 8, "an AES key wrap");
            let got = r
                .unwrap_key(&env, b"any context: the gateway binds none")
                .unwrap_or_else(|e| panic!("{version:?}, {len} bytes: {e}"));
            assert_eq!(got.expose_secret(), &dek[..], "{version:?}");
        }
        // keystrata writes its own form, never this one.
        let own = r.wrap_key(&[7; 32], b"ctx").expect("wrap");
        assert_eq!(own.provider, "kmip");
    }
}

#[test]
fn a_keychain_bound_to_a_kmip_root_reads_them_too() {
    let gw_key = new_key();
    let dir = tempfile::tempdir().expect("tempdir");
    for version in versions() {
        let r = root(&new_key(), version);
        let kc = OpenOptions::new()
            .open(dir.path().join(format!("kc-{version:?}")), &r)
            .expect("open a keychain bound to the KMIP root");
        let dek = [0x5Au8; 32];
        let env = gateway_wrap(&gw_key, &dek);
        let got = kc
            .unwrap_key(&env, b"")
            .expect("unwrap through the keychain");
        assert_eq!(got.expose_secret(), &dek[..]);
        // Its own envelopes still work beside them.
        let own = kc.wrap_key(&dek, b"m").expect("wrap");
        assert_eq!(own.provider, "keystrata");
        assert_eq!(
            kc.unwrap_key(&own, b"m").expect("unwrap").expose_secret(),
            &dek
        );
    }
    // Unbound, or bound to another root: InvalidInput, saying what reads it.
    let env = gateway_wrap(&gw_key, &[1; 32]);
    let e = Keychain::generate()
        .expect("generate")
        .unwrap_key(&env, b"")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("KMIP root"), "{e}");
}

#[test]
fn wrong_gateway_envelopes_fail_with_their_kinds() {
    let gw_key = new_key();
    let dek = [0x33u8; 32];
    let good = gateway_wrap(&gw_key, &dek);
    for version in versions() {
        let r = root(&gw_key, version);
        let check = |what: &str, env: &Envelope, want: ErrorKind| {
            let e = r.unwrap_key(env, b"").expect_err(what);
            assert_eq!(e.kind(), want, "{version:?}, {what}: {e}");
            assert!(e.message().len() < 1024, "{what}: a bounded message");
        };
        for i in [0, 7, 8, 20, good.ciphertext.len() - 1] {
            let mut bad = good.clone();
            bad.ciphertext[i] ^= 0x01;
            check(
                &format!("byte {i} changed"),
                &bad,
                ErrorKind::Authentication,
            );
        }
        let mut other = good.clone();
        other.key_id = new_key();
        check("another key", &other, ErrorKind::Authentication);
        let mut gone = good.clone();
        gone.key_id = "no-such-key-on-this-server".into();
        check("an unknown key", &gone, ErrorKind::UnknownKey);
        for len in [0, 8, 16, 39, 41] {
            let mut cut = good.clone();
            cut.ciphertext.resize(len, 0);
            check(&format!("{len} bytes"), &cut, ErrorKind::Format);
        }
        let mut huge = good.clone();
        huge.key_id = "k".repeat(1 << 20);
        check("a 1 MiB key ID", &huge, ErrorKind::InvalidInput);
        // Still good after all that.
        assert_eq!(
            r.unwrap_key(&good, b"").expect("unwrap").expose_secret(),
            &dek
        );
    }
}
