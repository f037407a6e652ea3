# Hand-written stubs for the keystrata package (see __init__.py for the
# documentation). Checked by `python -m mypy.stubtest keystrata`.

from typing import Dict, Protocol, TypedDict, Union

from typing_extensions import Buffer, TypeAlias

from keystrata._native import CORE_VERSION as CORE_VERSION
from keystrata._native import AgeRoot as AgeRoot
from keystrata._native import AwsKmsRoot as AwsKmsRoot
from keystrata._native import AwsKmsSigner as AwsKmsSigner
from keystrata._native import CustomRoot as CustomRoot
from keystrata._native import DecryptingReader as DecryptingReader
from keystrata._native import EncryptingWriter as EncryptingWriter
from keystrata._native import Envelope as Envelope
from keystrata._native import Event as Event
from keystrata._native import KeyInfo as KeyInfo
from keystrata._native import Keychain as Keychain
from keystrata._native import KeychainSigner as KeychainSigner
from keystrata._native import KmipRoot as KmipRoot
from keystrata._native import PassphraseRoot as PassphraseRoot
from keystrata._native import Pkcs11Root as Pkcs11Root
from keystrata._native import Pkcs11Signer as Pkcs11Signer
from keystrata._native import Policy as Policy
from keystrata._native import RotationPlan as RotationPlan
from keystrata._native import SeekableDecryptor as SeekableDecryptor
from keystrata._native import Signature as Signature
from keystrata._native import TrustedKey as TrustedKey
from keystrata._native import TrustedKeys as TrustedKeys
from keystrata._native import TrustVerified as TrustVerified
from keystrata._native import UriRoot as UriRoot
from keystrata._native import __version__ as __version__
from keystrata._native import encrypted_key_id as encrypted_key_id
from keystrata._native import hkdf_sha256 as hkdf_sha256
from keystrata._native import metadata_context as metadata_context
from keystrata._native import root_from_uri as root_from_uri
from keystrata._native import sealed_key_id as sealed_key_id
from keystrata._native import sign_minisign as sign_minisign
from keystrata._native import verify_minisign as verify_minisign
from keystrata._native import verify_signature as verify_signature
from keystrata.exceptions import AuthenticationError as AuthenticationError
from keystrata.exceptions import BackendError as BackendError
from keystrata.exceptions import Error as Error
from keystrata.exceptions import FormatError as FormatError
from keystrata.exceptions import InternalError as InternalError
from keystrata.exceptions import InvalidInputError as InvalidInputError
from keystrata.exceptions import IoError as IoError
from keystrata.exceptions import KeyDestroyedError as KeyDestroyedError
from keystrata.exceptions import KeyDisabledError as KeyDisabledError
from keystrata.exceptions import PolicyError as PolicyError
from keystrata.exceptions import UnavailableError as UnavailableError
from keystrata.exceptions import UnknownKeyError as UnknownKeyError
from keystrata.exceptions import UnsupportedError as UnsupportedError

Root: TypeAlias = Union[AgeRoot, PassphraseRoot, Pkcs11Root, KmipRoot, AwsKmsRoot, UriRoot, CustomRoot]

class KeyManager(Protocol):
    @property
    def provider(self) -> str: ...
    def wrap_key(self, key: bytes, context: bytes = b"") -> Envelope: ...
    def unwrap_key(self, envelope: Envelope, context: bytes = b"") -> bytes: ...
    def active_key_version(self) -> int: ...
    def health_check(self) -> None: ...
    def close(self) -> None: ...

class Signer(Protocol):
    @property
    def algorithm(self) -> str: ...
    def public_key(self, format: str = "pem") -> bytes: ...
    def sign(self, message: bytes) -> bytes: ...
    def sign_digest(self, digest: bytes) -> bytes: ...
    def health_check(self) -> None: ...
    def close(self) -> None: ...

class Counters(TypedDict):
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
    decrypt_ok: int
    decrypt_failed: int
    root_calls: int
    cached_keks: int

def decrypt_portable(blob: Buffer, root: Root, aad: Buffer = b"") -> bytes: ...

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
