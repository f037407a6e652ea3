//! The KeyManager conformance suite and the PKCS#11-specific checks of
//! `Pkcs11Root`, against a real SoftHSM2 token.
//!
//! Start the token first: `eval "$(bash scripts/peers.sh start)"` (or only
//! `bash scripts/peers/softhsm.sh start DIR && eval "$(bash
//! scripts/peers/softhsm.sh env DIR)"`), or run `make test`. Built only
//! with the `peer-tests` feature; without the token they fail, they never
//! skip silently.

mod conformance;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystrata::root::SecretString;
use keystrata::{
    AgeRoot, ErrorKind, KeyManager, Keychain, Pkcs11Config, Pkcs11Pin, Pkcs11Root, Root,
    PKCS11_PROVIDER,
};

struct Peer {
    module: PathBuf,
    token: String,
    pin: String,
}

fn peer() -> Peer {
    let module = std::env::var("KS_TEST_PKCS11_MODULE").unwrap_or_else(|_| {
        panic!(
            "PKCS#11 peer not started: run `eval \"$(bash scripts/peers.sh start)\"` or `make test`"
        )
    });
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (scripts/peers.sh env)"))
    };
    Peer {
        module: module.into(),
        token: var("KS_TEST_PKCS11_TOKEN"),
        pin: var("KS_TEST_PKCS11_PIN"),
    }
}

/// A key label no other test (in this run or an earlier one on the same
/// token) has used.
fn unique_label(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "ks-{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn config(p: &Peer, key_label: &str) -> Pkcs11Config {
    let mut c = Pkcs11Config::new(
        &p.module,
        &p.token,
        Pkcs11Pin::Value(SecretString::from(p.pin.clone())),
        key_label,
    );
    c.create_key = true;
    c
}

/// Held for reading while a test may create a key on the token, and for
/// writing while another process (pkcs11-tool) does: SoftHSM2 notices a
/// change made by another process through a generation counter in the
/// token's files, which a write of its own at the same moment can hide.
static TOKEN_WRITES: RwLock<()> = RwLock::new(());

fn open(c: &Pkcs11Config) -> keystrata::Result<Pkcs11Root> {
    let _g = TOKEN_WRITES.read().unwrap_or_else(PoisonError::into_inner);
    Pkcs11Root::open(c)
}

fn new_root(prefix: &str) -> Pkcs11Root {
    let p = peer();
    open(&config(&p, &unique_label(prefix))).expect("open Pkcs11Root")
}

fn backend() -> conformance::Backend {
    conformance::Backend {
        km: Arc::new(new_root("suite")),
        timeout: Duration::from_secs(5),
        // SoftHSM2 runs inside the test process: there is no peer to stop,
        // so the outage check passes trivially.
        outage: None,
    }
}

conformance::suite!(backend);

fn open_err(c: &Pkcs11Config) -> keystrata::Error {
    match open(c) {
        Ok(root) => panic!("expected an error, opened {root:?}"),
        Err(e) => e,
    }
}

#[test]
fn envelope_shape() {
    let root = new_root("shape");
    for len in [1usize, 7, 32, 33, 4096] {
        let env = root.wrap_key(&vec![0x5a; len], b"ctx").expect("wrap");
        assert_eq!(env.provider, PKCS11_PROVIDER);
        assert_eq!(env.key_id, root.key_label());
        assert_eq!(env.key_version, 1);
        // iv(12) ‖ ct ‖ tag(16): lengths survive, unlike SoftHSM's KWP.
        assert_eq!(env.ciphertext.len(), 12 + len + 16);
        let back = root.unwrap_key(&env, b"ctx").expect("unwrap");
        assert_eq!(back.expose_secret(), &vec![0x5a; len][..]);
    }
    assert_eq!(KeyManager::provider(&root), PKCS11_PROVIDER);
    assert_eq!(root.token_label(), peer().token);
}

