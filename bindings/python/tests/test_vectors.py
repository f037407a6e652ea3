"""The shared vectors in tests/vectors/, through the Python API.

- keystrata.json: keystrata's own known-answer vectors (schema in
  tests/vectors/README.md).
- tink.json: keysets and ciphertexts made by Google Tink.
- wycheproof/aes_gcm_test.json: through a one-key Tink keyset, unsealing
  0x01 ‖ BE32(id) ‖ iv ‖ ct ‖ tag.
- wycheproof/hkdf_sha256_test.json: through keystrata.hkdf_sha256.
"""

from __future__ import annotations

import base64
import json
import struct
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import keystrata
from keystrata import exceptions

from conftest import load_vectors, need_tool

ERROR_CLASSES: Dict[str, type] = {
    cls.kind: cls
    for cls in (getattr(exceptions, name) for name in exceptions.__all__)
    if cls is not exceptions.Error
}


def h(s: str) -> bytes:
    return bytes.fromhex(s)


def envelope_of(e: Dict[str, Any]) -> keystrata.Envelope:
    return keystrata.Envelope(e["key_id"], e["key_version"], e["provider"], h(e["ciphertext_hex"]))


# ---------------------------------------------------------------------------
# keystrata.json
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ks() -> Any:
    return load_vectors("keystrata.json")


@pytest.fixture(scope="module")
def main_kc(ks: Any) -> keystrata.Keychain:
    v = ks["keychain"]
    root = keystrata.AgeRoot(identities=[v["age_identity"]])
    assert root.recipients == [v["age_recipient"]]
    return keystrata.Keychain.load(base64.b64decode(v["saved_age_base64"]), root)


def age_file_from_plaintext(plaintext_json: str, recipient: str, tmp_path: Path) -> bytes:
    """An age file made by the age CLI from the keychain's plaintext JSON."""
    age = need_tool("age")
    src = tmp_path / "keychain.json"
    src.write_text(plaintext_json, encoding="utf-8")
    out = subprocess.run(
        [age, "-r", recipient, str(src)], check=True, capture_output=True
    ).stdout
    return out


@pytest.fixture(scope="module", params=["saved", "from_plaintext_json"])
def vkc(
    request: pytest.FixtureRequest,
    ks: Any,
    main_kc: keystrata.Keychain,
    tmp_path_factory: pytest.TempPathFactory,
) -> keystrata.Keychain:
    """The vectors' keychain, loaded from the saved age file, and again
    rebuilt from plaintext_json alone (encrypted by the age CLI, not by
    keystrata)."""
    if request.param == "saved":
        return main_kc
    v = ks["keychain"]
    data = age_file_from_plaintext(v["plaintext_json"], v["age_recipient"], tmp_path_factory.mktemp("plain"))
    return keystrata.Keychain.load(data, keystrata.AgeRoot(identities=[v["age_identity"]]))


def test_saved_age_file_decrypts_to_plaintext_json(ks: Any, tmp_path: Path) -> None:
    age = need_tool("age")
    v = ks["keychain"]
    (tmp_path / "id.txt").write_text(v["age_identity"] + "\n")
    (tmp_path / "kc.age").write_bytes(base64.b64decode(v["saved_age_base64"]))
    out = subprocess.run(
        [age, "-d", "-i", str(tmp_path / "id.txt"), str(tmp_path / "kc.age")],
        check=True,
        capture_output=True,
    ).stdout
    assert out.decode() == v["plaintext_json"]
    assert json.loads(out)["version"] == ks["keychain_format_version"]


def test_keys_match(ks: Any, vkc: keystrata.Keychain) -> None:
    want = [
        (k["key_id"], k["version"], k["purpose"], k["status"], k["primary"])
        for k in ks["keychain"]["keys"]
    ]
    got = [(k.key_id, k.version, k.purpose, k.status, k.primary) for k in vkc.keys()]
    assert got == want


def test_unseal(ks: Any, vkc: keystrata.Keychain) -> None:
    cases = ks["keychain"]["unseal"]
    assert cases
    for c in cases:
        assert vkc.unseal(h(c["ciphertext_hex"]), h(c["aad_hex"])) == h(c["plaintext_hex"]), c["comment"]
        assert struct.unpack(">I", h(c["ciphertext_hex"])[1:5])[0] == c["key_id"]


