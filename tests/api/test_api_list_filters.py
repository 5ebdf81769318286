"""``GET /containers/json`` filtered by network and volume, as dockerd: a network's name or ID, a volume's name or mount destination."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from helpers import Daemon

pytestmark = pytest.mark.root


def _names(daemon: Daemon, **filters: list[str]) -> set[str]:
    query = urllib.parse.quote(json.dumps(filters))
    return {c["Names"][0] for c in daemon.api.json("GET", f"/containers/json?all=1&filters={query}")}


def test_network_and_volume_filters(daemon: Daemon, busybox_image: str) -> None:
    net = daemon.api.json("POST", "/networks/create", {"Name": "flt"}, expect=201)["Id"]
    daemon.api.json("POST", "/containers/create?name=on-net", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "flt", "Binds": ["vol1:/data"]}},
        expect=201)
    daemon.api.json("POST", "/containers/create?name=off-net", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}, expect=201)
    try:
        assert _names(daemon, network=["flt"]) == {"/on-net"}
        assert _names(daemon, network=[net]) == {"/on-net"}
        assert _names(daemon, network=["none"]) == {"/off-net"}
        assert _names(daemon, volume=["vol1"]) == {"/on-net"}
        assert _names(daemon, volume=["/data"]) == {"/on-net"}
        assert _names(daemon, volume=["nosuch"]) == set()
        status, _, body = daemon.api.request("GET", "/containers/json?filters=" + urllib.parse.quote(
            json.dumps({"nosuchkey": ["x"]})))
        assert status == 400 and b"nosuchkey" in body
    finally:
        for name in ("on-net", "off-net"):
            daemon.api.request("DELETE", f"/containers/{name}?v=1&force=1")
        daemon.api.request("DELETE", "/networks/flt")
        daemon.api.request("DELETE", "/volumes/vol1")
