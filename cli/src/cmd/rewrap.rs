//! `keystrata rewrap`: ciphertexts moved under the current encryption
//! primary without their plaintext leaving the process, and `--check`:
//! which key each ciphertext names (read from the wire, no key needed).

use std::os::unix::fs::PermissionsExt;

use keystrata::{encrypted_key_id, sealed_key_id, Envelope, ErrorKind, KeyInfo, Keychain};
use serde_json::{json, Map, Value};

use crate::cli::{Global, RewrapArgs, RewrapKind};
use crate::fail::{err, io, usage, Failure, Outcome, EXIT_NOT_CURRENT};
use crate::io::{
    b64, check_terminal, hex, input_name, read_input, unb64, write_output, Dest, Mode,
};
use crate::open;
use crate::out::{note, print_json, print_line};

/// `rewrap`.
pub fn rewrap(g: &Global, a: &RewrapArgs) -> Outcome {
    if a.output.is_some() && a.files.len() != 1 {
        return Err(usage(
            "-o takes one input file; without it, files are rewritten in place",
        ));
    }
    if a.base64 && a.kind == RewrapKind::Envelope {
        return Err(usage(
            "--base64 is for sealed and encrypted files; envelopes are JSON",
        ));
    }
    if a.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(usage("stdin can be read once"));
    }
    let kc = open::keychain(g)?;
    if a.check {
        return check(g, a, &kc);
    }
    let primary = kc.primary()?;
    let mut report = Vec::new();
    for file in &a.files {
        let dest = match (&a.output, file.as_str()) {
            (Some(o), _) => Dest::parse(o),
            (None, "-") => Dest::Stdout,
            (None, path) => Dest::File(
                std::fs::canonicalize(path).map_err(|e| io(format!("reading {path}"), e))?,
            ),
        };
        if a.kind != RewrapKind::Envelope && !a.base64 && !g.json {
            check_terminal(&dest, a.force, "binary ciphertext", "")?;
        }
        if g.json && dest == Dest::Stdout {
            return Err(usage("--json needs -o FILE (or files rewritten in place)"));
        }
        let bytes = read(a, file, "rewrap")?;
        let parsed = Parsed::read(a.kind, &bytes, file)?;
        let in_place = a.output.is_none() && file != "-";
        if in_place && parsed.key_id == primary.key_id {
            report.push(json!({
                "file": file,
                "output": Value::Null,
                "from_key_id": parsed.key_id,
                "to_key_id": parsed.key_id,
                "rewrapped": false,
            }));
            note(
                g,
                &format!("{file}: already under the primary, key {}", parsed.key_id),
            );
            continue;
        }
        let out = match &parsed.envelope {
            None if a.kind == RewrapKind::Sealed => kc.rewrap_sealed(&bytes, a.aad.as_bytes())?,
            None => kc.rewrap_encrypted(&bytes)?,
            Some((env, form)) => {
                let new = kc.rewrap_envelope(env, a.context.as_bytes())?;
                form.write(&new)
            }
        };
        let to = Parsed::read(a.kind, &out, file)?.key_id;
        let mode = match &dest {
            Dest::File(p) if in_place => std::fs::metadata(p)
                .map(|m| Mode::Exactly(m.permissions().mode()))
                .map_err(|e| io(format!("reading {}", p.display()), e))?,
            _ => Mode::Public,
        };
        let out = if a.base64 {
            format!("{}\n", b64(&out)).into_bytes()
        } else {
            out
        };
        write_output(&dest, &out, mode)?;
        note(
            g,
            &format!(
                "{}: key {} -> key {to}{}",
                input_name(file),
                parsed.key_id,
                if in_place {
                    " (rewritten in place)"
                } else {
                    ""
                }
            ),
        );
        report.push(json!({
            "file": if file == "-" { Value::Null } else { json!(file) },
            "output": if in_place { json!(file) } else { dest.json() },
            "from_key_id": parsed.key_id,
            "to_key_id": to,
            "rewrapped": true,
        }));
    }
    if g.json {
        print_json(&json!({ "primary_key_id": primary.key_id, "files": report }))?;
    }
    Ok(0)
}

/// A file's ciphertext (decoded from base64 with `--base64`).
fn read(a: &RewrapArgs, file: &str, what: &str) -> Result<Vec<u8>, Failure> {
    let raw = read_input(file, None, what)?;
    if a.base64 {
        unb64(&raw, input_name(file))
    } else {
        Ok(raw)
    }
}

/// `rewrap --check`: the key of each file, and whether it is the primary.
fn check(g: &Global, a: &RewrapArgs, kc: &Keychain) -> Outcome {
    let primary = kc.primary()?;
    let keys = kc.keys()?;
    let mut all_current = true;
    let mut rows = Vec::new();
    for file in &a.files {
        let bytes = read(a, file, "rewrap --check")?;
        let parsed = Parsed::read(a.kind, &bytes, file)?;
        let key: Option<&KeyInfo> = keys.iter().find(|k| k.key_id == parsed.key_id);
        let current = parsed.key_id == primary.key_id;
        all_current &= current;
        rows.push(json!({
            "file": if file == "-" { Value::Null } else { json!(file) },
            "key_id": parsed.key_id,
            "key_version": key.map(|k| k.version),
            "status": key.map(|k| k.status.name()),
            "current": current,
        }));
        if !g.json {
            let what = match key {
                Some(k) => format!(
                    "key {} (version {}, {})",
                    k.key_id,
                    k.version,
                    k.status.name()
                ),
                None => format!("key {} (not in this keychain)", parsed.key_id),
            };
            let verdict = if current { "current" } else { "not current" };
            print_line(&format!("{}\t{what}\t{verdict}", input_name(file)))?;
        }
    }
    if g.json {
        print_json(&json!({
            "primary_key_id": primary.key_id,
            "all_current": all_current,
            "files": rows,
        }))?;
    }
    Ok(if all_current { 0 } else { EXIT_NOT_CURRENT })
}

