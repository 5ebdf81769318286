"""Container network throughput: a TCP stream between containers and into a published port, against loopback.

    /work/main/.venv/bin/python bench/net.py [--runs 5] [--mib 512] [--only portside,podman,docker] [--json]

The tool is the same everywhere: a sink (Python, ``recv_into`` of 1 MiB,
discarding) and a sender (``sendall`` of a 4 MiB buffer until ``--mib`` MiB
are sent, then it waits for the sink's "done"), each run in a container's
network namespace with ``nsenter --net=/proc/PID/ns/net`` (the engines'
busybox image has no Python; the network path, which is what is measured, is
the container's). The time is the sender's. Per engine, rows taken in turn
within each round:

loopback            sender and sink on the host, 127.0.0.1: the floor, taken in the same
                    rounds as the engine's rows (ratios are against it)
ENGINE c2c          container to container on a user network (``network create``), Docker's
                    default MTU 1500
ENGINE c2c mtu      the same on a network made with ``-o com.docker.network.driver.mtu=65520``
                    (loopback's MTU is 65536)
ENGINE published    host to 127.0.0.1:HOSTPORT, ``run -p 127.0.0.1::5001`` on the first user network

Engines: portside (a private daemon, as bench/run.py), podman (a private store;
netavark), docker (a private dockerd started with ``--iptables=false --bridge=none``
so that it changes no host rule, see harness.dockerd: its bridges carry no
filtering, and its userland proxy, a process, serves the published port). A missing peer is
reported as such. Target (issue 7): within 10 % of loopback for the kernel path.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import run  # noqa: E402  (the busybox image every engine starts)
from harness import CommandFailed, Engine, PeerUnavailable, Result  # noqa: E402

SINK = """
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen()
print("ready", flush=True)
buf = bytearray(1 << 20)
while True:
    conn, _ = srv.accept()
    with conn:
        while conn.recv_into(buf):
            pass
        conn.sendall(b"done")
