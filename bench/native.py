"""Native speed: the same busybox workloads on the host and inside containers, as ratios from one run.

    /work/main/.venv/bin/python bench/native.py [--runs 5] [--io-mib 512] [--only host,portside,...] [--json]

Every workload is one ``busybox sh -c`` script that times itself: it reads
/proc/uptime (10 ms ticks; no time namespace, so the host's clock) before and
after the work and prints both, so neither a container's start nor ``exec``'s
round trip is in the figure. The host runs /bin/busybox, the containers the
busybox image made from that very binary. Workloads (``--only`` takes the
rows, not the workloads):

cpu-awk        an awk loop, 6 million iterations: user-space CPU only
cpu-sha256     ``dd if=/dev/zero bs=1M count=200 | sha256sum``: CPU through a pipe
syscalls       ``dd if=/dev/zero of=/dev/null bs=1 count=4000000``: 8 million
               read/write calls, each one through the seccomp filter in a container
write-layer    ``dd ... bs=1M count=N conv=fsync`` into the container's own layer
               (overlayfs on the ext4 of bench/.work; the host: a directory on it)
write-volume   the same into a volume (a directory on the same ext4)
read-cold      ``dd`` a file of the same size, written once into the layer before the runs,
               after dropping the page cache
read-cached    ``dd`` it 8 times more, from the page cache

Rows: host; portside (the default seccomp profile, no limits);
portside-unconfined (``--security-opt seccomp=unconfined``: the seccomp
filter's cost is the difference); docker and podman (their defaults,
``--network none``). Each row runs in a long-lived ``sleep`` container; a
workload runs there with ``exec``. Rows take turns within each run, so the
machine's drift spreads over all of them. Target (from the issue): portside
within 3 % of the host on each workload.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fleet
import harness
from harness import CommandFailed, Engine, PeerUnavailable

ROWS = ("host", "portside", "portside-unconfined", "docker", "podman")
HOST_DIR = fleet.WORK / "native-host"
BUSYBOX = "/bin/busybox"
TIMED = 'read a _ < /proc/uptime; {work} || exit 3; read b _ < /proc/uptime; echo "$a $b"'


def workloads(io_mib: int) -> dict[str, str]:
    """Workload name -> shell code; ``{dir}`` is where files go (the layer, or the volume)."""
    dd = "dd 2>/dev/null"
    return {
        "cpu-awk": "awk 'BEGIN{s=0; for(i=0;i<6000000;i++) s+=i%7; print s}' >/dev/null",
        "cpu-sha256": f"{dd} if=/dev/zero bs=1M count=200 | sha256sum >/dev/null",
        "syscalls": f"{dd} if=/dev/zero of=/dev/null bs=1 count=4000000",
        "write-layer": f"{dd} if=/dev/zero of={{layer}}/native.bin bs=1M count={io_mib} conv=fsync",
        "write-volume": f"{dd} if=/dev/zero of={{volume}}/native.bin bs=1M count={io_mib} conv=fsync",
        "read-cold": f"{dd} if={{layer}}/read.bin of=/dev/null bs=1M",
        "read-cached": f"for i in 1 2 3 4 5 6 7 8; do {dd} if={{layer}}/read.bin of=/dev/null bs=1M; done",
    }


@dataclass
class Target:
    """Where a row runs its scripts: ``argv`` prefix before ``sh -c SCRIPT``, and its two directories."""

    name: str
    argv: list[str]
    layer: str
    volume: str
    env: dict[str, str] | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    note: str = ""

    def run(self, code: str) -> float:
        script = TIMED.replace("{work}", code.replace("{layer}", self.layer).replace("{volume}", self.volume))
        proc = subprocess.run([*self.argv, "sh", "-c", script], stdin=subprocess.DEVNULL, capture_output=True,
                              env=self.env, check=False)
        out = proc.stdout.decode().split()
        if proc.returncode != 0 or len(out) != 2:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise CommandFailed(f"{self.name}: exit {proc.returncode}: {err[-1] if err else proc.stdout[-200:]!r}")
        return float(out[1]) - float(out[0])


def container_target(name: str, engine: Engine, *extra: str) -> Target:
    """A long-lived ``sleep`` container with a volume at /data; workloads go in with ``exec``."""
    cname = f"native-{name}"
    engine.run("rm", "-f", cname, check=False)
    engine.run("run", "-d", "--name", cname, "--network", "none", "-v", f"{cname}:/data", *extra,
               fleet.IMAGE, "sleep", fleet.MARKER)
    return Target(name, engine.cmd("exec", cname), "/tmp", "/data", env=engine.env)


def remove_target(engine: Engine, name: str) -> None:
    engine.run("rm", "-f", "-v", f"native-{name}", check=False)
    engine.run("volume", "rm", "-f", f"native-{name}", check=False)


@contextlib.contextmanager
def targets(wanted: set[str], versions: dict[str, str], notes: dict[str, str]) -> Iterator[list[Target]]:
    """Every row asked for, its engine started and its container running; all stopped afterwards."""
    out: list[Target] = []
    with contextlib.ExitStack() as stack:
        if "host" in wanted:
            HOST_DIR.mkdir(parents=True, exist_ok=True)
            out.append(Target("host", [BUSYBOX], str(HOST_DIR), str(HOST_DIR)))
            versions["busybox"] = harness._first_line([BUSYBOX])
        if wanted & {"portside", "portside-unconfined"}:
            try:
                ps = stack.enter_context(harness.portside_daemon())
                versions["portside"] = ps.version
                fleet.import_into_portside(ps)
                for row, extra in (("portside", ()), ("portside-unconfined", ("--security-opt", "seccomp=unconfined"))):
                    if row in wanted:
                        out.append(container_target(row, ps, *extra))
                        stack.callback(remove_target, ps, row)
            except (PeerUnavailable, CommandFailed) as e:
                notes.update({r: str(e) for r in ("portside", "portside-unconfined") if r in wanted})
        for row, start in (("docker", harness.dockerd), ("podman", harness.podman)):
            if row in wanted:
                try:
                    engine = stack.enter_context(start())
                    versions[row] = engine.version
                    fleet.load_into_peer(engine)
                    out.append(container_target(row, engine))
                    stack.callback(remove_target, engine, row)
                except (PeerUnavailable, CommandFailed) as e:
                    notes[row] = str(e)
        yield out


def measure(rows: list[Target], work: dict[str, str], runs: int, warmup: int, io_mib: int) -> None:
    """Each run: every workload on every row, rows rotating. The reads read a file each row writes once,
    untimed, before the runs (a file just written and freed again each run made the cold reads vary
    twice over); the writes write a new file and remove it. Every write and every cold read starts from
    the same state: what earlier rows wrote or freed written back, the page cache dropped (``sync``;
    ``drop_caches``)."""
    for t in rows:
        t.run(f"dd if=/dev/zero of={{layer}}/read.bin bs=1M count={io_mib} conv=fsync 2>/dev/null")
    for i in range(warmup + runs):
        order = rows[i % len(rows):] + rows[: i % len(rows)]
        for name, code in work.items():
            for t in order:
                if name.startswith(("write", "read-cold")):
                    fleet.drop_caches()
                seconds = t.run(code)
                if name.startswith("write"):
                    t.run("rm -f {layer}/native.bin {volume}/native.bin")
                if i >= warmup:
                    t.samples.setdefault(name, []).append(seconds)
        harness.log(f"run {i + 1}/{warmup + runs} done" + (" (warm-up)" if i < warmup else ""))


def summarize(rows: list[Target], work: list[str]) -> dict[str, Any]:
    """Medians by row and workload, every sample, and the targets with their figures."""
    med = {t.name: {w: statistics.median(s) for w, s in t.samples.items()} for t in rows}
    mins = {t.name: {w: min(s) for w, s in t.samples.items()} for t in rows}
    goals = []
    if "host" in med and "portside" in med:
        for w in work:
            if w in med["portside"] and med["host"].get(w):
                r = med["portside"][w] / med["host"][w]
                goals.append({"target": f"portside within 3 % of the host: {w}", "value": r, "met": r <= 1.03})
    return {"medians": med, "mins": mins, "samples": {t.name: t.samples for t in rows}, "targets": goals}


def print_report(rows: list[Target], work: list[str], summary: dict[str, Any], notes: dict[str, str],
                 versions: dict[str, str], io_mib: int, runs: int) -> None:
    host = next((t for t in rows if t.name == "host"), None)
    med, mins = summary["medians"], summary["mins"]
    header = ("workload", *[t.name for t in rows])
    table = []
    for w in work:
        cells = [w]
        for t in rows:
            m = med[t.name].get(w)
            if m is None:
                cells.append("-")
                continue
            ratio = ""
            if host is not None and t is not host and med["host"].get(w) and mins["host"].get(w):
                ratio = f" ({m / med['host'][w]:.2f}x, min {mins[t.name][w] / mins['host'][w]:.2f}x)"
            cells.append(f"{m:.2f} s{ratio}")
        table.append(tuple(cells))
    widths = [max(len(r[i]) for r in (header, *table)) for i in range(len(header))]
    print(f"native speed: median of {runs} runs, seconds measured inside (/proc/uptime, 10 ms ticks); "
          f"(x) = median over the host's median, min = fastest run over the host's fastest; I/O: {io_mib} MiB")
    for line in (header, tuple("-" * w for w in widths), *table):
        print("  ".join([line[0].ljust(widths[0]), *(c.rjust(wd) for c, wd in zip(line[1:], widths[1:]))]))
    for row, note in notes.items():
        print(f"{row}: {note}")
    print()
    for g in summary["targets"]:
        print(f"target: {g['target']}: {'met' if g['met'] else 'NOT met'} ({g['value']:.3f}x)")
    print()
    harness.print_versions_and_machine(versions)


def main() -> int:
    p = harness.arg_parser(__doc__.split("\n", 1)[0], runs=5, warmup=1)
    p.add_argument("--io-mib", type=int, default=512, help="MiB written and read back (default 512)")
    args = p.parse_args()
    harness.exit_on_sigterm()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if unknown := only - set(ROWS):
        raise SystemExit(f"--only: unknown row(s) {', '.join(sorted(unknown))}; rows: {', '.join(ROWS)}")
    wanted = only or set(ROWS)
    work = workloads(args.io_mib)
    versions: dict[str, str] = {}
    notes: dict[str, str] = {}
    owned: Callable[[str], bool] = lambda rel: rel in ("docker", "libpod_parent", "libpod_parent/conmon", "portside")
    with harness.removing_new_cgroups(owned), fleet.work_dir():
        fleet.build_rootfs()
        with targets(wanted, versions, notes) as rows:
            measure(rows, work, args.runs, args.warmup, args.io_mib)
    summary = summarize(rows, list(work))
    if args.json:
        print(json.dumps({**summary, "io_mib": args.io_mib, "versions": versions, "notes": notes,
                          "machine": harness.machine_info(), "cgroups": harness.cgroup_mode()}, indent=2))
    else:
        print_report(rows, list(work), summary, notes, versions, args.io_mib, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