#[test]
fn keychain_saved_under_the_token_loads_only_through_it() {
    let root = new_root("kc");
    let kc = Keychain::generate().expect("generate");
    let sealed = kc.seal(b"secret", b"aad").expect("seal");
    let saved = kc.save(&root).expect("save");
    assert!(keystrata::root::wrapped::is_wrapped(&saved));
    let loaded = Keychain::load(&saved, &root).expect("load");
    assert_eq!(loaded.unseal(&sealed, b"aad").expect("unseal"), b"secret");

    // Another key on the same token: not the key this keychain names.
    let other = new_root("kc-other");
    let e = Keychain::load(&saved, &other).expect_err("another key label");
    assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
    // An age root does not read this format at all.
    let e = Keychain::load(&saved, &AgeRoot::generate()).expect_err("age root");
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
    // Changed bytes never load.
    let mut t = saved.clone();
    let n = t.len();
    t[n - 1] ^= 1;
    let e = Keychain::load(&t, &root).expect_err("tampered");
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
}

#[test]
fn the_key_persists_and_is_found_again_by_label() {
    let p = peer();
    let label = unique_label("persist");
    let first = open(&config(&p, &label)).expect("create");
    let env = first.wrap_key(&[8u8; 32], b"p").expect("wrap");
    first.close().expect("close");
    let mut c = config(&p, &label);
    c.create_key = false;
    let again = open(&c).expect("reopen without create_key");
    assert_eq!(
        again
            .unwrap_key(&env, b"p")
            .expect("unwrap")
            .expose_secret(),
        &[8u8; 32]
    );
}

#[test]
fn wrong_pin_is_backend_and_never_echoed() {
    let p = peer();
    let wrong = format!("wrong-{}", std::process::id());
    let mut c = config(&p, &unique_label("pin"));
    c.pin = Pkcs11Pin::Value(SecretString::from(wrong.clone()));
    let e = open_err(&c);
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    let text = format!("{e} {e:?}");
    assert!(text.contains(&p.token), "message names the token: {text}");
    assert!(!text.contains(&wrong), "message shows the PIN: {text}");
    assert!(!text.contains(&p.pin), "message shows the PIN: {text}");

    // While the process is logged in to the token (PKCS#11 login state is
    // per process), a wrong PIN is still refused.
    let good = new_root("pin-good");
    let e = open_err(&c);
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    let text = format!("{e} {e:?}");
    assert!(text.contains(&p.token), "message names the token: {text}");
    assert!(!text.contains(&wrong) && !text.contains(&p.pin), "{text}");
    good.health_check().expect("the good root still works");
}

#[test]
fn missing_key_without_create_key_is_unknown_key() {
    let p = peer();
    let label = unique_label("absent");
    let mut c = config(&p, &label);
    c.create_key = false;
    let e = open_err(&c);
    assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
    assert!(e.message().contains(&label), "{e}");
    assert!(e.message().contains(&p.token), "{e}");
}

#[test]
fn pin_from_an_environment_variable() {
    let p = peer();
    let mut c = config(&p, &unique_label("env"));
    // The variable the peer script exports holds the PIN.
    c.pin = Pkcs11Pin::Env("KS_TEST_PKCS11_PIN".to_owned());
    let root = open(&c).expect("PIN from env");
    root.health_check().expect("health");

    let unset = format!("KS_TEST_PKCS11_UNSET_{}", std::process::id());
    assert!(std::env::var_os(&unset).is_none());
    c.pin = Pkcs11Pin::Env(unset.clone());
    let e = open_err(&c);
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains(&unset), "{e}");
}

#[test]
fn unknown_token_label_is_unavailable() {
    let p = peer();
    let mut c = config(&p, &unique_label("tok"));
    c.token_label = "no-such-token".to_owned();
    let e = open_err(&c);
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        e.message().contains("no token labelled 'no-such-token'"),
        "{e}"
    );
}

#[test]
fn bad_module_path_is_invalid_input() {
    let p = peer();
    let mut c = config(&p, &unique_label("mod"));
    c.module = "/nonexistent/libpkcs11-nothing.so".into();
    let e = open_err(&c);
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.message().contains("/nonexistent/libpkcs11-nothing.so"),
        "{e}"
    );
    // A file that is not a shared library at all.
    c.module = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into();
    let e = open_err(&c);
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // A shared library that is not a PKCS#11 module.
    let libc = PathBuf::from(format!(
        "/usr/lib/{}-linux-gnu/libc.so.6",
        std::env::consts::ARCH
    ));
    if libc.exists() {
        c.module = libc;
        let e = open_err(&c);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().contains("not a PKCS#11 module"), "{e}");
    }
}

