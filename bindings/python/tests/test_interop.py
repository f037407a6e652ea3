"""Real peers in one process: Google Tink (Python) and the age CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import keystrata

from conftest import need_module, need_tool

tink: Any = need_module("tink")
from tink import aead, secret_key_access  # type: ignore[import-untyped]  # noqa: E402

aead.register()


def tink_handle(keyset_json: str) -> Any:
    return tink.json_proto_keyset_format.parse(keyset_json, secret_key_access.TOKEN)


def test_tink_decrypts_keystrata_seal() -> None:
    kc = keystrata.Keychain.generate()
    old = kc.seal(b"under v1", b"aad-1")
    kc.rotate()
    new = kc.seal(b"under v2", b"aad-2")
    empty = kc.seal(b"", b"")
    primitive = tink_handle(kc.insecure_export_tink_cleartext()).primitive(aead.Aead)
    assert primitive.decrypt(old, b"aad-1") == b"under v1"
    assert primitive.decrypt(new, b"aad-2") == b"under v2"
    assert primitive.decrypt(empty, b"") == b""
    with pytest.raises(tink.TinkError):
        primitive.decrypt(new, b"aad-1")


def test_keystrata_unseals_tink_output() -> None:
    handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    primitive = handle.primitive(aead.Aead)
    cts = [(primitive.encrypt(pt, aad), pt, aad) for pt, aad in [(b"hello", b"a"), (b"", b""), (os.urandom(10000), b"big")]]
    keyset_json = tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
    kc = keystrata.Keychain.import_tink_cleartext(keyset_json)
    for ct, pt, aad in cts:
        assert kc.unseal(ct, aad) == pt
    # and back: keystrata's own output under the imported key, read by Tink
    assert primitive.decrypt(kc.seal(b"round trip", b"x"), b"x") == b"round trip"
    # the exported keyset names the same key
    assert json.loads(kc.insecure_export_tink_cleartext())["primaryKeyId"] == json.loads(keyset_json)["primaryKeyId"]


def test_tink_kms_envelope_with_exported_keyset_as_remote() -> None:
    kc = keystrata.Keychain.generate()
    blobs = [(kc.encrypt(pt, aad), pt, aad) for pt, aad in [(b"doc", b"doc-17"), (b"", b""), (os.urandom(70000), b"big")]]
    kc.rotate()
    blobs.append((kc.encrypt(b"after rotation", b"r"), b"after rotation", b"r"))
    remote = tink_handle(kc.insecure_export_tink_cleartext()).primitive(aead.Aead)
    envelope = aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM, remote)
    for blob, pt, aad in blobs:
        assert envelope.decrypt(blob, aad) == pt
    # and the other way: Tink's envelope output, decrypted by keystrata
    tink_blob = envelope.encrypt(b"from tink", b"t")
    assert kc.decrypt(tink_blob, b"t") == b"from tink"


def test_age_cli_decrypts_a_keychain_saved_by_python(tmp_path: Path) -> None:
    age = need_tool("age")
    root = keystrata.AgeRoot.generate()
    identity = tmp_path / "identity.txt"
    identity.write_text(f"# public key: {root.recipients[0]}\n{root.insecure_identity_strings()[0]}\n")
    kc = keystrata.Keychain.generate()
    kc.rotate()
    kc.save_file(tmp_path / "keychain.age", root)
    out = subprocess.run(
        [age, "-d", "-i", str(identity), str(tmp_path / "keychain.age")],
        check=True,
        capture_output=True,
    ).stdout
    doc = json.loads(out)
    assert isinstance(doc, dict)
    text = out.decode()
    for k in kc.keys():
        assert str(k.key_id) in text
    # ... and the age CLI's own encryption of that JSON loads back.
    again = subprocess.run(
        [age, "-r", root.recipients[0]], input=out, check=True, capture_output=True
    ).stdout
    assert keystrata.Keychain.load(again, root).keys() == kc.keys()
