//! keystrata beside the floor it adds overhead to: raw `aws-lc-rs`
//! AES-256-GCM and `hkdf`. Run by `make bench` (bench/run.py), which reads
//! the JSON lines this prints.
//!
//! Every case runs keystrata and its peer interleaved, A B A B ..., for
//! several rounds; each sample times a batch of calls sized to take about
//! `SAMPLE_MS`, and the driver reports medians. A peer that seals draws its
//! random 12-byte nonce per message too, with the same `getrandom` call.
//!
//! Streaming (`stream_encrypt`, `stream_decrypt`, 1 GiB in 1 MiB writes or
//! reads, Tink's AES256_GCM_HKDF_1MB): keystrata's `encrypting_writer` into
//! `io::sink()` and `decrypting_reader` over the stream in memory, beside
//! raw aws-lc-rs AES-256-GCM over the same 1 GiB as 1,024 one-shot messages
//! of 1 MiB, out of place into a reused buffer (the floor: the same AES-GCM
//! work, no stream around it). The decrypt peers open the stream's own
//! segments in place in its buffer, with the segment key derived from the
//! exported stream key (`stream_segment_key`): same bytes, same addresses;
//! `aws-lc-rs-read` reads them through `Read` as the `Read` adapter must.
//! `stream_decrypt_buf` reads it with `decrypting_buf_reader` (segments
//! opened straight from the slice, no copy out of the source);
//! `stream_decrypt_push` decrypts the same stream with the push decryptor
//! (`stream_decryptor`, what the C ABI runs), handed 1 MiB at a time.
//! `stream_rss`: a fresh process streams 10 GiB (and 1 GiB) of generated
//! zeros through encrypt and straight into decrypt, never to disk, and
//! reports its peak RSS (VmHWM).
//!
//! Signing (`sign_*`, `verify_*`, `verify_signature_*`, 64-byte message):
//! keystrata's keychain beside aws-lc-rs's own key pairs and
//! `UnparsedPublicKey` with the same algorithms (the engine keystrata signs
//! with, so the ratio is keystrata's overhead alone).

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, VerificationAlgorithm,
    ECDSA_P256K1_SHA256_ASN1, ECDSA_P256K1_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING, ED25519,
};
use hkdf::Hkdf;
use keystrata::{
    AgeRoot, Algorithm, KeyManager, Keychain, OpenOptions, PublicKeyFormat, Root, Store,
    StreamFormat,
};
use sha2::Sha256;

const SIZES: [usize; 4] = [64, 1024, 64 * 1024, 1024 * 1024];

struct Cfg {
    rounds: usize,
    sample: Duration,
}

fn cfg() -> Cfg {
    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let ms = std::env::var("BENCH_SAMPLE_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    Cfg {
        rounds,
        sample: Duration::from_millis(ms),
    }
}

/// Iterations so that one batch takes about `target`.
fn calibrate(f: &mut dyn FnMut(), target: Duration) -> u64 {
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        let el = t.elapsed();
        if el >= target / 4 || n >= 1 << 30 {
            let per = el.as_secs_f64() / n as f64;
            return ((target.as_secs_f64() / per) as u64).max(1);
        }
        n *= 4;
    }
}

fn emit(case: &str, size: usize, imp: &str, samples: &[f64], unit: &str) {
    let s: Vec<String> = samples.iter().map(|x| format!("{x:.3}")).collect();
    println!(
        "{{\"lang\":\"rust\",\"case\":\"{case}\",\"size\":{size},\"impl\":\"{imp}\",\"unit\":\"{unit}\",\"samples\":[{}]}}",
        s.join(",")
    );
}

/// Runs the implementations interleaved and prints ns per call for each.
fn run(c: &Cfg, case: &str, size: usize, imps: &mut [(&str, &mut dyn FnMut())]) {
    // One call first: a one-time cost (the first ECDSA signature of a
    // process) must not set the batch size.
    for (_, f) in imps.iter_mut() {
        f();
    }
    let iters: Vec<u64> = imps
        .iter_mut()
        .map(|(_, f)| calibrate(&mut **f, c.sample))
        .collect();
    let mut samples = vec![Vec::new(); imps.len()];
    for _ in 0..c.rounds {
        for (i, (_, f)) in imps.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..iters[i] {
                f();
            }
            samples[i].push(t.elapsed().as_nanos() as f64 / iters[i] as f64);
        }
    }
    for (i, (name, _)) in imps.iter().enumerate() {
        emit(case, size, name, &samples[i], "ns");
    }
}

