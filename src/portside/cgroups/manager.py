"""The one interface the engine uses for container cgroups, and the choice of implementation.

Lifecycle of a container's cgroup, in the order the engine calls it::

    create(path, resources)     directories in every hierarchy, limits written; nothing runs in it yet
    add_process(path, pid)      the container's init joins before it execs (its children follow)
    update / stats / oom_killed / procs / freeze / thaw    while it runs
    kill_all(path)              SIGKILL to everything in it; returns once it is empty
    remove(path)                rmdir everywhere, leaf first; refuses (Conflict) while a process remains
    remove_if_unused(parent)     the shared parent, when nothing is left in it

``path`` is relative to each hierarchy's root ("portside/<container id>"),
the layout of Docker's cgroupfs driver ("/docker/<id>"). remove never kills:
a cgroup that still holds processes is an error the caller must see.
"""

from __future__ import annotations

from typing import Protocol

from portside.cgroups.mountinfo import CgroupVersion, read_mounts, v2_mountpoint, version_of
from portside.cgroups.resources import Resources
from portside.cgroups.stats import Stats
from portside.cgroups.v1 import V1Manager
from portside.cgroups.v2 import V2Manager
from portside.errors import Unavailable

__all__ = ["CgroupVersion", "Manager", "V1Manager", "V2Manager", "detect", "for_host"]


class Manager(Protocol):
    def create(self, path: str, resources: Resources) -> None:
        """Make the cgroup (and missing parents) and apply ``resources``; an existing one is reused and reset."""

    def add_process(self, path: str, pid: int) -> None:
        """Move ``pid`` into the cgroup in every hierarchy."""

    def update(self, path: str, resources: Resources, *, fresh: bool = False) -> None:
        """Apply ``resources`` as the whole new state: what is None returns to the kernel's default.

        ``fresh``: the cgroup was made with default resources and never changed since, so
        settings that keep the kernel's default need no write.
        """

    def stats(self, path: str) -> Stats: ...

    def oom_killed(self, path: str) -> bool:
        """Whether the kernel's OOM killer has killed a process of this cgroup (for State.OOMKilled)."""

    def freeze(self, path: str) -> None:
        """Stop every process (docker pause); returns once the kernel reports the cgroup frozen."""

    def thaw(self, path: str) -> None: ...

    def procs(self, path: str) -> list[int]:
        """The processes in the cgroup and its descendants, sorted."""

    def kill_all(self, path: str) -> None:
        """SIGKILL every process, frozen ones included, and wait until none is left."""

    def remove(self, path: str) -> None:
        """rmdir the cgroup and any below it, in every hierarchy; absent is fine."""

    def remove_if_unused(self, path: str) -> None:
        """rmdir the cgroup itself in every hierarchy, at once, where it has no children and no tasks."""


def detect() -> CgroupVersion:
    """v1, hybrid (v1 controllers, plus a v2 hierarchy that only tracks processes) or v2."""
    return version_of(read_mounts())


def for_host() -> Manager:
    """The manager for this host's cgroups: V2Manager on a unified host, V1Manager otherwise.

    A hybrid host's controllers are all in its v1 hierarchies (its v2 one
    usually has none, or only a few), so it is driven as v1; the v2
    hierarchy is still joined for its process tracking and cgroup.kill.
    """
    mounts = read_mounts()
    if version_of(mounts) is CgroupVersion.V2:
        root = v2_mountpoint(mounts)
        if root is None:   # version_of said v2, so there is one; keeps the type checker honest
            raise Unavailable("no cgroup2 mount")
        return V2Manager(root)
    return V1Manager.from_mounts(mounts)
