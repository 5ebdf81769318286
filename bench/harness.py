"""Benchmark harness: time portside beside every peer engine installed here, in one run.

Speed is measured by benchmarks, never by timed tests. Each benchmark times
portside, each installed peer (docker, podman) and a *floor* (the least work any
implementation of the operation must do, in-process Python), and prints their
medians with ratios. This VM drifts by about 20 % between runs, so only ratios
taken within one run are worth comparing.

The peers run with private state under ``bench/.work`` so a benchmark never
touches the machine's own docker or podman store, and the context managers
that start them (`dockerd`, `podman`, `portside_daemon`) stop what they started
by pid, unmount what was mounted under their directories and check that the
host's iptables rules, forwarding sysctls and links are as they were.

Layout of ``bench/.work`` (ignored by git)::

    .work/
      <benchmark inputs>     built once, reused (e.g. load's tarball)
      dockerd/               data/ exec/ dockerd.sock dockerd.pid daemon.json trust-key.json dockerd.log
      podman/                root/ runroot/ libpod/ tmp/ networks/ volumes/
      portside/              root/ portside.sock portside.pid daemon.log
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import difflib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / ".work"

DOCKERD = "/usr/sbin/dockerd"


# --- timing -----------------------------------------------------------------


def measure(
    fn: Callable[[], object],
    *,
    runs: int,
    warmup: int,
    setup: Callable[[], object] | None = None,
    teardown: Callable[[], object] | None = None,
) -> list[float]:
    """Time ``fn`` ``warmup + runs`` times and return the last ``runs`` durations in seconds.

    ``setup`` and ``teardown`` run before and after every call, outside the timed
    region; ``teardown`` runs even when ``fn`` raises, so a failed iteration leaves
    nothing behind for the next one.
    """
    samples: list[float] = []
    for i in range(warmup + runs):
        if setup is not None:
            setup()
        try:
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
        finally:
            if teardown is not None:
                teardown()
        if i >= warmup:
            samples.append(elapsed)
    return samples


@dataclass
class Result:
    """The samples of one row; a row without samples carries in ``note`` why it has none."""

    name: str
    samples: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def measured(self) -> bool:
        return bool(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.samples) if len(self.samples) > 1 else 0.0


def ratio(a: Result | None, b: Result | None) -> float | None:
    """a's median over b's median, or None when either was not measured."""
    if a is None or b is None or not a.measured or not b.measured:
        return None
    return a.median / b.median


def _seconds(value: float) -> str:
    return f"{value:.3f} s"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def report(
    title: str,
    results: Sequence[Result],
    baseline_name: str,
    *,
    floor_name: str = "floor",
    out: TextIO = sys.stdout,
) -> None:
    """Print one table: each row's median, min, stdev and runs, and its median over portside's and over the floor's."""
    by_name = {r.name: r for r in results}
    baseline, floor = by_name.get(baseline_name), by_name.get(floor_name)
    header = ("name", "median", "min", "stdev", "runs", f"vs {baseline_name}", f"vs {floor_name}")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for r in results:
        if r.measured:
            rows.append((
                r.name, _seconds(r.median), _seconds(r.min), _seconds(r.stdev), str(len(r.samples)),
                _times(ratio(r, baseline)), _times(ratio(r, floor)),
            ))
            if r.note:
                notes.append(f"{r.name}: {r.note}")
        else:
            rows.append((r.name, "-", "-", "-", "0", "-", "-"))
            notes.append(f"{r.name}: {r.note or 'not measured'}")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    print(title, file=out)
    print(line(header), file=out)
    print(line(tuple("-" * w for w in widths)), file=out)
    for row in rows:
        print(line(row), file=out)
    print("vs X = this row's median / X's median (above 1: slower than X)", file=out)
    for note in notes:
        print(f"  {note}", file=out)


def results_json(
    title: str, results: Sequence[Result], baseline_name: str, *, floor_name: str = "floor", **extra: Any
) -> dict[str, Any]:
    """The same figures as `report`, as a JSON-ready dict (all samples included)."""
    by_name = {r.name: r for r in results}
    rows = []
    for r in results:
        row: dict[str, Any] = {"name": r.name, "runs": len(r.samples), "samples": r.samples, "note": r.note}
        if r.measured:
            row.update(
                median=r.median, min=r.min, stdev=r.stdev,
                ratio_to_baseline=ratio(r, by_name.get(baseline_name)),
                ratio_to_floor=ratio(r, by_name.get(floor_name)),
            )
        rows.append(row)
    return {"title": title, "baseline": baseline_name, "floor": floor_name, "results": rows, **extra}


