"""The local half of ``cp``: moby's ``pkg/archive/copy.go`` and the client side of its ``Untar``.

``cp`` sends and receives tars; what makes it behave like ``cp -a`` is how
the two ends are described (``CopyInfo``: does the path exist, is it a
directory, was it reached through a symlink) and how the top entry of the
tar is renamed so that extracting it in a directory gives the asked-for
name (``prepare_archive_copy``). The rules, with the error texts, are
Docker's.

Local paths follow Go's ``filepath`` semantics (``clean`` is ``Clean``).
The tar going up is written by ``tarfile`` in a thread, into a pipe the
upload reads; the tar coming down is extracted here, entry by entry, never
through a symlink (each parent is opened with ``O_NOFOLLOW`` from the
destination) and never outside the destination, as Docker's Untar does
with ``NoLchown`` and ``NoOverwriteDirNonDir``.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import threading
from portside.oci.gopath import clean, climbs_out
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Callable, Iterator

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_SYMLINKS = 10  # CopyInfoDestinationPath's own limit


class CopyError(Exception):
    """A local failure of ``cp``, worded as Docker's."""


# -- paths, as Go's filepath and moby's archive package see them -----------------------



def base(path: str) -> str:
    """Go's ``filepath.Base``."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def _dir(path: str) -> str:
    """Go's ``filepath.Dir``."""
    head = path[: path.rfind("/") + 1] if "/" in path else ""
    return clean(head) if head else "."


def has_trailing_separator(path: str) -> bool:
    return path.endswith("/")


def specifies_current_dir(path: str) -> bool:
    return base(path) == "."


def asserts_directory(path: str) -> bool:
    return has_trailing_separator(path) or specifies_current_dir(path)


def preserve_trailing_dot_or_separator(cleaned: str, original: str) -> str:
    if not specifies_current_dir(cleaned) and specifies_current_dir(original):
        if not has_trailing_separator(cleaned):
            cleaned += "/"
        cleaned += "."
    if not has_trailing_separator(cleaned) and has_trailing_separator(original):
        cleaned += "/"
    return cleaned


def split_path_dir_entry(path: str) -> tuple[str, str]:
    """moby's ``SplitPathDirEntry``: directory and last element, a trailing ``.`` kept."""
    cleaned = clean(path)
    if specifies_current_dir(path):
        cleaned += "/."
    return _dir(cleaned), base(cleaned)


def absolute(local_path: str) -> str:
    """``filepath.Abs`` with the trailing ``/`` or ``/.`` of the original kept (resolveLocalPath)."""
    joined = local_path if local_path.startswith("/") else os.path.join(os.getcwd(), local_path)
    return preserve_trailing_dot_or_separator(clean(joined), local_path)


def _eval_symlinks(path: str) -> str:
    """Go's ``filepath.EvalSymlinks``: every link resolved, the path must exist."""
    try:
        return os.path.realpath(path, strict=True)
    except FileNotFoundError as e:
        raise CopyError(f"lstat {e.filename or path}: no such file or directory") from None
    except NotADirectoryError as e:
        raise CopyError(f"lstat {e.filename or path}: not a directory") from None
    except OSError as e:
        raise CopyError(f"lstat {e.filename or path}: {(e.strerror or str(e)).lower()}") from None


def get_rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """moby's ``GetRebaseName``: the resolved path (trailing ``/`` or ``/.`` kept) and the name to give it."""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if has_trailing_separator(path) and not has_trailing_separator(resolved):
        resolved += "/"
    return resolved, (base(path) if base(path) != base(resolved) else "")


@dataclass
class CopyInfo:
    path: str
    exists: bool = False
    is_dir: bool = False
    rebase_name: str = ""


def copy_info_source_path(path: str, follow_link: bool) -> CopyInfo:
    """What is to be sent: symlinks before the last element are resolved, the last only with -L."""
    if follow_link:
        resolved, rebase = get_rebase_name(path, _eval_symlinks(path))
    else:
        parent, last = path[: path.rfind("/") + 1], path[path.rfind("/") + 1 :]
        resolved = _eval_symlinks(parent or ".").rstrip("/") + "/" + last
        rebase = base(path) if has_trailing_separator(path) and base(path) != base(resolved) else ""
    st = _lstat(resolved)
    return CopyInfo(resolved, True, stat.S_ISDIR(st.st_mode), rebase)


