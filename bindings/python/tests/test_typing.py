"""The typed usage file runs (mypy --strict and stubtest run in test.sh)."""

from __future__ import annotations

import typed_usage


def test_typed_usage_runs() -> None:
    assert typed_usage.main() == 0
