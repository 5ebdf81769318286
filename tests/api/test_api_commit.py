"""POST /commit on a real daemon: the new image, its layer, its config, and the refusals."""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
import time
import urllib.parse

import pytest

pytestmark = pytest.mark.root

FOREVER = "trap 'exit 0' TERM; while :; do sleep 1; done"


def run_to_end(daemon, cmd: list[str], **config) -> str:
    cid = daemon.api.json("POST", "/containers/create", {"Image": "busybox", "Cmd": cmd, **config}, expect=201)["Id"]
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    assert daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"] == 0
    return cid


def commit(daemon, cid: str, body=None, expect: int = 201, **query) -> dict:
    params = [("container", cid)]
    for key, value in query.items():
        params.extend((key, v) for v in (value if isinstance(value, list) else [value]))
    status, _, data = daemon.api.request("POST", "/commit?" + urllib.parse.urlencode(params), body)
    assert status == expect, (status, data)
    return json.loads(data)


def output(daemon, image: str, cmd: list[str]) -> bytes:
    cid = daemon.api.json("POST", "/containers/create", {"Image": image, "Cmd": cmd}, expect=201)["Id"]
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    daemon.api.json("POST", f"/containers/{cid}/wait")
    _, _, logs = daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1")
    daemon.api.request("DELETE", f"/containers/{cid}")
    out = b""
    while logs:  # stdcopy frames
        size = int.from_bytes(logs[4:8], "big")
        out += logs[8:8 + size]
        logs = logs[8 + size:]
    return out


def top_layer(daemon, image: str) -> dict[str, tarfile.TarInfo]:
    """The image's last layer, from its docker save tarball: {name: entry}."""
    status, _, body = daemon.api.request("GET", "/images/get?names=" + urllib.parse.quote(image))
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(body)) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = tf.extractfile(manifest[0]["Layers"][-1]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        return {m.name: m for m in tf}


def image_count(daemon) -> int:
    return len(daemon.api.json("GET", "/images/json?all=1"))


def test_commit_makes_an_image_with_the_container_s_changes(daemon, busybox_image):
    cid = run_to_end(daemon, ["sh", "-c", "echo hi > /etc/newfile; rm /bin/cat; rm -rf /var/spool;"
                                          " mkdir -p /var/spool/x; echo x > /var/spool/x/f"])
    reply = commit(daemon, cid, repo="committed", tag="v1", author="Jane <j@x>", comment="the message",
                   changes=['CMD ["head", "/etc/newfile"]', "ENV A=1 B=2", "LABEL l=v", "EXPOSE 80",
                            "WORKDIR /var", "USER 5"])
    image_id = reply["Id"]
    assert image_id.startswith("sha256:") and len(image_id) == 71 and list(reply) == ["Id"]

    doc = daemon.api.json("GET", "/images/committed:v1/json")
    assert doc["Id"] == image_id
    assert doc["Parent"] == busybox_image
    assert (doc["Comment"], doc["Author"]) == ("the message", "Jane <j@x>")
    config = doc["Config"]
    assert config["Cmd"] == ["head", "/etc/newfile"]
    assert config["Env"] == ["A=1", "B=2"]
    assert config["Labels"] == {"l": "v"}
    assert config["ExposedPorts"] == {"80/tcp": {}}
    assert (config["WorkingDir"], config["User"]) == ("/var", "5")
    parent = daemon.api.json("GET", f"/images/{busybox_image}/json")
    assert doc["RootFS"]["Layers"][:-1] == parent["RootFS"]["Layers"]
    assert len(doc["RootFS"]["Layers"]) == len(parent["RootFS"]["Layers"]) + 1
    old_api = daemon.api.json("GET", "/v1.41/images/committed:v1/json")  # "Container" went in API 1.45
    assert old_api["Container"] == cid
    assert old_api["ContainerConfig"]["Cmd"][0] == "sh"

    history = daemon.api.json("GET", "/images/committed:v1/history")
    assert history[0]["Id"] == image_id and history[0]["Tags"] == ["committed:v1"]
    assert history[0]["CreatedBy"].startswith("sh -c echo hi > /etc/newfile")
    assert history[0]["Comment"] == "the message" and history[0]["Size"] == 5  # "hi\n" and "x\n"
    assert history[1]["Id"] == busybox_image  # the parent is known locally
    assert len(daemon.api.json("GET", "/images/json?filters=" + urllib.parse.quote(
        json.dumps({"reference": ["committed"]})))) == 1
    listed = [i for i in daemon.api.json("GET", "/images/json") if i["Id"] == image_id]
    assert listed[0]["ParentId"] == busybox_image

    # A container of the new image sees the changes; the whiteouts hide what was deleted.
    assert output(daemon, "committed:v1", []) == b"hi\n"
    seen = output(daemon, "committed:v1", ["sh", "-c", "ls /bin/cat; ls -A /var/spool; head /var/spool/x/f; pwd; id -u"])
    assert seen == b"x\nx\n/var\n5\n"

    layer = top_layer(daemon, "committed:v1")
    assert layer["bin/.wh.cat"].isreg() and layer["bin/.wh.cat"].size == 0
    assert "var/spool/.wh..wh..opq" in layer
    assert layer["etc/newfile"].isreg() and layer["etc/newfile"].size == 3
    # the runtime's own mount points are not part of the container's changes
    assert not {"etc/hosts", "etc/hostname", "etc/resolv.conf"} & set(layer)


def test_an_unchanged_container_adds_an_empty_history_entry_and_no_layer(daemon, busybox_image):
    cid = run_to_end(daemon, ["true"])
    image_id = commit(daemon, cid)["Id"]
    doc = daemon.api.json("GET", f"/images/{image_id}/json")
    parent = daemon.api.json("GET", f"/images/{busybox_image}/json")
    assert doc["RootFS"] == parent["RootFS"] and doc["Size"] == parent["Size"]
    assert doc["RepoTags"] == []
    history = daemon.api.json("GET", f"/images/{image_id}/history")
    assert len(history) == 2 and history[0]["CreatedBy"] == "true" and history[0]["Size"] == 0
    status, _, body = daemon.api.request("GET", f"/images/{image_id}/get")
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(body)) as tf:
        config_name = json.load(tf.extractfile("manifest.json"))[0]["Config"]  # type: ignore[arg-type]
        config = json.load(tf.extractfile(config_name))  # type: ignore[arg-type]
    assert config["history"][-1] == {"created": config["created"], "created_by": "true", "empty_layer": True}


