"""Wycheproof's signature vectors (tests/vectors/wycheproof/, README there)
through keystrata.verify_signature: every case of ECDSA P-256 and secp256k1
with SHA-256 (DER and P1363) and Ed25519. A valid case verifies; an invalid
one raises AuthenticationError (or InvalidInputError for a public key
keystrata refuses)."""

from __future__ import annotations

import json

import pytest

import keystrata
from conftest import VECTORS

FILES = [
    ("ecdsa_secp256r1_sha256_test.json", "ecdsa-p256", 174, 310),
    ("ecdsa_secp256r1_sha256_p1363_test.json", "ecdsa-p256", 173, 89),
    ("ecdsa_secp256k1_sha256_test.json", "ecdsa-secp256k1", 168, 308),
    ("ecdsa_secp256k1_sha256_p1363_test.json", "ecdsa-secp256k1", 167, 85),
    ("ed25519_test.json", "ed25519", 88, 63),
]


@pytest.mark.parametrize("name,algorithm,n_valid,n_invalid", FILES)
def test_every_case(name: str, algorithm: str, n_valid: int, n_invalid: int) -> None:
    doc = json.loads((VECTORS / "wycheproof" / name).read_text())
    valid = invalid = total = 0
    for group in doc["testGroups"]:
        key = group["publicKey"]
        public = bytes.fromhex(key["pk"] if algorithm == "ed25519" else key["uncompressed"])
        for t in group["tests"]:
            total += 1
            msg, sig = bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"])
            if t["result"] == "valid":
                keystrata.verify_signature(algorithm, public, msg, sig)
                valid += 1
            elif t["result"] == "invalid":
                with pytest.raises((keystrata.AuthenticationError, keystrata.InvalidInputError)):
                    keystrata.verify_signature(algorithm, public, msg, sig)
                invalid += 1
    assert total == doc["numberOfTests"]
    assert (valid, invalid) == (n_valid, n_invalid)
