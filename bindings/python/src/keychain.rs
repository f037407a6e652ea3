//! `keystrata.Keychain`: the main type.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use keystrata::{KeyManager, Purpose, SubscriptionId, WrapForm};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::buf::{
    bytes_out, payload_out, secret_out, type_name, BytesIn, SecretIn, TextOrBytes, DETACH_ABOVE,
};
use crate::errors::{call, invalid, raise};
use crate::roots::RootArg;
use crate::sign::{
    algorithm_from, public_key_format_from, signature_format_from, PySignature, SignatureIn,
};
use crate::signer::PyKeychainSigner;
use crate::stream::{
    stream_format_from, PyDecryptingReader, PyEncryptingWriter, PySeekableDecryptor,
};
use crate::types::{PyEnvelope, PyEvent, PyKeyInfo, PyPolicy, PyRotationPlan};

/// A keychain: keys with one primary key per purpose (AES-256 ``encrypt``
/// and ``derive`` keys, and ``sign`` keys once ``rotate_signing`` made
/// one), and every operation keystrata offers on them.
///
/// Make one with ``Keychain.generate()``, ``Keychain.load(data, root)``,
/// ``Keychain.load_file(path, root)``, ``Keychain.open(path, root)`` (bound
/// to a file) or ``Keychain.import_tink_cleartext(json)``; there is no
/// public constructor.
///
/// - ``seal``/``unseal``: small secrets, in Tink's AEAD format.
/// - ``encrypt``/``decrypt``: envelope encryption with a fresh data key per
///   message, in Tink's KmsEnvelopeAead layout.
/// - ``wrap_key``/``unwrap_key``: wrap a data key you store elsewhere; the
///   result is an ``Envelope`` (full or compact form).
/// - ``derive_origin_key``/``derive``: HKDF-SHA256 under the derivation
///   key; stable across ``rotate()``.
/// - ``sign``/``verify``: Ed25519 or ECDSA (P-256, secp256k1) signatures
///   under the signing primary (``rotate_signing``), ``public_key``;
///   ``sign_minisign``/``verify_minisign`` and
///   ``import_minisign_secret_key`` in minisign's formats; ``signer()``,
///   the signing primary as a ``keystrata.Signer``.
/// - lifecycle: ``rotate``, ``rotate_derivation``, ``add_key``,
///   ``promote``, ``prepare_rotation``/``promote_version`` (two-step
///   rotation), ``disable``, ``enable``, ``destroy``, ``keys``,
///   ``primary``.
///
/// Thread safety: a keychain may be shared between threads freely. Calls on
/// payloads above 4 KiB, signatures, and every call that touches a file,
/// age or scrypt, release the GIL while they run.
///
/// A keychain is a context manager: ``with Keychain.generate() as kc: …``
/// closes it on exit. After ``close()`` every call raises
/// ``UnavailableError``.
///
/// Every method raises a subclass of ``keystrata.Error`` on failure (see
/// ``keystrata.exceptions``); wrong argument types raise ``TypeError``.
#[pyclass(frozen, name = "Keychain", module = "keystrata")]
pub(crate) struct PyKeychain {
    /// Boxed: a `Keychain` is 128-byte aligned (its counters sit on cache
    /// lines of their own), and CPython allocates objects 16-byte aligned,
    /// so held inline it would sit misaligned (undefined behaviour; a debug
    /// build aborts on it).
    pub(crate) inner: Box<keystrata::Keychain>,
    /// Python-visible subscription numbers → the core's IDs.
    subscriptions: Mutex<Subscriptions>,
}

#[derive(Default)]
struct Subscriptions {
    next: u64,
    ids: HashMap<u64, SubscriptionId>,
}

/// The output length `input + overhead`, or `InvalidInput` if it overflows.
fn out_len(input: usize, overhead: usize) -> PyResult<usize> {
    input
        .checked_add(overhead)
        .ok_or_else(|| invalid("plaintext too long"))
}

/// A purpose from its name, as the core spells it (`Purpose::from_name`,
/// the one table).
fn purpose_from(name: &str) -> PyResult<Purpose> {
    Purpose::from_name(name).ok_or_else(|| {
        let names: Vec<String> = Purpose::ALL
            .iter()
            .map(|p| format!("{:?}", p.name()))
            .collect();
        invalid(format!(
            "purpose must be {}, not {name:?}",
            names.join(" or ")
        ))
    })
}

/// A wrap form from its name: the core's parser and message.
fn wrap_form_from(name: &str) -> PyResult<WrapForm> {
    name.parse::<WrapForm>().map_err(raise)
}

impl PyKeychain {
    fn wrap(inner: keystrata::Keychain) -> PyKeychain {
        PyKeychain {
            inner: Box::new(inner),
            subscriptions: Mutex::new(Subscriptions::default()),
        }
    }

    fn subs(&self) -> MutexGuard<'_, Subscriptions> {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an encrypting call should release the GIL: big payloads, and
    /// every call on a bound keychain (it may write the file: a usage block
    /// or an automatic rotation).
    fn detach_encrypt(&self, len: usize) -> bool {
        len > DETACH_ABOVE || self.inner.is_bound()
    }

    /// Whether a reading call (decrypt, unwrap, derive) should release the GIL: big payloads, and
    /// every call on a bound keychain (an unknown key ID makes it reload
    /// from the store, waiting for the keychain's writer, which may itself
    /// be waiting for the GIL in a custom root's callback).
    fn detach_read(&self, len: usize) -> bool {
        len > DETACH_ABOVE || self.inner.is_bound()
    }
}

#[pymethods]
impl PyKeychain {
    // ------------------------------------------------------------------
    // Construction, loading, saving
    // ------------------------------------------------------------------

    /// A new keychain with one encryption key and one derivation key, both
    /// primary, and ``policy`` (default ``Policy()``). It is not bound to
    /// any file: save it with ``save`` or ``save_file``.
    #[staticmethod]
    #[pyo3(signature = (policy = None))]
    fn generate(py: Python<'_>, policy: Option<PyPolicy>) -> PyResult<PyKeychain> {
        let policy = policy.map(PyPolicy::to_core).unwrap_or_default();
        call(py, false, || {
            keystrata::Keychain::generate_with_policy(policy)
        })
        .map(Self::wrap)
    }

    /// Loads a keychain from bytes made by ``save``, opening them with
    /// ``root`` (an ``AgeRoot``, ``PassphraseRoot``, ``Pkcs11Root`` or
    /// ``KmipRoot``). The result is
    /// unbound: it never rotates on its own.
    ///
    /// Raises ``AuthenticationError`` for a wrong identity or passphrase,
    /// tampered bytes or a cut payload; ``FormatError`` for bytes that are
    /// not a saved keychain; ``UnsupportedError`` for a newer format.
    #[staticmethod]
    fn load(py: Python<'_>, data: BytesIn<'_, '_>, root: RootArg) -> PyResult<PyKeychain> {
        let data = data.as_slice();
        call(py, true, || keystrata::Keychain::load(data, root.as_root())).map(Self::wrap)
    }

