#!/usr/bin/env python3
"""kscross in Python: the cross-language harness tool (tests/cross/README.md).

Same interface as core/examples/kscross.rs. A keystrata error prints the
kind's name on stdout (message on stderr) and exits with 10 + its code;
usage errors exit 2.
"""

import json
import os
import sys

import keystrata


class Usage(Exception):
    pass


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise Usage(f"cannot read {path}: {e}")


def write(path, data):
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise Usage(f"cannot write {path}: {e}")


def root(spec):
    if spec.startswith("age:"):
        text = read(spec[4:]).decode("utf-8")
        return keystrata.AgeRoot(identities=[text])
    if spec.startswith("pass:"):
        return keystrata.PassphraseRoot(spec[5:], work_factor=10)
    raise Usage(f"bad root spec {spec!r}")


def load(spec, kc):
    return keystrata.Keychain.load_file(kc, root(spec))


def envelope_json(env):
    return json.dumps(
        {
            "key_id": env.key_id,
            "key_version": env.key_version,
            "provider": env.provider,
            "ciphertext_hex": env.ciphertext.hex(),
        },
        sort_keys=True,
    ).encode()


def metadata_json(env):
    return json.dumps(env.to_metadata(), sort_keys=True).encode()


def read_envelope(path):
    try:
        obj = json.loads(read(path))
    except ValueError as e:
        raise Usage(f"{path}: not JSON: {e}")
    if not isinstance(obj, dict):
        raise Usage(f"{path}: not a JSON object")
    if "ciphertext_hex" in obj:
        return keystrata.Envelope(
            obj["key_id"], obj["key_version"], obj["provider"], bytes.fromhex(obj["ciphertext_hex"])
        )
    if not all(isinstance(v, str) for v in obj.values()):
        raise Usage(f"{path}: metadata values must be strings")
    return keystrata.Envelope.from_metadata(obj)


def gen(d, r):
    kc = keystrata.Keychain.generate()
    v1 = kc.primary.key_id
    write(os.path.join(d, "v1.sealed"), kc.seal(b"fixture v1", b"fixture"))
    write(os.path.join(d, "v1.encrypted"), kc.encrypt(b"fixture v1", b"fixture"))
    write(os.path.join(d, "v1.env.json"), envelope_json(kc.wrap_key(b"\x11" * 32, b"fixture")))
    kc.rotate()
    write(os.path.join(d, "v2.sealed"), kc.seal(b"fixture v2", b"fixture"))
    write(os.path.join(d, "v2.encrypted"), kc.encrypt(b"fixture v2", b"fixture"))
    write(os.path.join(d, "v2.env.json"), envelope_json(kc.wrap_key(b"\x22" * 32, b"fixture")))
    kc.rotate()
    kc.disable(v1)
    write(os.path.join(d, "disabled_key_id"), f"{v1}\n".encode())
    kc.save_file(os.path.join(d, "keychain.age"), r)


# How much stream-encrypt hands the writer at a time, and stream-decrypt
# asks of the reader: odd sizes, so calls straddle segment boundaries (the
# same in every language's tool).
STREAM_WRITE_CHUNK = 10007
STREAM_READ_CHUNK = 8191


def open_file(path, mode):
    try:
        return open(path, mode)
    except OSError as e:
        raise Usage(f"cannot {'read' if 'r' in mode else 'write'} {path}: {e}")


def stream_encrypt(kc, src_path, aad, dst_path):
    """The file through kc.encrypting_writer, a chunk at a time; leaving the
    with block normally finishes the stream (the last segment)."""
    with open_file(src_path, "rb") as src, open_file(dst_path, "wb") as dst:
        with kc.encrypting_writer(dst, aad=aad) as w:
            while chunk := src.read(STREAM_WRITE_CHUNK):
                w.write(chunk)


def stream_decrypt(kc, src_path, aad, dst_path):
    """The stream in the file through kc.decrypting_reader, a chunk at a time."""
    with open_file(src_path, "rb") as src, open_file(dst_path, "wb") as dst:
        with kc.decrypting_reader(src, aad=aad) as r:
            while chunk := r.read(STREAM_READ_CHUNK):
                dst.write(chunk)


def stream_read_at(kc, src_path, aad, offset, length):
    """length bytes of plaintext at offset (fewer at the end), with
    kc.seekable_decryptor's read_at."""
    with open_file(src_path, "rb") as src:
        with kc.seekable_decryptor(src, aad=aad) as s:
            return s.read_at(offset, length)


