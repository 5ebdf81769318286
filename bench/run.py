"""Container start latency: `run --rm busybox true` through portside beside crun, runc, podman and docker, in one run.

Rows (``--only`` takes the keys in brackets):

- floor [floor]: ``unshare --pid --fork --mount --uts --ipc --net /bin/true``,
  the namespaces a container gets, with no image, rootfs, cgroup or engine.
- portside [portside]: ``portside --host unix://SOCK run --rm --network none busybox true``
  against a daemon started for the benchmark on a private root.
- portside bridge [portside-bridge]: the same on the default bridge (``run --rm busybox true``):
  a namespace, a veth pair, an address and a route more (docs/networking.md).
- portside --runtime crun [portside-crun]: the same through portside with ``--runtime crun``:
  portside's bundle run by crun instead of portside's own init (docs/runtimes.md).
- portside via docker CLI [docker-cli]: ``docker -H unix://SOCK run --rm --network none
  busybox true`` (the static docker CLI) against the same portside daemon.
- crun [crun], runc [runc]: ``<runtime> --root STATE run --bundle BUNDLE ID`` of an OCI
  bundle (the same busybox rootfs, the runtime's own ``spec`` with args
  ``/bin/true``, no terminal, a network namespace left unconfigured), a new ID per run.
- podman [podman]: ``podman run --rm --network none busybox true`` on a private store.
- docker [docker]: ``docker run --rm --network none busybox true`` on a private dockerd.

The image is the busybox rootfs of ``python -m portside.busybox`` imported into
portside with ``CMD ["sh"]``, then ``portside save``d and ``load``ed into podman
and dockerd, so every engine starts the same image. The portside CLI runs with
its bytecode cached (see `portside_cli_env`), as an installed package has it.
Targets (from the issue): portside under 50 ms, 5x faster than podman, 9x
faster than docker; see docs/benchmarks.md for how to run it and the figures.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import harness
from harness import CommandFailed, Engine, PeerUnavailable, Result

IMAGE = "busybox:latest"
CHANGE = 'CMD ["sh"]'
RUN_ARGS = ("run", "--rm", "--network", "none", "busybox", "true")
WORK = harness.WORK / "run"
ROOTFS_TAR = WORK / "busybox-rootfs.tar"
IMAGE_TAR = WORK / "busybox-image.tar"
ROOTFS = WORK / "rootfs"
PYCACHE = WORK / "pycache"
STATIC_DOCKER_CLI = "/usr/local/bin/docker"
FLOOR = ("unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "/bin/true")
# the prefix of every container ID and cgroup this benchmark gives crun and runc
OCI_PREFIX = f"portside-bench-run-{os.getpid()}"
CRUN_FIX = "mkdir /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb"

ROWS = {  # --only key -> row name
    "floor": "floor", "portside": "portside", "portside-bridge": "portside bridge", "portside-crun": "portside --runtime crun",
    "docker-cli": "portside via docker CLI",
    "crun": "crun", "runc": "runc", "podman": "podman", "docker": "docker",
}


# --- running a command ------------------------------------------------------


def run_quiet(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    """Run ``argv`` with no stdin and no output; raise CommandFailed with its last stderr line when it fails."""
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env, cwd=cwd, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CommandFailed(f"{' '.join(argv)}: exit {proc.returncode}: {err[-1] if err else ''}")


def output(argv: Sequence[str], *, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        raise CommandFailed(f"{' '.join(argv)}: exit {proc.returncode}: {err[-1] if err else ''}")
    return proc.stdout


def first_line(argv: Sequence[str]) -> str:
    """The first line a version command prints, or "?"."""
    try:
        lines = output(argv).strip().splitlines()
    except (OSError, CommandFailed):
        return "?"
    return lines[0] if lines else "?"


def timed_row(name: str, argv: Sequence[str], runs: int, warmup: int, *,
              env: dict[str, str] | None = None, leftovers: Callable[[], str] | None = None) -> Result:
    """Time ``argv`` (at least one warmup, so a command that fails never yields samples).

    ``leftovers`` is asked afterwards what the runs left behind (containers
    ``--rm`` did not remove); a non-empty answer becomes the row's note.
    """
    harness.log(f"{name}: measuring {runs} runs after {max(warmup, 1)} warmup")
    try:
        samples = harness.measure(lambda: run_quiet(argv, env=env), runs=runs, warmup=max(warmup, 1))
    except CommandFailed as e:
        harness.log(f"{name}: failed: {e}")
        return Result(name, note=f"failed: {e}")
    left = leftovers() if leftovers is not None else ""
    return Result(name, samples, f"left behind: {left}" if left else "")


def timed_rows(rows: dict[str, Sequence[str]], runs: int, warmup: int, *, env: dict[str, str] | None = None,
               leftovers: Callable[[], str] | None = None) -> list[Result]:
    """``timed_row`` for several commands, run in turn (A B A B ...) rather than one block after another."""
    if len(rows) < 2:
        return [timed_row(name, argv, runs, warmup, env=env, leftovers=leftovers) for name, argv in rows.items()]
    harness.log(f"{', '.join(rows)}: measuring {runs} runs each, in turn, after {max(warmup, 1)} warmup")
    samples: dict[str, list[float]] = {name: [] for name in rows}
    try:
        for i in range(max(warmup, 1) + runs):
            for name, argv in rows.items():
                start = time.perf_counter()
                run_quiet(argv, env=env)
                if i >= max(warmup, 1):
                    samples[name].append(time.perf_counter() - start)
    except CommandFailed as e:
        harness.log(f"failed: {e}")
        return [Result(name, note=f"failed: {e}") for name in rows]
    left = leftovers() if leftovers is not None else ""
    return [Result(name, samples[name], f"left behind: {left}" if left else "") for name in rows]


def containers_left(engine: Engine, cli: Sequence[str] | None = None) -> Callable[[], str]:
    """What ``ps -aq`` lists afterwards: a ``run --rm`` should leave nothing."""
    def check() -> str:
        ids = output([*(cli or engine.argv), "ps", "-aq"], env=engine.env).split()
        return f"{len(ids)} container(s) ({' '.join(ids[:3])})" if ids else ""
    return check


# --- inputs -----------------------------------------------------------------


def portside_cli_env() -> dict[str, str]:
    """The environment for the timed portside CLI: as installed, its bytecode cached.

    pip and Debian compile an installed package's modules at install time; a
    checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (as some sandboxes set) would
    compile every module the CLI imports on every run instead (about 45 ms for
    ``run``). The cache goes to a private prefix under .work (written by the
    warmup runs, deleted afterwards), so the checkout's ``__pycache__`` is untouched.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def build_rootfs() -> None:
    """``python -m portside.busybox`` as a tar (for import) and unpacked (the OCI bundles' rootfs)."""
    harness.remove_tree(WORK)
    ROOTFS.mkdir(parents=True)
    with open(ROOTFS_TAR, "wb") as out:
        subprocess.run([sys.executable, "-m", "portside.busybox"], stdout=out, check=True, cwd=harness.REPO)
    subprocess.run(["tar", "-x", "-f", str(ROOTFS_TAR), "-C", str(ROOTFS)], check=True)


