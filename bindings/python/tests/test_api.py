"""Round trips, tampering, lifecycle, persistence and the value classes."""

from __future__ import annotations

import array
import os
import struct
from pathlib import Path
from typing import List

import pytest

import keystrata

BUFFER_KINDS = [
    pytest.param(bytes, id="bytes"),
    pytest.param(bytearray, id="bytearray"),
    pytest.param(memoryview, id="memoryview"),
    pytest.param(lambda b: memoryview(b"xx" + b + b"yy")[2:-2], id="memoryview-slice"),
    pytest.param(lambda b: array.array("B", b), id="array"),
]

SIZES = [0, 1, 4096, 4097, 1 << 20]


@pytest.mark.parametrize("size", SIZES)
def test_seal_unseal_round_trip(kc: keystrata.Keychain, size: int) -> None:
    pt = os.urandom(size)
    ct = kc.seal(pt, b"aad")
    assert isinstance(ct, bytes)
    assert len(ct) == size + 33
    assert ct[0] == 1 and struct.unpack(">I", ct[1:5])[0] == kc.primary.key_id
    assert kc.unseal(ct, b"aad") == pt
    assert kc.seal(pt, b"aad") != ct  # fresh nonce


@pytest.mark.parametrize("size", SIZES)
def test_encrypt_decrypt_round_trip(kc: keystrata.Keychain, size: int) -> None:
    pt = os.urandom(size)
    blob = kc.encrypt(pt, b"doc")
    assert len(blob) == size + 99
    assert kc.decrypt(blob, b"doc") == pt


@pytest.mark.parametrize("size", SIZES)
def test_failures_return_nothing_at_every_size(kc: keystrata.Keychain, size: int) -> None:
    # Small and large payloads take different output paths (large ones are
    # written with the GIL released); both must fail cleanly.
    pt = os.urandom(size)
    ct, blob = kc.seal(pt, b"a"), kc.encrypt(pt, b"a")
    with pytest.raises(keystrata.AuthenticationError):
        kc.unseal(ct, b"b")
    with pytest.raises(keystrata.AuthenticationError):
        kc.decrypt(blob, b"b")
    flipped = bytearray(blob)
    flipped[-1] ^= 1
    with pytest.raises(keystrata.AuthenticationError):
        kc.decrypt(bytes(flipped), b"a")
    kc.close()
    with pytest.raises(keystrata.UnavailableError):
        kc.seal(pt, b"a")
    with pytest.raises(keystrata.UnavailableError):
        kc.encrypt(pt, b"a")


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_every_buffer_kind_is_accepted(kc: keystrata.Keychain, kind: object) -> None:
    conv = kind  # type: ignore[assignment]
    pt, aad = b"plaintext", b"aad"
    ct = kc.seal(conv(pt), conv(aad))  # type: ignore[operator]
    assert kc.unseal(conv(ct), conv(aad)) == pt  # type: ignore[operator]
    blob = kc.encrypt(conv(pt), conv(aad))  # type: ignore[operator]
    assert kc.decrypt(conv(blob), conv(aad)) == pt  # type: ignore[operator]
    env = kc.wrap_key(conv(b"k" * 32), conv(b"ctx"))  # type: ignore[operator]
    assert kc.unwrap_key(env, conv(b"ctx")) == b"k" * 32  # type: ignore[operator]
    assert kc.derive(conv(b"info"), 16) == kc.derive(b"info", 16)  # type: ignore[operator]


def test_bytearray_input_is_not_kept(kc: keystrata.Keychain) -> None:
    buf = bytearray(b"secret")
    ct = kc.seal(buf)
    buf[:] = b"XXXXXX"
    assert kc.unseal(ct) == b"secret"


def test_default_aad_is_empty(kc: keystrata.Keychain) -> None:
    assert kc.unseal(kc.seal(b"x"), b"") == b"x"
    assert kc.decrypt(kc.encrypt(b"x"), b"") == b"x"
    assert kc.unwrap_key(kc.wrap_key(b"k"), b"") == b"k"


