"""A container's resource limits, translated from Docker's HostConfig.

``Resources`` is the whole desired state of a container's cgroup: a field
that is ``None`` means "no limit" (the kernel's default), so applying a
``Resources`` to an existing cgroup both sets what is given and resets what
is not. ``docker update`` therefore merges its fields into the container's
HostConfig and runs ``from_host_config`` again.

``from_host_config`` validates as dockerd does before it creates a container
(moby ``daemon/daemon_unix.go``: ``verifyPlatformContainerResources``,
``adaptContainerSettings``, ``getCPUResources``, ``getPidsLimit``), with
Docker's messages, which the CLI prints verbatim. The checks that depend on
the host (how many CPUs, which CPUs and memory nodes exist) take a
``HostLimits``; everything else here is pure.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from portside.errors import InvalidArgument, json_kind

MIN_MEMORY = 6 * 1024 * 1024      # dockerd's linuxMinMemory: startup overhead, not a kernel limit
DEFAULT_CFS_PERIOD = 100_000      # µs; what --cpus converts against, and the kernel's default period
DEFAULT_CPU_SHARES = 1024
MAX_CPU_SHARES = 262_144          # the kernel's MAX_SHARES (1 << 18)
# cpuset lists are refused beyond this many CPUs unless the host has more (CVE-2018-20699:
# "0-9223372036854775807" made dockerd build a map of that size).
_MAX_CPUSET_ID = 8192


@dataclass(frozen=True)
class Resources:
    """What the kernel should enforce for one container; ``None`` is "unlimited"/default."""

    memory: int | None = None              # bytes: memory.limit_in_bytes / memory.max
    memory_swap: int | None = None         # memory + swap, bytes (Docker's MemorySwap): memsw / memory.swap.max + memory
    memory_reservation: int | None = None  # soft limit, bytes: memory.soft_limit_in_bytes / memory.low
    cpu_shares: int | None = None          # relative weight 2..262144: cpu.shares / cpu.weight (converted)
    cpu_quota: int | None = None           # µs of CPU time per period: cpu.cfs_quota_us / cpu.max
    cpu_period: int | None = None          # µs; None is the kernel's 100000: cpu.cfs_period_us / cpu.max
    cpuset_cpus: str | None = None         # "0-2,5"; None inherits the parent's
    cpuset_mems: str | None = None
    pids_limit: int | None = None          # pids.max
    blkio_weight: int | None = None        # 10..1000: blkio.weight / io.weight (converted)
    oom_kill_disable: bool = False         # v1 memory.oom_control only; cgroup v2 has no such switch

    def __post_init__(self) -> None:
        # The one invariant both cgroup versions need: swap is only limited together with memory.
        if self.memory_swap is not None:
            if self.memory is None:
                raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
            if self.memory_swap < self.memory:
                raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")


@dataclass(frozen=True)
class HostLimits:
    """What dockerd's sysinfo reports about the host, for the checks that depend on it."""

    ncpu: int           # CPUs this process may run on (Go's runtime.NumCPU: the affinity mask)
    cpus: str           # CPUs that exist, as a list ("0-3")
    mems: str           # memory nodes that exist ("0")

    @classmethod
    def probe(cls) -> HostLimits:
        return cls(ncpu=len(os.sched_getaffinity(0)),
                   cpus=_read_list("/sys/devices/system/cpu/online", "0"),
                   mems=_read_list("/sys/devices/system/node/online", "0"))


