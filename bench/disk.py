"""Disk per container: the blocks an idle container adds under its engine's directories, beside docker and podman.

    /work/main/.venv/bin/python bench/disk.py [--count 1000] [--peer-count 100] [--only portside,docker,podman]
        [--json]

Each engine runs on private directories (bench/harness.py), gets the busybox
image and one warm-up container (created, started, removed: what an engine
makes once is not a container's cost). Then, with ``sync`` before every
reading:

1. one container is created and started (``sleep``, ``--network none``) and
   left idle for a second: what it adds is the "1 container" figure;
2. more are started until there are ``--count`` (portside; ``--peer-count``
   for the peers, 100 by default: docker starts about 3 a second here): what
   they add, divided by their number, is the "per container" figure;
3. all are removed (``rm -f``): what is left over the baseline should be 0.

Usage is what ``du -sk`` counts: allocated blocks (``st_blocks``), each inode
once, directories included, without crossing into other file systems (the
overlay mounts docker and podman keep under their roots, their shm tmpfs).
It is split into the engine's persistent directories, which are on disk in
production, and its run-time ones, which production keeps on a tmpfs:

=========  ===============================  ====================================
engine     persistent                       run-time (a tmpfs under /run)
=========  ===============================  ====================================
portside   ``--root``                       the exec root (``/run/portside``)
docker     ``--data-root``                  ``--exec-root`` (``/run/docker``)
podman     ``--root`` (its storage, libpod  ``--runroot`` and ``--tmpdir``
           database, container dirs)        (``/run/containers``, ``/run/libpod``)
=========  ===============================  ====================================

Here the run-time directories are on disk too (bench/.work, and /run is on
the root disk on this machine); they are shown apart and are not part of the
targets. Targets (from the issue): portside under 64 KiB per container and
under 64 MiB for 1000.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fleet
import harness
from harness import CommandFailed, Engine, PeerUnavailable

KiB = 1024
ROWS = ("portside", "docker", "podman")


def usage(base: Path) -> dict[str, int]:
    """Relative path -> allocated bytes of every inode under ``base`` (each inode once), on base's file system."""
    out: dict[str, int] = {}
    if not base.exists():
        return out
    dev = base.stat().st_dev
    seen: set[int] = set()
    stack = [base]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_dev != dev or st.st_ino in seen:
                continue  # a mount point (overlay merged/, shm), or a hard link counted already
            seen.add(st.st_ino)
            out[os.path.relpath(entry.path, base)] = st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return out


@dataclass
class Dirs:
    persistent: list[Path]
    runtime: list[Path]

    def measure(self) -> tuple[dict[str, int], dict[str, int]]:
        os.sync()
        def merged(paths: list[Path]) -> dict[str, int]:
            out: dict[str, int] = {}
            for p in paths:
                out.update({f"{p.name}/{k}": v for k, v in usage(p).items()})
            return out
        return merged(self.persistent), merged(self.runtime)


@dataclass
class Row:
    name: str
    count: int = 0
    one_kib: float = 0.0              # persistent, the first container
    one_runtime_kib: float = 0.0
    per_kib: float = 0.0              # persistent, per container over the whole fleet
    per_runtime_kib: float = 0.0
    total_mib: float = 0.0            # persistent, the whole fleet
    left_kib: float = 0.0             # persistent + run-time over the baseline after rm -f of all
    one_paths: list[tuple[str, int]] = field(default_factory=list)  # what the first container added, bytes
    errors: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def measured(self) -> bool:
        return self.count > 0


def grown(before: dict[str, int], after: dict[str, int]) -> list[tuple[str, int]]:
    """Paths that are new or bigger, with the bytes they add, biggest first."""
    out = [(p, b - before.get(p, 0)) for p, b in after.items() if b > before.get(p, 0)]
    return sorted(out, key=lambda x: (-x[1], x[0]))


def total(u: dict[str, int]) -> int:
    return sum(u.values())


def shorten(path: str, ids: list[str]) -> str:
    for i in ids:
        path = path.replace(i, "<id>").replace(i[:12], "<id12>")
    return path


