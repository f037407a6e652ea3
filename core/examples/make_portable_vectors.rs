//! Writes the portable-ciphertext vectors (`tests/vectors/portable.json`).
//!
//! ```sh
//! cargo run -p keystrata --example make_portable_vectors > tests/vectors/portable.json
//! ```
//!
//! age encryption is randomized, so these are decrypt vectors: fixed roots
//! (an age identity, a passphrase) and the blobs they open, plus invalid
//! blobs that must fail with a given error kind. Every run writes different
//! bytes; the committed file is the reference. Before printing, every case
//! is checked with a fresh `PortableDecryptor` and with `decrypt_portable`.
//! Schema in `tests/vectors/README.md`, layout in `docs/FORMAT.md` §10.

use std::sync::Arc;

use age::secrecy::ExposeSecret as _;
use keystrata::portable::{KEK_RECORD_LABEL, VERSION};
use keystrata::{
    decrypt_portable, AgeRoot, ErrorKind, Keychain, PassphraseRoot, PortableDecryptor, Root,
};
use serde_json::{json, Value};

type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(u32::from(seed)) as u8)
        .collect()
}

/// The wrapped KEK and the envelope of a portable blob.
fn split(blob: &[u8]) -> (&[u8], &[u8]) {
    let n = u32::from_be_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    (&blob[8..8 + n], &blob[8 + n..])
}

fn join(wrapped: &[u8], envelope: &[u8]) -> Vec<u8> {
    let mut b = b"KSP".to_vec();
    b.push(VERSION);
    b.extend_from_slice(&(wrapped.len() as u32).to_be_bytes());
    b.extend_from_slice(wrapped);
    b.extend_from_slice(envelope);
    b
}

fn envelope_key_id(envelope: &[u8]) -> u32 {
    u32::from_be_bytes([envelope[5], envelope[6], envelope[7], envelope[8]])
}

fn flip(b: &[u8], at: usize) -> Vec<u8> {
    let mut b = b.to_vec();
    b[at] ^= 0x01;
    b
}

struct Roots {
    age: AgeRoot,
    wrong_age: AgeRoot,
    passphrase: PassphraseRoot,
    wrong_passphrase: PassphraseRoot,
}

impl Roots {
    fn get(&self, name: &str) -> &dyn Root {
        match name {
            "age" => &self.age,
            "wrong_age" => &self.wrong_age,
            "passphrase" => &self.passphrase,
            "wrong_passphrase" => &self.wrong_passphrase,
            _ => unreachable!("no root {name}"),
        }
    }
}

const PASSPHRASE: &str = "pörtable – correct horse";
const WORK_FACTOR: u8 = 10;

