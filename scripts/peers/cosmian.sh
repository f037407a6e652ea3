#!/usr/bin/env bash
# A Cosmian KMS server on loopback for the KMIP root's tests: binary KMIP
# (TTLV) over mutual TLS on one free port and the HTTPS JSON TTLV API
# (/kmip/2_1) on another, both requiring a client certificate from a test
# CA generated here (EC P-256: a CA, a server certificate for
# 127.0.0.1/localhost, a client certificate with CN keystrata-test, which
# Cosmian takes as the user name). Keys live in SQLite in DIR.
#
#   bash scripts/peers/cosmian.sh start DIR   # start (idempotent), state in DIR
#   bash scripts/peers/cosmian.sh env DIR     # print the KS_TEST_COSMIAN_* exports
#   bash scripts/peers/cosmian.sh stop DIR    # stop it (keeps certificates, ports, keys)
#   bash scripts/peers/cosmian.sh clean DIR   # stop it and delete its keys
#
# The certificates and ports are made once per DIR, so a restart (the outage
# checks stop and start the server) serves the same addresses with the same
# keys; `clean` (what scripts/peers.sh stop does) deletes the keys, as every
# connection by name reads the Name of every active key on Cosmian 5.0, so a
# database that grew run after run would slow the tests down. The server
# runs in a session of its own (setsid); `stop` ends its whole process
# group. The binary is $COSMIAN_KMS, default
# ~/.cache/keystrata/cosmian/bin/cosmian_kms, which scripts/setup.sh
# installs (cargo +nightly install cosmian_kms_server@5.0.0 --locked).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$REPO/scripts/peers/cosmian.sh"
SERVER="${COSMIAN_KMS:-$HOME/.cache/keystrata/cosmian/bin/cosmian_kms}"
INSTALL="cargo +nightly install cosmian_kms_server@5.0.0 --locked --root ~/.cache/keystrata/cosmian"
# The server reads this file instead of its command line when it exists.
SYSTEM_CONF=/etc/cosmian/kms.toml
cmd="${1:-}"
DIR="${2:-}"
if [ -z "$cmd" ] || [ -z "$DIR" ]; then
  echo "usage: $0 start|stop|clean|env DIR" >&2
  exit 2
fi
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

# port_open, running, group_alive, stop_group, free_port, issue_test_certs.
. "$REPO/scripts/peers/lib.sh"

