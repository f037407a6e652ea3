//! The AWS SDK client behind [`AwsKmsRoot`](super::AwsKmsRoot) and
//! [`AwsKmsSigner`](super::AwsKmsSigner): a tokio current-thread runtime
//! owned by the client and driven by the calling thread, an SDK client made
//! in it, every call bounded by the configured timeout, and every failure
//! turned into a keystrata error.
//!
//! **Threads.** No hidden worker threads: the calling thread drives the
//! runtime (tokio lets several threads `block_on` one current-thread
//! runtime at once; one of them drives its I/O at a time). Called from
//! inside another tokio runtime, a call runs on a short-lived scoped thread,
//! since a runtime cannot block inside another. This is the etcd store's
//! scheme (`store/etcd.rs`); its ~30 lines of runtime helpers are repeated
//! here rather than shared, to leave the etcd files alone.
//!
//! **fork().** A child inherits the runtime and the SDK's pooled
//! connections, which share the parent's epoll instance and sockets. On its
//! first call the child sees a new fork generation, leaks what it inherited
//! (`std::mem::forget`), and loads the SDK configuration again (credentials
//! included) in a runtime of its own; the parent goes on untouched.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::types::{KeyMetadata, KeyState};

use super::AwsKmsConfig;
use crate::error::{truncate_for_message, Error, ErrorKind, Result};
use crate::sync::lock;

/// The most attempts one call makes (the SDK's standard retry mode: its
/// exponential backoff, retrying throttling, 5xx answers and I/O errors),
/// all within the configured timeout.
const MAX_ATTEMPTS: u32 = 3;

/// The longest key ID, ARN or alias keystrata passes to KMS (KMS allows
/// 2048 characters).
const MAX_KEY_ID_LEN: usize = 2048;

/// A KMS operation, named in error messages.
#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    DescribeKey,
    GetPublicKey,
    Encrypt,
    Decrypt,
    Sign,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::DescribeKey => "DescribeKey",
            Op::GetPublicKey => "GetPublicKey",
            Op::Encrypt => "Encrypt",
            Op::Decrypt => "Decrypt",
            Op::Sign => "Sign",
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Op::DescribeKey => "kms:DescribeKey",
            Op::GetPublicKey => "kms:GetPublicKey",
            Op::Encrypt => "kms:Encrypt",
            Op::Decrypt => "kms:Decrypt",
            Op::Sign => "kms:Sign",
        }
    }
}

/// What a connection is made from: the configuration, checked.
#[derive(Debug)]
struct Settings {
    region: Option<String>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    timeout: Duration,
}

/// The live part of a connection: dropped normally in the process that
/// made it, leaked in a forked child.
struct Live {
    rt: tokio::runtime::Runtime,
    kms: aws_sdk_kms::Client,
}

/// A runtime and SDK client made in one fork generation.
struct Conn {
    generation: u64,
    live: Option<Live>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            if live_here(self.generation) {
                let Live { rt, kms } = live;
                drop(kms);
                // Never blocks, so dropping a client inside async code is
                // fine.
                rt.shutdown_background();
            } else {
                // The parent's: shares its epoll instance and sockets.
                std::mem::forget(live);
            }
        }
    }
}

fn live_here(generation: u64) -> bool {
    generation == keystrata_sys::fork_generation()
}

/// The client of one root or signer (see the module docs).
pub(super) struct Client {
    settings: Settings,
    conn: Mutex<Option<Arc<Conn>>>,
    closed: AtomicBool,
    /// `AwsKmsRoot` or `AwsKmsSigner`, for messages.
    owner: &'static str,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("region", &self.settings.region)
            .field("endpoint_url", &self.settings.endpoint_url)
            .field("profile", &self.settings.profile)
            .field("timeout", &self.settings.timeout)
            .field("closed", &self.closed.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Checks `config` and loads the SDK configuration (region, endpoint,
    /// credential chain; the credentials themselves are fetched by the
    /// first call). Bad configuration: `InvalidInput`.
    pub(super) fn new(config: &AwsKmsConfig, owner: &'static str) -> Result<Client> {
        check_key_id(&config.key_id)?;
        if config.timeout.is_zero() {
            return Err(Error::invalid("the AWS KMS timeout must be above zero"));
        }
        if let Some(url) = &config.endpoint_url {
            check_endpoint_url(url)?;
        }
        for (what, v) in [("region", &config.region), ("profile", &config.profile)] {
            if v.as_deref() == Some("") {
                return Err(Error::invalid(format!("the AWS KMS {what} is empty")));
            }
        }
        let client = Client {
            settings: Settings {
                region: config
                    .region
                    .clone()
                    .or_else(|| region_of_arn(&config.key_id).map(str::to_owned)),
                endpoint_url: config.endpoint_url.clone(),
                profile: config.profile.clone(),
                timeout: config.timeout,
            },
            conn: Mutex::new(None),
            closed: AtomicBool::new(false),
            owner,
        };
        client.conn()?;
        Ok(client)
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::unavailable(format!(
                "this {} was closed",
                self.owner
            )))
        } else {
            Ok(())
        }
    }

