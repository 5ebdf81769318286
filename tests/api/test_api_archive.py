"""docker cp's and docker export's API on a real daemon: HEAD/GET/PUT /containers/{id}/archive, GET .../export.

What is checked is what moby's daemon/archive.go and export.go answer (the
reference dockerd 20.10 was asked the same questions while this was written):
the path stat header, how the tar's entries are named, Docker's errors, and
that nothing is ever read or written outside the container, whatever its
symlinks or the uploaded tar say. Running, paused, created and stopped
containers all work; a stopped one's overlay is mounted only for the request,
in a mount namespace of its own, and nothing of it is left afterwards.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import os
import socket
import tarfile
import threading
import time
import urllib.parse
from typing import Any

import pytest

from helpers import Daemon, mounts_under

pytestmark = pytest.mark.root

FOREVER = "trap 'exit 0' TERM; while :; do sleep 1; done"
TREE = ("mkdir -p /d/sub && echo hi > /d/a.txt && echo x > /d/sub/b && ln -s /d /dl && ln -s a.txt /d/rel "
        "&& ln /d/a.txt /d/hard && touch /ready")
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27


# -- helpers ------------------------------------------------------------------------------


def create(daemon: Daemon, cmd: list[str], **config: Any) -> str:
    doc = daemon.api.json("POST", "/containers/create", {"Image": "busybox", "Cmd": cmd, **config}, expect=201)
    return str(doc["Id"])


def run(daemon: Daemon, cmd: str, **config: Any) -> str:
    cid = create(daemon, ["sh", "-c", cmd], **config)
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    return cid


def archive(daemon: Daemon, method: str, cid: str, path: str, body: bytes | None = None,
            **query: str) -> tuple[int, dict[str, str], bytes]:
    q = urllib.parse.urlencode({"path": path, **query})
    return daemon.api.request(method, f"/containers/{cid}/archive?{q}", body=body)


def wait_for(daemon: Daemon, cid: str, path: str) -> None:
    deadline = time.monotonic() + 30
    while archive(daemon, "HEAD", cid, path)[0] != 200:
        assert time.monotonic() < deadline, f"{path} never appeared in the container"
        time.sleep(0.1)


def path_stat(headers: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.b64decode(headers["x-docker-container-path-stat"]))
    return doc


def message(body: bytes) -> str:
    return str(json.loads(body)["message"])


def raw_names(data: bytes) -> list[str]:
    """Entry names as written (a directory keeps its trailing slash), PAX path records honoured."""
    names = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            names.append(m.name + "/" if m.isdir() else m.name)  # tarfile drops a directory's slash
    return names


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf}


def file_content(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


def make_tar(*entries: tuple[str, str, str], compress: str = "") -> bytes:
    """("name", "f"|"d"|"l"|"h", content or link target)."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, value in entries:
            ti = tarfile.TarInfo(name)
            ti.uid, ti.gid, ti.mtime = 1234, 5678, 1_700_000_000
            if kind == "f":
                data = value.encode()
                ti.size, ti.mode = len(data), 0o640
                tf.addfile(ti, io.BytesIO(data))
            elif kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o750
                tf.addfile(ti)
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, value
                tf.addfile(ti)
            else:
                ti.type, ti.linkname = tarfile.LNKTYPE, value
                tf.addfile(ti)
    data = bio.getvalue()
    return {"": lambda d: d, "gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[compress](data)


def read_file(daemon: Daemon, cid: str, path: str) -> bytes:
    status, _, body = archive(daemon, "GET", cid, path)
    assert status == 200, (path, status, body)
    return file_content(body, os.path.basename(path))


def snapshot(directory: str) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, directory)] = (os.readlink(full) if os.path.islink(full)
                                                     else b"" if os.path.isdir(full) else open(full, "rb").read())
    return out


def daemon_mounts(daemon: Daemon) -> list[str]:
    """Mount points under the daemon's data root, as every thread of the daemon sees them."""
    found = []
    for tid in os.listdir(f"/proc/{daemon.proc.pid}/task"):
        try:
            with open(f"/proc/{daemon.proc.pid}/task/{tid}/mountinfo") as f:
                found += [line.split()[4] for line in f if daemon.root in line.split()[4]]
        except OSError:  # the thread is gone, or going (EINVAL)
            continue
    return found


# -- stat and archive -----------------------------------------------------------------------


