//! The KeyManager conformance suite: one set of checks every backend must
//! pass (the keychain, the age and passphrase roots, the PKCS#11 root, the
//! KMIP root).
//!
//! A test file runs it with
//!
//! ```ignore
//! mod conformance;
//! fn backend() -> conformance::Backend { ... }
//! conformance::suite!(backend);
//! ```
//!
//! which makes one `#[test]` per check, each on a fresh backend from
//! `backend()`.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use keystrata::{Envelope, ErrorKind, KeyManager, MAX_WRAPPED_KEY_LEN};

/// Stops and starts the peer behind a backend (a server process), for the
/// outage check. Backends that run in-process have none.
pub trait Outage: Send + Sync {
    fn stop(&self);
    fn start(&self);
}

pub struct Backend {
    pub km: Arc<dyn KeyManager>,
    /// How long a call may take before the backend must give up; the
    /// outage check allows this plus a margin.
    pub timeout: Duration,
    pub outage: Option<Box<dyn Outage>>,
}

impl Backend {
    pub fn local(km: impl KeyManager + 'static) -> Backend {
        Backend {
            km: Arc::new(km),
            timeout: Duration::from_secs(5),
            outage: None,
        }
    }
}

macro_rules! suite {
    ($make:path) => {
        #[test]
        fn conformance_round_trips() {
            $crate::conformance::round_trips(&$make());
        }
        #[test]
        fn conformance_context_binding() {
            $crate::conformance::context_binding(&$make());
        }
        #[test]
        fn conformance_tampering() {
            $crate::conformance::tampering(&$make());
        }
        #[test]
        fn conformance_other_provider() {
            $crate::conformance::other_provider(&$make());
        }
        #[test]
        fn conformance_bad_input() {
            $crate::conformance::bad_input(&$make());
        }
        #[test]
        fn conformance_version_and_health() {
            $crate::conformance::version_and_health(&$make());
        }
        #[test]
        fn conformance_close() {
            $crate::conformance::close(&$make());
        }
        #[test]
        fn conformance_concurrent() {
            $crate::conformance::concurrent(&$make());
        }
        #[test]
        fn conformance_outage() {
            $crate::conformance::outage(&$make());
        }
    };
}
pub(crate) use suite;

fn kind<T>(r: keystrata::Result<T>) -> ErrorKind {
    match r {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(e) => e.kind(),
    }
}

pub fn round_trips(b: &Backend) {
    let km = &*b.km;
    let version = km.active_key_version().expect("active_key_version");
    for len in [16usize, 24, 32, 1, 64, MAX_WRAPPED_KEY_LEN] {
        for ctx in [&b""[..], b"bucket/object-17", &[0u8, 255, 1][..]] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let env = km.wrap_key(&key, ctx).expect("wrap_key");
            assert_eq!(env.provider, km.provider(), "envelope provider");
            assert_eq!(env.key_version, version, "envelope key_version");
            assert!(!env.key_id.is_empty(), "envelope key_id");
            if len >= 16 {
                assert!(
                    !env.ciphertext.windows(16).any(|w| w == &key[..16]),
                    "the key appears in clear in the envelope"
                );
            }
            let back = km.unwrap_key(&env, ctx).expect("unwrap_key");
            assert_eq!(back.expose_secret(), &key[..], "len {len}");
            // Through the metadata form too.
            let env2 = Envelope::from_metadata(env.to_metadata()).expect("from_metadata");
            assert_eq!(
                km.unwrap_key(&env2, ctx).expect("unwrap").expose_secret(),
                &key[..]
            );
        }
    }
    // Two wraps of one key differ (fresh randomness every time).
    let a = km.wrap_key(&[9u8; 32], b"c").expect("wrap");
    let c = km.wrap_key(&[9u8; 32], b"c").expect("wrap");
    assert_ne!(a.ciphertext, c.ciphertext, "wrap is not randomized");
}

pub fn context_binding(b: &Backend) {
    let km = &*b.km;
    let env = km.wrap_key(&[1u8; 32], b"tenant=a").expect("wrap");
    for wrong in [&b"tenant=b"[..], b"", b"tenant=a\0", b"tenant="] {
        assert_eq!(kind(km.unwrap_key(&env, wrong)), ErrorKind::Authentication);
    }
    let env = km.wrap_key(&[1u8; 32], b"").expect("wrap");
    assert_eq!(kind(km.unwrap_key(&env, b"x")), ErrorKind::Authentication);
}

