"""No endpoint reads or writes a host path the caller did not ask for as a bind or a volume device.

Names that reach the daemon's own directories (volumes, containers, images)
are checked before they become paths: a name with ".." or "/" names nothing.
Paths inside containers resolve inside the container (tests/api/test_api_archive.py
covers hostile tars and symlinks in depth); the tar of an image load is read
by member name in memory and never extracted by its names.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import urllib.parse

import pytest

from helpers import Daemon

pytestmark = pytest.mark.root


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def plant_volume_json(directory: str) -> None:
    """A directory that would pass for a volume if a name could reach it."""
    os.makedirs(os.path.join(directory, "_data"), exist_ok=True)
    with open(os.path.join(directory, "volume.json"), "w") as f:
        json.dump({"name": "planted", "created_at": "2026-01-01T00:00:00Z", "labels": {}, "options": {},
                   "anonymous": False}, f)


def test_volume_names_cannot_reach_outside_the_volume_store(daemon: Daemon, busybox_image: str) -> None:
    outside = os.path.join(daemon.root, "planted")
    plant_volume_json(outside)
    for name in ["../planted", "../../" + os.path.basename(daemon.root) + "/planted", "..", ".", "a/../../planted"]:
        status, _, body = daemon.api.request("GET", f"/volumes/{q(name)}")
        assert status == 404, (name, body)
        status, _, body = daemon.api.request("DELETE", f"/volumes/{q(name)}")
        assert status == 404, (name, body)
        assert os.path.exists(os.path.join(outside, "volume.json"))
    # nor through a container's mount of a named volume
    for source in ["../planted", "../../etc"]:
        status, _, body = daemon.api.request("POST", "/containers/create", {
            "Image": "busybox", "HostConfig": {"Mounts": [{"Type": "volume", "Source": source, "Target": "/v"}]}})
        assert status == 400, body
        status, _, body = daemon.api.request("POST", "/containers/create", {
            "Image": "busybox", "HostConfig": {"Binds": [f"{source}:/v"]}})
        assert status == 400, body
    status, _, body = daemon.api.request("POST", "/volumes/create", {"Name": "../planted"})
    assert status == 400 and b"invalid characters" in body
    assert sorted(os.listdir(outside)) == ["_data", "volume.json"]


def test_container_and_exec_ids_cannot_reach_outside(daemon: Daemon, busybox_image: str) -> None:
    cid = daemon.cli("create", "busybox", "true").stdout.decode().strip()
    # the record of a real container, reached by a path instead of its ID
    for ref in [f"../containers/{cid}", f"./{cid}", f"{cid}/../{cid}", "..", "../../etc"]:
        for method, path in [("GET", f"/containers/{q(ref)}/json"), ("DELETE", f"/containers/{q(ref)}?force=1"),
                             ("GET", f"/exec/{q(ref)}/json"), ("GET", f"/containers/{q(ref)}/logs?stdout=1")]:
            status, _, body = daemon.api.request(method, path)
            assert status == 404, (method, path, body)
    assert daemon.api.json("GET", f"/containers/{cid}/json")["Id"] == cid


def test_image_names_cannot_reach_outside(daemon: Daemon, busybox_image: str) -> None:
    for ref in ["../../etc/passwd", "..", "/etc/passwd", "sha256:../../etc"]:
        for method, path in [("GET", f"/images/{q(ref)}/json"), ("DELETE", f"/images/{q(ref)}"),
                             ("GET", f"/images/{q(ref)}/history"), ("GET", f"/images/get?names={q(ref)}")]:
            status, _, body = daemon.api.request(method, path)
            assert 400 <= status < 500, (method, path, body)
            assert b"root:" not in body


def _save_tar(manifest: object, members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in {"manifest.json": json.dumps(manifest).encode(), **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("config,layer", [
    ("../../../../etc/passwd", "layer.tar"),
    ("/etc/passwd", "layer.tar"),
    ("config.json", "../../../../etc/passwd"),
    ("config.json", "/etc/hostname"),
])
def test_image_load_reads_only_members_of_the_tar(daemon: Daemon, config: str, layer: str) -> None:
    blob = _save_tar([{"Config": config, "RepoTags": ["evil:1"], "Layers": [layer]}],
                     {"config.json": b'{"rootfs":{"type":"layers","diff_ids":[]}}', "layer.tar": b""})
    status, _, body = daemon.api.request("POST", "/images/load?quiet=1", blob,
                                         headers={"Content-Type": "application/x-tar"})
    text = body.decode(errors="replace")
    # refused, up front or in the progress stream; never the host file's content
    assert status == 400 or "errorDetail" in text or "error" in text, text
    assert "root:x:0:0" not in text
    with open("/etc/hostname") as f:
        hostname = f.read().strip()
    assert not hostname or f'"{hostname}"' not in text
    assert daemon.api.json("GET", "/images/json") == []


def test_image_load_member_names_never_become_paths(daemon: Daemon) -> None:
    marker = f"/tmp/portside-load-escaped-{os.getpid()}"
    blob = _save_tar([], {f"../../../..{marker}": b"pwned", f"/{marker}": b"pwned"})
    status, _, body = daemon.api.request("POST", "/images/load", blob, headers={"Content-Type": "application/x-tar"})
    assert status < 500, body
    assert not os.path.exists(marker)


def test_archive_paths_resolve_inside_the_container(daemon: Daemon, busybox_image: str) -> None:
    marker = f"/tmp/portside-host-only-{os.getpid()}"
    with open(marker, "w") as f:
        f.write("host secret")
    try:
        cid = daemon.cli("run", "-d", "busybox", "sh", "-c", "ln -s / /hostroot; ln -s /tmp /tmplink; sleep 60"
                         ).stdout.decode().strip()
        daemon.cli("exec", cid, "true")  # the links are there once exec runs after them
        for path in [f"/../../../../..{marker}", f"/hostroot{marker}", f"/tmplink/{os.path.basename(marker)}",
                     f"/hostroot/../../..{marker}"]:
            status, _, body = daemon.api.request("GET", f"/containers/{cid}/archive?path={q(path)}")
            assert status == 404, (path, body)
            assert b"host secret" not in body
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w") as tf:
            info = tarfile.TarInfo(os.path.basename(marker))
            info.size = 6
            tf.addfile(info, io.BytesIO(b"pwned!"))
        for path in ["/hostroot/tmp", "/tmplink", "/../../../../tmp"]:
            status, _, body = daemon.api.request("PUT", f"/containers/{cid}/archive?path={q(path)}", tar.getvalue())
            assert status in (200, 400, 404), (path, body)
        with open(marker) as f:
            assert f.read() == "host secret"
        # what went in landed in the container's /tmp
        out = daemon.cli("exec", cid, "cat", f"/tmp/{os.path.basename(marker)}").stdout
        assert out == b"pwned!"
    finally:
        os.unlink(marker)