def test_stat_and_archive_name_entries_as_docker_does(daemon, busybox_image):
    cid = run(daemon, f"{TREE}; {FOREVER}")
    wait_for(daemon, cid, "/ready")

    status, headers, body = archive(daemon, "HEAD", cid, "/d")
    assert (status, body) == (200, b"")
    st = path_stat(headers)
    assert st["name"] == "d" and st["mode"] == GO_DIR | 0o755 and st["linkTarget"] == ""
    assert st["mtime"].endswith("Z") and st["mtime"][:4].isdigit() and isinstance(st["size"], int)
    st = path_stat(archive(daemon, "HEAD", cid, "/d/rel")[1])
    assert (st["name"], st["mode"], st["size"], st["linkTarget"]) == ("rel", GO_SYMLINK | 0o777, 5, "/d/a.txt")
    assert path_stat(archive(daemon, "HEAD", cid, "/")[1])["name"] == "/"
    assert path_stat(archive(daemon, "HEAD", cid, "/d/a.txt")[1])["mode"] == 0o644

    status, headers, body = archive(daemon, "GET", cid, "/d")
    assert status == 200 and headers["content-type"] == "application/x-tar"
    assert path_stat(headers)["name"] == "d"
    assert raw_names(body) == ["d/", "d/a.txt", "d/hard", "d/rel", "d/sub/", "d/sub/b"]
    m = members(body)
    assert m["d/hard"].islnk() and m["d/hard"].linkname == "d/a.txt"  # the second name of an inode
    assert m["d/rel"].issym() and m["d/rel"].linkname == "a.txt"
    assert (m["d/a.txt"].uname, m["d/a.txt"].mode) == ("", 0o100644)  # file type bits in the mode, as Go writes
    assert file_content(body, "d/a.txt") == b"hi\n"
    # The raw mode field holds the file type too, as Go's tar writer writes it.
    assert body[100:108] == b"0040755\x00"

    # "/." archives the contents; a trailing slash follows a final symlink; none does not.
    assert raw_names(archive(daemon, "GET", cid, "/d/.")[2])[:2] == ["./", "./a.txt"]
    assert raw_names(archive(daemon, "GET", cid, "/dl/")[2])[:2] == ["dl/", "dl/a.txt"]
    link = members(archive(daemon, "GET", cid, "/dl")[2])["dl"]
    assert link.issym() and link.linkname == "/d"
    assert raw_names(archive(daemon, "GET", cid, "/d/sub/..")[2])[0] == "d/"  # cleaned first, as Go's Join
    assert raw_names(archive(daemon, "GET", cid, "/")[2])[:2] == ["/", "/bin/"]
    assert file_content(archive(daemon, "GET", cid, "d/sub/b")[2], "b") == b"x\n"  # relative means from /

    # Only the container's root filesystem and volumes: its /proc, /sys and /dev are not there.
    assert raw_names(archive(daemon, "GET", cid, "/proc")[2]) == ["proc/"]
    assert archive(daemon, "HEAD", cid, "/dev/null")[0] == 404


def test_archive_errors_are_docker_s(daemon, busybox_image):
    cid = run(daemon, f"{TREE}; {FOREVER}")
    wait_for(daemon, cid, "/ready")
    name = daemon.api.json("GET", f"/containers/{cid}/json")["Name"].lstrip("/")

    status, _, body = archive(daemon, "GET", cid, "/nonexist")
    assert (status, message(body)) == (404, f"Could not find the file /nonexist in container {cid}")
    status, _, body = archive(daemon, "GET", name, "nonexist/x")
    assert (status, message(body)) == (404, f"Could not find the file nonexist/x in container {name}")
    assert archive(daemon, "HEAD", cid, "/nonexist")[0] == 404
    status, _, body = archive(daemon, "GET", cid, "/d/a.txt/")
    assert (status, message(body)) == (500, "lstat /d/a.txt/: not a directory")
    status, _, body = archive(daemon, "GET", cid, "")
    assert (status, message(body)) == (400, "bad parameter: path cannot be empty")
    status, _, body = archive(daemon, "GET", "nosuch", "/")
    assert (status, message(body)) == (404, "No such container: nosuch")
    status, _, body = daemon.api.request("GET", "/containers/nosuch/export")
    assert (status, message(body)) == (404, "No such container: nosuch")


# -- extract --------------------------------------------------------------------------------


