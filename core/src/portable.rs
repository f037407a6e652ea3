//! Portable ciphertexts: the key-encryption key travels with the data,
//! wrapped by the keychain's root, so decrypting needs only the root.
//!
//! ```text
//! portable    = "KSP" ‖ 0x01 ‖ BE32(len(wrapped_kek)) ‖ wrapped_kek ‖ envelope
//! wrapped_kek = root.protect(record)                     1 ≤ len ≤ 65536
//! record      = "keystrata/portable-kek/v1" ‖ BE32(key_id) ‖ kek(32)
//! envelope    = encrypt(plaintext, aad) under kek / key_id   (Tink KmsEnvelopeAead)
//! ```
//!
//! [`Keychain::encrypt_portable`] writes them (a keychain bound to a store,
//! whose root is known); [`PortableDecryptor`] reads them with a root and a
//! bounded cache of unwrapped KEKs, so the root is called once per wrapped
//! KEK, not once per message; [`decrypt_portable`] is the one-shot form.
//!
//! What it means for security (spelled out in `docs/FORMAT.md` §10): whoever
//! holds the root can unwrap the KEK, and with it decrypt every ciphertext
//! under that key, portable or not, exactly as they could by opening the
//! keychain; destroying a key in the keychain does not revoke portable
//! ciphertexts; and under a root that anyone can encrypt to (an age X25519
//! recipient), a portable ciphertext proves nothing about who made it.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::aead::KEY_LEN;
use crate::envelope_encryption::{self, Parsed, ENCRYPT_OVERHEAD};
use crate::error::{Error, Result};
use crate::events::Counter;
use crate::key::Secret;
use crate::keychain::Keychain;
use crate::metrics::Op;
use crate::root::Root;
use crate::seal;
use crate::secret::KeyMaterial;
use crate::sync::lock;

/// The first three bytes of every portable ciphertext.
pub const MAGIC: &[u8; 3] = b"KSP";
/// The format version byte after [`MAGIC`].
pub const VERSION: u8 = 1;
/// Magic, version and the BE32 length of the wrapped KEK.
pub const HEADER_LEN: usize = 8;
/// The largest wrapped KEK a portable ciphertext may carry (64 KiB: an age
/// file to a few hundred recipients). Longer is `Format` on decrypt, and
/// refused (`Unsupported`) on encrypt.
pub const MAX_WRAPPED_KEK_LEN: usize = 64 * 1024;
/// The label that starts the record a root protects, and its version.
pub const KEK_RECORD_LABEL: &[u8] = b"keystrata/portable-kek/v1";
/// Length of the record: label, BE32(key_id), 32 bytes of key.
pub const KEK_RECORD_LEN: usize = KEK_RECORD_LABEL.len() + 4 + KEY_LEN;
/// Unwrapped KEKs a [`PortableDecryptor`] keeps by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;
/// Bytes a portable ciphertext adds besides the wrapped KEK: 8 + 99.
pub const PORTABLE_OVERHEAD: usize = HEADER_LEN + ENCRYPT_OVERHEAD;

/// Wrapped forms an encrypting keychain keeps (the primary and a few before
/// it; a primary changes rarely).
const WRAPPED_CACHE_LEN: usize = 8;
/// Times `encrypt_portable` looks for a primary that stays put between
/// wrapping it and taking a usage count from it.
const MAX_PRIMARY_ATTEMPTS: u32 = 16;

// ---------------------------------------------------------------------
// The record a root protects
// ---------------------------------------------------------------------

fn kek_record(key_id: u32, material: &KeyMaterial) -> Zeroizing<Vec<u8>> {
    let mut r = Zeroizing::new(Vec::with_capacity(KEK_RECORD_LEN));
    r.extend_from_slice(KEK_RECORD_LABEL);
    r.extend_from_slice(&key_id.to_be_bytes());
    r.extend_from_slice(&material.0);
    r
}

/// The key_id and key of a record; `Format` for anything else (another
/// label or version, another length, key_id 0).
fn parse_kek_record(record: &[u8]) -> Result<(u32, KeyMaterial)> {
    let l = KEK_RECORD_LABEL.len();
    if record.len() != KEK_RECORD_LEN || &record[..l] != KEK_RECORD_LABEL {
        return Err(Error::format(
            "the wrapped KEK does not hold a keystrata portable KEK record",
        ));
    }
    let key_id = u32::from_be_bytes([record[l], record[l + 1], record[l + 2], record[l + 3]]);
    if key_id == 0 {
        return Err(Error::format("the portable KEK record names key_id 0"));
    }
    let mut material = KeyMaterial([0u8; KEY_LEN]);
    material.0.copy_from_slice(&record[l + 4..]);
    Ok((key_id, material))
}

