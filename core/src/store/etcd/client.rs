//! Talking to the members: one gRPC client per member, tried in turn, every
//! call bounded by a deadline, every failure turned into a keystrata error
//! whose message names the location and never holds a password.
//!
//! One client per member (rather than one client balancing over all of
//! them) makes fail-over deterministic: a call goes to the member that
//! answered last, and on a connection failure or a member without a leader
//! moves on to the next, so a stopped member costs one refused connection,
//! not a share of all calls.

use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, KvClient,
    TlsOptions, Txn, TxnOp, TxnOpResponse, WatchClient,
};
use tokio::time::{timeout, Instant};

use super::location::Config;
use super::MAX_VALUE_LEN;
use crate::error::{truncate_for_message, Error, ErrorKind, Result};

/// Room on top of [`MAX_VALUE_LEN`] for the rest of a gRPC message, so a
/// value just over the limit is read and refused with a clear message.
const MESSAGE_SLACK: usize = 64 * 1024;

/// HTTP/2 keep-alive on watch connections: how often to ping, how long to
/// wait for the answer. etcd refuses pings more frequent than every 5 s
/// (`--grpc-keepalive-min-time`).
const WATCH_KEEPALIVE: (Duration, Duration) = (Duration::from_secs(6), Duration::from_secs(3));

/// One request to the store.
pub(super) enum Op<'a> {
    /// The key's value (or only its revision) and `mod_revision`.
    Get { keys_only: bool },
    /// Put `bytes` if the key is at `expected` (`None`: absent).
    Swap {
        expected: Option<i64>,
        bytes: &'a [u8],
    },
}

/// What a request returned.
pub(super) enum Reply {
    /// The value (empty when `keys_only`) and its `mod_revision`, or
    /// `None` when the key does not exist; with the store's revision.
    Got {
        kv: Option<(Vec<u8>, i64)>,
        header_revision: i64,
    },
    /// The swap wrote; this is the key's new `mod_revision`.
    Written(i64),
    /// The key was not at the expected revision; nothing was written. The
    /// `mod_revision` it is at (`None`: absent).
    Conflict { current: Option<i64> },
}

/// How a failed attempt bears on the next one.
enum Failure {
    /// The member could not be reached or its connection broke: try the
    /// next member.
    Down(String),
    /// The member answered that the cluster cannot serve right now (no
    /// leader, an election, overload): try the next member, and again
    /// after a pause while time is left.
    Busy(String),
    /// An answer no other member or later attempt would change (bad
    /// credentials, no permission): give up with this error.
    Final(Error),
}

/// A connected member.
#[derive(Clone)]
pub(super) struct Member {
    kv: KvClient,
    watch: WatchClient,
}

impl Member {
    /// The member's watch client.
    pub(super) fn watch_client(&self) -> WatchClient {
        self.watch.clone()
    }
}

/// The clients of every member of one location, made as needed.
pub(super) struct Members {
    members: Vec<Option<Member>>,
    /// The member to try first: the one that answered last.
    next: usize,
    /// Whether these clients keep watch streams (HTTP/2 keep-alive on).
    for_watch: bool,
}

impl Members {
    pub(super) fn new(cfg: &Config, for_watch: bool) -> Members {
        Members {
            members: vec![None; cfg.endpoints.len()],
            next: 0,
            for_watch,
        }
    }