@pytest.mark.parametrize(
    "call",
    [
        lambda kc: kc.seal("text"),
        lambda kc: kc.seal(b"x", "aad"),
        lambda kc: kc.unseal(12345),
        lambda kc: kc.decrypt(None),
        lambda kc: kc.wrap_key([1, 2, 3]),
        lambda kc: kc.unwrap_key({"not": "an envelope"}),
        lambda kc: kc.derive(b"info", "32"),
        lambda kc: kc.derive_origin_key(1, "web", 0),
        lambda kc: kc.derive_origin_key("o", "i", "0"),
        lambda kc: kc.save("not a root"),
        lambda kc: kc.promote("123"),
        lambda kc: kc.subscribe("not callable"),
        lambda kc: keystrata.Keychain.load(b"x", None),
        lambda kc: keystrata.Keychain.import_tink_cleartext(b"{}"),
        lambda kc: keystrata.AgeRoot(identities="AGE-SECRET-KEY-1..."),
        lambda kc: keystrata.Envelope.from_metadata(42),
        lambda kc: keystrata.Envelope.from_metadata({"a": 1}),
        lambda kc: kc.set_policy({"max_encryptions_per_key": 1}),
    ],
)
def test_wrong_argument_types_raise_type_error(kc: keystrata.Keychain, call: object) -> None:
    with pytest.raises(TypeError):
        call(kc)  # type: ignore[operator]


def test_tampering_any_byte_fails(kc: keystrata.Keychain) -> None:
    pt, aad = b"attack at dawn", b"ctx"
    ct = kc.seal(pt, aad)
    for i in range(len(ct)):
        for bit in (0x01, 0x80):
            t = bytearray(ct)
            t[i] ^= bit
            with pytest.raises((keystrata.AuthenticationError, keystrata.FormatError, keystrata.UnknownKeyError)):
                kc.unseal(bytes(t), aad)
    with pytest.raises(keystrata.AuthenticationError):
        kc.unseal(ct, b"other aad")
    with pytest.raises(keystrata.AuthenticationError):
        kc.unseal(ct[:-1], aad)
    with pytest.raises(keystrata.FormatError):
        kc.unseal(ct[:32], aad)


def test_envelope_tampering_fails(kc: keystrata.Keychain) -> None:
    pt = os.urandom(100)
    blob = kc.encrypt(pt, b"a")
    for i in range(len(blob)):
        t = bytearray(blob)
        t[i] ^= 0x04
        with pytest.raises(keystrata.Error):
            kc.decrypt(bytes(t), b"a")
    with pytest.raises(keystrata.AuthenticationError):
        kc.decrypt(blob, b"b")


def test_wrapped_key_is_bound_to_identity_and_context(kc: keystrata.Keychain) -> None:
    env = kc.wrap_key(b"\x07" * 32, b"bucket/object")
    assert env.provider == "keystrata" == kc.provider
    assert env.key_id == str(kc.primary.key_id)
    assert env.key_version == kc.active_key_version() == 1
    assert kc.unwrap_key(env, b"bucket/object") == b"\x07" * 32
    with pytest.raises(keystrata.AuthenticationError):
        kc.unwrap_key(env, b"bucket/other")
    bumped = keystrata.Envelope(env.key_id, env.key_version + 1, env.provider, env.ciphertext)
    with pytest.raises(keystrata.AuthenticationError):
        kc.unwrap_key(bumped, b"bucket/object")
    foreign = keystrata.Envelope(env.key_id, env.key_version, "age", env.ciphertext)
    with pytest.raises(keystrata.InvalidInputError):
        kc.unwrap_key(foreign, b"bucket/object")
    for bad in (b"", b"x" * 4097):
        with pytest.raises(keystrata.InvalidInputError):
            kc.wrap_key(bad)


def test_envelope_value_semantics(kc: keystrata.Keychain) -> None:
    env = kc.wrap_key(b"k" * 16, b"c")
    meta = env.to_metadata()
    assert sorted(meta) == [
        "x-amz-meta-encryption-key-version",
        "x-amz-meta-encryption-kms-id",
        "x-amz-meta-encryption-kms-provider",
        "x-amz-meta-encryption-wrapped-key",
    ]
    again = keystrata.Envelope.from_metadata(meta)
    assert again == env and hash(again) == hash(env)
    assert again != keystrata.Envelope(env.key_id, 99, env.provider, env.ciphertext)
    assert {env, again} == {env}

    class Meta:  # any mapping-like object with items()
        def items(self) -> List[tuple]:  # type: ignore[type-arg]
            return list(meta.items()) + [("x-other", "ignored")]

    assert keystrata.Envelope.from_metadata(Meta()) == env  # type: ignore[arg-type]
    r = repr(env)
    assert r.startswith("Envelope(key_id='") and f"<{len(env.ciphertext)} bytes>" in r
    assert env.ciphertext.hex() not in r
    broken = dict(meta)
    del broken["x-amz-meta-encryption-kms-provider"]
    with pytest.raises(keystrata.FormatError):
        keystrata.Envelope.from_metadata(broken)


