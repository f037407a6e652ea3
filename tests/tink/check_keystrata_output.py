#!/usr/bin/env python3
"""Check keystrata-made ciphertexts with Google Tink, and make Tink ciphertexts back.

    .venv/bin/python tests/tink/check_keystrata_output.py IN.json [OUT.json]

IN.json (written by keystrata):

    {"keyset_json": "<Tink cleartext JSON keyset>",
     "aead":     [{"plaintext_hex": "..", "aad_hex": "..", "ciphertext_hex": ".."}, ...],
     "envelope": [{"plaintext_hex": "..", "aad_hex": "..", "ciphertext_hex": ".."}, ...]}

Each "aead" ciphertext is decrypted with Tink's AEAD primitive for the keyset,
each "envelope" ciphertext with Tink's KmsEnvelopeAead (DEK template
AES256_GCM, remote = the keyset's AEAD primitive), and the plaintexts are
compared. Envelope ciphertexts are also checked for keystrata's exact DEK
serialization (0x1a 0x20 || 32-byte key). Every failure is reported by index.

If OUT.json is given, Tink encrypts a fixed set of fresh messages (including
empty plaintext / empty aad / 1000 bytes) with the same keyset and writes them
in the same schema, so keystrata can check that it decrypts them.

An input with a keyset and no cases is accepted only together with OUT.json
(generation only). Last line on success: `tink-interop: N passed, 0 failed` (exit 0); on failure
the same line with the failure count, and exit 1. Exit 2 on unusable input.
"""

from __future__ import annotations

import json
import struct
import sys
from typing import Any

import tink  # type: ignore[import-untyped]
from tink import aead
from tink import secret_key_access

LONG_PT = bytes(i % 251 for i in range(1000))
FRESH: list[tuple[bytes, bytes]] = [
    (b"made by tink for keystrata", b"aad:v1"),
    (b"", b"aad for empty message"),
    (b"no associated data here", b""),
    (b"", b""),
    (LONG_PT, b"long"),
]


def _hex(entry: dict[str, Any], field: str) -> bytes:
    return bytes.fromhex(entry[field])


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    in_path = argv[1]
    out_path = argv[2] if len(argv) == 3 else None

    aead.register()
    try:
        with open(in_path, encoding="utf-8") as f:
            doc = json.load(f)
        handle = tink.json_proto_keyset_format.parse(doc["keyset_json"], secret_key_access.TOKEN)
        prim = handle.primitive(aead.Aead)
        env = aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM, prim)
    except (OSError, ValueError, KeyError, tink.TinkError) as e:
        print(f"tink-interop: cannot use {in_path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2

    passed = 0
    failures: list[str] = []

    def record(name: str, err: str | None) -> None:
        nonlocal passed
        if err is None:
            passed += 1
        else:
            err = " ".join(err.split())
            failures.append(f"{name}: {err}")
            print(f"FAIL {name}: {err}")

    for i, ent in enumerate(doc.get("aead", [])):
        name = f"aead[{i}]"
        try:
            ct, aad, pt = _hex(ent, "ciphertext_hex"), _hex(ent, "aad_hex"), _hex(ent, "plaintext_hex")
            got = prim.decrypt(ct, aad)
            record(name, None if got == pt else f"plaintext mismatch: got {got.hex()[:64]}")
        except (tink.TinkError, ValueError, KeyError) as ex:
            record(name, f"{type(ex).__name__}: {ex}")

    for i, ent in enumerate(doc.get("envelope", [])):
        name = f"envelope[{i}]"
        try:
            ct, aad, pt = _hex(ent, "ciphertext_hex"), _hex(ent, "aad_hex"), _hex(ent, "plaintext_hex")
            got = env.decrypt(ct, aad)
            if got != pt:
                record(name, f"plaintext mismatch: got {got.hex()[:64]}")
                continue
            # Tink would also accept other DEK encodings; keystrata's format is exact.
            (n,) = struct.unpack(">I", ct[:4])
            dek_ser = prim.decrypt(ct[4:4 + n], b"")
            if dek_ser[:2] != b"\x1a\x20" or len(dek_ser) != 34:
                record(name, f"DEK serialization is not 0x1a20||32 bytes: {dek_ser[:4].hex()}.. len {len(dek_ser)}")
                continue
            record(name, None)
        except (tink.TinkError, ValueError, KeyError, struct.error) as ex:
            record(name, f"{type(ex).__name__}: {ex}")

    if out_path is not None:
        out = {"keyset_json": doc["keyset_json"], "aead": [], "envelope": []}
        for pt, aad in FRESH:
            out["aead"].append({"plaintext_hex": pt.hex(), "aad_hex": aad.hex(),
                                "ciphertext_hex": prim.encrypt(pt, aad).hex()})
            out["envelope"].append({"plaintext_hex": pt.hex(), "aad_hex": aad.hex(),
                                    "ciphertext_hex": env.encrypt(pt, aad).hex()})
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
        print(f"wrote {len(out['aead'])} aead + {len(out['envelope'])} envelope Tink ciphertexts to {out_path}")

    if passed + len(failures) == 0:
        if out_path is not None:
            # Generation-only use: an input with a keyset and no cases.
            print("tink-interop: 0 passed, 0 failed")
            return 0
        print("tink-interop: no cases in input", file=sys.stderr)
        print("tink-interop: 0 passed, 1 failed")
        return 1
    print(f"tink-interop: {passed} passed, {len(failures)} failed")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
