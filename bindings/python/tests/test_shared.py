"""Shared keychains (issue 12): one keychain file used by several handles
and processes at once, through the public API only.

Every test records what each handle or process made (ciphertexts with
their aad and plaintext, and every encryption rotation its events reported)
and then checks it against a fresh handle loaded from the file:

- every ciphertext decrypts to its plaintext (nothing lost);
- every key any handle or process rotated to is in the file;
- the file holds exactly 1 + (rotations reported) encryption keys and one
  derivation key (no rotation lost, none made twice);
- each key records at least as much usage as there are ciphertexts under it;
- with a small policy, no key carries more ciphertexts than its maximum: a
  usage count owned twice (a forked child using its parent's block) shows
  as such an excess.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

import keystrata

SMALL_MAX = 40
SMALL_BLOCK = 4


@dataclass
class Record:
    """One thing a handle made: S (seal), E (encrypt) or W (wrap_key)."""

    kind: str
    key_id: int
    aad: bytes
    plaintext: bytes
    ciphertext: bytes
    key_version: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "key_id": self.key_id,
                "aad": self.aad.hex(),
                "plaintext": self.plaintext.hex(),
                "ciphertext": self.ciphertext.hex(),
                "key_version": self.key_version,
            }
        )

    @staticmethod
    def from_json(line: str) -> "Record":
        o = json.loads(line)
        return Record(
            o["kind"],
            o["key_id"],
            bytes.fromhex(o["aad"]),
            bytes.fromhex(o["plaintext"]),
            bytes.fromhex(o["ciphertext"]),
            o["key_version"],
        )


@dataclass
class Actor:
    """A handle's (or process's) records and the rotations its events reported."""

    name: str
    records: List[Record] = field(default_factory=list)
    rotations: List[Tuple[int, bool]] = field(default_factory=list)
    seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_event(self, e: keystrata.Event) -> None:
        if e.kind == "key_rotated" and e.purpose == "encrypt":
            assert e.key_id is not None
            with self.lock:
                self.rotations.append((e.key_id, e.automatic))

    def listen(self, kc: keystrata.Keychain) -> None:
        kc.subscribe(self.on_event)

    def op(self, kc: keystrata.Keychain, which: int) -> int:
        """Seals, encrypts or wraps (by which % 3); records it; returns the key_id."""
        with self.lock:
            seq = self.seq
            self.seq += 1
        pt = b"%s/%d" % (self.name.encode(), seq)
        aad = b"aad:%s:%d" % (self.name.encode(), seq)
        w = which % 3
        if w == 0:
            ct = kc.seal(pt, aad)
            rec = Record("S", struct.unpack(">I", ct[1:5])[0], aad, pt, ct)
        elif w == 1:
            ct = kc.encrypt(pt, aad)
            rec = Record("E", struct.unpack(">I", ct[5:9])[0], aad, pt, ct)
        else:
            dek = (pt * 4)[:32].ljust(32, b"\0")
            env = kc.wrap_key(dek, aad)
            assert env.key_id == str(struct.unpack(">I", env.ciphertext[1:5])[0])
            rec = Record("W", int(env.key_id), aad, dek, env.ciphertext, env.key_version)
        with self.lock:
            self.records.append(rec)
        return rec.key_id

    def dump(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for r in self.records:
                f.write(r.to_json() + "\n")
            for key_id, automatic in self.rotations:
                f.write(json.dumps({"rotation": key_id, "automatic": automatic}) + "\n")


def load_actor(path: Path) -> Actor:
    a = Actor(path.stem)
    with open(path, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            if "rotation" in o:
                a.rotations.append((o["rotation"], o["automatic"]))
            else:
                a.records.append(Record.from_json(line))
    return a


@dataclass
class Verdict:
    ciphertexts: int
    rotations: int
    automatic: int
    keys: int
    per_key: Dict[int, int]


def verify(path: Path, root: keystrata.AgeRoot, actors: List[Actor], max_per_key: Optional[int] = None) -> Verdict:
    """Checks every actor's records against a fresh handle loaded from path."""
    fresh = keystrata.Keychain.load_file(path, root)
    keys = {k.key_id: k for k in fresh.keys()}
    lost = []
    per_key: Counter[int] = Counter()
    for a in actors:
        for r in a.records:
            per_key[r.key_id] += 1
            try:
                if r.kind == "S":
                    got = fresh.unseal(r.ciphertext, r.aad)
                elif r.kind == "E":
                    got = fresh.decrypt(r.ciphertext, r.aad)
                else:
                    env = keystrata.Envelope(str(r.key_id), r.key_version, "keystrata", r.ciphertext)
                    got = fresh.unwrap_key(env, r.aad)
                if got != r.plaintext:
                    lost.append((a.name, r.kind, r.key_id, "wrong plaintext"))
            except keystrata.Error as e:
                lost.append((a.name, r.kind, r.key_id, f"{e.kind}: {e}"))
    assert not lost, f"{len(lost)} ciphertexts lost, first: {lost[:5]}"
    rotated = [key_id for a in actors for key_id, _ in a.rotations]
    missing = [k for k in rotated if k not in keys]
    assert not missing, f"rotated-to keys missing from the file: {missing}"
    enc = [k for k in keys.values() if k.purpose == "encrypt"]
    der = [k for k in keys.values() if k.purpose == "derive"]
    assert len(enc) == 1 + len(rotated) and len(der) == 1, (
        f"{len(enc)} encryption keys in the file, {len(rotated)} rotations reported; {len(der)} derivation keys"
    )
    for key_id, n in per_key.items():
        assert key_id in keys, f"key {key_id} of {n} ciphertexts is not in the file"
        assert keys[key_id].usage >= n, f"key {key_id} records usage {keys[key_id].usage} < {n} ciphertexts"
        if max_per_key is not None:
            assert n <= max_per_key, (
                f"key {key_id} (v{keys[key_id].version}) has {n} ciphertexts, over the limit of "
                f"{max_per_key}: a usage count was owned twice"
            )
    fresh.close()
    return Verdict(
        ciphertexts=sum(per_key.values()),
        rotations=len(rotated),
        automatic=sum(1 for a in actors for _, auto in a.rotations if auto),
        keys=len(keys),
        per_key=dict(per_key),
    )


