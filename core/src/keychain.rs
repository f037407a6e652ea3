//! The keychain: keys with one primary per purpose, and every operation.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use zeroize::Zeroizing;

use crate::at_rest;
use crate::derive;
use crate::encrypt::ENCRYPT_OVERHEAD;
use crate::envelope::{wrap_aad, Envelope};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Counter, Counters, Event, EventKind, SubscriptionId, Telemetry};
use crate::key::{now_unix, Key, KeyInfo, KeyStatus, Purpose, Secret, Taken, Usage};
use crate::key_manager::{check_wrap_input, KeyManager};
use crate::keyset::KeySet;
use crate::policy::Policy;
use crate::root::Root;
use crate::seal::{self, SEAL_OVERHEAD};
use crate::secret::{KeyMaterial, SecretBytes};
use crate::tink;

mod bound;
mod into_buf;

use self::bound::Bound;
pub use self::bound::{OpenOptions, DEFAULT_REFRESH};

/// Provider name of a keychain acting as a [`KeyManager`].
pub const KEYCHAIN_PROVIDER: &str = "keystrata";

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
    pub(crate) bound: Option<Bound>,
    telemetry: Telemetry,
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.state.load();
        f.debug_struct("Keychain")
            .field("keys", &set.keys.len())
            .field("bound", &self.bound.as_ref().map(|b| b.store.location()))
            .finish_non_exhaustive()
    }
}

