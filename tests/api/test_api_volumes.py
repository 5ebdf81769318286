"""/volumes through the Engine API: moby's shapes (swagger's Volume), filters, prune and /system/df."""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any

import pytest

from helpers import mounts_under

pytestmark = pytest.mark.root

VOLUME_KEYS = {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}


def q(filters: dict[str, list[str]]) -> str:
    return "?filters=" + urllib.parse.quote(json.dumps(filters))


def test_create_answers_swagger_s_volume(daemon: Any) -> None:
    doc = daemon.api.json("POST", "/volumes/create", {"Name": "vv", "Labels": {"b": "2", "a": "1"},
                                                        "DriverOpts": {"type": "tmpfs", "device": "tmpfs"}},
                          expect=201)
    assert set(doc) == VOLUME_KEYS
    assert (doc["Name"], doc["Driver"], doc["Scope"], doc["Labels"], doc["Options"]) == (
        "vv", "local", "local", {"a": "1", "b": "2"}, {"device": "tmpfs", "type": "tmpfs"})
    assert doc["Mountpoint"] == os.path.join(daemon.root, "volumes", "vv", "_data")
    assert daemon.api.json("GET", "/volumes/vv") == doc
    # no name: a random one, and the label that marks it anonymous (API 1.42 and later)
    anon = daemon.api.json("POST", "/volumes/create", {}, expect=201)
    assert len(anon["Name"]) == 64 and anon["Labels"] == {"com.docker.volume.anonymous": ""}
    assert anon["Options"] is None


@pytest.mark.parametrize("body, status, message", [
    ({"Name": "x", "Driver": "nosuch"}, 404, 'create x: error looking up volume plugin nosuch: plugin "nosuch" '
                                             "not found"),
    ({"Name": "xx", "DriverOpts": {"o": "size=1m"}}, 400, 'create xx: missing required option: "device"'),
    ({"Name": "xx", "DriverOpts": {"bogus": ""}}, 400, 'create xx: invalid option: "bogus"'),
    ({"Name": "x", "Labels": {"a": 1}}, 400, "json: cannot unmarshal number into Go struct field "
                                             "CreateOptions.Labels of type string"),
    ({"Name": "-x"}, 400, 'create -x: "-x" includes invalid characters for a local volume name, only '
                          '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
                          "use absolute path"),
])
def test_create_refusals(daemon: Any, body: dict[str, Any], status: int, message: str) -> None:
    got, _, raw = daemon.api.request("POST", "/volumes/create", body)
    assert (got, json.loads(raw)["message"]) == (status, message)
    assert daemon.api.json("GET", "/volumes")["Volumes"] == []
    assert [n for n in os.listdir(os.path.join(daemon.root, "volumes"))] == []   # nothing half-written


def test_list_filters(daemon: Any) -> None:
    for name, labels in (("a1", {"env": "prod"}), ("a2", {"env": "dev"}), ("b1", {"team": ""})):
        daemon.api.json("POST", "/volumes/create", {"Name": name, "Labels": labels}, expect=201)

    def names(filters: dict[str, list[str]]) -> list[str]:
        return sorted(v["Name"] for v in daemon.api.json("GET", "/volumes" + q(filters))["Volumes"])

    assert names({"label": ["env"]}) == ["a1", "a2"]
    assert names({"label": ["env=dev"]}) == ["a2"]
    assert names({"name": ["^a"]}) == ["a1", "a2"]
    assert names({"name": ["1"]}) == ["a1", "b1"]
    assert names({"driver": ["local"]}) == ["a1", "a2", "b1"]
    assert names({"driver": ["other"]}) == []
    assert names({"dangling": ["true"]}) == ["a1", "a2", "b1"]
    status, _, body = daemon.api.request("GET", "/volumes" + q({"label!": ["env"]}))
    assert (status, json.loads(body)["message"]) == (400, "invalid filter 'label!'")


def test_remove_force_and_prune(daemon: Any) -> None:
    assert daemon.api.request("DELETE", "/volumes/nosuch")[0] == 404
    assert daemon.api.request("DELETE", "/volumes/nosuch?force=1")[0] == 204   # moby purges: no error
    for name, labels in (("keep", {"keep": "1"}), ("drop", {}), ("anon", {"com.docker.volume.anonymous": ""})):
        daemon.api.json("POST", "/volumes/create", {"Name": name, "Labels": labels}, expect=201)
    daemon.api.json("POST", "/volumes/create", {"Name": "opts", "DriverOpts": {"type": "tmpfs", "device": "x"}},
                    expect=201)
    with open(daemon.api.json("GET", "/volumes/drop")["Mountpoint"] + "/f", "w") as f:
        f.write("12345")
    report = daemon.api.json("POST", "/volumes/prune")
    assert report == {"VolumesDeleted": ["anon"], "SpaceReclaimed": 0}      # anonymous only
    report = daemon.api.json("POST", "/volumes/prune" + q({"all": ["true"], "label!": ["keep"]}))
    assert report == {"VolumesDeleted": ["drop"], "SpaceReclaimed": 5}
    report = daemon.api.json("POST", "/v1.41/volumes/prune" + q({"label": ["keep=1"]}))  # old API: named too
    assert report == {"VolumesDeleted": ["keep"], "SpaceReclaimed": 0}
    assert [v["Name"] for v in daemon.api.json("GET", "/volumes")["Volumes"]] == ["opts"]   # never pruned
    status, _, body = daemon.api.request("POST", "/volumes/prune" + q({"dangling": ["true"]}))
    assert (status, json.loads(body)["message"]) == (400, "invalid filter 'dangling'")


def test_system_df_lists_volumes_with_usage(daemon: Any, busybox_image: str) -> None:
    daemon.api.json("POST", "/volumes/create", {"Name": "idle"}, expect=201)
    daemon.api.json("POST", "/volumes/create", {"Name": "ram", "DriverOpts": {"type": "tmpfs", "device": "x"}},
                    expect=201)
    cid = daemon.api.json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                                         "HostConfig": {"Binds": ["used:/u", "used:/again"]}},
                          expect=201)["Id"]
    path = daemon.api.json("GET", "/volumes/used")["Mountpoint"]
    with open(os.path.join(path, "a"), "w") as f:
        f.write("abc")
    os.link(os.path.join(path, "a"), os.path.join(path, "b"))   # a hard link counts once
    os.symlink("a", os.path.join(path, "c"))                    # a symlink counts its target's length
    os.mkdir(os.path.join(path, "d"))
    df = daemon.api.json("GET", "/system/df")
    usage = {v["Name"]: v["UsageData"] for v in df["Volumes"]}
    assert usage == {"idle": {"RefCount": 0, "Size": 0}, "used": {"RefCount": 1, "Size": 4}}
    assert set(df["Volumes"][0]) == VOLUME_KEYS | {"UsageData"}
    assert "UsageData" not in daemon.api.json("GET", "/volumes/used")
    assert daemon.api.request("DELETE", f"/containers/{cid}")[0] == 204
    assert mounts_under(os.path.join(daemon.root, "volumes")) == []