def test_decrypt(ks: Any, vkc: keystrata.Keychain) -> None:
    cases = ks["keychain"]["decrypt"]
    assert cases
    for c in cases:
        assert vkc.decrypt(h(c["ciphertext_hex"]), h(c["aad_hex"])) == h(c["plaintext_hex"]), c["comment"]


def test_unwrap(ks: Any, vkc: keystrata.Keychain) -> None:
    cases = ks["keychain"]["unwrap"]
    assert cases
    for c in cases:
        env = envelope_of(c["envelope"])
        assert keystrata.Envelope.from_metadata(c["metadata"]) == env, c["comment"]
        assert env.to_metadata() == c["metadata"], c["comment"]
        assert vkc.unwrap_key(env, h(c["context_hex"])) == h(c["key_hex"]), c["comment"]


def test_derive_origin_key(ks: Any, vkc: keystrata.Keychain) -> None:
    cases = ks["keychain"]["derive_origin_key"]
    assert cases
    for c in cases:
        epoch = int(c["epoch"])
        want = h(c["key_hex"])
        assert vkc.derive_origin_key(c["origin"], c["instance"], epoch) == want, c["comment"]
        # bytes and str give the same key
        assert vkc.derive_origin_key(c["origin"].encode(), c["instance"].encode(), epoch) == want


def test_derive(ks: Any, vkc: keystrata.Keychain) -> None:
    cases = ks["keychain"]["derive"]
    assert cases
    for c in cases:
        assert vkc.derive(h(c["info_hex"]), c["length"]) == h(c["okm_hex"]), c["comment"]


def run_invalid(kc: keystrata.Keychain, c: Dict[str, Any]) -> None:
    op = c["op"]
    if op == "unseal":
        kc.unseal(h(c["ciphertext_hex"]), h(c["aad_hex"]))
    elif op == "decrypt":
        kc.decrypt(h(c["ciphertext_hex"]), h(c["aad_hex"]))
    elif op == "unwrap":
        kc.unwrap_key(envelope_of(c["envelope"]), h(c["context_hex"]))
    elif op == "derive":
        kc.derive(h(c["info_hex"]), c["length"])
    elif op == "envelope_from_metadata":
        keystrata.Envelope.from_metadata(c["metadata"])
    else:
        pytest.fail(f"unknown op {op!r} in keystrata.json")


def test_invalid(ks: Any, vkc: keystrata.Keychain) -> None:
    cases = ks["keychain"]["invalid"]
    assert cases
    for c in cases:
        cls = ERROR_CLASSES[c["error"]]
        with pytest.raises(keystrata.Error) as info:
            run_invalid(vkc, c)
        assert type(info.value) is cls, f"{c['comment']}: got {info.value!r}"
        assert info.value.kind == c["error"]
        assert info.value.code == c["error_code"]


def test_saved_passphrase(ks: Any) -> None:
    v = ks["saved_passphrase"]
    root = keystrata.PassphraseRoot(v["passphrase"], work_factor=v["work_factor"])
    kc = keystrata.Keychain.load(base64.b64decode(v["saved_age_base64"]), root)
    assert v["unseal"]
    for c in v["unseal"]:
        assert kc.unseal(h(c["ciphertext_hex"]), h(c["aad_hex"])) == h(c["plaintext_hex"])
    with pytest.raises(keystrata.AuthenticationError):
        keystrata.Keychain.load(
            base64.b64decode(v["saved_age_base64"]),
            keystrata.PassphraseRoot(v["passphrase"] + "x", work_factor=v["work_factor"]),
        )


def test_wrong_identity_is_authentication_error(ks: Any) -> None:
    with pytest.raises(keystrata.AuthenticationError):
        keystrata.Keychain.load(
            base64.b64decode(ks["keychain"]["saved_age_base64"]), keystrata.AgeRoot.generate()
        )


# ---------------------------------------------------------------------------
# tink.json
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tinkv() -> Any:
    return load_vectors("tink.json")


def test_tink_keysets(tinkv: Any) -> None:
    assert tinkv["keysets"]
    for ks in tinkv["keysets"]:
        kc = keystrata.Keychain.import_tink_cleartext(ks["keyset_json"])
        assert kc.primary.key_id == ks["primary_key_id"]
        for c in ks["aead"]:
            assert kc.unseal(h(c["ciphertext_hex"]), h(c["aad_hex"])) == h(c["plaintext_hex"]), c["comment"]
        for c in ks["envelope"]:
            assert kc.decrypt(h(c["ciphertext_hex"]), h(c["aad_hex"])) == h(c["plaintext_hex"]), c["comment"]
        for c in ks["aead_must_fail"]:
            with pytest.raises(keystrata.KeyDisabledError):
                kc.unseal(h(c["ciphertext_hex"]), h(c["aad_hex"]))


