"""Prints N distinct free loopback TCP ports, one per line, for peers that
are stopped and started again on the same port (the outage checks).

Ports come from below the kernel's ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range): a port from that range (what
bind(("127.0.0.1", 0)) gives) can be taken, while its server is down, as
the source port of any outgoing connection, and the restart then fails
with the port in use (seen once in make test's fleet check of etcd).

    python3 scripts/peers/free_ports.py [N]
"""

import random
import socket
import sys


def ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    low, high = 10000, ephemeral_low() - 1
    held, ports = [], []
    if high - low < 1000:  # an unusual range: fall back to the kernel's choice
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
            ports.append(s.getsockname()[1])
    else:
        rng = random.SystemRandom()
        while len(ports) < n:
            p = rng.randint(low, high)
            if p in ports:
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                s.close()
                continue
            held.append(s)
            ports.append(p)
    for p in ports:
        print(p)


if __name__ == "__main__":
    main()