make_certs() {
  [ -f "$DIR/server.p12" ] && return 0
  local t="$DIR/tmp.$$"
  rm -rf "$t"
  mkdir -p "$t"
  issue_test_certs "$t" "keystrata test Cosmian CA"
  # The server's key and chain as PKCS#12, under a password of its own
  # (given to the server through its environment, not its command line).
  (umask 077; openssl rand -hex 16 > "$t/p12.pass")
  openssl pkcs12 -export -inkey "$t/server.key" -in "$t/server.pem" -certfile "$t/ca.pem" \
    -name keystrata-test-server -passout "file:$t/p12.pass" -out "$t/server.p12"
  chmod 600 "$t"/*.key "$t/server.p12"
  mv "$t"/* "$DIR"/
  rmdir "$t"
}

pick_ports() {
  [ -s "$DIR/port" ] || free_port > "$DIR/port"
  while [ ! -s "$DIR/https_port" ] || [ "$(cat "$DIR/https_port")" = "$(cat "$DIR/port")" ]; do
    free_port > "$DIR/https_port"
  done
}

case "$cmd" in
  start)
    if running && port_open "$(cat "$DIR/port")" && port_open "$(cat "$DIR/https_port")"; then
      echo "cosmian: already running on 127.0.0.1:$(cat "$DIR/port") (KMIP), $(cat "$DIR/https_port") (HTTPS)"
      exit 0
    fi
    # A server of ours that does not listen is stopped before a new one
    # starts, never left behind.
    [ -s "$DIR/pid" ] && stop_group "$(cat "$DIR/pid")"
    rm -f "$DIR/pid"
    if [ ! -x "$SERVER" ]; then
      echo "cosmian: $SERVER not found; install it with: $INSTALL (about 30 min; make setup does it)" >&2
      exit 1
    fi
    if [ -e "$SYSTEM_CONF" ]; then
      echo "cosmian: $SYSTEM_CONF exists, and Cosmian KMS would read it instead of the flags given here" >&2
      exit 1
    fi
    command -v openssl >/dev/null || { echo "cosmian: the openssl CLI is needed" >&2; exit 1; }
    make_certs
    pick_ports
    port="$(cat "$DIR/port")"
    https_port="$(cat "$DIR/https_port")"
    for p in "$port" "$https_port"; do
      if port_open "$p"; then
        echo "cosmian: port $p is taken by another process" >&2
        exit 1
      fi
    done
    mkdir -p "$DIR/data" "$DIR/tmp"
    # A clean environment: the server reads KMS_* variables and
    # COSMIAN_KMS_CONF, which must not leak in from the caller.
    (cd "$DIR" && exec setsid env -i PATH=/usr/bin:/bin HOME="$DIR" \
      KMS_HTTPS_P12_PASSWORD="$(cat "$DIR/p12.pass")" RUST_BACKTRACE=0 \
      "$SERVER" \
      --database-type sqlite --sqlite-path "$DIR/sqlite" \
      --socket-server-start --socket-server-hostname 127.0.0.1 --socket-server-port "$port" \
      --hostname 127.0.0.1 --port "$https_port" \
      --tls-p12-file "$DIR/server.p12" --clients-ca-cert-file "$DIR/ca.pem" \
      --root-data-path "$DIR/data" --tmp-path "$DIR/tmp" \
      --rust-log "${KS_COSMIAN_LOG:-warn}" \
      </dev/null >>"$DIR/server.log" 2>&1) &
    echo $! > "$DIR/pid"
    for _ in $(seq 1 600); do
      if port_open "$port" && port_open "$https_port"; then
        echo "cosmian: listening on 127.0.0.1:$port (KMIP) and 127.0.0.1:$https_port (HTTPS)"
        exit 0
      fi
      if ! running; then break; fi
      sleep 0.1
    done
    echo "cosmian: the server did not start; last lines of $DIR/server.log:" >&2
    tail -n 20 "$DIR/server.log" >&2 2>/dev/null || true
    [ -s "$DIR/pid" ] && stop_group "$(cat "$DIR/pid")"
    rm -f "$DIR/pid"
    exit 1
    ;;
  stop|clean)
    [ -s "$DIR/pid" ] && stop_group "$(cat "$DIR/pid")"
    rm -f "$DIR/pid"
    for f in port https_port; do
      [ -s "$DIR/$f" ] || continue
      for _ in $(seq 1 50); do
        port_open "$(cat "$DIR/$f")" || break
        sleep 0.1
      done
    done
    if [ "$cmd" = clean ]; then
      rm -rf "$DIR/sqlite" "$DIR/data" "$DIR/tmp"
      echo "cosmian: stopped, keys deleted"
    else
      echo "cosmian: stopped"
    fi
    ;;
  env)
    [ -s "$DIR/port" ] || { echo "cosmian: not started in $DIR" >&2; exit 1; }
    echo "export KS_TEST_COSMIAN_HOST=127.0.0.1"
    echo "export KS_TEST_COSMIAN_PORT=$(cat "$DIR/port")"
    echo "export KS_TEST_COSMIAN_HTTPS_PORT=$(cat "$DIR/https_port")"
    echo "export KS_TEST_COSMIAN_CA=$DIR/ca.pem"
    echo "export KS_TEST_COSMIAN_CERT=$DIR/client.pem"
    echo "export KS_TEST_COSMIAN_KEY=$DIR/client.key"
    echo "export KS_TEST_COSMIAN_DIR=$DIR"
    echo "export KS_TEST_COSMIAN_CTL=$SELF"
    ;;
  *)
    echo "usage: $0 start|stop|clean|env DIR" >&2
    exit 2
    ;;
esac
