//! `keystrata sign`, `verify` and `pubkey`: the keychain's signing keys,
//! minisign-compatible signatures, public key files and trust files.

use keystrata::sign::minisign;
use keystrata::sign::{encode_public_key, Algorithm, TrustedKeys};
use keystrata::{ErrorKind, PublicKeyFormat, Purpose, SignatureFormat};
use serde_json::json;

use crate::cli::{Global, PubkeyArgs, PubkeyFormatArg, SigFormatArg, SignArgs, VerifyArgs};
use crate::cmd::keychain::algorithm;
use crate::fail::{err, usage, Failure, Outcome};
use crate::io::{b64, check_terminal, input_name, read_input, unb64, write_output, Dest, Mode};
use crate::open;
use crate::out::{note, print_json, print_line};

/// The largest signature or public key file read.
const MAX_SIG_FILE: usize = minisign::MAX_SIGNATURE_TEXT_LEN;

/// `sign`.
pub fn sign(g: &Global, a: &SignArgs) -> Outcome {
    let dest = match (&a.output, a.minisign, a.input.as_str()) {
        (Some(o), _, _) => Dest::parse(o),
        (None, true, "-") => Dest::Stdout,
        (None, true, file) => Dest::parse(&format!("{file}.minisig")),
        (None, false, _) => Dest::Stdout,
    };
    if !a.minisign && !a.base64 && !g.json {
        check_terminal(&dest, a.force, "a binary signature", ", --base64")?;
    }
    let data = read_input(&a.input, None, "sign")?;
    let kc = open::keychain(g)?;
    if a.minisign {
        let comment = match &a.trusted_comment {
            Some(c) => c.clone(),
            None => default_trusted_comment(&a.input),
        };
        let text = kc.sign_minisign(&data, &comment).map_err(hint)?;
        let key = kc.primary_for(Purpose::Sign)?;
        if g.json && dest == Dest::Stdout {
            print_json(&json!({
                "key_id": key.key_id,
                "key_version": key.version,
                "algorithm": "ed25519",
                "format": "minisign",
                "signature": text,
            }))?;
            return Ok(0);
        }
        write_output(&dest, text.as_bytes(), Mode::Public)?;
        if g.json {
            print_json(&json!({
                "key_id": key.key_id,
                "key_version": key.version,
                "algorithm": "ed25519",
                "format": "minisign",
                "output": dest.json(),
            }))?;
        } else if dest != Dest::Stdout {
            note(
                g,
                &format!("signed with key {} into {}", key.key_id, dest.name()),
            );
        }
        return Ok(0);
    }
    let format = match a.format {
        SigFormatArg::Der => SignatureFormat::Der,
        SigFormatArg::Raw => SignatureFormat::Raw,
    };
    let sig = kc.sign_as(&data, format).map_err(hint)?;
    // Ed25519 signatures have one form, whatever was asked.
    let format_name = if sig.algorithm.is_ecdsa() {
        format.name()
    } else {
        "raw"
    };
    let described = json!({
        "key_id": sig.key_id,
        "key_version": sig.key_version,
        "algorithm": sig.algorithm.name(),
        "format": format_name,
    });
    if g.json && dest == Dest::Stdout {
        let mut v = described;
        v["signature"] = json!(b64(&sig.bytes));
        print_json(&v)?;
        return Ok(0);
    }
    let text = a.base64.then(|| format!("{}\n", b64(&sig.bytes)));
    let bytes = text.as_deref().map(str::as_bytes).unwrap_or(&sig.bytes);
    write_output(&dest, bytes, Mode::Public)?;
    if g.json {
        let mut v = described;
        v["output"] = dest.json();
        print_json(&v)?;
    } else if dest != Dest::Stdout {
        note(
            g,
            &format!("signed with key {} into {}", sig.key_id, dest.name()),
        );
    }
    Ok(0)
}

/// minisign's own default: `timestamp:<unix seconds>\tfile:<name>\thashed`.
fn default_trusted_comment(input: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = std::path::Path::new(input_name(input))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("timestamp:{now}\tfile:{name}\thashed")
}

/// Adds the command that fixes a keychain without a signing key.
fn hint(e: keystrata::Error) -> Failure {
    if e.kind() == ErrorKind::UnknownKey {
        return err(
            e.kind(),
            format!(
                "{} (add one: keystrata keychain rotate --purpose sign --algorithm ed25519)",
                e.message()
            ),
        );
    }
    e.into()
}

/// What verified a signature.
struct Verified {
    by: serde_json::Value,
    line: String,
    trusted_comment: Option<String>,
}

