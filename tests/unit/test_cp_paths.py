"""The path rules of cp without a daemon: in-root lookup (archive.rootpath), the tar builder's
entries (archive.tarbuild), and docker's local copy rules (cli.localcopy)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from portside.archive.rootpath import Root, asserts_directory, base_name, clean
from portside.archive.tarbuild import TarBuilder
from portside.cli import localcopy
from portside.cli.commands.cp import split_cp_arg


@pytest.fixture
def root(tmp_path: Path) -> Root:
    """A container-like tree with links that would escape if the kernel followed them from the host."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("container passwd\n")
    (tmp_path / "abs").symlink_to("/etc")  # absolute: the root's /etc, not the host's
    (tmp_path / "up").symlink_to("../../../../..")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "file").write_text("f")
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    yield Root(fd)
    os.close(fd)


def read(root: Root, path: str) -> str:
    with root.lookup(path, follow=True) as entry:
        fd = entry.open(os.O_RDONLY)
        try:
            return os.read(fd, 100).decode()
        finally:
            os.close(fd)


def test_lookup_resolves_symlinks_inside_the_root(root: Root) -> None:
    assert read(root, "/abs/passwd") == "container passwd\n"
    assert read(root, "/up/etc/passwd") == "container passwd\n"
    assert read(root, "/up/up/abs/../etc/passwd") == "container passwd\n"
    with root.lookup("/abs", follow=False) as entry:
        assert (entry.name, entry.path) == ("abs", "/abs")
    with root.lookup("/abs", follow=True) as entry:
        assert entry.path == "/etc"
    with root.lookup("/up", follow=True) as entry:
        assert (entry.name, entry.path) == (".", "/")
    with pytest.raises(FileNotFoundError):
        root.lookup("/abs/shadow", follow=False)
    with pytest.raises(NotADirectoryError):
        root.lookup("/file/x", follow=False)
    with pytest.raises(OSError):
        root.lookup("/loop", follow=True)
    assert root.resolve("/abs/passwd") == "/etc/passwd"
    assert root.resolve("/up") == "/"
    assert root.resolve("/abs/missing/deeper") == "/etc/missing/deeper"


def test_docker_s_path_helpers() -> None:
    assert [clean(p) for p in ("", "a/../..", "//x//y/", "/a/./b/..")] == ["/", "/", "/x/y", "/a"]
    assert [base_name(p) for p in ("/", "/a/", "/a/.", "")] == ["/", "a", ".", "."]
    assert [asserts_directory(p) for p in ("/a/", "/a/.", ".", "/a")] == [True, True, True, False]


def test_tar_builder_writes_what_moby_writes(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b").write_text("b")
    (tmp_path / "d" / "a").write_text("a")
    os.link(tmp_path / "d" / "a", tmp_path / "d" / "sub" / "hard")
    (tmp_path / "d" / "link").symlink_to("a")
    out = io.BytesIO()
    builder = TarBuilder(out.write)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        builder.add(fd, "d", "top")
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        builder.add_tree(child, "top/")
        os.close(child)
    finally:
        os.close(fd)
    builder.close()
    data = out.getvalue()
    assert len(data) % 512 == 0 and data.endswith(bytes(1024))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        got = [(m.name, m.type, m.linkname, m.uname) for m in tf]
    assert got == [("top", tarfile.DIRTYPE, "", ""), ("top/a", tarfile.REGTYPE, "", ""),
                   ("top/b", tarfile.REGTYPE, "", ""), ("top/link", tarfile.SYMTYPE, "a", ""),
                   ("top/sub", tarfile.DIRTYPE, "", ""), ("top/sub/hard", tarfile.LNKTYPE, "top/a", "")]
    assert data[:4] == b"top/" and data[100:108] == b"0040755\x00"


def test_split_cp_arg() -> None:
    assert split_cp_arg("ctr:/etc") == ("ctr", "/etc")
    assert split_cp_arg("/abs:olute") == ("", "/abs:olute")
    assert split_cp_arg("./rel:ative") == ("", "./rel:ative")
    assert split_cp_arg("local") == ("", "local")
    assert split_cp_arg("ctr:") == ("ctr", "")


def test_local_copy_rules(tmp_path: Path) -> None:
    assert localcopy.clean("a/../../b") == "../b" and localcopy.clean("/../a/") == "/a"
    assert localcopy.split_path_dir_entry("/a/b/.") == ("/a/b", ".")
    assert localcopy.split_path_dir_entry("/a/b/") == ("/a", "b")
    assert localcopy.preserve_trailing_dot_or_separator("/a/b", "x/b/.") == "/a/b/."
    assert localcopy.get_rebase_name("/x/link/", "/y/target") == ("/y/target/", "link")

    dir_info = localcopy.CopyInfo("/src/dir", exists=True, is_dir=True)
    file_info = localcopy.CopyInfo("/src/f", exists=True)
    assert localcopy.prepare_archive_copy(file_info, localcopy.CopyInfo("/dst", True, True)) == ("/dst", None)
    assert localcopy.prepare_archive_copy(file_info, localcopy.CopyInfo("/dst/new")) == ("/dst", "new")
    assert localcopy.prepare_archive_copy(dir_info, localcopy.CopyInfo("/dst/new")) == ("/dst", "new")
    with pytest.raises(localcopy.CopyError, match="cannot copy directory"):
        localcopy.prepare_archive_copy(dir_info, localcopy.CopyInfo("/dst/f", exists=True))
    with pytest.raises(localcopy.CopyError, match="no such directory"):
        localcopy.prepare_archive_copy(file_info, localcopy.CopyInfo("/dst/new/"))

    rename = localcopy.rebaser(".", "x")
    assert [rename(n) for n in ("./", "./a", ".hidden")] == ["x/", "x/a", ".hidden"]
    assert localcopy.rebaser("a", "b")("ab/c") == "ab/c"

    (tmp_path / "link").symlink_to("target")
    assert localcopy.copy_info_destination_path(str(tmp_path / "link")) == localcopy.CopyInfo(str(tmp_path / "target"))


def test_local_untar_never_writes_through_a_symlink(tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()

    def tar(*entries: tarfile.TarInfo) -> io.BytesIO:
        bio = io.BytesIO()
        with tarfile.open(fileobj=bio, mode="w") as tf:
            for e in entries:
                tf.addfile(e, io.BytesIO(b"x" * e.size) if e.isreg() else None)
        bio.seek(0)
        return bio

    link = tarfile.TarInfo("l")
    link.type, link.linkname = tarfile.SYMTYPE, str(outside)
    through = tarfile.TarInfo("l/pwned")
    through.size = 1
    with pytest.raises(localcopy.CopyError, match="is not a directory inside"):
        localcopy.untar(tar(link, through), str(dest), lambda n: n)
    escape = tarfile.TarInfo("../escape")
    escape.size = 1
    with pytest.raises(localcopy.CopyError, match="is outside of"):
        localcopy.untar(tar(escape), str(dest), lambda n: n)
    up = tarfile.TarInfo("up")
    up.type, up.linkname = tarfile.SYMTYPE, "../.."
    with pytest.raises(localcopy.CopyError, match="invalid symlink"):
        localcopy.untar(tar(up), str(dest), lambda n: n)
    assert list(outside.iterdir()) == [] and not (tmp_path / "escape").exists()