def measure_engine(name: str, engine: Engine, dirs: Dirs, count: int,
                   start: Callable[[int], fleet.Fleet]) -> Row:
    row = Row(name)
    warm = start(1)
    if warm.errors or not warm.ids:
        row.note = f"failed: {warm.errors[0] if warm.errors else 'no container'}"
        return row
    fleet.remove_all(engine, warm.ids, 4)
    fleet.wait_for_no_sleepers(30)
    time.sleep(1.0)
    base_p, base_r = dirs.measure()
    ids: list[str] = []
    try:
        first = start(1)
        ids += first.ids
        if first.errors or not first.ids:
            row.note = f"failed: {first.errors[0] if first.errors else 'no container'}"
            return row
        fleet.wait_for_sleepers(1, timeout=30)
        time.sleep(1.0)
        one_p, one_r = dirs.measure()
        row.one_kib = (total(one_p) - total(base_p)) / KiB
        row.one_runtime_kib = (total(one_r) - total(base_r)) / KiB
        row.one_paths = [(shorten(p, ids), b) for p, b in grown(base_p, one_p) + grown(base_r, one_r)]
        harness.log(f"{name}: 1 container adds {row.one_kib:.0f} KiB (+{row.one_runtime_kib:.0f} KiB run-time); "
                    f"starting {count - 1} more")
        more = start(count - 1)
        ids += more.ids
        row.errors = more.errors[:3]
        row.count = len(ids)
        fleet.wait_for_sleepers(row.count, timeout=60)
        time.sleep(1.0)
        all_p, all_r = dirs.measure()
        row.total_mib = (total(all_p) - total(base_p)) / KiB / KiB
        row.per_kib = (total(all_p) - total(base_p)) / KiB / row.count
        row.per_runtime_kib = (total(all_r) - total(base_r)) / KiB / row.count
        harness.log(f"{name}: {row.count} containers add {row.total_mib:.1f} MiB, {row.per_kib:.1f} KiB each")
    finally:
        fleet.remove_all(engine, ids, 4)
        fleet.wait_for_no_sleepers(60)
        fleet.remove_leftovers(engine)
    time.sleep(1.0)
    after_p, after_r = dirs.measure()
    row.left_kib = (total(after_p) + total(after_r) - total(base_p) - total(base_r)) / KiB
    return row


def bench(name: str, start_engine: Callable[[], Any], prepare: Callable[[Engine], None],
          dirs: Callable[[Path], Dirs], count: int, *, api: bool, versions: dict[str, str]) -> Row:
    harness.log(f"{name}: starting")
    try:
        with start_engine() as engine:
            versions[name] = engine.version
            prepare(engine)
            base = harness.WORK / ("dockerd" if name == "docker" else name)
            if api:
                starter = lambda n: fleet.start_via_api(engine, n, 4)  # noqa: E731
            else:
                starter = lambda n: fleet.start_via_cli(engine, n, 4)  # noqa: E731
            return measure_engine(name, engine, dirs(base), count, starter)
    except (PeerUnavailable, CommandFailed) as e:
        harness.log(f"{name}: {e}")
        return Row(name, note=str(e))


def targets(rows: dict[str, Row]) -> list[dict[str, Any]]:
    ps = rows.get("portside")
    ok = ps is not None and ps.measured
    return [
        {"target": "portside: one container under 64 KiB", "value": ps.one_kib if ok and ps else None,
         "unit": "KiB", "met": None if not ok or ps is None else ps.one_kib < 64},
        {"target": "portside: 1000 containers under 64 MiB",
         "value": ps.per_kib * 1000 / KiB if ok and ps else None, "unit": "MiB (per container x 1000)",
         "met": None if not ok or ps is None else ps.per_kib * 1000 < 64 * KiB},
    ]


