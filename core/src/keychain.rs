//! The keychain: keys with one primary per purpose, and every operation.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use zeroize::Zeroizing;

use crate::at_rest;
use crate::derive;
use crate::encrypt::ENCRYPT_OVERHEAD;
use crate::envelope::{wrap_aad, Envelope};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Counter, Counters, Event, EventKind, SubscriptionId, Telemetry};
use crate::key::{now_unix, Key, KeyInfo, KeyStatus, Purpose, Secret, Usage};
use crate::key_manager::{check_wrap_input, KeyManager};
use crate::policy::Policy;
use crate::root::Root;
use crate::seal::{self, SEAL_OVERHEAD};
use crate::secret::{KeyMaterial, SecretBytes};
use crate::store::FileStore;
use crate::tink;

mod into_buf;

/// Provider name of a keychain acting as a [`KeyManager`].
pub const KEYCHAIN_PROVIDER: &str = "keystrata";

/// An immutable snapshot of the keychain's keys. Readers load it without a
/// lock; writers build a new one and swap it in.
#[derive(Clone, Debug)]
pub(crate) struct KeySet {
    /// Keys in order of creation.
    pub(crate) keys: Vec<Key>,
    /// `(key_id, position in keys)`, sorted by key_id.
    index: Vec<(u32, usize)>,
    pub(crate) primary_encrypt: usize,
    pub(crate) primary_derive: usize,
    pub(crate) policy: Policy,
}

impl KeySet {
    pub(crate) fn new(
        keys: Vec<Key>,
        primary_encrypt: u32,
        primary_derive: u32,
        policy: Policy,
    ) -> Result<KeySet> {
        let mut set = KeySet {
            keys,
            index: Vec::new(),
            primary_encrypt: 0,
            primary_derive: 0,
            policy,
        };
        set.rebuild_index()?;
        set.primary_encrypt = set.primary_position(primary_encrypt, Purpose::Encrypt)?;
        set.primary_derive = set.primary_position(primary_derive, Purpose::Derive)?;
        Ok(set)
    }

    fn rebuild_index(&mut self) -> Result<()> {
        let mut index: Vec<(u32, usize)> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.id, i))
            .collect();
        index.sort_unstable();
        if index.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(Error::format("two keys share one key_id"));
        }
        self.index = index;
        Ok(())
    }

    fn primary_position(&self, id: u32, purpose: Purpose) -> Result<usize> {
        let pos = self.position(id).ok_or_else(|| {
            Error::format(format!("the {purpose} primary {id} is not in the keychain"))
        })?;
        let k = &self.keys[pos];
        if k.purpose != purpose || k.status != KeyStatus::Enabled {
            return Err(Error::format(format!(
                "the {purpose} primary {id} is not an enabled {purpose} key"
            )));
        }
        Ok(pos)
    }

    #[inline]
    pub(crate) fn position(&self, key_id: u32) -> Option<usize> {
        self.index
            .binary_search_by_key(&key_id, |e| e.0)
            .ok()
            .map(|i| self.index[i].1)
    }

    pub(crate) fn primary_id(&self, purpose: Purpose) -> u32 {
        match purpose {
            Purpose::Encrypt => self.keys[self.primary_encrypt].id,
            Purpose::Derive => self.keys[self.primary_derive].id,
        }
    }

    fn is_primary(&self, pos: usize) -> bool {
        pos == self.primary_encrypt || pos == self.primary_derive
    }

    /// The key `key_id`, usable for `purpose`, with its material.
    #[inline]
    fn usable(&self, key_id: u32, purpose: Purpose) -> Result<(&Key, &Secret)> {
        let key = self
            .position(key_id)
            .map(|p| &self.keys[p])
            .filter(|k| k.purpose == purpose)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UnknownKey,
                    format!("no {purpose} key with key_id {key_id} in this keychain"),
                )
            })?;
        match (key.status, &key.secret) {
            (KeyStatus::Enabled, Some(s)) => Ok((key, s)),
            (KeyStatus::Disabled, _) => Err(Error::new(
                ErrorKind::KeyDisabled,
                format!("key {key_id} (version {}) is disabled", key.version),
            )),
            _ => Err(Error::new(
                ErrorKind::KeyDestroyed,
                format!("key {key_id} (version {}) was destroyed", key.version),
            )),
        }
    }

    fn next_version(&self, purpose: Purpose) -> u32 {
        self.keys
            .iter()
            .filter(|k| k.purpose == purpose)
            .map(|k| k.version)
            .max()
            .unwrap_or(0)
            + 1
    }

    /// A fresh key ID in [1, 2^31-1] not used in this set.
    fn fresh_id(&self) -> Result<u32> {
        loop {
            let mut b = [0u8; 4];
            crate::aead::fill_random(&mut b)?;
            let id = u32::from_be_bytes(b) & 0x7fff_ffff;
            if id != 0 && self.position(id).is_none() {
                return Ok(id);
            }
        }
    }

    /// Adds a new enabled key and returns its position.
    fn push_new(&mut self, purpose: Purpose, reserved: u64) -> Result<usize> {
        let id = self.fresh_id()?;
        let version = self.next_version(purpose);
        let usage = Usage::new(0);
        usage.reserved.store(reserved, Ordering::Release);
        self.keys.push(Key {
            id,
            version,
            purpose,
            status: KeyStatus::Enabled,
            created_at: now_unix(),
            secret: Some(Arc::new(Secret::new(KeyMaterial::random()?))),
            usage: Arc::new(usage),
        });
        let pos = self.keys.len() - 1;
        let at = self.index.partition_point(|e| e.0 < id);
        self.index.insert(at, (id, pos));
        Ok(pos)
    }

    fn info(&self, pos: usize) -> KeyInfo {
        self.keys[pos].info(self.is_primary(pos))
    }

    fn empty() -> KeySet {
        KeySet {
            keys: Vec::new(),
            index: Vec::new(),
            primary_encrypt: usize::MAX,
            primary_derive: usize::MAX,
            policy: Policy::default(),
        }
    }
}

