"""Density: N idle `sleep` containers at once, portside beside docker, podman and the floor, in one run.

    /work/main/.venv/bin/python bench/density.py [--count 1000] [--peer-count 100] [--clients 4]
        [--parallel 4] [--only floor,portside-api,portside-cli,docker-api,docker-cli,podman] [--json]

Each row starts a *fleet* (bench/fleet.py) of detached ``sleep`` containers
(``--network none``, the busybox image), keeps them running, then ``rm -f``s
them all, and reports:

- start: seconds from the first request to the last container started, and
  containers per second;
- host memory per container: the drop in ``MemAvailable`` (and in ``MemFree``)
  of /proc/meminfo between before the fleet and with the fleet running, both
  read after ``sync`` and dropping the page cache, dentries and inodes, minus
  the ``sleep`` processes' own PSS, divided by the count. Kernel memory
  (slab, stacks, page tables, per-cpu) is included: that is most of it. The
  engine's own processes are included too (shown apart as "helper PSS": the
  portside daemon and monitor; dockerd, containerd and its shims; conmon);
- ``rm -f``: seconds to remove the whole fleet (``rm -f`` of 50 IDs a command,
  ``--parallel`` commands at a time), and what it left behind: sleep
  processes, the engine's new processes, mounts, cgroups, new paths under the
  engine's private directory.

Rows (``--only`` takes the keys):

floor         ``unshare --fork --kill-child --pid --mount --uts --ipc --net --cgroup sleep``
              processes: the namespaces a container gets, without image,
              overlay, mounts, cgroups or engine ("--count" of them).
portside-api  the Engine API of a portside daemon on a private root:
              ``--clients`` threads, each ``POST /containers/create`` then
              ``/start`` on a keep-alive connection ("--count").
portside-cli  ``portside run -d`` processes, ``--parallel`` at a time
              ("--cli-count", default "--count").
docker-api    the same API client against a private dockerd ("--peer-count").
docker-cli    ``docker run -d`` processes ("--peer-count").
podman        ``podman run -d`` processes (no daemon, no API here; "--peer-count").

The peers run a smaller fleet by default (100): docker starts about 2-4
containers a second here, so 1000 would take minutes; the per-container
figures are comparable, the totals are not. Targets (from the issue):
1000 containers started in under 60 s, under 1 MiB of host memory per
container, nothing left behind by ``rm -f``. Dropping caches is machine-wide:
other work on the machine shows up as noise in the memory figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fleet
import harness
from harness import CommandFailed, Engine, PeerUnavailable

ROWS = {
    "floor": "floor (unshare)", "portside-api": "portside (API)", "portside-cli": "portside (CLI run -d)",
    "docker-api": "docker (API)", "docker-cli": "docker (CLI run -d)", "podman": "podman (CLI run -d)",
}
FLOOR_DIR = fleet.WORK / "floor"
PYCACHE = fleet.WORK / "pycache"
MEM_KEYS = ("MemAvailable", "MemFree", "Slab", "SUnreclaim", "KernelStack", "PageTables", "Percpu", "AnonPages")


@dataclass
class Row:
    name: str
    count: int = 0                  # containers asked for
    started: int = 0                # containers whose start succeeded
    running: int = 0                # sleep processes found running afterwards
    start_s: float = 0.0
    rate: float = 0.0               # started / start_s
    mem_available_kib: float = 0.0  # per container, the sleep processes' PSS taken out
    mem_free_kib: float = 0.0
    sleep_pss_kib: float = 0.0      # per container
    accounted_kib: float = 0.0      # per container: kernel (slab, stacks, page tables, per-cpu) + helper PSS
    helper_pss_kib: float = 0.0     # the engine's processes' growth, per container
    breakdown_kib: dict[str, float] = field(default_factory=dict)  # meminfo growth per container
    not_returned_mib: float = 0.0   # MemAvailable still missing after rm -f of the fleet
    probe_idle_s: float = 0.0       # `run --rm ... true` through the CLI, median, no fleet running
    probe_loaded_s: float = 0.0     # the same with the fleet running
    rm_s: float = 0.0
    leftovers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def measured(self) -> bool:
        return self.started > 0


def settled_meminfo() -> dict[str, int]:
    fleet.drop_caches()
    time.sleep(1.0)
    return fleet.meminfo()


def probe_latency(engine: Engine, runs: int = 5, env: dict[str, str] | None = None) -> float:
    """Median seconds of ``run --rm --network none busybox true``: what one more container costs to run."""
    argv = engine.cmd("run", "--rm", "--network", "none", fleet.IMAGE, "true")
    samples = harness.measure(lambda: subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                                     env=env or engine.env, check=True), runs=runs, warmup=1)
    return statistics.median(samples)


def _probe(row: Row, probe: Callable[[], float]) -> float:
    try:
        return probe()
    except subprocess.CalledProcessError as e:
        err = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        row.errors.append(f"run --rm true: exit {e.returncode}: {err[-1] if err else ''}")
        return 0.0


def measure_fleet(name: str, base: Path, count: int, start: Callable[[int], fleet.Fleet],
                  remove: Callable[[list[str]], tuple[float, list[str]]], helpers: Callable[[], list[int]], *,
                  ignore: Callable[[str], bool] = lambda _: False, settle: float = 3.0,
                  probe: Callable[[], float] | None = None, remove_rest: Callable[[], None] = lambda: None) -> Row:
    """One row: warm up with one container, then start ``count``, measure, remove them all, look for leftovers."""
    row = Row(name, count=count)
    harness.log(f"{name}: warm-up container")
    warm = start(1)
    if warm.errors or not warm.ids:
        row.note = f"failed: {warm.errors[0] if warm.errors else 'no container'}"
        harness.log(f"{name}: {row.note}")
        return row
    remove(warm.ids)
    fleet.wait_for_no_sleepers(30)
    if probe is not None:
        row.probe_idle_s = _probe(row, probe)
    before_state = fleet.Snapshot.take(base)
    before = settled_meminfo()
    helpers_before = fleet.pss_kib(helpers())
    harness.log(f"{name}: starting {count}")
    started = start(count)
    row.started, row.start_s, row.rate = len(started.ids), started.seconds, started.rate
    row.errors += started.errors[:5] + ([f"... {len(started.errors) - 5} more"] if len(started.errors) > 5 else [])
    harness.log(f"{name}: {row.started} started in {row.start_s:.1f} s ({row.rate:.1f}/s)"
                + (f", {len(started.errors)} failed: {started.errors[0]}" if started.errors else ""))
    try:
        row.running = fleet.wait_for_sleepers(row.started, timeout=60)
        time.sleep(settle)
        after = settled_meminfo()
        pids = fleet.sleep_pids()
        row.running = len(pids)
        n = max(row.started, 1)
        sleep_pss = fleet.pss_kib(pids)
        row.sleep_pss_kib = sleep_pss / n
        row.helper_pss_kib = (fleet.pss_kib(helpers()) - helpers_before) / n
        row.mem_available_kib = (before["MemAvailable"] - after["MemAvailable"] - sleep_pss) / n
        row.mem_free_kib = (before["MemFree"] - after["MemFree"] - sleep_pss) / n
        row.breakdown_kib = {k: (after.get(k, 0) - before.get(k, 0)) / n for k in MEM_KEYS[2:]}
        row.accounted_kib = row.helper_pss_kib + sum(row.breakdown_kib[k] for k in
                                                     ("Slab", "KernelStack", "PageTables", "Percpu"))
        if probe is not None:
            row.probe_loaded_s = _probe(row, probe)
    finally:
        harness.log(f"{name}: removing {len(started.ids)}")
        row.rm_s, rm_errors = remove(started.ids)
        row.errors += rm_errors[:3]
        left = fleet.wait_for_no_sleepers(60)
        if left:
            harness.log(f"{name}: {left} sleep processes still running 60 s after rm -f")
        remove_rest()  # containers created whose start failed: they stay, as with docker
    time.sleep(1.0)  # an engine's clean-up after the exit (podman's `container cleanup`)
    row.leftovers = before_state.leftovers(base, [*warm.ids, *started.ids], ignore=ignore)
    time.sleep(5.0)  # the kernel frees network namespaces from a work queue, some seconds later
    row.not_returned_mib = (before["MemAvailable"] - settled_meminfo()["MemAvailable"]) / 1024
    harness.log(f"{name}: rm -f in {row.rm_s:.1f} s; left behind: {', '.join(row.leftovers) or 'nothing'}")
    return row


# --- rows ---------------------------------------------------------------------


def bench_floor(count: int) -> Row:
    """``count`` unshare'd sleep processes; removal is SIGKILL to each one's process group."""
    name = ROWS["floor"]
    exe = harness.which("unshare")
    busybox = harness.which("busybox")
    if exe is None or busybox is None:
        return Row(name, note="unshare (util-linux) or busybox not installed")
    FLOOR_DIR.mkdir(parents=True, exist_ok=True)
    sleep = FLOOR_DIR / "sleep"
    if not sleep.exists():
        sleep.symlink_to(busybox)
    argv = [exe, "--fork", "--kill-child", "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup",
            str(sleep), fleet.MARKER]
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(n: int) -> fleet.Fleet:
        t = time.perf_counter()
        ids = []
        for _ in range(n):
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            procs[str(p.pid)] = p
            ids.append(str(p.pid))
        return fleet.Fleet(Engine("floor", [], ""), ids, time.perf_counter() - t)

    def remove(ids: list[str]) -> tuple[float, list[str]]:
        t = time.perf_counter()
        for i in ids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(i), signal.SIGKILL)
        for i in ids:
            procs.pop(i).wait()
        return time.perf_counter() - t, []

    def helpers() -> list[int]:
        return [int(i) for i in procs]

    try:
        return measure_fleet(name, FLOOR_DIR, count, start, remove, helpers)
    finally:
        for i in list(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(i), signal.SIGKILL)
            procs.pop(i).wait()


def portside_cli_env() -> dict[str, str]:
    """The portside CLI as installed: its bytecode cached (in a private prefix, see bench/run.py)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def engine_rows(engine: Engine, base: Path, wanted: dict[str, str], count: int, cli_count: int, clients: int,
                parallel: int, *, env: dict[str, str] | None = None) -> list[Row]:
    """The API row and the CLI row of one engine (``wanted``: row key -> name, of those asked for)."""
    rows = []

    def remove(ids: list[str]) -> tuple[float, list[str]]:
        return fleet.remove_all(engine, ids, parallel)

    def helpers() -> list[int]:
        return fleet.processes_naming(str(base))

    def ignore(path: str) -> bool:  # files that exist from the start and only grow, or come and go by themselves
        return path.endswith((".log", "-journal", ".lock")) or "/tmp/" in path

    def probe() -> float:
        return probe_latency(engine, env=env)

    def rest() -> None:
        fleet.remove_leftovers(engine)

    for key, row_name in wanted.items():
        try:
            if key.endswith("-api"):
                rows.append(measure_fleet(row_name, base, count,
                                          lambda n: fleet.start_via_api(engine, n, clients), remove, helpers,
                                          ignore=ignore, probe=probe, remove_rest=rest))
            else:
                rows.append(measure_fleet(row_name, base, cli_count,
                                          lambda n: fleet.start_via_cli(engine, n, parallel, env=env), remove,
                                          helpers, ignore=ignore, probe=probe, remove_rest=rest))
        except (CommandFailed, OSError) as e:
            harness.log(f"{row_name}: failed: {e}")
            rows.append(Row(row_name, note=f"failed: {e}"))
        finally:
            fleet.remove_leftovers(engine)
    return rows