fn raw_seal(key: &LessSafeKey, pt: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).expect("rng");
    let mut out = Vec::with_capacity(12 + pt.len() + 16);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(pt);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[12..],
        )
        .expect("seal");
    out.extend_from_slice(tag.as_ref());
    out
}

fn raw_open(key: &LessSafeKey, ct: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&ct[..12]);
    let mut buf = ct[12..].to_vec();
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .expect("open")
        .len();
    buf.truncate(n);
    buf
}

/// A root that counts how often the keychain calls it.
#[derive(Clone)]
struct CountingRoot {
    inner: AgeRoot,
    calls: Arc<AtomicU64>,
}

impl KeyManager for CountingRoot {
    fn provider(&self) -> &str {
        self.inner.provider()
    }
    fn wrap_key(&self, key: &[u8], context: &[u8]) -> keystrata::Result<keystrata::Envelope> {
        self.inner.wrap_key(key, context)
    }
    fn unwrap_key(
        &self,
        envelope: &keystrata::Envelope,
        context: &[u8],
    ) -> keystrata::Result<keystrata::SecretBytes> {
        self.inner.unwrap_key(envelope, context)
    }
    fn active_key_version(&self) -> keystrata::Result<u32> {
        self.inner.active_key_version()
    }
    fn health_check(&self) -> keystrata::Result<()> {
        self.inner.health_check()
    }
    fn close(&self) -> keystrata::Result<()> {
        self.inner.close()
    }
}

impl Root for CountingRoot {
    fn protect(&self, json: &[u8]) -> keystrata::Result<Vec<u8>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Root::protect(&self.inner, json)
    }
    fn unprotect(&self, stored: &[u8]) -> keystrata::Result<zeroize::Zeroizing<Vec<u8>>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Root::unprotect(&self.inner, stored)
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--stream-rss") {
        let gib = std::env::args()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        stream_rss_child(gib);
        return;
    }
    let c = cfg();
    let only: Option<String> = std::env::args().nth(1);
    let want = |name: &str| only.as_deref().is_none_or(|o| name.starts_with(o));
    let kc = Arc::new(Keychain::generate().expect("keychain"));
    let mut kb = [0u8; 32];
    getrandom::fill(&mut kb).expect("rng");
    let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &kb).expect("key"));
    let aad = b"bench/aad";

    for &size in &SIZES {
        let pt = vec![0x5au8; size];
        if want("seal") {
            run(
                &c,
                "seal",
                size,
                &mut [
                    ("keystrata", &mut || {
                        black_box(kc.seal(black_box(&pt), aad).expect("seal"));
                    }),
                    ("aws-lc-rs", &mut || {
                        black_box(raw_seal(&raw, black_box(&pt), aad));
                    }),
                ],
            );
        }
        if want("seal_to") {
            // Both into a buffer they reuse: the AES-GCM engine's own speed
            // (the peer seals in place, the most favourable case for it).
            let mut out = vec![0u8; size + keystrata::seal::SEAL_OVERHEAD];
            let mut buf = pt.clone();
            run(
                &c,
                "seal_to",
                size,
                &mut [
                    ("keystrata", &mut || {
                        kc.seal_to(black_box(&pt), aad, &mut out).expect("seal_to");
                        black_box(&out);
                    }),
                    ("aws-lc-rs", &mut || {
                        let mut nonce = [0u8; 12];
                        getrandom::fill(&mut nonce).expect("rng");
                        let tag = raw
                            .seal_in_place_separate_tag(
                                Nonce::assume_unique_for_key(nonce),
                                Aad::from(aad),
                                black_box(&mut buf[..]),
                            )
                            .expect("seal");
                        let _ = black_box(tag);
                    }),
                ],
            );
        }
        if want("unseal") {
            let ct = kc.seal(&pt, aad).expect("seal");
            let rct = raw_seal(&raw, &pt, aad);
            run(
                &c,
                "unseal",
                size,
                &mut [
                    ("keystrata", &mut || {
                        black_box(kc.unseal(black_box(&ct), aad).expect("unseal"));
                    }),
                    ("aws-lc-rs", &mut || {
                        black_box(raw_open(&raw, black_box(&rct), aad));
                    }),
                ],
            );
        }
        if want("encrypt") {
            run(
                &c,
                "encrypt",
                size,
                &mut [
                    ("keystrata", &mut || {
                        black_box(kc.encrypt(black_box(&pt), aad).expect("encrypt"));
                    }),
                    ("aws-lc-rs", &mut || {
                        black_box(raw_seal(&raw, black_box(&pt), aad));
                    }),
                ],
            );
        }
        if want("decrypt") {
            let ct = kc.encrypt(&pt, aad).expect("encrypt");
            let rct = raw_seal(&raw, &pt, aad);
            run(
                &c,
                "decrypt",
                size,
                &mut [
                    ("keystrata", &mut || {
                        black_box(kc.decrypt(black_box(&ct), aad).expect("decrypt"));
                    }),
                    ("aws-lc-rs", &mut || {
                        black_box(raw_open(&raw, black_box(&rct), aad));
                    }),
                ],
            );
        }
    }

    if want("derive") {
        let ikm = kb;
        run(
            &c,
            "derive_origin_key",
            32,
            &mut [
                ("keystrata", &mut || {
                    black_box(
                        kc.derive_origin_key(black_box("https://app.example"), "web-1", 7)
                            .expect("derive"),
                    );
                }),
                ("hkdf", &mut || {
                    let info = keystrata::derive::origin_info(
                        black_box(b"https://app.example"),
                        b"web-1",
                        7,
                    )
                    .expect("info");
                    let mut okm = [0u8; 32];
                    Hkdf::<Sha256>::new(None, &ikm)
                        .expand(&info, &mut okm)
                        .expect("expand");
                    black_box(okm);
                }),
            ],
        );
    }
    if want("wrap") {
        let dek = [7u8; 32];
        run(
            &c,
            "wrap_key",
            32,
            &mut [
                ("keystrata", &mut || {
                    black_box(
                        kc.wrap_key(black_box(&dek), b"bucket/object")
                            .expect("wrap"),
                    );
                }),
                ("aws-lc-rs", &mut || {
                    black_box(raw_seal(&raw, black_box(&dek), b"bucket/object"));
                }),
            ],
        );
    }
    if want("rng") {
        // The floor under every seal and encrypt: keystrata's nonce source
        // (the kernel's vDSO getrandom where it has one, keystrata-sys),
        // beside the getrandom(2) system call and AWS-LC's generator.
        run(
            &c,
            "rng_12B",
            12,
            &mut [
                ("keystrata", &mut || {
                    let mut n = [0u8; 12];
                    keystrata_sys::fill_random(&mut n).expect("rng");
                    black_box(n);
                }),
                ("getrandom(2)", &mut || {
                    let mut n = [0u8; 12];
                    getrandom::fill(&mut n).expect("rng");
                    black_box(n);
                }),
                ("aws-lc-rs", &mut || {
                    let mut n = [0u8; 12];
                    aws_lc_rs::rand::fill(&mut n).expect("rng");
                    black_box(n);
                }),
            ],
        );
    }
    if [
        "stream_encrypt",
        "stream_decrypt",
        "stream_decrypt_buf",
        "stream_decrypt_push",
    ]
    .iter()
    .any(|c| want(c))
    {
        streaming(&c, &want);
    }
    if want("stream_rss") {
        stream_rss();
    }
    for alg in Algorithm::ALL {
        signing(&c, alg, &want);
    }
    if want("threads") {
        threads(&c, &kc);
    }
    if want("rootcalls") {
        root_calls();
    }
    if want("shared") {
        shared(&c, &kc);
    }
}