/// A set of AES-256 keys with one primary key per purpose, and every
/// operation keystrata offers on them.
///
/// `Keychain` is `Send + Sync`: share it between threads (for example in an
/// `Arc`). Seal, unseal, encrypt, decrypt, wrap and derive read an immutable
/// snapshot of the keys without taking a lock; lifecycle changes (rotate,
/// promote, …) are serialized among themselves and never disturb calls in
/// flight: a ciphertext made under the old primary still decrypts.
///
/// # Example
///
/// ```
/// use keystrata::{Keychain, AgeRoot};
///
/// let kc = Keychain::generate()?;
/// let ct = kc.seal(b"db password", b"service=billing")?;
/// assert_eq!(kc.unseal(&ct, b"service=billing")?, b"db password");
///
/// // Envelope encryption: a fresh data key per message.
/// let blob = kc.encrypt(b"a large document", b"")?;
/// assert_eq!(kc.decrypt(&blob, b"")?, b"a large document");
///
/// // Rotation keeps old ciphertexts readable.
/// kc.rotate()?;
/// assert_eq!(kc.unseal(&ct, b"service=billing")?, b"db password");
///
/// // Save under an age identity, load it back.
/// let root = AgeRoot::generate();
/// let saved = kc.save(&root)?;
/// let again = Keychain::load(&saved, &root)?;
/// assert_eq!(again.decrypt(&blob, b"")?, b"a large document");
/// # Ok::<(), keystrata::Error>(())
/// ```
pub struct Keychain {
    state: ArcSwap<KeySet>,
    writer: Mutex<()>,
    store: Option<FileStore>,
    telemetry: Telemetry,
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.state.load();
        f.debug_struct("Keychain")
            .field("keys", &set.keys.len())
            .field("bound", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

/// Outcome of taking one usage count from the encryption primary.
enum Take {
    Ok,
    NeedsReservation(u64),
    Exhausted(&'static str),
}

impl Keychain {
    // ----------------------------------------------------------------
    // Construction, loading, saving
    // ----------------------------------------------------------------

    /// A new keychain with one encryption key and one derivation key, both
    /// primary, and the default [`Policy`]. It is not bound to any store:
    /// save it with [`save`](Keychain::save) or [`save_file`](Keychain::save_file).
    pub fn generate() -> Result<Keychain> {
        Keychain::generate_with_policy(Policy::default())
    }

    /// Like [`generate`](Keychain::generate), with a rotation policy.
    pub fn generate_with_policy(policy: Policy) -> Result<Keychain> {
        policy.validate()?;
        let mut set = KeySet::empty();
        set.policy = policy;
        set.primary_encrypt = set.push_new(Purpose::Encrypt, 0)?;
        set.primary_derive = set.push_new(Purpose::Derive, 0)?;
        Ok(Keychain::from_set(set, None))
    }

    pub(crate) fn from_set(set: KeySet, store: Option<FileStore>) -> Keychain {
        Keychain {
            state: ArcSwap::from_pointee(set),
            writer: Mutex::new(()),
            store,
            telemetry: Telemetry::default(),
        }
    }

    /// Loads a keychain from bytes made by [`save`](Keychain::save), opening
    /// them with `root`. The result is unbound: it never rotates on its own.
    ///
    /// Errors: wrong identity or passphrase, tampered bytes, or a payload cut
    /// short (age cannot tell a cut from tampering): `Authentication`; not a
    /// saved keychain, or a header cut short: `Format`; a newer format
    /// version: `Unsupported`.
    pub fn load(saved: &[u8], root: &dyn Root) -> Result<Keychain> {
        let json = root.unprotect(saved)?;
        let set = at_rest::from_json(&json)?;
        Ok(Keychain::from_set(set, None))
    }

    /// Saves the keychain: its plaintext JSON (see docs/FORMAT.md)
    /// protected by `root`. Under an age root the result is an age file.
    pub fn save(&self, root: &dyn Root) -> Result<Vec<u8>> {
        let set = self.live()?;
        let json = at_rest::to_json(&set, None)?;
        self.track(root.protect(&json))
    }

    /// Saves to `path` atomically (temporary file, fsync, rename, fsync of
    /// the directory): after a crash the file holds the old keychain or the
    /// new one, never a mix. The keychain stays unbound.
    pub fn save_file(&self, path: impl AsRef<Path>, root: &dyn Root) -> Result<()> {
        let bytes = self.save(root)?;
        self.track(crate::store::write_atomic(path.as_ref(), &bytes))
    }

    /// Loads from a file written by [`save_file`](Keychain::save_file) or
    /// [`open`](Keychain::open). The result is unbound.
    pub fn load_file(path: impl AsRef<Path>, root: &dyn Root) -> Result<Keychain> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Keychain::load(&bytes, root)
    }

    /// Opens the keychain stored at `path`, creating it (with
    /// [`generate`](Keychain::generate)) if the file does not exist, and
    /// binds it to that file.
    ///
    /// A bound keychain writes every change of state (rotate, automatic
    /// rotation, a new block of usage counts) to the file, atomically,
    /// before the first ciphertext under the new state is returned; when
    /// the rotation policy's limit is reached it rotates by itself and
    /// emits a `KeyRotated` event with `automatic` set. One process at a
    /// time may hold a given file open.
    ///
    /// A file that exists but cannot be opened with `root` is an error and
    /// is left untouched.
    pub fn open<R: Root + Clone + 'static>(path: impl AsRef<Path>, root: &R) -> Result<Keychain> {
        Keychain::open_with_policy(path, root, None)
    }

    /// Like [`open`](Keychain::open); when the file is created, the new
    /// keychain gets `policy` (or the default); an existing file keeps the
    /// policy it holds unless `policy` is given, in which case it is
    /// replaced and written back.
    pub fn open_with_policy<R: Root + Clone + 'static>(
        path: impl AsRef<Path>,
        root: &R,
        policy: Option<Policy>,
    ) -> Result<Keychain> {
        if let Some(p) = &policy {
            p.validate()?;
        }
        let store = FileStore::new(path.as_ref().to_path_buf(), Arc::new(root.clone()));
        match std::fs::read(path.as_ref()) {
            Ok(bytes) => {
                let json = root.unprotect(&bytes)?;
                let mut set = at_rest::from_json(&json)?;
                let changed = policy.is_some_and(|p| p != set.policy);
                if let Some(p) = policy {
                    set.policy = p;
                }
                if changed {
                    store.persist(&set, None)?;
                }
                Ok(Keychain::from_set(set, Some(store)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut set = KeySet::empty();
                set.policy = policy.unwrap_or_default();
                let block = set
                    .policy
                    .usage_block
                    .min(set.policy.max_encryptions_per_key);
                set.primary_encrypt = set.push_new(Purpose::Encrypt, block)?;
                set.primary_derive = set.push_new(Purpose::Derive, 0)?;
                store.persist(&set, None)?;
                Ok(Keychain::from_set(set, Some(store)))
            }
            Err(e) => Err(Error::io(format!("reading {}", path.as_ref().display()), e)),
        }
    }

    /// Whether this keychain is bound to a store (made by
    /// [`open`](Keychain::open)).
    pub fn is_bound(&self) -> bool {
        self.store.is_some()
    }

    // ----------------------------------------------------------------
    // Seal / unseal
    // ----------------------------------------------------------------

    /// Encrypts a small secret directly under the encryption primary.
    ///
    /// Output: Tink's AEAD format, `0x01 ‖ BE32(key_id) ‖ nonce(12) ‖
    /// ciphertext ‖ tag(16)`, with `aad` authenticated but not included.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        // An impossible length leaves the buffer empty; seal_to reports it.
        let mut out = vec![0u8; plaintext.len().checked_add(SEAL_OVERHEAD).unwrap_or(0)];
        self.seal_to(plaintext, aad, &mut out).map(|()| out)
    }

    /// Decrypts what [`seal`](Keychain::seal) (or Tink, with an imported
    /// keyset) produced, with the same `aad`.
    ///
    /// Errors: malformed input `Format`; a key_id not in the keychain
    /// `UnknownKey`; a disabled or destroyed key `KeyDisabled` /
    /// `KeyDestroyed`; anything else (tampering, wrong aad) `Authentication`.
    pub fn unseal(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        // Malformed input leaves the buffer empty; unseal_to reports it.
        let mut out = vec![0u8; Keychain::unsealed_len(ciphertext).unwrap_or(0)];
        self.unseal_to(ciphertext, aad, &mut out).map(|()| out)
    }

    // ----------------------------------------------------------------
    // Envelope encryption
    // ----------------------------------------------------------------

    /// Envelope-encrypts `plaintext`: a fresh 32-byte data key (DEK) per
    /// message encrypts the payload, and the encryption primary wraps the
    /// DEK. Output: Tink's KmsEnvelopeAead layout (see docs/FORMAT.md).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; plaintext.len().checked_add(ENCRYPT_OVERHEAD).unwrap_or(0)];
        self.encrypt_to(plaintext, aad, &mut out).map(|()| out)
    }

