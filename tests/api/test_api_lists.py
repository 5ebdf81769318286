"""The list endpoints kept in memory between requests: what they send follows every change at once.

``GET /containers/json`` encodes each entry once per record change
(daemon/api/listing.py) and ``GET /images/json`` keeps the unfiltered list
until the image database is written (daemon/api/images.py). These tests list
first, so anything kept is there, then change things and list again, and
list from many keep-alive clients at once while containers change.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any

import pytest

from helpers import Daemon, UnixHTTPConnection

pytestmark = pytest.mark.root


def _create(daemon: Daemon, name: str, cmd: list[str]) -> str:
    body = {"Image": "busybox", "Cmd": cmd, "HostConfig": {"NetworkMode": "none"}}
    return str(daemon.api.json("POST", f"/containers/create?name={name}", body, expect=201)["Id"])


def _ok(daemon: Daemon, method: str, path: str, status: int = 204) -> None:
    got, _, body = daemon.api.request(method, path)
    assert got == status, body


def test_image_list_follows_tags_and_removals(daemon: Daemon, busybox_image: str) -> None:
    assert [i["RepoTags"] for i in daemon.api.json("GET", "/images/json")] == [["busybox:latest"]]
    assert "VirtualSize" not in daemon.api.json("GET", "/images/json")[0]
    assert daemon.api.json("GET", "/v1.41/images/json")[0]["VirtualSize"] > 0  # per API version

    _ok(daemon, "POST", "/images/busybox/tag?repo=other&tag=1", 201)
    assert daemon.api.json("GET", "/images/json")[0]["RepoTags"] == ["busybox:latest", "other:1"]
    assert daemon.api.json("GET", "/v1.41/images/json")[0]["RepoTags"] == ["busybox:latest", "other:1"]
    assert [i["RepoTags"] for i in daemon.api.json("GET", '/images/json?filters={"reference":["other"]}')] == \
        [["other:1"]]

    _ok(daemon, "DELETE", "/images/busybox:latest", 200)
    assert daemon.api.json("GET", "/images/json")[0]["RepoTags"] == ["other:1"]
    _ok(daemon, "DELETE", "/images/other:1", 200)
    assert daemon.api.json("GET", "/images/json") == []


def test_container_list_follows_each_change(daemon: Daemon, busybox_image: str) -> None:
    assert daemon.api.json("GET", "/containers/json?all=1") == []
    a = _create(daemon, "ca", ["sleep", "60"])
    b = _create(daemon, "cb", ["true"])
    listed = daemon.api.json("GET", "/containers/json?all=1")
    assert [(c["Id"], c["Names"], c["State"], c["Status"]) for c in listed] == [
        (b, ["/cb"], "created", "Created"), (a, ["/ca"], "created", "Created")]
    assert daemon.api.json("GET", "/containers/json") == []

    _ok(daemon, "POST", f"/containers/{a}/start")
    _ok(daemon, "POST", f"/containers/{b}/start")
    assert daemon.api.json("POST", f"/containers/{b}/wait")["StatusCode"] == 0
    _ok(daemon, "POST", f"/containers/{a}/rename?name=renamed")
    running = daemon.api.json("GET", "/containers/json")
    assert [(c["Id"], c["Names"], c["State"]) for c in running] == [(a, ["/renamed"], "running")]
    assert running[0]["Status"].startswith("Up ")
    exited = daemon.api.json("GET", '/containers/json?filters={"status":["exited"]}')
    assert [c["Id"] for c in exited] == [b] and exited[0]["Status"].startswith("Exited (0) ")

    _ok(daemon, "DELETE", f"/containers/{a}?force=1")
    assert [c["Id"] for c in daemon.api.json("GET", "/containers/json?all=1")] == [b]
    _ok(daemon, "DELETE", f"/containers/{b}")
    assert daemon.api.json("GET", "/containers/json?all=1") == []


def _lister(sock: str, paths: tuple[str, ...], stop: threading.Event, out: list[Any]) -> None:
    """One keep-alive client listing until ``stop``; appends every (path, status, body) or the exception."""
    conn = UnixHTTPConnection(sock, timeout=30)
    try:
        i = 0
        while not stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            conn.request("GET", path)
            resp = conn.getresponse()
            out.append((path, resp.status, resp.read(), resp.will_close))
    except (OSError, http.client.HTTPException) as e:
        out.append(e)
    finally:
        conn.close()


def test_many_clients_list_while_containers_change(daemon: Daemon, busybox_image: str) -> None:
    paths = ("/containers/json?all=1", "/images/json", "/containers/json")
    stop = threading.Event()
    results: list[list[Any]] = [[] for _ in range(20)]
    threads = [threading.Thread(target=_lister, args=(daemon.socket, paths, stop, r)) for r in results]
    for t in threads:
        t.start()
    try:
        ids = [_create(daemon, f"c{n}", ["sleep", "60"]) for n in range(8)]
        for cid in ids[:4]:
            _ok(daemon, "POST", f"/containers/{cid}/start")
        for cid in ids[6:]:
            _ok(daemon, "DELETE", f"/containers/{cid}?force=1")
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    answers = [a for r in results for a in r]
    assert not [a for a in answers if isinstance(a, Exception)]
    assert len(answers) > 100
    for path, status, body, will_close in answers:
        assert status == 200 and not will_close, (path, status, body[:200])
        listed = json.loads(body)
        assert isinstance(listed, list)
    # what they saw last is what is there
    listed = daemon.api.json("GET", "/containers/json?all=1")
    assert [c["Id"] for c in listed] == ids[5::-1]
    assert [c["Id"] for c in daemon.api.json("GET", "/containers/json")] == ids[3::-1]
