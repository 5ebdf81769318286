"""The real docker CLI's volume commands and ``run --volumes-from`` against a portside daemon.

What is asserted is what a docker user sees: names printed, tables, the JSON
of inspect, messages and exit codes (docker CLI 28 here).
"""

from __future__ import annotations

import json
import re

import pytest

from helpers import mounts_under

pytestmark = [pytest.mark.root, pytest.mark.peers]

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture
def docker(daemon, docker_client):
    return docker_client(daemon.host)


@pytest.fixture
def busybox(docker, busybox_tar: str) -> str:
    return docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()


def test_volume_create_ls_inspect_rm(docker, busybox):
    assert docker("volume", "create", "--label", "team=core", "data").out == "data\n"
    anonymous = docker("volume", "create").out.strip()
    assert HEX64.match(anonymous)
    # the docker CLI sorts by name (natural order; plain order for these names)
    assert docker("volume", "ls").out == "DRIVER    VOLUME NAME\n" + "".join(
        f"local     {name}\n" for name in sorted([anonymous, "data"]))
    assert docker("volume", "ls", "-q", "--filter", "label=team=core").out == "data\n"
    assert docker("volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}}",
                  "-f", "name=data").out == "data local local team=core\n"
    doc = json.loads(docker("volume", "inspect", "data").out)
    assert len(doc) == 1
    assert {k: doc[0][k] for k in ("Name", "Driver", "Labels", "Options", "Scope")} == {
        "Name": "data", "Driver": "local", "Labels": {"team": "core"}, "Options": None, "Scope": "local"}
    assert docker("volume", "inspect", "-f", "{{.Mountpoint}}", "data").out.strip().endswith("/volumes/data/_data")

    cid = docker("create", "-v", "data:/data", "busybox", "true").out.strip()
    r = docker("volume", "rm", "data", check=False)
    assert (r.rc, r.out, r.err) == (1, "", f"Error response from daemon: remove data: volume is in use - [{cid}]\n")
    r = docker("volume", "rm", "nosuch", check=False)
    assert (r.rc, r.err) == (1, "Error response from daemon: get nosuch: no such volume\n")
    docker("rm", cid)
    assert docker("volume", "rm", "data", anonymous).out == f"data\n{anonymous}\n"
    assert docker("volume", "ls", "-q").out == ""


def test_volume_prune(docker, busybox):
    docker("volume", "create", "named")
    docker("run", "--name", "writer", "-v", "/data", "busybox", "sh", "-c", "printf 1234 > /data/f")
    docker("rm", "writer")
    anonymous = [n for n in docker("volume", "ls", "-q").out.split() if n != "named"]
    assert len(anonymous) == 1
    r = docker("volume", "prune", "-f")
    assert r.out == f"Deleted Volumes:\n{anonymous[0]}\n\nTotal reclaimed space: 4B\n"
    assert docker("volume", "ls", "-q").out == "named\n"      # named volumes stay without --all
    assert docker("volume", "prune", "-f", "--filter", "label=nosuch", "-a").out == "Total reclaimed space: 0B\n"
    assert docker("volume", "prune", "-a", "-f").out == "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n"


def test_tmpfs_volume(docker, busybox):
    docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "ram")
    r = docker("run", "--rm", "-v", "ram:/ram", "busybox", "sh", "-c", "grep ' /ram ' /proc/mounts; touch /ram/x")
    assert r.out.startswith("tmpfs /ram tmpfs rw,") and "size=1024k" in r.out
    mountpoint = docker("volume", "inspect", "-f", "{{.Mountpoint}}", "ram").out.strip()
    assert mounts_under(mountpoint) == []
    assert docker("run", "--rm", "-v", "ram:/ram", "busybox", "ls", "/ram").out == ""
    r = docker("volume", "create", "-o", "type=tmpfs", "bad", check=False)
    assert (r.rc, r.err) == (1, 'Error response from daemon: create bad: missing required option: "device"\n')


def test_run_volumes_from(docker, busybox, tmp_path):
    (tmp_path / "in").write_text("host\n")
    docker("create", "--name", "data", "-v", "store:/store", "-v", f"{tmp_path}:/host:ro", "-v", "/cache",
           "busybox", "true")
    r = docker("run", "--rm", "--volumes-from", "data", "busybox", "sh", "-c",
               "echo kept > /store/f; echo c > /cache/f; cat /host/in")
    assert r.out == "host\n"
    r = docker("run", "--rm", "--volumes-from", "data:ro", "busybox", "sh", "-c", "cat /store/f /cache/f; touch /store/g",
               check=False)
    assert r.rc == 1 and r.out == "kept\nc\n" and "Read-only file system" in r.err

    docker("create", "--name", "copy", "--volumes-from", "data", "busybox", "true")
    mounts = {m["Destination"]: m for m in json.loads(docker("inspect", "-f", "{{json .Mounts}}", "copy").out)}
    source = {m["Destination"]: m for m in json.loads(docker("inspect", "-f", "{{json .Mounts}}", "data").out)}
    assert sorted(mounts) == ["/cache", "/host", "/store"]
    assert mounts["/store"]["Name"] == "store" and mounts["/cache"]["Name"] == source["/cache"]["Name"]
    assert (mounts["/host"]["Source"], mounts["/host"]["RW"]) == (str(tmp_path), False)
    copy_id = docker("inspect", "-f", "{{.Id}}", "copy").out.strip()
    docker("rm", "data")
    r = docker("volume", "rm", "store", check=False)
    assert r.err == f"Error response from daemon: remove store: volume is in use - [{copy_id}]\n"

    r = docker("run", "--rm", "--volumes-from", "nosuch", "busybox", "true", check=False)
    assert r.rc == 125 and "No such container: nosuch" in r.err
    r = docker("run", "--rm", "--volumes-from", "copy:shared", "busybox", "true", check=False)
    assert r.rc == 125 and "invalid mode: shared" in r.err


def test_system_df_lists_volumes(docker, busybox):
    docker("run", "--name", "writer", "-v", "sized:/d", "busybox", "sh", "-c", "printf 12345678 > /d/f")
    out = docker("system", "df", "-v").out
    section = out[out.index("Local Volumes space usage:"):out.index("Build cache usage:")]
    assert [line.split() for line in section.splitlines()[2:] if line.strip()] == [
        ["VOLUME", "NAME", "LINKS", "SIZE"], ["sized", "1", "8B"]]
    rows = [line.split() for line in docker("system", "df").out.splitlines() if line.startswith("Local Volumes")]
    assert rows == [["Local", "Volumes", "1", "1", "8B", "0B", "(0%)"]]