    /// Closes the client: later calls fail with `Unavailable`; the runtime
    /// goes once the calls under way have returned.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let conn = lock(&self.conn).take();
        drop(conn);
    }

    /// This process's connection, made (or made again after a fork) as
    /// needed.
    fn conn(&self) -> Result<Arc<Conn>> {
        let generation = keystrata_sys::fork_generation();
        let mut slot = lock(&self.conn);
        // Checked under the lock: `close` may have just run.
        self.check_open()?;
        if let Some(c) = &*slot {
            if c.generation == generation {
                return Ok(c.clone());
            }
        }
        // An inherited connection is leaked by its Drop, not used.
        *slot = None;
        let conn = Arc::new(self.settings.connect(generation)?);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs one SDK call, made by `call` from a client, within the timeout;
    /// a failure is mapped by [`Client::error`] for `op` on `key`.
    pub(super) fn run<T, E, F, Fut>(&self, op: Op, key: &str, call: F) -> Result<T>
    where
        F: FnOnce(aws_sdk_kms::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, SdkError<E>>> + Send,
        T: Send,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.check_open()?;
        let conn = self.conn()?;
        let live = conn
            .live
            .as_ref()
            .ok_or_else(|| Error::internal("an AWS KMS connection without its runtime"))?;
        block_on(&live.rt, call(live.kms.clone()))?.map_err(|e| self.error(op, key, &e))
    }

    /// The metadata of `key` (a key ID, ARN, alias name or alias ARN).
    pub(super) fn describe(&self, key: &str) -> Result<KeyMetadata> {
        let out = self.run(Op::DescribeKey, key, |kms| {
            let key = key.to_owned();
            async move { kms.describe_key().key_id(key).send().await }
        })?;
        out.key_metadata
            .ok_or_else(|| self.malformed(Op::DescribeKey, key, "no KeyMetadata"))
    }

    /// `KMSInvalidStateException` does not say which state the key is in:
    /// asks DescribeKey, so a key pending deletion is `KeyDestroyed`. Other
    /// errors go through unchanged.
    pub(super) fn explain(&self, arn: &str, err: Error) -> Error {
        if err.kind() != ErrorKind::KeyDisabled || !err.message().contains("KMSInvalidState") {
            return err;
        }
        match self.describe(arn) {
            Ok(meta) => check_state(&meta, arn).err().unwrap_or(err),
            Err(_) => err,
        }
    }

    pub(super) fn malformed(&self, op: Op, key: &str, what: &str) -> Error {
        Error::new(
            ErrorKind::Backend,
            format!(
                "AWS KMS {} of key {}{} answered without {what}",
                op.name(),
                truncate_for_message(key, 200),
                self.at()
            ),
        )
    }

    /// ` at URL` when an endpoint URL is set, for messages.
    fn at(&self) -> String {
        match &self.settings.endpoint_url {
            Some(url) => format!(" at {}", truncate_for_message(url, 100)),
            None => String::new(),
        }
    }

    /// The keystrata error for a failed call. Messages name the operation,
    /// the key and the service's error code and message; never a data key
    /// or a credential (the SDK redacts both, and only codes, messages and
    /// error chains are shown).
    fn error<E>(&self, op: Op, key: &str, e: &SdkError<E>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let what = format!(
            "AWS KMS {} of key {}{}",
            op.name(),
            truncate_for_message(key, 200),
            self.at()
        );
        match e {
            SdkError::ServiceError(_) => {
                let code = e.code().unwrap_or("an unnamed error");
                let message = truncate_for_message(e.message().unwrap_or(""), 200);
                let (kind, hint) = match code {
                    "NotFoundException" => (ErrorKind::UnknownKey, String::new()),
                    "DisabledException" => (ErrorKind::KeyDisabled, String::new()),
                    // Refined by `explain`: pending deletion is KeyDestroyed.
                    "KMSInvalidStateException" => (ErrorKind::KeyDisabled, String::new()),
                    // Wrong context, another key, changed bytes: one opaque
                    // answer, as for every other root.
                    "InvalidCiphertextException" | "IncorrectKeyException" => {
                        return Error::authentication()
                    }
                    "KeyUnavailableException"
                    | "DependencyTimeoutException"
                    | "KMSInternalException" => (ErrorKind::Unavailable, String::new()),
                    "ValidationException" => (ErrorKind::InvalidInput, String::new()),
                    "InvalidKeyUsageException" | "UnsupportedOperationException" => {
                        (ErrorKind::Unsupported, String::new())
                    }
                    "AccessDeniedException" => (
                        ErrorKind::Backend,
                        format!(" (the credentials need {} on this key)", op.permission()),
                    ),
                    "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "ExpiredTokenException"
                    | "IncompleteSignature"
                    | "InvalidClientTokenId" => (
                        ErrorKind::Backend,
                        " (the credentials were refused: check the SDK's credential chain)"
                            .to_owned(),
                    ),
                    "ThrottlingException" | "LimitExceededException" => (
                        ErrorKind::Backend,
                        " (still throttled after the SDK's retries)".to_owned(),
                    ),
                    _ => (ErrorKind::Backend, String::new()),
                };
                Error::new(kind, format!("{what}: {code}: {message}{hint}"))
            }
            SdkError::TimeoutError(_) => Error::unavailable(format!(
                "{what}: no answer within {} ms (the call's time limit)",
                self.settings.timeout.as_millis()
            )),
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
                Error::unavailable(format!("{what}: KMS is unreachable: {}", chain(e)))
            }
            _ => Error::new(ErrorKind::Backend, format!("{what}: {}", chain(e))),
        }
    }
}

