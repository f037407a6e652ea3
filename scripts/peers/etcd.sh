#!/usr/bin/env bash
# Real etcd servers on loopback for the etcd store's tests (apt etcd-server,
# etcd 3.4):
#   - a 3-member cluster (m1, m2, m3), plain gRPC, for the shared-keychain,
#     fleet and outage tests;
#   - one TLS member with client certificates required and user/password
#     auth enabled (freshly made EC P-256 CA, server and client
#     certificates), for the TLS and auth tests.
#
#   bash scripts/peers/etcd.sh start DIR            # start all (idempotent)
#   bash scripts/peers/etcd.sh env DIR              # print the KS_TEST_ETCD_* exports
#   bash scripts/peers/etcd.sh member stop N DIR    # stop member N (1..3) of the cluster
#   bash scripts/peers/etcd.sh member start N DIR   # start it again (waits for the cluster)
#   bash scripts/peers/etcd.sh stop DIR             # stop everything, remove DIR
#
# Processes are started in their own session and stopped by PID (DIR/*.pid),
# never by name. Ports are picked once per DIR (DIR/ports), so a member that
# is stopped and started again serves the same address with the same data.
# Readiness is polled with a deadline (`etcdctl endpoint health`).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$REPO/scripts/peers/etcd.sh"
ETCD="${KS_ETCD_BIN:-etcd}"
ETCDCTL="${KS_ETCDCTL_BIN:-etcdctl}"
# The tests' keys live under this prefix; the TLS member's test user may
# read and write only there.
PREFIX=/keystrata-test/
TLS_USER=keystrata
export ETCDCTL_API=3

usage() {
  echo "usage: $0 start|stop|env DIR | member stop|start N DIR" >&2
  exit 2
}

cmd="${1:-}"
case "$cmd" in
  member)
    action="${2:-}"
    N="${3:-}"
    DIR="${4:-}"
    case "$action" in start | stop) ;; *) usage ;; esac
    case "$N" in 1 | 2 | 3) ;; *) usage ;; esac
    ;;
  start | stop | env) DIR="${2:-}" ;;
  *) usage ;;
esac
[ -n "${DIR:-}" ] || usage

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pid_of() { # NAME
  [ -s "$DIR/$1.pid" ] && cat "$DIR/$1.pid"
}

# Whether NAME's recorded process is running and is the etcd this script
# started (a stale pid file may name a reused PID).
alive() { # NAME
  local pid
  pid="$(pid_of "$1")" || return 1
  kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--data-dir $DIR/$1.data"
}

pick_ports() {
  [ -s "$DIR/ports" ] && return 0
  # Eight distinct free ports (below the ephemeral range: members are
  # stopped and started again on theirs): client and peer for m1..m3 and
  # for tls.
  local names=(c1 p1 c2 p2 c3 p3 tc tp) i=0 port
  : >"$DIR/ports.tmp"
  while read -r port; do
    echo "${names[$i]}=$port" >>"$DIR/ports.tmp"
    i=$((i + 1))
  done < <(python3 "$REPO/scripts/peers/free_ports.py" 8)
  [ "$i" -eq 8 ] || { echo "etcd: could not find 8 free ports" >&2; return 1; }
  mv "$DIR/ports.tmp" "$DIR/ports"
}

load_ports() {
  # shellcheck disable=SC1091
  . "$DIR/ports"
}