@pytest.fixture
def keychain_path(tmp_path: Path) -> Path:
    return tmp_path / "keychain.age"


# --- two handles in one process ------------------------------------------------


def test_two_handles_one_rotates_the_other_keeps_working(age_root: keystrata.AgeRoot, keychain_path: Path) -> None:
    policy = keystrata.Policy(usage_block=4)
    h1 = keystrata.Keychain.open(keychain_path, age_root, policy)
    h2 = keystrata.Keychain.open(keychain_path, age_root, policy)
    a1, a2 = Actor("h1"), Actor("h2")
    a1.listen(h1)
    a2.listen(h2)
    op = 0
    for _ in range(12):
        h1.rotate()
        # h2 has not reloaded: its writes (new usage blocks) must not
        # overwrite the rotation.
        for _ in range(10):
            a2.op(h2, op)
            op += 1
        a1.op(h1, op)
        op += 1
    # h2 uses h1's newest primary (its next block reservation reads the
    # latest state); polled with a deadline, never a fixed sleep.
    newest = h1.primary.key_id
    deadline = time.monotonic() + 60
    while a2.op(h2, op) != newest and time.monotonic() < deadline:
        op += 1
    assert a2.records[-1].key_id == newest
    # And h1 reads what h2 made under any key, at once.
    for r in a2.records:
        if r.kind == "S":
            assert h1.unseal(r.ciphertext, r.aad) == r.plaintext
    h1.close()
    h2.close()
    v = verify(keychain_path, age_root, [a1, a2])
    assert v.rotations == 12 and v.ciphertexts > 120