def copy_info_destination_path(path: str) -> CopyInfo:
    """Where a copy from a container lands: a final symlink is followed (up to 10 times); the parent must exist."""
    original = path
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise CopyError(f"lstat {path}: {(e.strerror or '').lower()}") from None
    hops = 0
    while st is not None and stat.S_ISLNK(st.st_mode):
        hops += 1
        if hops > _MAX_SYMLINKS + 1:
            raise CopyError(f"too many symlinks in {original}")
        target = os.readlink(path)
        path = target if target.startswith("/") else clean(split_path_dir_entry(path)[0] + "/" + target)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
    if st is not None:
        return CopyInfo(path, True, stat.S_ISDIR(st.st_mode))
    parent = split_path_dir_entry(path)[0]
    parent_st = _stat(parent)
    if not stat.S_ISDIR(parent_st.st_mode):
        raise CopyError("not a directory")
    return CopyInfo(path)


def prepare_archive_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, str | None]:
    """moby's ``PrepareArchiveCopy``: the directory to extract in, and the new name of the tar's top entry (if any)."""
    dst_dir, dst_base = split_path_dir_entry(dst.path)
    if dst.exists and dst.is_dir:
        return dst.path, None  # extracted into it, as is
    if dst.exists and src.is_dir:
        raise CopyError("cannot copy directory")
    if not dst.exists and not src.is_dir and asserts_directory(dst.path):
        raise CopyError("no such directory")
    # Created (or replaced) as dst's last element, next to it.
    return dst_dir, dst_base


def rebaser(old: str, new: str) -> Callable[[str], str]:
    """moby's ``newNameRebaser``: ``old`` replaced by ``new`` at the start of entry names."""
    old, new = old.rstrip("/"), new.rstrip("/")
    if not old:
        return lambda name: (new + "/" if new else "") + name.lstrip("/")

    def rename(name: str) -> str:
        if not name.startswith(old):
            return name
        suffix = name[len(old) :]
        if suffix and not suffix.startswith("/"):
            return name
        return new + suffix

    return rename


