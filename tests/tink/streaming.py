#!/usr/bin/env python3
"""Tink's streaming AEAD (AES-GCM-HKDF) both ways with keystrata.

    .venv/bin/python tests/tink/streaming.py gen DIR      # Tink keysets and streams for keystrata to read
    .venv/bin/python tests/tink/streaming.py check DIR    # Tink reads the streams keystrata wrote
    .venv/bin/python tests/tink/streaming.py vectors OUT  # tests/vectors/stream.json (small, committed)

gen writes DIR/keyset-{4kb,1mb}.json (Tink cleartext keysets, AES256_GCM_HKDF
templates) and DIR/tink-{4kb,1mb}-N.ct: Tink's encryption of plaintext(N) with
aad b"aad-N", for the sizes in SIZES. keystrata's test (core/tests/stream.rs)
imports the keysets, decrypts those, and writes DIR/ks-{4kb,1mb}-N.ct (its own
streams of plaintext(N), same aad) and DIR/ks-keyset-{4kb,1mb}.json (its
export of the keys). check decrypts each ks stream with Tink under the
original keyset and under keystrata's export, and compares. Last line:
`tink-streaming: N passed, M failed`.

plaintext(N) is bytes((7 * i + 3) % 251 for i in range(N)).
"""

from __future__ import annotations

import io
import json
import os
import sys

import tink
from tink import cleartext_keyset_handle, streaming_aead

SIZES = {
    "4kb": [0, 1, 4040, 4041, 4079, 4080, 4081, 8160, 8161, 50_000],
    "1mb": [0, 1, 1_048_519, 1_048_520, 1_048_521, 3_000_000],
}
TEMPLATES = {
    "4kb": streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_4KB,
    "1mb": streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB,
}


def plaintext(n: int) -> bytes:
    return bytes((7 * i + 3) % 251 for i in range(n))


def handle_from(path: str):
    with open(path) as f:
        return cleartext_keyset_handle.read(tink.JsonKeysetReader(f.read()))


class _Keep(io.BytesIO):
    def close(self) -> None:  # Tink closes the destination: keep the bytes
        pass


def tink_encrypt(prim, pt: bytes, aad: bytes) -> bytes:
    out = _Keep()
    with prim.new_encrypting_stream(out, aad) as s:
        for i in range(0, len(pt), 70_001):
            s.write(pt[i : i + 70_001])
    return out.getvalue()


def tink_decrypt(prim, ct: bytes, aad: bytes) -> bytes:
    with prim.new_decrypting_stream(io.BytesIO(ct), aad) as s:
        return s.read()


def gen(d: str) -> int:
    os.makedirs(d, exist_ok=True)
    for name, template in TEMPLATES.items():
        h = tink.new_keyset_handle(template)
        with open(os.path.join(d, f"keyset-{name}.json"), "w") as f:
            w = tink.JsonKeysetWriter(f)
            cleartext_keyset_handle.write(w, h)
        prim = h.primitive(streaming_aead.StreamingAead)
        for n in SIZES[name]:
            ct = tink_encrypt(prim, plaintext(n), b"aad-%d" % n)
            with open(os.path.join(d, f"tink-{name}-{n}.ct"), "wb") as f:
                f.write(ct)
    print(f"tink-streaming: gen wrote {sum(len(v) for v in SIZES.values())} streams")
    return 0


def check(d: str) -> int:
    passed = failed = 0
    for name in TEMPLATES:
        prims = {
            "tink keyset": handle_from(os.path.join(d, f"keyset-{name}.json")).primitive(streaming_aead.StreamingAead),
            "keystrata export": handle_from(os.path.join(d, f"ks-keyset-{name}.json")).primitive(
                streaming_aead.StreamingAead
            ),
        }
        for n in SIZES[name]:
            path = os.path.join(d, f"ks-{name}-{n}.ct")
            with open(path, "rb") as f:
                ct = f.read()
            for label, prim in prims.items():
                try:
                    ok = tink_decrypt(prim, ct, b"aad-%d" % n) == plaintext(n)
                except Exception as e:  # noqa: BLE001 - report any Tink failure
                    print(f"FAIL {name} {n} ({label}): {type(e).__name__}: {e}")
                    ok = None
                if ok:
                    passed += 1
                elif ok is False:
                    print(f"FAIL {name} {n} ({label}): plaintext differs")
                    failed += 1
                else:
                    failed += 1
            # A wrong aad must fail in Tink too.
            try:
                tink_decrypt(prims["tink keyset"], ct, b"other")
                print(f"FAIL {name} {n}: Tink accepted a wrong aad")
                failed += 1
            except tink.TinkError:
                passed += 1
    print(f"tink-streaming: {passed} passed, {failed} failed")
    return 1 if failed else 0


def vectors(out: str) -> int:
    h = tink.new_keyset_handle(TEMPLATES["4kb"])
    buf = io.StringIO()
    cleartext_keyset_handle.write(tink.JsonKeysetWriter(buf), h)
    prim = h.primitive(streaming_aead.StreamingAead)
    cases = []
    for n, aad in [(0, b""), (1, b"a"), (4040, b"one full first segment"), (4041, b"two segments"), (9000, b"three")]:
        pt = plaintext(n)
        cases.append({
            "comment": f"Tink AES256_GCM_HKDF_4KB, {n} bytes",
            "plaintext_len": n,
            "aad_hex": aad.hex(),
            "ciphertext_hex": tink_encrypt(prim, pt, aad).hex(),
        })
    doc = {
        "comment": "Made by tests/tink/streaming.py vectors with Google Tink (Python); "
        "plaintext(N) = bytes((7*i+3) % 251 for i in range(N)). Read by every language.",
        "keyset_json": buf.getvalue(),
        "decrypt": cases,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"tink-streaming: wrote {len(cases)} vectors to {out}")
    return 0


def main() -> int:
    streaming_aead.register()
    if len(sys.argv) != 3 or sys.argv[1] not in ("gen", "check", "vectors"):
        print(__doc__, file=sys.stderr)
        return 2
    return {"gen": gen, "check": check, "vectors": vectors}[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