def test_two_handles_rotating_from_threads_keep_every_key(age_root: keystrata.AgeRoot, keychain_path: Path) -> None:
    policy = keystrata.Policy(max_encryptions_per_key=SMALL_MAX, usage_block=SMALL_BLOCK)
    handles = [keystrata.Keychain.open(keychain_path, age_root, policy) for _ in range(2)]
    actors = [Actor("t0"), Actor("t1")]
    for h, a in zip(handles, actors):
        a.listen(h)
    errors: List[BaseException] = []
    start = threading.Barrier(2)

    def work(h: keystrata.Keychain, a: Actor, every: int) -> None:
        try:
            start.wait()
            for i in range(150):
                if i % every == every - 1:
                    h.rotate()
                a.op(h, i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(h, a, e)) for h, a, e in zip(handles, actors, (15, 25))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    for h in handles:
        h.close()
    v = verify(keychain_path, age_root, actors, SMALL_MAX)
    manual = v.rotations - v.automatic
    assert manual == 150 // 15 + 150 // 25
    assert v.ciphertexts == 300


# --- parent and children after fork() ---------------------------------------------


ChildBody = Callable[[], None]


def run_child(body: ChildBody) -> int:
    """Forks; the child runs body and leaves with os._exit (never returning
    into pytest). Returns the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException:  # noqa: BLE001 - the child reports and exits
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def reap(pid: int, deadline: float) -> int:
    """The exit status of pid, waiting until deadline; killed after that."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return -9
        time.sleep(0.01)


FORK_OPS = 150


def test_forked_children_lose_nothing_and_never_exceed_the_limit(
    age_root: keystrata.AgeRoot, keychain_path: Path, tmp_path: Path
) -> None:
    policy = keystrata.Policy(max_encryptions_per_key=SMALL_MAX, usage_block=SMALL_BLOCK)
    kc = keystrata.Keychain.open(keychain_path, age_root, policy)
    parent = Actor("parent")
    parent.listen(kc)
    out = tmp_path / "records"
    out.mkdir()

    def loop(a: Actor, rotate_at: int) -> None:
        for i in range(FORK_OPS):
            if i == rotate_at:
                kc.rotate()
            a.op(kc, i)

    pids = []
    for c in range(3):
        # Fork while the parent holds a partly used block.
        for i in range(2 + 5 * c):
            parent.op(kc, i)

        def child(c: int = c) -> None:
            # The same handle, inherited through fork; the parent's actor
            # (and its subscription) too: start it afresh.
            parent.records.clear()
            parent.rotations.clear()
            parent.name = f"child{c}"
            loop(parent, 40 + 30 * c)
            parent.dump(out / f"child{c}.jsonl")

        pids.append(run_child(child))
    loop(parent, 100)
    deadline = time.monotonic() + 180
    assert [reap(p, deadline) for p in pids] == [0, 0, 0]
    kc.close()
    actors = [parent] + [load_actor(out / f"child{c}.jsonl") for c in range(3)]
    v = verify(keychain_path, age_root, actors, SMALL_MAX)
    assert v.ciphertexts == 4 * FORK_OPS + 2 + 7 + 12
    assert v.rotations - v.automatic == 4
    # The limit made keys by itself, and several reached it.
    assert v.automatic >= v.ciphertexts // SMALL_MAX // 2


# A multiprocessing 'fork' pool: the workers inherit this handle.
POOL_KC: Optional[keystrata.Keychain] = None
POOL_ACTOR: Optional[Actor] = None


def pool_task(task: int) -> str:
    """Runs in a pool worker: 40 operations on the inherited handle, a
    rotation in every third task; returns the records as JSON lines."""
    assert POOL_KC is not None and POOL_ACTOR is not None
    a = POOL_ACTOR
    a.records.clear()
    a.rotations.clear()
    a.name = f"pool{os.getpid()}-{task}"
    for i in range(40):
        if task % 3 == 0 and i == 20:
            POOL_KC.rotate()
        a.op(POOL_KC, i + task)
    lines = [r.to_json() for r in a.records]
    lines += [json.dumps({"rotation": k, "automatic": auto}) for k, auto in a.rotations]
    return "\n".join(lines)


