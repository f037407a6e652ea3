"""The exceptions keystrata raises.

Every failure of a keystrata operation raises a subclass of :class:`Error`,
one per error kind. The kinds, and their numbers, are the same in every
language keystrata is bound to (the C ``ks_status`` values ``KS_ERR_<KIND>``,
the Go sentinel errors):

====  ==============  =========================  ===============================
code  kind            class                      meaning
====  ==============  =========================  ===============================
1     InvalidInput    InvalidInputError          an argument is malformed or out
                                                 of range
2     Authentication  AuthenticationError        a ciphertext, envelope or
                                                 signature failed authentication
                                                 (never says why)
3     UnknownKey      UnknownKeyError            no key has the key ID the input
                                                 names
4     KeyDisabled     KeyDisabledError           the key is disabled
5     KeyDestroyed    KeyDestroyedError          the key's material was destroyed
6     Policy          PolicyError                refused by the keychain's rules
                                                 or rotation policy
7     Unsupported     UnsupportedError           well-formed but not supported
8     Backend         BackendError               a root backend failed
9     Unavailable     UnavailableError           closed, or unreachable
10    Format          FormatError                bytes not in a keystrata or
                                                 Tink format
11    Io              IoError                    reading or writing a file failed
12    Internal        InternalError              a bug in keystrata (including a
                                                 Rust panic)
====  ==============  =========================  ===============================

Arguments of the wrong type raise the built-in :class:`TypeError`, and
integers outside an argument's range :class:`OverflowError`, as usual in
Python. Messages never contain key material, plaintext or passphrases.
"""

from typing import Optional

__all__ = [
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
]


class Error(Exception):
    """Base class of every keystrata error.

    Attributes:
        kind: the error kind's name (``"Authentication"``, ``"UnknownKey"``,
            …), the same in every language.
        code: the kind's stable number (1 to 12), the C ``KS_ERR_*`` value.
        message: the human-readable message (also ``str(err)``).
    """

    kind: str = "Error"
    code: int = 0

    def __init__(
        self, message: str = "", kind: Optional[str] = None, code: Optional[int] = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        if code is not None:
            self.code = code


class InvalidInputError(Error):
    """An argument is malformed: wrong length, out of range, empty where it
    must not be."""

    kind = "InvalidInput"
    code = 1


class AuthenticationError(Error):
    """A ciphertext, envelope, saved keychain or signature failed
    authentication: tampered, wrong aad or context, wrong identity or
    passphrase, a signature that does not verify. Says nothing more,
    deliberately."""

    kind = "Authentication"
    code = 2


class UnknownKeyError(Error):
    """No key in the keychain has the key ID the input names."""

    kind = "UnknownKey"
    code = 3


class KeyDisabledError(Error):
    """The key exists but is disabled."""

    kind = "KeyDisabled"
    code = 4


class KeyDestroyedError(Error):
    """The key exists but its material was destroyed."""

    kind = "KeyDestroyed"
    code = 5


class PolicyError(Error):
    """Refused by the keychain's rules or rotation policy: disabling the
    primary, a usage limit reached on an unbound keychain (rotate and save),
    a scrypt work factor above the limit."""

    kind = "Policy"
    code = 6


class UnsupportedError(Error):
    """Well-formed input that uses something keystrata does not support (a
    Tink key type or prefix, a newer format version)."""

    kind = "Unsupported"
    code = 7


class BackendError(Error):
    """A root or signer backend (an HSM, a KMIP server, AWS KMS, a custom
    root) reported a failure."""

    kind = "Backend"
    code = 8


class UnavailableError(Error):
    """The keychain or root cannot serve calls: it was closed, or its backend
    is unreachable."""

    kind = "Unavailable"
    code = 9


class FormatError(Error):
    """Bytes that should be in a keystrata or Tink format are not."""

    kind = "Format"
    code = 10


class IoError(Error):
    """Reading or writing a file failed (named ``IoError`` so as not to
    shadow the built-in ``IOError``)."""

    kind = "Io"
    code = 11


class InternalError(Error):
    """A bug in keystrata, such as a Rust panic caught at the boundary.
    Please report it."""

    kind = "Internal"
    code = 12