    /// Decrypts what [`encrypt`](Keychain::encrypt) (or Tink's
    /// KmsEnvelopeAead with this keychain as the remote AEAD) produced.
    pub fn decrypt(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; Keychain::decrypted_len(ciphertext).unwrap_or(0)];
        self.decrypt_to(ciphertext, aad, &mut out).map(|()| out)
    }

    // ----------------------------------------------------------------
    // Derivation
    // ----------------------------------------------------------------

    /// A stable 32-byte key for `(origin, instance, epoch)`, by HKDF-SHA256
    /// under the derivation primary:
    ///
    /// `info = "keystrata/derive/v1" ‖ u32be(len) ‖ origin ‖ u32be(len) ‖
    /// instance ‖ u64be(epoch)`.
    ///
    /// The same keychain gives the same bytes in every language. Rotating
    /// the encryption primary does not change it; bump `epoch` to rotate a
    /// derived key.
    pub fn derive_origin_key(
        &self,
        origin: impl AsRef<[u8]>,
        instance: impl AsRef<[u8]>,
        epoch: u64,
    ) -> Result<SecretBytes> {
        let r = self.derive_origin_key_inner(None, origin.as_ref(), instance.as_ref(), epoch);
        self.done_derive(r)
    }

    /// [`derive_origin_key`](Keychain::derive_origin_key) under the
    /// derivation key `key_id` rather than the primary (for example an older
    /// derivation key after [`rotate_derivation`](Keychain::rotate_derivation)).
    pub fn derive_origin_key_with(
        &self,
        key_id: u32,
        origin: impl AsRef<[u8]>,
        instance: impl AsRef<[u8]>,
        epoch: u64,
    ) -> Result<SecretBytes> {
        let r =
            self.derive_origin_key_inner(Some(key_id), origin.as_ref(), instance.as_ref(), epoch);
        self.done_derive(r)
    }

    fn derive_origin_key_inner(
        &self,
        key_id: Option<u32>,
        origin: &[u8],
        instance: &[u8],
        epoch: u64,
    ) -> Result<(SecretBytes, u32, u32)> {
        self.derive_under(key_id, |prk| {
            derive::origin_key(prk, origin, instance, epoch)
        })
    }

    /// `length` bytes (1 to 8160) of HKDF-SHA256 under the derivation
    /// primary, with `info` exactly as given and no salt.
    pub fn derive(&self, info: &[u8], length: usize) -> Result<SecretBytes> {
        let r = self.derive_inner(None, info, length);
        self.done_derive(r)
    }

    /// [`derive`](Keychain::derive) under the derivation key `key_id`.
    pub fn derive_with(&self, key_id: u32, info: &[u8], length: usize) -> Result<SecretBytes> {
        let r = self.derive_inner(Some(key_id), info, length);
        self.done_derive(r)
    }

    fn derive_inner(
        &self,
        key_id: Option<u32>,
        info: &[u8],
        length: usize,
    ) -> Result<(SecretBytes, u32, u32)> {
        self.derive_under(key_id, |prk| derive::expand(prk, &[info], length))
    }

    /// Runs `f` on the HKDF PRK of derivation key `key_id` (default: the
    /// derivation primary); returns its output with the key's ID and
    /// version.
    fn derive_under(
        &self,
        key_id: Option<u32>,
        f: impl FnOnce(&[u8; 32]) -> Result<SecretBytes>,
    ) -> Result<(SecretBytes, u32, u32)> {
        let set = self.live()?;
        let id = key_id.unwrap_or_else(|| set.primary_id(Purpose::Derive));
        let (key, secret) = set.usable(id, Purpose::Derive)?;
        Ok((f(secret.prk())?, key.id, key.version))
    }

    // ----------------------------------------------------------------
    // Lifecycle
    // ----------------------------------------------------------------

    /// Adds a new encryption key and makes it the primary. The derivation
    /// primary is left alone, so derived keys do not change.
    pub fn rotate(&self) -> Result<KeyInfo> {
        let r = self.rotate_purpose(Purpose::Encrypt, None);
        self.track(r)
    }

    /// Adds a new derivation key and makes it the derivation primary. This
    /// changes every derived key: do it on compromise. Older derivation keys
    /// stay reachable through [`derive_with`](Keychain::derive_with).
    pub fn rotate_derivation(&self) -> Result<KeyInfo> {
        let r = self.rotate_purpose(Purpose::Derive, None);
        self.track(r)
    }

    fn rotate_purpose(&self, purpose: Purpose, only_if_primary: Option<u32>) -> Result<KeyInfo> {
        let automatic = only_if_primary.is_some();
        self.mutate(|set, bound| {
            if let Some(id) = only_if_primary {
                if set.primary_id(purpose) != id {
                    // Another thread rotated already.
                    return Ok((None, Vec::new()));
                }
            }
            let reserved = if bound && purpose == Purpose::Encrypt {
                set.policy
                    .usage_block
                    .min(set.policy.max_encryptions_per_key)
            } else {
                0
            };
            let pos = set.push_new(purpose, reserved)?;
            match purpose {
                Purpose::Encrypt => set.primary_encrypt = pos,
                Purpose::Derive => set.primary_derive = pos,
            }
            let k = &set.keys[pos];
            let mut rotated = Event::key(EventKind::KeyRotated, k.id, k.version, purpose);
            rotated.automatic = automatic;
            let events = vec![
                Event::key(EventKind::KeyCreated, k.id, k.version, purpose),
                rotated,
            ];
            Ok((Some(set.info(pos)), events))
        })
        .and_then(|(info, rotated)| {
            if rotated {
                self.telemetry.count(Counter::Rotations);
            }
            match info {
                Some(i) => Ok(i),
                None => self.primary_for(purpose),
            }
        })
    }

    /// Adds an enabled key that is not primary: the first phase of a
    /// two-phase rotation. Roll the keychain out to every reader, then
    /// [`promote`](Keychain::promote) the key.
    pub fn add_key(&self, purpose: Purpose) -> Result<KeyInfo> {
        let r = self
            .mutate(|set, _| {
                let pos = set.push_new(purpose, 0)?;
                let k = &set.keys[pos];
                let ev = Event::key(EventKind::KeyCreated, k.id, k.version, purpose);
                Ok((Some(set.info(pos)), vec![ev]))
            })
            .and_then(|(i, _)| i.ok_or_else(|| Error::internal("add_key produced no key")));
        self.track(r)
    }

    /// Makes the enabled key `key_id` the primary of its purpose.
    pub fn promote(&self, key_id: u32) -> Result<KeyInfo> {
        let r = self
            .mutate(|set, _| {
                let pos = find(set, key_id)?;
                let k = &set.keys[pos];
                if k.status != KeyStatus::Enabled {
                    return Err(Error::policy(format!(
                        "key {key_id} is {}; only an enabled key can be promoted",
                        k.status
                    )));
                }
                let (purpose, version) = (k.purpose, k.version);
                match purpose {
                    Purpose::Encrypt => set.primary_encrypt = pos,
                    Purpose::Derive => set.primary_derive = pos,
                }
                let ev = Event::key(EventKind::KeyPromoted, key_id, version, purpose);
                Ok((Some(set.info(pos)), vec![ev]))
            })
            .and_then(|(i, _)| i.ok_or_else(|| Error::internal("promote produced no key")));
        self.track(r)
    }

    /// Disables `key_id`: it is kept but refused for every operation. The
    /// primary cannot be disabled (promote another key first).
    pub fn disable(&self, key_id: u32) -> Result<()> {
        let r = self.set_status(key_id, KeyStatus::Disabled);
        self.track(r)
    }

    /// Enables a disabled key again. A destroyed key cannot be enabled.
    pub fn enable(&self, key_id: u32) -> Result<()> {
        let r = self.set_status(key_id, KeyStatus::Enabled);
        self.track(r)
    }

    /// Destroys `key_id`'s material. Irreversible: ciphertexts under it then
    /// fail with `KeyDestroyed`. The primary cannot be destroyed. Destroying
    /// a destroyed key does nothing.
    pub fn destroy(&self, key_id: u32) -> Result<()> {
        let r = self.set_status(key_id, KeyStatus::Destroyed);
        self.track(r)
    }

    fn set_status(&self, key_id: u32, status: KeyStatus) -> Result<()> {
        self.mutate(|set, _| {
            let pos = find(set, key_id)?;
            let primary = set.is_primary(pos);
            let k = &mut set.keys[pos];
            let (kind, same) = match status {
                KeyStatus::Disabled => (EventKind::KeyDisabled, k.status == KeyStatus::Disabled),
                KeyStatus::Enabled => (EventKind::KeyEnabled, k.status == KeyStatus::Enabled),
                KeyStatus::Destroyed => (EventKind::KeyDestroyed, k.status == KeyStatus::Destroyed),
            };
            if same {
                return Ok((None::<()>, Vec::new()));
            }
            if primary && status != KeyStatus::Enabled {
                return Err(Error::policy(format!(
                    "key {key_id} is the {} primary; promote another key before making it {status}",
                    k.purpose
                )));
            }
            if k.status == KeyStatus::Destroyed {
                return Err(Error::policy(format!(
                    "key {key_id} was destroyed; it cannot be {status}"
                )));
            }
            k.status = status;
            if status == KeyStatus::Destroyed {
                // The material is wiped when the last snapshot holding it
                // (a call in flight) lets go of it.
                k.secret = None;
            }
            let ev = Event::key(kind, key_id, k.version, k.purpose);
            Ok((None, vec![ev]))
        })
        .map(|_| ())
    }

    /// Metadata of every key, in order of creation. No material.
    pub fn keys(&self) -> Vec<KeyInfo> {
        let set = self.state.load();
        (0..set.keys.len()).map(|i| set.info(i)).collect()
    }

    /// The encryption primary's metadata.
    pub fn primary(&self) -> Result<KeyInfo> {
        self.primary_for(Purpose::Encrypt)
    }

    /// The primary key of `purpose`.
    pub fn primary_for(&self, purpose: Purpose) -> Result<KeyInfo> {
        let set = self.live()?;
        let pos = match purpose {
            Purpose::Encrypt => set.primary_encrypt,
            Purpose::Derive => set.primary_derive,
        };
        Ok(set.info(pos))
    }

    /// The rotation policy.
    pub fn policy(&self) -> Policy {
        self.state.load().policy
    }

    /// Replaces the rotation policy (written to the store if bound).
    pub fn set_policy(&self, policy: Policy) -> Result<()> {
        let r = policy.validate().and_then(|()| {
            self.mutate(|set, _| {
                set.policy = policy;
                Ok((None::<()>, Vec::new()))
            })
            .map(|_| ())
        });
        self.track(r)
    }

    // ----------------------------------------------------------------
    // Tink
    // ----------------------------------------------------------------

    /// A keychain from a Tink cleartext JSON keyset of 32-byte `AesGcmKey`
    /// keys with `TINK` output prefix. The keys keep their Tink key IDs and
    /// statuses, so Tink's ciphertexts keep decrypting; Tink's primary
    /// becomes the encryption primary; versions follow the keyset's order.
    /// A fresh derivation key is added (Tink keysets have none).
    ///
    /// Any other key type, key size or prefix gives `Unsupported`.
    pub fn import_tink_cleartext(json: &str) -> Result<Keychain> {
        let ks = tink::parse_keyset(json)?;
        let now = now_unix();
        let mut set = KeySet::empty();
        for (i, k) in ks.keys.iter().enumerate() {
            let secret = match (&k.material, k.status) {
                (Some(m), KeyStatus::Enabled | KeyStatus::Disabled) => {
                    Some(Arc::new(Secret::new(KeyMaterial(**m))))
                }
                _ => None,
            };
            set.keys.push(Key {
                id: k.key_id,
                version: u32::try_from(i + 1).map_err(|_| Error::invalid("too many keys"))?,
                purpose: Purpose::Encrypt,
                status: k.status,
                created_at: now,
                secret,
                usage: Arc::new(Usage::new(0)),
            });
        }
        set.rebuild_index()?;
        set.primary_encrypt = set.primary_position(ks.primary_key_id, Purpose::Encrypt)?;
        set.primary_derive = set.push_new(Purpose::Derive, 0)?;
        Ok(Keychain::from_set(set, None))
    }

    /// The encryption keys as a Tink cleartext JSON keyset (AES-256-GCM,
    /// TINK prefix), for Tink to decrypt keystrata's seal output and to act
    /// as the remote AEAD of its KmsEnvelopeAead. Destroyed keys are left
    /// out; derivation keys are not exported.
    ///
    /// The result holds key material in the clear: treat it as a secret.
    pub fn export_tink_cleartext(&self) -> Result<Zeroizing<String>> {
        let set = self.live()?;
        let n = set.keys.len();
        let mut out = Zeroizing::new(String::with_capacity(64 + n * 256));
        out.push_str("{\"primaryKeyId\":");
        out.push_str(&set.primary_id(Purpose::Encrypt).to_string());
        out.push_str(",\"key\":[");
        let mut first = true;
        for k in set.keys.iter().filter(|k| k.purpose == Purpose::Encrypt) {
            let Some(secret) = &k.secret else { continue };
            if !first {
                out.push(',');
            }
            first = false;
            tink::write_key_json(&mut out, k.id, k.status, &secret.material.0);
        }
        out.push_str("]}");
        Ok(out)
    }

    // ----------------------------------------------------------------
    // Events and counters
    // ----------------------------------------------------------------

    /// Registers `callback` for lifecycle events. It runs on the thread that
    /// caused the event, after the change is visible and with no keychain
    /// lock held, so it may call the keychain. A panic in the callback is
    /// contained and does not affect the keychain.
    pub fn subscribe(&self, callback: impl Fn(&Event) + Send + Sync + 'static) -> SubscriptionId {
        self.telemetry.subscribe(Arc::new(callback))
    }

    /// Removes a subscription. Returns whether it existed.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.telemetry.unsubscribe(id)
    }

    /// A snapshot of the operation counters.
    pub fn counters(&self) -> Counters {
        self.telemetry.snapshot()
    }

    // ----------------------------------------------------------------
    // Internals
    // ----------------------------------------------------------------

    /// The current snapshot, or `Unavailable` once closed (a call racing
    /// with `close` sees the empty snapshot close leaves behind).
    #[inline]
    pub(crate) fn live(&self) -> Result<arc_swap::Guard<Arc<KeySet>>> {
        let set = self.state.load();
        if set.keys.is_empty() {
            return Err(Error::unavailable("this keychain was closed"));
        }
        Ok(set)
    }

    #[inline]
    fn check_open(&self) -> Result<()> {
        self.live().map(|_| ())
    }

    #[inline]
    fn track<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.telemetry.error(e.kind());
        }
        r
    }

    #[inline]
    fn done<T>(&self, r: Result<T>, ok: Counter) -> Result<T> {
        match &r {
            Ok(_) => self.telemetry.count(ok),
            Err(e) => self.telemetry.error(e.kind()),
        }
        r
    }

    fn done_decrypt<T>(
        &self,
        r: Result<T>,
        ok: Counter,
        failed: Counter,
        key_id: Option<u32>,
    ) -> Result<T> {
        match &r {
            Ok(_) => self.telemetry.count(ok),
            Err(e) => {
                self.telemetry.count(failed);
                self.telemetry.error(e.kind());
                if self.telemetry.wants_events() {
                    let set = self.state.load();
                    let key = key_id.and_then(|id| set.position(id)).map(|p| &set.keys[p]);
                    let ev = Event {
                        kind: EventKind::DecryptFailed,
                        key_id,
                        key_version: key.map(|k| k.version),
                        purpose: key.map(|k| k.purpose),
                        automatic: false,
                        error: Some(e.kind()),
                    };
                    self.telemetry.emit(&[ev]);
                }
            }
        }
        r
    }

    fn done_derive(&self, r: Result<(SecretBytes, u32, u32)>) -> Result<SecretBytes> {
        match r {
            Ok((out, id, version)) => {
                self.telemetry.count(Counter::Derive);
                if self.telemetry.wants_events() {
                    self.telemetry.emit(&[Event::key(
                        EventKind::KeyDerived,
                        id,
                        version,
                        Purpose::Derive,
                    )]);
                }
                Ok(out)
            }
            Err(e) => {
                self.telemetry.error(e.kind());
                Err(e)
            }
        }
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        // A panic while holding the lock leaves no half-made state: the
        // snapshot is swapped only after everything succeeded.
        crate::sync::lock(&self.writer)
    }

    /// Applies a change to a copy of the current snapshot, persists it if
    /// bound, publishes it, then emits events with no lock held. Returns
    /// `f`'s value and whether anything changed.
    fn mutate<T>(
        &self,
        f: impl FnOnce(&mut KeySet, bool) -> Result<(Option<T>, Vec<Event>)>,
    ) -> Result<(Option<T>, bool)> {
        let events;
        let out;
        {
            let _w = self.lock_writer();
            let cur = self.live()?;
            let mut next = KeySet::clone(&cur);
            let (o, ev) = f(&mut next, self.store.is_some())?;
            if ev.is_empty() && o.is_none() && next.policy == cur.policy {
                return Ok((None, false));
            }
            if let Some(store) = &self.store {
                store.persist(&next, None)?;
            }
            self.state.store(Arc::new(next));
            events = ev;
            out = o;
        }
        let changed = !events.is_empty();
        self.telemetry.emit(&events);
        Ok((out, changed))
    }

    /// Runs `f` with the encryption primary after taking one usage count
    /// from it, reserving counts in the store or rotating as the policy
    /// requires.
    #[inline]
    fn with_encryption_key<T>(&self, f: impl FnOnce(&Key, &Secret) -> Result<T>) -> Result<T> {
        loop {
            let set = self.live()?;
            let key = &set.keys[set.primary_encrypt];
            let secret = key
                .secret
                .as_ref()
                .ok_or_else(|| Error::internal("the encryption primary has no material"))?;
            match self.take(&set, key) {
                Take::Ok => return f(key, secret),
                Take::NeedsReservation(n) => {
                    self.reserve(key, n)?;
                    return f(key, secret);
                }
                Take::Exhausted(why) => {
                    if self.store.is_none() {
                        return Err(Error::policy(format!(
                            "the encryption primary (key {}, version {}) {why}; \
                             rotate the keychain and save it",
                            key.id, key.version
                        )));
                    }
                    let id = key.id;
                    drop(set);
                    self.rotate_purpose(Purpose::Encrypt, Some(id))?;
                }
            }
        }
    }

    #[inline]
    fn take(&self, set: &KeySet, key: &Key) -> Take {
        let Some(n) = key.usage.take(set.policy.max_encryptions_per_key) else {
            return Take::Exhausted("reached the policy's maximum number of encryptions");
        };
        if let Some(max_age) = set.policy.max_key_age_secs {
            if now_unix().saturating_sub(key.created_at) >= max_age {
                return Take::Exhausted("is older than the policy's maximum key age");
            }
        }
        if self.store.is_some() && n >= key.usage.reserved.load(Ordering::Acquire) {
            return Take::NeedsReservation(n);
        }
        Take::Ok
    }

    /// Writes a new block of usage counts for `key` to the store, so that
    /// count `n` is covered, before it is used.
    #[cold]
    fn reserve(&self, key: &Key, n: u64) -> Result<()> {
        let _w = self.lock_writer();
        if n < key.usage.reserved.load(Ordering::Acquire) {
            return Ok(());
        }
        let set = self.live()?;
        let policy = set.policy;
        let new = n
            .saturating_add(policy.usage_block)
            .min(policy.max_encryptions_per_key)
            .max(n + 1);
        if let Some(store) = &self.store {
            store.persist(&set, Some((key.id, new)))?;
        }
        key.usage.reserved.fetch_max(new, Ordering::AcqRel);
        Ok(())
    }

    fn wrap_inner(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        check_wrap_input(plaintext_key)?;
        self.with_encryption_key(|key, secret| {
            let key_id = key.id.to_string();
            let aad = wrap_aad(KEYCHAIN_PROVIDER, &key_id, key.version, context)?;
            Ok(Envelope {
                ciphertext: seal::seal(&secret.cipher, key.id, plaintext_key, &aad)?,
                key_id,
                key_version: key.version,
                provider: KEYCHAIN_PROVIDER.to_owned(),
            })
        })
    }

    fn unwrap_inner(&self, env: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        let set = self.live()?;
        if env.provider != KEYCHAIN_PROVIDER {
            return Err(Error::invalid(format!(
                "envelope is from provider {:?}, not {KEYCHAIN_PROVIDER:?}",
                env.provider
            )));
        }
        let id = crate::envelope::parse_decimal_u32(&env.key_id)
            .ok_or_else(|| Error::format("envelope key_id is not a decimal key ID"))?;
        if seal::key_id(&env.ciphertext)? != id {
            return Err(Error::authentication());
        }
        let (_, secret) = set.usable(id, Purpose::Encrypt)?;
        let aad = wrap_aad(KEYCHAIN_PROVIDER, &env.key_id, env.key_version, context)?;
        Ok(SecretBytes::new(seal::open(
            &secret.cipher,
            &env.ciphertext,
            &aad,
        )?))
    }
}

