"""HostConfig.VolumesFrom through the Engine API: a container gets another's volumes and binds.

What dockerd's registerMountPoints does: every mount point of the source at
the same destination, read-only with ``:ro`` (``:rw`` cannot widen a
read-only one), Binds and Mounts of the request over them; inspect lists
them; a volume so used is in use.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any

import pytest

from helpers import mounts_under

pytestmark = pytest.mark.root


def create(daemon: Any, cmd: list[str], name: str = "", **config: Any) -> str:
    query = "?name=" + urllib.parse.quote(name) if name else ""
    body = {"Image": "busybox", "Cmd": cmd, **config}
    doc = daemon.api.json("POST", "/containers/create" + query, body, expect=201)
    return str(doc["Id"])


def demux(data: bytes) -> tuple[bytes, bytes]:
    out, err = b"", b""
    while data:
        kind, size = data[0], int.from_bytes(data[4:8], "big")
        chunk, data = data[8:8 + size], data[8 + size:]
        if kind == 1:
            out += chunk
        elif kind == 2:
            err += chunk
    return out, err


def run(daemon: Any, cmd: list[str], **config: Any) -> tuple[int, bytes, bytes]:
    """Create, start, wait, read the logs, remove; (exit status, stdout, stderr)."""
    cid = create(daemon, cmd, **config)
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    status = daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"]
    out, err = demux(daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")[2])
    assert daemon.api.request("DELETE", f"/containers/{cid}")[0] == 204
    return status, out, err


def mounts(daemon: Any, cid: str) -> dict[str, dict[str, Any]]:
    return {m["Destination"]: m for m in daemon.api.json("GET", f"/containers/{cid}/json")["Mounts"]}


@pytest.fixture
def source(daemon: Any, busybox_tar: str, tmp_path: Any) -> tuple[str, str]:
    """A created container "src" from an image with VOLUME /anon, a named volume, a read-only bind and a tmpfs."""
    daemon.cli("import", "--change", 'CMD ["sh"]', "--change", "VOLUME /anon", busybox_tar, "busybox:latest")
    host = tmp_path / "host"
    host.mkdir()
    (host / "in").write_text("host file\n")
    cid = create(daemon, ["true"], name="src", HostConfig={
        "Binds": ["shared:/shared", f"{host}:/host:ro"],
        "Mounts": [{"Type": "tmpfs", "Target": "/scratch"}]})
    return cid, str(host)


def test_the_new_container_gets_the_same_mounts(daemon: Any, source: tuple[str, str]) -> None:
    src, host = source
    before = mounts(daemon, src)
    assert sorted(before) == ["/anon", "/host", "/scratch", "/shared"]
    cid = create(daemon, ["true"], HostConfig={"VolumesFrom": ["src"]})
    after = mounts(daemon, cid)
    assert sorted(after) == sorted(before)
    for dest in before:
        # the same volume or host path, the source's access; the mode words are the source's own
        assert {**after[dest], "Mode": ""} == {**before[dest], "Mode": ""}, dest
        assert after[dest]["Mode"] == ""
    assert after["/host"] == {"Type": "bind", "Source": host, "Destination": "/host", "Mode": "", "RW": False,
                              "Propagation": "rprivate"}
    assert after["/shared"]["Name"] == "shared" and after["/anon"]["Name"] == before["/anon"]["Name"]
    host_config = daemon.api.json("GET", f"/containers/{cid}/json")["HostConfig"]
    assert host_config["VolumesFrom"] == ["src"]
    listed = {c["Id"]: c for c in daemon.api.json("GET", "/containers/json?all=1")}
    assert sorted(m["Destination"] for m in listed[cid]["Mounts"]) == sorted(before)


def test_data_is_shared_and_ro_is_read_only(daemon: Any, source: tuple[str, str]) -> None:
    status, out, _ = run(daemon, ["sh", "-c", "echo one > /shared/f; echo two > /anon/f; cat /host/in"],
                         HostConfig={"VolumesFrom": ["src"]})
    assert (status, out) == (0, b"host file\n")
    status, out, err = run(daemon, ["sh", "-c", "cat /shared/f /anon/f; touch /shared/g"],
                           HostConfig={"VolumesFrom": ["src:ro"]})
    assert (status, out) == (1, b"one\ntwo\n") and b"Read-only file system" in err
    status, _, err = run(daemon, ["touch", "/host/x"], HostConfig={"VolumesFrom": ["src:rw"]})
    assert status == 1 and b"Read-only file system" in err   # :rw cannot make the source's ro bind writable
    status, out, _ = run(daemon, ["sh", "-c", "grep ' /scratch ' /proc/mounts | cut -d' ' -f1,3,4"],
                         HostConfig={"VolumesFrom": ["src:ro"]})
    assert out.startswith(b"tmpfs tmpfs ro,")   # a tmpfs of its own, read-only too


def test_binds_and_mounts_win_and_copies_chain(daemon: Any, source: tuple[str, str], tmp_path: Any) -> None:
    cid = create(daemon, ["true"], name="middle", HostConfig={
        "VolumesFrom": ["src:ro"], "Binds": ["mine:/shared"],
        "Mounts": [{"Type": "bind", "Source": str(tmp_path), "Target": "/host"}]})
    m = mounts(daemon, cid)
    assert (m["/shared"]["Name"], m["/shared"]["RW"], m["/shared"]["Mode"]) == ("mine", True, "z")
    assert (m["/host"]["Source"], m["/host"]["RW"]) == (str(tmp_path), True)
    assert (m["/anon"]["RW"], m["/scratch"]["RW"]) == (False, False)
    # a copy of a copy: what "middle" has, with its own access
    last = mounts(daemon, create(daemon, ["true"], HostConfig={"VolumesFrom": ["middle"]}))
    assert {d: (x.get("Name"), x["RW"]) for d, x in last.items()} == {
        d: (x.get("Name"), x["RW"]) for d, x in m.items()}
    # Tmpfs of the request wins over a copied mount point at its destination
    tm = mounts(daemon, create(daemon, ["true"], HostConfig={"VolumesFrom": ["src"], "Tmpfs": {"/shared": ""}}))
    assert "/shared" not in tm


def test_a_volume_used_through_volumes_from_stays_in_use(daemon: Any, source: tuple[str, str]) -> None:
    src, _ = source
    anon = mounts(daemon, src)["/anon"]["Name"]
    user = create(daemon, ["true"], HostConfig={"VolumesFrom": [src[:12]]})   # an ID prefix names it too
    assert daemon.api.request("DELETE", f"/containers/{src}")[0] == 204
    for name in ("shared", anon):
        status, _, body = daemon.api.request("DELETE", f"/volumes/{name}")
        assert (status, json.loads(body)["message"]) == (409, f"remove {name}: volume is in use - [{user}]")
    dangling = daemon.api.json("GET", "/volumes?filters=" + urllib.parse.quote('{"dangling":["true"]}'))
    assert dangling["Volumes"] == []
    # rm -v of the copy takes the anonymous volume it no longer shares, never the named one
    assert daemon.api.request("DELETE", f"/containers/{user}?v=1")[0] == 204
    assert [v["Name"] for v in daemon.api.json("GET", "/volumes")["Volumes"]] == ["shared"]


def test_rm_v_of_a_copy_leaves_volumes_the_source_uses(daemon: Any, source: tuple[str, str]) -> None:
    src, _ = source
    anon = mounts(daemon, src)["/anon"]["Name"]
    user = create(daemon, ["true"], HostConfig={"VolumesFrom": ["src"]})
    assert daemon.api.request("DELETE", f"/containers/{user}?v=1")[0] == 204
    assert sorted(v["Name"] for v in daemon.api.json("GET", "/volumes")["Volumes"]) == sorted([anon, "shared"])


@pytest.mark.parametrize("spec, message", [
    ("nosuch", "No such container: nosuch"),
    ("", "volumes-from specification cannot be an empty string"),
    ("src:shared", "invalid mode: shared"),
    ("src:nocopy", "invalid mode: nocopy"),
    ("src:ro,rw", "invalid mode: ro,rw"),
])
def test_bad_volumes_from_is_refused(daemon: Any, source: tuple[str, str], spec: str, message: str) -> None:
    status, _, body = daemon.api.request("POST", "/containers/create",
                                         {"Image": "busybox", "HostConfig": {"VolumesFrom": [spec]}})
    assert (status, json.loads(body)["message"]) == (400, message)
    assert len(daemon.api.json("GET", "/containers/json?all=1")) == 1   # nothing half-made


def test_option_volumes_copied_are_mounted_while_used(daemon: Any, busybox_image: str) -> None:
    """A tmpfs volume (driver options) used through --volumes-from is mounted for the copy too."""
    daemon.api.json("POST", "/volumes/create", {"Name": "ram", "DriverOpts": {
        "type": "tmpfs", "device": "tmpfs", "o": "size=2m"}}, expect=201)
    create(daemon, ["true"], name="holder", HostConfig={"Binds": ["ram:/ram"]})
    status, out, _ = run(daemon, ["sh", "-c", "grep ' /ram ' /proc/mounts | cut -d' ' -f1,3"],
                         HostConfig={"VolumesFrom": ["holder"]})
    assert (status, out) == (0, b"tmpfs tmpfs\n")
    mountpoint = daemon.api.json("GET", "/volumes/ram")["Mountpoint"]
    assert mounts_under(mountpoint) == [] and os.path.isdir(mountpoint)