def arg_parser(description: str, *, runs: int = 10, warmup: int = 1) -> argparse.ArgumentParser:
    """The options every benchmark takes; ``runs`` and ``warmup`` are the benchmark's defaults."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--runs", type=int, default=runs, help=f"timed runs per row (default {runs})")
    p.add_argument("--warmup", type=int, default=warmup, help=f"untimed runs before them (default {warmup})")
    p.add_argument("--only", default="", help="comma-separated rows to run (default: all)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    return p


def log(message: str) -> None:
    """Progress goes to stderr so stdout carries only the table (or the JSON)."""
    print(message, file=sys.stderr, flush=True)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so the context managers below still stop their daemons."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


# --- the machine ------------------------------------------------------------


def which(name: str) -> str | None:
    return shutil.which(name)


def _first_line(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.strip().splitlines()[0] if out.strip() else "?"


def machine_info() -> dict[str, str]:
    """What the figures were measured on, for the report and docs/benchmarks.md."""
    cpu = "?"
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
    distro = "?"
    with contextlib.suppress(OSError):
        for text in Path("/etc/os-release").read_text().splitlines():
            if text.startswith("PRETTY_NAME="):
                distro = text.split("=", 1)[1].strip('"')
    return {
        "os": distro,
        "kernel": platform.release(),
        "cpus": f"{os.cpu_count()} x {cpu}",
        "memory": f"{mem_kib / (1 << 20):.0f} GiB",
        "python": f"{platform.python_version()} ({sys.executable})",
        "work_fs": _fstype(WORK),
    }


def _fstype(path: Path) -> str:
    best, fstype = "", "?"
    target = str(path.resolve() if path.exists() else path.parent.resolve())
    for mount_point, _, fs in _mounts():
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, fstype = mount_point, fs
    return fstype


# --- mounts and trees -------------------------------------------------------


def _unescape(field_: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field_):
        if field_[i] == "\\" and i + 3 < len(field_) and field_[i + 1 : i + 4].isdigit():
            out.append(chr(int(field_[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field_[i])
            i += 1
    return "".join(out)


def _mounts() -> list[tuple[str, int, str]]:
    """(mount point, mount id, fs type) of every mount in this mount namespace."""
    result = []
    with open("/proc/self/mountinfo") as f:
        for text in f:
            left, _, right = text.partition(" - ")
            fields = left.split()
            result.append((_unescape(fields[4]), int(fields[0]), right.split()[0]))
    return result


def mount_types() -> dict[str, str]:
    """Mount point -> file system type, for every mount in this mount namespace (the last mount wins)."""
    return {mount_point: fs for mount_point, _, fs in _mounts()}


def mounts_under(path: Path) -> list[str]:
    root = str(path.resolve()) if path.exists() else str(path)
    return [m for m, _, _ in _mounts() if m == root or m.startswith(root.rstrip("/") + "/")]


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_MNT_DETACH = 2


def unmount_under(path: Path) -> list[str]:
    """Unmount everything mounted at or below ``path``, deepest first; return what was unmounted."""
    done = []
    for mount_point in sorted(set(mounts_under(path)), key=len, reverse=True):
        if _libc.umount2(mount_point.encode(), _MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"umount2 {mount_point}: {os.strerror(err)}")
        done.append(mount_point)
    return done


def remove_tree(path: Path) -> None:
    """Unmount what a peer left mounted under ``path``, then delete it."""
    if not path.exists():
        return
    leftover = unmount_under(path)
    if leftover:
        log(f"  unmounted {len(leftover)} mount(s) left under {path}")
    shutil.rmtree(path)


# --- cgroups ----------------------------------------------------------------

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_hierarchies() -> list[Path]:
    """The mount point of every cgroup hierarchy (v1 and v2) in this mount namespace."""
    return sorted(Path(m) for m, fs in mount_types().items() if fs in ("cgroup", "cgroup2"))


def print_versions_and_machine(versions: dict[str, str]) -> None:
    """The footer of every benchmark's report: what ran, on what."""
    for name, version in versions.items():
        print(f"{name}: {version}")
    for key, value in machine_info().items():
        print(f"{key}: {value}")
    print(f"cgroups: {cgroup_mode()}")


