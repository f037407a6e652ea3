//! Writes keystrata's known-answer vectors (`tests/vectors/keystrata.json`).
//!
//! ```sh
//! cargo run -p keystrata --example make_vectors > tests/vectors/keystrata.json
//! # or, keeping every committed byte, add only the cases of the compact
//! # wrap form and of the metadata context (made with the file's keychain):
//! cargo run -p keystrata --example make_vectors -- --add-gateway-cases tests/vectors/keystrata.json
//! ```
//!
//! Keys and nonces are random, so every run writes different bytes; the
//! committed file is the reference. The schema is described in
//! `tests/vectors/README.md` and the byte layouts in `docs/FORMAT.md`.
//! Before printing anything, the generator checks every case against the
//! keychain it came from and against a keychain loaded back from the saved
//! age file, so a written file is always self-consistent.

use age::secrecy::ExposeSecret as _;
use base64::Engine as _;
use keystrata::derive::origin_info;
use keystrata::{
    AgeRoot, Envelope, ErrorKind, KeyManager, Keychain, PassphraseRoot, Purpose, Root,
};
use serde_json::{json, Value};

type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A deterministic, non-repeating-looking byte pattern.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(u32::from(seed)) as u8)
        .collect()
}

fn envelope_json(e: &Envelope) -> Value {
    json!({
        "key_id": e.key_id,
        "key_version": e.key_version,
        "provider": e.provider,
        "ciphertext_hex": hex(&e.ciphertext),
    })
}

struct Gen {
    kc: Keychain,
    unseal: Vec<Value>,
    decrypt: Vec<Value>,
    unwrap: Vec<Value>,
    invalid: Vec<Value>,
}

impl Gen {
    fn seal(&mut self, comment: &str, pt: &[u8], aad: &[u8]) -> BoxResult<Vec<u8>> {
        let p = self.kc.primary()?;
        let ct = self.kc.seal(pt, aad)?;
        self.unseal.push(json!({
            "comment": comment,
            "key_id": p.key_id,
            "key_version": p.version,
            "plaintext_hex": hex(pt),
            "aad_hex": hex(aad),
            "ciphertext_hex": hex(&ct),
        }));
        Ok(ct)
    }

    fn encrypt(&mut self, comment: &str, pt: &[u8], aad: &[u8]) -> BoxResult<Vec<u8>> {
        let p = self.kc.primary()?;
        let ct = self.kc.encrypt(pt, aad)?;
        self.decrypt.push(json!({
            "comment": comment,
            "key_id": p.key_id,
            "key_version": p.version,
            "plaintext_hex": hex(pt),
            "aad_hex": hex(aad),
            "ciphertext_hex": hex(&ct),
        }));
        Ok(ct)
    }

    fn wrap(&mut self, comment: &str, key: &[u8], context: &[u8]) -> BoxResult<Envelope> {
        let env = self.kc.wrap_key(key, context)?;
        self.unwrap.push(unwrap_case(comment, &env, context, key));
        Ok(env)
    }

    fn bad_ct(&mut self, op: &str, comment: &str, ct: &[u8], aad: &[u8], kind: ErrorKind) {
        self.invalid.push(json!({
            "comment": comment,
            "op": op,
            "ciphertext_hex": hex(ct),
            "aad_hex": hex(aad),
            "error": kind.name(),
            "error_code": kind.code(),
        }));
    }

    fn bad_env(&mut self, comment: &str, env: &Envelope, context: &[u8], kind: ErrorKind) {
        self.invalid
            .push(bad_unwrap_case(comment, env, context, kind));
    }
}

/// An `unwrap[]` case: `env` opens with `context` to `key`.
fn unwrap_case(comment: &str, env: &Envelope, context: &[u8], key: &[u8]) -> Value {
    json!({
        "comment": comment,
        "envelope": envelope_json(env),
        "metadata": env.to_metadata(),
        "context_hex": hex(context),
        "key_hex": hex(key),
    })
}

/// An `invalid[]` case of op `unwrap`: `env` with `context` fails with `kind`.
fn bad_unwrap_case(comment: &str, env: &Envelope, context: &[u8], kind: ErrorKind) -> Value {
    json!({
        "comment": comment,
        "op": "unwrap",
        "envelope": envelope_json(env),
        "context_hex": hex(context),
        "error": kind.name(),
        "error_code": kind.code(),
    })
}

fn flip(b: &[u8], at: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    v[at] ^= 0x01;
    v
}

