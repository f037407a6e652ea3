#!/usr/bin/env bash
# Runs the README's C, Python and Go quick starts exactly as written, so
# they stay true. (The Rust quick start runs as a doctest of the core crate.)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
export GOTOOLCHAIN=local
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

block() { # block LANG: the first fenced block of that language in README.md
  awk -v lang="$1" '$0 == "```" lang { on = 1; next } on && /^```/ { exit } on { print }' README.md
}
run() { # run NAME COMMAND...   (in its own directory: each makes keychain.age)
  mkdir -p "$tmp/$1"
  if (cd "$tmp/$1" && "${@:2}") >"$tmp/$1.log" 2>&1; then
    passed=$((passed + 1)); echo "readme: $1 ok"
  else
    failed=$((failed + 1)); echo "readme: $1 FAILED"; cat "$tmp/$1.log"
  fi
}

[ -f target/release/libkeystrata.a ] || make --no-print-directory lib >/dev/null

{ printf '#include <stdio.h>\n#include "keystrata.h"\nint main(void) {\n'; block c; printf 'return 0;\n}\n'; } >"$tmp/quick.c"
run c sh -c "cc -std=c11 -Wall -Wextra -Wpedantic -Werror -I'$REPO/include' ../quick.c '$REPO/target/release/libkeystrata.a' -lpthread -ldl -lm -lrt -lutil -o quick_c && ./quick_c"

block python >"$tmp/quick.py"
run python "$REPO/.venv/bin/python" ../quick.py

mkdir -p "$tmp/go"
gover="$(awk '$1 == "go" { print $2; exit }' bindings/go/go.mod)"
{
  printf 'package main\n\nimport (\n\t"context"\n\t"errors"\n\n\tkeystrata "github.com/keystrata/keystrata/bindings/go"\n)\n\nfunc run() error {\n'
  block go
  printf '}\n\nfunc main() {\n\tif err := run(); err != nil {\n\t\tpanic(err)\n\t}\n}\n'
} >"$tmp/go/main.go"
printf 'module quick\n\ngo %s\n\nrequire github.com/keystrata/keystrata/bindings/go v0.0.0\n\nreplace github.com/keystrata/keystrata/bindings/go => %s/bindings/go\n' "$gover" "$REPO" >"$tmp/go/go.mod"
run go go run .

echo "readme: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
