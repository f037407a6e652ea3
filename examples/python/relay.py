"""The cross-language story, Python's parts (run by ``make demo``).

    python relay.py seal DIR     load C's keychain, seal a secret and encrypt a document
    python relay.py derive DIR   derive the origin key and compare with Go's and C's
"""

import os
import sys

import keystrata

SECRET = b"postgres://billing:hunter2@db/billing"
DOCUMENT = b"Q3 report: revenue up, costs down, everyone happy.\n" * 20


def load(d: str) -> keystrata.Keychain:
    with open(os.path.join(d, "identity.txt"), encoding="utf-8") as f:
        root = keystrata.AgeRoot(identities=[f.read()])
    return keystrata.Keychain.load_file(os.path.join(d, "keychain.age"), root)


def seal(d: str) -> None:
    kc = load(d)
    sealed = kc.seal(SECRET, b"service=billing")
    with open(os.path.join(d, "secret.sealed"), "wb") as f:
        f.write(sealed)
    print(f"2. [Python] loaded C's keychain ({len(kc.keys())} keys) and sealed a secret: {len(sealed)} bytes -> secret.sealed")
    blob = kc.encrypt(DOCUMENT, b"doc=q3-report")
    with open(os.path.join(d, "report.enc"), "wb") as f:
        f.write(blob)
    print(f"   [Python] envelope-encrypted a {len(DOCUMENT)}-byte document: {len(blob)} bytes -> report.enc")


def derive(d: str) -> None:
    kc = load(d)
    key = kc.derive_origin_key("https://app.example", "web-1", 0).hex()
    with open(os.path.join(d, "origin.go.hex"), encoding="ascii") as f:
        go = f.read().strip()
    same = key == go
    print(f"6. [Python] derived the same origin key as Go and C: {'yes' if same else 'NO'}")
    print()
    print("Try next:")
    print(f"  age -d -i {d}/identity.txt {d}/keychain.age   # the keychain is a plain age file")
    print("  make test                                    # every suite in every language")
    print("  docs/FORMAT.md                               # every byte, with worked examples")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("seal", "derive"):
        sys.exit("usage: relay.py seal DIR | derive DIR")
    {"seal": seal, "derive": derive}[sys.argv[1]](sys.argv[2])
