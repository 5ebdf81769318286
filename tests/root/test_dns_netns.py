"""The embedded DNS server answering busybox ``nslookup`` run in a network namespace, over a veth.

The test makes its own namespace and veth pair (unique names), puts a random
/30 of 198.18.0.0/15 (RFC 2544's benchmarking range, unused on the host) on
the pair, and serves on the host side at port 53, the one nslookup asks. The
"outside" resolver is a socket on loopback the test drives: nothing leaves the machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from portside.network import dnsmsg, resolvconf
from portside.network.dns import DnsServer

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(not os.path.exists("/bin/busybox") or shutil.which("ip") is None,
                       reason="needs /bin/busybox and ip"),
]

KNOWN = {"web": ["10.77.0.2"], "db": ["10.77.0.3", "10.77.0.4"]}
NAMES = {"10.77.0.2": "web.testnet"}
OUTSIDE = {"outside.example": ["192.0.2.10"]}


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _free_slash30() -> ipaddress.IPv4Network:
    used = [ipaddress.ip_network(r["dst"], strict=False) for r in json.loads(
        subprocess.run(["ip", "-j", "route", "show", "table", "all"], capture_output=True, text=True,
                       check=True).stdout or "[]") if r.get("dst", "default") not in ("default",) and
            ":" not in r.get("dst", "") and r.get("dst") not in ("broadcast",)]
    pool = ipaddress.ip_network("198.18.0.0/15")
    for _ in range(100):
        net = ipaddress.ip_network(f"{pool[random.randrange(pool.num_addresses) & ~3]}/30")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /30 in 198.18.0.0/15")


@dataclass
class Netns:
    name: str
    host_address: str
    inner_address: str

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[Netns]:
    tag = secrets.token_hex(3)
    name, host_if, inner_if = f"psdns{tag}", f"psd{tag}h", f"psd{tag}c"
    net = _free_slash30()
    host_address, inner_address = str(net[1]), str(net[2])
    ip("netns", "add", name)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", inner_if, "netns", name)
        ip("addr", "add", f"{host_address}/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", name, "addr", "add", f"{inner_address}/30", "dev", inner_if)
        ip("-n", name, "link", "set", inner_if, "up")
        ip("-n", name, "link", "set", "lo", "up")
        yield Netns(name, host_address, inner_address)
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
    assert subprocess.run(["ip", "link", "show", host_if], capture_output=True).returncode != 0


class Outside:
    """The host's resolver, played by a UDP socket on loopback: OUTSIDE's names, NXDOMAIN for the rest."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((f"127.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(2, 255)}", 0))
        self.sock.settimeout(0.1)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def spec(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            q = dnsmsg.parse(data)
            found = OUTSIDE.get(q.question.name or "")
            if found is None:
                answer = dnsmsg.response(q, dnsmsg.NXDOMAIN)
            else:
                records = [dnsmsg.Record.a(a) for a in found] if q.question.qtype == dnsmsg.TYPE_A else []
                answer = dnsmsg.response(q, dnsmsg.NOERROR, records)
            self.sock.sendto(answer, peer)

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def servers(netns: Netns) -> Iterator[DnsServer]:
    outside = Outside()
    server = DnsServer(netns.host_address, 53, lambda n: KNOWN.get(n, []), NAMES.get, [outside.spec],
                       domains=["testnet", "corp.example"])
    try:
        server.start()
        yield server
    finally:
        server.close()
        outside.close()


def test_nslookup_known_names(netns: Netns, servers: DnsServer) -> None:
    r = netns.run("/bin/busybox", "nslookup", "web", netns.host_address)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Address:\t{netns.host_address}:53" in r.stdout
    assert "Name:\tweb\nAddress: 10.77.0.2\n" in r.stdout
    r = netns.run("/bin/busybox", "nslookup", "DB.testnet.", netns.host_address)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Address: 10.77.0.3\n" in r.stdout and "Address: 10.77.0.4\n" in r.stdout
    assert "10.77.0.5" not in r.stdout


def test_nslookup_reverse(netns: Netns, servers: DnsServer) -> None:
    r = netns.run("/bin/busybox", "nslookup", "10.77.0.2", netns.host_address)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2.0.77.10.in-addr.arpa\tname = web.testnet" in r.stdout


def test_nslookup_forwarded_and_unknown(netns: Netns, servers: DnsServer) -> None:
    r = netns.run("/bin/busybox", "nslookup", "outside.example", netns.host_address)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Name:\toutside.example\nAddress: 192.0.2.10\n" in r.stdout
    r = netns.run("/bin/busybox", "nslookup", "nowhere.example", netns.host_address)
    assert r.returncode != 0
    assert "can't find nowhere.example: NXDOMAIN" in r.stdout + r.stderr   # the upstream's answer, relayed


def test_nslookup_through_the_containers_resolv_conf(netns: Netns, servers: DnsServer) -> None:
    # the file a container on a user-defined network gets; `ip netns exec` binds /etc/netns/NAME/* over /etc.
    # busybox's nslookup asks for a dotless name under each search domain only (never bare, whatever
    # ndots says): the server answers the network's names under the search domains it is given too
    built = resolvconf.build("search corp.example\nnameserver 127.0.0.53\n", embedded=netns.host_address)
    assert built.upstreams == ("127.0.0.53",)
    os.makedirs(f"/etc/netns/{netns.name}")
    with open(f"/etc/netns/{netns.name}/resolv.conf", "w") as f:
        f.write(built.text)
    r = netns.run("/bin/busybox", "nslookup", "web")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Address: 10.77.0.2\n" in r.stdout
