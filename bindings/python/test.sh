#!/usr/bin/env bash
# Build, install and test the keystrata Python binding.
#
#   bash bindings/python/test.sh            # uses the repo venv (.venv, made by scripts/setup.sh)
#
# Steps (each one runs even if an earlier one failed; the exit status is
# non-zero if any failed):
#   1. cargo fmt --check and clippy -D warnings on the binding crate
#   2. pip install -v ./bindings/python into the venv (a release build by
#      maturin in the workspace's target/, which already holds the core and
#      aws-lc from `make lib`; -v shows cargo's progress)
#   3. pytest bindings/python/tests (missing interop peers fail, not skip)
#   4. mypy --strict on bindings/python/tests/typed_usage.py
#   5. python -m mypy.stubtest keystrata (the .pyi stubs match the module)
#
# Idempotent: re-running reinstalls the same package.
#
# Environment:
#   VENV=path            another venv (default: <repo>/.venv)
#   KEYSTRATA_PY_CARGO_CHECKS=0
#                        leave out step 1 (scripts/test.sh does: its rust-fmt
#                        and rust-clippy suites already check this crate, a
#                        workspace member, with the same lints)
#   KEYSTRATA_PY_ISOLATED=1
#                        install with pip's build isolation, exactly as a user
#                        on a fresh machine does (downloads maturin from PyPI)
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
  echo "python-binding: no venv at $VENV; run: bash scripts/setup.sh" >&2
  exit 2
fi
# maturin (the build backend) and the venv's tools come first on PATH.
export PATH="$VENV/bin:$PATH"
export PYO3_PYTHON="$PY"

failed=()
step() {
  # step NAME COMMAND...: run one step, report its time and outcome.
  local name="$1"; shift
  local t0=$SECONDS
  echo "python-binding: == $name"
  if "$@"; then
    echo "python-binding: ok: $name ($((SECONDS - t0))s)"
  else
    echo "python-binding: FAILED: $name ($((SECONDS - t0))s)" >&2
    failed+=("$name")
  fi
}

# clippy in the dev profile: it shares the dependencies' check results with
# the workspace's rust-clippy suite instead of checking the whole tree again
# in release.
cargo_checks() {
  (cd "$HERE" && cargo fmt --check && cargo clippy --quiet --all-targets -- -D warnings)
}

install() {
  local isolation=(--no-build-isolation)
  if [ "${KEYSTRATA_PY_ISOLATED:-0}" = "1" ]; then
    isolation=()
  fi
  "$PY" -m pip install -v --disable-pip-version-check --force-reinstall --no-deps \
    "${isolation[@]}" "$HERE"
}

run_pytest() {
  (cd "$REPO" && KEYSTRATA_REQUIRE_PEERS=1 "$PY" -m pytest -p no:cacheprovider -ra "$HERE/tests")
}

run_mypy() {
  (cd "$HERE/tests" && "$PY" -m mypy --strict --no-incremental typed_usage.py)
}

run_stubtest() {
  # From an empty directory, so `keystrata` is the installed package.
  local d
  d="$(mktemp -d)"
  (cd "$d" && "$PY" -m mypy.stubtest keystrata)
  local rc=$?
  rm -rf "$d"
  return $rc
}

if [ "${KEYSTRATA_PY_CARGO_CHECKS:-1}" != "0" ]; then
  step "cargo fmt + clippy (bindings/python)" cargo_checks
fi
step "pip install ./bindings/python" install
step "pytest bindings/python/tests" run_pytest
step "mypy --strict typed_usage.py" run_mypy
step "stubtest keystrata" run_stubtest

if [ ${#failed[@]} -ne 0 ]; then
  echo "python-binding: ${#failed[@]} step(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "python-binding: all steps passed"