#[test]
fn empty_labels_are_invalid_input() {
    let p = peer();
    let mut c = config(&p, "");
    assert_eq!(open_err(&c).kind(), ErrorKind::InvalidInput);
    c = config(&p, "k");
    c.token_label.clear();
    assert_eq!(open_err(&c).kind(), ErrorKind::InvalidInput);
}

#[test]
fn one_module_many_roots_in_one_process() {
    // Two roots (two key labels) on the same module and token: the module
    // is loaded and initialized once and shared.
    let a = new_root("twice-a");
    let b = new_root("twice-b");
    let ea = a.wrap_key(&[1u8; 32], b"x").expect("wrap a");
    let eb = b.wrap_key(&[2u8; 32], b"x").expect("wrap b");
    assert_eq!(
        a.unwrap_key(&ea, b"x").expect("a").expose_secret(),
        &[1u8; 32]
    );
    assert_eq!(
        b.unwrap_key(&eb, b"x").expect("b").expose_secret(),
        &[2u8; 32]
    );
    // Each root unwraps only its own envelopes.
    assert_eq!(
        b.unwrap_key(&ea, b"x").expect_err("a's envelope").kind(),
        ErrorKind::UnknownKey
    );
    // Even with the key_id rewritten, the other key fails authentication.
    let mut forged = ea.clone();
    forged.key_id = b.key_label().to_owned();
    assert_eq!(
        b.unwrap_key(&forged, b"x").expect_err("forged").kind(),
        ErrorKind::Authentication
    );
    // Closing one root leaves the other (and the shared login) working.
    a.close().expect("close a");
    assert_eq!(
        b.unwrap_key(&eb, b"x")
            .expect("b after a closed")
            .expose_secret(),
        &[2u8; 32]
    );
    let c = new_root("twice-c");
    c.health_check().expect("a third root after one closed");
}