/// `verify`.
pub fn verify(g: &Global, a: &VerifyArgs) -> Outcome {
    let sig_name = match (&a.signature, a.input.as_str()) {
        (Some(s), _) => s.clone(),
        (None, "-") => {
            return Err(usage(
                "reading the data from stdin: name the signature file with --signature",
            ))
        }
        (None, file) => format!("{file}.minisig"),
    };
    if sig_name == "-" && a.input == "-" {
        return Err(usage(
            "the data and the signature cannot both come from stdin",
        ));
    }
    let raw_sig = read_input(&sig_name, Some(MAX_SIG_FILE), "a signature file")?;
    let sig = if a.base64 {
        unb64(&raw_sig, input_name(&sig_name))?
    } else {
        raw_sig
    };
    let minisig = std::str::from_utf8(&sig)
        .ok()
        .filter(|t| t.trim_start().starts_with("untrusted comment:"));
    let data = read_input(&a.input, None, "verify")?;
    let v = if let Some(path) = &a.trusted_keys {
        let trust = TrustedKeys::load(path)?;
        let t = trust.verify(&data, &sig)?;
        Verified {
            by: json!({
                "name": t.name,
                "kind": t.kind.name(),
                "algorithm": t.algorithm.name(),
            }),
            line: format!(
                "{} key '{}' ({})",
                t.kind.name(),
                t.name,
                t.algorithm.name()
            ),
            trusted_comment: t.trusted_comment,
        }
    } else if let Some(path) = &a.pubkey {
        let pk = read_input(path, Some(MAX_SIG_FILE), "a public key file")?;
        let pk = parse_public_key(&pk, a.algorithm.map(algorithm), path)?;
        verify_with_public_key(&pk, &data, &sig, minisig)?
    } else {
        let kc = open::keychain(g)?;
        let (k, comment) = match (minisig, a.key_id) {
            (Some(text), None) => {
                let k = kc.verify_minisign(&data, text)?;
                let c = minisign::verify(&minisign_pub_of(&kc, k.key_id)?, &data, text)?;
                (k, Some(c.trusted_comment))
            }
            (Some(_), Some(_)) => {
                return Err(usage(
                    "--key-id is for DER/raw signatures; a minisign signature names its key",
                ))
            }
            (None, Some(id)) => (kc.verify_with(id, &data, &sig)?, None),
            (None, None) => (kc.verify(&data, &sig)?, None),
        };
        Verified {
            by: json!({
                "key_id": k.key_id,
                "key_version": k.version,
                "algorithm": k.algorithm.map(|a| a.name()),
            }),
            line: format!(
                "key {} ({})",
                k.key_id,
                k.algorithm.map(|a| a.name()).unwrap_or("?")
            ),
            trusted_comment: comment,
        }
    };
    if g.json {
        let mut out = json!({
            "verified": true,
            "format": if minisig.is_some() { "minisign" } else { "binary" },
            "trusted_comment": v.trusted_comment,
        });
        if let (Some(o), Some(by)) = (out.as_object_mut(), v.by.as_object()) {
            for (k, val) in by {
                o.insert(k.clone(), val.clone());
            }
        }
        print_json(&out)?;
    } else {
        print_line(&format!("signature verified: {}", v.line))?;
        if let Some(c) = v.trusted_comment {
            print_line(&format!("trusted comment: {c}"))?;
        }
    }
    Ok(0)
}

/// The minisign public key of a keychain's Ed25519 key (to read back the
/// trusted comment of a signature the keychain verified).
fn minisign_pub_of(kc: &keystrata::Keychain, key_id: u32) -> Result<minisign::PublicKey, Failure> {
    let text = kc.public_key(key_id, PublicKeyFormat::Minisign)?;
    Ok(minisign::PublicKey::from_text(&String::from_utf8_lossy(
        &text,
    ))?)
}

/// A public key read from a file.
enum PublicKey {
    /// A minisign `.pub` (Ed25519, with its minisign key ID).
    Minisign(minisign::PublicKey),
    /// A bare key of an algorithm.
    Raw(Algorithm, Vec<u8>),
}

/// Reads a public key in any of the encodings `pubkey` writes: PEM or DER
/// SubjectPublicKeyInfo, a raw key (32 bytes: Ed25519; 65 bytes: an ECDSA
/// point, of `hint` or of the curve it lies on), or a minisign `.pub` file
/// (or its base64 line).
fn parse_public_key(
    bytes: &[u8],
    hint: Option<Algorithm>,
    name: &str,
) -> Result<PublicKey, Failure> {
    let bad = || {
        err(
            ErrorKind::Format,
            format!("{name} is not a public key (PEM, DER, raw or minisign)"),
        )
    };
    if let Ok(text) = std::str::from_utf8(bytes) {
        let t = text.trim();
        if t.starts_with("untrusted comment:") || (t.starts_with("RW") && !t.contains('\n')) {
            return Ok(PublicKey::Minisign(minisign::PublicKey::from_text(text)?));
        }
        if t.starts_with("-----BEGIN PUBLIC KEY-----") {
            let body: String = t.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = unb64(body.as_bytes(), name)?;
            return spki(&der, hint).ok_or_else(bad);
        }
    }
    if bytes.first() == Some(&0x30) {
        if let Some(pk) = spki(bytes, hint) {
            return Ok(pk);
        }
    }
    let candidates: Vec<Algorithm> = match (bytes.len(), hint) {
        (32, _) => vec![Algorithm::Ed25519],
        (65, Some(a)) => vec![a],
        (65, None) => vec![Algorithm::EcdsaP256, Algorithm::EcdsaSecp256k1],
        _ => vec![],
    };
    // Encoding a raw key as DER parses it: the point must be on the curve.
    candidates
        .into_iter()
        .find(|a| encode_public_key(*a, bytes, PublicKeyFormat::Der, [0; 8]).is_ok())
        .map(|a| PublicKey::Raw(a, bytes.to_vec()))
        .ok_or_else(bad)
}

