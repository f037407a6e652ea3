#!/usr/bin/env bash
# Tink interop, both directions:
#   1. keystrata writes ciphertexts (seal + envelope, two keys, empty and
#      100 KiB messages) and its keychain as a Tink cleartext keyset;
#   2. Tink (Python) decrypts all of them, and writes its own ciphertexts
#      under the same keyset;
#   3. keystrata imports the keyset and decrypts Tink's ciphertexts.
# Exits non-zero on any failure. Needs the venv from scripts/setup.sh.
#
#   bash tests/tink/interop.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${KEYSTRATA_PYTHON:-$repo/.venv/bin/python}"
if [[ ! -x "$python" ]]; then
    echo "interop.sh: $python not found; run scripts/setup.sh first" >&2
    exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$repo"
cargo build --quiet -p keystrata --example tink_interop
example="$(cargo metadata --format-version 1 --no-deps \
    | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/examples/tink_interop"

echo "== keystrata emit"
"$example" emit "$work/ks.json"

echo "== Tink decrypts keystrata's output, writes its own"
"$python" tests/tink/check_keystrata_output.py "$work/ks.json" "$work/tink.json" | tee "$work/tink.log"
grep -Eq '^tink-interop: [1-9][0-9]* passed, 0 failed$' "$work/tink.log"

echo "== keystrata decrypts Tink's output"
"$example" verify "$work/tink.json" | tee "$work/verify.log"
grep -Eq '^tink-to-keystrata: [1-9][0-9]* passed, 0 failed$' "$work/verify.log"

echo "interop.sh: OK"
