"""Pkcs11Root, KmipRoot and AwsKmsRoot against the real peers: a SoftHSM2
token, PyKMIP and Cosmian KMS servers and moto's AWS KMS on loopback, started by
``scripts/peers.sh`` (``make test``
does it). Without them the tests skip, or fail under
KEYSTRATA_REQUIRE_PEERS=1 (as test.sh runs them)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from typing import Callable, Iterator, Union

import pytest

import keystrata

from conftest import require_peers


def _env(*names: str) -> dict[str, str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        msg = f"peer not started ({', '.join(missing)} unset): run eval \"$(bash scripts/peers.sh start)\""
        if require_peers():
            pytest.fail(msg)
        pytest.skip(msg)
    return {n: os.environ[n] for n in names}


PKCS11_VARS = ("KS_TEST_PKCS11_MODULE", "KS_TEST_PKCS11_TOKEN", "KS_TEST_PKCS11_PIN")
KMIP_VARS = ("KS_TEST_KMIP_HOST", "KS_TEST_KMIP_PORT", "KS_TEST_KMIP_CA", "KS_TEST_KMIP_CERT", "KS_TEST_KMIP_KEY")


def _label() -> str:
    return f"py-{uuid.uuid4().hex[:12]}"


def make_pkcs11(label: str | None = None, **kw: object) -> keystrata.Pkcs11Root:
    e = _env(*PKCS11_VARS)
    args: dict[str, object] = {"pin": e["KS_TEST_PKCS11_PIN"], "create_key": True}
    args.update(kw)
    return keystrata.Pkcs11Root(
        e["KS_TEST_PKCS11_MODULE"], e["KS_TEST_PKCS11_TOKEN"], label or _label(), **args  # type: ignore[arg-type]
    )


def make_kmip(prefix: str = "KMIP", port_var: str = "PORT", **kw: object) -> keystrata.KmipRoot:
    """A root on the KMIP server whose settings are KS_TEST_<prefix>_*
    (KMIP: PyKMIP; COSMIAN: Cosmian KMS 5.0), on its port KS_TEST_<prefix>_<port_var>."""
    e = _env(*(f"KS_TEST_{prefix}_{w}" for w in ("HOST", port_var, "CA", "CERT", "KEY")))
    args: dict[str, object] = {
        "ca": e[f"KS_TEST_{prefix}_CA"],
        "cert": e[f"KS_TEST_{prefix}_CERT"],
        "key": e[f"KS_TEST_{prefix}_KEY"],
        "timeout": 3.0,
    }
    if "key_id" not in kw:
        args["key_name"] = _label()
        args["create_key"] = True
    args.update(kw)
    return keystrata.KmipRoot(e[f"KS_TEST_{prefix}_HOST"], int(e[f"KS_TEST_{prefix}_{port_var}"]), **args)  # type: ignore[arg-type]


def make_cosmian(**kw: object) -> keystrata.KmipRoot:
    # Cosmian KMS 5.0 finds keys by name in KMIP 2.0 only.
    return make_kmip("COSMIAN", **{"version": "2.0", **kw})


def make_cosmian_json(**kw: object) -> keystrata.KmipRoot:
    # The same server through its HTTPS JSON TTLV API.
    return make_kmip("COSMIAN", "HTTPS_PORT", **{"version": "2.0", "https_json": True, **kw})


AWS_VARS = ("KS_TEST_AWS_ENDPOINT", "KS_TEST_AWS_CTL", "KS_TEST_AWS_DIR")


def moto(cmd: str, arg: str) -> str:
    """scripts/peers/moto.sh CMD DIR ARG (``key SPEC`` prints a new key's ID;
    ``disable-key KEY_ID``), as the C and Go suites make their keys."""
    e = _env(*AWS_VARS)
    out = subprocess.run(
        ["bash", e["KS_TEST_AWS_CTL"], cmd, e["KS_TEST_AWS_DIR"], arg],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout.strip()


def aws_kms_args(spec: str = "SYMMETRIC_DEFAULT", **kw: object) -> dict[str, object]:
    """The constructor arguments for a new moto key of ``spec``."""
    e = _env(*AWS_VARS)
    args: dict[str, object] = {
        "key_id": moto("key", spec),
        "region": "us-east-1",
        "endpoint_url": e["KS_TEST_AWS_ENDPOINT"],
        "timeout": 5.0,
    }
    args.update(kw)
    return args


def make_aws_kms(**kw: object) -> keystrata.AwsKmsRoot:
    return keystrata.AwsKmsRoot(**aws_kms_args(**kw))  # type: ignore[arg-type]


DeviceRoot = Union[keystrata.Pkcs11Root, keystrata.KmipRoot, keystrata.AwsKmsRoot]

ROOTS: dict[str, Callable[[], DeviceRoot]] = {
    "pkcs11": make_pkcs11,
    "kmip": make_kmip,
    "cosmian": make_cosmian,
    "cosmian-json": make_cosmian_json,
    "aws-kms": make_aws_kms,
}


@pytest.fixture(params=sorted(ROOTS))
def root(request: pytest.FixtureRequest) -> Iterator[DeviceRoot]:
    r = ROOTS[request.param]()
    yield r
    r.close()


def test_key_manager_contract(root: DeviceRoot) -> None:
    assert root.provider in ("pkcs11", "kmip", "aws-kms")
    assert root.active_key_version() >= 1
    root.health_check()
    for n in (16, 24, 32):
        key = bytes(range(n))
        env = root.wrap_key(key, b"bucket/obj")
        assert env.provider == root.provider
        assert root.unwrap_key(env, b"bucket/obj") == key
        back = keystrata.Envelope.from_metadata(env.to_metadata())
        assert root.unwrap_key(back, b"bucket/obj") == key
        with pytest.raises(keystrata.AuthenticationError):
            root.unwrap_key(env, b"bucket/other")
    env = root.wrap_key(b"k" * 32)
    tampered = keystrata.Envelope(
        key_id=env.key_id,
        key_version=env.key_version,
        provider=env.provider,
        ciphertext=env.ciphertext[:-1] + bytes([env.ciphertext[-1] ^ 1]),
    )
    with pytest.raises(keystrata.AuthenticationError):
        root.unwrap_key(tampered)
    foreign = keystrata.Envelope(
        key_id=env.key_id, key_version=env.key_version, provider="other", ciphertext=env.ciphertext
    )
    with pytest.raises(keystrata.InvalidInputError):
        root.unwrap_key(foreign)
    with pytest.raises(keystrata.InvalidInputError):
        root.wrap_key(b"")


def test_keychain_saved_under_device_root_loads_only_through_it(
    root: DeviceRoot, tmp_path: os.PathLike[str]
) -> None:
    with keystrata.Keychain.generate() as kc:
        sealed = kc.seal(b"secret", b"aad")
        saved = kc.save(root)
        assert saved[:4] == b"KSWR"
        again = keystrata.Keychain.load(saved, root)
        assert again.unseal(sealed, b"aad") == b"secret"
        # Another key of the same kind of root, and an age root, refuse it.
        other = ROOTS[root.provider]()
        with pytest.raises(keystrata.Error):
            keystrata.Keychain.load(saved, other)
        other.close()
        with pytest.raises(keystrata.FormatError):
            keystrata.Keychain.load(saved, keystrata.AgeRoot.generate())
        # A bound keychain under a device root survives reopening.
        path = os.path.join(os.fspath(tmp_path), "kc.ks")
        with keystrata.Keychain.open(path, root) as bound:
            blob = bound.encrypt(b"doc", b"")
        with keystrata.Keychain.open(path, root) as bound:
            assert bound.decrypt(blob, b"") == b"doc"


def test_close_makes_every_call_unavailable(root: DeviceRoot) -> None:
    env = root.wrap_key(b"x" * 32)
    root.close()
    root.close()
    for call in (
        lambda: root.wrap_key(b"x" * 32),
        lambda: root.unwrap_key(env),
        root.health_check,
        root.active_key_version,
    ):
        with pytest.raises(keystrata.UnavailableError):
            call()


def test_threads_share_one_root_and_release_the_gil(root: DeviceRoot) -> None:
    errors: list[BaseException] = []
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    def work(i: int) -> None:
        try:
            key = bytes([i]) * 32
            for _ in range(5):
                assert root.unwrap_key(root.wrap_key(key, b"t"), b"t") == key
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    spinner = threading.Thread(target=spin)
    spinner.start()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    spinner.join()
    assert not errors, errors
    # The pure-Python spinner ran while the workers waited on the device:
    # the GIL was released (a held GIL would starve it to a few ticks).
    assert ticks > 1000


def test_pkcs11_errors() -> None:
    e = _env(*PKCS11_VARS)
    module, token, pin = e["KS_TEST_PKCS11_MODULE"], e["KS_TEST_PKCS11_TOKEN"], e["KS_TEST_PKCS11_PIN"]
    with pytest.raises(keystrata.BackendError) as wrong:
        keystrata.Pkcs11Root(module, token, "k", pin="not-the-pin-0000")
    assert "not-the-pin-0000" not in str(wrong.value)
    with pytest.raises(keystrata.UnknownKeyError):
        keystrata.Pkcs11Root(module, token, _label(), pin=pin)
    with pytest.raises(keystrata.UnavailableError):
        keystrata.Pkcs11Root(module, "no-such-token", "k", pin=pin, create_key=True)
    with pytest.raises(keystrata.InvalidInputError):
        keystrata.Pkcs11Root("/nonexistent/libpkcs11.so", token, "k", pin=pin)
    with pytest.raises(keystrata.InvalidInputError):
        keystrata.Pkcs11Root(module, token, "k", pin_env="KS_TEST_SURELY_UNSET_VARIABLE")
    with pytest.raises(ValueError):
        keystrata.Pkcs11Root(module, token, "k")
    os.environ["KS_TEST_PY_PIN"] = pin
    try:
        label = _label()
        r = keystrata.Pkcs11Root(module, token, label, pin_env="KS_TEST_PY_PIN", create_key=True)
        assert r.key_label == label and r.token_label == token
        assert label in repr(r) and pin not in repr(r)
        r.close()
    finally:
        del os.environ["KS_TEST_PY_PIN"]


def test_kmip_errors_and_key_by_id() -> None:
    e = _env(*KMIP_VARS)
    r = make_kmip()
    by_id = make_kmip(key_id=r.key_id)
    env = r.wrap_key(b"q" * 32)
    assert by_id.unwrap_key(env) == b"q" * 32
    assert r.key_id in repr(r)
    with pytest.raises(keystrata.UnknownKeyError):
        make_kmip(key_name=_label(), create_key=False)
    with pytest.raises(ValueError):
        keystrata.KmipRoot("127.0.0.1", 1, ca="a", cert="b", key="c")
    with pytest.raises(keystrata.IoError):
        keystrata.KmipRoot("127.0.0.1", 1, ca="/nonexistent/ca.pem", cert="b", key="c", key_id="1")
    # Nothing listening: Unavailable, quickly.
    t = time.monotonic()
    with pytest.raises(keystrata.UnavailableError):
        keystrata.KmipRoot(
            "127.0.0.1",
            1,
            ca=e["KS_TEST_KMIP_CA"],
            cert=e["KS_TEST_KMIP_CERT"],
            key=e["KS_TEST_KMIP_KEY"],
            key_id="1",
            timeout=2.0,
        )
    assert time.monotonic() - t < 30
    r.close()
    by_id.close()


def test_kmip_version_2_0() -> None:
    r = make_kmip(version="2.0")
    assert r.unwrap_key(r.wrap_key(b"v" * 32, b"c"), b"c") == b"v" * 32
    r.close()


@pytest.mark.parametrize("make", [make_kmip, make_cosmian], ids=["pykmip", "cosmian"])
def test_kmip_rotate_key_by_versions(make: Callable[..., keystrata.KmipRoot]) -> None:
    """Root key rotation by versions (docs/KMIP.md, "Rotating the root key")
    in KMIP 2.0: root A makes a named key, a keychain is saved under it,
    root B on the same name rotates to version 2, A takes it up on its
    health check (no waiting for its refresh), and the keychain saved
    before still loads through both. A root by identifier has version 1
    only and cannot rotate."""
    name = _label()
    a = make(key_name=name, version="2.0", timeout=5.0)
    assert a.active_key_version() == 1
    id1 = a.key_id
    kc = keystrata.Keychain.generate()
    saved1 = kc.save(a)

    b = make(key_name=name, create_key=False, version="2.0", timeout=5.0)
    assert b.rotate_key() == 2
    assert b.active_key_version() == 2
    assert b.key_id != id1
    a.health_check()
    assert a.active_key_version() == 2
    assert a.key_id == b.key_id
    env = a.wrap_key(b"k" * 32, b"ctx")
    assert (env.key_id, env.key_version) == (b.key_id, 2)
    assert b.unwrap_key(env, b"ctx") == b"k" * 32
    saved2 = kc.save(a)
    for root in (a, b):
        for saved in (saved1, saved2):
            keystrata.Keychain.load(saved, root).close()

    by_id = make(key_id=id1, version="2.0", timeout=5.0)
    assert by_id.active_key_version() == 1
    with pytest.raises(keystrata.InvalidInputError):
        by_id.rotate_key()
    keystrata.Keychain.load(saved1, by_id).close()

    b.close()
    with pytest.raises(keystrata.UnavailableError):
        b.rotate_key()
    with pytest.raises(keystrata.UnavailableError):
        b.active_key_version()
    for r in (a, by_id):
        r.close()


def test_other_roots_have_version_1() -> None:
    age = keystrata.AgeRoot.generate()
    assert age.active_key_version() == 1
    assert not hasattr(age, "rotate_key")
