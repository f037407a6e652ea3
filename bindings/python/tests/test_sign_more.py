"""The rest of signing through the binding: minisign (against the real
``minisign`` CLI, both ways), the trust file, and signers (the keychain's,
and a PKCS#11 token's through SoftHSM2). The rules are the core's and
tested in core/tests/; here each is checked once for its mapping: types,
error kinds, the GIL, threads."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, Iterator, List

import pytest

import keystrata

from conftest import need_module, need_tool, require_peers
from test_sign import gil_released

DATA = b"keystrata 1.2.3 release tarball\n"
# Contains a string test_zz_error_messages.py looks for in every message.
PASSWORD = "correct horse minisign"
WRONG_PASSWORD = "correct horse, wrong"


# --- the minisign CLI --------------------------------------------------------


def minisign(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need_tool("minisign"), *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120
    )


class CliKey(SimpleNamespace):
    dir: Path
    pub: str  # the .pub text
    key: str  # the secret key text
    key_id: str  # as minisign prints it

    def sign(self, data: bytes, comment: str, *extra: str) -> str:
        """The .minisig text `minisign -S` makes of `data`."""
        (self.dir / "in.bin").write_bytes(data)
        r = minisign("-S", "-m", "in.bin", "-s", "k.key", "-t", comment, "-x", "in.minisig", *extra, cwd=self.dir)
        assert r.returncode == 0, r.stderr
        return (self.dir / "in.minisig").read_text()

    def verifies(self, data: bytes, sig: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """`minisign -V` of `sig` over `data` with this key's .pub."""
        (self.dir / "v.bin").write_bytes(data)
        (self.dir / "v.minisig").write_text(sig)
        return minisign("-V", "-m", "v.bin", "-x", "v.minisig", "-p", "k.pub", *extra, cwd=self.dir)


def cli_key(d: Path, password: str | None = None) -> CliKey:
    d.mkdir(parents=True, exist_ok=True)
    if password is None:
        r = minisign("-G", "-W", "-p", "k.pub", "-s", "k.key", cwd=d)
    else:
        r = minisign("-G", "-p", "k.pub", "-s", "k.key", cwd=d, stdin=f"{password}\n{password}\n")
    assert r.returncode == 0, r.stderr
    pub = (d / "k.pub").read_text()
    key_id = pub.splitlines()[0].rsplit(" ", 1)[1]
    return CliKey(dir=d, pub=pub, key=(d / "k.key").read_text(), key_id=key_id)


@pytest.fixture
def cli(tmp_path: Path) -> CliKey:
    """A minisign key pair without a password (`minisign -G -W`)."""
    return cli_key(tmp_path / "cli")


@pytest.fixture(scope="module")
def cli_pw(tmp_path_factory: pytest.TempPathFactory) -> CliKey:
    """A password-protected minisign key pair (`minisign -G`): one scrypt
    at minisign's limits, so made once."""
    return cli_key(tmp_path_factory.mktemp("cli-pw"), PASSWORD)


def same_pub(ours: bytes, theirs: str) -> bool:
    """Whether two .pub texts hold the same key and key ID. Not byte for
    byte: minisign 0.11 prints the key ID in its comment without leading
    zeros (``%X``), keystrata always with 16 digits."""
    (c1, k1), (c2, k2) = ours.decode().splitlines(), theirs.splitlines()
    return k1 == k2 and int(c1.rsplit(" ", 1)[1], 16) == int(c2.rsplit(" ", 1)[1], 16)


def pub_line(pub: str | bytes) -> str:
    """The base64 line of a minisign .pub text."""
    text = pub.decode() if isinstance(pub, bytes) else pub
    return text.splitlines()[1]


# --- minisign ----------------------------------------------------------------