def _read_list(path: str, fallback: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip() or fallback
    except OSError:
        return fallback


def from_host_config(host_config: Mapping[str, object], *, host: HostLimits | None = None,
                     update: bool = False) -> Resources:
    """Docker's HostConfig resource fields → ``Resources``, refusing what dockerd refuses.

    ``host`` defaults to this machine (``HostLimits.probe()``); pass one to
    stay pure. ``update`` checks a ``docker update`` request on its own, as
    dockerd does before merging it: a swap limit without a memory limit is
    then fine (the container's memory limit stays). Semantics kept from Docker: Memory 0 is unlimited;
    MemorySwap 0 with a memory limit means twice the memory, -1 unlimited
    swap; NanoCpus becomes a quota over a 100 ms period; PidsLimit 0 or
    negative is unlimited; CpuQuota negative is unlimited (the kernel's own
    rule); zero means "unset" everywhere.
    """
    memory = _int(host_config, "Memory")
    memory_swap = _int(host_config, "MemorySwap")
    reservation = _int(host_config, "MemoryReservation")
    shares = _int(host_config, "CpuShares")
    nano_cpus = _int(host_config, "NanoCpus")
    quota = _int(host_config, "CpuQuota")
    period = _int(host_config, "CpuPeriod")
    cpus = _str(host_config, "CpusetCpus")
    mems = _str(host_config, "CpusetMems")
    pids = _optional_int(host_config, "PidsLimit")
    blkio_weight = _int(host_config, "BlkioWeight")
    oom_kill_disable = _bool(host_config, "OomKillDisable")

    # memory, in dockerd's order
    if memory != 0 and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if memory > 0 and memory_swap > 0 and memory_swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and memory_swap > 0 and not update:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if memory_swap < -1:
        raise InvalidArgument(f"Invalid value {memory_swap} for MemorySwap: -1 (unlimited swap) is the only negative value")
    if 0 < reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage")

    # cpu
    if nano_cpus > 0 and period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano_cpus > 0 and quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    limits = host if host is not None else HostLimits.probe()
    if nano_cpus < 0 or nano_cpus > limits.ncpu * 10**9:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {limits.ncpu}.00, "
                              f"as there are only {limits.ncpu} CPUs available")
    if period != 0 and not 1000 <= period <= 1_000_000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if shares < 0:
        raise InvalidArgument("shares: invalid argument")

    # cpuset
    _check_available(cpus, limits.cpus, "cpus", "Requested CPUs are not available")
    _check_available(mems, limits.mems, "mems", "Requested memory nodes are not available")

    # blkio
    if blkio_weight != 0 and not 10 <= blkio_weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")

    cpu_quota: int | None = None
    cpu_period: int | None = None
    if nano_cpus > 0:
        cpu_period = DEFAULT_CFS_PERIOD
        cpu_quota = nano_cpus * DEFAULT_CFS_PERIOD // 10**9
    if period != 0:
        cpu_period = period
    if quota != 0:
        cpu_quota = quota if quota > 0 else None

    swap: int | None = None
    if memory > 0:
        if memory_swap == 0:
            swap = 2 * memory   # dockerd's default: as much swap as memory
        elif memory_swap > 0:
            swap = memory_swap

    return Resources(
        memory=memory if memory > 0 else None,
        memory_swap=swap,
        memory_reservation=reservation if reservation > 0 else None,
        cpu_shares=shares if shares > 0 else None,
        cpu_quota=cpu_quota,
        cpu_period=cpu_period,
        cpuset_cpus=cpus or None,
        cpuset_mems=mems or None,
        pids_limit=pids if pids is not None and pids > 0 else None,
        blkio_weight=blkio_weight if blkio_weight > 0 else None,
        oom_kill_disable=oom_kill_disable,
    )


def _int(hc: Mapping[str, object], key: str) -> int:
    value = _optional_int(hc, key)
    return 0 if value is None else value


def _optional_int(hc: Mapping[str, object], key: str) -> int | None:
    value = hc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                              f"HostConfig.{key} of type int64")
    return value


def _str(hc: Mapping[str, object], key: str) -> str:
    value = hc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                              f"HostConfig.{key} of type string")
    return value


def _bool(hc: Mapping[str, object], key: str) -> bool:
    value = hc.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidArgument(f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                              f"HostConfig.{key} of type bool")
    return value


def _check_available(requested: str, available: str, what: str, refusal: str) -> None:
    if not requested:
        return
    have = parse_list(available)
    limit = max([_MAX_CPUSET_ID, *have])
    try:
        wanted = parse_list(requested, maximum=limit)
    except ValueError as e:
        raise InvalidArgument(f"Invalid value {requested} for cpuset {what}: {e}") from None
    if not wanted <= have:
        raise InvalidArgument(f"{refusal} - requested {requested}, available: {available}")


_GO_ATOI = re.compile(r"[+-]?[0-9]+")


def parse_list(value: str, *, maximum: int = 0) -> set[int]:
    """A cpuset list ("0-2,5") as moby's parseUintList reads it; ``maximum`` 0 is unbounded."""
    if value == "":
        return set()
    found: set[int] = set()
    invalid = ValueError(f"invalid format: {value}")
    for part in value.split(","):
        lo_s, dash, hi_s = part.partition("-")
        if not dash:
            hi_s = lo_s
        if not _GO_ATOI.fullmatch(lo_s) or not _GO_ATOI.fullmatch(hi_s):
            raise invalid
        lo, hi = int(lo_s), int(hi_s)
        if hi < lo or max(abs(lo), abs(hi)) >= 1 << 63:   # Go's Atoi fails beyond int64 too
            raise invalid
        if maximum and hi > maximum:
            raise ValueError(f"value of out range, maximum is {maximum}")
        found.update(range(lo, hi + 1))
    return found


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144, default 1024) → cpu.weight (1..10000, default 100).

    The curve runc and crun use since 2025 (runc PR 4785): a quadratic in
    log2(shares) that maps the minimum, the default and the maximum onto
    each other, so that 1024 shares is weight 100. (The older linear formula,
    1 + (shares - 2) * 9999 / 262142, made the default 39.)
    """
    if shares <= 2:
        return 1
    if shares >= MAX_CPU_SHARES:
        return 10000
    exp = math.log2(shares)
    return math.ceil(10 ** ((exp * exp + 125 * exp) / 612.0 - 7.0 / 34.0))


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) → io.weight (1..10000), runc's linear conversion."""
    return 1 + (weight - 10) * 9999 // 990
