//! # keystrata-kms-plugin
//!
//! A [Kubernetes KMS v2 plugin](https://kubernetes.io/docs/tasks/administer-cluster/kms-provider/)
//! over a keystrata [`Keychain`]: kube-apiserver encrypts Secrets (and any
//! other resource) at rest with data keys it asks the plugin to protect,
//! over gRPC on a unix socket (`Status`, `Encrypt`, `Decrypt` of the
//! `k8s.io/kms/apis/v2` API). The plugin seals each data key with the
//! keychain's encryption primary and reports that key as `key_id`, so the
//! apiserver notices a rotation; any key still in the keychain decrypts.
//!
//! The `keystrata-kms-plugin` program (`src/bin/`), which
//! `keystrata kms-plugin --listen unix:///…` runs, is a thin wrapper of
//! [`serve`]. docs/KMS-PLUGIN.md has the
//! kube-apiserver configuration, rotation, metrics and security notes.
//!
//! ```no_run
//! use std::sync::Arc;
//! use keystrata::{root, store, OpenOptions};
//! use keystrata_kms_plugin::{serve, termination_signal, PluginConfig};
//!
//! let root = root::from_uri("age:/etc/keystrata/root.key")?;
//! let keychain = OpenOptions::new().open_store(
//!     store::open_location("/var/lib/keystrata/keychain.age".as_ref())?,
//!     Arc::from(root),
//! )?;
//! let mut config = PluginConfig::new("unix:///var/run/kmsplugin/keystrata.sock");
//! config.metrics_listen = Some("127.0.0.1:9464".into());
//! // Blocks until SIGTERM or SIGINT, then finishes requests in flight and
//! // removes the socket file.
//! serve(keychain, config, termination_signal())?;
//! # Ok::<(), keystrata::Error>(())
//! ```
//!
//! ## What the plugin answers
//!
//! - **Encrypt** seals the plaintext (the apiserver's 32-byte data key,
//!   1 to [`MAX_PLAINTEXT`] bytes) with [`Keychain::seal`] under the
//!   associated data [`AAD`]: the ciphertext is at most [`MAX_CIPHERTEXT`]
//!   bytes (the API's limit), `key_id` is `keystrata-<key_id>` of the key
//!   that sealed, and one annotation, [`FORMAT_ANNOTATION`] =
//!   [`FORMAT_SEAL_V1`], says which format this is.
//! - **Decrypt** unseals with whichever key the ciphertext names (the
//!   request's `key_id` is advisory).
//! - **Status** seals and unseals a probe, a real round trip through the
//!   keychain: `healthz` is `ok` only if it worked; `version` is `v2`;
//!   `key_id` is the key the probe sealed with.
//!
//! Errors are gRPC statuses whose code follows the keystrata error kind:
//! bad input, a tampered or foreign ciphertext: `InvalidArgument`; a key
//! the keychain does not have: `NotFound`; a disabled or destroyed key:
//! `FailedPrecondition`; a root or store that cannot be reached:
//! `Unavailable`. Messages never hold plaintext or key material, and the
//! plugin logs (through the `log` crate) methods, request uids, codes and
//! messages only.
//!
//! ## Rotation
//!
//! Rotate the keychain the plugin serves from anywhere (`keystrata
//! keychain rotate`, another process's `Keychain::rotate`): a keychain
//! bound to a store (a file or etcd) adopts the new primary within its
//! refresh interval ([`keystrata::OpenOptions::refresh`], 1 s by default),
//! so the next `Status` reports the new `key_id` and the apiserver makes a
//! new data key. Old ciphertexts keep decrypting while their key stays in
//! the keychain.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use keystrata::{Error, ErrorKind, Keychain, Result};
use tokio::sync::watch;

mod conn;
mod http;
mod metrics;
pub mod proto;
mod service;
mod socket;

pub use service::{
    AAD, API_VERSION, FORMAT_ANNOTATION, FORMAT_SEAL_V1, HEALTHZ_OK, KEY_ID_PREFIX,
    MAX_ANNOTATIONS, MAX_CIPHERTEXT, MAX_KEY_ID, MAX_MESSAGE, MAX_PLAINTEXT, MAX_UID,
};

use crate::proto::v2::key_management_service_server::KeyManagementServiceServer;
use crate::service::{Inner, KmsService};

/// How the plugin listens and stops.
///
/// Made with [`PluginConfig::new`]; the other fields have defaults and
/// can be set one by one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PluginConfig {
    /// The gRPC endpoint, `unix:///absolute/path.sock`: the value of the
    /// kube-apiserver's `endpoint`. Abstract sockets (`unix:///@name`) are
    /// refused: they have no permissions.
    pub listen: String,
    /// Where to serve `GET /metrics` (Prometheus text) and `GET /healthz`
    /// over HTTP, as `HOST:PORT` (`127.0.0.1:9464`; port 0 picks a free
    /// one, see [`Plugin::metrics_addr`]). `None` (the default): no HTTP.
    pub metrics_listen: Option<String>,
    /// The socket file's permissions. Default `0o600`: only the plugin's
    /// user (and root) can connect. Run the plugin as the apiserver's user,
    /// or widen this to `0o660` with a shared group.
    pub socket_mode: u32,
    /// After the shutdown future completes: how long requests in flight
    /// get to finish before the plugin stops anyway. Default 10 s.
    pub shutdown_grace: Duration,
    /// The longest a request may take (the apiserver's own deadline, sent
    /// as `grpc-timeout`, applies when shorter). Default 30 s.
    pub request_timeout: Duration,
}

