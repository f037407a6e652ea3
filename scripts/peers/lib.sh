# Shell functions the loopback peers share (pykmip.sh, moto.sh,
# cosmian.sh): sourced, never run. Each server runs in a session of its
# own (setsid), so its process group id is its pid and the whole group is
# signalled: servers that fork workers (PyKMIP) leave none behind.
# Expects DIR (the peer's state directory, holding `pid` and `port`).

# Whether something listens on 127.0.0.1:PORT.
port_open() { # PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Whether the server this DIR started is alive.
running() {
  [ -s "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null
}

# Whether any process of the group is alive.
group_alive() { # PGID
  pgrep -g "$1" >/dev/null 2>&1
}

# Stops a server and every process of its group: TERM (and CONT, in case
# it is paused: a stopped process acts on TERM only once continued), KILL
# to what is left after 5 s.
stop_group() { # PGID
  local g="$1"
  kill -TERM -- "-$g" 2>/dev/null || true
  kill -CONT -- "-$g" 2>/dev/null || true
  for _ in $(seq 1 50); do
    group_alive "$g" || return 0
    sleep 0.1
  done
  kill -KILL -- "-$g" 2>/dev/null || true
  for _ in $(seq 1 50); do
    group_alive "$g" || return 0
    sleep 0.1
  done
}

# A free loopback port below the ephemeral range, on stdout (free_ports.py
# says why).
free_port() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/free_ports.py" 1
}

# A test CA (CN CA_CN, EC P-256) and a server (localhost, 127.0.0.1) and a
# client (CN keystrata-test, clientAuth: PyKMIP and Cosmian take the
# client's identity from its CN) certificate it issued, into directory T:
# ca.key ca.pem server.key server.pem client.key client.pem (keys PKCS#8).
issue_test_certs() { # T CA_CN
  local t="$1" who ext cn
  openssl ecparam -name prime256v1 -genkey -noout -out "$t/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$t/ca.key" -sha256 -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$t/ca.pem" 2>/dev/null
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
      ext="extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
      cn=keystrata-test
    fi
    openssl req -new -key "$t/$who.key" -subj "/CN=$cn" -out "$t/$who.csr" 2>/dev/null
    printf '%s\n' "$ext" > "$t/$who.ext"
    openssl x509 -req -in "$t/$who.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
      -days 3650 -sha256 -extfile "$t/$who.ext" -out "$t/$who.pem" 2>/dev/null
    rm -f "$t/$who.csr" "$t/$who.ext"
  done
}
