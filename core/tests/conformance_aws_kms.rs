//! The AWS KMS root and signer against a real moto server on loopback: the
//! KeyManager conformance suite over `AwsKmsRoot` (outage included), the
//! Signer conformance suite over `AwsKmsSigner` for ECC_NIST_P256 and
//! ECC_SECG_P256K1 keys (OpenSSL verifying), and their own behaviour
//! (keychains saved under KMS, disabled and deleted keys, keys of the wrong
//! kind, the encryption context, URIs, unreachable and silent servers, a
//! restart).
//!
//! Needs the server started by `scripts/peers/moto.sh` (through
//! `scripts/peers.sh` or `make test`) and its variables:
//! `bash scripts/peers/moto.sh start DIR && eval "$(bash
//! scripts/peers/moto.sh env DIR)"`. Built only with the `peer-tests` and
//! `aws-kms` features; without the server the tests fail, never skip.
//!
//! Keys are made here through the AWS SDK, against moto, one per test. The
//! outage check freezes the shared server and the restart check stops it
//! (which forgets every key), so every test holds a ticket of a
//! process-wide gate while it talks to the server, and those two wait
//! until they are the only one.

mod conformance;
#[cfg(feature = "aws-lc")]
mod signer_conformance;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_kms::config::BehaviorVersion;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use conformance::{Backend, Outage};
use keystrata::root::aws_kms::encryption_context;
use keystrata::{
    AgeRoot, AwsKmsConfig, AwsKmsRoot, Envelope, ErrorKind, KeyManager, Keychain, SecretBytes,
};

const TIMEOUT: Duration = Duration::from_secs(2);
const REGION: &str = "us-east-1";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "moto (the AWS KMS peer) not started: run `eval \"$(bash scripts/peers.sh start)\"`, \
             or `bash scripts/peers/moto.sh start DIR && eval \"$(bash scripts/peers/moto.sh env \
             DIR)\"`, or `make test` ({name} is not set)"
        )
    })
}

fn endpoint() -> String {
    env("KS_TEST_AWS_ENDPOINT")
}

fn config(key: &str) -> AwsKmsConfig {
    let mut c = AwsKmsConfig::new(key)
        .with_region(REGION)
        .with_endpoint_url(endpoint());
    c.timeout = TIMEOUT;
    c
}

// ---- keys made through the SDK, as an administrator would ----

struct Admin {
    rt: tokio::runtime::Runtime,
    kms: aws_sdk_kms::Client,
}

fn admin() -> &'static Admin {
    static ADMIN: OnceLock<Admin> = OnceLock::new();
    ADMIN.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        let sdk = rt.block_on(
            aws_config::defaults(BehaviorVersion::latest())
                .region(aws_sdk_kms::config::Region::new(REGION))
                .endpoint_url(endpoint())
                .load(),
        );
        Admin {
            kms: aws_sdk_kms::Client::new(&sdk),
            rt,
        }
    })
}

impl Admin {
    /// A new key; its ARN.
    fn create_key(&self, spec: KeySpec, usage: KeyUsageType) -> String {
        let out = self
            .rt
            .block_on(
                self.kms
                    .create_key()
                    .key_spec(spec)
                    .key_usage(usage)
                    .description("keystrata test")
                    .send(),
            )
            .expect("CreateKey");
        out.key_metadata()
            .and_then(|m| m.arn())
            .expect("an ARN")
            .to_owned()
    }

    fn symmetric_key(&self) -> String {
        self.create_key(KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt)
    }

    fn create_alias(&self, alias: &str, key: &str) {
        self.rt
            .block_on(
                self.kms
                    .create_alias()
                    .alias_name(alias)
                    .target_key_id(key)
                    .send(),
            )
            .expect("CreateAlias");
    }

    fn disable(&self, key: &str) {
        self.rt
            .block_on(self.kms.disable_key().key_id(bare(key)).send())
            .expect("DisableKey");
    }

    fn enable(&self, key: &str) {
        self.rt
            .block_on(self.kms.enable_key().key_id(bare(key)).send())
            .expect("EnableKey");
    }

    fn schedule_deletion(&self, key: &str) {
        self.rt
            .block_on(
                self.kms
                    .schedule_key_deletion()
                    .key_id(bare(key))
                    .pending_window_in_days(7)
                    .send(),
            )
            .expect("ScheduleKeyDeletion");
    }

