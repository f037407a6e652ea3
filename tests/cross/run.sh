#!/usr/bin/env bash
# The cross-language harness (issue 6): C, Go, Python and Rust read each
# other's keychains and bytes, and fail with the same error kinds.
#
#   bash tests/cross/run.sh            # from anywhere; builds the four tools
#   KS_CROSS_KEEP=1 bash tests/cross/run.sh   # keep the work dir for a look
#
# Every check prints nothing when it passes and one "FAIL ..." line naming
# the pair (A -> B: A produced, B consumed, A != B), the root and the operation
# when it does not. The last line is exactly
#   cross-language: N passed, M failed
# and the exit status is non-zero if M > 0 (or the tools cannot be built).
# The tools and their interface: tests/cross/README.md.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export GOTOOLCHAIN=local
# The C library's uninstalled pkg-config files (make lib); C and Go link
# keystrata-static through them. Only pkg-config and go get the variable:
# aws-lc-sys's build script watches it, so cargo must not see a new value.
KS_PC=(env PKG_CONFIG_PATH="$ROOT/target/release/pkgconfig")
LANGS=(c go python rust)
PY="$ROOT/.venv/bin/python"

W=$(mktemp -d "${TMPDIR:-/tmp}/ks-cross.XXXXXX")
cleanup() { if [[ -z "${KS_CROSS_KEEP:-}" ]]; then rm -rf "$W"; else echo "work dir kept: $W"; fi; }
trap cleanup EXIT
BIN="$W/bin"
mkdir -p "$BIN"

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
finish() {
    echo "cross-language: $PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
    exit $?
}
build_fail() { echo "cannot build the $1 tool"; FAILED=$((FAILED + 1)); finish; }

# --- build the four tools, once ---------------------------------------------
t0=$SECONDS
make --no-print-directory -s lib || build_fail "C library"
cargo build --release --quiet -p keystrata --example kscross || build_fail rust
# shellcheck disable=SC2046  # pkg-config's output is meant to be split
cc -std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -o "$BIN/kscross-c" \
    tests/cross/kscross.c $("${KS_PC[@]}" pkg-config --cflags --libs keystrata-static) -ljansson ||
    build_fail c
(cd tests/cross/go && "${KS_PC[@]}" go build -o "$BIN/kscross-go" .) || build_fail go
if ! "$PY" -c 'import keystrata' 2>/dev/null; then
    make --no-print-directory python || build_fail python
fi
echo "cross: tools built in $((SECONDS - t0))s"

# ks LANG ARGS...: run LANG's tool.
ks() {
    local lang=$1
    shift
    case $lang in
    c) "$BIN/kscross-c" "$@" ;;
    go) "$BIN/kscross-go" "$@" ;;
    python) "$PY" "$ROOT/tests/cross/kscross.py" "$@" ;;
    rust) "$ROOT/target/release/examples/kscross" "$@" ;;
    esac
}

