"""Typical use of keystrata with full annotations: checked by
``mypy --strict`` (bindings/python/test.sh) against the hand-written stubs,
and run by test_typing.py so it cannot drift from the real behaviour."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import keystrata
from keystrata import Envelope, Event, Keychain, KeyInfo, KeyManager, Policy


def store_object(km: KeyManager, data_key: bytes, object_name: str) -> Dict[str, str]:
    """A gateway-style function that accepts any key manager."""
    env: Envelope = km.wrap_key(data_key, object_name.encode())
    return env.to_metadata()


def fetch_key(km: KeyManager, metadata: Dict[str, str], object_name: str) -> bytes:
    return km.unwrap_key(Envelope.from_metadata(metadata), object_name.encode())


def main() -> int:
    root: keystrata.Root = keystrata.AgeRoot.generate()
    events: List[Event] = []

    def on_event(e: Event) -> None:
        events.append(e)

    with Keychain.generate(Policy(max_encryptions_per_key=1000)) as kc:
        sub: int = kc.subscribe(on_event)
        sealed: bytes = kc.seal(b"secret", aad=b"ctx")
        assert kc.unseal(memoryview(sealed), bytearray(b"ctx")) == b"secret"
        blob = kc.encrypt(b"document")
        assert kc.decrypt(blob) == b"document"

        meta = store_object(kc, os.urandom(32), "bucket/a")
        assert len(fetch_key(kc, meta, "bucket/a")) == 32

        origin_key: bytes = kc.derive_origin_key("https://app.example", b"web-1", 0)
        okm: bytes = kc.derive(b"info", 64)
        assert len(origin_key) == 32 and len(okm) == 64

        rotated: KeyInfo = kc.rotate()
        staged = kc.add_key(purpose="encrypt")
        kc.promote(staged.key_id)
        kc.disable(rotated.key_id)
        kc.enable(rotated.key_id)
        primary: KeyInfo = kc.primary
        versions: List[int] = [k.version for k in kc.keys() if k.purpose == "encrypt"]
        assert primary.version == max(versions)

        policy: Policy = kc.policy
        age: Optional[int] = policy.max_key_age_secs
        assert age is None
        kc.set_policy(Policy(max_encryptions_per_key=2**32, max_key_age_secs=86400))

        counters: keystrata.Counters = kc.counters()
        n_auth: int = counters["errors"]["Authentication"]
        assert counters["seal"] == 1 and n_auth == 0

        tink_json: str = kc.insecure_export_tink_cleartext()
        again = Keychain.import_tink_cleartext(tink_json)
        assert again.unseal(sealed, b"ctx") == b"secret"

        saved: bytes = kc.save(root)
        loaded = Keychain.load(saved, root)
        assert loaded.provider == "keystrata" and loaded.active_key_version() >= 1

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "kc.age"
            kc.save_file(path, root)
            bound = Keychain.open(str(path), root, policy=None)
            assert bound.is_bound
            portable: bytes = bound.encrypt_portable(b"travels", aad=b"ctx")
            assert keystrata.decrypt_portable(portable, root, b"ctx") == b"travels"
            assert root.decrypt_portable(memoryview(portable), aad=b"ctx") == b"travels"
            pc: keystrata.PortableCounters = root.portable_counters()
            assert pc["root_calls"] == 1 and pc["cached_keks"] == 1
            bound.close()

        try:
            kc.unseal(sealed, b"wrong")
        except keystrata.AuthenticationError as e:
            kind: str = e.kind
            code: int = e.code
            assert (kind, code) == ("Authentication", 2)

        assert kc.unsubscribe(sub)
        okm2: bytes = keystrata.hkdf_sha256(None, b"ikm", b"info", 32)
        assert len(okm2) == 32

        # A gateway: the context from object metadata, a compact envelope,
        # and a two-step rotation.
        user_meta: Dict[str, str] = {"bucket": "photos", "x-amz-meta-owner": "alice"}
        ctx: bytes = keystrata.metadata_context(user_meta, bind=["bucket"])
        assert keystrata.metadata_context([("bucket", "photos")], "all") == ctx
        assert keystrata.metadata_context(user_meta) == b""
        compact: Envelope = kc.wrap_key(b"d" * 32, ctx, form="compact")
        stored = {**user_meta, **compact.to_metadata()}
        assert kc.unwrap_key(Envelope.from_metadata(stored), ctx) == b"d" * 32
        plan: keystrata.RotationPlan = kc.prepare_rotation()
        target: int = plan.target_version
        promoted: KeyInfo = kc.promote_version(plan)
        assert promoted.version == target and kc.prepare_rotation(None).current_version == target

    pw = keystrata.PassphraseRoot("correct horse", work_factor=10)
    env: Envelope = pw.wrap_key(b"k" * 16)
    assert pw.unwrap_key(env) == b"k" * 16
    assert events and all(isinstance(e.kind, str) for e in events)
    device_roots()
    custom_root()
    signing()
    streaming()
    minisign_and_trust()
    return 0


class LabelledKms:
    """A key manager of one's own (the ``KeyManager`` protocol): here a
    keychain whose envelopes carry another provider name."""

    provider = "typed-kms"

    def __init__(self) -> None:
        self.kc = Keychain.generate()

    def wrap_key(self, key: bytes, context: bytes = b"") -> Envelope:
        env = self.kc.wrap_key(key, context)
        return Envelope(env.key_id, env.key_version, self.provider, env.ciphertext)

    def unwrap_key(self, envelope: Envelope, context: bytes = b"") -> bytes:
        env = Envelope(envelope.key_id, envelope.key_version, "keystrata", envelope.ciphertext)
        return self.kc.unwrap_key(env, context)

    def active_key_version(self) -> int:
        return self.kc.active_key_version()

    def health_check(self) -> None:
        self.kc.health_check()

    def close(self) -> None:
        self.kc.close()


def signing() -> None:
    """Signing keys, signatures in both formats, public keys, the audit
    events and counters."""
    with Keychain.generate() as kc:
        audit: List[Event] = []
        kc.subscribe(audit.append)
        signer: KeyInfo = kc.rotate_signing("ecdsa-p256")
        alg: Optional[str] = signer.algorithm
        assert alg == "ecdsa-p256" and signer.purpose == "sign"
        sig: keystrata.Signature = kc.sign(b"release", format="raw")
        sig_bytes: bytes = bytes(sig)
        assert len(sig) == 64 and sig.bytes == sig_bytes and sig.key_version == 1
        assert kc.verify(b"release", sig).key_id == sig.key_id
        assert kc.verify_with(signer.key_id, memoryview(b"release"), sig_bytes) == signer
        digest = hashlib.sha256(b"release").digest()
        assert kc.verify_digest(digest, kc.sign_digest(digest)).algorithm == "ecdsa-p256"
        pem: bytes = kc.public_key(signer.key_id)
        assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
        raw_pub: bytes = kc.public_key(signer.key_id, format="raw")
        keystrata.verify_signature(sig.algorithm, raw_pub, b"release", sig)
        staged: KeyInfo = kc.add_signing_key("ed25519")
        kc.promote(staged.key_id)
        assert kc.primary_for("sign").algorithm == "ed25519"
        try:
            kc.verify(b"tampered", sig)
        except keystrata.AuthenticationError:
            pass
        digests: List[Optional[bytes]] = [e.digest for e in audit if e.kind in ("signed", "verify_failed")]
        assert len(digests) == 3 and all(d is not None and len(d) == 32 for d in digests)
        counters: keystrata.Counters = kc.counters()
        signed: int = counters["sign"]
        assert (signed, counters["verify_ok"], counters["verify_failed"]) == (2, 3, 1)


def release_signature(signer: keystrata.Signer, artifact: bytes) -> Dict[str, str]:
    """Code written against the Signer protocol: any signer will do."""
    sig: bytes = signer.sign(artifact)
    spki: bytes = signer.public_key("der")
    signer.health_check()
    return {"algorithm": signer.algorithm, "signature": sig.hex(), "key": spki.hex()}


def minisign_and_trust() -> None:
    """minisign signatures, signers and a trust file."""
    with Keychain.generate() as kc:
        ed: KeyInfo = kc.rotate_signing("ed25519")
        minisig: str = kc.sign_minisign(b"tarball", trusted_comment="v1.2.3")
        pub: bytes = kc.public_key(ed.key_id, "minisign")
        comment: str = keystrata.verify_minisign(pub, b"tarball", minisig)
        assert comment == "v1.2.3" and kc.verify_minisign(b"tarball", minisig) == ed
        assert keystrata.verify_minisign(pub.decode(), memoryview(b"tarball"), minisig.encode()) == comment

        with kc.signer() as signer:
            made: Dict[str, str] = release_signature(signer, b"tarball")
            assert made["algorithm"] == "ed25519"
            through: str = keystrata.sign_minisign(signer, b"tarball", "via signer")
            assert kc.verify_minisign(b"tarball", through) == ed

        official = Keychain.generate()
        p256 = official.rotate_signing("ecdsa-p256")
        spki = base64.b64encode(official.public_key(p256.key_id, "der")).decode()
        line = pub.decode().splitlines()[1]
        keys = keystrata.TrustedKeys.parse(
            f"release official active ecdsa-p256 {spki}\nme community active minisign {line}\n"
        )
        listed: List[keystrata.TrustedKey] = keys.keys
        names: List[str] = [k.name for k in keys]
        assert len(keys) == len(listed) == 2 and names == ["release", "me"]
        key_id: Optional[str] = listed[1].minisign_key_id
        assert key_id is not None and listed[0].minisign_key_id is None
        who: keystrata.TrustVerified = keys.verify(b"tarball", official.sign(b"tarball"))
        assert (who.name, who.kind, who.trusted_comment) == ("release", "official", None)
        tc: Optional[str] = keys.verify(b"tarball", minisig).trusted_comment
        assert tc == "v1.2.3"
        try:
            kc.import_minisign_secret_key("not a key", password="pw")
        except keystrata.FormatError:
            pass

    module = os.environ.get("KS_TEST_PKCS11_MODULE")
    if module:
        with keystrata.Pkcs11Signer(
            module,
            os.environ["KS_TEST_PKCS11_TOKEN"],
            "typed-usage-signer",
            "ed25519",
            pin_env="KS_TEST_PKCS11_PIN",
            create_key=True,
        ) as hsm:
            assert release_signature(hsm, b"tarball")["algorithm"] == "ed25519"
            assert keystrata.sign_minisign(hsm, b"tarball").startswith("untrusted comment:")


def custom_root() -> None:
    """A root around a key manager of one's own."""
    custom = keystrata.CustomRoot(LabelledKms())
    root: keystrata.Root = custom
    km: KeyManager = custom.key_manager
    assert km.provider == custom.provider == "typed-kms"
    saved: bytes = Keychain.generate().save(root)
    with Keychain.load(saved, custom) as kc:
        assert kc.active_key_version() == 1
    assert fetch_key(custom, store_object(custom, b"d" * 32, "o"), "o") == b"d" * 32
    custom.close()