/// An aws-lc-rs key pair of the same algorithm as keystrata's key.
enum PeerPair {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// `sign_<alg>`, `verify_<alg>` and `verify_signature_<alg>` over a 64-byte
/// message: a keychain whose signing primary is a fresh key of `alg`
/// (`rotate_signing`; ECDSA signatures DER, its default) beside an
/// aws-lc-rs key pair of the same algorithm. `verify` is the keychain's
/// (its enabled signing keys: one here); `verify_signature` is
/// `keystrata::sign::verify`, the public key alone (raw bytes). The
/// aws-lc-rs verifier is `UnparsedPublicKey`, which parses the key on
/// every call as keystrata does; on the `verify` row a key parsed once
/// (`ParsedPublicKey`) shows the floor under both.
fn signing(c: &Cfg, alg: Algorithm, want: &dyn Fn(&str) -> bool) {
    let name = alg.name();
    let (sign_case, verify_case, vs_case) = (
        format!("sign_{name}"),
        format!("verify_{name}"),
        format!("verify_signature_{name}"),
    );
    if !(want(&sign_case) || want(&verify_case) || want(&vs_case)) {
        return;
    }
    let msg = [0x5au8; 64];
    let kc = Keychain::generate().expect("keychain");
    let key_id = kc.rotate_signing(alg).expect("rotate_signing").key_id;
    let public = kc
        .public_key(key_id, PublicKeyFormat::Raw)
        .expect("public_key");
    let rng = SystemRandom::new();
    let (peer, valg): (PeerPair, &'static dyn VerificationAlgorithm) = match alg {
        Algorithm::Ed25519 => (
            PeerPair::Ed25519(Ed25519KeyPair::generate().expect("ed25519")),
            &ED25519,
        ),
        Algorithm::EcdsaP256 => (
            PeerPair::Ecdsa(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("p256")),
            &ECDSA_P256_SHA256_ASN1,
        ),
        _ => (
            PeerPair::Ecdsa(
                EcdsaKeyPair::generate(&ECDSA_P256K1_SHA256_ASN1_SIGNING).expect("secp256k1"),
            ),
            &ECDSA_P256K1_SHA256_ASN1,
        ),
    };
    let peer_sign = |m: &[u8]| -> aws_lc_rs::signature::Signature {
        match &peer {
            PeerPair::Ed25519(k) => k.sign(m),
            PeerPair::Ecdsa(k) => k.sign(&rng, m).expect("sign"),
        }
    };
    let peer_public: Vec<u8> = match &peer {
        PeerPair::Ed25519(k) => k.public_key().as_ref().to_vec(),
        PeerPair::Ecdsa(k) => k.public_key().as_ref().to_vec(),
    };
    if want(&sign_case) {
        run(
            c,
            &sign_case,
            msg.len(),
            &mut [
                ("keystrata", &mut || {
                    black_box(kc.sign(black_box(&msg)).expect("sign"));
                }),
                ("aws-lc-rs", &mut || {
                    black_box(peer_sign(black_box(&msg)));
                }),
            ],
        );
    }
    let sig = kc.sign(&msg).expect("sign").bytes;
    let peer_sig = peer_sign(&msg).as_ref().to_vec();
    let unparsed = UnparsedPublicKey::new(valg, &peer_public);
    unparsed.verify(&msg, &peer_sig).expect("peer verifies");
    if want(&verify_case) {
        let parsed = unparsed.parse().expect("parse");
        run(
            c,
            &verify_case,
            msg.len(),
            &mut [
                ("keystrata", &mut || {
                    black_box(kc.verify(black_box(&msg), &sig).expect("verify"));
                }),
                ("aws-lc-rs", &mut || {
                    UnparsedPublicKey::new(valg, black_box(&peer_public))
                        .verify(black_box(&msg), &peer_sig)
                        .expect("verify");
                }),
                ("aws-lc-rs (key parsed once)", &mut || {
                    parsed
                        .verify_sig(black_box(&msg), &peer_sig)
                        .expect("verify");
                }),
            ],
        );
    }
    if want(&vs_case) {
        run(
            c,
            &vs_case,
            msg.len(),
            &mut [
                ("keystrata", &mut || {
                    keystrata::sign::verify(alg, black_box(&public), black_box(&msg), &sig)
                        .expect("verify_signature");
                }),
                ("aws-lc-rs", &mut || {
                    UnparsedPublicKey::new(valg, black_box(&peer_public))
                        .verify(black_box(&msg), &peer_sig)
                        .expect("verify");
                }),
            ],
        );
    }
}

/// A store that counts the calls a keychain makes to it.
struct CountingStore {
    inner: Arc<dyn Store>,
    calls: Arc<AtomicU64>,
}

impl Store for CountingStore {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn load(&self) -> keystrata::Result<Option<keystrata::store::Versioned>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.load()
    }
    fn compare_and_swap(
        &self,
        expected: Option<keystrata::store::Revision>,
        bytes: &[u8],
    ) -> keystrata::Result<keystrata::store::Swap> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.compare_and_swap(expected, bytes)
    }
    fn changed(&self, since: keystrata::store::Revision) -> keystrata::Result<bool> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.changed(since)
    }
}

