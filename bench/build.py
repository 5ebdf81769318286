"""Build speed: a small Dockerfile cold (--no-cache) and fully cached, portside beside docker's classic builder, BuildKit and podman.

    python bench/build.py [--runs 5] [--warmup 1] [--only portside,docker-classic,buildkit,podman] [--json]

The Dockerfile (the issue's "Speed" section): FROM busybox, three RUN steps,
a COPY of a 10 MiB file, a CMD. Each engine gets the same busybox rootfs
(``python -m portside.busybox``) imported as busybox:latest, then per engine:

- cold: ``build --no-cache -t bench-build CTX`` (every step runs: three
  containers, one 10 MiB copy, the metadata steps);
- cached: ``build -t bench-build CTX`` right after (every step a cache hit).

Engines: portside (its own CLI against a private daemon), docker's classic
builder (``DOCKER_BUILDKIT=0 docker build`` against a private dockerd),
BuildKit (``docker buildx build --load`` when the buildx plugin is
installed, else Debian's docker 20.10 CLI, which has BuildKit built in, with
``DOCKER_BUILDKIT=1``), podman (``podman build --layers`` on a private store). Target
(issue 8): portside's cold and cached builds faster than BuildKit's, in the
same run. Figures in docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import CommandFailed, Engine, PeerUnavailable, Result  # noqa: E402

WORK = harness.WORK / "build"
CONTEXT = WORK / "context"
ROOTFS_TAR = WORK / "busybox-rootfs.tar"
TAG = "bench-build:latest"
DOCKERFILE = """\
FROM busybox
RUN echo one > /one
RUN echo two > /two && ls / > /listing
RUN mkdir -p /data && echo three > /data/three
COPY big.bin /data/big.bin
CMD ["sh"]
"""
ROWS = ("portside", "docker-classic", "buildkit", "podman")


def make_inputs() -> None:
    harness.remove_tree(WORK)
    CONTEXT.mkdir(parents=True)
    (CONTEXT / "Dockerfile").write_text(DOCKERFILE)
    (CONTEXT / "big.bin").write_bytes(os.urandom(10 << 20))
    with open(ROOTFS_TAR, "wb") as out:
        subprocess.run([sys.executable, "-m", "portside.busybox"], stdout=out, check=True, cwd=harness.REPO)


def cli_env(engine: Engine, extra: dict[str, str]) -> dict[str, str]:
    env = dict(engine.env or os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the portside CLI as installed: its bytecode cached
    return {**env, **extra}


def run_quiet(argv: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CommandFailed(f"{' '.join(argv)}: exit {proc.returncode}: {err[-1] if err else ''}")


def bench_engine(name: str, engine: Engine, build: list[str], env: dict[str, str], runs: int,
                 warmup: int) -> list[Result]:
    importer = engine.cmd("import", "--change", 'CMD ["sh"]', str(ROOTFS_TAR), "busybox:latest")
    try:
        run_quiet(importer, env)
    except CommandFailed as e:
        return [Result(f"{name} cold", note=f"import failed: {e}"), Result(f"{name} cached", note="")]
    out = []
    for label, extra in (("cold", ["--no-cache"]), ("cached", [])):
        argv = [*build, *extra, "-t", TAG, str(CONTEXT)]
        harness.log(f"{name} {label}: {runs} runs after {max(warmup, 1)} warmup")
        try:
            samples = harness.measure(lambda: run_quiet(argv, env), runs=runs, warmup=max(warmup, 1))
        except CommandFailed as e:
            out.append(Result(f"{name} {label}", note=f"failed: {e}"))
            continue
        out.append(Result(f"{name} {label}", samples))
    return out


def buildkit_cli(engine: Engine) -> list[str] | None:
    """A docker CLI that drives dockerd's built-in BuildKit without buildx (20.10's), aimed at ``engine``'s socket."""
    cli = "/usr/bin/docker"
    try:
        version = subprocess.run([cli, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True,
                                 check=False, env={**os.environ, "DOCKER_HOST": "unix:///nonexistent"}).stdout
    except OSError:
        return None
    if not version.startswith("20."):
        return None
    return [cli, "-H", f"unix://{engine.api_socket}"]


@contextlib.contextmanager
def peer(start: Callable[[], contextlib.AbstractContextManager[Engine]]) -> Iterator[Engine | None]:
    try:
        with start() as engine:
            yield engine
    except PeerUnavailable as e:
        harness.log(f"unavailable: {e}")
        yield None


def main() -> int:
    args = harness.arg_parser(__doc__.split("\n", 1)[0], runs=5, warmup=1).parse_args()
    harness.exit_on_sigterm()
    only = {s.strip() for s in args.only.split(",") if s.strip()} or set(ROWS)
    results: list[Result] = []
    make_inputs()
    try:
        if "portside" in only:
            with harness.portside_daemon() as engine:
                results += bench_engine("portside", engine, engine.cmd("build", "-q"), cli_env(engine, {}),
                                        args.runs, args.warmup)
        if only & {"docker-classic", "buildkit"}:
            with peer(harness.dockerd) as engine:
                if engine is None:
                    results += [Result("docker classic cold", note="dockerd unavailable")]
                else:
                    if "docker-classic" in only:
                        results += bench_engine("docker classic", engine, engine.cmd("build", "-q"),
                                                cli_env(engine, {"DOCKER_BUILDKIT": "0"}), args.runs, args.warmup)
                    if "buildkit" in only:
                        has_buildx = subprocess.run(engine.cmd("buildx", "version"), capture_output=True,
                                                    check=False).returncode == 0
                        builtin = buildkit_cli(engine)
                        if has_buildx:
                            results += bench_engine("buildkit", engine, engine.cmd("buildx", "build", "--load", "-q"),
                                                    cli_env(engine, {"DOCKER_BUILDKIT": "1"}), args.runs, args.warmup)
                        elif builtin:
                            # dockerd runs with --bridge=none here (harness.dockerd): its RUN steps go on the host network
                            results += bench_engine("buildkit", engine, [*builtin, "build", "--network", "host", "-q"],
                                                    cli_env(engine, {"DOCKER_BUILDKIT": "1"}), args.runs, args.warmup)
                        else:
                            results.append(Result("buildkit cold", note="neither the buildx plugin nor a docker CLI "
                                                  "with BuildKit built in (20.10) is installed"))
        if "podman" in only:
            with peer(harness.podman) as engine:
                if engine is None:
                    results.append(Result("podman cold", note="podman unavailable"))
                else:
                    results += bench_engine("podman", engine, engine.cmd("build", "--layers", "-q"),
                                            cli_env(engine, {}), args.runs, args.warmup)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    title = f"build: FROM busybox, 3 RUN, COPY 10 MiB, CMD; median of {args.runs} runs"
    if args.json:
        print(json.dumps(harness.results_json(title, results, "portside cold", machine=harness.machine_info()),
                         indent=2))
    else:
        harness.report(title, results, "portside cold", floor_name="portside cached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
