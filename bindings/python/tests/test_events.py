"""Event subscriptions: delivery, reentrancy, containment of exceptions."""

from __future__ import annotations

import gc
import sys
import threading
import weakref
from typing import Any, List

import pytest

import keystrata


def test_events_are_delivered(kc: keystrata.Keychain) -> None:
    events: List[keystrata.Event] = []
    sub = kc.subscribe(events.append)
    assert isinstance(sub, int)
    new = kc.rotate()
    assert [e.kind for e in events] == ["key_created", "key_rotated"]
    assert all(e.key_id == new.key_id and e.key_version == 2 and e.purpose == "encrypt" for e in events)
    assert not events[1].automatic and events[1].error is None
    events.clear()

    ct = kc.seal(b"x")
    with pytest.raises(keystrata.AuthenticationError):
        kc.unseal(ct, b"wrong")
    kc.derive(b"", 32)
    assert [e.kind for e in events] == ["decrypt_failed", "key_derived"]
    failed = events[0]
    assert failed.error == "Authentication" and failed.key_id == new.key_id
    assert events[1].purpose == "derive"
    assert repr(failed) == (
        f"Event(kind='decrypt_failed', key_id={new.key_id}, key_version=2, purpose='encrypt', "
        "automatic=False, error='Authentication')"
    )
    events.clear()

    staged = kc.add_key()
    kc.promote(staged.key_id)
    kc.disable(new.key_id)
    kc.enable(new.key_id)
    kc.destroy(new.key_id)
    assert [e.kind for e in events] == [
        "key_created", "key_promoted", "key_disabled", "key_enabled", "key_destroyed",
    ]
    events.clear()
    assert kc.unsubscribe(sub) is True
    assert kc.unsubscribe(sub) is False
    kc.rotate()
    assert events == []


def test_callback_exceptions_are_contained(kc: keystrata.Keychain, monkeypatch: pytest.MonkeyPatch) -> None:
    reported: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    seen: List[str] = []

    def bad(e: keystrata.Event) -> None:
        seen.append(e.kind)
        raise RuntimeError("callback bug")

    good: List[str] = []
    kc.subscribe(bad)
    kc.subscribe(lambda e: good.append(e.kind))
    info = kc.rotate()  # the operation succeeds and returns normally
    assert info.primary
    assert seen == good == ["key_created", "key_rotated"]
    assert len(reported) == 2
    assert isinstance(reported[0].exc_value, RuntimeError)
    assert reported[0].object is bad
    # The keychain is not poisoned.
    assert kc.unseal(kc.seal(b"ok")) == b"ok"
    kc.rotate()
    assert len(reported) == 4


def test_callback_may_call_the_keychain(kc: keystrata.Keychain) -> None:
    seen: List[int] = []

    def reentrant(e: keystrata.Event) -> None:
        if e.kind == "key_rotated":
            seen.append(len(kc.keys()))
            kc.seal(b"from a callback")
            kc.derive(b"", 16)  # emits key_derived, delivered reentrantly

    kc.subscribe(reentrant)
    kc.rotate()
    assert seen == [3]


def test_events_from_other_threads(kc: keystrata.Keychain) -> None:
    # rotate() releases the GIL; the callback must take it back to run.
    got: List[str] = []
    lock = threading.Lock()

    def cb(e: keystrata.Event) -> None:
        with lock:
            got.append(threading.current_thread().name)

    kc.subscribe(cb)
    threads = [threading.Thread(target=kc.rotate, name=f"t{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(got)) == ["t0", "t1", "t2", "t3"] and len(got) == 8


def test_close_releases_callbacks() -> None:
    kc = keystrata.Keychain.generate()

    class Sink:
        def __call__(self, e: keystrata.Event) -> None:
            pass

    sink = Sink()
    ref = weakref.ref(sink)
    kc.subscribe(sink)
    del sink
    gc.collect()
    assert ref() is not None  # held by the subscription
    kc.close()
    gc.collect()
    assert ref() is None
    # A subscription after close would never be called: refused, and the
    # callback not kept.
    late = Sink()
    late_ref = weakref.ref(late)
    with pytest.raises(keystrata.UnavailableError):
        kc.subscribe(late)
    del late
    gc.collect()
    assert late_ref() is None
    assert kc.is_bound is False  # a fact about the handle, answered after close


def test_unsubscribe_releases_callback(kc: keystrata.Keychain) -> None:
    class Sink:
        def __call__(self, e: keystrata.Event) -> None:
            pass

    sink = Sink()
    ref = weakref.ref(sink)
    sub = kc.subscribe(sink)
    del sink
    assert kc.unsubscribe(sub)
    gc.collect()
    assert ref() is None
