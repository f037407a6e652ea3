//! `keystrata-kms-plugin`: the KMS v2 plugin over a keychain, as a program.
//! `keystrata kms-plugin ARGS` runs it (the keystrata command hands its
//! `--keychain` and `--root` on, and ARGS as they are):
//!
//! ```text
//! keystrata-kms-plugin --keychain LOCATION --root URI --listen unix:///path.sock
//!       [--metrics-listen HOST:PORT] [--refresh-ms N] [--socket-mode OCTAL]
//!       [--grace-secs N]
//! ```
//!
//! LOCATION is a keychain location (a file, `etcd://…`; created if the
//! store is empty), URI a root URI (`age:FILE`, `passphrase:env:VAR`, …;
//! docs/ROOTS.md). Once both sockets are bound it prints one line to
//! stdout, `ready socket=PATH metrics=ADDR` (`metrics=-` without
//! `--metrics-listen`), for scripts and tests to wait on. SIGTERM or SIGINT
//! stops it gracefully (exit 0). Logs go to stderr (`KEYSTRATA_LOG=debug`
//! for every request). Exit 1 on an error, 2 on bad usage.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use keystrata::{root, store, OpenOptions};
use keystrata_kms_plugin::{Plugin, PluginConfig, TerminationSignal};

const USAGE: &str =
    "usage: keystrata-kms-plugin --keychain LOCATION --root URI --listen unix:///path.sock \
[--metrics-listen HOST:PORT] [--refresh-ms N] [--socket-mode OCTAL] [--grace-secs N]";

struct Args {
    keychain: String,
    root: String,
    listen: String,
    metrics: Option<String>,
    refresh: Duration,
    mode: u32,
    grace: Option<Duration>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut keychain, mut root, mut listen, mut metrics) = (None, None, None, None);
    let (mut refresh, mut mode, mut grace) = (Duration::from_secs(1), 0o600, None);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--keychain" => keychain = Some(value()?),
            "--root" => root = Some(value()?),
            "--listen" => listen = Some(value()?),
            "--metrics-listen" => metrics = Some(value()?),
            "--refresh-ms" => {
                let v = value()?;
                refresh =
                    Duration::from_millis(v.parse().map_err(|_| format!("--refresh-ms {v}?"))?);
            }
            "--socket-mode" => {
                let v = value()?;
                mode = u32::from_str_radix(&v, 8)
                    .map_err(|_| format!("--socket-mode {v}: octal, as 600"))?;
            }
            "--grace-secs" => {
                let v = value()?;
                grace = Some(Duration::from_secs(
                    v.parse().map_err(|_| format!("--grace-secs {v}?"))?,
                ));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        keychain: keychain.ok_or("--keychain is required")?,
        root: root.ok_or("--root is required")?,
        listen: listen.ok_or("--listen is required")?,
        metrics,
        refresh,
        mode,
        grace,
    })
}

fn run(args: Args) -> keystrata::Result<()> {
    let root = root::from_uri(&args.root)?;
    let keychain = OpenOptions::new().refresh(args.refresh).open_store(
        store::open_location(args.keychain.as_ref())?,
        Arc::from(root),
    )?;
    let mut config = PluginConfig::new(args.listen);
    config.metrics_listen = args.metrics;
    config.socket_mode = args.mode;
    if let Some(g) = args.grace {
        config.shutdown_grace = g;
    }
    let plugin = Plugin::bind(keychain, config)?;
    let ready = format!(
        "ready socket={} metrics={}",
        plugin.socket_path().display(),
        plugin
            .metrics_addr()
            .map_or_else(|| "-".to_string(), |a| a.to_string())
    );
    plugin.serve_blocking(async move {
        // Ready only once SIGTERM is caught: a supervisor that stops the
        // plugin right after it said ready gets a graceful stop.
        let signals = match TerminationSignal::install() {
            Ok(s) => s,
            Err(e) => {
                log::error!("{e}; stopping");
                return;
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{ready}");
        let _ = out.flush();
        drop(out);
        signals.wait().await;
    })
}

fn main() {
    StderrLog::install();
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("keystrata-kms-plugin: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("keystrata-kms-plugin: error: {e}");
        std::process::exit(1);
    }
}

/// The smallest logger: `LEVEL target: message` lines on stderr, at the
/// level `KEYSTRATA_LOG` names (default info).
struct StderrLog;

impl StderrLog {
    fn install() {
        let level = match std::env::var("KEYSTRATA_LOG").as_deref() {
            Ok("trace") => log::LevelFilter::Trace,
            Ok("debug") => log::LevelFilter::Debug,
            Ok("warn") => log::LevelFilter::Warn,
            Ok("error") => log::LevelFilter::Error,
            Ok("off") => log::LevelFilter::Off,
            _ => log::LevelFilter::Info,
        };
        if log::set_logger(&StderrLog).is_ok() {
            log::set_max_level(level);
        }
    }
}

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        // The plugin's own lines; the libraries under it only when asked.
        m.target().starts_with("keystrata") || log::max_level() >= log::LevelFilter::Trace
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{:<5} {}: {}", r.level(), r.target(), r.args());
        }
    }
    fn flush(&self) {}
}