def decimal(s, what):
    if not s.isdigit():
        raise Usage(f"bad {what}")
    return int(s, 10)


def arg_bytes(s):
    # Arguments arrive as str; give the exact bytes the shell passed.
    return os.fsencode(s)


def run(a):
    op = a[0] if a else ""
    n = len(a)
    if op == "gen-age" and n == 2:
        r = keystrata.AgeRoot.generate()
        text = f"# public key: {r.recipients[0]}\n{r.insecure_identity_strings()[0]}\n"
        write(os.path.join(a[1], "identity.txt"), text.encode())
        gen(a[1], r)
    elif op == "gen-pass" and n == 3:
        gen(a[1], keystrata.PassphraseRoot(a[2], work_factor=10))
    elif op in ("seal", "unseal", "encrypt", "decrypt") and n == 6:
        kc = load(a[1], a[2])
        data = read(a[3])
        write(a[5], getattr(kc, op)(data, arg_bytes(a[4])))
    elif op == "wrap" and n == 7:
        kc = load(a[1], a[2])
        env = kc.wrap_key(read(a[3]), arg_bytes(a[4]))
        write(a[5], envelope_json(env))
        write(a[6], metadata_json(env))
    elif op == "unwrap" and n == 6:
        kc = load(a[1], a[2])
        env = read_envelope(a[3])
        write(a[5], kc.unwrap_key(env, arg_bytes(a[4])))
    elif op == "derive" and n == 7:
        kc = load(a[1], a[2])
        try:
            epoch = int(a[5], 10)
        except ValueError:
            raise Usage("bad epoch")
        write(a[6], kc.derive_origin_key(arg_bytes(a[3]), arg_bytes(a[4]), epoch))
    elif op == "destroy" and n == 5:
        r = root(a[1])
        kc = keystrata.Keychain.load_file(a[2], r)
        kc.destroy(int(a[3], 10))
        kc.save_file(a[4], r)
    elif op == "encrypt-portable" and n == 6:
        kc = keystrata.Keychain.open(a[2], root(a[1]))
        write(a[5], kc.encrypt_portable(read(a[3]), arg_bytes(a[4])))
    elif op == "decrypt-portable" and n == 5:
        write(a[4], keystrata.decrypt_portable(read(a[2]), root(a[1]), arg_bytes(a[3])))
    elif op == "add-signing" and n == 4:
        r = root(a[1])
        kc = keystrata.Keychain.load_file(a[2], r)
        kc.rotate_signing(a[3])
        kc.save_file(a[2], r)
    elif op == "sign" and n == 6:
        kc = load(a[1], a[2])
        write(a[5], kc.sign(read(a[4]), format=a[3]).bytes)
    elif op == "verify" and n == 6:
        kc = load(a[1], a[2])
        info = kc.verify(read(a[3]), read(a[4]))
        write(a[5], f"{info.key_id}\n".encode())
    elif op == "pubkey" and n == 5:
        kc = load(a[1], a[2])
        write(a[4], kc.public_key(kc.primary_for("sign").key_id, a[3]))
    elif op == "verify-pub" and n == 6:
        keystrata.verify_signature(a[1], read(a[2]), read(a[3]), read(a[4]))
        write(a[5], b"ok\n")
    elif op == "add-stream" and n == 4:
        r = root(a[1])
        kc = keystrata.Keychain.load_file(a[2], r)
        kc.rotate_streaming(a[3])
        kc.save_file(a[2], r)
    elif op == "stream-encrypt" and n == 6:
        stream_encrypt(load(a[1], a[2]), a[3], arg_bytes(a[4]), a[5])
    elif op == "stream-decrypt" and n == 6:
        stream_decrypt(load(a[1], a[2]), a[3], arg_bytes(a[4]), a[5])
    elif op == "stream-read-at" and n == 8:
        offset, length = decimal(a[5], "offset"), decimal(a[6], "length")
        write(a[7], stream_read_at(load(a[1], a[2]), a[3], arg_bytes(a[4]), offset, length))
    elif op == "keys" and n == 3:
        kc = load(a[1], a[2])
        for k in kc.keys():
            print(k.key_id, k.version, k.purpose, k.status, int(k.primary))
    else:
        raise Usage("usage: see tests/cross/README.md")


def main():
    a = sys.argv[1:]
    try:
        run(a)
    except keystrata.Error as e:
        print(e.kind)
        sys.stderr.write(f"kscross-python: {a[0] if a else ''}: {e.kind}: {e}\n")
        sys.exit(10 + e.code)
    except Usage as e:
        sys.stderr.write(f"kscross-python: {e}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
