//! `keystrata derive`: a stable key for (origin, instance, epoch), by
//! HKDF-SHA256 under the derivation primary. Prints secret material.

use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::{DeriveArgs, Global};
use crate::fail::Outcome;
use crate::io::{check_terminal, hex, write_output, Dest, Mode};
use crate::open;
use crate::out::print_json;

/// `derive`.
pub fn derive(g: &Global, a: &DeriveArgs) -> Outcome {
    let dest = Dest::parse(&a.output);
    check_terminal(&dest, a.force, "a secret key", "")?;
    let kc = open::keychain(g)?;
    // The info of derive_origin_key (docs/FORMAT.md), so the first 32
    // bytes of any length are derive_origin_key's key.
    let info = keystrata::derive::origin_info(a.origin.as_bytes(), a.instance.as_bytes(), a.epoch)?;
    let okm = match a.key_id {
        Some(id) => kc.derive_with(id, &info, a.length)?,
        None => kc.derive(&info, a.length)?,
    };
    let key_id = match a.key_id {
        Some(id) => id,
        None => kc.primary_for(keystrata::Purpose::Derive)?.key_id,
    };
    let hex_text = Zeroizing::new(hex(okm.expose_secret()));
    if g.json && dest == Dest::Stdout {
        print_json(&json!({
            "key_id": key_id,
            "origin": a.origin,
            "instance": a.instance,
            "epoch": a.epoch,
            "length": a.length,
            "key": hex_text.as_str(),
        }))?;
        return Ok(0);
    }
    if a.raw {
        write_output(&dest, okm.expose_secret(), Mode::Secret)?;
    } else {
        let line = Zeroizing::new(format!("{}\n", hex_text.as_str()));
        write_output(&dest, line.as_bytes(), Mode::Secret)?;
    }
    if g.json {
        print_json(&json!({
            "key_id": key_id,
            "origin": a.origin,
            "instance": a.instance,
            "epoch": a.epoch,
            "length": a.length,
            "output": dest.json(),
        }))?;
    }
    Ok(0)
}