def test_put_extracts_any_compression_into_a_directory(daemon, busybox_image):
    cid = run(daemon, f"{TREE}; {FOREVER}")
    wait_for(daemon, cid, "/ready")
    for compress in ("", "gz", "bz2", "xz"):
        tar = make_tar(("new", "d", ""), (f"new/{compress or 'plain'}.txt", "f", compress), compress=compress)
        status, _, body = archive(daemon, "PUT", cid, "/tmp", tar)
        assert (status, body) == (200, b""), body
        assert read_file(daemon, cid, f"/tmp/new/{compress or 'plain'}.txt") == compress.encode()
    m = members(archive(daemon, "GET", cid, "/tmp/new")[2])
    assert (m["new/plain.txt"].uid, m["new/plain.txt"].gid, m["new/plain.txt"].mode & 0o7777) == (1234, 5678, 0o640)
    assert (m["new"].mode & 0o7777, m["new"].mtime) == (0o750, 1_700_000_000)
    # The destination itself is left as it is ("./" entries do not touch it); .wh. names are files.
    before = path_stat(archive(daemon, "HEAD", cid, "/tmp")[1])
    assert archive(daemon, "PUT", cid, "/tmp", make_tar(("./", "d", ""), (".wh.x", "f", "w")))[0] == 200
    assert path_stat(archive(daemon, "HEAD", cid, "/tmp")[1])["mode"] == before["mode"]
    assert read_file(daemon, cid, "/tmp/.wh.x") == b"w"
    # A symlink to a directory is a fine destination.
    assert archive(daemon, "PUT", cid, "/dl", make_tar(("via-link", "f", "v")))[0] == 200
    assert read_file(daemon, cid, "/d/via-link") == b"v"

    status, _, body = archive(daemon, "PUT", cid, "/d/a.txt", make_tar(("x", "f", "")))
    assert (status, message(body)) == (400, "extraction point is not a directory")
    status, _, body = archive(daemon, "PUT", cid, "/nonexist", make_tar(("x", "f", "")))
    assert (status, message(body)) == (404, f"Could not find the file /nonexist in container {cid}")
    status, _, body = archive(daemon, "PUT", cid, "/d", make_tar(("sub", "f", "")), noOverwriteDirNonDir="true")
    assert status == 400 and 'cannot overwrite directory "/d/sub" with non-directory "/d"' in message(body)
    status, _, body = archive(daemon, "PUT", cid, "/d", make_tar(("a.txt", "d", "")), noOverwriteDirNonDir="1")
    assert status == 400 and 'cannot overwrite non-directory "/d/a.txt" with directory "/d"' in message(body)
    # Without the flag a directory is replaced by a file, as in Docker.
    assert archive(daemon, "PUT", cid, "/d", make_tar(("sub", "f", "now a file")))[0] == 200
    assert read_file(daemon, cid, "/d/sub") == b"now a file"


def test_copy_uid_gid_gives_entries_to_the_container_user(daemon, busybox_image):
    cid = run(daemon, FOREVER, User="www-data")
    tar = make_tar(("owned", "f", "o"))
    assert archive(daemon, "PUT", cid, "/tmp", tar)[0] == 200
    assert (members(archive(daemon, "GET", cid, "/tmp/owned")[2])["owned"].uid) == 1234
    assert archive(daemon, "PUT", cid, "/tmp", tar, copyUIDGID="true")[0] == 200
    owned = members(archive(daemon, "GET", cid, "/tmp/owned")[2])["owned"]
    assert (owned.uid, owned.gid) == (33, 33)


