"""A container layer (an overlayfs upper directory) written out as an OCI/Docker layer tar.

The inverse of ``archive.apply``: overlay whiteouts (0/0 character devices)
become ``.wh.NAME`` entries and an opaque directory (``trusted.overlay.opaque``
= ``y``) gets a ``.wh..wh..opq`` entry right after its own, as dockerd's
overlay2 driver writes them.

The output is a function of the directory alone, so the same changes give the
same diff ID: entries go depth first, each directory's names sorted by their
bytes, a directory before what it holds (Go's filepath.Walk, which dockerd's
archiver uses); a hard-linked inode is written in full at its first name and
as links to it afterwards. Headers are ustar with pax records only where a
value does not fit (long or non-ASCII names, xattrs, big ids); mtimes are whole
seconds and there are no atimes or ctimes (as dockerd); modes carry no file
type bits and user/group names are left empty (dockerd looks the ids up in the
host's /etc/passwd, which knows nothing of the image's users; containerd
leaves them empty too). The archive ends with the two zero blocks, unpadded.

Left out: the upper directory itself, sockets (Docker skips them too), the
``skip`` paths, and an entry that vanishes or changes kind while it is read
(only a container that is not paused can do that). xattrs are kept except
overlayfs's own ``trusted.overlay.*``; a ``security.capability`` of revision 3
(with a namespace root id) is written as revision 2, as dockerd does.

The upper directory is written by the container, maybe while we read it:
nothing in it is followed. Directories are opened with O_NOFOLLOW relative to
their parent's fd, regular files with O_NOFOLLOW|O_NONBLOCK and kept only if
the fd is a regular file, and xattrs are read through ``/proc/self/fd/N/NAME``,
which resolves the parent exactly and does not follow NAME. A file's size is
taken from its open fd; if it shrinks meanwhile the rest is zeros.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from portside.archive.apply import OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_OVERLAY_XATTR_PREFIX = "trusted.overlay."
_CAPABILITY_XATTR = "security.capability"
_PAX_XATTR_PREFIX = "SCHILY.xattr."
_BLOCK = tarfile.BLOCKSIZE
_CHUNK = 1 << 20
# An entry gone, or no longer of the kind it was listed as: left out.
_VANISHED = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})

Write = Callable[[bytes], object]


@dataclass(frozen=True)
class DiffResult:
    entries: int    # tar entries written, whiteouts included; 0 is an empty layer
    size: int       # bytes written, the end-of-archive blocks included


def write_layer_diff(upper: str, write: Write, *, skip: Collection[str] = (),
                     owners: Callable[[int, int], tuple[int, int]] | None = None,
                     clamp_mtime: int | None = None) -> DiffResult:
    """Write the overlay upper directory ``upper`` as an uncompressed layer tar through ``write``.

    ``skip`` holds paths relative to ``upper`` ("etc/hosts") to leave out, a
    directory with everything below it. ``owners`` maps a file's (uid, gid) on
    disk to the one the layer records: a user-namespaced container's files are
    owned by shifted ids on the host, its layer must say what it saw.
    """
    writer = _Writer(write, frozenset(skip))
    writer.owners = owners
    writer.clamp_mtime = clamp_mtime
    root_fd = os.open(upper, _DIR_FLAGS)
    try:
        writer.walk(root_fd, "")
    finally:
        os.close(root_fd)
    writer.out(b"\0" * (2 * _BLOCK))
    return DiffResult(writer.entries, writer.size)


class _Writer:
    def __init__(self, write: Write, skip: frozenset[str]) -> None:
        self._write = write
        self._skip = skip
        self._links: dict[tuple[int, int], str] = {}  # (dev, ino) -> the name it was first written as
        self.owners: Callable[[int, int], tuple[int, int]] | None = None
        # No mtime later than this (a build's SOURCE_DATE_EPOCH): the same changes give the same diff ID.
        self.clamp_mtime: int | None = None
        self.entries = 0
        self.size = 0

    def out(self, data: bytes) -> None:
        self._write(data)
        self.size += len(data)

    def walk(self, top_fd: int, top: str) -> None:
        """Entries below the directory ``top`` (relative path, "" for the root), depth first.

        Iterative, holding one fd per level, so a deep tree costs fds, not Python stack.
        """
        stack: list[tuple[int, str, list[str]]] = [(os.dup(top_fd), top, _sorted_names(top_fd))]
        try:
            while stack:
                dir_fd, dir_path, names = stack[-1]
                if not names:
                    os.close(dir_fd)
                    stack.pop()
                    continue
                name = names.pop()
                path = f"{dir_path}/{name}" if dir_path else name
                if path in self._skip:
                    continue
                child_fd = self._entry(dir_fd, name, path)
                if child_fd is not None:
                    try:
                        stack.append((child_fd, path, _sorted_names(child_fd)))
                    except BaseException:
                        os.close(child_fd)
                        raise
        finally:
            for dir_fd, _, _ in stack:
                os.close(dir_fd)

    def _entry(self, dir_fd: int, name: str, path: str) -> int | None:
        """Write one entry; for a directory, return its open fd for the walk to descend into."""
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as e:
            if e.errno in _VANISHED:
                return None
            raise
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            return None
        if stat.S_ISCHR(mode) and st.st_rdev == 0:
            head, _, base = path.rpartition("/")
            whiteout = _info(f"{head}/{WHITEOUT_PREFIX}{base}" if head else WHITEOUT_PREFIX + base, st)
            whiteout.type, whiteout.mode = tarfile.REGTYPE, 0o600
            self._header(whiteout)
            return None
        if stat.S_ISDIR(mode):
            return self._directory(dir_fd, name, path)
        info = _info(path, st)
        info.pax_headers = _xattr_records(_path_in(dir_fd, name))
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self._links:
            info.type, info.linkname, info.size = tarfile.LNKTYPE, self._links[key], 0
            self._header(info)
            return None
        if stat.S_ISREG(mode):
            if not self._regular(dir_fd, name, info):
                return None
        elif stat.S_ISLNK(mode):
            try:
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
            except OSError as e:
                if e.errno in _VANISHED or e.errno == errno.EINVAL:  # EINVAL: no longer a symlink
                    return None
                raise
            self._header(info)
        else:
            info.type = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE,
                         stat.S_IFIFO: tarfile.FIFOTYPE}[stat.S_IFMT(mode)]
            if info.type != tarfile.FIFOTYPE:
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self._header(info)
        if st.st_nlink > 1:
            self._links[key] = path
        return None

    def _directory(self, dir_fd: int, name: str, path: str) -> int | None:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as e:
            if e.errno in _VANISHED:
                return None
            raise
        try:
            st = os.fstat(fd)
            info = _info(path, st)
            info.type = tarfile.DIRTYPE
            opaque = _getxattr(fd, OVERLAY_OPAQUE_XATTR) == b"y"
            info.pax_headers = _xattr_records(fd)
            self._header(info)
            if opaque:
                marker = _info(f"{path}/{WHITEOUT_OPAQUE}", st)
                marker.type, marker.mode, marker.mtime = tarfile.REGTYPE, st.st_mode & 0o777, 0
                self._header(marker)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _regular(self, dir_fd: int, name: str, info: tarfile.TarInfo) -> bool:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as e:
            if e.errno in _VANISHED:
                return False
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return False  # replaced by a fifo or device since it was listed
            info.size = st.st_size
            self._header(info)
            left = st.st_size
            while left:
                chunk = os.read(fd, min(left, _CHUNK))
                if not chunk:
                    chunk = b"\0" * min(left, _CHUNK)  # it shrank: the header's size stands
                self.out(chunk)
                left -= len(chunk)
            if st.st_size % _BLOCK:
                self.out(b"\0" * (_BLOCK - st.st_size % _BLOCK))
        finally:
            os.close(fd)
        return True

    def _header(self, info: tarfile.TarInfo) -> None:
        if self.owners is not None:
            info.uid, info.gid = self.owners(info.uid, info.gid)
        if self.clamp_mtime is not None and info.mtime > self.clamp_mtime:
            info.mtime = self.clamp_mtime
        self.out(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        self.entries += 1


def _info(path: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime_ns // 1_000_000_000)  # floor, also before 1970
    return info


def _sorted_names(dir_fd: int) -> list[str]:
    """The directory's names, sorted by their bytes and reversed: the walk pops from the end."""
    return sorted(os.listdir(dir_fd), key=os.fsencode, reverse=True)


