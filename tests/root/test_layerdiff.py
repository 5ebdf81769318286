"""write_layer_diff and mount_placeholders on real overlayfs upper directories.

Changes are made through a real overlay mount (lower = a layer, upper = the
container layer), so the whiteouts, opaque directories and copy-ups are the
kernel's own; the diff is then applied with apply_layer on top of the lower
layer and the result compared with what the container saw.
"""

from __future__ import annotations

import io
import os
import socket
import stat
import struct
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portside.archive import apply_layer
from portside.archive.layerdiff import DiffResult, mount_placeholders, write_layer_diff

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (overlayfs, mknod, trusted xattrs)"),
]

# security.capability revision 3: revision 2's 20 bytes and a namespace root id
CAP_V3 = struct.pack("<6I", 0x0300_0001, 0xC0, 0, 0, 0, 1000)
CAP_V2 = struct.pack("<5I", 0x0200_0001, 0xC0, 0, 0, 0)
T0 = 1_600_000_000


class Layers:
    """A lower layer, a container layer (upper) and the overlay of both, mounted on demand."""

    def __init__(self, base: Path) -> None:
        self.lower, self.upper, self.work, self.merged = (base / n for n in ("lower", "upper", "work", "merged"))
        for d in (self.lower, self.upper, self.work, self.merged):
            d.mkdir()

    def mount(self, lowers: list[Path] | None = None) -> None:
        lowerdir = ":".join(str(p) for p in (lowers or [self.lower]))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={lowerdir},upperdir={self.upper},workdir={self.work},index=off",
                        str(self.merged)], check=True)

    def umount(self) -> None:
        if os.path.ismount(self.merged):
            subprocess.run(["umount", str(self.merged)], check=True)


@pytest.fixture
def layers(tmp_path: Path) -> Iterator[Layers]:
    lay = Layers(tmp_path)
    try:
        yield lay
    finally:
        lay.umount()


def diff(upper: Path, skip: frozenset[str] = frozenset()) -> tuple[bytes, DiffResult]:
    out = io.BytesIO()
    result = write_layer_diff(str(upper), out.write, skip=skip)
    return out.getvalue(), result