// ---------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------

/// The parts of a portable ciphertext, framing checked.
struct Parts<'a> {
    wrapped: &'a [u8],
    envelope: Parsed<'a>,
    /// The key_id the envelope's encrypted DEK names.
    key_id: u32,
}

fn parse(blob: &[u8]) -> Result<Parts<'_>> {
    if blob.len() < HEADER_LEN {
        return Err(Error::format(format!(
            "portable ciphertext is {} bytes, shorter than its {HEADER_LEN}-byte header",
            blob.len()
        )));
    }
    if &blob[..3] != MAGIC {
        return Err(Error::format(
            "not a portable ciphertext (it does not start with \"KSP\")",
        ));
    }
    if blob[3] != VERSION {
        return Err(Error::unsupported(format!(
            "portable ciphertext version {}; this keystrata reads version {VERSION}",
            blob[3]
        )));
    }
    let n = u32::from_be_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    let rest = &blob[HEADER_LEN..];
    if n == 0 || n > MAX_WRAPPED_KEK_LEN || n > rest.len() {
        return Err(Error::format(format!(
            "portable ciphertext names a wrapped KEK of {n} bytes (1 to {MAX_WRAPPED_KEK_LEN}); {} bytes follow",
            rest.len()
        )));
    }
    let (wrapped, envelope) = rest.split_at(n);
    let envelope = envelope_encryption::parse(envelope)?;
    let key_id = seal::key_id(envelope.enc_dek)?;
    Ok(Parts {
        wrapped,
        envelope,
        key_id,
    })
}

/// Writes a portable ciphertext of `plaintext` under `cipher` / `key_id`,
/// whose wrapped form is `wrapped`.
fn write(
    cipher: &crate::aead::Aes256Gcm,
    key_id: u32,
    wrapped: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    let n = u32::try_from(wrapped.len())
        .ok()
        .filter(|&n| n as usize <= MAX_WRAPPED_KEK_LEN && n > 0)
        .ok_or_else(|| Error::internal("a wrapped KEK of an impossible length"))?;
    let total = plaintext
        .len()
        .checked_add(PORTABLE_OVERHEAD + wrapped.len())
        .ok_or_else(|| Error::invalid("plaintext too long"))?;
    let mut out = vec![0u8; total];
    out[..3].copy_from_slice(MAGIC);
    out[3] = VERSION;
    out[4..HEADER_LEN].copy_from_slice(&n.to_be_bytes());
    let (head, envelope) = out.split_at_mut(HEADER_LEN + wrapped.len());
    head[HEADER_LEN..].copy_from_slice(wrapped);
    envelope_encryption::encrypt_to_slice(cipher, key_id, plaintext, aad, envelope)?;
    Ok(out)
}

// ---------------------------------------------------------------------
// Encrypting
// ---------------------------------------------------------------------

/// The root's wrapping of a bound keychain's recent primaries, so the root
/// is called once per KEK, not once per message. Entries are found by the
/// key's shared material (`Arc<Secret>`, which survives reloads from the
/// store); a `Weak` neither keeps the material alive nor lets its address
/// be reused while the entry exists. The wrapped bytes are not secret.
#[derive(Default)]
pub(crate) struct WrappedKeks {
    entries: Mutex<Vec<WrappedKek>>,
    /// Held while the root wraps, so threads that all meet a new primary at
    /// once make one root call between them.
    wrapping: Mutex<()>,
}

/// A key's material (weakly) and its wrapped form.
type WrappedKek = (Weak<Secret>, Arc<[u8]>);

impl WrappedKeks {
    fn find(&self, secret: &Arc<Secret>) -> Option<Arc<[u8]>> {
        lock(&self.entries)
            .iter()
            .find(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(secret)))
            .map(|(_, wrapped)| Arc::clone(wrapped))
    }

    fn get_or_wrap(
        &self,
        secret: &Arc<Secret>,
        wrap: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Arc<[u8]>> {
        if let Some(w) = self.find(secret) {
            return Ok(w);
        }
        let _one_at_a_time = lock(&self.wrapping);
        if let Some(w) = self.find(secret) {
            return Ok(w);
        }
        let wrapped: Arc<[u8]> = wrap()?.into();
        let mut entries = lock(&self.entries);
        entries.retain(|(w, _)| w.strong_count() > 0);
        if entries.len() >= WRAPPED_CACHE_LEN {
            entries.remove(0);
        }
        entries.push((Arc::downgrade(secret), Arc::clone(&wrapped)));
        Ok(wrapped)
    }
}