def _path_in(dir_fd: int, name: str) -> str:
    """``name`` in the already-open directory ``dir_fd``, for the xattr calls (they have no dir_fd form)."""
    return f"/proc/self/fd/{dir_fd}/{name}"


def _getxattr(target: int | str, key: str) -> bytes | None:
    try:
        return os.getxattr(target, key, follow_symlinks=isinstance(target, int))
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP) or e.errno in _VANISHED:
            return None
        raise


def _xattr_records(target: int | str) -> dict[str, str]:
    """The entry's xattrs as pax records; a path target is not followed."""
    try:
        names = os.listxattr(target, follow_symlinks=isinstance(target, int))
    except OSError as e:
        if e.errno == errno.ENOTSUP or e.errno in _VANISHED:
            return {}
        raise
    records = {}
    for key in sorted(names):
        # overlayfs's bookkeeping is not content; a name that is not UTF-8 cannot be a pax keyword
        if key.startswith(_OVERLAY_XATTR_PREFIX) or not _is_utf8(key):
            continue
        value = _getxattr(target, key)
        if value is None:
            continue
        if key == _CAPABILITY_XATTR:
            value = _capability_v2(value)
        records[_PAX_XATTR_PREFIX + key] = value.decode("utf-8", "surrogateescape")
    return records


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes: bytes that were not UTF-8
        return False
    return True


