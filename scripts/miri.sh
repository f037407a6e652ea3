#!/usr/bin/env bash
# Runs the tests of the C ABI's pointer layer (ffi/src/abi.rs: error
# objects, buffers, argument and caller-sized output helpers) under Miri,
# through the crate ffi/miri, which compiles that module alone (no aws-lc),
# so a cold run takes seconds plus, once per machine, Miri's sysroot.
# Installs the nightly toolchain and its miri component if they are missing.
#   bash scripts/miri.sh      (make miri)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

die() { echo "miri.sh: $*" >&2; exit 2; }

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "==> installing the nightly toolchain (rustup)"
  rustup toolchain install nightly --profile minimal || die "cannot install nightly Rust"
fi
if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^miri'; then
  echo "==> installing the miri component (rustup)"
  rustup +nightly component add miri rust-src || die "cannot install miri"
fi
exec cargo +nightly miri test -p keystrata-ffi-miri
