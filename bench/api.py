"""Listing with 1000 containers, and the API under 50 concurrent clients: portside beside docker and podman.

    PORTSIDE=... python bench/api.py [--count 1000] [--peer-count 1000] [--state running|created]
        [--runs 20] [--warmup 2] [--clients 50] [--seconds 10] [--only portside,docker,podman] [--json]

Each engine gets a fleet of ``--count`` containers (bench/fleet.py: busybox
``sleep``, ``--network none``, made through the Engine API by a few client
threads on keep-alive connections; podman's through ``podman run -d``/``create``
processes). ``--state running`` (the default) creates and starts them, so
``docker ps`` (running containers only) lists as many as ``docker ps -a``;
``--state created`` only creates them, so ``ps`` lists none and ``ps -a`` all.

Then, per engine, the median and p90 of ``--runs`` runs (after ``--warmup``):

- ``docker ps`` / ``docker ps -a``: the docker CLI at /usr/local/bin/docker
  with ``DOCKER_HOST`` at the engine's socket (portside's and dockerd's);
- ``portside ps`` / ``portside ps -a`` (portside only; its bytecode cached, as
  installed: see bench/run.py ``portside_cli_env``);
- ``podman ps`` / ``podman ps -a`` (podman has no daemon here: each is a process);
- ``GET /containers/json`` and ``?all=1``: one request on a fresh unix-socket
  connection, the whole body read (portside and dockerd);
- floors: ``docker --version`` (the CLI's own start, no engine) and
  ``GET /_ping`` on the engine's socket (one round trip, no work).

And the *load* row: ``--clients`` client processes, each on one keep-alive
connection, alternate ``GET /containers/json`` and ``GET /images/json`` for
``--seconds``; reported: requests per second (all clients), p50/p99 latency
of each endpoint, and errors (non-200, dropped connections). The clients run on
the same 2 CPUs as the daemon, so they take part of its CPU: the figure is
what one machine does, client and server together.

Ratios are to portside's row of the same name. Targets (from the issue):
``docker ps`` with 1000 containers under 150 ms; ``GET /containers/json``
well under that; no errors under 50 clients. See docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fleet
import harness
from harness import CommandFailed, Engine, PeerUnavailable

STATIC_DOCKER_CLI = "/usr/local/bin/docker"
PYCACHE = fleet.WORK / "pycache"
ENGINES = ("portside", "docker", "podman")


# --- figures ------------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of ``samples``."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Row:
    """One timed operation on one engine; without samples, ``note`` says why."""

    engine: str
    what: str
    samples: list[float] = field(default_factory=list)
    listed: int = -1   # how many containers the operation returned (a check that it saw the fleet)
    note: str = ""

    @property
    def measured(self) -> bool:
        return bool(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        return percentile(self.samples, 90)


@dataclass
class Load:
    """The load row of one engine: ``clients`` processes hammering two endpoints for ``seconds``."""

    engine: str
    clients: int = 0
    seconds: float = 0.0
    requests: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # endpoint -> p50, p99, max
    daemon_cpu_s: float = -1.0  # CPU time (user + system) the engine's daemon used meanwhile; -1: unknown
    note: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# --- timing one operation -----------------------------------------------------


def timed(engine: str, what: str, fn: Callable[[], int], runs: int, warmup: int) -> Row:
    """Time ``fn`` (which returns how many containers it listed); a failure becomes the row's note."""
    harness.log(f"{engine}: {what}: {runs} runs after {warmup} warmup")
    listed: list[int] = []
    try:
        samples = harness.measure(lambda: listed.append(fn()), runs=runs, warmup=warmup)
    except (CommandFailed, OSError, ValueError) as e:
        harness.log(f"{engine}: {what}: failed: {e}")
        return Row(engine, what, note=f"failed: {e}")
    return Row(engine, what, samples, listed[-1] if listed else -1)


def cli_lines(argv: Sequence[str], env: dict[str, str] | None) -> Callable[[], int]:
    """Run a ``ps`` command; return the number of lines it printed after the header."""
    def run() -> int:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise CommandFailed(f"{' '.join(argv)}: exit {proc.returncode}: {err[-1] if err else ''}")
        return max(0, len(proc.stdout.splitlines()) - 1)
    return run


