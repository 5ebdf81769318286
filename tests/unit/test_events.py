"""The event recorder and Docker's event filter, without a daemon."""

from __future__ import annotations

import threading
import time

import pytest

from portside.errors import InvalidArgument
from portside.events import CONTAINER, IMAGE, NETWORK, VOLUME, Event, EventFilter, Recorder, SubscriberTooSlow


def _ev(type: str = CONTAINER, action: str = "start", actor: str = "a" * 64, **attrs: str) -> Event:
    return Event(type, action, actor, attrs, 1_700_000_000_123_456_789)


def test_json_has_the_legacy_fields_for_containers_and_images_only() -> None:
    doc = _ev(image="busybox", name="web").to_json()
    assert list(doc) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert (doc["status"], doc["id"], doc["from"], doc["time"], doc["timeNano"]) == (
        "start", "a" * 64, "busybox", 1_700_000_000, 1_700_000_000_123_456_789)
    image = _ev(IMAGE, "tag", "sha256:x", name="b:1").to_json()
    assert (image["status"], image["id"], "from" in image) == ("tag", "sha256:x", False)
    volume = _ev(VOLUME, "create", "v", driver="local").to_json()
    assert list(volume) == ["Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert volume["Actor"] == {"ID": "v", "Attributes": {"driver": "local"}}


@pytest.mark.parametrize("filters, event, kept", [
    ({}, _ev(), True),
    ({"type": ["container"]}, _ev(), True),
    ({"type": ["image", "volume"]}, _ev(), False),
    ({"event": ["start", "die"]}, _ev(), True),
    ({"event": ["stop"]}, _ev(), False),
    # exec_create/exec_start carry the command: a bare name is a prefix there, as in dockerd
    ({"event": ["exec_start"]}, _ev(action="exec_start: sh -c date"), True),
    ({"event": ["exec_start"]}, _ev(action="exec_create: sh -c date"), False),
    ({"event": ["exec_die"]}, _ev(action="exec_die"), True),
    # container: an ID or name prefix, checked on every event type (dockerd does so too)
    ({"container": ["aaaa"]}, _ev(), True),
    ({"container": ["we"]}, _ev(name="web"), True),
    ({"container": ["web"]}, _ev(name="db"), False),
    ({"container": ["web"]}, _ev(NETWORK, "connect", "n" * 64, name="bridge", container="c"), False),
    ({"volume": ["data"]}, _ev(VOLUME, "mount", "data", driver="local"), True),
    ({"network": ["br"]}, _ev(NETWORK, "connect", "n" * 64, name="bridge"), True),
    # image: the ID or the name, with or without the tag; container events by their image
    ({"image": ["busybox"]}, _ev(image="busybox:latest"), True),
    ({"image": ["busybox:latest"]}, _ev(image="busybox"), False),
    ({"image": ["sha256:x"]}, _ev(IMAGE, "tag", "sha256:x", name="b:1"), True),
    ({"image": ["b"]}, _ev(IMAGE, "tag", "sha256:x", name="b:1"), True),
    ({"image": ["docker.io/library/b:1"]}, _ev(IMAGE, "tag", "sha256:x", name="b:1"), False),
    # label: every one must hold, over the attributes
    ({"label": ["team"]}, _ev(team="a"), True),
    ({"label": ["team=a", "tier=db"]}, _ev(team="a", tier="db"), True),
    ({"label": ["team=a", "tier=db"]}, _ev(team="a"), False),
    ({"label": ["team=b"]}, _ev(team="a"), False),
    ({"scope": ["local"]}, _ev(), True),
    ({"scope": ["swarm"]}, _ev(), False),
    ({"daemon": ["x"]}, _ev(), False),
])
def test_filter(filters: dict[str, list[str]], event: Event, kept: bool) -> None:
    assert EventFilter(filters)(event) is kept


def test_an_unknown_filter_key_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        EventFilter({"colour": ["red"]})


def test_replay_is_nothing_without_since_or_until_then_the_window() -> None:
    rec = Recorder(keep=3)
    stamps = [rec.emit(CONTAINER, f"a{i}", "x").time_ns for i in range(5)]
    replay, sub = rec.subscribe()
    assert replay == []
    sub.close()
    replay, sub = rec.subscribe(since_ns=0)
    assert [e.action for e in replay] == ["a2", "a3", "a4"]  # only the last 3 are kept
    sub.close()
    replay, sub = rec.subscribe(since_ns=stamps[3], until_ns=stamps[3])
    assert [e.action for e in replay] == ["a3"]
    sub.close()
    replay, sub = rec.subscribe(EventFilter({"event": ["a4"]}), until_ns=stamps[4])
    assert [e.action for e in replay] == ["a4"]
    rec.emit(CONTAINER, "a4", "y")
    rec.emit(CONTAINER, "a5", "y")
    got = sub.next(1)
    assert got is not None and (got.action, got.actor_id) == ("a4", "y")
    assert sub.next(0.01) is None
    sub.close()


def test_a_subscriber_sees_every_event_once_in_order_across_threads() -> None:
    rec = Recorder()
    replay, sub = rec.subscribe(since_ns=0)

    def emit(who: str) -> None:
        for i in range(200):
            rec.emit(CONTAINER, "tick", who, {"i": str(i)})

    threads = [threading.Thread(target=emit, args=(w,)) for w in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = []
    while (ev := sub.next(0.01)) is not None:
        got.append(ev)
    assert len(got) == 600
    assert [e.time_ns for e in got] == sorted(e.time_ns for e in got)
    for who in "abc":
        assert [e.attributes["i"] for e in got if e.actor_id == who] == [str(i) for i in range(200)]


def test_a_slow_subscriber_is_cut_off_and_never_blocks_emitters() -> None:
    rec = Recorder(queue_size=10)
    _, slow = rec.subscribe()
    _, fast = rec.subscribe()
    started = time.monotonic()
    for i in range(10_000):
        rec.emit(CONTAINER, "tick", str(i))
        if i % 5 == 0:  # the fast one keeps up
            while fast.next(0) is not None:
                pass
    assert time.monotonic() - started < 5
    with pytest.raises(SubscriberTooSlow):
        slow.next(0)
    assert slow.too_slow and not fast.too_slow
    rec.emit(CONTAINER, "last", "z")
    last = None
    while (ev := fast.next(0)) is not None:
        last = ev
    assert last is not None and last.action == "last"
    fast.close()
    slow.close()