/// Seal and encrypt of 64 B on a keychain shared through a store (a file,
/// and etcd when `KS_TEST_ETCD_ENDPOINTS` names a running cluster), beside
/// the same calls on an unbound keychain; then root and store calls per
/// 1,000,000 encryptions on each shared keychain, with a second handle
/// open on the same location.
fn shared(c: &Cfg, unbound: &Arc<Keychain>) {
    let dir = std::env::temp_dir().join(format!("keystrata-bench-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let mut locations = vec![("file", dir.join("kc.age").display().to_string())];
    if let Ok(eps) = std::env::var("KS_TEST_ETCD_ENDPOINTS") {
        locations.push((
            "etcd",
            format!("etcd://{eps}/keystrata-bench/{}", std::process::id()),
        ));
    }
    let pt = [0x5au8; 64];
    for (name, location) in &locations {
        let root = CountingRoot {
            inner: AgeRoot::generate(),
            calls: Arc::new(AtomicU64::new(0)),
        };
        let store_calls = Arc::new(AtomicU64::new(0));
        let open = || {
            let store =
                keystrata::store::open_location(std::path::Path::new(location)).expect("store");
            let counted: Arc<dyn Store> = Arc::new(CountingStore {
                inner: store,
                calls: Arc::clone(&store_calls),
            });
            OpenOptions::new()
                .open_store(counted, Arc::new(root.clone()))
                .expect("open")
        };
        let kc = open();
        let other = open();
        black_box(other.seal(b"", b"").expect("seal"));
        for case in ["seal", "encrypt"] {
            run(
                c,
                &format!("{case}_shared"),
                64,
                &mut [
                    ("unbound", &mut || match case {
                        "seal" => drop(black_box(unbound.seal(&pt, b"").expect("seal"))),
                        _ => drop(black_box(unbound.encrypt(&pt, b"").expect("encrypt"))),
                    }),
                    (name, &mut || match case {
                        "seal" => drop(black_box(kc.seal(&pt, b"").expect("seal"))),
                        _ => drop(black_box(kc.encrypt(&pt, b"").expect("encrypt"))),
                    }),
                ],
            );
        }
        let (r0, s0) = (
            root.calls.load(Ordering::Relaxed),
            store_calls.load(Ordering::Relaxed),
        );
        let t = Instant::now();
        for _ in 0..1_000_000 {
            black_box(kc.encrypt(b"", b"").expect("encrypt"));
        }
        let secs = t.elapsed().as_secs_f64();
        let root_calls = root.calls.load(Ordering::Relaxed) - r0;
        let calls = store_calls.load(Ordering::Relaxed) - s0;
        println!("{{\"lang\":\"rust\",\"case\":\"store_calls\",\"size\":0,\"impl\":\"{name}\",\"unit\":\"calls\",\"samples\":[{calls}],\"root_calls\":{root_calls},\"seconds\":{secs:.3}}}");
        drop(other);
        let _ = kc.close();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Seal 64 B throughput (calls per second, all threads together) with 1 and
/// 2 threads on one keychain, interleaved.
fn threads(c: &Cfg, kc: &Arc<Keychain>) {
    let pt = [0x5au8; 64];
    let per_thread = |n: usize| -> f64 {
        let dur = c.sample * 2;
        let start = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let kc = Arc::clone(kc);
                std::thread::spawn(move || {
                    let mut k = 0u64;
                    while start.elapsed() < dur {
                        for _ in 0..64 {
                            black_box(kc.seal(&pt, b"").expect("seal"));
                        }
                        k += 64;
                    }
                    k
                })
            })
            .collect();
        let total: u64 = hs.into_iter().map(|h| h.join().expect("thread")).sum();
        total as f64 / start.elapsed().as_secs_f64()
    };
    // Control: the same loop on raw aws-lc-rs, to show how much of the
    // second core the machine gave at that moment.
    let mut kb = [0u8; 32];
    getrandom::fill(&mut kb).expect("rng");
    let raw = Arc::new(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &kb).expect("key"),
    ));
    let control = |n: usize| -> f64 {
        let dur = c.sample * 2;
        let start = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let raw = Arc::clone(&raw);
                std::thread::spawn(move || {
                    let mut k = 0u64;
                    while start.elapsed() < dur {
                        for _ in 0..64 {
                            black_box(raw_seal(&raw, &pt, b""));
                        }
                        k += 64;
                    }
                    k
                })
            })
            .collect();
        let total: u64 = hs.into_iter().map(|h| h.join().expect("thread")).sum();
        total as f64 / start.elapsed().as_secs_f64()
    };
    let (mut one, mut two, mut c1, mut c2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..c.rounds {
        one.push(per_thread(1));
        two.push(per_thread(2));
        c1.push(control(1));
        c2.push(control(2));
    }
    emit("seal_threads", 64, "keystrata-1", &one, "ops/s");
    emit("seal_threads", 64, "keystrata-2", &two, "ops/s");
    emit("seal_threads", 64, "control-1", &c1, "ops/s");
    emit("seal_threads", 64, "control-2", &c2, "ops/s");
}