fn with_key_id(ct: &[u8], id: u32) -> Vec<u8> {
    let mut v = ct.to_vec();
    v[1..5].copy_from_slice(&id.to_be_bytes());
    v
}

fn hexd(s: &Value) -> BoxResult<Vec<u8>> {
    let s = s.as_str().ok_or("not a string")?;
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(Into::into))
        .collect()
}

fn env_from(v: &Value) -> BoxResult<Envelope> {
    Ok(Envelope {
        key_id: v["key_id"].as_str().ok_or("key_id")?.to_owned(),
        key_version: u32::try_from(v["key_version"].as_u64().ok_or("key_version")?)?,
        provider: v["provider"].as_str().ok_or("provider")?.to_owned(),
        ciphertext: hexd(&v["ciphertext_hex"])?,
    })
}

/// Runs every case of the `keychain` section against `kc`.
fn self_check(kc: &Keychain, doc: &Value) -> BoxResult<()> {
    for c in doc["unseal"].as_array().ok_or("unseal")? {
        let got = kc.unseal(&hexd(&c["ciphertext_hex"])?, &hexd(&c["aad_hex"])?)?;
        assert_eq!(got, hexd(&c["plaintext_hex"])?, "unseal {}", c["comment"]);
    }
    for c in doc["decrypt"].as_array().ok_or("decrypt")? {
        let got = kc.decrypt(&hexd(&c["ciphertext_hex"])?, &hexd(&c["aad_hex"])?)?;
        assert_eq!(got, hexd(&c["plaintext_hex"])?, "decrypt {}", c["comment"]);
    }
    for c in doc["unwrap"].as_array().ok_or("unwrap")? {
        let env = env_from(&c["envelope"])?;
        let from_meta = Envelope::from_metadata(
            c["metadata"]
                .as_object()
                .ok_or("metadata")?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())),
        )?;
        assert_eq!(env, from_meta);
        let got = kc.unwrap_key(&env, &hexd(&c["context_hex"])?)?;
        assert_eq!(got.expose_secret(), hexd(&c["key_hex"])?);
    }
    for c in doc["derive_origin_key"]
        .as_array()
        .ok_or("derive_origin_key")?
    {
        let epoch: u64 = c["epoch"].as_str().ok_or("epoch")?.parse()?;
        let origin = c["origin"].as_str().ok_or("origin")?;
        let instance = c["instance"].as_str().ok_or("instance")?;
        let got = kc.derive_origin_key(origin, instance, epoch)?;
        assert_eq!(got.expose_secret(), hexd(&c["key_hex"])?);
        assert_eq!(
            origin_info(origin.as_bytes(), instance.as_bytes(), epoch)?,
            hexd(&c["info_hex"])?
        );
    }
    for c in doc["derive"].as_array().ok_or("derive")? {
        let len = usize::try_from(c["length"].as_u64().ok_or("length")?)?;
        let got = kc.derive(&hexd(&c["info_hex"])?, len)?;
        assert_eq!(got.expose_secret(), hexd(&c["okm_hex"])?);
    }
    for c in doc["invalid"].as_array().ok_or("invalid")? {
        let want = c["error"].as_str().ok_or("error")?;
        let err = match c["op"].as_str().ok_or("op")? {
            "unseal" => kc
                .unseal(&hexd(&c["ciphertext_hex"])?, &hexd(&c["aad_hex"])?)
                .err(),
            "decrypt" => kc
                .decrypt(&hexd(&c["ciphertext_hex"])?, &hexd(&c["aad_hex"])?)
                .err(),
            "unwrap" => kc
                .unwrap_key(&env_from(&c["envelope"])?, &hexd(&c["context_hex"])?)
                .err(),
            "derive" => kc
                .derive(
                    &hexd(&c["info_hex"])?,
                    usize::try_from(c["length"].as_u64().ok_or("length")?)?,
                )
                .err(),
            "envelope_from_metadata" => Envelope::from_metadata(
                c["metadata"]
                    .as_object()
                    .ok_or("metadata")?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())),
            )
            .err(),
            other => return Err(format!("unknown op {other}").into()),
        };
        let got = err.map(|e| e.kind().name());
        assert_eq!(got, Some(want), "invalid case {}", c["comment"]);
    }
    for c in doc["metadata_context"].as_array().into_iter().flatten() {
        let entries: Vec<(String, String)> = serde_json::from_value(c["entries"].clone())?;
        let binding = match &c["binding"] {
            Value::String(s) if s == "all" => keystrata::MetadataBinding::All,
            Value::String(s) if s == "nothing" => keystrata::MetadataBinding::Nothing,
            Value::Array(names) => keystrata::MetadataBinding::only(
                names
                    .iter()
                    .map(|n| n.as_str().unwrap_or_default().to_owned()),
            ),
            other => return Err(format!("binding {other}").into()),
        };
        match keystrata::metadata_context(entries, &binding) {
            Ok(ctx) => assert_eq!(Some(hex(&ctx).as_str()), c["context_hex"].as_str()),
            Err(e) => assert_eq!(Some(e.kind().name()), c["error"].as_str()),
        }
    }
    Ok(())
}

