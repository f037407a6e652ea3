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
    """WRITERS threads seal and encrypt PER_WRITER messages each while one
    thread calls `rotator`. Deterministic whatever the scheduling: every
    writer waits at its halfway point until the rotator has run at least
    once since that writer started, and the rotator runs at least twice,
    so every writer straddles a rotation even on a saturated machine."""
    out: List[Tuple[bytes, bytes, bytes]] = []
    errors: List[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(WRITERS + 1)
    done = threading.Event()
    rotated = threading.Condition()
    rotations = [0]

    def writer(w: int) -> None:
        mine = []
        try:
            start.wait()
            with rotated:
                seen = rotations[0]
            for i in range(PER_WRITER):
                if i == PER_WRITER // 2:
                    with rotated:
                        if not rotated.wait_for(lambda: rotations[0] > seen or bool(errors), timeout=300):
                            raise AssertionError("the rotator never ran")
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
            while not done.is_set() or rotations[0] < 2:
                rotator()
                with rotated:
                    rotations[0] += 1
                    rotated.notify_all()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            with rotated:
                rotated.notify_all()

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
    # A few manual rotations only (run_writers makes at least two, each one
    # in step with the writers): 3,200 encryptions under a limit of 97 per
    # key then need automatic rotations whatever the scheduling. (A rotator
    # looping freely could keep every key under its limit on a loaded
    # machine, and no automatic rotation would happen.)
    manual = [0]

    def rotate_a_few() -> None:
        if manual[0] < 3:
            kc.rotate()
            manual[0] += 1

    results, errors = run_writers(kc, rotate_a_few, lambda w, i: b"%d/%d" % (w, i))
    assert errors == []
    assert len(results) == WRITERS * PER_WRITER
    assert sum(1 for e in auto if not e.automatic) == manual[0] >= 2
    assert sum(1 for e in auto if e.automatic) >= WRITERS * PER_WRITER // 97 - manual[0]
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
    """While one thread saves under a passphrase (scrypt), another Python
    thread runs. Deterministic, not timed: with a switch interval far longer
    than the test, a thread that holds the GIL keeps it until it blocks or
    ends. The main thread can only observe the save unfinished if the saver
    let go of the GIL inside the save."""
    import sys

    root = keystrata.PassphraseRoot("pw", work_factor=14)
    kc = keystrata.Keychain.generate()
    inside = threading.Event()
    finished = threading.Event()

    def saver() -> None:
        inside.set()
        kc.save(root)
        finished.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        t = threading.Thread(target=saver)
        t.start()
        inside.wait()
        # Here the main thread holds the GIL again. Had the saver kept it
        # through the save, it would have finished (and set `finished`)
        # before letting the main thread run.
        unfinished = not finished.is_set()
    finally:
        sys.setswitchinterval(old)
    t.join()
    assert unfinished, "the GIL was held for the whole scrypt"
    assert finished.is_set()