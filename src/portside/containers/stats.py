"""A container's usage as Docker's stats API reports it: samples, and the JSON documents made of them.

A ``Sample`` is one reading: the cgroup's figures (``cgroups.Stats``) and
the counters of the network interfaces the container sees, taken at one
moment. Docker's document (moby ``api/types`` ``StatsJSON``) pairs a sample
with the previous one (``precpu_stats``, ``preread``), which is how clients
compute CPU % from two readings::

    cpu % = Δ cpu_usage.total_usage / Δ system_cpu_usage × online_cpus × 100

A container that is not running gives an empty sample: dockerd then reports
zeroes and leaves every optional field out, but still names the container.
The shapes follow dockerd's ``statsV1`` / ``statsV2`` (daemon/stats_unix.go):
each cgroup version reports its own memory.stat keys; v2 has no max_usage and
no per-CPU usage; an unlimited memory limit is reported as the host's memory.

Only interfaces other than ``lo`` are reported, as dockerd reports the
interfaces of the container's network sandbox; a container on the host's
network reports none.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from portside.cgroups import BlkioEntry, Manager, Stats
from portside.containers.record import ContainerRecord, State
from portside.errors import NotFound
from portside.timefmt import format_rfc3339

INTERVAL = 1.0   # seconds between two samples: dockerd's stats collector ticks once a second

# The memory.stat keys dockerd reports for each cgroup version (the fields of containerd's
# cgroups stats types), every one of them present, 0 where the kernel has no such line.
V1_MEMORY_KEYS = (
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout", "pgfault",
    "pgmajfault", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
    "hierarchical_memory_limit", "hierarchical_memsw_limit", "total_cache", "total_rss", "total_rss_huge",
    "total_mapped_file", "total_dirty", "total_writeback", "total_pgpgin", "total_pgpgout", "total_pgfault",
    "total_pgmajfault", "total_inactive_anon", "total_active_anon", "total_inactive_file", "total_active_file",
    "total_unevictable",
)
V2_MEMORY_KEYS = (
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback",
    "anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
    "slab_reclaimable", "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault",
    "workingset_activate", "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate",
    "pgdeactivate", "pglazyfree", "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
)
# blkio lists dockerd reports; on v1 the ones after the first two are CFQ's, absent on current kernels.
_BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
               "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive", "io_time_recursive",
               "sectors_recursive")
_ZERO_TIME = "0001-01-01T00:00:00Z"   # Go's zero time.Time


@dataclass(frozen=True)
class NetDev:
    """One interface's counters, as /proc/net/dev has them."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True)
class Sample:
    id: str
    name: str                                    # with its leading slash, as Docker reports it
    read_ns: int = 0                             # 0: not running (Docker's zero time)
    cgroup: Stats | None = None
    networks: Mapping[str, NetDev] = field(default_factory=dict)


def parse_net_dev(text: str) -> dict[str, NetDev]:
    """/proc/<pid>/net/dev: two header lines, then "name: 8 receive counters 8 transmit counters"; lo left out."""
    found: dict[str, NetDev] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        values = rest.split()
        name = name.strip()
        if not sep or len(values) < 16 or name == "lo":
            continue
        try:
            n = [int(v) for v in values[:16]]
        except ValueError:
            continue
        found[name] = NetDev(rx_bytes=n[0], rx_packets=n[1], rx_errors=n[2], rx_dropped=n[3],
                             tx_bytes=n[8], tx_packets=n[9], tx_errors=n[10], tx_dropped=n[11])
    return found


def host_memory() -> int:
    """The machine's memory (dockerd's machineMemory): the limit reported for an unlimited container."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class Sampler:
    """Reads samples of containers through a cgroup manager and /proc."""

    def __init__(self, cgroups: Manager, *, proc: str = "/proc") -> None:
        self._cgroups = cgroups
        self._proc = proc

    def sample(self, record: ContainerRecord) -> Sample:
        empty = Sample(record.id, record.name)
        if record.state not in (State.RUNNING, State.PAUSED) or record.pid <= 0:
            return empty
        read_ns = time.time_ns()
        try:
            cgroup = self._cgroups.stats(f"portside/{record.id}")
        except NotFound:   # it exited since the record was read
            return empty
        return Sample(record.id, record.name, read_ns, cgroup, self._networks(record))

    def _networks(self, record: ContainerRecord) -> dict[str, NetDev]:
        if (record.host_config.get("NetworkMode") or "") == "host":
            return {}
        # /proc/<pid>/net is the network namespace of that process: the container's, or with
        # --network container:<other>, the one it shares (which dockerd reports too).
        try:
            with open(os.path.join(self._proc, str(record.pid), "net", "dev")) as f:
                return parse_net_dev(f.read())
        except OSError:   # the process is gone
            return {}


def document(current: Sample, previous: Sample | None, *, machine_memory: int) -> dict[str, Any]:
    """Docker's stats JSON for ``current``, with ``previous`` (None: none yet) as its pre-sample."""
    s = current.cgroup
    doc: dict[str, Any] = {
        "read": _time(current.read_ns),
        "preread": _time(previous.read_ns if previous else 0),
        "pids_stats": _pids(s),
        "blkio_stats": _blkio(s),
        "num_procs": 0,            # Windows only
        "storage_stats": {},       # Windows only
        "cpu_stats": _cpu(s),
        "precpu_stats": _cpu(previous.cgroup if previous else None),
        "memory_stats": _memory(s, machine_memory),
        "name": current.name,
        "id": current.id,
    }
    if current.networks:
        doc["networks"] = {name: asdict(current.networks[name]) for name in sorted(current.networks)}
    return doc