impl Keychain {
    /// Envelope-encrypts `plaintext` into a **portable ciphertext**: the
    /// encryption primary, wrapped by the keychain's root, travels in front
    /// of the usual envelope ([`encrypt`](Keychain::encrypt)'s bytes), so
    /// [`decrypt_portable`] or a [`PortableDecryptor`] needs only the root
    /// to decrypt it: no keychain, no store. Layout in `docs/FORMAT.md` §10.
    ///
    /// The root wraps each primary once; the wrapped form is kept and put in
    /// front of every later message under that key (the output is about
    /// `PORTABLE_OVERHEAD` plus a few hundred bytes longer than the
    /// plaintext under an age root). Takes one usage count, and counts as an
    /// `encrypt`, like [`encrypt`](Keychain::encrypt).
    ///
    /// Only a keychain bound to a store ([`Keychain::open`]) has a root: an
    /// unbound keychain refuses with `Policy` (wrapping its keys under some
    /// other root would hand them to whoever holds that root).
    ///
    /// Anyone holding the root can unwrap the KEK from a portable
    /// ciphertext and then decrypt everything made under that key, as they
    /// could by opening the keychain; destroying the key in the keychain
    /// does not make portable ciphertexts unreadable. See `docs/FORMAT.md`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keystrata::{AgeRoot, Keychain, PortableDecryptor};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = AgeRoot::generate();
    /// let kc = Keychain::open(dir.path().join("keychain.age"), &root)?;
    /// let blob = kc.encrypt_portable(b"the document", b"doc-17")?;
    ///
    /// // Elsewhere, with the root only:
    /// let dec = PortableDecryptor::new(Arc::new(root));
    /// assert_eq!(dec.decrypt(&blob, b"doc-17")?, b"the document");
    /// # Ok::<(), keystrata::Error>(())
    /// ```
    pub fn encrypt_portable(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let started = self.start(Op::Encrypt);
        let r = self.encrypt_portable_inner(plaintext, aad);
        self.done(r, Counter::Encrypt, started)
    }

    fn encrypt_portable_inner(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        self.live()?;
        let Some(bound) = &self.bound else {
            return Err(Error::policy(
                "encrypt_portable needs the keychain's root, and an unbound keychain \
                 (generated or loaded from bytes) has none: open the keychain from a \
                 store with open(location, root)",
            ));
        };
        for _ in 0..MAX_PRIMARY_ATTEMPTS {
            // Wrap (or find the wrapping of) the primary first, with no
            // snapshot held and no usage count taken: a root call may take
            // a while, and may fail.
            let (key_id, secret) = {
                let set = self.live()?;
                let key = &set.keys[set.primary_encrypt];
                let secret = key
                    .secret
                    .clone()
                    .ok_or_else(|| Error::internal("the encryption primary has no material"))?;
                (key.id, secret)
            };
            let wrapped = bound.portable.get_or_wrap(&secret, || {
                let wrapped = bound.root.protect(&kek_record(key_id, &secret.material))?;
                if wrapped.is_empty() || wrapped.len() > MAX_WRAPPED_KEK_LEN {
                    return Err(Error::unsupported(format!(
                        "the root wraps a KEK into {} bytes; a portable ciphertext carries 1 to \
                         {MAX_WRAPPED_KEK_LEN} (an age root with fewer recipients fits)",
                        wrapped.len()
                    )));
                }
                Ok(wrapped)
            })?;
            let out = self.with_encryption_key(|key, s| {
                let same = key.id == key_id
                    && (std::ptr::eq(s, Arc::as_ptr(&secret)) || s.material.0 == secret.material.0);
                if !same {
                    // The primary changed (a rotation, here or by another
                    // writer) since it was wrapped: wrap the new one.
                    return Ok(None);
                }
                write(&s.cipher, key.id, &wrapped, plaintext, aad).map(Some)
            })?;
            if let Some(out) = out {
                return Ok(out);
            }
        }
        Err(Error::unavailable(
            "the encryption primary kept changing while a portable ciphertext was made",
        ))
    }
}

