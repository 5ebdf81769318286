"""Where the cgroup hierarchies are mounted, read from /proc/self/mountinfo.

Nothing assumes /sys/fs/cgroup: hosts mount v1 controllers singly
(``cpu``, ``cpuacct``) or joined (``cpu,cpuacct``, ``net_cls,net_prio``),
under any path, and a v2 hierarchy either at the top (unified mode) or beside
the v1 ones (hybrid mode, usually at ``unified``, often with no controllers).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from portside.errors import Unavailable

# The v1 controllers the kernel has (Documentation/admin-guide/cgroup-v1). Anything else in a
# v1 mount's super options is a mount flag (rw, clone_children, xattr, release_agent=...).
V1_CONTROLLERS = frozenset({"cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls",
                            "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc", "debug"})


class CgroupVersion(enum.Enum):
    V1 = "v1"            # only v1 hierarchies
    HYBRID = "hybrid"    # v1 hierarchies hold the controllers; a v2 hierarchy beside them tracks processes
    V2 = "v2"            # one unified v2 hierarchy


@dataclass(frozen=True)
class CgroupMount:
    mountpoint: str
    version: int                   # 1 or 2
    controllers: frozenset[str]    # v1: "cpu", "cpuacct", "name=systemd", ...; v2: empty (see cgroup.controllers)
    root: str                      # the hierarchy's directory shown at the mount point ("/" on a host)


_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040)
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup and cgroup2 mounts in a mountinfo text, in mount order."""
    mounts: list[CgroupMount] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 6 or len(tail) < 3:
            continue
        fstype, superopts = tail[0], tail[2].split(",")
        if fstype == "cgroup":
            controllers = frozenset(o for o in superopts if o in V1_CONTROLLERS or o.startswith("name="))
            mounts.append(CgroupMount(_unescape(fields[4]), 1, controllers, _unescape(fields[3])))
        elif fstype == "cgroup2":
            mounts.append(CgroupMount(_unescape(fields[4]), 2, frozenset(), _unescape(fields[3])))
    return mounts


def version_of(mounts: list[CgroupMount]) -> CgroupVersion:
    """Unified when no v1 hierarchy holds a controller; hybrid when v1 and v2 are both mounted.

    A named v1 hierarchy alone (``name=systemd``, kept for old containers on
    a v2 host) holds no controller and does not make a host v1.
    """
    v1 = any(m.version == 1 and any(not c.startswith("name=") for c in m.controllers) for m in mounts)
    v2 = any(m.version == 2 for m in mounts)
    if v1:
        return CgroupVersion.HYBRID if v2 else CgroupVersion.V1
    if v2:
        return CgroupVersion.V2
    raise Unavailable("no cgroup filesystem is mounted")


def v1_hierarchies(mounts: list[CgroupMount]) -> dict[str, str]:
    """controller (or ``name=...``) → mount point; joined controllers share one mount point.

    A hierarchy mounted twice (a bind mount) is taken at its first mount.
    """
    found: dict[str, str] = {}
    for m in mounts:
        if m.version == 1:
            for c in sorted(m.controllers):
                found.setdefault(c, m.mountpoint)
    return found


def v2_mountpoint(mounts: list[CgroupMount]) -> str | None:
    return next((m.mountpoint for m in mounts if m.version == 2), None)


def read_mounts(path: str = "/proc/self/mountinfo") -> list[CgroupMount]:
    with open(path) as f:
        return parse_mountinfo(f.read())