"""
SEND = """
import socket, sys, time
chunk = memoryview(bytearray(4 << 20))
start = time.perf_counter()
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60) as s:
    for _ in range(int(sys.argv[3]) // 4):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    assert s.recv(16) == b"done"
print(time.perf_counter() - start)
"""
PORT = 5001
JUMBO = "65520"
ENGINES = ("portside", "podman", "docker")


class Path_:
    """One row: where the sender runs (a namespace prefix) and where it sends."""

    def __init__(self, name: str, prefix: list[str], host: str, port: int) -> None:
        self.name, self.prefix, self.host, self.port = name, prefix, host, port


def _in_netns(pid: str) -> list[str]:
    return ["nsenter", f"--net=/proc/{pid}/ns/net"]


def _sink(prefix: list[str], procs: list[subprocess.Popen[str]]) -> None:
    proc = subprocess.Popen([*prefix, sys.executable, "-c", SINK, str(PORT)], stdout=subprocess.PIPE, text=True)
    procs.append(proc)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise CommandFailed("the sink did not start")


def _send(path: Path_, mib: int) -> float:
    out = subprocess.run([*path.prefix, sys.executable, "-c", SEND, path.host, str(path.port), str(mib)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise CommandFailed(f"{path.name}: {out.stderr.strip().splitlines()[-1:] or out.returncode}")
    return float(out.stdout)


def _out(engine: Engine, *args: str) -> str:
    proc = subprocess.run(engine.cmd(*args), capture_output=True, text=True, env=engine.env, check=False)
    if proc.returncode != 0:
        raise CommandFailed(f"{engine.name} {' '.join(args)}: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout.strip()


@contextlib.contextmanager
def engine_paths(engine: Engine, procs: list[subprocess.Popen[str]]) -> Iterator[list[Path_]]:
    """Containers (sleep) on two user networks and the default one, a sink in each target; the rows."""
    tag = engine.name
    made: list[str] = []
    networks: list[str] = []
    try:
        networks.append(f"benchnet-{tag}")
        engine.run("network", "create", networks[-1])
        networks.append(f"benchnet-{tag}-mtu")
        mtu_option = f"mtu={JUMBO}" if tag == "podman" else f"com.docker.network.driver.mtu={JUMBO}"  # netavark's name
        engine.run("network", "create", "-o", mtu_option, networks[-1])

        def start(name: str, *args: str) -> tuple[str, str]:
            engine.run("run", "-d", "--name", name, *args, run.IMAGE, "sleep", "3600")
            made.append(name)
            return _out(engine, "inspect", "-f", "{{.State.Pid}}", name), name

        rows = []
        for net, label in ((networks[0], "c2c"), (networks[1], "c2c mtu")):
            (sink_pid, sink), (client_pid, _) = start(f"bench-{tag}-{label[-3:]}-a", "--network", net), \
                start(f"bench-{tag}-{label[-3:]}-b", "--network", net)
            address = _out(engine, "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}',
                           sink)
            _sink(_in_netns(sink_pid), procs)
            rows.append(Path_(f"{tag} {label}", _in_netns(client_pid), address, PORT))
        # on the user network: the benchmark's dockerd runs without a default bridge (harness.dockerd)
        pub_pid, pub = start(f"bench-{tag}-pub", "--network", networks[0], "-p", f"127.0.0.1::{PORT}")
        _sink(_in_netns(pub_pid), procs)
        host_port = int(_out(engine, "port", pub, f"{PORT}/tcp").splitlines()[0].rsplit(":", 1)[1])
        rows.append(Path_(f"{tag} published", [], "127.0.0.1", host_port))
        yield rows
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        procs.clear()
        for name in made:
            engine.run("rm", "-f", name, check=False)
        for net in networks:
            engine.run("network", "rm", net, check=False)


def _nft_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
    return {line.strip() for line in out.splitlines() if line.startswith("table ")}


@contextlib.contextmanager
def netavark_tables_removed() -> Iterator[None]:
    """podman's netavark leaves iptables-nft tables (`ip nat`, `ip filter` with empty NETAVARK chains) after
    its networks are gone: delete those it made during the run, and only if they hold nothing but its own."""
    before = _nft_tables()
    try:
        yield
    finally:
        for table in sorted(_nft_tables() - before):
            family_name = table.split()[1:]
            text = subprocess.run(["nft", "list", "table", *family_name], capture_output=True, text=True,
                                  check=False).stdout
            jumps = [ln for ln in text.splitlines() if "jump" in ln or "goto" in ln]
            if family_name in (["ip", "nat"], ["ip", "filter"], ["ip6", "nat"], ["ip6", "filter"]) and \
                    all("NETAVARK" in ln for ln in jumps) and "NETAVARK" in text:
                subprocess.run(["nft", "delete", "table", *family_name], check=False)
                harness.log(f"  deleted netavark's leftover {table}")


def bench_engine(name: str, start: Callable[[], contextlib.AbstractContextManager[Engine]], runs: int, warmup: int,
                 mib: int, versions: dict[str, str]) -> list[Result]:
    procs: list[subprocess.Popen[str]] = []
    names = [f"loopback ({name} rounds)", f"{name} c2c", f"{name} c2c mtu", f"{name} published"]
    harness.log(f"{name}: starting")
    try:
        with start() as engine:
            versions[name] = engine.version
            if name == "portside":
                with open(run.ROOTFS_TAR, "rb") as rootfs:
                    subprocess.run(engine.cmd("import", "--change", run.CHANGE, "-", run.IMAGE), stdin=rootfs,
                                   stdout=subprocess.DEVNULL, check=True)
                engine.run("save", "-o", str(run.IMAGE_TAR), run.IMAGE)
            else:
                run.load_image(engine)
            loop = Path_(names[0], [], "127.0.0.1", PORT)
            _sink([], procs)  # the loopback sink, on the host
            host_sink = procs[:]
            procs.clear()
            try:
                with engine_paths(engine, procs) as rows:
                    paths = [loop, *rows]
                    samples: dict[str, list[float]] = {p.name: [] for p in paths}
                    harness.log(f"{name}: {runs} rounds of {len(paths)} streams of {mib} MiB")
                    for i in range(warmup + runs):
                        for path in paths:
                            t = _send(path, mib)
                            if i >= warmup:
                                samples[path.name].append(t)
                    return [Result(p.name, samples[p.name]) for p in paths]
            finally:
                for proc in host_sink:
                    proc.kill()
                    proc.wait()
    except (PeerUnavailable, CommandFailed, subprocess.CalledProcessError) as e:
        harness.log(f"{name}: {e}")
        return [Result(n, note=str(e)) for n in names]


def main() -> int:
    p = harness.arg_parser(__doc__.splitlines()[0], runs=5, warmup=1)
    p.add_argument("--mib", type=int, default=512, help="MiB sent per stream (default 512)")
    args = p.parse_args()
    harness.exit_on_sigterm()
    only = {s.strip() for s in args.only.split(",") if s.strip()} or set(ENGINES)
    versions: dict[str, str] = {"portside": harness.portside_version()}
    results: list[Result] = []
    starts = {"portside": harness.portside_daemon, "podman": harness.podman, "docker": harness.dockerd}
    owned = (lambda rel: rel in ("docker", "libpod_parent", "libpod_parent/conmon"))
    # netavark's tables checked after the podman rounds and again at the end (a late `podman container
    # cleanup` can make them again after the first check)
    with harness.removing_new_cgroups(owned), run.work_dir(), netavark_tables_removed():
        run.build_rootfs()
        for name in ENGINES:  # portside first: the peers load the image it saves
            if name in only or (name == "portside" and only & {"podman", "docker"}):
                with netavark_tables_removed() if name == "podman" else contextlib.nullcontext():
                    rows = bench_engine(name, starts[name], args.runs, args.warmup, args.mib, versions)
                results += rows if name in only else []
    title = f"TCP stream, {args.mib} MiB per stream: seconds (lower is better), median of {args.runs} rounds"
    rows_out = []
    for r in results:
        phase = r.name.split()[0] if not r.name.startswith("loopback") else None
        base = next((b for b in results if phase and b.name == f"loopback ({phase} rounds)"), None)
        rows_out.append({
            "name": r.name, "note": r.note,
            "median_s": r.median if r.measured else None,
            "gib_s": args.mib / 1024 / r.median if r.measured else None,
            "vs_loopback": (r.median / base.median) if (r.measured and base is not None and base.measured) else None,
        })
    if args.json:
        print(json.dumps({"title": title, "rows": rows_out, "machine": harness.machine_info(),
                          "versions": versions}, indent=2))
        return 0
    print(title)
    print(f"{'name':<26} {'median':>8} {'min':>8} {'GiB/s':>6} {'vs loopback':>11}")
    for r, row in zip(results, rows_out):
        if not r.measured:
            print(f"{r.name:<26} {'-':>8} {'-':>8} {'-':>6} {'-':>11}  {r.note}")
            continue
        ratio = f"{row['vs_loopback']:.2f}x" if row["vs_loopback"] is not None else "1.00x"
        print(f"{r.name:<26} {r.median:7.3f}s {r.min:7.3f}s {row['gib_s']:6.2f} {ratio:>11}")
    print("vs loopback = the row's median time / loopback's median time in the same rounds (1.10x: 10 % slower)")
    print(f"stdev of loopback: {', '.join(f'{statistics.pstdev(r.samples):.3f}s' for r in results if r.measured and r.name.startswith('loopback'))}")
    print()
    harness.print_versions_and_machine(versions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