// ---------------------------------------------------------------------
// Decrypting
// ---------------------------------------------------------------------

/// One unwrapped KEK: the key is wiped when the last user lets go.
struct Kek {
    key_id: u32,
    secret: Secret,
}

/// A cached KEK, or the place one is being unwrapped (its lock is held
/// during the root call, so concurrent first uses make one call).
type Cell = Arc<Mutex<Option<Arc<Kek>>>>;

struct Entry {
    cell: Cell,
    last_used: u64,
    /// Whether the cell holds a KEK (counted against the capacity);
    /// entries still being unwrapped never push others out.
    filled: bool,
}

/// A snapshot of a [`PortableDecryptor`]'s counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortableCounters {
    /// Successful decryptions.
    pub decrypt_ok: u64,
    /// Failed decryptions (any error).
    pub decrypt_failed: u64,
    /// Calls to the root's `unprotect` (one per wrapped KEK not in the
    /// cache).
    pub root_calls: u64,
    /// Unwrapped KEKs in the cache now.
    pub cached_keks: u64,
}

/// Decrypts portable ciphertexts ([`Keychain::encrypt_portable`]) with a
/// root alone, keeping the KEKs it unwrapped.
///
/// The cache is keyed by the SHA-256 of the wrapped KEK's bytes (never by
/// the key_id a ciphertext claims, so a forged wrapped KEK cannot stand in
/// for a real one), holds at most `capacity` KEKs (least recently used
/// leave first), and wipes each KEK when it leaves, on
/// [`clear`](PortableDecryptor::clear) and on drop. A wrapped KEK whose
/// unwrapping failed is not kept, so a bad one costs a root call each time.
/// Concurrent first uses of one wrapped KEK make one root call.
///
/// Each keychain handle that encrypts wraps each KEK once (age encryption
/// is randomized), so the root is called once per KEK per encrypting
/// handle. A cached KEK stays usable after the root is closed elsewhere:
/// call `clear` then.
///
/// `PortableDecryptor` is `Send + Sync`: share one between threads.
pub struct PortableDecryptor {
    root: Arc<dyn Root>,
    capacity: usize,
    cache: Mutex<HashMap<[u8; 32], Entry>>,
    clock: AtomicU64,
    decrypt_ok: AtomicU64,
    decrypt_failed: AtomicU64,
    root_calls: AtomicU64,
}

