"""Paths inside a directory treated as ``/``, resolved one component at a time from fds.

The directory is a container's root filesystem and the container may be
running: any component may be swapped for a symlink between two system
calls. So every step opens the next directory relative to the previous one
with ``O_NOFOLLOW``, and a symlink is read and resolved *by us* inside the
root (an absolute target restarts at the root, ``..`` stops there), as
moby's ``FollowSymlinkInScope`` and a chroot do. Nothing is ever resolved by
the kernel through a symlink, so no race can lead outside the root: at worst
a lookup fails.

Paths are cleaned lexically first, as Go's ``filepath.Join("/", path)`` does
in Docker: ``/a/b/..`` is ``/a`` whatever ``b`` is.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40  # the kernel's own limit for a path walk


def clean(path: str) -> str:
    """Go's ``filepath.Clean("/" + path)``: absolute, no ``.``/``..``/empty components."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def asserts_directory(path: str) -> bool:
    """Does ``path`` end in ``/`` or ``/.`` (or is ``.``): the user says it is a directory."""
    return path.endswith("/") or path == "." or path.endswith("/.")


def base_name(path: str) -> str:
    """Go's ``filepath.Base``: the last element, trailing slashes ignored; ``/`` for the root."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    return stripped.rsplit("/", 1)[-1]


@dataclass
class Entry:
    """A path found in the root: its parent directory (an fd this entry owns) and its name in it.

    ``name`` is ``"."`` when the entry is a directory reached as a whole (the
    root itself, or a path ending in a symlink to a directory that was
    followed); ``path`` is where it is, resolved, as seen from inside the root.
    """

    parent_fd: int
    name: str
    path: str
    st: os.stat_result

    def close(self) -> None:
        if self.parent_fd >= 0:
            os.close(self.parent_fd)
            self.parent_fd = -1

    def open(self, flags: int) -> int:
        """Open the entry itself (never following a symlink); ``flags`` as for os.open."""
        return os.open(self.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.parent_fd)

    def __enter__(self) -> Entry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Root:
    """A directory fd (kept by the caller) that paths are resolved in, as if it were ``/``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def lookup(self, untrusted_path: str, *, follow: bool) -> Entry:
        """The entry at ``untrusted_path``; a final symlink is followed only with ``follow``.

        Raises FileNotFoundError (or NotADirectoryError, or ELOOP) as a
        path walk would; the caller owns the returned entry.
        """
        stack = [os.dup(self.fd)]  # the directories from the root down to the current one
        names: list[str] = []
        try:
            return self._walk(_components(untrusted_path), stack, names, follow)
        finally:
            for fd in stack:
                os.close(fd)

    def resolve(self, untrusted_path: str) -> str:
        """Every symlink of ``untrusted_path`` resolved in the root; missing components are kept as given.

        moby's ``FollowSymlinkInScope``: the ``linkTarget`` of a path stat.
        """
        parts = _components(untrusted_path)
        stack = [os.dup(self.fd)]
        names: list[str] = []
        links = 0
        try:
            while parts:
                part = parts.pop(0)
                if part == "..":
                    _pop(stack, names)
                    continue
                try:
                    st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError):
                    return clean("/".join([*names, part, *parts]))
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > _MAX_LINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), untrusted_path)
                    target = os.readlink(part, dir_fd=stack[-1])
                    if target.startswith("/"):
                        _pop(stack, names, all=True)
                    parts = _components(target) + parts
                elif stat.S_ISDIR(st.st_mode) and parts:
                    stack.append(os.open(part, _DIR_FLAGS, dir_fd=stack[-1]))
                    names.append(part)
                else:
                    return clean("/".join([*names, part, *parts]))
            return clean("/".join(names))
        finally:
            for fd in stack:
                os.close(fd)

    def _walk(self, parts: list[str], stack: list[int], names: list[str], follow: bool) -> Entry:
        links = 0
        while parts:
            part = parts.pop(0)
            if part == "..":  # only ever from a symlink's target: the caller's path is clean
                _pop(stack, names)
                continue
            last = not parts
            st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode) and (follow or not last):
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part)
                target = os.readlink(part, dir_fd=stack[-1])
                if target.startswith("/"):
                    _pop(stack, names, all=True)
                parts = _components(target) + parts
                continue
            if last:
                return Entry(os.dup(stack[-1]), part, clean("/".join([*names, part])), st)
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), part)
            # O_NOFOLLOW: if it became a symlink since the stat, this fails instead of leaving the root.
            stack.append(os.open(part, _DIR_FLAGS, dir_fd=stack[-1]))
            names.append(part)
        # The walk ended on a directory (the root, or a symlink's target ending in "..").
        return Entry(os.dup(stack[-1]), ".", clean("/".join(names)), os.fstat(stack[-1]))


def _components(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _pop(stack: list[int], names: list[str], *, all: bool = False) -> None:
    """Go up one directory (or to the root); never above the root."""
    while len(stack) > 1:
        os.close(stack.pop())
        names.pop()
        if not all:
            return
