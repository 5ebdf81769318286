"""``docker cp`` and ``docker export`` on the daemon's side, as moby's ``daemon/archive*.go`` and ``export.go``.

* ``stat_path``: the stat of a path (``HEAD /containers/{id}/archive``).
* ``archive_path``: a tar of a path, its top entry named after the path's last
  element (``GET``); a path ending in ``/.`` gives the directory's contents.
* ``extract_to_dir``: a tar, maybe compressed, extracted into a directory
  (``PUT``), Docker's rules for read-only root filesystems and volumes.
* ``export``: the whole root filesystem, volumes left out (``GET .../export``).

Paths are the user's, cleaned as Go's ``filepath.Join("/", path)`` would and
resolved inside the container's root (archive.rootpath); the view of the
container is containers.fsview's. Errors carry Docker's messages.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from portside.archive.apply import ExtractPolicy, extract_archive
from portside.archive.compression import decompressing_reader
from portside.archive.rootpath import Entry, Root, asserts_directory, base_name, clean
from portside.archive.streams import RawSource, read_up_to
from portside.archive.tarbuild import TarBuilder
from portside.containers.fsview import ContainerFS, open_container_fs
from portside.containers.record import State
from portside.containers.service import ContainerService
from portside.containers.user import resolve_user
from portside.errors import Conflict, Forbidden, Internal, InvalidArgument, NotFound
from portside.readers import Reader
from portside.timefmt import format_rfc3339

Write = Callable[[bytes], None]

# Go's os.FileMode type bits (what the path stat's "mode" holds).
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20

_SMALL_FILE = 1 << 20  # the most of /etc/passwd or /etc/group we read
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


@dataclass(frozen=True)
class PathStat:
    """moby's ``container.PathStat``: the ``X-Docker-Container-Path-Stat`` header, base64 JSON."""

    name: str
    size: int
    mode: int  # Go's os.FileMode bits
    mtime: str  # RFC 3339 with nanoseconds
    link_target: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                "linkTarget": self.link_target}


@dataclass
class Stream:
    """A tar to be written once the response headers are out; ``close`` whether or not it was."""

    write: Callable[[Write], None]
    close: Callable[[], None]
    stat: PathStat | None = None


def go_file_mode(st_mode: int) -> int:
    """Go's ``os.FileMode`` of a Unix mode (os.Lstat's fillFileStatFromSys)."""
    mode = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    mode |= {stat.S_IFBLK: GO_MODE_DEVICE, stat.S_IFCHR: GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
             stat.S_IFDIR: GO_MODE_DIR, stat.S_IFIFO: GO_MODE_NAMED_PIPE, stat.S_IFLNK: GO_MODE_SYMLINK,
             stat.S_IFSOCK: GO_MODE_SOCKET}.get(kind, 0)
    if st_mode & stat.S_ISUID:
        mode |= GO_MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_MODE_STICKY
    return mode


def stat_path(containers: ContainerService, name: str, untrusted_path: str) -> PathStat:
    with open_container_fs(containers, name, volumes=True) as view:
        abs_path = _absolute(untrusted_path)
        with _lookup(view, abs_path, name, untrusted_path, follow=asserts_directory(abs_path)) as entry:
            return _stat(view.root, entry, abs_path)


def archive_path(containers: ContainerService, name: str, untrusted_path: str) -> Stream:
    """The path's stat and its tar, to be written by the caller; the container's view stays open until ``close``."""
    view = open_container_fs(containers, name, volumes=True)
    try:
        abs_path = _absolute(untrusted_path)
        entry = _lookup(view, abs_path, name, untrusted_path, follow=asserts_directory(abs_path))
    except BaseException:
        view.close()
        raise

    def write(out: Write) -> None:
        # Named after the path the user gave, not what it resolved to: "/" gives "/", "/a/." gives ".".
        top = base_name(abs_path)
        if top == "/":
            top = ""
        builder = TarBuilder(out, owners=_seen_ids(view))
        builder.add(entry.parent_fd, entry.name, top)
        if stat.S_ISDIR(entry.st.st_mode):
            fd = entry.open(os.O_RDONLY | os.O_DIRECTORY)
            try:
                builder.add_tree(fd, top + "/")
            finally:
                os.close(fd)
        builder.close()

    def close() -> None:
        entry.close()
        view.close()

    try:
        return Stream(write, close, _stat(view.root, entry, abs_path))
    except BaseException:
        close()
        raise


def extract_to_dir(containers: ContainerService, name: str, untrusted_path: str, untrusted_tar: Reader, *,
                   no_overwrite_dir_nondir: bool, copy_uid_gid: bool) -> None:
    with open_container_fs(containers, name, volumes=True) as view:
        # Unlike a stat, the last element is followed too: a symlink to a directory is a fine destination.
        with _lookup(view, _absolute(untrusted_path), name, untrusted_path, follow=True) as entry:
            if not stat.S_ISDIR(entry.st.st_mode):
                raise InvalidArgument("extraction point is not a directory")
            _check_writable(view, entry.path)
            owner = _container_user(view) if copy_uid_gid else None
            owners = view.ids.to_host if view.ids is not None else None
            if owner is not None and owners is not None:
                try:
                    owner = owners(*owner)
                except ValueError as e:
                    raise InvalidArgument(str(e)) from None
            policy = ExtractPolicy(owner=owner, owners=owners, no_overwrite_dir_nondir=no_overwrite_dir_nondir,
                                   shown_root=entry.path)
            fd = entry.open(os.O_RDONLY | os.O_DIRECTORY)
            try:
                extract_archive(_plain_tar(untrusted_tar), fd, policy)
            finally:
                os.close(fd)