def test_derivation_is_stable_across_rotation(kc: keystrata.Keychain) -> None:
    k1 = kc.derive_origin_key("https://app.example", "web-1", 0)
    assert len(k1) == 32
    assert kc.derive_origin_key(b"https://app.example", bytearray(b"web-1"), 0) == k1
    assert kc.derive_origin_key("https://app.example", "web-1", 1) != k1
    assert kc.derive_origin_key("https://app.example", "web-2", 0) != k1
    kc.rotate()
    assert kc.derive_origin_key("https://app.example", "web-1", 0) == k1
    old = kc.primary_for("derive")
    info = kc.derive(b"info", 64)
    new = kc.rotate_derivation()
    assert new.purpose == "derive" and new.version == 2 and new.primary
    assert kc.derive_origin_key("https://app.example", "web-1", 0) != k1
    assert kc.derive_origin_key_with(old.key_id, "https://app.example", "web-1", 0) == k1
    assert kc.derive_with(old.key_id, b"info", 64) == info
    assert kc.derive_origin_key("o", "i", 2**64 - 1)
    with pytest.raises(OverflowError):
        kc.derive_origin_key("o", "i", 2**64)
    with pytest.raises(OverflowError):
        kc.derive_origin_key("o", "i", -1)
    for n in (0, 8161):
        with pytest.raises(keystrata.InvalidInputError):
            kc.derive(b"", n)
    assert len(kc.derive(b"", 8160)) == 8160
    with pytest.raises(keystrata.UnknownKeyError):
        kc.derive_with(kc.primary.key_id, b"", 32)  # an encryption key cannot derive


def test_lifecycle(kc: keystrata.Keychain) -> None:
    first = kc.primary
    ct1 = kc.seal(b"one")
    rotated = kc.rotate()
    assert rotated.version == 2 and rotated.primary and rotated.purpose == "encrypt"
    assert kc.primary == rotated
    assert kc.unseal(ct1) == b"one"

    staged = kc.add_key()
    assert not staged.primary and staged.version == 3 and staged.status == "enabled"
    assert kc.add_key("derive").purpose == "derive"
    with pytest.raises(keystrata.InvalidInputError):
        kc.add_key("sign")
    promoted = kc.promote(staged.key_id)
    assert promoted.primary and kc.primary.key_id == staged.key_id

    kc.disable(first.key_id)
    with pytest.raises(keystrata.KeyDisabledError):
        kc.unseal(ct1)
    kc.enable(first.key_id)
    assert kc.unseal(ct1) == b"one"
    kc.destroy(first.key_id)
    kc.destroy(first.key_id)  # idempotent
    with pytest.raises(keystrata.KeyDestroyedError):
        kc.unseal(ct1)
    with pytest.raises(keystrata.PolicyError):
        kc.enable(first.key_id)
    with pytest.raises(keystrata.PolicyError):
        kc.disable(kc.primary.key_id)
    with pytest.raises(keystrata.UnknownKeyError):
        kc.promote(12345)

    statuses = [(k.version, k.purpose, k.status, k.primary) for k in kc.keys()]
    assert statuses == [
        (1, "encrypt", "destroyed", False),
        (1, "derive", "enabled", True),
        (2, "encrypt", "enabled", False),
        (3, "encrypt", "enabled", True),
        (2, "derive", "enabled", False),
    ]


def test_key_info_value_semantics(kc: keystrata.Keychain) -> None:
    p = kc.primary
    assert p == kc.keys()[0] and hash(p) == hash(kc.keys()[0])
    assert isinstance(p.created_at, int) and p.created_at > 1_600_000_000
    kc.seal(b"x")
    assert kc.primary.usage == 1 and kc.primary != p
    r = repr(p)
    assert r.startswith(f"KeyInfo(key_id={p.key_id}, version=1, purpose='encrypt', status='enabled'")
    with pytest.raises(AttributeError):
        p.version = 2  # type: ignore[misc]


def test_policy() -> None:
    p = keystrata.Policy()
    assert (p.max_encryptions_per_key, p.max_key_age_secs, p.usage_block) == (2**32, None, 65536)
    assert p == keystrata.Policy(2**32, None, 65536)
    assert repr(p) == "Policy(max_encryptions_per_key=4294967296, max_key_age_secs=None, usage_block=65536)"
    for bad in (
        dict(max_encryptions_per_key=0),
        dict(max_encryptions_per_key=2**32 + 1),
        dict(max_key_age_secs=0),
        dict(usage_block=0),
    ):
        with pytest.raises(keystrata.InvalidInputError):
            keystrata.Policy(**bad)  # type: ignore[arg-type]
    kc = keystrata.Keychain.generate(keystrata.Policy(max_encryptions_per_key=3))
    assert kc.policy.max_encryptions_per_key == 3
    for _ in range(3):
        kc.seal(b"x")
    with pytest.raises(keystrata.PolicyError, match="rotate"):
        kc.seal(b"x")
    kc.rotate()
    kc.seal(b"x")
    kc.set_policy(keystrata.Policy(max_encryptions_per_key=10))
    assert kc.policy == keystrata.Policy(max_encryptions_per_key=10)


