"""``keystrata.CustomRoot``: a Python object with the ``KeyManager``
methods as a root. The rules (provider names, output sizes, the closed
state, message lengths) are the core's and tested there; these tests check
the mapping: calls reach the object, its answers and exceptions come back
as the right values and exception classes, from any thread, and the object
lives as long as something uses it.

The "KMS" here is a second keychain: it wraps with ``Keychain.wrap_key``
under its own provider name and unwraps by labelling the envelope
``"keystrata"`` again."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

import keystrata


class Kms:
    """A key manager backed by a keychain, counting its calls."""

    def __init__(self, provider: str = "test-kms") -> None:
        self.provider = provider
        self.kc = keystrata.Keychain.generate()
        self.calls: Dict[str, int] = {}
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def wrap_key(self, key: bytes, context: bytes = b"") -> keystrata.Envelope:
        self._count("wrap_key")
        env = self.kc.wrap_key(key, context)
        return keystrata.Envelope(env.key_id, env.key_version, self.provider, env.ciphertext)

    def unwrap_key(self, envelope: keystrata.Envelope, context: bytes = b"") -> bytes:
        self._count("unwrap_key")
        env = keystrata.Envelope(
            envelope.key_id, envelope.key_version, "keystrata", envelope.ciphertext
        )
        return self.kc.unwrap_key(env, context)

    def active_key_version(self) -> int:
        self._count("active_key_version")
        return self.kc.active_key_version()

    def health_check(self) -> None:
        self._count("health_check")
        self.kc.health_check()

    def close(self) -> None:
        self._count("close")


class Minimal:
    """Only the required members."""

    provider = "minimal"

    def __init__(self) -> None:
        self.kms = Kms()

    def wrap_key(self, key: bytes, context: bytes = b"") -> keystrata.Envelope:
        return self.kms.wrap_key(key, context)

    def unwrap_key(self, envelope: keystrata.Envelope, context: bytes = b"") -> bytes:
        return self.kms.unwrap_key(envelope, context)


class Answers(Kms):
    """A key manager whose methods raise or return what a test sets."""

    def __init__(self) -> None:
        super().__init__("answers")
        self.raise_: Optional[BaseException] = None
        self.wrap_returns: Any = None
        self.unwrap_returns: Any = None
        self.version_returns: Any = None

    def wrap_key(self, key: bytes, context: bytes = b"") -> Any:
        if self.raise_ is not None:
            raise self.raise_
        if self.wrap_returns is not None:
            return self.wrap_returns
        return super().wrap_key(key, context)

    def unwrap_key(self, envelope: keystrata.Envelope, context: bytes = b"") -> Any:
        if self.raise_ is not None:
            raise self.raise_
        if self.unwrap_returns is not None:
            return self.unwrap_returns
        return super().unwrap_key(envelope, context)

    def active_key_version(self) -> Any:
        if self.raise_ is not None:
            raise self.raise_
        if self.version_returns is not None:
            return self.version_returns
        return super().active_key_version()

    def health_check(self) -> None:
        if self.raise_ is not None:
            raise self.raise_


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    kms = Kms()
    root = keystrata.CustomRoot(kms)
    assert root.provider == "test-kms"
    assert repr(root) == "CustomRoot(provider='test-kms')"
    assert root.key_manager is kms
    with keystrata.Keychain.generate() as kc:
        saved = kc.save(root)
        assert saved.startswith(b"KSWR")
        assert kms.calls == {"wrap_key": 1}
        with keystrata.Keychain.load(saved, root) as back:
            assert back.keys() == kc.keys()
        assert kms.calls == {"wrap_key": 1, "unwrap_key": 1}
        kc.save_file(tmp_path / "kc.ks", root)
        with keystrata.Keychain.load_file(tmp_path / "kc.ks", root) as back:
            assert back.primary == kc.primary
        # Another KMS fails as its keychain says: it has no such key.
        with pytest.raises(keystrata.UnknownKeyError, match="test-kms"):
            keystrata.Keychain.load(saved, keystrata.CustomRoot(Kms()))

    # As a key manager: the envelope carries the root's provider, and the
    # KMS's AuthenticationError for a wrong context comes through as is.
    env = root.wrap_key(b"k" * 32, b"ctx")
    assert env.provider == "test-kms"
    assert root.unwrap_key(env, bytearray(b"ctx")) == b"k" * 32
    with pytest.raises(keystrata.AuthenticationError):
        root.unwrap_key(env, b"other")
    assert root.active_key_version() == 1
    root.health_check()
    assert kms.calls["active_key_version"] == 1 and kms.calls["health_check"] == 1


def test_open_binds_a_keychain_and_rotates(tmp_path: Path) -> None:
    kms = Kms()
    path = tmp_path / "bound.ks"
    with keystrata.Keychain.open(path, keystrata.CustomRoot(kms)) as kc:
        assert kc.is_bound
        ct = kc.seal(b"secret", b"aad")
        rotated = kc.rotate()
        assert kc.primary == rotated
        blob = kc.encrypt_portable(b"travels", b"doc")
    assert path.read_bytes().startswith(b"KSWR")
    # Another root object over the same KMS opens what the first wrote.
    again = keystrata.CustomRoot(kms)
    with keystrata.Keychain.open(path, again) as kc:
        assert kc.primary.key_id == rotated.key_id
        assert kc.unseal(ct, b"aad") == b"secret"
    assert keystrata.decrypt_portable(blob, again, b"doc") == b"travels"
    assert again.portable_counters()["root_calls"] == 1


@pytest.mark.parametrize(
    "error",
    [
        keystrata.UnavailableError,
        keystrata.AuthenticationError,
        keystrata.KeyDisabledError,
        keystrata.UnknownKeyError,
    ],
)
def test_keystrata_errors_keep_their_kind(error: type) -> None:
    kms = Answers()
    root = keystrata.CustomRoot(kms)
    saved = keystrata.Keychain.generate().save(root)
    kms.raise_ = error("the kms says no")
    for call in (
        lambda: keystrata.Keychain.generate().save(root),
        lambda: keystrata.Keychain.load(saved, root),
        root.health_check,
        root.active_key_version,
    ):
        with pytest.raises(error, match="the kms says no") as info:
            call()
        assert type(info.value) is error


def test_subclasses_of_keystrata_errors_keep_their_kind() -> None:
    class KmsDown(keystrata.UnavailableError):
        pass

    kms = Answers()
    kms.raise_ = KmsDown("region eu-1 is down")
    with pytest.raises(keystrata.UnavailableError, match="region eu-1 is down") as info:
        keystrata.Keychain.generate().save(keystrata.CustomRoot(kms))
    assert info.value.code == 9


@pytest.mark.parametrize(
    "exc, name",
    [
        (ValueError("bad thing"), "ValueError"),
        (KeyError("bad thing"), "KeyError"),
        (RuntimeError("bad thing"), "RuntimeError"),
    ],
)
def test_other_exceptions_are_backend_errors(exc: Exception, name: str) -> None:
    kms = Answers()
    kms.raise_ = exc
    root = keystrata.CustomRoot(kms)
    with pytest.raises(keystrata.BackendError) as info:
        keystrata.Keychain.generate().save(root)
    assert f"{name}: " in str(info.value) and "bad thing" in str(info.value)
    assert "wrap_key" in str(info.value)
    with pytest.raises(keystrata.BackendError, match=name):
        root.health_check()


def test_wrong_return_types_are_backend_errors() -> None:
    kms = Answers()
    root = keystrata.CustomRoot(kms)
    env = root.wrap_key(b"k" * 32)

    kms.wrap_returns = b"not an envelope"
    with pytest.raises(keystrata.BackendError, match=r"wrap_key.*bytes.*Envelope"):
        root.wrap_key(b"k" * 32)
    kms.wrap_returns = 42
    with pytest.raises(keystrata.BackendError, match=r"wrap_key.*int"):
        keystrata.Keychain.generate().save(root)
    kms.wrap_returns = None

    for wrong, type_name in (("a str", "str"), (7, "int"), ([1, 2], "list")):
        kms.unwrap_returns = wrong
        with pytest.raises(keystrata.BackendError, match=rf"unwrap_key.*{type_name}.*bytes"):
            root.unwrap_key(env)
    # Any bytes-like answer will do.
    for fine in (bytearray(b"k" * 32), memoryview(b"k" * 32)):
        kms.unwrap_returns = fine
        assert root.unwrap_key(env) == b"k" * 32
    kms.unwrap_returns = None

    for wrong, text in (("1", "str"), (1.5, "float"), (-1, "-1"), (2**40, str(2**40))):
        kms.version_returns = wrong
        with pytest.raises(keystrata.BackendError, match=rf"active_key_version.*{text}"):
            root.active_key_version()
    kms.version_returns = 3
    assert root.active_key_version() == 3


def test_missing_members_raise_type_error() -> None:
    class NoProvider:
        def wrap_key(self, key: bytes, context: bytes = b"") -> keystrata.Envelope:
            raise AssertionError

        def unwrap_key(self, envelope: keystrata.Envelope, context: bytes = b"") -> bytes:
            raise AssertionError

    class NoWrap:
        provider = "no-wrap"

        def unwrap_key(self, envelope: keystrata.Envelope, context: bytes = b"") -> bytes:
            raise AssertionError

    class NoUnwrap:
        provider = "no-unwrap"

        def wrap_key(self, key: bytes, context: bytes = b"") -> keystrata.Envelope:
            raise AssertionError

    class BytesProvider(Minimal):
        provider = b"minimal"  # type: ignore[assignment]

    class CloseNotCallable(Minimal):
        close = "no"

    for obj, what in (
        (NoProvider(), "provider"),
        (NoWrap(), "wrap_key"),
        (NoUnwrap(), "unwrap_key"),
        (BytesProvider(), "provider"),
        (CloseNotCallable(), "close"),
        (object(), "provider"),
    ):
        with pytest.raises(TypeError, match=what):
            keystrata.CustomRoot(obj)  # type: ignore[arg-type]

    class ProviderRaises(Minimal):
        @property
        def provider(self) -> str:  # type: ignore[override]
            raise RuntimeError("no provider today")

    with pytest.raises(RuntimeError, match="no provider today"):
        keystrata.CustomRoot(ProviderRaises())


def test_optional_members_have_defaults() -> None:
    root = keystrata.CustomRoot(Minimal())
    assert root.active_key_version() == 1
    root.health_check()
    saved = keystrata.Keychain.generate().save(root)
    keystrata.Keychain.load(saved, root).close()
    root.close()
    with pytest.raises(keystrata.UnavailableError):
        root.health_check()


@pytest.mark.parametrize("provider", ["", "My-KMS", "a b", "keystrata", "age", "kmip", "x" * 65])
def test_bad_provider_names(provider: str) -> None:
    with pytest.raises(keystrata.InvalidInputError, match="provider"):
        keystrata.CustomRoot(Kms(provider))


def test_close_calls_the_object_once_then_refuses(tmp_path: Path) -> None:
    kms = Kms()
    root = keystrata.CustomRoot(kms)
    saved = keystrata.Keychain.generate().save(root)
    env = root.wrap_key(b"k" * 16)
    before = dict(kms.calls)
    root.close()
    root.close()
    assert kms.calls == {**before, "close": 1}
    for call in (
        lambda: keystrata.Keychain.generate().save(root),
        lambda: keystrata.Keychain.load(saved, root),
        lambda: keystrata.Keychain.open(tmp_path / "new.ks", root),
        lambda: root.wrap_key(b"k" * 16),
        lambda: root.unwrap_key(env),
        root.active_key_version,
        root.health_check,
    ):
        with pytest.raises(keystrata.UnavailableError, match="closed"):
            call()
    assert kms.calls == {**before, "close": 1}


def test_close_errors_come_through() -> None:
    class BadClose(Minimal):
        def close(self) -> None:
            raise OSError("socket already gone")

    root = keystrata.CustomRoot(BadClose())
    with pytest.raises(keystrata.BackendError, match="OSError: socket already gone"):
        root.close()
    root.close()  # closed anyway, once


def test_callbacks_from_many_threads_at_once() -> None:
    kms = Kms()
    root = keystrata.CustomRoot(kms)
    keychains = [keystrata.Keychain.generate() for _ in range(8)]
    entered = threading.Barrier(4, timeout=30)
    inside = [0]
    lock = threading.Lock()

    original = kms.wrap_key

    def slow_wrap(key: bytes, context: bytes = b"") -> keystrata.Envelope:
        # The first calls wait for each other: several threads are inside
        # the callback at once, so none holds a lock the others need.
        with lock:
            inside[0] += 1
            first = inside[0] <= 4
        if first:
            entered.wait()
        return original(key, context)

    kms.wrap_key = slow_wrap  # type: ignore[method-assign]

    def round_trip(i: int) -> bool:
        kc = keychains[i % len(keychains)]
        saved = kc.save(root)
        with keystrata.Keychain.load(saved, root) as back:
            return back.keys() == kc.keys()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(round_trip, range(64)))
    assert all(results) and len(results) == 64
    assert kms.calls == {"wrap_key": 64, "unwrap_key": 64}


def test_callbacks_may_call_keystrata() -> None:
    """A callback calling keystrata again: another keychain, a call that
    releases the GIL (saving under an age root), another custom root."""
    inner = keystrata.CustomRoot(Kms("inner-kms"))
    age = keystrata.AgeRoot.generate()

    class Nested(Minimal):
        provider = "outer-kms"

        def wrap_key(self, key: bytes, context: bytes = b"") -> keystrata.Envelope:
            other = keystrata.Keychain.generate()
            keystrata.Keychain.load(other.save(age), age).close()
            inner.health_check()
            return inner.wrap_key(key, context)

        def unwrap_key(self, envelope: keystrata.Envelope, context: bytes = b"") -> bytes:
            env = keystrata.Envelope(
                envelope.key_id, envelope.key_version, "inner-kms", envelope.ciphertext
            )
            return inner.unwrap_key(env, context)

    outer = keystrata.CustomRoot(Nested())
    with keystrata.Keychain.generate() as kc:
        with keystrata.Keychain.load(kc.save(outer), outer) as back:
            assert back.keys() == kc.keys()


def test_a_bound_keychain_keeps_the_root_alive(tmp_path: Path) -> None:
    kms = Kms()
    alive = weakref.ref(kms)
    root = keystrata.CustomRoot(kms)
    kc = keystrata.Keychain.open(tmp_path / "kc.ks", root)
    del root, kms
    gc.collect()
    assert alive() is not None
    kc.rotate()  # writes the file: wraps with the KMS
    kms_again = alive()
    assert kms_again is not None and kms_again.calls["wrap_key"] == 2
    del kms_again
    kc.close()
    del kc
    gc.collect()
    assert alive() is None


def test_root_arguments_name_custom_root() -> None:
    with keystrata.Keychain.generate() as kc:
        with pytest.raises(TypeError, match="CustomRoot"):
            kc.save(Kms())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CustomRoot"):
        keystrata.decrypt_portable(b"", Kms())  # type: ignore[arg-type]


# Another thread's call that takes a bound keychain's writer lock while
# holding the GIL, during a custom root's callback (which holds that lock
# and waits for the GIL). Run in a child process, which is killed on the
# deadlock.
DEADLOCK = """
import os, sys, tempfile, threading, time
sys.path.insert(0, {tests!r})
import keystrata
from test_custom_root import Kms

kms = Kms()
kc = keystrata.Keychain.open(os.path.join(tempfile.mkdtemp(), "kc"), keystrata.CustomRoot(kms))
entered = threading.Event()
wrap = kms.wrap_key
def slow_wrap(key, context=b""):
    entered.set()
    time.sleep(0.3)
    return wrap(key, context)
kms.wrap_key = slow_wrap
t = threading.Thread(target=kc.rotate)
t.start()
entered.wait()
if {call!r} == "close":
    kc.close()
else:
    try:
        kc.unseal(keystrata.Keychain.generate().seal(b"x"))
    except keystrata.UnknownKeyError:
        pass
t.join()
"""


@pytest.mark.parametrize("call", ["close", "unseal"])
def test_no_deadlock_with_a_callback_in_flight(call: str) -> None:
    code = DEADLOCK.format(tests=str(Path(__file__).parent), call=call)
    try:
        subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{call} deadlocked with a wrap_key callback in flight")