#[test]
fn clones_share_one_handle_and_debug_shows_no_pin() {
    let p = peer();
    let root = new_root("clone");
    let clone = root.clone();
    let dbg = format!("{root:?}");
    assert!(dbg.contains(root.key_label()), "{dbg}");
    assert!(!dbg.contains(&p.pin), "{dbg}");
    let cfg = format!("{:?}", config(&p, "k"));
    assert!(!cfg.contains(&p.pin), "{cfg}");
    clone.close().expect("close the clone");
    assert_eq!(
        root.wrap_key(&[1u8; 16], b"").expect_err("closed").kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(
        root.protect(b"{}").expect_err("closed").kind(),
        ErrorKind::Unavailable
    );
}

/// Reads the key's attributes straight from the token with `cryptoki`.
#[test]
fn the_key_is_sensitive_and_never_extractable() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::error::{Error as CkError, RvError};
    use cryptoki::object::{Attribute, AttributeType, ObjectClass};
    use cryptoki::session::UserType;

    let p = peer();
    // Keep the root open: its sessions keep the process logged in.
    let root = new_root("attrs");
    let ctx = Pkcs11::new(&p.module).expect("load module");
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|i| i.label().trim_end() == p.token)
                .unwrap_or(false)
        })
        .expect("the test token");
    let session = ctx.open_ro_session(slot).expect("session");
    match session.login(UserType::User, Some(&SecretString::from(p.pin.clone()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    let handles = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(root.key_label().as_bytes().to_vec()),
        ])
        .expect("find");
    assert_eq!(handles.len(), 1);
    let attrs = session
        .get_attributes(
            handles[0],
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
                AttributeType::ValueLen,
            ],
        )
        .expect("attributes");
    let mut seen = 0;
    for a in &attrs {
        match a {
            Attribute::Sensitive(v) => assert!(*v, "CKA_SENSITIVE"),
            Attribute::Extractable(v) => assert!(!*v, "CKA_EXTRACTABLE"),
            Attribute::NeverExtractable(v) => assert!(*v, "CKA_NEVER_EXTRACTABLE"),
            Attribute::Token(v) => assert!(*v, "CKA_TOKEN"),
            Attribute::Private(v) => assert!(*v, "CKA_PRIVATE"),
            Attribute::Encrypt(v) => assert!(*v, "CKA_ENCRYPT"),
            Attribute::Decrypt(v) => assert!(*v, "CKA_DECRYPT"),
            Attribute::ValueLen(n) => assert_eq!(u64::from(*n), 32, "CKA_VALUE_LEN"),
            other => panic!("unexpected attribute {other:?}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 8, "every attribute was read: {attrs:?}");
    // The key's value cannot be read.
    match session.get_attributes(handles[0], &[AttributeType::Value]) {
        Ok(v) => assert!(
            !v.iter().any(|a| matches!(a, Attribute::Value(_))),
            "CKA_VALUE was readable"
        ),
        Err(CkError::Pkcs11(RvError::AttributeSensitive, _)) => {}
        Err(e) => panic!("reading CKA_VALUE: {e}"),
    }
    drop(session);
    root.health_check().expect("root still works");
}

/// A key made by a standard tool (OpenSC's pkcs11-tool, as docs/PKCS11.md
/// shows) serves as the root key without `create_key`.
#[test]
fn a_key_made_by_pkcs11_tool_is_used_as_is() {
    let p = peer();
    let label = unique_label("tool");
    let _no_writes_here = TOKEN_WRITES.write().unwrap_or_else(PoisonError::into_inner);
    let out = std::process::Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&p.module)
        .args(["--token-label", &p.token, "--login", "--pin", &p.pin])
        .args(["--keygen", "--key-type", "AES:32", "--label", &label])
        .args(["--usage-decrypt", "--sensitive", "--private"])
        .output()
        .expect("run pkcs11-tool (apt opensc; scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "pkcs11-tool --keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = config(&p, &label);
    c.create_key = false;
    // SoftHSM2 in this process re-reads the token's files lazily, so an
    // object another process just wrote may take a moment to show up.
    let mut tries = 0;
    let root = loop {
        match Pkcs11Root::open(&c) {
            Ok(root) => break root,
            Err(e) if e.kind() == ErrorKind::UnknownKey && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("open the pkcs11-tool key: {e}"),
        }
    };
    let env = root.wrap_key(&[3u8; 32], b"t").expect("wrap");
    assert_eq!(
        root.unwrap_key(&env, b"t").expect("unwrap").expose_secret(),
        &[3u8; 32]
    );
}

/// `pkcs11:` URIs (RFC 7512 subset, docs/ROOTS.md) open the same token and
/// key as a `Pkcs11Config`: what one saves the other loads.
#[test]
fn a_pkcs11_uri_opens_the_same_key() {
    let p = peer();
    let label = unique_label("uri");
    let direct = new_root_with_label(&label);
    let dir = tempfile::tempdir().expect("tempdir");
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{}\n", p.pin)).expect("write pin");
    // Percent-encoding in a value is decoded (a '-' spelled %2D).
    let encoded_label = label.replacen('-', "%2D", 1);
    let by_file = format!(
        "pkcs11:token={};object={encoded_label};type=secret-key?module-path={}&pin-source=file:{}",
        p.token,
        p.module.display(),
        pin_file.display()
    );
    let from_file = {
        let _g = TOKEN_WRITES.read().unwrap_or_else(PoisonError::into_inner);
        keystrata::root::from_uri(&by_file).expect("open by pkcs11: URI, PIN from a file")
    };
    assert_eq!(from_file.provider(), PKCS11_PROVIDER);
    let kc = Keychain::generate().expect("generate");
    let saved = kc.save(&*from_file).expect("save through the URI root");
    assert_eq!(
        Keychain::load(&saved, &direct)
            .expect("load")
            .keys()
            .expect("keys"),
        kc.keys().expect("keys")
    );

    // The PIN from an environment variable (the one the peer script sets);
    // a new label with x-create.
    let var = "KS_TEST_PKCS11_PIN";
    let created = unique_label("uri-create");
    let base = format!(
        "pkcs11:token={};object={created}?module-path={}&pin-source=env:{var}",
        p.token,
        p.module.display()
    );
    let missing = {
        let _g = TOKEN_WRITES.read().unwrap_or_else(PoisonError::into_inner);
        keystrata::root::from_uri(&base).map(|_| ())
    };
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::UnknownKey);
    let made = {
        let _g = TOKEN_WRITES.read().unwrap_or_else(PoisonError::into_inner);
        keystrata::root::from_uri(&format!("{base}&x-create=true")).expect("x-create")
    };
    let saved = kc.save(&*made).expect("save");
    let again = {
        let _g = TOKEN_WRITES.read().unwrap_or_else(PoisonError::into_inner);
        keystrata::root::from_uri(&base).expect("the created key is found by label")
    };
    assert_eq!(
        Keychain::load(&saved, &*again)
            .expect("load")
            .keys()
            .expect("keys"),
        kc.keys().expect("keys")
    );

    // A wrong PIN is the token's error, never echoing the PIN.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "999999").expect("write");
    let e = {
        let _g = TOKEN_WRITES.read().unwrap_or_else(PoisonError::into_inner);
        keystrata::root::from_uri(&by_file.replace(
            &pin_file.display().to_string(),
            &wrong.display().to_string(),
        ))
        .map(|_| ())
        .unwrap_err()
    };
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(!e.message().contains("999999") && !e.message().contains(&p.pin));
    // An unknown token: Unavailable, as with a config.
    let e = keystrata::root::from_uri(&base.replace(&p.token, "no-such-token"))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    // A PIN written inline is refused before anything is opened.
    let e = keystrata::root::from_uri(&format!("{base}&pin-value={}", p.pin))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(!e.message().contains(&p.pin));
}

fn new_root_with_label(label: &str) -> Pkcs11Root {
    open(&config(&peer(), label)).expect("open Pkcs11Root")
}

// ---------------------------------------------------------------------
// Pkcs11Signer: the Signer conformance suite and its own checks.
// ---------------------------------------------------------------------

mod signer_conformance;

fn open_signer(
    label: &str,
    alg: keystrata::Algorithm,
) -> keystrata::Result<keystrata::sign::Pkcs11Signer> {
    let _g = TOKEN_WRITES.read().unwrap_or_else(PoisonError::into_inner);
    keystrata::sign::Pkcs11Signer::open(&config(&peer(), label), alg)
}

macro_rules! pkcs11_signer {
    ($name:ident, $alg:expr) => {
        mod $name {
            use keystrata::sign::Signer;

            fn make() -> Box<dyn Signer> {
                let label = super::unique_label(concat!("sig-", stringify!($name)));
                Box::new(super::open_signer(&label, $alg).expect("open the PKCS#11 signer"))
            }
            crate::signer_conformance::signer_suite!(make);
        }
    };
}

pkcs11_signer!(signer_ed25519, keystrata::Algorithm::Ed25519);
pkcs11_signer!(signer_ecdsa_p256, keystrata::Algorithm::EcdsaP256);
pkcs11_signer!(signer_ecdsa_secp256k1, keystrata::Algorithm::EcdsaSecp256k1);

#[test]
fn signer_keys_persist_are_private_and_keep_their_algorithm() {
    use keystrata::sign::Signer;
    use keystrata::{Algorithm, PublicKeyFormat};
    let label = unique_label("sig-persist");
    let a = open_signer(&label, Algorithm::EcdsaP256).unwrap();
    let pem = a.public_key(PublicKeyFormat::Pem).unwrap();
    // Found again by label, with the same public key; another algorithm is refused.
    let mut c = config(&peer(), &label);
    c.create_key = false;
    let b = keystrata::sign::Pkcs11Signer::open(&c, Algorithm::EcdsaP256).unwrap();
    assert_eq!(b.public_key(PublicKeyFormat::Pem).unwrap(), pem);
    let e = keystrata::sign::Pkcs11Signer::open(&c, Algorithm::Ed25519).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    // What one handle signs, the other's public key verifies.
    let raw = b.public_key(PublicKeyFormat::Raw).unwrap();
    keystrata::sign::verify(Algorithm::EcdsaP256, &raw, b"m", &a.sign(b"m").unwrap()).unwrap();
    // Absent without create_key: UnknownKey; an AES root key's label is not a signing key.
    let mut missing = config(&peer(), &unique_label("sig-missing"));
    missing.create_key = false;
    let e = keystrata::sign::Pkcs11Signer::open(&missing, Algorithm::Ed25519).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownKey);
    let aes = unique_label("sig-aes");
    new_root_with_label(&aes);
    let mut c = config(&peer(), &aes);
    c.create_key = false;
    assert_eq!(
        keystrata::sign::Pkcs11Signer::open(&c, Algorithm::Ed25519)
            .unwrap_err()
            .kind(),
        ErrorKind::UnknownKey
    );
    // The private key never leaves the token: sensitive, never extractable,
    // and its value cannot be read.
    {
        use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
        use cryptoki::error::{Error as CkError, RvError};
        use cryptoki::object::{Attribute, AttributeType, ObjectClass};
        use cryptoki::session::UserType;
        let p = peer();
        let ctx = Pkcs11::new(&p.module).expect("load module");
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("initialize: {e}"),
        }
        let slot = ctx
            .get_slots_with_token()
            .expect("slots")
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .map(|i| i.label().trim_end() == p.token)
                    .unwrap_or(false)
            })
            .expect("the test token");
        let session = ctx.open_ro_session(slot).expect("session");
        match session.login(UserType::User, Some(&SecretString::from(p.pin.clone()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("login: {e}"),
        }
        let h = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .expect("find");
        assert_eq!(h.len(), 1);
        let attrs = session
            .get_attributes(
                h[0],
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                ],
            )
            .expect("attributes");
        assert_eq!(attrs.len(), 3, "{attrs:?}");
        for a in &attrs {
            match a {
                Attribute::Sensitive(v) => assert!(*v, "CKA_SENSITIVE"),
                Attribute::Extractable(v) => assert!(!*v, "CKA_EXTRACTABLE"),
                Attribute::NeverExtractable(v) => assert!(*v, "CKA_NEVER_EXTRACTABLE"),
                other => panic!("unexpected attribute {other:?}"),
            }
        }
        match session.get_attributes(h[0], &[AttributeType::Value]) {
            Ok(v) => assert!(
                !v.iter().any(|a| matches!(a, Attribute::Value(_))),
                "CKA_VALUE was readable"
            ),
            Err(CkError::Pkcs11(RvError::AttributeSensitive, _)) => {}
            Err(e) => panic!("reading CKA_VALUE: {e}"),
        }
    }
    assert!(format!("{b:?}").contains("Pkcs11Signer") && !format!("{b:?}").contains(&peer().pin));
}

