#!/usr/bin/env bash
# Runs every test suite of keystrata, prints one summary line per suite and
# a final "N passed, N failed" line over all of them. Exits non-zero if any
# suite failed. Called by `make test` (after scripts/setup.sh).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export CARGO_TERM_COLOR=never
# In-repo C and Go builds find the library through the uninstalled
# pkg-config files that `make lib` writes (bindings/go/cgo.go links
# keystrata-static); each suite sets PKG_CONFIG_PATH for its pkg-config and
# go commands only. Not here: cargo would see it, and aws-lc-sys's build
# script reruns (rebuilding aws-lc) whenever that variable changes.
LOGDIR="${KEYSTRATA_TEST_LOGS:-$REPO/target/test-logs}"
mkdir -p "$LOGDIR"

total_pass=0
total_fail=0
failed_suites=()
summaries=()

# Sum "test result: ok. N passed; M failed" lines of cargo test output.
cargo_counts() {
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } }
       END { printf "%d %d\n", p, f }' "$1"
}

# suite NAME KIND COMMAND...   KIND: cargo (count test results), check (1 test)
suite() {
  local name="$1" kind="$2"
  shift 2
  local log="$LOGDIR/$name.log"
  echo "==> $name: $*  (progress: tail -f ${log#$REPO/})"
  local start=$SECONDS
  "$@" >"$log" 2>&1
  local rc=$?
  local p f
  case "$kind" in
    cargo) read -r p f < <(cargo_counts "$log") ;;
    tink) read -r p f < <(awk '/^(tink-interop|tink-to-keystrata):/ { p += $2; f += $4 } END { printf "%d %d\n", p, f }' "$log") ;;
    pytest) read -r p f < <(awk '/^=+ .*(passed|failed).* in [0-9.]+s/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p = $(i-1); if ($(i) ~ /^failed/) f = $(i-1) } } END { printf "%d %d\n", p, f }' "$log") ;;
    gotest) read -r p f < <(awk '/^ *--- PASS/ { p++ } /^ *--- FAIL/ { f++ } END { printf "%d %d\n", p, f }' "$log") ;;
    # "<name>: N passed, M failed" lines, as the C suites print them.
    cprint) read -r p f < <(awk '/^[a-z -]+: [0-9]+ passed, [0-9]+ failed/ { for (i = 2; i <= NF; i++) { if ($(i) == "passed,") p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } } END { printf "%d %d\n", p, f }' "$log") ;;
    *) if [ $rc -eq 0 ]; then p=1 f=0; else p=0 f=1; fi ;;
  esac
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  local line="$name: $p passed, $f failed ($((SECONDS - start)) s)"
  summaries+=("$line")
  if [ $rc -ne 0 ]; then
    failed_suites+=("$name")
    echo "--- $name failed (exit $rc); last lines of $log:"
    tail -n 40 "$log"
  fi
  echo "    $line"
}

# The real peers of the PKCS#11, KMIP and AWS KMS roots and of the etcd
# store (SoftHSM2, PyKMIP and Cosmian KMS, moto, a 3-member etcd cluster and
# a TLS + auth etcd member, all on loopback), for every suite below; stopped
# however this script ends. The --all-features suites (rust, clippy, doc)
# build the aws-kms feature and run tests/conformance_aws_kms.rs.
export KS_PEERS_DIR="$REPO/target/peers"
# Tests that need a peer fail, never skip, when it is missing.
export KEYSTRATA_REQUIRE_PEERS=1
trap 'bash scripts/peers.sh stop >/dev/null 2>&1 || true' EXIT
if peer_env="$(bash scripts/peers.sh start 2>"$LOGDIR/peers.log")"; then
  eval "$peer_env"
  echo "==> peers: SoftHSM2 token '$KS_TEST_PKCS11_TOKEN', PyKMIP on 127.0.0.1:$KS_TEST_KMIP_PORT, moto at $KS_TEST_AWS_ENDPOINT, etcd on $KS_TEST_ETCD_ENDPOINTS (TLS + auth: $KS_TEST_ETCD_TLS_ENDPOINT), Cosmian KMS on 127.0.0.1:${KS_TEST_COSMIAN_PORT:-(not started: see ${LOGDIR#$REPO/}/peers.log)}"
else
  echo "--- peers failed to start; last lines of $LOGDIR/peers.log:"
  tail -n 40 "$LOGDIR/peers.log"
  total_fail=$((total_fail + 1))
  failed_suites+=("peers")
fi

suite rust-fmt check cargo fmt --all -- --check
suite rust-clippy check cargo clippy --workspace --all-features --all-targets -- -D warnings
suite rust-doc check env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features
# Every crate's tests in one build, with every feature: the core with both
# AES-GCM engines (AWS-LC is the one in use, exactly as in the shipped
# feature set; RustCrypto is the differential oracle of tests/engines.rs)
# and the peer conformance suites; the KMS plugin's Go suite (upstream
# k8s.io/kms client, kube-apiserver's kmsv2 code) over a file keychain and
# over an etcd keychain. One feature set for the whole workspace is one
# debug build of the core and its dependencies, not three. The CLI's tests
# run once, in release, in the cli suite below.
suite rust cargo cargo test --workspace --exclude keystrata-cli --all-features
# The core without AWS-LC: RustCrypto is then the engine in use.
suite rust-rustcrypto cargo cargo test -p keystrata --no-default-features --features rustcrypto
# The C ABI's pointer helpers (ffi/src/abi.rs) under Miri.
suite miri cargo bash scripts/miri.sh
# Every fuzz target for a few seconds, replaying the kept corpus (fuzz/).
suite fuzz-smoke cprint bash scripts/fuzz.sh smoke
suite tink-interop tink bash tests/tink/interop.sh
# Its own cargo fmt + clippy step is left out: rust-fmt and rust-clippy
# above checked the binding crate (a workspace member) already.
suite python pytest env KEYSTRATA_PY_CARGO_CHECKS=0 bash bindings/python/test.sh
suite go gotest env GO_TEST_FLAGS=-v bash bindings/go/test.sh
# The Go package from a module outside the repo (replace, vendor, a module
# proxy), against an installed library found through PKG_CONFIG_PATH only.
suite go-module cprint bash tests/gomod/run.sh
suite cross-language cprint bash tests/cross/run.sh
suite fleet cprint bash tests/fleet/run.sh
suite readme-quickstarts cprint bash tests/readme/run.sh
# docs/SIGNING.md run as written (SoftHSM2 peer).
suite docs-signing cprint bash tests/docs/signing.sh
suite relay-demo check make --no-print-directory relay-demo
suite c-header check bash scripts/header.sh check
suite c-asan cprint make --no-print-directory c-test
suite c-valgrind cprint make --no-print-directory c-valgrind
# The keystrata command run as a user would, built in release as make install ships it (before c-install, which installs that binary); only here, not in the rust suite.
suite cli cargo cargo test --release -p keystrata-cli
suite c-install cprint bash tests/c/install_test.sh
suite c-device-roots cprint make --no-print-directory c-device-roots
suite c-shared cprint make --no-print-directory c-shared
# Last: every server the suites started, or restarted, is stopped.
suite peers-stopped cprint bash scripts/peers-stopped.sh

echo
echo "== summary"
for s in "${summaries[@]}"; do echo "$s"; done
if [ ${#failed_suites[@]} -gt 0 ]; then
  echo "failed suites: ${failed_suites[*]} (logs in $LOGDIR)"
fi
echo "$total_pass passed, $total_fail failed"
[ ${#failed_suites[@]} -eq 0 ]
