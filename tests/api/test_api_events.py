"""GET /events on a real daemon: the live stream, replay with since/until, filters and refusals.

Containers are real (busybox on overlayfs, cgroups, the monitor); the stream
is read line by line as a client reads it, so an event that is not flushed
at once fails the test that waits for it.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import UnixHTTPConnection

pytestmark = pytest.mark.root

FOREVER = "trap 'exit 0' TERM; while :; do sleep 1; done"


class Stream:
    """One GET /events connection, read a line at a time."""

    def __init__(self, daemon: Any, query: str = "") -> None:
        self.conn = UnixHTTPConnection(daemon.socket, timeout=10)
        self.conn.request("GET", "/events" + query)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        assert self.resp.getheader("Content-Type") == "application/json"

    def next(self) -> dict[str, Any]:
        line = self.resp.readline()
        assert line, "the stream ended"
        doc: dict[str, Any] = json.loads(line)
        return doc

    def until(self, action: str) -> list[dict[str, Any]]:
        seen = [self.next()]
        while seen[-1]["Action"] != action:
            seen.append(self.next())
        return seen

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def stream(daemon: Any) -> Iterator[Any]:
    opened: list[Stream] = []

    def open_(query: str = "") -> Stream:
        s = Stream(daemon, query)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()


def create(daemon: Any, cmd: list[str], name: str = "", **extra: Any) -> str:
    body = {"Image": "busybox", "Cmd": cmd, **extra}
    path = "/containers/create" + (f"?name={name}" if name else "")
    cid: str = daemon.api.json("POST", path, body, expect=201)["Id"]
    return cid


def events(daemon: Any, **query: str) -> tuple[int, list[dict[str, Any]] | str]:
    status, _, body = daemon.api.request("GET", "/events?" + urllib.parse.urlencode(query))
    if status != 200:
        return status, json.loads(body)["message"]
    return status, [json.loads(line) for line in body.splitlines()]


def q(filters: dict[str, list[str]]) -> str:
    return json.dumps(filters)


def test_each_event_is_sent_as_it_happens(daemon: Any, busybox_image: str, stream: Any) -> None:
    s = stream()
    cid = create(daemon, ["sh", "-c", "exit 7"], name="live", Labels={"team": "a"})
    created = s.next()  # before the start: it was flushed on its own
    assert created == {
        "status": "create", "id": cid, "from": "busybox", "Type": "container", "Action": "create",
        "Actor": {"ID": cid, "Attributes": {"image": "busybox", "name": "live", "team": "a"}},
        "scope": "local", "time": created["timeNano"] // 10**9, "timeNano": created["timeNano"]}
    assert abs(created["timeNano"] / 1e9 - time.time()) < 10
    daemon.api.request("POST", f"/containers/{cid}/start")
    assert [e["Action"] for e in s.until("die")] == ["start", "die"]
    daemon.api.request("DELETE", f"/containers/{cid}")
    destroy = s.next()
    assert (destroy["Action"], destroy["id"]) == ("destroy", cid)
    # the die event carries the exit code; every event of one container comes in time order
    _, kept = events(daemon, since="0", until=f"{time.time():.9f}")
    assert isinstance(kept, list)
    die = [e for e in kept if e["Action"] == "die"][0]
    assert die["Actor"]["Attributes"]["exitCode"] == "7"
    stamps = [e["timeNano"] for e in kept]
    assert stamps == sorted(stamps)


def test_since_until_replay_the_kept_events_and_end(daemon: Any, busybox_image: str) -> None:
    t0 = time.time()
    cid = create(daemon, ["true"], name="replayed")
    t1 = time.time()
    daemon.api.request("DELETE", f"/containers/{cid}")
    t2 = time.time()
    started = time.monotonic()
    status, got = events(daemon, since=f"{t0:.9f}", until=f"{t2:.9f}")
    assert status == 200 and isinstance(got, list)
    assert [(e["Type"], e["Action"]) for e in got] == [("container", "create"), ("container", "destroy")]
    # a window that ends before the destroy; a past until ends the stream at once
    status, got = events(daemon, since=f"{t0:.9f}", until=f"{t1:.9f}")
    assert [e["Action"] for e in got] == ["create"]  # type: ignore[union-attr]
    assert time.monotonic() - started < 3
    # since alone (the docker CLI's form for a time of day: seconds.nanoseconds) replays too
    s = Stream(daemon, f"?since={int(t0)}.{int((t0 % 1) * 1e9):09d}")
    try:
        assert [s.next()["Action"] for _ in range(2)] == ["create", "destroy"]
    finally:
        s.close()
    # RFC 3339 (what the CLI would have converted) is taken as well
    rfc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t0)))
    status, got = events(daemon, since=rfc, until=f"{t2:.9f}", filters=q({"container": ["replayed"]}))
    assert [e["Action"] for e in got] == ["create", "destroy"]  # type: ignore[union-attr]


def test_an_until_ahead_holds_the_stream_open_until_then(daemon: Any, busybox_image: str) -> None:
    until = time.time() + 4
    started = time.monotonic()
    conn = UnixHTTPConnection(daemon.socket, timeout=10)
    try:
        conn.request("GET", f"/events?since={time.time():.9f}&until={until:.9f}")
        resp = conn.getresponse()
        cid = create(daemon, ["true"], name="during")
        body = resp.read()  # the whole body: the stream ends by itself
    finally:
        conn.close()
    assert time.time() >= until and time.monotonic() - started < 9
    assert [(json.loads(line)["Action"], json.loads(line)["id"]) for line in body.splitlines()] == [("create", cid)]


def test_filters(daemon: Any, busybox_image: str) -> None:
    t0 = time.time()
    daemon.api.json("POST", "/volumes/create", {"Name": "fv"}, expect=201)
    a = create(daemon, ["true"], name="fa", Labels={"tier": "db"},
               HostConfig={"Binds": ["fv:/data"]})
    b = create(daemon, ["true"], name="fb")
    daemon.api.request("POST", f"/containers/{a}/start")
    daemon.api.json("POST", f"/containers/{a}/wait")
    until = f"{time.time():.9f}"

    def actions(filters: dict[str, list[str]]) -> list[tuple[str, str, str]]:
        status, got = events(daemon, since=f"{t0:.9f}", until=until, filters=q(filters))
        assert status == 200, got
        return [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in got]  # type: ignore[union-attr]

    assert actions({"container": ["fa"]}) == [("container", "create", a), ("container", "start", a),
                                              ("container", "die", a)]
    assert actions({"container": [b[:10]]}) == [("container", "create", b)]
    assert actions({"container": ["fa", "fb"], "event": ["create"]}) == [("container", "create", a),
                                                                        ("container", "create", b)]
    assert actions({"label": ["tier=db"], "event": ["die"]}) == [("container", "die", a)]
    assert actions({"type": ["volume"]}) == [("volume", "create", "fv"), ("volume", "create", "fv"),
                                             ("volume", "mount", "fv"), ("volume", "unmount", "fv")]
    assert actions({"volume": ["fv"], "event": ["mount"]}) == [("volume", "mount", "fv")]
    assert len(actions({"image": ["busybox"]})) == 4     # the containers' events, by the image they name
    assert actions({"image": ["nosuch"]}) == []
    assert actions({"scope": ["swarm"]}) == []
    # the legacy list form of the filters, as old clients send it
    status, got = events(daemon, since=f"{t0:.9f}", until=until, filters='{"event":["start"]}')
    assert [e["Action"] for e in got] == ["start"]  # type: ignore[union-attr]


@pytest.mark.parametrize("query, message", [
    ({"filters": "{bad"}, "invalid filter"),
    ({"filters": '{"colour":{"red":true}}'}, "invalid filter 'colour'"),
    ({"filters": "[1]"}, "invalid filter: filters must be a JSON object"),
    ({"since": "20", "until": "10"}, "`since` time (20) cannot be after `until` time (10)"),
    ({"since": "yesterday"}, "invalid value for 'since' filter: failed to parse value as time or duration: "
                             'invalid seconds "yesterday": invalid syntax'),
])
def test_refusals(daemon: Any, query: dict[str, str], message: str) -> None:
    assert events(daemon, **query) == (400, message)


def test_exec_resize_and_attach_events(daemon: Any, busybox_image: str, stream: Any) -> None:
    cid = create(daemon, ["sh", "-c", FOREVER], name="ex", Tty=True)
    s = stream(f"?filters={urllib.parse.quote(q({'container': [cid]}))}")
    daemon.api.request("POST", f"/containers/{cid}/start")
    assert s.next()["Action"] == "start"
    exec_id = daemon.api.json("POST", f"/containers/{cid}/exec", {"Cmd": ["sh", "-c", "exit 3"]}, expect=201)["Id"]
    daemon.api.request("POST", f"/exec/{exec_id}/start", {"Detach": True})
    got = [s.next() for _ in range(3)]
    assert [e["Action"] for e in got] == ["exec_create: sh -c exit 3", "exec_start: sh -c exit 3", "exec_die"]
    assert [e["Actor"]["Attributes"]["execID"] for e in got] == [exec_id] * 3
    assert got[2]["Actor"]["Attributes"]["exitCode"] == "3"
    daemon.api.request("POST", f"/containers/{cid}/resize?h=30&w=100")
    resize = s.next()
    assert (resize["Action"], resize["Actor"]["Attributes"]["height"], resize["Actor"]["Attributes"]["width"]) == (
        "resize", "30", "100")
    daemon.api.request("POST", f"/containers/{cid}/kill?signal=USR1")
    kill = s.next()
    assert (kill["Action"], kill["Actor"]["Attributes"]["signal"]) == ("kill", "10")
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")
    assert [e["Action"] for e in s.until("destroy")][-1] == "destroy"


def test_oom_comes_before_die(daemon: Any, busybox_image: str, stream: Any) -> None:
    # 'tail /dev/zero' keeps one ever-growing "line" in memory: far past 16 MiB
    cid = create(daemon, ["tail", "/dev/zero"], HostConfig={"Memory": 16 << 20, "MemorySwap": 16 << 20})
    s = stream(f"?filters={urllib.parse.quote(q({'container': [cid], 'event': ['oom', 'die']}))}")
    daemon.api.request("POST", f"/containers/{cid}/start")
    got = [s.next(), s.next()]
    assert [e["Action"] for e in got] == ["oom", "die"]
    assert got[1]["Actor"]["Attributes"]["exitCode"] == "137"
    daemon.api.request("DELETE", f"/containers/{cid}")


def test_a_client_that_hangs_up_is_let_go(daemon: Any, busybox_image: str) -> None:
    conns = []
    for _ in range(20):
        conn = UnixHTTPConnection(daemon.socket, timeout=10)
        conn.request("GET", "/events")
        assert conn.getresponse().status == 200
        conns.append(conn)
    for conn in conns:
        conn.close()
    time.sleep(2.5)  # the streams notice within a second or two of idleness
    status, _, body = daemon.api.request("GET", "/_ping")
    assert (status, body) == (200, b"OK")
    assert _event_threads(daemon) == 0


def _event_threads(daemon: Any) -> int:
    """Connection threads still serving /events: from the daemon's stacks, dumped to its log on SIGUSR1."""
    import signal

    before = len(daemon.log())
    daemon.proc.send_signal(signal.SIGUSR1)
    time.sleep(0.5)
    dump = daemon.log()[before:]
    return dump.count("daemon/api/events.py")