impl PluginConfig {
    /// A configuration listening on `listen` (`unix:///path.sock`) with
    /// the defaults: no metrics, socket mode `0o600`, 10 s to finish
    /// requests at shutdown, 30 s per request at most.
    pub fn new(listen: impl Into<String>) -> PluginConfig {
        PluginConfig {
            listen: listen.into(),
            metrics_listen: None,
            socket_mode: 0o600,
            shutdown_grace: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A plugin whose sockets are bound, ready to [`serve`](Plugin::serve).
///
/// Binding first lets a caller learn the addresses (a metrics port chosen
/// by the system) and report readiness before serving. Dropping it
/// without serving removes the socket file.
#[derive(Debug)]
pub struct Plugin {
    inner: Arc<Inner>,
    socket: socket::BoundSocket,
    metrics: Option<std::net::TcpListener>,
    config: PluginConfig,
}

impl Plugin {
    /// Binds the gRPC socket (and the metrics port, if configured). Needs
    /// no async runtime.
    ///
    /// Errors: a malformed `listen` or `metrics_listen`, or something that
    /// is not a socket at the socket path (`InvalidInput`; the file is left
    /// alone); a socket path or port another process serves
    /// (`Unavailable`); a missing directory or no permission (`Io`). A
    /// socket file that no process serves (left by one that was killed) is
    /// removed and bound again.
    pub fn bind(keychain: impl Into<Arc<Keychain>>, config: PluginConfig) -> Result<Plugin> {
        let path = socket::parse_endpoint(&config.listen)?;
        let metrics = match &config.metrics_listen {
            None => None,
            Some(addr) => Some(bind_tcp(addr)?),
        };
        let socket = socket::BoundSocket::bind(&path, config.socket_mode)?;
        Ok(Plugin {
            inner: Arc::new(Inner::new(keychain.into())),
            socket,
            metrics,
            config,
        })
    }

    /// The path of the unix socket.
    pub fn socket_path(&self) -> &Path {
        &self.socket.path
    }

    /// The address `/metrics` is served on, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The keychain served.
    pub fn keychain(&self) -> &Arc<Keychain> {
        &self.inner.keychain
    }

    /// Serves until `shutdown` completes (or the server fails). Must run
    /// inside a tokio runtime with I/O and timers enabled (keychain calls
    /// run on its blocking pool, as they may wait on a store or a root);
    /// [`serve_blocking`] makes one.
    ///
    /// When `shutdown` completes, the socket file is removed at once (a new
    /// instance may start on the same path), no new connection or request
    /// is accepted, and the requests in flight get
    /// [`shutdown_grace`](PluginConfig::shutdown_grace) to finish; the
    /// connections still open after that are closed (their clients see
    /// the connection end) and `serve` returns `Ok`.
    ///
    /// [`serve_blocking`]: Plugin::serve_blocking
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Plugin {
            inner,
            mut socket,
            metrics,
            config,
        } = self;
        let listener = socket
            .listener
            .try_clone()
            .and_then(tokio::net::UnixListener::from_std)
            .map_err(|e| io_error("listening on the unix socket", e))?;
        // Connections that can be cut off if requests outlive the grace
        // period.
        let kill = Arc::new(conn::Kill::default());
        let incoming = {
            use tokio_stream::StreamExt as _;
            let kill = Arc::clone(&kill);
            tokio_stream::wrappers::UnixListenerStream::new(listener)
                .map(move |accepted| accepted.map(|io| kill.wrap(io)))
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let service = KeyManagementServiceServer::new(KmsService {
            inner: Arc::clone(&inner),
        })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
        let grpc = tonic::transport::Server::builder()
            .timeout(config.request_timeout)
            .concurrency_limit_per_connection(256)
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, stopped(stop_rx.clone()));
        let http = match metrics {
            None => None,
            Some(l) => {
                let l = tokio::net::TcpListener::from_std(l)
                    .map_err(|e| io_error("listening for /metrics", e))?;
                Some(tokio::spawn(http::serve(
                    l,
                    Arc::clone(&inner),
                    stopped(stop_rx.clone()),
                )))
            }
        };
        log::info!(
            "serving KMS v2 on unix://{}{}",
            socket.path.display(),
            match &config.metrics_listen {
                Some(_) => " with /metrics and /healthz over HTTP".to_string(),
                None => String::new(),
            }
        );
        tokio::pin!(grpc, shutdown);
        let result = tokio::select! {
            r = &mut grpc => r.map_err(|e| {
                Error::new(ErrorKind::Io, "the gRPC server stopped").with_source(e)
            }),
            () = &mut shutdown => {
                log::info!(
                    "stopping: socket removed, finishing requests in flight (at most {:?})",
                    config.shutdown_grace
                );
                socket.remove();
                let _ = stop_tx.send(true);
                match tokio::time::timeout(config.shutdown_grace, &mut grpc).await {
                    Ok(r) => r.map_err(|e| {
                        Error::new(ErrorKind::Io, "the gRPC server failed while stopping")
                            .with_source(e)
                    }),
                    Err(_) => {
                        log::warn!(
                            "requests still in flight after {:?}; closing their connections",
                            config.shutdown_grace
                        );
                        kill.kill();
                        // The connections end at once now; a keychain call
                        // still running (a root that does not answer) is
                        // left to finish on the blocking pool.
                        let _ = tokio::time::timeout(Duration::from_secs(1), &mut grpc).await;
                        Ok(())
                    }
                }
            }
        };
        let _ = stop_tx.send(true);
        if let Some(h) = http {
            let _ = h.await;
        }
        drop(socket);
        log::info!("stopped");
        result
    }

    /// [`serve`](Plugin::serve) on a tokio runtime of its own, blocking
    /// the calling thread until the plugin stopped. A keychain call that
    /// is still running then (a root that does not answer) is not waited
    /// for more than a second.
    pub fn serve_blocking(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("kms-plugin")
            .build()
            .map_err(|e| io_error("starting the async runtime", e))?;
        let result = rt.block_on(self.serve(shutdown));
        rt.shutdown_timeout(Duration::from_secs(1));
        result
    }
}

/// Binds and serves the KMS v2 plugin until `shutdown` completes, blocking
/// the calling thread (it runs its own tokio runtime): [`Plugin::bind`],
/// then [`Plugin::serve_blocking`]. From async code, use those two.
///
/// `keychain` is a [`Keychain`] or an `Arc<Keychain>`; a keychain bound to
/// a store (`Keychain::open`, [`keystrata::OpenOptions`]) follows the
/// rotations other processes make.
pub fn serve(
    keychain: impl Into<Arc<Keychain>>,
    config: PluginConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    Plugin::bind(keychain, config)?.serve_blocking(shutdown)
}

/// Completes on the first SIGTERM or SIGINT: the shutdown future for
/// [`serve`] in a program that runs the plugin. The handlers are installed
/// when it is first polled (`serve` polls it as soon as it starts); use
/// [`TerminationSignal`] to install them at a moment of your choosing (for
/// example before telling a supervisor the plugin is ready). If they
/// cannot be installed, it logs why and never completes.
pub async fn termination_signal() {
    match TerminationSignal::install() {
        Ok(s) => {
            s.wait().await;
        }
        Err(e) => {
            log::error!("{e}");
            std::future::pending::<()>().await;
        }
    }
}

/// SIGTERM and SIGINT, caught from the moment [`install`] returns (the
/// default action, ending the process at once, no longer applies).
///
/// [`install`]: TerminationSignal::install
#[derive(Debug)]
pub struct TerminationSignal {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl TerminationSignal {
    /// Installs the handlers. Must be called inside a tokio runtime (with
    /// I/O enabled), for example in the shutdown future given to
    /// [`Plugin::serve_blocking`]. `Io` if the system refuses.
    pub fn install() -> Result<TerminationSignal> {
        use tokio::signal::unix::{signal, SignalKind};
        let term =
            signal(SignalKind::terminate()).map_err(|e| io_error("cannot catch SIGTERM", e))?;
        let int =
            signal(SignalKind::interrupt()).map_err(|e| io_error("cannot catch SIGINT", e))?;
        Ok(TerminationSignal { term, int })
    }

    /// Completes on the first of the two signals and returns its name.
    pub async fn wait(mut self) -> &'static str {
        let which = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        };
        log::info!("{which} received");
        which
    }
}

/// Everything `/metrics` serves: the keychain's metrics
/// ([`Keychain::metrics_text`]: calls, errors by kind, rotations, latency;
/// docs/METRICS.md) and the plugin's own (`kms_plugin_*`).
pub(crate) fn metrics_text(inner: &Inner) -> String {
    let mut text = inner.keychain.metrics_text();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&inner.metrics.text());
    text
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

fn bind_tcp(addr: &str) -> Result<std::net::TcpListener> {
    let invalid = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the metrics address must be HOST:PORT, as in 127.0.0.1:9464; got {:?}",
                addr.chars().take(120).collect::<String>()
            ),
        )
    };
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|_| invalid())?
        .collect::<Vec<_>>();
    if addrs.is_empty() {
        return Err(invalid());
    }
    let l = std::net::TcpListener::bind(&addrs[..]).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::AddrInUse {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Io
        };
        Error::new(kind, format!("binding the metrics address {addr}")).with_source(e)
    })?;
    l.set_nonblocking(true)
        .map_err(|e| io_error("configuring the metrics listener", e))?;
    Ok(l)
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, what.to_string()).with_source(e)
}

/// docs/KMS-PLUGIN.md's Rust example, compiled as a doctest so the page
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/KMS-PLUGIN.md")]
pub struct KmsPluginDocDoctests;
