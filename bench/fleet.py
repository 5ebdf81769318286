"""Many idle containers on one engine: what bench/density.py and bench/disk.py share.

A *fleet* is N detached ``sleep`` containers (``--network none``) of the same
busybox image, started on one engine either through its Engine API (a few
client threads, each doing ``create`` then ``start`` on a keep-alive
connection) or through its CLI (``run -d`` processes, a few at a time). The
sleep processes carry a marker argument unique to this benchmark run
(``sleep <MARKER>``), so they are found, counted and measured by scanning
/proc, the same way for every engine.

What an engine leaves behind after ``rm -f`` of its whole fleet is taken from
the machine, not from the engine: sleep processes still alive, mounts, cgroup
directories, and paths under the engine's private directory that were not
there before the fleet.

The image is the busybox rootfs of ``python -m portside.busybox``: imported
into portside with ``CMD ["sh"]``, ``save``d, and ``load``ed into the peers
(the same image ID everywhere).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import CommandFailed, Engine

IMAGE = "busybox:latest"
CHANGE = 'CMD ["sh"]'
WORK = harness.WORK / "fleet"
ROOTFS_TAR = WORK / "busybox-rootfs.tar"
IMAGE_TAR = WORK / "busybox-image.tar"
# seconds to sleep: an argument no other process on the machine is likely to carry, and long enough
MARKER = str(10_000_000 + os.getpid())
CREATE_BODY: dict[str, Any] = {
    "Image": IMAGE, "Cmd": ["sleep", MARKER], "HostConfig": {"NetworkMode": "none"},
}
RUN_ARGS = ("run", "-d", "--network", "none", IMAGE, "sleep", MARKER)


# --- the image --------------------------------------------------------------


def build_rootfs() -> None:
    """The busybox rootfs tarball, once per benchmark run."""
    WORK.mkdir(parents=True, exist_ok=True)
    with open(ROOTFS_TAR, "wb") as out:
        subprocess.run([sys.executable, "-m", "portside.busybox"], stdout=out, check=True, cwd=harness.REPO)


def import_into_portside(engine: Engine) -> None:
    """``import`` the rootfs, then ``save`` it for the peers."""
    with open(ROOTFS_TAR, "rb") as rootfs:
        proc = subprocess.run(engine.cmd("import", "--change", CHANGE, "-", IMAGE), stdin=rootfs,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0 or not engine.has_image(IMAGE):
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CommandFailed(f"portside import: exit {proc.returncode}: {err[-1] if err else 'no image'}")
    engine.run("save", "-o", str(IMAGE_TAR), IMAGE)


def load_into_peer(engine: Engine) -> None:
    """The same image in a peer: portside's save when there is one, else an import of the rootfs."""
    if IMAGE_TAR.exists():
        engine.run("load", "-i", str(IMAGE_TAR))
    else:
        engine.run("import", "--change", CHANGE, str(ROOTFS_TAR), IMAGE)
    if not engine.has_image(IMAGE):
        raise CommandFailed(f"{engine.name}: {IMAGE} not found after loading it")


@contextlib.contextmanager
def work_dir() -> Iterator[None]:
    try:
        yield
    finally:
        harness.remove_tree(WORK)


# --- the Engine API ---------------------------------------------------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class ApiClient:
    """One keep-alive HTTP/1.1 connection to an Engine API socket; one per thread."""

    def __init__(self, sock: Path, *, timeout: float = 120.0) -> None:
        self.conn = _UnixConnection(sock, timeout)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):  # a server that closed an idle keep-alive connection: reconnect once
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


class StartFailed(Exception):
    """A container of the fleet could not be created or started; the message says which step and why."""


def _api_create_start(client: ApiClient) -> str:
    status, body = client.call("POST", "/containers/create", CREATE_BODY)
    if status != 201:
        raise StartFailed(f"create: HTTP {status}: {body[:200]!r}")
    cid = str(json.loads(body)["Id"])
    status, body = client.call("POST", f"/containers/{cid}/start")
    if status != 204:
        raise StartFailed(f"start {cid[:12]}: HTTP {status}: {body[:200]!r}")
    return cid


