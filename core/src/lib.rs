//! # keystrata
//!
//! In-process key management: a **keychain** of AES-256 keys with one
//! primary per purpose, protected at rest by a **root** (an age identity or
//! passphrase in development; a key in a PKCS#11 HSM or a KMIP server in
//! production), with which a program can
//! **seal** small secrets, **envelope-encrypt** data, **wrap** data keys and
//! **derive** stable per-origin keys, producing the same bytes as keystrata's
//! C, Go and Python bindings and as Tink.
//!
//! ```
//! use keystrata::{AgeRoot, Keychain, KeyManager};
//!
//! let kc = Keychain::generate()?;
//!
//! // Small secrets, in Tink's AEAD format.
//! let sealed = kc.seal(b"api-token", b"svc=billing")?;
//! assert_eq!(kc.unseal(&sealed, b"svc=billing")?, b"api-token");
//!
//! // Envelope encryption, in Tink's KmsEnvelopeAead layout.
//! let blob = kc.encrypt(b"the document", b"doc-17")?;
//! assert_eq!(kc.decrypt(&blob, b"doc-17")?, b"the document");
//!
//! // Wrapping a data key you keep elsewhere.
//! let env = kc.wrap_key(&[7u8; 32], b"bucket/object")?;
//! assert_eq!(kc.unwrap_key(&env, b"bucket/object")?.expose_secret(), &[7u8; 32]);
//!
//! // Stable derived keys.
//! let k1 = kc.derive_origin_key("https://app.example", "web-1", 0)?;
//! kc.rotate()?;
//! assert_eq!(kc.derive_origin_key("https://app.example", "web-1", 0)?, k1);
//!
//! // At rest, under an age identity: the saved bytes are an age file.
//! let root = AgeRoot::generate();
//! let saved = kc.save(&root)?;
//! let loaded = Keychain::load(&saved, &root)?;
//! assert_eq!(loaded.unseal(&sealed, b"svc=billing")?, b"api-token");
//! # Ok::<(), keystrata::Error>(())
//! ```
//!
//! The byte layouts are specified, with worked examples, in `docs/FORMAT.md`.
//!
//! ## Cargo features
//!
//! - `aws-lc` (default): AES-GCM from AWS-LC.
//! - `rustcrypto`: the pure-Rust AES-GCM engine (used when `aws-lc` is off).
//! - `pkcs11`: `Pkcs11Root`, a root key kept in a PKCS#11 token or HSM
//!   (`docs/PKCS11.md`).
//! - `kmip`: `KmipRoot`, a root key kept in a
//!   KMIP server (binary TTLV over mutual TLS, `rustls`).
//! - `aws-kms`: `AwsKmsRoot`, a root key kept in AWS KMS, and
//!   `sign::AwsKmsSigner`, an ECDSA key kept there, through the official
//!   AWS SDK (rustls, no OpenSSL; `docs/AWS-KMS.md`).
//! - `etcd`: `etcd://` and `etcds://` locations for [`Keychain::open`]:
//!   a keychain shared by a fleet through etcd v3
//!   (`store::etcd::EtcdStore`, `docs/ETCD.md`). Building it needs
//!   `protoc` and the protobuf well-known types (Debian:
//!   `protobuf-compiler libprotobuf-dev`).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod aead;
mod at_rest;
pub mod derive;
pub mod envelope_encryption;
mod error;
pub mod events;
mod key;
mod key_manager;
mod keychain;
mod keyset;
pub mod metadata;
pub mod metrics;
pub mod policy;
pub mod portable;
pub mod root;
pub mod seal;
mod secret;
pub mod sign;
pub mod store;
pub mod stream;
mod sync;
pub mod tink;
pub mod wrapped_key;

/// The old name of [`envelope_encryption`], kept so paths keep working.
#[doc(hidden)]
pub use crate::envelope_encryption as encrypt;
/// The old name of [`wrapped_key`], kept so paths keep working.
#[doc(hidden)]
pub use crate::wrapped_key as envelope;

pub use crate::at_rest::{FORMAT_NAME, FORMAT_VERSION};
pub use crate::envelope_encryption::encrypted_key_id;
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::events::{Counters, Event, EventKind, SubscriptionId};
pub use crate::key::{KeyInfo, KeyStatus, Purpose};
pub use crate::key_manager::{KeyManager, MAX_WRAPPED_KEY_LEN};
#[cfg(feature = "aws-lc")]
pub use crate::keychain::Signature;
pub use crate::keychain::{
    Keychain, OpenOptions, RotationPlan, DEFAULT_REFRESH, KEYCHAIN_PROVIDER,
};
pub use crate::metadata::{metadata_context, MetadataBinding};
pub use crate::policy::Policy;
pub use crate::portable::{decrypt_portable, PortableCounters, PortableDecryptor};
pub use crate::root::{AgeRoot, PassphraseRoot, Root};
#[cfg(feature = "aws-kms")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-kms")))]
pub use crate::root::{AwsKmsConfig, AwsKmsRoot};
#[cfg(feature = "kmip")]
#[cfg_attr(docsrs, doc(cfg(feature = "kmip")))]
pub use crate::root::{KmipConfig, KmipKeyRef, KmipRoot, KmipTransport, KmipVersion};
#[cfg(feature = "pkcs11")]
#[cfg_attr(docsrs, doc(cfg(feature = "pkcs11")))]
pub use crate::root::{Pkcs11Config, Pkcs11Pin, Pkcs11Root, PKCS11_PROVIDER};
pub use crate::seal::sealed_key_id;
pub use crate::secret::SecretBytes;
pub use crate::sign::{Algorithm, PublicKeyFormat, SignatureFormat};
pub use crate::store::{write_atomic, Store};
pub use crate::stream::StreamFormat;
pub use crate::wrapped_key::{Envelope, WrapForm};

/// The repository README's Rust examples, compiled and run as doctests so
/// the quick start stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// docs/STREAMING.md's Rust examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/STREAMING.md")]
pub struct StreamingDocDoctests;

/// The version of this crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