def frames(load: Callable[[], ContainerRecord], sampler: Sampler, *, machine_memory: int,
           interval: float = INTERVAL, sleep: Callable[[float], None] = time.sleep) -> Iterator[dict[str, Any]]:
    """Docker's stream: a document every ``interval``, each paired with the one before, until the container is gone.

    ``load`` reloads the container's record; its NotFound ends the stream.
    The first document has no pre-sample (zero ``precpu_stats``).
    """
    previous: Sample | None = None
    while True:
        try:
            record = load()
        except NotFound:
            return
        current = sampler.sample(record)
        yield document(current, previous, machine_memory=machine_memory)
        previous = current
        sleep(interval)


def one(load: Callable[[], ContainerRecord], sampler: Sampler, *, machine_memory: int, one_shot: bool,
        interval: float = INTERVAL, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """``stream=false``: one document. Unless ``one_shot``, dockerd waits for a second sample so that
    ``precpu_stats`` is filled and a CPU % can be computed; a stopped container answers at once."""
    first = sampler.sample(load())
    if one_shot or first.cgroup is None:
        return document(first, None, machine_memory=machine_memory)
    sleep(interval)
    try:
        second = sampler.sample(load())
    except NotFound:
        second = Sample(first.id, first.name)
    return document(second, first, machine_memory=machine_memory)


# -- the parts of the document ---------------------------------------------------------


def _time(ns: int) -> str:
    return format_rfc3339(ns) if ns else _ZERO_TIME


def _pids(s: Stats | None) -> dict[str, int]:
    out: dict[str, int] = {}
    if s is not None and s.pids_current:
        out["current"] = s.pids_current
    if s is not None and s.pids_limit:
        out["limit"] = s.pids_limit
    return out


def _entries(entries: tuple[BlkioEntry, ...]) -> list[dict[str, Any]]:
    return [{"major": e.major, "minor": e.minor, "op": e.op, "value": e.value} for e in entries]


def _blkio(s: Stats | None) -> dict[str, list[dict[str, Any]] | None]:
    out: dict[str, list[dict[str, Any]] | None] = {key: None for key in _BLKIO_KEYS}
    if s is None:
        return out
    if s.unified:   # dockerd's statsV2: read and write bytes per device, nothing else
        out["io_service_bytes_recursive"] = _entries(s.blkio_service_bytes) or None
        return out
    out.update({key: [] for key in _BLKIO_KEYS})
    out["io_service_bytes_recursive"] = _entries(s.blkio_service_bytes)
    out["io_serviced_recursive"] = _entries(s.blkio_serviced)
    return out


def _cpu(s: Stats | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"total_usage": s.cpu_total if s else 0}
    if s is not None and s.cpu_percpu:
        usage["percpu_usage"] = list(s.cpu_percpu)
    usage["usage_in_kernelmode"] = s.cpu_system if s else 0
    usage["usage_in_usermode"] = s.cpu_user if s else 0
    out: dict[str, Any] = {"cpu_usage": usage}
    if s is not None and s.system_cpu_usage:
        out["system_cpu_usage"] = s.system_cpu_usage
    if s is not None and s.online_cpus:
        out["online_cpus"] = s.online_cpus
    out["throttling_data"] = {
        "periods": s.throttling_periods if s else 0,
        "throttled_periods": s.throttled_periods if s else 0,
        "throttled_time": s.throttled_time if s else 0,
    }
    return out


def _memory(s: Stats | None, machine_memory: int) -> dict[str, Any]:
    if s is None:
        return {}
    keys = V2_MEMORY_KEYS if s.unified else V1_MEMORY_KEYS
    out: dict[str, Any] = {"usage": s.memory_usage}
    if not s.unified and s.memory_max_usage:   # v2: "MaxUsage is not supported" (dockerd)
        out["max_usage"] = s.memory_max_usage
    out["stats"] = {key: s.memory_stat.get(key, 0) for key in sorted(keys)}   # a Go map: sorted keys
    if s.memory_failcnt:
        out["failcnt"] = s.memory_failcnt
    limit = s.memory_limit if s.memory_limit is not None else machine_memory
    out["limit"] = min(limit, machine_memory) if machine_memory > 0 else limit
    return out
