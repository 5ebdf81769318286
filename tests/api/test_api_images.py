"""The image endpoints of the Engine API: shapes, statuses and Docker's messages."""

from __future__ import annotations

import gzip
import io
import os
import json
import tarfile
import urllib.parse

import pytest

from layers import Image, config_for, docker_save_legacy, layer_tar, sha

pytestmark = pytest.mark.root


def _import(daemon, data: bytes, repo: str = "", tag: str = "", changes: tuple[str, ...] = ()) -> str:
    query = urllib.parse.urlencode([("fromSrc", "-"), ("repo", repo), ("tag", tag)] + [("changes", c) for c in changes])
    status, headers, body = daemon.api.request("POST", "/v1.45/images/create?" + query, body=data)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    return json.loads(body.splitlines()[-1])["status"]


def test_import_and_inspect_shape(daemon, busybox_tar):
    with open(busybox_tar, "rb") as f:
        image_id = _import(daemon, f.read(), "busybox", "", ('CMD ["sh"]', "ENV A=1", "LABEL k=v"))
    doc = daemon.api.json("GET", "/images/busybox/json")
    assert doc["Id"] == image_id and doc["RepoTags"] == ["busybox:latest"] and doc["RepoDigests"] == []
    assert doc["Config"]["Cmd"] == ["sh"] and doc["Config"]["Env"] == ["A=1"] and doc["Config"]["Labels"] == {"k": "v"}
    assert doc["Config"]["Entrypoint"] is None and doc["Config"]["WorkingDir"] == ""
    assert doc["RootFS"]["Type"] == "layers" and len(doc["RootFS"]["Layers"]) == 1
    assert doc["Os"] == "linux" and doc["Architecture"] == "amd64" and doc["Size"] > 1_000_000
    assert doc["Comment"] == "Imported from -" and doc["Created"].endswith("Z")
    assert "VirtualSize" not in doc and "ContainerConfig" not in doc
    old = daemon.api.json("GET", "/v1.41/images/busybox/json")
    assert old["VirtualSize"] == doc["Size"] and "ContainerConfig" in old
    listed = daemon.api.json("GET", "/images/json")
    assert [i["Id"] for i in listed] == [image_id]
    assert set(listed[0]) >= {"Containers", "Created", "Id", "Labels", "ParentId", "RepoDigests", "RepoTags",
                              "SharedSize", "Size"}
    assert isinstance(listed[0]["Created"], int)


def test_import_gzip_with_message(daemon):
    layer = layer_tar({"hello": b"world"})
    query = "fromSrc=-&repo=gz&tag=1&message=" + urllib.parse.quote("my message")
    status, _, body = daemon.api.request("POST", "/images/create?" + query, body=gzip.compress(layer))
    assert status == 200
    doc = daemon.api.json("GET", "/images/gz:1/json")
    assert doc["RootFS"]["Layers"] == [sha(layer)] and doc["Comment"] == "my message"


@pytest.mark.parametrize("path, status, message", [
    ("/images/nope/json", 404, "No such image: nope:latest"),
    ("/images/nope:1/history", 404, "No such image: nope:1"),
    ("/images/Bad:x/json", 404, "No such image: Bad:x"),
    ("/v1.99/images/json", 400, "client version 1.99 is too new. Maximum supported API version is 1.45"),
    ("/v1.12/images/json", 400, "client version 1.12 is too old. Minimum supported API version is 1.24"),
    ("/nothing/here", 404, "page not found"),
])
def test_errors(daemon, path, status, message):
    got, headers, body = daemon.api.request("GET", path)
    assert got == status
    # dockerd answers too-old clients in plain text: they print JSON errors verbatim
    text = body.decode() if headers["content-type"].startswith("text/plain") else json.loads(body)["message"]
    assert message in text