def api_get(sock: Path, path: str) -> Callable[[], int]:
    """One GET on a new connection (as the docker CLI makes one per command); returns the list's length.

    The first run's body is checked to be a JSON list whose entries each carry one ``Id``.
    """
    checked: list[bool] = []

    def get() -> int:
        conn = fleet._UnixConnection(sock, 60.0)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise CommandFailed(f"GET {path}: HTTP {resp.status}: {body[:200]!r}")
        if not checked:
            doc = json.loads(body)
            if not isinstance(doc, list) or body.count(b'"Id":') != len(doc):
                raise CommandFailed(f"GET {path}: not a list of entries with one Id each: {body[:200]!r}")
            checked.append(True)
        # counted, not parsed: decoding 400 kB of JSON would add the client's work to the server's
        return body.count(b'"Id":')
    return get


def docker_cli_env(sock: Path) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": f"unix://{sock}"}


def portside_cli_env() -> dict[str, str]:
    """The portside CLI as installed: its bytecode cached in a private prefix (see bench/run.py)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def docker_cli() -> str | None:
    return STATIC_DOCKER_CLI if os.access(STATIC_DOCKER_CLI, os.X_OK) else harness.which("docker")


def list_rows(engine: Engine, runs: int, warmup: int) -> list[Row]:
    """docker ps (-a), portside ps (-a) or podman ps (-a), the list endpoint, and the floors."""
    rows: list[Row] = []
    cli = docker_cli()
    if engine.api_socket is not None:
        sock = engine.api_socket
        if cli is None:
            rows.append(Row(engine.name, "docker ps", note="docker CLI not installed"))
        else:
            env = docker_cli_env(sock)
            rows.append(timed(engine.name, "docker --version (floor)", cli_lines([cli, "--version"], env),
                              runs, warmup))
            rows.append(timed(engine.name, "docker ps", cli_lines([cli, "ps"], env), runs, warmup))
            rows.append(timed(engine.name, "docker ps -a", cli_lines([cli, "ps", "-a"], env), runs, warmup))
        if engine.name == "portside":
            env = portside_cli_env()
            rows.append(timed(engine.name, "portside ps", cli_lines(engine.cmd("ps"), env), runs, warmup))
            rows.append(timed(engine.name, "portside ps -a", cli_lines(engine.cmd("ps", "-a"), env), runs, warmup))
        rows.append(timed(engine.name, "GET /_ping (floor)", _ping(sock), runs, warmup))
        rows.append(timed(engine.name, "GET /containers/json", api_get(sock, "/containers/json"), runs, warmup))
        rows.append(timed(engine.name, "GET /containers/json?all=1", api_get(sock, "/containers/json?all=1"),
                          runs, warmup))
        rows.append(timed(engine.name, "GET /images/json", api_get(sock, "/images/json"), runs, warmup))
    else:  # podman: its CLI reads its store itself
        rows.append(timed(engine.name, "podman ps", cli_lines(engine.cmd("ps"), engine.env), runs, warmup))
        rows.append(timed(engine.name, "podman ps -a", cli_lines(engine.cmd("ps", "-a"), engine.env), runs, warmup))
    return rows


def _ping(sock: Path) -> Callable[[], int]:
    def ping() -> int:
        status, _ = harness.http_get_unix(sock, "/_ping")
        if status != 200:
            raise CommandFailed(f"GET /_ping: HTTP {status}")
        return 0
    return ping


# --- the load row ---------------------------------------------------------------

LOAD_PATHS = ("/containers/json", "/images/json")


def _client(sock: str, seconds: float, start_at: float, out: Any) -> None:
    """One load client (a process): one keep-alive connection, the two paths in turn until the time is up."""
    latencies: dict[str, list[float]] = {p: [] for p in LOAD_PATHS}
    errors: list[str] = []
    conn = fleet._UnixConnection(Path(sock), 60.0)
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        path = LOAD_PATHS[i % len(LOAD_PATHS)]
        i += 1
        t = time.perf_counter()
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors.append(f"{path}: HTTP {resp.status}")
            else:
                latencies[path].append(time.perf_counter() - t)
            if resp.will_close:  # the server closed the keep-alive connection: count it, reconnect
                errors.append(f"{path}: server closed the connection")
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            errors.append(f"{path}: {type(e).__name__}: {e}")
            conn.close()
    conn.close()
    out.send((latencies, errors))
    out.close()


def load_row(engine: Engine, clients: int, seconds: float) -> Load:
    row = Load(engine.name, clients, seconds)
    if engine.api_socket is None:
        row.note = "no Engine API here"
        return row
    harness.log(f"{engine.name}: load: {clients} clients for {seconds:.0f} s")
    daemon = _daemon_pid(engine)
    cpu_before = _cpu_seconds(daemon)
    ctx = multiprocessing.get_context("fork")
    start_at = time.time() + 0.5 + clients * 0.01  # every client connected and waiting first
    procs, pipes = [], []
    for _ in range(clients):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_client, args=(str(engine.api_socket), seconds, start_at, child))
        p.start()
        child.close()
        procs.append(p)
        pipes.append(parent)
    merged: dict[str, list[float]] = {p: [] for p in LOAD_PATHS}
    for pipe, proc in zip(pipes, procs, strict=True):
        try:
            latencies, errors = pipe.recv()
        except EOFError:
            row.errors += 1
            row.first_errors.append(f"client pid {proc.pid} died")
            continue
        finally:
            proc.join(timeout=seconds + 60)
        for path, samples in latencies.items():
            merged[path] += samples
        row.errors += len(errors)
        row.first_errors += errors[: max(0, 5 - len(row.first_errors))]
    row.requests = sum(len(s) for s in merged.values())
    if cpu_before >= 0 and (cpu_after := _cpu_seconds(daemon)) >= 0:
        row.daemon_cpu_s = cpu_after - cpu_before
    for path, samples in merged.items():
        if samples:
            row.latency_ms[path] = {"p50": percentile(samples, 50) * 1e3, "p99": percentile(samples, 99) * 1e3,
                                    "max": max(samples) * 1e3}
    harness.log(f"{engine.name}: load: {row.rate:.0f} req/s, {row.errors} errors")
    return row


# The daemon whose CPU time the load row reports, by the pidfile the harness gives it.
DAEMON_PIDFILES = {"portside": harness.WORK / "portside" / "portside.pid",
                   "docker": harness.WORK / "dockerd" / "dockerd.pid"}


def _daemon_pid(engine: Engine) -> int:
    try:
        return int(DAEMON_PIDFILES[engine.name].read_text().strip())
    except (KeyError, OSError, ValueError):
        return 0


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) in seconds, or -1."""
    if not pid:
        return -1.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- fleets ---------------------------------------------------------------------