def cgroup_mode() -> str:
    """``v2`` (unified), ``hybrid`` (v1 with a v2 hierarchy beside it) or ``v1``."""
    types = mount_types()
    if types.get(str(CGROUP_ROOT)) == "cgroup2":
        return "v2"
    return "hybrid" if "cgroup2" in types.values() else "v1"


def cgroups(depth: int = 2) -> set[Path]:
    """Every cgroup directory down to ``depth`` levels below each hierarchy's root."""
    found: set[Path] = set()
    for top in cgroup_hierarchies():
        level = [top]
        for _ in range(depth):
            nxt = []
            for d in level:
                with contextlib.suppress(OSError):
                    nxt += [e for e in d.iterdir() if e.is_dir() and not e.is_symlink()]
            found.update(nxt)
            level = nxt
    return found


@contextlib.contextmanager
def removing_new_cgroups(owned: Callable[[str], bool], *, depth: int = 2) -> Iterator[None]:
    """Afterwards, rmdir the cgroups that appeared meanwhile and that ``owned`` claims (by path below the root).

    An engine started for a benchmark leaves its parent cgroups behind (dockerd's
    ``docker``, podman's ``libpod_parent``, a runtime's per-container one when it
    fails half-way). Only new, empty cgroups whose relative path (``docker``,
    ``libpod_parent/conmon``) ``owned`` accepts are removed, leaf first; other new
    ones are reported, not touched: they may be someone else's.
    """
    before = cgroups(depth)
    try:
        yield
    finally:
        new = cgroups(depth) - before
        tops = cgroup_hierarchies()
        others = set()
        for d in sorted(new, key=lambda p: len(p.parts), reverse=True):
            top = next((t for t in tops if d.is_relative_to(t)), None)
            rel = str(d.relative_to(top)) if top is not None else str(d)
            if top is not None and owned(rel):
                try:
                    d.rmdir()
                except OSError as e:
                    log(f"  WARNING: cgroup {d} left behind: {e.strerror}")
            else:
                others.add(rel)
        if others:
            log("  new cgroups not removed (not this benchmark's): " + ", ".join(sorted(others)))


# --- host network state -----------------------------------------------------


@dataclass(frozen=True)
class HostNetState:
    """The host state a container engine may change as it starts: firewall rules, forwarding, links."""

    iptables: str
    ip6tables: str
    forwarding: tuple[tuple[str, str], ...]
    links: frozenset[str]

    @classmethod
    def capture(cls) -> HostNetState:
        def save(tool: str) -> str:
            if which(tool) is None:
                return ""
            out = subprocess.run([tool], capture_output=True, text=True, check=False).stdout
            # iptables-save stamps each table with the time it was saved; drop the comments
            return "\n".join(rule for rule in out.splitlines() if not rule.startswith("#"))

        sysctls = ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding")
        forwarding = []
        for name in sysctls:
            with contextlib.suppress(OSError):
                forwarding.append((name, Path("/proc/sys", name).read_text().strip()))
        return cls(
            iptables=save("iptables-save"),
            ip6tables=save("ip6tables-save"),
            forwarding=tuple(forwarding),
            links=frozenset(os.listdir("/sys/class/net")),
        )

    def changes_since(self, before: HostNetState) -> list[str]:
        out: list[str] = []
        tables = (("iptables", before.iptables, self.iptables), ("ip6tables", before.ip6tables, self.ip6tables))
        for label, old, new in tables:
            if old != new:
                diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
                out += [f"{label}: {d}" for d in diff if d[:1] in "+-" and d[:3] not in ("+++", "---")]
        for (name, old), (_, new) in zip(before.forwarding, self.forwarding, strict=True):
            if old != new:
                out.append(f"sysctl {name}: {old} -> {new}")
        out += [f"new link {link}" for link in sorted(self.links - before.links)]
        return out


