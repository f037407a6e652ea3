"""Signing through the binding: types, names, errors, events, counters and
the GIL. The rules themselves (which key verifies, what a disabled key
does) are the core's and tested in core/tests/sign.rs; here each one is
checked once for its mapping, and against `cryptography` (OpenSSL), a
verifier keystrata does not share code with."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Tuple

import pytest

import keystrata

from conftest import need_module

ALGORITHMS = ["ed25519", "ecdsa-p256", "ecdsa-secp256k1"]
ECDSA = ["ecdsa-p256", "ecdsa-secp256k1"]
MSG = b"release 1.2.3"


@pytest.fixture
def c() -> SimpleNamespace:
    """cryptography's primitives (skip, or fail under test.sh, without it)."""
    need_module("cryptography")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

    return SimpleNamespace(hashes=hashes, serialization=serialization, ec=ec, ed25519=ed25519, utils=utils)


def their_verify(c: Any, alg: str, pem: bytes, msg: bytes, sig: bytes) -> bool:
    """Whether cryptography verifies `sig` over `msg` with our PEM key."""
    from cryptography.exceptions import InvalidSignature

    pub = c.serialization.load_pem_public_key(pem)
    try:
        if alg == "ed25519":
            pub.verify(sig, msg)
        else:
            pub.verify(sig, msg, c.ec.ECDSA(c.hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_each_algorithm_round_trips_and_openssl_agrees(kc: keystrata.Keychain, c: SimpleNamespace, alg: str) -> None:
    info = kc.rotate_signing(alg)
    assert isinstance(info, keystrata.KeyInfo)
    assert (info.purpose, info.algorithm, info.primary, info.version) == ("sign", alg, True, 1)
    assert kc.primary_for("sign") == info

    sig = kc.sign(MSG)
    assert isinstance(sig, keystrata.Signature)
    assert (sig.key_id, sig.key_version, sig.algorithm) == (info.key_id, 1, alg)
    assert isinstance(sig.bytes, bytes) and bytes(sig) == sig.bytes and len(sig) == len(sig.bytes)
    assert kc.verify(MSG, sig) == info
    for form in (sig.bytes, bytearray(sig.bytes), memoryview(sig.bytes)):
        assert kc.verify(memoryview(MSG), form).key_id == info.key_id
    assert kc.verify_with(info.key_id, MSG, sig) == info

    pem = kc.public_key(info.key_id)
    assert pem == kc.public_key(info.key_id, "pem")
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert their_verify(c, alg, pem, MSG, sig.bytes)
    assert not their_verify(c, alg, pem, b"another message", sig.bytes)

    # The other public-key formats are the same key as cryptography writes it.
    pub = c.serialization.load_pem_public_key(pem)
    E, P = c.serialization.Encoding, c.serialization.PublicFormat
    assert kc.public_key(info.key_id, "der") == pub.public_bytes(E.DER, P.SubjectPublicKeyInfo)
    raw = kc.public_key(info.key_id, "raw")
    if alg == "ed25519":
        assert isinstance(pub, c.ed25519.Ed25519PublicKey)
        assert raw == pub.public_bytes(E.Raw, P.Raw) and len(raw) == 32
        assert len(sig) == 64
        assert kc.public_key(info.key_id, "minisign").startswith(b"untrusted comment: minisign public key ")
    else:
        curve = c.ec.SECP256R1 if alg == "ecdsa-p256" else c.ec.SECP256K1
        assert isinstance(pub.curve, curve)
        assert raw == pub.public_bytes(E.X962, P.UncompressedPoint) and len(raw) == 65
        assert 8 <= len(sig) <= 72 and sig.bytes[0] == 0x30  # DER SEQUENCE
        with pytest.raises(keystrata.UnsupportedError):
            kc.public_key(info.key_id, "minisign")
    keystrata.verify_signature(alg, raw, MSG, sig)
    keystrata.verify_signature(alg, bytearray(raw), MSG, sig.bytes)


@pytest.mark.parametrize("alg", ECDSA)
def test_raw_signatures_are_r_and_s(kc: keystrata.Keychain, c: SimpleNamespace, alg: str) -> None:
    info = kc.rotate_signing(alg)
    raw = kc.sign(MSG, "raw")
    assert len(raw) == 64 and len(raw.bytes) == 64
    assert kc.sign(MSG, format="der").bytes[0] == 0x30
    assert kc.verify(MSG, raw).key_id == info.key_id
    # r ‖ s, big-endian: re-encoded as DER, OpenSSL verifies it.
    r, s = int.from_bytes(raw.bytes[:32], "big"), int.from_bytes(raw.bytes[32:], "big")
    der = c.utils.encode_dss_signature(r, s)
    assert their_verify(c, alg, kc.public_key(info.key_id), MSG, der)


def test_ed25519_ignores_the_signature_format(kc: keystrata.Keychain) -> None:
    kc.rotate_signing("ed25519")
    assert len(kc.sign(MSG, "raw")) == len(kc.sign(MSG, "der")) == 64


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_we_verify_what_cryptography_signs(c: SimpleNamespace, alg: str) -> None:
    E, P = c.serialization.Encoding, c.serialization.PublicFormat
    if alg == "ed25519":
        key = c.ed25519.Ed25519PrivateKey.generate()
        sig = key.sign(MSG)
        raw = key.public_key().public_bytes(E.Raw, P.Raw)
        forms = [sig]
    else:
        curve = c.ec.SECP256R1() if alg == "ecdsa-p256" else c.ec.SECP256K1()
        key = c.ec.generate_private_key(curve)
        sig = key.sign(MSG, c.ec.ECDSA(c.hashes.SHA256()))
        raw = key.public_key().public_bytes(E.X962, P.UncompressedPoint)
        r, s = c.utils.decode_dss_signature(sig)
        forms = [sig, r.to_bytes(32, "big") + s.to_bytes(32, "big")]
    for form in forms:
        assert keystrata.verify_signature(alg, raw, MSG, form) is None
        with pytest.raises(keystrata.AuthenticationError):
            keystrata.verify_signature(alg, raw, MSG + b"!", form)
        bad = bytearray(form)
        bad[-1] ^= 1
        with pytest.raises(keystrata.AuthenticationError):
            keystrata.verify_signature(alg, raw, MSG, bad)
    # Not a public key of `alg`.
    with pytest.raises(keystrata.InvalidInputError):
        keystrata.verify_signature(alg, raw[:-1], MSG, sig)


@pytest.mark.parametrize("alg", ECDSA)
def test_sign_digest(kc: keystrata.Keychain, c: SimpleNamespace, alg: str) -> None:
    info = kc.rotate_signing(alg)
    digest = hashlib.sha256(MSG).digest()
    sig = kc.sign_digest(digest)
    assert (sig.key_id, sig.algorithm) == (info.key_id, alg)
    # A digest signature is a signature of the message.
    assert their_verify(c, alg, kc.public_key(info.key_id), MSG, sig.bytes)
    assert kc.verify(MSG, sig) == info
    assert kc.verify_digest(digest, sig) == info
    assert kc.verify_digest(bytearray(digest), kc.sign(MSG, "raw")) == info
    assert len(kc.sign_digest(memoryview(digest), format="raw")) == 64
    with pytest.raises(keystrata.AuthenticationError):
        kc.verify_digest(hashlib.sha256(b"other").digest(), sig)
    with pytest.raises(keystrata.InvalidInputError):
        kc.sign_digest(digest[:31])
    with pytest.raises(keystrata.InvalidInputError):
        kc.verify_digest(digest + b"\0", sig)


def test_sign_digest_needs_ecdsa(kc: keystrata.Keychain) -> None:
    kc.rotate_signing("ed25519")
    with pytest.raises(keystrata.UnsupportedError):
        kc.sign_digest(bytes(32))


def test_unknown_names_are_invalid_input(kc: keystrata.Keychain) -> None:
    for call in (
        lambda: kc.rotate_signing("rsa"),
        lambda: kc.add_signing_key("Ed25519"),
        lambda: keystrata.verify_signature("ecdsa", bytes(65), MSG, bytes(64)),
    ):
        with pytest.raises(keystrata.InvalidInputError) as e:
            call()
        # The message lists the names the core knows.
        assert '"ed25519" or "ecdsa-p256" or "ecdsa-secp256k1"' in str(e.value)
    info = kc.rotate_signing("ecdsa-p256")
    with pytest.raises(keystrata.InvalidInputError, match='"der" or "raw"'):
        kc.sign(MSG, "pem")
    with pytest.raises(keystrata.InvalidInputError, match='"der" or "raw"'):
        kc.sign_digest(bytes(32), format="p1363")
    with pytest.raises(keystrata.InvalidInputError, match='"pem" or "der" or "raw" or "minisign"'):
        kc.public_key(info.key_id, "jwk")
    with pytest.raises(keystrata.InvalidInputError):
        kc.add_key("sign")  # a signing key needs an algorithm
    with pytest.raises(keystrata.InvalidInputError):
        kc.primary_for("signing")


def test_wrong_types_are_type_errors(kc: keystrata.Keychain) -> None:
    kc.rotate_signing("ed25519")
    with pytest.raises(TypeError):
        kc.sign("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Signature or a bytes-like object, not int"):
        kc.verify(MSG, 7)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kc.rotate_signing(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keystrata.verify_signature("ed25519", "key", MSG, bytes(64))  # type: ignore[arg-type]


def test_no_signing_key(kc: keystrata.Keychain) -> None:
    with pytest.raises(keystrata.UnknownKeyError):
        kc.sign(MSG)
    with pytest.raises(keystrata.UnknownKeyError):
        kc.sign_digest(bytes(32))
    with pytest.raises(keystrata.UnknownKeyError):
        kc.verify(MSG, bytes(64))
    with pytest.raises(keystrata.UnknownKeyError):
        kc.primary_for("sign")
    # An encryption key is not a signing key.
    with pytest.raises(keystrata.UnknownKeyError):
        kc.public_key(kc.primary.key_id)
    with pytest.raises(keystrata.UnknownKeyError):
        kc.verify_with(kc.primary.key_id, MSG, bytes(64))
    assert all(k.algorithm is None for k in kc.keys())


def test_rotation_disable_and_destroy(kc: keystrata.Keychain) -> None:
    v1 = kc.rotate_signing("ecdsa-p256")
    old = kc.sign(MSG)
    v2 = kc.rotate_signing("ed25519")
    new = kc.sign(MSG)
    assert (new.key_id, new.key_version, new.algorithm) == (v2.key_id, 2, "ed25519")
    assert kc.verify(MSG, old).key_id == v1.key_id  # old signatures keep verifying
    assert kc.verify(MSG, new).key_id == v2.key_id
    with pytest.raises(keystrata.PolicyError):
        kc.disable(v2.key_id)  # the signing primary
    kc.disable(v1.key_id)
    assert [k.status for k in kc.keys() if k.purpose == "sign"] == ["disabled", "enabled"]
    with pytest.raises(keystrata.AuthenticationError):
        kc.verify(MSG, old)
    with pytest.raises(keystrata.KeyDisabledError):
        kc.verify_with(v1.key_id, MSG, old)
    with pytest.raises(keystrata.AuthenticationError):
        kc.verify_with(v2.key_id, MSG, old)
    kc.public_key(v1.key_id)  # still there, to publish a revocation
    kc.destroy(v1.key_id)
    with pytest.raises(keystrata.KeyDestroyedError):
        kc.public_key(v1.key_id)
    with pytest.raises(keystrata.KeyDestroyedError):
        kc.verify_with(v1.key_id, MSG, old)

    # Two-phase rotation: add, publish, promote.
    v3 = kc.add_signing_key("ecdsa-secp256k1")
    assert (v3.purpose, v3.algorithm, v3.primary, v3.version) == ("sign", "ecdsa-secp256k1", False, 3)
    assert kc.sign(MSG).key_id == v2.key_id
    assert kc.promote(v3.key_id).primary
    assert kc.sign(MSG).key_id == v3.key_id
    assert kc.primary_for("sign").key_id == v3.key_id
    # The other purposes are untouched.
    assert kc.primary.purpose == "encrypt" and kc.primary.algorithm is None


def test_signing_keys_survive_save_and_load(kc: keystrata.Keychain, age_root: keystrata.AgeRoot) -> None:
    info = kc.rotate_signing("ecdsa-p256")
    sig = kc.sign(MSG)
    again = keystrata.Keychain.load(kc.save(age_root), age_root)
    assert again.verify(MSG, sig) == info
    assert again.public_key(info.key_id) == kc.public_key(info.key_id)


def test_signature_value_type(kc: keystrata.Keychain) -> None:
    kc.rotate_signing("ecdsa-p256")
    a = kc.sign(MSG, "raw")
    b = kc.sign(MSG, "raw")
    assert a == a and a != b  # ECDSA signatures are randomized
    assert a != a.bytes  # a Signature is not its bytes
    assert len({a, a, b}) == 2
    r = repr(a)
    assert r == f"Signature(key_id={a.key_id}, key_version=1, algorithm='ecdsa-p256', bytes=<64 bytes>)"
    assert a.bytes.hex() not in r and repr(a.bytes) not in r
    with pytest.raises(AttributeError):
        a.key_id = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.bytes = b""  # type: ignore[misc]
    with pytest.raises(TypeError):
        keystrata.Signature()  # type: ignore[call-arg]
    assert type(a).__module__ == "keystrata"


def test_events_carry_algorithm_and_digest(kc: keystrata.Keychain) -> None:
    info = kc.rotate_signing("ecdsa-secp256k1")
    events: List[keystrata.Event] = []
    kc.subscribe(events.append)

    sig = kc.sign(MSG)
    digest = hashlib.sha256(b"prehashed").digest()
    kc.sign_digest(digest)
    kc.verify(MSG, sig)  # success: no event
    with pytest.raises(keystrata.AuthenticationError):
        kc.verify(b"tampered", sig)
    assert [e.kind for e in events] == ["signed", "signed", "verify_failed"]

    signed, by_digest, failed = events
    assert (signed.key_id, signed.key_version, signed.purpose) == (info.key_id, 1, "sign")
    assert signed.algorithm == "ecdsa-secp256k1" and signed.error is None
    assert signed.digest == hashlib.sha256(MSG).digest() and isinstance(signed.digest, bytes)
    assert by_digest.digest == digest
    assert failed.error == "Authentication" and failed.purpose == "sign"
    assert failed.digest == hashlib.sha256(b"tampered").digest()
    assert repr(signed) == (
        f"Event(kind='signed', key_id={info.key_id}, key_version=1, purpose='sign', automatic=False, "
        f"error=None, algorithm='ecdsa-secp256k1', digest=bytes.fromhex('{signed.digest.hex()}'))"
    )
    # The repr round-trips its digest.
    assert eval(repr(signed).split("digest=", 1)[1][:-1]) == signed.digest
    # Events of other kinds have neither.
    kc.rotate()
    assert all(e.algorithm is None and e.digest is None for e in events[3:])
    assert "algorithm" not in repr(events[-1]) and "digest" not in repr(events[-1])


def test_counters(kc: keystrata.Keychain) -> None:
    kc.rotate_signing("ed25519")
    before = kc.counters()
    sig = kc.sign(MSG)
    kc.sign(b"two")
    kc.verify(MSG, sig)
    for _ in range(3):
        with pytest.raises(keystrata.AuthenticationError):
            kc.verify(b"other", sig)
    c = kc.counters()
    assert c["sign"] - before["sign"] == 2
    assert c["verify_ok"] - before["verify_ok"] == 1
    assert c["verify_failed"] - before["verify_failed"] == 3
    assert c["errors"]["Authentication"] - before["errors"]["Authentication"] == 3
    assert all(isinstance(c[k], int) for k in ("sign", "verify_ok", "verify_failed"))  # type: ignore[literal-required]


def test_many_threads_sign_and_verify_at_once() -> None:
    kc = keystrata.Keychain.generate()
    keys = {alg: kc.add_signing_key(alg) for alg in ALGORITHMS}
    kc.promote(keys["ecdsa-p256"].key_id)
    threads, per_thread = 8, 40
    start = threading.Barrier(threads)
    results: List[Tuple[bytes, keystrata.Signature]] = []
    errors: List[BaseException] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        mine = []
        try:
            start.wait()
            for i in range(per_thread):
                msg = b"thread %d message %d" % (t, i)
                sig = kc.sign(msg, "raw" if i % 2 else "der")
                assert kc.verify(msg, sig).key_id == sig.key_id
                mine.append((msg, sig))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        with lock:
            results.extend(mine)

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    assert len(results) == threads * per_thread
    raw = kc.public_key(keys["ecdsa-p256"].key_id, "raw")
    for msg, sig in results:
        keystrata.verify_signature("ecdsa-p256", raw, msg, sig)
    c = kc.counters()
    assert c["sign"] == c["verify_ok"] == threads * per_thread


def gil_released(work: Callable[[], object], budget: float = 3.0) -> bool:
    """Whether `work` lets go of the GIL. Not timed on success: with a
    switch interval far longer than the test (as in test_threads.py), a
    thread that holds the GIL keeps it until it blocks or ends. A worker
    calls `work` in a loop until the main thread runs (or `budget` seconds
    pass); the main thread can only run, and find the worker unfinished,
    if `work` released the GIL. Many calls rather than one: a short call
    can end before the main thread is scheduled on a busy machine."""
    inside = threading.Event()
    seen = threading.Event()
    finished = threading.Event()

    def worker() -> None:
        inside.set()
        end = time.monotonic() + budget
        while not seen.is_set() and time.monotonic() < end:
            work()
        finished.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        t = threading.Thread(target=worker)
        t.start()
        inside.wait()
        # Here the main thread holds the GIL again; had every call kept it,
        # the worker would have run out its budget first.
        unfinished = not finished.is_set()
        seen.set()
    finally:
        sys.setswitchinterval(old)
    t.join()
    return unfinished


def test_signing_releases_the_gil() -> None:
    kc = keystrata.Keychain.generate()
    info = kc.rotate_signing("ecdsa-p256")
    sig = kc.sign(MSG)
    raw = kc.public_key(info.key_id, "raw")
    digest = hashlib.sha256(MSG).digest()
    calls: Dict[str, Callable[[], object]] = {
        "sign": lambda: kc.sign(MSG),
        "sign_digest": lambda: kc.sign_digest(digest),
        "verify": lambda: kc.verify(MSG, sig),
        "verify_with": lambda: kc.verify_with(info.key_id, MSG, sig),
        "verify_digest": lambda: kc.verify_digest(digest, sig),
        "verify_signature": lambda: keystrata.verify_signature("ecdsa-p256", raw, MSG, sig),
        "rotate_signing": lambda: kc.rotate_signing("ed25519"),
    }
    held = [name for name, work in calls.items() if not gil_released(work)]
    assert held == [], f"these held the GIL throughout: {held}"
