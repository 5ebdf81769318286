"""A container's usage figures: what Docker's stats API reports, from either cgroup version.

The record keeps the kernel's numbers in the units the API uses
(nanoseconds, bytes); ``None`` is "no limit" or "the kernel does not report
it" (v2 has no per-CPU usage; memory.peak exists only on newer kernels). The
API layer turns an unlimited memory limit into the host's memory, as dockerd
does, and picks Docker's v1 or v2 shape by ``unified`` (the two report
different memory.stat keys, and v2 has no max_usage and no per-CPU figures).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from portside.cgroups import fs

# The kernel reports an unlimited v1 memory limit as PAGE_COUNTER_MAX pages (9223372036854771712 with 4k pages).
V1_UNLIMITED = 1 << 62


@dataclass(frozen=True)
class BlkioEntry:
    major: int
    minor: int
    op: str        # v1: "Read", "Write", "Sync", "Async", "Discard"; v2: "read", "write" (as dockerd reports them)
    value: int


@dataclass(frozen=True)
class Stats:
    memory_usage: int = 0
    memory_max_usage: int | None = None       # v1 max_usage_in_bytes; v2 memory.peak
    memory_limit: int | None = None
    memory_cache: int = 0                     # v1 "cache", v2 "file" in memory.stat
    memory_failcnt: int | None = None         # v1 memory.failcnt; v2 the "oom" count of memory.events
    memory_stat: Mapping[str, int] = field(default_factory=dict)
    cpu_total: int = 0                        # ns
    cpu_percpu: tuple[int, ...] = ()          # ns per CPU; v1 only
    cpu_user: int = 0                         # ns
    cpu_system: int = 0                       # ns
    throttling_periods: int = 0
    throttled_periods: int = 0
    throttled_time: int = 0                   # ns
    system_cpu_usage: int = 0                 # the host's busy + idle time, ns (/proc/stat), for docker stats' CPU %
    online_cpus: int = 0
    pids_current: int = 0
    pids_limit: int | None = None
    blkio_service_bytes: tuple[BlkioEntry, ...] = ()
    blkio_serviced: tuple[BlkioEntry, ...] = ()   # I/O operations; v1 only (dockerd reports no v2 counterpart)
    unified: bool = False                     # read from a cgroup v2 hierarchy


_USER_HZ = os.sysconf("SC_CLK_TCK")


def ticks_to_ns(ticks: int) -> int:
    return ticks * 1_000_000_000 // _USER_HZ


def system_cpu(proc_stat: str) -> tuple[int, int]:
    """(host CPU time in ns, online CPUs) from /proc/stat, as dockerd's getSystemCPUUsage."""
    total, ncpu = 0, 0
    for line in proc_stat.splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            total = ticks_to_ns(sum(int(v) for v in rest.split()[:7]))   # user nice system idle iowait irq softirq
        elif name.startswith("cpu") and name[3:].isdigit():
            ncpu += 1
    return total, ncpu


def v1_blkio(text: str | None) -> tuple[BlkioEntry, ...]:
    """blkio.*io_service_bytes_recursive: "8:0 Read 4096" lines and a "Total" line."""
    entries = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        entries.append(BlkioEntry(int(major), int(minor), parts[1], int(parts[2])))
    return tuple(entries)


def v2_io(text: str | None) -> tuple[BlkioEntry, ...]:
    """io.stat: "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0" per device."""
    entries = []
    for line in (text or "").splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        values = dict(p.partition("=")[::2] for p in pairs)
        for key, op in (("rbytes", "read"), ("wbytes", "write")):
            if key in values:
                entries.append(BlkioEntry(int(major), int(minor), op, int(values[key])))
    return tuple(entries)


def host_cpu(proc: str) -> tuple[int, int]:
    return system_cpu(fs.read_optional(os.path.join(proc, "stat")) or "")