def bench_portside(wanted: dict[str, str], count: int, cli_count: int, clients: int, parallel: int,
                   versions: dict[str, str]) -> list[Row]:
    harness.log("portside: starting the daemon")
    try:
        with harness.portside_daemon() as engine:
            versions["portside"] = engine.version
            fleet.import_into_portside(engine)
            return engine_rows(engine, harness.WORK / "portside", wanted, count, cli_count, clients, parallel,
                               env=portside_cli_env())
    except (PeerUnavailable, CommandFailed) as e:
        harness.log(f"portside: {e}")
        return [Row(n, note=str(e)) for n in wanted.values()]


def bench_docker(wanted: dict[str, str], count: int, clients: int, parallel: int,
                 versions: dict[str, str]) -> list[Row]:
    harness.log("docker: starting dockerd")
    try:
        with harness.dockerd() as engine:
            versions["docker"] = engine.version
            fleet.load_into_peer(engine)
            return engine_rows(engine, harness.WORK / "dockerd", wanted, count, count, clients, parallel)
    except (PeerUnavailable, CommandFailed) as e:
        harness.log(f"docker: {e}")
        return [Row(n, note=str(e)) for n in wanted.values()]


def bench_podman(count: int, parallel: int, versions: dict[str, str]) -> list[Row]:
    try:
        with harness.podman() as engine:
            versions["podman"] = engine.version
            fleet.load_into_peer(engine)
            return engine_rows(engine, harness.WORK / "podman", {"podman": ROWS["podman"]}, count, count, 1,
                               parallel)
    except (PeerUnavailable, CommandFailed) as e:
        harness.log(f"podman: {e}")
        return [Row(ROWS["podman"], note=str(e))]