impl Settings {
    /// A runtime, the SDK configuration loaded in it, and a KMS client.
    fn connect(&self, generation: u64) -> Result<Conn> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| {
                Error::unavailable(format!(
                    "cannot create the AWS KMS client's event loop: {e}"
                ))
            })?;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.timeout)
            .operation_attempt_timeout(self.timeout)
            .operation_timeout(self.timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        let sdk = match block_on(&rt, loader.load()) {
            Ok(sdk) => sdk,
            Err(e) => {
                rt.shutdown_background();
                return Err(e);
            }
        };
        if sdk.region().is_none() {
            rt.shutdown_background();
            return Err(Error::invalid(
                "no AWS region: set one in the configuration (or the URI's region=), in \
                 AWS_REGION, or in the profile; a key ARN names its own",
            ));
        }
        let kms = aws_sdk_kms::Client::new(&sdk);
        Ok(Conn {
            generation,
            live: Some(Live { rt, kms }),
        })
    }
}

/// An error and its sources, as "a: b: c" (the Display of each, never the
/// Debug form, which may show a raw response), cut to 300 characters.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = cause.source();
    }
    truncate_for_message(&text, 300)
}

/// Runs `fut` to completion on `rt` from synchronous code. Inside another
/// tokio runtime (where `block_on` would panic) it runs on a short-lived
/// scoped thread. SIGPIPE is blocked around the I/O, so a server that goes
/// away mid-write is an error, not the death of a C program that did not
/// ignore SIGPIPE (keystrata_sys::without_sigpipe).
fn block_on<F>(rt: &tokio::runtime::Runtime, fut: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(keystrata_sys::without_sigpipe(|| rt.block_on(fut)));
    }
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("ks-aws-kms-call".into())
            .spawn_scoped(s, || {
                keystrata_sys::block_sigpipe_on_this_thread();
                rt.block_on(fut)
            })
            .map_err(|e| {
                Error::unavailable(format!("cannot start a thread for an AWS KMS call: {e}"))
            })?
            .join()
            .map_err(|_| Error::internal("an AWS KMS call panicked"))
    })
}

