//! What commands print: JSON documents on stdout with `--json`, short
//! human lines otherwise, and notes on stderr.
//!
//! The JSON field names are part of the interface (docs/CLI.md lists
//! them): fields are added, never renamed or removed.

use keystrata::{KeyInfo, Policy};
use serde_json::{json, Value};

use crate::cli::Global;
use crate::fail::{io, Failure};

/// Prints one JSON document on stdout.
pub fn print_json(v: &Value) -> Result<(), Failure> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".to_owned());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| io("writing stdout", e))
}

/// Prints a line on stdout.
pub fn print_line(line: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| io("writing stdout", e))
}

/// Prints a note on stderr, unless `--quiet` or `--json`.
pub fn note(g: &Global, line: &str) {
    if !g.quiet && !g.json {
        eprintln!("{line}");
    }
}

/// A key's metadata (never material).
pub fn key_json(k: &KeyInfo) -> Value {
    json!({
        "key_id": k.key_id,
        "version": k.version,
        "purpose": k.purpose.name(),
        "status": k.status.name(),
        "primary": k.primary,
        "created_at": k.created_at,
        "usage": k.usage,
        "algorithm": k.algorithm.map(|a| a.name()),
        "stream_format": k.stream_format.map(|f| f.name()),
    })
}

/// A policy.
pub fn policy_json(p: &Policy) -> Value {
    json!({
        "max_encryptions_per_key": p.max_encryptions_per_key,
        "max_key_age_secs": p.max_key_age_secs,
        "usage_block": p.usage_block,
    })
}

/// One line about a key, for humans.
pub fn key_line(k: &KeyInfo) -> String {
    let mut s = format!(
        "key {} ({} version {}, {}{})",
        k.key_id,
        k.purpose.name(),
        k.version,
        k.status.name(),
        if k.primary { ", primary" } else { "" }
    );
    if let Some(a) = k.algorithm {
        s.push_str(&format!(", {}", a.name()));
    }
    if let Some(f) = k.stream_format {
        s.push_str(&format!(", {}", f.name()));
    }
    s
}

/// The key table of `keychain show`.
pub fn key_table(keys: &[KeyInfo]) -> String {
    let header = [
        "KEY_ID",
        "VERSION",
        "PURPOSE",
        "STATUS",
        "PRIMARY",
        "ALGORITHM",
        "USAGE",
        "CREATED",
    ];
    let rows: Vec<[String; 8]> = keys
        .iter()
        .map(|k| {
            [
                k.key_id.to_string(),
                k.version.to_string(),
                k.purpose.name().to_owned(),
                k.status.name().to_owned(),
                if k.primary { "yes" } else { "" }.to_owned(),
                k.algorithm
                    .map(|a| a.name())
                    .or(k.stream_format.map(|f| f.name()))
                    .unwrap_or("")
                    .to_owned(),
                k.usage.to_string(),
                crate::io::utc(k.created_at),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    let mut out = line(&header);
    for r in &rows {
        out.push('\n');
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        out.push_str(&line(&cells));
    }
    out
}

/// A policy, for humans.
pub fn policy_line(p: &Policy) -> String {
    format!(
        "at most {} encryptions per key, {}, usage block {}",
        p.max_encryptions_per_key,
        match p.max_key_age_secs {
            Some(s) => format!("at most {s} s old"),
            None => "no maximum age".to_owned(),
        },
        p.usage_block
    )
}