fn main() -> BoxResult<()> {
    let roots = Roots {
        age: AgeRoot::generate(),
        wrong_age: AgeRoot::generate(),
        passphrase: PassphraseRoot::with_work_factor(PASSPHRASE, WORK_FACTOR)?,
        wrong_passphrase: PassphraseRoot::with_work_factor("wrong horse", WORK_FACTOR)?,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keychain.age");
    let kc = Keychain::open(&path, &roots.age)?;
    let mut decrypt: Vec<Value> = Vec::new();
    let mut invalid: Vec<Value> = Vec::new();

    let mut case = |comment: &str, root: &str, kc: &Keychain, pt: &[u8], aad: &[u8]| {
        let blob = kc.encrypt_portable(pt, aad).expect("encrypt_portable");
        let (wrapped, envelope) = split(&blob);
        let record = roots.get(root).unprotect(wrapped).expect("unwrap");
        decrypt.push(json!({
            "comment": comment,
            "root": root,
            "key_id": envelope_key_id(envelope),
            "plaintext_hex": hex(pt),
            "aad_hex": hex(aad),
            "blob_hex": hex(&blob),
            "record_hex": hex(&record),
        }));
        blob
    };

    let typical = case("typical", "age", &kc, b"the document", b"doc-17");
    case("empty plaintext and aad", "age", &kc, b"", b"");
    case("1000 bytes", "age", &kc, &pattern(1000, 7), b"bulk");
    case(
        "non-ASCII aad",
        "age",
        &kc,
        b"payload",
        "東京-🔑".as_bytes(),
    );
    // Another handle on the same keychain wraps the same KEK again: other
    // wrapped bytes (age is randomized), the same key_id and key.
    let kc2 = Keychain::open(&path, &roots.age)?;
    let rewrapped = case(
        "the same KEK wrapped by another handle",
        "age",
        &kc2,
        b"from the second handle",
        b"doc-17",
    );
    kc.rotate()?;
    let rotated = case(
        "after a rotation: the second KEK",
        "age",
        &kc,
        b"under the new primary",
        b"doc-18",
    );
    let pdir = tempfile::tempdir()?;
    let pkc = Keychain::open(pdir.path().join("keychain.age"), &roots.passphrase)?;
    let pass_blob = case(
        "passphrase root",
        "passphrase",
        &pkc,
        b"under a passphrase",
        b"p",
    );

    let (w, e) = split(&typical);
    let (w_rot, e_rot) = split(&rotated);
    let (w_re, _) = split(&rewrapped);
    assert_eq!(envelope_key_id(split(&rewrapped).1), envelope_key_id(e));
    assert_ne!(w_re, w);
    let mut bad = |comment: &str, root: &str, blob: &[u8], aad: &[u8], kind: ErrorKind| {
        invalid.push(json!({
            "comment": comment,
            "root": root,
            "blob_hex": hex(blob),
            "aad_hex": hex(aad),
            "error": kind.name(),
            "error_code": kind.code(),
        }));
    };
    let f = ErrorKind::Format;
    let a = ErrorKind::Authentication;
    bad(
        "shorter than the header",
        "age",
        &typical[..7],
        b"doc-17",
        f,
    );
    bad("wrong magic", "age", &flip(&typical, 2), b"doc-17", f);
    bad(
        "a plain encrypt() envelope, no portable header",
        "age",
        e,
        b"doc-17",
        f,
    );
    let mut v2 = typical.clone();
    v2[3] = 2;
    bad("version 2", "age", &v2, b"doc-17", ErrorKind::Unsupported);
    let mut zero = b"KSP\x01\x00\x00\x00\x00".to_vec();
    zero.extend_from_slice(e);
    bad("wrapped KEK length 0", "age", &zero, b"doc-17", f);
    let mut huge = typical.clone();
    huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    bad("wrapped KEK length 2^32-1", "age", &huge, b"doc-17", f);
    let mut past = typical.clone();
    past[4..8].copy_from_slice(&((typical.len() - 8 + 1) as u32).to_be_bytes());
    bad(
        "wrapped KEK length past the end",
        "age",
        &past,
        b"doc-17",
        f,
    );
    let mut over = typical.clone();
    over[4..8].copy_from_slice(&((64 * 1024 + 1) as u32).to_be_bytes());
    bad(
        "wrapped KEK length 65537 (over the cap)",
        "age",
        &over,
        b"doc-17",
        f,
    );
    bad(
        "envelope length field too large",
        "age",
        &join(w, &flip(e, 1)),
        b"doc-17",
        f,
    );
    bad(
        "envelope enc_dek prefix byte not 0x01",
        "age",
        &join(w, &flip(e, 4)),
        b"doc-17",
        f,
    );
    bad(
        "envelope cut inside its payload",
        "age",
        &join(w, &e[..4 + 67 + 27]),
        b"doc-17",
        f,
    );
    bad(
        "wrapped KEK is not an age file",
        "age",
        &join(b"not an age file", e),
        b"doc-17",
        f,
    );
    bad(
        "wrapped KEK tampered (last byte of its age payload)",
        "age",
        &join(&flip(w, w.len() - 1), e),
        b"doc-17",
        a,
    );
    bad(
        "wrapped KEK for another age identity",
        "wrong_age",
        &typical,
        b"doc-17",
        a,
    );
    bad(
        "wrapped KEK of another key swapped in",
        "age",
        &join(w_rot, e),
        b"doc-17",
        a,
    );
    bad(
        "envelope of another key under this wrapped KEK",
        "age",
        &join(w, e_rot),
        b"doc-18",
        a,
    );
    let saved = kc.save(&roots.age)?;
    bad(
        "wrapped part is a saved keychain (root-protected JSON, not a KEK record)",
        "age",
        &join(&saved, e),
        b"doc-17",
        f,
    );
    let mut other_label = b"keystrata/portable-kek/v2".to_vec();
    other_label.extend_from_slice(&e[5..9]);
    other_label.extend_from_slice(&[0x42; 32]);
    bad(
        "record with another label",
        "age",
        &join(&roots.age.protect(&other_label)?, e),
        b"doc-17",
        f,
    );
    let mut short = KEK_RECORD_LABEL.to_vec();
    short.extend_from_slice(&e[5..9]);
    short.extend_from_slice(&[0x42; 31]);
    bad(
        "record one byte short",
        "age",
        &join(&roots.age.protect(&short)?, e),
        b"doc-17",
        f,
    );
    let mut forged = KEK_RECORD_LABEL.to_vec();
    forged.extend_from_slice(&e[5..9]);
    forged.extend_from_slice(&[0x42; 32]);
    bad(
        "record naming the envelope's key_id with another key (forged with the public recipient)",
        "age",
        &join(&roots.age.protect(&forged)?, e),
        b"doc-17",
        a,
    );
    bad("wrong aad", "age", &typical, b"doc-18", a);
    bad("missing aad", "age", &typical, b"", a);
    bad(
        "envelope key_id changed",
        "age",
        &join(w, &flip(e, 8)),
        b"doc-17",
        a,
    );
    bad(
        "envelope enc_dek tampered",
        "age",
        &join(w, &flip(e, 40)),
        b"doc-17",
        a,
    );
    bad(
        "payload tag tampered",
        "age",
        &flip(&typical, typical.len() - 1),
        b"doc-17",
        a,
    );
    bad(
        "last byte removed",
        "age",
        &typical[..typical.len() - 1],
        b"doc-17",
        a,
    );
    bad(
        "passphrase-wrapped KEK given to an age identity",
        "age",
        &pass_blob,
        b"p",
        a,
    );
    bad("wrong passphrase", "wrong_passphrase", &pass_blob, b"p", a);

    // Check everything before printing.
    let unhex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    };
    let decryptor = |name: &str| -> PortableDecryptor {
        let root: Arc<dyn Root> = match name {
            "age" => Arc::new(roots.age.clone()),
            "wrong_age" => Arc::new(roots.wrong_age.clone()),
            "passphrase" => Arc::new(roots.passphrase.clone()),
            _ => Arc::new(roots.wrong_passphrase.clone()),
        };
        PortableDecryptor::new(root)
    };
    for c in &decrypt {
        let s = |k: &str| c[k].as_str().expect("field").to_owned();
        let (blob, aad) = (unhex(&s("blob_hex")), unhex(&s("aad_hex")));
        let want = unhex(&s("plaintext_hex"));
        assert_eq!(decryptor(&s("root")).decrypt(&blob, &aad)?, want);
        assert_eq!(decrypt_portable(&blob, &aad, roots.get(&s("root")))?, want);
    }
    for c in &invalid {
        let s = |k: &str| c[k].as_str().expect("field").to_owned();
        let (blob, aad) = (unhex(&s("blob_hex")), unhex(&s("aad_hex")));
        let got = decryptor(&s("root")).decrypt(&blob, &aad).map(|_| ());
        let got2 = decrypt_portable(&blob, &aad, roots.get(&s("root"))).map(|_| ());
        for g in [got, got2] {
            let kind = g.expect_err(&s("comment")).kind();
            assert_eq!(kind.name(), s("error"), "{}", s("comment"));
        }
    }

    let out = json!({
        "description": "Portable ciphertexts (docs/FORMAT.md §10): decrypt vectors under fixed roots, and invalid blobs that must fail with the named error kind. age encryption is randomized, so there are no encrypt vectors.",
        "generator": "core/examples/make_portable_vectors.rs",
        "format_version": VERSION,
        "roots": {
            "age": {"age_identity": roots.age.insecure_identity_strings()[0].expose_secret(), "age_recipient": roots.age.recipients()[0]},
            "wrong_age": {"age_identity": roots.wrong_age.insecure_identity_strings()[0].expose_secret(), "age_recipient": roots.wrong_age.recipients()[0]},
            "passphrase": {"passphrase": PASSPHRASE, "work_factor": WORK_FACTOR},
            "wrong_passphrase": {"passphrase": "wrong horse", "work_factor": WORK_FACTOR},
        },
        "decrypt": decrypt,
        "invalid": invalid,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
