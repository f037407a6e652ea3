//! The KMS v2 service: `Status`, `Encrypt` and `Decrypt` over a keychain.
//!
//! **What is encrypted.** kube-apiserver sends the plugin a fresh data key
//! (a 32-byte DEK seed) and stores the reply beside every object it
//! encrypts with that key; the plugin's ciphertext must be at most 1 KiB.
//! The plugin **seals** the key ([`Keychain::seal`], Tink's AEAD format:
//! `0x01 ‖ BE32(key_id) ‖ nonce ‖ ct ‖ tag`, 33 bytes more than the key)
//! with the associated data [`AAD`]. Envelope encryption
//! ([`Keychain::encrypt`]) would wrap a second data key around the
//! apiserver's own, for 99 bytes of overhead and nothing gained: the
//! apiserver already does the envelope part.
//!
//! **key_id.** The `key_id` of a reply is `keystrata-<key_id>` of the key
//! that sealed (read from the ciphertext itself, so it cannot disagree
//! with it); `Status` reports the key its probe sealed with. Both change
//! when the keychain's encryption primary changes, which is how the
//! apiserver notices a rotation. The `key_id` of a `DecryptRequest` is
//! advisory: the ciphertext names its key, and any key still in the
//! keychain decrypts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use keystrata::seal::{sealed_key_id, SEAL_OVERHEAD};
use keystrata::{Error, ErrorKind, Keychain};
use tonic::{Code, Request, Response, Status};
use zeroize::Zeroize;

use crate::metrics::{Method, PluginMetrics};
use crate::proto::v2;

/// The KMS API version `Status` reports (`v2beta1` is its older spelling;
/// the apiserver accepts both).
pub const API_VERSION: &str = "v2";

/// The `healthz` of a healthy plugin. Anything else is the reason it is
/// not, shown by the apiserver's own healthz.
pub const HEALTHZ_OK: &str = "ok";

/// Every `key_id` the plugin reports is this prefix and the decimal key_id
/// of a keychain key (`keystrata-1234567`).
pub const KEY_ID_PREFIX: &str = "keystrata-";

/// The associated data of every data key the plugin seals, so a ciphertext
/// the keychain sealed for anything else cannot be passed off as one (and
/// back). To unseal one outside the plugin: `kc.unseal(ct, AAD)`.
pub const AAD: &[u8] = b"keystrata/kms-plugin/v1";

/// The associated data of the `Status` probe, distinct from [`AAD`].
const PROBE_AAD: &[u8] = b"keystrata/kms-plugin/v1/status-probe";

/// The one annotation the plugin attaches to its ciphertexts: which format
/// they are in (a fully qualified domain name, as the API requires). The
/// apiserver stores it with every object and hands it back on `Decrypt`.
pub const FORMAT_ANNOTATION: &str = "format.kms-plugin.keystrata.example.invalid";

/// The value of [`FORMAT_ANNOTATION`]: a data key sealed under [`AAD`].
pub const FORMAT_SEAL_V1: &[u8] = b"seal-v1";

/// The longest ciphertext the apiserver accepts (its `encryptedDEKSource`
/// limit), so the longest `Decrypt` input.
pub const MAX_CIPHERTEXT: usize = 1024;

/// The longest plaintext `Encrypt` takes: its sealed form is then exactly
/// [`MAX_CIPHERTEXT`]. (The apiserver sends 32 bytes.)
pub const MAX_PLAINTEXT: usize = MAX_CIPHERTEXT - SEAL_OVERHEAD;

/// The longest `key_id` the API allows.
pub const MAX_KEY_ID: usize = 1024;

/// The largest total size of annotation keys and values the API allows.
pub const MAX_ANNOTATIONS: usize = 32 * 1024;

/// The longest `uid` taken (the apiserver sends a 36-byte UUID).
pub const MAX_UID: usize = 256;

