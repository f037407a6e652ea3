#!/usr/bin/env python3
"""The fleet test's worker in Python (tests/fleet/README.md has the
interface, shared with worker.c and go/main.go).

    worker.py run LOCATION IDENTITY_FILE NAME SEED SECONDS MAX_OPS ROTATE_PERMILLE MAX_PER_KEY BLOCK
    worker.py check LOCATION IDENTITY_FILE RECORDS_FILE

It stops at SECONDS, at MAX_OPS, or as soon as the file named by the
environment variable KS_FLEET_STOP_FILE exists (checked every 16 ops);
KS_FLEET_RATE, if set, caps its operations per second.

Every output line goes out whole with one write (os.write on fd 1), so a
worker killed at any moment leaves only complete lines (and at most one cut
short, without its newline).
"""

import os
import random
import struct
import sys
import time

import keystrata


def emit(line):
    data = line.encode()
    while data:
        n = os.write(1, data)
        data = data[n:]


def root_from(path):
    with open(path, encoding="utf-8") as f:
        return keystrata.AgeRoot(identities=[f.read()])


def run(location, identity, name, seed, seconds, max_ops, rotate_permille, max_per_key, block):
    rng = random.Random(int(seed))
    policy = keystrata.Policy(max_encryptions_per_key=int(max_per_key), usage_block=int(block))
    try:
        kc = keystrata.Keychain.open(location, root_from(identity), policy)
    except keystrata.Error as e:
        emit(f"X {e.kind} open\n")
        sys.stderr.write(f"fleet-python {name}: open: {e}\n")
        return 3

    def on_event(e):
        if e.kind == "key_rotated" and e.purpose == "encrypt":
            emit(f"R {e.key_id} {e.key_version} {'auto' if e.automatic else 'manual'}\n")

    kc.subscribe(on_event)
    emit("READY\n")
    end = time.monotonic() + float(seconds)
    stop_file = os.environ.get("KS_FLEET_STOP_FILE")
    rate = float(os.environ.get("KS_FLEET_RATE", "0"))
    nxt = time.monotonic()
    ops = errors = 0
    i = 0
    while i < int(max_ops) and time.monotonic() < end:
        if stop_file and i % 16 == 0 and os.path.exists(stop_file):
            break  # the harness ends the run
        if rate > 0:  # pacing: at most `rate` operations a second
            t = time.monotonic()
            if t < nxt:
                time.sleep(nxt - t)
            nxt = max(t, nxt) + 1 / rate
        if rng.randrange(1000) < int(rotate_permille):
            try:
                kc.rotate()
            except keystrata.Error as e:
                sys.stderr.write(f"fleet-python {name}: rotate: {e.kind}: {e}\n")
                emit(f"X {e.kind} rotate\n")
                errors += 1
        pt = f"fleet/{name}/{i}".encode()
        aad = f"aad/{name}/{i}".encode()
        which = rng.randrange(3)
        op = ("seal", "encrypt", "wrap")[which]
        try:
            if which == 0:
                ct = kc.seal(pt, aad)
                line = f"S {struct.unpack('>I', ct[1:5])[0]} {aad.hex()} {pt.hex()} {ct.hex()}\n"
            elif which == 1:
                ct = kc.encrypt(pt, aad)
                line = f"E {struct.unpack('>I', ct[5:9])[0]} {aad.hex()} {pt.hex()} {ct.hex()}\n"
            else:
                dek = pt[:32].ljust(32, b"\0")
                env = kc.wrap_key(dek, aad)
                line = f"W {env.key_id} {env.key_version} {aad.hex()} {dek.hex()} {env.ciphertext.hex()}\n"
            ops += 1
        except keystrata.Error as e:
            sys.stderr.write(f"fleet-python {name}: {op}: {e.kind}: {e}\n")
            line = f"X {e.kind} {op}\n"
            errors += 1
            if errors > 1000:
                emit(line)
                return 4
        emit(line)
        i += 1
    emit(f"DONE {ops} {errors}\n")
    kc.close()
    return 0


def check(location, identity, records):
    try:
        kc = keystrata.Keychain.open(location, root_from(identity))
    except keystrata.Error as e:
        sys.stderr.write(f"fleet-python check: open: {e.kind}: {e}\n")
        return 2
    n = failed = 0
    with open(records, encoding="ascii") as f:
        for lineno, line in enumerate(f, 1):
            fld = line.split()
            if not fld or fld[0] not in ("S", "E", "W"):
                continue
            n += 1
            kind = fld[0]
            try:
                if kind == "S" and len(fld) == 5:
                    ok = kc.unseal(bytes.fromhex(fld[4]), bytes.fromhex(fld[2])) == bytes.fromhex(fld[3])
                elif kind == "E" and len(fld) == 5:
                    ok = kc.decrypt(bytes.fromhex(fld[4]), bytes.fromhex(fld[2])) == bytes.fromhex(fld[3])
                elif kind == "W" and len(fld) == 6:
                    env = keystrata.Envelope(fld[1], int(fld[2]), "keystrata", bytes.fromhex(fld[5]))
                    ok = kc.unwrap_key(env, bytes.fromhex(fld[3])) == bytes.fromhex(fld[4])
                else:
                    ok = False
                why = "WrongPlaintext"
            except keystrata.Error as e:
                ok, why = False, e.kind
            except ValueError:
                ok, why = False, "Format"
            if not ok:
                failed += 1
                if failed <= 20:
                    print(f"BAD {lineno} {why} {kind} {fld[1]}")
    for k in kc.keys():
        print(f"K {k.key_id} {k.version} {k.purpose} {k.status} {k.usage} {int(k.primary)}")
    print(f"checked {n} failed {failed}")
    kc.close()
    return 1 if failed else 0


def main():
    a = sys.argv[1:]
    if len(a) == 10 and a[0] == "run":
        sys.exit(run(*a[1:]))
    if len(a) == 4 and a[0] == "check":
        sys.exit(check(*a[1:]))
    sys.stderr.write(
        "usage: worker.py run LOCATION IDENTITY NAME SEED SECONDS MAX_OPS ROTATE_PERMILLE MAX BLOCK"
        " | check LOCATION IDENTITY RECORDS\n"
    )
    sys.exit(2)


if __name__ == "__main__":
    main()
