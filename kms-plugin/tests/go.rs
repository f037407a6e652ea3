//! Runs the Go tests in tests/kms-plugin/ against the plugin as a real
//! process (src/bin/keystrata-kms-plugin.rs): the upstream `k8s.io/kms/apis/v2` client
//! and kube-apiserver's own KMS v2 code (`k8s.io/apiserver`'s kmsv2 gRPC
//! service and envelope transformer) over the unix socket, with rotations
//! made by another process (examples/admin.rs), restarts, stale sockets
//! and a stop under load.
//!
//! This test builds the examples, makes an age identity and a keychain in
//! a temporary directory, starts the shared plugin, runs `go test`, then
//! stops the plugin with SIGTERM and checks that it exited cleanly and
//! removed its socket. With the `etcd` feature and the etcd peer running
//! (`KS_TEST_ETCD_ENDPOINTS`, set by `scripts/peers.sh start`), the whole
//! Go suite runs a second time over a keychain in etcd.
//!
//! Needs Go (1.26; `GOTOOLCHAIN=local`) and the Go module proxy the first
//! time (k8s.io/kms, k8s.io/apiserver, gRPC, prometheus/common).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keystrata::root::ExposeSecret as _;
use keystrata::AgeRoot;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Builds the plugin program and the admin example with this test's profile and features (a
/// no-op when `cargo test` built them already) and returns their paths.
fn examples() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("the test's path");
    // target/<profile>/deps/go-HASH -> target/<profile>/examples/
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(repo()).args([
        "build",
        "--quiet",
        "-p",
        "keystrata-kms-plugin",
        "--bin",
        "keystrata-kms-plugin",
        "--example",
        "admin",
    ]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let features: Vec<&str> = [
        ("etcd", cfg!(feature = "etcd")),
        ("pkcs11", cfg!(feature = "pkcs11")),
        ("kmip", cfg!(feature = "kmip")),
        ("aws-kms", cfg!(feature = "aws-kms")),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(f, _)| *f)
    .collect();
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let status = cmd.status().expect("running cargo build for the examples");
    assert!(
        status.success(),
        "building keystrata-kms-plugin and the admin example failed"
    );
    (
        profile_dir.join("keystrata-kms-plugin"),
        profile_dir.join("examples").join("admin"),
    )
}

fn go() -> Command {
    let mut cmd = Command::new("go");
    cmd.env("GOTOOLCHAIN", "local");
    cmd
}

fn require_go() {
    match go().arg("version").output() {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "Go is needed for the KMS plugin tests (the upstream k8s.io/kms client): install \
             Go 1.26 or later (https://go.dev/dl/, e.g. `curl -LO https://go.dev/dl/go1.26.0.linux-amd64.tar.gz \
             && sudo tar -C /usr/local -xzf go1.26.0.linux-amd64.tar.gz` and put /usr/local/go/bin \
             on PATH) and run the tests again"
        ),
    }
}

/// A plugin process started by this test.
struct Served {
    child: Child,
    socket: PathBuf,
    metrics: String,
}

impl Served {
    fn start(serve: &Path, keychain: &str, root: &str, socket: &Path) -> Served {
        let mut child = Command::new(serve)
            .args(["--keychain", keychain, "--root", root])
            .arg("--listen")
            .arg(format!("unix://{}", socket.display()))
            .args(["--metrics-listen", "127.0.0.1:0", "--refresh-ms", "100"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the serve example");
        // The "ready" line comes once both sockets are bound (or stdout
        // closes when it fails).
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the plugin did not say ready within 120 s");
        assert!(
            line.starts_with("ready "),
            "the plugin did not start: {line:?}"
        );
        let metrics = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("metrics="))
            .expect("metrics= in the ready line")
            .to_string();
        Served {
            child,
            socket: socket.to_path_buf(),
            metrics,
        }
    }

    /// SIGTERM; the plugin must exit 0 within 30 s and remove its socket.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(s) = self.child.try_wait().expect("waiting for the plugin") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "the plugin did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            exit.success(),
            "the plugin exited with {exit} after SIGTERM"
        );
        assert!(
            !self.socket.exists(),
            "the plugin left its socket {} behind",
            self.socket.display()
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the Go suite against a plugin serving `keychain`.
fn run_go_suite(label: &str, keychain: &str) {
    require_go();
    let (serve, admin) = examples();
    let dir = tempfile::Builder::new()
        .prefix("kmsgo")
        .tempdir()
        .expect("tempdir");
    let identity = dir.path().join("root.key");
    let root = AgeRoot::generate();
    let ids: Vec<String> = root
        .insecure_identity_strings()
        .iter()
        .map(|s| s.expose_secret().to_string())
        .collect();
    std::fs::write(&identity, format!("{}\n", ids.join("\n"))).expect("writing the identity");
    let root_uri = format!("age:{}", identity.display());
    let keychain = keychain.replace("{dir}", &dir.path().display().to_string());
    let socket = dir.path().join("shared.sock");

    let served = Served::start(&serve, &keychain, &root_uri, &socket);
    let out = go()
        .current_dir(repo().join("tests/kms-plugin"))
        .args(["test", "-count=1", "-v", "./..."])
        .env("KMS_PLUGIN_SERVE", &serve)
        .env("KMS_PLUGIN_ADMIN", &admin)
        .env("KMS_PLUGIN_ROOT", &root_uri)
        .env("KMS_PLUGIN_KEYCHAIN", &keychain)
        .env("KMS_PLUGIN_SOCKET", &socket)
        .env("KMS_PLUGIN_METRICS", &served.metrics)
        .output()
        .expect("running go test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let passed = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("--- PASS"))
        .count();
    let failed = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("--- FAIL"))
        .count();
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    println!("kms-plugin Go suite ({label}): {passed} passed, {failed} failed");
    assert!(
        out.status.success() && failed == 0 && passed > 0,
        "the Go suite failed ({label}): {passed} passed, {failed} failed"
    );
    served.stop();
}

#[test]
fn upstream_go_client_against_a_file_keychain() {
    run_go_suite("file keychain", "{dir}/keychain.age");
}

#[cfg(feature = "etcd")]
#[test]
fn upstream_go_client_against_an_etcd_keychain() {
    let Ok(endpoints) = std::env::var("KS_TEST_ETCD_ENDPOINTS") else {
        assert!(
            std::env::var_os("KEYSTRATA_REQUIRE_PEERS").is_none(),
            "KS_TEST_ETCD_ENDPOINTS is not set: start the peers (eval \"$(bash scripts/peers.sh start)\")"
        );
        eprintln!(
            "no etcd peer (KS_TEST_ETCD_ENDPOINTS): the etcd run is left out; \
             eval \"$(bash scripts/peers.sh start)\" to include it"
        );
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let prefix = std::env::var("KS_TEST_ETCD_PREFIX").unwrap_or_else(|_| "/keystrata-test/".into());
    run_go_suite(
        "etcd keychain",
        &format!("etcd://{endpoints}{prefix}kms-plugin/{nanos}"),
    );
}
