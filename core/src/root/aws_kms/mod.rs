//! AWS KMS: a root key ([`AwsKmsRoot`]) and a signing key
//! ([`AwsKmsSigner`]) kept in AWS Key Management Service, used through the
//! official AWS SDK for Rust.
//!
//! The keys never leave KMS. [`AwsKmsRoot`] wraps data keys with KMS
//! `Encrypt` under a symmetric (`SYMMETRIC_DEFAULT`) key, binding each to
//! its context through the KMS encryption context
//! ([`encryption_context`]), and unwraps them with `Decrypt`; keychains
//! saved under it are in the [`wrapped`](super::wrapped) form (one KMS call
//! per save or load). [`AwsKmsSigner`] signs SHA-256 digests with an
//! `ECC_NIST_P256` or `ECC_SECG_P256K1` key (`Sign`, `MessageType=DIGEST`).
//!
//! Credentials come from the SDK's default chain: environment variables
//! (`AWS_ACCESS_KEY_ID`, …), the shared config and credentials files and
//! their profiles (`credential_process` included), web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE`, as GitHub's OIDC and EKS provide), ECS
//! and EC2 instance roles. Nothing secret is ever in an [`AwsKmsConfig`].
//! Setup, IAM permissions, the error table and what the moto test server
//! does not model: `docs/AWS-KMS.md`.
//!
//! ```no_run
//! use keystrata::{AwsKmsConfig, AwsKmsRoot, Keychain};
//!
//! let config = AwsKmsConfig::new("alias/keystrata-root").with_region("eu-west-1");
//! let root = AwsKmsRoot::connect(config)?;
//! let kc = Keychain::generate()?;
//! let saved = kc.save(&root)?;
//! let again = Keychain::load(&saved, &root)?;
//! # Ok::<(), keystrata::Error>(())
//! ```

mod client;
#[cfg(feature = "aws-lc")]
mod signer;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{EncryptionAlgorithmSpec, KeySpec, KeyUsageType};
use base64::Engine as _;
use zeroize::Zeroizing;

use self::client::{check_state, Client, Op};
#[cfg(feature = "aws-lc")]
#[cfg_attr(docsrs, doc(cfg(all(feature = "aws-kms", feature = "aws-lc"))))]
pub use self::signer::AwsKmsSigner;
use super::Root;
use crate::error::{truncate_for_message, Error, ErrorKind, Result};
use crate::key_manager::{check_provider, check_wrap_input, KeyManager};
use crate::secret::SecretBytes;
use crate::wrapped_key::Envelope;

/// Provider name of [`AwsKmsRoot`], written into envelopes.
pub const AWS_KMS_PROVIDER: &str = "aws-kms";

/// How long one call to KMS may take by default, all its attempts (the
/// SDK's standard retries) and the fetching of credentials included.
pub const DEFAULT_AWS_KMS_TIMEOUT: Duration = Duration::from_secs(5);

/// The encryption-context key that carries the provider.
pub const CONTEXT_PROVIDER_KEY: &str = "keystrata:provider";

/// The encryption-context key that carries keystrata's context, base64.
pub const CONTEXT_KEY: &str = "keystrata:context";

/// KMS keys have versions of their own (automatic rotation keeps the key
/// ID and ARN); every envelope carries version 1.
const KEY_VERSION: u32 = 1;

/// The largest ciphertext KMS `Decrypt` accepts.
const MAX_CIPHERTEXT_LEN: usize = 6144;

/// The KMS encryption context [`AwsKmsRoot`] wraps a data key under for
/// keystrata's `context` bytes:
///
/// ```text
/// {"keystrata:provider": "aws-kms", "keystrata:context": base64(context)}
/// ```
///
/// with standard base64 (RFC 4648, padded), and without the
/// `keystrata:context` entry when `context` is empty. KMS binds the
/// encryption context to the ciphertext as authenticated data, so `Decrypt`
/// with another context fails (`Authentication`). The encryption context is
/// not secret: it appears in CloudTrail logs, and IAM and key policies can
/// match it (`kms:EncryptionContext:keystrata:provider`). A keychain saved
/// under the root uses the context `keystrata/keychain/v1`, so its entry is
/// `"keystrata:context": "a2V5c3RyYXRhL2tleWNoYWluL3Yx"`.
pub fn encryption_context(context: &[u8]) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    map.insert(CONTEXT_PROVIDER_KEY.to_owned(), AWS_KMS_PROVIDER.to_owned());
    if !context.is_empty() {
        map.insert(
            CONTEXT_KEY.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(context),
        );
    }
    map
}

