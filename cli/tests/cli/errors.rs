//! Error paths common to every command: roots, locations, flags, JSON
//! errors, and the exit code of each kind.

use crate::common::{write_age_identity, Env, BIN};

#[test]
fn wrong_root_is_authentication() {
    let e = Env::with_keychain();
    let other = e.path("other.txt");
    write_age_identity(&other);
    let root = format!("age:{}", other.display());
    let r = e.ks(&["keychain", "show", "--root", &root]).fails(12);
    assert!(
        r.stderr.starts_with("keystrata: error: Authentication:"),
        "{}",
        r.stderr
    );
    // --json: the same, as JSON on stderr, nothing on stdout.
    let r = e
        .ks(&["keychain", "show", "--root", &root, "--json"])
        .fails(12);
    assert!(r.stdout.is_empty());
    assert_eq!(r.json_error()["kind"], "Authentication");
}

#[test]
fn missing_files_are_io() {
    let e = Env::with_keychain();
    // The root's identity file.
    let r = e
        .ks(&["keychain", "show", "--root", "age:/nonexistent/id.txt"])
        .fails(21);
    assert!(r.stderr.contains("Io"), "{}", r.stderr);
    // The keychain.
    let missing = e.path("nope.age");
    e.ks(&["keychain", "show", "--keychain", missing.to_str().unwrap()])
        .fails(21)
        .says("no keychain at")
        .says("keystrata keychain new");
    assert!(!missing.exists(), "show did not create a keychain");
    e.ks(&["seal", "--keychain", missing.to_str().unwrap(), "/dev/null"])
        .fails(21);
    assert!(!missing.exists(), "seal did not create a keychain");
    // An input file.
    let r = e.ks(&["seal", "no-such-input", "--json"]).fails(21);
    let err = r.json_error();
    assert_eq!(err["kind"], "Io");
    assert!(err["message"].as_str().unwrap().contains("no-such-input"));
    // A directory given as input.
    e.ks(&["seal", "."]).fails(11).says("directory");
}

#[test]
fn secrets_in_a_root_uri_are_refused() {
    let e = Env::with_keychain();
    for uri in [
        "pkcs11:token=t;object=o?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
        "kmip://kms.example?key-name=k&ca=ca.pem&cert=c.pem&client-key-pem=SECRET",
        "aws-kms:alias/k?secret-access-key=SECRET",
    ] {
        let r = e
            .ks(&["keychain", "show", "--root", uri, "--json"])
            .fails(11);
        let err = r.json_error();
        assert_eq!(err["kind"], "InvalidInput", "{uri}");
        assert!(
            !r.stderr.contains("1234") && !r.stderr.contains("SECRET"),
            "{}",
            r.stderr
        );
    }
    // Not a root at all; an unset passphrase variable.
    e.ks(&["keychain", "show", "--root", "plain-text"])
        .fails(11);
    e.ks(&[
        "keychain",
        "show",
        "--root",
        "passphrase:env:KS_CLI_TEST_UNSET_VAR",
    ])
    .fails(11)
    .says("KS_CLI_TEST_UNSET_VAR");
}

#[test]
fn missing_options_and_bad_flags_are_usage_errors() {
    let e = Env::with_keychain();
    // No root, no keychain: exit 2, naming the option and its variable.
    let mut c = std::process::Command::new(BIN);
    c.args(["keychain", "show"]).current_dir(e.dir.path());
    c.env_remove("KEYSTRATA_ROOT")
        .env_remove("KEYSTRATA_KEYCHAIN");
    c.env("KEYSTRATA_KEYCHAIN", &e.keychain);
    let r = crate::common::run(&mut c, None).fails(2);
    assert!(
        r.stderr.contains("--root") && r.stderr.contains("KEYSTRATA_ROOT"),
        "{}",
        r.stderr
    );
    let mut c = std::process::Command::new(BIN);
    c.args(["keychain", "show", "--json"])
        .current_dir(e.dir.path());
    c.env_remove("KEYSTRATA_KEYCHAIN")
        .env("KEYSTRATA_ROOT", &e.root);
    let r = crate::common::run(&mut c, None).fails(2);
    assert_eq!(r.json_error()["kind"], "Usage");
    assert!(r.stderr.contains("KEYSTRATA_KEYCHAIN"));

    // clap's own errors: unknown flags and commands, missing arguments.
    e.ks(&["seal", "--no-such-flag"])
        .fails(2)
        .says("--no-such-flag");
    e.ks(&["frobnicate"]).fails(2);
    e.ks(&["derive", "--origin", "o"])
        .fails(2)
        .says("--instance");
    e.ks(&[
        "keychain",
        "rotate",
        "--purpose",
        "sign",
        "--algorithm",
        "rsa",
    ])
    .fails(2);
    // ... and as JSON when --json is on the command line.
    let r = e.ks(&["seal", "--no-such-flag", "--json"]).fails(2);
    let err = r.json_error();
    assert_eq!(err["kind"], "Usage");
    assert!(err["message"].as_str().unwrap().contains("--no-such-flag"));
    // --help and --version succeed; help names the variables, not their values.
    let help = e.ks(&["--help"]).ok().text();
    assert!(help.contains("Exit codes:") && help.contains("[env: KEYSTRATA_ROOT]"));
    assert!(!help.contains(&e.root), "help shows the environment's root");
    assert!(e.ks(&["--version"]).ok().text().starts_with("keystrata "));
}

