"""GET /events: the engine's events as a stream of JSON documents, one per line (moby ``getEvents``).

- ``since``/``until``: Unix seconds with an optional fraction, as the docker
  CLI sends them (moby's ``timetypes.ParseTimestamps``); portside also takes
  what the CLI would have converted (RFC 3339 dates, durations like ``10m``).
- With ``since`` or ``until``, the kept events in that window are replayed
  first (the last 256, as dockerd). Then live events follow, until ``until``
  is reached; an ``until`` already past ends the stream after the replay.
- ``filters``: Docker's JSON filters (``events.EventFilter``); an unknown key
  or bad JSON is a 400 ``invalid filter``.

Each event is written and flushed as soon as it happens. The subscription is
taken before the headers go out, so a client that sees the 200 and then acts
sees the events of what it did.
"""

from __future__ import annotations

import json
import re
import time
from typing import Callable

from portside.daemon.engine import Engine
from portside.daemon.filters import parse_filters
from portside.daemon.http import Request, StreamResponse
from portside.daemon.router import Router
from portside.errors import InvalidArgument
from portside.events import FILTER_KEYS, Event, EventFilter, SubscriberTooSlow
from portside.timefmt import parse_timestamp

_UNIX = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_IDLE = 1.0   # seconds between checks that the client is still there, when nothing happens


def register(router: Router, engine: Engine) -> None:
    router.add("GET", "/events", lambda req: events(engine, req))


def event_time(value: str, what: str, now: float) -> int | None:
    """A ``since``/``until`` value in nanoseconds since the epoch; None when absent."""
    if not value:
        return None
    if _UNIX.fullmatch(value):
        seconds, _, fraction = value.partition(".")  # as Go: the fraction adds, even to negative seconds
        return int(seconds) * 1_000_000_000 + int(fraction[:9].ljust(9, "0") or 0)
    return int(parse_timestamp(value, now, what=what) * 1e9)


def _filters(raw: str | None) -> EventFilter:
    if not raw:
        return EventFilter()
    try:
        untrusted = json.loads(raw)
    except ValueError:
        raise InvalidArgument("invalid filter") from None
    return EventFilter(parse_filters(untrusted, set(FILTER_KEYS)))


def line(ev: Event) -> bytes:
    return json.dumps(ev.to_json(), separators=(",", ":")).encode() + b"\n"


def events(engine: Engine, req: Request) -> StreamResponse:
    now = time.time()
    since = event_time(req.arg("since") or "", "since", now)
    until = event_time(req.arg("until") or "", "until", now)
    if until is not None and since is not None and until < since:
        raise InvalidArgument(f"`since` time ({req.arg('since')}) cannot be after `until` time ({req.arg('until')})")
    accept = _filters(req.arg("filters"))
    replay, sub = engine.events.subscribe(accept, since_ns=since, until_ns=until)
    only_past = until is not None and until < time.time_ns()

    def write_body(write: Callable[[bytes], None]) -> None:
        write(b"".join(line(ev) for ev in replay))  # at least one chunk: the client sees the stream open
        if only_past:
            return
        while True:
            left = None if until is None else (until - time.time_ns()) / 1e9
            if left is not None and left <= 0:
                return
            try:
                ev = sub.next(_IDLE if left is None else min(_IDLE, left))
            except SubscriberTooSlow as e:  # cut off: the stream ends without its last chunk
                raise ConnectionAbortedError(str(e)) from None
            if ev is not None:
                write(line(ev))
            elif req.client_gone():
                return

    return StreamResponse(write_body, headers=[("Content-Type", "application/json")], on_close=sub.close)