def _capability_v2(value: bytes) -> bytes:
    """VFS_CAP_REVISION_3 → 2: its root id means nothing outside the user namespace that set it."""
    if len(value) >= 24 and value[3] == 3:
        return value[:3] + b"\x02" + value[4:20]
    return value


# -- placeholders ----------------------------------------------------------------


def mount_placeholders(upper: str, lowers: Sequence[str], mount_points: Iterable[str]) -> frozenset[str]:
    """Entries of ``upper`` that exist only so that something could be mounted there.

    A runtime creates a mount point it needs and the image lacks (``/proc``,
    ``/etc/hosts``) in the container's root, so in its upper directory. dockerd
    keeps these in a separate "init" layer that a commit leaves out; this finds
    them: each of ``mount_points`` (absolute container paths) that is an empty
    file or an empty, non-opaque directory in ``upper``, and then each directory
    holding nothing else that is either new (absent from ``lowers``, the layer
    directories, topmost first) or a lower directory copied up with its mode
    and owner unchanged (only its mtime moved, when the placeholder was made).

    Returns paths relative to ``upper``, for ``write_layer_diff``'s ``skip``.
    """
    skip: set[str] = set()
    parents: set[str] = set()
    for point in mount_points:
        parts = [p for p in point.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            continue
        found = _lstat_in(upper, parts)
        if found is None:
            continue
        st, names, opaque = found
        empty_file = stat.S_ISREG(st.st_mode) and st.st_size == 0
        empty_dir = stat.S_ISDIR(st.st_mode) and not names and not opaque
        if empty_file or empty_dir:
            skip.add("/".join(parts))
            parents.update("/".join(parts[:i]) for i in range(1, len(parts)))
    # deepest first, so a directory sees whether its subdirectories went
    for path in sorted(parents, key=lambda p: p.count("/"), reverse=True):
        parts = path.split("/")
        found = _lstat_in(upper, parts)
        if found is None:
            continue
        st, names, opaque = found
        if not stat.S_ISDIR(st.st_mode) or opaque or not names:
            continue
        if any(f"{path}/{name}" not in skip for name in names):
            continue
        below = _lower_stat(lowers, parts)
        if below is None or (stat.S_ISDIR(below.st_mode) and below.st_mode == st.st_mode
                             and (below.st_uid, below.st_gid) == (st.st_uid, st.st_gid)):
            skip.add(path)
    return frozenset(skip)


def _lstat_in(root: str, parts: Sequence[str]) -> tuple[os.stat_result, list[str], bool] | None:
    """(lstat, names if a directory, opaque) of ``root/parts``, no symlink followed on the way; None if absent."""
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError as e:
        if e.errno in _VANISHED:
            return None
        raise
    try:
        for name in parts[:-1]:
            try:
                next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in _VANISHED:
                    return None
                raise
            os.close(fd)
            fd = next_fd
        try:
            st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except OSError as e:
            if e.errno in _VANISHED:
                return None
            raise
        if not stat.S_ISDIR(st.st_mode):
            return st, [], False
        child = os.open(parts[-1], _DIR_FLAGS, dir_fd=fd)
        try:
            return st, os.listdir(child), _getxattr(child, OVERLAY_OPAQUE_XATTR) == b"y"
        finally:
            os.close(child)
    finally:
        os.close(fd)


def _lower_stat(lowers: Sequence[str], parts: Sequence[str]) -> os.stat_result | None:
    """What the topmost lower layer holding ``parts`` has there; None if absent or whited out."""
    for lower in lowers:
        found = _lstat_in(lower, parts)
        if found is None:
            continue
        st = found[0]
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return None
        return st
    return None