/// Outcome of taking one usage count from the encryption primary.
enum Take {
    Ok,
    NeedsReservation,
    Exhausted(&'static str),
}

/// Attempts at finding a usable encryption primary (each after a
/// reservation, a rotation or adopting another writer's primary).
const MAX_KEY_ATTEMPTS: u32 = 16;

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
        set.primary_encrypt = set.push_new(Purpose::Encrypt, Usage::unbound(0), 0)?;
        set.primary_derive = set.push_new(Purpose::Derive, Usage::unbound(0), 0)?;
        Ok(Keychain::from_set(set, None))
    }

    pub(crate) fn from_set(set: KeySet, bound: Option<Bound>) -> Keychain {
        Keychain {
            state: ArcSwap::from_pointee(set),
            writer: Mutex::new(()),
            bound,
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
        let json = at_rest::to_json(&set)?;
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

    /// Opens the keychain stored at `location`, creating it (as
    /// [`generate`](Keychain::generate) would) if the store is empty, and
    /// binds it to that store. `location` is a file path (or `file://`
    /// URL), or `etcd://[user@]host:port[,host:port…]/key/path` (`etcds://`
    /// for TLS) with the `etcd` feature; see `docs/STORES.md`.
    ///
    /// A bound keychain is safe to share: any number of handles, processes
    /// (and, with etcd, machines) may open one location at once, and none
    /// ever loses what another wrote. Every change of state (rotate, an
    /// automatic rotation, a block of usage counts) is applied to the
    /// latest stored state and written by compare-and-swap before the first
    /// ciphertext under it is returned. Usage counts are reserved in the
    /// store in blocks, so the policy's limit holds for all writers
    /// together; when it is reached, exactly one writer rotates (emitting
    /// `KeyRotated` with `automatic` set) and the others adopt its key. A
    /// ciphertext under a key another writer made decrypts at once; a new
    /// primary is adopted within [`DEFAULT_REFRESH`]
    /// ([`OpenOptions::refresh`] to change it).
    ///
    /// After `fork()` the child may keep using the handle: it never uses
    /// the parent's reserved counts (it reserves its own block first). Fork
    /// only while no other thread is inside a keystrata call.
    ///
    /// A store whose contents do not open with `root` is an error and is
    /// left untouched.
    pub fn open<R: Root + Clone + 'static>(
        location: impl AsRef<Path>,
        root: &R,
    ) -> Result<Keychain> {
        OpenOptions::new().open(location, root)
    }

    /// Like [`open`](Keychain::open); when the store is empty, the new
    /// keychain gets `policy` (or the default); an existing keychain keeps
    /// the policy it holds unless `policy` is given, in which case it is
    /// replaced and written back.
    pub fn open_with_policy<R: Root + Clone + 'static>(
        location: impl AsRef<Path>,
        root: &R,
        policy: Option<Policy>,
    ) -> Result<Keychain> {
        OpenOptions::new().policy_opt(policy).open(location, root)
    }

    /// Whether this keychain is bound to a store (made by
    /// [`open`](Keychain::open)).
    pub fn is_bound(&self) -> bool {
        self.bound.is_some()
    }

    /// The location of the store this keychain is bound to (never with a
    /// password), or `None` if unbound.
    pub fn location(&self) -> Option<&str> {
        self.bound.as_ref().map(|b| b.store.location())
    }

    /// Adopts the latest stored state now, rather than within the refresh
    /// interval. Does nothing for an unbound keychain. Errors: the store is
    /// unreachable (`Unavailable`, `Io`) or its contents do not open.
    pub fn refresh(&self) -> Result<()> {
        let r = match &self.bound {
            None => Ok(()),
            Some(b) => {
                let _w = self.lock_writer();
                self.reload_latest(b)
            }
        };
        self.track(r)
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
        let set = match key_id {
            Some(id) => self.set_with_key(id)?,
            None => self.live()?,
        };
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
        let r = self.rotate_purpose(Purpose::Encrypt);
        self.track(r)
    }

    /// Adds a new derivation key and makes it the derivation primary. This
    /// changes every derived key: do it on compromise. Older derivation keys
    /// stay reachable through [`derive_with`](Keychain::derive_with).
    pub fn rotate_derivation(&self) -> Result<KeyInfo> {
        let r = self.rotate_purpose(Purpose::Derive);
        self.track(r)
    }

    fn rotate_purpose(&self, purpose: Purpose) -> Result<KeyInfo> {
        let (info, rotated) = self.mutate(|set, bound| {
            let pos = match (bound, purpose) {
                // A bound keychain's new encryption primary comes with the
                // first block of its usage counts reserved for this process.
                (true, Purpose::Encrypt) => {
                    set.push_bound_encrypt_primary(set.policy.usage_block)?
                }
                (true, _) => set.push_new(purpose, Usage::bound(), 0)?,
                (false, _) => set.push_new(purpose, Usage::unbound(0), 0)?,
            };
            match purpose {
                Purpose::Encrypt => set.primary_encrypt = pos,
                Purpose::Derive => set.primary_derive = pos,
            }
            let k = &set.keys[pos];
            let events = vec![
                Event::key(EventKind::KeyCreated, k.id, k.version, purpose),
                Event::key(EventKind::KeyRotated, k.id, k.version, purpose),
            ];
            Ok((Some(set.info(pos)), events))
        })?;
        if rotated {
            self.telemetry.count(Counter::Rotations);
        }
        info.ok_or_else(|| Error::internal("rotate produced no key"))
    }

    /// Adds an enabled key that is not primary: the first phase of a
    /// two-phase rotation. Roll the keychain out to every reader, then
    /// [`promote`](Keychain::promote) the key.
    pub fn add_key(&self, purpose: Purpose) -> Result<KeyInfo> {
        let r = self
            .mutate(|set, bound| {
                let usage = if bound {
                    Usage::bound()
                } else {
                    Usage::unbound(0)
                };
                let pos = set.push_new(purpose, usage, 0)?;
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
                usage: Arc::new(Usage::unbound(0)),
                stored_usage: 0,
            });
        }
        set.rebuild_index()?;
        set.primary_encrypt = set.primary_position(ks.primary_key_id, Purpose::Encrypt)?;
        set.primary_derive = set.push_new(Purpose::Derive, Usage::unbound(0), 0)?;
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

    /// The current snapshot, reloaded once from the store first if it does
    /// not have `key_id` (a key another writer just made).
    #[inline]
    pub(crate) fn set_with_key(&self, key_id: u32) -> Result<arc_swap::Guard<Arc<KeySet>>> {
        let set = self.live()?;
        if self.bound.is_none() || set.position(key_id).is_some() {
            return Ok(set);
        }
        drop(set);
        self.reload_for_unknown_key();
        self.live()
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
    pub(crate) fn done<T>(&self, r: Result<T>, ok: Counter) -> Result<T> {
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

    fn try_lock_writer(&self) -> Option<MutexGuard<'_, ()>> {
        match self.writer.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Applies a change to a copy of the current snapshot (for a bound
    /// keychain: of the latest stored state, by compare-and-swap, applying
    /// it again after a conflict), publishes it, then emits events with no
    /// lock held. Returns `f`'s value and whether anything changed.
    fn mutate<T>(
        &self,
        mut f: impl FnMut(&mut KeySet, bool) -> Result<(Option<T>, Vec<Event>)>,
    ) -> Result<(Option<T>, bool)> {
        let (out, events) = {
            let _w = self.lock_writer();
            match &self.bound {
                None => {
                    let cur = self.live()?;
                    let mut next = KeySet::clone(&cur);
                    let (o, ev) = f(&mut next, false)?;
                    if ev.is_empty() && o.is_none() && next.policy == cur.policy {
                        return Ok((None, false));
                    }
                    self.state.store(Arc::new(next));
                    (o, ev)
                }
                Some(b) => self
                    .commit(b, |set| {
                        let before = set.policy;
                        let (o, ev) = f(set, true)?;
                        if ev.is_empty() && o.is_none() && set.policy == before {
                            return Ok(None);
                        }
                        Ok(Some((o, ev)))
                    })?
                    .unwrap_or((None, Vec::new())),
            }
        };
        let changed = !events.is_empty();
        self.telemetry.emit(&events);
        Ok((out, changed))
    }

    /// Runs `f` with the encryption primary after taking one usage count
    /// from it, reserving counts in the store or rotating as the policy
    /// requires.
    #[inline]
    pub(crate) fn with_encryption_key<T>(
        &self,
        f: impl FnOnce(&Key, &Secret) -> Result<T>,
    ) -> Result<T> {
        if let Some(b) = &self.bound {
            if Keychain::refresh_is_due(b) {
                self.refresh_due(b);
            }
        }
        for _ in 0..MAX_KEY_ATTEMPTS {
            let set = self.live()?;
            let key = &set.keys[set.primary_encrypt];
            let secret = key
                .secret
                .as_ref()
                .ok_or_else(|| Error::internal("the encryption primary has no material"))?;
            match (self.take(&set, key), &self.bound) {
                (Take::Ok, _) => return f(key, secret),
                (Take::NeedsReservation | Take::Exhausted(_), Some(b)) => {
                    let id = key.id;
                    drop(set);
                    self.reserve(b, id)?;
                }
                (Take::Exhausted(why), None) => {
                    return Err(Error::policy(format!(
                        "the encryption primary (key {}, version {}) {why}; \
                         rotate the keychain and save it",
                        key.id, key.version
                    )))
                }
                (Take::NeedsReservation, None) => {
                    return Err(Error::internal("an unbound key asked for a reservation"))
                }
            }
        }
        Err(Error::unavailable(
            "no usable encryption primary after repeated reservations; the store keeps changing",
        ))
    }

    #[inline]
    fn take(&self, set: &KeySet, key: &Key) -> Take {
        match key.usage.take(set.policy.max_encryptions_per_key) {
            Taken::Count(_) => {}
            Taken::NeedBlock => return Take::NeedsReservation,
            Taken::Exhausted => {
                return Take::Exhausted("reached the policy's maximum number of encryptions")
            }
        }
        if let Some(max_age) = set.policy.max_key_age_secs {
            if now_unix().saturating_sub(key.created_at) >= max_age {
                return Take::Exhausted("is older than the policy's maximum key age");
            }
        }
        Take::Ok
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
        self.check_open()?;
        crate::key_manager::check_provider(env, KEYCHAIN_PROVIDER)?;
        let id = crate::envelope::parse_decimal_u32(&env.key_id)
            .ok_or_else(|| Error::format("envelope key_id is not a decimal key ID"))?;
        if seal::key_id(&env.ciphertext)? != id {
            return Err(Error::authentication());
        }
        let set = self.set_with_key(id)?;
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
        if let Some(b) = &self.bound {
            b.store.close();
        }
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