def test_minisign_cli_key_imported_signs_what_minisign_verifies(kc: keystrata.Keychain, cli: CliKey) -> None:
    info = kc.import_minisign_secret_key(cli.key)
    assert isinstance(info, keystrata.KeyInfo)
    assert (info.purpose, info.algorithm, info.primary, info.status) == ("sign", "ed25519", True, "enabled")
    # It keeps its minisign key ID: the public key is the CLI's.
    assert same_pub(kc.public_key(info.key_id, "minisign"), cli.pub)

    sig = kc.sign_minisign(DATA, "release 1.2.3")
    assert isinstance(sig, str) and sig.startswith("untrusted comment: ")
    r = cli.verifies(DATA, sig, "-H")  # -H: prehashed, as minisign signs by default
    assert r.returncode == 0, r.stderr
    assert "Trusted comment: release 1.2.3" in r.stdout
    # A check that can fail: minisign refuses it for other data.
    assert cli.verifies(DATA + b"!", sig).returncode != 0

    # The default trusted comment is empty, not minisign's timestamp.
    plain = kc.sign_minisign(DATA)
    assert "\ntrusted comment: \n" in plain
    assert cli.verifies(DATA, plain).returncode == 0

    # The same key again is refused (a password given to an unencrypted
    # key is ignored).
    with pytest.raises(keystrata.InvalidInputError):
        kc.import_minisign_secret_key(cli.key, b"ignored")


def test_we_verify_what_minisign_signs(kc: keystrata.Keychain, cli: CliKey) -> None:
    info = kc.import_minisign_secret_key(cli.key)
    for extra in ((), ("-l",)):  # prehashed (the default) and legacy
        sig = cli.sign(DATA, "their comment", *extra)
        assert kc.verify_minisign(DATA, sig) == info
        assert kc.verify_minisign(memoryview(DATA), sig.encode()) == info
        assert keystrata.verify_minisign(cli.pub, DATA, sig) == "their comment"
        # The base64 line alone, as `minisign -P` takes it, and bytes.
        assert keystrata.verify_minisign(pub_line(cli.pub), bytearray(DATA), sig.encode()) == "their comment"
        with pytest.raises(keystrata.AuthenticationError):
            kc.verify_minisign(DATA + b"!", sig)
        with pytest.raises(keystrata.AuthenticationError):
            keystrata.verify_minisign(cli.pub, DATA + b"!", sig)
    # A changed trusted comment breaks the global signature.
    forged = sig.replace("trusted comment: their comment", "trusted comment: our comment")
    with pytest.raises(keystrata.AuthenticationError):
        keystrata.verify_minisign(cli.pub, DATA, forged)


def test_keychain_ed25519_key_speaks_minisign(kc: keystrata.Keychain, tmp_path: Path) -> None:
    info = kc.rotate_signing("ed25519")
    pub = kc.public_key(info.key_id, "minisign")
    sig = kc.sign_minisign(DATA, "made by a keychain")
    assert keystrata.verify_minisign(pub, DATA, sig) == "made by a keychain"
    assert kc.verify_minisign(DATA, sig) == info
    (tmp_path / "k.pub").write_bytes(pub)
    key = CliKey(dir=tmp_path, pub=pub.decode(), key="", key_id="")
    r = key.verifies(DATA, sig)
    assert r.returncode == 0, r.stderr


def test_password_protected_key(cli_pw: CliKey) -> None:
    with keystrata.Keychain.generate() as kc:
        with pytest.raises(keystrata.AuthenticationError) as wrong:
            kc.import_minisign_secret_key(cli_pw.key, bytearray(WRONG_PASSWORD.encode()))
        assert WRONG_PASSWORD not in str(wrong.value) and PASSWORD not in str(wrong.value)
        with pytest.raises(keystrata.InvalidInputError):
            kc.import_minisign_secret_key(cli_pw.key)  # encrypted, no password
        assert [k for k in kc.keys() if k.purpose == "sign"] == []

        info = kc.import_minisign_secret_key(cli_pw.key, password=PASSWORD)
        assert same_pub(kc.public_key(info.key_id, "minisign"), cli_pw.pub)
        sig = kc.sign_minisign(DATA, "from an encrypted key")
        r = cli_pw.verifies(DATA, sig)
        assert r.returncode == 0, r.stderr