def test_hostile_tars_write_nothing_outside_the_destination(daemon, busybox_image, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file").write_text("original")
    cid = run(daemon, f"mkdir /dest; touch /ready; {FOREVER}")
    wait_for(daemon, cid, "/ready")
    hostile = {
        "dot-dot": (make_tar(("../../escaped", "f", "x")), "path escapes the destination directory"),
        "symlink then write": (make_tar(("l", "l", str(outside)), ("l/file", "f", "pwned")),
                               "path goes through the symlink 'l'"),
        "relative symlink out": (make_tar(("up", "l", "../../../../"),), 'invalid symlink "/dest/up" -> "../../../../"'),
        "hard link out": (make_tar(("h", "h", "../etc/passwd")), "path escapes the destination directory"),
        "deep symlink then write": (make_tar(("a", "d", ""), ("a/l", "l", "/"), ("a/l/etc/pwned", "f", "x")),
                                    "path goes through the symlink 'a/l'"),
    }
    for what, (tar, expected) in hostile.items():
        status, _, body = archive(daemon, "PUT", cid, "/dest", tar)
        assert status == 400 and expected in message(body), (what, status, body)
    # An absolute name lands inside the destination, as Docker strips the slash.
    assert archive(daemon, "PUT", cid, "/dest", make_tar((f"{outside}/file", "f", "inside")))[0] == 200
    assert read_file(daemon, cid, f"/dest{outside}/file") == b"inside"
    assert snapshot(str(outside)) == {"file": b"original"}
    assert archive(daemon, "HEAD", cid, "/escaped")[0] == 404
    assert archive(daemon, "HEAD", cid, "/etc/pwned")[0] == 404
    assert archive(daemon, "HEAD", cid, "/pwned")[0] == 404


def test_container_symlinks_resolve_inside_the_container(daemon, busybox_image, tmp_path):
    host = tmp_path / "host-only"
    host.mkdir()
    (host / "secret").write_text("host secret")
    cid = run(daemon, f"ln -s {host} /hostlink && ln -s ../../../../../.. /up && ln -s /etc /etclink "
                      f"&& touch /ready; {FOREVER}")
    wait_for(daemon, cid, "/ready")
    # The link's target is a path of the container, where it does not exist.
    assert archive(daemon, "GET", cid, "/hostlink/secret")[0] == 404
    assert path_stat(archive(daemon, "HEAD", cid, "/hostlink")[1])["linkTarget"] == str(host)
    assert archive(daemon, "PUT", cid, "/hostlink", make_tar(("pwned", "f", "x")))[0] == 404
    # ".." stops at the container's root; absolute targets start there.
    assert read_file(daemon, cid, "/up/etc/passwd").startswith(b"root:x:0:0:root:/root:/bin/sh\n")
    assert path_stat(archive(daemon, "HEAD", cid, "/up")[1])["linkTarget"] == "/"
    assert archive(daemon, "PUT", cid, "/up/tmp", make_tar(("via-up", "f", "u")))[0] == 200
    assert read_file(daemon, cid, "/tmp/via-up") == b"u"
    assert read_file(daemon, cid, "/etclink/group").startswith(b"root:x:0:")
    assert snapshot(str(host)) == {"secret": b"host secret"}


# -- stopped containers, volumes, read-only ------------------------------------------------


def test_created_and_stopped_containers_are_mounted_only_for_the_request(daemon, busybox_image):
    cid = create(daemon, ["sh", "-c", "cat /tmp/put.txt; echo made > /tmp/made"])
    assert read_file(daemon, cid, "/etc/passwd").startswith(b"root:")
    assert archive(daemon, "PUT", cid, "/tmp", make_tar(("put.txt", "f", "from a created container\n")))[0] == 200
    assert daemon_mounts(daemon) == [] and mounts_under(daemon.root) == []

    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    assert daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"] == 0
    status, _, body = daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1")
    assert b"from a created container" in body
    assert read_file(daemon, cid, "/tmp/made") == b"made\n"
    assert archive(daemon, "PUT", cid, "/tmp", make_tar(("after.txt", "f", "a")))[0] == 200
    assert read_file(daemon, cid, "/tmp/after.txt") == b"a"
    assert archive(daemon, "GET", cid, "/nonexist")[0] == 404
    assert daemon_mounts(daemon) == [] and mounts_under(daemon.root) == []

    # It starts again on the same upper directory: nothing of the copy's mount is left to collide with.
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    assert daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"] == 0
    assert daemon.api.request("DELETE", f"/containers/{cid}")[0] == 204
    assert os.listdir(os.path.join(daemon.root, "snapshots", "active")) == []


def test_start_waits_for_an_open_copy_of_a_stopped_container(daemon, busybox_image):
    cid = create(daemon, ["true"])
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(daemon.socket)
    sock.sendall(f"GET /containers/{cid}/archive?path=/bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert sock.recv(12) == b"HTTP/1.1 200"  # the archive is open and not read: the overlay stays mounted
    started: list[int] = []
    starter = threading.Thread(target=lambda: started.append(
        daemon.api.request("POST", f"/containers/{cid}/start")[0]))
    starter.start()
    time.sleep(1)
    assert starter.is_alive() and not started
    while sock.recv(1 << 20):  # read it all: the copy ends and lets the start go
        pass
    sock.close()
    starter.join(30)
    assert started == [204]
    assert daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"] == 0


def test_volumes_and_binds_are_read_and_written_where_they_live(daemon, busybox_image, tmp_path):
    bind = tmp_path / "bind"
    bind.mkdir()
    (bind / "host.txt").write_text("from the host")
    cid = run(daemon, f"echo v > /data/v && touch /ready; {FOREVER}",
              HostConfig={"Binds": ["vol1:/data", f"{bind}:/bind", "rovol:/ro:ro"]})
    wait_for(daemon, cid, "/ready")
    volume = os.path.join(daemon.root, "volumes", "vol1", "_data")

    assert read_file(daemon, cid, "/bind/host.txt") == b"from the host"
    assert read_file(daemon, cid, "/data/v") == b"v\n"
    assert archive(daemon, "PUT", cid, "/data", make_tar(("put", "f", "p")))[0] == 200
    assert open(os.path.join(volume, "put"), "rb").read() == b"p"
    assert archive(daemon, "PUT", cid, "/bind", make_tar(("put", "f", "b")))[0] == 200
    assert (bind / "put").read_bytes() == b"b"
    status, _, body = archive(daemon, "PUT", cid, "/ro", make_tar(("x", "f", "")))
    assert (status, message(body)) == (403, "mounted volume is marked read-only")
    assert "/data/v" in raw_names(archive(daemon, "GET", cid, "/")[2])
    # What the copy's view left out is still there for the container: its view was a copy.
    r = daemon.cli("exec", cid, "sh", "-c", "cat /data/v /bind/put && test -e /proc/1/status && test -c /dev/null && echo ok")
    assert r.stdout == b"v\nbok\n"

    # export is the root filesystem alone: the mount points, not what is mounted on them.
    status, headers, body = daemon.api.request("GET", f"/containers/{cid}/export")
    assert status == 200 and headers["content-type"] == "application/x-tar"
    names = raw_names(body)
    assert "data/" in names and "data/v" not in names and "bind/host.txt" not in names
    assert "ready" in names and "bin/busybox" in names and not any(n.startswith("proc/") and n != "proc/" for n in names)

    # Stopped, the same: the volume is mounted for the copy.
    assert daemon.api.request("POST", f"/containers/{cid}/stop?t=1")[0] == 204
    assert archive(daemon, "PUT", cid, "/data", make_tar(("stopped", "f", "s")))[0] == 200
    assert open(os.path.join(volume, "stopped"), "rb").read() == b"s"
    assert read_file(daemon, cid, "/bind/put") == b"b"
    assert (archive(daemon, "PUT", cid, "/ro", make_tar(("x", "f", "")))[0]) == 403
    assert daemon_mounts(daemon) == []


def test_a_fresh_volume_of_a_created_container_shows_the_image_s_content(daemon, busybox_image):
    cid = create(daemon, ["true"], Volumes={"/etc": {}})
    assert read_file(daemon, cid, "/etc/passwd").startswith(b"root:")  # copied up, as Docker does at create


def test_read_only_rootfs_refuses_extraction_but_not_into_a_volume(daemon, busybox_image):
    cid = run(daemon, FOREVER, HostConfig={"ReadonlyRootfs": True, "Binds": ["rw:/rw"]})
    wait_for(daemon, cid, "/rw")
    status, _, body = archive(daemon, "PUT", cid, "/tmp", make_tar(("x", "f", "")))
    assert (status, message(body)) == (403, "container rootfs is marked read-only")
    assert archive(daemon, "PUT", cid, "/rw", make_tar(("x", "f", "ok")))[0] == 200
    assert read_file(daemon, cid, "/rw/x") == b"ok"


def test_paused_containers_and_export_of_a_stopped_one(daemon, busybox_image):
    cid = run(daemon, f"echo p > /p && touch /ready; {FOREVER}")
    wait_for(daemon, cid, "/ready")
    assert daemon.api.request("POST", f"/containers/{cid}/pause")[0] == 204
    assert read_file(daemon, cid, "/p") == b"p\n"
    assert daemon.api.request("POST", f"/containers/{cid}/unpause")[0] == 204
    assert daemon.api.request("POST", f"/containers/{cid}/kill")[0] == 204
    daemon.api.json("POST", f"/containers/{cid}/wait")
    status, _, body = daemon.api.request("GET", f"/containers/{cid}/export")
    assert status == 200
    m = members(body)
    assert m["p"].isfile() and m["bin/sh"].islnk() and m["bin/sh"].linkname == "bin/arch"
    assert file_content(body, "p") == b"p\n"
    assert daemon_mounts(daemon) == []