# --- report -------------------------------------------------------------------


def targets(rows: dict[str, Row]) -> list[dict[str, Any]]:
    api = rows.get(ROWS["portside-api"])
    ok = api is not None and api.measured
    return [
        {"target": "1000 containers started in under 60 s (portside, API)",
         "value": api.start_s if ok and api and api.count >= 1000 else None, "unit": "s",
         "met": None if not ok or api is None or api.count < 1000 else (
             api.started >= 1000 and api.running >= 1000 and api.start_s < 60)},
        {"target": "host memory under 1 MiB per container (portside, API)",
         "value": api.mem_available_kib if ok and api else None, "unit": "KiB",
         "met": None if not ok or api is None else api.mem_available_kib < 1024},
        {"target": "rm -f leaves nothing behind (portside)",
         "value": None, "unit": "",
         "met": None if not ok else all(not r.leftovers for r in rows.values()
                                        if r.name.startswith("portside") and r.measured)},
    ]


def print_report(rows: list[Row], goals: list[dict[str, Any]], versions: dict[str, str]) -> None:
    header = ("row", "N", "running", "start", "per s", "host KiB/ctr", "(MemFree)", "accounted",
              "helper PSS", "sleep PSS", "rm -f", "left behind")
    table = []
    for r in rows:
        if not r.measured:
            table.append((r.name, str(r.count or "-"), "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"))
            continue
        table.append((r.name, str(r.started), str(r.running), f"{r.start_s:.1f} s", f"{r.rate:.1f}",
                      f"{r.mem_available_kib:.0f}", f"{r.mem_free_kib:.0f}", f"{r.accounted_kib:.0f}",
                      f"{r.helper_pss_kib:.0f}",
                      f"{r.sleep_pss_kib:.0f}", f"{r.rm_s:.1f} s", str(len(r.leftovers)) if r.leftovers else "none"))
    widths = [max(len(t[i]) for t in (header, *table)) for i in range(len(header))]
    print("density: N idle `sleep` containers (--network none), host memory per container after dropping caches")
    for line in (header, tuple("-" * w for w in widths), *table):
        print("  ".join([line[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(line[1:], widths[1:]))]).rstrip())
    print("host KiB/ctr: drop in MemAvailable (MemFree in brackets) minus the sleep processes' PSS, per container;"
          " accounted: growth of kernel memory (slab, stacks, page tables, per-cpu) plus helper PSS, per container"
          " (what other work on the machine disturbs less); helper PSS: growth of the engine's own processes")
    print()
    for r in rows:
        if r.measured:
            parts = ", ".join(f"{k} {v:.0f}" for k, v in r.breakdown_kib.items())
            print(f"{r.name}: per container, KiB: {parts}; MemAvailable not back after rm: "
                  f"{r.not_returned_mib:.0f} MiB")
            if r.probe_idle_s and r.probe_loaded_s:
                print(f"{r.name}: one more `run --rm true`: {r.probe_idle_s * 1e3:.0f} ms with none running, "
                      f"{r.probe_loaded_s * 1e3:.0f} ms with {r.running} running "
                      f"({r.probe_loaded_s / r.probe_idle_s:.2f}x)")
        for item in r.leftovers:
            print(f"  {r.name} left behind: {item}")
        for err in r.errors:
            print(f"  {r.name} error: {err}")
        if r.note:
            print(f"  {r.name}: {r.note}")
    print()
    by_name = {r.name: r for r in rows}
    ps = by_name.get(ROWS["portside-api"])
    for r in rows:
        if ps is None or not ps.measured or not r.measured or r is ps:
            continue
        print(f"{r.name}: portside (API) starts {ps.rate / r.rate:.2f}x as many containers a second; "
              f"{r.name} uses {r.mem_available_kib / ps.mem_available_kib:.2f}x portside's host memory per "
              f"container and takes {(r.rm_s / r.started) / (ps.rm_s / ps.started):.2f}x its time per rm -f")
    for goal in goals:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        value = goal["value"]
        figure = "" if value is None else f" ({value:.1f} {goal['unit']})"
        print(f"target: {goal['target']}: {verdict}{figure}")
    print()
    harness.print_versions_and_machine(versions)


