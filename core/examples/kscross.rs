//! `kscross` in Rust: the command-line tool of the cross-language harness
//! (tests/cross/run.sh). The C, Go and Python tools in tests/cross/ have
//! exactly the same interface; see tests/cross/README.md.
//!
//! A keystrata error prints the kind's name on stdout (and a message on
//! stderr) and exits with 10 + the kind's code. Usage errors exit 2.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::exit;

use age::secrecy::ExposeSecret;
use keystrata::{
    AgeRoot, Algorithm, Envelope, Error, ErrorKind, KeyManager, Keychain, PassphraseRoot,
    PublicKeyFormat, Purpose, Root, SignatureFormat, StreamFormat,
};

type Res<T> = Result<T, Failure>;

enum Failure {
    Ks(Error),
    Usage(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Ks(e)
    }
}

fn usage<T>(msg: impl Into<String>) -> Res<T> {
    Err(Failure::Usage(msg.into()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Res<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return usage("odd-length hex");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| Failure::Usage("bad hex".into())))
        .collect()
}

fn read(path: &str) -> Res<Vec<u8>> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("cannot read {path}: {e}")))
}

fn write(path: impl AsRef<Path>, data: &[u8]) -> Res<()> {
    let p = path.as_ref();
    std::fs::write(p, data)
        .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", p.display())))
}

/// `age:PATH` (an identity file) or `pass:PASSPHRASE` (work factor 10).
fn root(spec: &str) -> Res<Box<dyn Root>> {
    if let Some(path) = spec.strip_prefix("age:") {
        let text = String::from_utf8(read(path)?)
            .map_err(|_| Failure::Usage("identity not UTF-8".into()))?;
        Ok(Box::new(AgeRoot::new([text], [] as [&str; 0])?))
    } else if let Some(pass) = spec.strip_prefix("pass:") {
        Ok(Box::new(PassphraseRoot::with_work_factor(pass, 10)?))
    } else {
        usage(format!("bad root spec {spec:?}"))
    }
}

/// KC opened bound to its file (a bound keychain has a root: portable
/// ciphertexts need it).
fn open_bound(spec: &str, kc: &str) -> Res<Keychain> {
    if let Some(path) = spec.strip_prefix("age:") {
        let text = String::from_utf8(read(path)?)
            .map_err(|_| Failure::Usage("identity not UTF-8".into()))?;
        Ok(Keychain::open(kc, &AgeRoot::new([text], [] as [&str; 0])?)?)
    } else if let Some(pass) = spec.strip_prefix("pass:") {
        Ok(Keychain::open(
            kc,
            &PassphraseRoot::with_work_factor(pass, 10)?,
        )?)
    } else {
        usage(format!("bad root spec {spec:?}"))
    }
}

fn load(spec: &str, kc: &str) -> Res<Keychain> {
    let r = root(spec)?;
    Ok(Keychain::load_file(kc, r.as_ref())?)
}

fn envelope_json(env: &Envelope) -> String {
    let v = serde_json::json!({
        "key_id": env.key_id,
        "key_version": env.key_version,
        "provider": env.provider,
        "ciphertext_hex": hex(&env.ciphertext),
    });
    v.to_string()
}

fn metadata_json(env: &Envelope) -> String {
    serde_json::to_string(&env.to_metadata()).unwrap_or_default()
}

fn read_envelope(path: &str) -> Res<Envelope> {
    let v: serde_json::Value = serde_json::from_slice(&read(path)?)
        .map_err(|e| Failure::Usage(format!("{path}: not JSON: {e}")))?;
    let obj = match v.as_object() {
        Some(o) => o,
        None => return usage(format!("{path}: not a JSON object")),
    };
    if obj.contains_key("ciphertext_hex") {
        let s = |k: &str| obj.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let (Some(key_id), Some(provider), Some(ct), Some(ver)) = (
            s("key_id"),
            s("provider"),
            s("ciphertext_hex"),
            obj.get("key_version").and_then(|x| x.as_u64()),
        ) else {
            return usage(format!("{path}: bad envelope JSON"));
        };
        let key_version = u32::try_from(ver).map_err(|_| Failure::Usage("key_version".into()))?;
        Ok(Envelope {
            key_id,
            key_version,
            provider,
            ciphertext: unhex(&ct)?,
        })
    } else {
        let mut m = BTreeMap::new();
        for (k, v) in obj {
            match v.as_str() {
                Some(s) => m.insert(k.clone(), s.to_owned()),
                None => return usage(format!("{path}: metadata values must be strings")),
            };
        }
        Ok(Envelope::from_metadata(m)?)
    }
}

