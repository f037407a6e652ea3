//! The plugin served in this process, called over its unix socket by a
//! gRPC client: what needs a root that can be made to fail or to hold a
//! request in flight (a custom root over a real keychain, behind a real
//! file store), and the HTTP side. The upstream Go client's tests are in
//! tests/go.rs.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use keystrata::root::CustomRoot;
use keystrata::{
    store, Envelope, Error, ErrorKind, KeyManager, Keychain, OpenOptions, Policy, SecretBytes,
};
use keystrata_kms_plugin::proto::v2::key_management_service_client::KeyManagementServiceClient;
use keystrata_kms_plugin::proto::v2::{EncryptRequest, StatusRequest};
use keystrata_kms_plugin::{Plugin, PluginConfig, AAD};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;

/// A root over a keychain of its own that can be told to fail with
/// `Unavailable` or to hold `wrap_key` until released.
struct Switchable {
    kc: Keychain,
    ctl: Arc<Control>,
}

#[derive(Default)]
struct Control {
    fail: AtomicBool,
    held: Mutex<bool>,
    release: Condvar,
    entered: Mutex<Option<mpsc::Sender<()>>>,
}

impl Control {
    fn hold(&self) -> mpsc::Receiver<()> {
        let (tx, rx) = mpsc::channel();
        *self.entered.lock().unwrap() = Some(tx);
        *self.held.lock().unwrap() = true;
        rx
    }
    fn release(&self) {
        *self.held.lock().unwrap() = false;
        self.release.notify_all();
    }
}

impl KeyManager for Switchable {
    fn provider(&self) -> &str {
        "test-switchable"
    }
    fn wrap_key(&self, key: &[u8], ctx: &[u8]) -> keystrata::Result<Envelope> {
        if let Some(tx) = self.ctl.entered.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let mut held = self.ctl.held.lock().unwrap();
        while *held {
            held = self.ctl.release.wait(held).unwrap();
        }
        drop(held);
        if self.ctl.fail.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Unavailable, "the test KMS is down"));
        }
        self.kc.wrap_key(key, ctx)
    }
    fn unwrap_key(&self, env: &Envelope, ctx: &[u8]) -> keystrata::Result<SecretBytes> {
        let mut env = env.clone();
        env.provider = "keystrata".into();
        self.kc.unwrap_key(&env, ctx)
    }
    fn active_key_version(&self) -> keystrata::Result<u32> {
        self.kc.active_key_version()
    }
    fn health_check(&self) -> keystrata::Result<()> {
        Ok(())
    }
    fn close(&self) -> keystrata::Result<()> {
        Ok(())
    }
}

/// A keychain in a file store under a switchable root, reserving one
/// usage count at a time, so an encryption after the first needs the root
/// (the reservation is written, protected by the root, before the count
/// is used).
fn keychain(dir: &Path) -> (Arc<Keychain>, Arc<Control>) {
    let ctl = Arc::new(Control::default());
    let root = CustomRoot::new(Switchable {
        kc: Keychain::generate().unwrap(),
        ctl: Arc::clone(&ctl),
    })
    .unwrap();
    let kc = OpenOptions::new()
        .policy(Policy {
            usage_block: 1,
            ..Policy::default()
        })
        .open_store(
            store::open_location(&dir.join("keychain")).unwrap(),
            Arc::new(root),
        )
        .unwrap();
    (Arc::new(kc), ctl)
}

async fn client(path: PathBuf) -> KeyManagementServiceClient<Channel> {
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .unwrap();
    KeyManagementServiceClient::new(channel)
}

fn encrypt_req(n: usize) -> EncryptRequest {
    EncryptRequest {
        plaintext: vec![0x42; n],
        uid: "test".into(),
    }
}

