"""Rewrap (a ciphertext made again under the current primary, the
plaintext never handed out), the key a ciphertext names, and the metrics
text, checked by the real Prometheus parser (prometheus_client)."""

from __future__ import annotations

import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

import keystrata


def two_keys() -> tuple[keystrata.Keychain, int, int]:
    kc = keystrata.Keychain.generate()
    old = kc.primary.key_id
    new = kc.add_key("encrypt").key_id
    return kc, old, new


def test_rewrap_moves_every_kind_to_the_primary() -> None:
    kc, old, new = two_keys()
    sealed = kc.seal(b"secret", b"aad")
    doc = bytes(range(256)) * 20
    blob = kc.encrypt(doc, b"aad")
    env = kc.wrap_key(b"\x42" * 32, b"ctx")
    assert keystrata.sealed_key_id(sealed) == old
    assert keystrata.encrypted_key_id(blob) == old
    kc.promote(new)
    s2 = kc.rewrap_sealed(sealed, b"aad")
    b2 = kc.rewrap_encrypted(blob)
    e2 = kc.rewrap_envelope(env, b"ctx")
    assert keystrata.sealed_key_id(s2) == new and len(s2) == len(sealed)
    assert keystrata.encrypted_key_id(b2) == new and b2[71:] == blob[71:]
    assert e2.key_id == str(new)
    kc.destroy(old)
    assert kc.unseal(s2, b"aad") == b"secret"
    assert kc.decrypt(b2, b"aad") == doc
    assert kc.unwrap_key(e2, b"ctx") == b"\x42" * 32
    with pytest.raises(keystrata.KeyDestroyedError):
        kc.rewrap_sealed(sealed, b"aad")
    with pytest.raises(keystrata.KeyDestroyedError):
        kc.rewrap_encrypted(blob)
    with pytest.raises(keystrata.AuthenticationError):
        kc.rewrap_sealed(s2, b"other")
    with pytest.raises(keystrata.AuthenticationError):
        kc.rewrap_envelope(e2, b"other")
    with pytest.raises(keystrata.FormatError):
        kc.rewrap_encrypted(blob[:50])
    with pytest.raises(keystrata.FormatError):
        keystrata.sealed_key_id(b"\x02abcd")
    with pytest.raises(keystrata.FormatError):
        keystrata.encrypted_key_id(b"")
    with pytest.raises(TypeError):
        kc.rewrap_envelope(b"not an envelope")  # type: ignore[arg-type]
    kc.close()
    with pytest.raises(keystrata.UnavailableError):
        kc.rewrap_sealed(s2, b"aad")


def _families(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """name -> {(sample name, sorted labels): value}, through the real parser."""
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for fam in text_string_to_metric_families(text):
        samples = out.setdefault(fam.name, {})
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_text_parses_and_counts() -> None:
    kc = keystrata.Keychain.generate()
    ct = b""
    for _ in range(40):
        ct = kc.seal(b"s", b"")
    kc.unseal(ct, b"")
    with pytest.raises(keystrata.AuthenticationError):
        kc.unseal(ct, b"wrong")
    kc.derive_origin_key("api.example.com", "i-1", 1)
    kc.derive_origin_key('we"ird\\origin', "i-1", 1)
    kc.derive_origin_key(b"\x00binary", "i-1", 1)
    kc.derive(b"info", 32)
    kc.rotate()
    kc.rotate_derivation()
    kc.rotate_signing("ed25519")
    kc.sign(b"m")
    kc.rotate_streaming()
    with pytest.raises(keystrata.UnknownKeyError):
        kc.unseal(b"\x01\x00\x00\x00\x07" + bytes(28), b"")
    kc.rewrap_sealed(ct, b"")

    f = _families(kc.metrics_text())
    seal = f["kms_seal"]
    assert seal[("kms_seal_total", (("ok", "true"),))] == 40
    assert seal[("kms_seal_total", (("ok", "false"),))] == 0
    unseal = f["kms_unseal"]
    assert unseal[("kms_unseal_total", (("ok", "true"),))] == 1
    assert unseal[("kms_unseal_total", (("ok", "false"),))] == 2
    assert f["kms_rewrap"][("kms_rewrap_total", (("ok", "true"),))] == 1
    errors = f["kms_errors"]
    assert errors[("kms_errors_total", (("kind", "Authentication"),))] == 1
    assert errors[("kms_errors_total", (("kind", "UnknownKey"),))] == 1
    assert len(errors) == 12
    derivations = f["kms_derivations"]
    assert derivations[("kms_derivations_total", (("origin", "api.example.com"),))] == 1
    assert derivations[("kms_derivations_total", (("origin", 'we"ird\\origin'),))] == 1
    assert derivations[("kms_derivations_total", (("origin", "_other"),))] == 1
    assert derivations[("kms_derivations_total", (("origin", ""),))] == 1
    rotations = f["kms_rotations"]
    for scope in ("encrypt", "derive", "sign", "stream"):
        assert rotations[("kms_rotations_total", (("scope", scope),))] == 1, scope
    assert kc.counters()["rotations"] == 4
    hist = f["kms_operation_duration_seconds"]
    # Derivations and signatures are timed every call; seals one in 16 per
    # thread (this thread sealed 40 times here: 2 or 3 of them, depending on
    # where its count stood).
    assert hist[("kms_operation_duration_seconds_count", (("op", "derive"),))] == 4
    assert hist[("kms_operation_duration_seconds_count", (("op", "sign"),))] == 1
    assert 2 <= hist[("kms_operation_duration_seconds_count", (("op", "seal"),))] <= 3
    inf = hist[("kms_operation_duration_seconds_bucket", (("le", "+Inf"), ("op", "derive")))]
    assert inf == 4
    assert hist[("kms_operation_duration_seconds_sum", (("op", "derive"),))] > 0
    # Closed: still readable (the final figures).
    kc.close()
    assert "kms_seal_total" in kc.metrics_text()


def test_metrics_from_many_threads_add_up() -> None:
    kc = keystrata.Keychain.generate()

    def work() -> None:
        for _ in range(500):
            kc.seal(b"x", b"")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    f = _families(kc.metrics_text())
    assert f["kms_seal"][("kms_seal_total", (("ok", "true"),))] == 4000
    timed = f["kms_operation_duration_seconds"][("kms_operation_duration_seconds_count", (("op", "seal"),))]
    # One in 16 on each thread: each thread's 500 seals give 31 or 32.
    assert 8 * 31 <= timed <= 8 * 32


def test_the_example_in_docs_metrics_runs() -> None:
    from conftest import REPO

    text = (REPO / "docs" / "METRICS.md").read_text(encoding="utf-8")
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    code = compile(block, "docs/METRICS.md", "exec")
    exec(code, {"__name__": "docs_metrics"})  # noqa: S102 - our own doc
