"""Which file gets which value: ``Resources`` → cgroup v1 and v2 writes, as data.

This is the whole Docker-flag → kernel-file mapping (docs/cgroups.md has it
as a table); the managers only carry it out. Each ``Setting`` names the
controller that owns the file and one or more (file, value) choices: the
first file that exists is written (blkio.weight on CFQ kernels, BFQ's file on
newer ones). A setting whose value is the kernel's default is marked so: a
cgroup the manager has just created already holds it, and where the file is
missing there is nothing to reset. Swap limits are optional too: without swap
accounting the files do not exist, and dockerd then discards the limit
("Memory limited without swap").
"""

from __future__ import annotations

from dataclasses import dataclass

from portside.cgroups.resources import DEFAULT_CFS_PERIOD, DEFAULT_CPU_SHARES, Resources, blkio_to_io_weight, shares_to_weight


@dataclass(frozen=True)
class Setting:
    controller: str                        # v1: the hierarchy; v2: the controller that must be enabled
    choices: tuple[tuple[str, str], ...]   # (file, value): the first file that exists is written
    default: bool = False                  # the kernel's default value: skipped on a fresh cgroup or a missing file
    optional: bool = False                 # skipped where no file exists

    @property
    def file(self) -> str:
        return self.choices[0][0]

    @property
    def value(self) -> str:
        return self.choices[0][1]

    @property
    def skippable(self) -> bool:
        return self.default or self.optional


def _one(controller: str, file: str, value: object, *, default: bool, optional: bool = False) -> Setting:
    return Setting(controller, ((file, str(value)),), default=default, optional=optional)


def v1_settings(r: Resources, *, parent_cpus: str, parent_mems: str) -> list[Setting]:
    """The writes that make a cgroup v1 directory set hold ``r``.

    ``parent_cpus``/``parent_mems`` are the parent cgroup's cpuset: a v1
    cpuset cgroup starts empty (no task may join it) and "inherit" means
    copying the parent's lists. Order matters where the kernel compares two
    files (memory.limit_in_bytes <= memory.memsw.limit_in_bytes; a cfs
    period against the parent's quota): the manager retries a write the
    kernel refuses with EINVAL once, after the others.
    """
    return [
        _one("cpuset", "cpuset.cpus", r.cpuset_cpus or parent_cpus, default=r.cpuset_cpus is None),
        _one("cpuset", "cpuset.mems", r.cpuset_mems or parent_mems, default=r.cpuset_mems is None),
        _one("memory", "memory.limit_in_bytes", _or(r.memory, -1), default=r.memory is None),
        _one("memory", "memory.memsw.limit_in_bytes", _or(r.memory_swap, -1), default=r.memory_swap is None,
             optional=True),
        _one("memory", "memory.soft_limit_in_bytes", _or(r.memory_reservation, -1),
             default=r.memory_reservation is None),
        _one("memory", "memory.oom_control", int(r.oom_kill_disable), default=not r.oom_kill_disable),
        _one("cpu", "cpu.shares", _or(r.cpu_shares, DEFAULT_CPU_SHARES), default=r.cpu_shares is None),
        _one("cpu", "cpu.cfs_period_us", _or(r.cpu_period, DEFAULT_CFS_PERIOD), default=r.cpu_period is None),
        _one("cpu", "cpu.cfs_quota_us", _or(r.cpu_quota, -1), default=r.cpu_quota is None),
        _one("pids", "pids.max", _or(r.pids_limit, "max"), default=r.pids_limit is None),
        Setting("blkio", (("blkio.weight", str(r.blkio_weight)), ("blkio.bfq.weight", str(r.blkio_weight))))
        if r.blkio_weight is not None else
        Setting("blkio", (("blkio.weight", "500"), ("blkio.bfq.weight", "100")), default=True),
    ]


def v2_settings(r: Resources) -> list[Setting]:
    """The writes that make a cgroup v2 directory hold ``r``.

    memory.swap.max holds swap alone (Docker's MemorySwap is memory + swap);
    cpu.weight and io.weight are converted from v1's shares and blkio weight
    as runc converts them; io.bfq.weight, when BFQ is loaded, takes the v1
    weight unconverted (runc prefers it). oom_kill_disable has no v2
    counterpart and is not applied.
    """
    swap = None if r.memory_swap is None or r.memory is None else r.memory_swap - r.memory
    cpu_max = f"{_or(r.cpu_quota, 'max')} {_or(r.cpu_period, DEFAULT_CFS_PERIOD)}"
    return [
        _one("cpuset", "cpuset.cpus", r.cpuset_cpus or "", default=r.cpuset_cpus is None),
        _one("cpuset", "cpuset.mems", r.cpuset_mems or "", default=r.cpuset_mems is None),
        _one("memory", "memory.max", _or(r.memory, "max"), default=r.memory is None),
        _one("memory", "memory.swap.max", _or(swap, "max"), default=swap is None, optional=True),
        _one("memory", "memory.low", _or(r.memory_reservation, 0), default=r.memory_reservation is None),
        _one("cpu", "cpu.weight", shares_to_weight(r.cpu_shares) if r.cpu_shares is not None else 100,
             default=r.cpu_shares is None),
        _one("cpu", "cpu.max", cpu_max, default=r.cpu_quota is None and r.cpu_period is None),
        _one("pids", "pids.max", _or(r.pids_limit, "max"), default=r.pids_limit is None),
        Setting("io", (("io.bfq.weight", str(r.blkio_weight)), ("io.weight", str(blkio_to_io_weight(r.blkio_weight)))))
        if r.blkio_weight is not None else
        Setting("io", (("io.bfq.weight", "100"), ("io.weight", "default 100")), default=True),
    ]


def _or(value: int | None, fallback: int | str) -> int | str:
    return fallback if value is None else value
