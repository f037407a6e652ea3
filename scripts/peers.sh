#!/usr/bin/env bash
# Starts and stops the real peers the tests of the PKCS#11 and KMIP roots
# talk to: a SoftHSM2 token in a temporary directory and a PyKMIP server on
# loopback (mutual TLS, freshly generated EC P-256 certificates).
#
#   eval "$(bash scripts/peers.sh start)"   # start both, export their settings
#   bash scripts/peers.sh env               # print the export lines again
#   bash scripts/peers.sh stop              # stop the server, remove the state
#
# Idempotent: `start` on running peers only prints the settings. State lives
# in DIR (default target/peers; override with KS_PEERS_DIR). Installing the
# packages is scripts/setup.sh's job (make setup).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${KS_PEERS_DIR:-$REPO/target/peers}"
cmd="${1:-}"

case "$cmd" in
  start)
    mkdir -p "$DIR"
    bash "$REPO/scripts/peers/softhsm.sh" start "$DIR/softhsm" >&2
    bash "$REPO/scripts/peers/pykmip.sh" start "$DIR/pykmip" >&2
    bash "$REPO/scripts/peers/softhsm.sh" env "$DIR/softhsm"
    bash "$REPO/scripts/peers/pykmip.sh" env "$DIR/pykmip"
    ;;
  env)
    bash "$REPO/scripts/peers/softhsm.sh" env "$DIR/softhsm"
    bash "$REPO/scripts/peers/pykmip.sh" env "$DIR/pykmip"
    ;;
  stop)
    bash "$REPO/scripts/peers/pykmip.sh" stop "$DIR/pykmip" >&2 || true
    bash "$REPO/scripts/peers/softhsm.sh" stop "$DIR/softhsm" >&2 || true
    ;;
  *)
    echo "usage: $0 start|env|stop   (state in \$KS_PEERS_DIR, default target/peers)" >&2
    exit 2
    ;;
esac