def main() -> int:
    p = harness.arg_parser(__doc__.split("\n", 1)[0])
    p.add_argument("--count", type=int, default=1000, help="portside's and the floor's fleet (default 1000)")
    p.add_argument("--cli-count", type=int, default=0, help="portside's fleet for the CLI row (default: --count)")
    p.add_argument("--peer-count", type=int, default=100, help="docker's and podman's fleet (default 100)")
    p.add_argument("--clients", type=int, default=4, help="API client threads (default 4)")
    p.add_argument("--parallel", type=int, default=4, help="CLI processes at a time (default 4)")
    args = p.parse_args()
    harness.exit_on_sigterm()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if unknown := only - ROWS.keys():
        raise SystemExit(f"--only: unknown row(s) {', '.join(sorted(unknown))}; rows: {', '.join(ROWS)}")

    def pick(*keys: str) -> dict[str, str]:
        return {k: ROWS[k] for k in keys if not only or k in only}

    versions: dict[str, str] = {"portside": harness.portside_version()}
    rows: list[Row] = []
    owned = (lambda rel: rel in ("docker", "libpod_parent", "libpod_parent/conmon", "portside"))
    with harness.removing_new_cgroups(owned), fleet.work_dir():
        fleet.build_rootfs()
        if pick("floor"):
            rows.append(bench_floor(args.count))
        if wanted := pick("portside-api", "portside-cli"):
            rows += bench_portside(wanted, args.count, args.cli_count or args.count, args.clients, args.parallel,
                                   versions)
        if wanted := pick("docker-api", "docker-cli"):
            rows += bench_docker(wanted, args.peer_count, args.clients, args.parallel, versions)
        if pick("podman"):
            rows += bench_podman(args.peer_count, args.parallel, versions)
    goals = targets({r.name: r for r in rows})
    if args.json:
        print(json.dumps({"title": "density", "rows": [{**asdict(r)} for r in rows], "targets": goals,
                          "versions": versions, "machine": harness.machine_info(),
                          "cgroups": harness.cgroup_mode(), "marker": fleet.MARKER}, indent=2))
        return 0
    print_report(rows, goals, versions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