#[test]
fn global_options_work_before_and_after_the_command() {
    let e = Env::with_keychain();
    let loc = e.keychain.to_str().unwrap().to_owned();
    let mut c = std::process::Command::new(BIN);
    c.args([
        "--keychain",
        &loc,
        "--root",
        &e.root,
        "--json",
        "keychain",
        "show",
    ])
    .current_dir(e.dir.path())
    .env_remove("KEYSTRATA_ROOT")
    .env_remove("KEYSTRATA_KEYCHAIN");
    let a = crate::common::run(&mut c, None).ok().json();
    let b = e
        .ks(&["keychain", "show", "--keychain", &loc, "--json"])
        .ok()
        .json();
    assert_eq!(a, b);
    // A file:// location names the same keychain.
    let url = format!("file://{loc}");
    let c = e
        .ks(&["keychain", "show", "--keychain", &url, "--json"])
        .ok()
        .json();
    assert_eq!(c["keys"], a["keys"]);
}

#[test]
fn a_passphrase_root_end_to_end() {
    // scrypt at the URI root's work factor (2^18) is slow in a debug
    // build: `keychain new` and one `seal` save at it, once each; the
    // loads below read a keychain the library saved at 2^10.
    let pass = "correct horse battery staple";
    let mut e = Env::age();
    e.root = "passphrase:env:KS_CLI_PASS".to_owned();
    e.set_env("KS_CLI_PASS", pass);
    let made = e.path("made-by-cli.age");
    let v = e
        .ks(&[
            "keychain",
            "new",
            "--json",
            "--keychain",
            made.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(v["keys"].as_array().unwrap().len(), 2);
    assert!(e
        .read("made-by-cli.age")
        .starts_with(b"age-encryption.org/v1"));

    let cheap = keystrata::PassphraseRoot::with_work_factor(pass, 10).unwrap();
    let kc = keystrata::Keychain::generate().unwrap();
    kc.save_file(&e.keychain, &cheap).unwrap();
    e.write("s.bin", &kc.seal(b"pw-secret", b"ctx").unwrap());
    let shown = e.ks(&["keychain", "show", "--json"]).ok().json();
    assert_eq!(shown["keys"][0]["key_id"], kc.primary().unwrap().key_id);
    // The passphrase from a file this time (one trailing newline dropped).
    let pw = e.write("pass.txt", format!("{pass}\n").as_bytes());
    let root = format!("passphrase:file:{}", pw.display());
    let out = e
        .ks(&["unseal", "s.bin", "--aad", "ctx", "--root", &root])
        .ok();
    assert_eq!(out.stdout, b"pw-secret");
    e.write("wrong.txt", b"incorrect horse");
    e.ks(&[
        "unseal",
        "s.bin",
        "--aad",
        "ctx",
        "--root",
        "passphrase:file:wrong.txt",
    ])
    .fails(12)
    .says("Authentication");
    // A seal through the CLI (which reserves usage in the file, saving it).
    let ct = e
        .ks_in(&["seal", "--aad", "ctx"], b"from the cli")
        .ok()
        .stdout;
    assert_eq!(kc.unseal(&ct, b"ctx").unwrap(), b"from the cli");
}