make_certs() {
  [ -f "$DIR/tls/client.key" ] && return 0
  local t="$DIR/tls.tmp.$$"
  mkdir -p "$t"
  openssl ecparam -name prime256v1 -genkey -noout -out "$t/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$t/ca.key" -sha256 -days 3650 -subj "/CN=keystrata test etcd CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$t/ca.pem" 2>/dev/null
  local who ext cn
  for who in server client; do
    openssl ecparam -name prime256v1 -genkey -noout -out "$t/$who.sec1" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$t/$who.sec1" -out "$t/$who.key"
    rm -f "$t/$who.sec1"
    if [ "$who" = server ]; then
      ext="subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
      cn=localhost
    else
      # With --client-cert-auth, etcd takes the user from the certificate's
      # CN when a request carries no token: this CN is no etcd user, so only
      # user/password authentication grants anything.
      ext="extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
      cn=keystrata-test-client
    fi
    openssl req -new -key "$t/$who.key" -subj "/CN=$cn" -out "$t/$who.csr" 2>/dev/null
    printf '%s\n' "$ext" >"$t/$who.ext"
    openssl x509 -req -in "$t/$who.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
      -days 3650 -sha256 -extfile "$t/$who.ext" -out "$t/$who.pem" 2>/dev/null
    rm -f "$t/$who.csr" "$t/$who.ext"
  done
  chmod 600 "$t"/*.key
  mkdir -p "$DIR/tls"
  mv "$t"/* "$DIR/tls/"
  rmdir "$t"
}

random_secret() {
  od -An -N12 -tx1 /dev/urandom | tr -d ' \n'
}

make_passwords() {
  [ -s "$DIR/passwords" ] && return 0
  (umask 077 && printf 'root_password=%s\nuser_password=%s\n' "$(random_secret)" "$(random_secret)" \
    >"$DIR/passwords")
}

cluster_urls() {
  echo "m1=http://127.0.0.1:$p1,m2=http://127.0.0.1:$p2,m3=http://127.0.0.1:$p3"
}

client_port() { # N
  local v="c$1"
  echo "${!v}"
}

launch() { # NAME ARGS...   (a new session, output to DIR/NAME.log, pid to DIR/NAME.pid)
  local name="$1"
  shift
  setsid nohup "$ETCD" "$@" </dev/null >>"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

start_member() { # N
  local n="$1" name="m$1"
  alive "$name" && return 0
  local c p
  c="$(client_port "$n")"
  local pv="p$n"
  p="${!pv}"
  if port_open "$c" || port_open "$p"; then
    echo "etcd: a port of $name ($c, $p) is taken by another process" >&2
    return 1
  fi
  # The initial-cluster flags matter only for the first start; later starts
  # find the member's identity in its data directory.
  launch "$name" --name "$name" --data-dir "$DIR/$name.data" \
    --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
    --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
    --initial-cluster "$(cluster_urls)" --initial-cluster-state new \
    --initial-cluster-token "keystrata-test-$(basename "$DIR")" \
    --auto-compaction-mode periodic --auto-compaction-retention 1m \
    --logger zap --log-outputs stderr --log-level warn
}

cluster_endpoints() {
  echo "127.0.0.1:$c1,127.0.0.1:$c2,127.0.0.1:$c3"
}

# Waits until every endpoint given answers a linearizable health check.
wait_healthy() { # ENDPOINTS DEADLINE_SECONDS [etcdctl TLS args...]
  local eps="$1" deadline=$((SECONDS + $2))
  shift 2
  while [ $SECONDS -lt $deadline ]; do
    if "$ETCDCTL" --endpoints="$eps" --dial-timeout=1s --command-timeout=2s "$@" \
      endpoint health >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

tls_args() {
  echo "--cacert=$DIR/tls/ca.pem --cert=$DIR/tls/client.pem --key=$DIR/tls/client.key"
}

start_tls() {
  if ! alive tls; then
    if port_open "$tc" || port_open "$tp"; then
      echo "etcd: a port of the TLS member ($tc, $tp) is taken by another process" >&2
      return 1
    fi
    launch tls --name tls --data-dir "$DIR/tls.data" \
      --listen-client-urls "https://127.0.0.1:$tc" --advertise-client-urls "https://127.0.0.1:$tc" \
      --listen-peer-urls "http://127.0.0.1:$tp" --initial-advertise-peer-urls "http://127.0.0.1:$tp" \
      --initial-cluster "tls=http://127.0.0.1:$tp" --initial-cluster-state new \
      --cert-file "$DIR/tls/server.pem" --key-file "$DIR/tls/server.key" \
      --client-cert-auth --trusted-ca-file "$DIR/tls/ca.pem" \
      --logger zap --log-outputs stderr --log-level warn
  fi
  # shellcheck disable=SC2046
  if ! wait_healthy "https://127.0.0.1:$tc" 30 $(tls_args) &&
    ! ETCDCTL_USER=root ETCDCTL_PASSWORD="$root_password" wait_healthy "https://127.0.0.1:$tc" 1 $(tls_args); then
    echo "etcd: the TLS member did not become healthy; last lines of its log:" >&2
    tail -n 20 "$DIR/tls.log" >&2 || true
    return 1
  fi
  [ -f "$DIR/tls.auth-enabled" ] && return 0
  # Users, a role limited to the test prefix, then auth on. Passwords go
  # through the environment and stdin, never the command line.
  local ctl=("$ETCDCTL" --endpoints="https://127.0.0.1:$tc" --cacert="$DIR/tls/ca.pem"
    --cert="$DIR/tls/client.pem" --key="$DIR/tls/client.key" --command-timeout=5s)
  printf '%s\n' "$root_password" | "${ctl[@]}" user add root --interactive=false >/dev/null
  "${ctl[@]}" user grant-role root root >/dev/null
  "${ctl[@]}" role add "$TLS_USER" >/dev/null
  "${ctl[@]}" role grant-permission "$TLS_USER" --prefix=true readwrite "$PREFIX" >/dev/null
  printf '%s\n' "$user_password" | "${ctl[@]}" user add "$TLS_USER" --interactive=false >/dev/null
  "${ctl[@]}" user grant-role "$TLS_USER" "$TLS_USER" >/dev/null
  "${ctl[@]}" auth enable >/dev/null
  touch "$DIR/tls.auth-enabled"
}

stop_pid() { # NAME
  local pid
  pid="$(pid_of "$1")" || return 0
  if alive "$1"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
  rm -f "$DIR/$1.pid"
}

wait_port_closed() { # PORT
  local deadline=$((SECONDS + 10))
  while port_open "$1" && [ $SECONDS -lt $deadline ]; do
    sleep 0.05
  done
}

case "$cmd" in
  start)
    command -v "$ETCD" >/dev/null || { echo "etcd: $ETCD not found: install etcd-server (make setup)" >&2; exit 1; }
    command -v "$ETCDCTL" >/dev/null || { echo "etcd: $ETCDCTL not found: install etcd-client (make setup)" >&2; exit 1; }
    command -v openssl >/dev/null || { echo "etcd: the openssl CLI is needed" >&2; exit 1; }
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    chmod 700 "$DIR"
    pick_ports
    load_ports
    make_certs
    make_passwords
    # shellcheck disable=SC1091
    . "$DIR/passwords"
    for n in 1 2 3; do start_member "$n"; done
    if ! wait_healthy "$(cluster_endpoints)" 30; then
      echo "etcd: the 3-member cluster did not become healthy; last lines of its logs:" >&2
      tail -n 10 "$DIR"/m?.log >&2 || true
      exit 1
    fi
    echo "etcd: cluster on $(cluster_endpoints)" >&2
    start_tls
    echo "etcd: TLS + auth member on 127.0.0.1:$tc" >&2
    ;;
  member)
    DIR="$(cd "$DIR" && pwd)"
    load_ports
    if [ "$action" = stop ]; then
      stop_pid "m$N"
      wait_port_closed "$(client_port "$N")"
      echo "etcd: member m$N stopped" >&2
    else
      start_member "$N"
      # The member serves once it has caught up with a leader; with fewer
      # than two members running there is no quorum to wait for. The
      # deadline only bounds a hang: on a saturated 2-core machine a
      # restart replaying its WAL took longer than 30 s (make test under
      # stress-ng), so it is generous, and a member that dies ends the wait
      # at once.
      deadline=$((SECONDS + 180))
      until port_open "$(client_port "$N")"; do
        if [ $SECONDS -ge $deadline ] || ! alive "m$N"; then
          echo "etcd: member m$N did not start; last lines of its log:" >&2
          tail -n 20 "$DIR/m$N.log" >&2 || true
          exit 1
        fi
        sleep 0.05
      done
      echo "etcd: member m$N started" >&2
    fi
    ;;
  stop)
    if [ -d "$DIR" ]; then
      DIR="$(cd "$DIR" && pwd)"
      for name in m1 m2 m3 tls; do stop_pid "$name"; done
      # Remove only a directory this script made.
      if [ -f "$DIR/ports" ]; then
        rm -rf "$DIR"
      fi
    fi
    echo "etcd: stopped" >&2
    ;;
  env)
    [ -s "$DIR/ports" ] || { echo "etcd: not started in $DIR" >&2; exit 1; }
    DIR="$(cd "$DIR" && pwd)"
    load_ports
    # shellcheck disable=SC1091
    . "$DIR/passwords"
    echo "export KS_TEST_ETCD_ENDPOINTS=$(cluster_endpoints)"
    echo "export KS_TEST_ETCD_PREFIX=$PREFIX"
    echo "export KS_TEST_ETCD_DIR=$DIR"
    echo "export KS_TEST_ETCD_CTL=$SELF"
    echo "export KS_TEST_ETCD_TLS_ENDPOINT=127.0.0.1:$tc"
    echo "export KS_TEST_ETCD_TLS_CA=$DIR/tls/ca.pem"
    echo "export KS_TEST_ETCD_TLS_CERT=$DIR/tls/client.pem"
    echo "export KS_TEST_ETCD_TLS_KEY=$DIR/tls/client.key"
    echo "export KS_TEST_ETCD_TLS_USER=$TLS_USER"
    echo "export KS_TEST_ETCD_TLS_PASSWORD=$user_password"
    ;;
esac
