"""``portside cp`` and ``portside export`` end to end, against portside and the reference dockerd 20.10.

Every test runs twice through the ``engine`` fixture of test_cli_containers:
the same portside CLI against a portside daemon and against a private
dockerd. Where the two engines answer the same, the test asserts one
expectation for both; that is the point of running it twice.
"""

from __future__ import annotations

import io
import os
import pty
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from test_cli_containers import FOREVER, Engine, dockerd_engine, engine, err, out  # noqa: F401 (fixtures)

pytestmark = pytest.mark.root

TREE = "mkdir -p /d/sub && echo hi > /d/a.txt && echo x > /d/sub/b && ln -s a.txt /d/rel && ln -s /d /dl && touch /ready"


def start_tree(engine: Engine, name: str) -> None:
    engine.cli("run", "-d", "--name", name, "busybox", "sh", "-c", f"{TREE}; {FOREVER}")
    deadline = time.monotonic() + 30
    while engine.cli("cp", f"{name}:/ready", "-", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the container never made its files"
        time.sleep(0.1)


def tree(path: Path) -> dict[str, str]:
    """What is below ``path``: files with their content, links with their target, directories."""
    found = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        if p.is_symlink():
            found[rel] = "-> " + os.readlink(p)
        elif p.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = p.read_text()
    return found


def test_cp_from_a_container(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start_tree(engine, "src")
    monkeypatch.chdir(tmp_path)
    assert out(engine.cli("cp", "src:/d/a.txt", ".")) == ""  # quiet: stdout is not a terminal
    assert out(engine.cli("cp", "src:/d/a.txt", "renamed.txt")) == ""
    engine.cli("cp", "src:/d", "copy")  # a new name for a directory
    engine.cli("cp", "src:/d", "copy")  # again: now into it
    engine.cli("cp", "src:/d/.", "contents")
    engine.cli("cp", "src:/d/rel", "link")
    engine.cli("cp", "-L", "src:/d/rel", "followed")
    engine.cli("cp", "--follow-link", "src:/dl", "dir-via-link")
    assert tree(tmp_path) == {
        "a.txt": "hi\n", "renamed.txt": "hi\n",
        "copy": "dir", "copy/a.txt": "hi\n", "copy/rel": "-> a.txt", "copy/sub": "dir", "copy/sub/b": "x\n",
        "copy/d": "dir", "copy/d/a.txt": "hi\n", "copy/d/rel": "-> a.txt", "copy/d/sub": "dir", "copy/d/sub/b": "x\n",
        "contents": "dir", "contents/a.txt": "hi\n", "contents/rel": "-> a.txt", "contents/sub": "dir",
        "contents/sub/b": "x\n",
        "link": "-> a.txt", "followed": "hi\n",
        "dir-via-link": "dir", "dir-via-link/a.txt": "hi\n", "dir-via-link/rel": "-> a.txt",
        "dir-via-link/sub": "dir", "dir-via-link/sub/b": "x\n",
    }

    r = engine.cli("cp", "src:/d/sub", "-")
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tf:
        assert [(m.name, m.type) for m in tf] == [("sub", tarfile.DIRTYPE), ("sub/b", tarfile.REGTYPE)]


def test_cp_from_a_container_errors(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start_tree(engine, "src2")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    cases = {
        ("src2:/nonexist", "."): "Error response from daemon: Could not find the file /nonexist in container src2\n",
        ("nosuch:/etc", "."): "Error response from daemon: No such container: nosuch\n",
        ("src2:/d", "file"): "cannot copy directory\n",
        ("src2:/d/a.txt", "nodir/"): "no such directory\n",
        ("src2:/d/a.txt", "nodir/x"): f'invalid output path: directory "{tmp_path}/nodir" does not exist\n',
        ("src2:/d/a.txt", "/dev/null"):
            'invalid output path: "/dev/null" must be a directory or a regular file: got a device\n',
    }
    for (source, dest), message in cases.items():
        r = engine.cli("cp", source, dest, check=False)
        assert (r.returncode, err(r)) == (1, message), (source, dest)
    assert tree(tmp_path) == {"file": ""}


def test_cp_to_a_container(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start_tree(engine, "dst")
    (tmp_path / "local.txt").write_text("hello\n")
    (tmp_path / "ldir" / "sub").mkdir(parents=True)
    (tmp_path / "ldir" / "sub" / "f").write_text("1\n")
    (tmp_path / "ldir" / "link").symlink_to("sub/f")
    monkeypatch.chdir(tmp_path)
    engine.cli("cp", "local.txt", "dst:/tmp/")
    engine.cli("cp", "local.txt", "dst:/tmp/renamed.txt")
    engine.cli("cp", str(tmp_path / "ldir"), "dst:/tmp/")
    engine.cli("cp", "ldir", "dst:/tmp/ldir-new")
    engine.cli("cp", "ldir/.", "dst:/tmp/ldir-dot")
    engine.cli("cp", "local.txt", "dst:/dl")  # into a directory through a symlink
    with tarfile.open(fileobj=(buf := io.BytesIO()), mode="w") as tf:
        info = tarfile.TarInfo("from-stdin")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"in\n"))
    engine.cli("cp", "-", "dst:/tmp", input=buf.getvalue())

    listing = out(engine.cli("exec", "dst", "sh", "-c", "cd /tmp && find . | sort && cat renamed.txt from-stdin "
                                                        "&& readlink ldir/link && cat /d/local.txt"))
    assert listing == ("\n".join([".", "./from-stdin", "./ldir", "./ldir-dot", "./ldir-dot/link", "./ldir-dot/sub",
                                  "./ldir-dot/sub/f", "./ldir-new", "./ldir-new/link", "./ldir-new/sub",
                                  "./ldir-new/sub/f", "./ldir/link", "./ldir/sub", "./ldir/sub/f", "./local.txt",
                                  "./renamed.txt"]) + "\nhello\nin\nsub/f\nhello\n")


def test_cp_to_a_container_errors(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start_tree(engine, "dst2")
    (tmp_path / "local.txt").write_text("hello\n")
    (tmp_path / "ldir").mkdir()
    monkeypatch.chdir(tmp_path)
    cases = {
        ("ldir", "dst2:/d/a.txt"): "cannot copy directory\n",
        ("local.txt", "dst2:/nonexist/"): "no such directory\n",
        ("local.txt", "dst2:/nonexist/x"): "Error response from daemon: Could not find the file /nonexist in container dst2\n",
        ("nolocal", "dst2:/tmp/"): f"lstat {tmp_path}/nolocal: no such file or directory\n",
        ("-", "dst2:/d/a.txt"): 'destination "dst2:/d/a.txt" must be a directory\n',
        ("local.txt", "nosuch:/tmp"): "Error response from daemon: No such container: nosuch\n",
        ("a", "b"): "must specify at least one container source\n",
        ("dst2:/a", "dst2:/b"): "copying between containers is not supported\n",
        ("", "dst2:/b"): "source can not be empty\n",
        ("dst2:/b", ""): "destination can not be empty\n",
    }
    for (source, dest), message in cases.items():
        r = engine.cli("cp", source, dest, check=False, input=b"")
        assert (r.returncode, err(r)) == (1, message), (source, dest)
    r = engine.cli("cp", "only-one", check=False)
    assert r.returncode == 1 and err(r).startswith('"portside cp" requires exactly 2 arguments.')


def test_cp_with_a_stopped_container_and_archive_mode(engine: Engine, tmp_path: Path) -> None:
    engine.cli("create", "--name", "stopped", "--user", "www-data", "busybox", "sh", "-c",
               "cat /tmp/in.txt; stat -c '%u:%g' /tmp/in.txt /tmp/owned.txt")
    (tmp_path / "in.txt").write_text("into a created container\n")
    (tmp_path / "owned.txt").write_text("")
    os.chown(tmp_path / "in.txt", 1234, 4321)
    engine.cli("cp", str(tmp_path / "in.txt"), "stopped:/tmp/")
    engine.cli("cp", "-a", str(tmp_path / "owned.txt"), "stopped:/tmp/")
    r = engine.cli("start", "-a", "stopped")
    assert out(r) == "into a created container\n1234:4321\n33:33\n"
    engine.cli("cp", "stopped:/tmp/in.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "into a created container\n"
    assert os.stat(tmp_path / "back.txt").st_uid == 0  # the client never chowns (NoLchown)


def test_cp_progress_shows_only_on_a_terminal(engine: Engine, tmp_path: Path) -> None:
    start_tree(engine, "src3")
    r = engine.cli("cp", "-q=false", "src3:/d/a.txt", str(tmp_path / "a"))
    assert err(r) == f"Successfully copied 2.05kB to {tmp_path}/a\n"  # the bytes of tar, as docker 28
    r = engine.cli("cp", "-q=false", str(tmp_path / "a"), "src3:/tmp/a")
    assert err(r) == "Successfully copied 2.05kB to src3:/tmp/a\n"
    assert err(engine.cli("cp", str(tmp_path / "a"), "src3:/tmp/b")) == ""


def test_export(engine: Engine, tmp_path: Path) -> None:
    engine.cli("run", "--name", "exp", "-v", "/vol", "busybox", "sh", "-c", "echo e > /exported; echo v > /vol/v")
    r = engine.cli("export", "exp")
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tf:
        names = {m.name: m for m in tf}
    assert names["exported"].isfile() and names["bin"].isdir()
    assert "vol" in names and "vol/v" not in names  # the volume's mount point, not its content
    assert not any(name.startswith("./") or name.startswith("/") for name in names)

    engine.cli("export", "-o", str(tmp_path / "exp.tar"), "exp")
    assert (tmp_path / "exp.tar").stat().st_mode & 0o777 == 0o600
    with tarfile.open(tmp_path / "exp.tar") as tf:
        assert "exported" in tf.getnames()

    r = engine.cli("export", "-o", str(tmp_path / "nodir" / "x.tar"), "exp", check=False)
    assert (r.returncode, err(r)) == (
        1, f"failed to export container: invalid output path: stat {tmp_path}/nodir: no such file or directory\n")
    r = engine.cli("export", "-o", str(tmp_path), "exp", check=False)
    assert (r.returncode, err(r)) == (1, "failed to export container: cannot write to a directory\n")
    r = engine.cli("export", "-o", str(tmp_path / "missing.tar"), "nosuch", check=False)
    assert (r.returncode, err(r)) == (1, "Error response from daemon: No such container: nosuch\n")
    assert not (tmp_path / "missing.tar").exists()

    # Never a tar to a terminal.
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(engine.argv("export", "exp"), stdout=follower, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env={**os.environ, **engine.env}, timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    assert (proc.returncode, proc.stderr.decode()) == (
        1, "cowardly refusing to save to a terminal. Use the -o flag or redirect\n")
