"""keystrata: in-process key management.

A **keychain** holds keys with one primary key per purpose (AES-256
``encrypt`` and ``derive`` keys; Ed25519 or ECDSA ``sign`` keys). With it a
program can **seal** small secrets, **envelope-encrypt** data, **wrap** data
keys, **derive** stable per-origin keys and **sign** and verify, producing
the same bytes as keystrata's Rust, C and Go APIs and as Google Tink. At
rest the keychain is protected by a **root**: an age X25519 identity
(``AgeRoot``) or an age passphrase (``PassphraseRoot``) in development,
where the saved keychain is a plain age file; in production a key that never leaves a PKCS#11 token or HSM
(``Pkcs11Root``) or a KMIP server (``KmipRoot``), or a root of your own
(``CustomRoot``, around any object with the ``KeyManager`` methods, such
as a client of your KMS).

Quick start::

    import keystrata

    root = keystrata.AgeRoot.generate()          # keep root.insecure_identity_strings() safe
    with keystrata.Keychain.generate() as kc:
        token = kc.seal(b"api-token", b"svc=billing")        # Tink AEAD format
        assert kc.unseal(token, b"svc=billing") == b"api-token"

        blob = kc.encrypt(b"the document", b"doc-17")       # fresh data key per message
        assert kc.decrypt(blob, b"doc-17") == b"the document"

        env = kc.wrap_key(bytes(32), b"bucket/object")     # -> keystrata.Envelope
        meta = env.to_metadata()                             # x-amz-meta-encryption-* entries
        dek = kc.unwrap_key(keystrata.Envelope.from_metadata(meta), b"bucket/object")

        k1 = kc.derive_origin_key("https://app.example", "web-1", 0)
        kc.rotate()                                          # new encryption primary
        assert kc.derive_origin_key("https://app.example", "web-1", 0) == k1
        assert kc.unseal(token, b"svc=billing") == b"api-token"

        saved = kc.save(root)                                # an age file
        again = keystrata.Keychain.load(saved, root)

    # Bound to a file: every change of state is written before it is used,
    # and the rotation policy rotates by itself.
    kc = keystrata.Keychain.open("keychain.age", root, keystrata.Policy(max_encryptions_per_key=2**20))

    # Portable ciphertexts: the KEK, wrapped by the root, travels with the
    # data, so the root alone decrypts (the root is called once per KEK).
    blob = kc.encrypt_portable(b"for elsewhere", b"doc-18")
    assert keystrata.decrypt_portable(blob, root, b"doc-18") == b"for elsewhere"

    # Signing: Ed25519, or ECDSA P-256 / secp256k1 (DER or raw r‖s).
    key = kc.rotate_signing("ecdsa-p256")
    sig = kc.sign(b"release 1.2.3")                      # -> keystrata.Signature
    assert kc.verify(b"release 1.2.3", sig).key_id == key.key_id
    pem = kc.public_key(key.key_id)                      # SubjectPublicKeyInfo PEM
    raw = kc.public_key(key.key_id, "raw")
    keystrata.verify_signature("ecdsa-p256", raw, b"release 1.2.3", sig.bytes)

    # minisign: `minisign -V` verifies what an Ed25519 key signs, and back.
    ed = kc.rotate_signing("ed25519")
    minisig = kc.sign_minisign(b"data", "release 1.2.3")  # the .minisig text
    pub = kc.public_key(ed.key_id, "minisign")          # the .pub text
    assert keystrata.verify_minisign(pub, b"data", minisig) == "release 1.2.3"

    # A trust file (KEYS.txt) of official and community keys.
    trusted = keystrata.TrustedKeys.load("KEYS.txt")
    who = trusted.verify(b"data", minisig)              # .name, .kind, .trusted_comment

    # Streaming: files of any size in O(segment) memory, in Tink's
    # AES256_GCM_HKDF_1MB format (docs/STREAMING.md).
    kc.rotate_streaming()                                # a streaming primary
    with open("backup.tar", "rb") as src, open("backup.ks", "wb") as dst:
        with kc.encrypting_writer(dst, b"backup-17") as w:   # closing writes the last segment
            shutil.copyfileobj(src, w)
    with open("backup.ks", "rb") as src, open("restored.tar", "wb") as dst:
        shutil.copyfileobj(kc.decrypting_reader(src, b"backup-17"), dst)

    # Signers: a key that never leaves a token, and the keychain's own.
    with keystrata.Pkcs11Signer(module, "token", "release", "ecdsa-p256", pin_env="HSM_PIN") as s:
        der = s.sign(b"release 1.2.3")

Classes: ``Keychain``, ``AgeRoot``, ``PassphraseRoot``, ``Pkcs11Root``,
``KmipRoot``, ``AwsKmsRoot``, ``UriRoot`` (from ``root_from_uri``, docs/ROOTS.md),
``CustomRoot``, ``Envelope``,
``KeyInfo``, ``Policy``, ``Event``, ``RotationPlan`` (from
``Keychain.prepare_rotation``), ``Signature`` (from ``Keychain.sign``),
``Pkcs11Signer``, ``AwsKmsSigner`` and ``KeychainSigner`` (from
``Keychain.signer()``),
``TrustedKeys`` with ``TrustedKey`` and ``TrustVerified``,
``EncryptingWriter``, ``DecryptingReader`` and ``SeekableDecryptor``
(streams, from ``Keychain.encrypting_writer`` and friends);
the functions ``hkdf_sha256``, ``sealed_key_id`` and ``encrypted_key_id``
(which key a ciphertext needs), ``metadata_context`` (an object-store
gateway's wrap context from object metadata, docs/FORMAT.md §4.2),
``decrypt_portable``, ``verify_signature`` (a signature checked with a
bare public key), ``verify_minisign`` (a ``.minisig`` checked with a
minisign public key) and ``sign_minisign`` (a ``.minisig`` made through a
signer); the
exceptions ``Error`` and one subclass per error kind (see
``keystrata.exceptions``). Typing helpers: ``Root``, ``KeyManager``,
``Signer``, ``Counters``, ``PortableCounters``.

Bytes in: every bytes argument accepts ``bytes``, ``bytearray``,
``memoryview`` or any other buffer. Bytes out: new ``bytes`` objects.
Derived and unwrapped key material returned to Python (``derive``,
``derive_origin_key``, ``unwrap_key``, ``hkdf_sha256``,
``insecure_export_tink_cleartext``) leaves keystrata's zeroization: Python cannot
wipe a ``bytes`` or ``str`` object, so keep such values short-lived.

Threads: every object is immutable from Python's side and safe to share
between threads. Payloads above 4 KiB, signing and verifying, and every
call touching a file, a token, age or scrypt, release the GIL.
"""