def test_the_same_changes_give_the_same_layer(daemon, busybox_image):
    cid = run_to_end(daemon, ["sh", "-c", "mkdir -p /a/b; echo 1 > /a/b/f; ln /a/b/f /a/g; rm /bin/ls"])
    first = daemon.api.json("GET", "/images/{}/json".format(commit(daemon, cid)["Id"]))
    second = daemon.api.json("GET", "/images/{}/json".format(commit(daemon, cid, comment="again")["Id"]))
    assert first["Id"] != second["Id"]
    assert first["RootFS"]["Layers"] == second["RootFS"]["Layers"]


def test_a_running_container_is_paused_for_the_commit_and_resumed(daemon, busybox_image):
    cid = daemon.api.json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["sh", "-c", "echo live > /live; " + FOREVER]}, expect=201)["Id"]
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    deadline = time.monotonic() + 20
    while not any(c["Path"] == "/live" for c in daemon.api.json("GET", f"/containers/{cid}/changes") or []):
        assert time.monotonic() < deadline, "the container did not write /live"
        time.sleep(0.1)
    image_id = commit(daemon, cid)["Id"]
    state = daemon.api.json("GET", f"/containers/{cid}/json")["State"]
    assert state["Running"] and not state["Paused"]
    assert output(daemon, image_id, ["cat", "/live"]) == b"live\n"
    # pause=0 leaves it running throughout, and a paused container stays paused
    commit(daemon, cid, pause="0")
    assert daemon.api.request("POST", f"/containers/{cid}/pause")[0] == 204
    commit(daemon, cid)
    assert daemon.api.json("GET", f"/containers/{cid}/json")["State"]["Paused"]
    assert daemon.api.request("POST", f"/containers/{cid}/unpause")[0] == 204
    assert daemon.api.request("DELETE", f"/containers/{cid}?force=1")[0] == 204


def test_the_container_is_frozen_while_its_layer_is_read(daemon, busybox_image):
    cid = daemon.api.json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=128 2>/dev/null; touch /done; "
                                   + FOREVER]}, expect=201)["Id"]
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    deadline = time.monotonic() + 60
    while not any(c["Path"] == "/done" for c in daemon.api.json("GET", f"/containers/{cid}/changes") or []):
        assert time.monotonic() < deadline, "the container did not write /big"
        time.sleep(0.1)
    states: list[tuple[bool, bool]] = []
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            state = daemon.api.json("GET", f"/containers/{cid}/json")["State"]
            states.append((state["Running"], state["Paused"]))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        commit(daemon, cid)
    finally:
        finished.set()
        watcher.join()
    assert (True, True) in states  # paused while the layer was read...
    state = daemon.api.json("GET", f"/containers/{cid}/json")["State"]
    assert (state["Running"], state["Paused"]) == (True, False)  # ...and running again after
    assert daemon.api.request("DELETE", f"/containers/{cid}?force=1")[0] == 204


