"""``POST /containers/prune``: only stopped containers, only those the filters select, and the space they held."""

from __future__ import annotations

import json
import urllib.parse

import pytest

pytestmark = pytest.mark.root


def prune(daemon, filters: dict[str, list[str]] | None = None) -> dict:
    query = "?filters=" + urllib.parse.quote(json.dumps(filters)) if filters else ""
    return daemon.api.json("POST", "/containers/prune" + query)


def names(daemon) -> list[str]:
    return sorted(c["Names"][0] for c in daemon.api.json("GET", "/containers/json?all=1"))


def test_prune_honours_label_and_until_filters(daemon, busybox_image):
    for name, label in (("keep", "keep=yes"), ("other", "team=a"), ("plain", None)):
        args = ["--label", label] if label else []
        daemon.cli("run", "--name", name, *args, "busybox", "sh", "-c", "head -c 3000 /dev/zero > /f")
    daemon.cli("run", "-d", "--name", "up", "busybox", "sleep", "100")

    assert prune(daemon, {"until": ["2000-01-01T00:00:00Z"]}) == {"ContainersDeleted": None, "SpaceReclaimed": 0}
    result = prune(daemon, {"label": ["team=a"]})
    assert len(result["ContainersDeleted"]) == 1 and result["SpaceReclaimed"] == 3000
    assert names(daemon) == ["/keep", "/plain", "/up"]
    result = prune(daemon, {"label!": ["keep"]})
    assert len(result["ContainersDeleted"]) == 1 and result["SpaceReclaimed"] == 3000
    assert names(daemon) == ["/keep", "/up"]
    assert prune(daemon)["SpaceReclaimed"] == 3000
    assert names(daemon) == ["/up"]                       # a running container is never pruned

    status, _, body = daemon.api.request("POST", "/containers/prune?filters=" + urllib.parse.quote('{"nope":["x"]}'))
    assert status == 400 and json.loads(body)["message"] == "invalid filter 'nope'"
