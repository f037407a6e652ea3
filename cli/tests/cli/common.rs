//! Running the built `keystrata` binary as a user would, in a temporary
//! directory with its own age identity and keychain.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use keystrata::root::ExposeSecret;
use keystrata::AgeRoot;

pub const BIN: &str = env!("CARGO_BIN_EXE_keystrata");

/// A directory of its own under the system's temporary directory, removed
/// with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            let p = std::env::temp_dir().join(format!(
                "keystrata-cli-test-{}-{}-{nanos}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            match std::fs::create_dir(&p) {
                Ok(()) => return TempDir(p),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("creating {}: {e}", p.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// Exit code 0, or panics showing stderr.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success; stderr: {}", self.stderr);
        self
    }

    /// Exit code `code`, or panics showing both streams.
    #[track_caller]
    pub fn fails(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            code,
            "expected exit {code}; stdout: {}; stderr: {}",
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        );
        assert!(!self.stderr.is_empty(), "a failure says why on stderr");
        self
    }

    /// The error message contains `text`.
    #[track_caller]
    pub fn says(self, text: &str) -> Run {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}: {}",
            self.stderr
        );
        self
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.text()))
    }

    /// stderr parsed as the JSON error document `--json` prints.
    #[track_caller]
    pub fn json_error(&self) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(self.stderr.trim())
            .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", self.stderr));
        let err = v["error"].clone();
        assert!(err["kind"].is_string() && err["message"].is_string(), "{v}");
        assert_eq!(err["exit_code"], self.code, "{v}");
        err
    }
}

/// A temporary directory with an age identity, and a keychain location
/// in it (not created).
pub struct Env {
    pub dir: TempDir,
    pub keychain: PathBuf,
    pub root: String,
    extra: Vec<(String, String)>,
}

impl Env {
    /// An age root (`age:FILE`) and a keychain location, not created yet.
    pub fn age() -> Env {
        let dir = TempDir::new();
        let id = dir.path().join("identity.txt");
        write_age_identity(&id);
        Env {
            keychain: dir.path().join("keychain.age"),
            root: format!("age:{}", id.display()),
            dir,
            extra: Vec::new(),
        }
    }

    /// An age root and a keychain created with `keychain new`.
    pub fn with_keychain() -> Env {
        let e = Env::age();
        e.ks(&["keychain", "new"]).ok();
        e
    }

    /// Also a streaming and an Ed25519 signing primary.
    pub fn full() -> Env {
        let e = Env::with_keychain();
        e.ks(&["keychain", "rotate", "--purpose", "stream"]).ok();
        e.ks(&["keychain", "rotate", "--purpose", "sign"]).ok();
        e
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
    }

    /// Sets an environment variable for every later run.
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.extra.push((k.to_owned(), v.to_owned()));
    }

    /// The command with this environment's keychain and root (through
    /// KEYSTRATA_KEYCHAIN and KEYSTRATA_ROOT), run in its directory.
    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .env("KEYSTRATA_KEYCHAIN", &self.keychain)
            .env("KEYSTRATA_ROOT", &self.root);
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    /// Runs with `args` and no stdin.
    pub fn ks(&self, args: &[&str]) -> Run {
        run(self.command().args(args), None)
    }

    /// Runs with `args`, feeding `input` on stdin.
    pub fn ks_in(&self, args: &[&str], input: &[u8]) -> Run {
        run(self.command().args(args), Some(input))
    }

    /// The keychain's keys, through `keychain show --json`.
    pub fn keys(&self) -> Vec<serde_json::Value> {
        let v = self.ks(&["keychain", "show", "--json"]).ok().json();
        v["keys"].as_array().expect("keys").clone()
    }

    /// The primary key of `purpose`.
    pub fn primary(&self, purpose: &str) -> serde_json::Value {
        self.keys()
            .into_iter()
            .find(|k| k["purpose"] == purpose && k["primary"] == true)
            .unwrap_or_else(|| panic!("no {purpose} primary"))
    }
}

/// Writes a new age identity file, as age-keygen would.
pub fn write_age_identity(path: &Path) {
    let root = AgeRoot::generate();
    let id = root.insecure_identity_strings();
    let text = format!(
        "# public key: {}\n{}\n",
        root.recipients()[0],
        id[0].expose_secret()
    );
    std::fs::write(path, text).expect("identity");
}

/// Runs a command to completion, feeding stdin from another thread (so a
/// large input cannot deadlock against a large output).
pub fn run(cmd: &mut Command, input: Option<&[u8]>) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn keystrata");
    let writer = input.map(|bytes| {
        let mut stdin = child.stdin.take().expect("stdin");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            // The command may stop reading early (an error): a broken pipe
            // here is its business, not the test's.
            let _ = stdin.write_all(&bytes);
        })
    });
    let out = child.wait_with_output().expect("wait");
    if let Some(w) = writer {
        w.join().expect("stdin writer");
    }
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `args` with stdout and stderr on a pseudo-terminal (util-linux
/// `script`, in Debian's essential set); the exit code and everything the
/// terminal showed.
pub fn on_terminal(env: &Env, args: &[&str]) -> (i32, String) {
    let line = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .current_dir(env.dir.path())
        .env("KEYSTRATA_KEYCHAIN", &env.keychain)
        .env("KEYSTRATA_ROOT", &env.root);
    let r = run(&mut c, None);
    (r.code, String::from_utf8_lossy(&r.stdout).into_owned())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Whether tests that need an outside program must fail rather than skip
/// when it is missing (`make test` sets it).
pub fn peers_required() -> bool {
    std::env::var("KEYSTRATA_REQUIRE_PEERS").as_deref() == Ok("1")
}

/// The files in a directory (to check nothing partial was left).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