def test_save_and_load(kc: keystrata.Keychain, age_root: keystrata.AgeRoot, tmp_path: Path) -> None:
    ct = kc.seal(b"persisted")
    saved = kc.save(age_root)
    assert saved.startswith(b"age-encryption.org/v1\n")
    again = keystrata.Keychain.load(saved, age_root)
    assert again.unseal(ct) == b"persisted"
    assert [k.key_id for k in again.keys()] == [k.key_id for k in kc.keys()]
    assert keystrata.Keychain.load(bytearray(saved), age_root).unseal(ct) == b"persisted"

    path = tmp_path / "kc.age"
    kc.save_file(path, age_root)
    assert keystrata.Keychain.load_file(str(path), age_root).unseal(ct) == b"persisted"
    with pytest.raises(keystrata.IoError):
        keystrata.Keychain.load_file(tmp_path / "missing.age", age_root)
    with pytest.raises(keystrata.FormatError):
        keystrata.Keychain.load(b"not an age file", age_root)
    with pytest.raises(keystrata.AuthenticationError):
        keystrata.Keychain.load(saved, keystrata.AgeRoot.generate())
    with pytest.raises(keystrata.AuthenticationError):
        keystrata.Keychain.load(saved, keystrata.PassphraseRoot("pw", work_factor=10))

    recipients_only = keystrata.AgeRoot(recipients=age_root.recipients)
    saved2 = kc.save(recipients_only)
    assert keystrata.Keychain.load(saved2, age_root).unseal(ct) == b"persisted"
    with pytest.raises(keystrata.InvalidInputError):
        keystrata.Keychain.load(saved2, recipients_only)


def test_passphrase_root() -> None:
    root = keystrata.PassphraseRoot("correct horse ☃", work_factor=10)
    assert root.work_factor == 10 and root.provider == "age-scrypt"
    assert repr(root) == "PassphraseRoot(work_factor=10)"
    kc = keystrata.Keychain.generate()
    again = keystrata.Keychain.load(kc.save(root), root)
    assert again.primary == kc.primary
    for bad_wf in (0, 31, 256, -1):
        with pytest.raises(keystrata.InvalidInputError):
            keystrata.PassphraseRoot("pw", work_factor=bad_wf)
    with pytest.raises(keystrata.InvalidInputError):
        keystrata.PassphraseRoot("")
    env = root.wrap_key(b"dek", b"ctx")
    assert env.provider == "age-scrypt"
    assert root.unwrap_key(env, b"ctx") == b"dek"
    root.close()
    with pytest.raises(keystrata.UnavailableError):
        root.health_check()


def test_age_root(age_root: keystrata.AgeRoot) -> None:
    ids = age_root.insecure_identity_strings()
    assert len(ids) == 1 and ids[0].startswith("AGE-SECRET-KEY-1")
    assert age_root.recipients[0].startswith("age1")
    r = repr(age_root)
    assert "AGE-SECRET-KEY" not in r and age_root.recipients[0] in r
    text = f"# created: today\n# public key: {age_root.recipients[0]}\n{ids[0]}\n"
    same = keystrata.AgeRoot(identities=[text])
    assert same.recipients == age_root.recipients
    with pytest.raises(keystrata.InvalidInputError) as info:
        keystrata.AgeRoot(identities=["AGE-SECRET-KEY-1NOTAKEY"])
    assert "NOTAKEY" not in str(info.value)  # never echoes a secret
    with pytest.raises(keystrata.InvalidInputError):
        keystrata.AgeRoot()
    with pytest.raises(keystrata.InvalidInputError):
        keystrata.AgeRoot(recipients=["age1nope"])
    env = same.wrap_key(b"dek", b"ctx")
    assert env.provider == "age" == same.provider and same.active_key_version() == 1
    assert age_root.unwrap_key(env, b"ctx") == b"dek"
    with pytest.raises(keystrata.AuthenticationError):
        age_root.unwrap_key(env, b"other")