    /// Runs `op`, trying the members in turn until one answers or
    /// `budget` has passed. Returns the reply and the member that gave it.
    pub(super) async fn call(
        &mut self,
        cfg: &Config,
        op: &Op<'_>,
        budget: Duration,
    ) -> Result<(Reply, usize)> {
        let began = Instant::now();
        let deadline = began + budget;
        let n = self.members.len();
        // One member's attempt gets at most its share of the budget (at
        // least a second), so a member that accepts connections but does
        // not answer (stopped, partitioned) cannot use up the whole call
        // while the others have quorum.
        let per_member = (budget / n.max(1) as u32).max(Duration::from_secs(1));
        let mut last = String::from("no member was tried");
        let mut pause = Duration::from_millis(50);
        let mut round = 0u32;
        loop {
            let mut busy = false;
            for k in 0..n {
                let i = (self.next + k) % n;
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let attempt = async {
                    let m = self.member(cfg, i).await?;
                    run(cfg, m, op).await
                };
                let failure = match timeout(left.min(per_member), attempt).await {
                    Ok(Ok(reply)) => {
                        self.next = i;
                        return Ok((reply, i));
                    }
                    Ok(Err(f)) => f,
                    Err(_) => {
                        // A connection that does not answer may be stuck:
                        // the next attempt on this member starts afresh.
                        self.members[i] = None;
                        Failure::Down("no answer within the call's time limit".to_owned())
                    }
                };
                match failure {
                    Failure::Final(e) => return Err(e),
                    Failure::Busy(why) => {
                        busy = true;
                        last = format!("{}: {why}", cfg.endpoints[i]);
                    }
                    Failure::Down(why) => last = format!("{}: {why}", cfg.endpoints[i]),
                }
            }
            round += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            // Members that refuse connections are down: two rounds (the
            // second reconnects anything that had just broken) are enough.
            // A cluster electing a leader is worth waiting for.
            if left.is_zero() || (!busy && round >= 2) {
                break;
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        let waited = began.elapsed();
        Err(Error::unavailable(format!(
            "etcd at {} is unavailable: {} (after {} ms{})",
            cfg.shown(),
            truncate_for_message(&last, 300),
            waited.as_millis(),
            if waited >= budget {
                ", the call's time limit"
            } else {
                ", every member tried"
            }
        )))
    }

    /// The client of member `i`, connected (and authenticated).
    pub(super) async fn connected(&mut self, cfg: &Config, i: usize) -> Result<Member> {
        self.member(cfg, i).await.map_err(|f| match f {
            Failure::Final(e) => e,
            Failure::Down(why) | Failure::Busy(why) => Error::unavailable(format!(
                "etcd at {}: {}: {why}",
                cfg.shown(),
                cfg.endpoints[i]
            )),
        })
    }

    /// The client of member `i`, connecting (and authenticating) first if
    /// there is none.
    async fn member(&mut self, cfg: &Config, i: usize) -> std::result::Result<Member, Failure> {
        if let Some(m) = &self.members[i] {
            return Ok(m.clone());
        }
        let client = Client::connect([cfg.endpoint_url(i)], Some(options(cfg, self.for_watch)?))
            .await
            .map_err(|e| classify(cfg, e))?;
        let limit = MAX_VALUE_LEN + MESSAGE_SLACK;
        let m = Member {
            kv: client.kv_client().max_decoding_message_size(limit),
            watch: client.watch_client().max_decoding_message_size(limit),
        };
        self.members[i] = Some(m.clone());
        Ok(m)
    }

    /// Forgets member `i`'s client (its connection broke).
    pub(super) fn drop_member(&mut self, i: usize) {
        self.members[i] = None;
    }
}

fn options(cfg: &Config, for_watch: bool) -> std::result::Result<ConnectOptions, Failure> {
    let mut o = ConnectOptions::new()
        .with_connect_timeout(cfg.connect_timeout)
        // A member that lost its leader says so at once rather than
        // making the call wait for an election.
        .with_require_leader(true)
        .with_auto_token_refresh(true);
    if for_watch {
        o = o.with_keep_alive(WATCH_KEEPALIVE.0, WATCH_KEEPALIVE.1);
    } else {
        o = o.with_timeout(cfg.request_timeout);
    }
    if let Some((user, password)) = &cfg.user {
        o = o.with_user(user.clone(), password.as_str());
    }
    if let Some(tls) = &cfg.tls {
        let mut t = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
        if let Some((cert, key)) = &tls.identity {
            t = t.identity(Identity::from_pem(cert, key.as_slice()));
        }
        o = o.with_tls(t);
    }
    Ok(o)
}

async fn run(cfg: &Config, mut m: Member, op: &Op<'_>) -> std::result::Result<Reply, Failure> {
    let key = cfg.key.clone();
    match *op {
        Op::Get { keys_only } => {
            let opts = keys_only.then(|| GetOptions::new().with_keys_only());
            let resp = m.kv.get(key, opts).await.map_err(|e| classify(cfg, e))?;
            let header_revision = resp.header().map_or(0, |h| h.revision());
            let kv = resp
                .kvs()
                .first()
                .map(|kv| (kv.value().to_vec(), kv.mod_revision()));
            Ok(Reply::Got {
                kv,
                header_revision,
            })
        }
        Op::Swap { expected, bytes } => {
            let cmp = match expected {
                None => Compare::version(key.clone(), CompareOp::Equal, 0),
                Some(r) => Compare::mod_revision(key.clone(), CompareOp::Equal, r),
            };
            // On a failed compare, read the key back: if it holds exactly
            // these bytes, an earlier attempt whose answer was lost did
            // write them (every save is freshly encrypted, so equal bytes
            // are this write).
            let txn = Txn::new()
                .when([cmp])
                .and_then([TxnOp::put(key.clone(), bytes.to_vec(), None)])
                .or_else([TxnOp::get(key, None)]);
            let resp = m.kv.txn(txn).await.map_err(|e| classify(cfg, e))?;
            if resp.succeeded() {
                let revision = resp.header().map_or(0, |h| h.revision());
                return Ok(Reply::Written(revision));
            }
            let current = resp.op_responses().into_iter().find_map(|r| match r {
                TxnOpResponse::Get(g) => g
                    .kvs()
                    .first()
                    .map(|kv| (kv.value().to_vec(), kv.mod_revision())),
                _ => None,
            });
            match current {
                Some((value, rev)) if value == bytes => Ok(Reply::Written(rev)),
                current => Ok(Reply::Conflict {
                    current: current.map(|(_, rev)| rev),
                }),
            }
        }
    }
}

/// Sorts an etcd client error into what the caller should do, with a
/// message built from the status code and the server's text only (never
/// from the request, which may carry a password).
fn classify(cfg: &Config, e: etcd_client::Error) -> Failure {
    use etcd_client::Error as E;
    use tonic::Code;
    let loc = || cfg.shown();
    match e {
        E::GRpcStatus(s) => {
            let msg = truncate_for_message(s.message(), 200);
            let from_server = msg.starts_with("etcdserver:") || msg.starts_with("mvcc:");
            match s.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled if from_server => {
                    Failure::Busy(msg)
                }
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Unknown
                | Code::Internal => Failure::Down(with_sources(&msg, &s)),
                Code::ResourceExhausted if msg.contains("too many requests") => Failure::Busy(msg),
                Code::InvalidArgument if msg.contains("authentication failed") => {
                    Failure::Final(backend(format!(
                        "etcd at {} refused the credentials of user {:?} ({msg}); \
                         check the user and {}",
                        loc(),
                        user_name(cfg),
                        super::PASSWORD_ENV
                    )))
                }
                Code::PermissionDenied | Code::Unauthenticated => Failure::Final(backend(format!(
                    "etcd at {} denied access to key {:?} for {} ({msg})",
                    loc(),
                    cfg.key_for_message(),
                    match &cfg.user {
                        Some(_) => format!("user {:?}", user_name(cfg)),
                        None => "a client without a user".to_owned(),
                    }
                ))),
                Code::OutOfRange => Failure::Final(Error::format(format!(
                    "the value of key {:?} in etcd at {} is larger than the {} MiB a \
                     keychain may have ({msg})",
                    cfg.key_for_message(),
                    loc(),
                    MAX_VALUE_LEN >> 20
                ))),
                code => Failure::Final(backend(format!(
                    "etcd at {} failed the request: {code:?}: {msg}",
                    loc()
                ))),
            }
        }
        E::TransportError(t) => Failure::Down(with_sources("transport error", &t)),
        E::IoError(io) => Failure::Down(format!("I/O error: {io}")),
        E::InvalidArgs(a) | E::EndpointError(a) => Failure::Final(Error::invalid(format!(
            "etcd at {}: {}",
            loc(),
            truncate_for_message(&a, 200)
        ))),
        E::InvalidUri(u) => Failure::Final(Error::invalid(format!(
            "etcd at {}: invalid member address ({u})",
            loc()
        ))),
        other => Failure::Final(backend(format!(
            "etcd at {}: {}",
            loc(),
            truncate_for_message(&other.to_string(), 200)
        ))),
    }
}

fn backend(message: String) -> Error {
    Error::new(ErrorKind::Backend, message)
}

fn user_name(cfg: &Config) -> String {
    cfg.user
        .as_ref()
        .map(|(u, _)| truncate_for_message(u, 64))
        .unwrap_or_default()
}

/// `head` followed by the error's chain of causes (what a transport error
/// says is mostly in its sources), bounded.
fn with_sources(head: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = head.to_owned();
    let mut cur = e.source();
    let mut depth = 0;
    while let Some(s) = cur {
        let text = s.to_string();
        // "transport error" wraps the cause without saying anything.
        if !text.is_empty() && text != "transport error" && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
        depth += 1;
        if depth > 8 {
            break;
        }
    }
    truncate_for_message(&out, 300)
}

/// Runs `fut` to completion on `rt`. From inside another tokio runtime
/// (where `block_on` would panic) it runs on a short-lived scoped thread.
pub(super) fn block_on<F>(rt: &tokio::runtime::Runtime, fut: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    // A member that goes away mid-write raises SIGPIPE, which kills a C
    // program that did not ignore it: block it around the I/O (the failed
    // write is then an error). keystrata_sys::without_sigpipe says how.
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(keystrata_sys::without_sigpipe(|| rt.block_on(fut)));
    }
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("ks-etcd-call".into())
            .spawn_scoped(s, || {
                keystrata_sys::block_sigpipe_on_this_thread();
                rt.block_on(fut)
            })
            .map_err(|e| {
                Error::unavailable(format!("cannot start a thread for an etcd call: {e}"))
            })?;
        handle
            .join()
            .map_err(|_| Error::internal("an etcd call panicked"))
    })
}

/// A current-thread runtime with I/O and timers: no worker threads.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::unavailable(format!("cannot create the etcd client's event loop: {e}")))
}

/// `MAX_VALUE_LEN` check of a value read, as a Format error.
pub(super) fn check_len(cfg: &Config, len: usize) -> Result<()> {
    if len > MAX_VALUE_LEN {
        return Err(Error::format(format!(
            "the value of key {:?} in etcd at {} is {len} bytes, over the {} MiB a keychain \
             may have",
            cfg.key_for_message(),
            cfg.shown(),
            MAX_VALUE_LEN >> 20
        )));
    }
    Ok(())
}