/// `Ok` for an enabled key; otherwise the error its state calls for.
pub(super) fn check_state(meta: &KeyMetadata, shown: &str) -> Result<()> {
    let shown = truncate_for_message(shown, 200);
    let (kind, why) = match meta.key_state() {
        Some(KeyState::Enabled) => return Ok(()),
        Some(KeyState::Disabled) => (ErrorKind::KeyDisabled, "is disabled".to_owned()),
        Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion) => (
            ErrorKind::KeyDestroyed,
            "is pending deletion (KMS refuses to use it; cancel the deletion to keep it)"
                .to_owned(),
        ),
        Some(KeyState::PendingImport) => (
            ErrorKind::KeyDisabled,
            "has no key material yet (pending import)".to_owned(),
        ),
        Some(KeyState::Unavailable) => (
            ErrorKind::Unavailable,
            "is unavailable (its custom key store is disconnected)".to_owned(),
        ),
        Some(KeyState::Creating | KeyState::Updating) => (
            ErrorKind::Unavailable,
            "is being created or updated; try again".to_owned(),
        ),
        Some(other) => (
            ErrorKind::Backend,
            format!("is in state {:?}", truncate_for_message(other.as_str(), 64)),
        ),
        None => (
            ErrorKind::Backend,
            "has no state in DescribeKey's answer".to_owned(),
        ),
    };
    Err(Error::new(kind, format!("AWS KMS key {shown} {why}")))
}

fn check_key_id(key_id: &str) -> Result<()> {
    if key_id.is_empty() {
        return Err(Error::invalid("the AWS KMS key ID is empty"));
    }
    if key_id.len() > MAX_KEY_ID_LEN || key_id.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{:?} is not an AWS KMS key ID, key ARN, alias name or alias ARN",
            truncate_for_message(key_id, 64)
        )));
    }
    Ok(())
}

/// An endpoint URL is `http://` or `https://` and carries no user
/// information (credentials never go in it).
fn check_endpoint_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::invalid(format!(
                "the AWS KMS endpoint URL must start with https:// or http://, not {:?}",
                truncate_for_message(url, 16)
            ))
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(Error::invalid("the AWS KMS endpoint URL has no host"));
    }
    if authority.contains('@') {
        return Err(Error::invalid(
            "the AWS KMS endpoint URL carries user information: credentials never go in it \
             (they come from the SDK's credential chain)",
        ));
    }
    Ok(())
}

/// The region in a key or alias ARN (`arn:PARTITION:kms:REGION:…`).
pub(super) fn region_of_arn(key_id: &str) -> Option<&str> {
    let mut parts = key_id.splitn(6, ':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("arn"), Some(_), Some("kms"), Some(region), Some(_), Some(_))
            if !region.is_empty() =>
        {
            Some(region)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_of_arns() {
        assert_eq!(
            region_of_arn(
                "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            ),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_arn("arn:aws-cn:kms:cn-north-1:111122223333:alias/root"),
            Some("cn-north-1")
        );
        for none in [
            "alias/root",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:s3:::bucket",
            "arn:aws:kms::111122223333:key/x",
        ] {
            assert_eq!(region_of_arn(none), None, "{none}");
        }
    }

    #[test]
    fn endpoint_urls() {
        for ok in [
            "http://127.0.0.1:4566",
            "https://kms.eu-west-1.amazonaws.com",
            "https://vpce-1.kms.eu-west-1.vpce.amazonaws.com/",
        ] {
            check_endpoint_url(ok).unwrap();
        }
        for bad in [
            "127.0.0.1:4566",
            "ftp://h",
            "https://",
            "https://AKIA:secret@kms.example",
        ] {
            let e = check_endpoint_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(!e.message().contains("secret"), "{e}");
        }
    }

    #[test]
    fn key_ids() {
        check_key_id("alias/keystrata-root").unwrap();
        for bad in [
            String::new(),
            "a\nb".to_owned(),
            "k".repeat(MAX_KEY_ID_LEN + 1),
        ] {
            assert_eq!(
                check_key_id(&bad).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
        }
    }
}