def entries(data: bytes) -> list[tuple[object, ...]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [(m.name, m.type, oct(m.mode), m.uid, m.gid, m.size, m.linkname) for m in tf]


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [m.name for m in tf]


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a container sees of a tree: kinds, modes, owners, contents, links, xattrs (not overlay's)."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            content: object = None
            if stat.S_ISREG(st.st_mode):
                content = Path(path).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                content = st.st_rdev
            xattrs = sorted((k, os.getxattr(path, k, follow_symlinks=False))
                            for k in os.listxattr(path, follow_symlinks=False) if not k.startswith("trusted.overlay."))
            mtime = None if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns // 10**9
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, content, xattrs, mtime)
    return out


def _populate_lower(lower: Path) -> None:
    for d in ("bin", "etc", "var/spool/mail", "var/www", "keep", "proc"):
        (lower / d).mkdir(parents=True)
    for f, data in (("bin/cat", b"cat"), ("bin/ls", b"ls"), ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
                    ("var/spool/mail/old", b"old"), ("keep/file", b"keep")):
        (lower / f).write_bytes(data)


def test_a_container_layer_becomes_a_layer_tar_that_recreates_it(layers: Layers, tmp_path: Path) -> None:
    _populate_lower(layers.lower)
    layers.mount()
    m = layers.merged
    (m / "etc/newfile").write_bytes(b"hi\n")
    os.chown(m / "etc/newfile", 5, 6)
    os.setxattr(m / "etc/newfile", "user.note", b"\xffbinary")
    os.link(m / "etc/newfile", m / "etc/hl")
    (m / "bin/cat").unlink()
    subprocess.run(["rm", "-rf", str(m / "var/spool")], check=True)
    (m / "var/spool/x").mkdir(parents=True)
    os.mkfifo(m / "fifo")
    os.mknod(m / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.chmod(m / "null", 0o620)
    os.symlink("/etc/passwd", m / "link")
    os.utime(m / "link", ns=(T0 * 10**9 + 5, T0 * 10**9 + 5), follow_symlinks=False)
    (m / "capped").write_bytes(b"#!")
    os.setxattr(m / "capped", "security.capability", CAP_V3)
    (m / "big").write_bytes(os.urandom(100_000))
    long_name = "d" * 120
    (m / long_name).mkdir()
    (m / long_name / "é-ünïcode").write_bytes(b"u")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(m / "sock"))
    sock.close()
    before = snapshot(m)
    layers.umount()

    data, result = diff(layers.upper)
    assert result.size == len(data) and data.endswith(b"\0" * 1024) and len(data) % 512 == 0
    listed = names(data)
    assert listed == [
        "big", "bin", "bin/.wh.cat", "capped", long_name, f"{long_name}/é-ünïcode", "etc", "etc/hl", "etc/newfile",
        "fifo", "link", "null", "var", "var/spool", "var/spool/.wh..wh..opq", "var/spool/x"]
    assert result.entries == len(listed)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = {m.name: m for m in tf}
    assert members["etc/hl"].isreg() and members["etc/hl"].size == 3
    assert members["etc/newfile"].islnk() and members["etc/newfile"].linkname == "etc/hl"
    assert (members["etc/hl"].uid, members["etc/hl"].gid, members["etc/hl"].uname) == (5, 6, "")
    assert members["etc/hl"].pax_headers["SCHILY.xattr.user.note"].encode("utf-8", "surrogateescape") == b"\xffbinary"
    assert members["capped"].pax_headers["SCHILY.xattr.security.capability"].encode(
        "utf-8", "surrogateescape") == CAP_V2
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for m in members.values() for k in m.pax_headers)
    wh = members["bin/.wh.cat"]
    assert (wh.type, wh.mode, wh.size) == (tarfile.REGTYPE, 0o600, 0)
    opq = members["var/spool/.wh..wh..opq"]
    assert (opq.type, opq.mode, opq.mtime) == (tarfile.REGTYPE, 0o755, 0)
    assert members["null"].ischr() and (members["null"].devmajor, members["null"].devminor) == (1, 3)
    assert members["null"].mode == 0o620
    assert members["fifo"].isfifo()
    assert members["link"].issym() and members["link"].linkname == "/etc/passwd" and members["link"].mtime == T0

    # Applied onto the lower layer, the diff gives back what the container saw.
    applied = tmp_path / "applied"
    applied.mkdir()
    apply_layer(io.BytesIO(data), applied)
    after_base = tmp_path / "after"
    after_base.mkdir()
    again = Layers(after_base)
    try:
        again.mount([applied, layers.lower])
        after = snapshot(again.merged)
    finally:
        again.umount()
    before.pop("sock")  # sockets are not archived (Docker skips them too)
    capped = before["capped"]
    before["capped"] = (*capped[:5], [("security.capability", CAP_V2)], capped[6])
    assert after == before


def test_the_same_upper_gives_the_same_bytes(layers: Layers) -> None:
    _populate_lower(layers.lower)
    layers.mount()
    for i in range(30):
        (layers.merged / "etc" / f"f{i:02}").write_bytes(b"x" * i)
    os.link(layers.merged / "etc/f03", layers.merged / "etc/a-link")
    (layers.merged / "keep/file").unlink()
    layers.umount()
    first, _ = diff(layers.upper)
    second, _ = diff(layers.upper)
    assert first == second
    # depth first, names by their bytes: "etc/a-link" holds the data, "etc/f03" links to it
    assert names(first)[:3] == ["etc", "etc/a-link", "etc/f00"]
    assert [e for e in entries(first) if e[0] == "etc/f03"][0][1] == tarfile.LNKTYPE


def test_an_empty_upper_is_an_empty_tar(layers: Layers) -> None:
    data, result = diff(layers.upper)
    assert (data, result.entries) == (b"\0" * 1024, 0)


def test_skipped_paths_and_their_subtrees_are_left_out(layers: Layers) -> None:
    for d in ("a/b", "c"):
        (layers.upper / d).mkdir(parents=True)
    (layers.upper / "a/b/f").write_bytes(b"f")
    (layers.upper / "c/g").write_bytes(b"g")
    data, _ = diff(layers.upper, frozenset({"a/b", "c/g"}))
    assert names(data) == ["a", "c"]


