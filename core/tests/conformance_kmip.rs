//! The KMIP root against a real PyKMIP server: the KeyManager conformance
//! suite in KMIP 1.4 and 2.0, and the root's own behaviour (keys by name
//! and by identifier, revoked and destroyed keys, certificates, outages).
//!
//! Needs the server started by `scripts/peers/pykmip.sh` (through
//! `scripts/peers.sh` or `make test`) and its KS_TEST_KMIP_* variables.
//! Built only with the `peer-tests` feature.
//!
//! The outage check stops the shared server, so every test holds a ticket
//! of a process-wide gate while it talks to the server, and the outage
//! check waits until it is the only one before stopping it.

mod conformance;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use conformance::{Backend, Outage};
use keystrata::root::kmip::{KmipVersion, RevocationReason};
use keystrata::{
    AgeRoot, Envelope, ErrorKind, KeyManager, Keychain, KmipConfig, KmipKeyRef, KmipRoot,
    SecretBytes,
};

const TIMEOUT: Duration = Duration::from_secs(2);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "KMIP peer not started: run `eval \"$(bash scripts/peers.sh start)\"` or `make test` \
             ({name} is not set)"
        )
    })
}

fn config(key: KmipKeyRef, version: KmipVersion) -> KmipConfig {
    let port = env("KS_TEST_KMIP_PORT").parse().expect("KS_TEST_KMIP_PORT");
    let mut c = KmipConfig::new(env("KS_TEST_KMIP_HOST"), port, key)
        .with_pem_files(
            env("KS_TEST_KMIP_CA"),
            env("KS_TEST_KMIP_CERT"),
            env("KS_TEST_KMIP_KEY"),
        )
        .expect("read the test certificates");
    c.timeout = TIMEOUT;
    c.version = version;
    c
}

