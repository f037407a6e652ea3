//! `keystrata seal` and `keystrata unseal`: small secrets in Tink's AEAD
//! format, under the encryption primary.

use keystrata::seal::{sealed_key_id, SEAL_OVERHEAD};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::{Global, SealArgs, UnsealArgs};
use crate::fail::Outcome;
use crate::io::{b64, check_terminal, read_input, unb64, write_output, Dest, Mode};
use crate::open;
use crate::out::{note, print_json};

/// The most `seal` takes: a secret, not a file (`encrypt` streams files of
/// any size).
pub const MAX_SEAL_INPUT: usize = 64 * 1024;

/// `seal`.
pub fn seal(g: &Global, a: &SealArgs) -> Outcome {
    let dest = Dest::parse(&a.output);
    if !a.base64 && !g.json {
        check_terminal(&dest, a.force, "binary ciphertext", ", --base64")?;
    }
    let plaintext = Zeroizing::new(read_input(
        &a.input,
        Some(MAX_SEAL_INPUT),
        "seal (use encrypt for larger inputs)",
    )?);
    let kc = open::keychain(g)?;
    let ct = kc.seal(&plaintext, a.aad.aad.as_bytes())?;
    let key_id = sealed_key_id(&ct)?;
    let text = a.base64.then(|| format!("{}\n", b64(&ct)));
    let bytes = text.as_deref().map(str::as_bytes).unwrap_or(&ct);
    if g.json && dest == Dest::Stdout {
        print_json(&json!({ "key_id": key_id, "bytes": ct.len(), "ciphertext": b64(&ct) }))?;
        return Ok(0);
    }
    write_output(&dest, bytes, Mode::Public)?;
    if g.json {
        print_json(&json!({ "key_id": key_id, "bytes": ct.len(), "output": dest.json() }))?;
    } else if dest != Dest::Stdout {
        note(
            g,
            &format!(
                "sealed {} bytes under key {key_id} into {}",
                plaintext.len(),
                dest.name()
            ),
        );
    }
    Ok(0)
}

/// `unseal`.
pub fn unseal(g: &Global, a: &UnsealArgs) -> Outcome {
    let dest = Dest::parse(&a.output);
    // Base64 text of the largest ciphertext, with line breaks.
    let limit = (MAX_SEAL_INPUT + SEAL_OVERHEAD) * 2;
    let raw = read_input(&a.input, Some(limit), "unseal")?;
    let ct = if a.base64 {
        unb64(&raw, crate::io::input_name(&a.input))?
    } else {
        raw
    };
    // A malformed ciphertext is refused before the root is used.
    let key_id = sealed_key_id(&ct)?;
    let kc = open::keychain(g)?;
    let plaintext = Zeroizing::new(kc.unseal(&ct, a.aad.aad.as_bytes())?);
    if g.json && dest == Dest::Stdout {
        print_json(
            &json!({ "key_id": key_id, "bytes": plaintext.len(), "plaintext": b64(&plaintext) }),
        )?;
        return Ok(0);
    }
    write_output(&dest, &plaintext, Mode::Secret)?;
    if g.json {
        print_json(&json!({ "key_id": key_id, "bytes": plaintext.len(), "output": dest.json() }))?;
    }
    Ok(0)
}
