#!/usr/bin/env bash
# A PyKMIP server on loopback for the KMIP root's tests: mutual TLS 1.2
# with freshly generated EC P-256 certificates (a CA, a server certificate
# for 127.0.0.1/localhost, a client certificate with clientAuth).
#
#   bash scripts/peers/pykmip.sh start DIR   # start (idempotent), state in DIR
#   bash scripts/peers/pykmip.sh env DIR     # print the KS_TEST_KMIP_* exports
#   bash scripts/peers/pykmip.sh stop DIR    # stop it (keeps certificates and port)
#
# The certificates and the port are made once per DIR, so a restart (the
# outage test stops and starts the server) serves the same address with the
# same keys and database. Needs the `openssl` CLI and $REPO/.venv with pykmip.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$REPO/scripts/peers/pykmip.sh"
cmd="${1:-}"
DIR="${2:-}"
if [ -z "$cmd" ] || [ -z "$DIR" ]; then
  echo "usage: $0 start|stop|env DIR" >&2
  exit 2
fi
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
SERVER="$REPO/.venv/bin/pykmip-server"

# port_open, running, group_alive, stop_group, free_port, issue_test_certs.
. "$REPO/scripts/peers/lib.sh"

make_certs() {
  [ -f "$DIR/client.key" ] && return 0
  local t="$DIR/tmp.$$"
  mkdir -p "$t"
  issue_test_certs "$t" "keystrata test KMIP CA"
  chmod 600 "$t"/*.key
  mv "$t"/* "$DIR"/
  rmdir "$t"
}

pick_port() {
  [ -s "$DIR/port" ] || free_port > "$DIR/port"
}

write_config() {
  mkdir -p "$DIR/policies"
  cat > "$DIR/server.conf" <<EOF
[server]
hostname=127.0.0.1
port=$(cat "$DIR/port")
certificate_path=$DIR/server.pem
key_path=$DIR/server.key
ca_path=$DIR/ca.pem
auth_suite=TLS1.2
enable_tls_client_auth=True
policy_path=$DIR/policies
database_path=$DIR/pykmip.db
logging_level=WARNING
EOF
}

case "$cmd" in
  start)
    if running && port_open "$(cat "$DIR/port")"; then
      echo "pykmip: already running on 127.0.0.1:$(cat "$DIR/port")"
      exit 0
    fi
    # A server of ours that does not listen (or its workers, outliving it)
    # is stopped before a new one starts, never left behind.
    [ -s "$DIR/pid" ] && stop_group "$(cat "$DIR/pid")"
    [ -x "$SERVER" ] || { echo "pykmip: $SERVER not found (run make setup)" >&2; exit 1; }
    command -v openssl >/dev/null || { echo "pykmip: the openssl CLI is needed" >&2; exit 1; }
    make_certs
    pick_port
    write_config
    port="$(cat "$DIR/port")"
    if port_open "$port"; then
      echo "pykmip: port $port is taken by another process" >&2
      exit 1
    fi
    setsid nohup "$SERVER" -f "$DIR/server.conf" -l "$DIR/server.log" \
      </dev/null >>"$DIR/stdout.log" 2>&1 &
    echo $! > "$DIR/pid"
    for _ in $(seq 1 200); do
      if port_open "$port"; then
        echo "pykmip: listening on 127.0.0.1:$port"
        exit 0
      fi
      if ! running; then break; fi
      sleep 0.1
    done
    echo "pykmip: the server did not start; last lines of its logs:" >&2
    tail -n 20 "$DIR/server.log" "$DIR/stdout.log" >&2 2>/dev/null || true
    exit 1
    ;;
  stop)
    # The whole process group, even when the server itself already exited.
    [ -s "$DIR/pid" ] && stop_group "$(cat "$DIR/pid")"
    rm -f "$DIR/pid"
    if [ -s "$DIR/port" ]; then
      for _ in $(seq 1 50); do
        port_open "$(cat "$DIR/port")" || break
        sleep 0.1
      done
    fi
    echo "pykmip: stopped"
    ;;
  env)
    [ -s "$DIR/port" ] || { echo "pykmip: not started in $DIR" >&2; exit 1; }
    echo "export KS_TEST_KMIP_HOST=127.0.0.1"
    echo "export KS_TEST_KMIP_PORT=$(cat "$DIR/port")"
    echo "export KS_TEST_KMIP_CA=$DIR/ca.pem"
    echo "export KS_TEST_KMIP_CERT=$DIR/client.pem"
    echo "export KS_TEST_KMIP_KEY=$DIR/client.key"
    echo "export KS_TEST_KMIP_DIR=$DIR"
    echo "export KS_TEST_KMIP_CTL=$SELF"
    ;;
  *)
    echo "usage: $0 start|stop|env DIR" >&2
    exit 2
    ;;
esac
