#!/usr/bin/env bash
# A short operator session with the keystrata command (docs/CLI.md), the
# end of `make demo`: a keychain under an age root, a sealed secret, a file
# encrypted as a stream, a rotation, the old ciphertext rewrapped onto the
# new key, the old key disabled, a minisign signature, and the keychain as
# the operator sees it. Runs in a temporary directory it removes.
#
#   bash examples/cli/demo.sh [path/to/keystrata]
set -euo pipefail

ks="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/keystrata}"
[[ -x "$ks" ]] || { echo "cli-demo: $ks not built (make cli)" >&2; exit 2; }
work="$(mktemp -d /tmp/keystrata-cli-demo-XXXXXX)"
trap 'rm -rf "$work"' EXIT
cd "$work"
run() { echo "\$ keystrata $(printf '%q ' "$@")"; "$ks" "$@"; }

age-keygen -o root.key 2>/dev/null
export KEYSTRATA_ROOT="age:$work/root.key" KEYSTRATA_KEYCHAIN="$work/keychain.age"

run keychain new
run keychain rotate --purpose stream
run keychain rotate --purpose sign

echo '$ printf db-password | keystrata seal --aad svc=billing -o token.sealed'
printf 'db-password' | "$ks" seal --aad svc=billing -o token.sealed
head -c 3000000 /dev/urandom > backup.tar
run encrypt backup.tar -o backup.tar.ks --aad nightly
old="$("$ks" keychain show --json | python3 -c 'import json, sys
print([k["key_id"] for k in json.load(sys.stdin)["keys"] if k["purpose"] == "encrypt" and k["primary"]][0])')"
run keychain rotate
run rewrap --kind sealed --check token.sealed || echo "(exit $?: token.sealed is on the old key)"
run rewrap --kind sealed --aad svc=billing token.sealed
run rewrap --kind sealed --check token.sealed
run keychain disable "$old"
run unseal token.sealed --aad svc=billing; echo
run decrypt backup.tar.ks -o restored.tar --aad nightly
cmp backup.tar restored.tar && echo "restored.tar is backup.tar"
run sign --minisign backup.tar -t "nightly backup"
run pubkey --format minisign -o keystrata.pub
if command -v minisign >/dev/null; then
  echo '$ minisign -Vm backup.tar -p keystrata.pub'
  minisign -Vm backup.tar -p keystrata.pub
fi
run keychain show
echo "cli-demo: OK"