def print_report(rows: list[Row], goals: list[dict[str, Any]], versions: dict[str, str]) -> None:
    header = ("engine", "N", "1 container", "(run-time)", "per container", "(run-time)", "N containers",
              "left after rm")
    table = []
    for r in rows:
        if not r.measured:
            table.append((r.name, "-", "-", "-", "-", "-", "-", "-"))
            continue
        table.append((r.name, str(r.count), f"{r.one_kib:.0f} KiB", f"{r.one_runtime_kib:.0f} KiB",
                      f"{r.per_kib:.1f} KiB", f"{r.per_runtime_kib:.1f} KiB", f"{r.total_mib:.1f} MiB",
                      f"{r.left_kib:.0f} KiB"))
    widths = [max(len(t[i]) for t in (header, *table)) for i in range(len(header))]
    print("disk: blocks an idle container adds under its engine's directories (du -sk: st_blocks, each inode once)")
    for line in (header, tuple("-" * w for w in widths), *table):
        print("  ".join([line[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(line[1:], widths[1:]))]).rstrip())
    print("persistent directories first, run-time ones (a tmpfs in production) in brackets")
    print()
    ps = next((r for r in rows if r.name == "portside" and r.measured), None)
    for r in rows:
        if r.measured and ps is not None and r is not ps:
            print(f"{r.name} / portside: 1 container {r.one_kib / ps.one_kib:.2f}x, "
                  f"per container {r.per_kib / ps.per_kib:.2f}x")
    for r in rows:
        if r.note:
            print(f"{r.name}: {r.note}")
        for err in r.errors:
            print(f"{r.name} error: {err}")
        if r.measured:
            print(f"{r.name}: what the first container added (KiB):")
            for path, b in r.one_paths[:25]:
                print(f"  {b / KiB:6.1f}  {path}")
            if len(r.one_paths) > 25:
                print(f"  ... {len(r.one_paths) - 25} more paths, {sum(b for _, b in r.one_paths[25:]) / KiB:.1f} KiB")
    print()
    for goal in goals:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        value = goal["value"]
        print(f"target: {goal['target']}: {verdict}" + ("" if value is None else f" ({value:.1f} {goal['unit']})"))
    print()
    for name, version in versions.items():
        print(f"{name}: {version}")
    for key, value in harness.machine_info().items():
        print(f"{key}: {value}")


def main() -> int:
    p = harness.arg_parser(__doc__.split("\n", 1)[0])
    p.add_argument("--count", type=int, default=1000, help="portside's containers (default 1000)")
    p.add_argument("--peer-count", type=int, default=100, help="docker's and podman's (default 100)")
    args = p.parse_args()
    harness.exit_on_sigterm()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if unknown := only - set(ROWS):
        raise SystemExit(f"--only: unknown row(s) {', '.join(sorted(unknown))}; rows: {', '.join(ROWS)}")
    versions: dict[str, str] = {"portside": harness.portside_version()}
    rows: list[Row] = []
    owned = (lambda rel: rel in ("docker", "libpod_parent", "libpod_parent/conmon", "portside"))
    with harness.removing_new_cgroups(owned), fleet.work_dir():
        fleet.build_rootfs()
        if not only or "portside" in only:  # first: the peers load the image it saves (else import the rootfs)
            rows.append(bench("portside", harness.portside_daemon, fleet.import_into_portside,
                              lambda b: Dirs([b / "root"], [b / "monitor"]), args.count, api=True,
                              versions=versions))
        if not only or "docker" in only:
            rows.append(bench("docker", harness.dockerd, fleet.load_into_peer,
                              lambda b: Dirs([b / "data"], [b / "exec"]), args.peer_count, api=True,
                              versions=versions))
        if not only or "podman" in only:
            rows.append(bench("podman", harness.podman, fleet.load_into_peer,
                              lambda b: Dirs([b / "root"], [b / "runroot", b / "libpod"]), args.peer_count,
                              api=False, versions=versions))
    goals = targets({r.name: r for r in rows})
    if args.json:
        print(json.dumps({"title": "disk", "rows": [asdict(r) for r in rows], "targets": goals,
                          "versions": versions, "machine": harness.machine_info()}, indent=2))
        return 0
    print_report(rows, goals, versions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
