//! Portable ciphertexts: `Keychain::encrypt_portable`, `PortableDecryptor`
//! and `decrypt_portable`, with a real age root behind a counting wrapper.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use keystrata::portable::{KEK_RECORD_LABEL, MAX_WRAPPED_KEK_LEN};
use keystrata::{
    decrypt_portable, AgeRoot, ErrorKind, KeyManager, Keychain, OpenOptions, PassphraseRoot,
    Policy, PortableDecryptor, Root,
};
use zeroize::Zeroizing;

/// A real root that counts the calls made to it: `protect` of a portable
/// KEK record (told apart from saving the keychain by its label) and every
/// `unprotect` of anything else than the keychain itself.
#[derive(Clone)]
struct Counting<R> {
    inner: R,
    wraps: Arc<AtomicUsize>,
    unwraps: Arc<AtomicUsize>,
}

impl<R: Root> Counting<R> {
    fn new(inner: R) -> Counting<R> {
        Counting {
            inner,
            wraps: Arc::default(),
            unwraps: Arc::default(),
        }
    }
    fn wraps(&self) -> usize {
        self.wraps.load(Ordering::SeqCst)
    }
    fn unwraps(&self) -> usize {
        self.unwraps.load(Ordering::SeqCst)
    }
}

impl<R: Root> KeyManager for Counting<R> {
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

impl<R: Root> Root for Counting<R> {
    fn protect(&self, data: &[u8]) -> keystrata::Result<Vec<u8>> {
        if data.starts_with(KEK_RECORD_LABEL) {
            self.wraps.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.protect(data)
    }
    fn unprotect(&self, stored: &[u8]) -> keystrata::Result<Zeroizing<Vec<u8>>> {
        let out = self.inner.unprotect(stored);
        // The keychain's own loads (from the store) are JSON.
        if !matches!(&out, Ok(json) if json.starts_with(b"{")) {
            self.unwraps.fetch_add(1, Ordering::SeqCst);
        }
        out
    }
}

fn open_bound(root: &Counting<AgeRoot>) -> (tempfile::TempDir, Keychain) {
    let dir = tempfile::tempdir().unwrap();
    let kc = Keychain::open(dir.path().join("keychain.age"), root).unwrap();
    (dir, kc)
}

#[test]
fn the_root_is_called_once_per_kek_on_both_sides_and_again_after_rotation() {
    let root = Counting::new(AgeRoot::generate());
    let (_dir, kc) = open_bound(&root);
    let first = kc.primary().unwrap().key_id;

    let mut blobs = Vec::new();
    for i in 0..40u32 {
        let pt = format!("message {i}").into_bytes();
        blobs.push((kc.encrypt_portable(&pt, b"ctx").unwrap(), pt));
    }
    assert_eq!(root.wraps(), 1, "one wrap for 40 messages under one KEK");
    assert_eq!(kc.counters().encrypt, 40);

    let dec = PortableDecryptor::new(Arc::new(root.clone()));
    for (blob, pt) in &blobs {
        assert_eq!(&dec.decrypt(blob, b"ctx").unwrap(), pt);
    }
    assert_eq!(
        root.unwraps(),
        1,
        "one unwrap for 40 messages under one KEK"
    );
    let c = dec.counters();
    assert_eq!((c.decrypt_ok, c.root_calls, c.cached_keks), (40, 1, 1));

    // A rotation gives a second KEK: one more wrap, one more unwrap.
    let second = kc.rotate().unwrap().key_id;
    assert_ne!(first, second);
    for i in 0..40u32 {
        let pt = format!("after rotation {i}").into_bytes();
        blobs.push((kc.encrypt_portable(&pt, b"ctx").unwrap(), pt));
    }
    assert_eq!(root.wraps(), 2);
    for (blob, pt) in &blobs {
        assert_eq!(&dec.decrypt(blob, b"ctx").unwrap(), pt);
    }
    assert_eq!(root.unwraps(), 2);
    let c = dec.counters();
    assert_eq!((c.decrypt_ok, c.root_calls, c.cached_keks), (120, 2, 2));

    // The old KEK's messages name the old key_id; the new ones the new.
    let key_id_of = |b: &[u8]| {
        let n = u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize;
        let e = &b[8 + n..];
        u32::from_be_bytes(e[5..9].try_into().unwrap())
    };
    assert_eq!(key_id_of(&blobs[0].0), first);
    assert_eq!(key_id_of(&blobs[79].0), second);

    // The inner part is an ordinary envelope: the keychain decrypts it.
    let (blob, pt) = &blobs[0];
    let n = u32::from_be_bytes(blob[4..8].try_into().unwrap()) as usize;
    assert_eq!(&kc.decrypt(&blob[8 + n..], b"ctx").unwrap(), pt);

    // The one-shot form calls the root every time.
    let before = root.unwraps();
    assert_eq!(&decrypt_portable(blob, b"ctx", &root).unwrap(), pt);
    assert_eq!(&decrypt_portable(blob, b"ctx", &root).unwrap(), pt);
    assert_eq!(root.unwraps(), before + 2);

    // clear() forgets: the next one calls the root again.
    dec.clear();
    assert_eq!(dec.counters().cached_keks, 0);
    dec.decrypt(&blobs[0].0, b"ctx").unwrap();
    assert_eq!(dec.counters().root_calls, 3);
}

#[test]
fn another_handle_and_a_reloaded_primary_reuse_or_rewrap_as_they_should() {
    let root = Counting::new(AgeRoot::generate());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let a = OpenOptions::new()
        .refresh(std::time::Duration::from_millis(50))
        .open(&path, &root)
        .unwrap();
    let b = OpenOptions::new()
        .refresh(std::time::Duration::from_millis(50))
        .open(&path, &root)
        .unwrap();
    a.encrypt_portable(b"x", b"").unwrap();
    a.refresh().unwrap(); // reloads: the same key must not be wrapped again
    a.encrypt_portable(b"x", b"").unwrap();
    assert_eq!(root.wraps(), 1);
    // Another handle wraps for itself (once), and its blobs decrypt.
    let blob_b = b.encrypt_portable(b"from b", b"").unwrap();
    b.encrypt_portable(b"from b", b"").unwrap();
    assert_eq!(root.wraps(), 2);
    // b rotates; a adopts the new primary and wraps it once.
    b.rotate().unwrap();
    a.refresh().unwrap();
    let blob_a = a.encrypt_portable(b"from a", b"").unwrap();
    a.encrypt_portable(b"from a", b"").unwrap();
    assert_eq!(root.wraps(), 3);
    let dec = PortableDecryptor::new(Arc::new(root.inner.clone()));
    assert_eq!(dec.decrypt(&blob_b, b"").unwrap(), b"from b");
    assert_eq!(dec.decrypt(&blob_a, b"").unwrap(), b"from a");
}

#[test]
fn concurrent_first_uses_make_one_root_call() {
    let root = Counting::new(AgeRoot::generate());
    let (_dir, kc) = open_bound(&root);
    let kc = Arc::new(kc);
    let blobs: Vec<Vec<u8>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let kc = Arc::clone(&kc);
                s.spawn(move || kc.encrypt_portable(&[i as u8; 100], b"").unwrap())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        root.wraps(),
        1,
        "eight threads meeting a new primary wrap it once"
    );
    let dec = PortableDecryptor::new(Arc::new(root.clone()));
    std::thread::scope(|s| {
        for (i, blob) in blobs.iter().enumerate() {
            let dec = &dec;
            s.spawn(move || assert_eq!(dec.decrypt(blob, b"").unwrap(), vec![i as u8; 100]));
        }
    });
    assert_eq!(
        root.unwraps(),
        1,
        "eight threads meeting one wrapped KEK unwrap it once"
    );
}

#[test]
fn an_unbound_keychain_refuses_with_policy() {
    let kc = Keychain::generate().unwrap();
    let e = kc.encrypt_portable(b"x", b"").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Policy);
    assert!(e.message().contains("open(location, root)"), "{e}");
    assert_eq!(kc.primary().unwrap().usage, 0, "no usage count taken");
    assert_eq!(kc.counters().errors_of(ErrorKind::Policy), 1);
    kc.close().unwrap();
    let e = kc.encrypt_portable(b"x", b"").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[test]
fn a_closed_bound_keychain_is_unavailable() {
    let root = Counting::new(AgeRoot::generate());
    let (_dir, kc) = open_bound(&root);
    kc.close().unwrap();
    let e = kc.encrypt_portable(b"x", b"").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(root.wraps(), 0);
}

fn tamper(blob: &[u8], at: usize) -> Vec<u8> {
    let mut b = blob.to_vec();
    b[at] ^= 0x01;
    b
}

#[test]
fn every_part_is_checked_with_the_documented_kind() {
    let root = AgeRoot::generate();
    let dir = tempfile::tempdir().unwrap();
    let kc = Keychain::open(dir.path().join("k.age"), &root).unwrap();
    let blob = kc.encrypt_portable(b"secret payload", b"aad").unwrap();
    let n = u32::from_be_bytes(blob[4..8].try_into().unwrap()) as usize;
    let env = 8 + n;
    let dec = PortableDecryptor::new(Arc::new(root.clone()));
    let kind = |b: &[u8], aad: &[u8]| dec.decrypt(b, aad).unwrap_err().kind();

    assert_eq!(dec.decrypt(&blob, b"aad").unwrap(), b"secret payload");
    assert_eq!(kind(&blob, b"other aad"), ErrorKind::Authentication);
    assert_eq!(
        kind(&blob[..blob.len() - 1], b"aad"),
        ErrorKind::Authentication
    );
    assert_eq!(kind(&tamper(&blob, 0), b"aad"), ErrorKind::Format);
    assert_eq!(kind(&tamper(&blob, 3), b"aad"), ErrorKind::Unsupported);
    // The wrapped KEK: its age header, its payload.
    assert_eq!(kind(&tamper(&blob, 8), b"aad"), ErrorKind::Format);
    assert_eq!(
        kind(&tamper(&blob, env - 1), b"aad"),
        ErrorKind::Authentication
    );
    // The envelope: length field, enc_dek prefix, key_id, DEK tag, payload.
    assert_eq!(kind(&tamper(&blob, env + 1), b"aad"), ErrorKind::Format);
    assert_eq!(kind(&tamper(&blob, env + 4), b"aad"), ErrorKind::Format);
    assert_eq!(
        kind(&tamper(&blob, env + 6), b"aad"),
        ErrorKind::Authentication
    );
    assert_eq!(
        kind(&tamper(&blob, env + 60), b"aad"),
        ErrorKind::Authentication
    );
    assert_eq!(
        kind(&tamper(&blob, blob.len() - 20), b"aad"),
        ErrorKind::Authentication
    );

    // Another root's identity cannot unwrap: Authentication, with the one
    // opaque message (not age's "no identity opens…").
    let other = PortableDecryptor::new(Arc::new(AgeRoot::generate()));
    let e = other.decrypt(&blob, b"aad").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    assert_eq!(e.message(), dec.decrypt(&blob, b"x").unwrap_err().message());
    let e2 = dec.decrypt(&tamper(&blob, env - 1), b"aad").unwrap_err();
    assert_eq!(e2.message(), e.message());
    // A wrapped part that is not an age file: Format (from the root).
    let mut junk = blob[..8].to_vec();
    junk[4..8].copy_from_slice(&4u32.to_be_bytes());
    junk.extend_from_slice(b"junk");
    junk.extend_from_slice(&blob[env..]);
    assert_eq!(kind(&junk, b"aad"), ErrorKind::Format);

    // Swapping in the wrapped KEK of another key: Authentication.
    kc.rotate().unwrap();
    let blob2 = kc.encrypt_portable(b"secret payload", b"aad").unwrap();
    let n2 = u32::from_be_bytes(blob2[4..8].try_into().unwrap()) as usize;
    let mut swapped = blob2[..8 + n2].to_vec();
    swapped.extend_from_slice(&blob[env..]);
    assert_eq!(kind(&swapped, b"aad"), ErrorKind::Authentication);
    // ...of the same key (another wrapping of it): decrypts.
    let kc2 = Keychain::open(dir.path().join("k.age"), &root).unwrap();
    let blob3 = kc2.encrypt_portable(b"y", b"").unwrap();
    let n3 = u32::from_be_bytes(blob3[4..8].try_into().unwrap()) as usize;
    assert_ne!(
        &blob3[8..8 + n3],
        &blob2[8..8 + n2],
        "age wrapping is randomized"
    );
    let mut rewrapped = blob3[..8 + n3].to_vec();
    rewrapped.extend_from_slice(&blob2[8 + n2..]);
    assert_eq!(dec.decrypt(&rewrapped, b"aad").unwrap(), b"secret payload");

    // Root-protected bytes that are not a KEK record: a saved keychain, or
    // anything else encrypted to the root: Format.
    for inner in [kc.save(&root).unwrap(), root.protect(b"hello").unwrap()] {
        let mut b = b"KSP\x01".to_vec();
        b.extend_from_slice(&(inner.len() as u32).to_be_bytes());
        b.extend_from_slice(&inner);
        b.extend_from_slice(&blob[env..]);
        assert_eq!(kind(&b, b"aad"), ErrorKind::Format);
    }
    // ...and the other way round: a wrapped KEK is not a saved keychain.
    assert_eq!(
        Keychain::load(&blob[8..env], &root).unwrap_err().kind(),
        ErrorKind::Format
    );
    // A forged record naming the right key_id with another key: the
    // envelope does not open (Authentication), and the forgery is not
    // cached under that key_id: the real blob still decrypts.
    let mut rec = KEK_RECORD_LABEL.to_vec();
    rec.extend_from_slice(&blob[env + 5..env + 9]);
    rec.extend_from_slice(&[0x42; 32]);
    let forged_wrap = root.protect(&rec).unwrap();
    let mut forged = b"KSP\x01".to_vec();
    forged.extend_from_slice(&(forged_wrap.len() as u32).to_be_bytes());
    forged.extend_from_slice(&forged_wrap);
    forged.extend_from_slice(&blob[env..]);
    let fresh = PortableDecryptor::new(Arc::new(root.clone()));
    assert_eq!(
        fresh.decrypt(&forged, b"aad").unwrap_err().kind(),
        ErrorKind::Authentication
    );
    assert_eq!(fresh.decrypt(&blob, b"aad").unwrap(), b"secret payload");

    // The one-shot form agrees.
    assert_eq!(
        decrypt_portable(&swapped, b"aad", &root)
            .unwrap_err()
            .kind(),
        ErrorKind::Authentication
    );
    assert_eq!(
        decrypt_portable(&tamper(&blob, 3), b"aad", &root)
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn failures_are_not_cached_and_the_cache_is_bounded() {
    let root = Counting::new(AgeRoot::generate());
    let (_dir, kc) = open_bound(&root);
    let dec = PortableDecryptor::with_capacity(Arc::new(root.clone()), 2);
    let mut blobs = Vec::new();
    for _ in 0..3 {
        blobs.push(kc.encrypt_portable(b"m", b"").unwrap());
        kc.rotate().unwrap();
    }
    for b in &blobs {
        dec.decrypt(b, b"").unwrap();
    }
    assert_eq!(dec.counters().cached_keks, 2);
    assert_eq!(dec.counters().root_calls, 3);
    // The least recently used (the first) left; the last two are hits.
    dec.decrypt(&blobs[2], b"").unwrap();
    dec.decrypt(&blobs[1], b"").unwrap();
    assert_eq!(dec.counters().root_calls, 3);
    dec.decrypt(&blobs[0], b"").unwrap();
    assert_eq!(dec.counters().root_calls, 4);
    assert_eq!(dec.counters().cached_keks, 2);

    // A wrapped KEK that fails to unwrap is asked again each time and
    // never pushes a good KEK out.
    let n = u32::from_be_bytes(blobs[0][4..8].try_into().unwrap()) as usize;
    let bad = tamper(&blobs[0], 8 + n - 1);
    for _ in 0..3 {
        assert_eq!(
            dec.decrypt(&bad, b"").unwrap_err().kind(),
            ErrorKind::Authentication
        );
    }
    let c = dec.counters();
    assert_eq!((c.root_calls, c.cached_keks, c.decrypt_failed), (7, 2, 3));
    dec.decrypt(&blobs[0], b"").unwrap();
    dec.decrypt(&blobs[1], b"").unwrap();
    assert_eq!(dec.counters().root_calls, 7);
}

#[test]
fn decrypt_to_checks_its_buffer_and_zeroes_it_on_error() {
    let root = AgeRoot::generate();
    let dir = tempfile::tempdir().unwrap();
    let kc = Keychain::open(dir.path().join("k.age"), &root).unwrap();
    let blob = kc.encrypt_portable(b"twelve bytes", b"a").unwrap();
    assert_eq!(PortableDecryptor::decrypted_len(&blob).unwrap(), 12);
    let dec = PortableDecryptor::new(Arc::new(root));
    let mut short = [0u8; 11];
    let e = dec.decrypt_to(&blob, b"a", &mut short).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(dec.counters().root_calls, 0, "checked before the root");
    let mut out = [9u8; 12];
    let e = dec.decrypt_to(&blob, b"b", &mut out).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    assert_eq!(out, [0u8; 12]);
    dec.decrypt_to(&blob, b"a", &mut out).unwrap();
    assert_eq!(&out, b"twelve bytes");
}

#[test]
fn hostile_lengths_are_refused_without_reading_or_allocating_them() {
    let dec = PortableDecryptor::new(Arc::new(AgeRoot::generate()));
    let mut b = b"KSP\x01".to_vec();
    b.extend_from_slice(&((MAX_WRAPPED_KEK_LEN + 1) as u32).to_be_bytes());
    b.resize(MAX_WRAPPED_KEK_LEN + 200, 0);
    assert_eq!(dec.decrypt(&b, b"").unwrap_err().kind(), ErrorKind::Format);
    let mut b = b"KSP\x01\xff\xff\xff\xff".to_vec();
    b.resize(100, 0);
    assert_eq!(dec.decrypt(&b, b"").unwrap_err().kind(), ErrorKind::Format);
    assert_eq!(dec.counters().root_calls, 0);
}

#[test]
fn random_corruption_never_panics_and_gives_a_documented_kind() {
    use proptest::prelude::*;
    let root = AgeRoot::generate();
    let dir = tempfile::tempdir().unwrap();
    let kc = Keychain::open(dir.path().join("k.age"), &root).unwrap();
    let blob = kc.encrypt_portable(b"payload", b"").unwrap();
    let dec = PortableDecryptor::with_capacity(Arc::new(root), 4);
    let allowed = [
        ErrorKind::Format,
        ErrorKind::Authentication,
        ErrorKind::Unsupported,
    ];
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 300,
        ..Default::default()
    });
    runner
        .run(
            &(0..blob.len(), any::<u8>(), 0..blob.len() + 1),
            |(at, x, cut)| {
                let mut b = blob.clone();
                b[at] ^= x | 1;
                b.truncate(cut.max(1));
                match dec.decrypt(&b, b"") {
                    Ok(pt) => prop_assert_eq!(pt, b"payload".to_vec()),
                    Err(e) => prop_assert!(allowed.contains(&e.kind()), "{:?}", e),
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn a_passphrase_root_works_too() {
    let root = PassphraseRoot::with_work_factor("correct horse", 10).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = OpenOptions::new()
        .policy(Policy::default())
        .open(dir.path().join("k.age"), &root)
        .unwrap();
    let blob = kc.encrypt_portable(b"p", b"").unwrap();
    assert_eq!(decrypt_portable(&blob, b"", &root).unwrap(), b"p");
    let wrong = PassphraseRoot::with_work_factor("wrong horse", 10).unwrap();
    assert_eq!(
        decrypt_portable(&blob, b"", &wrong).unwrap_err().kind(),
        ErrorKind::Authentication
    );
    // An age X25519 root given a passphrase-wrapped KEK: Authentication.
    assert_eq!(
        decrypt_portable(&blob, b"", &AgeRoot::generate())
            .unwrap_err()
            .kind(),
        ErrorKind::Authentication
    );
}

#[test]
fn debug_output_names_no_key() {
    let dec = PortableDecryptor::new(Arc::new(AgeRoot::generate()));
    let d = format!("{dec:?}");
    assert!(d.contains("PortableDecryptor") && d.contains("age"), "{d}");
}