/// Which KMS key to use, where, and how long to wait.
///
/// Holds no secret: credentials come from the SDK's default chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsKmsConfig {
    /// The key: a key ID, a key ARN, an alias name (`alias/…`) or an alias
    /// ARN. An alias is resolved once, when the root or signer is opened;
    /// envelopes name the key's ARN.
    pub key_id: String,
    /// The AWS region. `None`: the region of a key or alias ARN, else the
    /// SDK's chain (`AWS_REGION`, the profile's `region`, EC2 metadata).
    pub region: Option<String>,
    /// Another endpoint than the region's KMS endpoint: a VPC endpoint, a
    /// FIPS endpoint, or a local stand-in such as moto's server.
    pub endpoint_url: Option<String>,
    /// A named profile of the shared config files (`None`: `AWS_PROFILE`,
    /// else `default`).
    pub profile: Option<String>,
    /// The bound on every call, all its attempts included.
    pub timeout: Duration,
}

impl AwsKmsConfig {
    /// A configuration for `key_id`, with the region from the key's ARN or
    /// the SDK's chain, the region's endpoint, the default profile and a
    /// [`DEFAULT_AWS_KMS_TIMEOUT`].
    pub fn new(key_id: impl Into<String>) -> Self {
        AwsKmsConfig {
            key_id: key_id.into(),
            region: None,
            endpoint_url: None,
            profile: None,
            timeout: DEFAULT_AWS_KMS_TIMEOUT,
        }
    }

    /// This configuration in `region`.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// This configuration with the endpoint `url`.
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }
}

struct Inner {
    client: Client,
    /// The key's ARN, as DescribeKey reported it.
    arn: String,
}

/// A root whose key is a symmetric AWS KMS key (see the
/// [module docs](self)).
///
/// Envelopes: `key_id` is the key's ARN, `key_version` 1, `provider`
/// `"aws-kms"`, and the ciphertext is KMS's `CiphertextBlob`. Only
/// envelopes under this root's key are unwrapped (another key:
/// `UnknownKey`, before KMS is called).
///
/// Clones share one handle: closing one closes all. Thread-safe.
#[derive(Clone)]
pub struct AwsKmsRoot(Arc<Inner>);

impl fmt::Debug for AwsKmsRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsRoot")
            .field("key_arn", &self.0.arn)
            .field("client", &self.0.client)
            .finish_non_exhaustive()
    }
}

impl AwsKmsRoot {
    /// Opens the key with `DescribeKey`: it must be an enabled
    /// `SYMMETRIC_DEFAULT` key for `ENCRYPT_DECRYPT`.
    ///
    /// Errors: a bad configuration or no region: `InvalidInput`; no such
    /// key or alias: `UnknownKey`; a key of another kind: `Unsupported`; a
    /// disabled key: `KeyDisabled`; one pending deletion: `KeyDestroyed`;
    /// KMS unreachable or not answering in time: `Unavailable`; credentials
    /// missing or refused, no `kms:DescribeKey` permission, throttling:
    /// `Backend`.
    pub fn connect(config: AwsKmsConfig) -> Result<AwsKmsRoot> {
        let client = Client::new(&config, "AwsKmsRoot")?;
        let meta = client.describe(&config.key_id)?;
        let arn = meta
            .arn()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| client.malformed(Op::DescribeKey, &config.key_id, "the key's ARN"))?
            .to_owned();
        if meta.key_usage() != Some(&KeyUsageType::EncryptDecrypt)
            || meta.key_spec() != Some(&KeySpec::SymmetricDefault)
        {
            return Err(Error::unsupported(format!(
                "AWS KMS key {} is a {} key for {}; a root needs a SYMMETRIC_DEFAULT key for \
                 ENCRYPT_DECRYPT",
                truncate_for_message(&arn, 200),
                meta.key_spec().map_or("(unnamed)", |s| s.as_str()),
                meta.key_usage().map_or("(unnamed)", |u| u.as_str()),
            )));
        }
        check_state(&meta, &arn)?;
        Ok(AwsKmsRoot(Arc::new(Inner { client, arn })))
    }

    /// The key's ARN (what envelopes name).
    pub fn key_arn(&self) -> &str {
        &self.0.arn
    }
}