/// Calls to the root per 1,000,000 `encrypt` calls on a keychain bound to a
/// file (default policy: usage counts reserved 65,536 at a time).
fn root_calls() {
    let dir = std::env::temp_dir().join(format!("keystrata-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let root = CountingRoot {
        inner: AgeRoot::generate(),
        calls: Arc::new(AtomicU64::new(0)),
    };
    let kc = Keychain::open(dir.join("kc.age"), &root).expect("open");
    let before = root.calls.load(Ordering::Relaxed);
    for _ in 0..1_000_000 {
        black_box(kc.encrypt(b"", b"").expect("encrypt"));
    }
    let calls = root.calls.load(Ordering::Relaxed) - before;
    let _ = std::fs::remove_dir_all(&dir);
    println!("{{\"lang\":\"rust\",\"case\":\"root_calls\",\"size\":0,\"impl\":\"keystrata\",\"unit\":\"calls\",\"samples\":[{calls}]}}");
}

/// The streaming throughput cases: 1 GiB, written and read 1 MiB at a time.
const STREAM_TOTAL: usize = 1 << 30;
const STREAM_CHUNK: usize = 1 << 20;

/// `stream_encrypt` and `stream_decrypt` at 1 GiB (Tink's 1 MB format)
/// beside raw aws-lc-rs AES-256-GCM over the same bytes as 1 MiB one-shot
/// messages (a counter nonce, out of place into a reused buffer: the AES-GCM
/// work with no stream around it). The decrypt peer opens 1,024 distinct
/// sealed 1 MiB messages held in memory (1 GiB, beside keystrata's 1 GiB
/// stream): opening one cached message 1,024 times, as this did first, reads
/// 1 MiB from cache where keystrata reads 1 GiB from memory, and measured
/// 15 GB/s against 6.5 GB/s for the same AES-GCM work over 1 GiB.
fn streaming(c: &Cfg, want: &dyn Fn(&str) -> bool) {
    let kc = Keychain::generate().expect("keychain");
    kc.rotate_streaming(StreamFormat::AesGcmHkdf1Mb)
        .expect("rotate_streaming");
    let aad = b"bench/stream";
    let chunk = vec![0x5au8; STREAM_CHUNK];
    let mut kb = [0u8; 32];
    getrandom::fill(&mut kb).expect("rng");
    let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &kb).expect("key"));
    let mut ct = vec![0u8; STREAM_CHUNK];
    let mut tag = [0u8; 16];
    let nonce = |i: u64| {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&i.to_be_bytes());
        Nonce::assume_unique_for_key(n)
    };
    let n_chunks = (STREAM_TOTAL / STREAM_CHUNK) as u64;
    if want("stream_encrypt") {
        run(
            c,
            "stream_encrypt",
            STREAM_TOTAL,
            &mut [
                ("keystrata", &mut || {
                    let mut w = kc.encrypting_writer(std::io::sink(), aad).expect("writer");
                    for _ in 0..n_chunks {
                        w.write_all(black_box(&chunk)).expect("write");
                    }
                    black_box(w.finish().expect("finish"));
                }),
                ("aws-lc-rs", &mut || {
                    for i in 0..n_chunks {
                        raw.seal_out_of_place_scatter(
                            nonce(i),
                            Aad::empty(),
                            black_box(&chunk),
                            &mut ct,
                            &[],
                            &mut tag,
                        )
                        .expect("seal");
                        black_box((&ct, &tag));
                    }
                }),
            ],
        );
    }
    if want("stream_decrypt") || want("stream_decrypt_buf") || want("stream_decrypt_push") {
        let mut w = kc
            .encrypting_writer(Vec::with_capacity(STREAM_TOTAL + (1 << 16)), aad)
            .expect("writer");
        for _ in 0..n_chunks {
            w.write_all(&chunk).expect("write");
        }
        let stream = w.finish().expect("finish");
        // The peer opens the stream's own segments, in the same buffer, with
        // the segment key and nonces of Tink's format worked out here from
        // the stream key (exported as Tink's keyset): the AES-GCM work alone,
        // on the same bytes at the same addresses. That matters here: two
        // copies of the same 1 GiB decrypt up to 20% apart depending on
        // which was allocated first (where the hypervisor put their pages;
        // swapping the order swaps the winner), which would be measured as
        // the stream's cost if the peer read a buffer of its own.
        let layout = stream_layout(stream.len());
        let seg_key = stream_segment_key(&kc, &stream[..40], aad);
        let seg_nonce = |i: usize| {
            let mut n = [0u8; 12];
            n[..7].copy_from_slice(&stream[33..40]);
            n[7..11].copy_from_slice(&(i as u32).to_be_bytes());
            n[11] = u8::from(i + 1 == layout.len());
            Nonce::assume_unique_for_key(n)
        };
        let peer_open = |peer_out: &mut [u8]| {
            let sealed = black_box(&stream[..]);
            for (i, &(off, len)) in layout.iter().enumerate() {
                let (c, t) = sealed[off..off + len].split_at(len - 16);
                seg_key
                    .open_separate_gather(
                        seg_nonce(i),
                        Aad::empty(),
                        c,
                        t,
                        &mut peer_out[..len - 16],
                    )
                    .expect("open");
                black_box(&peer_out);
            }
        };
        // One output buffer for every implementation (they run one after
        // another): where it lies against the input modulo 4 KiB moves
        // AES-GCM's speed (see above), so each gets the same. The push
        // decryptor sizes its own.
        let out = std::cell::RefCell::new(vec![0u8; STREAM_CHUNK]);
        if want("stream_decrypt") {
            run(
                c,
                "stream_decrypt",
                STREAM_TOTAL,
                &mut [
                    ("keystrata", &mut || {
                        let r = kc
                            .decrypting_reader(black_box(&stream[..]), aad)
                            .expect("reader");
                        assert_eq!(read_all(r, &mut out.borrow_mut()), STREAM_TOTAL);
                    }),
                    ("aws-lc-rs", &mut || peer_open(&mut out.borrow_mut())),
                    // The same AES-GCM work behind the same `Read`: each
                    // message copied out of the source, then opened in
                    // place (the copy a `Read` adapter cannot avoid).
                    ("aws-lc-rs-read", &mut || {
                        let mut src = black_box(&stream[..]);
                        let mut tag = [0u8; 16];
                        let mut header = [0u8; 40];
                        src.read_exact(&mut header).expect("read");
                        for (i, &(_, len)) in layout.iter().enumerate() {
                            let mut o = out.borrow_mut();
                            let body = &mut o[..len - 16];
                            src.read_exact(body).expect("read");
                            src.read_exact(&mut tag).expect("read");
                            seg_key
                                .open_in_place_separate_tag(seg_nonce(i), Aad::empty(), &tag, body)
                                .expect("open");
                            black_box(&body);
                        }
                    }),
                ],
            );
        }
        if want("stream_decrypt_buf") {
            // The buffered reader over the same stream in memory: each
            // segment opened straight from the slice, with no copy out of
            // the source (what `Read` cannot avoid).
            run(
                c,
                "stream_decrypt_buf",
                STREAM_TOTAL,
                &mut [
                    ("keystrata", &mut || {
                        let r = kc
                            .decrypting_buf_reader(black_box(&stream[..]), aad)
                            .expect("reader");
                        assert_eq!(read_all(r, &mut out.borrow_mut()), STREAM_TOTAL);
                    }),
                    ("aws-lc-rs", &mut || peer_open(&mut out.borrow_mut())),
                ],
            );
        }
        if want("stream_decrypt_push") {
            // The push decryptor (what the C ABI, and so Go, use), handed the
            // same stream 1 MiB at a time, its output into a reused buffer.
            let mut push_out = Vec::new();
            run(
                c,
                "stream_decrypt_push",
                STREAM_TOTAL,
                &mut [
                    ("keystrata", &mut || {
                        let mut d = kc.stream_decryptor(aad).expect("decryptor");
                        let mut total = 0;
                        for piece in black_box(&stream[..]).chunks(STREAM_CHUNK) {
                            let need = d.update_output_bound(piece.len());
                            if push_out.len() < need {
                                push_out.resize(need, 0);
                            }
                            total += d.update(piece, &mut push_out).expect("update");
                        }
                        let need = d.finish_output_len();
                        if push_out.len() < need {
                            push_out.resize(need, 0);
                        }
                        total += d.finish(&mut push_out).expect("finish");
                        assert_eq!(total, STREAM_TOTAL);
                        black_box(&push_out);
                    }),
                    ("aws-lc-rs", &mut || peer_open(&mut out.borrow_mut())),
                ],
            );
        }
    }
}