/// A minisign signature made with an Ed25519 key that never leaves the
/// token verifies with the real `minisign -V` and the exported `.pub`.
#[test]
fn minisign_signatures_from_a_token_key_verify_with_minisign() {
    use keystrata::sign::{minisign, minisign_key_id, Signer};
    use keystrata::{Algorithm, PublicKeyFormat};
    let s = open_signer(&unique_label("sig-minisign"), Algorithm::Ed25519).unwrap();
    let raw: [u8; 32] = s
        .public_key(PublicKeyFormat::Raw)
        .unwrap()
        .try_into()
        .unwrap();
    let id = minisign_key_id(&raw);
    let text = minisign::sign_with(
        &|m: &[u8]| s.sign(m),
        id,
        b"firmware",
        "signed in the HSM",
        None,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fw"), b"firmware").unwrap();
    std::fs::write(dir.path().join("fw.minisig"), &text).unwrap();
    std::fs::write(
        dir.path().join("k.pub"),
        s.public_key(PublicKeyFormat::Minisign).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("minisign")
        .args(["-Vm", "fw", "-p", "k.pub"])
        .current_dir(dir.path())
        .output()
        .expect("minisign (apt-get install -y minisign)");
    assert!(
        out.status.success(),
        "minisign -V: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("signed in the HSM"));
    let pk = minisign::PublicKey::from_text(
        std::str::from_utf8(&s.public_key(PublicKeyFormat::Minisign).unwrap()).unwrap(),
    )
    .unwrap();
    minisign::verify(&pk, b"firmware", &text).unwrap();
}