/// A key name no other test (or earlier run) uses.
fn fresh_name(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!(
        "ks-test-{what}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ---- the gate between the outage check and everything else ----

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

/// Stops and starts the shared PyKMIP server through its control script,
/// once every other test has let go of it.
struct PyKmipOutage {
    _ticket: Arc<Ticket>,
    stopped: AtomicUsize,
}

fn ctl(verb: &str) {
    let status = Command::new("bash")
        .arg(env("KS_TEST_KMIP_CTL"))
        .arg(verb)
        .arg(env("KS_TEST_KMIP_DIR"))
        .status()
        .expect("run the PyKMIP control script");
    assert!(status.success(), "pykmip.sh {verb} failed");
}

impl Outage for PyKmipOutage {
    fn stop(&self) {
        let mut g = gate();
        g.readers -= 1; // our own ticket
        while g.writer || g.readers > 0 {
            g = GATE_CV.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        g.writer = true;
        drop(g);
        self.stopped.store(1, Ordering::SeqCst);
        ctl("stop");
    }
    fn start(&self) {
        ctl("start");
        self.release();
    }
}

impl PyKmipOutage {
    fn release(&self) {
        if self.stopped.swap(0, Ordering::SeqCst) == 1 {
            let mut g = gate();
            g.writer = false;
            g.readers += 1;
            drop(g);
            GATE_CV.notify_all();
        }
    }
}

impl Drop for PyKmipOutage {
    fn drop(&mut self) {
        // A check that failed mid-outage must not leave the server down.
        if self.stopped.load(Ordering::SeqCst) == 1 {
            ctl("start");
            self.release();
        }
    }
}

/// A KmipRoot that keeps its test's ticket.
struct Gated {
    root: KmipRoot,
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

fn fresh_root(version: KmipVersion, what: &str) -> KmipRoot {
    let mut c = config(KmipKeyRef::Name(fresh_name(what)), version);
    c.create_key = true;
    KmipRoot::connect(c).expect("connect with a fresh named key")
}

fn backend_for(version: KmipVersion) -> Backend {
    let ticket = Ticket::acquire();
    let root = fresh_root(version, "suite");
    Backend {
        km: Arc::new(Gated {
            root,
            _ticket: ticket.clone(),
        }),
        timeout: TIMEOUT,
        outage: Some(Box::new(PyKmipOutage {
            _ticket: ticket,
            stopped: AtomicUsize::new(0),
        })),
    }
}

mod v1_4 {
    use super::conformance::{self, Backend};
    fn backend() -> Backend {
        super::backend_for(super::KmipVersion::V1_4)
    }
    conformance::suite!(backend);
}

mod v2_0 {
    use super::conformance::{self, Backend};
    fn backend() -> Backend {
        super::backend_for(super::KmipVersion::V2_0)
    }
    conformance::suite!(backend);
}

fn both_versions() -> [KmipVersion; 2] {
    [KmipVersion::V1_4, KmipVersion::V2_0]
}

#[test]
fn discover_versions_lists_both() {
    let _t = Ticket::acquire();
    for v in both_versions() {
        let root = fresh_root(v, "discover");
        let versions = root
            .client()
            .discover_versions()
            .expect("discover versions");
        assert!(versions.contains(&(1, 4)), "{versions:?}");
        assert!(versions.contains(&(2, 0)), "{versions:?}");
    }
}

#[test]
fn key_by_name_and_by_identifier() {
    let _t = Ticket::acquire();
    for v in both_versions() {
        let name = fresh_name("byname");
        let mut c = config(KmipKeyRef::Name(name.clone()), v);
        // No key of that name, and no permission to create one.
        let e = KmipRoot::connect(c.clone()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
        assert!(e.message().contains(&name), "{e}");
        c.create_key = true;
        let created = KmipRoot::connect(c.clone()).expect("create");
        // Found by name the second time, not created again.
        let by_name = KmipRoot::connect(c).expect("by name");
        assert_eq!(by_name.key_id(), created.key_id());
        let by_id =
            KmipRoot::connect(config(KmipKeyRef::Id(created.key_id().into()), v)).expect("by id");
        let env = by_name.wrap_key(&[7u8; 32], b"x").expect("wrap");
        assert_eq!(env.key_id, created.key_id());
        assert_eq!(
            by_id
                .unwrap_key(&env, b"x")
                .expect("unwrap")
                .expose_secret(),
            &[7u8; 32]
        );
        // An identifier the server does not know.
        let e =
            KmipRoot::connect(config(KmipKeyRef::Id("no-such-key-4711".into()), v)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
    }
}

#[test]
fn two_keys_with_one_name_are_refused() {
    let _t = Ticket::acquire();
    let name = fresh_name("twice");
    let root = fresh_root(KmipVersion::V1_4, "twice-helper");
    for _ in 0..2 {
        let id = root.client().create_aes256(Some(&name)).expect("create");
        root.client().activate(&id).expect("activate");
    }
    let e = KmipRoot::connect(config(KmipKeyRef::Name(name), KmipVersion::V1_4)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
}

#[test]
fn a_keychain_saved_under_kmip_loads_only_through_it() {
    let _t = Ticket::acquire();
    for v in both_versions() {
        let root = fresh_root(v, "keychain");
        let kc = Keychain::generate().expect("generate");
        let sealed = kc.seal(b"secret", b"aad").expect("seal");
        let saved = kc.save(&root).expect("save");
        let loaded = Keychain::load(&saved, &root).expect("load");
        assert_eq!(loaded.unseal(&sealed, b"aad").expect("unseal"), b"secret");
        // Another KMIP key cannot open it.
        let other = fresh_root(v, "keychain-other");
        let e = Keychain::load(&saved, &other).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::UnknownKey | ErrorKind::Authentication),
            "{e}"
        );
        // Nor can an age root: not its format.
        let e = Keychain::load(&saved, &AgeRoot::generate()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Format, "{e}");
        // Through the same key named by identifier, it loads.
        let by_id =
            KmipRoot::connect(config(KmipKeyRef::Id(root.key_id().into()), v)).expect("by id");
        Keychain::load(&saved, &by_id).expect("load by id");
    }
}

#[test]
fn revoked_and_destroyed_keys_are_reported_clearly() {
    let _t = Ticket::acquire();
    for v in both_versions() {
        let root = fresh_root(v, "revoke");
        let id = root.key_id().to_owned();
        let env = root.wrap_key(&[1u8; 32], b"").expect("wrap while active");
        let saved = Keychain::generate()
            .expect("generate")
            .save(&root)
            .expect("save");
        root.client()
            .revoke(&id, RevocationReason::CessationOfOperation)
            .expect("revoke");

        let e = root.wrap_key(&[1u8; 32], b"").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KeyDisabled, "{e}");
        assert!(e.message().contains("revoked"), "{e}");
        let e = root.unwrap_key(&env, b"").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KeyDisabled, "{e}");
        assert_eq!(
            root.health_check().unwrap_err().kind(),
            ErrorKind::KeyDisabled
        );
        let e = Keychain::load(&saved, &root).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KeyDisabled, "{e}");
        let e = KmipRoot::connect(config(KmipKeyRef::Id(id.clone()), v)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KeyDisabled, "{e}");
        assert!(
            e.message().contains(&id) && e.message().contains("revoked"),
            "{e}"
        );

        root.client().destroy(&id).expect("destroy");
        let e = root.wrap_key(&[1u8; 32], b"").unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::KeyDestroyed | ErrorKind::UnknownKey),
            "{e}"
        );
        let e = KmipRoot::connect(config(KmipKeyRef::Id(id), v)).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::KeyDestroyed | ErrorKind::UnknownKey),
            "{e}"
        );
    }
}