def export(containers: ContainerService, name: str) -> Stream:
    """The container's root filesystem as a tar (no volumes, no binds), entries named from its root."""
    record = containers.get(name)
    if record.state is State.DEAD:
        raise Conflict(f"You cannot export container {record.id} which is Dead")
    if record.state is State.REMOVING:
        raise Conflict(f"You cannot export container {record.id} which is being removed")
    try:
        view = open_container_fs(containers, record.id, volumes=False)
    except OSError as e:
        raise Internal(f"Error exporting container {name}: {e}") from e

    def write(out: Write) -> None:
        builder = TarBuilder(out, owners=_seen_ids(view))
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=view.root.fd)
        try:
            builder.add_tree(fd, "")
        finally:
            os.close(fd)
        builder.close()

    return Stream(write, view.close)


# -- helpers ---------------------------------------------------------------------------


def _absolute(untrusted_path: str) -> str:
    """moby's ``PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)``."""
    cleaned = clean(untrusted_path)
    if base_name(untrusted_path) == "." and base_name(cleaned) != ".":
        cleaned = cleaned.rstrip("/") + "/."
    elif untrusted_path.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def _lookup(view: ContainerFS, abs_path: str, name: str, untrusted_path: str, *, follow: bool) -> Entry:
    """The entry at the path, or Docker's errors: 404 ``Could not find the file``, else lstat's own words."""
    try:
        entry = view.root.lookup(abs_path, follow=follow)
    except FileNotFoundError:
        raise NotFound(f"Could not find the file {untrusted_path} in container {name}") from None
    except OSError as e:
        raise Internal(f"lstat {abs_path}: {(e.strerror or str(e)).lower()}") from None
    if asserts_directory(abs_path) and not stat.S_ISDIR(entry.st.st_mode):
        entry.close()
        raise Internal(f"lstat {abs_path}: not a directory")
    return entry


def _stat(root: Root, entry: Entry, abs_path: str) -> PathStat:
    st = entry.st
    link = root.resolve(abs_path) if stat.S_ISLNK(st.st_mode) else ""
    return PathStat(name=base_name(abs_path), size=st.st_size, mode=go_file_mode(st.st_mode),
                    mtime=format_rfc3339(st.st_mtime_ns), link_target=link)


def _check_writable(view: ContainerFS, path: str) -> None:
    """moby's checkWritablePath: a read-only volume, or else a read-only rootfs, refuses the extraction."""
    owners = []
    for volume in view.volumes:
        where = view.root.resolve(volume.destination)
        if path == where or path.startswith(where.rstrip("/") + "/"):
            owners.append((len(where), volume))
    if owners:
        if max(owners, key=lambda o: o[0])[1].read_only:  # the innermost mount decides
            raise Forbidden("mounted volume is marked read-only")
        return
    if view.record.host_config.get("ReadonlyRootfs"):
        raise Forbidden("container rootfs is marked read-only")


def _seen_ids(view: ContainerFS) -> Callable[[int, int], tuple[int, int]] | None:
    """A remapped container's files are owned by host ids; its tars carry the ids it sees (as dockerd's)."""
    return view.ids.to_container if view.ids is not None else None


def _container_user(view: ContainerFS) -> tuple[int, int] | None:
    """``--archive``: the container's user and group, looked up in its own /etc/passwd and /etc/group."""
    user = str(view.record.config.get("User") or "")
    if not user:
        return None
    uid, gid, _ = resolve_user(user, _small_file(view.root, "/etc/passwd"), _small_file(view.root, "/etc/group"))
    return uid, gid


def _small_file(root: Root, path: str) -> str | None:
    """A text file of the container, read as data (never parsed by the host's libc)."""
    try:
        with root.lookup(path, follow=True) as entry:
            if not stat.S_ISREG(entry.st.st_mode):
                return None
            fd = entry.open(os.O_RDONLY | os.O_NONBLOCK)
            try:
                return read_up_to(_FdReader(fd), _SMALL_FILE).decode("utf-8", "replace")
            finally:
                os.close(fd)
    except OSError:
        return None


class _FdReader:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def read(self, size: int = -1, /) -> bytes:
        return os.read(self._fd, size if size >= 0 else _SMALL_FILE)


def _plain_tar(untrusted: Reader) -> Reader:
    """The upload without its compression: identity, gzip, bzip2, xz or zstd (moby's DecompressStream)."""
    head = read_up_to(untrusted, len(_XZ_MAGIC))
    source = RawSource(untrusted, replay=head)
    if head.startswith(_BZIP2_MAGIC):
        return cast(Reader, bz2.BZ2File(source))
    if head.startswith(_XZ_MAGIC):
        return cast(Reader, lzma.LZMAFile(cast(BinaryIO, source)))
    return decompressing_reader(io.BufferedReader(source))[1]
