//! docs/CLI.md's shell blocks, run as written, top to bottom, in an empty
//! directory with the built binary first on PATH.

use std::process::Command;

use crate::common::{peers_required, run, BIN};

const PAGE: &str = include_str!("../../../docs/CLI.md");

/// The ```sh blocks of a Markdown page, in order (```text blocks are
/// shown, not run).
fn sh_blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in page.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```sh") => cur = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(cur.is_none(), "an unclosed ```sh block");
    blocks
}

#[test]
fn every_shell_block_of_the_page_runs() {
    let needed = ["age-keygen", "minisign", "openssl", "python3", "tar", "cmp"];
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    if !missing.is_empty() {
        assert!(
            !peers_required(),
            "docs/CLI.md needs {missing:?} (scripts/setup.sh installs them)"
        );
        eprintln!("skipped: {missing:?} not installed");
        return;
    }
    let blocks = sh_blocks(PAGE);
    assert!(blocks.len() >= 15, "{} blocks", blocks.len());
    let script = format!("set -euo pipefail\n{}", blocks.join("\n"));
    let dir = crate::common::TempDir::new();
    let bin_dir = std::path::Path::new(BIN).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("bash");
    c.args(["-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("KEYSTRATA_ROOT")
        .env_remove("KEYSTRATA_KEYCHAIN");
    let r = run(&mut c, None);
    assert_eq!(
        r.code,
        0,
        "docs/CLI.md failed:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&r.stdout),
        r.stderr
    );
    // What the blocks say happens, happened.
    let out = String::from_utf8_lossy(&r.stdout);
    for want in [
        "exit 11: there is a keychain there already",
        "exit 16:",
        "exit 2: destroy needs --yes",
        "db-password",
        "exit 12: wrong aad",
        "api-token",
        "exit 12: truncated",
        "Signature and comment signature verified",
        "Verified OK",
        "exit 3: token.sealed is on an old key",
    ] {
        assert!(out.contains(want), "{want:?} not in the output:\n{out}");
    }
    assert!(
        r.stderr.is_empty() || !r.stderr.contains("panicked"),
        "{}",
        r.stderr
    );
}