impl fmt::Debug for PortableDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortableDecryptor")
            .field("provider", &self.root.provider())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl PortableDecryptor {
    /// A decryptor over `root` keeping up to [`DEFAULT_CACHE_CAPACITY`]
    /// KEKs.
    pub fn new(root: Arc<dyn Root>) -> PortableDecryptor {
        PortableDecryptor::with_capacity(root, DEFAULT_CACHE_CAPACITY)
    }

    /// A decryptor keeping up to `capacity` KEKs (at least 1).
    pub fn with_capacity(root: Arc<dyn Root>, capacity: usize) -> PortableDecryptor {
        PortableDecryptor {
            root,
            capacity: capacity.max(1),
            cache: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(0),
            decrypt_ok: AtomicU64::new(0),
            decrypt_failed: AtomicU64::new(0),
            root_calls: AtomicU64::new(0),
        }
    }

    /// The root this decryptor unwraps with.
    pub fn root(&self) -> &Arc<dyn Root> {
        &self.root
    }

    /// The plaintext length of the portable ciphertext `blob`; `Format`
    /// (or `Unsupported` for another version) if its framing is wrong.
    pub fn decrypted_len(blob: &[u8]) -> Result<usize> {
        Ok(parse(blob)?.envelope.plaintext_len())
    }

    /// Decrypts a portable ciphertext made with the same `aad`.
    ///
    /// Errors, in the order checked: framing `Format` (version byte other
    /// than 1: `Unsupported`); then unwrapping, as the root reports it
    /// (age: a wrong identity or tampering `Authentication`, not an age
    /// file `Format`; a device root: `Unavailable`, `Backend`, its own
    /// `UnknownKey` for a KEK wrapped under another device key, …); a
    /// record that is not a portable KEK record `Format`; a record whose
    /// key_id differs from the envelope's, or any tag mismatch (tampering,
    /// wrong aad) `Authentication`. No keychain is consulted, so the
    /// envelope's key is never `UnknownKey`, `KeyDisabled` or
    /// `KeyDestroyed`: the KEK travels with the data.
    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        // Malformed framing leaves the buffer empty; decrypt_to reports it.
        let mut out = vec![0u8; PortableDecryptor::decrypted_len(blob).unwrap_or(0)];
        self.decrypt_to(blob, aad, &mut out).map(|()| out)
    }

    /// [`decrypt`](PortableDecryptor::decrypt) into `out`, which must be
    /// exactly [`decrypted_len`](PortableDecryptor::decrypted_len) bytes
    /// (else `InvalidInput`, before the root is called). On any error `out`
    /// is left zeroed.
    pub fn decrypt_to(&self, blob: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
        let r = self.decrypt_inner(blob, aad, out);
        match &r {
            Ok(()) => self.decrypt_ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => {
                out.zeroize();
                self.decrypt_failed.fetch_add(1, Ordering::Relaxed)
            }
        };
        r
    }

    fn decrypt_inner(&self, blob: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
        let parts = parse(blob)?;
        check_out_len(out.len(), &parts)?;
        let kek = self.kek(parts.wrapped)?;
        open(kek.key_id, &kek.secret, &parts, aad, out)
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> PortableCounters {
        let cached = lock(&self.cache).values().filter(|e| e.filled).count();
        PortableCounters {
            decrypt_ok: self.decrypt_ok.load(Ordering::Relaxed),
            decrypt_failed: self.decrypt_failed.load(Ordering::Relaxed),
            root_calls: self.root_calls.load(Ordering::Relaxed),
            cached_keks: cached as u64,
        }
    }

    /// Forgets (and wipes) every cached KEK: the next ciphertext under each
    /// calls the root again. Calls in flight finish with the KEK they hold.
    pub fn clear(&self) {
        lock(&self.cache).clear();
    }

    /// The KEK `wrapped` holds: from the cache, or unwrapped by the root.
    fn kek(&self, wrapped: &[u8]) -> Result<Arc<Kek>> {
        let id: [u8; 32] = Sha256::digest(wrapped).into();
        let cell = {
            let mut cache = lock(&self.cache);
            let now = self.clock.fetch_add(1, Ordering::Relaxed);
            let e = cache.entry(id).or_insert_with(|| Entry {
                cell: Arc::new(Mutex::new(None)),
                last_used: now,
                filled: false,
            });
            e.last_used = now;
            Arc::clone(&e.cell)
        };
        let mut slot = lock(&cell);
        if let Some(kek) = slot.as_ref() {
            return Ok(Arc::clone(kek));
        }
        self.root_calls.fetch_add(1, Ordering::Relaxed);
        match unwrap(&*self.root, wrapped) {
            Ok(kek) => {
                let kek = Arc::new(kek);
                *slot = Some(Arc::clone(&kek));
                drop(slot);
                self.admit(&id, &cell);
                Ok(kek)
            }
            Err(e) => {
                drop(slot);
                let mut cache = lock(&self.cache);
                if cache
                    .get(&id)
                    .is_some_and(|e| Arc::ptr_eq(&e.cell, &cell) && !e.filled)
                {
                    cache.remove(&id);
                }
                Err(e)
            }
        }
    }

    /// Counts a freshly filled cell against the capacity, sending the least
    /// recently used KEKs away when it is exceeded.
    fn admit(&self, id: &[u8; 32], cell: &Cell) {
        let mut cache = lock(&self.cache);
        match cache.get_mut(id) {
            Some(e) if Arc::ptr_eq(&e.cell, cell) => e.filled = true,
            // Cleared meanwhile: the KEK serves this call only.
            _ => return,
        }
        let mut filled = cache.values().filter(|e| e.filled).count();
        while filled > self.capacity {
            let victim = cache
                .iter()
                .filter(|(_, e)| e.filled)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k);
            let Some(k) = victim else { break };
            cache.remove(&k);
            filled -= 1;
        }
    }
}

/// Keeps `PortableDecryptor: Send + Sync` checked at compile time.
#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<PortableDecryptor>();
}

fn check_out_len(got: usize, parts: &Parts<'_>) -> Result<()> {
    let want = parts.envelope.plaintext_len();
    if got != want {
        return Err(Error::invalid(format!(
            "decrypt_portable output buffer is {got} bytes; it must be exactly {want}"
        )));
    }
    Ok(())
}

