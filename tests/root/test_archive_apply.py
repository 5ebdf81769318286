"""apply_layer on well-formed layers: what lands on disk, and what overlayfs makes of it."""

from __future__ import annotations

import io
import os
import stat
import struct
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from archive_helpers import (
    END_OF_ARCHIVE,
    NonSeekable,
    device,
    directory,
    file,
    hardlink,
    open_fds,
    pipe,
    raw_file,
    raw_pax,
    symlink,
    tar_bytes,
)

from portside.archive import (
    ApplyResult,
    Compression,
    apply_layer,
    compressing_writer,
    decompressing_reader,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod, trusted xattrs)"),
]

# security.capability, VFS_CAP_REVISION_2 | effective, permitting CAP_SETGID and
# CAP_SETUID: 0xc0 makes the value invalid UTF-8, as real capability sets often are.
CAPABILITY = struct.pack("<5I", 0x0200_0001, 0xC0, 0, 0, 0)


def apply(root: Path, data: bytes, **kwargs: int) -> ApplyResult:
    return apply_layer(pipe(data), root, **kwargs)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "layer"
    path.mkdir()
    return path


def test_every_entry_type_with_owner_mode_and_time(root: Path) -> None:
    layer = tar_bytes(
        directory("etc", mode=0o750, uid=1000, gid=1001, mtime=1_500_000_000),
        file("etc/passwd", b"root:x:0:0\n", mode=0o644, uid=1000, gid=1001, mtime=1_400_000_000),
        file("bin/su", b"\x7fELF", mode=0o4755),
        directory("tmp", mode=0o1777),
        directory("shared", mode=0o2775, gid=50),
        symlink("etc/abs", "/etc/passwd", uid=7, gid=8, mtime=1_300_000_000),
        symlink("etc/rel", "passwd"),
        hardlink("etc/passwd-", "etc/passwd"),
        device("dev/null", tarfile.CHRTYPE, 1, 3, mode=0o666),
        device("dev/loop0", tarfile.BLKTYPE, 7, 0, mode=0o660, gid=6),
        device("run/fifo", tarfile.FIFOTYPE, mode=0o600, uid=33),
    )
    result = apply(root, layer)
    # Docker's layer size: file contents, each inode once, plus symlink target lengths
    assert result == ApplyResult(size=len(b"root:x:0:0\n") + 4 + len("/etc/passwd") + len("passwd"), entries=11)

    etc = os.lstat(root / "etc")
    assert (stat.S_IFMT(etc.st_mode), stat.S_IMODE(etc.st_mode)) == (stat.S_IFDIR, 0o750)
    assert (etc.st_uid, etc.st_gid, etc.st_mtime_ns) == (1000, 1001, 1_500_000_000 * 10**9)

    passwd = os.lstat(root / "etc/passwd")
    assert (stat.S_IMODE(passwd.st_mode), passwd.st_uid, passwd.st_gid) == (0o644, 1000, 1001)
    assert passwd.st_mtime_ns == 1_400_000_000 * 10**9
    assert (root / "etc/passwd").read_bytes() == b"root:x:0:0\n"
    assert passwd.st_nlink == 2
    assert os.lstat(root / "etc/passwd-").st_ino == passwd.st_ino

    assert stat.S_IMODE(os.lstat(root / "bin/su").st_mode) == 0o4755
    assert stat.S_IMODE(os.lstat(root / "tmp").st_mode) == 0o1777
    shared = os.lstat(root / "shared")
    assert (stat.S_IMODE(shared.st_mode), shared.st_gid) == (0o2775, 50)
    # A parent the tar never listed is made like Docker makes it.
    bin_dir = os.lstat(root / "bin")
    assert (stat.S_IMODE(bin_dir.st_mode), bin_dir.st_uid) == (0o755, 0)

    link = os.lstat(root / "etc/abs")
    assert stat.S_ISLNK(link.st_mode)
    assert os.readlink(root / "etc/abs") == "/etc/passwd"
    assert (link.st_uid, link.st_gid, link.st_mtime_ns) == (7, 8, 1_300_000_000 * 10**9)
    assert os.readlink(root / "etc/rel") == "passwd"

    null = os.lstat(root / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and stat.S_IMODE(null.st_mode) == 0o666
    assert (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    loop = os.lstat(root / "dev/loop0")
    assert stat.S_ISBLK(loop.st_mode) and stat.S_IMODE(loop.st_mode) == 0o660
    assert (os.major(loop.st_rdev), os.minor(loop.st_rdev), loop.st_gid) == (7, 0, 6)
    fifo = os.lstat(root / "run/fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and (stat.S_IMODE(fifo.st_mode), fifo.st_uid) == (0o600, 33)


def test_setuid_survives_a_non_root_owner(root: Path) -> None:
    # chown clears setuid/setgid: the mode must be applied after the owner.
    apply(root, tar_bytes(file("usr/bin/newgrp", b"x", mode=0o6755, uid=1000, gid=1000)))
    st = os.lstat(root / "usr/bin/newgrp")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o6755, 1000, 1000)


def test_pax_times_keep_nanoseconds(root: Path) -> None:
    layer = tar_bytes(
        file("f", b"x", pax={"mtime": "1700000000.123456789", "atime": "1600000000.5"}),
        directory("d", pax={"mtime": "1500000000.000000001"}),
        file("old", pax={"mtime": "-86400.25"}),
    )
    apply(root, layer)
    f = os.lstat(root / "f")
    assert f.st_mtime_ns == 1_700_000_000_123_456_789
    assert f.st_atime_ns == 1_600_000_000_500_000_000
    assert os.lstat(root / "d").st_mtime_ns == 1_500_000_000_000_000_001
    assert os.lstat(root / "old").st_mtime_ns == -86_400_250_000_000


def test_directory_times_are_set_after_their_children(root: Path) -> None:
    layer = tar_bytes(
        directory("a", mtime=1_000_000_000),
        directory("a/b", mtime=1_100_000_000),
        file("a/b/f", b"data"),
        file("a/g", b"data"),
        symlink("a/b/l", "f"),
    )
    apply(root, layer)
    assert os.lstat(root / "a").st_mtime_ns == 1_000_000_000 * 10**9
    assert os.lstat(root / "a/b").st_mtime_ns == 1_100_000_000 * 10**9


def test_xattrs_including_binary_capabilities(root: Path) -> None:
    binary = CAPABILITY.decode("utf-8", "surrogateescape")
    layer = tar_bytes(
        file(
            "usr/bin/ping",
            b"\x7fELF",
            mode=0o755,
            uid=1000,
            pax={
                "SCHILY.xattr.user.comment": "hello",
                "SCHILY.xattr.security.capability": binary,
            },
        ),
        directory("data", pax={"SCHILY.xattr.user.dir": "yes"}),
        # Only the whiteout conversion may write overlayfs's own xattrs.
        file("sneaky", pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc"}),
        # An unknown namespace is refused by the kernel with ENOTSUP: skipped.
        file("odd", pax={"SCHILY.xattr.madeup.name": "x"}),
    )
    apply(root, layer)
    ping = root / "usr/bin/ping"
    assert os.getxattr(ping, "user.comment") == b"hello"
    # Set after chown, which would have cleared it.
    assert os.getxattr(ping, "security.capability") == CAPABILITY
    assert os.lstat(ping).st_uid == 1000
    assert os.getxattr(root / "data", "user.dir") == b"yes"
    assert os.listxattr(root / "sneaky") == []
    assert os.listxattr(root / "odd") == []


def test_raw_pax_headers_as_other_archivers_write_them(root: Path) -> None:
    # GNU tar writes binary xattr values raw, without hdrcharset=BINARY; git
    # archive starts with a global header. Both must read as they were meant.
    layer = (
        raw_pax([("comment", b"git archive commit id")], typeflag=b"g")
        + raw_pax([("SCHILY.xattr.security.capability", CAPABILITY), ("mtime", b"1700000000.5")])
        + raw_file(b"usr/bin/tool", b"tool")
        + raw_pax([("path", "caf\u00e9/\u00fcber".encode())])
        + raw_file(b"short-name", b"unicode")
        + END_OF_ARCHIVE
    )
    assert apply(root, layer).entries == 2
    assert os.getxattr(root / "usr/bin/tool", "security.capability") == CAPABILITY
    assert os.lstat(root / "usr/bin/tool").st_mtime_ns == 1_700_000_000_500_000_000
    assert (root / "caf\u00e9" / "\u00fcber").read_bytes() == b"unicode"


def test_whiteouts_become_overlayfs_whiteouts(root: Path) -> None:
    layer = tar_bytes(
        directory("a"),
        file("a/.wh.gone"),
        directory("b"),
        file("b/.wh..wh..opq"),
        file("b/kept", b"new"),
        file("c/.wh..wh..opq"),  # opaque directory the tar never listed
        file(".wh..wh.plnk"),  # aufs bookkeeping: ignored
        file("x", b"replaced by its whiteout"),
        file(".wh.x", uid=5, gid=6),
    )
    result = apply(root, layer)
    assert result.entries == 9
    for name, owner in (("a/gone", (0, 0)), ("x", (5, 6))):
        st = os.lstat(root / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert (st.st_uid, st.st_gid) == owner
    assert os.getxattr(root / "b", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(root / "c", "trusted.overlay.opaque") == b"y"
    assert (root / "b/kept").read_bytes() == b"new"
    leftovers = [p.name for p in root.rglob("*") if p.name.startswith(".wh.")]
    assert leftovers == []
    assert "trusted.overlay.opaque" not in os.listxattr(root / "a")


def test_later_entries_replace_earlier_ones(root: Path) -> None:
    layer = tar_bytes(
        file("f", b"first"),
        file("f", b"second", mode=0o600),
        directory("d"),
        file("d/child", b"x"),
        file("d", b"a file now"),
        symlink("s", "/nowhere"),
        directory("s", mode=0o700),
        directory("keep", mode=0o755),
        file("keep/child", b"kept"),
        directory("keep", mode=0o711, uid=3),
        file("n", b"node"),
        device("n", tarfile.FIFOTYPE),
        device("w", tarfile.FIFOTYPE),
        symlink("w", "f"),
    )
    apply(root, layer)
    assert (root / "f").read_bytes() == b"second"
    assert stat.S_IMODE(os.lstat(root / "f").st_mode) == 0o600
    assert (root / "d").read_bytes() == b"a file now"
    assert stat.S_ISDIR(os.lstat(root / "s").st_mode)
    keep = os.lstat(root / "keep")
    assert (stat.S_IMODE(keep.st_mode), keep.st_uid) == (0o711, 3)
    assert (root / "keep/child").read_bytes() == b"kept"
    assert stat.S_ISFIFO(os.lstat(root / "n").st_mode)
    assert os.readlink(root / "w") == "f"


def test_hardlinks_to_symlinks_and_nested_paths(root: Path) -> None:
    layer = tar_bytes(
        file("usr/lib/libc.so.6", b"libc", mode=0o755),
        symlink("usr/lib/libc.so", "libc.so.6"),
        hardlink("lib/libc.so.6", "/usr/lib/libc.so.6"),  # absolute: relative to the layer
        hardlink("lib/libc.so", "./usr/lib/libc.so"),
    )
    apply(root, layer)
    assert os.lstat(root / "lib/libc.so.6").st_ino == os.lstat(root / "usr/lib/libc.so.6").st_ino
    # Linked, not followed: the link is a second name of the symlink itself.
    assert os.lstat(root / "lib/libc.so").st_ino == os.lstat(root / "usr/lib/libc.so").st_ino
    assert os.readlink(root / "lib/libc.so") == "libc.so.6"


def test_long_names_gnu_and_pax(root: Path) -> None:
    deep = "/".join(["component-of-a-long-path"] * 12)
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        apply(
            root, tar_bytes(file(f"{deep}/file", b"x"), symlink(f"{deep}/link", "t" * 300), fmt=fmt)
        )
        assert (root / deep / "file").read_bytes() == b"x"
        assert os.readlink(root / deep / "link") == "t" * 300


def test_root_entry_sets_the_root_metadata(root: Path) -> None:
    apply(root, tar_bytes(directory("./", mode=0o711, mtime=1_234_567_890), file("./a", b"")))
    st = os.lstat(root)
    assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (0o711, 1_234_567_890 * 10**9)


def test_numeric_owner_ignores_names(root: Path) -> None:
    entry = file("f", b"", uid=4242, gid=4343)
    entry.info.uname, entry.info.gname = "root", "root"
    apply(root, tar_bytes(entry))
    st = os.lstat(root / "f")
    assert (st.st_uid, st.st_gid) == (4242, 4343)


def test_empty_stream_is_an_empty_layer(root: Path) -> None:
    assert apply(root, b"") == ApplyResult(size=0, entries=0)
    assert apply(root, END_OF_ARCHIVE) == ApplyResult(size=0, entries=0)
    assert list(root.iterdir()) == []


def test_the_whole_stream_is_consumed(root: Path) -> None:
    # Callers hash the stream as apply_layer reads it; padding and junk after
    # the end-of-archive blocks are part of the digest.
    data = tar_bytes(file("f", b"x" * 5000)) + b"\0" * 70_000 + b"trailing junk"
    source = NonSeekable(data)
    apply_layer(cast(BinaryIO, source), root)
    assert source.consumed == len(data)


def test_a_layer_without_end_of_archive_blocks(root: Path) -> None:
    # Go's archive/tar accepts a stream that stops cleanly between entries.
    apply(root, tar_bytes(file("a", b"1"), file("b", b"2"), trailer=False))
    assert (root / "b").read_bytes() == b"2"


@pytest.mark.parametrize("compression", list(Compression))
def test_compressed_layers(root: Path, compression: Compression) -> None:
    content = os.urandom(3 << 20)
    blob = io.BytesIO()
    with compressing_writer(blob, compression) as writer:
        writer.write(tar_bytes(file("big", content), file("small", b"s")))
    detected, plain = decompressing_reader(pipe(blob.getvalue()))
    assert detected is compression
    result = apply_layer(plain, root)
    assert result.size == len(content) + 1
    assert (root / "big").read_bytes() == content


def test_many_small_files_and_no_fd_leak(root: Path) -> None:
    entries = []
    for d in range(20):
        entries.append(directory(f"usr/share/d{d}"))
        entries.extend(file(f"usr/share/d{d}/f{i}", b"%d" % i) for i in range(50))
        entries.append(file(f"usr/share/d{d}/sub/deeper/f", b"deep"))
    before = open_fds()
    result = apply(root, tar_bytes(*entries))
    assert open_fds() == before
    assert result.entries == 20 * 52
    assert (root / "usr/share/d19/f49").read_bytes() == b"49"
    assert (root / "usr/share/d7/sub/deeper/f").read_bytes() == b"deep"


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    lower, upper, merged = tmp_path / "lower", tmp_path / "upper", tmp_path / "merged"
    for path in (lower, upper, merged):
        path.mkdir()
    yield lower, upper, merged
    if os.path.ismount(merged):
        subprocess.run(["umount", str(merged)], check=True)


def test_overlayfs_honours_the_converted_whiteouts(mounted: tuple[Path, Path, Path]) -> None:
    lower, upper, merged = mounted
    apply(
        lower,
        tar_bytes(
            directory("d"),
            file("d/old", b"lower"),
            file("gone", b"lower"),
            directory("o"),
            file("o/lowerfile", b"lower"),
            directory("replaced"),
            file("replaced/inside", b"lower"),
        ),
    )
    apply(
        upper,
        tar_bytes(
            file("d/new", b"upper"),
            file(".wh.gone"),
            directory("o"),
            file("o/.wh..wh..opq"),
            file("o/upperfile", b"upper"),
            file(".wh.replaced"),
            file("replaced", b"now a file"),
        ),
    )
    try:
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}", str(merged)],
            check=True,
        )
        assert sorted(os.listdir(merged)) == ["d", "o", "replaced"]
        assert sorted(os.listdir(merged / "d")) == ["new", "old"]
        assert os.listdir(merged / "o") == ["upperfile"]
        assert (merged / "replaced").read_bytes() == b"now a file"
    finally:
        if os.path.ismount(merged):
            subprocess.run(["umount", str(merged)], check=True)
