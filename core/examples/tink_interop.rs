//! Interop with Google Tink, both directions (driven by `tests/tink/interop.sh`).
//!
//! ```sh
//! cargo run -p keystrata --example tink_interop -- emit ks.json
//! .venv/bin/python tests/tink/check_keystrata_output.py ks.json tink.json
//! cargo run -p keystrata --example tink_interop -- verify tink.json
//! ```
//!
//! `emit OUT.json` generates a keychain, seals and envelope-encrypts several
//! messages (empty, short, 100 KiB; empty, text and binary aad) under the
//! first key, rotates once, does the same under the new primary, and writes
//! `{"keyset_json": <insecure_export_tink_cleartext>, "aead": [...], "envelope": [...]}`
//! with entries `{plaintext_hex, aad_hex, ciphertext_hex}`.
//!
//! `verify IN.json` imports the file's `keyset_json`, unseals every `aead`
//! entry and decrypts every `envelope` entry, compares plaintexts, and
//! prints `tink-to-keystrata: N passed, M failed`. Exit status: 0 when all
//! passed, 1 on any failure, 2 on unusable input or usage.

use std::process::ExitCode;

use keystrata::Keychain;
use serde_json::{json, Value};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("odd-length hex".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("bad hex at {i}"))
        })
        .collect()
}

fn messages(tag: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let big: Vec<u8> = (0..100 * 1024).map(|i: u32| (i % 251) as u8).collect();
    vec![
        (
            format!("hello tink, from keystrata ({tag})").into_bytes(),
            format!("aad:{tag}").into_bytes(),
        ),
        (Vec::new(), b"aad for an empty message".to_vec()),
        (b"no associated data".to_vec(), Vec::new()),
        (Vec::new(), Vec::new()),
        (big, format!("100 KiB {tag}").into_bytes()),
        (vec![0u8; 1], vec![0xff, 0x00, 0x80, 0x7f]),
    ]
}

fn emit(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let kc = Keychain::generate()?;
    let mut aead = Vec::new();
    let mut envelope = Vec::new();
    let mut run = |kc: &Keychain, tag: &str| -> Result<(), Box<dyn std::error::Error>> {
        for (pt, aad) in messages(tag) {
            let sealed = kc.seal(&pt, &aad)?;
            aead.push(json!({"plaintext_hex": hex(&pt), "aad_hex": hex(&aad), "ciphertext_hex": hex(&sealed)}));
            let blob = kc.encrypt(&pt, &aad)?;
            envelope.push(json!({"plaintext_hex": hex(&pt), "aad_hex": hex(&aad), "ciphertext_hex": hex(&blob)}));
        }
        Ok(())
    };
    run(&kc, "key 1")?;
    kc.rotate()?;
    run(&kc, "key 2")?;
    let keyset = kc.insecure_export_tink_cleartext()?;
    let doc = json!({
        "keyset_json": keyset.as_str(),
        "aead": aead,
        "envelope": envelope,
    });
    let (na, ne) = (aead_len(&doc), env_len(&doc));
    std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!("wrote {na} aead + {ne} envelope keystrata ciphertexts to {path}");
    Ok(())
}

fn aead_len(doc: &Value) -> usize {
    doc["aead"].as_array().map_or(0, Vec::len)
}

fn env_len(doc: &Value) -> usize {
    doc["envelope"].as_array().map_or(0, Vec::len)
}

fn verify(path: &str) -> ExitCode {
    let doc: Value = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tink-to-keystrata: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let kc = match doc["keyset_json"]
        .as_str()
        .ok_or_else(|| "no keyset_json string".to_owned())
        .and_then(|k| Keychain::import_tink_cleartext(k).map_err(|e| e.to_string()))
    {
        Ok(kc) => kc,
        Err(e) => {
            eprintln!("tink-to-keystrata: cannot import the keyset: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for (section, envelope) in [("aead", false), ("envelope", true)] {
        for (i, c) in doc[section].as_array().into_iter().flatten().enumerate() {
            let field = |f: &str| unhex(c[f].as_str().unwrap_or("?"));
            let r = (|| -> Result<(), String> {
                let (ct, aad, pt) = (
                    field("ciphertext_hex")?,
                    field("aad_hex")?,
                    field("plaintext_hex")?,
                );
                let got = if envelope {
                    kc.decrypt(&ct, &aad)
                } else {
                    kc.unseal(&ct, &aad)
                }
                .map_err(|e| e.to_string())?;
                if got == pt {
                    Ok(())
                } else {
                    Err(format!(
                        "plaintext mismatch ({} bytes, want {})",
                        got.len(),
                        pt.len()
                    ))
                }
            })();
            match r {
                Ok(()) => passed += 1,
                Err(e) => {
                    failed += 1;
                    println!("FAIL {section}[{i}]: {e}");
                }
            }
        }
    }
    if passed + failed == 0 {
        eprintln!("tink-to-keystrata: no cases in {path}");
        failed = 1;
    }
    println!("tink-to-keystrata: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, path] if mode == "emit" => match emit(path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tink_interop emit: {e}");
                ExitCode::from(1)
            }
        },
        [mode, path] if mode == "verify" => verify(path),
        _ => {
            eprintln!("usage: tink_interop emit OUT.json | verify TINK_OUT.json");
            ExitCode::from(2)
        }
    }
}
