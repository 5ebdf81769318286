"""Write a tar of a directory tree read through fds, entry for entry as Docker writes it.

moby's ``TarWithOptions`` is the reference (``docker cp``, ``docker export``):
entries in lexical order, a directory before its contents and with a
trailing ``/``, PAX headers only where USTAR cannot say it, times cut to the
second and no access or change time, numeric owners without names (no user
database is consulted: it would be the container's), a second path to an
inode already written as a hard link to the first, ``security.capability``
as the one xattr kept, and sockets left out. No padding after the two zero
blocks that end the archive, as Go's tar writer.

The tree may be a running container's: files change under us. A file is
opened before its header is written and the header describes what was
opened; a file that shrinks meanwhile is padded with zeros and one that
grows is cut, so the archive is always well formed. Nothing follows a
symlink: directories are entered with ``O_NOFOLLOW`` relative to their
parent's fd.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Callable, Iterator

BLOCK = 512
_FLUSH_AT = 256 << 10  # bytes gathered before one write to the output (one HTTP chunk)
_READ_SIZE = 1 << 20
_MAX_DEPTH = 512  # directory fds open at once: a tree deeper than this is refused
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CAPABILITY_XATTR = "security.capability"
_VFS_CAP_REVISION_3 = 3
_XATTR_CAPS_SZ_2 = 20

Owners = Callable[[int, int], tuple[int, int]]  # (uid, gid) -> (uid, gid)


class TarBuilder:
    """Builds one archive into ``out`` (called with chunks of bytes)."""

    def __init__(self, out: Callable[[bytes], None], *, owners: Owners | None = None) -> None:
        """``owners`` maps a file's (uid, gid) on disk to the one its entry records: the files of a
        user-namespaced container are owned by shifted ids on the host, its tar says what it sees."""
        self._out = out
        self._owners = owners
        self._buffer = bytearray()
        self._links: dict[tuple[int, int], str] = {}  # (dev, inode) of a multiply-linked file -> its first name

    def add(self, parent_fd: int, name: str, arcname: str) -> os.stat_result | None:
        """Add the entry ``name`` of the directory ``parent_fd`` as ``arcname``; its stat, or None if skipped.

        A directory's name gets its trailing slash here; its contents are
        not added (``add_tree`` does that).
        """
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if stat.S_ISSOCK(st.st_mode):
            return None  # Go's tar: "sockets not supported"
        if not stat.S_ISREG(st.st_mode):
            self._header(_info(arcname, st, _link_target(parent_fd, name, st)), st)
            return st
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=parent_fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOENT):  # replaced by a symlink, or gone: as the walk found it
                return None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None  # swapped for something else between the stat and the open
            info = _info(arcname, st, "")
            first = self._links.get((st.st_dev, st.st_ino)) if st.st_nlink > 1 else None
            if first is not None:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
                self._header(info, st)
                return st
            if st.st_nlink > 1:
                self._links[(st.st_dev, st.st_ino)] = info.name
            _add_capability(info, fd)
            self._header(info, st)
            self._data(fd, st.st_size)
        finally:
            os.close(fd)
        return st

    def add_tree(self, dir_fd: int, prefix: str) -> None:
        """Add everything below the directory ``dir_fd``, named ``prefix`` + its path in the tree."""
        stack: list[tuple[int, str, Iterator[str]]] = [(os.dup(dir_fd), prefix, _sorted_names(dir_fd))]
        try:
            while stack:
                fd, base, names = stack[-1]
                name = next(names, None)
                if name is None:
                    os.close(fd)
                    stack.pop()
                    continue
                st = self.add(fd, name, base + name)
                if st is None or not stat.S_ISDIR(st.st_mode):
                    continue
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except (FileNotFoundError, NotADirectoryError, PermissionError):
                    continue  # gone or replaced since: its entry is in, its contents are not
                except OSError as e:
                    if e.errno != errno.ELOOP:
                        raise
                    continue
                if len(stack) >= _MAX_DEPTH:
                    os.close(child)
                    raise OSError(errno.ELOOP, f"directory tree deeper than {_MAX_DEPTH} levels", base + name)
                stack.append((child, base + name + "/", _sorted_names(child)))
        finally:
            for fd, _, _ in stack:
                os.close(fd)

    def close(self) -> None:
        """End the archive (two zero blocks) and flush it."""
        self._buffer += bytes(2 * BLOCK)
        self.flush()

    def flush(self) -> None:
        if self._buffer:
            data, self._buffer = bytes(self._buffer), bytearray()
            self._out(data)

    def _header(self, info: tarfile.TarInfo, st: os.stat_result) -> None:
        if self._owners is not None:
            info.uid, info.gid = self._owners(info.uid, info.gid)
        self._buffer += _with_type_bits(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"), st.st_mode)
        if len(self._buffer) >= _FLUSH_AT:
            self.flush()

    def _data(self, fd: int, size: int) -> None:
        left = size
        while left:
            chunk = os.read(fd, min(left, _READ_SIZE))
            if not chunk:
                self._buffer += bytes(left)  # the file shrank while we read it
                break
            self._buffer += chunk
            left -= len(chunk)
            if len(self._buffer) >= _FLUSH_AT:
                self.flush()
        self._buffer += bytes(-size % BLOCK)


def _sorted_names(dir_fd: int) -> Iterator[str]:
    # Go's WalkDir order: by the bytes of the name.
    return iter(sorted(os.listdir(dir_fd), key=os.fsencode))


def _link_target(parent_fd: int, name: str, st: os.stat_result) -> str:
    return os.readlink(name, dir_fd=parent_fd) if stat.S_ISLNK(st.st_mode) else ""


def _info(arcname: str, st: os.stat_result, link_target: str) -> tarfile.TarInfo:
    mode = st.st_mode
    info = tarfile.TarInfo(arcname + "/" if stat.S_ISDIR(mode) and not arcname.endswith("/") else arcname)
    info.mode = stat.S_IMODE(mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = st.st_mtime_ns // 1_000_000_000  # an int: a float would cost a PAX record
    if stat.S_ISREG(mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, link_target
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    return info


def _add_capability(info: tarfile.TarInfo, fd: int) -> None:
    """File capabilities travel with the file, as in Docker (v3 turned into v2: no root uid outside)."""
    try:
        value = os.getxattr(fd, _CAPABILITY_XATTR)
    except OSError:
        return
    if len(value) > 3 and value[3] == _VFS_CAP_REVISION_3:
        value = value[:3] + bytes([2]) + value[4:_XATTR_CAPS_SZ_2]
    info.pax_headers = {**info.pax_headers, "SCHILY.xattr." + _CAPABILITY_XATTR: value.decode("utf-8", "surrogateescape")}


def _with_type_bits(header: bytes, st_mode: int) -> bytes:
    """Go's tar writer puts the file type in the mode field too (0100644, 040755...); tarfile cannot.

    The entry's own header is the last block (any PAX header comes before it);
    its mode field is rewritten and its checksum computed again.
    """
    block = bytearray(header[-BLOCK:])
    block[100:108] = b"%07o\0" % (stat.S_IMODE(st_mode) | stat.S_IFMT(st_mode))
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block)
    return header[:-BLOCK] + bytes(block)
