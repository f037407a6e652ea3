"""The package is usable from help(): every public item is documented, and
the demo runs."""

from __future__ import annotations

import inspect
import pydoc
import subprocess
import sys

import keystrata

from conftest import REPO

CLASSES = [
    keystrata.Keychain,
    keystrata.AgeRoot,
    keystrata.PassphraseRoot,
    keystrata.Envelope,
    keystrata.KeyInfo,
    keystrata.Policy,
    keystrata.Event,
    keystrata.RotationPlan,
    keystrata.EncryptingWriter,
    keystrata.DecryptingReader,
    keystrata.SeekableDecryptor,
]


def test_every_public_name_is_documented() -> None:
    assert keystrata.__doc__ and "Quick start" in keystrata.__doc__
    for name in keystrata.__all__:
        obj = getattr(keystrata, name)
        if isinstance(obj, str) or name == "Root":  # a typing.Union alias
            continue
        assert inspect.getdoc(obj), f"keystrata.{name} has no docstring"


def test_every_public_member_is_documented() -> None:
    for cls in CLASSES:
        assert cls.__module__ == "keystrata"
        for name, member in vars(cls).items():
            if name.startswith("_"):
                continue
            assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"


def test_signatures_are_visible() -> None:
    assert str(inspect.signature(keystrata.Keychain.seal)) == "(self, /, plaintext, aad=b'')"
    assert str(inspect.signature(keystrata.Keychain.open)) == "(location, root, policy=None)"
    assert str(inspect.signature(keystrata.hkdf_sha256)) == "(salt, ikm, info, length)"
    assert (
        str(inspect.signature(keystrata.Keychain.encrypting_writer))
        == "(self, /, fileobj, aad=b'')"
    )
    assert (
        str(inspect.signature(keystrata.Keychain.insecure_export_tink_cleartext))
        == "(self, /, purpose='encrypt')"
    )


def test_help_renders() -> None:
    text = pydoc.render_doc(keystrata, renderer=pydoc.plaintext)
    for word in ("Keychain", "seal", "AuthenticationError", "derive_origin_key", "Policy"):
        assert word in text


def test_demo_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / "demo.py")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    steps = [line.split(".", 1)[0] for line in out.splitlines() if line[:1].isdigit()]
    assert steps == [str(i) for i in range(1, 11)]
    assert "10. a tampered ciphertext is refused: AuthenticationError" in out
