#!/usr/bin/env bash
# Installs keystrata into a temporary prefix (make install PREFIX=...) and
# checks what a C user gets: the files and links, the SONAME, stripped
# libraries, the version everywhere, and examples/c/demo.c built against the
# installed copy with pkg-config four ways (shared found through
# LD_LIBRARY_PATH, shared found through an rpath, static through
# keystrata-static, static through --static keystrata), each run. Then
# make uninstall must leave nothing behind.
# Last line: install-test: N passed, M failed.
set -uo pipefail

cd "$(dirname "$0")/../.."
REPO="$PWD"
CC=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ks-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
lib="$prefix/lib"

passed=0
failed=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
finish() { echo "install-test: $passed passed, $failed failed"; [[ $failed -eq 0 ]]; exit $?; }

version=$(bash scripts/version.sh)
major=${version%%.*}
# The ABI version in the SONAME: the major from 1.0 on, 0.MINOR before.
minor=${version#*.}; minor=${minor%%.*}
[[ "$major" == 0 ]] && major="0.$minor"

if ! make --no-print-directory lib install PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    fail "make lib install PREFIX=$prefix"
    finish
fi

# --- what is installed ------------------------------------------------------
missing=()
for f in lib/libkeystrata.a "lib/libkeystrata.so.$version" include/keystrata.h \
    lib/pkgconfig/keystrata.pc lib/pkgconfig/keystrata-static.pc; do
    [[ -f "$prefix/$f" && ! -L "$prefix/$f" ]] || missing+=("$f")
done
[[ "$(readlink "$lib/libkeystrata.so.$major")" == "libkeystrata.so.$version" ]] || missing+=("libkeystrata.so.$major -> libkeystrata.so.$version")
[[ "$(readlink "$lib/libkeystrata.so")" == "libkeystrata.so.$major" ]] || missing+=("libkeystrata.so -> libkeystrata.so.$major")
if [[ ${#missing[@]} -eq 0 ]]; then
    pass "installed: libkeystrata.a, libkeystrata.so.$version with .so.$major and .so links, keystrata.h, keystrata{,-static}.pc"
else
    fail "not installed as expected: ${missing[*]}"
fi

soname=$(readelf -d "$lib/libkeystrata.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[[ "$soname" == "libkeystrata.so.$major" ]] && pass "SONAME is libkeystrata.so.$major" ||
    fail "SONAME is '$soname', want libkeystrata.so.$major"

# The release profile keeps debug info (for profiling); the installed
# libraries must not carry it.
has_debug() { readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'; }
if has_debug "$lib/libkeystrata.a" || has_debug "$lib/libkeystrata.so.$version"; then
    fail "installed libraries carry debug info"
else
    pass "installed libraries are stripped of debug info ($(du -m "$lib/libkeystrata.a" | cut -f1) MB .a, $(du -m "$lib/libkeystrata.so.$version" | cut -f1) MB .so; build: $(du -m target/release/libkeystrata.a | cut -f1) MB, $(du -m target/release/libkeystrata.so | cut -f1) MB)"
fi

export PKG_CONFIG_PATH="$lib/pkgconfig"
flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror)

# --- one version: Cargo.toml, the .pc files, the header, ks_version() ------
cat >"$tmp/version.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "keystrata.h"
#define STR2(x) #x
#define STR(x) STR2(x)
int main(void) {
    const char *parts = STR(KEYSTRATA_VERSION_MAJOR) "." STR(KEYSTRATA_VERSION_MINOR) "." STR(KEYSTRATA_VERSION_PATCH);
    printf("%s %s %s\n", KEYSTRATA_VERSION, parts, ks_version());
    return 0;
}
C
want="$version $version $version"
# shellcheck disable=SC2046  # word splitting of pkg-config output is intended
if $CC "${flags[@]}" -o "$tmp/version" "$tmp/version.c" $(pkg-config --cflags --libs keystrata-static) &&
    got=$("$tmp/version") && [[ "$got" == "$want" ]] &&
    [[ "$(pkg-config --modversion keystrata)" == "$version" && "$(pkg-config --modversion keystrata-static)" == "$version" ]]; then
    pass "version $version in Cargo.toml, keystrata.pc, keystrata-static.pc, KEYSTRATA_VERSION*, ks_version()"
else
    fail "versions differ: Cargo.toml $version; header, header parts, ks_version(): '${got:-}'; pkg-config: $(pkg-config --modversion keystrata keystrata-static | tr '\n' ' ')"
fi

# run_demo NAME BINARY [ENV...]: the demo must end with the line "done".
run_demo() {
    local name=$1 bin=$2
    shift 2
    if env "$@" "$bin" >"$tmp/$name.out" 2>&1 && tail -1 "$tmp/$name.out" | grep -qx done; then
        return 0
    fi
    cat "$tmp/$name.out"
    return 1
}

# --- 1. shared, found through LD_LIBRARY_PATH --------------------------------
# shellcheck disable=SC2046
if $CC "${flags[@]}" -o "$tmp/demo_dynamic" examples/c/demo.c $(pkg-config --cflags --libs keystrata); then
    # The binary records the SONAME, and resolves it from the prefix.
    # (grep reads all of ldd's output: under pipefail, grep -q exiting at the
    # first match can kill ldd with SIGPIPE and fail the pipeline.)
    if readelf -d "$tmp/demo_dynamic" | grep "NEEDED.*\[libkeystrata.so.$major\]" >/dev/null &&
        LD_LIBRARY_PATH="$lib" ldd "$tmp/demo_dynamic" | grep "$lib/libkeystrata.so.$major" >/dev/null &&
        run_demo dynamic "$tmp/demo_dynamic" LD_LIBRARY_PATH="$lib"; then
        pass "shared (pkg-config --cflags --libs keystrata, NEEDED libkeystrata.so.$major, LD_LIBRARY_PATH)"
    else
        fail "shared: the demo does not load libkeystrata.so.$major from the prefix or does not run"
    fi
    # Without a path to the library it cannot start: the reason for the
    # rpath (or ldconfig) in the README.
    if env -u LD_LIBRARY_PATH "$tmp/demo_dynamic" >/dev/null 2>&1; then
        fail "shared: started without LD_LIBRARY_PATH or rpath (a libkeystrata.so outside the prefix?)"
    else
        pass "shared: does not start without LD_LIBRARY_PATH, rpath or ldconfig"
    fi
else
    fail "shared: build or link against the installed libkeystrata.so"
fi

# --- 2. shared, found through an rpath (the README's recipe) -----------------
# shellcheck disable=SC2046
if $CC "${flags[@]}" -o "$tmp/demo_rpath" examples/c/demo.c $(pkg-config --cflags --libs keystrata) \
    -Wl,-rpath,"$(pkg-config --variable=libdir keystrata)" &&
    run_demo rpath "$tmp/demo_rpath"; then
    pass "shared with an rpath (-Wl,-rpath,\$(pkg-config --variable=libdir keystrata)), no environment"
else
    fail "shared with an rpath: build or run"
fi

# --- 3. static, keystrata-static.pc ------------------------------------------
# shellcheck disable=SC2046
if $CC "${flags[@]}" -o "$tmp/demo_static" examples/c/demo.c $(pkg-config --cflags --libs keystrata-static) &&
    ! ldd "$tmp/demo_static" | grep libkeystrata >/dev/null &&
    run_demo static "$tmp/demo_static"; then
    pass "static (pkg-config --cflags --libs keystrata-static, libkeystrata.a)"
else
    fail "static: build, link against the installed libkeystrata.a, or run"
fi

# --- 4. static, --static keystrata (Libs.private) ----------------------------
static_libs=$(pkg-config --static --libs keystrata | sed 's/-lkeystrata/-Wl,-Bstatic -lkeystrata -Wl,-Bdynamic/')
# shellcheck disable=SC2046,SC2086
if $CC "${flags[@]}" -o "$tmp/demo_static2" examples/c/demo.c $(pkg-config --cflags keystrata) $static_libs &&
    ! ldd "$tmp/demo_static2" | grep libkeystrata >/dev/null &&
    run_demo static2 "$tmp/demo_static2"; then
    pass "static (pkg-config --static --libs keystrata, -Wl,-Bstatic)"
else
    fail "static with --static: build, link against the installed libkeystrata.a, or run"
fi

# --- make uninstall ------------------------------------------------------------
if make --no-print-directory uninstall PREFIX="$prefix" >"$tmp/uninstall.log" 2>&1 &&
    left=$(find "$prefix" \( -type f -o -type l \) | sed "s|^$prefix/||") && [[ -z "$left" ]]; then
    pass "make uninstall removes every installed file"
else
    cat "$tmp/uninstall.log"
    fail "make uninstall left: ${left:-?}"
fi
cd "$REPO"
finish
