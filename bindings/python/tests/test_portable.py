"""Portable ciphertexts: Keychain.encrypt_portable, keystrata.decrypt_portable
and the roots' decrypt_portable, with the vectors of tests/vectors/portable.json."""

from __future__ import annotations

import struct
import threading
from pathlib import Path
from typing import Any, Dict, List

import pytest

import keystrata
from keystrata import exceptions

from conftest import load_vectors

ERROR_CLASSES: Dict[str, type] = {
    cls.kind: cls
    for cls in (getattr(exceptions, name) for name in exceptions.__all__)
    if cls is not exceptions.Error
}


def root_of(spec: Dict[str, Any]) -> keystrata.Root:
    if "age_identity" in spec:
        return keystrata.AgeRoot(identities=[spec["age_identity"]])
    return keystrata.PassphraseRoot(spec["passphrase"], work_factor=spec["work_factor"])


def test_vectors() -> None:
    v = load_vectors("portable.json")
    assert v["format_version"] == 1
    # One root object per name, its KEK cache kept across cases: a cache
    # must never change an answer.
    roots = {name: root_of(spec) for name, spec in v["roots"].items()}
    n_ok = n_bad = 0
    for c in v["decrypt"]:
        root = roots[c["root"]]
        blob, aad = bytes.fromhex(c["blob_hex"]), bytes.fromhex(c["aad_hex"])
        want = bytes.fromhex(c["plaintext_hex"])
        assert keystrata.decrypt_portable(blob, root, aad) == want, c["comment"]
        assert root.decrypt_portable(memoryview(blob), aad=bytearray(aad)) == want
        # The envelope after the wrapped KEK names the KEK's key_id.
        (n,) = struct.unpack(">I", blob[4:8])
        assert struct.unpack(">I", blob[8 + n + 5 : 8 + n + 9])[0] == c["key_id"]
        n_ok += 1
    for c in v["invalid"]:
        root = roots[c["root"]]
        blob, aad = bytes.fromhex(c["blob_hex"]), bytes.fromhex(c["aad_hex"])
        cls = ERROR_CLASSES[c["error"]]
        assert cls.code == c["error_code"]
        with pytest.raises(keystrata.Error) as e:
            keystrata.decrypt_portable(blob, root, aad)
        assert type(e.value) is cls, f"{c['comment']}: {e.value!r}"
        n_bad += 1
    assert (n_ok, n_bad) == (7, 28)
    c = roots["age"].portable_counters()
    # 6 cases twice; 4 wrapped KEKs unwrapped once each, 6 invalid cases
    # reaching the root (failures are never cached).
    assert c == {"decrypt_ok": 12, "decrypt_failed": 26, "root_calls": 10, "cached_keks": 4}


def test_round_trip_needs_only_the_root_and_calls_it_once_per_kek(tmp_path: Path) -> None:
    root = keystrata.AgeRoot.generate()
    kc = keystrata.Keychain.open(tmp_path / "kc.age", root)
    blobs = [kc.encrypt_portable(b"message %d" % i, b"ctx") for i in range(20)]
    first = kc.primary.key_id
    kc.rotate()
    blobs += [kc.encrypt_portable(b"message %d" % i, b"ctx") for i in range(20, 40)]
    assert kc.counters()["encrypt"] == 40
    # One wrapping per KEK: the first twenty carry the same wrapped bytes.
    (n,) = struct.unpack(">I", blobs[0][4:8])
    assert all(b[: 8 + n] == blobs[0][: 8 + n] for b in blobs[:20])
    assert blobs[20][: 8 + n] != blobs[0][: 8 + n]
    assert struct.unpack(">I", blobs[0][8 + n + 5 : 8 + n + 9])[0] == first
    kc.close()

    # Elsewhere: a root from the identity string, no keychain.
    reader = keystrata.AgeRoot(identities=root.insecure_identity_strings())
    for i, b in enumerate(blobs):
        assert keystrata.decrypt_portable(b, reader, b"ctx") == b"message %d" % i
        if i == 19:
            assert reader.portable_counters()["root_calls"] == 1
    assert reader.portable_counters() == {
        "decrypt_ok": 40,
        "decrypt_failed": 0,
        "root_calls": 2,
        "cached_keks": 2,
    }
    # The inner part is an ordinary envelope for the keychain itself.
    again = keystrata.Keychain.open(tmp_path / "kc.age", root)
    assert again.decrypt(blobs[0][8 + n :], b"ctx") == b"message 0"

    with pytest.raises(keystrata.AuthenticationError) as e:
        reader.decrypt_portable(blobs[0], b"other")
    assert str(e.value) == "ciphertext could not be authenticated"
    with pytest.raises(keystrata.AuthenticationError) as e:
        keystrata.AgeRoot.generate().decrypt_portable(blobs[0], b"ctx")
    assert str(e.value) == "ciphertext could not be authenticated"
    with pytest.raises(keystrata.FormatError):
        reader.decrypt_portable(b"KSP")
    with pytest.raises(keystrata.UnsupportedError):
        reader.decrypt_portable(b"KSP\x02" + blobs[0][4:], b"ctx")
    assert reader.portable_counters()["decrypt_failed"] == 3

    # close() wipes the cache: the closed root cannot unwrap again.
    reader.close()
    assert reader.portable_counters()["cached_keks"] == 0
    with pytest.raises(keystrata.UnavailableError):
        reader.decrypt_portable(blobs[0], b"ctx")


