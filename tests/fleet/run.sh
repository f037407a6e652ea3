#!/usr/bin/env bash
# The fleet test (issue 12): C, Go and Python worker processes share one
# keychain, first in a file, then in etcd, while random workers are
# SIGKILLed (and one etcd member is stopped and restarted); afterwards every
# ciphertext any worker printed must decrypt in a fresh process of each
# language and the final keychain must account for every key.
#
#   bash tests/fleet/run.sh                      # from anywhere
#   KS_FLEET_SECONDS=60 bash tests/fleet/run.sh  # longer passes (default 20 s each)
#   KS_FLEET_SEED=123 bash tests/fleet/run.sh    # replay a kill schedule
#   KS_FLEET_PASSES=etcd bash tests/fleet/run.sh # one pass only (file or etcd)
#   KS_FLEET_RATE=0 bash tests/fleet/run.sh      # unpaced workers (default: 150 ops/s each)
#   KS_FLEET_KEEP=1 bash tests/fleet/run.sh      # keep the work dir (outputs, records)
#   KS_FLEET_ALLOW_ERRORS= bash tests/fleet/run.sh   # etcd pass: fail on any worker error, even Unavailable
#
# The etcd pass runs when KS_TEST_ETCD_ENDPOINTS is set (eval "$(bash
# scripts/peers.sh start)" starts the cluster); without it the pass is
# skipped, or fails when KEYSTRATA_REQUIRE_PEERS=1 (as in make test).
# The last line is exactly "fleet: N passed, M failed" (N, M count checks).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export GOTOOLCHAIN=local
# The C library's uninstalled pkg-config files (make lib); C and Go link
# keystrata-static through them. Only pkg-config and go get the variable:
# aws-lc-sys's build script watches it, so cargo must not see a new value.
KS_PC=(env PKG_CONFIG_PATH="$ROOT/target/release/pkgconfig")
PY="$ROOT/.venv/bin/python"

W=$(mktemp -d "${TMPDIR:-/tmp}/ks-fleet.XXXXXX")
cleanup() { if [[ -z "${KS_FLEET_KEEP:-}" ]]; then rm -rf "$W"; else echo "work dir kept: $W"; fi; }
trap cleanup EXIT
BIN="$W/bin"
mkdir -p "$BIN"

fail_early() {
    echo "fleet: $1"
    echo "fleet: 0 passed, 1 failed"
    exit 1
}

t0=$SECONDS
make --no-print-directory -s lib || fail_early "cannot build the C library"
# shellcheck disable=SC2046  # pkg-config's output is meant to be split
cc -std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -o "$BIN/fleet-c" \
    tests/fleet/worker.c $("${KS_PC[@]}" pkg-config --cflags --libs keystrata-static) ||
    fail_early "cannot build the C worker"
(cd tests/fleet/go && "${KS_PC[@]}" go build -o "$BIN/fleet-go" .) || fail_early "cannot build the Go worker"
if ! "$PY" -c 'import keystrata' 2>/dev/null; then
    make --no-print-directory python || fail_early "cannot install the Python module"
fi
echo "fleet: workers built in $((SECONDS - t0))s"

# One age identity for the whole fleet.
"$PY" -c 'import sys, keystrata
r = keystrata.AgeRoot.generate()
open(sys.argv[1], "w").write(f"# public key: {r.recipients[0]}\n{r.insecure_identity_strings()[0]}\n")' \
    "$W/identity.txt" || fail_early "cannot make an age identity"

ETCD="${KS_TEST_ETCD_ENDPOINTS:-}"
REQUIRE=()
if [[ -z "$ETCD" ]]; then
    if [[ "${KEYSTRATA_REQUIRE_PEERS:-}" == "1" ]]; then
        REQUIRE=(--require-etcd) # the harness fails the etcd pass
    else
        echo "fleet: KS_TEST_ETCD_ENDPOINTS not set: the etcd pass is skipped (start the cluster: eval \"\$(bash scripts/peers.sh start)\")"
    fi
fi

args=(--c "$BIN/fleet-c" --go "$BIN/fleet-go" --python "$PY $ROOT/tests/fleet/worker.py"
    --identity "$W/identity.txt" --work "$W" --peers "$ROOT/scripts/peers.sh"
    --etcd "$ETCD" --etcd-prefix "${KS_TEST_ETCD_PREFIX:-/keystrata-test/}"
    --seconds "${KS_FLEET_SECONDS:-20}" --passes "${KS_FLEET_PASSES:-file,etcd}" --rate "${KS_FLEET_RATE:-150}" --allow-errors "${KS_FLEET_ALLOW_ERRORS-Unavailable}"
    --allow-errors-file "${KS_FLEET_ALLOW_ERRORS_FILE-}")
if [[ -n "${KS_FLEET_SEED:-}" ]]; then args+=(--seed "$KS_FLEET_SEED"); fi
python3 tests/fleet/harness.py "${args[@]}" "${REQUIRE[@]}"