def _lstat(path: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except OSError as e:
        raise CopyError(f"lstat {path}: {(e.strerror or str(e)).lower()}") from None


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as e:
        raise CopyError(f"stat {path}: {(e.strerror or str(e)).lower()}") from None


# -- the tar going up ---------------------------------------------------------------------


class TarUpload:
    """A tar of a local file or tree written by a thread into a pipe; ``reader`` is the pipe's end.

    moby's ``TarResourceRebase``: the top entry is named ``top``, what is
    below it ``top/...``; ownership is numeric, times whole seconds.
    """

    def __init__(self, source: str, top: str) -> None:
        read_fd, write_fd = os.pipe()
        self.reader: IO[bytes] = os.fdopen(read_fd, "rb")
        self.error: BaseException | None = None
        self.sent = 0
        self._thread = threading.Thread(target=self._write, args=(source, top, write_fd), daemon=True)
        self._thread.start()

    def _write(self, source: str, top: str, write_fd: int) -> None:
        try:
            with os.fdopen(write_fd, "wb") as out, _GoTarFile.open(fileobj=out, mode="w|",
                                                                   format=tarfile.PAX_FORMAT) as tar:
                tar.add(source, arcname=top, filter=_docker_header)
        except BrokenPipeError:
            pass  # the upload stopped reading: its own error says why
        except BaseException as e:
            self.error = e

    def close(self) -> None:
        self.reader.close()
        self._thread.join()


class _GoTarFile(tarfile.TarFile):
    """Ends the archive as Go's tar writer does: two zero blocks, no padding to a 10 KiB record."""

    def close(self) -> None:
        if self.closed:  # type: ignore[has-type]
            return
        self.closed = True
        try:
            self.fileobj.write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
        finally:
            if not self._extfileobj:  # type: ignore[attr-defined]
                self.fileobj.close()


def _docker_header(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = int(info.mtime)  # a float would add a PAX record; Docker cuts to the second
    info.uname = info.gname = ""
    return info


# -- the tar coming down ----------------------------------------------------------------


def untar(untrusted: IO[bytes], dest: str, rename: Callable[[str], str]) -> None:
    """Extract into the directory ``dest`` as Docker's client does (NoLchown, NoOverwriteDirNonDir).

    ``rename`` maps each entry's name (and a hard link's target) first.
    """
    dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    dirs: list[tuple[tuple[str, ...], int]] = []  # directory mtimes, set last
    try:
        with tarfile.open(fileobj=untrusted, mode="r|", bufsize=1 << 20) as tar:
            for member in tar:
                if member.type in (tarfile.XGLTYPE, tarfile.XHDTYPE):
                    continue
                name = rename(member.name)
                parts = _parts(name, dest)
                if not parts:
                    continue  # the destination itself ("./"): left as it is
                _extract(tar, member, dest_fd, dest, parts, rename, dirs)
        for parts, mtime in reversed(dirs):
            try:
                fd = _open_dir(dest_fd, parts, dest, create=False)
            except CopyError:
                continue
            try:
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
    except tarfile.TarError as e:
        raise CopyError(f"invalid tar from the daemon: {e}") from None
    finally:
        os.close(dest_fd)


def _parts(name: str, dest: str) -> tuple[str, ...]:
    parts: list[str] = []
    for part in name.split("/"):
        if part == "..":
            if not parts:
                raise CopyError(f'"{name}" is outside of "{dest}"')
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return tuple(parts)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, dest_fd: int, dest: str, parts: tuple[str, ...],
             rename: Callable[[str], str], dirs: list[tuple[tuple[str, ...], int]]) -> None:
    shown = os.path.join(dest, *parts)
    parent = _open_dir(dest_fd, parts[:-1], dest, create=True)
    name = parts[-1]
    try:
        try:
            existing: os.stat_result | None = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            is_dir = stat.S_ISDIR(existing.st_mode)
            if is_dir and not member.isdir():
                raise CopyError(f'cannot overwrite directory "{shown}" with non-directory "{dest}"')
            if not is_dir and member.isdir():
                raise CopyError(f'cannot overwrite non-directory "{shown}" with directory "{dest}"')
            if not is_dir:
                os.unlink(name, dir_fd=parent)
        if member.isdir():
            if existing is None:
                os.mkdir(name, 0o700, dir_fd=parent)
            os.chmod(name, member.mode & 0o7777, dir_fd=parent, follow_symlinks=False)
            dirs.append((parts, int(member.mtime)))
            return
        if member.isreg():
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)
            try:
                data = tar.extractfile(member)
                while data is not None and (chunk := data.read(1 << 20)):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                os.fchmod(fd, member.mode & 0o7777)
                os.utime(fd, (member.mtime, member.mtime))
            finally:
                os.close(fd)
        elif member.issym():
            if climbs_out(parts[:-1], member.linkname):
                raise CopyError(f'invalid symlink "{shown}" -> "{member.linkname}"')
            os.symlink(member.linkname, name, dir_fd=parent)
            os.utime(name, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
        elif member.islnk():
            target = _parts(rename(member.linkname), dest)
            if not target:
                raise CopyError(f'invalid hardlink "{dest}" -> "{member.linkname}"')
            target_dir = _open_dir(dest_fd, target[:-1], dest, create=False)
            try:
                os.link(target[-1], name, src_dir_fd=target_dir, dst_dir_fd=parent, follow_symlinks=False)
            finally:
                os.close(target_dir)
        elif member.isfifo() or member.ischr() or member.isblk():
            kind = stat.S_IFIFO if member.isfifo() else stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(name, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
            os.chmod(name, member.mode & 0o7777, dir_fd=parent, follow_symlinks=False)
            os.utime(name, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
        else:
            raise CopyError(f"unhandled tar header type {member.type!r}")
    except OSError as e:
        raise CopyError(f"{shown}: {(e.strerror or str(e)).lower()}") from None
    finally:
        os.close(parent)


def _open_dir(dest_fd: int, parts: tuple[str, ...], dest: str, *, create: bool) -> int:
    """The directory at ``parts`` below ``dest``, never through a symlink; missing ones made 0755 with ``create``."""
    fd = os.dup(dest_fd)
    try:
        for i, part in enumerate(parts):
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise CopyError(f"{os.path.join(dest, *parts[: i + 1])}: no such file or directory") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise CopyError(f'"{os.path.join(dest, *parts[: i + 1])}" is not a directory inside "{dest}"') from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise



def chunks_reader(chunks: Iterator[bytes]) -> IO[bytes]:
    """A file object over an iterator of byte chunks (an HTTP response body), for tarfile's stream mode."""
    import io

    class _Reader(io.RawIOBase):
        def __init__(self) -> None:
            self._pending = b""

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: "bytearray | memoryview") -> int:  # type: ignore[override]
            if not self._pending:
                self._pending = next(chunks, b"")
            count = min(len(buffer), len(self._pending))
            buffer[:count] = self._pending[:count]
            self._pending = self._pending[count:]
            return count

    return io.BufferedReader(_Reader(), 1 << 16)
