"""``keystrata.root_from_uri``: the core's URI roots (docs/ROOTS.md) from
Python. The grammar and its errors are the core's and tested there; these
tests check the mapping: the returned object is a root wherever one is
taken, errors arrive as the right exception classes, and the device forms
reach the real peers (SoftHSM2, PyKMIP from ``scripts/peers.sh``)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

import keystrata

from test_device_roots import KMIP_VARS, PKCS11_VARS, _env, aws_kms_args


def test_age_identity_file(tmp_path: Path) -> None:
    ident = keystrata.AgeRoot.generate()
    path = tmp_path / "root.key"
    path.write_text("# a comment, as age-keygen writes\n" + ident.insecure_identity_strings()[0] + "\n")
    root = keystrata.root_from_uri(f"age:{path}")
    assert isinstance(root, keystrata.UriRoot)
    assert root.provider == "age"
    assert "UriRoot(provider='age')" == repr(root)
    with keystrata.Keychain.generate() as kc:
        saved = kc.save(root)
        # The recipients were derived from the identity: the original opens it.
        with keystrata.Keychain.load(saved, ident) as back:
            assert back.keys() == kc.keys()
        with keystrata.Keychain.load(saved, root) as back:
            assert back.keys() == kc.keys()
        kc.save_file(tmp_path / "kc.age", root)
        with keystrata.Keychain.load_file(tmp_path / "kc.age", root) as back:
            assert back.primary == kc.primary
        with keystrata.Keychain.open(tmp_path / "bound.age", root) as bound:
            ct = bound.seal(b"x")
        with keystrata.Keychain.open(tmp_path / "bound.age", ident) as bound:
            assert bound.unseal(ct) == b"x"


def test_passphrase_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    var = f"KS_PY_URI_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(var, "correct horse")
    original = keystrata.PassphraseRoot("correct horse", work_factor=10)
    with keystrata.Keychain.generate() as kc:
        saved = kc.save(original)
        (tmp_path / "pass").write_text("correct horse\n")
        for uri in (f"passphrase:{var}", f"passphrase:env:{var}", f"passphrase:file:{tmp_path / 'pass'}"):
            root = keystrata.root_from_uri(uri)
            assert root.provider == "age-scrypt"
            with keystrata.Keychain.load(saved, root) as back:
                assert back.keys() == kc.keys()
    monkeypatch.delenv(var)
    with pytest.raises(keystrata.InvalidInputError, match="not set"):
        keystrata.root_from_uri(f"passphrase:env:{var}")


@pytest.mark.parametrize(
    "uri, exc",
    [
        ("", keystrata.InvalidInputError),
        ("vault:x", keystrata.InvalidInputError),
        ("age:", keystrata.InvalidInputError),
        ("aws-kms:k?secret-access-key=424242", keystrata.InvalidInputError),
        ("aws-kms:k?timeout=0", keystrata.InvalidInputError),
        ("pkcs11:token=t;object=k?module-path=/m.so&pin-value=424242", keystrata.InvalidInputError),
        ("kmip://h?key-name=k&ca=/c&cert=/e", keystrata.InvalidInputError),
        ("age:/nonexistent/keystrata/root.key", keystrata.IoError),
    ],
)
def test_errors_are_the_core_kinds(uri: str, exc: type[keystrata.Error]) -> None:
    with pytest.raises(exc) as info:
        keystrata.root_from_uri(uri)
    assert "424242" not in str(info.value)


def test_type_errors() -> None:
    with pytest.raises(TypeError):
        keystrata.root_from_uri(b"age:x")  # type: ignore[arg-type]
    with keystrata.Keychain.generate() as kc, pytest.raises(TypeError, match="UriRoot"):
        kc.save("age:x")  # type: ignore[arg-type]


def test_pkcs11_uri_opens_the_token() -> None:
    e = _env(*PKCS11_VARS)
    label = f"py-uri-{uuid.uuid4().hex[:12]}"
    uri = (
        f"pkcs11:token={e['KS_TEST_PKCS11_TOKEN']};object={label}"
        f"?module-path={e['KS_TEST_PKCS11_MODULE']}&pin-source=env:KS_TEST_PKCS11_PIN&x-create=true"
    )
    root = keystrata.root_from_uri(uri)
    assert root.provider == "pkcs11"
    direct = keystrata.Pkcs11Root(
        e["KS_TEST_PKCS11_MODULE"], e["KS_TEST_PKCS11_TOKEN"], label, pin=e["KS_TEST_PKCS11_PIN"]
    )
    with keystrata.Keychain.generate() as kc:
        saved = kc.save(root)
        with keystrata.Keychain.load(saved, direct) as back:
            assert back.keys() == kc.keys()
    with pytest.raises(keystrata.UnknownKeyError):
        keystrata.root_from_uri(uri.replace(label, label + "-absent").replace("&x-create=true", ""))


def test_kmip_uri_reaches_the_server() -> None:
    e = _env(*KMIP_VARS)
    name = f"py-uri-{uuid.uuid4().hex[:12]}"
    uri = (
        f"kmip://{e['KS_TEST_KMIP_HOST']}:{e['KS_TEST_KMIP_PORT']}?key-name={name}"
        f"&ca={e['KS_TEST_KMIP_CA']}&cert={e['KS_TEST_KMIP_CERT']}&client-key={e['KS_TEST_KMIP_KEY']}"
        "&timeout=3&x-create=true"
    )
    root = keystrata.root_from_uri(uri)
    assert root.provider == "kmip"
    direct = keystrata.KmipRoot(
        e["KS_TEST_KMIP_HOST"],
        int(e["KS_TEST_KMIP_PORT"]),
        ca=e["KS_TEST_KMIP_CA"],
        cert=e["KS_TEST_KMIP_CERT"],
        key=e["KS_TEST_KMIP_KEY"],
        key_name=name,
        timeout=3.0,
    )
    with keystrata.Keychain.generate() as kc:
        saved = kc.save(root)
        with keystrata.Keychain.load(saved, direct) as back:
            assert back.keys() == kc.keys()
    assert os.environ["KS_TEST_KMIP_KEY"] not in repr(root)


def test_aws_kms_uri_opens_the_key() -> None:
    args = aws_kms_args()
    uri = f"aws-kms:{args['key_id']}?region=us-east-1&endpoint-url={args['endpoint_url']}&timeout=5"
    root = keystrata.root_from_uri(uri)
    assert root.provider == "aws-kms"
    direct = keystrata.AwsKmsRoot(**args)  # type: ignore[arg-type]
    with keystrata.Keychain.generate() as kc:
        saved = kc.save(root)
        with keystrata.Keychain.load(saved, direct) as back:
            assert back.keys() == kc.keys()


def test_a_uri_root_is_a_key_manager(tmp_path: Path) -> None:
    ident = keystrata.AgeRoot.generate()
    path = tmp_path / "root.key"
    path.write_text(ident.insecure_identity_strings()[0])
    root: keystrata.Root = keystrata.root_from_uri(f"age:{path}")
    km: keystrata.KeyManager = root
    env = km.wrap_key(b"k" * 32, b"ctx")
    assert env.provider == "age"
    # The same identity, built directly, unwraps it: one root, two handles.
    assert ident.unwrap_key(env, b"ctx") == b"k" * 32
    assert root.unwrap_key(env, b"ctx") == b"k" * 32
    with pytest.raises(keystrata.AuthenticationError):
        root.unwrap_key(env, b"other")
    assert root.active_key_version() == 1
    # Portable ciphertexts of a keychain bound under the identity decrypt
    # with the URI root alone.
    with keystrata.Keychain.open(tmp_path / "kc.age", ident) as kc:
        blob = kc.encrypt_portable(b"for elsewhere", b"a")
    assert keystrata.decrypt_portable(blob, root, b"a") == b"for elsewhere"
    assert root.portable_counters()["decrypt_ok"] == 1
    root.close()
    with pytest.raises(keystrata.UnavailableError):
        root.health_check()