/// The AES-256-GCM key of the segments of the stream whose header is
/// `header`: HKDF-SHA256 of the keychain's primary stream key (read from its
/// Tink export, `AesGcmHkdfStreamingKey.key_value`, field 3) with the
/// header's salt and `aad`, as Tink's format defines it.
fn stream_segment_key(kc: &Keychain, header: &[u8], aad: &[u8]) -> LessSafeKey {
    let json = kc
        .insecure_export_tink_cleartext_for(keystrata::Purpose::Stream)
        .expect("export the stream key");
    let at = json.find("\"value\":\"").expect("a key value") + 9;
    let b64 = &json[at..at + json[at..].find('"').expect("end")];
    let proto =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64");
    // Fields of AesGcmHkdfStreamingKey: 1 version (varint), 2 params and 3
    // key_value (length-delimited).
    let mut p = &proto[..];
    let key = loop {
        let (tag, rest) = p.split_first().expect("key_value");
        match tag & 7 {
            0 => {
                let n = rest.iter().position(|b| b & 0x80 == 0).expect("varint") + 1;
                p = &rest[n..];
            }
            2 => {
                let (len, body) = (rest[0] as usize, &rest[1..]);
                if tag >> 3 == 3 {
                    break body[..len].to_vec();
                }
                p = &body[len..];
            }
            _ => panic!("unexpected field in the stream key"),
        }
    };
    let mut seg = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&header[1..33]), &key)
        .expand(aad, &mut seg)
        .expect("hkdf");
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &seg).expect("key"))
}

