//! `keystrata kms-plugin`: the keystrata-kms-plugin program run in place of
//! the command, with its --keychain, --root and arguments. The plugin
//! itself is tested by the kms-plugin crate (a real process, the upstream
//! Kubernetes clients); here a stand-in program beside a copy of the
//! binary shows what it is handed, and its absence gives a clear error.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::{TempDir, BIN};

/// A copy of the keystrata binary alone in a directory (no plugin beside
/// it), run with an empty PATH.
fn lone(dir: &TempDir) -> std::path::PathBuf {
    let ks = dir.path().join("keystrata");
    std::fs::copy(BIN, &ks).unwrap();
    ks
}

#[test]
fn kms_plugin_hands_its_options_to_the_plugin_program() {
    let dir = TempDir::new();
    let ks = lone(&dir);
    let plugin = dir.path().join("keystrata-kms-plugin");
    std::fs::write(
        &plugin,
        "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\nexit 7\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&ks)
        .env_clear()
        .env("KEYSTRATA_ROOT", "age:/etc/keystrata/root.key")
        .args([
            "--keychain",
            "/var/lib/kc.age",
            "kms-plugin",
            "--listen",
            "unix:///run/kms.sock",
            "--help",
        ])
        .output()
        .unwrap();
    // The plugin's exit code and output, as they are.
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "[--keychain]\n[/var/lib/kc.age]\n[--root]\n[age:/etc/keystrata/root.key]\n\
         [--listen]\n[unix:///run/kms.sock]\n[--help]\n"
    );
}

#[test]
fn kms_plugin_without_the_plugin_program_says_how_to_get_it() {
    let dir = TempDir::new();
    let ks = lone(&dir);
    let out = Command::new(&ks)
        .env_clear()
        .env("PATH", dir.path().join("empty"))
        .args(["kms-plugin", "--listen", "unix:///run/kms.sock"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Unsupported: 10 + its number (7).
    assert_eq!(out.status.code(), Some(17), "{stderr}");
    assert!(
        stderr.contains("keystrata-kms-plugin") && stderr.contains("make install"),
        "{stderr}"
    );
}