/// The algorithm, signature format or public key format named `name`, by
/// the core's own names (a name it does not know is `InvalidInput`, as the
/// other languages' libraries say).
fn algorithm(name: &str) -> Res<Algorithm> {
    Algorithm::from_name(name).ok_or_else(|| invalid("algorithm", name))
}

fn sig_format(name: &str) -> Res<SignatureFormat> {
    (1..16)
        .filter_map(SignatureFormat::from_code)
        .find(|f| f.name() == name)
        .ok_or_else(|| invalid("signature format", name))
}

fn pub_format(name: &str) -> Res<PublicKeyFormat> {
    (1..16)
        .filter_map(PublicKeyFormat::from_code)
        .find(|f| f.name() == name)
        .ok_or_else(|| invalid("public key format", name))
}

fn stream_format(name: &str) -> Res<StreamFormat> {
    StreamFormat::from_name(name).ok_or_else(|| invalid("stream format", name))
}

/// How much `stream-encrypt` hands the writer at a time, and
/// `stream-decrypt` asks of the reader: odd sizes, so calls straddle
/// segment boundaries (the same in every language's tool).
const STREAM_WRITE_CHUNK: usize = 10007;
const STREAM_READ_CHUNK: usize = 8191;

fn open_file(path: &str) -> Res<File> {
    File::open(path).map_err(|e| Failure::Usage(format!("cannot read {path}: {e}")))
}

fn create_file(path: &str) -> Res<File> {
    File::create(path).map_err(|e| Failure::Usage(format!("cannot write {path}: {e}")))
}

fn read_chunk(f: &mut File, buf: &mut [u8], path: &str) -> Res<usize> {
    f.read(buf)
        .map_err(|e| Failure::Usage(format!("cannot read {path}: {e}")))
}

/// The file IN through the streaming API into OUT: `encrypting_writer`
/// over OUT, given IN a chunk at a time, then `finish`.
fn stream_encrypt(kc: &Keychain, input: &str, aad: &[u8], out: &str) -> Res<()> {
    let mut src = open_file(input)?;
    let mut w = kc.encrypting_writer(create_file(out)?, aad)?;
    let mut buf = vec![0u8; STREAM_WRITE_CHUNK];
    loop {
        let n = read_chunk(&mut src, &mut buf, input)?;
        if n == 0 {
            break;
        }
        // The writer's errors: the file's, or the stream's.
        w.write_all(&buf[..n])
            .map_err(keystrata::stream::error_of)?;
    }
    w.finish()?;
    Ok(())
}

/// The stream in the file IN, decrypted with `decrypting_reader` a chunk
/// at a time into OUT.
fn stream_decrypt(kc: &Keychain, input: &str, aad: &[u8], out: &str) -> Res<()> {
    let mut r = kc.decrypting_reader(open_file(input)?, aad)?;
    let mut dst = create_file(out)?;
    let mut buf = vec![0u8; STREAM_READ_CHUNK];
    loop {
        let n = r.read(&mut buf).map_err(keystrata::stream::error_of)?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])
            .map_err(|e| Failure::Usage(format!("cannot write {out}: {e}")))?;
    }
    Ok(())
}

