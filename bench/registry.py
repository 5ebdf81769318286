"""Registry server throughput: portside's `registry serve` beside the CNCF Distribution registry, in one run.

    /work/main/.venv/bin/python bench/registry.py [--big-mb 1024] [--small-count 1000] [--small-kb 4]
        [--clients 1,8,32] [--manifest-requests 4000] [--runs 3] [--warmup 1]
        [--only distribution,portside] [--rows big-up,big-down,small-up,small-down,manifest-get] [--json]

Both registries run on 127.0.0.1 with a fresh storage root under bench/.work
for every row (started before it, stopped and deleted after it, so at most one
row's blobs are on disk): Distribution is Debian's ``docker-registry`` 2.8.2
with its access log off; portside is ``portside registry serve --addr --root``
(reported as not measured while that command does not exist). The clients are
processes (forked, one keep-alive http.client connection each), so Python's
GIL limits neither registry; they share the machine's 2 CPUs with the server.

Rows, each with 1, 8 and 32 concurrent clients (``--clients``):

big-up C      ``--big-mb`` MiB in total, as C distinct blobs of big/C MiB, each
              pushed by one client: POST, then one monolithic PUT streaming it.
big-down C    the same C blobs (pushed before the timer starts), one GET each,
              read into a reused buffer (Content-Length and Docker-Content-Digest
              checked; the bytes were hashed when pushed).
small-up C    ``--small-count`` blobs of ``--small-kb`` KiB, POST + PUT each,
              split over C clients.
small-down C  the same blobs, one GET each, split over C clients.
manifest-get C  ``--manifest-requests`` GETs of one manifest by tag (Accept
              naming the OCI and Docker types), split over C clients.

The table gives each row's median time; the throughput table gives MiB/s or
blobs/s or requests/s and portside's figure over Distribution's. Targets (issue 6): at
least Distribution's throughput on big blobs (ratio >= 1.0), at least half its
request rate on small requests (ratio >= 0.5). ``--big-mb`` defaults to 1024,
or 256 when bench/.work has under 8 GiB free.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import PeerUnavailable, Result

CHUNK = 1 << 20
ACCEPT = ("application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
          "application/vnd.docker.distribution.manifest.v2+json")
REGISTRIES = ("distribution", "portside")


# --- the registries -----------------------------------------------------------


@dataclass
class Server:
    name: str
    host: str
    port: int
    version: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_v2(port: int, proc: subprocess.Popen[bytes], log: Path, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerUnavailable(f"{name} exited {proc.returncode}: {log.read_text(errors='replace')[-500:]}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v2/")
            if conn.getresponse().status == 200:
                conn.close()
                return
        time.sleep(0.05)
    raise PeerUnavailable(f"{name} did not answer GET /v2/ in 30 s")


def _portside_argv() -> list[str]:
    exe = harness.portside_executable()
    return [str(exe)] if os.access(exe, os.X_OK) else [sys.executable, "-m", "portside"]


def _argv(name: str, base: Path, port: int) -> list[str]:
    if name == "distribution":
        binary = shutil.which("docker-registry")
        if binary is None:
            raise PeerUnavailable("docker-registry is not installed")
        (base / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {base}/data\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(8)}\n")
        return [binary, "serve", str(base / "config.yml")]
    argv = _portside_argv()
    probe = subprocess.run([*argv, "registry", "serve", "--help"], capture_output=True, check=False, timeout=60)
    if probe.returncode != 0:
        raise PeerUnavailable("`portside registry serve` does not exist in this checkout yet")
    return [*argv, "registry", "serve", "--addr", f"127.0.0.1:{port}", "--root", str(base / "data")]


def _version(name: str) -> str:
    if name == "distribution":
        binary = shutil.which("docker-registry") or "docker-registry"
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.strip()
        return f"{out or '?'} ({binary})"
    return harness.portside_version()


@contextlib.contextmanager
def server(name: str) -> Iterator[Server]:
    """One registry on a fresh root under .work/registry-bench/<name>; stopped and deleted afterwards."""
    base = harness.WORK / "registry-bench" / name
    pidfile, log = base.parent / f"{name}.pid", base.parent / f"{name}.log"
    base.parent.mkdir(parents=True, exist_ok=True)
    harness._stop_stale(pidfile, str(base), name)
    harness.remove_tree(base)
    base.mkdir(parents=True)
    port = _free_port()
    proc = harness._spawn(_argv(name, base, port), log)
    pidfile.write_text(f"{proc.pid}\n")
    try:
        _wait_for_v2(port, proc, log, name)
        yield Server(name, "127.0.0.1", port, _version(name))
    finally:
        harness._terminate(proc.pid, name, proc=proc)
        pidfile.unlink(missing_ok=True)
        harness.remove_tree(base)


# --- blobs, described without holding them in memory ----------------------------


@dataclass(frozen=True)
class Blob:
    """``size`` bytes: ``seed`` (unique per blob) then a shared random block repeated; never all in memory."""

    seed: bytes
    size: int
    digest: str = ""

    def chunks(self, block: bytes) -> Iterator[bytes]:
        yield self.seed
        left = self.size - len(self.seed)
        while left > 0:
            piece = block[: min(left, len(block))]
            left -= len(piece)
            yield piece

    def with_digest(self, block: bytes) -> Blob:
        h = hashlib.sha256()
        for piece in self.chunks(block):
            h.update(piece)
        return Blob(self.seed, self.size, "sha256:" + h.hexdigest())


def make_blobs(count: int, size: int, block: bytes) -> list[Blob]:
    return [Blob(secrets.token_bytes(32), size).with_digest(block) for _ in range(count)]


# --- the client side -----------------------------------------------------------


def _push(conn: http.client.HTTPConnection, repo: str, blob: Blob, block: bytes) -> None:
    conn.request("POST", f"/v2/{repo}/blobs/uploads/", body=b"", headers={"Content-Length": "0"})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 202:
        raise RuntimeError(f"POST upload: {resp.status}")
    loc = urllib.parse.urlsplit(resp.headers["Location"])
    path = loc.path + "?" + (loc.query + "&" if loc.query else "") + urllib.parse.urlencode({"digest": blob.digest})
    conn.request("PUT", path, body=blob.chunks(block) if blob.size > len(block) else b"".join(blob.chunks(block)),
                 headers={"Content-Length": str(blob.size), "Content-Type": "application/octet-stream"})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 201:
        raise RuntimeError(f"PUT upload: {resp.status}")


def _pull(conn: http.client.HTTPConnection, repo: str, blob: Blob, buf: memoryview) -> None:
    conn.request("GET", f"/v2/{repo}/blobs/{blob.digest}")
    resp = conn.getresponse()
    if resp.status != 200 or resp.headers.get("Docker-Content-Digest") != blob.digest:
        raise RuntimeError(f"GET blob: {resp.status}")
    got = 0
    while n := resp.readinto(buf):
        got += n
    if got != blob.size:
        raise RuntimeError(f"GET blob: {got} of {blob.size} bytes")


def _get_manifest(conn: http.client.HTTPConnection, repo: str, count: int) -> None:
    for _ in range(count):
        conn.request("GET", f"/v2/{repo}/manifests/latest", headers={"Accept": ACCEPT})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET manifest: {resp.status}")


@dataclass
class Job:
    """What one client process does: ``op`` over its share of the blobs."""

    op: str                       # push | pull | manifest
    blobs: list[Blob] = field(default_factory=list)
    count: int = 0


def _client(srv: Server, repo: str, job: Job, block: bytes, go: Any, done: Any) -> None:
    try:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=600)
        buf = memoryview(bytearray(CHUNK))
        go.wait()
        if job.op == "push":
            for blob in job.blobs:
                _push(conn, repo, blob, block)
        elif job.op == "pull":
            for blob in job.blobs:
                _pull(conn, repo, blob, buf)
        else:
            _get_manifest(conn, repo, job.count)
        conn.close()
        done.put("")
    except BaseException as e:  # noqa: BLE001 - handed to the parent, which raises it
        done.put(f"{type(e).__name__}: {e}")


def run_clients(srv: Server, repo: str, jobs: Sequence[Job], block: bytes) -> float:
    """Fork one process per job, release them together, return the seconds until the last finished."""
    ctx = multiprocessing.get_context("fork")
    go, done = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(srv, repo, job, block, go, done)) for job in jobs]
    for p in procs:
        p.start()
    start = time.perf_counter()
    go.set()
    errors = [e for e in (done.get(timeout=3600) for _ in procs) if e]
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]}")
    return elapsed


def split(items: Sequence[Blob], parts: int) -> list[list[Blob]]:
    return [list(items[i::parts]) for i in range(parts)]


# --- rows ------------------------------------------------------------------------


@dataclass
class Row:
    name: str          # "big-up 8"
    kind: str          # big-up | big-down | small-up | small-down | manifest-get
    clients: int
    units: float       # MiB or requests moved per run, for the throughput table
    unit: str          # "MiB/s" | "req/s"


def push_manifest(srv: Server, repo: str, block: bytes) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = Blob(secrets.token_bytes(32), 4096).with_digest(block)
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
    cfg = Blob(config, len(config)).with_digest(b"")
    _push(conn, repo, cfg, b"")
    _push(conn, repo, layer, block)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg.digest, "size": cfg.size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.digest,
                    "size": layer.size}],
    }).encode()
    conn.request("PUT", f"/v2/{repo}/manifests/latest", body=manifest,
                 headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 201:
        raise RuntimeError(f"PUT manifest: {resp.status}")
    conn.close()


def measure_row(row: Row, name: str, args: Any, block: bytes) -> Result:
    result = Result(name)
    try:
        with server(name) as srv:
            repo = "bench/" + row.kind
            c = row.clients
            if row.kind in ("big-up", "small-up"):
                size = (args.big_mb << 20) // c if row.kind == "big-up" else args.small_kb << 10
                count = c if row.kind == "big-up" else args.small_count
                blobs: list[list[Blob]] = []

                def fresh() -> None:  # new content every run: no registry may skip work it has already done
                    harness.log(f"  {row.name} {name}: hashing {count} blob(s) of {size >> 10} KiB")
                    blobs[:] = [make_blobs(count, size, block)]

                result.samples = harness.measure(
                    lambda: run_clients(srv, repo, [Job("push", part) for part in split(blobs[0], c)], block),
                    runs=args.runs, warmup=args.warmup, setup=fresh)
            elif row.kind in ("big-down", "small-down"):
                size = (args.big_mb << 20) // c if row.kind == "big-down" else args.small_kb << 10
                count = c if row.kind == "big-down" else args.small_count
                pushed = make_blobs(count, size, block)
                run_clients(srv, repo, [Job("push", part) for part in split(pushed, min(c, 8))], block)
                result.samples = harness.measure(
                    lambda: run_clients(srv, repo, [Job("pull", part) for part in split(pushed, c)], block),
                    runs=args.runs, warmup=args.warmup)
            else:
                push_manifest(srv, repo, block)
                per = max(1, args.manifest_requests // c)
                result.samples = harness.measure(
                    lambda: run_clients(srv, repo, [Job("manifest", count=per) for _ in range(c)], block),
                    runs=args.runs, warmup=args.warmup)
            result.note = srv.version
    except PeerUnavailable as e:
        result.note = str(e)
    return result


def throughput_table(rows: Sequence[Row], results: dict[str, dict[str, Result]]) -> None:
    header = ("row", "distribution", "portside", "portside/distribution", "target")
    lines = [header]
    for row in rows:
        figures = {}
        for name in REGISTRIES:
            r = results[row.name].get(name)
            figures[name] = row.units / r.median if r is not None and r.measured else None
        d, p = figures["distribution"], figures["portside"]
        target = 1.0 if row.kind.startswith("big") else 0.5
        ratio_text = "-" if d is None or p is None else f"{p / d:.2f}"
        verdict = "-" if ratio_text == "-" else ("met" if p / d >= target else "MISSED")  # type: ignore[operator]
        lines.append((row.name, "-" if d is None else f"{d:,.0f} {row.unit}", "-" if p is None else f"{p:,.0f} {row.unit}",
                      ratio_text, f">= {target:.1f} {verdict}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print("throughput (higher is better)")
    for i, line in enumerate(lines):
        print("  ".join(cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(line, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def free_gib(path: Path) -> float:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free / (1 << 30)


def main() -> None:
    p = harness.arg_parser(__doc__.split("\n\n")[0], runs=3, warmup=1)
    p.add_argument("--big-mb", type=int, default=0, help="MiB moved per big row (default 1024; 256 if disk is tight)")
    p.add_argument("--small-count", type=int, default=1000)
    p.add_argument("--small-kb", type=int, default=4)
    p.add_argument("--manifest-requests", type=int, default=4000)
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--rows", default="big-up,big-down,small-up,small-down,manifest-get")
    args = p.parse_args()
    harness.exit_on_sigterm()
    if not args.big_mb:
        args.big_mb = 1024 if free_gib(harness.WORK) >= 8 else 256
    names = [n for n in REGISTRIES if not args.only or n in args.only.split(",")]
    block = os.urandom(CHUNK)
    rows: list[Row] = []
    for kind in args.rows.split(","):
        for c in (int(x) for x in args.clients.split(",")):
            if kind.startswith("big"):
                rows.append(Row(f"{kind} {c}", kind, c, float(args.big_mb), "MiB/s"))
            elif kind.startswith("small"):
                rows.append(Row(f"{kind} {c}", kind, c, float(args.small_count), "blobs/s"))
            else:
                rows.append(Row(f"{kind} {c}", kind, c, float(max(1, args.manifest_requests // c) * c), "req/s"))
    results: dict[str, dict[str, Result]] = {}
    for row in rows:
        results[row.name] = {}
        for name in names:
            harness.log(f"{row.name}: {name}")
            results[row.name][name] = measure_row(row, name, args, block)
    if args.json:
        out = [harness.results_json(row.name, list(results[row.name].values()), "portside",
                                    units=row.units, unit=row.unit) for row in rows]
        print(json.dumps({"rows": out, "big_mb": args.big_mb, "machine": harness.machine_info()}, indent=2))
        return
    for row in rows:
        harness.report(f"{row.name} (seconds per run)", list(results[row.name].values()), "portside")
        print()
    throughput_table(rows, results)
    print()
    print(f"big rows: {args.big_mb} MiB per run; small rows: {args.small_count} blobs of {args.small_kb} KiB; "
          f"manifest rows: {args.manifest_requests} GETs")
    harness.print_versions_and_machine({n: _version(n) for n in names})


if __name__ == "__main__":
    main()