fn main() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = args.as_slice() {
        if flag == "--add-gateway-cases" {
            return add_gateway_cases(path);
        }
    }
    if !args.is_empty() {
        return Err("usage: make_vectors [--add-gateway-cases FILE]".into());
    }
    let mut g = Gen {
        kc: Keychain::generate()?,
        unseal: Vec::new(),
        decrypt: Vec::new(),
        unwrap: Vec::new(),
        invalid: Vec::new(),
    };

    // --- encryption key v1: will be destroyed -------------------------
    let v1 = g.kc.primary()?;
    let ct_v1 = g.kc.seal(b"sealed under v1, destroyed later", b"aad-v1")?;
    let blob_v1 =
        g.kc.encrypt(b"encrypted under v1, destroyed later", b"aad-v1")?;
    let env_v1 = g.kc.wrap_key(&[0x11; 32], b"ctx-v1")?;

    // --- v2: will be disabled ------------------------------------------
    g.kc.rotate()?;
    let v2 = g.kc.primary()?;
    let ct_v2 = g.kc.seal(b"sealed under v2, disabled later", b"aad-v2")?;
    let blob_v2 =
        g.kc.encrypt(b"encrypted under v2, disabled later", b"aad-v2")?;
    let env_v2 = g.kc.wrap_key(&[0x22; 32], b"ctx-v2")?;

    // --- v3: stays enabled, no longer primary at the end ----------------
    g.kc.rotate()?;
    g.seal("v3 (enabled, not primary)", b"hello from v3", b"aad:v3")?;
    g.seal("v3, empty plaintext and aad", b"", b"")?;
    g.encrypt("v3 (enabled, not primary)", b"envelope under v3", b"doc-3")?;
    g.wrap("v3, 32-byte key", &pattern(32, 3), b"bucket/object-3")?;

    // --- v4: the primary ------------------------------------------------
    g.kc.rotate()?;
    let ct_main = g.seal("v4 primary", b"api-token-123", b"svc=billing")?;
    g.seal("v4, empty plaintext", b"", b"aad for empty")?;
    g.seal("v4, empty aad", b"no aad here", b"")?;
    g.seal("v4, 1 byte", b"\x00", b"\x00")?;
    g.seal("v4, 16 bytes (one block)", &pattern(16, 7), b"one block")?;
    g.seal(
        "v4, 1000 bytes, binary aad",
        &pattern(1000, 9),
        &pattern(40, 200),
    )?;
    let blob_main = g.encrypt("v4 primary", b"the document", b"doc-17")?;
    g.encrypt("v4, empty plaintext and aad", b"", b"")?;
    g.encrypt("v4, empty aad", b"payload without aad", b"")?;
    g.encrypt("v4, 4096 bytes", &pattern(4096, 1), b"big")?;
    let env_main = g.wrap("v4, 32-byte key", &pattern(32, 4), b"bucket/object")?;
    g.wrap("v4, 1-byte key, empty context", b"\x5a", b"")?;
    g.wrap(
        "v4, 64-byte key, binary context",
        &pattern(64, 5),
        &pattern(20, 250),
    )?;

    // Lifecycle: v2 disabled, v1 destroyed (after their ciphertexts exist).
    g.kc.disable(v2.key_id)?;
    g.kc.destroy(v1.key_id)?;

    // An ID in neither purpose: smallest one absent from the keychain.
    let ids: Vec<u32> =
        g.kc.keys()
            .expect("keys")
            .iter()
            .map(|k| k.key_id)
            .collect();
    let unknown = (1u32..).find(|i| !ids.contains(i)).ok_or("no free id")?;
    let derive_id = g.kc.primary_for(Purpose::Derive)?.key_id;

    // --- invalid: unseal ------------------------------------------------
    use ErrorKind as K;
    let n = ct_main.len();
    let aad = b"svc=billing";
    g.bad_ct(
        "unseal",
        "tampered tag (last byte)",
        &flip(&ct_main, n - 1),
        aad,
        K::Authentication,
    );
    g.bad_ct(
        "unseal",
        "tampered ciphertext (first byte after nonce)",
        &flip(&ct_main, 17),
        aad,
        K::Authentication,
    );
    g.bad_ct(
        "unseal",
        "tampered nonce",
        &flip(&ct_main, 5),
        aad,
        K::Authentication,
    );
    g.bad_ct(
        "unseal",
        "wrong aad",
        &ct_main,
        b"svc=billinG",
        K::Authentication,
    );
    g.bad_ct("unseal", "aad missing", &ct_main, b"", K::Authentication);
    g.bad_ct(
        "unseal",
        "last byte removed",
        &ct_main[..n - 1],
        aad,
        K::Authentication,
    );
    g.bad_ct(
        "unseal",
        "truncated to 32 bytes (minimum is 33)",
        &ct_main[..32],
        aad,
        K::Format,
    );
    g.bad_ct("unseal", "empty", b"", aad, K::Format);
    g.bad_ct(
        "unseal",
        "prefix byte 0x00 instead of 0x01",
        &flip(&ct_main, 0),
        aad,
        K::Format,
    );
    g.bad_ct(
        "unseal",
        "key_id not in the keychain",
        &with_key_id(&ct_main, unknown),
        aad,
        K::UnknownKey,
    );
    g.bad_ct(
        "unseal",
        "key_id of the derivation key (wrong purpose)",
        &with_key_id(&ct_main, derive_id),
        aad,
        K::UnknownKey,
    );
    g.bad_ct(
        "unseal",
        "made under v2, which is disabled",
        &ct_v2,
        b"aad-v2",
        K::KeyDisabled,
    );
    g.bad_ct(
        "unseal",
        "made under v1, which is destroyed",
        &ct_v1,
        b"aad-v1",
        K::KeyDestroyed,
    );

    // --- invalid: decrypt -----------------------------------------------
    let m = blob_main.len();
    let daad = b"doc-17";
    g.bad_ct(
        "decrypt",
        "tampered payload tag (last byte)",
        &flip(&blob_main, m - 1),
        daad,
        K::Authentication,
    );
    g.bad_ct(
        "decrypt",
        "tampered encrypted DEK (its tag)",
        &flip(&blob_main, 4 + 66),
        daad,
        K::Authentication,
    );
    g.bad_ct(
        "decrypt",
        "tampered payload nonce",
        &flip(&blob_main, 4 + 67),
        daad,
        K::Authentication,
    );
    g.bad_ct(
        "decrypt",
        "wrong aad",
        &blob_main,
        b"doc-18",
        K::Authentication,
    );
    g.bad_ct(
        "decrypt",
        "shorter than the 4-byte length",
        &blob_main[..3],
        daad,
        K::Format,
    );
    g.bad_ct(
        "decrypt",
        "length field larger than what follows",
        &blob_main[..4 + 66],
        daad,
        K::Format,
    );
    let mut short_len = blob_main.clone();
    short_len[..4].copy_from_slice(&32u32.to_be_bytes());
    g.bad_ct(
        "decrypt",
        "length field 32 (below the 33-byte sealed minimum)",
        &short_len,
        daad,
        K::Format,
    );
    g.bad_ct(
        "decrypt",
        "payload shorter than nonce + tag",
        &blob_main[..4 + 67 + 27],
        daad,
        K::Format,
    );
    let mut wrong_id = blob_main.clone();
    wrong_id[5..9].copy_from_slice(&unknown.to_be_bytes());
    g.bad_ct(
        "decrypt",
        "encrypted DEK names a key_id not in the keychain",
        &wrong_id,
        daad,
        K::UnknownKey,
    );
    g.bad_ct(
        "decrypt",
        "made under v2, which is disabled",
        &blob_v2,
        b"aad-v2",
        K::KeyDisabled,
    );
    g.bad_ct(
        "decrypt",
        "made under v1, which is destroyed",
        &blob_v1,
        b"aad-v1",
        K::KeyDestroyed,
    );

    // --- invalid: unwrap ------------------------------------------------
    let ctx = b"bucket/object";
    g.bad_env(
        "wrong context",
        &env_main,
        b"bucket/other",
        K::Authentication,
    );
    let mut e = env_main.clone();
    e.key_version += 1;
    g.bad_env("key_version changed", &e, ctx, K::Authentication);
    let mut e = env_main.clone();
    e.key_id = v3_or(&g.kc, &env_main)?;
    g.bad_env(
        "key_id changed to another enabled key (prefix still names the original)",
        &e,
        ctx,
        K::Authentication,
    );
    let mut e = env_main.clone();
    e.provider = "age".into();
    g.bad_env("provider is not \"keystrata\"", &e, ctx, K::InvalidInput);
    let mut e = env_main.clone();
    e.key_id = "0x2a".into();
    g.bad_env("key_id is not a decimal number", &e, ctx, K::Format);
    let mut e = env_main.clone();
    let l = e.ciphertext.len();
    e.ciphertext[l - 1] ^= 1;
    g.bad_env("tampered ciphertext tag", &e, ctx, K::Authentication);
    let mut e = env_main.clone();
    e.ciphertext.truncate(32);
    g.bad_env("ciphertext truncated to 32 bytes", &e, ctx, K::Format);
    g.bad_env(
        "wrapped under v2, which is disabled",
        &env_v2,
        b"ctx-v2",
        K::KeyDisabled,
    );
    g.bad_env(
        "wrapped under v1, which is destroyed",
        &env_v1,
        b"ctx-v1",
        K::KeyDestroyed,
    );

    // --- invalid: envelope metadata ----------------------------------
    let mut meta = env_main.to_metadata();
    meta.remove("x-amz-meta-encryption-wrapped-key");
    let mut meta2 = env_main.to_metadata();
    meta2.insert("x-amz-meta-encryption-key-version".into(), "v4".into());
    let mut meta3 = env_main.to_metadata();
    meta3.insert(
        "x-amz-meta-encryption-wrapped-key".into(),
        "not*base64".into(),
    );
    for (comment, md) in [
        ("metadata lacks the wrapped key", meta),
        ("metadata key version is not a decimal u32", meta2),
        ("metadata wrapped key is not base64", meta3),
    ] {
        g.invalid.push(json!({
            "comment": comment,
            "op": "envelope_from_metadata",
            "metadata": md,
            "error": K::Format.name(),
            "error_code": K::Format.code(),
        }));
    }

    // --- invalid: derive -------------------------------------------------
    for (comment, len) in [("length 0", 0u64), ("length 8161 (> 255 * 32)", 8161)] {
        g.invalid.push(json!({
            "comment": comment,
            "op": "derive",
            "info_hex": hex(b"info"),
            "length": len,
            "error": K::InvalidInput.name(),
            "error_code": K::InvalidInput.code(),
        }));
    }

    // --- derivation ------------------------------------------------------
    let origin_cases: &[(&str, &str, &str, u64)] = &[
        ("typical", "https://app.example", "web-1", 0),
        ("typical, epoch 1", "https://app.example", "web-1", 1),
        ("other instance", "https://app.example", "web-2", 0),
        ("empty origin and instance, epoch 0", "", "", 0),
        ("empty origin and instance, epoch 2^64-1", "", "", u64::MAX),
        ("empty instance", "https://app.example", "", 7),
        ("empty origin", "", "instance-only", 7),
        ("epoch 2^32", "https://app.example", "web-1", 1 << 32),
        ("epoch 2^63", "https://app.example", "web-1", 1 << 63),
        (
            "non-ASCII origin (IDN, not punycoded)",
            "https://bücher.example",
            "web-1",
            3,
        ),
        (
            "non-ASCII instance (CJK, emoji)",
            "https://app.example",
            "東京-🔑-1",
            3,
        ),
        ("boundary: origin/instance split differs", "ab", "c", 0),
        ("boundary: origin/instance split differs", "a", "bc", 0),
    ];
    let mut dok = Vec::new();
    for (comment, origin, instance, epoch) in origin_cases {
        let key = g.kc.derive_origin_key(origin, instance, *epoch)?;
        dok.push(json!({
            "comment": comment,
            "origin": origin,
            "instance": instance,
            "epoch": epoch.to_string(),
            "info_hex": hex(&origin_info(origin.as_bytes(), instance.as_bytes(), *epoch)?),
            "key_hex": hex(key.expose_secret()),
        }));
    }
    let derive_cases: &[(&str, Vec<u8>, usize)] = &[
        ("empty info, 1 byte", Vec::new(), 1),
        ("empty info, 32 bytes", Vec::new(), 32),
        ("text info, 32 bytes", b"app/session-key".to_vec(), 32),
        (
            "text info, 33 bytes (two HMAC blocks)",
            b"app/session-key".to_vec(),
            33,
        ),
        ("binary info, 64 bytes", pattern(50, 77), 64),
        ("maximum length 8160", b"max".to_vec(), 8160),
    ];
    let mut dv = Vec::new();
    for (comment, info, len) in derive_cases {
        let okm = g.kc.derive(info, *len)?;
        dv.push(json!({
            "comment": comment,
            "info_hex": hex(info),
            "length": len,
            "okm_hex": hex(okm.expose_secret()),
        }));
    }

    // --- save under an age identity ------------------------------------
    let root = AgeRoot::generate();
    let identity = root
        .insecure_identity_strings()
        .first()
        .ok_or("no identity")?
        .expose_secret()
        .to_owned();
    let saved = g.kc.save(&root)?;
    let plaintext = root.unprotect(&saved)?;
    let plaintext = String::from_utf8(plaintext.to_vec())?;

    let keys: Vec<Value> =
        g.kc.keys()
            .expect("keys")
            .iter()
            .map(|k| {
                json!({
                    "key_id": k.key_id,
                    "version": k.version,
                    "purpose": k.purpose.as_str(),
                    "status": k.status.as_str(),
                    "primary": k.primary,
                })
            })
            .collect();

    gateway_cases(&g.kc, &mut g.unwrap, &mut g.invalid)?;

    let keychain = json!({
        "comment": "4 encryption keys (v1 destroyed, v2 disabled, v3 enabled, v4 primary) and 1 derivation key (primary)",
        "age_identity": identity,
        "age_recipient": root.recipients().first().ok_or("no recipient")?,
        "saved_age_base64": b64(&saved),
        "plaintext_json": plaintext,
        "keys": keys,
        "unseal": g.unseal,
        "decrypt": g.decrypt,
        "unwrap": g.unwrap,
        "derive_origin_key": dok,
        "derive": dv,
        "invalid": g.invalid,
        "metadata_context": metadata_context_cases()?,
    });

    // Check against the live keychain and against the saved one.
    self_check(&g.kc, &keychain)?;
    let reloaded = Keychain::load(&saved, &AgeRoot::new([&identity], Vec::<String>::new())?)?;
    self_check(&reloaded, &keychain)?;

    // --- save under a passphrase ----------------------------------------
    let passphrase = "correct horse battery staple – ключ";
    let work_factor = 10u8;
    let pkc = Keychain::generate()?;
    let proot = PassphraseRoot::with_work_factor(passphrase, work_factor)?;
    let mut pseal = Vec::new();
    for (pt, aad) in [
        (&b"sealed in the passphrase keychain"[..], &b"pp"[..]),
        (b"", b""),
    ] {
        let ct = pkc.seal(pt, aad)?;
        pseal.push(json!({
            "comment": "under the passphrase keychain's primary",
            "key_id": pkc.primary()?.key_id,
            "key_version": 1,
            "plaintext_hex": hex(pt),
            "aad_hex": hex(aad),
            "ciphertext_hex": hex(&ct),
        }));
    }
    let psaved = pkc.save(&proot)?;
    let pplain = String::from_utf8(proot.unprotect(&psaved)?.to_vec())?;
    let ploaded = Keychain::load(&psaved, &proot)?;
    for c in &pseal {
        let got = ploaded.unseal(&hexd(&c["ciphertext_hex"])?, &hexd(&c["aad_hex"])?)?;
        assert_eq!(got, hexd(&c["plaintext_hex"])?);
    }

    let doc = json!({
        "description": "keystrata known-answer vectors. Keys and nonces are random: regenerating changes every byte, so tests check the decrypt direction and the deterministic outputs (derive, derive_origin_key). Schema: tests/vectors/README.md; layouts: docs/FORMAT.md.",
        "generator": format!("cargo run -p keystrata --example make_vectors (keystrata {})", keystrata::VERSION),
        "keychain_format_version": keystrata::FORMAT_VERSION,
        "keychain": keychain,
        "saved_passphrase": {
            "passphrase": passphrase,
            "work_factor": work_factor,
            "saved_age_base64": b64(&psaved),
            "plaintext_json": pplain,
            "unseal": pseal,
        },
    });
    let mut out = serde_json::to_string_pretty(&doc)?;
    out.push('\n');
    print!("{out}");
    Ok(())
}