/// LEN bytes of plaintext at OFFSET of the stream in IN (fewer at the
/// end), with `seekable_decryptor`'s `read_at`, which returns at most the
/// rest of one segment per call: called until LEN bytes or the end.
fn stream_read_at(kc: &Keychain, input: &str, aad: &[u8], offset: u64, len: usize) -> Res<Vec<u8>> {
    let mut s = kc.seekable_decryptor(open_file(input)?, aad)?;
    let mut out = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = s.read_at(offset + got as u64, &mut out[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    out.truncate(got);
    Ok(out)
}

fn invalid(what: &str, name: &str) -> Failure {
    Failure::Ks(Error::new(
        ErrorKind::InvalidInput,
        format!("unknown {what} {name:?}"),
    ))
}

/// Generates the harness keychain in `dir`: fixtures under v1 and v2, two
/// rotations, v1 disabled.
fn gen(dir: &str, root: &dyn Root) -> Res<()> {
    let d = Path::new(dir);
    let kc = Keychain::generate()?;
    let v1 = kc.primary()?.key_id;
    write(d.join("v1.sealed"), &kc.seal(b"fixture v1", b"fixture")?)?;
    write(
        d.join("v1.encrypted"),
        &kc.encrypt(b"fixture v1", b"fixture")?,
    )?;
    write(
        d.join("v1.env.json"),
        envelope_json(&kc.wrap_key(&[0x11; 32], b"fixture")?).as_bytes(),
    )?;
    kc.rotate()?;
    write(d.join("v2.sealed"), &kc.seal(b"fixture v2", b"fixture")?)?;
    write(
        d.join("v2.encrypted"),
        &kc.encrypt(b"fixture v2", b"fixture")?,
    )?;
    write(
        d.join("v2.env.json"),
        envelope_json(&kc.wrap_key(&[0x22; 32], b"fixture")?).as_bytes(),
    )?;
    kc.rotate()?;
    kc.disable(v1)?;
    write(d.join("disabled_key_id"), format!("{v1}\n").as_bytes())?;
    kc.save_file(d.join("keychain.age"), root)?;
    Ok(())
}

fn run(args: &[String]) -> Res<()> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["gen-age", dir] => {
            let r = AgeRoot::generate();
            let text = format!(
                "# public key: {}\n{}\n",
                r.recipients()[0],
                r.insecure_identity_strings()[0].expose_secret()
            );
            write(Path::new(dir).join("identity.txt"), text.as_bytes())?;
            gen(dir, &r)
        }
        ["gen-pass", dir, pass] => gen(dir, &PassphraseRoot::with_work_factor(*pass, 10)?),
        [op @ ("seal" | "unseal" | "encrypt" | "decrypt"), spec, kc, input, aad, out] => {
            let kc = load(spec, kc)?;
            let data = read(input)?;
            let aad = aad.as_bytes();
            let res = match *op {
                "seal" => kc.seal(&data, aad)?,
                "unseal" => kc.unseal(&data, aad)?,
                "encrypt" => kc.encrypt(&data, aad)?,
                _ => kc.decrypt(&data, aad)?,
            };
            write(out, &res)
        }
        ["encrypt-portable", spec, kc, input, aad, out] => {
            let kc = open_bound(spec, kc)?;
            write(out, &kc.encrypt_portable(&read(input)?, aad.as_bytes())?)
        }
        ["decrypt-portable", spec, input, aad, out] => {
            let r = root(spec)?;
            let pt = keystrata::decrypt_portable(&read(input)?, aad.as_bytes(), r.as_ref())?;
            write(out, &pt)
        }
        ["wrap", spec, kc, keyfile, context, out_env, out_meta] => {
            let kc = load(spec, kc)?;
            let env = kc.wrap_key(&read(keyfile)?, context.as_bytes())?;
            write(out_env, envelope_json(&env).as_bytes())?;
            write(out_meta, metadata_json(&env).as_bytes())
        }
        ["unwrap", spec, kc, envfile, context, out] => {
            let kc = load(spec, kc)?;
            let env = read_envelope(envfile)?;
            let key = kc.unwrap_key(&env, context.as_bytes())?;
            write(out, key.expose_secret())
        }
        ["derive", spec, kc, origin, instance, epoch, out] => {
            let kc = load(spec, kc)?;
            let epoch: u64 = epoch.parse().map_err(|_| Failure::Usage("bad epoch".into()))?;
            let key = kc.derive_origin_key(origin.as_bytes(), instance.as_bytes(), epoch)?;
            write(out, key.expose_secret())
        }
        ["destroy", spec, kc_path, key_id, out] => {
            let r = root(spec)?;
            let kc = Keychain::load_file(kc_path, r.as_ref())?;
            let id: u32 = key_id.parse().map_err(|_| Failure::Usage("bad key id".into()))?;
            kc.destroy(id)?;
            Ok(kc.save_file(out, r.as_ref())?)
        }
        ["add-signing", spec, kc_path, alg] => {
            let r = root(spec)?;
            let kc = Keychain::load_file(kc_path, r.as_ref())?;
            kc.rotate_signing(algorithm(alg)?)?;
            Ok(kc.save_file(kc_path, r.as_ref())?)
        }
        ["sign", spec, kc, format, msg, out] => {
            let kc = load(spec, kc)?;
            let sig = kc.sign_as(&read(msg)?, sig_format(format)?)?;
            write(out, &sig.bytes)
        }
        ["verify", spec, kc, msg, sig, out] => {
            let kc = load(spec, kc)?;
            let info = kc.verify(&read(msg)?, &read(sig)?)?;
            write(out, format!("{}\n", info.key_id).as_bytes())
        }
        ["pubkey", spec, kc, format, out] => {
            let kc = load(spec, kc)?;
            let id = kc.primary_for(Purpose::Sign)?.key_id;
            write(out, &kc.public_key(id, pub_format(format)?)?)
        }
        ["verify-pub", alg, public, msg, sig, out] => {
            keystrata::sign::verify(algorithm(alg)?, &read(public)?, &read(msg)?, &read(sig)?)?;
            write(out, b"ok\n")
        }
        ["add-stream", spec, kc_path, format] => {
            let r = root(spec)?;
            let kc = Keychain::load_file(kc_path, r.as_ref())?;
            kc.rotate_streaming(stream_format(format)?)?;
            Ok(kc.save_file(kc_path, r.as_ref())?)
        }
        ["stream-encrypt", spec, kc, input, aad, out] => {
            stream_encrypt(&load(spec, kc)?, input, aad.as_bytes(), out)
        }
        ["stream-decrypt", spec, kc, input, aad, out] => {
            stream_decrypt(&load(spec, kc)?, input, aad.as_bytes(), out)
        }
        ["stream-read-at", spec, kc, input, aad, offset, len, out] => {
            let offset: u64 = offset.parse().map_err(|_| Failure::Usage("bad offset".into()))?;
            let len: usize = len.parse().map_err(|_| Failure::Usage("bad length".into()))?;
            let kc = load(spec, kc)?;
            write(out, &stream_read_at(&kc, input, aad.as_bytes(), offset, len)?)
        }
        ["keys", spec, kc] => {
            let kc = load(spec, kc)?;
            for k in kc.keys().expect("keys") {
                println!("{} {} {} {} {}", k.key_id, k.version, k.purpose, k.status, u8::from(k.primary));
            }
            Ok(())
        }
        _ => usage("usage: kscross gen-age DIR | gen-pass DIR PASS | seal|unseal|encrypt|decrypt ROOT KC IN AAD OUT | wrap ROOT KC KEYFILE CONTEXT OUT_ENV OUT_META | unwrap ROOT KC ENVFILE CONTEXT OUT | derive ROOT KC ORIGIN INSTANCE EPOCH OUT | destroy ROOT KC KEY_ID OUT_KC | keys ROOT KC | encrypt-portable ROOT KC IN AAD OUT | decrypt-portable ROOT IN AAD OUT | add-signing ROOT KC ALG | sign ROOT KC FORMAT MSG OUT | verify ROOT KC MSG SIG OUT | pubkey ROOT KC FORMAT OUT | verify-pub ALG PUBFILE MSG SIG OUT | add-stream ROOT KC FORMAT | stream-encrypt|stream-decrypt ROOT KC IN AAD OUT | stream-read-at ROOT KC IN AAD OFFSET LEN OUT"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => {}
        Err(Failure::Ks(e)) => {
            println!("{}", e.kind().name());
            eprintln!(
                "kscross-rust: {}: {e}",
                args.first().map_or("", String::as_str)
            );
            exit(10 + e.kind().code() as i32);
        }
        Err(Failure::Usage(m)) => {
            eprintln!("kscross-rust: {m}");
            exit(2);
        }
    }
}
