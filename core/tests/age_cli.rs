//! The saved keychain is a standard age file: the `age` CLI opens it, and
//! keystrata opens what the CLI encrypts. Needs `age` on PATH
//! (`scripts/setup.sh` installs it).

use std::process::Command;

use age::secrecy::ExposeSecret;
use keystrata::{AgeRoot, Keychain, Root};

fn age_cli() -> &'static str {
    let ok = Command::new("age")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the `age` command is not installed: run scripts/setup.sh (apt-get install age)"
    );
    "age"
}

#[test]
fn age_cli_decrypts_a_saved_keychain() {
    let age = age_cli();
    let dir = tempfile::tempdir().unwrap();
    let root = AgeRoot::generate();
    let id_path = dir.path().join("identity.txt");
    std::fs::write(
        &id_path,
        format!(
            "# public key: {}\n{}\n",
            root.recipients()[0],
            root.insecure_identity_strings()[0].expose_secret()
        ),
    )
    .unwrap();
    let kc = Keychain::generate().unwrap();
    kc.rotate().unwrap();
    let path = dir.path().join("keychain.age");
    kc.save_file(&path, &root).unwrap();

    let out = Command::new(age)
        .arg("-d")
        .arg("-i")
        .arg(&id_path)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "keystrata.keychain");
    assert_eq!(v["version"], 1);
    assert_eq!(v["keys"].as_array().unwrap().len(), 3);
    assert_eq!(v["primary"]["encrypt"], kc.primary().unwrap().key_id);
    // Byte for byte what keystrata's own root decrypts.
    assert_eq!(
        out.stdout,
        *root.unprotect(&std::fs::read(&path).unwrap()).unwrap()
    );

    // The other way: JSON encrypted by the CLI loads in keystrata.
    let json_path = dir.path().join("plain.json");
    std::fs::write(&json_path, &out.stdout).unwrap();
    let cli_path = dir.path().join("cli.age");
    let st = Command::new(age)
        .args(["-e", "-r", &root.recipients()[0], "-o"])
        .arg(&cli_path)
        .arg(&json_path)
        .status()
        .unwrap();
    assert!(st.success());
    let back = Keychain::load_file(&cli_path, &root).unwrap();
    assert_eq!(back.keys().expect("keys"), kc.keys().expect("keys"));
    // A wrong identity makes the CLI fail too.
    let other = AgeRoot::generate();
    std::fs::write(
        &id_path,
        other.insecure_identity_strings()[0].expose_secret(),
    )
    .unwrap();
    let out = Command::new(age)
        .arg("-d")
        .arg("-i")
        .arg(&id_path)
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
