#!/usr/bin/env bash
# A SoftHSM2 token for the PKCS#11 root's tests, kept in a directory of its
# own (never the system token store).
#
#   bash scripts/peers/softhsm.sh start DIR   # create DIR and the token (idempotent)
#   bash scripts/peers/softhsm.sh env DIR     # print the SOFTHSM2_CONF and KS_TEST_PKCS11_* exports
#   bash scripts/peers/softhsm.sh stop DIR    # remove DIR and the token in it
#
# `start` writes DIR/softhsm2.conf (tokens in DIR/tokens, file object store),
# initializes a token labelled keystrata-test with random user and SO PINs
# (once per DIR) and writes the export lines to DIR/env. SoftHSM runs in the
# test process itself: there is no server to start. Needs apt softhsm2
# (scripts/setup.sh installs it); KS_SOFTHSM_MODULE overrides the module path.
set -euo pipefail

cmd="${1:-}"
DIR="${2:-}"
if [ -z "$cmd" ] || [ -z "$DIR" ]; then
  echo "usage: $0 start|stop|env DIR" >&2
  exit 2
fi
TOKEN_LABEL=keystrata-test

find_module() {
  local m
  for m in "${KS_SOFTHSM_MODULE:-}" \
    /usr/lib/softhsm/libsofthsm2.so \
    "/usr/lib/$(uname -m)-linux-gnu/softhsm/libsofthsm2.so" \
    /usr/lib64/softhsm/libsofthsm2.so \
    /usr/local/lib/softhsm/libsofthsm2.so; do
    if [ -n "$m" ] && [ -f "$m" ]; then
      echo "$m"
      return 0
    fi
  done
  echo "softhsm: libsofthsm2.so not found: install softhsm2 (make setup) or set KS_SOFTHSM_MODULE" >&2
  return 1
}

random_pin() {
  od -An -N8 -tx1 /dev/urandom | tr -d ' \n'
}

has_token() {
  SOFTHSM2_CONF="$DIR/softhsm2.conf" softhsm2-util --show-slots 2>/dev/null |
    grep -Eq "^[[:space:]]*Label:[[:space:]]+$TOKEN_LABEL[[:space:]]*$"
}

case "$cmd" in
  start)
    command -v softhsm2-util >/dev/null || {
      echo "softhsm: softhsm2-util not found: install softhsm2 (make setup)" >&2
      exit 1
    }
    module="$(find_module)"
    mkdir -p "$DIR/tokens"
    DIR="$(cd "$DIR" && pwd)"
    chmod 700 "$DIR"
    cat >"$DIR/softhsm2.conf" <<CONF
# keystrata test token store (scripts/peers/softhsm.sh)
directories.tokendir = $DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
    if [ -f "$DIR/pins" ]; then
      # shellcheck disable=SC1091
      . "$DIR/pins"
    else
      pin="$(random_pin)"
      so_pin="$(random_pin)"
      (umask 077 && printf 'pin=%s\nso_pin=%s\n' "$pin" "$so_pin" >"$DIR/pins")
    fi
    if ! has_token; then
      SOFTHSM2_CONF="$DIR/softhsm2.conf" softhsm2-util --init-token --free \
        --label "$TOKEN_LABEL" --so-pin "$so_pin" --pin "$pin" >/dev/null
      has_token || {
        echo "softhsm: token $TOKEN_LABEL was not created in $DIR" >&2
        exit 1
      }
      echo "softhsm: token $TOKEN_LABEL created in $DIR" >&2
    else
      echo "softhsm: token $TOKEN_LABEL already in $DIR" >&2
    fi
    (umask 077 && cat >"$DIR/env" <<ENV
export SOFTHSM2_CONF='$DIR/softhsm2.conf'
export KS_TEST_PKCS11_MODULE='$module'
export KS_TEST_PKCS11_TOKEN='$TOKEN_LABEL'
export KS_TEST_PKCS11_PIN='$pin'
export KS_TEST_PKCS11_SO_PIN='$so_pin'
ENV
    )
    ;;
  env)
    if [ ! -f "$DIR/env" ]; then
      echo "softhsm: not started in $DIR: run '$0 start $DIR' first" >&2
      exit 1
    fi
    cat "$DIR/env"
    ;;
  stop)
    # Remove only a directory this script made.
    if [ -d "$DIR" ]; then
      if [ -f "$DIR/softhsm2.conf" ] || [ -z "$(ls -A "$DIR")" ]; then
        rm -rf "$DIR"
        echo "softhsm: removed $DIR" >&2
      else
        echo "softhsm: $DIR does not look like a softhsm.sh directory; not removing it" >&2
        exit 1
      fi
    fi
    ;;
  *)
    echo "usage: $0 start|stop|env DIR" >&2
    exit 2
    ;;
esac
