"""Published ports with real traffic: a bridge, two network namespaces and servers in them, all made here.

Each test gets its own bridge (``pb<hex>``), namespaces and nft table tag, on a
198.18.x.0/24 subnet (RFC 2544 benchmarking space) no route of the host
overlaps; traffic goes from the host's loopback, the host's bridge address and
the namespaces to one another, never off the machine. Everything is removed at
teardown, and the teardown checks the table is gone.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from portside.errors import Internal, InvalidArgument
from portside.network.ports import PortPublisher

pytestmark = pytest.mark.root

UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(sys.argv[2].encode() + data, peer)
"""


@dataclass
class Lan:
    """A bridge with the host as gateway, a server namespace on it and a neighbour namespace."""

    tag: str
    bridge: str
    gateway: str
    server_ns: str
    server_ip: str
    neighbour_ns: str
    neighbour_ip: str
    outside_ns: str       # "another host": a namespace routed to through its own veth, not on the bridge
    outside_host_ip: str  # the host's address on that veth
    outside_ip: str
    state_dir: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    publishers: list[PortPublisher] = field(default_factory=list)

    def publisher(self) -> PortPublisher:
        p = PortPublisher(self.tag, state_dir=self.state_dir)
        self.publishers.append(p)
        return p

    def in_ns(self, ns: str, *argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                              timeout=20, **kw)  # type: ignore[call-overload]


def _free_subnet(avoid: ipaddress.IPv4Network | None = None) -> ipaddress.IPv4Network:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        used = [ipaddress.ip_network(f"{r.get('RTA_DST')}/{r['dst_len']}", strict=False)
                for r in ipr.get_routes(family=socket.AF_INET) if r.get("RTA_DST")]
        used += [ipaddress.ip_network(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}", strict=False)
                 for a in ipr.get_addr(family=socket.AF_INET)]
    for _ in range(100):
        net = ipaddress.ip_network(f"198.18.{secrets.randbelow(256)}.0/24")
        if not any(net.overlaps(u) for u in used) and net != avoid:
            return net
    raise RuntimeError("no free 198.18.x.0/24")


def _add_namespace(ipr: object, name: str, bridge_index: int, host_end: str, address: str, gateway: str) -> None:
    from pyroute2 import NetNS, netns

    netns.create(name)
    ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": "eth0", "net_ns_fd": name})  # type: ignore[attr-defined]
    index = ipr.link_lookup(ifname=host_end)[0]  # type: ignore[attr-defined]
    ipr.link("set", index=index, master=bridge_index, state="up")  # type: ignore[attr-defined]
    with NetNS(name) as ns:
        ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        eth = ns.link_lookup(ifname="eth0")[0]
        ns.addr("add", index=eth, address=address, prefixlen=24)
        ns.link("set", index=eth, state="up")
        ns.route("add", dst="0.0.0.0/0", gateway=gateway)


def _add_outside(ipr: object, name: str, host_end: str, host_ip: str, address: str) -> None:
    """A namespace behind a point-to-point veth: /32 addresses and a host route each way, no bridge."""
    from pyroute2 import NetNS, netns

    netns.create(name)
    ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": "eth0", "net_ns_fd": name})  # type: ignore[attr-defined]
    index = ipr.link_lookup(ifname=host_end)[0]  # type: ignore[attr-defined]
    ipr.addr("add", index=index, address=host_ip, prefixlen=32)  # type: ignore[attr-defined]
    ipr.link("set", index=index, state="up")  # type: ignore[attr-defined]
    ipr.route("add", dst=f"{address}/32", oif=index)  # type: ignore[attr-defined]
    with NetNS(name) as ns:
        eth = ns.link_lookup(ifname="eth0")[0]
        ns.addr("add", index=eth, address=address, prefixlen=32)
        ns.link("set", index=eth, state="up")
        ns.route("add", dst=f"{host_ip}/32", oif=eth)


