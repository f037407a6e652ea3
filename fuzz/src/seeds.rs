//! Writes the seed corpora: `seeds OUT_DIR` creates `OUT_DIR/<target>/`
//! for every fuzz target and writes `seed-*` files into it, taken from the
//! vector files compiled into `keystrata_fuzz` (`tests/vectors/*.json`) and,
//! where the vectors have no input of that shape, made here with the
//! vectors' own keys (a scrypt file at work factor 2, device-format files,
//! portable blobs whose KEK record travels in the clear, TTLV items).
//! Files already holding the same bytes are left alone, so running it again
//! changes nothing. `scripts/fuzz.sh` runs it before fuzzing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use keystrata::root::kmip::ttlv::{Item, Tag, Value};
use keystrata::root::wrapped;
use keystrata::{KeyManager, Keychain, PassphraseRoot};
use keystrata_fuzz::{
    fixtures, join_field, text, unhex, IdentityRoot, WrappedRoot, KEYSTRATA_VECTORS,
    PORTABLE_VECTORS, TINK_VECTORS,
};
use serde_json::Value as Json;

struct Out {
    dir: PathBuf,
    written: BTreeMap<&'static str, usize>,
}

impl Out {
    fn put(&mut self, target: &'static str, name: &str, bytes: &[u8]) {
        let dir = self.dir.join(target);
        fs::create_dir_all(&dir).expect("create the corpus directory");
        let path = dir.join(format!("seed-{name}"));
        if fs::read(&path).ok().as_deref() != Some(bytes) {
            fs::write(&path, bytes).expect("write a seed");
        }
        *self.written.entry(target).or_default() += 1;
    }
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64 in a vector")
}

fn hex_field(v: &Json, name: &str) -> Vec<u8> {
    unhex(text(v, &[name]))
}

fn list<'a>(v: &'a Json, path: &[&str]) -> &'a [Json] {
    let mut at = v;
    for p in path {
        at = &at[*p];
    }
    at.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A metadata map as the `unwrap_metadata` target reads it.
fn metadata_input(map: &serde_json::Map<String, Json>, context: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in map {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_str().unwrap_or_default().as_bytes());
        out.push(0);
    }
    out.extend_from_slice(context);
    out
}

