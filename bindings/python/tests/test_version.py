"""One version: the package metadata (maturin takes it from Cargo) and
``keystrata.__version__`` (the crate's, compiled in) both equal the
workspace version in the root Cargo.toml."""

import importlib.metadata
import pathlib
import re

import keystrata

CARGO_TOML = pathlib.Path(__file__).resolve().parents[3] / "Cargo.toml"


def workspace_version() -> str:
    text = CARGO_TOML.read_text()
    section = re.search(r"^\[workspace\.package\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert section, f"no [workspace.package] in {CARGO_TOML}"
    version = re.search(r'^version\s*=\s*"([^"]+)"', section.group(1), re.M)
    assert version, f"no version in [workspace.package] of {CARGO_TOML}"
    return version.group(1)


def test_version_is_the_workspace_version() -> None:
    want = workspace_version()
    assert keystrata.__version__ == want
    assert importlib.metadata.version("keystrata") == want
