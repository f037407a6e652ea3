#!/usr/bin/env bash
# Generates include/keystrata.h from ffi/ with the pinned cbindgen,
# installing that cbindgen (from crates.io) if it is missing.
#   scripts/header.sh write   regenerate the committed header
#   scripts/header.sh check   fail if the committed header is out of date
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VERSION=0.29.4
if ! command -v cbindgen >/dev/null 2>&1 || [ "$(cbindgen --version 2>/dev/null)" != "cbindgen $VERSION" ]; then
  echo "header: cargo install cbindgen $VERSION"
  cargo install --locked cbindgen --version "=$VERSION"   # minutes: show its progress
fi
# Plain cbindgen on ffi/ with ffi/cbindgen.toml: what any reviewer runs.
# (The version lines in cbindgen.toml are checked against Cargo.toml by
# ffi/tests/header_version.rs.)
config=ffi/cbindgen.toml
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
case "${1:-check}" in
  write)
    cbindgen --quiet --config "$config" --crate keystrata-ffi --output include/keystrata.h ffi
    ;;
  check)
    cbindgen --quiet --config "$config" --crate keystrata-ffi --output "$tmp" ffi
    if ! diff -u include/keystrata.h "$tmp"; then
      echo "header: include/keystrata.h is out of date: run 'make header'" >&2
      exit 1
    fi
    echo "header: include/keystrata.h is up to date"
    ;;
  *) echo "usage: $0 write|check" >&2; exit 2 ;;
esac
