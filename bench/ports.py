"""Published-port throughput: a TCP stream through the DNAT path against the same stream on the host's loopback.

    /work/main/.venv/bin/python bench/ports.py [--runs 5] [--mib 1024] [--json]

One sink (a Python process that reads and discards with 1 MiB ``recv_into``) and
one sender (``sendall`` of a 4 MiB buffer until ``--mib`` MiB are sent, then it
waits for the sink's "done") per run; the time is the sender's. Rows, taking
turns within each run:

loopback         sink on the host, sent to 127.0.0.1: the floor
published-lo     sink in a network namespace behind a bridge (a container's
                 network, made here with pyroute2), sent to 127.0.0.1:HOSTPORT:
                 nft DNAT in output, masquerade, route_localnet (network/ports.py)
published-addr   the same to the bridge's address:HOSTPORT (DNAT without masquerade)
direct           sent to the namespace's own address, no NAT: the veth and bridge's
                 share of the cost, without the publisher's

Target (issue 7): published within 10 % of loopback for the kernel path.
The bridge, namespace and nft table are named per run and removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import harness  # noqa: E402

from portside.network.ports import PortPublisher  # noqa: E402

SINK = """
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
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
SINK_PORT = 5001
SUBNET = "198.18.{}.0/24"


def send(host: str, port: int, mib: int) -> None:
    chunk = memoryview(bytearray(4 << 20))
    with socket.create_connection((host, port), timeout=30) as s:
        for _ in range(mib // 4):
            s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(16) == b"done"


def _sink(argv_prefix: list[str], host: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([*argv_prefix, sys.executable, "-c", SINK, host, str(SINK_PORT)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@contextlib.contextmanager
def namespace_behind_bridge() -> Iterator[tuple[str, str, str, str]]:
    """(bridge, namespace, gateway, address) on a 198.18.x.0/24 no route of the host overlaps."""
    import ipaddress

    from pyroute2 import IPRoute, NetNS, netns

    suffix = secrets.token_hex(3)
    bridge, ns, host_end = f"pbb{suffix}", f"pbn{suffix}", f"pbv{suffix}"
    with IPRoute() as ipr:
        used = [ipaddress.ip_network(f"{r.get('RTA_DST')}/{r['dst_len']}", strict=False)
                for r in ipr.get_routes(family=socket.AF_INET) if r.get("RTA_DST")]
        net = next(n for n in (ipaddress.ip_network(SUBNET.format(secrets.randbelow(256))) for _ in range(100))
                   if not any(n.overlaps(u) for u in used))
        hosts = list(net.hosts())
        gateway, address = str(hosts[0]), str(hosts[1])
        try:
            ipr.link("add", ifname=bridge, kind="bridge")
            bi = ipr.link_lookup(ifname=bridge)[0]
            ipr.addr("add", index=bi, address=gateway, prefixlen=24)
            ipr.link("set", index=bi, state="up")
            netns.create(ns)
            ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns})
            vi = ipr.link_lookup(ifname=host_end)[0]
            ipr.link("set", index=vi, master=bi, state="up")
            with NetNS(ns) as n:
                n.link("set", index=n.link_lookup(ifname="lo")[0], state="up")
                eth = n.link_lookup(ifname="eth0")[0]
                n.addr("add", index=eth, address=address, prefixlen=24)
                n.link("set", index=eth, state="up")
                n.route("add", dst="0.0.0.0/0", gateway=gateway)
            yield bridge, ns, gateway, address
        finally:
            if ns in netns.listnetns():
                netns.remove(ns)
            for index in ipr.link_lookup(ifname=bridge):
                ipr.link("del", index=index)


def main() -> int:
    p = harness.arg_parser(__doc__.splitlines()[0], runs=5, warmup=1)
    p.add_argument("--mib", type=int, default=1024, help="MiB sent per run (default 1024)")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("bench/ports.py: needs root (a bridge, a namespace, nft)", file=sys.stderr)
        return 1
    only = set(filter(None, args.only.split(",")))
    state = tempfile.mkdtemp(prefix="ports-bench-")
    tag = f"pb{secrets.token_hex(2)}"
    procs: list[subprocess.Popen[str]] = []
    publisher: PortPublisher | None = None
    try:
        with namespace_behind_bridge() as (bridge, ns, gateway, address):
            procs.append(_sink([], "127.0.0.1"))
            procs.append(_sink(["ip", "netns", "exec", ns], "0.0.0.0"))
            publisher = PortPublisher(tag, state_dir=state)
            cid = secrets.token_hex(32)
            host_port = int(publisher.publish(cid, address, bridge, {f"{SINK_PORT}/tcp": [{"HostIp": "", "HostPort": ""}]})
                            [f"{SINK_PORT}/tcp"][0]["HostPort"])
            rows = {"loopback": ("127.0.0.1", SINK_PORT), "published-lo": ("127.0.0.1", host_port),
                    "published-addr": (gateway, host_port), "direct": (address, SINK_PORT)}
            rows = {k: v for k, v in rows.items() if not only or k in only}
            results = {name: harness.Result(name) for name in rows}
            for i in range(args.warmup + args.runs):
                for name, (host, port) in rows.items():
                    start = time.perf_counter()
                    send(host, port, args.mib)
                    if i >= args.warmup:
                        results[name].samples.append(time.perf_counter() - start)
            publisher.unpublish(cid)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        if publisher is not None:
            publisher.close()
        subprocess.run(["nft", "delete", "table", "ip", f"{tag}_ports"], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)
    ordered = list(results.values())
    title = f"TCP stream, {args.mib} MiB per run: seconds (lower is better)"
    if args.json:
        import json

        print(json.dumps(harness.results_json(title, ordered, "loopback", floor_name="direct",
                                              mib=args.mib, machine=harness.machine_info())))
    else:
        harness.report(title, ordered, "loopback", floor_name="direct")
        for r in ordered:
            if r.measured:
                print(f"  {r.name}: {args.mib / r.median / 1024:.2f} GiB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
