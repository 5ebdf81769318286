"""Apply an OCI/Docker layer tarball to a directory, treating it as hostile.

The result is one overlayfs layer: whiteouts (``.wh.NAME``) become 0/0
character devices and opaque markers (``.wh..wh..opq``) become the
``trusted.overlay.opaque`` xattr, as in the OCI image spec's "Applying
changesets" and containerd's overlay snapshotter.

Security model: the tar is attacker-controlled, the directory is ours and
nothing else writes to it while a layer is applied. Every path is resolved
component by component from a directory fd with O_NOFOLLOW, so no entry can
write through a symlink, whether the symlink came from an earlier entry or
not; ``..`` is refused outright. Symlinks are created as data and may point
anywhere: they only matter once a container runs inside its own root.
Header-level abuse (huge or chained extension headers, truncation, bad
checksums, pathological pax records) is stopped in ``tarstream`` before
tarfile buffers anything.

``extract_archive`` is the same machinery for a plain archive extracted into
a directory that is not a layer (a container's, for the Engine API's
``PUT /containers/{id}/archive``): ``.wh.`` names are ordinary files, a ``./``
entry leaves the directory's own metadata alone, and Docker's extraction rules
apply (no relative symlink climbing out of the directory, optionally no
directory replaced by a non-directory or the reverse, optionally one owner for
everything).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from portside.archive.tarsplit import TarSplitRecorder
from portside.archive.tarstream import CHUNK_SIZE, BadHeader, ForwardReader, open_layer_tar
from portside.errors import ArchiveError
from portside.fsync import WRITEBACK_STRIDE, start_writeback
from portside.readers import Reader
from portside.oci.gopath import climbs_out

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_PAX_XATTR_PREFIX = "SCHILY.xattr."
# overlayfs's own metadata (opaque, redirect, origin, metacopy...) may only be
# written by the whiteout conversion; from a tar it could redirect lookups.
_OVERLAY_XATTR_PREFIX = "trusted.overlay."

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# chown treats an id of all ones as "leave unchanged".
_MAX_ID = 2**32 - 2
_MAX_DEVICE_NUMBER = 2**32 - 1
_INT64 = 2**63

# Errors of the filesystem that mean the entry itself is unusable.
_ENTRY_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EINVAL, errno.ERANGE, errno.E2BIG})

_T = TypeVar("_T")

_PAX_TIME = re.compile(r"(-?)([0-9]{1,19})(?:\.([0-9]*))?")

_SUPPORTED_TYPES = frozenset(
    {
        *tarfile.REGULAR_TYPES,
        tarfile.DIRTYPE,
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
    }
)


@dataclass(frozen=True)
class ApplyResult:
    size: int  # bytes of regular file content and symlink targets written (Docker's layer size)
    entries: int  # tar entries applied, whiteouts included


@dataclass(frozen=True)
class ExtractPolicy:
    """How ``extract_archive`` treats what it finds in the destination (moby's TarOptions)."""

    # Every entry owned by uid:gid instead of the tar's ids (docker cp --archive with a container user).
    owner: tuple[int, int] | None = None
    # The tar's (uid, gid) to the ones written, when there is no ``owner``: a user-namespaced
    # container's ids to the host's. ValueError refuses the entry.
    owners: Callable[[int, int], tuple[int, int]] | None = None
    # Refuse to replace a directory with a non-directory or the reverse (docker cp always asks for it).
    no_overwrite_dir_nondir: bool = False
    # The destination's path as the user knows it ("/tmp" in the container), for messages.
    shown_root: str = "."


@dataclass(frozen=True)
class _Mode:
    layer: bool  # whiteouts converted, "./" metadata applied, "layer" in messages
    policy: ExtractPolicy

    @property
    def noun(self) -> str:
        return "layer" if self.layer else "archive"

    @property
    def root_name(self) -> str:
        return "the layer root" if self.layer else "the destination directory"


_LAYER = _Mode(layer=True, policy=ExtractPolicy())


def apply_layer(
    untrusted_tar: Reader,
    root: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    recorder: TarSplitRecorder | None = None,
) -> ApplyResult:
    """Apply the uncompressed layer tar stream ``untrusted_tar`` into the directory ``root``.

    The stream is read to its very end, trailing bytes included, because the
    caller hashes it as it goes. ``max_bytes`` bounds the regular-file bytes
    the layer may expand to (and the junk after its end). Raises
    ``ArchiveError`` naming the entry for malformed or hostile input; other
    ``OSError``s are the filesystem's own. On error ``root`` is left half
    applied for the caller to delete, but nothing outside it is touched.
    With a ``recorder``, the layer's tar-split is recorded (archive.tarsplit).
    """
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        reader = ForwardReader(untrusted_tar, tap=recorder.raw if recorder else None)
        if recorder is not None:
            recorder.attach(root_fd)
        applier = _Applier(root_fd, reader, max_bytes, recorder, _LAYER)
        try:
            return applier.run()
        finally:
            applier.close()
    finally:
        os.close(root_fd)


def extract_archive(untrusted_tar: Reader, dir_fd: int, policy: ExtractPolicy) -> ApplyResult:
    """Extract the uncompressed tar stream ``untrusted_tar`` into the directory open as ``dir_fd``.

    As hostile as a layer, and resolved the same way: nothing is written
    through a symlink or outside ``dir_fd``. The caller keeps ``dir_fd``.
    Errors as for ``apply_layer``; a failed extraction leaves what it wrote
    so far, as Docker's does.
    """
    root_fd = os.dup(dir_fd)  # _DirectoryFds never closes its root, but be sure of whose fd this is
    try:
        applier = _Applier(root_fd, ForwardReader(untrusted_tar), None, None, _Mode(layer=False, policy=policy))
        try:
            return applier.run()
        finally:
            applier.close()
    finally:
        os.close(root_fd)


class _Rejected(Exception):
    """An entry is invalid or hostile; apply_layer names the entry."""


@dataclass(frozen=True)
class _Metadata:
    uid: int
    gid: int
    mode: int
    atime_ns: int
    mtime_ns: int
    xattrs: tuple[tuple[str, bytes], ...]


class _Applier:
    """Applies the entries of one layer; owns the directory fd cache and the byte budget."""

    def __init__(
        self,
        root_fd: int,
        reader: ForwardReader,
        max_bytes: int | None,
        recorder: TarSplitRecorder | None,
        mode: _Mode,
    ) -> None:
        self._mode = mode
        self._dirs = _DirectoryFds(root_fd)
        self._reader = reader
        self._recorder = recorder
        self._max_bytes = max_bytes
        self._expanded = 0  # declared entry data plus trailing bytes, held to max_bytes
        self._written = 0
        # Directory times are set last: adding children would change them again.
        self._dir_times: list[tuple[tuple[str, ...], int, int]] = []

    def close(self) -> None:
        self._dirs.close()

    def run(self) -> ApplyResult:
        entries = 0
        last: str | None = None
        noun = self._mode.noun
        tar = _read_header(lambda: open_layer_tar(self._reader), last, noun)
        while (member := _read_header(tar.next, last, noun)) is not None:
            self._apply_named(member)
            entries += 1
            last = member.name
        self._set_dir_times()
        self._drain()
        return ApplyResult(size=self._written, entries=entries)

    def _apply_named(self, member: tarfile.TarInfo) -> None:
        """Apply one entry; failures caused by the entry name it."""
        try:
            self._apply(member)
        except (_Rejected, ArchiveError) as e:
            raise ArchiveError(f"invalid {self._mode.noun} entry {member.name!r}: {e}") from e
        except OSError as e:
            if e.errno in _ENTRY_ERRNOS:
                raise ArchiveError(f"invalid {self._mode.noun} entry {member.name!r}: {e.strerror}") from e
            e.add_note(f"while applying {self._mode.noun} entry {member.name!r}")
            raise

    def _apply(self, member: tarfile.TarInfo) -> None:
        parts = _split_path(member.name, self._mode.root_name)
        if member.type not in _SUPPORTED_TYPES:
            raise _Rejected(f"unsupported entry type {member.type!r}")
        if member.isreg():
            # Checked on the declared size, before a byte is written or skipped.
            self._reserve(member.size)
        if not parts:
            self._apply_root(member)
        elif self._mode.layer and parts[-1].startswith(WHITEOUT_PREFIX):
            self._apply_whiteout(member, parts)
        elif member.islnk():
            self._make_hardlink(member.linkname, parts)
        else:
            meta = _metadata(member, self._mode.policy.owner, self._mode.policy.owners)
            parent_fd = self._dirs.open(parts[:-1], create=True)
            if member.isdir():
                self._make_dir(parent_fd, parts, meta)
            elif member.isreg():
                self._write_file(member, parent_fd, parts, meta)
            elif member.issym():
                self._make_symlink(member.linkname, parent_fd, parts, meta)
            else:
                self._make_node(member, parent_fd, parts, meta)

    def _apply_root(self, member: tarfile.TarInfo) -> None:
        # "./" entries carry the root directory's own metadata, as in Docker.
        if not member.isdir():
            raise _Rejected(f"entry would replace {self._mode.root_name}")
        if not self._mode.layer:
            return  # Docker leaves the destination directory as it is
        meta = _metadata(member)
        _set_fd_metadata(self._dirs.open((), create=False), meta)
        self._dir_times.append(((), meta.atime_ns, meta.mtime_ns))

    def _apply_whiteout(self, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        parent, name = parts[:-1], parts[-1]
        parent_fd = self._dirs.open(parent, create=True)
        if name == WHITEOUT_OPAQUE:
            # Hides the lower layers' contents of the directory, not this layer's.
            os.setxattr(parent_fd, OVERLAY_OPAQUE_XATTR, b"y")
            return
        if name.startswith(WHITEOUT_META_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): nothing for overlayfs
        hidden = name[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", ".."):
            raise _Rejected("whiteout does not name a file")
        uid, gid = _owner(member)
        self._replace(
            parent_fd, parent, hidden, lambda: os.mknod(hidden, stat.S_IFCHR, 0, dir_fd=parent_fd)
        )
        # Owned like the .wh. entry, as containerd does.
        os.chown(hidden, uid, gid, dir_fd=parent_fd, follow_symlinks=False)

    def _make_dir(self, parent_fd: int, parts: tuple[str, ...], meta: _Metadata) -> None:
        name = parts[-1]
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            # A directory over a directory keeps its contents; over anything else, replaces it.
            if not stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
                if self._mode.policy.no_overwrite_dir_nondir:
                    raise _Rejected(f"cannot overwrite non-directory {self._shown(parts)} with directory "
                                    f"{_go_quote(self._mode.policy.shown_root)}")
                self._remove(parent_fd, parts[:-1], name)
                os.mkdir(name, 0o700, dir_fd=parent_fd)
        _set_fd_metadata(self._dirs.open(parts, create=False), meta)
        self._dir_times.append((parts, meta.atime_ns, meta.mtime_ns))

    def _write_file(
        self, member: tarfile.TarInfo, parent_fd: int, parts: tuple[str, ...], meta: _Metadata
    ) -> None:
        name = parts[-1]
        fd = self._replace(
            parent_fd, parts[:-1], name, lambda: os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent_fd)
        )
        try:
            self._written += _copy_data(self._reader, member, fd)
            if self._recorder is not None:
                self._recorder.file(parts, member.size)
            _set_fd_metadata(fd, meta)
            os.utime(fd, ns=(meta.atime_ns, meta.mtime_ns))
        finally:
            os.close(fd)

    def _make_symlink(
        self, untrusted_target: str, parent_fd: int, parts: tuple[str, ...], meta: _Metadata
    ) -> None:
        # The target is data and may point anywhere: nothing here resolves it.
        if not untrusted_target or "\0" in untrusted_target:
            raise _Rejected("invalid symlink target")
        if not self._mode.layer and climbs_out(parts[:-1], untrusted_target):
            # Harmless here (nothing follows it), but Docker refuses it: so do we.
            raise _Rejected(f"invalid symlink {self._shown(parts)} -> {_go_quote(untrusted_target)}")
        name = parts[-1]
        self._replace(
            parent_fd,
            parts[:-1],
            name,
            lambda: os.symlink(untrusted_target, name, dir_fd=parent_fd),
        )
        # Docker counts a symlink's size (its target's length) in the layer size.
        self._written += len(os.fsencode(untrusted_target))
        os.chown(name, meta.uid, meta.gid, dir_fd=parent_fd, follow_symlinks=False)
        # No chmod: Linux has no lchmod, and a symlink's mode means nothing.
        _set_xattrs(_path_in(parent_fd, name), meta.xattrs)
        os.utime(name, ns=(meta.atime_ns, meta.mtime_ns), dir_fd=parent_fd, follow_symlinks=False)

    def _make_hardlink(self, untrusted_target: str, parts: tuple[str, ...]) -> None:
        # The target's metadata came with its own entry, and a link is the same
        # inode: the link header's owner, mode and times are not applied.
        target = _split_path(untrusted_target, self._mode.root_name)
        if not target:
            raise _Rejected(f"hard link to {self._mode.root_name}")
        if target == parts:
            raise _Rejected("hard link to itself")
        try:
            # A copy: resolving the link's own parent below may close the cached fd.
            target_dir = os.dup(self._dirs.open(target[:-1], create=False))
        except _Rejected as e:
            raise _Rejected(f"hard link target {untrusted_target!r}: {e}") from None
        try:
            _check_link_target(target_dir, target[-1], untrusted_target)
            parent_fd = self._dirs.open(parts[:-1], create=True)
            name = parts[-1]
            try:
                self._replace(
                    parent_fd,
                    parts[:-1],
                    name,
                    lambda: os.link(
                        target[-1],
                        name,
                        src_dir_fd=target_dir,
                        dst_dir_fd=parent_fd,
                        follow_symlinks=False,
                    ),
                )
            except FileNotFoundError:
                # Replacing the link's path removed the target (an ancestor of it).
                raise _Rejected(f"hard link target {untrusted_target!r} was removed") from None
        finally:
            os.close(target_dir)

    def _make_node(
        self, member: tarfile.TarInfo, parent_fd: int, parts: tuple[str, ...], meta: _Metadata
    ) -> None:
        if member.isfifo():
            kind, device = stat.S_IFIFO, 0
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            device = _device(member)
        name = parts[-1]
        self._replace(
            parent_fd,
            parts[:-1],
            name,
            lambda: os.mknod(name, kind | 0o600, device, dir_fd=parent_fd),
        )
        # No fd for these: opening a fifo blocks and opening a device reaches its driver.
        os.chown(name, meta.uid, meta.gid, dir_fd=parent_fd, follow_symlinks=False)
        # fchmodat follows symlinks, but this name is the node mknod just made
        # and nothing else writes into the layer; chmod after chown, which clears setuid.
        os.chmod(name, meta.mode, dir_fd=parent_fd)
        _set_xattrs(_path_in(parent_fd, name), meta.xattrs)
        os.utime(name, ns=(meta.atime_ns, meta.mtime_ns), dir_fd=parent_fd, follow_symlinks=False)

    def _replace(
        self, parent_fd: int, parent: tuple[str, ...], name: str, create: Callable[[], _T]
    ) -> _T:
        """Create ``name``; if something is already there (from this layer), replace it."""
        try:
            return create()
        except FileExistsError:
            if self._mode.policy.no_overwrite_dir_nondir and stat.S_ISDIR(
                os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
            ):
                raise _Rejected(f"cannot overwrite directory {self._shown((*parent, name))} with non-directory "
                                f"{_go_quote(self._mode.policy.shown_root)}") from None
            self._remove(parent_fd, parent, name)
            return create()

    def _shown(self, parts: Sequence[str]) -> str:
        """An entry's path as the user knows the destination, quoted as Go's %q."""
        root = self._mode.policy.shown_root.rstrip("/")
        return _go_quote("/".join((root, *parts)))

    def _remove(self, parent_fd: int, parent: tuple[str, ...], name: str) -> None:
        if self._recorder is not None:
            # Files of this layer about to go: the tar-split keeps their data.
            self._recorder.release((*parent, name))
        if stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            self._dirs.forget((*parent, name))
            # fd-based and symlink-safe when given dir_fd (Python >= 3.11).
            shutil.rmtree(name, dir_fd=parent_fd)
        else:
            os.unlink(name, dir_fd=parent_fd)

    def _reserve(self, size: int) -> None:
        self._expanded += size
        if self._max_bytes is not None and self._expanded > self._max_bytes:
            raise _Rejected(f"layer expands beyond {self._max_bytes} bytes (decompression bomb?)")

    def _set_dir_times(self) -> None:
        for parts, atime_ns, mtime_ns in self._dir_times:
            fd = self._dirs.find(parts)
            if fd is not None:  # else replaced by a later entry, which set its own times
                os.utime(fd, ns=(atime_ns, mtime_ns))

    def _drain(self) -> None:
        # The caller hashes the stream while we read it: the digest must cover
        # the padding and anything else after the end-of-archive blocks.
        while data := self._reader.read(CHUNK_SIZE):
            try:
                self._reserve(len(data))
            except _Rejected as e:
                raise ArchiveError(f"invalid {self._mode.noun}: {e} after the end of the archive") from None


class _DirectoryFds:
    """Open fds of the directories from the layer root down to the last parent used.

    A tar lists a directory's entries together, so consecutive entries share
    most of their parent path; keeping that path open makes resolving a parent
    cost one open per changed component instead of a walk from the root per
    entry. ``_fds[i]`` is the directory at ``_names[:i]``; ``_fds[0]`` is the
    root, owned by the caller.
    """

    def __init__(self, root_fd: int) -> None:
        self._fds = [root_fd]
        self._names: list[str] = []

    def open(self, parts: Sequence[str], *, create: bool) -> int:
        """Return a (cached, not to be closed) fd of the directory at ``parts``.

        Never follows a symlink; with ``create``, missing directories are made
        (0755, root-owned, as Docker and containerd do for unlisted parents).
        """
        depth = 0
        for cached, wanted in zip(self._names, parts, strict=False):
            if cached != wanted:
                break
            depth += 1
        self._truncate(depth)
        for name in parts[depth:]:
            shown = "/".join((*self._names, name))
            self._fds.append(_open_directory(self._fds[-1], name, shown, create=create))
            self._names.append(name)
        return self._fds[-1]

    def find(self, parts: Sequence[str]) -> int | None:
        """Like ``open`` without creating, but None if it is not (or no longer) a directory."""
        try:
            return self.open(parts, create=False)
        except _Rejected:
            return None

    def forget(self, parts: Sequence[str]) -> None:
        """Close the cached fds at and below ``parts``, which is about to be removed."""
        if tuple(self._names[: len(parts)]) == tuple(parts):
            self._truncate(len(parts) - 1)

    def close(self) -> None:
        self._truncate(0)

    def _truncate(self, depth: int) -> None:
        while len(self._names) > depth:
            self._names.pop()
            os.close(self._fds.pop())


def _open_directory(parent_fd: int, name: str, shown: str, *, create: bool) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            raise _Rejected(f"{shown!r} does not exist") from None
    except OSError as e:
        # O_DIRECTORY|O_NOFOLLOW fails with ENOTDIR (or ELOOP) on a symlink:
        # this is where "symlink, then write through it" is stopped.
        if e.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        raise _Rejected(_not_a_directory(parent_fd, name, shown)) from None
    os.mkdir(name, 0o755, dir_fd=parent_fd)
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        os.fchmod(fd, 0o755)  # whatever the process umask
    except BaseException:
        os.close(fd)
        raise
    return fd


def _not_a_directory(parent_fd: int, name: str, shown: str) -> str:
    try:
        mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
    except OSError:
        mode = 0
    if stat.S_ISLNK(mode):
        return f"path goes through the symlink {shown!r}"
    return f"path goes through {shown!r}, which is not a directory"


def _check_link_target(target_dir: int, name: str, untrusted_target: str) -> None:
    try:
        mode = os.stat(name, dir_fd=target_dir, follow_symlinks=False).st_mode
    except FileNotFoundError:
        raise _Rejected(
            f"hard link target {untrusted_target!r} does not exist in this layer"
        ) from None
    if stat.S_ISDIR(mode):
        raise _Rejected(f"hard link target {untrusted_target!r} is a directory")


def _copy_data(reader: ForwardReader, member: tarfile.TarInfo, fd: int) -> int:
    """Copy the entry's data straight off the stream, where tarfile left it.

    A third faster than tarfile's extractfile(), which adds two layers of
    buffering; sparse files, the one case that needs it, are refused.
    """
    reader.seek(member.offset_data)
    remaining = member.size
    unsynced = 0
    while remaining:
        chunk = reader.read_data(min(remaining, CHUNK_SIZE))
        if not chunk:
            raise _Rejected("unexpected end of data")
        view = memoryview(chunk)
        while view:  # os.write may write less than asked
            view = view[os.write(fd, view) :]
        remaining -= len(chunk)
        unsynced += len(chunk)
        if unsynced >= WRITEBACK_STRIDE:
            # the disk works while we read on; the caller's final sync finds little left
            start_writeback(fd, member.size - remaining - unsynced, unsynced)
            unsynced = 0
    return member.size


def _set_fd_metadata(fd: int, meta: _Metadata) -> None:
    # chown first: it clears setuid/setgid bits and file capabilities, which
    # chmod and the xattrs then set.
    os.fchown(fd, meta.uid, meta.gid)
    os.fchmod(fd, meta.mode)
    _set_xattrs(fd, meta.xattrs)


def _set_xattrs(target: int | str, xattrs: tuple[tuple[str, bytes], ...]) -> None:
    for key, value in xattrs:
        try:
            # Python refuses follow_symlinks=False with an fd; paths must not follow.
            os.setxattr(target, key, value, follow_symlinks=isinstance(target, int))
        except OSError as e:
            # A namespace this filesystem lacks: the image works without it. And the
            # kernel refuses user.* xattrs on symlinks and device nodes (EPERM), which
            # Docker ignores too.
            if e.errno == errno.ENOTSUP or (e.errno == errno.EPERM and isinstance(target, str)):
                continue
            raise


def _path_in(dir_fd: int, name: str) -> str:
    """A path to ``name`` in ``dir_fd``, for setxattr, which has no dir_fd form.

    The /proc magic link is the already-resolved directory; ``name`` is one
    component and the callers do not follow it.
    """
    return f"/proc/self/fd/{dir_fd}/{name}"


def _split_path(untrusted_path: str, root_name: str = "the layer root") -> tuple[str, ...]:
    """The components of an entry path below the root; a leading "/" is dropped like Docker does."""
    if "\0" in untrusted_path:
        raise _Rejected("path contains a NUL byte")
    parts = []
    for part in untrusted_path.split("/"):
        if part == "..":
            raise _Rejected(f"path escapes {root_name}")
        if part not in ("", "."):
            parts.append(part)
    return tuple(parts)


def _metadata(member: tarfile.TarInfo, owner: tuple[int, int] | None = None,
              owners: Callable[[int, int], tuple[int, int]] | None = None) -> _Metadata:
    uid, gid = _owner(member) if owner is None else owner
    if owner is None and owners is not None:
        try:
            uid, gid = owners(uid, gid)
        except ValueError as e:
            raise _Rejected(str(e)) from None
    mtime_ns = _pax_time_ns(member, "mtime")
    if mtime_ns is None:
        mtime_ns = _checked_ns(int(member.mtime) * 1_000_000_000)
    atime_ns = _pax_time_ns(member, "atime")
    return _Metadata(
        uid=uid,
        gid=gid,
        mode=member.mode & 0o7777,
        atime_ns=mtime_ns if atime_ns is None else atime_ns,
        mtime_ns=mtime_ns,
        xattrs=_xattrs(member),
    )


def _owner(member: tarfile.TarInfo) -> tuple[int, int]:
    # Numeric ids only: uname/gname would mean the host's passwd, not the image's.
    if not (0 <= member.uid <= _MAX_ID and 0 <= member.gid <= _MAX_ID):
        raise _Rejected(f"invalid owner {member.uid}:{member.gid}")
    return member.uid, member.gid


def _pax_time_ns(member: tarfile.TarInfo, key: str) -> int | None:
    """A pax time ("1700000000.123456789") in ns; tarfile itself rounds it through a float."""
    text = member.pax_headers.get(key)
    if text is None:
        return None
    match = _PAX_TIME.fullmatch(text)
    if match is None:
        raise _Rejected(f"invalid pax {key} {text[:40]!r}")
    sign, seconds, fraction = match.groups()
    ns = int(seconds) * 1_000_000_000 + int((fraction or "")[:9].ljust(9, "0"))
    return _checked_ns(-ns if sign else ns)


def _checked_ns(ns: int) -> int:
    if not -_INT64 <= ns < _INT64:
        raise _Rejected("time out of range")
    return ns


def _xattrs(member: tarfile.TarInfo) -> tuple[tuple[str, bytes], ...]:
    xattrs = []
    for key, value in member.pax_headers.items():
        if not key.startswith(_PAX_XATTR_PREFIX):
            continue
        name = key[len(_PAX_XATTR_PREFIX) :]
        if not name or "\0" in name:
            raise _Rejected(f"invalid xattr name {name!r}")
        if name.startswith(_OVERLAY_XATTR_PREFIX):
            continue
        # tarfile decoded binary values with surrogateescape; this undoes it.
        xattrs.append((name, value.encode("utf-8", "surrogateescape")))
    return tuple(xattrs)


def _device(member: tarfile.TarInfo) -> int:
    if not (
        0 <= member.devmajor <= _MAX_DEVICE_NUMBER and 0 <= member.devminor <= _MAX_DEVICE_NUMBER
    ):
        raise _Rejected(f"invalid device number {member.devmajor}:{member.devminor}")
    return os.makedev(member.devmajor, member.devminor)


def _read_header(read: Callable[[], _T], last: str | None, noun: str = "layer") -> _T:
    """Run a tarfile call that parses headers; its failures name the last good entry."""
    try:
        return read()
    except (BadHeader, ArchiveError, tarfile.TarError, ValueError) as e:
        # ValueError: defensively, for tarfile's unguarded int() on header fields.
        where = f"after entry {last!r}" if last is not None else "at the first entry"
        raise ArchiveError(f"invalid {noun}: {e} ({where})") from e



def _go_quote(text: str) -> str:
    """Go's %q for the paths in Docker's extraction errors."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