def test_bad_references_are_400(daemon, busybox_image):
    status, _, body = daemon.api.request("POST", "/images/busybox/tag?repo=Upper&tag=x")
    assert status == 400 and "must be lowercase" in json.loads(body)["message"]
    status, _, body = daemon.api.request("POST", "/images/busybox/tag?repo=ok&tag=bad%20tag")
    assert status == 400 and "invalid tag format" in json.loads(body)["message"]
    status, _, body = daemon.api.request("POST", "/images/create?fromSrc=-&repo=a%20b", body=b"")
    assert status == 400


def test_tag_delete_and_conflict(daemon, busybox_image):
    assert daemon.api.request("POST", "/images/busybox/tag?repo=localhost:5000/ns/app&tag=v1")[0] == 201
    assert daemon.api.json("GET", "/images/localhost:5000/ns/app:v1/json")["Id"] == busybox_image
    status, _, body = daemon.api.request("DELETE", f"/images/{busybox_image}")
    assert status == 409 and "referenced in multiple repositories" in json.loads(body)["message"]
    assert daemon.api.json("DELETE", "/images/localhost:5000/ns/app:v1") == [{"Untagged": "localhost:5000/ns/app:v1"}]
    records = daemon.api.json("DELETE", "/images/busybox")
    assert records[0] == {"Untagged": "busybox:latest"} and records[1] == {"Deleted": busybox_image}
    assert daemon.api.json("GET", "/images/json") == []


def test_filters(daemon, busybox_image):
    layer = layer_tar({"x": b"1"})
    dangling = Image(config_for([layer], labels={"tier": "db"}), [layer], [])
    daemon.api.request("POST", "/images/load", body=docker_save_legacy([dangling]))

    def ids(filters):
        return {i["Id"] for i in daemon.api.json("GET", "/images/json?filters=" + urllib.parse.quote(json.dumps(filters)))}

    assert ids({"dangling": ["true"]}) == {dangling.id}
    assert ids({"dangling": {"false": True}}) == {busybox_image}
    assert ids({"reference": ["busy*"]}) == {busybox_image}
    assert ids({"reference": ["busybox:latest"]}) == {busybox_image}
    assert ids({"reference": ["nothing*"]}) == set()
    assert ids({"label": ["tier=db"]}) == {dangling.id}
    assert ids({"label": ["tier"]}) == {dangling.id}
    status, _, body = daemon.api.request("GET", "/images/json?filters=" + urllib.parse.quote('{"bogus":["1"]}'))
    assert status == 400 and json.loads(body)["message"] == "invalid filter 'bogus'"
    status, _, _ = daemon.api.request("GET", "/images/json?filters=notjson")
    assert status == 400
    pruned = daemon.api.json("POST", "/images/prune")
    assert pruned["ImagesDeleted"][0] == {"Deleted": dangling.id} and pruned["SpaceReclaimed"] > 0
    assert ids({}) == {busybox_image}


def test_history(daemon):
    layers = [layer_tar({"a": b"1" * 1000}), layer_tar({"b": b"2" * 10})]
    image = Image(config_for(layers), layers, ["hist:1"])
    daemon.api.request("POST", "/images/load", body=docker_save_legacy([image]))
    history = daemon.api.json("GET", "/images/hist:1/history")
    assert [h["Id"] for h in history] == [image.id, "<missing>"]
    assert [h["CreatedBy"] for h in history] == ["layer 1", "layer 0"]
    assert [h["Size"] for h in history] == [10, 1000]
    assert history[0]["Tags"] == ["hist:1"] and history[1]["Tags"] is None


def test_save_streams_a_loadable_tar(daemon, busybox_image):
    status, headers, body = daemon.api.request("GET", "/images/get?names=busybox")
    assert status == 200 and headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(body)) as tf:
        names = tf.getnames()
        manifest = json.load(tf.extractfile("manifest.json"))
        index = json.load(tf.extractfile("index.json"))
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= set(names)
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    assert manifest[0]["Config"] == "blobs/sha256/" + busybox_image[7:]
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/library/busybox:latest"
    assert daemon.api.request("GET", "/images/nope/get")[0] == 404
    daemon.api.json("DELETE", "/images/busybox")
    status, _, out = daemon.api.request("POST", "/images/load?quiet=1", body=body)
    assert status == 200 and json.loads(out.splitlines()[0]) == {"stream": "Loaded image: busybox:latest\n"}
    assert daemon.api.json("GET", "/images/busybox/json")["Id"] == busybox_image