@pytest.fixture
def lan() -> Iterator[Lan]:
    from pyroute2 import IPRoute, netns

    suffix = secrets.token_hex(3)
    net = _free_subnet()
    hosts = list(net.hosts())
    outside = list(_free_subnet(avoid=net).hosts())
    lan = Lan(tag=f"pt{secrets.token_hex(2)}", bridge=f"pb{suffix}", gateway=str(hosts[0]),
              server_ns=f"pns{suffix}", server_ip=str(hosts[1]),
              neighbour_ns=f"pnn{suffix}", neighbour_ip=str(hosts[2]),
              outside_ns=f"pno{suffix}", outside_host_ip=str(outside[0]), outside_ip=str(outside[1]),
              state_dir=tempfile.mkdtemp(prefix="portside-ports-"))
    www = os.path.join(lan.state_dir, "www")
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=lan.bridge, kind="bridge")
            bridge_index = ipr.link_lookup(ifname=lan.bridge)[0]
            ipr.addr("add", index=bridge_index, address=lan.gateway, prefixlen=24)
            ipr.link("set", index=bridge_index, state="up")
            _add_namespace(ipr, lan.server_ns, bridge_index, f"pvs{suffix}", lan.server_ip, lan.gateway)
            _add_namespace(ipr, lan.neighbour_ns, bridge_index, f"pvn{suffix}", lan.neighbour_ip, lan.gateway)
            _add_outside(ipr, lan.outside_ns, f"pvo{suffix}", lan.outside_host_ip, lan.outside_ip)
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write(f"hello from {lan.server_ns}\n")
        lan.procs.append(subprocess.Popen(["ip", "netns", "exec", lan.server_ns, "busybox", "httpd", "-f",
                                           "-p", "80", "-h", www]))
        lan.procs.append(subprocess.Popen(["ip", "netns", "exec", lan.server_ns, sys.executable, "-c",
                                           UDP_ECHO, "5353", "echo:"]))
        lan.procs.append(subprocess.Popen(["ip", "netns", "exec", lan.neighbour_ns, sys.executable, "-c",
                                           UDP_ECHO, "5353", "neighbour:"]))
        _wait_listening(lan)
        yield lan
    finally:
        for p in lan.publishers:
            p.close()
        for proc in lan.procs:
            proc.kill()
            proc.wait()
        table = f"{lan.tag}_ports"
        leftover = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True).returncode == 0
        if leftover:
            subprocess.run(["nft", "delete", "table", "ip", table], check=False)
        for ns in (lan.server_ns, lan.neighbour_ns, lan.outside_ns):
            if ns in netns.listnetns():
                netns.remove(ns)
        with IPRoute() as ipr:
            for index in ipr.link_lookup(ifname=lan.bridge):
                ipr.link("del", index=index)
        subprocess.run(["rm", "-rf", lan.state_dir], check=True)
    assert not leftover, f"table ip {table} left behind"


def _wait_listening(lan: Lan) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tcp = lan.in_ns(lan.server_ns, "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1/")
        if tcp.returncode == 0 and lan.in_ns(lan.server_ns, sys.executable, "-c", _udp_probe("127.0.0.1", 5353)).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("servers in the namespace did not start")


def _udp_probe(host: str, port: int) -> str:
    return (f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5); "
            f"s.sendto(b'ping', ('{host}', {port})); assert s.recv(100) == b'echo:ping'")