/// A ciphertext file read for a rewrap: the key it names and, for an
/// envelope, the envelope and the JSON it came in.
struct Parsed {
    key_id: u32,
    envelope: Option<(Envelope, EnvelopeFile)>,
}

impl Parsed {
    fn read(kind: RewrapKind, bytes: &[u8], name: &str) -> Result<Parsed, Failure> {
        let named =
            |e: keystrata::Error| err(e.kind(), format!("{}: {}", input_name(name), e.message()));
        match kind {
            RewrapKind::Sealed => Ok(Parsed {
                key_id: sealed_key_id(bytes).map_err(named)?,
                envelope: None,
            }),
            RewrapKind::Encrypted => Ok(Parsed {
                key_id: encrypted_key_id(bytes).map_err(named)?,
                envelope: None,
            }),
            RewrapKind::Envelope => {
                let (env, form) = EnvelopeFile::read(bytes, name)?;
                if env.provider != keystrata::KEYCHAIN_PROVIDER {
                    return Err(err(
                        ErrorKind::Unsupported,
                        format!(
                            "{}: an envelope of provider {:?}, not of a keychain ({:?})",
                            input_name(name),
                            env.provider,
                            keystrata::KEYCHAIN_PROVIDER
                        ),
                    ));
                }
                let key_id = env.key_id.parse::<u32>().map_err(|_| {
                    err(
                        ErrorKind::Format,
                        format!(
                            "{}: the envelope's key_id is not a key ID",
                            input_name(name)
                        ),
                    )
                })?;
                Ok(Parsed {
                    key_id,
                    envelope: Some((env, form)),
                })
            }
        }
    }
}

/// The JSON an envelope was read from, to write the new one in the same
/// shape (other entries kept as they were).
enum EnvelopeFile {
    /// The object-metadata map (`x-amz-meta-encryption-*` entries), as an
    /// S3 object's metadata holds it.
    Metadata(Map<String, Value>),
    /// `{key_id, key_version, provider, ciphertext}`, the ciphertext in
    /// base64 (`ciphertext`) or hex (`ciphertext_hex`).
    Fields(Map<String, Value>, bool),
}

impl EnvelopeFile {
    fn read(bytes: &[u8], name: &str) -> Result<(Envelope, EnvelopeFile), Failure> {
        let name = input_name(name);
        let bad = |why: &str| err(ErrorKind::Format, format!("{name}: {why}"));
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| bad(&format!("not a JSON envelope ({e})")))?;
        let Value::Object(map) = v else {
            return Err(bad("not a JSON object"));
        };
        if map.contains_key(keystrata::wrapped_key::META_WRAPPED_KEY) {
            let strings = map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.as_str(), s)));
            let env = Envelope::from_metadata(strings)
                .map_err(|e| err(e.kind(), format!("{name}: {}", e.message())))?;
            return Ok((env, EnvelopeFile::Metadata(map)));
        }
        let key_id = match map.get("key_id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(bad("no key_id (or x-amz-meta-encryption-wrapped-key)")),
        };
        let key_version = map
            .get("key_version")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| bad("no key_version"))?;
        let provider = map
            .get("provider")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no provider"))?
            .to_owned();
        let (ciphertext, is_hex) = match (map.get("ciphertext"), map.get("ciphertext_hex")) {
            (Some(Value::String(s)), _) => (unb64(s.as_bytes(), name)?, false),
            (_, Some(Value::String(s))) => (
                unhex(s).ok_or_else(|| bad("ciphertext_hex is not hex"))?,
                true,
            ),
            _ => return Err(bad("no ciphertext")),
        };
        let env = Envelope {
            key_id,
            key_version,
            provider,
            ciphertext,
        };
        Ok((env, EnvelopeFile::Fields(map, is_hex)))
    }

    /// The new envelope in this file's shape, pretty JSON and a newline.
    fn write(&self, env: &Envelope) -> Vec<u8> {
        let map = match self {
            EnvelopeFile::Metadata(m) => {
                let mut m = m.clone();
                for (k, v) in env.to_metadata() {
                    m.insert(k, Value::String(v));
                }
                m
            }
            EnvelopeFile::Fields(m, is_hex) => {
                let mut m = m.clone();
                m.insert("key_id".into(), json!(env.key_id));
                m.insert("key_version".into(), json!(env.key_version));
                m.insert("provider".into(), json!(env.provider));
                if *is_hex {
                    m.insert("ciphertext_hex".into(), json!(hex(&env.ciphertext)));
                } else {
                    m.insert("ciphertext".into(), json!(b64(&env.ciphertext)));
                }
                m
            }
        };
        let mut text = serde_json::to_string_pretty(&Value::Object(map)).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