def _parallel(items: Sequence[Any], workers: int, one: Callable[[Any], str]) -> tuple[list[str], list[str]]:
    """``one(item)`` for every item on ``workers`` threads; (results, errors)."""
    results: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    it = iter(items)

    def worker() -> None:
        while True:
            with lock:
                item = next(it, None)
            if item is None:
                return
            try:
                r = one(item)
            except Exception as e:  # noqa: BLE001 - every failure is reported, the rest go on
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
            else:
                with lock:
                    results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def make_fleet_api(engine: Engine, count: int, running: bool, clients: int = 4) -> list[str]:
    """``count`` containers through the Engine API: created (and started when ``running``)."""
    if running:
        made = fleet.start_via_api(engine, count, clients)
        ids, errors = made.ids, made.errors
    else:
        local = threading.local()
        opened: list[fleet.ApiClient] = []

        def create(_: int) -> str:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = fleet.ApiClient(engine.api_socket)  # type: ignore[arg-type]
                opened.append(client)
            status, body = client.call("POST", "/containers/create", fleet.CREATE_BODY)
            if status != 201:
                raise CommandFailed(f"create: HTTP {status}: {body[:200]!r}")
            return str(json.loads(body)["Id"])

        try:
            ids, errors = _parallel(range(count), clients, create)
        finally:
            for c in opened:
                c.close()
    if errors:
        raise CommandFailed(f"{len(errors)} of {count} containers failed: {errors[0]}")
    return ids