/// The decimal key ID of an enabled encryption key other than the one
/// `env` names (v3 in this generator).
fn v3_or(kc: &Keychain, env: &Envelope) -> BoxResult<String> {
    kc.keys()
        .expect("keys")
        .iter()
        .find(|k| {
            k.purpose == Purpose::Encrypt
                && k.status == keystrata::KeyStatus::Enabled
                && k.key_id.to_string() != env.key_id
        })
        .map(|k| k.key_id.to_string())
        .ok_or_else(|| "no other enabled key".into())
}

/// The compact wrap form (FORMAT.md §4.1): unwrap cases under v3 and v4,
/// and the ways a compact envelope must fail. `kc` is the generator's
/// keychain (v3 enabled, v4 primary); it is changed only in memory and
/// left with v4 primary.
fn gateway_cases(
    kc: &Keychain,
    unwrap: &mut Vec<Value>,
    invalid: &mut Vec<Value>,
) -> BoxResult<()> {
    use keystrata::WrapForm;
    let v4 = kc.primary()?.key_id;
    let v3 = v3_or(
        kc,
        &Envelope {
            key_id: v4.to_string(),
            key_version: 0,
            provider: String::new(),
            ciphertext: Vec::new(),
        },
    )?;
    let mut push = |comment: &str, key: &[u8], context: &[u8]| -> BoxResult<Envelope> {
        let env = kc.wrap_key_with(key, context, WrapForm::Compact)?;
        unwrap.push(unwrap_case(comment, &env, context, key));
        Ok(env)
    };
    kc.promote(v3.parse()?)?;
    push(
        "compact form, v3, 32-byte key",
        &pattern(32, 13),
        b"bucket/object-c3",
    )?;
    kc.promote(v4)?;
    let main = push(
        "compact form, v4, 32-byte key, empty context",
        &pattern(32, 14),
        b"",
    )?;
    push(
        "compact form, v4, 32-byte key, metadata context",
        &pattern(32, 15),
        &keystrata::metadata_context(
            [("bucket", "photos"), ("uploadId", "u-1")],
            &keystrata::MetadataBinding::All,
        )?,
    )?;
    push("compact form, v4, 1-byte key", &[0x5a], b"ctx")?;
    let bad = bad_unwrap_case;
    let mut cases = Vec::new();
    cases.push(bad(
        "compact form, wrong context",
        &main,
        b"x",
        ErrorKind::Authentication,
    ));
    let mut e = main.clone();
    e.key_version += 1;
    cases.push(bad(
        "compact form, key_version changed",
        &e,
        b"",
        ErrorKind::Authentication,
    ));
    let mut e = main.clone();
    e.key_id = v3.clone();
    cases.push(bad(
        "compact form, key_id changed to another enabled key",
        &e,
        b"",
        ErrorKind::Authentication,
    ));
    let mut e = main.clone();
    let l = e.ciphertext.len();
    e.ciphertext[l - 1] ^= 1;
    cases.push(bad(
        "compact form, tampered tag",
        &e,
        b"",
        ErrorKind::Authentication,
    ));
    let mut e = main.clone();
    e.ciphertext[0] = 0x03;
    cases.push(bad(
        "wrapped key with an unknown first byte (0x03)",
        &e,
        b"",
        ErrorKind::Format,
    ));
    let mut e = main.clone();
    e.ciphertext.truncate(29);
    cases.push(bad(
        "compact form truncated to 29 bytes (no key)",
        &e,
        b"",
        ErrorKind::Format,
    ));
    let mut e = main.clone();
    e.ciphertext.clear();
    cases.push(bad("empty wrapped key", &e, b"", ErrorKind::Format));
    // The full form's body under the compact marker: the forms never
    // open as each other (their AAD labels differ).
    let full = kc.wrap_key(&pattern(32, 14), b"")?;
    let mut e = full.clone();
    e.ciphertext = [&[0x02u8][..], &full.ciphertext[5..]].concat();
    cases.push(bad(
        "full form re-labelled as compact",
        &e,
        b"",
        ErrorKind::Authentication,
    ));
    let mut e = main.clone();
    e.ciphertext = [&[0x01u8][..], &v4.to_be_bytes()[..], &main.ciphertext[1..]].concat();
    cases.push(bad(
        "compact form re-labelled as full",
        &e,
        b"",
        ErrorKind::Authentication,
    ));
    // Check every case before it is written.
    for c in &cases {
        let env = env_from(&c["envelope"])?;
        let got = kc
            .unwrap_key(&env, &hexd(&c["context_hex"])?)
            .err()
            .map(|e| e.kind().name());
        assert_eq!(got, c["error"].as_str(), "{}", c["comment"]);
    }
    invalid.extend(cases);
    Ok(())
}