# --- starting and removing a fleet -------------------------------------------


@dataclass
class Fleet:
    """The containers started on one engine, and how long starting them took."""

    engine: Engine
    ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.ids) / self.seconds if self.seconds else 0.0


def _run_parallel(count: int, workers: int, one: Callable[[int], str]) -> tuple[list[str], list[str], float]:
    """Call ``one(i)`` for i in range(count) on ``workers`` threads; (results, errors, seconds)."""
    ids: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for fut in concurrent.futures.as_completed([pool.submit(one, i) for i in range(count)]):
            try:
                result = fut.result()
            except Exception as e:  # noqa: BLE001 - every failure is reported, the rest go on
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
            else:
                with lock:
                    ids.append(result)
    return ids, errors, time.perf_counter() - start


def start_via_api(engine: Engine, count: int, clients: int) -> Fleet:
    """``create`` + ``start`` of ``count`` containers by ``clients`` threads on keep-alive connections."""
    if engine.api_socket is None:
        raise CommandFailed(f"{engine.name} serves no Engine API here")
    local = threading.local()
    opened: list[ApiClient] = []

    def one(_: int) -> str:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = ApiClient(engine.api_socket)  # type: ignore[arg-type]
            opened.append(client)
        return _api_create_start(client)

    try:
        ids, errors, seconds = _run_parallel(count, clients, one)
    finally:
        for c in opened:
            c.close()
    return Fleet(engine, ids, seconds, errors)


