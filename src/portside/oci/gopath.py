"""Go's ``path.Clean``, which every Docker tool applies to the paths it is given.

Shared by the CLI (``cp``, ``-v``, .dockerignore patterns) and the engine
(mount destinations, Dockerfile paths), so one definition decides what a
path means on both sides of the API.
"""

from __future__ import annotations

import posixpath


def clean(path: str) -> str:
    """The shortest equivalent path, purely lexical: ``./a//b/`` → ``a/b``, ``/../x`` → ``/x``, ``""`` → ``.``.

    ``posixpath.normpath`` is Go's rule except that it keeps a leading ``//`` (POSIX allows
    it a meaning); Go does not.
    """
    cleaned = posixpath.normpath(path) if path else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def climbs_out(parent: tuple[str, ...] | list[str], untrusted_target: str) -> bool:
    """Does a relative symlink in directory ``parent`` (path parts below the destination) point
    above the destination? moby's "invalid symlink", refused by ``cp`` on both sides.

    Absolute targets stay in: Docker joins them to the destination too.
    """
    if untrusted_target.startswith("/"):
        return False
    depth = len(parent)
    for part in untrusted_target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False
