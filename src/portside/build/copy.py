"""COPY and ADD: context (or stage) files written into a mounted build snapshot, with Docker's rules.

- a directory source copies what it holds, not itself; a file source lands
  at the destination, or in it when the destination ends in ``/`` or is a
  directory already; several sources need a destination ending in ``/``;
- missing parents of the destination are made 0755, owned as the files are;
- owner 0:0 unless ``--chown`` (names looked up in the image's /etc/passwd
  and /etc/group), mode as in the source unless ``--chmod``;
- ADD extracts a local tar (plain, gzip, bzip2, xz) into the destination,
  never a download (build.remote gives those with ``extract=False``).

The files are put into a tar named from the snapshot's root and extracted
with archive.apply's extract_archive, so the destination is resolved inside
the root and nothing is written through a symlink out of it. Every mtime is
the build's epoch (a download's is its Last-Modified, at most the epoch): the
same inputs give the same layer.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from portside.archive.apply import ExtractPolicy, extract_archive
from portside.archive.rootpath import Root, asserts_directory, clean
from portside.build.context import Source
from portside.containers.user import resolve_user
from portside.errors import InvalidArgument

_READ = os.O_RDONLY | os.O_CLOEXEC


@dataclass(frozen=True)
class CopyOptions:
    keyword: str                         # "COPY" or "ADD", for messages
    owner: str = ""                      # --chown, unresolved
    chmod: int | None = None             # --chmod
    extract_tars: bool = False           # ADD
    mtime: int = 0


def parse_chmod(value: str) -> int | None:
    if not value:
        return None
    try:
        mode = int(value, 8)
    except ValueError:
        raise InvalidArgument(f"invalid chmod parameter: {value!r}") from None
    if not 0 <= mode <= 0o7777:
        raise InvalidArgument(f"invalid chmod parameter: {value!r}")
    return mode


def content_hash(sources: list[Source]) -> str:
    """What the cache compares for COPY/ADD: every file's name, type, mode, link target and content.

    Shown in the history as the classic builder does (``file:``, ``dir:`` or ``multi:`` and a hash: not
    the same hash as Docker's, which sums tar headers).
    """
    h = hashlib.sha256()
    for source in sources:
        for rel, path, st in _walk(source):
            h.update(f"{source.rel}\0{source.name}\0{rel}\0{stat.S_IFMT(st.st_mode)}\0"
                     f"{stat.S_IMODE(st.st_mode)}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
            h.update(b"\n")
        if source.mtime is not None:  # a download's mtime is part of the layer
            h.update(f"mtime {source.mtime}\n".encode())
    # the classic builder's kinds of source: one file, one directory, several
    kind = "multi" if len(sources) != 1 else "dir" if sources[0].is_dir else "file"
    return f"{kind}:{h.hexdigest()}"


def _walk(source: Source) -> Iterator[tuple[str, str, os.stat_result]]:
    """(name below the source, path, lstat) for the source itself ("") and, for a directory, all below it."""
    yield "", source.path, os.stat(source.path)
    if not source.is_dir:
        return
    for top, dirs, files in os.walk(source.path):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(top, name)
            yield os.path.relpath(path, source.path), path, os.lstat(path)


def copy_into(root_fd: int, sources: list[Source], untrusted_dest: str, workdir: str, opts: CopyOptions) -> None:
    """Write ``sources`` to ``untrusted_dest`` (relative to ``workdir``) in the root open as ``root_fd``."""
    root = Root(root_fd)
    dest_abs = untrusted_dest if untrusted_dest.startswith("/") else (workdir or "/").rstrip("/") + "/" + untrusted_dest
    dest = root.resolve(clean(dest_abs)).lstrip("/")
    wants_dir = asserts_directory(untrusted_dest)
    if len(sources) > 1 and not wants_dir:
        raise InvalidArgument(f"When using {opts.keyword} with more than one source file, "
                              "the destination must be a directory and end with a /")
    owner = _owner(root, opts.owner) if opts.owner else (0, 0)
    is_dir = wants_dir or _is_dir(root_fd, dest)
    with tempfile.TemporaryFile() as buf:
        tars: list[tuple[str, str]] = []
        made: set[str] = set()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            def parents(name: str, *, itself: bool) -> None:
                parts = name.split("/") if name else []
                upto = parts if itself else parts[:-1]
                for i in range(1, len(upto) + 1):
                    d = "/".join(upto[:i])
                    if d in made or _is_dir(root_fd, d):
                        continue
                    made.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, opts.mtime
                    info.uid, info.gid = owner
                    tar.addfile(info)

            if not sources:  # WORKDIR: just the directory
                parents(dest, itself=True)
            for source in sources:
                if source.is_dir:
                    parents(dest, itself=True)
                    for rel, path, st in _walk(source):
                        if rel:
                            _add(tar, path, f"{dest}/{rel}" if dest else rel, st, owner, opts)
                elif opts.extract_tars and source.extract and _is_archive(source.path):
                    parents(dest, itself=True)
                    tars.append((source.path, dest))
                else:
                    base = source.name or os.path.basename(source.rel)
                    name = (f"{dest}/{base}" if dest else base) if is_dir else dest
                    if not name:
                        raise InvalidArgument(f"{opts.keyword} failed: cannot copy a file to /")
                    parents(name, itself=False)
                    _add(tar, source.path, name, os.stat(source.path), owner, opts, source.mtime)
        buf.seek(0)
        extract_archive(buf, root_fd, ExtractPolicy(shown_root="/"))
    for path, into in tars:
        _extract_tar(root_fd, path, into)


def _add(tar: tarfile.TarFile, path: str, name: str, st: os.stat_result, owner: tuple[int, int],
         opts: CopyOptions, mtime: int | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.uid, info.gid = owner
    info.mtime = opts.mtime if mtime is None else mtime
    info.mode = opts.chmod if opts.chmod is not None else stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        info.mode = 0o777
        tar.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
        with open(path, "rb") as f:
            tar.addfile(info, f)
    # sockets, fifos and devices in a context are left out, as Docker's tar of the context does


def _is_dir(root_fd: int, rel: str) -> bool:
    if not rel:
        return True
    try:
        with Root(root_fd).lookup("/" + rel, follow=True) as entry:
            return stat.S_ISDIR(entry.st.st_mode)
    except OSError:
        return False


def _owner(root: Root, spec: str) -> tuple[int, int]:
    def text(path: str) -> str | None:
        try:
            with root.lookup(path, follow=True) as entry:
                fd = entry.open(_READ)
                with open(fd, "rb") as f:
                    return f.read(1 << 20).decode(errors="replace")
        except OSError:
            return None
    user, _, group = spec.partition(":")
    mapping = "unable to convert uid/gid chown string to host mapping"  # dockerd's words
    try:
        uid, gid, _ = resolve_user(user, text("/etc/passwd"), text("/etc/group"))
    except InvalidArgument:
        raise InvalidArgument(f"{mapping}: can't find uid for user {user}: no such user: {user}") from None
    if group:
        try:
            _, gid, _ = resolve_user(f"{user}:{group}", text("/etc/passwd"), text("/etc/group"))
        except InvalidArgument:
            raise InvalidArgument(f"{mapping}: can't find gid for group {group}: no such group: {group}") from None
    return uid, gid


_MAGIC = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))


def _is_archive(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _extract_tar(root_fd: int, path: str, into: str) -> None:
    with open(path, "rb") as f:
        head = f.read(6)
    opener = next((o for magic, o in _MAGIC if head.startswith(magic)), None)
    with (opener(path, "rb") if opener else open(path, "rb")) as stream:
        fd = os.open(into or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
        try:
            extract_archive(stream, fd, ExtractPolicy(shown_root="/" + into))
        finally:
            os.close(fd)