def device_roots() -> None:
    """The production roots, when their peers run (make test starts them)."""
    module = os.environ.get("KS_TEST_PKCS11_MODULE")
    if module:
        hsm: keystrata.Root = keystrata.Pkcs11Root(
            module,
            os.environ["KS_TEST_PKCS11_TOKEN"],
            "typed-usage",
            pin_env="KS_TEST_PKCS11_PIN",
            create_key=True,
        )
        km: KeyManager = hsm
        assert fetch_key(km, store_object(km, b"d" * 32, "o"), "o") == b"d" * 32
    host = os.environ.get("KS_TEST_KMIP_HOST")
    if host:
        kmip = keystrata.KmipRoot(
            host,
            int(os.environ["KS_TEST_KMIP_PORT"]),
            ca=os.environ["KS_TEST_KMIP_CA"],
            cert=Path(os.environ["KS_TEST_KMIP_CERT"]),
            key=os.environ["KS_TEST_KMIP_KEY"],
            key_name="typed-usage",
            create_key=True,
            timeout=3.0,
        )
        saved = Keychain.generate().save(kmip)
        assert Keychain.load(saved, kmip).provider == "keystrata"
        kmip_id: str = kmip.key_id
        assert kmip_id
        version: int = kmip.rotate_key()
        assert version >= 2 and kmip.active_key_version() == version
        assert Keychain.load(saved, kmip).provider == "keystrata"