/// The largest gRPC message the server reads: a `DecryptRequest` at every
/// API limit fits with room to spare. Larger messages are refused by the
/// transport before they are read (tonic answers `OutOfRange`); messages
/// within it that break an API limit get `InvalidArgument`.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// The service behind the gRPC server: a keychain, the plugin's metrics
/// and the key_id last used.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) keychain: Arc<Keychain>,
    pub(crate) metrics: PluginMetrics,
    /// The key_id of the last successful seal (0: none yet).
    last_key_id: AtomicU32,
}

/// What a `Status` probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    pub(crate) healthz: String,
    pub(crate) key_id: String,
}

impl Inner {
    pub(crate) fn new(keychain: Arc<Keychain>) -> Inner {
        Inner {
            keychain,
            metrics: PluginMetrics::default(),
            last_key_id: AtomicU32::new(0),
        }
    }

    fn note_key(&self, key_id: u32) -> String {
        let before = self.last_key_id.swap(key_id, Ordering::Relaxed);
        if before != key_id {
            if before != 0 {
                log::info!(
                    "the encryption primary is now {KEY_ID_PREFIX}{key_id} (was {KEY_ID_PREFIX}{before})"
                );
            }
            self.metrics.set_key_id(key_id);
        }
        format!("{KEY_ID_PREFIX}{key_id}")
    }

    /// A real round trip through the keychain: seal a probe with the
    /// primary (as `Encrypt` would), unseal it, compare.
    pub(crate) fn probe(&self) -> Health {
        let probe = [0x5au8; 32];
        let result = self.keychain.seal(&probe, PROBE_AAD).and_then(|ct| {
            let id = sealed_key_id(&ct)?;
            let back = self.keychain.unseal(&ct, PROBE_AAD)?;
            if back != probe {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "the status probe unsealed to other bytes",
                ));
            }
            Ok(id)
        });
        match result {
            Ok(id) => {
                self.metrics.set_healthy(true);
                Health {
                    healthz: HEALTHZ_OK.to_string(),
                    key_id: self.note_key(id),
                }
            }
            Err(e) => {
                self.metrics.set_healthy(false);
                log::warn!("Status: the keychain failed its round trip: {e}");
                // The apiserver shows healthz in its own health check;
                // a key_id is still required, so report the last one.
                let last = self.last_key_id.load(Ordering::Relaxed);
                let key_id = if last != 0 {
                    format!("{KEY_ID_PREFIX}{last}")
                } else {
                    format!("{KEY_ID_PREFIX}unknown")
                };
                Health {
                    healthz: clip(&format!("keystrata: {e}"), 256),
                    key_id,
                }
            }
        }
    }

    fn encrypt(&self, req: &mut v2::EncryptRequest) -> Result<v2::EncryptResponse, Status> {
        check_uid(&req.uid)?;
        if req.plaintext.is_empty() {
            return Err(Status::invalid_argument(
                "plaintext is empty: Encrypt takes the data key to protect (the apiserver sends 32 bytes)",
            ));
        }
        if req.plaintext.len() > MAX_PLAINTEXT {
            return Err(Status::invalid_argument(format!(
                "plaintext is {} bytes; at most {MAX_PLAINTEXT} are taken, so that the \
                 ciphertext stays within the API's {MAX_CIPHERTEXT} bytes",
                req.plaintext.len()
            )));
        }
        let sealed = self.keychain.seal(&req.plaintext, AAD);
        req.plaintext.zeroize();
        let ciphertext = sealed.map_err(|e| status_from(&e))?;
        let id = sealed_key_id(&ciphertext).map_err(|e| status_from(&e))?;
        let mut annotations = HashMap::with_capacity(1);
        annotations.insert(FORMAT_ANNOTATION.to_string(), FORMAT_SEAL_V1.to_vec());
        Ok(v2::EncryptResponse {
            ciphertext,
            key_id: self.note_key(id),
            annotations,
        })
    }

    fn decrypt(&self, req: &v2::DecryptRequest) -> Result<v2::DecryptResponse, Status> {
        check_uid(&req.uid)?;
        if req.ciphertext.is_empty() {
            return Err(Status::invalid_argument("ciphertext is empty"));
        }
        if req.ciphertext.len() > MAX_CIPHERTEXT {
            return Err(Status::invalid_argument(format!(
                "ciphertext is {} bytes; this plugin's ciphertexts are at most {MAX_CIPHERTEXT}",
                req.ciphertext.len()
            )));
        }
        if req.key_id.len() > MAX_KEY_ID {
            return Err(Status::invalid_argument(format!(
                "key_id is {} bytes; the API allows at most {MAX_KEY_ID}",
                req.key_id.len()
            )));
        }
        let size: usize = req.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_ANNOTATIONS {
            return Err(Status::invalid_argument(format!(
                "annotations are {size} bytes; the API allows at most {MAX_ANNOTATIONS}"
            )));
        }
        // Absent: as written by this version. Another value: a format this
        // version does not know (a newer plugin's).
        if let Some(v) = req.annotations.get(FORMAT_ANNOTATION) {
            if v.as_slice() != FORMAT_SEAL_V1 {
                return Err(Status::invalid_argument(format!(
                    "annotation {FORMAT_ANNOTATION} is {:?}; this plugin reads {:?} only",
                    clip(&String::from_utf8_lossy(v), 64),
                    String::from_utf8_lossy(FORMAT_SEAL_V1)
                )));
            }
        }
        let plaintext = self
            .keychain
            .unseal(&req.ciphertext, AAD)
            .map_err(|e| status_from(&e))?;
        Ok(v2::DecryptResponse { plaintext })
    }
}