def _http_get(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head
    return body.decode()


def _udp_echo(host: str, port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(b"ping", (host, port))
        return s.recv(100)


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing holds now, and whose successor is free too (for range tests)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("0.0.0.0", 0))
            port = int(s.getsockname()[1])
        if port < 0xFFFF and _bindable(port + 1, kind):
            return port
    raise RuntimeError("no free port pair")


def _bindable(port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError as e:
            assert e.errno == errno.EADDRINUSE
            return False
    return True


def _rules(lan: Lan) -> list[dict[str, object]]:
    """The rules of our table ([] when there is no table)."""
    out = subprocess.run(["nft", "-j", "list", "table", "ip", f"{lan.tag}_ports"], capture_output=True, text=True)
    if out.returncode != 0:
        return []
    return [item["rule"] for item in json.loads(out.stdout)["nftables"] if "rule" in item]


def _rules_of(lan: Lan, container_id: str) -> list[dict[str, object]]:
    return [r for r in _rules(lan) if r.get("comment") == f"portside container {container_id}"]


def _cid() -> str:
    return secrets.token_hex(32)


def _tcp(port: int | str, ip: str = "") -> dict[str, list[dict[str, str]]]:
    return {"80/tcp": [{"HostIp": ip, "HostPort": str(port)}]}


def test_published_tcp_port_is_reachable_from_loopback_the_bridge_address_and_the_bridge(lan: Lan) -> None:
    publisher = lan.publisher()
    port = _free_port()
    cid = _cid()
    ports = publisher.publish(cid, lan.server_ip, lan.bridge, _tcp(port))
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    expected = f"hello from {lan.server_ns}\n"
    assert _http_get("127.0.0.1", port) == expected
    assert _http_get(lan.gateway, port) == expected
    # a neighbour on the bridge, through the host's address (prerouting, masqueraded hairpin)
    got = lan.in_ns(lan.neighbour_ns, "busybox", "wget", "-q", "-O", "-", f"http://{lan.gateway}:{port}/")
    assert got.stdout == expected, got.stderr
    # the container reaching itself through the host's address (hairpin to itself)
    got = lan.in_ns(lan.server_ns, "busybox", "wget", "-q", "-O", "-", f"http://{lan.gateway}:{port}/")
    assert got.stdout == expected, got.stderr
    # the port is held on the host: nothing else can bind it while it is published
    assert not _bindable(port)
    assert _rules_of(lan, cid)
    publisher.unpublish(cid)
    assert _rules(lan) == []
    assert _bindable(port)
    with pytest.raises(OSError):
        _http_get("127.0.0.1", port)
    publisher.unpublish(cid)  # idempotent


def test_published_port_is_reachable_from_another_host(lan: Lan) -> None:
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        if f.read().strip() != "1":
            # host-global: the core turns it on with its first network; a test must not flip it under others
            pytest.skip("net.ipv4.ip_forward is off on this host")
    publisher = lan.publisher()
    port = _free_port()
    cid = _cid()
    publisher.publish(cid, lan.server_ip, lan.bridge, _tcp(port))
    # prerouting DNAT, then forwarded into the bridge (not masqueraded: the source is not the bridge's)
    got = lan.in_ns(lan.outside_ns, "busybox", "wget", "-q", "-O", "-", f"http://{lan.outside_host_ip}:{port}/")
    assert got.stdout == f"hello from {lan.server_ns}\n", got.stderr
    from pyroute2 import Conntrack
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    with Conntrack() as ct:
        flows = list(ct.dump_entries(tuple_orig=NFCTAttrTuple(proto=socket.IPPROTO_TCP, dport=port)))
    replies = {(e.tuple_reply.saddr, e.tuple_reply.daddr) for e in flows if e.tuple_orig.saddr == lan.outside_ip}
    assert replies == {(lan.server_ip, lan.outside_ip)}
    publisher.unpublish(cid)
    got = lan.in_ns(lan.outside_ns, "busybox", "wget", "-q", "-T", "2", "-O", "-", f"http://{lan.outside_host_ip}:{port}/")
    assert got.returncode != 0


def test_ephemeral_ports_come_from_the_kernel_range(lan: Lan) -> None:
    publisher = lan.publisher()
    low, high = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    cid = _cid()
    ports = publisher.publish(cid, lan.server_ip, lan.bridge,
                              {"80/tcp": [{"HostIp": "", "HostPort": ""}, {"HostIp": "", "HostPort": "0"}]})
    assert [b["HostIp"] for b in ports["80/tcp"]] == ["0.0.0.0", "0.0.0.0"]
    host_ports = [int(b["HostPort"]) for b in ports["80/tcp"]]
    assert len(set(host_ports)) == 2 and all(low <= p <= high for p in host_ports)
    for p in host_ports:
        assert _http_get("127.0.0.1", p) == f"hello from {lan.server_ns}\n"
    assert publisher.published(cid) == ports
    publisher.unpublish(cid)
    assert publisher.published(cid) == {}


def test_udp_port(lan: Lan) -> None:
    publisher = lan.publisher()
    port = _free_port(socket.SOCK_DGRAM)
    cid = _cid()
    ports = publisher.publish(cid, lan.server_ip, lan.bridge, {"5353/udp": [{"HostIp": "", "HostPort": str(port)}]})
    assert ports == {"5353/udp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    assert _udp_echo("127.0.0.1", port) == b"echo:ping"
    # a client that keeps sending from one socket follows the port to the neighbour when it moves there:
    # its flow's conntrack entry (which holds the old NAT) is forgotten
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(3)
        client.sendto(b"one", ("127.0.0.1", port))
        assert client.recv(100) == b"echo:one"
        publisher.unpublish(cid)
        moved = _cid()
        publisher.publish(moved, lan.neighbour_ip, lan.bridge, {"5353/udp": [{"HostIp": "", "HostPort": str(port)}]})
        client.sendto(b"two", ("127.0.0.1", port))
        assert client.recv(100) == b"neighbour:two"
        publisher.unpublish(moved)
    publisher.publish(cid, lan.server_ip, lan.bridge, {"5353/udp": [{"HostIp": "", "HostPort": str(port)}]})
    assert _udp_echo(lan.gateway, port) == b"echo:ping"
    got = lan.in_ns(lan.neighbour_ns, sys.executable, "-c", _udp_probe(lan.gateway, port))
    assert got.returncode == 0, got.stderr
    # udp and tcp are separate spaces: the same number over tcp is still free
    other = _cid()
    publisher.publish(other, lan.neighbour_ip, lan.bridge, _tcp(port))
    publisher.unpublish(other)
    publisher.unpublish(cid)
    assert _rules(lan) == []


def test_host_ip_binding_and_port_ranges(lan: Lan) -> None:
    publisher = lan.publisher()
    port = _free_port()
    cid = _cid()
    ports = publisher.publish(cid, lan.server_ip, lan.bridge, _tcp(port, "127.0.0.1"))
    assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert _http_get("127.0.0.1", port) == f"hello from {lan.server_ns}\n"
    with pytest.raises(ConnectionRefusedError):  # only 127.0.0.1 was published
        _http_get(lan.gateway, port)
    # -p 8000-8001:80-81 arrives as one binding per port
    first = _free_port()
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", first))  # the first of the range is taken: the next one is given
        ranged = _cid()
        ports = publisher.publish(ranged, lan.server_ip, lan.bridge, _tcp(f"{first}-{first + 1}"))
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(first + 1)}]}
    assert _http_get("127.0.0.1", first + 1) == f"hello from {lan.server_ns}\n"
    publisher.unpublish(cid)
    publisher.unpublish(ranged)