def streaming() -> None:
    import io
    import shutil

    kc = Keychain.generate()
    key: KeyInfo = kc.rotate_streaming()
    fmt: Optional[str] = key.stream_format
    assert fmt == "aes256-gcm-hkdf-1mb"
    staged: KeyInfo = kc.add_stream_key("aes256-gcm-hkdf-4kb")
    assert kc.primary_for("stream").key_id == key.key_id != staged.key_id
    dst = io.BytesIO()
    w: keystrata.EncryptingWriter
    with kc.encrypting_writer(dst, b"aad") as w:
        n: int = w.write(b"hello ")
        shutil.copyfileobj(io.BytesIO(b"world"), w)
        assert n == 6
    r: keystrata.DecryptingReader = kc.decrypting_reader(io.BytesIO(dst.getvalue()), b"aad")
    out = io.BytesIO()
    shutil.copyfileobj(r, out)
    assert out.getvalue() == b"hello world"
    with tempfile.TemporaryFile() as f:
        f.write(dst.getvalue())
        s: keystrata.SeekableDecryptor = kc.seekable_decryptor(f, b"aad")
        length: int = s.plaintext_len()
        s.seek(-5, 2)
        assert s.read() == b"world" and s.tell() == length
    tink_stream: str = kc.insecure_export_tink_cleartext(purpose="stream")
    assert tink_stream


if __name__ == "__main__":
    raise SystemExit(main())