def test_minisign_error_kinds(kc: keystrata.Keychain, cli: CliKey) -> None:
    # No signing key, then an ECDSA one: minisign signs with Ed25519 only.
    with pytest.raises(keystrata.UnknownKeyError):
        kc.sign_minisign(DATA)
    kc.rotate_signing("ecdsa-p256")
    with pytest.raises(keystrata.UnsupportedError):
        kc.sign_minisign(DATA)
    theirs = cli.sign(DATA, "c")
    with pytest.raises(keystrata.UnknownKeyError) as unknown:
        kc.verify_minisign(DATA, theirs)  # no key with that ID
    assert int(str(unknown.value).rsplit(" ", 1)[1], 16) == int(cli.key_id, 16)

    ed = kc.rotate_signing("ed25519")
    ours = kc.sign_minisign(DATA)
    with pytest.raises(keystrata.UnknownKeyError):
        keystrata.verify_minisign(cli.pub, DATA, ours)  # another key's signature
    with pytest.raises(keystrata.InvalidInputError):
        kc.sign_minisign(DATA, "two\nlines")
    for bad in ("", "not a signature", ours.replace("\n", "", 1)):
        with pytest.raises(keystrata.FormatError):
            kc.verify_minisign(DATA, bad)
        with pytest.raises(keystrata.FormatError):
            keystrata.verify_minisign(cli.pub, DATA, bad)
    with pytest.raises(keystrata.FormatError):
        keystrata.verify_minisign("not a key", DATA, ours)
    with pytest.raises(keystrata.FormatError, match="UTF-8"):
        keystrata.verify_minisign(b"\xff\xfe", DATA, ours)
    with pytest.raises(keystrata.FormatError, match="UTF-8"):
        kc.verify_minisign(DATA, b"\xff" + ours.encode())
    for bad_key in ("", "untrusted comment: x\nAAAA\n"):
        with pytest.raises(keystrata.FormatError):
            kc.import_minisign_secret_key(bad_key)
    # A disabled key verifies nothing.
    kc.promote(kc.add_signing_key("ed25519").key_id)
    kc.disable(ed.key_id)
    with pytest.raises(keystrata.UnknownKeyError):
        kc.verify_minisign(DATA, ours)
    # Wrong types.
    with pytest.raises(TypeError):
        kc.sign_minisign("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kc.verify_minisign(DATA, 7)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kc.import_minisign_secret_key(cli.key, 7)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keystrata.verify_minisign(None, DATA, ours)  # type: ignore[arg-type]


def test_minisign_events_and_counters(kc: keystrata.Keychain) -> None:
    info = kc.rotate_signing("ed25519")
    events: List[keystrata.Event] = []
    kc.subscribe(events.append)
    before = kc.counters()
    sig = kc.sign_minisign(DATA, "audited")
    kc.verify_minisign(DATA, sig)
    with pytest.raises(keystrata.AuthenticationError):
        kc.verify_minisign(b"other", sig)
    assert [e.kind for e in events] == ["signed", "verify_failed"]
    assert (events[0].key_id, events[0].algorithm) == (info.key_id, "ed25519")
    assert events[0].digest == hashlib.sha256(DATA).digest()
    assert events[1].digest == hashlib.sha256(b"other").digest()
    c = kc.counters()
    assert (c["sign"] - before["sign"], c["verify_ok"] - before["verify_ok"]) == (1, 1)
    assert c["verify_failed"] - before["verify_failed"] == 1


# --- the trust file ------------------------------------------------------------


@pytest.fixture
def trust(tmp_path: Path, cli: CliKey) -> SimpleNamespace:
    """A trust file: two official keys (P-256, secp256k1) and one revoked,
    and two community keys (the CLI's and a keychain's) and one revoked,
    with the keychains that sign for them."""
    official = keystrata.Keychain.generate()
    p256 = official.rotate_signing("ecdsa-p256")
    k1 = official.add_signing_key("ecdsa-secp256k1")
    old = official.add_signing_key("ecdsa-p256")
    community = keystrata.Keychain.generate()
    bob = community.rotate_signing("ed25519")
    mallory = keystrata.Keychain.generate()
    mallory_key = mallory.rotate_signing("ed25519")

    def spki(k: keystrata.KeyInfo) -> str:
        return base64.b64encode(official.public_key(k.key_id, "der")).decode()

    text = "\n".join(
        [
            "# keystrata trusted keys v1",
            "# name            kind       status   algorithm        public key",
            f"release-2026      official   active   ecdsa-p256       {spki(p256)}",
            f"release-k1        official   active   ecdsa-secp256k1  {spki(k1)}",
            f"release-2024      official   revoked  ecdsa-p256       {spki(old)}",
            "",
            f"alice             community  active   minisign         {pub_line(cli.pub)}",
            f"bob@example.org   community  active   minisign         {pub_line(community.public_key(bob.key_id, 'minisign'))}",
            f"mallory           community  revoked  minisign         {pub_line(mallory.public_key(mallory_key.key_id, 'minisign'))}",
            "",
        ]
    )
    path = tmp_path / "KEYS.txt"
    path.write_text(text)
    return SimpleNamespace(
        text=text, path=path, official=official, p256=p256, k1=k1, old=old, community=community, mallory=mallory
    )


def test_trusted_keys_parse_load_and_list(trust: SimpleNamespace, cli: CliKey) -> None:
    parsed = keystrata.TrustedKeys.parse(trust.text)
    for other in (
        keystrata.TrustedKeys.load(trust.path),
        keystrata.TrustedKeys.load(str(trust.path)),
        keystrata.TrustedKeys.parse(trust.text.encode()),
    ):
        assert other.keys == parsed.keys
    assert len(parsed) == 6
    assert [k.name for k in parsed] == [
        "release-2026",
        "release-k1",
        "release-2024",
        "alice",
        "bob@example.org",
        "mallory",
    ]
    assert list(parsed) == parsed.keys
    rel, k1, old, alice, bob, mallory = parsed.keys
    assert isinstance(rel, keystrata.TrustedKey)
    assert (rel.kind, rel.algorithm, rel.revoked, rel.minisign_key_id) == ("official", "ecdsa-p256", False, None)
    assert rel.public_key == trust.official.public_key(trust.p256.key_id, "raw")
    assert (k1.algorithm, old.revoked) == ("ecdsa-secp256k1", True)
    assert (alice.kind, alice.algorithm, alice.revoked) == ("community", "ed25519", False)
    assert alice.minisign_key_id is not None and len(alice.minisign_key_id) == 16
    assert int(alice.minisign_key_id, 16) == int(cli.key_id, 16)
    assert mallory.revoked and not bob.revoked
    assert len(alice.public_key) == 32
    # Values: equal, hashable, immutable, no constructor.
    assert rel == parsed.keys[0] and rel != k1 and len({rel, parsed.keys[0], k1}) == 2
    assert repr(alice) == "TrustedKey(name='alice', kind='community', revoked=False, algorithm='ed25519')"
    assert repr(parsed) == "<TrustedKeys: 6 keys>"
    with pytest.raises(AttributeError):
        rel.name = "x"  # type: ignore[misc]
    for cls in (keystrata.TrustedKeys, keystrata.TrustedKey, keystrata.TrustVerified):
        with pytest.raises(TypeError):
            cls()
        assert cls.__module__ == "keystrata"
    assert len(keystrata.TrustedKeys.parse("# nothing yet\n")) == 0


def test_trusted_keys_verify_says_who_signed(trust: SimpleNamespace, cli: CliKey) -> None:
    keys = keystrata.TrustedKeys.load(trust.path)
    # Official: DER, raw r‖s and a Signature, by each algorithm.
    sig = trust.official.sign(DATA)
    for form in (sig, sig.bytes, bytearray(sig.bytes), trust.official.sign(DATA, "raw").bytes):
        v = keys.verify(DATA, form)
        assert isinstance(v, keystrata.TrustVerified)
        assert (v.name, v.kind, v.algorithm, v.trusted_comment) == ("release-2026", "official", "ecdsa-p256", None)
    trust.official.promote(trust.k1.key_id)
    v = keys.verify(memoryview(DATA), trust.official.sign(DATA))
    assert (v.name, v.algorithm) == ("release-k1", "ecdsa-secp256k1")
    assert v == keys.verify(DATA, trust.official.sign(DATA)) and len({v, v}) == 1

    # Community: minisign text from the CLI and from a keychain, str or bytes.
    theirs = cli.sign(DATA, "alice's release")
    for form in (theirs, theirs.encode()):
        v = keys.verify(DATA, form)
        assert (v.name, v.kind, v.algorithm, v.trusted_comment) == (
            "alice",
            "community",
            "ed25519",
            "alice's release",
        )
    v = keys.verify(DATA, trust.community.sign_minisign(DATA, "bob"))
    assert (v.name, v.trusted_comment) == ("bob@example.org", "bob")
    assert repr(v) == (
        "TrustVerified(name='bob@example.org', kind='community', algorithm='ed25519', trusted_comment='bob')"
    )

    # An official key made outside keystrata (cryptography, OpenSSL) is trusted too.
    c = need_module("cryptography.hazmat.primitives.asymmetric.ec")
    from cryptography.hazmat.primitives import hashes, serialization

    theirs_key = c.generate_private_key(c.SECP256R1())
    der = theirs_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    extra = keystrata.TrustedKeys.parse(f"openssl official active ecdsa-p256 {base64.b64encode(der).decode()}\n")
    assert extra.verify(DATA, theirs_key.sign(DATA, c.ECDSA(hashes.SHA256()))).name == "openssl"


def test_trusted_keys_errors(trust: SimpleNamespace, cli: CliKey, tmp_path: Path) -> None:
    keys = keystrata.TrustedKeys.load(trust.path)
    # Revoked keys fail, naming themselves.
    trust.official.promote(trust.old.key_id)
    with pytest.raises(keystrata.KeyDisabledError, match="release-2024"):
        keys.verify(DATA, trust.official.sign(DATA))
    with pytest.raises(keystrata.KeyDisabledError, match="mallory"):
        keys.verify(DATA, trust.mallory.sign_minisign(DATA, "x"))
    # Nobody listed made it.
    stranger = keystrata.Keychain.generate()
    stranger.rotate_signing("ecdsa-p256")
    with pytest.raises(keystrata.AuthenticationError):
        keys.verify(DATA, stranger.sign(DATA))
    stranger.rotate_signing("ed25519")
    with pytest.raises(keystrata.UnknownKeyError):
        keys.verify(DATA, stranger.sign_minisign(DATA))
    with pytest.raises(keystrata.AuthenticationError):
        keys.verify(DATA + b"!", cli.sign(DATA, "c"))
    with pytest.raises(keystrata.FormatError):
        keys.verify(DATA, "untrusted comment: but nothing else")
    only_community = keystrata.TrustedKeys.parse(f"alice community active minisign {pub_line(cli.pub)}")
    with pytest.raises(keystrata.UnknownKeyError):
        only_community.verify(DATA, trust.official.sign(DATA))
    # Malformed files: the message names the line.
    with pytest.raises(keystrata.FormatError, match="line 2"):
        keystrata.TrustedKeys.parse("# ok\nalice community active minisign\n")
    with pytest.raises(keystrata.FormatError):
        keystrata.TrustedKeys.parse(f"a community active minisign {pub_line(cli.pub)}\n" * 2)  # one name twice
    with pytest.raises(keystrata.FormatError):
        keystrata.TrustedKeys.parse("a official active ecdsa-p256 AAAA\n")
    with pytest.raises(keystrata.FormatError, match="UTF-8"):
        keystrata.TrustedKeys.parse(b"\xff")
    with pytest.raises(keystrata.InvalidInputError):
        keystrata.TrustedKeys.parse("#" * (1 << 20 | 1))
    with pytest.raises(keystrata.IoError):
        keystrata.TrustedKeys.load(tmp_path / "absent.txt")
    with pytest.raises(TypeError):
        keys.verify(DATA, 7)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keystrata.TrustedKeys.parse(7)  # type: ignore[arg-type]


# --- signers -------------------------------------------------------------------


def their_verify(alg: str, pem: bytes, msg: bytes, sig: bytes) -> bool:
    """Whether cryptography (OpenSSL) verifies `sig` over `msg`."""
    need_module("cryptography")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pub: Any = serialization.load_pem_public_key(pem)
    try:
        if alg == "ed25519":
            pub.verify(sig, msg)
        else:
            pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def check_signer(signer: keystrata.Signer, alg: str) -> None:
    """The `Signer` contract, through the protocol only."""
    assert signer.algorithm == alg
    signer.health_check()
    pem = signer.public_key()
    assert pem == signer.public_key("pem") and pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    raw = signer.public_key("raw")
    sig = signer.sign(DATA)
    assert isinstance(sig, bytes)
    assert their_verify(alg, pem, DATA, sig) and not their_verify(alg, pem, DATA + b"!", sig)
    keystrata.verify_signature(alg, raw, DATA, sig)
    digest = hashlib.sha256(DATA).digest()
    if alg == "ed25519":
        assert len(sig) == 64
        assert signer.public_key("minisign").startswith(b"untrusted comment: minisign public key ")
        with pytest.raises(keystrata.UnsupportedError):
            signer.sign_digest(digest)
    else:
        assert sig[0] == 0x30  # DER
        assert their_verify(alg, pem, DATA, signer.sign_digest(digest))
        with pytest.raises(keystrata.InvalidInputError):
            signer.sign_digest(digest[:31])
        with pytest.raises(keystrata.UnsupportedError):
            signer.public_key("minisign")
    with pytest.raises(keystrata.InvalidInputError, match='"pem" or "der" or "raw" or "minisign"'):
        signer.public_key("jwk")


def check_closed(signer: keystrata.Signer) -> None:
    signer.close()
    signer.close()  # idempotent
    for call in (
        lambda: signer.algorithm,
        lambda: signer.public_key(),
        lambda: signer.sign(DATA),
        lambda: signer.sign_digest(bytes(32)),
        signer.health_check,
    ):
        with pytest.raises(keystrata.UnavailableError):
            call()


@pytest.mark.parametrize("alg", ["ed25519", "ecdsa-p256", "ecdsa-secp256k1"])
def test_keychain_signer(kc: keystrata.Keychain, alg: str) -> None:
    info = kc.rotate_signing(alg)
    s = kc.signer()
    assert isinstance(s, keystrata.KeychainSigner)
    check_signer(s, alg)
    assert s.public_key("der") == kc.public_key(info.key_id, "der")
    before = kc.counters()["sign"]
    assert kc.verify(DATA, s.sign(DATA)) == info  # the keychain's own key and counters
    assert kc.counters()["sign"] == before + 1
    check_closed(s)
    # Closing the signer closes nothing of the keychain; a new one works.
    kc.sign(DATA)
    assert kc.signer().algorithm == alg


def test_keychain_signer_follows_the_primary(kc: keystrata.Keychain) -> None:
    s = kc.signer()
    for call in (lambda: s.algorithm, lambda: s.sign(DATA), s.health_check):
        with pytest.raises(keystrata.UnknownKeyError):
            call()  # no signing key yet
    kc.rotate_signing("ecdsa-p256")
    assert s.algorithm == "ecdsa-p256"
    new = kc.rotate_signing("ed25519")
    assert s.algorithm == "ed25519" and kc.verify(DATA, s.sign(DATA)) == new
    with kc.signer() as t:
        assert t.algorithm == "ed25519"
    with pytest.raises(keystrata.UnavailableError):
        t.sign(DATA)
    kc.close()
    with pytest.raises(keystrata.UnavailableError):
        s.sign(DATA)
    assert "KeychainSigner" in repr(s)


def test_sign_minisign_through_a_signer(kc: keystrata.Keychain, cli: CliKey) -> None:
    info = kc.import_minisign_secret_key(cli.key)
    sig = keystrata.sign_minisign(kc.signer(), DATA, "through a signer")
    # The key's own minisign ID, so the CLI's .pub verifies it.
    r = cli.verifies(DATA, sig)
    assert r.returncode == 0, r.stderr
    assert kc.verify_minisign(DATA, sig) == info
    kc.rotate_signing("ecdsa-p256")
    with pytest.raises(keystrata.UnsupportedError):
        keystrata.sign_minisign(kc.signer(), DATA)
    with pytest.raises(TypeError, match="Pkcs11Signer, an AwsKmsSigner or a KeychainSigner"):
        keystrata.sign_minisign(kc, DATA)  # type: ignore[arg-type]


# --- the GIL and threads -----------------------------------------------------


def test_minisign_and_trust_release_the_gil(trust: SimpleNamespace, cli: CliKey) -> None:
    kc = keystrata.Keychain.generate()
    info = kc.rotate_signing("ed25519")
    pub = kc.public_key(info.key_id, "minisign")
    sig = kc.sign_minisign(DATA, "c")
    keys = keystrata.TrustedKeys.load(trust.path)
    official = trust.official.sign(DATA)
    signer = kc.signer()
    calls: Dict[str, Callable[[], object]] = {
        "Keychain.sign_minisign": lambda: kc.sign_minisign(DATA),
        "Keychain.verify_minisign": lambda: kc.verify_minisign(DATA, sig),
        "verify_minisign": lambda: keystrata.verify_minisign(pub, DATA, sig),
        "TrustedKeys.verify": lambda: keys.verify(DATA, official),
        "TrustedKeys.load": lambda: keystrata.TrustedKeys.load(trust.path),
        "KeychainSigner.sign": lambda: signer.sign(DATA),
        "sign_minisign": lambda: keystrata.sign_minisign(signer, DATA),
    }
    held = [name for name, work in calls.items() if not gil_released(work)]
    assert held == [], f"these held the GIL throughout: {held}"


def test_threads_share_trusted_keys_and_a_signer(trust: SimpleNamespace) -> None:
    keys = keystrata.TrustedKeys.load(trust.path)
    kc = keystrata.Keychain.generate()
    kc.rotate_signing("ed25519")
    trusted = keystrata.TrustedKeys.parse(
        f"me community active minisign {pub_line(kc.signer().public_key('minisign'))}\n" + trust.text
    )
    signer = kc.signer()
    official = trust.official.sign(DATA)
    n, per = 8, 15
    start = threading.Barrier(n)
    errors: List[BaseException] = []

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(per):
                msg = b"%d/%d" % (t, i)
                sig = keystrata.sign_minisign(signer, msg, f"t{t}")
                v = trusted.verify(msg, sig)
                assert (v.name, v.trusted_comment) == ("me", f"t{t}")
                assert keys.verify(DATA, official).name == "release-2026"
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    assert kc.counters()["sign"] == 2 * n * per  # two signatures per .minisig


# --- Pkcs11Signer against SoftHSM2 ---------------------------------------------

PKCS11_VARS = ("KS_TEST_PKCS11_MODULE", "KS_TEST_PKCS11_TOKEN", "KS_TEST_PKCS11_PIN")


@pytest.fixture
def hsm() -> SimpleNamespace:
    missing = [v for v in PKCS11_VARS if not os.environ.get(v)]
    if missing:
        msg = f"SoftHSM2 not started ({', '.join(missing)} unset): run eval \"$(bash scripts/peers.sh start)\""
        if require_peers():
            pytest.fail(msg)
        pytest.skip(msg)
    return SimpleNamespace(
        module=os.environ["KS_TEST_PKCS11_MODULE"],
        token=os.environ["KS_TEST_PKCS11_TOKEN"],
        pin=os.environ["KS_TEST_PKCS11_PIN"],
    )


def label() -> str:
    return f"py-sig-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def token_signers(hsm: SimpleNamespace) -> Iterator[List[keystrata.Pkcs11Signer]]:
    made: List[keystrata.Pkcs11Signer] = []
    yield made
    for s in made:
        s.close()


@pytest.mark.parametrize("alg", ["ed25519", "ecdsa-p256", "ecdsa-secp256k1"])
def test_pkcs11_signer(hsm: SimpleNamespace, token_signers: List[keystrata.Pkcs11Signer], alg: str) -> None:
    name = label()
    s = keystrata.Pkcs11Signer(hsm.module, hsm.token, name, alg, pin=hsm.pin, create_key=True)
    token_signers.append(s)
    assert (s.key_label, s.token_label) == (name, hsm.token)
    assert name in repr(s) and hsm.pin not in repr(s)
    check_signer(s, alg)
    # The key stays on the token: opened again, it is the same key.
    again = keystrata.Pkcs11Signer(Path(hsm.module), hsm.token, name, alg, pin=hsm.pin)
    token_signers.append(again)
    assert again.public_key() == s.public_key()
    assert their_verify(alg, s.public_key(), DATA, again.sign(DATA))
    # Through the protocol, as for the keychain's signer.
    with keystrata.Pkcs11Signer(hsm.module, hsm.token, name, alg, pin=hsm.pin) as third:
        assert third.algorithm == alg
    check_closed(third)


def test_pkcs11_ed25519_makes_minisign_signatures(
    hsm: SimpleNamespace, token_signers: List[keystrata.Pkcs11Signer], tmp_path: Path
) -> None:
    s = keystrata.Pkcs11Signer(hsm.module, hsm.token, label(), "ed25519", pin=hsm.pin, create_key=True)
    token_signers.append(s)
    pub = s.public_key("minisign")
    sig = keystrata.sign_minisign(s, DATA, "signed in an HSM")
    # The minisign CLI verifies it with the token key's .pub ...
    (tmp_path / "k.pub").write_bytes(pub)
    r = CliKey(dir=tmp_path).verifies(DATA, sig, "-H")
    assert r.returncode == 0, r.stderr
    assert "Trusted comment: signed in an HSM" in r.stdout
    # ... and so do verify_minisign and a trust file listing it.
    assert keystrata.verify_minisign(pub, DATA, sig) == "signed in an HSM"
    keys = keystrata.TrustedKeys.parse(f"hsm-release community active minisign {pub_line(pub)}\n")
    assert keys.verify(DATA, sig).name == "hsm-release"
    with pytest.raises(keystrata.AuthenticationError):
        keys.verify(DATA + b"!", sig)


def test_pkcs11_ecdsa_key_is_an_official_key(
    hsm: SimpleNamespace, token_signers: List[keystrata.Pkcs11Signer]
) -> None:
    s = keystrata.Pkcs11Signer(hsm.module, hsm.token, label(), "ecdsa-p256", pin=hsm.pin, create_key=True)
    token_signers.append(s)
    spki = base64.b64encode(s.public_key("der")).decode()
    keys = keystrata.TrustedKeys.parse(f"release-hsm official active ecdsa-p256 {spki}\n")
    v = keys.verify(DATA, s.sign(DATA))
    assert (v.name, v.kind, v.algorithm) == ("release-hsm", "official", "ecdsa-p256")
    with pytest.raises(keystrata.UnsupportedError):
        keystrata.sign_minisign(s, DATA)


def test_pkcs11_signer_errors(hsm: SimpleNamespace, token_signers: List[keystrata.Pkcs11Signer]) -> None:
    name = label()
    token_signers.append(
        keystrata.Pkcs11Signer(hsm.module, hsm.token, name, "ecdsa-p256", pin=hsm.pin, create_key=True)
    )
    with pytest.raises(keystrata.UnsupportedError):
        keystrata.Pkcs11Signer(hsm.module, hsm.token, name, "ed25519", pin=hsm.pin)  # another algorithm
    with pytest.raises(keystrata.UnknownKeyError):
        keystrata.Pkcs11Signer(hsm.module, hsm.token, label(), "ed25519", pin=hsm.pin)
    with pytest.raises(keystrata.UnavailableError):
        keystrata.Pkcs11Signer(hsm.module, "no-such-token", name, "ed25519", pin=hsm.pin, create_key=True)
    with pytest.raises(keystrata.BackendError) as wrong:
        keystrata.Pkcs11Signer(hsm.module, hsm.token, name, "ecdsa-p256", pin="not-the-pin-0000")
    assert "not-the-pin-0000" not in str(wrong.value)
    with pytest.raises(keystrata.InvalidInputError):
        keystrata.Pkcs11Signer("/nonexistent/libpkcs11.so", hsm.token, name, "ed25519", pin=hsm.pin)
    with pytest.raises(keystrata.InvalidInputError, match='"ed25519" or "ecdsa-p256" or "ecdsa-secp256k1"'):
        keystrata.Pkcs11Signer(hsm.module, hsm.token, name, "rsa", pin=hsm.pin)
    with pytest.raises(keystrata.InvalidInputError):
        keystrata.Pkcs11Signer(hsm.module, hsm.token, name, "ecdsa-p256", pin_env="KS_TEST_SURELY_UNSET_VARIABLE")
    with pytest.raises(ValueError):
        keystrata.Pkcs11Signer(hsm.module, hsm.token, name, "ecdsa-p256")
    with pytest.raises(ValueError):
        keystrata.Pkcs11Signer(hsm.module, hsm.token, name, "ecdsa-p256", pin=hsm.pin, pin_env="X")
    os.environ["KS_TEST_PY_SIGNER_PIN"] = hsm.pin
    try:
        s = keystrata.Pkcs11Signer(hsm.module, hsm.token, name, "ecdsa-p256", pin_env="KS_TEST_PY_SIGNER_PIN")
        token_signers.append(s)
        s.health_check()
    finally:
        del os.environ["KS_TEST_PY_SIGNER_PIN"]


def test_pkcs11_signer_threads_and_the_gil(
    hsm: SimpleNamespace, token_signers: List[keystrata.Pkcs11Signer]
) -> None:
    s = keystrata.Pkcs11Signer(hsm.module, hsm.token, label(), "ed25519", pin=hsm.pin, create_key=True)
    token_signers.append(s)
    calls: Dict[str, Callable[[], object]] = {
        "sign": lambda: s.sign(DATA),
        "health_check": s.health_check,
        "sign_minisign": lambda: keystrata.sign_minisign(s, DATA),
    }
    held = [name for name, work in calls.items() if not gil_released(work)]
    assert held == [], f"these held the GIL throughout: {held}"

    raw = s.public_key("raw")
    errors: List[BaseException] = []
    start = threading.Barrier(8)

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(10):
                msg = b"%d.%d" % (t, i)
                keystrata.verify_signature("ed25519", raw, msg, s.sign(msg))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