def start_via_cli(engine: Engine, count: int, parallel: int, *, env: dict[str, str] | None = None) -> Fleet:
    """``count`` ``run -d`` processes of the engine's CLI, ``parallel`` at a time."""
    argv = engine.cmd(*RUN_ARGS)

    def one(_: int) -> str:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env or engine.env,
                              check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise StartFailed(f"run -d: exit {proc.returncode}: {err[-1] if err else ''}")
        return proc.stdout.decode().strip().splitlines()[-1]

    ids, errors, seconds = _run_parallel(count, parallel, one)
    return Fleet(engine, ids, seconds, errors)


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def remove_all(engine: Engine, ids: Sequence[str], parallel: int, *, batch: int = 50) -> tuple[float, list[str]]:
    """``rm -f`` of every container through the engine's CLI, ``batch`` IDs a command, ``parallel`` commands
    at a time; returns (seconds, errors). podman gets ``-t 0``: its ``rm -f`` otherwise waits 10 s per
    container for SIGTERM to do what SIGKILL does (``sleep`` as pid 1 ignores SIGTERM)."""
    extra = ("-t", "0") if engine.name == "podman" else ()

    def one(i: int) -> str:
        group = groups[i]
        proc = subprocess.run(engine.cmd("rm", "-f", *extra, *group), stdin=subprocess.DEVNULL,
                              capture_output=True, env=engine.env, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise CommandFailed(f"rm -f: exit {proc.returncode}: {err[-1] if err else ''}")
        return ""

    groups = list(chunks(ids, batch))
    _, errors, seconds = _run_parallel(len(groups), parallel, one)
    return seconds, errors


def remove_leftovers(engine: Engine) -> None:
    """Whatever the engine still lists (a failed start may leave a created container): removed, untimed.

    Through the Engine API when the engine serves one, so that a CLI that fails (the benchmark's
    subject, after all) never leaves containers running once the benchmark stops the daemon.
    """
    if engine.api_socket is not None:
        client = ApiClient(engine.api_socket)
        try:
            status, body = client.call("GET", "/containers/json?all=1")
            ids = [c["Id"] for c in json.loads(body)] if status == 200 else []
            for cid in ids:
                client.call("DELETE", f"/containers/{cid}?force=1&v=1")
        finally:
            client.close()
        return
    proc = subprocess.run(engine.cmd("ps", "-aq"), capture_output=True, env=engine.env, check=False)
    ids = proc.stdout.decode().split()
    if ids:
        remove_all(engine, ids, 4)


# --- the machine's view -------------------------------------------------------


def sleep_pids(marker: str = MARKER) -> list[int]:
    """Live processes whose command line is ``[.../]sleep <marker>``: the fleet's containers."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[1:] == [marker.encode(), b""] and argv[0].rsplit(b"/", 1)[-1] == b"sleep" \
                    and harness._alive(int(entry)):
                found.append(int(entry))
    return found


def wait_for_sleepers(count: int, timeout: float) -> int:
    """Wait until ``count`` fleet processes run (a start may answer before its process is visible)."""
    deadline = time.monotonic() + timeout
    while True:
        n = len(sleep_pids())
        if n >= count or time.monotonic() > deadline:
            return n
        time.sleep(0.2)


def wait_for_no_sleepers(timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        n = len(sleep_pids())
        if n == 0 or time.monotonic() > deadline:
            return n
        time.sleep(0.2)


def pss_kib(pids: Iterable[int]) -> int:
    """The sum of the processes' proportional set sizes (each shared page split among its users)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
    return total


def processes_naming(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (an engine's private directory)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me and marker in harness._cmdline(int(entry)):
            if harness._alive(int(entry)):
                found.append(int(entry))
    return found


def tree_paths(base: Path, depth: int = 5) -> set[str]:
    """Paths below ``base`` down to ``depth`` levels, relative, not crossing into other file systems."""
    found: set[str] = set()
    if not base.exists():
        return found
    dev = base.stat().st_dev
    level = [base]
    for _ in range(depth):
        nxt = []
        for d in level:
            with contextlib.suppress(OSError):
                for entry in os.scandir(d):
                    path = Path(entry.path)
                    found.add(str(path.relative_to(base)))
                    with contextlib.suppress(OSError):
                        if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_dev == dev:
                            nxt.append(path)
        level = nxt
    return found


@dataclass
class Snapshot:
    """What the machine holds before a fleet, to compare with after its removal."""

    mounts: set[str]
    cgroups: set[Path]
    paths: set[str]
    helpers: set[int]

    @classmethod
    def take(cls, base: Path) -> Snapshot:
        return cls({m for m, _, _ in harness._mounts()}, harness.cgroups(depth=3), tree_paths(base),
                   set(processes_naming(str(base))))

    def leftovers(self, base: Path, ids: Iterable[str], *, ignore: Callable[[str], bool] = lambda _: False
                  ) -> list[str]:
        """What is there now and was not before: processes, mounts, cgroups, paths (``ignore`` skips paths).

        Only the cgroups named for one of ``ids`` count: other engines on the machine (other
        portside daemons share the ``portside`` parent) make and remove theirs meanwhile.
        """
        out = []
        if n := len(sleep_pids()):
            out.append(f"{n} sleep process(es)")
        helpers = set(processes_naming(str(base))) - self.helpers
        if helpers:
            names = sorted({harness._cmdline(p).split(" ", 1)[0].rsplit("/", 1)[-1] for p in helpers})
            out.append(f"{len(helpers)} new process(es) naming {base.name}/ ({', '.join(names)})")
        wanted = set(ids)
        mounts = sorted({m for m, _, _ in harness._mounts()} - self.mounts)
        mounts = [m for m in mounts if m.startswith(str(base) + "/") or any(i in m for i in wanted)]
        if mounts:
            out.append(f"{len(mounts)} new mount(s) (e.g. {mounts[0]})")
        cgroups = sorted(d for d in harness.cgroups(depth=3) - self.cgroups
                         if d.name in wanted or d.name.partition("-")[2] in wanted)  # podman: libpod-<id>
        if cgroups:
            out.append(f"{len(cgroups)} new cgroup(s) (e.g. {cgroups[0]})")
        paths = sorted(p for p in tree_paths(base) - self.paths if not ignore(p))
        if paths:
            out.append(f"{len(paths)} new path(s) under {base.name}/ (e.g. {', '.join(paths[:3])})")
        return out


def meminfo() -> dict[str, int]:
    """/proc/meminfo in KiB."""
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        with contextlib.suppress(ValueError, IndexError):
            out[key] = int(rest.split()[0])
    return out


def drop_caches() -> None:
    """Write back, then drop the page cache, dentries and inodes: what is left is memory in use."""
    os.sync()
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