def test_nothing_in_the_upper_is_followed(layers: Layers, tmp_path: Path) -> None:
    """Symlinks are written as symlinks, a fifo is not opened, a symlinked directory is not entered."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"host secret")
    os.symlink(outside, layers.upper / "dir-link")
    os.symlink(outside / "secret", layers.upper / "file-link")
    os.mkfifo(layers.upper / "fifo")
    done: list[bytes] = []
    writer = threading.Thread(target=lambda: done.append(diff(layers.upper)[0]), daemon=True)
    writer.start()
    writer.join(20)
    assert done, "writing the diff blocked (a fifo was opened?)"
    assert b"host secret" not in done[0]
    assert [e[:2] for e in entries(done[0])] == [("dir-link", tarfile.SYMTYPE), ("fifo", tarfile.FIFOTYPE),
                                                 ("file-link", tarfile.SYMTYPE)]


def test_a_file_replaced_while_read_is_left_out_or_written_whole(layers: Layers) -> None:
    """Between listing and reading, an entry may change (a container that was not paused)."""
    (layers.upper / "a").write_bytes(b"a" * 10)
    (layers.upper / "b").write_bytes(b"b" * 10)
    out = io.BytesIO()
    seen: list[int] = []

    def write(chunk: bytes) -> None:
        out.write(chunk)
        seen.append(len(chunk))
        if len(seen) == 1:  # the header of "a" is out: "b" goes, "a" shrinks
            (layers.upper / "b").unlink()
            os.truncate(layers.upper / "a", 4)

    write_layer_diff(str(layers.upper), write)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == ["a"]
        data = tf.extractfile(members[0])
        assert data is not None and len(data.read()) == members[0].size


# -- mount placeholders --------------------------------------------------------------


def _runtime_mounts(root: Path, points: list[str], files: set[str]) -> None:
    """What the runtime does before mounting: make missing mount points (as runtime/init does)."""
    for point in points:
        target = root / point.lstrip("/")
        if point in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.touch()
        else:
            target.mkdir(parents=True, exist_ok=True)


POINTS = ["/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
FILES = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}


def placeholders(layers: Layers) -> frozenset[str]:
    return mount_placeholders(str(layers.upper), [str(layers.lower)], POINTS)


def test_mount_points_the_runtime_made_are_placeholders(layers: Layers) -> None:
    _populate_lower(layers.lower)  # has /etc and /proc, lacks /sys, /dev and the etc files
    layers.mount()
    _runtime_mounts(layers.merged, POINTS, FILES)
    (layers.merged / "data").mkdir()  # a volume's mount point: kept, as dockerd keeps it
    layers.umount()
    skip = placeholders(layers)
    assert skip == {"sys", "dev", "etc", "etc/hosts", "etc/hostname", "etc/resolv.conf"}
    data, _ = diff(layers.upper, skip)
    assert names(data) == ["data"]


def test_a_changed_directory_holding_placeholders_stays(layers: Layers) -> None:
    _populate_lower(layers.lower)
    layers.mount()
    _runtime_mounts(layers.merged, POINTS, FILES)
    (layers.merged / "etc/motd").write_bytes(b"hello")
    os.chmod(layers.merged / "bin", 0o700)  # copied up for a mode change only
    layers.umount()
    skip = placeholders(layers)
    assert "etc" not in skip and "etc/hosts" in skip
    data, _ = diff(layers.upper, skip)
    assert names(data) == ["bin", "etc", "etc/motd"]


def test_a_directory_whose_mode_changed_is_not_a_placeholder_parent(layers: Layers) -> None:
    _populate_lower(layers.lower)
    layers.mount()
    _runtime_mounts(layers.merged, POINTS, FILES)
    os.chmod(layers.merged / "etc", 0o700)
    layers.umount()
    skip = placeholders(layers)
    assert "etc" not in skip
    assert names(diff(layers.upper, skip)[0]) == ["etc"]


def test_written_or_replaced_mount_points_are_not_placeholders(layers: Layers) -> None:
    """A non-empty file, a non-empty or opaque directory at a mount point is a change of the container's."""
    (layers.lower / "dev").mkdir()
    (layers.lower / "dev/old").write_bytes(b"")
    layers.mount()
    (layers.merged / "etc").mkdir()
    (layers.merged / "etc/hosts").write_bytes(b"127.0.0.1 me\n")
    subprocess.run(["rm", "-rf", str(layers.merged / "dev")], check=True)
    (layers.merged / "dev").mkdir()  # opaque now: it hides the lower /dev/old
    (layers.merged / "proc").mkdir()
    (layers.merged / "proc/x").write_bytes(b"")
    layers.umount()
    assert placeholders(layers) == frozenset()


def test_placeholders_are_found_without_following_symlinks(layers: Layers, tmp_path: Path) -> None:
    host = tmp_path / "host-etc"
    host.mkdir()
    (host / "hosts").write_bytes(b"")
    os.symlink(host, layers.upper / "etc")
    assert placeholders(layers) == frozenset()
