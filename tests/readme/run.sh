#!/usr/bin/env bash
# Runs the README's C, Python and Go quick starts exactly as written, so
# they stay true. (The Rust quick start runs as a doctest of the core crate.)
#
# C and Go: the install recipe (the section's `sh` block) runs as written
# in a fresh HOME where ~/src/keystrata is this checkout, from a project
# directory outside the repository holding the section's program; the
# library goes to ~/.local, as the README says.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
export GOTOOLCHAIN=local
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

# section_block SECTION LANG: the first fenced LANG block under "## SECTION".
section_block() {
  awk -v sec="## $1" -v lang="$2" '
    /^## / { in_sec = ($0 == sec) }
    in_sec && $0 == "```" lang { on = 1; next }
    on && /^```/ { exit }
    on { print }' README.md
}
run() { # run NAME COMMAND...   (in its own directory: each makes keychain.age)
  mkdir -p "$tmp/$1"
  if (cd "$tmp/$1" && "${@:2}") >"$tmp/$1.log" 2>&1; then
    passed=$((passed + 1)); echo "readme: $1 ok"
  else
    failed=$((failed + 1)); echo "readme: $1 FAILED"; cat "$tmp/$1.log"
  fi
}

# A fresh HOME with the checkout at ~/src/keystrata; the toolchains and Go's
# build cache stay where they are (only the paths the README names move).
home="$tmp/home"
mkdir -p "$home/src"
ln -s "$REPO" "$home/src/keystrata"
toolenv=(HOME="$home" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
  GOCACHE="$(go env GOCACHE)" GOMODCACHE="$home/go/pkg/mod" GOPROXY=off GOFLAGS=
  PATH="$PATH")

# --- C: app.c is the section's program; the sh block builds and runs it -----
mkdir -p "$tmp/c"
{ printf '#include <stdio.h>\n#include "keystrata.h"\nint main(void) {\n'; section_block "Quick start (C)" c; printf 'return 0;\n}\n'; } >"$tmp/c/app.c"
section_block "Quick start (C)" sh >"$tmp/c.sh"
grep -q . "$tmp/c.sh" || { echo "readme: no sh block in the C quick start"; exit 1; }
run c env -u PKG_CONFIG_PATH "${toolenv[@]}" bash -euxo pipefail "$tmp/c.sh"
# The block builds the static variant too; it runs as well, in a directory
# of its own (the first run's keychain.age is under another age root).
mkdir -p "$tmp/c-static"
run c-static sh -c "cp ../c/app-static . && ! ldd ./app-static | grep libkeystrata && ./app-static"

# --- Python ----------------------------------------------------------------
section_block "Quick start (Python)" python >"$tmp/quick.py"
run python "$REPO/.venv/bin/python" ../quick.py

# --- Go: a module of its own; main.go wraps the section's go block ----------
mkdir -p "$tmp/go"
gover="$(awk '$1 == "go" { print $2; exit }' bindings/go/go.mod)"
{
  printf 'package main\n\nimport (\n\t"context"\n\t"errors"\n\n\tkeystrata "github.com/keystrata/keystrata/bindings/go"\n)\n\nfunc run() error {\n'
  section_block "Quick start (Go)" go
  printf '}\n\nfunc main() {\n\tif err := run(); err != nil {\n\t\tpanic(err)\n\t}\n}\n'
} >"$tmp/go/main.go"
printf 'module example.com/quick\n\ngo %s\n' "$gover" >"$tmp/go/go.mod"
section_block "Quick start (Go)" sh >"$tmp/go.sh"
grep -q . "$tmp/go.sh" || { echo "readme: no sh block in the Go quick start"; exit 1; }
run go env -u PKG_CONFIG_PATH "${toolenv[@]}" bash -euxo pipefail "$tmp/go.sh"

echo "readme: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
