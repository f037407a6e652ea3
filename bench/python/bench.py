"""keystrata's Python module beside the libraries Python users already have:
pyca/cryptography (AESGCM, HKDF), Tink (AEAD; KmsEnvelopeAead with a local
AEAD as its remote) and the AWS Encryption SDK (raw AES-256 wrapping key).

Each case runs keystrata and its peers interleaved (A B C A B C ...) for
several rounds; each sample times a batch of calls sized to last about
BENCH_SAMPLE_MS. Prints one JSON line per case and implementation (ns per
call). Run by `make bench` (bench/run.py).

A peer that seals draws its random 12-byte nonce per message too
(os.urandom). Tink and the AWS Encryption SDK do so themselves.

Signing (sign_<alg>, verify_<alg>, verify_signature_<alg>; a 64-byte
message): a keychain whose signing primary is a key of <alg> beside
cryptography's own keys (Ed25519PrivateKey, ECDSA(SHA256) on SECP256R1 and
SECP256K1; DER signatures, as keystrata's default). verify_signature takes
the raw public key bytes alone, so its cryptography peer loads the key from
those bytes on every call too.

Streaming (stream_encrypt, stream_decrypt; 1 GiB in 1 MiB writes or reads,
Tink's AES256_GCM_HKDF_1MB): keystrata's encrypting_writer into a discarding
file object and decrypting_reader over the stream in memory, beside
cryptography's AESGCM over the same 1 GiB as 1,024 one-shot messages of
1 MiB (the decrypt peer opens 1,024 distinct messages held in memory) and Tink's
streaming AEAD in the same format (the same job).
"""

import io
import json
import os
import struct
import sys
import threading
import time

import keystrata
import tink
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from tink import aead

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
SAMPLE = int(os.environ.get("BENCH_SAMPLE_MS", "40")) / 1000.0
SIZES = [64, 1024, 64 * 1024, 1024 * 1024]
ONLY = sys.argv[1] if len(sys.argv) > 1 else ""
perf = time.perf_counter_ns


def emit(case, size, impl, samples, unit="ns"):
    print(json.dumps({"lang": "python", "case": case, "size": size, "impl": impl,
                      "unit": unit, "samples": samples}), flush=True)


def calibrate(f):
    n = 1
    while True:
        t = perf()
        for _ in range(n):
            f()
        el = (perf() - t) / 1e9
        if el >= SAMPLE / 4 or n >= 1 << 24:
            return max(1, int(SAMPLE / (el / n)))
        n *= 4


def run(case, size, imps):
    # One call first: a one-time cost (the first ECDSA signature of a
    # process) must not set the batch size.
    for _, f in imps:
        f()
    iters = [calibrate(f) for _, f in imps]
    samples = [[] for _ in imps]
    for _ in range(ROUNDS):
        for i, (_, f) in enumerate(imps):
            r = range(iters[i])
            t = perf()
            for _ in r:
                f()
            samples[i].append((perf() - t) / iters[i])
    for (name, _), s in zip(imps, samples):
        emit(case, size, name, s)


def want(case):
    return case.startswith(ONLY)


