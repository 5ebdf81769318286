"""cli/contexttar: the planned context tar reads back, entry for entry, as tarfile reads it, and its length is exact."""

from __future__ import annotations

import io
import os
import pathlib
import socket
import tarfile
import threading

import pytest

from portside.cli.contexttar import ContextChanged, ContextTar


def _send(tar: ContextTar, use_sendfile: bool) -> bytes:
    a, b = socket.socketpair()
    out = bytearray()

    def drain() -> None:
        while chunk := b.recv(1 << 16):
            out.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        tar.send_to(a, use_sendfile)
    finally:
        a.close()
        reader.join()
        b.close()
    return bytes(out)


@pytest.mark.parametrize("use_sendfile", [True, False])
def test_entries_read_back_by_tarfile(tmp_path: pathlib.Path, use_sendfile: bool) -> None:
    big = os.urandom(300_000)  # above the in-buffer size: sent by sendfile (or pread for TLS)
    (tmp_path / "small").write_bytes(b"hello")
    (tmp_path / "big").write_bytes(big)
    os.link(tmp_path / "small", tmp_path / "hard")
    long_dir = tmp_path / "d" / ("x" * 120)
    long_dir.mkdir(parents=True)
    (long_dir / "é.txt").write_text("u")
    os.chmod(long_dir / "é.txt", 0o4755)
    os.symlink("/etc/" + "y" * 150, tmp_path / "link")
    os.utime(tmp_path / "small", (1_700_000_000.7, 1_700_000_000.7))
    names = ["small", "big", "hard", "link", "d", "d/" + "x" * 120, "d/" + "x" * 120 + "/é.txt"]
    tar = ContextTar()
    for name in names:
        tar.add_path(str(tmp_path / name), name)
    tar.add_bytes("Dockerfile", b"FROM scratch\n")
    data = _send(tar, use_sendfile)
    assert len(data) == tar.length
    assert data.endswith(bytes(1024)) and len(data) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert list(members) == [*names, "Dockerfile"]
        assert members["small"].isreg() and members["small"].mtime == 1_700_000_000  # whole seconds
        assert tf.extractfile("small").read() == b"hello"  # type: ignore[union-attr]
        assert tf.extractfile("big").read() == big  # type: ignore[union-attr]
        assert members["hard"].islnk() and members["hard"].linkname == "small"
        assert members["link"].issym() and members["link"].linkname == "/etc/" + "y" * 150
        assert members["d"].isdir() and members["d"].mode == 0o755
        assert members["d/" + "x" * 120 + "/é.txt"].mode == 0o4755
        assert tf.extractfile("Dockerfile").read() == b"FROM scratch\n"  # type: ignore[union-attr]
        assert all(m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == "" for m in members.values())


def test_a_file_that_shrinks_after_the_plan_is_an_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / "big").write_bytes(os.urandom(200_000))
    (tmp_path / "small").write_bytes(b"12345")
    for name, cut in (("big", 100_000), ("small", 2)):
        tar = ContextTar()
        tar.add_path(str(tmp_path / name), name)
        with open(tmp_path / name, "r+b") as f:
            f.truncate(cut)
        with pytest.raises(ContextChanged, match="changed size"):
            _send(tar, True)


def test_sockets_and_fifos_are_left_out(tmp_path: pathlib.Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    tar = ContextTar()
    tar.add_path(str(tmp_path / "fifo"), "fifo")
    assert tar.length == 1024
    assert _send(tar, True) == bytes(1024)


def test_names_not_in_utf8_go_as_their_bytes(tmp_path: pathlib.Path) -> None:
    raw = os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9.txt")  # Latin-1: not UTF-8
    with open(raw, "wb") as f:
        f.write(b"x")
    name = os.fsdecode(b"caf\xe9.txt")
    tar = ContextTar()
    tar.add_path(os.fsdecode(raw), name)
    data = _send(tar, True)
    assert len(data) == tar.length
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8", errors="surrogateescape") as tf:
        assert [os.fsencode(m.name) for m in tf.getmembers()] == [b"caf\xe9.txt"]


def test_a_file_swapped_for_a_fifo_or_made_unreadable_is_an_error_not_a_hang(tmp_path: pathlib.Path) -> None:
    (tmp_path / "f").write_bytes(b"12345")
    tar = ContextTar()
    tar.add_path(str(tmp_path / "f"), "f")
    os.unlink(tmp_path / "f")
    os.mkfifo(tmp_path / "f")
    with pytest.raises(ContextChanged, match="no longer a regular file"):
        _send(tar, True)
    os.unlink(tmp_path / "f")
    with pytest.raises(ContextChanged, match="error checking context"):
        _send(tar, True)