def test_open_binds_to_a_file(age_root: keystrata.AgeRoot, tmp_path: Path) -> None:
    path = tmp_path / "bound.age"
    policy = keystrata.Policy(max_encryptions_per_key=5, usage_block=2)
    kc = keystrata.Keychain.open(path, age_root, policy)
    assert kc.is_bound and path.exists()
    events: List[keystrata.Event] = []
    kc.subscribe(events.append)
    cts = [kc.seal(b"%d" % i) for i in range(12)]
    rotations = [e for e in events if e.kind == "key_rotated"]
    assert len(rotations) == 2 and all(e.automatic for e in rotations)
    # Everything written is readable from the file alone.
    reloaded = keystrata.Keychain.load_file(path, age_root)
    assert [reloaded.unseal(c) for c in cts] == [b"%d" % i for i in range(12)]
    assert reloaded.policy == policy
    kc.close()
    # Reopening keeps the stored policy.
    again = keystrata.Keychain.open(path, age_root)
    assert again.policy == policy and again.primary == reloaded.primary
    again.rotate()
    assert keystrata.Keychain.load_file(path, age_root).primary == again.primary
    with pytest.raises(keystrata.AuthenticationError):
        keystrata.Keychain.open(path, keystrata.AgeRoot.generate())


def test_close_and_context_manager(age_root: keystrata.AgeRoot) -> None:
    with keystrata.Keychain.generate() as kc:
        ct = kc.seal(b"x")
        assert "unbound" in repr(kc)
    assert repr(kc) == "<Keychain (closed)>"
    for call in (
        lambda: kc.seal(b"x"),
        lambda: kc.unseal(ct),
        lambda: kc.encrypt(b"x"),
        lambda: kc.derive(b"", 32),
        lambda: kc.rotate(),
        lambda: kc.save(age_root),
        lambda: kc.health_check(),
        lambda: kc.active_key_version(),
        lambda: kc.primary,
        lambda: kc.insecure_export_tink_cleartext(),
        # One rule in every language: reading a closed keychain fails.
        lambda: kc.keys(),
        lambda: kc.policy,
        lambda: kc.refresh(),
    ):
        with pytest.raises(keystrata.UnavailableError):
            call()
    kc.close()  # idempotent
    with pytest.raises(ZeroDivisionError):
        with keystrata.Keychain.generate() as kc2:
            raise ZeroDivisionError
    with pytest.raises(keystrata.UnavailableError):
        kc2.seal(b"x")


def test_counters(kc: keystrata.Keychain) -> None:
    ct = kc.seal(b"x")
    kc.unseal(ct)
    with pytest.raises(keystrata.AuthenticationError):
        kc.unseal(ct, b"wrong")
    kc.decrypt(kc.encrypt(b"y"))
    kc.unwrap_key(kc.wrap_key(b"k"))
    kc.derive(b"", 32)
    kc.rotate()
    c = kc.counters()
    assert {k: v for k, v in c.items() if k != "errors"} == {
        "seal": 1,
        "unseal_ok": 1,
        "unseal_failed": 1,
        "encrypt": 1,
        "decrypt_ok": 1,
        "decrypt_failed": 0,
        "wrap": 1,
        "unwrap_ok": 1,
        "unwrap_failed": 0,
        "derive": 1,
        "rotations": 1,
        "sign": 0,
        "verify_ok": 0,
        "verify_failed": 0,
    }
    assert c["errors"]["Authentication"] == 1
    assert sum(c["errors"].values()) == 1
    assert list(c["errors"]) == [
        "InvalidInput", "Authentication", "UnknownKey", "KeyDisabled", "KeyDestroyed", "Policy",
        "Unsupported", "Backend", "Unavailable", "Format", "Io", "Internal",
    ]


def test_reprs_hold_no_secrets(kc: keystrata.Keychain) -> None:
    export = kc.insecure_export_tink_cleartext()
    material = [
        k["keyData"]["value"] for k in __import__("json").loads(export)["key"]
    ]
    texts = [repr(kc), repr(kc.keys()), repr(kc.policy), repr(kc.wrap_key(b"k"))]
    for t in texts:
        for m in material:
            assert m not in t
    assert "keys" in repr(kc) and str(kc.primary.key_id) in repr(kc)


def test_no_public_constructor() -> None:
    with pytest.raises(TypeError):
        keystrata.Keychain()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        keystrata.KeyInfo()  # type: ignore[call-arg]


def test_export_tink_cleartext_is_the_deprecated_name_of_the_insecure_export(
    kc: keystrata.Keychain,
) -> None:
    with pytest.warns(DeprecationWarning, match="insecure_export_tink_cleartext"):
        old = kc.export_tink_cleartext()  # type: ignore[deprecated]
    assert old == kc.insecure_export_tink_cleartext()
    assert __import__("json").loads(old)["primaryKeyId"] == kc.primary.key_id