fn check_uid(uid: &str) -> Result<(), Status> {
    if uid.len() > MAX_UID {
        return Err(Status::invalid_argument(format!(
            "uid is {} bytes; at most {MAX_UID} are taken",
            uid.len()
        )));
    }
    Ok(())
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The gRPC status of a keystrata error: its kind picks the code, and the
/// message (which never holds key material or plaintext) says the rest.
///
/// | kind | code |
/// |---|---|
/// | InvalidInput, Format, Authentication, Unsupported | InvalidArgument |
/// | UnknownKey | NotFound |
/// | KeyDisabled, KeyDestroyed, Policy | FailedPrecondition |
/// | Unavailable, Backend, Io | Unavailable |
/// | Internal | Internal |
pub(crate) fn status_from(e: &Error) -> Status {
    let code = match e.kind() {
        ErrorKind::InvalidInput
        | ErrorKind::Format
        | ErrorKind::Authentication
        | ErrorKind::Unsupported => Code::InvalidArgument,
        ErrorKind::UnknownKey => Code::NotFound,
        ErrorKind::KeyDisabled | ErrorKind::KeyDestroyed | ErrorKind::Policy => {
            Code::FailedPrecondition
        }
        ErrorKind::Unavailable | ErrorKind::Backend | ErrorKind::Io => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
        // A kind newer than this table: say so rather than guess.
        _ => Code::Unknown,
    };
    Status::new(code, format!("keystrata {e}"))
}

/// The tonic service: each call runs the keychain on tokio's blocking
/// pool (a bound keychain may wait on its store or its root) and is
/// counted and timed.
#[derive(Debug, Clone)]
pub(crate) struct KmsService {
    pub(crate) inner: Arc<Inner>,
}

impl KmsService {
    async fn run<T: Send + 'static>(
        &self,
        method: Method,
        uid: String,
        f: impl FnOnce(&Inner) -> Result<T, Status> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let start = Instant::now();
        let inner = Arc::clone(&self.inner);
        let result = match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(r) => r,
            Err(e) => Err(Status::internal(format!("the {method} task failed: {e}"))),
        };
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        };
        self.inner.metrics.observe(method, code, start.elapsed());
        match &result {
            Ok(_) => log::debug!("{method} uid={uid:?}: ok"),
            Err(s) => log::warn!("{method} uid={uid:?}: {:?}: {}", s.code(), s.message()),
        }
        result.map(Response::new)
    }
}