/// Unwraps a KEK with the root and checks its record. The root's own
/// authentication failures (a wrong identity, tampering) become the one
/// opaque `Authentication` error, like every other tag failure here.
fn unwrap(root: &dyn Root, wrapped: &[u8]) -> Result<Kek> {
    let record = root.unprotect(wrapped).map_err(|e| {
        if e.kind() == crate::ErrorKind::Authentication {
            Error::authentication()
        } else {
            e
        }
    })?;
    let (key_id, material) = parse_kek_record(&record)?;
    Ok(Kek {
        key_id,
        secret: Secret::new(material),
    })
}

/// Opens the envelope with the KEK the wrapped part held.
fn open(kek_id: u32, kek: &Secret, parts: &Parts<'_>, aad: &[u8], out: &mut [u8]) -> Result<()> {
    if kek_id != parts.key_id {
        // A wrapped KEK taken from a ciphertext under another key.
        return Err(Error::authentication());
    }
    envelope_encryption::open_to_slice(&kek.cipher, &parts.envelope, aad, out)
}

/// Decrypts one portable ciphertext with `root`, with no cache: one root
/// call per ciphertext. For more than a few, keep a [`PortableDecryptor`].
/// Errors as for [`PortableDecryptor::decrypt`].
///
/// ```
/// use keystrata::{AgeRoot, Keychain};
///
/// let dir = tempfile::tempdir().unwrap();
/// let root = AgeRoot::generate();
/// let kc = Keychain::open(dir.path().join("keychain.age"), &root)?;
/// let blob = kc.encrypt_portable(b"payload", b"")?;
/// assert_eq!(keystrata::decrypt_portable(&blob, b"", &root)?, b"payload");
/// # Ok::<(), keystrata::Error>(())
/// ```
pub fn decrypt_portable(blob: &[u8], aad: &[u8], root: &dyn Root) -> Result<Vec<u8>> {
    let parts = parse(blob)?;
    let mut out = vec![0u8; parts.envelope.plaintext_len()];
    let kek = unwrap(root, parts.wrapped)?;
    let r = open(kek.key_id, &kek.secret, &parts, aad, &mut out);
    r.map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgeRoot, ErrorKind};

    #[test]
    fn records_round_trip_and_refuse_anything_else() {
        let m = KeyMaterial([7u8; KEY_LEN]);
        let r = kek_record(0x7d4a_c405, &m);
        assert_eq!(r.len(), KEK_RECORD_LEN);
        let (id, back) = parse_kek_record(&r).unwrap();
        assert_eq!((id, back.0), (0x7d4a_c405, m.0));
        let mut other = r.to_vec();
        other[KEK_RECORD_LABEL.len() - 1] = b'2';
        assert_eq!(
            parse_kek_record(&other).unwrap_err().kind(),
            ErrorKind::Format
        );
        assert_eq!(
            parse_kek_record(&r[1..]).unwrap_err().kind(),
            ErrorKind::Format
        );
        let zero = kek_record(0, &m);
        assert_eq!(
            parse_kek_record(&zero).unwrap_err().kind(),
            ErrorKind::Format
        );
        // A keychain's JSON (what the root protects otherwise) is not one.
        let json = br#"{"format": "keystrata.keychain", "version": 1}"#;
        assert_eq!(
            parse_kek_record(json).unwrap_err().kind(),
            ErrorKind::Format
        );
    }

    #[test]
    fn framing_is_checked_before_the_root_is_called() {
        let dec = PortableDecryptor::new(Arc::new(AgeRoot::generate()));
        let cases: Vec<(Vec<u8>, ErrorKind)> = vec![
            (b"KSP".to_vec(), ErrorKind::Format),
            (b"KSQ\x01\x00\x00\x00\x01x".to_vec(), ErrorKind::Format),
            (b"KSP\x02\x00\x00\x00\x01x".to_vec(), ErrorKind::Unsupported),
            (b"KSP\x01\x00\x00\x00\x00".to_vec(), ErrorKind::Format),
            (b"KSP\x01\xff\xff\xff\xffxx".to_vec(), ErrorKind::Format),
            (b"KSP\x01\x00\x01\x00\x01xx".to_vec(), ErrorKind::Format),
            (
                b"KSP\x01\x00\x00\x00\x01x\x00\x00\x00\x43".to_vec(),
                ErrorKind::Format,
            ),
        ];
        for (blob, kind) in cases {
            assert_eq!(
                dec.decrypt(&blob, b"").unwrap_err().kind(),
                kind,
                "{blob:?}"
            );
        }
        let c = dec.counters();
        assert_eq!((c.root_calls, c.decrypt_failed, c.cached_keks), (0, 7, 0));
    }
}
