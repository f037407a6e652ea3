"""What an object-store gateway needs from a keychain (docs/FORMAT.md §4.1,
§4.2): the metadata context computed by the core, the compact wrap form,
and the two-step rotation (prepare, then promote)."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

import pytest

import keystrata

from conftest import load_vectors


# ---------------------------------------------------------------------------
# metadata_context
# ---------------------------------------------------------------------------


def metadata_cases() -> List[Any]:
    return list(load_vectors("keystrata.json")["keychain"]["metadata_context"])


def test_metadata_context_vectors() -> None:
    cases = metadata_cases()
    assert any("error" in c for c in cases), "the duplicate-name case is missing"
    for c in cases:
        entries: List[Tuple[str, str]] = [(k, v) for k, v in c["entries"]]
        bind = c["binding"]
        if "error" in c:
            assert c["error"] == "InvalidInput", c["comment"]
            with pytest.raises(keystrata.InvalidInputError) as ei:
                keystrata.metadata_context(entries, bind)
            assert ei.value.code == c["error_code"]
            continue
        want = bytes.fromhex(c["context_hex"])
        assert keystrata.metadata_context(entries, bind) == want, c["comment"]
        # The entries exactly as JSON gives them: lists, not tuples.
        assert keystrata.metadata_context(c["entries"], bind) == want, c["comment"]
        # As a mapping, when no name repeats.
        assert keystrata.metadata_context(dict(entries), bind=bind) == want, c["comment"]
        if bind == "nothing":
            assert keystrata.metadata_context(entries) == want
            assert keystrata.metadata_context(entries, None) == want


def test_metadata_context_bind_shapes() -> None:
    meta = {"bucket": "photos", "x-amz-meta-owner": "alice", "Content-Type": "image/png"}
    want = b"bucket=photos\nx-amz-meta-owner=alice\n"
    for bind in (
        ["bucket", "x-amz-meta-owner"],
        ("x-amz-meta-owner", "bucket"),
        {"bucket", "x-amz-meta-owner", "absent"},
        (n for n in ["bucket", "x-amz-meta-owner"]),
    ):
        assert keystrata.metadata_context(meta, bind) == want
    assert keystrata.metadata_context(meta, []) == b""
    assert keystrata.metadata_context(meta.items(), "all") == keystrata.metadata_context(
        meta, "all"
    )
    # A name bound twice is still one entry.
    assert keystrata.metadata_context(meta, ["bucket", "bucket"]) == b"bucket=photos\n"


def test_metadata_context_duplicate_only_matters_when_bound() -> None:
    pairs = [("bucket", "a"), ("bucket", "b"), ("k", "v")]
    assert keystrata.metadata_context(pairs) == b""
    assert keystrata.metadata_context(pairs, ["k"]) == b"k=v\n"
    with pytest.raises(keystrata.InvalidInputError, match="bucket"):
        keystrata.metadata_context(pairs, ["bucket"])


def test_metadata_context_bad_bind() -> None:
    meta = {"bucket": "photos"}
    for bad in ("All", "only", "", "some"):
        with pytest.raises(keystrata.InvalidInputError) as ei:
            keystrata.metadata_context(meta, bad)
        assert "bind" in str(ei.value)
    with pytest.raises(keystrata.InvalidInputError) as ei:
        keystrata.metadata_context(meta, "x" * 100_000)
    assert len(str(ei.value)) < 200, "the message echoes unbounded input"
    for wrong in (b"all", 3, [b"bucket"], ["bucket", 1]):
        with pytest.raises(TypeError):
            keystrata.metadata_context(meta, wrong)  # type: ignore[arg-type]


def test_metadata_context_bad_metadata() -> None:
    for wrong in ("bucket=photos", b"x", 3, {"a": 1}, {1: "a"}, [("a",)], [("a", "b", "c")], ["ab"]):
        with pytest.raises(TypeError):
            keystrata.metadata_context(wrong, "all")  # type: ignore[arg-type]


def test_binding_opt_in_story(kc: keystrata.Keychain) -> None:
    """A gateway wraps with the user's metadata and unwraps with the stored,
    expanded map: binding named entries gives the same context both times;
    binding everything does not."""
    user_meta = {"bucket": "photos", "x-amz-meta-owner": "alice"}
    dek = os.urandom(32)
    bind = ["bucket"]

    wrap_ctx = keystrata.metadata_context(user_meta, bind)
    assert wrap_ctx == b"bucket=photos\n"
    env = kc.wrap_key(dek, wrap_ctx, form="compact")

    stored: Dict[str, str] = {
        **user_meta,
        **env.to_metadata(),
        "Content-Type": "image/png",
        "x-amz-meta-encryption-algorithm": "AES256-GCM",
    }
    unwrap_ctx = keystrata.metadata_context(stored, bind)
    assert unwrap_ctx == wrap_ctx
    assert kc.unwrap_key(keystrata.Envelope.from_metadata(stored), unwrap_ctx) == dek

    # Bound to every entry, the expanded map no longer matches.
    env_all = kc.wrap_key(dek, keystrata.metadata_context(user_meta, "all"))
    stored_all = {**stored, **env_all.to_metadata()}
    with pytest.raises(keystrata.AuthenticationError):
        kc.unwrap_key(env_all, keystrata.metadata_context(stored_all, "all"))

    # A bound entry changed at rest fails.
    tampered = {**stored, "bucket": "other"}
    with pytest.raises(keystrata.AuthenticationError):
        kc.unwrap_key(env, keystrata.metadata_context(tampered, bind))


# ---------------------------------------------------------------------------
# wrap_key(form=...)
# ---------------------------------------------------------------------------


def test_compact_wrap(kc: keystrata.Keychain) -> None:
    dek = os.urandom(32)
    env = kc.wrap_key(dek, b"ctx", form="compact")
    assert len(env.ciphertext) == 61
    assert env.ciphertext[0] == 0x02
    assert env.key_version == kc.active_key_version()
    assert kc.unwrap_key(env, b"ctx") == dek
    assert kc.unwrap_key(keystrata.Envelope.from_metadata(env.to_metadata()), b"ctx") == dek
    with pytest.raises(keystrata.AuthenticationError):
        kc.unwrap_key(env, b"other")

    full = kc.wrap_key(dek, b"ctx", form="full")
    assert len(full.ciphertext) == 65 and full.ciphertext[0] == 0x01
    default = kc.wrap_key(dek, b"ctx")
    assert len(default.ciphertext) == 65 and default.ciphertext[0] == 0x01
    assert kc.unwrap_key(full, b"ctx") == dek

    # Sizes follow the key: key + 29 compact, key + 33 full.
    assert len(kc.wrap_key(bytes(16), form="compact").ciphertext) == 45


def test_compact_wrap_survives_rotation(kc: keystrata.Keychain) -> None:
    dek = os.urandom(32)
    env = kc.wrap_key(dek, form="compact")
    kc.rotate()
    assert kc.unwrap_key(env) == dek
    assert kc.wrap_key(dek, form="compact").key_version == env.key_version + 1


def test_bad_wrap_form(kc: keystrata.Keychain) -> None:
    for bad in ("Compact", "FULL", "", "tink"):
        with pytest.raises(keystrata.InvalidInputError) as ei:
            kc.wrap_key(bytes(32), form=bad)
        assert "form" in str(ei.value)
    with pytest.raises(keystrata.InvalidInputError) as ei:
        kc.wrap_key(bytes(32), form="y" * 100_000)
    assert len(str(ei.value)) < 200
    with pytest.raises(TypeError):
        kc.wrap_key(bytes(32), form=2)  # type: ignore[arg-type]
    assert kc.counters()["wrap"] == 0


# ---------------------------------------------------------------------------
# prepare_rotation / promote_version
# ---------------------------------------------------------------------------


def test_rotation_plan_value() -> None:
    p = keystrata.RotationPlan(1, 2, 77)
    assert (p.current_version, p.target_version, p.target_key_id) == (1, 2, 77)
    assert p == keystrata.RotationPlan(1, 2, 77)
    assert p != keystrata.RotationPlan(1, 3, 77)
    assert hash(p) == hash(keystrata.RotationPlan(1, 2, 77))
    assert repr(p) == "RotationPlan(current_version=1, target_version=2, target_key_id=77)"
    with pytest.raises(AttributeError):
        p.target_version = 3  # type: ignore[misc]


def test_prepare_and_promote(kc: keystrata.Keychain) -> None:
    before = kc.primary
    plan = kc.prepare_rotation()
    assert isinstance(plan, keystrata.RotationPlan)
    assert plan.current_version == before.version
    assert plan.target_version == before.version + 1
    # Prepared, not active: the primary is unchanged, the key exists.
    assert kc.primary == before
    staged = [k for k in kc.keys() if k.key_id == plan.target_key_id]
    assert len(staged) == 1 and not staged[0].primary and staged[0].status == "enabled"
    # Preparing again without a target picks the same staged key.
    assert kc.prepare_rotation(None) == plan
    assert len(kc.keys()) == 3

    dek = os.urandom(32)
    old_env = kc.wrap_key(dek)
    info = kc.promote_version(plan)
    assert isinstance(info, keystrata.KeyInfo)
    assert info.primary and info.key_id == plan.target_key_id
    assert info.version == plan.target_version
    assert kc.primary.key_id == plan.target_key_id
    assert kc.active_key_version() == plan.target_version
    # Both versions keep unwrapping.
    assert kc.unwrap_key(old_env) == dek
    assert kc.wrap_key(dek).key_version == plan.target_version


def test_prepare_with_target_version(kc: keystrata.Keychain) -> None:
    staged = kc.add_key()
    plan = kc.prepare_rotation(staged.version)
    assert plan == keystrata.RotationPlan(kc.primary.version, staged.version, staged.key_id)
    # A plan rebuilt from its fields works as well (another process).
    rebuilt = keystrata.RotationPlan(plan.current_version, plan.target_version, plan.target_key_id)
    assert kc.promote_version(rebuilt).key_id == staged.key_id


def test_stale_plan_conflicts(kc: keystrata.Keychain) -> None:
    plan = kc.prepare_rotation()
    kc.rotate()  # another rotation in between
    primary = kc.primary
    with pytest.raises(keystrata.PolicyError) as ei:
        kc.promote_version(plan)
    assert "conflict" in str(ei.value)
    assert kc.primary == primary, "a conflicting promote changed the primary"


def test_promote_twice_conflicts(kc: keystrata.Keychain) -> None:
    plan = kc.prepare_rotation()
    kc.promote_version(plan)
    with pytest.raises(keystrata.PolicyError):
        kc.promote_version(plan)


def test_prepare_errors(kc: keystrata.Keychain) -> None:
    with pytest.raises(keystrata.UnknownKeyError):
        kc.prepare_rotation(99)
    with pytest.raises(keystrata.PolicyError):
        kc.prepare_rotation(kc.primary.version)  # already active
    staged = kc.add_key()
    kc.disable(staged.key_id)
    with pytest.raises(keystrata.KeyDisabledError):
        kc.prepare_rotation(staged.version)
    with pytest.raises(TypeError):
        kc.promote_version((1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        kc.prepare_rotation(-1)


def test_promote_unknown_target(kc: keystrata.Keychain) -> None:
    current = kc.primary.version
    with pytest.raises(keystrata.UnknownKeyError):
        kc.promote_version(keystrata.RotationPlan(current, current + 5, 123456))


def test_rotation_on_bound_keychain(tmp_path: Any, age_root: keystrata.AgeRoot) -> None:
    path = tmp_path / "kc.age"
    with keystrata.Keychain.open(path, age_root) as kc:
        plan = kc.prepare_rotation()
        # The staged key is in the file before promote.
        with keystrata.Keychain.load_file(path, age_root) as other:
            assert plan.target_key_id in [k.key_id for k in other.keys()]
            assert other.primary.version == plan.current_version
        kc.promote_version(plan)
        with keystrata.Keychain.load_file(path, age_root) as other:
            assert other.primary.key_id == plan.target_key_id


def test_rotation_events(kc: keystrata.Keychain) -> None:
    seen: List[keystrata.Event] = []
    kc.subscribe(seen.append)
    plan = kc.prepare_rotation()
    kc.promote_version(plan)
    kinds = [e.kind for e in seen]
    assert "key_created" in kinds
    assert any(e.key_id == plan.target_key_id for e in seen if e.kind != "key_created"), kinds
