"""Runs last (file order): no error message that the whole suite provoked
carries a secret — an age identity, a passphrase or PIN the tests used, or
a key the tests exported."""

from __future__ import annotations

import os
import re

import keystrata
from conftest import ERROR_MESSAGES

# Secrets the suites pass to keystrata (test_api.py, test_device_roots.py).
KNOWN_SECRETS = ["correct horse", "not-the-pin-0000"]
PATTERNS = [
    re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{8,}", re.IGNORECASE),
    # base64 of 32 bytes, as key material is written in a keychain's JSON
    # and a Tink keyset.
    re.compile(r"[A-Za-z0-9+/]{43}="),
]


def leaks(message: str) -> list:
    found = [p.pattern for p in PATTERNS if p.search(message)]
    secrets = KNOWN_SECRETS + [os.environ.get("KS_TEST_PKCS11_PIN") or "\0"]
    found += [s for s in secrets if s and s in message]
    return found


def test_the_scan_recognises_a_secret() -> None:
    # The scan itself can fail: an identity and a passphrase are found.
    ident = keystrata.AgeRoot.generate().insecure_identity_strings()[0]
    assert leaks(f"bad input {ident!r}")
    assert leaks("the passphrase 'correct horse ☃' is wrong")
    assert not leaks("no key with key_id 12345 in this keychain")


def test_no_error_message_carries_a_secret() -> None:
    # Provoke the one that used to leak, in case the suite did not.
    ident = keystrata.AgeRoot.generate().insecure_identity_strings()[0]
    try:
        keystrata.AgeRoot(recipients=[ident])
    except keystrata.InvalidInputError:
        pass
    assert len(ERROR_MESSAGES) > 100, f"only {len(ERROR_MESSAGES)} messages were recorded"
    bad = [(m[:200], leaks(m)) for m in ERROR_MESSAGES if leaks(m)]
    assert not bad, bad