from typing import TYPE_CHECKING, Dict, Protocol, TypedDict, Union

from keystrata._native import (
    CORE_VERSION,
    AgeRoot,
    AwsKmsRoot,
    AwsKmsSigner,
    CustomRoot,
    DecryptingReader,
    EncryptingWriter,
    Envelope,
    Event,
    KeyInfo,
    Keychain,
    KeychainSigner,
    KmipRoot,
    PassphraseRoot,
    Pkcs11Root,
    Pkcs11Signer,
    Policy,
    RotationPlan,
    SeekableDecryptor,
    Signature,
    TrustedKey,
    TrustedKeys,
    TrustVerified,
    UriRoot,
    __version__,
    encrypted_key_id,
    hkdf_sha256,
    metadata_context,
    root_from_uri,
    sealed_key_id,
    sign_minisign,
    verify_minisign,
    verify_signature,
)
from keystrata.exceptions import (
    AuthenticationError,
    BackendError,
    Error,
    FormatError,
    InternalError,
    InvalidInputError,
    IoError,
    KeyDestroyedError,
    KeyDisabledError,
    PolicyError,
    UnavailableError,
    UnknownKeyError,
    UnsupportedError,
)

Root = Union[AgeRoot, PassphraseRoot, Pkcs11Root, KmipRoot, AwsKmsRoot, UriRoot, CustomRoot]
"""What protects a keychain at rest: an ``AgeRoot`` or a ``PassphraseRoot``
(development), a ``Pkcs11Root``, a ``KmipRoot`` or an ``AwsKmsRoot``
(production), any of
them named by a URI (``root_from_uri`` returns a ``UriRoot``), or a
``CustomRoot`` around a key manager of your own. Each is also a
``KeyManager``."""


class KeyManager(Protocol):
    """The key-manager contract shared by ``Keychain`` and every root
    (``AgeRoot``, ``PassphraseRoot``, ``Pkcs11Root``, ``KmipRoot``,
    ``AwsKmsRoot``): what an
    S3-style gateway needs to wrap and unwrap data keys. A class of your
    own with these members becomes a root with ``CustomRoot(obj)`` (there
    ``active_key_version``, ``health_check`` and ``close`` are optional)."""

    @property
    def provider(self) -> str:
        """The provider name written into envelopes."""
        ...

    def wrap_key(self, key: bytes, context: bytes = b"") -> Envelope:
        """Wraps a data key (1 to 4096 bytes), bound to ``context``."""
        ...

    def unwrap_key(self, envelope: Envelope, context: bytes = b"") -> bytes:
        """The data key from an envelope made with the same context."""
        ...

    def active_key_version(self) -> int:
        """The version of the key new envelopes are wrapped under."""
        ...

    def health_check(self) -> None:
        """Raises ``UnavailableError`` if the key manager cannot serve calls."""
        ...

    def close(self) -> None:
        """Releases the key manager; later calls raise ``UnavailableError``."""
        ...