/// The metadata context (FORMAT.md §4.2): entries as given (in order,
/// duplicates included), the binding, and the context bytes or the error.
fn metadata_context_cases() -> BoxResult<Vec<Value>> {
    use keystrata::{metadata_context, MetadataBinding};
    let user = vec![
        ("x-amz-meta-owner", "alice"),
        ("bucket", "photos"),
        ("Content-Type", "image/png"),
    ];
    let expanded = [
        user.clone(),
        vec![
            ("x-amz-meta-encryption-wrapped-key", "AQID"),
            ("x-amz-meta-encryption-kms-id", "42"),
            ("x-amz-meta-encryption-kms-provider", "keystrata"),
            ("x-amz-meta-encryption-key-version", "4"),
            ("x-amz-meta-encryption-algorithm", "AES256-GCM"),
        ],
    ]
    .concat();
    let escapes = vec![("a=b", "c%d"), ("line", "one\ntwo"), ("", "")];
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Value, MetadataBinding);
    let cases: Vec<Case> = vec![
        (
            "nothing bound (the default)",
            user.clone(),
            json!("nothing"),
            MetadataBinding::Nothing,
        ),
        (
            "all entries, sorted bytewise",
            user.clone(),
            json!("all"),
            MetadataBinding::All,
        ),
        (
            "all entries: the four envelope entries are left out",
            expanded.clone(),
            json!("all"),
            MetadataBinding::All,
        ),
        (
            "named entries only",
            expanded.clone(),
            json!(["bucket", "x-amz-meta-owner", "absent"]),
            MetadataBinding::only(["bucket", "x-amz-meta-owner", "absent"]),
        ),
        (
            "a named envelope entry is still left out",
            expanded.clone(),
            json!(["x-amz-meta-encryption-kms-id", "bucket"]),
            MetadataBinding::only(["x-amz-meta-encryption-kms-id", "bucket"]),
        ),
        (
            "'%', '=' and newline escaped; empty name and value",
            escapes,
            json!("all"),
            MetadataBinding::All,
        ),
        ("no entries", Vec::new(), json!("all"), MetadataBinding::All),
        (
            "non-ASCII names sort by their UTF-8 bytes",
            vec![("é", "1"), ("z", "2"), ("Z", "3")],
            json!("all"),
            MetadataBinding::All,
        ),
    ];
    let mut out = Vec::new();
    for (comment, entries, binding_json, binding) in cases {
        let ctx = metadata_context(entries.iter().copied(), &binding)?;
        out.push(json!({
            "comment": comment,
            "entries": entries,
            "binding": binding_json,
            "context_hex": hex(&ctx),
        }));
    }
    let dup = vec![("bucket", "a"), ("bucket", "b")];
    let err = metadata_context(dup.iter().copied(), &MetadataBinding::All)
        .err()
        .ok_or("a duplicate must fail")?;
    out.push(json!({
        "comment": "a bound name given twice",
        "entries": dup,
        "binding": "all",
        "error": err.kind().name(),
        "error_code": err.kind().code(),
    }));
    Ok(out)
}