    fn cancel_deletion(&self, key: &str) {
        self.rt
            .block_on(self.kms.cancel_key_deletion().key_id(bare(key)).send())
            .expect("CancelKeyDeletion");
    }

    /// KMS Decrypt with an encryption context given here, as another AWS
    /// client would call it.
    fn decrypt(&self, key: &str, blob: &[u8], ctx: HashMap<String, String>) -> Option<Vec<u8>> {
        self.rt
            .block_on(
                self.kms
                    .decrypt()
                    .key_id(key)
                    .ciphertext_blob(Blob::new(blob.to_vec()))
                    .set_encryption_context(Some(ctx))
                    .send(),
            )
            .ok()
            .and_then(|o| o.plaintext)
            .map(Blob::into_inner)
    }
}

/// The key ID in a key ARN: moto's DisableKey, EnableKey and the deletion
/// calls take only that (AWS takes either).
fn bare(key: &str) -> &str {
    key.rsplit_once(":key/").map_or(key, |(_, id)| id)
}

/// An alias name no other test (or earlier run) uses.
fn fresh_alias(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!(
        "alias/ks-test-{what}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ---- the gate between the outage and restart checks and everything else ----

struct GateState {
    readers: usize,
    writer: bool,
}

static GATE: Mutex<GateState> = Mutex::new(GateState {
    readers: 0,
    writer: false,
});
static GATE_CV: Condvar = Condvar::new();

fn gate() -> std::sync::MutexGuard<'static, GateState> {
    GATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Held while a test talks to the server.
struct Ticket;

impl Ticket {
    fn acquire() -> Arc<Ticket> {
        let mut g = gate();
        while g.writer {
            g = GATE_CV.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        g.readers += 1;
        Arc::new(Ticket)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        gate().readers -= 1;
        GATE_CV.notify_all();
    }
}

/// Waits until no other test talks to the server (`own_tickets` of the
/// readers are the caller's), then holds it alone.
fn take_server(own_tickets: usize) {
    let mut g = gate();
    g.readers -= own_tickets;
    while g.writer || g.readers > 0 {
        g = GATE_CV.wait(g).unwrap_or_else(|p| p.into_inner());
    }
    g.writer = true;
}

fn give_server_back(own_tickets: usize) {
    let mut g = gate();
    g.writer = false;
    g.readers += own_tickets;
    drop(g);
    GATE_CV.notify_all();
}

fn ctl(verb: &str) {
    let status = Command::new("bash")
        .arg(env("KS_TEST_AWS_CTL"))
        .arg(verb)
        .arg(env("KS_TEST_AWS_DIR"))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run the moto control script");
    assert!(status.success(), "moto.sh {verb} failed");
}

/// The outage of the conformance suite: the server frozen (SIGSTOP), so it
/// accepts connections and answers nothing, then thawed with its keys.
/// (A stopped moto forgets its keys; `a_restarted_server_is_reconnected`
/// checks a real stop.)
struct MotoOutage {
    _ticket: Arc<Ticket>,
    paused: AtomicUsize,
}

impl Outage for MotoOutage {
    fn stop(&self) {
        take_server(1);
        self.paused.store(1, Ordering::SeqCst);
        ctl("pause");
    }
    fn start(&self) {
        ctl("resume");
        if self.paused.swap(0, Ordering::SeqCst) == 1 {
            give_server_back(1);
        }
    }
}

impl Drop for MotoOutage {
    fn drop(&mut self) {
        // A check that failed mid-outage must not leave the server frozen.
        if self.paused.swap(0, Ordering::SeqCst) == 1 {
            ctl("resume");
            give_server_back(1);
        }
    }
}

/// A root that keeps its test's ticket.
struct Gated {
    root: AwsKmsRoot,
    _ticket: Arc<Ticket>,
}

impl KeyManager for Gated {
    fn provider(&self) -> &str {
        self.root.provider()
    }
    fn wrap_key(&self, k: &[u8], c: &[u8]) -> keystrata::Result<Envelope> {
        self.root.wrap_key(k, c)
    }
    fn unwrap_key(&self, e: &Envelope, c: &[u8]) -> keystrata::Result<SecretBytes> {
        self.root.unwrap_key(e, c)
    }
    fn active_key_version(&self) -> keystrata::Result<u32> {
        self.root.active_key_version()
    }
    fn health_check(&self) -> keystrata::Result<()> {
        self.root.health_check()
    }
    fn close(&self) -> keystrata::Result<()> {
        self.root.close()
    }
}

fn fresh_root() -> AwsKmsRoot {
    AwsKmsRoot::connect(config(&admin().symmetric_key())).expect("connect to a fresh key")
}

fn backend() -> Backend {
    let ticket = Ticket::acquire();
    Backend {
        km: Arc::new(Gated {
            root: fresh_root(),
            _ticket: ticket.clone(),
        }),
        timeout: TIMEOUT,
        outage: Some(Box::new(MotoOutage {
            _ticket: ticket,
            paused: AtomicUsize::new(0),
        })),
    }
}

conformance::suite!(backend);

fn kind<T>(r: keystrata::Result<T>) -> ErrorKind {
    match r {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(e) => e.kind(),
    }
}

#[test]
fn envelopes_name_the_key_arn_and_version_one() {
    let _t = Ticket::acquire();
    let arn = admin().symmetric_key();
    // Opened by key ID, by alias, by alias ARN: one key, one ARN.
    let key_uuid = arn.rsplit('/').next().expect("key id");
    let alias = fresh_alias("arn");
    admin().create_alias(&alias, &arn);
    let alias_arn = format!("{}:{alias}", arn.rsplit_once(":key/").expect("key ARN").0);
    for name in [arn.as_str(), key_uuid, alias.as_str(), alias_arn.as_str()] {
        let root = AwsKmsRoot::connect(config(name)).expect(name);
        assert_eq!(root.key_arn(), arn, "{name}");
        let env = root.wrap_key(&[7u8; 32], b"ctx").expect("wrap");
        assert_eq!(
            (env.key_id.as_str(), env.key_version, env.provider.as_str()),
            (arn.as_str(), 1, "aws-kms")
        );
    }
    // No region given: the key ARN's own.
    let mut c = config(&arn);
    c.region = None;
    AwsKmsRoot::connect(c).expect("region from the ARN");
}

#[test]
fn the_encryption_context_is_the_documented_one() {
    let _t = Ticket::acquire();
    let root = fresh_root();
    let arn = root.key_arn().to_owned();
    for ctx in [&b""[..], b"bucket/object-17", &[0u8, 255, 1][..]] {
        let env = root.wrap_key(&[9u8; 24], ctx).expect("wrap");
        // Any AWS client decrypts it with encryption_context(ctx) ...
        let map: HashMap<_, _> = encryption_context(ctx).into_iter().collect();
        assert_eq!(
            admin().decrypt(&arn, &env.ciphertext, map).as_deref(),
            Some(&[9u8; 24][..])
        );
        // ... and with nothing else.
        assert_eq!(admin().decrypt(&arn, &env.ciphertext, HashMap::new()), None);
        // A wrong context through the root: Authentication, saying no more.
        let e = root.unwrap_key(&env, b"other").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    }
}

#[test]
fn a_keychain_saved_under_aws_kms_loads_only_through_it() {
    let _t = Ticket::acquire();
    let root = fresh_root();
    let kc = Keychain::generate().expect("generate");
    let sealed = kc.seal(b"secret", b"aad").expect("seal");
    let saved = kc.save(&root).expect("save");
    assert!(keystrata::root::wrapped::is_wrapped(&saved));
    let loaded = Keychain::load(&saved, &root).expect("load");
    assert_eq!(loaded.unseal(&sealed, b"aad").expect("unseal"), b"secret");
    // Through the same key named by alias, it loads.
    let alias = fresh_alias("kc");
    admin().create_alias(&alias, root.key_arn());
    let by_alias = AwsKmsRoot::connect(config(&alias)).expect("by alias");
    Keychain::load(&saved, &by_alias).expect("load by alias");
    // Another KMS key cannot open it; nor can an age root.
    let e = Keychain::load(&saved, &fresh_root()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
    let e = Keychain::load(&saved, &AgeRoot::generate()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
    // Changed bytes never load.
    let mut t = saved.clone();
    let n = t.len();
    t[n - 1] ^= 1;
    let e = Keychain::load(&t, &root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    // A keychain bound to a file under the root.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kc.ks");
    let bound = Keychain::open(&path, &root).expect("open");
    let blob = bound.encrypt(b"doc", b"").expect("encrypt");
    drop(bound);
    let again = Keychain::open(&path, &root).expect("open again");
    assert_eq!(again.decrypt(&blob, b"").expect("decrypt"), b"doc");
}

#[test]
fn disabled_and_deleted_keys_are_reported_clearly() {
    let _t = Ticket::acquire();
    let root = fresh_root();
    let arn = root.key_arn().to_owned();
    let env = root.wrap_key(&[1u8; 32], b"").expect("wrap while enabled");
    let saved = Keychain::generate()
        .expect("generate")
        .save(&root)
        .expect("save");

    admin().disable(&arn);
    let e = root.wrap_key(&[1u8; 32], b"").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyDisabled, "{e}");
    assert!(e.message().contains(&arn), "{e}");
    assert_eq!(kind(root.unwrap_key(&env, b"")), ErrorKind::KeyDisabled);
    assert_eq!(kind(root.health_check()), ErrorKind::KeyDisabled);
    assert_eq!(kind(Keychain::load(&saved, &root)), ErrorKind::KeyDisabled);
    let e = AwsKmsRoot::connect(config(&arn)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyDisabled, "{e}");
    assert!(e.message().contains("disabled"), "{e}");

    admin().enable(&arn);
    assert_eq!(
        root.unwrap_key(&env, b"")
            .expect("enabled again")
            .expose_secret(),
        &[1u8; 32]
    );
    root.health_check().expect("healthy again");

    admin().schedule_deletion(&arn);
    let e = root.wrap_key(&[1u8; 32], b"").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyDestroyed, "{e}");
    assert!(e.message().contains("pending deletion"), "{e}");
    assert_eq!(kind(root.unwrap_key(&env, b"")), ErrorKind::KeyDestroyed);
    assert_eq!(kind(root.health_check()), ErrorKind::KeyDestroyed);
    assert_eq!(
        kind(AwsKmsRoot::connect(config(&arn))),
        ErrorKind::KeyDestroyed
    );
    // A cancelled deletion leaves the key disabled, as in AWS.
    admin().cancel_deletion(&arn);
    assert_eq!(kind(root.wrap_key(&[1u8; 32], b"")), ErrorKind::KeyDisabled);
}

#[test]
fn unknown_keys_and_keys_of_another_kind() {
    let _t = Ticket::acquire();
    for missing in [
        "alias/ks-test-no-such-alias".to_owned(),
        "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000".to_owned(),
    ] {
        let e = AwsKmsRoot::connect(config(&missing)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
    }
    let signing = admin().create_key(KeySpec::EccNistP256, KeyUsageType::SignVerify);
    let e = AwsKmsRoot::connect(config(&signing)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains("ECC_NIST_P256"), "{e}");
    // An envelope of another KMS key: UnknownKey before KMS is asked.
    let a = fresh_root();
    let b = fresh_root();
    let env = a.wrap_key(&[3u8; 32], b"").expect("wrap");
    let e = b.unwrap_key(&env, b"").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
}

#[test]
fn clones_share_one_handle_and_debug_shows_no_secret() {
    let _t = Ticket::acquire();
    let root = fresh_root();
    let clone = root.clone();
    let s = format!("{root:?}");
    assert!(
        s.contains("AwsKmsRoot") && s.contains(root.key_arn()),
        "{s}"
    );
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("test credentials");
    assert!(!s.contains(&secret), "{s}");
    root.close().expect("close");
    assert_eq!(
        kind(clone.wrap_key(&[1u8; 32], b"")),
        ErrorKind::Unavailable
    );
}

#[test]
fn a_root_works_from_inside_an_async_runtime() {
    let _t = Ticket::acquire();
    let root = fresh_root();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let back = rt.block_on(async {
        let env = root.wrap_key(&[4u8; 32], b"async").expect("wrap in async");
        root.unwrap_key(&env, b"async").expect("unwrap in async")
    });
    assert_eq!(back.expose_secret(), &[4u8; 32]);
}

/// `aws-kms:` URIs (docs/ROOTS.md) reach the same key as a config.
#[test]
fn an_aws_kms_uri_opens_the_same_key() {
    let _t = Ticket::acquire();
    let arn = admin().symmetric_key();
    let alias = fresh_alias("uri");
    admin().create_alias(&alias, &arn);
    let url = endpoint();
    let kc = Keychain::generate().expect("generate");
    let by_arn = keystrata::root::from_uri(&format!("aws-kms:{arn}?endpoint-url={url}&timeout=2"))
        .expect("open by ARN");
    assert_eq!(by_arn.provider(), "aws-kms");
    let saved = kc.save(&*by_arn).expect("save through the URI root");
    for uri in [
        format!("aws-kms:{alias}?region={REGION}&endpoint-url={url}"),
        format!(
            "aws-kms:{}?region={REGION}&endpoint-url={}",
            alias.replace('/', "%2F"),
            url.replace(':', "%3A")
        ),
    ] {
        let root = keystrata::root::from_uri(&uri).expect(&uri);
        assert_eq!(
            Keychain::load(&saved, &*root)
                .expect("load")
                .keys()
                .expect("keys"),
            kc.keys().expect("keys")
        );
    }
    let direct = AwsKmsRoot::connect(config(&alias)).expect("by config");
    Keychain::load(&saved, &direct).expect("load by config");
    // No such alias: UnknownKey; credentials in the URI: refused unread.
    let e = keystrata::root::from_uri(&format!(
        "aws-kms:alias/ks-test-none?region={REGION}&endpoint-url={url}"
    ))
    .map(|_| ())
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
    let e = keystrata::root::from_uri(&format!(
        "aws-kms:{alias}?region={REGION}&secret-access-key=wJalrXUtnFEMI"
    ))
    .map(|_| ())
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(!e.message().contains("wJalrXUtnFEMI"), "{e}");
}

#[test]
fn nothing_listening_is_unavailable_quickly() {
    // A port that was just free: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let c = config("alias/x").with_endpoint_url(format!("http://127.0.0.1:{port}"));
    let t = Instant::now();
    let e = AwsKmsRoot::connect(c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        t.elapsed() <= TIMEOUT + Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn a_silent_server_times_out() {
    // Accepts TCP but never answers: the call must give up on time.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut c = config("alias/x").with_endpoint_url(format!("http://127.0.0.1:{port}"));
    c.timeout = Duration::from_millis(700);
    let t = Instant::now();
    let e = AwsKmsRoot::connect(c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    drop(listener);
}

/// A real stop and start: while stopped, calls fail with Unavailable
/// within the timeout (connection refused, after the SDK's retries); after
/// the start the same root talks to the new server, which (moto keeps keys
/// in memory) no longer knows the key.
#[test]
fn a_restarted_server_is_reconnected() {
    let ticket = Ticket::acquire();
    let root = fresh_root();
    let env = root.wrap_key(&[8u8; 32], b"r").expect("wrap");
    take_server(1);
    struct Restart;
    impl Drop for Restart {
        fn drop(&mut self) {
            ctl("start");
            give_server_back(1);
        }
    }
    let restart = Restart;
    ctl("stop");
    let t = Instant::now();
    assert_eq!(kind(root.unwrap_key(&env, b"r")), ErrorKind::Unavailable);
    assert_eq!(kind(root.health_check()), ErrorKind::Unavailable);
    assert!(
        t.elapsed() < TIMEOUT * 2 + Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    drop(restart);
    // Reconnected by itself: the first call reaches the new server.
    let e = root.unwrap_key(&env, b"r").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
    assert_eq!(kind(root.health_check()), ErrorKind::UnknownKey);
    // And a key made after the restart serves.
    let fresh = fresh_root();
    let env = fresh
        .wrap_key(&[8u8; 32], b"r")
        .expect("wrap after restart");
    assert_eq!(
        fresh
            .unwrap_key(&env, b"r")
            .expect("unwrap")
            .expose_secret(),
        &[8u8; 32]
    );
    drop(ticket);
}

// ---------------------------------------------------------------------
// AwsKmsSigner: the Signer conformance suite and its own checks.
// ---------------------------------------------------------------------

#[cfg(feature = "aws-lc")]
mod signer {
    use std::sync::Arc;

    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    use keystrata::sign::{verify, AwsKmsSigner, Signer};
    use keystrata::{Algorithm, ErrorKind, PublicKeyFormat};

    use super::{admin, config, Ticket};

    /// A signer that keeps its test's ticket.
    pub(super) struct GatedSigner {
        signer: AwsKmsSigner,
        _ticket: Arc<Ticket>,
    }

    impl Signer for GatedSigner {
        fn algorithm(&self) -> keystrata::Result<Algorithm> {
            self.signer.algorithm()
        }
        fn public_key(&self, format: PublicKeyFormat) -> keystrata::Result<Vec<u8>> {
            self.signer.public_key(format)
        }
        fn sign(&self, message: &[u8]) -> keystrata::Result<Vec<u8>> {
            self.signer.sign(message)
        }
        fn sign_digest(&self, digest: &[u8]) -> keystrata::Result<Vec<u8>> {
            self.signer.sign_digest(digest)
        }
        fn health_check(&self) -> keystrata::Result<()> {
            self.signer.health_check()
        }
        fn close(&self) -> keystrata::Result<()> {
            self.signer.close()
        }
    }

    pub(super) fn gated(spec: KeySpec) -> GatedSigner {
        let ticket = Ticket::acquire();
        let arn = admin().create_key(spec, KeyUsageType::SignVerify);
        GatedSigner {
            signer: AwsKmsSigner::open(config(&arn)).expect("open the AWS KMS signer"),
            _ticket: ticket,
        }
    }

    macro_rules! aws_kms_signer {
        ($name:ident, $spec:expr) => {
            mod $name {
                use keystrata::sign::Signer;

                fn make() -> Box<dyn Signer> {
                    Box::new(super::gated($spec))
                }
                crate::signer_conformance::signer_suite!(make);
            }
        };
    }

    aws_kms_signer!(signer_ecdsa_p256, aws_sdk_kms::types::KeySpec::EccNistP256);
    aws_kms_signer!(
        signer_ecdsa_secp256k1,
        aws_sdk_kms::types::KeySpec::EccSecgP256K1
    );

    #[test]
    fn algorithms_public_keys_and_kinds_of_keys() {
        let _t = Ticket::acquire();
        for (spec, alg) in [
            (KeySpec::EccNistP256, Algorithm::EcdsaP256),
            (KeySpec::EccSecgP256K1, Algorithm::EcdsaSecp256k1),
        ] {
            let arn = admin().create_key(spec, KeyUsageType::SignVerify);
            let s = AwsKmsSigner::open(config(&arn)).expect("open");
            assert_eq!(s.algorithm().expect("algorithm"), alg);
            assert_eq!(s.key_arn(), arn);
            // The public key is KMS's own SPKI, byte for byte.
            let der = admin()
                .rt
                .block_on(admin().kms.get_public_key().key_id(&arn).send())
                .expect("GetPublicKey")
                .public_key
                .expect("PublicKey")
                .into_inner();
            assert_eq!(s.public_key(PublicKeyFormat::Der).expect("der"), der);
            assert_eq!(
                s.public_key(PublicKeyFormat::Minisign).unwrap_err().kind(),
                ErrorKind::Unsupported
            );
            // A second handle on the same key signs what the first verifies.
            let other = AwsKmsSigner::open(config(&arn)).expect("open again");
            let raw = s.public_key(PublicKeyFormat::Raw).expect("raw");
            verify(alg, &raw, b"m", &other.sign(b"m").expect("sign")).expect("verify");
            s.health_check().expect("health");
        }
        for (spec, usage) in [
            (KeySpec::EccNistP384, KeyUsageType::SignVerify),
            (KeySpec::Rsa2048, KeyUsageType::SignVerify),
            (KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt),
        ] {
            let arn = admin().create_key(spec.clone(), usage);
            let e = AwsKmsSigner::open(config(&arn)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{spec:?}: {e}");
        }
        let e = AwsKmsSigner::open(config("alias/ks-test-no-such-signer")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
    }

    /// DisableKey in KMS: the very next signature fails with KeyDisabled
    /// (nothing is cached); EnableKey: it signs again.
    #[test]
    fn a_disabled_key_stops_signing_at_once() {
        let _t = Ticket::acquire();
        let arn = admin().create_key(KeySpec::EccNistP256, KeyUsageType::SignVerify);
        let s = AwsKmsSigner::open(config(&arn)).expect("open");
        s.sign(b"before").expect("sign while enabled");
        admin().disable(&arn);
        let e = s.sign(b"after").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KeyDisabled, "{e}");
        assert_eq!(
            s.sign_digest(&[1; 32]).unwrap_err().kind(),
            ErrorKind::KeyDisabled
        );
        assert_eq!(s.health_check().unwrap_err().kind(), ErrorKind::KeyDisabled);
        assert_eq!(
            AwsKmsSigner::open(config(&arn)).unwrap_err().kind(),
            ErrorKind::KeyDisabled
        );
        admin().enable(&arn);
        s.sign(b"again").expect("sign after enabling");
        admin().schedule_deletion(&arn);
        assert_eq!(s.sign(b"gone").unwrap_err().kind(), ErrorKind::KeyDestroyed);
    }
}