    /// The keychain, protected by ``root``. Under an ``AgeRoot`` the result
    /// is an age file (``age -d -i identity.txt`` prints the keychain's
    /// JSON); under a ``PassphraseRoot`` an age scrypt file.
    fn save<'py>(&self, py: Python<'py>, root: RootArg) -> PyResult<Bound<'py, PyBytes>> {
        let saved = call(py, true, || self.inner.save(root.as_root()))?;
        Ok(bytes_out(py, &saved))
    }

    /// Saves to ``path`` (str or os.PathLike) atomically: temporary file,
    /// fsync, rename, fsync of the directory. After a crash the file holds
    /// the old keychain or the new one, never a mix. The keychain stays
    /// unbound.
    fn save_file(&self, py: Python<'_>, path: PathBuf, root: RootArg) -> PyResult<()> {
        call(py, true, || self.inner.save_file(&path, root.as_root()))
    }

    /// Loads a keychain from a file written by ``save_file`` or ``open``.
    /// The result is unbound. A missing file raises ``IoError``.
    #[staticmethod]
    fn load_file(py: Python<'_>, path: PathBuf, root: RootArg) -> PyResult<PyKeychain> {
        call(py, true, || {
            keystrata::Keychain::load_file(&path, root.as_root())
        })
        .map(Self::wrap)
    }

    /// Opens the keychain at ``location``, creating it if the store is
    /// empty, and binds it to that store. ``location`` is a file path (or
    /// ``file://`` URL), or ``etcd://[user@]host:port[,host:port...]/key/path``
    /// (``etcds://`` for TLS; see docs/STORES.md and docs/ETCD.md).
    ///
    /// Any number of handles, processes (worker pools, forked children) and
    /// machines may open one location at once; none ever loses what another
    /// wrote. Every change of state (rotate, a block of usage counts) is
    /// applied to the latest stored state and written by compare-and-swap
    /// before the first ciphertext under it is returned; usage limits hold
    /// for all writers together, and at the limit exactly one of them
    /// rotates (a ``key_rotated`` event with ``automatic`` set). A
    /// ciphertext under a key another writer made decrypts at once; a new
    /// primary is adopted within a second. After ``os.fork()`` the child may
    /// keep using the handle (it reserves its own usage block).
    ///
    /// ``policy``: for a new keychain, its policy (default ``Policy()``); for
    /// an existing one, replaces the stored policy (written back) if given.
    /// A store whose contents cannot be opened with ``root`` raises and is
    /// left untouched. Raises ``InvalidInputError`` for an unknown scheme or
    /// a bad URL, ``UnavailableError`` when the store is unreachable.
    #[staticmethod]
    #[pyo3(signature = (location, root, policy = None))]
    fn open(
        py: Python<'_>,
        location: PathBuf,
        root: RootArg,
        policy: Option<PyPolicy>,
    ) -> PyResult<PyKeychain> {
        let policy = policy.map(PyPolicy::to_core);
        call(py, true, || {
            keystrata::Keychain::open_with_policy(&location, &root, policy)
        })
        .map(Self::wrap)
    }

    /// Whether this keychain is bound to a store (made by ``open``).
    #[getter]
    fn is_bound(&self) -> bool {
        self.inner.is_bound()
    }

    /// The location of the store this keychain is bound to (never with a
    /// password), or ``None`` if it is unbound.
    #[getter]
    fn location(&self) -> Option<String> {
        self.inner.location().map(str::to_owned)
    }

    /// Adopts the latest state of the store now, rather than within the
    /// refresh interval (a second). Does nothing for an unbound keychain.
    /// Raises ``UnavailableError`` when the store is unreachable.
    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        call(py, true, || self.inner.refresh())
    }

    // ------------------------------------------------------------------
    // Seal, encrypt, wrap
    // ------------------------------------------------------------------

    /// Encrypts a small secret directly under the encryption primary.
    /// Output: Tink's AEAD format, ``0x01 ‖ BE32(key_id) ‖ nonce(12) ‖
    /// ciphertext ‖ tag(16)`` (33 bytes longer than the plaintext); ``aad``
    /// is authenticated but not included.
    ///
    /// Raises ``PolicyError`` when an unbound keychain's primary reached its
    /// policy limit (rotate and save).
    #[pyo3(signature = (plaintext, aad = b"".as_slice().into()), text_signature = "($self, plaintext, aad=b'')")]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        plaintext: BytesIn<'_, '_>,
        aad: BytesIn<'_, '_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (pt, aad) = (plaintext.as_slice(), aad.as_slice());
        let detach = self.detach_encrypt(pt.len() + aad.len());
        let len = out_len(pt.len(), keystrata::seal::SEAL_OVERHEAD)?;
        payload_out(py, len, detach, |out| self.inner.seal_to(pt, aad, out))
    }

    /// Decrypts what ``seal`` (or Tink, with an imported keyset) produced,
    /// with the same ``aad``.
    ///
    /// Raises ``FormatError`` for malformed input, ``UnknownKeyError`` for a
    /// key ID not in the keychain, ``KeyDisabledError`` /
    /// ``KeyDestroyedError`` for a disabled or destroyed key, and
    /// ``AuthenticationError`` for anything else (tampering, wrong aad).
    #[pyo3(signature = (ciphertext, aad = b"".as_slice().into()), text_signature = "($self, ciphertext, aad=b'')")]
    fn unseal<'py>(
        &self,
        py: Python<'py>,
        ciphertext: BytesIn<'_, '_>,
        aad: BytesIn<'_, '_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (ct, aad) = (ciphertext.as_slice(), aad.as_slice());
        let detach = self.detach_read(ct.len() + aad.len());
        // A malformed input has no plaintext length: an empty buffer gets
        // the same error (and counters, and event) as `unseal`.
        let len = keystrata::Keychain::unsealed_len(ct).unwrap_or(0);
        payload_out(py, len, detach, |out| self.inner.unseal_to(ct, aad, out))
    }

    /// Envelope encryption: a fresh 32-byte data key per message encrypts
    /// the payload, and the encryption primary wraps the data key. Output:
    /// Tink's KmsEnvelopeAead layout, ``BE32(len(enc_dek)) ‖ enc_dek ‖
    /// nonce(12) ‖ ciphertext ‖ tag(16)`` (99 bytes longer than the
    /// plaintext). Use it for data of any size.
    #[pyo3(signature = (plaintext, aad = b"".as_slice().into()), text_signature = "($self, plaintext, aad=b'')")]
    fn encrypt<'py>(
        &self,
        py: Python<'py>,
        plaintext: BytesIn<'_, '_>,
        aad: BytesIn<'_, '_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (pt, aad) = (plaintext.as_slice(), aad.as_slice());
        let detach = self.detach_encrypt(pt.len() + aad.len());
        let len = out_len(pt.len(), keystrata::envelope_encryption::ENCRYPT_OVERHEAD)?;
        payload_out(py, len, detach, |out| self.inner.encrypt_to(pt, aad, out))
    }

    /// Decrypts what ``encrypt`` (or Tink's KmsEnvelopeAead with this
    /// keychain's exported keyset as the remote AEAD) produced. Errors as
    /// for ``unseal``.
    #[pyo3(signature = (ciphertext, aad = b"".as_slice().into()), text_signature = "($self, ciphertext, aad=b'')")]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        ciphertext: BytesIn<'_, '_>,
        aad: BytesIn<'_, '_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (ct, aad) = (ciphertext.as_slice(), aad.as_slice());
        let detach = self.detach_read(ct.len() + aad.len());
        let len = keystrata::Keychain::decrypted_len(ct).unwrap_or(0);
        payload_out(py, len, detach, |out| self.inner.decrypt_to(ct, aad, out))
    }

    /// A portable ciphertext: ``encrypt``'s envelope with the encryption
    /// primary, wrapped by this keychain's root, in front, so
    /// ``keystrata.decrypt_portable(blob, root, aad)`` (or
    /// ``root.decrypt_portable``) decrypts it with the root alone: no
    /// keychain, no file. The root wraps each primary once. Layout:
    /// ``"KSP" ‖ 0x01 ‖ BE32(len) ‖ wrapped_kek ‖ envelope`` (docs/FORMAT.md
    /// §10). Counts as an ``encrypt``; runs with the interpreter released.
    ///
    /// Only a keychain from ``Keychain.open`` has a root: an unbound one
    /// raises ``PolicyError``. Anyone holding the root can unwrap the KEK
    /// and decrypt everything under it; destroying the key does not revoke
    /// portable ciphertexts.
    #[pyo3(signature = (plaintext, aad = b"".as_slice().into()), text_signature = "($self, plaintext, aad=b'')")]
    fn encrypt_portable<'py>(
        &self,
        py: Python<'py>,
        plaintext: BytesIn<'_, '_>,
        aad: BytesIn<'_, '_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (pt, aad) = (plaintext.as_slice(), aad.as_slice());
        let blob = call(py, true, || self.inner.encrypt_portable(pt, aad))?;
        Ok(bytes_out(py, &blob))
    }

    /// Wraps a data key (1 to 4096 bytes) under the encryption primary,
    /// bound to this provider, the key's ID and version, and ``context``.
    ///
    /// ``form``: ``"full"`` (the default; the ciphertext names its key,
    /// key + 33 bytes) or ``"compact"`` (``0x02 ‖ nonce ‖ ct ‖ tag``, key +
    /// 29 bytes: 61 for a 32-byte key, for gateways that check an AES
    /// key-wrap size window; the key ID and version travel in the
    /// envelope's fields only). ``unwrap_key`` opens both forms. Any other
    /// ``form`` raises ``InvalidInputError``.
    #[pyo3(signature = (key, context = b"".as_slice().into(), form = "full"), text_signature = "($self, key, context=b'', form='full')")]
    fn wrap_key(
        &self,
        py: Python<'_>,
        key: BytesIn<'_, '_>,
        context: BytesIn<'_, '_>,
        form: &str,
    ) -> PyResult<PyEnvelope> {
        let form = wrap_form_from(form)?;
        let (k, c) = (key.as_slice(), context.as_slice());
        let detach = self.detach_encrypt(k.len() + c.len());
        call(py, detach, || self.inner.wrap_key_with(k, c, form)).map(PyEnvelope::from_core)
    }

    /// The data key from an envelope made by ``wrap_key`` with the same
    /// context. A changed envelope or context raises
    /// ``AuthenticationError``; an envelope from another provider
    /// ``InvalidInputError``.
    ///
    /// The returned bytes are key material outside keystrata's
    /// zeroization: Python cannot wipe a ``bytes`` object.
    #[pyo3(signature = (envelope, context = b"".as_slice().into()), text_signature = "($self, envelope, context=b'')")]
    fn unwrap_key<'py>(
        &self,
        py: Python<'py>,
        envelope: &PyEnvelope,
        context: BytesIn<'_, '_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let env = envelope.to_core();
        let c = context.as_slice();
        let detach = self.detach_read(env.ciphertext.len() + c.len());
        let secret = call(py, detach, || self.inner.unwrap_key(&env, c))?;
        Ok(secret_out(py, secret))
    }

    // ------------------------------------------------------------------
    // Rewrap
    // ------------------------------------------------------------------

    /// ``ciphertext`` (from ``seal``, under any key of the keychain)
    /// sealed again under the current encryption primary, with the same
    /// ``aad``. The plaintext never leaves the library (it is wiped
    /// there). For moving data off a key before it is disabled and
    /// destroyed; ``sealed_key_id`` says which key a ciphertext needs.
    ///
    /// Raises as ``unseal`` for the input, then as ``seal``.
    #[pyo3(signature = (ciphertext, aad = b"".as_slice().into()), text_signature = "($self, ciphertext, aad=b'')")]
    fn rewrap_sealed<'py>(
        &self,
        py: Python<'py>,
        ciphertext: BytesIn<'_, '_>,
        aad: BytesIn<'_, '_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (ct, aad) = (ciphertext.as_slice(), aad.as_slice());
        let detach = self.detach_read(ct.len() + aad.len());
        let out = call(py, detach, || self.inner.rewrap_sealed(ct, aad))?;
        Ok(bytes_out(py, &out))
    }

    /// ``blob`` (from ``encrypt``, or Tink's KmsEnvelopeAead) with its data
    /// key wrapped again under the current encryption primary: only the
    /// data key moves; the payload is copied unchanged, so no aad is
    /// needed (its tag still binds it: ``decrypt`` checks it). Same length
    /// as ``blob``; ``encrypted_key_id`` says which key a blob needs.
    ///
    /// Raises as ``decrypt`` for the framing and the data key, then as
    /// ``encrypt``.
    fn rewrap_encrypted<'py>(
        &self,
        py: Python<'py>,
        blob: BytesIn<'_, '_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let blob = blob.as_slice();
        let detach = self.detach_read(blob.len());
        let out = call(py, detach, || self.inner.rewrap_encrypted(blob))?;
        Ok(bytes_out(py, &out))
    }

    /// ``envelope`` (from ``wrap_key``) wrapped again under the current
    /// encryption primary, in the same form and bound to the same
    /// ``context``. The key never leaves the library.
    ///
    /// Raises as ``unwrap_key``, then as ``wrap_key``.
    #[pyo3(signature = (envelope, context = b"".as_slice().into()), text_signature = "($self, envelope, context=b'')")]
    fn rewrap_envelope(
        &self,
        py: Python<'_>,
        envelope: &PyEnvelope,
        context: BytesIn<'_, '_>,
    ) -> PyResult<PyEnvelope> {
        let env = envelope.to_core();
        let c = context.as_slice();
        let detach = self.detach_read(env.ciphertext.len() + c.len());
        call(py, detach, || self.inner.rewrap_envelope(&env, c)).map(PyEnvelope::from_core)
    }

    /// The keychain's metrics as Prometheus text (exposition format
    /// 0.0.4): calls by outcome (``kms_seal_total{ok}`` and the others),
    /// ``kms_derivations_total{origin}``, ``kms_errors_total{kind}``,
    /// ``kms_rotations_total{scope}`` and the latency histogram
    /// ``kms_operation_duration_seconds{op}`` (docs/METRICS.md). Serve it
    /// on ``/metrics`` as it is. Readable after ``close()``.
    fn metrics_text(&self) -> String {
        self.inner.metrics_text()
    }

    // ------------------------------------------------------------------
    // Derivation
    // ------------------------------------------------------------------

    /// A stable 32-byte key for ``(origin, instance, epoch)`` by
    /// HKDF-SHA256 under the derivation primary; ``origin`` and
    /// ``instance`` are str (used as UTF-8) or bytes, ``epoch`` an int in
    /// [0, 2**64). The same keychain gives the same bytes in every
    /// language; ``rotate()`` does not change it; bump ``epoch`` to rotate
    /// a derived key.
    ///
    /// The returned bytes are key material outside keystrata's
    /// zeroization.
    fn derive_origin_key<'py>(
        &self,
        py: Python<'py>,
        origin: TextOrBytes<'_, '_>,
        instance: TextOrBytes<'_, '_>,
        epoch: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (o, i) = (origin.as_slice(), instance.as_slice());
        let detach = self.detach_read(o.len() + i.len());
        let secret = call(py, detach, || self.inner.derive_origin_key(o, i, epoch))?;
        Ok(secret_out(py, secret))
    }

    /// ``derive_origin_key`` under the derivation key ``key_id`` rather
    /// than the primary (for example an older one after
    /// ``rotate_derivation()``).
    fn derive_origin_key_with<'py>(
        &self,
        py: Python<'py>,
        key_id: u32,
        origin: TextOrBytes<'_, '_>,
        instance: TextOrBytes<'_, '_>,
        epoch: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (o, i) = (origin.as_slice(), instance.as_slice());
        let detach = self.detach_read(o.len() + i.len());
        let secret = call(py, detach, || {
            self.inner.derive_origin_key_with(key_id, o, i, epoch)
        })?;
        Ok(secret_out(py, secret))
    }

    /// ``length`` bytes (1 to 8160) of HKDF-SHA256 under the derivation
    /// primary, with ``info`` exactly as given and no salt. The returned
    /// bytes are key material outside keystrata's zeroization.
    fn derive<'py>(
        &self,
        py: Python<'py>,
        info: BytesIn<'_, '_>,
        length: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let info = info.as_slice();
        let detach = self.detach_read(info.len().saturating_add(length));
        let secret = call(py, detach, || self.inner.derive(info, length))?;
        Ok(secret_out(py, secret))
    }

    /// ``derive`` under the derivation key ``key_id``.
    fn derive_with<'py>(
        &self,
        py: Python<'py>,
        key_id: u32,
        info: BytesIn<'_, '_>,
        length: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let info = info.as_slice();
        let detach = self.detach_read(info.len().saturating_add(length));
        let secret = call(py, detach, || self.inner.derive_with(key_id, info, length))?;
        Ok(secret_out(py, secret))
    }

    // ------------------------------------------------------------------
    // Signing
    // ------------------------------------------------------------------
    //
    // Every call here but `public_key` does public-key arithmetic:
    // measured 30 µs (Ed25519) to 400 µs (secp256k1) per signature or
    // verification, 60 to 700 times a 4 KiB seal (0.5 µs), which already
    // releases the GIL (DETACH_ABOVE). So each one releases it. `public_key`
    // encodes the key pair the keychain keeps (built on first use) and
    // touches no store: it keeps the GIL, as `keys()` does.

    /// Adds a new signing key of ``algorithm`` (``"ed25519"``,
    /// ``"ecdsa-p256"`` or ``"ecdsa-secp256k1"``) and makes it the signing
    /// primary: what ``sign`` uses from now on. Older signing keys stay
    /// enabled, so their signatures keep verifying. Returns its
    /// ``KeyInfo`` (``purpose == "sign"``). A bound keychain writes it to
    /// its store first. An unknown algorithm raises ``InvalidInputError``.
    fn rotate_signing(&self, py: Python<'_>, algorithm: &str) -> PyResult<PyKeyInfo> {
        let alg = algorithm_from(algorithm)?;
        call(py, true, || self.inner.rotate_signing(alg)).map(PyKeyInfo::from)
    }

    /// Adds an enabled signing key of ``algorithm`` that is not primary:
    /// the first phase of a two-phase rotation (publish its
    /// ``public_key``, then ``promote`` it).
    fn add_signing_key(&self, py: Python<'_>, algorithm: &str) -> PyResult<PyKeyInfo> {
        let alg = algorithm_from(algorithm)?;
        call(py, true, || self.inner.add_signing_key(alg)).map(PyKeyInfo::from)
    }

    /// Signs ``message`` with the signing primary; returns a ``Signature``.
    /// ``format``: ``"der"`` (the default: ASN.1 DER, as OpenSSL and AWS
    /// KMS write ECDSA signatures) or ``"raw"`` (``r ‖ s``, 64 bytes, as
    /// JOSE and WebCrypto do); Ed25519 signatures are the 64 bytes of RFC
    /// 8032 either way. ECDSA hashes with SHA-256.
    ///
    /// Raises ``UnknownKeyError`` if the keychain has no signing key yet
    /// (``rotate_signing``), ``InvalidInputError`` for another ``format``.
    /// Emits a ``"signed"`` event carrying the message's SHA-256.
    #[pyo3(signature = (message, format = "der"))]
    fn sign(
        &self,
        py: Python<'_>,
        message: BytesIn<'_, '_>,
        format: &str,
    ) -> PyResult<PySignature> {
        let format = signature_format_from(format)?;
        let m = message.as_slice();
        call(py, true, || self.inner.sign_as(m, format)).map(PySignature::from)
    }

    /// Signs a SHA-256 ``digest`` (32 bytes) computed elsewhere, as AWS
    /// KMS signs with ``MessageType=DIGEST``: the result verifies as a
    /// signature of the message itself. ECDSA keys only: an Ed25519
    /// primary raises ``UnsupportedError``; a digest of another length
    /// ``InvalidInputError``. ``format`` as for ``sign``.
    #[pyo3(signature = (digest, format = "der"))]
    fn sign_digest(
        &self,
        py: Python<'_>,
        digest: BytesIn<'_, '_>,
        format: &str,
    ) -> PyResult<PySignature> {
        let format = signature_format_from(format)?;
        let d = digest.as_slice();
        call(py, true, || self.inner.sign_digest(d, format)).map(PySignature::from)
    }

    /// Verifies ``signature`` (a ``Signature`` or bytes; ECDSA in DER or
    /// raw) over ``message`` with this keychain's enabled signing keys,
    /// newest first; returns the ``KeyInfo`` of the key that verified. A
    /// disabled or destroyed key verifies nothing, so disabling a key
    /// revokes its signatures here.
    ///
    /// Raises ``AuthenticationError`` if no key verifies it (saying nothing
    /// more), ``UnknownKeyError`` if the keychain has no enabled signing
    /// key. A failure emits a ``"verify_failed"`` event.
    fn verify(
        &self,
        py: Python<'_>,
        message: BytesIn<'_, '_>,
        signature: SignatureIn<'_, '_>,
    ) -> PyResult<PyKeyInfo> {
        let (m, s) = (message.as_slice(), signature.as_slice());
        call(py, true, || self.inner.verify(m, s)).map(PyKeyInfo::from)
    }

    /// ``verify`` with the signing key ``key_id`` only. Raises
    /// ``UnknownKeyError``, ``KeyDisabledError`` or ``KeyDestroyedError``
    /// when ``key_id`` is not an enabled signing key of this keychain, and
    /// ``AuthenticationError`` when the signature does not verify.
    fn verify_with(
        &self,
        py: Python<'_>,
        key_id: u32,
        message: BytesIn<'_, '_>,
        signature: SignatureIn<'_, '_>,
    ) -> PyResult<PyKeyInfo> {
        let (m, s) = (message.as_slice(), signature.as_slice());
        call(py, true, || self.inner.verify_with(key_id, m, s)).map(PyKeyInfo::from)
    }

    /// Verifies an ECDSA ``signature`` over a SHA-256 ``digest`` (32
    /// bytes), as ``sign_digest`` makes, with the enabled ECDSA signing
    /// keys. Errors as for ``verify``; a digest of another length raises
    /// ``InvalidInputError``.
    fn verify_digest(
        &self,
        py: Python<'_>,
        digest: BytesIn<'_, '_>,
        signature: SignatureIn<'_, '_>,
    ) -> PyResult<PyKeyInfo> {
        let (d, s) = (digest.as_slice(), signature.as_slice());
        call(py, true, || self.inner.verify_digest(d, s)).map(PyKeyInfo::from)
    }

    /// The public key of signing key ``key_id`` (bytes) in ``format``:
    /// ``"pem"`` (the default; SubjectPublicKeyInfo, ``-----BEGIN PUBLIC
    /// KEY-----``, as OpenSSL and ``cryptography`` load it), ``"der"`` (the
    /// same, DER), ``"raw"`` (32 bytes for Ed25519, the 65-byte
    /// uncompressed point for ECDSA; what ``verify_signature`` takes) or
    /// ``"minisign"`` (the text of a minisign ``.pub`` file; Ed25519 only).
    ///
    /// A disabled key still has one (to publish a revocation). Raises
    /// ``UnknownKeyError`` if ``key_id`` is not a signing key,
    /// ``KeyDestroyedError`` for a destroyed one, ``InvalidInputError`` for
    /// another ``format``.
    #[pyo3(signature = (key_id, format = "pem"))]
    fn public_key<'py>(
        &self,
        py: Python<'py>,
        key_id: u32,
        format: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let format = public_key_format_from(format)?;
        let key = call(py, false, || self.inner.public_key(key_id, format))?;
        Ok(bytes_out(py, &key))
    }

    /// This keychain's signing primary as a ``KeychainSigner``: the
    /// ``keystrata.Signer`` contract (``algorithm``, ``public_key``,
    /// ``sign``, ``sign_digest``, ``health_check``, ``close``) that a
    /// ``Pkcs11Signer`` also offers, so code written against ``Signer``
    /// runs over either. It signs with whichever key is primary at the
    /// time of each call, with this keychain's events and counters.
    /// Closing it closes nothing of the keychain.
    fn signer(slf: &Bound<'_, Self>) -> PyKeychainSigner {
        PyKeychainSigner::new(slf.clone().unbind())
    }

    // ------------------------------------------------------------------
    // minisign
    // ------------------------------------------------------------------

    /// Signs ``data`` as ``minisign -S`` does, with the signing primary
    /// (which must be Ed25519: ``UnsupportedError`` otherwise), and returns
    /// the text of the ``.minisig`` file (a str): a prehashed signature
    /// and ``trusted_comment`` under the global signature. ``minisign -V``
    /// verifies it with ``public_key(key_id, "minisign")``. An empty
    /// ``trusted_comment`` stays empty (minisign's CLI writes a timestamp
    /// there); one minisign cannot carry (a line end, a control character,
    /// over 8173 bytes) raises ``InvalidInputError``. Emits a ``"signed"``
    /// event like every signature.
    #[pyo3(signature = (data, trusted_comment = ""))]
    fn sign_minisign(
        &self,
        py: Python<'_>,
        data: BytesIn<'_, '_>,
        trusted_comment: &str,
    ) -> PyResult<String> {
        let d = data.as_slice();
        call(py, true, || self.inner.sign_minisign(d, trusted_comment))
    }

    /// Verifies a minisign ``signature`` (the text of a ``.minisig`` file,
    /// as str or UTF-8 bytes; prehashed or legacy) of ``data`` with the
    /// enabled Ed25519 signing key whose minisign key ID it names; returns
    /// that key's ``KeyInfo``. ``keystrata.verify_minisign`` does the same
    /// with a bare public key and gives the trusted comment.
    ///
    /// Raises ``UnknownKeyError`` if no enabled key has the ID,
    /// ``AuthenticationError`` if the signature or its trusted comment
    /// does not verify, ``FormatError`` for text that is not a minisign
    /// signature. A failure emits a ``"verify_failed"`` event.
    fn verify_minisign(
        &self,
        py: Python<'_>,
        data: BytesIn<'_, '_>,
        signature: TextOrBytes<'_, '_>,
    ) -> PyResult<PyKeyInfo> {
        let (d, s) = (data.as_slice(), signature.as_text("a minisign signature")?);
        call(py, true, || self.inner.verify_minisign(d, s)).map(PyKeyInfo::from)
    }

    /// Imports a minisign secret key (the text ``minisign -G`` writes, a
    /// str) as an Ed25519 signing key that keeps its minisign key ID, so
    /// its signatures verify against the ``.pub`` file published before.
    /// ``password`` (str or bytes) opens an encrypted key; a key made with
    /// ``minisign -G -W`` needs none. The key becomes the signing primary
    /// if the keychain has none; otherwise ``promote`` it. Returns its
    /// ``KeyInfo``. keystrata keeps no copy of the password.
    ///
    /// An encrypted key costs one scrypt at minisign's own limits (1 GiB of
    /// memory, seconds), run with the GIL released. Raises
    /// ``AuthenticationError`` for a wrong password, ``InvalidInputError``
    /// for an encrypted key without one or a key already in the keychain,
    /// ``PolicyError`` for scrypt limits above minisign's, ``FormatError``
    /// for text that is not a minisign secret key.
    #[pyo3(signature = (text, password = None))]
    fn import_minisign_secret_key(
        &self,
        py: Python<'_>,
        text: &str,
        password: Option<SecretIn<'_, '_>>,
    ) -> PyResult<PyKeyInfo> {
        let pw = password.as_ref().map(SecretIn::as_slice);
        call(py, true, || self.inner.import_minisign_secret_key(text, pw)).map(PyKeyInfo::from)
    }

    // ------------------------------------------------------------------
    // Lifecycle
    // ------------------------------------------------------------------

    /// Adds a new encryption key and makes it the primary; returns it. Old
    /// ciphertexts keep decrypting. The derivation primary is left alone,
    /// so derived keys do not change. A bound keychain writes the new key
    /// to its file first.
    fn rotate(&self, py: Python<'_>) -> PyResult<PyKeyInfo> {
        call(py, true, || self.inner.rotate()).map(PyKeyInfo::from)
    }

    /// Adds a new derivation key and makes it the derivation primary. This
    /// changes every derived key: do it on compromise. Older derivation
    /// keys stay reachable through ``derive_with`` and
    /// ``derive_origin_key_with``.
    fn rotate_derivation(&self, py: Python<'_>) -> PyResult<PyKeyInfo> {
        call(py, true, || self.inner.rotate_derivation()).map(PyKeyInfo::from)
    }

    /// Adds an enabled key that is not primary: the first phase of a
    /// two-phase rotation. Roll the keychain out to every reader, then
    /// ``promote`` the key. ``purpose`` is ``"encrypt"`` or ``"derive"``;
    /// a signing key needs an algorithm (``add_signing_key``), so
    /// ``"sign"`` raises ``InvalidInputError``, as does an unknown name.
    #[pyo3(signature = (purpose = "encrypt"))]
    fn add_key(&self, py: Python<'_>, purpose: &str) -> PyResult<PyKeyInfo> {
        let purpose = purpose_from(purpose)?;
        call(py, self.inner.is_bound(), || self.inner.add_key(purpose)).map(PyKeyInfo::from)
    }

    /// Makes the enabled key ``key_id`` the primary of its purpose.
    /// Raises ``UnknownKeyError`` or ``PolicyError`` (a disabled or
    /// destroyed key).
    fn promote(&self, py: Python<'_>, key_id: u32) -> PyResult<PyKeyInfo> {
        call(py, self.inner.is_bound(), || self.inner.promote(key_id)).map(PyKeyInfo::from)
    }

    /// The first step of a two-step rotation of the encryption primary;
    /// returns a ``RotationPlan``. With ``target_version``, that enabled,
    /// non-primary encryption key is the target (``UnknownKeyError`` if no
    /// encryption key has that version, ``KeyDisabledError`` /
    /// ``KeyDestroyedError`` if it cannot be used, ``PolicyError`` if it is
    /// already active). Without, the target is the newest enabled
    /// encryption key newer than the primary, or a new key added now
    /// (written to the store first when bound), not yet primary.
    #[pyo3(signature = (target_version = None))]
    fn prepare_rotation(
        &self,
        py: Python<'_>,
        target_version: Option<u32>,
    ) -> PyResult<PyRotationPlan> {
        call(py, self.inner.is_bound(), || {
            self.inner.prepare_rotation(target_version)
        })
        .map(PyRotationPlan::from)
    }

    /// The second step: makes the plan's target the encryption primary if
    /// the active version is still the plan's ``current_version`` (checked
    /// and changed in one step, in the store when bound); returns the new
    /// primary's ``KeyInfo``. Another rotation in between raises
    /// ``PolicyError`` ("rotation conflict") and changes nothing; so does a
    /// target disabled, destroyed or gone meanwhile (``KeyDisabledError``,
    /// ``KeyDestroyedError``, ``UnknownKeyError``).
    fn promote_version(&self, py: Python<'_>, plan: &PyRotationPlan) -> PyResult<PyKeyInfo> {
        let plan = plan.to_core();
        call(py, self.inner.is_bound(), || {
            self.inner.promote_version(&plan)
        })
        .map(PyKeyInfo::from)
    }

    /// Disables a key: it is kept but refused (``KeyDisabledError``) until
    /// enabled again. The primary cannot be disabled (``PolicyError``).
    fn disable(&self, py: Python<'_>, key_id: u32) -> PyResult<()> {
        call(py, self.inner.is_bound(), || self.inner.disable(key_id))
    }

    /// Enables a disabled key again. A destroyed key cannot be enabled
    /// (``PolicyError``).
    fn enable(&self, py: Python<'_>, key_id: u32) -> PyResult<()> {
        call(py, self.inner.is_bound(), || self.inner.enable(key_id))
    }

    /// Wipes a key's material. Irreversible: ciphertexts under it then
    /// raise ``KeyDestroyedError``. The primary cannot be destroyed
    /// (``PolicyError``); destroying a destroyed key does nothing.
    fn destroy(&self, py: Python<'_>, key_id: u32) -> PyResult<()> {
        call(py, self.inner.is_bound(), || self.inner.destroy(key_id))
    }

    /// Metadata of every key, in order of creation. No material. Raises
    /// ``UnavailableError`` once closed.
    fn keys(&self, py: Python<'_>) -> PyResult<Vec<PyKeyInfo>> {
        call(py, false, || self.inner.keys())
            .map(|ks| ks.into_iter().map(PyKeyInfo::from).collect())
    }

    /// The encryption primary's metadata (a ``KeyInfo``).
    #[getter]
    fn primary(&self, py: Python<'_>) -> PyResult<PyKeyInfo> {
        call(py, false, || self.inner.primary()).map(PyKeyInfo::from)
    }

    /// The primary key of ``purpose`` (``"encrypt"``, ``"derive"`` or
    /// ``"sign"``). Raises ``UnknownKeyError`` for ``"sign"`` before the
    /// first ``rotate_signing``.
    fn primary_for(&self, py: Python<'_>, purpose: &str) -> PyResult<PyKeyInfo> {
        let purpose = purpose_from(purpose)?;
        call(py, false, || self.inner.primary_for(purpose)).map(PyKeyInfo::from)
    }

    /// The rotation policy (a ``Policy``). Change it with ``set_policy``.
    /// Raises ``UnavailableError`` once closed.
    #[getter]
    fn policy(&self, py: Python<'_>) -> PyResult<PyPolicy> {
        call(py, false, || self.inner.policy()).map(PyPolicy::from)
    }

    /// Replaces the rotation policy (written to the file if bound).
    fn set_policy(&self, py: Python<'_>, policy: PyPolicy) -> PyResult<()> {
        let p = policy.to_core();
        call(py, self.inner.is_bound(), || self.inner.set_policy(p))
    }

    // ------------------------------------------------------------------
    // Streaming (docs/STREAMING.md; the file objects are in stream.rs)
    // ------------------------------------------------------------------

    /// Adds a new streaming key of ``format`` (``"aes256-gcm-hkdf-1mb"``,
    /// the default, or ``"aes256-gcm-hkdf-4kb"``: Tink's
    /// AES256_GCM_HKDF_1MB / _4KB) and makes it the streaming primary:
    /// what ``encrypting_writer`` uses from now on. Older streaming keys
    /// stay enabled, so their streams keep decrypting. Returns its
    /// ``KeyInfo`` (``purpose == "stream"``). An unknown format raises
    /// ``InvalidInputError``.
    #[pyo3(signature = (format = "aes256-gcm-hkdf-1mb"))]
    fn rotate_streaming(&self, py: Python<'_>, format: &str) -> PyResult<PyKeyInfo> {
        let format = stream_format_from(format)?;
        call(py, self.inner.is_bound(), || {
            self.inner.rotate_streaming(format)
        })
        .map(PyKeyInfo::from)
    }

    /// Adds an enabled streaming key of ``format`` that is not primary
    /// (roll it out to every reader, then ``promote`` it).
    #[pyo3(signature = (format = "aes256-gcm-hkdf-1mb"))]
    fn add_stream_key(&self, py: Python<'_>, format: &str) -> PyResult<PyKeyInfo> {
        let format = stream_format_from(format)?;
        call(py, self.inner.is_bound(), || {
            self.inner.add_stream_key(format)
        })
        .map(PyKeyInfo::from)
    }

    /// A writable binary file object (``EncryptingWriter``) that encrypts
    /// what is written to it into ``fileobj`` (anything with ``write``) as
    /// one stream under the streaming primary, bound to ``aad``. Close it
    /// (or leave its ``with`` block) to write the last segment; without
    /// that the stream never decrypts. ``UnknownKeyError`` if the keychain
    /// has no streaming key (``rotate_streaming`` makes one).
    #[pyo3(signature = (fileobj, aad = b"".as_slice().into()), text_signature = "($self, fileobj, aad=b'')")]
    fn encrypting_writer(
        &self,
        py: Python<'_>,
        fileobj: &Bound<'_, PyAny>,
        aad: BytesIn<'_, '_>,
    ) -> PyResult<PyEncryptingWriter> {
        let detach = self.detach_encrypt(aad.as_slice().len());
        PyEncryptingWriter::new(py, &self.inner, fileobj, aad.as_slice(), detach)
    }

    /// A readable binary file object (``DecryptingReader``) that decrypts
    /// the stream read from ``fileobj`` (anything with ``read(n)``), made
    /// under one of this keychain's enabled streaming keys (or by Tink with
    /// an imported keyset) with ``aad``. Errors surface on reading:
    /// ``AuthenticationError`` (tampered, truncated, wrong key or aad),
    /// ``FormatError`` (not a stream).
    #[pyo3(signature = (fileobj, aad = b"".as_slice().into()), text_signature = "($self, fileobj, aad=b'')")]
    fn decrypting_reader(
        &self,
        py: Python<'_>,
        fileobj: &Bound<'_, PyAny>,
        aad: BytesIn<'_, '_>,
    ) -> PyResult<PyDecryptingReader> {
        PyDecryptingReader::new(py, &self.inner, fileobj, aad.as_slice())
    }

    /// Random access to the stream in ``fileobj`` (with ``read``, ``seek``
    /// and ``tell``): a ``SeekableDecryptor`` that decrypts only the
    /// segments a read touches. Reads the first segment now:
    /// ``AuthenticationError`` if no enabled streaming key opens it.
    #[pyo3(signature = (fileobj, aad = b"".as_slice().into()), text_signature = "($self, fileobj, aad=b'')")]
    fn seekable_decryptor(
        &self,
        py: Python<'_>,
        fileobj: &Bound<'_, PyAny>,
        aad: BytesIn<'_, '_>,
    ) -> PyResult<PySeekableDecryptor> {
        PySeekableDecryptor::new(py, &self.inner, fileobj, aad.as_slice())
    }

    // ------------------------------------------------------------------
    // Tink
    // ------------------------------------------------------------------

    /// A keychain from a Tink cleartext JSON keyset (str) of AES-256-GCM
    /// keys with the TINK output prefix, such as
    /// ``tink.json_proto_keyset_format.serialize(handle, TOKEN)`` writes.
    /// The keys keep their Tink key IDs and statuses, so Tink's ciphertexts
    /// keep decrypting; Tink's primary becomes the encryption primary; a
    /// fresh derivation key is added. Any other key type, size or prefix
    /// raises ``UnsupportedError``; malformed JSON ``FormatError``.
    #[staticmethod]
    fn import_tink_cleartext(py: Python<'_>, json: &str) -> PyResult<PyKeychain> {
        call(py, false, || {
            keystrata::Keychain::import_tink_cleartext(json)
        })
        .map(Self::wrap)
    }

    /// The keys of ``purpose`` as a Tink cleartext JSON keyset.
    /// ``"encrypt"`` (the default): the encryption keys (AES-256-GCM, TINK
    /// prefix), for Tink to decrypt ``seal`` output and to serve as the
    /// remote AEAD of its KmsEnvelopeAead (which then decrypts ``encrypt``
    /// output). ``"stream"``: the streaming keys (AesGcmHkdfStreamingKey,
    /// RAW prefix), for Tink's streaming AEAD to read and write the streams
    /// of ``encrypting_writer``/``decrypting_reader``. Destroyed keys are
    /// left out. Other purposes have no Tink form (``UnsupportedError``);
    /// no key of the purpose raises ``UnknownKeyError``.
    ///
    /// The result holds key material in the clear, in a ``str`` keystrata
    /// cannot wipe: treat it as a secret. The name says so, as tink-go's
    /// ``insecurecleartextkeyset`` does.
    #[pyo3(signature = (purpose = "encrypt"))]
    fn insecure_export_tink_cleartext<'py>(
        &self,
        py: Python<'py>,
        purpose: &str,
    ) -> PyResult<Bound<'py, PyString>> {
        let purpose = purpose_from(purpose)?;
        let json = call(py, false, || {
            self.inner.insecure_export_tink_cleartext_for(purpose)
        })?;
        Ok(PyString::new(py, &json))
    }

    /// The old name of ``insecure_export_tink_cleartext``; warns with
    /// ``DeprecationWarning``.
    fn export_tink_cleartext<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        PyErr::warn(
            py,
            &py.get_type::<pyo3::exceptions::PyDeprecationWarning>(),
            c"export_tink_cleartext is renamed insecure_export_tink_cleartext",
            1,
        )?;
        self.insecure_export_tink_cleartext(py, "encrypt")
    }

    // ------------------------------------------------------------------
    // Events and counters
    // ------------------------------------------------------------------

    /// Calls ``callback(event)`` with an ``Event`` for every lifecycle
    /// event (key created, rotated, promoted, disabled, enabled, destroyed,
    /// derived; decryption failed; signed, verification failed). It runs on the thread that caused the
    /// event, after the change is visible and with no keychain lock held,
    /// so it may call the keychain. An exception raised by the callback is
    /// reported through ``sys.unraisablehook`` and otherwise ignored: it
    /// never reaches the caller of the operation and never affects the
    /// keychain. Returns a subscription number for ``unsubscribe``.
    fn subscribe(&self, callback: Bound<'_, PyAny>) -> PyResult<u64> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "callback must be callable, not {}",
                type_name(&callback)
            )));
        }
        let callback: Py<PyAny> = callback.unbind();
        let id = self
            .inner
            .subscribe(move |event| {
                // During interpreter shutdown the event is dropped rather than
                // delivered: a thread must not attach to a finalizing interpreter.
                Python::try_attach(|py| {
                    let cb = callback.bind(py);
                    let result = Py::new(py, PyEvent::from(event)).and_then(|ev| cb.call1((ev,)));
                    if let Err(err) = result {
                        err.write_unraisable(py, Some(cb));
                    }
                });
            })
            .map_err(crate::errors::raise)?;
        let mut subs = self.subs();
        subs.next += 1;
        let n = subs.next;
        subs.ids.insert(n, id);
        Ok(n)
    }

    /// Removes a subscription made by ``subscribe``. Returns whether it
    /// existed.
    fn unsubscribe(&self, subscription: u64) -> bool {
        let id = self.subs().ids.remove(&subscription);
        id.is_some_and(|id| self.inner.unsubscribe(id))
    }

    /// A snapshot of the operation counters: ``seal``, ``unseal_ok``,
    /// ``unseal_failed``, ``encrypt``, ``decrypt_ok``, ``decrypt_failed``,
    /// ``wrap``, ``unwrap_ok``, ``unwrap_failed``, ``derive``,
    /// ``rotations``, ``sign``, ``verify_ok``, ``verify_failed`` (ints),
    /// and ``errors``: a dict from error kind name
    /// (``"Authentication"``, …) to the number of errors of that kind
    /// returned so far.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.counters();
        let d = PyDict::new(py);
        d.set_item("seal", c.seal)?;
        d.set_item("unseal_ok", c.unseal_ok)?;
        d.set_item("unseal_failed", c.unseal_failed)?;
        d.set_item("encrypt", c.encrypt)?;
        d.set_item("decrypt_ok", c.decrypt_ok)?;
        d.set_item("decrypt_failed", c.decrypt_failed)?;
        d.set_item("wrap", c.wrap)?;
        d.set_item("unwrap_ok", c.unwrap_ok)?;
        d.set_item("unwrap_failed", c.unwrap_failed)?;
        d.set_item("derive", c.derive)?;
        d.set_item("rotations", c.rotations)?;
        d.set_item("sign", c.sign)?;
        d.set_item("verify_ok", c.verify_ok)?;
        d.set_item("verify_failed", c.verify_failed)?;
        let errors = PyDict::new(py);
        for kind in keystrata::ErrorKind::ALL {
            errors.set_item(kind.name(), c.errors_of(kind))?;
        }
        d.set_item("errors", errors)?;
        Ok(d)
    }

    // ------------------------------------------------------------------
    // Key-manager contract
    // ------------------------------------------------------------------

    /// The provider name written into envelopes: ``"keystrata"``.
    #[getter]
    fn provider(&self) -> &'static str {
        keystrata::KEYCHAIN_PROVIDER
    }

    /// The version of the encryption primary: the key new envelopes are
    /// wrapped under.
    fn active_key_version(&self, py: Python<'_>) -> PyResult<u32> {
        call(py, false, || self.inner.active_key_version())
    }

    /// Raises ``UnavailableError`` if the keychain was closed.
    fn health_check(&self, py: Python<'_>) -> PyResult<()> {
        call(py, false, || self.inner.health_check())
    }

    /// Closes the keychain (idempotent): every later call raises
    /// ``UnavailableError``, the key material is wiped once calls in flight
    /// finish, and every subscription is removed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let ids: Vec<SubscriptionId> = self.subs().ids.drain().map(|(_, id)| id).collect();
        for id in ids {
            self.inner.unsubscribe(id);
        }
        // Released: close waits for the keychain's writer, which may be
        // waiting for the GIL in a custom root's callback.
        call(py, true, || self.inner.close())
    }

    /// Returns the keychain itself, for ``with``.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the keychain; an exception raised in the ``with`` block
    /// propagates.
    #[pyo3(signature = (*exc_info))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_info: &Bound<'_, pyo3::types::PyTuple>,
    ) -> PyResult<bool> {
        let _ = exc_info;
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let Ok(keys) = self.inner.keys() else {
            return "<Keychain (closed)>".to_owned();
        };
        let primary = keys
            .iter()
            .find(|k| k.primary && k.purpose == Purpose::Encrypt)
            .map_or_else(String::new, |k| {
                format!(", encryption primary {} v{}", k.key_id, k.version)
            });
        format!(
            "<Keychain: {} keys{}, {}>",
            keys.len(),
            primary,
            if self.inner.is_bound() {
                "bound to a file"
            } else {
                "unbound"
            }
        )
    }
}
