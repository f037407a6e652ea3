"""Sharing a keychain between threads, and releasing the GIL."""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import keystrata

WRITERS = 8
PER_WRITER = 400


def run_writers(
    kc: keystrata.Keychain, rotator: Callable[[], None], payload: Callable[[int, int], bytes]
) -> Tuple[List[Tuple[bytes, bytes, bytes]], List[BaseException]]:
    out: List[Tuple[bytes, bytes, bytes]] = []
    errors: List[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(WRITERS + 1)
    done = threading.Event()

    def writer(w: int) -> None:
        mine = []
        try:
            start.wait()
            for i in range(PER_WRITER):
                pt = payload(w, i)
                aad = b"w%d" % w
                if i % 2:
                    mine.append((kc.seal(pt, aad), aad, pt))
                else:
                    mine.append((b"E" + kc.encrypt(pt, aad), aad, pt))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        with lock:
            out.extend(mine)

    def rotate_loop() -> None:
        try:
            start.wait()
            while not done.is_set():
                rotator()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    writers = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    rot = threading.Thread(target=rotate_loop)
    for t in writers + [rot]:
        t.start()
    for t in writers:
        t.join()
    done.set()
    rot.join()
    return out, errors


def check_all(kc: keystrata.Keychain, results: List[Tuple[bytes, bytes, bytes]]) -> None:
    for ct, aad, pt in results:
        if ct[:1] == b"E":
            assert kc.decrypt(ct[1:], aad) == pt
        else:
            assert kc.unseal(ct, aad) == pt


def test_eight_threads_seal_while_one_rotates(age_root: keystrata.AgeRoot) -> None:
    kc = keystrata.Keychain.generate()
    # Small and large payloads: the large ones release the GIL.
    results, errors = run_writers(
        kc, lambda: (kc.rotate(), time.sleep(0.0005)), lambda w, i: os.urandom(8 if i % 3 else 5000)
    )
    assert errors == []
    assert len(results) == WRITERS * PER_WRITER
    c = kc.counters()
    assert c["seal"] + c["encrypt"] == WRITERS * PER_WRITER
    assert c["rotations"] > 1
    check_all(kc, results)
    # Nothing is lost by saving either.
    check_all(keystrata.Keychain.load(kc.save(age_root), age_root), results)
    keys = kc.keys()
    assert sum(k.usage for k in keys if k.purpose == "encrypt") == WRITERS * PER_WRITER
    assert len({k.key_id for k in keys}) == len(keys)


def test_bound_keychain_rotates_by_itself_under_load(age_root: keystrata.AgeRoot, tmp_path: Path) -> None:
    path = tmp_path / "bound.age"
    kc = keystrata.Keychain.open(path, age_root, keystrata.Policy(max_encryptions_per_key=97, usage_block=13))
    auto: List[keystrata.Event] = []
    kc.subscribe(lambda e: auto.append(e) if e.kind == "key_rotated" else None)
    results, errors = run_writers(kc, lambda: (kc.rotate(), time.sleep(0.01)), lambda w, i: b"%d/%d" % (w, i))
    assert errors == []
    assert len(results) == WRITERS * PER_WRITER
    assert any(e.automatic for e in auto) and any(not e.automatic for e in auto)
    # Every key that encrypted anything reached the file before its first
    # ciphertext left the library.
    check_all(keystrata.Keychain.load_file(path, age_root), results)
    # No key encrypted more than the policy allows. (KeyInfo.usage may read
    # slightly higher: the core counts refused attempts too.)
    per_key: Dict[int, int] = {}
    for ct, _, _ in results:
        kid = struct.unpack(">I", ct[6:10] if ct[:1] == b"E" else ct[1:5])[0]
        per_key[kid] = per_key.get(kid, 0) + 1
    assert max(per_key.values()) <= 97
    assert len(per_key) >= WRITERS * PER_WRITER // 97


def test_gil_is_released_during_scrypt() -> None:
    """While one thread saves under a passphrase (scrypt), another thread
    keeps running Python code."""
    root = keystrata.PassphraseRoot("pw", work_factor=16)
    kc = keystrata.Keychain.generate()
    inside = threading.Event()
    finished = threading.Event()
    spans: List[float] = []

    def saver() -> None:
        t0 = time.perf_counter()
        inside.set()
        kc.save(root)
        spans.append(time.perf_counter() - t0)
        finished.set()

    t = threading.Thread(target=saver)
    t.start()
    inside.wait()
    first = last = time.perf_counter()
    while not finished.is_set():
        last = time.perf_counter()
    t.join()
    # With the GIL held for the whole scrypt, this thread could only have
    # run for one switch interval (5 ms); it ran for most of the save.
    assert spans[0] > 0.02, "scrypt too fast to measure"
    assert last - first > 0.5 * spans[0]