/// The key of a DER SubjectPublicKeyInfo: the algorithm whose encoding of
/// the key at its end is exactly `der`.
fn spki(der: &[u8], hint: Option<Algorithm>) -> Option<PublicKey> {
    let algs = match hint {
        Some(a) => vec![a],
        None => Algorithm::ALL.to_vec(),
    };
    algs.into_iter().find_map(|a| {
        let n = if a == Algorithm::Ed25519 { 32 } else { 65 };
        let raw = der.get(der.len().checked_sub(n)?..)?;
        let again = encode_public_key(a, raw, PublicKeyFormat::Der, [0; 8]).ok()?;
        (again == der).then(|| PublicKey::Raw(a, raw.to_vec()))
    })
}

fn verify_with_public_key(
    pk: &PublicKey,
    data: &[u8],
    sig: &[u8],
    minisig: Option<&str>,
) -> Result<Verified, Failure> {
    let (alg, raw): (Algorithm, &[u8]) = match pk {
        PublicKey::Minisign(p) => (Algorithm::Ed25519, &p.key),
        PublicKey::Raw(a, r) => (*a, r),
    };
    if let Some(text) = minisig {
        let mpk = match pk {
            PublicKey::Minisign(p) => *p,
            PublicKey::Raw(Algorithm::Ed25519, r) => {
                let mut key = [0u8; 32];
                key.copy_from_slice(r);
                minisign::PublicKey {
                    key_id: minisign::signature_key_id(text)?,
                    key,
                }
            }
            PublicKey::Raw(a, _) => {
                return Err(err(
                    ErrorKind::InvalidInput,
                    format!("a minisign signature needs an ed25519 key; this one is {a}"),
                ))
            }
        };
        let v = minisign::verify(&mpk, data, text)?;
        return Ok(Verified {
            by: json!({ "algorithm": "ed25519", "minisign_key_id": mpk.key_id_hex() }),
            line: format!("minisign key {}", mpk.key_id_hex()),
            trusted_comment: Some(v.trusted_comment),
        });
    }
    keystrata::sign::verify(alg, raw, data, sig)?;
    Ok(Verified {
        by: json!({ "algorithm": alg.name() }),
        line: format!("{alg} public key"),
        trusted_comment: None,
    })
}

/// `pubkey`.
pub fn pubkey(g: &Global, a: &PubkeyArgs) -> Outcome {
    let dest = Dest::parse(&a.output);
    let format = match a.format {
        PubkeyFormatArg::Pem => PublicKeyFormat::Pem,
        PubkeyFormatArg::Der => PublicKeyFormat::Der,
        PubkeyFormatArg::Raw => PublicKeyFormat::Raw,
        PubkeyFormatArg::Minisign => PublicKeyFormat::Minisign,
    };
    let text = matches!(format, PublicKeyFormat::Pem | PublicKeyFormat::Minisign);
    if !text && !g.json {
        check_terminal(&dest, a.force, "a binary public key", ", --format pem")?;
    }
    let kc = open::keychain(g)?;
    let key = match a.key_id {
        Some(id) => kc
            .keys()?
            .into_iter()
            .find(|k| k.key_id == id)
            .ok_or_else(|| {
                err(
                    ErrorKind::UnknownKey,
                    format!("no key {id} in this keychain"),
                )
            })?,
        None => kc.primary_for(Purpose::Sign).map_err(hint)?,
    };
    let bytes = kc.public_key(key.key_id, format)?;
    let described = json!({
        "key_id": key.key_id,
        "key_version": key.version,
        "algorithm": key.algorithm.map(|a| a.name()),
        "format": format.name(),
    });
    if g.json && dest == Dest::Stdout {
        let mut v = described;
        v["public_key"] = if text {
            json!(String::from_utf8_lossy(&bytes))
        } else {
            json!(b64(&bytes))
        };
        print_json(&v)?;
        return Ok(0);
    }
    write_output(&dest, &bytes, Mode::Public)?;
    if g.json {
        let mut v = described;
        v["output"] = dest.json();
        print_json(&v)?;
    }
    Ok(0)
}