pub fn tampering(b: &Backend) {
    let km = &*b.km;
    let env = km.wrap_key(&[2u8; 32], b"ctx").expect("wrap");
    let n = env.ciphertext.len();
    // The end of the body and the tag: Authentication, never more detail.
    for i in [n - 20, n - 17, n - 1] {
        let mut t = env.clone();
        t.ciphertext[i] ^= 0x80;
        assert_eq!(
            kind(km.unwrap_key(&t, b"ctx")),
            ErrorKind::Authentication,
            "flip at {i}"
        );
    }
    // The first byte may be a format byte (a Tink prefix, an age header):
    // a flip there may also read as another format or another key.
    let mut t = env.clone();
    t.ciphertext[0] ^= 0x80;
    let k = kind(km.unwrap_key(&t, b"ctx"));
    assert!(
        matches!(
            k,
            ErrorKind::Authentication | ErrorKind::Format | ErrorKind::UnknownKey
        ),
        "flip at 0: {k:?}"
    );
    let mut t = env.clone();
    t.ciphertext.truncate(n - 1);
    assert_eq!(
        kind(km.unwrap_key(&t, b"ctx")),
        ErrorKind::Authentication,
        "cut short"
    );
    let mut t = env.clone();
    t.ciphertext.push(0);
    assert_eq!(
        kind(km.unwrap_key(&t, b"ctx")),
        ErrorKind::Authentication,
        "extended"
    );
    let mut t = env.clone();
    t.ciphertext.clear();
    let k = kind(km.unwrap_key(&t, b"ctx"));
    assert!(
        matches!(
            k,
            ErrorKind::Authentication | ErrorKind::InvalidInput | ErrorKind::Format
        ),
        "empty ciphertext: {k:?}"
    );
    // The identity fields are bound too: another version or key ID never
    // unwraps (it names another key, or fails authentication).
    let mut t = env.clone();
    t.key_version += 1;
    let k = kind(km.unwrap_key(&t, b"ctx"));
    assert!(
        matches!(k, ErrorKind::Authentication | ErrorKind::UnknownKey),
        "changed key_version: {k:?}"
    );
    let mut t = env.clone();
    t.key_id.push('9');
    let k = kind(km.unwrap_key(&t, b"ctx"));
    assert!(
        matches!(
            k,
            ErrorKind::Authentication
                | ErrorKind::UnknownKey
                | ErrorKind::InvalidInput
                | ErrorKind::Format
        ),
        "changed key_id: {k:?}"
    );
    // The untouched envelope still unwraps.
    assert_eq!(
        km.unwrap_key(&env, b"ctx").expect("unwrap").expose_secret(),
        &[2u8; 32]
    );
}

pub fn other_provider(b: &Backend) {
    let km = &*b.km;
    let mut env = km.wrap_key(&[3u8; 32], b"").expect("wrap");
    for p in ["other-kms", "", "keystrata-x"] {
        if p == km.provider() {
            continue;
        }
        env.provider = p.to_owned();
        assert_eq!(
            kind(km.unwrap_key(&env, b"")),
            ErrorKind::InvalidInput,
            "provider {p:?}"
        );
    }
}

pub fn bad_input(b: &Backend) {
    let km = &*b.km;
    assert_eq!(kind(km.wrap_key(&[], b"")), ErrorKind::InvalidInput);
    assert_eq!(
        kind(km.wrap_key(&vec![0u8; MAX_WRAPPED_KEY_LEN + 1], b"")),
        ErrorKind::InvalidInput
    );
}

pub fn version_and_health(b: &Backend) {
    let km = &*b.km;
    assert!(km.active_key_version().expect("active_key_version") >= 1);
    km.health_check().expect("health_check on a live backend");
    assert!(!km.provider().is_empty());
}

pub fn close(b: &Backend) {
    let km = &*b.km;
    let env = km.wrap_key(&[4u8; 32], b"").expect("wrap");
    km.close().expect("close");
    km.close().expect("second close");
    assert_eq!(kind(km.wrap_key(&[4u8; 32], b"")), ErrorKind::Unavailable);
    assert_eq!(kind(km.unwrap_key(&env, b"")), ErrorKind::Unavailable);
    assert_eq!(kind(km.active_key_version()), ErrorKind::Unavailable);
    assert_eq!(kind(km.health_check()), ErrorKind::Unavailable);
    // The provider name stays readable.
    assert!(!km.provider().is_empty());
}

pub fn concurrent(b: &Backend) {
    let km = &b.km;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..64u8)
            .map(|i| {
                s.spawn(move || {
                    let key = [i; 32];
                    let ctx = [b'c', i];
                    let env = km.wrap_key(&key, &ctx).expect("concurrent wrap");
                    let back = km.unwrap_key(&env, &ctx).expect("concurrent unwrap");
                    assert_eq!(back.expose_secret(), &key);
                    env
                })
            })
            .collect();
        let envs: Vec<Envelope> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        for (i, env) in envs.iter().enumerate() {
            let back = km.unwrap_key(env, &[b'c', i as u8]).expect("unwrap after");
            assert_eq!(back.expose_secret(), &[i as u8; 32]);
        }
    });
}

/// With the peer stopped, calls fail with Unavailable within the timeout
/// (no hang); once it is back, the same backend object serves again.
/// Backends without a peer to stop pass trivially.
pub fn outage(b: &Backend) {
    let Some(outage) = &b.outage else { return };
    let km = &*b.km;
    let env = km
        .wrap_key(&[5u8; 32], b"o")
        .expect("wrap before the outage");
    outage.stop();
    let limit = b.timeout * 3 + Duration::from_secs(5);
    for call in 0..2 {
        let t = Instant::now();
        let k = kind(km.wrap_key(&[5u8; 32], b"o"));
        assert_eq!(
            k,
            ErrorKind::Unavailable,
            "wrap during the outage (call {call})"
        );
        assert!(t.elapsed() < limit, "wrap hung for {:?}", t.elapsed());
        let t = Instant::now();
        assert_eq!(kind(km.unwrap_key(&env, b"o")), ErrorKind::Unavailable);
        assert!(t.elapsed() < limit, "unwrap hung for {:?}", t.elapsed());
        assert_eq!(kind(km.health_check()), ErrorKind::Unavailable);
    }
    outage.start();
    // The backend reconnects by itself; allow the peer a moment to listen.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match km.unwrap_key(&env, b"o") {
            Ok(back) => {
                assert_eq!(back.expose_secret(), &[5u8; 32]);
                break;
            }
            Err(e) if e.kind() == ErrorKind::Unavailable && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("no recovery after restart: {e}"),
        }
    }
    km.health_check().expect("health_check after recovery");
    let env2 = km.wrap_key(&[6u8; 32], b"o").expect("wrap after recovery");
    assert_eq!(
        km.unwrap_key(&env2, b"o").expect("unwrap").expose_secret(),
        &[6u8; 32]
    );
}