#[tonic::async_trait]
impl v2::key_management_service_server::KeyManagementService for KmsService {
    async fn status(
        &self,
        _request: Request<v2::StatusRequest>,
    ) -> Result<Response<v2::StatusResponse>, Status> {
        self.run(Method::Status, String::new(), |inner| {
            let h = inner.probe();
            Ok(v2::StatusResponse {
                version: API_VERSION.to_string(),
                healthz: h.healthz,
                key_id: h.key_id,
            })
        })
        .await
    }

    async fn decrypt(
        &self,
        request: Request<v2::DecryptRequest>,
    ) -> Result<Response<v2::DecryptResponse>, Status> {
        let req = request.into_inner();
        let uid = clip(&req.uid, 64);
        self.run(Method::Decrypt, uid, move |inner| inner.decrypt(&req))
            .await
    }

    async fn encrypt(
        &self,
        request: Request<v2::EncryptRequest>,
    ) -> Result<Response<v2::EncryptResponse>, Status> {
        let mut req = request.into_inner();
        let uid = clip(&req.uid, 64);
        self.run(Method::Encrypt, uid, move |inner| {
            let r = inner.encrypt(&mut req);
            req.plaintext.zeroize();
            r
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner() -> Inner {
        Inner::new(Arc::new(Keychain::generate().unwrap()))
    }

    #[test]
    fn limits_follow_the_api() {
        assert_eq!(SEAL_OVERHEAD, 33);
        assert_eq!(MAX_PLAINTEXT, 991);
        // The annotation key is a fully qualified domain name (RFC 1123
        // labels, at least two of them, lower case).
        assert!(FORMAT_ANNOTATION.len() <= 253);
        let labels: Vec<&str> = FORMAT_ANNOTATION.split('.').collect();
        assert!(labels.len() >= 2);
        for l in labels {
            assert!(!l.is_empty() && l.len() <= 63);
            assert!(l
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            assert!(!l.starts_with('-') && !l.ends_with('-'));
        }
    }

    #[test]
    fn encrypt_names_the_sealing_key_and_decrypt_reads_it_back() {
        let s = inner();
        let primary = s.keychain.primary().unwrap().key_id;
        let mut req = v2::EncryptRequest {
            plaintext: vec![7u8; 32],
            uid: "u".into(),
        };
        let resp = s.encrypt(&mut req).unwrap();
        // Vec::zeroize wipes the bytes and empties the Vec.
        assert!(req.plaintext.is_empty(), "the request's plaintext is wiped");
        assert_eq!(resp.key_id, format!("keystrata-{primary}"));
        assert_eq!(resp.ciphertext.len(), 32 + 33);
        assert_eq!(
            resp.annotations.get(FORMAT_ANNOTATION).map(Vec::as_slice),
            Some(FORMAT_SEAL_V1)
        );
        // The plugin's ciphertext is the keychain's seal under AAD.
        assert_eq!(s.keychain.unseal(&resp.ciphertext, AAD).unwrap(), [7u8; 32]);
        let d = v2::DecryptRequest {
            ciphertext: resp.ciphertext.clone(),
            uid: "u2".into(),
            key_id: "advisory, not checked".into(),
            annotations: HashMap::new(),
        };
        assert_eq!(s.decrypt(&d).unwrap().plaintext, [7u8; 32]);

        // A seal for another purpose (other aad) is not a data key.
        let other = s.keychain.seal(&[7u8; 32], b"").unwrap();
        let e = s
            .decrypt(&v2::DecryptRequest {
                ciphertext: other,
                ..d.clone()
            })
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("Authentication"), "{}", e.message());
    }

    #[test]
    fn bad_input_is_invalid_argument() {
        let s = inner();
        let enc = |n: usize| {
            s.encrypt(&mut v2::EncryptRequest {
                plaintext: vec![1u8; n],
                uid: String::new(),
            })
        };
        assert_eq!(enc(0).unwrap_err().code(), Code::InvalidArgument);
        assert_eq!(
            enc(MAX_PLAINTEXT + 1).unwrap_err().code(),
            Code::InvalidArgument
        );
        let max = enc(MAX_PLAINTEXT).unwrap();
        assert_eq!(max.ciphertext.len(), MAX_CIPHERTEXT);
        let e = s
            .encrypt(&mut v2::EncryptRequest {
                plaintext: vec![1u8; 32],
                uid: "u".repeat(MAX_UID + 1),
            })
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);

        let good = v2::DecryptRequest {
            ciphertext: max.ciphertext,
            uid: "u".into(),
            key_id: max.key_id,
            annotations: max.annotations,
        };
        assert_eq!(s.decrypt(&good).unwrap().plaintext.len(), MAX_PLAINTEXT);
        let cases = [
            v2::DecryptRequest {
                ciphertext: vec![],
                ..good.clone()
            },
            v2::DecryptRequest {
                ciphertext: vec![1u8; MAX_CIPHERTEXT + 1],
                ..good.clone()
            },
            v2::DecryptRequest {
                ciphertext: vec![0x01, 0, 0],
                ..good.clone()
            },
            v2::DecryptRequest {
                key_id: "k".repeat(MAX_KEY_ID + 1),
                ..good.clone()
            },
            v2::DecryptRequest {
                annotations: HashMap::from([("a.example".into(), vec![0u8; MAX_ANNOTATIONS])]),
                ..good.clone()
            },
            v2::DecryptRequest {
                annotations: HashMap::from([(FORMAT_ANNOTATION.into(), b"seal-v9".to_vec())]),
                ..good.clone()
            },
        ];
        for c in cases {
            let e = s.decrypt(&c).unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
        }
        // Annotations absent (or others beside ours) are fine.
        let mut no_ann = good.clone();
        no_ann.annotations.clear();
        no_ann
            .annotations
            .insert("other.example.com".into(), b"x".to_vec());
        assert!(s.decrypt(&no_ann).is_ok());
    }

    #[test]
    fn key_states_map_to_codes() {
        let s = inner();
        let old = s.keychain.primary().unwrap().key_id;
        let ct = s
            .encrypt(&mut v2::EncryptRequest {
                plaintext: vec![3u8; 32],
                uid: String::new(),
            })
            .unwrap()
            .ciphertext;
        let req = |ct: Vec<u8>| v2::DecryptRequest {
            ciphertext: ct,
            uid: String::new(),
            key_id: String::new(),
            annotations: HashMap::new(),
        };
        let new = s.keychain.rotate().unwrap().key_id;
        assert_eq!(s.probe().key_id, format!("keystrata-{new}"));
        assert!(s.decrypt(&req(ct.clone())).is_ok());
        s.keychain.disable(old).unwrap();
        assert_eq!(
            s.decrypt(&req(ct.clone())).unwrap_err().code(),
            Code::FailedPrecondition
        );
        s.keychain.destroy(old).unwrap();
        let e = s.decrypt(&req(ct.clone())).unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        assert!(e.message().contains("KeyDestroyed"), "{}", e.message());
        let mut unknown = ct;
        unknown[1..5].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
        assert_eq!(s.decrypt(&req(unknown)).unwrap_err().code(), Code::NotFound);
    }

    #[test]
    fn a_closed_keychain_is_unhealthy_and_unavailable() {
        use keystrata::KeyManager;
        let s = inner();
        let h = s.probe();
        assert_eq!(h.healthz, "ok");
        s.keychain.close().unwrap();
        let h2 = s.probe();
        assert!(h2.healthz.starts_with("keystrata: Unavailable"), "{h2:?}");
        assert_eq!(h2.key_id, h.key_id, "the last key_id is still reported");
        let e = s
            .encrypt(&mut v2::EncryptRequest {
                plaintext: vec![1u8; 32],
                uid: String::new(),
            })
            .unwrap_err();
        assert_eq!(e.code(), Code::Unavailable);
        assert!(
            e.message().starts_with("keystrata Unavailable:"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn every_kind_has_a_code() {
        for k in ErrorKind::ALL {
            let s = status_from(&Error::new(k, "m"));
            assert_ne!(s.code(), Code::Unknown, "{k}");
            assert_ne!(s.code(), Code::Ok, "{k}");
        }
    }
}