def test_the_body_is_the_config_changes_apply_to(daemon, busybox_image):
    cid = run_to_end(daemon, ["true"], Env=["FROM_CONTAINER=1", "A=container"], Labels={"c": "1"})
    image_id = commit(daemon, cid, {"Cmd": ["echo", "body"], "Env": ["A=body"], "Labels": {"b": "2"}},
                      changes=["ENV B=change"])["Id"]
    config = daemon.api.json("GET", f"/images/{image_id}/json")["Config"]
    assert config["Cmd"] == ["echo", "body"]
    # moby's merge: the body's Env and ENV first, then the container's other variables
    assert config["Env"] == ["A=body", "B=change", "FROM_CONTAINER=1"]
    assert config["Labels"] == {"b": "2", "c": "1"}
    assert output(daemon, image_id, []) == b"body\n"
    # a lone string is a command of one word (Go's strslice)
    image_id = commit(daemon, cid, {"Entrypoint": "/bin/echo"})["Id"]
    config = daemon.api.json("GET", f"/images/{image_id}/json")["Config"]
    assert config["Entrypoint"] == ["/bin/echo"] and config["Cmd"] is None


def test_a_container_whose_image_was_removed_can_be_committed(daemon, busybox_image):
    cid = run_to_end(daemon, ["sh", "-c", "echo kept > /kept"])
    removed = daemon.api.json("DELETE", "/images/busybox?force=1")
    assert removed == [{"Untagged": "busybox:latest"}]
    image_id = commit(daemon, cid, repo="orphan")["Id"]
    assert daemon.api.json("GET", "/images/orphan/json")["Parent"] == busybox_image
    assert output(daemon, "orphan", ["cat", "/kept"]) == b"kept\n"


def test_a_committed_image_saves_and_loads_back(daemon, busybox_image):
    cid = run_to_end(daemon, ["sh", "-c", "echo saved > /saved; rm /bin/ls"])
    image_id = commit(daemon, cid, repo="roundtrip")["Id"]
    status, _, saved = daemon.api.request("GET", "/images/get?names=roundtrip")
    assert status == 200
    daemon.api.request("DELETE", f"/containers/{cid}")
    for name in ("roundtrip", "busybox"):
        daemon.api.json("DELETE", f"/images/{name}")
    status, _, body = daemon.api.request("POST", "/images/load", saved, headers={"Content-Type": "application/x-tar"})
    assert status == 200 and b"roundtrip:latest" in body, body
    assert daemon.api.json("GET", "/images/roundtrip/json")["Id"] == image_id
    assert output(daemon, "roundtrip", ["sh", "-c", "cat /saved; ls /bin/ls"]) == b"saved\n"


BAD_REQUESTS = [
    ({"container": "nosuch"}, None, {}, 404, "No such container: nosuch"),
    ({"container": ""}, None, {}, 400, 'invalid name or ID supplied: ""'),
    ({"repo": "BAD"}, None, {}, 400, "invalid reference format: repository name (library/BAD) must be lowercase"),
    ({"repo": "x", "tag": "@@"}, None, {}, 400, "invalid tag format"),
    ({"repo": "x@sha256:" + "a" * 64}, None, {}, 400, "refusing to create a tag with a digest reference"),
    ({"changes": "RUN x"}, None, {}, 400, "run is not a valid change command"),
    ({}, b"{}", {"Content-Type": "text/plain"}, 400, "Content-Type specified (text/plain) must be 'application/json'"),
    ({}, b"{bad", {"Content-Type": "application/json"}, 400, "invalid JSON"),
    ({}, b'{"Env": "A=1"}', {"Content-Type": "application/json"}, 400,
     "json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Env of type []string"),
]


def test_bad_requests_are_refused_and_make_nothing(daemon, busybox_image):
    cid = run_to_end(daemon, ["sh", "-c", "echo > /f"])
    before = image_count(daemon)
    for query, body, headers, status, message in BAD_REQUESTS:
        params = {"container": cid, **query}
        code, _, data = daemon.api.request("POST", "/commit?" + urllib.parse.urlencode(params), body, headers=headers)
        assert code == status, (query, data)
        assert message in json.loads(data)["message"], (query, data)
    assert image_count(daemon) == before
    assert [c["Id"] for c in daemon.api.json("GET", "/containers/json?all=1")] == [cid]
    assert os.listdir(os.path.join(daemon.root, "snapshots", "tmp")) == []