def test_multiprocessing_fork_pool_shares_the_handle(
    age_root: keystrata.AgeRoot, keychain_path: Path, tmp_path: Path
) -> None:
    global POOL_KC, POOL_ACTOR
    policy = keystrata.Policy(max_encryptions_per_key=SMALL_MAX, usage_block=SMALL_BLOCK)
    POOL_KC = keystrata.Keychain.open(keychain_path, age_root, policy)
    POOL_ACTOR = Actor("pool-parent")
    POOL_ACTOR.listen(POOL_KC)
    parent = POOL_ACTOR
    for i in range(3):
        parent.op(POOL_KC, i)  # a partly used block at fork time
    actors = []
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        pending = pool.map_async(pool_task, range(12))
        # The parent keeps working on the same handle meanwhile.
        own = Actor("parent-during-pool")
        own.listen(POOL_KC)
        for i in range(60):
            if i == 30:
                POOL_KC.rotate()
            own.op(POOL_KC, i)
        results = pending.get(timeout=300)
    for n, text in enumerate(results):
        p = tmp_path / f"pool-{n}.jsonl"
        p.write_text(text + "\n", encoding="utf-8")
        actors.append(load_actor(p))
    # The parent's two actors both listen to the parent's handle: count its
    # rotations once.
    own.rotations.clear()
    POOL_KC.close()
    v = verify(keychain_path, age_root, [parent, own] + actors, SMALL_MAX)
    assert v.ciphertexts == 3 + 60 + 12 * 40
    assert v.rotations - v.automatic == 1 + 4
    POOL_KC = None
    POOL_ACTOR = None


# --- an encrypt-only process while another rotates ------------------------------------------

ENCRYPT_ONLY = r"""
import json, os, select, struct, sys, time
import keystrata
root = keystrata.AgeRoot(identities=[os.environ["KS_TEST_IDENTITY"]])
kc = keystrata.Keychain.open(sys.argv[1], root)
end = time.monotonic() + 120
n = 0
# Until stdin closes (checked between operations), at most 120 s.
while time.monotonic() < end and n < 200000:
    if select.select([0], [], [], 0)[0] and os.read(0, 1) == b"":
        break
    pt = b"only/%d" % n
    aad = b"eo%d" % n
    if n % 2:
        ct = kc.seal(pt, aad)
        key_id = struct.unpack(">I", ct[1:5])[0]
    else:
        ct = kc.encrypt(pt, aad)
        key_id = struct.unpack(">I", ct[5:9])[0]
    kind = "E" if n % 2 == 0 else "S"
    print(json.dumps({"kind": kind, "key_id": key_id, "aad": aad.hex(), "plaintext": pt.hex(),
                      "ciphertext": ct.hex(), "key_version": 0}), flush=True)
    n += 1
    time.sleep(0.002)  # pacing only: keeps the output small
"""


def test_encrypt_only_process_adopts_each_new_primary(
    age_root: keystrata.AgeRoot, keychain_path: Path
) -> None:
    kc = keystrata.Keychain.open(keychain_path, age_root)
    rotator = Actor("rotator")
    rotator.listen(kc)
    env = dict(os.environ, KS_TEST_IDENTITY=str(age_root.insecure_identity_strings()[0]))
    child = subprocess.Popen(
        [sys.executable, "-c", ENCRYPT_ONLY, str(keychain_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    lines: "queue.Queue[Optional[bytes]]" = queue.Queue()
    stdout = child.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    only = Actor("encrypt-only")

    def wait_for(key_id: int, deadline: float) -> bool:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                return False
            r = Record.from_json(line.decode())
            only.records.append(r)
            if r.key_id == key_id:
                return True
        return False

    try:
        assert wait_for(kc.primary.key_id, time.monotonic() + 60)
        for _ in range(3):
            new = kc.rotate()
            rotator.op(kc, 0)
            t0 = time.monotonic()
            assert wait_for(new.key_id, t0 + 60), "the encrypt-only process never adopted the new primary"
    finally:
        child.stdin.close()
        code = child.wait(timeout=60)
    reader.join(timeout=60)
    while not lines.empty():
        line = lines.get()
        if line is not None:
            only.records.append(Record.from_json(line.decode()))
    assert code == 0
    kc.close()
    v = verify(keychain_path, age_root, [rotator, only])
    assert v.rotations == 3 and v.automatic == 0
    # The child used all four keys.
    assert len({r.key_id for r in only.records}) == 4
