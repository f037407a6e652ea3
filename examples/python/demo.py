"""The keystrata story in Python: a keychain under an age identity, saved,
loaded, used to seal, encrypt, wrap and derive, rotated, and still able to
read what it wrote before. The same story as core/examples/demo.rs.

Run with ``make demo``, or after ``pip install ./bindings/python``:

    python examples/python/demo.py
"""

import os
import tempfile

import keystrata


def main() -> None:
    workdir = os.path.join(tempfile.gettempdir(), f"keystrata-demo-py-{os.getpid()}")
    os.makedirs(workdir, exist_ok=True)
    id_path = os.path.join(workdir, "identity.txt")
    kc_path = os.path.join(workdir, "keychain.age")

    # 1. An age identity protects the keychain at rest.
    root = keystrata.AgeRoot.generate()
    with open(id_path, "w", encoding="utf-8") as f:
        f.write(f"# public key: {root.recipients[0]}\n{root.insecure_identity_strings()[0]}\n")
    os.chmod(id_path, 0o600)
    print(f"1. age identity written to {id_path}")

    # 2. Generate a keychain and save it atomically as an age file.
    kc = keystrata.Keychain.generate()
    kc.save_file(kc_path, root)
    p = kc.primary
    print(f"2. keychain generated (encryption primary {p.key_id} v{p.version}) and saved to {kc_path}")

    # 3. Load it back with the identity.
    with open(id_path, encoding="utf-8") as f:
        root = keystrata.AgeRoot(identities=[f.read()])
    kc = keystrata.Keychain.load_file(kc_path, root)
    print(f"3. keychain loaded: {len(kc.keys())} keys")

    # 4. Seal a small secret, envelope-encrypt a document, wrap a data key.
    sealed = kc.seal(b"postgres://billing:hunter2@db/billing", b"service=billing")
    print(f"4. sealed a secret: {len(sealed)} bytes, Tink AEAD format (prefix {sealed[:5].hex()})")
    doc = b"Quarterly numbers: up and to the right." * 100
    blob = kc.encrypt(doc, b"doc=q3-report")
    print(f"5. encrypted a {len(doc)} byte document with a fresh data key: {len(blob)} bytes")
    env = kc.wrap_key(b"\x42" * 32, b"bucket/reports/q3.pdf")
    meta = env.to_metadata()
    print(f"6. wrapped a data key for object metadata: {len(meta)} entries, key version {env.key_version}")

    # 5. Derive a stable per-origin key.
    origin_key = kc.derive_origin_key("https://app.example", "web-1", 0)
    print(f"7. derived origin key: {origin_key.hex()}")

    # 6. Rotate, save, and read everything back.
    p = kc.rotate()
    kc.save_file(kc_path, root)
    print(f"8. rotated: new primary {p.key_id} v{p.version}; saved")
    kc = keystrata.Keychain.load_file(kc_path, root)
    assert kc.unseal(sealed, b"service=billing") == b"postgres://billing:hunter2@db/billing"
    assert kc.decrypt(blob, b"doc=q3-report") == doc
    dek = kc.unwrap_key(keystrata.Envelope.from_metadata(meta), b"bucket/reports/q3.pdf")
    assert dek == b"\x42" * 32
    assert kc.derive_origin_key("https://app.example", "web-1", 0) == origin_key
    print("9. after rotation: secret unsealed, document decrypted, key unwrapped, origin key unchanged")

    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    try:
        kc.unseal(tampered, b"service=billing")
    except keystrata.AuthenticationError as e:
        print(f"10. a tampered ciphertext is refused: {type(e).__name__}: {e}")
    else:
        raise SystemExit("a tampered ciphertext was accepted")

    print()
    print("Try next:")
    print(f"  age -d -i {id_path} {kc_path}   # the keychain is a plain age file")
    print("  make test                              # every suite, including Tink interop")
    print("  docs/FORMAT.md                         # every byte, with worked examples")


if __name__ == "__main__":
    main()