def test_an_unbound_keychain_raises_policy_error(kc: keystrata.Keychain) -> None:
    with pytest.raises(keystrata.PolicyError, match=r"open\(location, root\)"):
        kc.encrypt_portable(b"x")
    assert kc.primary.usage == 0


def test_decrypt_portable_wants_a_root() -> None:
    with pytest.raises(TypeError, match="root must be an AgeRoot"):
        keystrata.decrypt_portable(b"KSP\x01", "not a root")  # type: ignore[arg-type]


def test_a_passphrase_root_and_threads_share_one_unwrap(tmp_path: Path) -> None:
    root = keystrata.PassphraseRoot("pörtable", work_factor=12)
    kc = keystrata.Keychain.open(tmp_path / "kc.age", root)
    blob = kc.encrypt_portable(b"shared", b"")
    reader = keystrata.PassphraseRoot("pörtable", work_factor=12)
    start = threading.Barrier(6)
    results: List[bytes] = []

    def work() -> None:
        start.wait()
        results.append(reader.decrypt_portable(blob))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"shared"] * 6
    assert reader.portable_counters()["root_calls"] == 1


def test_gil_is_released_while_the_root_unwraps(tmp_path: Path) -> None:
    """While one thread unwraps a KEK under a passphrase (scrypt), another
    Python thread runs. Deterministic, not timed: with a switch interval
    far longer than the test, a thread that holds the GIL keeps it until it
    blocks or ends, so the main thread can see the decryption unfinished
    only if the decrypting thread let go of the GIL inside it."""
    import sys

    root = keystrata.PassphraseRoot("pw", work_factor=14)
    kc = keystrata.Keychain.open(tmp_path / "kc.age", root)
    blob = kc.encrypt_portable(b"slow to unwrap")
    reader = keystrata.PassphraseRoot("pw", work_factor=14)
    inside = threading.Event()
    finished = threading.Event()
    got: List[bytes] = []

    def decrypter() -> None:
        inside.set()
        got.append(reader.decrypt_portable(blob))
        finished.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        t = threading.Thread(target=decrypter)
        t.start()
        inside.wait()
        unfinished = not finished.is_set()
    finally:
        sys.setswitchinterval(old)
    t.join()
    assert unfinished, "the GIL was held for the whole unwrap"
    assert got == [b"slow to unwrap"]


@pytest.mark.parametrize("kind", ["pkcs11", "kmip"])
def test_device_roots(kind: str, tmp_path: Path) -> None:
    """Under a root whose key stays in a token or a KMIP server, the wrapped
    KEK is the KSWR form (docs/FORMAT.md §7): a second root object on the
    same device key decrypts; a root on another key is refused by the
    device's own rule (UnknownKeyError: the wrapped KEK names its key)."""
    from test_device_roots import make_kmip, make_pkcs11

    if kind == "pkcs11":
        root: keystrata.Root = make_pkcs11()
        same: keystrata.Root = make_pkcs11(label=root.key_label, create_key=False)
    else:
        root = make_kmip()
        same = make_kmip(key_id=root.key_id)
    other = make_pkcs11() if kind == "pkcs11" else make_kmip()
    try:
        kc = keystrata.Keychain.open(tmp_path / "kc.ks", root)
        blobs = [kc.encrypt_portable(b"on a device %d" % i, b"dev") for i in range(5)]
        assert blobs[0][8:12] == b"KSWR"
        for i, b in enumerate(blobs):
            assert keystrata.decrypt_portable(b, same, b"dev") == b"on a device %d" % i
        assert same.portable_counters()["root_calls"] == 1
        with pytest.raises(keystrata.UnknownKeyError):
            other.decrypt_portable(blobs[0], b"dev")
        with pytest.raises(keystrata.AuthenticationError):
            same.decrypt_portable(blobs[0][:-1] + bytes([blobs[0][-1] ^ 1]), b"dev")
        kc.close()
    finally:
        for r in (root, same, other):
            r.close()
