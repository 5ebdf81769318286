"""Directory trees of plain files laid out like cgroup mounts, for tests without root or without v2.

The managers only open, read and write files, so a tree with the right names
and the kernel's default contents exercises all of their write and read
logic. What a plain directory cannot do is be the kernel: mkdir does not
populate a new cgroup, writes are not validated, rmdir refuses a directory
with files. So the tree is laid out up to and including the container's own
directory, and a test removes it with shutil.rmtree.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

# The files a new cgroup has, by controller, with the kernel's default contents.
V2_FILES: Mapping[str, Mapping[str, str]] = {
    "": {"cgroup.procs": "", "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.freeze": "0\n", "cgroup.kill": "",
         "cgroup.type": "domain\n", "cgroup.subtree_control": "\n",
         "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"},
    "cpuset": {"cpuset.cpus": "\n", "cpuset.mems": "\n"},
    "cpu": {"cpu.weight": "100\n", "cpu.max": "max 100000\n"},
    "io": {"io.weight": "default 100\n", "io.stat": ""},
    "memory": {"memory.max": "max\n", "memory.swap.max": "max\n", "memory.low": "0\n", "memory.current": "0\n",
               "memory.peak": "0\n", "memory.stat": "anon 0\nfile 0\n",
               "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"},
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
}

V1_FILES: Mapping[str, Mapping[str, str]] = {
    "cpu": {"cpu.shares": "1024\n", "cpu.cfs_period_us": "100000\n", "cpu.cfs_quota_us": "-1\n",
            "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"},
    "cpuacct": {"cpuacct.usage": "0\n", "cpuacct.usage_percpu": "0 0 \n", "cpuacct.stat": "user 0\nsystem 0\n"},
    "cpuset": {"cpuset.cpus": "\n", "cpuset.mems": "\n"},
    "memory": {"memory.limit_in_bytes": "9223372036854771712\n", "memory.memsw.limit_in_bytes": "9223372036854771712\n",
               "memory.soft_limit_in_bytes": "9223372036854771712\n", "memory.usage_in_bytes": "0\n",
               "memory.max_usage_in_bytes": "0\n", "memory.failcnt": "0\n", "memory.stat": "cache 0\nrss 0\n",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"},
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
    "blkio": {"blkio.bfq.weight": "100\n", "blkio.throttle.io_service_bytes_recursive": "Total 0\n"},
    "freezer": {"freezer.state": "THAWED\n"},
}

# This host's kind of layout, and the common systemd one with cpu and cpuacct joined.
SEPARATE = {"cpu": ("cpu",), "cpuacct": ("cpuacct",), "cpuset": ("cpuset",), "memory": ("memory",),
            "pids": ("pids",), "blkio": ("blkio",), "freezer": ("freezer",)}
JOINED = {"cpu,cpuacct": ("cpu", "cpuacct"), "cpuset": ("cpuset",), "memory": ("memory",), "pids": ("pids",),
          "blkio": ("blkio",), "freezer": ("freezer",)}


def _populate(directory: str, files: Iterable[Mapping[str, str]]) -> None:
    os.makedirs(directory, exist_ok=True)
    for group in files:
        for name, content in group.items():
            with open(os.path.join(directory, name), "w") as f:
                f.write(content)


def _levels(top: str, path: str) -> list[str]:
    levels, current = [top], top
    for part in path.split("/"):
        current = os.path.join(current, part)
        levels.append(current)
    return levels


def v2_tree(root: str, path: str, *,
            controllers: tuple[str, ...] = ("cpuset", "cpu", "io", "memory", "pids")) -> str:
    """Lay out ``root`` like a cgroup2 mount that holds cgroup ``path``; returns the cgroup's directory."""
    levels = _levels(root, path)
    for level in levels:
        _populate(level, [V2_FILES[""]] + [V2_FILES[c] for c in controllers])
        with open(os.path.join(level, "cgroup.controllers"), "w") as f:
            f.write(" ".join(controllers) + "\n")
    for name in ("cpuset.cpus", "cpuset.mems"):   # the root has the host's; a new cgroup is empty (inherits)
        if "cpuset" in controllers:
            with open(os.path.join(root, name), "w") as f:
                f.write("0-3\n" if name == "cpuset.cpus" else "0\n")
    return levels[-1]


def v1_tree(base: str, path: str, *, layout: Mapping[str, tuple[str, ...]] = SEPARATE) -> dict[str, str]:
    """Lay out one v1 hierarchy per ``layout`` entry (mount dir name → its controllers) under ``base``.

    Returns the controller → mount point map a ``V1Manager`` takes. The
    hierarchy roots hold the host's cpuset (0-3, node 0); every cgroup below
    starts with an empty one, as in the kernel.
    """
    hierarchies: dict[str, str] = {}
    for mount, controllers in layout.items():
        top = os.path.join(base, mount)
        for level in _levels(top, path):
            _populate(level, [{"cgroup.procs": "", "tasks": ""}] + [V1_FILES[c] for c in controllers])
        if "cpuset" in controllers:
            _populate(top, [{"cpuset.cpus": "0-3\n", "cpuset.mems": "0\n"}])
        for c in controllers:
            hierarchies[c] = top
    return hierarchies
