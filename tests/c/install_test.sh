#!/usr/bin/env bash
# Installs keystrata into a temporary prefix and builds examples/c/demo.c
# against the installed copy with pkg-config, once dynamically and once
# statically, and runs both. Last line: install-test: N passed, M failed.
set -euo pipefail

cd "$(dirname "$0")/../.."
CC=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ks-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }

make --no-print-directory install PREFIX="$tmp" >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"
    echo "install-test: 0 passed, 1 failed"
    exit 1
}
for f in lib/libkeystrata.a lib/libkeystrata.so include/keystrata.h lib/pkgconfig/keystrata.pc; do
    [[ -f "$tmp/$f" ]] || { echo "install-test: missing $f"; echo "install-test: 0 passed, 1 failed"; exit 1; }
done

export PKG_CONFIG_PATH="$tmp/lib/pkgconfig"
flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror)

# 1. Dynamic: cc $(pkg-config --cflags --libs keystrata), run with LD_LIBRARY_PATH.
# shellcheck disable=SC2046  # word splitting of pkg-config output is intended
# The binary must resolve libkeystrata.so from the prefix, not from elsewhere.
if $CC "${flags[@]}" -o "$tmp/demo_dynamic" examples/c/demo.c $(pkg-config --cflags --libs keystrata) &&
    # grep reads all of ldd's output (no -q): under pipefail, grep -q exiting
    # at the first match can kill ldd with SIGPIPE and fail the pipeline.
    LD_LIBRARY_PATH="$tmp/lib" ldd "$tmp/demo_dynamic" | grep "$tmp/lib/libkeystrata.so" >/dev/null; then
    if LD_LIBRARY_PATH="$tmp/lib" "$tmp/demo_dynamic" >"$tmp/dynamic.out" 2>&1 && tail -1 "$tmp/dynamic.out" | grep -qx done; then
        pass "dynamic (pkg-config --cflags --libs keystrata, libkeystrata.so)"
    else
        cat "$tmp/dynamic.out"
        fail "dynamic: demo did not run"
    fi
else
    fail "dynamic: build or link against the installed libkeystrata.so"
fi

# 2. Static: the archive, plus Libs.private from pkg-config --static.
static_libs=$(pkg-config --static --libs keystrata | sed 's/-lkeystrata/-Wl,-Bstatic -lkeystrata -Wl,-Bdynamic/')
# shellcheck disable=SC2046,SC2086
if $CC "${flags[@]}" -o "$tmp/demo_static" examples/c/demo.c $(pkg-config --cflags keystrata) $static_libs &&
    ! ldd "$tmp/demo_static" | grep libkeystrata >/dev/null; then
    if "$tmp/demo_static" >"$tmp/static.out" 2>&1 && tail -1 "$tmp/static.out" | grep -qx done; then
        pass "static (pkg-config --static --libs keystrata, libkeystrata.a)"
    else
        cat "$tmp/static.out"
        fail "static: demo did not run"
    fi
else
    fail "static: build or link against the installed libkeystrata.a"
fi

echo "install-test: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
