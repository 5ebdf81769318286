"""``stats`` and ``update``, after docker/cli container/{stats,stats_helpers,formatter_stats,update}.go (v28.2).

``stats`` reads ``GET /containers/{id}/stats`` for each container, in
parallel, and prints docker's table: CPU % from two samples (the daemon
pairs each document with the previous one), memory without the inactive
file cache (cgroup v1 ``total_inactive_file``, v2 ``inactive_file``, as
docker computes it), MEM USAGE / LIMIT in binary units, NET I/O and BLOCK
I/O in decimal units. Without ``--no-stream`` every container's stream is
read by its own thread and the table is redrawn twice a second (clear
screen, cursor home) on a terminal, or printed once a second otherwise.
Without container arguments the containers are listed again each time
(docker follows the daemon's events instead; the result is the same).

``update`` sends the flags as docker's UpdateConfig to each container in
turn, prints the name of each it updated, the daemon's warnings after them,
and then the errors, one per line, status 1.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping, Sequence

    from portside.cli.client import Response

import json
import threading
import time
from dataclasses import dataclass, field

from portside import units
from portside.cli.commands.base import BOOL, INT, STRING, Args, CLIError, Command, Context, Flag, Options, flag_error
from portside.cli.commands.formatting import TABLE, render_default_table, render_rows, row_type, sorted_row, truncate_id
from portside.cli.commands.images import FORMAT_HELP

HEADERS = {
    "Container": "CONTAINER",
    "Name": "NAME",
    "ID": "CONTAINER ID",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
_COLUMNS = ("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")   # the default table
STALE_AFTER = 2.0    # seconds without a document before a container's figures show "--" (docker's timeout)

StatsRow = row_type("*container.statsContext")


# ---------------------------------------------------------------------------
# From the daemon's document to the figures docker prints


@dataclass
class Entry:
    """One container's line: docker's StatsEntry."""

    container: str                  # as the user named it, or the short ID when listing
    name: str = ""
    id: str = ""
    cpu_percent: float = 0.0
    memory: float = 0.0
    memory_limit: float = 0.0
    memory_percent: float = 0.0
    net_rx: float = 0.0
    net_tx: float = 0.0
    block_read: float = 0.0
    block_write: float = 0.0
    pids: int = 0
    invalid: bool = False           # no figures (an error, or none in time): "--"
    error: Exception | None = None
    updated: float = field(default=0.0, repr=False)   # time.monotonic() of the last document


def cpu_percent(previous: Mapping[str, Any], current: Mapping[str, Any]) -> float:
    """Δ container CPU time / Δ host CPU time × online CPUs × 100."""
    usage, pre_usage = current.get("cpu_usage") or {}, previous.get("cpu_usage") or {}
    cpu_delta = float(usage.get("total_usage") or 0) - float(pre_usage.get("total_usage") or 0)
    system_delta = float(current.get("system_cpu_usage") or 0) - float(previous.get("system_cpu_usage") or 0)
    online = float(current.get("online_cpus") or 0) or float(len(usage.get("percpu_usage") or ()))
    if system_delta > 0.0 and cpu_delta > 0.0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def memory_usage(memory: Mapping[str, Any]) -> float:
    """Usage without the inactive page cache, as docker (and cadvisor) count it."""
    usage = int(memory.get("usage") or 0)
    raw = memory.get("stats") or {}
    if "total_inactive_file" in raw and raw["total_inactive_file"] < usage:   # cgroup v1
        return float(usage - raw["total_inactive_file"])
    inactive = int(raw.get("inactive_file") or 0)                              # cgroup v2
    return float(usage - inactive) if inactive < usage else float(usage)


def block_io(blkio: Mapping[str, Any]) -> tuple[float, float]:
    read = write = 0
    for entry in blkio.get("io_service_bytes_recursive") or ():
        op = str(entry.get("op") or "")[:1]
        if op in ("r", "R"):
            read += int(entry.get("value") or 0)
        elif op in ("w", "W"):
            write += int(entry.get("value") or 0)
    return float(read), float(write)


def network_io(networks: Mapping[str, Any] | None) -> tuple[float, float]:
    rx = sum(float(n.get("rx_bytes") or 0) for n in (networks or {}).values())
    tx = sum(float(n.get("tx_bytes") or 0) for n in (networks or {}).values())
    return rx, tx


def entry_from(container: str, doc: Mapping[str, Any]) -> Entry:
    memory_stats = doc.get("memory_stats") or {}
    used = memory_usage(memory_stats)
    limit = float(memory_stats.get("limit") or 0)
    rx, tx = network_io(doc.get("networks"))
    read, write = block_io(doc.get("blkio_stats") or {})
    return Entry(
        container=container, name=str(doc.get("name") or ""), id=str(doc.get("id") or ""),
        cpu_percent=cpu_percent(doc.get("precpu_stats") or {}, doc.get("cpu_stats") or {}),
        memory=used, memory_limit=limit, memory_percent=used / limit * 100.0 if limit else 0.0,
        net_rx=rx, net_tx=tx, block_read=read, block_write=write,
        pids=int((doc.get("pids_stats") or {}).get("current") or 0), updated=time.monotonic(),
    )


def _percent(value: float) -> str:
    return f"{value:.2f}%"


def stats_row(e: Entry, *, trunc: bool) -> Any:
    """The fields a ``--format`` template sees (docker's statsContext)."""
    dash = "--"
    return sorted_row({
        "Container": e.container,
        "Name": e.name[1:] if len(e.name) > 1 else dash,
        "ID": truncate_id(e.id) if trunc else e.id,
        "CPUPerc": dash if e.invalid else _percent(e.cpu_percent),
        "MemUsage": "-- / --" if e.invalid else f"{units.bytes_size(e.memory)} / {units.bytes_size(e.memory_limit)}",
        "MemPerc": dash if e.invalid else _percent(e.memory_percent),
        "NetIO": dash if e.invalid else
        f"{units.human_size_precision(e.net_rx, 3)} / {units.human_size_precision(e.net_tx, 3)}",
        "BlockIO": dash if e.invalid else
        f"{units.human_size_precision(e.block_read, 3)} / {units.human_size_precision(e.block_write, 3)}",
        "PIDs": dash if e.invalid else str(e.pids),
    }, StatsRow)


def render(entries: Sequence[Entry], fmt: str = "", *, trunc: bool = True) -> str:
    rows = [stats_row(e, trunc=trunc) for e in entries]
    if fmt in ("", TABLE):
        return render_default_table([HEADERS[k] for k in _COLUMNS], [[r[k] for k in _COLUMNS] for r in rows])
    return render_rows(fmt, rows, HEADERS)


# ---------------------------------------------------------------------------
# stats


class _Collector:
    """The entries being shown, each fed by its own thread (docker's ``stats`` and ``collect``)."""

    def __init__(self, ctx: Context, stream: bool) -> None:
        self.ctx = ctx
        self.stream = stream
        self.lock = threading.Lock()     # guards entries and every Entry in it
        self.entries: list[Entry] = []
        self._first: list[threading.Event] = []

    def add(self, container: str) -> None:
        with self.lock:
            if any(e.container == container for e in self.entries):
                return
            entry = Entry(container)
            self.entries.append(entry)
        first = threading.Event()
        self._first.append(first)
        threading.Thread(target=self._collect, args=(entry, first), daemon=True).start()

    def keep(self, containers: Sequence[str]) -> None:
        """Drop the entries of containers no longer listed (docker drops them on their "die" event)."""
        with self.lock:
            self.entries = [e for e in self.entries if e.container in containers]

    def wait_first(self, timeout: float | None) -> None:
        """Until every container has its first figures (or an error), or ``timeout`` (docker's 2 s) per container."""
        for first in list(self._first):
            first.wait(timeout)

    def snapshot(self) -> list[Entry]:
        now = time.monotonic()
        with self.lock:
            out = []
            for e in self.entries:
                if self.stream and not e.invalid and e.updated and now - e.updated > STALE_AFTER:
                    e = Entry(e.container, invalid=True)   # docker's SetErrorAndReset: no news in time
                out.append(Entry(**vars(e)))
            return out

    def _collect(self, entry: Entry, first: threading.Event) -> None:
        from portside.cli.client import APIError, ConnectionFailed, ProtocolError

        query = [("stream", "1" if self.stream else "0")]
        try:
            response: Response = self.ctx.client.request("GET", f"/containers/{entry.container}/stats", query)
            for doc in response.iter_json() if self.stream else [response.json()]:
                fresh = entry_from(entry.container, doc)
                with self.lock:
                    vars(entry).update(vars(fresh))
                first.set()
            if self.stream:   # the container is gone: the stream ended
                raise ProtocolError("EOF")
        except (APIError, ConnectionFailed, ProtocolError, OSError, ValueError) as e:
            with self.lock:
                entry.error, entry.invalid = e, True
        finally:
            first.set()


def _listed(ctx: Context, all_: bool) -> list[str]:
    query = [("all", "1")] if all_ else []
    return [str(c.get("Id") or "")[:12] for c in ctx.client.get_json("/containers/json", query) or []]


def run_stats(ctx: Context, opts: Options, args: list[str]) -> int:
    show_all = not args
    collector = _Collector(ctx, stream=not opts.no_stream)
    for name in _listed(ctx, opts.all) if show_all else dict.fromkeys(args):
        collector.add(name)
    collector.wait_first(None if opts.no_stream else STALE_AFTER)
    if not show_all:
        errors = [str(e.error) for e in collector.snapshot() if e.error is not None]
        if errors:
            raise CLIError("\n".join(errors))
    fmt = opts.format or TABLE
    trunc = not opts.no_trunc
    if opts.no_stream:
        ctx.out(render(collector.snapshot(), fmt, trunc=trunc))
        return 0
    terminal = ctx.stdout_is_tty()
    interval = 0.5 if terminal else 1.0
    while True:
        if show_all:
            listed = _listed(ctx, opts.all)
            collector.keep(listed)
            for name in listed:
                collector.add(name)
        text = render(collector.snapshot(), fmt, trunc=trunc)
        ctx.out("\033[2J\033[H" + text if terminal else text)
        ctx.stdout.flush()
        time.sleep(interval)


STATS = Command(
    use="stats [OPTIONS] [CONTAINER...]",
    short="Display a live stream of container(s) resource usage statistics",
    run=run_stats,
    args=Args(0),
    flags=(
        Flag("all", "a", BOOL, "Show all containers (default shows just running)"),
        Flag("format", None, STRING, FORMAT_HELP),
        Flag("no-stream", None, BOOL, "Disable streaming stats and only pull the first result"),
        Flag("no-trunc", None, BOOL, "Do not truncate output"),
    ),
    aliases="portside container stats, portside stats",
)


# ---------------------------------------------------------------------------
# update


def _flag_value(opts: Options, name: str, parse: Callable[[str], int]) -> int:
    """A flag pflag parses with its own type (bytes, decimal, uint16); its error is a flag error."""
    from portside.cli.commands.base import go_quote
    from portside.errors import InvalidArgument

    if name not in opts.changed:
        return 0
    value = getattr(opts, name.replace("-", "_"))
    try:
        return parse(value)
    except (ValueError, InvalidArgument) as e:
        flag = next(f for f in UPDATE.flags if f.name == name)
        raise flag_error(f"invalid argument {go_quote(value)} for {go_quote(flag.display_name())} flag: {e}",
                         "update") from None


def update_body(opts: Options) -> dict[str, Any]:
    """docker's UpdateConfig for the flags: Resources' fields in their order, then RestartPolicy."""
    from portside.cli import runopts

    memory_swap = _flag_value(opts, "memory-swap", lambda v: -1 if v == "-1" else units.ram_in_bytes(v))
    restart = {"Name": "", "MaximumRetryCount": 0}
    if opts.restart:
        try:
            restart = runopts._parse_restart_policy(opts.restart)
        except runopts.OptionsError as e:
            raise CLIError(str(e)) from None
    return {
        "CpuShares": opts.cpu_shares,
        "Memory": _flag_value(opts, "memory", units.ram_in_bytes),
        "NanoCpus": _flag_value(opts, "cpus", runopts._parse_cpus),
        "CgroupParent": "",
        "BlkioWeight": _flag_value(opts, "blkio-weight", lambda v: runopts._parse_uint(v, 16)),
        "BlkioWeightDevice": None,
        "BlkioDeviceReadBps": None,
        "BlkioDeviceWriteBps": None,
        "BlkioDeviceReadIOps": None,
        "BlkioDeviceWriteIOps": None,
        "CpuPeriod": opts.cpu_period,
        "CpuQuota": opts.cpu_quota,
        "CpuRealtimePeriod": opts.cpu_rt_period,
        "CpuRealtimeRuntime": opts.cpu_rt_runtime,
        "CpusetCpus": opts.cpuset_cpus,
        "CpusetMems": opts.cpuset_mems,
        "Devices": None,
        "DeviceCgroupRules": None,
        "DeviceRequests": None,
        "MemoryReservation": _flag_value(opts, "memory-reservation", units.ram_in_bytes),
        "MemorySwap": memory_swap,
        "MemorySwappiness": None,
        "OomKillDisable": None,
        "PidsLimit": opts.pids_limit if opts.pids_limit != 0 else None,
        "Ulimits": None,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "RestartPolicy": restart,
    }


def run_update(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError

    if not opts.changed:
        raise CLIError("you must provide one or more flags when using this command")
    payload = json.dumps(update_body(opts)).encode()
    warnings: list[str] = []
    errors: list[str] = []
    for name in args:
        try:
            reply = ctx.client.request("POST", f"/containers/{name}/update", body=payload,
                                       headers={"Content-Type": "application/json"}).json() or {}
        except APIError as e:
            errors.append(str(e))
            continue
        ctx.out(name + "\n")
        warnings.extend(str(w) for w in reply.get("Warnings") or [])
    if warnings:
        ctx.out("\n".join(warnings) + "\n")
    if errors:
        raise CLIError("\n".join(errors))
    return 0


UPDATE = Command(
    use="update [OPTIONS] CONTAINER [CONTAINER...]",
    short="Update configuration of one or more containers",
    run=run_update,
    args=Args(1),
    flags=(
        Flag("blkio-weight", None, STRING, "Block IO (relative weight), between 10 and 1000, or 0 to disable "
             "(default 0)", varname="uint16"),
        Flag("cpu-period", None, INT, "Limit CPU CFS (Completely Fair Scheduler) period"),
        Flag("cpu-quota", None, INT, "Limit CPU CFS (Completely Fair Scheduler) quota"),
        Flag("cpu-rt-period", None, INT, "Limit the CPU real-time period in microseconds"),
        Flag("cpu-rt-runtime", None, INT, "Limit the CPU real-time runtime in microseconds"),
        Flag("cpu-shares", "c", INT, "CPU shares (relative weight)"),
        Flag("cpus", None, STRING, "Number of CPUs", varname="decimal"),
        Flag("cpuset-cpus", None, STRING, "CPUs in which to allow execution (0-3, 0,1)"),
        Flag("cpuset-mems", None, STRING, "MEMs in which to allow execution (0-3, 0,1)"),
        Flag("memory", "m", STRING, "Memory limit", varname="bytes"),
        Flag("memory-reservation", None, STRING, "Memory soft limit", varname="bytes"),
        Flag("memory-swap", None, STRING, "Swap limit equal to memory plus swap: -1 to enable unlimited swap",
             varname="bytes"),
        Flag("pids-limit", None, INT, "Tune container pids limit (set -1 for unlimited)"),
        Flag("restart", None, STRING, "Restart policy to apply when a container exits"),
    ),
    aliases="portside container update, portside update",
)
