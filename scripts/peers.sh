#!/usr/bin/env bash
# Starts and stops the real peers the tests talk to: a SoftHSM2 token in a
# temporary directory and a PyKMIP server on loopback (mutual TLS, freshly
# generated EC P-256 certificates) for the PKCS#11 and KMIP roots; a moto
# server on loopback standing in for AWS KMS (the AWS KMS root and signer);
# a 3-member etcd cluster and a TLS + auth etcd member for the etcd store;
# a Cosmian KMS server (binary KMIP and its HTTPS JSON API, mutual TLS), the
# KMIP root's second peer. A Cosmian that cannot start (its binary is built
# by scripts/setup.sh) only warns here: its variables are then missing and
# its tests fail with the command that installs it.
#
#   eval "$(bash scripts/peers.sh start)"   # start them all, export their settings
#   bash scripts/peers.sh env               # print the export lines again
#   bash scripts/peers.sh stop              # stop the servers, remove the state
#   bash scripts/peers.sh etcd-member stop N   # stop etcd cluster member N (1..3)
#   bash scripts/peers.sh etcd-member start N  # start it again
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
    bash "$REPO/scripts/peers/moto.sh" start "$DIR/moto" >&2
    bash "$REPO/scripts/peers/etcd.sh" start "$DIR/etcd" >&2
    cosmian=1
    bash "$REPO/scripts/peers/cosmian.sh" start "$DIR/cosmian" >&2 || cosmian=0
    bash "$REPO/scripts/peers/softhsm.sh" env "$DIR/softhsm"
    bash "$REPO/scripts/peers/pykmip.sh" env "$DIR/pykmip"
    bash "$REPO/scripts/peers/moto.sh" env "$DIR/moto"
    bash "$REPO/scripts/peers/etcd.sh" env "$DIR/etcd"
    if [ "$cosmian" = 1 ]; then bash "$REPO/scripts/peers/cosmian.sh" env "$DIR/cosmian"; fi
    ;;
  env)
    bash "$REPO/scripts/peers/softhsm.sh" env "$DIR/softhsm"
    bash "$REPO/scripts/peers/pykmip.sh" env "$DIR/pykmip"
    bash "$REPO/scripts/peers/moto.sh" env "$DIR/moto"
    bash "$REPO/scripts/peers/etcd.sh" env "$DIR/etcd"
    bash "$REPO/scripts/peers/cosmian.sh" env "$DIR/cosmian" 2>/dev/null || true
    ;;
  etcd-member)
    bash "$REPO/scripts/peers/etcd.sh" member "${2:-}" "${3:-}" "$DIR/etcd"
    ;;
  stop)
    bash "$REPO/scripts/peers/cosmian.sh" clean "$DIR/cosmian" >&2 || true
    bash "$REPO/scripts/peers/etcd.sh" stop "$DIR/etcd" >&2 || true
    bash "$REPO/scripts/peers/moto.sh" stop "$DIR/moto" >&2 || true
    bash "$REPO/scripts/peers/pykmip.sh" stop "$DIR/pykmip" >&2 || true
    bash "$REPO/scripts/peers/softhsm.sh" stop "$DIR/softhsm" >&2 || true
    ;;
  *)
    echo "usage: $0 start|env|stop|etcd-member stop|start N   (state in \$KS_PEERS_DIR, default target/peers)" >&2
    exit 2
    ;;
esac