def test_load_errors_are_statuses(daemon):
    status, _, body = daemon.api.request("POST", "/images/load", body=b"garbage" * 200)
    assert status == 400 and "message" in json.loads(body)


def test_system_df_and_info(daemon, busybox_image):
    df = daemon.api.json("GET", "/system/df")
    assert df["LayersSize"] > 1_000_000 and df["Images"][0]["Id"] == busybox_image
    info = daemon.api.json("GET", "/info")
    assert info["Images"] == 1 and info["DockerRootDir"] == daemon.root and info["OSType"] == "linux"
    assert info["CgroupVersion"] in ("1", "2") and info["NCPU"] >= 1 and info["MemTotal"] > 0
    assert info["SecurityOptions"][0] == "name=seccomp,profile=builtin"  # every container gets the default profile
    assert info["DefaultRuntime"] in info["Runtimes"] and info["CgroupDriver"] == "cgroupfs"
    version = daemon.api.json("GET", "/version")
    assert version["ApiVersion"] == "1.45" and version["MinAPIVersion"] == "1.24"


def _tar_with(build) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        build(tf)
    return buf.getvalue()


def _entry(tf, name, data=b"x", **attrs):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(data) if info.isreg() else None)


HOSTILE = {
    "dotdot": (lambda tf: _entry(tf, "../../../tmp/portside-escaped"), "../../../tmp/portside-escaped"),
    "symlink-then-write": (lambda tf: (_entry(tf, "evil", type=tarfile.SYMTYPE, linkname="/tmp"),
                                       _entry(tf, "evil/portside-escaped")), "evil/portside-escaped"),
    "hardlink-out": (lambda tf: _entry(tf, "passwd", type=tarfile.LNKTYPE, linkname="../../../etc/passwd"),
                     "passwd"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_import_is_refused_and_leaves_nothing(daemon, case):
    build, named = HOSTILE[case]
    status, _, body = daemon.api.request("POST", "/images/create?fromSrc=-&repo=evil", body=_tar_with(build))
    assert status == 400, body
    assert named in json.loads(body)["message"]
    assert not os.path.exists("/tmp/portside-escaped")
    assert daemon.api.json("GET", "/images/json") == []
    for sub in ("content/blobs/sha256", "content/ingest", "snapshots/layers", "snapshots/tmp"):
        assert os.listdir(os.path.join(daemon.root, sub)) == [], sub


def test_reference_filter_follows_go_path_match_and_trims_names(daemon, busybox_image):
    daemon.api.request("POST", "/images/busybox/tag?repo=user/app&tag=1")

    def listed(filters):
        got = daemon.api.json("GET", "/images/json?filters=" + urllib.parse.quote(json.dumps(filters)))
        return [sorted(i["RepoTags"]) for i in got]

    assert listed({"reference": ["*"]}) == [["busybox:latest"]]       # * does not cross "/"
    assert listed({"reference": ["*/*"]}) == [["user/app:1"]]
    assert listed({"reference": ["user/app:1"]}) == [["user/app:1"]]
    assert listed({"reference": ["nothing"]}) == []
    assert listed({"until": ["1h"]}) == []                            # created less than an hour ago
    assert listed({"label!": ["k=v"]}) == [["busybox:latest", "user/app:1"]]
    status, _, body = daemon.api.request(
        "GET", "/images/json?filters=" + urllib.parse.quote(json.dumps({"reference": ["[a-"]})))
    assert status == 400 and "syntax error in pattern" in json.loads(body)["message"]