class CountingAead(aead.Aead):
    """A local AEAD standing in for Tink's remote KMS; counts its calls."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def encrypt(self, plaintext, associated_data):
        self.calls += 1
        return self.inner.encrypt(plaintext, associated_data)

    def decrypt(self, ciphertext, associated_data):
        self.calls += 1
        return self.inner.decrypt(ciphertext, associated_data)


def esdk():
    """The AWS Encryption SDK with a raw AES-256-GCM wrapping key, or None."""
    try:
        import aws_encryption_sdk
        from aws_encryption_sdk.identifiers import CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
        from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
        from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider
    except ImportError:
        return None
    wk = WrappingKey(wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                     wrapping_key=os.urandom(32), wrapping_key_type=EncryptionKeyType.SYMMETRIC)

    class Provider(RawMasterKeyProvider):
        provider_id = "bench"

        def _get_raw_key(self, key_id):
            return wk

    p = Provider()
    p.add_master_key(b"kek")
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    return client, p


def main():
    aead.register()
    kc = keystrata.Keychain.generate()
    key = os.urandom(32)
    ag = AESGCM(key)
    t_aead = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
    remote = CountingAead(tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead))
    t_env = aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM, remote)
    es = esdk()
    ad = b"bench/aad"
    urandom = os.urandom

    def gcm_seal(pt):
        n = urandom(12)
        return n, ag.encrypt(n, pt, ad)

    for size in SIZES:
        pt = bytes(size)
        if want("seal"):
            run("seal", size, [
                ("keystrata", lambda: kc.seal(pt, ad)),
                ("cryptography", lambda: gcm_seal(pt)),
                ("tink", lambda: t_aead.encrypt(pt, ad)),
            ])
        if want("unseal"):
            ct, (n, gct), tct = kc.seal(pt, ad), gcm_seal(pt), t_aead.encrypt(pt, ad)
            run("unseal", size, [
                ("keystrata", lambda: kc.unseal(ct, ad)),
                ("cryptography", lambda: ag.decrypt(n, gct, ad)),
                ("tink", lambda: t_aead.decrypt(tct, ad)),
            ])
        if want("encrypt"):
            imps = [
                ("keystrata", lambda: kc.encrypt(pt, ad)),
                ("cryptography", lambda: gcm_seal(pt)),
                ("tink-envelope", lambda: t_env.encrypt(pt, ad)),
            ]
            if es:
                ctx = {"aad": "bench"}
                imps.append(("aws-esdk", lambda: es[0].encrypt(source=pt, key_provider=es[1],
                                                                encryption_context=ctx)))
            run("encrypt", size, imps)
        if want("decrypt"):
            ct, (n, gct), tct = kc.encrypt(pt, ad), gcm_seal(pt), t_env.encrypt(pt, ad)
            imps = [
                ("keystrata", lambda: kc.decrypt(ct, ad)),
                ("cryptography", lambda: ag.decrypt(n, gct, ad)),
                ("tink-envelope", lambda: t_env.decrypt(tct, ad)),
            ]
            if es:
                ect, _ = es[0].encrypt(source=pt, key_provider=es[1], encryption_context={"aad": "bench"})
                imps.append(("aws-esdk", lambda: es[0].decrypt(source=ect, key_provider=es[1])))
            run("decrypt", size, imps)

    if want("derive"):
        def hkdf_peer():
            o, i = b"https://app.example", b"web-1"
            info = b"keystrata/derive/v1" + struct.pack(">I", len(o)) + o + struct.pack(">I", len(i)) + i + struct.pack(">Q", 7)
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)
        run("derive_origin_key", 32, [
            ("keystrata", lambda: kc.derive_origin_key("https://app.example", "web-1", 7)),
            ("cryptography", hkdf_peer),
        ])
    if want("wrap"):
        dek = bytes(32)
        run("wrap_key", 32, [
            ("keystrata", lambda: kc.wrap_key(dek, b"bucket/object")),
            ("cryptography", lambda: (lambda n: ag.encrypt(n, dek, b"bucket/object"))(urandom(12))),
        ])
    if want("stream_encrypt") or want("stream_decrypt"):
        streaming()
    for alg in ("ed25519", "ecdsa-p256", "ecdsa-secp256k1"):
        signing(alg)
    if want("threads"):
        threads(kc)
    if want("rootcalls"):
        n = int(os.environ.get("BENCH_ROOT_CALLS_N", "1000000"))
        before = remote.calls
        enc = t_env.encrypt
        for _ in range(n):
            enc(b"", b"")
        emit("root_calls", 0, "tink-envelope", [(remote.calls - before) * 1_000_000 / n], "calls")


def signing(alg):
    """sign_<alg>, verify_<alg> and verify_signature_<alg> over 64 bytes."""
    cases = [f"sign_{alg}", f"verify_{alg}", f"verify_signature_{alg}"]
    if not any(want(c) for c in cases):
        return
    msg = bytes(range(64))
    kc = keystrata.Keychain.generate()
    kid = kc.rotate_signing(alg).key_id
    public = kc.public_key(kid, "raw")
    if alg == "ed25519":
        priv = ed25519.Ed25519PrivateKey.generate()
        peer_sign = priv.sign
        pub = priv.public_key()
        peer_verify = pub.verify
        raw = pub.public_bytes_raw()

        def peer_verify_bytes(sig, m):
            ed25519.Ed25519PublicKey.from_public_bytes(raw).verify(sig, m)
    else:
        curve = ec.SECP256R1() if alg == "ecdsa-p256" else ec.SECP256K1()
        priv = ec.generate_private_key(curve)
        sha = ec.ECDSA(hashes.SHA256())
        peer_sign = lambda m: priv.sign(m, sha)  # noqa: E731
        pub = priv.public_key()
        peer_verify = lambda sig, m: pub.verify(sig, m, sha)  # noqa: E731
        raw = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

        def peer_verify_bytes(sig, m):
            ec.EllipticCurvePublicKey.from_encoded_point(curve, raw).verify(sig, m, sha)
    if want(cases[0]):
        run(cases[0], len(msg), [
            ("keystrata", lambda: kc.sign(msg)),
            ("cryptography", lambda: peer_sign(msg)),
        ])
    sig, psig = kc.sign(msg).bytes, peer_sign(msg)
    if want(cases[1]):
        run(cases[1], len(msg), [
            ("keystrata", lambda: kc.verify(msg, sig)),
            ("cryptography", lambda: peer_verify(psig, msg)),
        ])
    if want(cases[2]):
        vs = keystrata.verify_signature
        run(cases[2], len(msg), [
            ("keystrata", lambda: vs(alg, public, msg, sig)),
            ("cryptography", lambda: peer_verify_bytes(psig, msg)),
        ])


STREAM_TOTAL = 1 << 30
STREAM_CHUNK = 1 << 20


class _Discard(io.RawIOBase):
    """A destination that drops what it is given."""

    def writable(self):
        return True

    def write(self, b):
        return len(b)


class _Keep(io.BytesIO):
    def close(self):  # Tink closes its destination: keep the bytes
        pass


def streaming():
    """stream_encrypt and stream_decrypt at 1 GiB."""
    from tink import streaming_aead

    streaming_aead.register()
    kc = keystrata.Keychain.generate()
    kc.rotate_streaming("aes256-gcm-hkdf-1mb")
    tink_prim = tink.new_keyset_handle(
        streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB
    ).primitive(streaming_aead.StreamingAead)
    ag = AESGCM(os.urandom(32))
    ad = b"bench/stream"
    chunk = b"\x5a" * STREAM_CHUNK
    n = STREAM_TOTAL // STREAM_CHUNK

    def ks_encrypt(dst):
        with kc.encrypting_writer(dst, aad=ad) as w:
            for _ in range(n):
                w.write(chunk)

    def tink_encrypt(dst):
        with tink_prim.new_encrypting_stream(dst, ad) as s:
            for _ in range(n):
                s.write(chunk)

    def gcm_encrypt():
        for i in range(n):
            ag.encrypt(i.to_bytes(12, "big"), chunk, None)

    if want("stream_encrypt"):
        run("stream_encrypt", STREAM_TOTAL, [
            ("keystrata", lambda: ks_encrypt(_Discard())),
            ("cryptography", gcm_encrypt),
            ("tink", lambda: tink_encrypt(_Discard())),
        ])
    if want("stream_decrypt"):
        ks_dst, tink_dst = _Keep(), _Keep()
        ks_encrypt(ks_dst)
        tink_encrypt(tink_dst)
        ks_stream, tink_stream = ks_dst.getvalue(), tink_dst.getvalue()
        del ks_dst, tink_dst
        # The peer's 1 GiB: 1,024 distinct messages (one cached message
        # opened 1,024 times would read from cache, not memory).
        sealed = [ag.encrypt(i.to_bytes(12, "big"), chunk, None) for i in range(n)]
        out = bytearray(STREAM_CHUNK)

        def ks_decrypt():
            r = kc.decrypting_reader(io.BytesIO(ks_stream), aad=ad)
            total = 0
            while k := r.readinto(out):
                total += k
            assert total == STREAM_TOTAL

        def tink_decrypt():
            total = 0
            with tink_prim.new_decrypting_stream(io.BytesIO(tink_stream), ad) as s:
                while b := s.read(STREAM_CHUNK):
                    total += len(b)
            assert total == STREAM_TOTAL

        def gcm_decrypt():
            for i, m in enumerate(sealed):
                ag.decrypt(i.to_bytes(12, "big"), m, None)

        run("stream_decrypt", STREAM_TOTAL, [
            ("keystrata", ks_decrypt),
            ("cryptography", gcm_decrypt),
            ("tink", tink_decrypt),
        ])


def threads(kc):
    """Seal calls per second with 1 and 2 Python threads on one keychain,
    for 64 B (the GIL is kept: the call is shorter than a GIL hand-off) and
    64 KiB (the GIL is released during the call)."""
    for size in (64, 64 * 1024):
        pt = bytes(size)

        def tput(n):
            count = [0] * n
            stop = perf() + int(2 * SAMPLE * 1e9)

            def work(k):
                c = 0
                while perf() < stop:
                    for _ in range(32):
                        kc.seal(pt)
                    c += 32
                count[k] = c

            ts = [threading.Thread(target=work, args=(k,)) for k in range(n)]
            t = perf()
            for th in ts:
                th.start()
            for th in ts:
                th.join()
            return sum(count) / ((perf() - t) / 1e9)

        one, two = [], []
        for _ in range(ROUNDS):
            one.append(tput(1))
            two.append(tput(2))
        emit("seal_threads", size, "keystrata-1", one, "ops/s")
        emit("seal_threads", size, "keystrata-2", two, "ops/s")


if __name__ == "__main__":
    main()
