#!/usr/bin/env bash
# Stops the test peers (scripts/peers.sh stop) and fails if any process
# started from the peer directory outlives that: a PyKMIP server or one of
# its workers, an etcd member, a Cosmian KMS server. Run by make test as its
# last suite, so a run never leaves servers behind (zombies, already dead,
# are not counted).
#   KS_PEERS_DIR   the peers' state directory (default target/peers)
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${KS_PEERS_DIR:-$REPO/target/peers}"
bash "$REPO/scripts/peers.sh" stop >/dev/null 2>&1
left="$(ps -eo stat=,pid=,args= | awk -v d="$DIR/" '$1 !~ /^Z/ && index($0, d) && !index($0, "peers-stopped.sh") && !index($0, "awk ")')"
if [ -n "$left" ]; then
  echo "FAIL processes started from $DIR outlive peers.sh stop:"
  echo "$left"
  echo "peers-stopped: 0 passed, 1 failed"
  exit 1
fi
echo "ok   no process started from $DIR is left"
echo "peers-stopped: 1 passed, 0 failed"