#[test]
fn an_envelope_of_another_kmip_key_is_unknown() {
    let _t = Ticket::acquire();
    let a = fresh_root(KmipVersion::V1_4, "a");
    let b = fresh_root(KmipVersion::V1_4, "b");
    let env = a.wrap_key(&[3u8; 32], b"").expect("wrap");
    assert_eq!(
        b.unwrap_key(&env, b"").unwrap_err().kind(),
        ErrorKind::UnknownKey
    );
}

#[test]
fn clones_share_one_handle() {
    let _t = Ticket::acquire();
    let root = fresh_root(KmipVersion::V1_4, "clone");
    let clone = root.clone();
    root.close().expect("close");
    assert_eq!(
        clone.wrap_key(&[1u8; 32], b"").unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    let s = format!("{root:?}");
    assert!(s.contains("KmipRoot") && !s.contains("PRIVATE"), "{s}");
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl")
        .success();
    assert!(ok, "openssl {args:?}");
}

#[test]
fn a_client_certificate_not_from_the_ca_is_refused() {
    let _t = Ticket::acquire();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "k.sec1",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "k.sec1", "-out", "k.pem",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "k.pem",
            "-subj",
            "/CN=intruder",
            "-days",
            "1",
            "-addext",
            "extendedKeyUsage=clientAuth",
            "-out",
            "c.pem",
        ],
    );
    let mut c = config(KmipKeyRef::Name(fresh_name("intruder")), KmipVersion::V1_4);
    c.client_cert_pem = std::fs::read(d.join("c.pem")).expect("cert");
    c.client_key_pem = std::fs::read(d.join("k.pem")).expect("key").into();
    c.create_key = true;
    let t = Instant::now();
    let e = KmipRoot::connect(c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(e.message().contains("TLS"), "{e}");
    assert!(t.elapsed() < TIMEOUT * 2, "took {:?}", t.elapsed());
}

