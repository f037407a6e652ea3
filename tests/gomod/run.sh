#!/usr/bin/env bash
# The Go package consumed from a module outside this repository, the three
# ways a user gets it, each built with `go build` and nothing but
# PKG_CONFIG_PATH pointing at an installed keystrata:
#   replace   `go get` with a `replace` to this checkout (README, Go section)
#   vendor    the same, then `go mod vendor` and `go build -mod=vendor`
#   proxy     from a module proxy into a read-only module cache, as a
#             published version is fetched (a file:// GOPROXY made here
#             from bindings/go, version = the workspace version)
# Each program must print keystrata.Version() equal to the workspace version
# and the installed pkg-config version, must not load libkeystrata.so (the Go
# package links the static library), and must still run once the install
# prefix is gone. Last line: gomod: N passed, M failed.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export GOTOOLCHAIN=local
tmp="$(mktemp -d "${TMPDIR:-/tmp}/ks-gomod-XXXXXX")"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "gomod: ok   $1"; }
bad() { failed=$((failed + 1)); echo "gomod: FAIL $1"; }
finish() { echo "gomod: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

version="$(bash "$REPO/scripts/version.sh")"
prefix="$tmp/prefix"
mod=github.com/keystrata/keystrata/bindings/go
gover="$(awk '$1 == "go" { print $2; exit }' "$REPO/bindings/go/go.mod")"

# 1. Install the C library as a user would.
if ! make -C "$REPO" --no-print-directory lib install PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"
  bad "make lib install PREFIX=$prefix"
  finish
fi
# Only the installed copy: no path into this checkout, no network, a module
# cache of our own (the proxy case fills it read-only, as go does).
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
export GOFLAGS="" GOPROXY=off GONOSUMDB="$mod" GONOSUMCHECK=1
export GOMODCACHE="$tmp/modcache"
pc_version="$(pkg-config --modversion keystrata-static)"
[ "$pc_version" = "$version" ] && ok "installed keystrata-static.pc has version $version" ||
  bad "installed keystrata-static.pc has version '$pc_version', Cargo.toml says $version"

# new_module DIR: a module with a program that uses the package.
new_module() {
  mkdir -p "$1"
  printf 'module example.com/ksapp\n\ngo %s\n' "$gover" >"$1/go.mod"
  cat >"$1/main.go" <<'GO'
package main

import (
	"bytes"
	"fmt"
	"os"

	keystrata "github.com/keystrata/keystrata/bindings/go"
)

func main() {
	kc, err := keystrata.Generate(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer kc.Close()
	ct, err := kc.Seal([]byte("secret"), []byte("aad"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pt, err := kc.Unseal(ct, []byte("aad"))
	if err != nil || !bytes.Equal(pt, []byte("secret")) {
		fmt.Fprintln(os.Stderr, "round trip failed:", err)
		os.Exit(1)
	}
	fmt.Println(keystrata.Version())
}
GO
}

# check NAME DIR: build in DIR (already set up), then run the program.
check() {
  local name="$1" dir="$2"
  shift 2
  if ! (cd "$dir" && go build "$@" -o app .) >"$tmp/$name.log" 2>&1; then
    cat "$tmp/$name.log"
    bad "$name: go build"
    return
  fi
  if ldd "$dir/app" | grep libkeystrata >/dev/null; then
    bad "$name: the program loads libkeystrata.so (the Go package must link the static library)"
    return
  fi
  local got
  got="$("$dir/app" 2>&1)"
  if [ "$got" = "$version" ]; then
    ok "$name: builds, seals and unseals, keystrata.Version() = $version"
  else
    bad "$name: the program printed '$got', want '$version'"
  fi
}

# Go's build cache does not key a cgo package on pkg-config's output, only
# on its directory, flags and sources: a package built here against the
# temporary prefix would be reused by later builds in the checkout (and
# link a deleted libkeystrata.a). So the replace goes through a path of its
# own, a link to the checkout.
ln -s "$REPO" "$tmp/checkout"

# 2. replace: go get with a replace to this checkout.
new_module "$tmp/replace"
(cd "$tmp/replace" &&
  go mod edit -replace "$mod=$tmp/checkout/bindings/go" &&
  go get "$mod@v0.0.0" && go mod tidy) >"$tmp/replace-get.log" 2>&1 ||
  { cat "$tmp/replace-get.log"; bad "replace: go get"; }
check replace "$tmp/replace"

# 3. vendor: the package's files copied into vendor/, built from there.
cp -r "$tmp/replace" "$tmp/vendor"
rm -f "$tmp/vendor/app"
(cd "$tmp/vendor" && go mod vendor) >"$tmp/vendor-mod.log" 2>&1 ||
  { cat "$tmp/vendor-mod.log"; bad "vendor: go mod vendor"; }
check vendor "$tmp/vendor" -mod=vendor

# 4. proxy: bindings/go published as v$version on a file:// module proxy.
proxy="$tmp/proxy"
"${PYTHON:-python3}" - "$REPO/bindings/go" "$proxy" "$mod" "v$version" <<'PY'
import os, sys, zipfile, json
src, proxy, mod, ver = sys.argv[1:]
d = os.path.join(proxy, mod, "@v")
os.makedirs(d)
with open(os.path.join(d, "list"), "w") as f:
    f.write(ver + "\n")
with open(os.path.join(d, ver + ".info"), "w") as f:
    json.dump({"Version": ver, "Time": "2026-01-01T00:00:00Z"}, f)
with open(os.path.join(src, "go.mod")) as f, open(os.path.join(d, ver + ".mod"), "w") as g:
    g.write(f.read())
# What a module zip holds: the package's own files (no subdirectory here is
# a separate module), under module@version/.
with zipfile.ZipFile(os.path.join(d, ver + ".zip"), "w") as z:
    for name in sorted(os.listdir(src)):
        p = os.path.join(src, name)
        if os.path.isfile(p):
            z.write(p, f"{mod}@{ver}/{name}")
PY
new_module "$tmp/proxy-app"
(cd "$tmp/proxy-app" && GOPROXY="file://$proxy" go get "$mod@v$version" && go mod tidy) \
  >"$tmp/proxy-get.log" 2>&1 || { cat "$tmp/proxy-get.log"; bad "proxy: go get $mod@v$version"; }
# (Mode bits, not test -w: root may write anything.)
if [ -f "$GOMODCACHE/$mod@v$version/cgo.go" ] &&
  [ -z "$(find "$GOMODCACHE/$mod@v$version" -perm -u+w -type f -print -quit)" ]; then
  ok "proxy: the package sits read-only in the module cache"
else
  bad "proxy: the package is not in the module cache, read-only"
fi
check proxy "$tmp/proxy-app"

# 5. The programs carry the library: they run with the prefix gone.
rm -rf "$prefix"
for name in replace vendor proxy; do
  app="$tmp/$name/app"
  [ "$name" = proxy ] && app="$tmp/proxy-app/app"
  [ -x "$app" ] || continue
  if [ "$("$app" 2>&1)" = "$version" ]; then
    ok "$name: runs without the install prefix (self-contained)"
  else
    bad "$name: does not run without the install prefix"
  fi
done
finish