impl KeyManager for AwsKmsRoot {
    fn provider(&self) -> &str {
        AWS_KMS_PROVIDER
    }

    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        self.0.client.check_open()?;
        check_wrap_input(plaintext_key)?;
        let arn = &self.0.arn;
        let out = self
            .0
            .client
            .run(Op::Encrypt, arn, |kms| {
                let req = kms
                    .encrypt()
                    .key_id(arn.clone())
                    .plaintext(Blob::new(plaintext_key.to_vec()))
                    .encryption_algorithm(EncryptionAlgorithmSpec::SymmetricDefault)
                    .set_encryption_context(Some(
                        encryption_context(context).into_iter().collect(),
                    ));
                async move { req.send().await }
            })
            .map_err(|e| self.0.client.explain(arn, e))?;
        if let Some(used) = out.key_id() {
            if used != arn {
                return Err(Error::new(
                    ErrorKind::Backend,
                    format!(
                        "AWS KMS Encrypt used key {}, not this root's {}",
                        truncate_for_message(used, 200),
                        truncate_for_message(arn, 200)
                    ),
                ));
            }
        }
        let ciphertext = out
            .ciphertext_blob
            .map(Blob::into_inner)
            .filter(|c| !c.is_empty() && c.len() <= MAX_CIPHERTEXT_LEN)
            .ok_or_else(|| {
                self.0
                    .client
                    .malformed(Op::Encrypt, arn, "a CiphertextBlob")
            })?;
        Ok(Envelope {
            key_id: arn.clone(),
            key_version: KEY_VERSION,
            provider: AWS_KMS_PROVIDER.to_owned(),
            ciphertext,
        })
    }

    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        self.0.client.check_open()?;
        check_provider(envelope, AWS_KMS_PROVIDER)?;
        let arn = &self.0.arn;
        if envelope.key_id != *arn {
            return Err(Error::new(
                ErrorKind::UnknownKey,
                format!(
                    "envelope is wrapped under AWS KMS key {:?}; this root's key is {}",
                    truncate_for_message(&envelope.key_id, 200),
                    truncate_for_message(arn, 200)
                ),
            ));
        }
        if envelope.key_version != KEY_VERSION {
            return Err(Error::new(
                ErrorKind::UnknownKey,
                format!(
                    "envelope names version {} of AWS KMS key {}; its envelopes are version {}",
                    envelope.key_version,
                    truncate_for_message(arn, 200),
                    KEY_VERSION
                ),
            ));
        }
        if envelope.ciphertext.is_empty() || envelope.ciphertext.len() > MAX_CIPHERTEXT_LEN {
            return Err(Error::authentication());
        }
        let out = self
            .0
            .client
            .run(Op::Decrypt, arn, |kms| {
                let req = kms
                    .decrypt()
                    .key_id(arn.clone())
                    .ciphertext_blob(Blob::new(envelope.ciphertext.clone()))
                    .encryption_algorithm(EncryptionAlgorithmSpec::SymmetricDefault)
                    .set_encryption_context(Some(
                        encryption_context(context).into_iter().collect(),
                    ));
                async move { req.send().await }
            })
            .map_err(|e| self.0.client.explain(arn, e))?;
        let key = Zeroizing::new(
            out.plaintext
                .map(Blob::into_inner)
                .ok_or_else(|| self.0.client.malformed(Op::Decrypt, arn, "a Plaintext"))?,
        );
        if key.is_empty() || key.len() > crate::MAX_WRAPPED_KEY_LEN {
            return Err(self.0.client.malformed(
                Op::Decrypt,
                arn,
                "a plaintext of 1 to 4096 bytes",
            ));
        }
        Ok(SecretBytes::from_zeroizing(key))
    }

    fn active_key_version(&self) -> Result<u32> {
        self.0.client.check_open()?;
        Ok(KEY_VERSION)
    }

    /// `DescribeKey`: the key exists and is enabled.
    fn health_check(&self) -> Result<()> {
        self.0.client.check_open()?;
        let meta = self.0.client.describe(&self.0.arn)?;
        check_state(&meta, &self.0.arn)
    }

    fn close(&self) -> Result<()> {
        self.0.client.close();
        Ok(())
    }
}

/// Keychains in the [`wrapped`](super::wrapped) form: the defaults.
impl Root for AwsKmsRoot {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encryption_context_mapping() {
        let empty = encryption_context(b"");
        assert_eq!(empty.len(), 1);
        assert_eq!(empty[CONTEXT_PROVIDER_KEY], "aws-kms");
        let kc = encryption_context(b"keystrata/keychain/v1");
        assert_eq!(kc[CONTEXT_KEY], "a2V5c3RyYXRhL2tleWNoYWluL3Yx");
        assert_eq!(kc[CONTEXT_PROVIDER_KEY], "aws-kms");
        assert_eq!(encryption_context(&[0, 255, 1])[CONTEXT_KEY], "AP8B");
        // Distinct contexts give distinct maps.
        assert_ne!(encryption_context(b"a"), encryption_context(b"a\0"));
    }

    #[test]
    fn config_defaults_and_bad_configurations() {
        let c = AwsKmsConfig::new("alias/k")
            .with_region("eu-west-1")
            .with_endpoint_url("http://127.0.0.1:1");
        assert_eq!(c.timeout, DEFAULT_AWS_KMS_TIMEOUT);
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        // Refused before any connection: nothing here reaches a network.
        for bad in [
            AwsKmsConfig::new(""),
            AwsKmsConfig::new("alias/k").with_endpoint_url("kms.example"),
            AwsKmsConfig::new("alias/k").with_endpoint_url("https://a:b@kms.example"),
            AwsKmsConfig {
                timeout: Duration::ZERO,
                ..AwsKmsConfig::new("alias/k")
            },
            AwsKmsConfig::new("alias/k").with_region(""),
        ] {
            let e = AwsKmsRoot::connect(bad.clone()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        }
    }
}