def make_bundle(runtime: str) -> Path:
    """``<runtime> spec`` in a bundle dir, pointed at the shared rootfs, running /bin/true without a terminal."""
    bundle = WORK / f"bundle-{runtime}"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "config.json").unlink(missing_ok=True)
    run_quiet([runtime, "spec"], cwd=bundle)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(ROOTFS), "readonly": True}
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    namespaces = config["linux"].setdefault("namespaces", [])
    if not any(ns.get("type") == "network" for ns in namespaces):
        namespaces.append({"type": "network"})  # a new, unconfigured one: no network setup
    # one cgroup path per runtime, each run creates and removes it; a named path can be cleaned up
    config["linux"]["cgroupsPath"] = f"/{OCI_PREFIX}-{runtime}"
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    return bundle


# --- rows -------------------------------------------------------------------


def bench_floor(runs: int, warmup: int) -> Result:
    if harness.which("unshare") is None:
        return Result("floor", note="unshare (util-linux) not installed")
    return timed_row("floor", FLOOR, runs, warmup)


def crun_refusal() -> str:
    """Why crun cannot run here, or "": crun 1.8 refuses a hybrid host whose v2 hierarchy holds a controller."""
    if harness.cgroup_mode() != "hybrid":
        return ""
    unified = next((h for h in harness.cgroup_hierarchies() if harness.mount_types()[str(h)] == "cgroup2"), None)
    try:
        controllers = (unified / "cgroup.controllers").read_text().split() if unified else []
    except OSError:
        controllers = []
    if not controllers:
        return ""
    hugetlb_v1 = harness.mount_types().get("/sys/fs/cgroup/hugetlb") == "cgroup"
    return (f"crun refuses cgroup v1 hybrid while {unified} holds controllers ({' '.join(controllers)})"
            + ("" if hugetlb_v1 else f"; fix: {CRUN_FIX}"))