def make_fleet_cli(engine: Engine, count: int, running: bool, parallel: int = 4) -> list[str]:
    """``count`` ``run -d`` (or ``create``) processes of the engine's CLI, ``parallel`` at a time."""
    args = fleet.RUN_ARGS if running else ("create", *fleet.RUN_ARGS[2:])

    def one(_: int) -> str:
        proc = subprocess.run(engine.cmd(*args), stdin=subprocess.DEVNULL, capture_output=True, env=engine.env,
                              check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise CommandFailed(f"{args[0]}: exit {proc.returncode}: {err[-1] if err else ''}")
        return proc.stdout.decode().strip().splitlines()[-1]

    ids, errors = _parallel(range(count), parallel, one)
    if errors:
        raise CommandFailed(f"{len(errors)} of {count} containers failed: {errors[0]}")
    return ids


def remove_fleet_api(engine: Engine, clients: int = 4) -> None:
    """Everything the engine lists, removed with ``DELETE ?force=1`` by ``clients`` threads."""
    client = fleet.ApiClient(engine.api_socket)  # type: ignore[arg-type]
    try:
        status, body = client.call("GET", "/containers/json?all=1")
        ids = [c["Id"] for c in json.loads(body)] if status == 200 else []
    finally:
        client.close()
    local = threading.local()

    def rm(cid: str) -> str:
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = fleet.ApiClient(engine.api_socket)  # type: ignore[arg-type]
        c.call("DELETE", f"/containers/{cid}?force=1&v=1")
        return cid

    harness.log(f"{engine.name}: removing {len(ids)} containers")
    _parallel(ids, clients, rm)
    fleet.remove_leftovers(engine)


@contextlib.contextmanager
def fleet_of(engine: Engine, count: int, running: bool) -> Iterator[None]:
    harness.log(f"{engine.name}: making {count} {'running' if running else 'created'} containers")
    t = time.perf_counter()
    try:
        if engine.api_socket is not None:
            make_fleet_api(engine, count, running)
        else:
            make_fleet_cli(engine, count, running)
        harness.log(f"{engine.name}: {count} made in {time.perf_counter() - t:.1f} s")
        yield
    finally:
        if engine.api_socket is not None:
            remove_fleet_api(engine)
        else:
            harness.log(f"{engine.name}: removing the fleet")
            fleet.remove_leftovers(engine)
        fleet.wait_for_no_sleepers(60)


# --- engines --------------------------------------------------------------------


@dataclass
class EngineResult:
    engine: str
    count: int
    state: str
    rows: list[Row] = field(default_factory=list)
    load: Load | None = None
    version: str = ""
    note: str = ""


def bench_engine(name: str, start: Callable[[], contextlib.AbstractContextManager[Engine]], count: int,
                 running: bool, args: Any) -> EngineResult:
    result = EngineResult(name, count, "running" if running else "created")
    harness.log(f"{name}: starting")
    try:
        with start() as engine:
            result.version = engine.version
            if name == "portside":
                fleet.import_into_portside(engine)
            else:
                fleet.load_into_peer(engine)
            with fleet_of(engine, count, running):
                result.rows = list_rows(engine, args.runs, args.warmup)
                if engine.api_socket is not None and args.clients > 0:
                    result.load = load_row(engine, args.clients, args.seconds)
    except (PeerUnavailable, CommandFailed, OSError) as e:
        harness.log(f"{name}: {e}")
        result.note = str(e)
    return result


# --- report ---------------------------------------------------------------------


def print_report(results: list[EngineResult], count: int) -> None:
    ours = next((r for r in results if r.engine == "portside"), None)
    base = {row.what: row for row in ours.rows} if ours else {}
    header = ("engine", "operation", "listed", "median", "p90", "runs", "vs portside")
    table = []
    for res in results:
        for row in res.rows:
            if not row.measured:
                table.append((res.engine, row.what, "-", "-", "-", "0", "-"))
                continue
            peer = base.get(row.what) or base.get(row.what.replace(res.engine, "portside", 1))
            vs = f"{row.median / peer.median:.2f}x" if peer is not None and peer.measured else "-"
            table.append((res.engine, row.what, str(row.listed) if row.listed >= 0 else "-",
                          f"{row.median * 1e3:.1f} ms", f"{row.p90 * 1e3:.1f} ms", str(len(row.samples)), vs))
    widths = [max(len(t[i]) for t in (header, *table)) for i in range(len(header))]
    print(f"listing with {count} containers present (per engine: {', '.join(f'{r.engine} {r.count} {r.state}' for r in results)})")
    for line in (header, tuple("-" * w for w in widths), *table):
        print("  ".join([line[0].ljust(widths[0]), line[1].ljust(widths[1]),
                         *(c.rjust(w) for c, w in zip(line[2:], widths[2:]))]).rstrip())
    print("vs portside = this row's median / portside's median for the same operation (podman ps: portside ps)")
    for res in results:
        for row in res.rows:
            if row.note:
                print(f"  {res.engine} {row.what}: {row.note}")
        if res.note:
            print(f"  {res.engine}: {res.note}")
    loads = [r.load for r in results if r.load is not None]
    if loads:
        print()
        print(f"load: {loads[0].clients} client processes, keep-alive, alternating "
              f"{' and '.join(LOAD_PATHS)}, {loads[0].seconds:.0f} s")
        header2 = ("engine", "req/s", *(f"{p} p50/p99/max ms" for p in LOAD_PATHS), "errors",
                   "daemon CPU/req", "vs portside")
        ours_load = next((ld for ld in loads if ld.engine == "portside"), None)
        table2 = []
        for ld in loads:
            cells = [ld.engine, f"{ld.rate:.0f}"]
            for p in LOAD_PATHS:
                lat = ld.latency_ms.get(p)
                cells.append(f"{lat['p50']:.0f}/{lat['p99']:.0f}/{lat['max']:.0f}" if lat else "-")
            cells.append(str(ld.errors))
            cells.append(f"{ld.daemon_cpu_s / ld.requests * 1e3:.2f} ms" if ld.daemon_cpu_s >= 0 and ld.requests
                         else "-")
            cells.append(f"{ld.rate / ours_load.rate:.2f}x" if ours_load and ours_load.rate else "-")
            table2.append(tuple(cells))
        widths = [max(len(t[i]) for t in (header2, *table2)) for i in range(len(header2))]
        for line in (header2, tuple("-" * w for w in widths), *table2):
            print("  ".join([line[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(line[1:], widths[1:]))]))
        print("daemon CPU/req = the daemon's CPU time (all threads) during the run / requests answered;"
              " vs portside = this engine's requests per second / portside's")
        for ld in loads:
            for err in ld.first_errors:
                print(f"  {ld.engine} error: {err}")
            if ld.note:
                print(f"  {ld.engine}: {ld.note}")
    print()
    for goal in targets(results):
        verdict = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        figure = "" if goal["value"] is None else f" ({goal['value']:.1f} {goal['unit']})"
        print(f"target: {goal['target']}: {verdict}{figure}")
    print()
    harness.print_versions_and_machine({r.engine: r.version for r in results if r.version})


def targets(results: list[EngineResult]) -> list[dict[str, Any]]:
    ours = next((r for r in results if r.engine == "portside"), None)
    rows = {row.what: row for row in ours.rows if row.measured} if ours else {}
    ps = rows.get("docker ps" if ours and ours.state == "running" else "docker ps -a")
    ok = ours is not None and ours.count >= 1000 and ps is not None
    load = ours.load if ours else None
    return [
        {"target": "docker ps with 1000 containers under 150 ms (portside, median)",
         "value": ps.median * 1e3 if ps else None, "unit": "ms",
         "met": (ps.median < 0.150) if ok and ps else None},
        {"target": "no errors under the concurrent clients (portside)",
         "value": float(load.errors) if load else None, "unit": "errors",
         "met": (load.errors == 0 and load.requests > 0) if load else None},
    ]


def main() -> int:
    p = harness.arg_parser(__doc__.split("\n", 1)[0], runs=20, warmup=2)
    p.add_argument("--count", type=int, default=1000, help="portside's fleet (default 1000)")
    p.add_argument("--peer-count", type=int, default=0, help="docker's and podman's fleet (default: --count)")
    p.add_argument("--state", choices=("running", "created"), default="running",
                   help="the fleet's containers started (default) or only created")
    p.add_argument("--clients", type=int, default=50, help="concurrent API clients of the load row (0: none)")
    p.add_argument("--seconds", type=float, default=10.0, help="how long the load row lasts (default 10)")
    args = p.parse_args()
    harness.exit_on_sigterm()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if unknown := only - set(ENGINES):
        raise SystemExit(f"--only: unknown engine(s) {', '.join(sorted(unknown))}; engines: {', '.join(ENGINES)}")
    running = args.state == "running"
    peer_count = args.peer_count or args.count
    starts: dict[str, tuple[Callable[[], contextlib.AbstractContextManager[Engine]], int]] = {
        "portside": (harness.portside_daemon, args.count),
        "docker": (harness.dockerd, peer_count),
        "podman": (harness.podman, peer_count),
    }
    results = []
    owned = (lambda rel: rel in ("docker", "libpod_parent", "libpod_parent/conmon", "portside"))
    with harness.removing_new_cgroups(owned), fleet.work_dir():
        fleet.build_rootfs()
        for name in ENGINES:
            if not only or name in only:
                start, count = starts[name]
                results.append(bench_engine(name, start, count, running, args))
    if args.json:
        print(json.dumps({"title": "api", "results": [asdict(r) for r in results], "targets": targets(results),
                          "machine": harness.machine_info(), "cgroups": harness.cgroup_mode()}, indent=2))
        return 0
    print_report(results, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
