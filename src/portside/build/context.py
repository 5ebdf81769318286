"""The build context: the client's tar, unpacked into a private directory, and paths looked up in it.

The tar comes from the client (filtered by its .dockerignore already, gzip
allowed), so it is hostile: it is extracted with tarfile's ``data`` filter
(no absolute names, nothing out of the directory, no devices, no setuid bits)
into a fresh directory under the daemon's root. Sources of COPY/ADD are then
resolved inside that directory (archive.rootpath) so that a symlink in the
context cannot reach the host.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from portside.archive.rootpath import Root, clean
from portside.build import dockerignore
from portside.errors import InvalidArgument, NotFound
from portside.readers import Reader

_GZIP_MAGIC = b"\x1f\x8b"
_BUFFER = 1 << 20


class _Prefixed(io.RawIOBase):
    """``head`` then the rest of ``reader``: the sniffed bytes put back."""

    def __init__(self, head: bytes, reader: Reader) -> None:
        self._head, self._reader = head, reader

    def readable(self) -> bool:
        return True

    def readinto(self, b: "bytearray | memoryview") -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._reader.read(len(b))
        b[:len(data)] = data
        return len(data)


def extract(untrusted_tar: Reader, parent: str) -> str:
    """Unpack the context tar (plain or gzip) into a new directory under ``parent``; returns it."""
    os.makedirs(parent, mode=0o700, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="context-", dir=parent)
    head = untrusted_tar.read(2)
    raw: io.RawIOBase = _Prefixed(head, untrusted_tar)
    buffered = io.BufferedReader(raw, _BUFFER)
    stream: io.IOBase = gzip.GzipFile(fileobj=buffered) if head == _GZIP_MAGIC else buffered
    try:
        if head:
            # large reads and copies: tarfile's defaults (10 KiB, 16 KiB) cost a Python call per few KiB
            with tarfile.open(fileobj=stream, mode="r|", bufsize=_BUFFER) as tar:
                tar.copybufsize = _BUFFER  # type: ignore[attr-defined]  # TarFile has it; typeshed does not
                tar.extractall(directory, filter=_context_filter)
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as e:
        shutil.rmtree(directory, ignore_errors=True)
        raise InvalidArgument(f"Error processing tar file({e}): ") from None
    return directory


def _context_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's ``data`` filter, except that a symlink may point anywhere (even ``/etc``), as in Docker's
    contexts, and that permissions are kept as sent, since COPY copies them.

    A symlink is only created, never followed here: every later entry still has
    to resolve inside ``dest`` (the data filter checks that through the links made
    so far), and COPY resolves sources inside the context (archive.rootpath).
    Modes: dockerd keeps a directory's whole mode (sticky and setgid too) and a
    file's permission bits (group and other write too) but not its setuid/setgid;
    the data filter would drop write bits and make directories 0755.
    """
    if member.issym():
        real = os.path.realpath(dest)
        parent = os.path.realpath(os.path.join(real, os.path.dirname(member.name.lstrip("/"))))
        if parent != real and not parent.startswith(real + os.sep):
            raise tarfile.OutsideDestinationError(member, parent)
        return tarfile.tar_filter(member, dest)
    filtered = tarfile.data_filter(member, dest)
    if member.isdir():
        return filtered.replace(mode=member.mode & 0o7777, deep=False)
    if member.isreg():
        return filtered.replace(mode=member.mode & 0o777, deep=False)
    return filtered


def drop_ignored_build_files(directory: str, dockerfile: str) -> None:
    """The Dockerfile and .dockerignore come with the context even when .dockerignore excludes them (the
    daemon needs them); once read, those it excludes are removed so that COPY does not copy them.

    Docker's .dockerignore documentation; moby's removeDockerfile.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        root = Root(fd)
        try:
            with root.lookup("/.dockerignore", follow=True) as entry:
                if not stat.S_ISREG(entry.st.st_mode):
                    return
                with open(entry.open(os.O_RDONLY), "rb") as f:
                    text = f.read(1 << 20).decode(errors="replace")
        except OSError:
            return  # none: nothing is excluded
        patterns = dockerignore.read(text)
        for name in (".dockerignore", dockerfile):
            rel = clean("/" + name).lstrip("/")
            if not rel or not dockerignore.excluded(patterns, rel):
                continue
            try:
                with root.lookup("/" + rel, follow=False) as entry:
                    if not stat.S_ISDIR(entry.st.st_mode):
                        os.unlink(entry.name, dir_fd=entry.parent_fd)
            except OSError:
                pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Source:
    """One file or directory a COPY names: where it is on disk and its name as given."""
    path: str       # on the host, inside the context (or a stage's root)
    rel: str        # relative to the context root, symlinks resolved
    is_dir: bool
    mtime: int | None = None    # the file's own mtime in the image (a download's Last-Modified), else the copy's
    extract: bool = True        # ADD may unpack it when it is a tar (a download never is, as in moby)
    name: str = ""  # the name a file is copied as: the last part of the path as given (a symlink's, not its target's)


class SourceTree:
    """A directory COPY sources are looked up in: the context, or another stage's or image's root."""

    def __init__(self, root: str, what: str = "build context") -> None:
        self.root = root
        self.what = what

    def _resolve(self, untrusted: str) -> str:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return Root(fd).resolve(untrusted).lstrip("/")
        finally:
            os.close(fd)

    def sources(self, untrusted_pattern: str, keyword: str) -> list[Source]:
        """The sources a COPY argument names: one path, or every match of a wildcard (Go's filepath.Match)."""
        pattern = clean("/" + untrusted_pattern).lstrip("/")
        if not any(c in pattern for c in "*?["):
            rel = self._resolve(pattern)
            path = os.path.join(self.root, rel) if rel else self.root
            try:
                st = os.stat(path)
            except OSError:
                where = "build context or excluded by .dockerignore" if self.what == "build context" else self.what
                raise NotFound(f"{keyword} failed: file not found in {where}: stat {untrusted_pattern}: "
                               "file does not exist") from None
            return [Source(path, rel, stat.S_ISDIR(st.st_mode), name=os.path.basename(pattern))]
        found = [s for s in self._walk() if _match(pattern, s.rel)]
        if not found:
            raise NotFound(f"{keyword} failed: no source files were specified")
        return found

    def _walk(self) -> Iterator[Source]:
        for top, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(dirs + files):
                path = os.path.join(top, name)
                rel = os.path.relpath(path, self.root)
                yield Source(path, rel, os.path.isdir(path) and not os.path.islink(path))


def _match(pattern: str, rel: str) -> bool:
    """Go's filepath.Match: ``*`` and ``?`` never cross a ``/``; the names must have as many parts."""
    p_parts, r_parts = pattern.split("/"), rel.split("/")
    if len(p_parts) != len(r_parts):
        return False
    return all(fnmatch.fnmatchcase(r, p) for p, r in zip(p_parts, r_parts))