def test_tink_unsupported(tinkv: Any) -> None:
    assert tinkv["unsupported"]
    for u in tinkv["unsupported"]:
        with pytest.raises(keystrata.UnsupportedError):
            keystrata.Keychain.import_tink_cleartext(u["keyset_json"])


# ---------------------------------------------------------------------------
# Wycheproof
# ---------------------------------------------------------------------------

TINK_AES_GCM = "type.googleapis.com/google.crypto.tink.AesGcmKey"
WP_KEY_ID = 0x01020304


def one_key_keyset(key: bytes, key_id: int = WP_KEY_ID) -> str:
    """A Tink cleartext keyset holding one AES-GCM key (serialized AesGcmKey
    proto: field 3, length-delimited), TINK prefix."""
    proto = bytes([0x1A, len(key)]) + key
    return json.dumps(
        {
            "primaryKeyId": key_id,
            "key": [
                {
                    "keyData": {
                        "typeUrl": TINK_AES_GCM,
                        "value": base64.b64encode(proto).decode(),
                        "keyMaterialType": "SYMMETRIC",
                    },
                    "status": "ENABLED",
                    "keyId": key_id,
                    "outputPrefixType": "TINK",
                }
            ],
        }
    )


def test_wycheproof_aes_gcm() -> None:
    wp = load_vectors("wycheproof/aes_gcm_test.json")
    checked = {"valid": 0, "invalid": 0, "refused": 0, "unsupported_key": 0}
    prefix = b"\x01" + struct.pack(">I", WP_KEY_ID)
    for group in wp["testGroups"]:
        assert group["tagSize"] == 128
        for t in group["tests"]:
            assert t["result"] in ("valid", "invalid"), f"tcId {t['tcId']}: unexpected result {t['result']}"
            key = h(t["key"])
            if group["keySize"] != 256:
                with pytest.raises(keystrata.UnsupportedError):
                    keystrata.Keychain.import_tink_cleartext(one_key_keyset(key))
                checked["unsupported_key"] += 1
                continue
            kc = keystrata.Keychain.import_tink_cleartext(one_key_keyset(key))
            sealed = prefix + h(t["iv"]) + h(t["ct"]) + h(t["tag"])
            if group["ivSize"] != 96:
                # Outside keystrata's format: must be refused, whatever the result.
                with pytest.raises(keystrata.Error):
                    kc.unseal(sealed, h(t["aad"]))
                checked["refused"] += 1
            elif t["result"] == "valid":
                assert kc.unseal(sealed, h(t["aad"])) == h(t["msg"]), f"tcId {t['tcId']}"
                checked["valid"] += 1
            else:
                with pytest.raises((keystrata.AuthenticationError, keystrata.FormatError)):
                    kc.unseal(sealed, h(t["aad"]))
                checked["invalid"] += 1
    assert checked["valid"] > 0 and checked["invalid"] > 0 and checked["refused"] > 0
    assert sum(checked.values()) == wp["numberOfTests"]


def test_wycheproof_hkdf() -> None:
    wp = load_vectors("wycheproof/hkdf_sha256_test.json")
    n = 0
    for group in wp["testGroups"]:
        for t in group["tests"]:
            assert t["result"] in ("valid", "invalid"), f"tcId {t['tcId']}: unexpected result {t['result']}"
            call: Callable[[], bytes] = lambda t=t: keystrata.hkdf_sha256(  # noqa: E731
                h(t["salt"]), h(t["ikm"]), h(t["info"]), t["size"]
            )
            if t["result"] == "valid":
                assert call() == h(t["okm"]), f"tcId {t['tcId']}"
                if t["salt"] == "":
                    # An empty salt is the same as no salt.
                    assert keystrata.hkdf_sha256(None, h(t["ikm"]), h(t["info"]), t["size"]) == h(t["okm"])
            else:
                with pytest.raises(keystrata.InvalidInputError):
                    call()
            n += 1
    assert n == wp["numberOfTests"]