#[test]
fn a_server_certificate_for_another_name_is_refused() {
    let _t = Ticket::acquire();
    let mut c = config(KmipKeyRef::Name(fresh_name("name")), KmipVersion::V1_4);
    c.server_name = Some("kms.example".into());
    let e = KmipRoot::connect(c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(e.message().contains("TLS"), "{e}");
    // The certificate's DNS name works too.
    let mut c = config(KmipKeyRef::Name(fresh_name("name")), KmipVersion::V1_4);
    c.server_name = Some("localhost".into());
    c.create_key = true;
    KmipRoot::connect(c).expect("connect by DNS name");
}

#[test]
fn nothing_listening_is_unavailable_quickly() {
    // A port that was just free: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut c = config(KmipKeyRef::Name("x".into()), KmipVersion::V1_4);
    c.port = port;
    let t = Instant::now();
    let e = KmipRoot::connect(c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(t.elapsed() < TIMEOUT, "took {:?}", t.elapsed());
}

#[test]
fn a_silent_server_times_out() {
    // Accepts TCP but never speaks TLS: the handshake must give up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut c = config(KmipKeyRef::Name("x".into()), KmipVersion::V1_4);
    c.port = port;
    c.timeout = Duration::from_millis(500);
    let t = Instant::now();
    let e = KmipRoot::connect(c).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    drop(listener);
}

#[test]
fn pem_files_are_read() {
    let dir = PathBuf::from(env("KS_TEST_KMIP_DIR"));
    let c = KmipConfig::new("127.0.0.1", 5696, KmipKeyRef::Id("1".into()))
        .with_pem_files(
            dir.join("ca.pem"),
            dir.join("client.pem"),
            dir.join("client.key"),
        )
        .expect("read");
    assert!(c.ca_pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert!(!format!("{c:?}").contains("PRIVATE KEY"));
}

#[test]
fn the_first_call_after_a_server_restart_succeeds() {
    let b = backend_for(KmipVersion::V1_4);
    let outage = b.outage.as_ref().expect("outage hooks");
    // Fill the pool with a connection, then restart the server under it.
    let env = b.km.wrap_key(&[8u8; 32], b"r").expect("wrap");
    outage.stop();
    outage.start();
    // The pooled connection is dead; the client must replace it silently.
    let back =
        b.km.unwrap_key(&env, b"r")
            .expect("first call after restart");
    assert_eq!(back.expose_secret(), &[8u8; 32]);
}

/// `kmip://` URIs (docs/ROOTS.md) reach the same server and key as a
/// `KmipConfig`: what one saves the other loads, in both versions.
#[test]
fn a_kmip_uri_opens_the_same_key() {
    let _ticket = Ticket::acquire();
    let host = env("KS_TEST_KMIP_HOST");
    let port = env("KS_TEST_KMIP_PORT");
    let files = format!(
        "ca={}&cert={}&client-key={}&timeout=2",
        env("KS_TEST_KMIP_CA"),
        env("KS_TEST_KMIP_CERT"),
        env("KS_TEST_KMIP_KEY")
    );
    for (version, v) in [(KmipVersion::V1_4, "1.4"), (KmipVersion::V2_0, "2.0")] {
        let name = fresh_name("uri");
        let base = format!("kmip://{host}:{port}?key-name={name}&{files}&version={v}");
        let e = keystrata::root::from_uri(&base).map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownKey, "{e}");
        let made = keystrata::root::from_uri(&format!("{base}&x-create=true")).expect("x-create");
        assert_eq!(made.provider(), "kmip");
        let kc = Keychain::generate().expect("generate");
        let saved = kc.save(&*made).expect("save through the URI root");
        let mut c = config(KmipKeyRef::Name(name.clone()), version);
        c.create_key = false;
        let direct = KmipRoot::connect(c).expect("connect by config");
        assert_eq!(
            Keychain::load(&saved, &direct)
                .expect("load")
                .keys()
                .expect("keys"),
            kc.keys().expect("keys")
        );
        // By unique identifier, with a trailing slash after the authority.
        let by_id = format!(
            "kmip://{host}:{port}/?key-id={}&{files}&version={v}",
            direct.key_id()
        );
        let by_id = keystrata::root::from_uri(&by_id).expect("open by key-id");
        assert_eq!(
            Keychain::load(&saved, &*by_id)
                .expect("load")
                .keys()
                .expect("keys"),
            kc.keys().expect("keys")
        );
    }
    // A certificate file that does not exist: Io, before any connection.
    let e = keystrata::root::from_uri(&format!(
        "kmip://{host}:{port}?key-name=k&ca=/nonexistent/ca.pem&cert=/nonexistent/c.pem&client-key=/nonexistent/k.pem"
    ))
    .map(|_| ())
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    // Nothing listening on the port: Unavailable.
    let e = keystrata::root::from_uri(&format!("kmip://127.0.0.1:1?key-name=k&{files}"))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}
