#!/usr/bin/env bash
# Vets and tests the Go package (race detector on). Builds the static
# library first if it is missing or older than the ffi/core sources.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export GOTOOLCHAIN=local
LIB=../../target/release/libkeystrata.a
if [ ! -f "$LIB" ] || [ ! -f ../../target/release/pkgconfig/keystrata-static.pc ] || [ -n "$(find ../../ffi ../../core/src ../../Cargo.toml ../../Cargo.lock -newer "$LIB" -type f -print -quit)" ]; then
  make -C ../.. lib
fi
# cgo.go links keystrata-static through pkg-config: the uninstalled
# pkg-config files that `make lib` writes. Exported only now, after the
# cargo build: aws-lc-sys's build script reruns when PKG_CONFIG_PATH changes.
PKG_CONFIG_PATH="$(cd ../.. && pwd)/target/release/pkgconfig"
export PKG_CONFIG_PATH
go vet ./...
go test -race -count=1 ${GO_TEST_FLAGS:-} ./...
(cd ../../examples/go && go vet ./... && go build -o /dev/null .)