def bench_oci(runtime: str, runs: int, warmup: int, versions: dict[str, str]) -> Result:
    """``<runtime> --root STATE run --bundle BUNDLE ID``, a new ID per run, ``delete -f`` after a failed one."""
    exe = harness.which(runtime)
    if exe is None:
        return Result(runtime, note=f"{runtime} not installed")
    versions[runtime] = first_line([exe, "--version"])
    if runtime == "crun" and (why := crun_refusal()):
        harness.log(f"crun: skipped: {why}")
        return Result(runtime, note=f"skipped: {why}")
    state = WORK / f"state-{runtime}"
    state.mkdir(parents=True, exist_ok=True)
    try:
        bundle = make_bundle(runtime)
    except CommandFailed as e:
        return Result(runtime, note=f"failed: {e}")
    ids = (f"{OCI_PREFIX}-{runtime}-{i}" for i in itertools.count())
    current = ""

    def run_one() -> None:
        nonlocal current
        current = next(ids)
        run_quiet([exe, "--root", str(state), "run", "--bundle", str(bundle), current])

    def cleanup() -> None:
        if current and (state / current).exists():
            subprocess.run([exe, "--root", str(state), "delete", "-f", current], capture_output=True, check=False)

    harness.log(f"{runtime}: measuring {runs} runs after {max(warmup, 1)} warmup")
    try:
        samples = harness.measure(run_one, runs=runs, warmup=max(warmup, 1), teardown=cleanup)
    except CommandFailed as e:
        harness.log(f"{runtime}: failed: {e}")
        return Result(runtime, note=f"failed: {e}")
    left = [p.name for p in state.iterdir()] if state.exists() else []
    return Result(runtime, samples, f"left behind: state of {', '.join(left)}" if left else "")


def load_image(engine: Engine) -> None:
    """The same busybox image in a peer: ``load`` of portside's save when there is one, else ``import`` of the rootfs."""
    engine.run("rmi", "-f", IMAGE, check=False)
    if IMAGE_TAR.exists():
        engine.run("load", "-i", str(IMAGE_TAR))
    else:
        engine.run("import", "--change", CHANGE, str(ROOTFS_TAR), IMAGE)
    if not engine.has_image(IMAGE):
        raise CommandFailed(f"{engine.name}: {IMAGE} not found after loading it")


