"""AwsKmsRoot's errors and AwsKmsSigner against moto's AWS KMS server on
loopback (``scripts/peers.sh`` starts it and exports fake credentials);
the KeyManager contract and keychains saved under an AwsKmsRoot run with
the other device roots in test_device_roots.py. Without the peer the
tests skip, or fail under KEYSTRATA_REQUIRE_PEERS=1."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

import keystrata

from test_device_roots import aws_kms_args, moto

MISSING_KEY = "0b1c2d3e-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"key_id": MISSING_KEY}, keystrata.UnknownKeyError),
        ({"key_id": "alias/no-such-alias"}, keystrata.UnknownKeyError),
        ({"key_id": ""}, keystrata.InvalidInputError),
        ({"region": ""}, keystrata.InvalidInputError),
        ({"endpoint_url": "http://user:secret-pw@127.0.0.1:1"}, keystrata.InvalidInputError),
        ({"endpoint_url": "http://127.0.0.1:1", "timeout": 2.0}, keystrata.UnavailableError),
        ({"timeout": 0.0}, ValueError),
        ({"timeout": float("nan")}, ValueError),
    ],
)
def test_root_errors(change: dict[str, object], error: type[Exception]) -> None:
    args = aws_kms_args(**change)
    with pytest.raises(error) as raised:
        keystrata.AwsKmsRoot(**args)  # type: ignore[arg-type]
    assert "secret-pw" not in str(raised.value)


def test_root_of_a_signing_key_is_unsupported() -> None:
    with pytest.raises(keystrata.UnsupportedError):
        keystrata.AwsKmsRoot(**aws_kms_args("ECC_NIST_P256"))  # type: ignore[arg-type]


def test_root_names_the_key_arn_and_stops_when_disabled() -> None:
    args = aws_kms_args()
    root = keystrata.AwsKmsRoot(**args)  # type: ignore[arg-type]
    assert root.key_arn.startswith("arn:aws:kms:us-east-1:") and root.key_arn.endswith(str(args["key_id"]))
    assert root.provider == "aws-kms"
    assert repr(root) == f"AwsKmsRoot(key_arn={root.key_arn!r})"
    env = root.wrap_key(b"k" * 32, b"ctx")
    assert env.key_id == root.key_arn
    with keystrata.Keychain.generate() as kc:
        saved = kc.save(root)
        moto("disable-key", str(args["key_id"]))
        with pytest.raises(keystrata.KeyDisabledError):
            root.health_check()
        with pytest.raises(keystrata.KeyDisabledError):
            kc.save(root)
        with pytest.raises(keystrata.KeyDisabledError):
            keystrata.Keychain.load(saved, root)
    with pytest.raises(keystrata.KeyDisabledError):
        keystrata.AwsKmsRoot(**args)  # type: ignore[arg-type]


def _verify_with_openssl(pem: bytes, message: bytes, der: bytes, tmp: Path) -> bool:
    (tmp / "pub.pem").write_bytes(pem)
    (tmp / "msg").write_bytes(message)
    (tmp / "sig").write_bytes(der)
    r = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(tmp / "pub.pem"), "-signature", str(tmp / "sig"), str(tmp / "msg")],
        capture_output=True,
        timeout=60,
    )
    return r.returncode == 0


@pytest.mark.parametrize(("spec", "algorithm"), [("ECC_NIST_P256", "ecdsa-p256"), ("ECC_SECG_P256K1", "ecdsa-secp256k1")])
def test_signer(spec: str, algorithm: str, tmp_path: Path) -> None:
    assert shutil.which("openssl"), "openssl is installed by scripts/setup.sh"
    args = aws_kms_args(spec)
    message = b"official release 1.0"
    with keystrata.AwsKmsSigner(**args) as s:  # type: ignore[arg-type]
        contract: keystrata.Signer = s  # the Signer protocol, checked by mypy
        assert contract.algorithm == algorithm
        assert s.algorithm == algorithm
        assert s.key_arn.endswith(str(args["key_id"]))
        raw = s.public_key("raw")
        assert len(raw) == 65 and raw[0] == 4
        der = s.sign(message)
        assert der[0] == 0x30
        keystrata.verify_signature(algorithm, raw, message, der)
        with pytest.raises(keystrata.AuthenticationError):
            keystrata.verify_signature(algorithm, raw, message + b"!", der)
        # OpenSSL, from the outside, with the exported PEM.
        pem = s.public_key("pem")
        assert _verify_with_openssl(pem, message, der, tmp_path)
        assert not _verify_with_openssl(pem, message + b"!", der, tmp_path)
        # A digest computed elsewhere signs as its message.
        digest = hashlib.sha256(message).digest()
        keystrata.verify_signature(algorithm, raw, message, s.sign_digest(digest))
        with pytest.raises(keystrata.InvalidInputError):
            s.sign_digest(digest[:31])
        with pytest.raises(keystrata.UnsupportedError):
            s.public_key("minisign")
        with pytest.raises(keystrata.UnsupportedError):
            keystrata.sign_minisign(s, b"data")
        # An official key of a trust file: the KMS signature names it.
        body = b"".join(pem.splitlines()[1:-1]).decode()
        trusted = keystrata.TrustedKeys.parse(f"kms-release official active {algorithm} {body}\n")
        hit = trusted.verify(message, der)
        assert hit.name == "kms-release" and hit.kind == "official"
        # Disabled in KMS: the next signature is refused, and so is a new signer.
        moto("disable-key", str(args["key_id"]))
        with pytest.raises(keystrata.KeyDisabledError):
            s.sign(message)
        with pytest.raises(keystrata.KeyDisabledError):
            s.health_check()
        with pytest.raises(keystrata.KeyDisabledError):
            keystrata.AwsKmsSigner(**args)  # type: ignore[arg-type]
    # Closed by the with block.
    with pytest.raises(keystrata.UnavailableError):
        s.sign(message)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: aws_kms_args("SYMMETRIC_DEFAULT"), keystrata.UnsupportedError),
        (lambda: aws_kms_args("ECC_NIST_P256", key_id="alias/no-such-alias"), keystrata.UnknownKeyError),
        (lambda: aws_kms_args("ECC_NIST_P256", endpoint_url="http://127.0.0.1:1", timeout=2.0), keystrata.UnavailableError),
    ],
)
def test_signer_errors(make: Callable[[], dict[str, object]], error: type[Exception]) -> None:
    with pytest.raises(error):
        keystrata.AwsKmsSigner(**make())  # type: ignore[arg-type]