/// Adds the gateway cases to a committed file, leaving every other byte
/// of it as it is: the keychain is the file's own, loaded with its age
/// identity.
fn add_gateway_cases(path: &str) -> BoxResult<()> {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let k = &doc["keychain"];
    let identity = k["age_identity"].as_str().ok_or("age_identity")?;
    let saved = base64::engine::general_purpose::STANDARD
        .decode(k["saved_age_base64"].as_str().ok_or("saved_age_base64")?)?;
    let kc = Keychain::load(&saved, &AgeRoot::new([identity], Vec::<String>::new())?)?;
    let keychain = doc["keychain"].as_object_mut().ok_or("keychain")?;
    let mut unwrap: Vec<Value> = keychain["unwrap"].as_array().ok_or("unwrap")?.clone();
    let mut invalid: Vec<Value> = keychain["invalid"].as_array().ok_or("invalid")?.clone();
    let is_gateway = |c: &Value| {
        c["comment"].as_str().is_some_and(|s| {
            s.starts_with("compact form")
                || s.starts_with("wrapped key with an unknown first byte")
                || s.ends_with("re-labelled as compact")
                || s.ends_with("re-labelled as full")
                || s == "empty wrapped key"
        })
    };
    unwrap.retain(|c| !is_gateway(c));
    invalid.retain(|c| !is_gateway(c));
    gateway_cases(&kc, &mut unwrap, &mut invalid)?;
    keychain.insert("unwrap".into(), Value::Array(unwrap));
    keychain.insert("invalid".into(), Value::Array(invalid));
    keychain.insert(
        "metadata_context".into(),
        Value::Array(metadata_context_cases()?),
    );
    self_check(&kc, &doc["keychain"])?;
    let mut out = serde_json::to_string_pretty(&doc)?;
    out.push('\n');
    std::fs::write(path, out)?;
    Ok(())
}
