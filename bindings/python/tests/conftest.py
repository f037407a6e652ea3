"""Shared fixtures for the keystrata Python tests."""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

import keystrata

REPO = Path(__file__).resolve().parents[3]
VECTORS = Path(os.environ.get("KEYSTRATA_VECTORS", REPO / "tests" / "vectors"))


def load_vectors(name: str) -> Any:
    """A JSON file from tests/vectors/; skip the test if it is absent
    (fail under test.sh)."""
    path = VECTORS / name
    if not path.exists():
        if require_peers():
            pytest.fail(f"{path} not present")
        pytest.skip(f"{path} not present")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture
def kc() -> Iterator[keystrata.Keychain]:
    with keystrata.Keychain.generate() as k:
        yield k


@pytest.fixture(scope="session")
def age_root() -> keystrata.AgeRoot:
    return keystrata.AgeRoot.generate()


def require_peers() -> bool:
    """Whether a missing interop peer (the age CLI, Tink) fails the test
    instead of skipping it. bindings/python/test.sh sets this."""
    return os.environ.get("KEYSTRATA_REQUIRE_PEERS") == "1"


def need_tool(name: str) -> str:
    """The path of a command-line tool, or skip (fail under test.sh)."""
    path = shutil.which(name)
    if path is None:
        if require_peers():
            pytest.fail(f"{name} is not installed (run scripts/setup.sh)")
        pytest.skip(f"{name} is not installed")
    return path


def need_module(name: str) -> Any:
    """An importable module, or skip (fail under test.sh)."""
    if require_peers():
        return importlib.import_module(name)
    return pytest.importorskip(name)


# --- Every error message the suite provokes, scanned for secrets ----------
#
# Messages never contain secret material (issue 13): each keystrata
# exception made during the session is recorded here, and
# test_zz_error_messages.py (collected last) scans them all.
ERROR_MESSAGES: list = []


@pytest.fixture(scope="session", autouse=True)
def _record_error_messages() -> Iterator[None]:
    original = keystrata.exceptions.Error.__init__

    def recording(self: Any, message: str = "", kind: Any = None, code: Any = None) -> None:
        ERROR_MESSAGES.append(str(message))
        original(self, message, kind, code)

    keystrata.exceptions.Error.__init__ = recording  # type: ignore[method-assign]
    try:
        yield
    finally:
        keystrata.exceptions.Error.__init__ = original  # type: ignore[method-assign]