fn envelope_input(env: &Json, context: &[u8]) -> Vec<u8> {
    let e = keystrata::Envelope {
        key_id: text(env, &["key_id"]).to_owned(),
        key_version: env["key_version"].as_u64().unwrap_or(0) as u32,
        provider: text(env, &["provider"]).to_owned(),
        ciphertext: hex_field(env, "ciphertext_hex"),
    };
    let map = e
        .to_metadata()
        .into_iter()
        .map(|(k, v)| (k, Json::String(v)))
        .collect();
    metadata_input(&map, context)
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("fuzz/corpus").to_path_buf());
    let mut out = Out {
        dir,
        written: BTreeMap::new(),
    };
    let ks: Json = serde_json::from_str(KEYSTRATA_VECTORS).expect("keystrata.json");
    let pv: Json = serde_json::from_str(PORTABLE_VECTORS).expect("portable.json");
    let tv: Json = serde_json::from_str(TINK_VECTORS).expect("tink.json");
    let f = fixtures();
    let kc = &ks["keychain"];

    // unseal: the vector keychain's cases, the passphrase keychain's (keys
    // unknown here), Tink's AEAD ciphertexts (unknown keys too).
    let mut unseal_cases: Vec<&Json> = list(kc, &["unseal"]).iter().collect();
    unseal_cases.extend(list(&ks, &["saved_passphrase", "unseal"]));
    for ks_ in list(&tv, &["keysets"]) {
        unseal_cases.extend(list(ks_, &["aead"]));
    }
    unseal_cases.extend(
        list(kc, &["invalid"])
            .iter()
            .filter(|c| c["op"] == "unseal"),
    );
    for (i, c) in unseal_cases.iter().enumerate() {
        let aad = hex_field(c, "aad_hex");
        if aad.len() <= 255 {
            out.put(
                "unseal",
                &i.to_string(),
                &join_field(&aad, &hex_field(c, "ciphertext_hex")),
            );
        }
    }

    // decrypt: plain ciphertexts (mode 0), and DEK protobufs for the target
    // to seal itself (mode 1).
    let mut decrypt_cases: Vec<&Json> = list(kc, &["decrypt"]).iter().collect();
    for ks_ in list(&tv, &["keysets"]) {
        decrypt_cases.extend(list(ks_, &["envelope"]));
    }
    decrypt_cases.extend(
        list(kc, &["invalid"])
            .iter()
            .filter(|c| c["op"] == "decrypt"),
    );
    for (i, c) in decrypt_cases.iter().enumerate() {
        let aad = hex_field(c, "aad_hex");
        if aad.len() <= 255 {
            let mut input = vec![0u8];
            input.extend(join_field(&aad, &hex_field(c, "ciphertext_hex")));
            out.put("decrypt", &i.to_string(), &input);
        }
    }
    let key = [0x42u8; 32];
    let mut dek = vec![0x1a, 0x20];
    dek.extend_from_slice(&key);
    let mut versioned = vec![0x08, 0x00];
    versioned.extend_from_slice(&dek);
    for (name, proto) in [("dek", &dek), ("dek-versioned", &versioned)] {
        let mut input = vec![1u8];
        input.extend(join_field(b"aad", &join_field(proto, &[0u8; 40])));
        out.put("decrypt", name, &input);
    }

    // unwrap_metadata: the vector maps, the invalid envelopes and maps, an
    // envelope wrapped by the age root.
    for (i, c) in list(kc, &["unwrap"]).iter().enumerate() {
        let ctx = hex_field(c, "context_hex");
        let map = c["metadata"].as_object().expect("metadata");
        out.put(
            "unwrap_metadata",
            &format!("map-{i}"),
            &metadata_input(map, &ctx),
        );
    }
    for (i, c) in list(kc, &["invalid"]).iter().enumerate() {
        if c["op"] == "envelope_from_metadata" {
            let map = c["metadata"].as_object().expect("metadata");
            out.put(
                "unwrap_metadata",
                &format!("invalid-{i}"),
                &metadata_input(map, b""),
            );
        } else if c["op"] == "unwrap" {
            let ctx = hex_field(c, "context_hex");
            out.put(
                "unwrap_metadata",
                &format!("invalid-{i}"),
                &envelope_input(&c["envelope"], &ctx),
            );
        }
    }
    let age_env = f
        .age_root
        .wrap_key(&key, b"bucket/object")
        .expect("age wrap");
    let map = age_env
        .to_metadata()
        .into_iter()
        .map(|(k, v)| (k, Json::String(v)))
        .collect();
    out.put(
        "unwrap_metadata",
        "age",
        &metadata_input(&map, b"bucket/object"),
    );

    // Keychain files.
    let plain = text(kc, &["plaintext_json"]).as_bytes();
    let plain_pass = text(&ks, &["saved_passphrase", "plaintext_json"]).as_bytes();
    let saved_age = b64(text(kc, &["saved_age_base64"]));
    let saved_pass = b64(text(&ks, &["saved_passphrase", "saved_age_base64"]));
    let loaded = Keychain::load(plain, &IdentityRoot).expect("vector keychain");
    let other = Keychain::generate().expect("generate");
    let two_recipients = keystrata::AgeRoot::new(
        f.age_root.insecure_identity_strings().iter().map(|s| {
            use keystrata::root::ExposeSecret;
            s.expose_secret().to_owned()
        }),
        [text(&pv, &["roots", "age", "age_recipient"])],
    )
    .expect("root with two recipients");
    let pass2 = PassphraseRoot::with_limits(f.passphrase.as_str(), 2, 2).expect("limits");
    let pass1 = PassphraseRoot::with_limits(f.passphrase.as_str(), 1, 1).expect("limits");

    out.put("keychain_age", "vector", &saved_age);
    out.put("keychain_age", "passphrase-file", &saved_pass);
    out.put(
        "keychain_age",
        "two-recipients",
        &loaded.save(&two_recipients).expect("save"),
    );
    for (i, c) in list(&pv, &["decrypt"]).iter().enumerate() {
        // The wrapped KEK of a portable blob: an age file to another key.
        let blob = hex_field(c, "blob_hex");
        let n = u32::from_be_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
        if blob.len() >= 8 + n {
            out.put("keychain_age", &format!("portable-{i}"), &blob[8..8 + n]);
        }
    }

    out.put(
        "keychain_scrypt",
        "work-factor-2",
        &loaded.save(&pass2).expect("save"),
    );
    out.put(
        "keychain_scrypt",
        "work-factor-1",
        &other.save(&pass1).expect("save"),
    );
    out.put("keychain_scrypt", "vector-work-factor-10", &saved_pass);
    out.put("keychain_scrypt", "x25519-file", &saved_age);

    out.put(
        "keychain_wrapped",
        "keychain-km",
        &loaded.save(&WrappedRoot).expect("save"),
    );
    out.put(
        "keychain_wrapped",
        "age-km",
        &wrapped::protect(&f.age_root, plain).expect("protect"),
    );
    out.put(
        "keychain_wrapped",
        "other-keychain",
        &wrapped::protect(&other, plain).expect("protect"),
    );

    out.put("keychain_json", "vector", plain);
    out.put("keychain_json", "passphrase-vector", plain_pass);
    out.put(
        "keychain_json",
        "generated",
        &other.save(&IdentityRoot).expect("save"),
    );

    // Tink keysets: Tink's own, the unsupported ones, and an export.
    for (i, k) in list(&tv, &["keysets"]).iter().enumerate() {
        out.put(
            "tink_import",
            &format!("keyset-{i}"),
            text(k, &["keyset_json"]).as_bytes(),
        );
    }
    for (i, k) in list(&tv, &["unsupported"]).iter().enumerate() {
        out.put(
            "tink_import",
            &format!("unsupported-{i}"),
            text(k, &["keyset_json"]).as_bytes(),
        );
    }
    out.put(
        "tink_import",
        "export",
        loaded
            .insecure_export_tink_cleartext()
            .expect("export")
            .as_bytes(),
    );

    // TTLV: one item of every type, nested, like a server's response.
    let t = |n: u32| Tag::new(n).expect("24-bit tag");
    let leaves = vec![
        Item::integer(t(0x42_0069), 1),
        Item::new(t(0x42_0020), Value::LongInteger(123_456_789_000_000_000)),
        Item::new(
            t(0x42_0021),
            Value::BigInteger(vec![0x80, 0, 0, 0, 0, 0, 0, 1]),
        ),
        Item::enumeration(t(0x42_005C), 0x0A),
        Item::new(t(0x42_0022), Value::Boolean(true)),
        Item::text(t(0x42_0094), "a unique identifier"),
        Item::bytes(t(0x42_00C2), vec![1, 2, 3, 4, 5]),
        Item::new(t(0x42_0092), Value::DateTime(0x4792_DBF1)),
        Item::new(t(0x42_0023), Value::Interval(864_000)),
        Item::new(t(0x42_0024), Value::DateTimeExtended(1_700_000_000_000_000)),
    ];
    for (i, leaf) in leaves.iter().enumerate() {
        out.put(
            "kmip_ttlv",
            &format!("leaf-{i}"),
            &leaf.encode().expect("encode"),
        );
    }
    let response = Item::structure(
        t(0x42_007B),
        vec![
            Item::structure(
                t(0x42_007A),
                vec![Item::structure(
                    t(0x42_0069),
                    vec![
                        Item::integer(t(0x42_006A), 1),
                        Item::integer(t(0x42_006B), 4),
                    ],
                )],
            ),
            Item::structure(t(0x42_000F), leaves),
        ],
    );
    out.put("kmip_ttlv", "response", &response.encode().expect("encode"));

    // Portable blobs: the vectors as they are (age-wrapped KEKs), and with
    // the wrapped KEK replaced by its record in the clear.
    for (i, c) in list(&pv, &["decrypt"]).iter().enumerate() {
        let aad = hex_field(c, "aad_hex");
        let blob = hex_field(c, "blob_hex");
        if aad.len() > 255 {
            continue;
        }
        out.put(
            "portable",
            &format!("decrypt-{i}"),
            &join_field(&aad, &blob),
        );
        let record = hex_field(c, "record_hex");
        let n = u32::from_be_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
        let mut clear = b"KSP\x01".to_vec();
        clear.extend_from_slice(&(record.len() as u32).to_be_bytes());
        clear.extend_from_slice(&record);
        clear.extend_from_slice(&blob[8 + n..]);
        out.put(
            "portable",
            &format!("record-{i}"),
            &join_field(&aad, &clear),
        );
    }
    for (i, c) in list(&pv, &["invalid"]).iter().enumerate() {
        let aad = hex_field(c, "aad_hex");
        if aad.len() <= 255 {
            out.put(
                "portable",
                &format!("invalid-{i}"),
                &join_field(&aad, &hex_field(c, "blob_hex")),
            );
        }
    }

    // signatures: a minisign public key, signatures (prehashed, and one by
    // another key ID), a trust file listing the fixture key, and one with an
    // official key, each behind its mode byte.
    {
        use keystrata::sign::minisign::SecretKey;
        let sk = SecretKey::from_seed(&[7; 32], [1, 2, 3, 4, 5, 6, 7, 8]).expect("seed key");
        let other = SecretKey::from_seed(&[9; 32], [8; 8]).expect("seed key");
        let with = |mode: u8, text: &str| {
            let mut v = vec![mode];
            v.extend_from_slice(text.as_bytes());
            v
        };
        out.put("signatures", "pubkey", &with(0, &sk.public_key().to_text()));
        out.put(
            "signatures",
            "pubkey-line",
            &with(0, &sk.public_key().to_base64()),
        );
        let sig = sk.sign(b"data", "fixture", None).expect("sign");
        out.put("signatures", "sig", &with(1, &sig));
        out.put(
            "signatures",
            "sig-other",
            &with(1, &other.sign(b"data", "", None).expect("sign")),
        );
        let kc = Keychain::generate().expect("keychain");
        let info = kc
            .rotate_signing(keystrata::Algorithm::EcdsaP256)
            .expect("rotate");
        let der = kc
            .public_key(info.key_id, keystrata::PublicKeyFormat::Der)
            .expect("der");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let trust = format!(
            "# keystrata trusted keys v1\nrelease official active ecdsa-p256 {b64}\n\
             alice community active minisign {}\nbob community revoked minisign {}\n",
            sk.public_key().to_base64(),
            other.public_key().to_base64()
        );
        out.put("signatures", "trust", &with(3, &trust));
    }

    // stream: the committed Tink streams (4 KB segments), behind their aad.
    {
        let doc: Json = serde_json::from_str(include_str!("../../tests/vectors/stream.json"))
            .expect("stream.json");
        for (i, c) in list(&doc, &["decrypt"]).iter().enumerate() {
            let aad = hex_field(c, "aad_hex");
            out.put(
                "stream",
                &format!("tink-{i}"),
                &join_field(&aad, &hex_field(c, "ciphertext_hex")),
            );
        }
    }

    for (target, n) in &out.written {
        println!("seeds: {target}: {n}");
    }
}
