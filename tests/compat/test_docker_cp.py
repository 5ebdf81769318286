"""The real docker CLI's ``cp`` and ``export`` against a portside daemon.

docker cp is a client-side algorithm over three API calls (HEAD for the
stat header, GET for a tar, PUT of a tar): what the CLI does with our
answers is the test. Expected outputs and trees are those the same CLI
gives against the reference dockerd.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers]

FOREVER = "trap 'exit 0' TERM; while :; do sleep 1; done"


@pytest.fixture
def docker(daemon, docker_client):
    return docker_client(daemon.host)


@pytest.fixture
def busybox(docker, busybox_tar: str) -> None:
    docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest")


def started(docker, name: str, script: str) -> None:
    docker("run", "-d", "--name", name, "busybox", "sh", "-c", f"{script} && touch /ready; {FOREVER}")
    deadline = time.monotonic() + 30
    while docker("cp", f"{name}:/ready", "-", check=False).rc != 0:
        assert time.monotonic() < deadline, "the container never got ready"
        time.sleep(0.1)


def listing(path: Path) -> dict[str, str]:
    found = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        found[rel] = "-> " + os.readlink(p) if p.is_symlink() else "dir" if p.is_dir() else p.read_text()
    return found


def test_docker_cp_out_of_a_running_container(docker, busybox, tmp_path):
    started(docker, "ctr", "mkdir -p /d/sub && echo hi > /d/a.txt && echo x > /d/sub/b && ln -s a.txt /d/rel")
    out = tmp_path / "out"
    out.mkdir()
    assert docker("cp", "ctr:/d", str(out)).err == ""  # quiet when nothing is a terminal
    docker("cp", "ctr:/d/.", str(out / "contents"))
    docker("cp", "-L", "ctr:/d/rel", str(out / "followed"))
    r = docker("cp", "-q=false", "ctr:/d/a.txt", str(out / "a"))
    assert r.err == f"Successfully copied 2.05kB to {out}/a\n"  # the bytes of tar (docker 28)
    assert listing(out) == {
        "a": "hi\n", "contents": "dir", "contents/a.txt": "hi\n", "contents/rel": "-> a.txt", "contents/sub": "dir",
        "contents/sub/b": "x\n", "d": "dir", "d/a.txt": "hi\n", "d/rel": "-> a.txt", "d/sub": "dir", "d/sub/b": "x\n",
        "followed": "hi\n",
    }
    with tarfile.open(fileobj=io.BytesIO(docker("cp", "ctr:/d/sub", "-").raw)) as tf:
        assert tf.getnames() == ["sub", "sub/b"]

    r = docker("cp", "ctr:/nonexist", str(out), check=False)
    assert (r.rc, r.err) == (1, "Error response from daemon: Could not find the file /nonexist in container ctr\n")
    r = docker("cp", "ctr:/d", str(out / "a"), check=False)
    assert (r.rc, r.err) == (1, "cannot copy directory\n")


def test_docker_cp_into_containers_running_or_not(docker, busybox, tmp_path):
    (tmp_path / "f.txt").write_text("local\n")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "g").write_text("g\n")
    started(docker, "ctr", "true")
    docker("cp", str(tmp_path / "f.txt"), "ctr:/tmp/")
    docker("cp", str(tmp_path / "tree"), "ctr:/tmp/renamed")
    docker("cp", "-a", str(tmp_path / "f.txt"), "ctr:/tmp/archived")
    r = docker("cp", "-q=false", str(tmp_path / "f.txt"), "ctr:/tmp/progress")
    assert r.err == "Successfully copied 2.05kB to ctr:/tmp/progress\n"
    assert docker("exec", "ctr", "sh", "-c", "cat /tmp/f.txt /tmp/renamed/sub/g /tmp/archived").out == "local\ng\nlocal\n"
    r = docker("cp", str(tmp_path / "tree"), "ctr:/tmp/f.txt", check=False)
    assert (r.rc, r.err.splitlines()[-1]) == (1, "cannot copy directory")
    r = docker("cp", str(tmp_path / "f.txt"), "ctr:/nonexist/x", check=False)
    assert (r.rc, r.err) == (1, "Error response from daemon: Could not find the file /nonexist in container ctr\n")

    docker("create", "--name", "stopped", "-v", "/vol", "busybox", "sh", "-c", "cat /vol/f.txt /tmp/renamed/sub/g")
    docker("cp", str(tmp_path / "f.txt"), "stopped:/vol/")
    docker("cp", str(tmp_path / "tree"), "stopped:/tmp/renamed")
    assert docker("start", "-a", "stopped").out == "local\ng\n"
    docker("cp", "stopped:/vol/f.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "local\n"


def test_docker_cp_from_stdin_and_hostile_archives(docker, busybox, tmp_path):
    started(docker, "ctr", "mkdir /dest")
    outside = tmp_path / "outside"
    outside.mkdir()

    def tar(*entries: tuple[str, str]) -> bytes:
        bio = io.BytesIO()
        with tarfile.open(fileobj=bio, mode="w") as tf:
            for name, link in entries:
                info = tarfile.TarInfo(name)
                if link:
                    info.type, info.linkname = tarfile.SYMTYPE, link
                    tf.addfile(info)
                else:
                    info.size = 2
                    tf.addfile(info, io.BytesIO(b"x\n"))
        return bio.getvalue()

    docker("cp", "-", "ctr:/dest", input=tar(("from-stdin", "")))
    assert docker("exec", "ctr", "cat", "/dest/from-stdin").out == "x\n"
    for hostile in (tar(("../../escape", "")), tar(("l", str(outside)), ("l/pwned", "")),
                    tar(("up", "../../../../../"))):
        r = docker("cp", "-", "ctr:/dest", input=hostile, check=False)
        assert r.rc == 1 and r.err.startswith("Error response from daemon: invalid archive entry"), r.err
    assert list(outside.iterdir()) == []
    assert docker("exec", "ctr", "sh", "-c", "ls /escape /pwned 2>&1; true").out.count("No such file") == 2


def test_docker_export(docker, busybox, tmp_path):
    docker("run", "--name", "exp", "-v", "/vol", "busybox", "sh", "-c", "echo e > /exported && echo v > /vol/v")
    with tarfile.open(fileobj=io.BytesIO(docker("export", "exp").raw)) as tf:
        names = tf.getnames()
    assert "exported" in names and "bin/busybox" in names and "vol" in names and "vol/v" not in names
    docker("export", "-o", str(tmp_path / "e.tar"), "exp")
    with tarfile.open(tmp_path / "e.tar") as tf:
        assert tf.getnames() == names
    r = docker("export", "nosuch", check=False)
    assert (r.rc, r.err) == (1, "Error response from daemon: No such container: nosuch\n")