class Signer(Protocol):
    """The signer contract shared by ``Pkcs11Signer`` (a key that never
    leaves a PKCS#11 token), ``AwsKmsSigner`` (one that never leaves AWS
    KMS) and ``KeychainSigner`` (``Keychain.signer()``,
    the keychain's signing primary): code written against it runs over
    either. Signatures are 64 bytes for Ed25519 and DER for ECDSA over
    SHA-256; they verify with ``verify_signature`` and the ``"raw"`` public
    key, and with OpenSSL and ``cryptography`` using the PEM one. After
    ``close()`` every call raises ``UnavailableError``. The classes are
    context managers too (``with`` closes them)."""

    @property
    def algorithm(self) -> str:
        """``"ed25519"``, ``"ecdsa-p256"`` or ``"ecdsa-secp256k1"``."""
        ...

    def public_key(self, format: str = "pem") -> bytes:
        """The public key: ``"pem"``, ``"der"``, ``"raw"`` or ``"minisign"``."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Signs ``message``."""
        ...

    def sign_digest(self, digest: bytes) -> bytes:
        """Signs a SHA-256 digest (ECDSA only)."""
        ...

    def health_check(self) -> None:
        """Raises if the signer cannot serve."""
        ...

    def close(self) -> None:
        """Releases the signer; later calls raise ``UnavailableError``."""
        ...


class Counters(TypedDict):
    """What ``Keychain.counters()`` returns: operation counts, and errors
    by kind name."""

    seal: int
    unseal_ok: int
    unseal_failed: int
    encrypt: int
    decrypt_ok: int
    decrypt_failed: int
    wrap: int
    unwrap_ok: int
    unwrap_failed: int
    derive: int
    rotations: int
    sign: int
    verify_ok: int
    verify_failed: int
    errors: Dict[str, int]


class PortableCounters(TypedDict):
    """What a root's ``portable_counters()`` returns."""

    decrypt_ok: int
    decrypt_failed: int
    root_calls: int
    cached_keks: int


if TYPE_CHECKING:
    from typing_extensions import Buffer


def decrypt_portable(blob: "Buffer", root: Root, aad: "Buffer" = b"") -> bytes:
    """Decrypts a portable ciphertext (``Keychain.encrypt_portable``) with
    ``root`` alone, with the same ``aad``: no keychain, no file.

    The same as ``root.decrypt_portable(blob, aad)``: the KEKs unwrapped are
    cached in the ``root`` object, so the root is called once per wrapped
    KEK, not once per message; keep the root object to keep the cache.
    Errors as for ``AgeRoot.decrypt_portable``; a ``root`` of another type
    raises ``TypeError``.
    """
    if not isinstance(root, (AgeRoot, PassphraseRoot, Pkcs11Root, KmipRoot, AwsKmsRoot, UriRoot, CustomRoot)):
        raise TypeError(
            "root must be an AgeRoot, PassphraseRoot, Pkcs11Root, KmipRoot, AwsKmsRoot, UriRoot "
            "or CustomRoot, not " + type(root).__name__
        )
    return root.decrypt_portable(blob, aad)


__all__ = [
    "Keychain",
    "AgeRoot",
    "PassphraseRoot",
    "Pkcs11Root",
    "KmipRoot",
    "AwsKmsRoot",
    "UriRoot",
    "CustomRoot",
    "root_from_uri",
    "Envelope",
    "KeyInfo",
    "Policy",
    "Event",
    "RotationPlan",
    "Signature",
    "Pkcs11Signer",
    "AwsKmsSigner",
    "KeychainSigner",
    "TrustedKeys",
    "TrustedKey",
    "TrustVerified",
    "EncryptingWriter",
    "DecryptingReader",
    "SeekableDecryptor",
    "hkdf_sha256",
    "sealed_key_id",
    "encrypted_key_id",
    "metadata_context",
    "decrypt_portable",
    "verify_signature",
    "verify_minisign",
    "sign_minisign",
    "Root",
    "KeyManager",
    "Signer",
    "Counters",
    "PortableCounters",
    "Error",
    "InvalidInputError",
    "AuthenticationError",
    "UnknownKeyError",
    "KeyDisabledError",
    "KeyDestroyedError",
    "PolicyError",
    "UnsupportedError",
    "BackendError",
    "UnavailableError",
    "FormatError",
    "IoError",
    "InternalError",
    "CORE_VERSION",
    "__version__",
]