# flip IN OUT OFFSET [XOR]: copy IN to OUT with byte OFFSET (negative: from
# the end) xored with XOR (default 1). setbytes IN OUT OFFSET HEX: overwrite.
flip() { "$PY" -c 'import sys
b = bytearray(open(sys.argv[1], "rb").read()); i = int(sys.argv[3]); b[i] ^= int(sys.argv[4])
open(sys.argv[2], "wb").write(b)' "$1" "$2" "$3" "${4:-1}"; }
setbytes() { "$PY" -c 'import sys
b = bytearray(open(sys.argv[1], "rb").read()); i = int(sys.argv[3]); v = bytes.fromhex(sys.argv[4])
b[i:i + len(v)] = v; open(sys.argv[2], "wb").write(b)' "$1" "$2" "$3" "$4"; }
# jset IN OUT KEY VALUE: a copy of JSON object IN with KEY set to the string VALUE
# (or removed when VALUE is "-").
jset() { "$PY" -c 'import json, sys
o = json.load(open(sys.argv[1])); k, v = sys.argv[3], sys.argv[4]
if v == "-": del o[k]
else: o[k] = v
json.dump(o, open(sys.argv[2], "w"))' "$1" "$2" "$3" "$4"; }

# --- shared inputs ------------------------------------------------------------
IN="$W/in"
mkdir -p "$IN"
head -c 3000 /dev/urandom >"$IN/secret.bin"
: >"$IN/empty.bin"
head -c 70000 /dev/urandom >"$IN/doc.bin"
head -c 32 /dev/urandom >"$IN/dek32.bin"
head -c 4096 /dev/urandom >"$IN/dek4096.bin"
printf 'fixture v2' >"$IN/fixture-v2.txt"
printf '\x22%.0s' $(seq 32) >"$IN/fixture-v2.key"
PASSPHRASE='cross pässwörd ✓'
AAD1='aad-ü'
CTX1='bucket/obj ü'
# derive tuples: ORIGIN INSTANCE EPOCH
DERIVE=("https://app.example|web-1|0" "||18446744073709551615" "orígin ✓|inst|42")

spec() { # spec LANG ROOTKIND -> the ROOTSPEC of LANG's keychain
    if [[ $2 == age ]]; then echo "age:$W/$1-age/identity.txt"; else echo "pass:$PASSPHRASE"; fi
}

# --- A generates and produces ---------------------------------------------------
t0=$SECONDS
for A in "${LANGS[@]}"; do
    for R in age pass; do
        d="$W/$A-$R"
        mkdir -p "$d/out"
        tag="[$A $R]"
        if [[ $R == age ]]; then ks "$A" gen-age "$d" >/dev/null; else ks "$A" gen-pass "$d" "$PASSPHRASE" >/dev/null; fi
        if [[ $? -ne 0 || ! -s "$d/keychain.age" ]]; then fail "$tag gen-$R"; continue; fi
        pass
        S=$(spec "$A" "$R")
        K="$d/keychain.age"
        o="$d/out"
        ks "$A" keys "$S" "$K" >"$o/keys.txt" && [[ $(wc -l <"$o/keys.txt") -eq 4 ]] &&
            grep -q ' 1 encrypt disabled 0$' "$o/keys.txt" && grep -q ' 3 encrypt enabled 1$' "$o/keys.txt" &&
            pass || fail "$tag keys: not 4 keys with v1 disabled and v3 primary"
        ks "$A" seal "$S" "$K" "$IN/secret.bin" "$AAD1" "$o/s1" >/dev/null && pass || fail "$tag seal"
        ks "$A" seal "$S" "$K" "$IN/empty.bin" "" "$o/s2" >/dev/null && pass || fail "$tag seal (empty)"
        ks "$A" encrypt "$S" "$K" "$IN/doc.bin" "doc=q3" "$o/e1" >/dev/null && pass || fail "$tag encrypt"
        ks "$A" encrypt "$S" "$K" "$IN/empty.bin" "" "$o/e2" >/dev/null && pass || fail "$tag encrypt (empty)"
        ks "$A" wrap "$S" "$K" "$IN/dek32.bin" "$CTX1" "$o/w1.env.json" "$o/w1.meta.json" >/dev/null &&
            pass || fail "$tag wrap_key"
        ks "$A" wrap "$S" "$K" "$IN/dek4096.bin" "" "$o/w2.env.json" "$o/w2.meta.json" >/dev/null &&
            pass || fail "$tag wrap_key (4096 bytes)"
        i=0
        for t in "${DERIVE[@]}"; do
            IFS='|' read -r org inst ep <<<"$t"
            i=$((i + 1))
            ks "$A" derive "$S" "$K" "$org" "$inst" "$ep" "$o/d$i" >/dev/null && [[ $(stat -c %s "$o/d$i") -eq 32 ]] &&
                pass || fail "$tag derive_origin_key #$i"
        done
        # Portable ciphertexts need a bound keychain (its root wraps the KEK):
        # a copy of the keychain, opened bound, so the shared file stays as is.
        cp "$K" "$d/bound.age"
        ks "$A" encrypt-portable "$S" "$d/bound.age" "$IN/doc.bin" "port=q3" "$o/p1" >/dev/null &&
            pass || fail "$tag encrypt_portable"
        ks "$A" encrypt-portable "$S" "$d/bound.age" "$IN/empty.bin" "" "$o/p2" >/dev/null &&
            pass || fail "$tag encrypt_portable (empty)"
    done
done
echo "cross: keychains generated and used by each language in $((SECONDS - t0))s"

# --- B consumes what A produced ------------------------------------------------------
t0=$SECONDS
for A in "${LANGS[@]}"; do
    for R in age pass; do
        d="$W/$A-$R"
        o="$d/out"
        [[ -s "$d/keychain.age" ]] || continue
        S=$(spec "$A" "$R")
        K="$d/keychain.age"
        for B in "${LANGS[@]}"; do
            # A language reading its own bytes is its own suite's job
            # (issue 14): the harness checks only pairs of two languages.
            [[ $B == "$A" ]] && continue
            tag="[$A -> $B, $R root]"
            x="$W/x/$A-$R-$B"
            mkdir -p "$x"
            if ks "$B" keys "$S" "$K" >"$x/keys.txt"; then
                cmp -s "$x/keys.txt" "$o/keys.txt" && pass || fail "$tag load keychain: key listing differs"
            else
                fail "$tag load keychain"
            fi
            chk() { # chk WHAT EXPECTED_FILE ARGS...: run B, compare output file $x/got
                local what=$1 exp=$2
                shift 2
                rm -f "$x/got"
                if ! ks "$B" "$@" "$x/got" >/dev/null; then
                    fail "$tag $what: error"
                elif ! cmp -s "$x/got" "$exp"; then
                    fail "$tag $what: bytes differ"
                else
                    pass
                fi
            }
            chk "seal->unseal" "$IN/secret.bin" unseal "$S" "$K" "$o/s1" "$AAD1"
            chk "seal->unseal (empty)" "$IN/empty.bin" unseal "$S" "$K" "$o/s2" ""
            chk "encrypt->decrypt" "$IN/doc.bin" decrypt "$S" "$K" "$o/e1" "doc=q3"
            chk "encrypt->decrypt (empty)" "$IN/empty.bin" decrypt "$S" "$K" "$o/e2" ""
            chk "wrap_key->unwrap_key" "$IN/dek32.bin" unwrap "$S" "$K" "$o/w1.env.json" "$CTX1"
            chk "wrap_key->unwrap_key (metadata form)" "$IN/dek32.bin" unwrap "$S" "$K" "$o/w1.meta.json" "$CTX1"
            chk "wrap_key->unwrap_key (4096 bytes)" "$IN/dek4096.bin" unwrap "$S" "$K" "$o/w2.env.json" ""
            chk "wrap_key->unwrap_key (4096 bytes, metadata form)" "$IN/dek4096.bin" unwrap "$S" "$K" "$o/w2.meta.json" ""
            chk "unseal under the old key v2" "$IN/fixture-v2.txt" unseal "$S" "$K" "$d/v2.sealed" fixture
            chk "decrypt under the old key v2" "$IN/fixture-v2.txt" decrypt "$S" "$K" "$d/v2.encrypted" fixture
            chk "unwrap_key under the old key v2" "$IN/fixture-v2.key" unwrap "$S" "$K" "$d/v2.env.json" fixture
            chk "encrypt_portable->decrypt_portable (the root alone)" "$IN/doc.bin" decrypt-portable "$S" "$o/p1" "port=q3"
            chk "encrypt_portable->decrypt_portable (empty)" "$IN/empty.bin" decrypt-portable "$S" "$o/p2" ""
            i=0
            for t in "${DERIVE[@]}"; do
                IFS='|' read -r org inst ep <<<"$t"
                i=$((i + 1))
                chk "derive_origin_key #$i ($org|$inst|$ep)" "$o/d$i" derive "$S" "$K" "$org" "$inst" "$ep"
            done
            # The metadata form B writes equals the one A wrote, for the same envelope.
            if ks "$B" wrap "$S" "$K" "$IN/dek32.bin" "$CTX1" "$x/bw.env.json" "$x/bw.meta.json" >/dev/null; then
                ks "$A" unwrap "$S" "$K" "$x/bw.meta.json" "$CTX1" "$x/back" >/dev/null && cmp -s "$x/back" "$IN/dek32.bin" &&
                    pass || fail "$tag wrap_key by $B -> unwrap_key (metadata form) by $A"
            else
                fail "$tag wrap_key by $B"
            fi
        done
    done
done
echo "cross: every pair consumed the other's bytes in $((SECONDS - t0))s"

# --- error parity: the same bad inputs, the same kind in every language ---------------
t0=$SECONDS
# expect TAG KIND ARGS...: every language's tool fails with KIND (the kind's
# name on stdout) and the same exit status, 10 + the kind's number (each
# binding takes the number from the core; the numbers themselves are pinned
# by core/tests/codes.rs). On a mismatch all four answers are printed.
expect() {
    local tag=$1 kind=$2
    shift 2
    local B out rc rc0="" nbad=0 answers=""
    for B in "${LANGS[@]}"; do
        out=$(ks "$B" "$@" "$W/err.out" 2>/dev/null)
        rc=$?
        answers+=" $B=${out:-?}(exit $rc)"
        [[ -z $rc0 ]] && rc0=$rc
        if [[ $rc -gt 10 && $rc -eq $rc0 && $out == "$kind" ]]; then pass; else nbad=$((nbad + 1)); fi
    done
    if [[ $nbad -gt 0 ]]; then
        FAILED=$((FAILED + nbad))
        echo "FAIL $tag: expected $kind from every language, got$answers"
    fi
}
for ai in "${!LANGS[@]}"; do
    A=${LANGS[$ai]}
    other=${LANGS[$(((ai + 1) % ${#LANGS[@]}))]}
    d="$W/$A-age"
    o="$d/out"
    [[ -s "$d/keychain.age" && -s "$o/s1" && -s "$o/e1" ]] || { fail "[$A] error cases: no inputs"; continue; }
    S=$(spec "$A" age)
    K="$d/keychain.age"
    e="$W/err-$A"
    mkdir -p "$e"
    tag="[errors, inputs by $A]"
    flip "$o/s1" "$e/s1-tag" -1
    flip "$o/s1" "$e/s1-body" 20
    flip "$o/e1" "$e/e1-mid" 35000
    setbytes "$o/s1" "$e/s1-unknown" 1 fffffff0
    setbytes "$o/e1" "$e/e1-unknown" 5 fffffff0
    setbytes "$o/s1" "$e/s1-prefix" 0 00
    head -c 3 "$o/s1" >"$e/short"
    jset "$o/w1.env.json" "$e/w1-provider.json" provider other-kms
    jset "$o/w1.env.json" "$e/w1-keyid.json" key_id 4294967280
    ct=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["ciphertext_hex"])' "$o/w1.env.json")
    jset "$e/w1-keyid.json" "$e/w1-unknown.json" ciphertext_hex "${ct:0:2}fffffff0${ct:10}"
    jset "$o/w1.env.json" "$e/w1-keyid-nondec.json" key_id abc
    jset "$o/w1.meta.json" "$e/w1-meta-b64.json" x-amz-meta-encryption-wrapped-key '!!not base64!!'
    jset "$o/w1.meta.json" "$e/w1-meta-missing.json" x-amz-meta-encryption-kms-id -
    expect "$tag tampered tag: unseal" Authentication unseal "$S" "$K" "$e/s1-tag" "$AAD1"
    expect "$tag tampered ciphertext: unseal" Authentication unseal "$S" "$K" "$e/s1-body" "$AAD1"
    expect "$tag tampered ciphertext: decrypt" Authentication decrypt "$S" "$K" "$e/e1-mid" "doc=q3"
    expect "$tag wrong aad: unseal" Authentication unseal "$S" "$K" "$o/s1" "wrong"
    expect "$tag wrong aad: decrypt" Authentication decrypt "$S" "$K" "$o/e1" "doc=q4"
    expect "$tag wrong context: unwrap_key" Authentication unwrap "$S" "$K" "$o/w1.env.json" "wrong"
    expect "$tag wrong context: unwrap_key (metadata form)" Authentication unwrap "$S" "$K" "$o/w1.meta.json" ""
    expect "$tag unknown key_id: unseal" UnknownKey unseal "$S" "$K" "$e/s1-unknown" "$AAD1"
    expect "$tag unknown key_id: decrypt" UnknownKey decrypt "$S" "$K" "$e/e1-unknown" "doc=q3"
    expect "$tag unknown key_id (envelope and ciphertext): unwrap_key" UnknownKey unwrap "$S" "$K" "$e/w1-unknown.json" "$CTX1"
    expect "$tag envelope key_id differs from the ciphertext's: unwrap_key" Authentication unwrap "$S" "$K" "$e/w1-keyid.json" "$CTX1"
    expect "$tag non-decimal envelope key_id: unwrap_key" Format unwrap "$S" "$K" "$e/w1-keyid-nondec.json" "$CTX1"
    expect "$tag other provider: unwrap_key" InvalidInput unwrap "$S" "$K" "$e/w1-provider.json" "$CTX1"
    expect "$tag bad metadata base64" Format unwrap "$S" "$K" "$e/w1-meta-b64.json" "$CTX1"
    expect "$tag metadata lacks kms-id" Format unwrap "$S" "$K" "$e/w1-meta-missing.json" "$CTX1"
    expect "$tag too short: unseal" Format unseal "$S" "$K" "$e/short" ""
    expect "$tag wrong prefix byte: unseal" Format unseal "$S" "$K" "$e/s1-prefix" "$AAD1"
    expect "$tag disabled key: unseal" KeyDisabled unseal "$S" "$K" "$d/v1.sealed" fixture
    expect "$tag disabled key: decrypt" KeyDisabled decrypt "$S" "$K" "$d/v1.encrypted" fixture
    expect "$tag disabled key: unwrap_key" KeyDisabled unwrap "$S" "$K" "$d/v1.env.json" fixture
    if ks "$A" destroy "$S" "$K" "$(cat "$d/disabled_key_id")" "$e/destroyed.age" >/dev/null; then
        pass
        expect "$tag destroyed key: unseal" KeyDestroyed unseal "$S" "$e/destroyed.age" "$d/v1.sealed" fixture
        expect "$tag destroyed key: decrypt" KeyDestroyed decrypt "$S" "$e/destroyed.age" "$d/v1.encrypted" fixture
        expect "$tag destroyed key: unwrap_key" KeyDestroyed unwrap "$S" "$e/destroyed.age" "$d/v1.env.json" fixture
    else
        fail "$tag destroy the disabled key"
    fi
    # wrong root: another language's identity, and a wrong passphrase
    expect "$tag wrong age identity (${other}'s): load" Authentication unseal "age:$W/$other-age/identity.txt" "$K" "$o/s1" "$AAD1"
    expect "$tag wrong passphrase: load" Authentication unseal "pass:not the passphrase" "$W/$A-pass/keychain.age" "$W/$A-pass/out/s1" "$AAD1"
    expect "$tag missing keychain file: load" Io unseal "$S" "$e/no-such-keychain.age" "$o/s1" "$AAD1"
    if [[ -s "$o/p1" ]]; then
        flip "$o/p1" "$e/p1-tag" -1
        setbytes "$o/p1" "$e/p1-v2" 3 02
        setbytes "$o/p1" "$e/p1-len" 4 00010001
        head -c 7 "$o/p1" >"$e/p1-short"
        expect "$tag tampered tag: decrypt_portable" Authentication decrypt-portable "$S" "$e/p1-tag" "port=q3"
        expect "$tag wrong aad: decrypt_portable" Authentication decrypt-portable "$S" "$o/p1" "port=q4"
        expect "$tag wrong age identity (${other}'s): decrypt_portable" Authentication decrypt-portable "age:$W/$other-age/identity.txt" "$o/p1" "port=q3"
        expect "$tag passphrase root for an age-wrapped KEK: decrypt_portable" Authentication decrypt-portable "pass:$PASSPHRASE" "$o/p1" "port=q3"
        expect "$tag too short: decrypt_portable" Format decrypt-portable "$S" "$e/p1-short" ""
        expect "$tag wrapped KEK over 64 KiB: decrypt_portable" Format decrypt-portable "$S" "$e/p1-len" "port=q3"
        expect "$tag a plain envelope: decrypt_portable" Format decrypt-portable "$S" "$o/e1" "doc=q3"
        expect "$tag version 2: decrypt_portable" Unsupported decrypt-portable "$S" "$e/p1-v2" "port=q3"
    else
        fail "$tag portable error cases: no input"
    fi
done
echo "cross: error parity checked in $((SECONDS - t0))s"

finish