/// Waits for `cond`, checking every few milliseconds, for at most 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_root_is_unavailable_and_unhealthy_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let (kc, ctl) = keychain(dir.path());
    let sock = dir.path().join("p.sock");
    let plugin = Plugin::bind(
        Arc::clone(&kc),
        PluginConfig::new(format!("unix://{}", sock.display())),
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(plugin.serve(async {
        let _ = stopped.await;
    }));
    let mut c = client(sock.clone()).await;

    // The count reserved when the keychain was made: no root call.
    ctl.fail.store(true, Ordering::SeqCst);
    let first = c.encrypt(encrypt_req(32)).await.unwrap().into_inner();
    // The next one needs a reservation, which the root cannot protect.
    let e = c.encrypt(encrypt_req(32)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().contains("the test KMS is down"), "{e:?}");
    let s = c.status(StatusRequest {}).await.unwrap().into_inner();
    assert!(s.healthz.starts_with("keystrata: Unavailable"), "{s:?}");
    assert_eq!(s.version, "v2");
    assert_eq!(s.key_id, first.key_id, "the last key_id is still reported");
    // Decryption needs no root.
    let d = c
        .decrypt(keystrata_kms_plugin::proto::v2::DecryptRequest {
            ciphertext: first.ciphertext.clone(),
            uid: "d".into(),
            key_id: first.key_id.clone(),
            annotations: first.annotations.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.plaintext, vec![0x42; 32]);

    ctl.fail.store(false, Ordering::SeqCst);
    let s = c.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(s.healthz, "ok");
    let again = c.encrypt(encrypt_req(32)).await.unwrap().into_inner();
    assert_eq!(again.key_id, first.key_id);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert!(!sock.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_removes_the_socket_at_once_and_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (kc, ctl) = keychain(dir.path());
    let sock = dir.path().join("p.sock");
    let plugin = Plugin::bind(
        Arc::clone(&kc),
        PluginConfig::new(format!("unix://{}", sock.display())),
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(plugin.serve(async {
        let _ = stopped.await;
    }));
    let mut c = client(sock.clone()).await;
    c.encrypt(encrypt_req(32)).await.unwrap();

    // Hold the next Encrypt inside the root, then ask the plugin to stop.
    let entered = ctl.hold();
    let mut c2 = c.clone();
    let in_flight = tokio::spawn(async move { c2.encrypt(encrypt_req(7)).await });
    tokio::task::spawn_blocking(move || entered.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the Encrypt reached the root");
    let _ = stop.send(());
    eventually("the socket file to go", || !sock.exists()).await;
    assert!(
        std::os::unix::net::UnixStream::connect(&sock).is_err(),
        "no new connection once stopping"
    );
    assert!(!server.is_finished(), "a request is still in flight");

    ctl.release();
    let resp = in_flight
        .await
        .unwrap()
        .expect("the request in flight finished");
    let resp = resp.into_inner();
    server.await.unwrap().unwrap();
    assert_eq!(kc.unseal(&resp.ciphertext, AAD).unwrap(), vec![0x42; 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let (kc, ctl) = keychain(dir.path());
    let sock = dir.path().join("p.sock");
    let mut config = PluginConfig::new(format!("unix://{}", sock.display()));
    config.shutdown_grace = Duration::from_millis(200);
    let plugin = Plugin::bind(Arc::clone(&kc), config).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(plugin.serve(async {
        let _ = stopped.await;
    }));
    let mut c = client(sock.clone()).await;
    c.encrypt(encrypt_req(32)).await.unwrap();
    let entered = ctl.hold();
    let mut c2 = c.clone();
    let in_flight = tokio::spawn(async move { c2.encrypt(encrypt_req(7)).await });
    tokio::task::spawn_blocking(move || entered.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the Encrypt reached the root");
    let t = Instant::now();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(!sock.exists());
    ctl.release();
    // The client sees the connection end, not a response.
    assert!(in_flight.await.unwrap().is_err());
}

/// One HTTP/1.1 request on a fresh connection; the whole response.
fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_healthz_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (kc, ctl) = keychain(dir.path());
    let sock = dir.path().join("p.sock");
    let mut config = PluginConfig::new(format!("unix://{}", sock.display()));
    config.metrics_listen = Some("127.0.0.1:0".into());
    let plugin = Plugin::bind(Arc::clone(&kc), config).unwrap();
    let addr = plugin.metrics_addr().unwrap();
    assert_ne!(addr.port(), 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(plugin.serve(async {
        let _ = stopped.await;
    }));
    let mut c = client(sock.clone()).await;
    let enc = c.encrypt(encrypt_req(32)).await.unwrap().into_inner();
    let bad = c.encrypt(encrypt_req(0)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    let m = tokio::task::spawn_blocking(move || http(addr, "GET", "/metrics"))
        .await
        .unwrap();
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    assert!(
        m.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{m}"
    );
    // The plugin's own metrics and the keychain's.
    assert!(
        m.contains("kms_plugin_requests_total{method=\"Encrypt\",code=\"OK\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains("kms_plugin_requests_total{method=\"Encrypt\",code=\"InvalidArgument\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "kms_plugin_key_info{{key_id=\"{}\"}} 1",
            enc.key_id
        )),
        "{m}"
    );
    assert!(m.contains("kms_seal_total"), "{m}");

    let h = tokio::task::spawn_blocking(move || http(addr, "GET", "/healthz"))
        .await
        .unwrap();
    assert!(h.starts_with("HTTP/1.1 200") && h.ends_with("ok\n"), "{h}");
    ctl.fail.store(true, Ordering::SeqCst);
    // The first probe may still use the block reserved by the Encrypt.
    let mut h = String::new();
    for _ in 0..3 {
        h = tokio::task::spawn_blocking(move || http(addr, "GET", "/healthz"))
            .await
            .unwrap();
        if h.starts_with("HTTP/1.1 503") {
            break;
        }
    }
    assert!(
        h.starts_with("HTTP/1.1 503") && h.contains("keystrata: Unavailable"),
        "{h}"
    );
    ctl.fail.store(false, Ordering::SeqCst);
    let r = tokio::task::spawn_blocking(move || http(addr, "POST", "/metrics"))
        .await
        .unwrap();
    assert!(
        r.starts_with("HTTP/1.1 405") && r.contains("allow: GET, HEAD"),
        "{r}"
    );
    let r = tokio::task::spawn_blocking(move || http(addr, "GET", "/"))
        .await
        .unwrap();
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the metrics port is closed after shutdown"
    );
}

#[test]
fn bind_errors() {
    let dir = tempfile::tempdir().unwrap();
    let kc = Arc::new(Keychain::generate().unwrap());
    let e = Plugin::bind(Arc::clone(&kc), PluginConfig::new("tcp://127.0.0.1:1")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let sock = dir.path().join("p.sock");
    let mut config = PluginConfig::new(format!("unix://{}", sock.display()));
    config.metrics_listen = Some("not an address".into());
    let e = Plugin::bind(Arc::clone(&kc), config.clone()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(!sock.exists(), "nothing is left behind");
    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    config.metrics_listen = Some(taken.local_addr().unwrap().to_string());
    let e = Plugin::bind(Arc::clone(&kc), config.clone()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    // A live socket.
    config.metrics_listen = None;
    let first = Plugin::bind(Arc::clone(&kc), config.clone()).unwrap();
    let e = Plugin::bind(Arc::clone(&kc), config.clone()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(first.socket_path(), sock);
    drop(first);
    assert!(
        !sock.exists(),
        "dropping an unserved plugin removes its socket"
    );
}