def bench_portside(wanted: Callable[[str], bool], runs: int, warmup: int, versions: dict[str, str]) -> list[Result]:
    """The portside CLI and the docker CLI against one portside daemon; leaves portside's ``save`` for the peers."""
    names = [ROWS[k] for k in ("portside", "portside-bridge", "portside-crun", "docker-cli") if wanted(k)]
    docker_cli = STATIC_DOCKER_CLI if os.access(STATIC_DOCKER_CLI, os.X_OK) else harness.which("docker")
    harness.log("portside: starting the daemon")
    results: list[Result] = []
    try:
        with harness.portside_daemon() as engine:
            versions["portside"] = engine.version
            with open(ROOTFS_TAR, "rb") as rootfs:
                proc = subprocess.run(engine.cmd("import", "--change", CHANGE, "-", IMAGE), stdin=rootfs,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
            if proc.returncode != 0 or not engine.has_image(IMAGE):
                err = proc.stderr.decode(errors="replace").strip().splitlines()
                raise CommandFailed(f"portside import: exit {proc.returncode}: {err[-1] if err else 'no image'}")
            engine.run("save", "-o", str(IMAGE_TAR), IMAGE)
            bridge_args = tuple(a for a in RUN_ARGS if a not in ("--network", "none"))
            starts = {ROWS[k]: engine.cmd(*args) for k, args in (("portside", RUN_ARGS), ("portside-bridge", bridge_args))
                      if wanted(k)}
            # taking turns: what the bridge adds is a difference of two medians, and a drift of the
            # shared machine's load between two blocks of runs would be counted in it
            results += timed_rows(starts, runs, warmup, env=portside_cli_env(), leftovers=containers_left(engine))
            if wanted("portside-crun"):
                if harness.which("crun") is None or (why := crun_refusal()):
                    results.append(Result(ROWS["portside-crun"],
                                          note="crun not installed" if harness.which("crun") is None else why))
                else:
                    crun_args = (*RUN_ARGS[:2], "--runtime", "crun", *RUN_ARGS[2:])
                    results.append(timed_row(ROWS["portside-crun"], engine.cmd(*crun_args), runs, warmup,
                                             env=portside_cli_env(), leftovers=containers_left(engine)))
            if wanted("docker-cli"):
                if docker_cli is None:
                    results.append(Result(ROWS["docker-cli"], note="docker CLI not installed"))
                else:
                    cli = [docker_cli, "-H", f"unix://{engine.api_socket}"]
                    versions["docker CLI"] = f"{docker_cli}: {first_line([docker_cli, '--version'])}"
                    results.append(timed_row(ROWS["docker-cli"], [*cli, *RUN_ARGS], runs, warmup,
                                             leftovers=containers_left(engine, cli)))
    except (PeerUnavailable, CommandFailed) as e:
        harness.log(f"portside: {e}")
        done = {r.name for r in results}
        results += [Result(n, note=str(e)) for n in names if n not in done]
    return results


def bench_peer(name: str, start: Callable[[], contextlib.AbstractContextManager[Engine]],
               runs: int, warmup: int, versions: dict[str, str]) -> Result:
    harness.log(f"{name}: starting")
    try:
        with start() as engine:
            versions[name] = engine.version
            load_image(engine)
            return timed_row(name, engine.cmd(*RUN_ARGS), runs, warmup, env=engine.env,
                             leftovers=containers_left(engine))
    except PeerUnavailable as e:
        harness.log(f"{name}: skipped: {e}")
        return Result(name, note=str(e))
    except CommandFailed as e:
        harness.log(f"{name}: failed: {e}")
        return Result(name, note=f"failed: {e}")


# --- targets and report -----------------------------------------------------


def targets(by_name: dict[str, Result]) -> list[dict[str, Any]]:
    """The issue's targets, each with its figure from this run and whether it is met."""
    portside = by_name.get("portside")
    median = portside.median if portside is not None and portside.measured else None
    vs_podman = harness.ratio(by_name.get("podman"), portside)
    vs_docker = harness.ratio(by_name.get("docker"), portside)
    return [
        {"target": "portside median under 50 ms", "value": median, "unit": "s",
         "met": None if median is None else median < 0.050},
        {"target": "portside at least 5x faster than podman (podman / portside >= 5)", "value": vs_podman,
         "unit": "x", "met": None if vs_podman is None else vs_podman >= 5.0},
        {"target": "portside at least 9x faster than docker's engine (docker / portside >= 9)", "value": vs_docker,
         "unit": "x", "met": None if vs_docker is None else vs_docker >= 9.0},
    ]


def print_report(title: str, results: list[Result], goals: list[dict[str, Any]], versions: dict[str, str]) -> None:
    harness.report(title, results, "portside")
    print()
    by_name = {r.name: r for r in results}
    for r in results:  # the table has seconds to 3 decimals: start latency in ms too
        if r.measured:
            print(f"{r.name}: median {r.median * 1e3:.1f} ms, min {r.min * 1e3:.1f} ms, "
                  f"stdev {r.stdev * 1e3:.1f} ms")
    print()
    via = by_name.get(ROWS["docker-cli"])
    for peer in ("podman", "docker"):
        for row in (by_name.get("portside"), via):
            times = harness.ratio(by_name.get(peer), row)
            if row is not None and times is not None:
                print(f"{peer} takes {times:.2f}x the time of {row.name}")
    for goal in goals:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        value = goal["value"]
        figure = "" if value is None else (f" ({value * 1e3:.1f} ms)" if goal["unit"] == "s" else f" ({value:.2f}x)")
        print(f"target: {goal['target']}: {verdict}{figure}")
    print()
    harness.print_versions_and_machine(versions)


@contextlib.contextmanager
def work_dir() -> Iterator[None]:
    try:
        yield
    finally:
        harness.remove_tree(WORK)


def main() -> int:
    args = harness.arg_parser(__doc__.split("\n", 1)[0], runs=30, warmup=3).parse_args()
    harness.exit_on_sigterm()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if unknown := only - ROWS.keys():
        raise SystemExit(f"--only: unknown row(s) {', '.join(sorted(unknown))}; rows: {', '.join(ROWS)}")

    def wanted(row: str) -> bool:
        return not only or row in only

    versions: dict[str, str] = {"portside": harness.portside_version()}
    results: list[Result] = []
    owned = (lambda rel: rel.startswith(OCI_PREFIX) or rel in ("docker", "libpod_parent", "libpod_parent/conmon"))
    with harness.removing_new_cgroups(owned), work_dir():
        build_rootfs()
        if wanted("floor"):
            versions["unshare"] = first_line(["unshare", "--version"])
            results.append(bench_floor(args.runs, args.warmup))
        # portside first: the peers load the image it saves
        if any(wanted(k) for k in ("portside", "portside-bridge", "portside-crun", "docker-cli", "podman", "docker")):
            results += bench_portside(wanted, args.runs, args.warmup, versions)
        for runtime in ("crun", "runc"):
            if wanted(runtime):
                results.append(bench_oci(runtime, args.runs, args.warmup, versions))
        for name, start in (("podman", harness.podman), ("docker", harness.dockerd)):
            if wanted(name):
                results.append(bench_peer(name, start, args.runs, args.warmup, versions))
    results = [r for r in results if any(r.name == ROWS[k] for k in ROWS if wanted(k))]
    title = (f"start latency: `run --rm busybox true` (--network none), median of {args.runs} runs "
             f"after {max(args.warmup, 1)} warmup")
    goals = targets({r.name: r for r in results})
    if args.json:
        print(json.dumps(harness.results_json(
            title, results, "portside", machine=harness.machine_info(), versions=versions, targets=goals,
            cgroups=harness.cgroup_mode()), indent=2))
        return 0
    print_report(title, results, goals, versions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