/// Where the segments of a 1 MB-format stream of `len` bytes lie: (offset,
/// length with the tag), after the 40-byte header.
fn stream_layout(len: usize) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut off = 40;
    let mut seg = STREAM_CHUNK - 40;
    while off < len {
        let n = seg.min(len - off);
        v.push((off, n));
        off += n;
        seg = STREAM_CHUNK;
    }
    v
}

/// Reads `r` to its end through `out`, the bench's 1 MiB reads; the
/// bytes read.
fn read_all(mut r: impl Read, out: &mut [u8]) -> usize {
    let mut total = 0;
    loop {
        let n = r.read(out).expect("read");
        if n == 0 {
            break;
        }
        total += n;
        black_box(&out[..n]);
    }
    total
}

/// `stream_rss`: runs this program again (`--stream-rss GIB`), in a fresh
/// process whose peak RSS is the stream's alone, for 1 and 10 GiB, and
/// passes its JSON line on.
fn stream_rss() {
    let exe = std::env::current_exe().expect("current_exe");
    for gib in [1u64, 10] {
        let out = std::process::Command::new(&exe)
            .args(["--stream-rss", &gib.to_string()])
            .output()
            .expect("run the stream_rss child");
        assert!(
            out.status.success(),
            "stream_rss child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

/// The peak resident set size of this process so far, in KiB (VmHWM).
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Where the encrypting writer's output goes: straight into a stream
/// decryptor (push API), whose plaintext is checked (all zeros) and
/// counted, then dropped.
struct DecryptSink {
    dec: keystrata::stream::Decryptor,
    out: Vec<u8>,
    plaintext: u64,
}

impl DecryptSink {
    fn take(&mut self, n: usize) {
        assert!(
            self.out[..n].iter().all(|&b| b == 0),
            "the stream decrypted to other bytes"
        );
        self.plaintext += n as u64;
    }
}

impl Write for DecryptSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let need = self.dec.update_output_bound(buf.len());
        if self.out.len() < need {
            self.out.resize(need, 0);
        }
        let n = self
            .dec
            .update(buf, &mut self.out)
            .map_err(std::io::Error::other)?;
        self.take(n);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The child of `stream_rss`: GIB GiB of zeros, made 1 MiB at a time,
/// through `encrypting_writer` (1 MB format) whose output is pushed at once
/// into `stream_decryptor`; prints the peak RSS before and after.
fn stream_rss_child(gib: u64) {
    let kc = Keychain::generate().expect("keychain");
    kc.rotate_streaming(StreamFormat::AesGcmHkdf1Mb)
        .expect("rotate_streaming");
    let aad = b"bench/stream-rss";
    let zeros = vec![0u8; STREAM_CHUNK];
    let sink = DecryptSink {
        dec: kc.stream_decryptor(aad).expect("decryptor"),
        out: Vec::new(),
        plaintext: 0,
    };
    let before = vm_hwm_kib();
    let t = Instant::now();
    let mut w = kc.encrypting_writer(sink, aad).expect("writer");
    let total = gib << 30;
    for _ in 0..total / STREAM_CHUNK as u64 {
        w.write_all(&zeros).expect("write");
    }
    let mut sink = w.finish().expect("finish");
    let need = sink.dec.finish_output_len();
    if sink.out.len() < need {
        sink.out.resize(need, 0);
    }
    let n = sink.dec.finish(&mut sink.out).expect("decrypt finish");
    sink.take(n);
    assert_eq!(sink.plaintext, total, "not every byte came back");
    let secs = t.elapsed().as_secs_f64();
    let peak = vm_hwm_kib();
    println!(
        "{{\"lang\":\"rust\",\"case\":\"stream_rss\",\"size\":{total},\"impl\":\"keystrata\",\"unit\":\"KiB\",\"samples\":[{peak}],\"before_kib\":{before},\"seconds\":{secs:.3},\"segment\":{}}}",
        StreamFormat::AesGcmHkdf1Mb.segment_size()
    );
}
