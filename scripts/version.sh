#!/usr/bin/env bash
# Prints keystrata's version: `version` in [workspace.package] of the root
# Cargo.toml, the one place it is written. The header (scripts/header.sh),
# the pkg-config files (Makefile) and, through Cargo, the C library's
# ks_version() and the Python package read it from there.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
v="$(awk '/^\[/ { s = ($0 == "[workspace.package]") }
          s && $1 == "version" && $2 == "=" { gsub(/"/, "", $3); print $3; exit }' "$REPO/Cargo.toml")"
if [[ ! "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]; then
  echo "version.sh: no version in [workspace.package] of $REPO/Cargo.toml" >&2
  exit 1
fi
echo "$v"
