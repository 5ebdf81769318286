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
