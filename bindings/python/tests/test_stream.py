"""Streaming encryption (docs/STREAMING.md): Keychain.encrypting_writer,
decrypting_reader and seekable_decryptor as Python file objects, checked
against Google Tink's streaming AEAD and the committed vectors."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, List, Optional

import pytest

import keystrata

from conftest import load_vectors, need_module

FORMATS = ["aes256-gcm-hkdf-4kb", "aes256-gcm-hkdf-1mb"]
# The 4 KB format's layout (docs/FORMAT.md §13): a 40-byte header, then
# 4096-byte segments with 16-byte tags; the first segment is 40 bytes short.
FIRST = 4096 - 40 - 16
FULL = 4096 - 16


def plaintext(n: int) -> bytes:
    """The vectors' plaintext: bytes((7*i+3) % 251 for i in range(n))."""
    pattern = bytes((7 * i + 3) % 251 for i in range(251))
    return (pattern * (n // 251 + 1))[:n]


def stream_kc(fmt: str = "aes256-gcm-hkdf-1mb") -> keystrata.Keychain:
    kc = keystrata.Keychain.generate()
    kc.rotate_streaming(fmt)
    return kc


def encrypt(kc: keystrata.Keychain, pt: bytes, aad: bytes = b"", chunk: int = 65536) -> bytes:
    out = io.BytesIO()
    with kc.encrypting_writer(out, aad) as w:
        for i in range(0, len(pt), chunk):
            assert w.write(pt[i : i + chunk]) == len(pt[i : i + chunk])
    return out.getvalue()


def decrypt(kc: keystrata.Keychain, ct: bytes, aad: bytes = b"") -> bytes:
    with kc.decrypting_reader(io.BytesIO(ct), aad) as r:
        return r.read()


# ----------------------------------------------------------------------
# Keys
# ----------------------------------------------------------------------


def test_streaming_keys() -> None:
    kc = keystrata.Keychain.generate()
    with pytest.raises(keystrata.UnknownKeyError):
        kc.primary_for("stream")
    with pytest.raises(keystrata.UnknownKeyError):
        kc.encrypting_writer(io.BytesIO())
    k1 = kc.rotate_streaming()
    assert (k1.purpose, k1.stream_format, k1.primary) == ("stream", "aes256-gcm-hkdf-1mb", True)
    assert "stream_format='aes256-gcm-hkdf-1mb'" in repr(k1)
    assert kc.primary_for("stream") == k1
    assert kc.primary.stream_format is None and "stream_format" not in repr(kc.primary)
    k2 = kc.add_stream_key("aes256-gcm-hkdf-4kb")
    assert (k2.stream_format, k2.primary) == ("aes256-gcm-hkdf-4kb", False)
    assert kc.primary_for("stream").key_id == k1.key_id
    kc.promote(k2.key_id)
    assert kc.primary_for("stream").key_id == k2.key_id
    with pytest.raises(keystrata.InvalidInputError, match="aes256-gcm-hkdf-1mb"):
        kc.rotate_streaming("aes128-gcm-hkdf-4kb")
    with pytest.raises(keystrata.InvalidInputError):
        kc.add_stream_key("1mb")


def test_rotation_keeps_old_streams_and_disable_stops_them() -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    old_key = kc.primary_for("stream").key_id
    old = encrypt(kc, plaintext(10_000), b"a")
    kc.rotate_streaming()
    new = encrypt(kc, plaintext(10_000), b"a")
    assert len(new) == 40 + 10_000 + 16  # one 1 MB segment now
    assert decrypt(kc, old, b"a") == plaintext(10_000)
    assert decrypt(kc, new, b"a") == plaintext(10_000)
    kc.disable(old_key)
    with pytest.raises(keystrata.AuthenticationError):
        decrypt(kc, old, b"a")
    assert decrypt(kc, new, b"a") == plaintext(10_000)


def test_saved_keychain_keeps_stream_keys(age_root: keystrata.AgeRoot) -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    ct = encrypt(kc, plaintext(9000), b"x")
    again = keystrata.Keychain.load(kc.save(age_root), age_root)
    assert again.primary_for("stream").stream_format == "aes256-gcm-hkdf-4kb"
    assert decrypt(again, ct, b"x") == plaintext(9000)


# ----------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("n", [0, 1, 1000, 3 * 4096 + 5, (1 << 20) + 7])
def test_round_trip_bytesio(fmt: str, n: int) -> None:
    kc = stream_kc(fmt)
    pt = os.urandom(n)
    ct = encrypt(kc, pt, b"aad")
    assert len(ct) > n
    assert decrypt(kc, ct, b"aad") == pt


def test_every_segment_boundary_4kb() -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    sizes = [0, 1, FIRST - 1, FIRST, FIRST + 1]
    sizes += [FIRST + k * FULL + d for k in (1, 2, 3) for d in (-1, 0, 1)]
    for n in sizes:
        pt = plaintext(n)
        segments = 1 if n <= FIRST else 1 + -(-(n - FIRST) // FULL)
        for chunk in (7, 4096, max(n, 1)):
            ct = encrypt(kc, pt, b"b", chunk)
            assert len(ct) == 40 + n + 16 * segments, (n, chunk)
            assert decrypt(kc, ct, b"b") == pt, (n, chunk)
            # Reading in odd sizes, across segment boundaries.
            r = kc.decrypting_reader(io.BytesIO(ct), b"b")
            got = bytearray()
            while True:
                piece = r.read(333)
                if not piece:
                    break
                assert len(piece) == 333 or len(got) + len(piece) == n
                got += piece
            assert got == pt
            # Cut at every segment boundary: truncated, never complete.
            for cut in range(4096, len(ct), 4096):
                with pytest.raises(keystrata.AuthenticationError):
                    decrypt(kc, ct[:cut], b"b")


def test_write_accepts_any_buffer_and_readinto() -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    out = io.BytesIO()
    with kc.encrypting_writer(out) as w:
        assert w.write(b"ab") == 2
        assert w.write(bytearray(b"cd")) == 2
        assert w.write(memoryview(b"xxefxx")[2:4]) == 2
        with pytest.raises(TypeError):
            w.write("text")  # type: ignore[arg-type]
    r = kc.decrypting_reader(io.BytesIO(out.getvalue()))
    buf = bytearray(4)
    assert r.readinto(buf) == 4 and buf == b"abcd"
    assert r.readinto(memoryview(buf)[1:3]) == 2 and buf == b"aefd"
    assert r.readinto(buf) == 0
    with pytest.raises(TypeError):
        r.readinto(b"read-only")


@pytest.mark.parametrize("fmt", FORMATS)
def test_readinto_fills_any_buffer(fmt: str) -> None:
    """readinto fills the whole buffer (fewer bytes only at the end),
    whatever its size against the segments, and whatever kind of writable
    buffer it is."""
    import array

    kc = stream_kc(fmt)
    seg = 4096 if fmt.endswith("4kb") else 1 << 20
    n = 3 * seg + 1000
    pt = os.urandom(n)
    ct = encrypt(kc, pt, b"r")

    class Bytes(bytearray):
        pass

    sizes = [1000, seg - 56, seg - 16, seg, seg + 17, 2 * seg + 5, (1 << 20) + 1, n + 10]
    for size in sizes if seg > 4096 else [1, 7] + sizes:
        kinds: List[Any] = [
            bytearray,
            Bytes,
            lambda k: memoryview(bytearray(k)),
            lambda k: array.array("B", bytes(k)),
        ]
        for make in kinds:
            buf = make(size)
            got = bytearray()
            r = kc.decrypting_reader(io.BytesIO(ct), b"r")
            while k := r.readinto(buf):
                assert k == size or len(got) + k == n, (size, k)
                got += bytes(buf)[:k]
            assert got == pt, (fmt, size, make)
    # The seekable reader's readinto fills too, from the position.
    with kc.seekable_decryptor(io.BytesIO(ct), b"r") as s:
        s.seek(seg - 100)
        buf = bytearray(2 * seg)
        assert s.readinto(buf) == 2 * seg and buf == pt[seg - 100 : 3 * seg - 100]
        assert s.read(seg + 1) == pt[3 * seg - 100 : 4 * seg - 99]


def test_reader_uses_readinto_unless_read_is_overridden() -> None:
    """The source is read with readinto when its class's most derived
    reading method is readinto (io.BytesIO, files), else with read (a
    subclass that overrides read keeps it)."""
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    pt = plaintext(30_000)
    ct = encrypt(kc, pt)
    calls: collections.Counter[str] = collections.Counter()

    class CountingBytesIO(io.BytesIO):
        def readinto(self, b: Any) -> int:
            calls["readinto"] += 1
            return super().readinto(b)

    class OverridesRead(CountingBytesIO):
        def read(self, n: Optional[int] = -1) -> bytes:
            calls["read"] += 1
            return super().read(n)

    class RawOnlyReadinto(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.f = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            calls["raw"] += 1
            return self.f.readinto(b)

    assert decrypt(kc, ct) == pt
    with kc.decrypting_reader(CountingBytesIO(ct)) as r:
        assert r.read() == pt
    assert calls["readinto"] > 0 and calls["read"] == 0
    calls.clear()
    with kc.decrypting_reader(OverridesRead(ct)) as r:
        assert r.read() == pt
    assert calls["read"] > 0 and calls["readinto"] == 0
    with kc.decrypting_reader(RawOnlyReadinto(ct)) as r:
        assert r.read() == pt
    assert calls["raw"] > 0

    class NonBlocking(io.BytesIO):
        def readinto(self, b: Any) -> Optional[int]:  # type: ignore[override]
            return None

    class Liar(io.BytesIO):
        def readinto(self, b: Any) -> int:
            return len(b) + 1

    with pytest.raises(TypeError, match="non-blocking"):
        kc.decrypting_reader(NonBlocking(ct)).read()
    with pytest.raises(TypeError, match="readinto"):
        kc.decrypting_reader(Liar(ct)).read()


def test_real_files_and_copyfileobj_10mb(tmp_path: Path) -> None:
    kc = stream_kc()
    src = tmp_path / "plain.bin"
    data = os.urandom(10 * 1024 * 1024 + 123)
    src.write_bytes(data)
    enc = tmp_path / "plain.bin.ks"
    with open(src, "rb") as fin, open(enc, "wb") as fout:
        with kc.encrypting_writer(fout, b"file") as w:
            shutil.copyfileobj(fin, w)
        assert not fout.closed  # the writer finishes the stream, not the file
    assert enc.stat().st_size == 40 + len(data) + 16 * 11
    out = tmp_path / "restored.bin"
    with open(enc, "rb") as fin, open(out, "wb") as fout:
        shutil.copyfileobj(kc.decrypting_reader(fin, b"file"), fout)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    # Through the io stack too.
    with open(enc, "rb") as fin:
        assert kc.decrypting_reader(fin, b"file").read(5) == data[:5]


def test_file_object_protocol() -> None:
    kc = stream_kc()
    out = io.BytesIO()
    w = kc.encrypting_writer(out)
    assert (w.writable(), w.readable(), w.seekable(), w.closed) == (True, False, False, False)
    w.write(b"x")
    w.flush()
    w.close()
    w.close()  # idempotent
    assert w.closed and "closed" in repr(w)
    for call in (lambda: w.write(b"y"), w.flush, w.writable):
        with pytest.raises(ValueError, match="closed file"):
            call()
    r = kc.decrypting_reader(io.BytesIO(out.getvalue()))
    assert (r.readable(), r.writable(), r.seekable()) == (True, False, False)
    with r:
        assert r.read(0) == b""
        assert r.read(None) == b"x"
        assert r.read() == b""
    assert r.closed
    with pytest.raises(ValueError, match="closed file"):
        r.read()
    with pytest.raises(TypeError, match="write"):
        kc.encrypting_writer(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="read"):
        kc.decrypting_reader(object())  # type: ignore[arg-type]
    assert isinstance(w, keystrata.EncryptingWriter)
    assert isinstance(r, keystrata.DecryptingReader)


def test_writer_returning_none_or_short_counts() -> None:
    """Raw file objects may write part of a buffer; others return None."""
    kc = stream_kc("aes256-gcm-hkdf-4kb")

    class Short:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, b: bytes) -> int:
            self.data += b[:100]
            return min(len(b), 100)

    class Silent:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, b: bytes) -> None:
            self.data += b

    pt = plaintext(20_000)
    for sink in (Short(), Silent()):
        with kc.encrypting_writer(sink) as w:
            w.write(pt)
        assert decrypt(kc, bytes(sink.data)) == pt

    class Liar:
        def write(self, b: bytes) -> int:
            return len(b) + 1

    with pytest.raises(TypeError, match="write"):
        with kc.encrypting_writer(Liar()) as w:
            w.write(pt)


def test_reader_over_short_reads() -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    pt = plaintext(30_000)
    ct = encrypt(kc, pt)

    class Trickle:
        def __init__(self, data: bytes) -> None:
            self.f = io.BytesIO(data)

        def read(self, n: int) -> bytes:
            return self.f.read(min(n, 777))

    assert kc.decrypting_reader(Trickle(ct)).read() == pt

    class Greedy:
        def read(self, n: int) -> bytes:
            return b"\x28" * (n + 1)

    with pytest.raises(TypeError, match="returned"):
        kc.decrypting_reader(Greedy()).read()


# ----------------------------------------------------------------------
# Failures
# ----------------------------------------------------------------------


def test_tampering_truncation_wrong_aad_and_key() -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    pt = plaintext(3 * 4096)
    ct = encrypt(kc, pt, b"aad")
    with pytest.raises(keystrata.AuthenticationError):
        decrypt(kc, ct, b"aaD")
    with pytest.raises(keystrata.AuthenticationError):
        decrypt(stream_kc("aes256-gcm-hkdf-4kb"), ct, b"aad")
    for cut in (len(ct) - 1, 4096, 2 * 4096, 100):
        with pytest.raises(keystrata.AuthenticationError):
            decrypt(kc, ct[:cut], b"aad")
    for i in (1, 40, 4095, 4096, len(ct) - 1):
        bad = bytearray(ct)
        bad[i] ^= 1
        with pytest.raises(keystrata.AuthenticationError):
            decrypt(kc, bytes(bad), b"aad")
    swapped = ct[:4096] + ct[2 * 4096 : 3 * 4096] + ct[4096 : 2 * 4096] + ct[3 * 4096 :]
    with pytest.raises(keystrata.AuthenticationError):
        decrypt(kc, swapped, b"aad")
    # No plaintext of a failing segment comes out; the error sticks.
    bad = bytearray(ct)
    bad[5000] ^= 1
    r = kc.decrypting_reader(io.BytesIO(bytes(bad)), b"aad")
    assert r.read(FIRST) == pt[:FIRST]
    with pytest.raises(keystrata.AuthenticationError):
        r.read(1)
    with pytest.raises(keystrata.AuthenticationError):
        r.read()


def test_not_a_stream_is_a_format_error() -> None:
    kc = stream_kc()
    for junk in (b"", b"\x28" * 30, b"not a stream" * 10, kc.encrypt(b"an envelope")):
        with pytest.raises(keystrata.FormatError):
            decrypt(kc, junk)
    with pytest.raises(keystrata.UnknownKeyError):
        decrypt(keystrata.Keychain.generate(), encrypt(kc, b"x"))


def test_short_streams_format_without_a_header_else_authentication() -> None:
    """docs/FORMAT.md §13: fewer bytes than the 40-byte header are not a
    stream (FormatError); a header with less than a tag after it, or a last
    segment shorter than its tag, is a stream cut short
    (AuthenticationError), in both readers."""
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    empty = encrypt(kc, b"")
    assert len(empty) == 56
    ct = encrypt(kc, plaintext(10_000))
    cases: List[Any] = [(empty[:n], keystrata.FormatError) for n in (0, 1, 39)]
    cases += [(empty[:n], keystrata.AuthenticationError) for n in (40, 41, 55)]
    cases += [(ct[: 2 * 4096 + k], keystrata.AuthenticationError) for k in (1, 15)]
    for data, error in cases:
        with pytest.raises(error):
            decrypt(kc, data)
        with pytest.raises(error):
            kc.seekable_decryptor(io.BytesIO(data)).read()


def test_exception_in_with_leaves_an_unfinished_stream() -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    for n in (0, 10, FIRST, 10_000):
        out = io.BytesIO()
        with pytest.raises(KeyError):
            with kc.encrypting_writer(out, b"a") as w:
                w.write(plaintext(n))
                raise KeyError("boom")
        assert w.closed
        # Nothing is written before a segment fills and more data follows.
        with pytest.raises(keystrata.AuthenticationError if n > FIRST else keystrata.FormatError):
            decrypt(kc, out.getvalue(), b"a")
    # abort() and a writer dropped unclosed: the same.
    out = io.BytesIO()
    w = kc.encrypting_writer(out, b"a")
    w.write(plaintext(10_000))
    w.abort()
    with pytest.raises(keystrata.AuthenticationError):
        decrypt(kc, out.getvalue(), b"a")
    out = io.BytesIO()
    w = kc.encrypting_writer(out, b"a")
    w.write(plaintext(10_000))
    del w
    with pytest.raises(keystrata.AuthenticationError):
        decrypt(kc, out.getvalue(), b"a")


class Boom(Exception):
    pass


def test_exceptions_from_the_file_object_propagate() -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")

    class FailingSink:
        def __init__(self, after: int) -> None:
            self.left = after

        def write(self, b: bytes) -> int:
            self.left -= len(b)
            if self.left < 0:
                raise Boom("disk full")
            return len(b)

    with pytest.raises(Boom, match="disk full"):
        with kc.encrypting_writer(FailingSink(5000)) as w:
            w.write(plaintext(20_000))
    # A failed write ends the stream: no later write or close finishes it.
    sink = FailingSink(5000)
    w = kc.encrypting_writer(sink)
    with pytest.raises(Boom):
        w.write(plaintext(20_000))
    assert w.closed
    with pytest.raises(ValueError, match="closed file"):
        w.write(b"more")
    w.close()
    # Raised by the final segment, in close().
    w = kc.encrypting_writer(FailingSink(50))
    w.write(b"small")
    with pytest.raises(Boom):
        w.close()
    assert w.closed

    ct = encrypt(kc, plaintext(20_000))

    class FailingSource:
        def __init__(self) -> None:
            self.f = io.BytesIO(ct)

        def read(self, n: int) -> bytes:
            if self.f.tell() > 9000:
                raise Boom("network")
            return self.f.read(n)

    r = kc.decrypting_reader(FailingSource())
    with pytest.raises(Boom, match="network"):
        r.read()

    class Flaky(io.BytesIO):
        def flush(self) -> None:
            raise Boom("flush")

    w = kc.encrypting_writer(Flaky())
    with pytest.raises(Boom, match="flush"):
        w.flush()


def test_reentrant_call_is_refused() -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    seen: List[BaseException] = []

    class Loop:
        w: Optional[keystrata.EncryptingWriter] = None

        def write(self, b: bytes) -> int:
            assert self.w is not None
            try:
                self.w.write(b"again")
            except RuntimeError as e:
                seen.append(e)
            return len(b)

    sink = Loop()
    sink.w = kc.encrypting_writer(sink)
    sink.w.write(plaintext(10_000))
    assert seen and "re-entrant" in str(seen[0])


# ----------------------------------------------------------------------
# Random access
# ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_seekable_decryptor(fmt: str, tmp_path: Path) -> None:
    kc = stream_kc(fmt)
    n = 3 * FULL + 17 if fmt.endswith("4kb") else (1 << 20) + 999
    pt = os.urandom(n)
    ct = encrypt(kc, pt, b"s")
    path = tmp_path / "s.ks"
    path.write_bytes(ct)
    rnd = random.Random(7)
    with open(path, "rb") as f, kc.seekable_decryptor(f, b"s") as s:
        assert s.plaintext_len() == n
        assert s.key_id == kc.primary_for("stream").key_id
        assert (s.readable(), s.seekable(), s.writable()) == (True, True, False)
        assert s.read(10) == pt[:10] and s.tell() == 10
        for _ in range(50):
            off = rnd.randrange(0, n + 10)
            size = rnd.randrange(0, 9000)
            assert s.seek(off) == off
            assert s.read(size) == pt[off : off + size]
            assert s.tell() == off + max(0, min(size, n - off))
            assert s.read_at(off, size) == pt[off : off + size]
        assert s.seek(-5, 2) == n - 5 and s.read() == pt[-5:]
        assert s.seek(0) == 0 and s.seek(3, 1) == 3
        buf = bytearray(6)
        assert s.readinto(buf) == 6 and buf == pt[3:9]
        with pytest.raises(ValueError):
            s.seek(-1)
        with pytest.raises(ValueError):
            s.seek(0, 5)
        assert s.read_at(n, 10) == b""
    assert s.closed
    with pytest.raises(ValueError, match="closed"):
        s.read()


def test_seekable_decryptor_failures() -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    pt = plaintext(3 * 4096)
    ct = encrypt(kc, pt, b"s")
    with pytest.raises(keystrata.AuthenticationError):
        kc.seekable_decryptor(io.BytesIO(ct), b"other")
    with pytest.raises(keystrata.FormatError):
        kc.seekable_decryptor(io.BytesIO(b"x" * 100))
    bad = bytearray(ct)
    bad[2 * 4096 + 10] ^= 1
    s = kc.seekable_decryptor(io.BytesIO(bytes(bad)), b"s")
    assert s.read_at(0, 100) == pt[:100]
    with pytest.raises(keystrata.AuthenticationError):
        s.read_at(FIRST + FULL + 5, 10)
    with pytest.raises(TypeError, match="seek"):
        kc.seekable_decryptor(kc.decrypting_reader(io.BytesIO(ct)))  # type: ignore[arg-type]


# ----------------------------------------------------------------------
# Tink and the vectors
# ----------------------------------------------------------------------


def test_vectors() -> None:
    v = load_vectors("stream.json")
    kc = keystrata.Keychain.import_tink_cleartext(v["keyset_json"])
    assert kc.primary_for("stream").stream_format is not None
    assert v["decrypt"], "no vectors"
    for case in v["decrypt"]:
        ct = bytes.fromhex(case["ciphertext_hex"])
        aad = bytes.fromhex(case["aad_hex"])
        want = plaintext(case["plaintext_len"])
        assert decrypt(kc, ct, aad) == want, case["comment"]
        s = kc.seekable_decryptor(io.BytesIO(ct), aad)
        assert s.plaintext_len() == len(want) and s.read() == want, case["comment"]
        with pytest.raises(keystrata.AuthenticationError):
            decrypt(kc, ct, aad + b"!")


class _Keep(io.BytesIO):
    def close(self) -> None:  # Tink closes the destination: keep the bytes
        pass


def _tink() -> Any:
    tink = need_module("tink")
    from tink import secret_key_access, streaming_aead  # type: ignore[import-untyped]

    streaming_aead.register()
    return tink, secret_key_access, streaming_aead


@pytest.mark.parametrize("fmt", FORMATS)
def test_tink_both_ways(fmt: str) -> None:
    tink, secret_key_access, streaming_aead = _tink()
    # Tink makes the keyset; keystrata imports it.
    template = {
        "aes256-gcm-hkdf-4kb": streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_4KB,
        "aes256-gcm-hkdf-1mb": streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB,
    }[fmt]
    handle = tink.new_keyset_handle(template)
    ks_json = tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
    kc = keystrata.Keychain.import_tink_cleartext(ks_json)
    assert kc.primary_for("stream").stream_format == fmt
    # keystrata makes a keychain; Tink reads its export.
    ours = stream_kc(fmt)
    ours_prim = tink.json_proto_keyset_format.parse(
        ours.insecure_export_tink_cleartext(purpose="stream"), secret_key_access.TOKEN
    ).primitive(streaming_aead.StreamingAead)
    theirs_prim = handle.primitive(streaming_aead.StreamingAead)
    seg = 4096 if fmt.endswith("4kb") else 1 << 20
    first, full = seg - 56, seg - 16
    for n in (0, 1, first - 1, first, first + 1, first + full, first + full + 1):
        pt = plaintext(n)
        aad = b"aad %d" % n
        for k, prim in ((kc, theirs_prim), (ours, ours_prim)):
            # Tink encrypts, keystrata decrypts (linear and random access).
            out = _Keep()
            with prim.new_encrypting_stream(out, aad) as s:
                s.write(pt)
            assert decrypt(k, out.getvalue(), aad) == pt
            assert k.seekable_decryptor(io.BytesIO(out.getvalue()), aad).read() == pt
            # keystrata encrypts, Tink decrypts.
            ct = encrypt(k, pt, aad, chunk=70_001)
            with prim.new_decrypting_stream(io.BytesIO(ct), aad) as s:
                assert s.read() == pt
            # An unfinished stream of ours: Tink refuses it too.
            if n > first:
                out2 = io.BytesIO()
                w = k.encrypting_writer(out2, aad)
                w.write(pt)
                w.abort()
                with pytest.raises(tink.TinkError):
                    with prim.new_decrypting_stream(io.BytesIO(out2.getvalue()), aad) as s:
                        s.read()


def test_tink_export_purposes() -> None:
    tink, secret_key_access, _ = _tink()
    kc = stream_kc()
    enc = json.loads(kc.insecure_export_tink_cleartext())
    assert enc == json.loads(kc.insecure_export_tink_cleartext("encrypt"))
    assert all("AesGcmKey" in k["keyData"]["typeUrl"] for k in enc["key"])
    st = json.loads(kc.insecure_export_tink_cleartext(purpose="stream"))
    assert st["primaryKeyId"] == kc.primary_for("stream").key_id
    assert all("AesGcmHkdfStreamingKey" in k["keyData"]["typeUrl"] for k in st["key"])
    with pytest.raises(keystrata.UnknownKeyError):
        keystrata.Keychain.generate().insecure_export_tink_cleartext("stream")
    with pytest.raises(keystrata.UnsupportedError):
        kc.insecure_export_tink_cleartext("derive")
    with pytest.raises(keystrata.InvalidInputError):
        kc.insecure_export_tink_cleartext("nope")
    with pytest.warns(DeprecationWarning):
        assert json.loads(kc.export_tink_cleartext()) == enc  # type: ignore[deprecated]


# ----------------------------------------------------------------------
# Memory and threads
# ----------------------------------------------------------------------


def test_memory_stays_bounded(tmp_path: Path) -> None:
    """50 MB through a writer and back through a reader, in a fresh
    process: the peak RSS grows by a few segments, not by the data; and
    Python-side allocations (tracemalloc) stay small too."""
    script = textwrap.dedent(
        """
        import os, resource, sys, tracemalloc
        import keystrata

        def rss_mb():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        path = sys.argv[1]
        chunk = os.urandom(64 * 1024)
        kc = keystrata.Keychain.generate()
        kc.rotate_streaming()
        # Warm up: one small stream each way.
        with open(path, "wb") as f, kc.encrypting_writer(f) as w:
            w.write(chunk)
        with open(path, "rb") as f:
            kc.decrypting_reader(f).read()
        base = rss_mb()
        tracemalloc.start()
        with open(path, "wb") as f, kc.encrypting_writer(f, b"m") as w:
            for _ in range(800):              # 50 MiB
                w.write(chunk)
        n = 0
        with open(path, "rb") as f, kc.decrypting_reader(f, b"m") as r:
            while True:
                b = r.read(256 * 1024)
                if not b:
                    break
                n += len(b)
        _, py_peak = tracemalloc.get_traced_memory()
        print(n, rss_mb() - base, py_peak / 2**20)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "big.ks")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    n, rss_growth, py_peak = int(out[0]), float(out[1]), float(out[2])
    assert n == 800 * 64 * 1024
    assert rss_growth < 12, f"peak RSS grew {rss_growth:.1f} MiB while streaming 50 MiB"
    assert py_peak < 6, f"Python allocations peaked at {py_peak:.1f} MiB"


def test_threads_each_with_its_stream() -> None:
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    errors: List[BaseException] = []

    def work(i: int) -> None:
        try:
            pt = os.urandom(50_000 + i)
            for _ in range(5):
                ct = encrypt(kc, pt, b"t%d" % i, chunk=8192)
                assert decrypt(kc, ct, b"t%d" % i) == pt
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_threads_sharing_one_writer_and_one_reader() -> None:
    """Calls on one stream are serialized: every write lands whole, and
    every read returns a contiguous piece."""
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    out = io.BytesIO()
    w = kc.encrypting_writer(out)
    chunks = {i: bytes([i]) * (5000 + i) for i in range(16)}

    def put(i: int) -> None:
        for _ in range(10):
            w.write(chunks[i])

    threads = [threading.Thread(target=put, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    pt = decrypt(kc, out.getvalue())
    assert len(pt) == 10 * sum(len(c) for c in chunks.values())
    pos = 0
    while pos < len(pt):
        c = chunks[pt[pos]]
        assert pt[pos : pos + len(c)] == c
        pos += len(c)

    r = kc.decrypting_reader(io.BytesIO(out.getvalue()))
    pieces: List[bytes] = []
    lock = threading.Lock()

    def get() -> None:
        while True:
            b = r.read(7000)
            if not b:
                return
            with lock:
                pieces.append(b)

    threads = [threading.Thread(target=get) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(p) for p in pieces) == len(pt)
    assert collections.Counter(b"".join(pieces)) == collections.Counter(pt)


def test_io_stack_on_top() -> None:
    """io.BufferedReader and io.TextIOWrapper run over a DecryptingReader
    (readinto, readable, closed), for line-by-line reading."""
    kc = stream_kc("aes256-gcm-hkdf-4kb")
    ct = encrypt(kc, b"line one\nline two\n" * 1000)
    with io.TextIOWrapper(
        io.BufferedReader(kc.decrypting_reader(io.BytesIO(ct))),  # type: ignore[arg-type]
        encoding="utf-8",
    ) as t:
        assert t.readline() == "line one\n"
        assert sum(1 for _ in t) == 1999
    # A seekable one under io.BufferedReader too.
    with io.BufferedReader(kc.seekable_decryptor(io.BytesIO(ct))) as b:  # type: ignore[arg-type]
        b.seek(9)
        assert b.read(8) == b"line two"


def test_big_writes_and_reads_release_the_gil() -> None:
    """With a switch interval too long to preempt anything, another thread
    runs only when this one releases the GIL: during big writes and reads
    (above 4 KiB) and during small writes that complete a segment (they
    seal up to 1 MB), never during the other small ones.

    A release lets the other thread in only if the OS schedules it before
    this one takes the GIL back, which a loaded machine may delay past a
    1 MB seal: segment-completing writes go on until the other thread got
    in once (at most 400 segments; big writes and reads likewise), while no
    other small write may ever let it in."""
    kc = stream_kc()
    stop = threading.Event()
    ticks = [0]

    def spin() -> None:
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0)  # releases the GIL at once

    # AES256_GCM_HKDF_1MB: the first segment holds 1 MiB - 40 (header) -
    # 16 (tag) bytes of plaintext, the others 1 MiB - 16; a segment is
    # sealed when data goes past its end (the last one only at close).
    first, rest = (1 << 20) - 56, (1 << 20) - 16
    chunk = b"s" * 4096

    old = sys.getswitchinterval()
    t = threading.Thread(target=spin)
    t.start()
    sys.setswitchinterval(30.0)
    try:
        sink = io.BytesIO()
        w = kc.encrypting_writer(sink)
        small = sealing = crossings = total = 0
        end = first
        while sealing == 0 and crossings < 400:
            before = ticks[0]
            w.write(chunk)
            total += len(chunk)
            if total > end:
                sealing += ticks[0] - before
                crossings += 1
                end += rest
            else:
                small += ticks[0] - before
        big = writes = 0
        while big == 0 and writes < 400:
            before = ticks[0]
            w.write(bytes(1 << 20))
            big += ticks[0] - before
            writes += 1
        w.close()
        ct = sink.getvalue()
        read = reads = 0
        r = kc.decrypting_reader(io.BytesIO(ct))
        while read == 0 and reads < 400:
            before = ticks[0]
            got = r.read(1 << 20)
            read += ticks[0] - before
            reads += 1
            if len(got) < 1 << 20:  # the end: again from the start
                r = kc.decrypting_reader(io.BytesIO(ct))
    finally:
        sys.setswitchinterval(old)
        stop.set()
        t.join()
    assert small == 0, small
    assert sealing > 0 and big > 0 and read > 0, (sealing, crossings, big, writes, read, reads)
