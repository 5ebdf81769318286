"""The engine's event log: what ``GET /events`` streams (docker events).

Every part of the engine that changes an object (images, volumes, networks,
containers) calls ``Recorder.emit`` once per change; the recorder stamps the
time, keeps the last 256 events for ``since`` replay (moby keeps as many) and
hands the event to each subscriber's own bounded queue. Emitting never waits:
a subscriber that falls more than ``queue_size`` events behind is cut off
(its stream ends) instead of slowing the engine down.

The filter (``EventFilter``) is moby's ``daemon/events/filter.go`` rule for
rule: exact matches for ``type``/``event``/``scope``, a name or ID prefix for
``container``/``volume``/``network``/``daemon``, image ID or name with and
without tag for ``image``, ``key`` or ``key=value`` over the attributes for
``label``.
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import threading
import time
from typing import Any, Iterable, Mapping

from portside.errors import InvalidArgument
from portside.oci.reference import parse_normalized

# moby's events.Type values
CONTAINER, IMAGE, VOLUME, NETWORK, DAEMON = "container", "image", "volume", "network", "daemon"

RING_SIZE = 256          # moby's eventsLimit
QUEUE_SIZE = 1024        # moby's bufferSize: how far a subscriber may fall behind

# The keys dockerd's event filter looks at; any other key is refused.
FILTER_KEYS = frozenset({"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin",
                         "scope", "secret", "service", "type", "volume"})


@dataclasses.dataclass(frozen=True)
class Event:
    type: str                        # container, image, volume, network, daemon
    action: str                      # create, start, die, exec_create: sh, ...
    actor_id: str
    attributes: Mapping[str, str]
    time_ns: int
    scope: str = "local"

    def to_json(self) -> dict[str, Any]:
        """moby's events.Message, with the legacy status/id/from that dockerd still fills for containers and images."""
        doc: dict[str, Any] = {}
        if self.type in (CONTAINER, IMAGE):
            doc["status"] = self.action
            doc["id"] = self.actor_id
            if self.type == CONTAINER and self.attributes.get("image"):
                doc["from"] = self.attributes["image"]
        doc.update({
            "Type": self.type, "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope, "time": self.time_ns // 1_000_000_000, "timeNano": self.time_ns,
        })
        return doc


class SubscriberTooSlow(Exception):
    """The subscriber's queue filled up: it was cut off, and events were lost to it."""


class EventFilter:
    """Docker's event filters over one event (moby ``daemon/events/filter.go``)."""

    def __init__(self, filters: Mapping[str, Iterable[str]] | None = None) -> None:
        self.filters = {k: set(v) for k, v in (filters or {}).items()}
        for key in self.filters:
            if key not in FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")

    def __call__(self, ev: Event) -> bool:
        attrs = ev.attributes
        return (self._event(ev.action) and self._exact("type", ev.type) and self._exact("scope", ev.scope)
                and all(self._by_name(ev, kind) for kind in (DAEMON, CONTAINER, "plugin", VOLUME, NETWORK))
                and self._image(ev) and self._labels(attrs))

    def _exact(self, key: str, value: str) -> bool:
        wanted = self.filters.get(key)
        return not wanted or value in wanted

    def _fuzzy(self, key: str, value: str) -> bool:
        wanted = self.filters.get(key)
        return not wanted or value in wanted or any(value.startswith(p) for p in wanted)

    def _event(self, action: str) -> bool:
        # exec_create and exec_start carry their command ("exec_start: sh -c ..."), so a bare
        # name matches as a prefix there, as in dockerd (moby#25798)
        if self.filters.get("event", set()) & {"exec_create", "exec_start", "health_status"}:
            return self._fuzzy("event", action)
        return self._exact("event", action)

    def _by_name(self, ev: Event, kind: str) -> bool:
        """A ``container=``/``volume=``... filter: the ID or the name, either by prefix.

        As in dockerd it applies to every event, so ``container=x`` keeps only events whose
        actor ID or name starts with x, whatever their type.
        """
        if not self.filters.get(kind):
            return True
        return self._fuzzy(kind, ev.actor_id) or self._fuzzy(kind, ev.attributes.get("name", ""))

    def _image(self, ev: Event) -> bool:
        if not self.filters.get("image"):
            return True  # without parsing references under the recorder's lock
        # image events name the image in "name", container events in "image"
        name = ev.attributes.get("name" if ev.type == IMAGE else "image", "")
        return any(self._exact("image", v) for v in (ev.actor_id, name, _strip_tag(ev.actor_id), _strip_tag(name)))

    def _labels(self, attrs: Mapping[str, str]) -> bool:
        wanted = self.filters.get("label")
        if not wanted:
            return True
        for item in wanted:
            key, sep, value = item.partition("=")
            if key not in attrs or (sep and attrs[key] != value):
                return False
        return True


def _strip_tag(image: str) -> str:
    """moby's stripTag: ``busybox:1`` → ``busybox``; what is not a reference is kept as is."""
    try:
        return parse_normalized(image).familiar_name()
    except InvalidArgument:
        return image


class Subscription:
    """One listener: the events the recorder offered it, in order, behind its own bounded queue."""

    def __init__(self, recorder: Recorder, accept: EventFilter, limit: int) -> None:
        self._recorder = recorder
        self._accept = accept
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=limit)
        self.too_slow = False     # set once by an emitting thread (under the recorder's lock), read by the reader

    def offer(self, ev: Event) -> bool:
        """Called by the recorder under its lock: never blocks. False once the subscriber is cut off."""
        if not self._accept(ev):
            return True
        try:
            self._queue.put_nowait(ev)
        except queue.Full:
            self.too_slow = True
        return not self.too_slow

    def next(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds without one; SubscriberTooSlow once cut off."""
        if self.too_slow:
            raise SubscriberTooSlow(f"the event stream fell {self._queue.maxsize} events behind")
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._recorder.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Recorder:
    """The daemon's one event log; thread-safe, emit never blocks."""

    def __init__(self, *, keep: int = RING_SIZE, queue_size: int = QUEUE_SIZE) -> None:
        # _lock guards _ring and _subscribers; events are stamped and offered under it, so the
        # ring and every queue hold them in time order and a subscribe never misses or repeats one
        self._lock = threading.Lock()
        self._ring: collections.deque[Event] = collections.deque(maxlen=keep)
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size

    def emit(self, type: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None) -> Event:
        """Record one event. Attribute values are strings, as in Docker's JSON."""
        attrs = {str(k): str(v) for k, v in (attributes or {}).items()}
        with self._lock:
            ev = Event(type, action, actor_id, attrs, time.time_ns())
            self._ring.append(ev)
            behind = [sub for sub in self._subscribers if not sub.offer(ev)]
            self._subscribers.difference_update(behind)
        return ev

    def subscribe(self, accept: EventFilter | None = None, *, since_ns: int | None = None,
                  until_ns: int | None = None) -> tuple[list[Event], Subscription]:
        """The kept events to replay, and a subscription to everything emitted after them.

        As dockerd: nothing is replayed unless ``since`` or ``until`` is given; then the kept
        events from ``since`` (inclusive) up to ``until`` (inclusive) that pass the filter.
        """
        accept = accept or EventFilter()
        sub = Subscription(self, accept, self._queue_size)
        with self._lock:
            replay = []
            if since_ns is not None or until_ns is not None:
                replay = [ev for ev in self._ring
                          if ev.time_ns >= (since_ns or 0) and (until_ns is None or ev.time_ns <= until_ns)
                          and accept(ev)]
            self._subscribers.add(sub)
        return replay, sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def kept(self) -> list[Event]:
        with self._lock:
            return list(self._ring)
