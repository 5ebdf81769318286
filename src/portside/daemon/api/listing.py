"""``GET /containers/json`` without per-request work per container: each entry is encoded once per record change.

A list entry depends on the record alone except for ``Status`` ("Up 3
minutes"), which depends on the time of the request. So each entry is kept
as its JSON text split around the value of ``Status``; a request fills in
the status and joins the pieces. An entry is encoded again only when its
record's generation (``ContainerStore.listing``) changes. With 1000
containers this is what keeps ``docker ps`` and 50 clients listing at once
cheap: no file read, no ``json.dumps`` of 1000 dicts, under the GIL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any, Callable

from portside.containers.record import ContainerRecord, Listed
from portside.daemon.http import Response

# The key whose value is filled in per request.
DYNAMIC_KEY = "Status"


def _dumps(obj: Any) -> str:
    """As ``Response.json`` encodes (compact, UTF-8 kept), so a joined list is byte for byte the same."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Entry:
    """One container's list entry, as JSON text up to the value of ``Status`` and after it."""

    generation: int
    record: ContainerRecord
    head: str  # '{"Id":...,"State":"running","Status":'
    tail: str  # ',"HostConfig":...}'

    def render(self, status: str, extra: dict[str, Any] | None = None) -> str:
        """The entry with its ``Status``, and ``extra`` keys (per request: ``SizeRw``...) after the others."""
        # encode_basestring is what json.dumps uses for a str with ensure_ascii=False
        text = self.head + encode_basestring(status) + self.tail
        if extra:
            text = text[:-1] + "," + _dumps(extra)[1:]
        return text


def split_encode(doc: dict[str, Any], key: str = DYNAMIC_KEY) -> tuple[str, str]:
    """``doc``'s JSON text split around the value of ``key`` (which it must hold)."""
    keys = list(doc)
    at = keys.index(key)
    before = _dumps({k: doc[k] for k in keys[:at]})
    after = _dumps({k: doc[k] for k in keys[at + 1:]})
    head = (before[:-1] + "," if at else "{") + _dumps(key) + ":"
    tail = ("," + after[1:]) if at + 1 < len(keys) else "}"
    return head, tail


class ListCache:
    """The encoded entries of every container, newest first, kept between requests.

    ``summary`` builds a record's entry (with any value for ``Status``). Requests
    run in parallel threads without a lock: each builds a new mapping from the
    old one and replaces it whole, so two at once at worst encode an entry twice.
    """

    def __init__(self, summary: Callable[[ContainerRecord], dict[str, Any]]) -> None:
        self._summary = summary
        self._entries: dict[str, Entry] = {}
        self._newest_first: list[Entry] = []  # _entries' values, sorted; replaced together with it

    def entries(self, listed: list[Listed]) -> list[Entry]:
        old, newest_first = self._entries, self._newest_first
        new: dict[str, Entry] = {}
        changed = len(listed) != len(old)
        for item in listed:
            entry = old.get(item.record.id)
            if entry is None or entry.generation != item.generation:
                head, tail = split_encode(self._summary(item.record))
                entry = Entry(item.generation, item.record, head, tail)
                changed = True
            new[item.record.id] = entry
        if changed:
            newest_first = sorted(new.values(), key=lambda e: e.record.created_ns, reverse=True)
            self._entries, self._newest_first = new, newest_first
        return newest_first


def json_list(parts: list[str]) -> Response:
    """A JSON array of already encoded items, as ``Response.json`` would write the list."""
    return Response(200, ("[" + ",".join(parts) + "]\n").encode(), [("Content-Type", "application/json")])