fn find(set: &KeySet, key_id: u32) -> Result<usize> {
    set.position(key_id).ok_or_else(|| {
        Error::new(
            ErrorKind::UnknownKey,
            format!("no key with key_id {key_id}"),
        )
    })
}

impl KeyManager for Keychain {
    fn provider(&self) -> &str {
        KEYCHAIN_PROVIDER
    }

    fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
        let r = self.wrap_inner(plaintext_key, context);
        self.done(r, Counter::Wrap)
    }

    fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
        let r = self.unwrap_inner(envelope, context);
        let id = crate::envelope::parse_decimal_u32(&envelope.key_id);
        self.done_decrypt(r, Counter::UnwrapOk, Counter::UnwrapFailed, id)
    }

    fn active_key_version(&self) -> Result<u32> {
        Ok(self.primary()?.version)
    }

    fn health_check(&self) -> Result<()> {
        self.check_open()
    }

    /// Closes the keychain: every later call fails with `Unavailable`, and
    /// the key material is wiped once calls in flight finish.
    fn close(&self) -> Result<()> {
        let _w = self.lock_writer();
        // An empty snapshot is what "closed" means: no keychain is ever
        // empty otherwise, and every call loads through `live()`.
        self.state.store(Arc::new(KeySet::empty()));
        Ok(())
    }
}

/// Keeps `Keychain: Send + Sync` checked at compile time.
#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Keychain>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keychain_shape() {
        let kc = Keychain::generate().expect("generate");
        let keys = kc.keys();
        assert_eq!(keys.len(), 2);
        assert!(keys
            .iter()
            .all(|k| k.primary && k.version == 1 && k.key_id >= 1 && k.key_id < (1 << 31)));
        assert_eq!(keys[0].purpose, Purpose::Encrypt);
        assert_eq!(keys[1].purpose, Purpose::Derive);
    }
}
