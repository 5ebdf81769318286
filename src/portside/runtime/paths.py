"""Paths inside a container's root filesystem, resolved as if the root were ``/``.

An image may hold ``/etc -> /tmp/evil`` or ``run -> ../../..``: a mount target
or a file the engine writes inside the rootfs must resolve symlinks *within*
the rootfs (like a chroot), never escape it.
"""

from __future__ import annotations

import os
import posixpath
import stat

from portside.errors import InvalidArgument

_MAX_LINKS = 255


def secure_join(root: str, untrusted_path: str) -> str:
    """``root`` + ``untrusted_path`` with every symlink resolved inside ``root``.

    Components that do not exist (yet) are appended as given: the result is
    where the caller may create them.
    """
    parts = [p for p in untrusted_path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise InvalidArgument(f"{untrusted_path}: too many levels of symbolic links")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return posixpath.join(root, *resolved)