def test_taken_ports_are_refused_with_dockers_error_and_nothing_is_published(lan: Lan) -> None:
    publisher = lan.publisher()
    port = _free_port()
    web = _cid()
    publisher.publish(web, lan.server_ip, lan.bridge, _tcp(port))
    before = _rules(lan)

    # taken by another container of ours; the first binding of the request was free and must not stay
    other, spare = _cid(), _free_port()
    bindings = {"80/tcp": [{"HostIp": "", "HostPort": str(spare)}], "81/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    with pytest.raises(Internal) as e:
        publisher.publish(other, lan.neighbour_ip, lan.bridge, bindings, endpoint="web2")
    assert str(e.value) == (f"driver failed programming external connectivity on endpoint web2 ({other}): "
                            f"Bind for 0.0.0.0:{port} failed: port is already allocated")
    assert _rules(lan) == before and _bindable(spare)
    assert not os.path.exists(os.path.join(lan.state_dir, f"{other}.json"))
    # a specific address overlaps 0.0.0.0
    with pytest.raises(Internal, match=f"Bind for 127.0.0.1:{port} failed: port is already allocated"):
        publisher.publish(other, lan.neighbour_ip, lan.bridge, _tcp(port, "127.0.0.1"))

    # taken by something on the host that is not ours
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", spare))
        squatter.listen()
        with pytest.raises(Internal) as e:
            publisher.publish(other, lan.neighbour_ip, lan.bridge, _tcp(spare))
    assert str(e.value) == (f"driver failed programming external connectivity on endpoint {other} ({other}): "
                            f"Error starting userland proxy: listen tcp4 0.0.0.0:{spare}: bind: address already in use")
    assert _rules(lan) == before

    # an address that is not the host's
    with pytest.raises(Internal, match="bind: cannot assign requested address"):
        publisher.publish(other, lan.neighbour_ip, lan.bridge, _tcp(spare, "192.0.2.1"))
    with pytest.raises(InvalidArgument, match='invalid port specification: "80/tcpx"'):
        publisher.publish(other, lan.neighbour_ip, lan.bridge, {"80/tcpx": []})
    assert _rules(lan) == before
    publisher.unpublish(web)


def test_unpublish_removes_exactly_the_containers_rules(lan: Lan) -> None:
    publisher = lan.publisher()
    a, b = _cid(), _cid()
    pa = publisher.publish(a, lan.server_ip, lan.bridge, _tcp(""))
    publisher.publish(b, lan.neighbour_ip, lan.bridge, {"81/tcp": [{"HostIp": "", "HostPort": ""}],
                                                        "82/udp": [{"HostIp": "", "HostPort": ""}]})
    # per mapping: one DNAT rule and one masquerade rule
    assert len(_rules_of(lan, a)) == 2 and len(_rules_of(lan, b)) == 4
    publisher.unpublish(b)
    assert _rules_of(lan, b) == [] and len(_rules_of(lan, a)) == 2
    assert _http_get("127.0.0.1", int(pa["80/tcp"][0]["HostPort"])) == f"hello from {lan.server_ns}\n"
    publisher.unpublish(a)
    assert _rules(lan) == []


def test_restart_keeps_allocations_and_sweep_drops_the_dead(lan: Lan) -> None:
    crashed = lan.publisher()
    alive, dead = _cid(), _cid()
    port_alive = int(crashed.publish(alive, lan.server_ip, lan.bridge, _tcp(""))["80/tcp"][0]["HostPort"])
    port_dead = int(crashed.publish(dead, lan.neighbour_ip, lan.bridge, _tcp(""))["80/tcp"][0]["HostPort"])
    crashed.close()  # the daemon dies: its sockets go, the rules and the state stay

    restarted = lan.publisher()
    # before any sweep the allocations are known: a port of ours is not handed out again
    with pytest.raises(Internal, match=f"Bind for 0.0.0.0:{port_alive} failed: port is already allocated"):
        restarted.publish(_cid(), lan.neighbour_ip, lan.bridge, _tcp(port_alive))
    restarted.sweep({alive})
    assert _rules_of(lan, dead) == []
    assert len(_rules_of(lan, alive)) == 2  # once, not twice
    assert _http_get("127.0.0.1", port_alive) == f"hello from {lan.server_ns}\n"
    assert _bindable(port_dead) and not _bindable(port_alive)
    assert not os.path.exists(os.path.join(lan.state_dir, f"{dead}.json"))
    restarted.sweep({alive})  # again: nothing changes, nothing doubles
    assert len(_rules_of(lan, alive)) == 2
    # the table flushed behind our back (a firewall reload): the next sweep puts it back from the state
    subprocess.run(["nft", "delete", "table", "ip", f"{lan.tag}_ports"], check=True)
    restarted.sweep({alive})
    assert len(_rules_of(lan, alive)) == 2
    assert _http_get("127.0.0.1", port_alive) == f"hello from {lan.server_ns}\n"
    restarted.sweep(set())
    assert _rules(lan) == [] and os.listdir(lan.state_dir) == ["www"]


def test_the_nft_command_serves_where_libnftables_is_not_used(lan: Lan) -> None:
    nft = shutil.which("nft")
    assert nft is not None
    publisher = PortPublisher(lan.tag, state_dir=lan.state_dir, nft=nft)  # a path: the command, not the library
    lan.publishers.append(publisher)
    cid = _cid()
    port = int(publisher.publish(cid, lan.server_ip, lan.bridge, _tcp(""))["80/tcp"][0]["HostPort"])
    assert len(_rules_of(lan, cid)) == 2
    assert _http_get("127.0.0.1", port) == f"hello from {lan.server_ns}\n"
    publisher.unpublish(cid)
    assert _rules(lan) == []
