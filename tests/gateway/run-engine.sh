#!/usr/bin/env bash
# Runs kenchrcum/s3-encryption-gateway's own engine and KeyManager
# conformance suites against keystrata, through the adapter in
# docs/GATEWAY.md (extracted from the page, so the documented adapter is
# the tested one).
#
#   bash tests/gateway/run-engine.sh GATEWAY_CHECKOUT
#
# GATEWAY_CHECKOUT is a checkout of the gateway (tested with 0.8.0-rc2,
# 296c5f6). It is copied to a temporary directory; the copy gets the
# adapter, keystrata_e2e_test.go, and a go.mod `replace` to this checkout's
# Go package. Needs `make lib` and the gateway's Go dependencies (the Go
# module proxy). Not part of `make test`: the gateway's source does not
# come from a package registry.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="${1:?usage: $0 GATEWAY_CHECKOUT}"
SRC="$(cd "$SRC" && pwd)"
export GOTOOLCHAIN=local
[ -f "$REPO/target/release/pkgconfig/keystrata-static.pc" ] || make -C "$REPO" lib
tmp="$(mktemp -d /tmp/keystrata-gateway-XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
cp -a "$SRC/." "$tmp/"
cd "$tmp"
# The adapter: the one Go block of docs/GATEWAY.md that defines keystrataKM.
awk '/^```go$/ {inblock=1; buf=""; next}
     /^```$/ && inblock {inblock=0; if (buf ~ /type keystrataKM/) printf "%s", buf; next}
     inblock {buf = buf $0 "\n"}' "$REPO/docs/GATEWAY.md" > internal/crypto/keymanager_keystrata.go
grep -q "type keystrataKM" internal/crypto/keymanager_keystrata.go
cp "$REPO/tests/gateway/keystrata_e2e_test.go.in" internal/crypto/keystrata_e2e_test.go
go mod edit -require github.com/keystrata/keystrata/bindings/go@v0.0.0 \
  -replace "github.com/keystrata/keystrata/bindings/go=$REPO/bindings/go"
go mod tidy >/dev/null 2>&1 || true
PKG_CONFIG_PATH="$REPO/target/release/pkgconfig" go test -count=1 ./internal/crypto \
  -run 'TestKeystrata' -v 2>&1 | tee "$tmp/test.log" | grep -E '^(=== RUN|--- (PASS|FAIL|SKIP)|PASS|FAIL|ok)' || true
grep -q '^ok' "$tmp/test.log" || { tail -40 "$tmp/test.log"; exit 1; }
echo "gateway engine: $(grep -c -- '--- PASS' "$tmp/test.log") passed, $(grep -c -- '--- FAIL' "$tmp/test.log") failed"