def _restore_docker_changes(before: HostNetState, after: HostNetState) -> None:
    """Undo what dockerd did despite its flags; leave alone changes that are not docker's (a peer's work)."""
    changes = after.changes_since(before)
    if not changes:
        return
    log("  WARNING: the host changed while dockerd ran:\n    " + "\n    ".join(changes))
    for tool, text_before, text_after in (
        ("iptables-restore", before.iptables, after.iptables),
        ("ip6tables-restore", before.ip6tables, after.ip6tables),
    ):
        if text_before != text_after and "DOCKER" in text_after and which(tool):
            subprocess.run([tool], input=text_before + "\n", text=True, check=False)
            log(f"  restored with {tool}")
    if "docker0" in after.links - before.links:
        subprocess.run(["ip", "link", "del", "docker0"], check=False)
        log("  deleted docker0")


# --- processes --------------------------------------------------------------


class PeerUnavailable(Exception):
    """A peer cannot be measured on this machine; the message says why and becomes the row's note."""


class CommandFailed(Exception):
    """An engine's CLI exited non-zero; the message carries the command and its last line of stderr."""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _terminate(pid: int, name: str, *, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM ``pid`` and wait for it; SIGKILL it if it has not exited within ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return
        elif not _alive(pid):
            return
        time.sleep(0.05)
    log(f"  {name} (pid {pid}) ignored SIGTERM for {timeout:.0f} s: SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if proc is not None:
        proc.wait(timeout=10)


def _stop_stale(pidfile: Path, marker: str, name: str) -> None:
    """Stop a daemon that a crashed earlier run of ours left running.

    Only if its cmdline names our private ``marker`` path: a pid may have been reused.
    """
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if marker in _cmdline(pid):
        log(f"  stopping {name} pid {pid} left by an earlier run")
        _terminate(pid, name)


def _stop_by_pidfile(pidfile: Path, marker: str, name: str) -> None:
    """Stop the process a pidfile names, if it still runs with our private ``marker`` path in its cmdline."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if marker in _cmdline(pid) and _alive(pid):
        _terminate(pid, name)


def http_get_unix(sock_path: Path, path: str, *, timeout: float = 2.0) -> tuple[int, bytes]:
    """One HTTP/1.0 GET over a unix socket; returns (status, body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body


def _dechunk(data: bytes) -> bytes:
    out, rest = [], data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


def _wait_for_ping(sock: Path, proc: subprocess.Popen[bytes], logfile: Path, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerUnavailable(f"{name} exited with status {proc.returncode}: {_tail(logfile)}")
        with contextlib.suppress(OSError, ValueError, IndexError):
            if http_get_unix(sock, "/_ping")[0] == 200:
                return
        time.sleep(0.05)
    raise PeerUnavailable(f"{name} did not answer GET /_ping on {sock} within {timeout:.0f} s: {_tail(logfile)}")


def _tail(logfile: Path, lines: int = 1) -> str:
    try:
        text = logfile.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) if text else "(empty log)"


@dataclass
class Engine:
    """A peer ready to be driven through its CLI: ``argv`` is the command prefix that reaches the private instance."""

    name: str
    argv: list[str]
    version: str
    api_socket: Path | None = None  # the Engine API socket, when the engine serves one
    env: dict[str, str] | None = None  # the CLI's environment, when it differs from ours

    def cmd(self, *args: str) -> list[str]:
        return [*self.argv, *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run a CLI command quietly; on failure raise with the command's stderr."""
        argv = self.cmd(*args)
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env, check=False)
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise CommandFailed(f"{self.name} {' '.join(args)}: exit {proc.returncode}: {err[-1] if err else ''}")
        return proc

    def has_image(self, ref: str) -> bool:
        """Whether the engine now knows ``ref``: through GET /images/{ref}/json when it serves the API."""
        if self.api_socket is not None:
            return http_get_unix(self.api_socket, f"/images/{ref}/json", timeout=30)[0] == 200
        return self.run("image", "exists", ref, check=False).returncode == 0


def _spawn(argv: Sequence[str], logfile: Path) -> subprocess.Popen[bytes]:
    with open(logfile, "wb") as out:
        # own session: a ^C in the terminal reaches only us, and we stop the daemon in order
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


# --- dockerd ----------------------------------------------------------------


@contextlib.contextmanager
def dockerd(*, timeout: float = 60.0) -> Iterator[Engine]:
    """Docker's own engine with private state under .work/dockerd, touching no host network state.

    dockerd 20.10 flags: ``--data-root``/``--exec-root`` (its containerd is started
    under them too), ``-H unix://`` (no /var/run/docker.sock), ``--pidfile``,
    ``--iptables=false --ip6tables=false --ip-masq=false`` (no rules, FORWARD policy
    untouched), ``--ip-forward=false`` (without it dockerd sets ip_forward=1 even
    with the bridge off), ``--bridge=none`` (no docker0). A private config file
    keeps /etc/docker/daemon.json out and moves the trust key, which 20.10 writes
    to /etc/docker/key.json, into .work (``deprecated-key-path`` exists only as a
    config-file key). The one host path left is /run/docker/plugins, hard-coded:
    it is removed afterwards if this run created it.
    """
    cli = which("docker")
    if not os.access(DOCKERD, os.X_OK) or cli is None:
        raise PeerUnavailable(f"docker not installed ({DOCKERD} or docker CLI missing)")
    base = WORK / "dockerd"
    sock, pidfile, logfile = base / "dockerd.sock", base / "dockerd.pid", base / "dockerd.log"
    _stop_stale(pidfile, str(base), "dockerd")
    remove_tree(base)
    (base / "data").mkdir(parents=True)
    config = base / "daemon.json"
    config.write_text(json.dumps({"deprecated-key-path": str(base / "trust-key.json")}))
    run_docker_existed = Path("/run/docker").exists()
    before = HostNetState.capture()
    argv = [
        DOCKERD, "--config-file", str(config),
        "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
        "-H", f"unix://{sock}", "--pidfile", str(pidfile),
        "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none",
    ]
    proc = _spawn(argv, logfile)
    try:
        _wait_for_ping(sock, proc, logfile, "dockerd", timeout)
        status, body = http_get_unix(sock, "/version")
        server = json.loads(body).get("Version", "?") if status == 200 else "?"
        client = _first_line([cli, "--version"])
        yield Engine("docker", [cli, "-H", f"unix://{sock}"], f"dockerd {server}, CLI {cli}: {client}", api_socket=sock)
    finally:
        containerd_pidfile = base / "exec" / "containerd" / "containerd.pid"
        _terminate(proc.pid, "dockerd", proc=proc)
        # dockerd stops the containerd it started; make sure, by its pidfile and our path in its cmdline
        _stop_stale(containerd_pidfile, str(base), "dockerd's containerd")
        _restore_docker_changes(before, HostNetState.capture())
        if not run_docker_existed:
            for leftover in (Path("/run/docker/plugins"), Path("/run/docker")):
                with contextlib.suppress(OSError):
                    leftover.rmdir()  # only if empty: another dockerd may be using it now
        remove_tree(base)


# --- podman -----------------------------------------------------------------


@contextlib.contextmanager
def podman() -> Iterator[Engine]:
    """podman 4.3 with a private store under .work/podman (no daemon: each command is a process).

    ``--root``/``--runroot``/``--storage-driver overlay`` for the image store,
    ``--tmpdir`` for libpod's transient state and events log,
    ``--network-config-dir``/``--volumepath`` so nothing lands in /etc/containers
    or /var/lib/containers, ``TMPDIR`` for podman's own temporary files.

    What no setting moves: /dev/shm/libpod_lock, /run/containers/networks and
    containers/image's blob-info cache in /var/lib/containers/cache, each removed
    afterwards only if this run created it and no other podman is running; and,
    while ``load`` probes whether its input is an oci-archive, podman 4.3 unpacks
    the whole archive into /var/tmp/oci* (ignoring TMPDIR and image_copy_tmp_dir)
    and deletes it itself. No ``system reset`` at the end: it also removes every
    network it finds; unmounting under the private dirs and deleting them is enough.
    """
    exe = which("podman")
    if exe is None:
        raise PeerUnavailable("podman not installed")
    base = WORK / "podman"
    remove_tree(base)
    machine_wide = [Path("/dev/shm/libpod_lock"), Path("/run/containers/networks"), Path("/run/containers"),
                    Path("/var/lib/containers")]
    existed = {p for p in machine_wide if p.exists()}
    argv = [
        exe, "--root", str(base / "root"), "--runroot", str(base / "runroot"), "--storage-driver", "overlay",
        "--tmpdir", str(base / "libpod"), "--network-config-dir", str(base / "networks"),
        "--volumepath", str(base / "volumes"), "--events-backend", "file", "--cgroup-manager", "cgroupfs",
    ]
    (base / "tmp").mkdir(parents=True)
    engine = Engine("podman", argv, _first_line([exe, "--version"]), env={**os.environ, "TMPDIR": str(base / "tmp")})
    try:
        try:
            engine.run("info")  # creates the store; fails early if podman cannot run here
        except CommandFailed as e:
            raise PeerUnavailable(str(e)) from None
        yield engine
    finally:
        engine.run("rmi", "-a", "-f", check=False)
        # conmon runs `podman container cleanup` after a container exits: let ours finish first
        _wait_for_processes_naming(str(base), timeout=10.0)
        remove_tree(base)
        if not _other_process_named({"podman", "conmon"}):
            _remove_podman_leftovers([p for p in machine_wide if p not in existed])


def _remove_podman_leftovers(created: list[Path]) -> None:
    for p in created:
        with contextlib.suppress(OSError):
            if p == Path("/var/lib/containers"):
                # only the blob-info cache: anything else there is a store someone now uses
                if {str(f.relative_to(p)) for f in p.rglob("*")} <= {"cache", "cache/blob-info-cache-v1.boltdb"}:
                    shutil.rmtree(p)
            elif p.is_dir():
                p.rmdir()  # only if empty
            else:
                p.unlink()


def _wait_for_processes_naming(marker: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(marker in _cmdline(int(p)) for p in os.listdir("/proc") if p.isdigit()):
            return
        time.sleep(0.1)


def _other_process_named(names: set[str]) -> bool:
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() in names and _alive(int(entry)):
                    return True  # zombies do not count: this sandbox's pid 1 does not reap conmon's
    return False


# --- portside ---------------------------------------------------------------


def portside_executable() -> Path:
    """The console script of the checkout's venv (``PORTSIDE`` overrides it)."""
    return Path(os.environ.get("PORTSIDE", REPO / ".venv" / "bin" / "portside"))


@contextlib.contextmanager
def portside_daemon(*, timeout: float = 30.0) -> Iterator[Engine]:
    """``portside daemon --root DIR --host unix://SOCK`` on a private root under .work/portside.

    Raises PeerUnavailable("portside daemon not available: ...") when it cannot
    be started, so a benchmark still reports the peers while portside is being
    written. Host network changes it leaves behind are reported, not undone.
    """
    exe = portside_executable()
    if not os.access(exe, os.X_OK):
        raise PeerUnavailable(f"portside daemon not available: {exe} not found")
    base = WORK / "portside"
    sock, pidfile, logfile = base / "portside.sock", base / "portside.pid", base / "daemon.log"
    # the container monitor (started on the first container, in the socket's directory) outlives the
    # daemon by design (live restore): stop ours too, by its pidfile, once the daemon has gone
    monitor_pidfile = base / "monitor" / "monitor.pid"
    _stop_stale(pidfile, str(base), "portside daemon")
    _stop_stale(monitor_pidfile, str(base), "portside monitor")
    remove_tree(base)
    (base / "root").mkdir(parents=True)
    before = HostNetState.capture()
    # a network tag of its own: its bridge and nft table never meet another daemon's (docs/networking.md)
    tag = f"pb{os.getpid() & 0xffffff:06x}"
    proc = _spawn([str(exe), "daemon", "--root", str(base / "root"), "--host", f"unix://{sock}",
                   "--network-tag", tag], logfile)
    pidfile.write_text(f"{proc.pid}\n")
    try:
        try:
            _wait_for_ping(sock, proc, logfile, "portside daemon", timeout)
        except PeerUnavailable as e:
            raise PeerUnavailable(f"portside daemon not available: {e}") from None
        yield Engine("portside", [str(exe), "--host", f"unix://{sock}"], portside_version(), api_socket=sock)
    finally:
        _terminate(proc.pid, "portside daemon", proc=proc)
        _stop_by_pidfile(monitor_pidfile, str(base), "portside monitor")
        changes = HostNetState.capture().changes_since(before)
        if changes:
            log("  WARNING: portside daemon left host changes behind:\n    " + "\n    ".join(changes))
        remove_tree(base)


def portside_version() -> str:
    """The checkout's commit, ``-dirty`` when the venv's editable install runs uncommitted code."""
    commit = _first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
    return f"portside {commit} ({portside_executable()})"
