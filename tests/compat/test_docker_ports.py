"""Published ports end to end: ``run -p``/``-P``, ``port``, ``ps``'s PORTS, through the portside CLI and docker CLI 28.

A busybox ``httpd`` in a container on the daemon's default bridge (its own
per-test bridge and nft tables, from the test daemon's network tag) is reached
from the host at 127.0.0.1:HOSTPORT; a port already taken is refused with
Docker's message and leaves no container running and no rule; ``rm`` frees it.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers,
              pytest.mark.skipif(importlib.util.find_spec("portside.containers.networking") is None,
                                 reason="needs the networking core (containers/networking.py) to call the publisher")]

HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]


@pytest.fixture
def docker(daemon, docker_client):
    return docker_client(daemon.host)


@pytest.fixture
def busybox(docker, busybox_tar: str) -> str:
    return docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str = "/hostname", host: str = "127.0.0.1") -> str:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if b" 200 " in head.split(b"\r\n")[0]:
                return body.decode()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing answered on {host}:{port}")
        time.sleep(0.1)


def _rules_mentioning(daemon, cid: str) -> int:
    out = subprocess.run(["nft", "-j", "list", "table", "ip", f"{daemon.network_tag}_ports"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return 0
    return sum(1 for item in json.loads(out.stdout)["nftables"]
               if cid in str(item.get("rule", {}).get("comment", "")))


def test_published_port_through_the_docker_cli(daemon, docker, busybox) -> None:
    port = _free_port()
    cid = docker("run", "-d", "--name", "web", "--hostname", "webhost", "-p", f"{port}:80", "busybox", *HTTPD).out.strip()
    try:
        assert _get(port) == "webhost\n"
        assert docker("port", "web").out == f"80/tcp -> 0.0.0.0:{port}\n"
        assert docker("port", "web", "80/tcp").out == f"0.0.0.0:{port}\n"
        r = docker("port", "web", "81", check=False)
        assert (r.rc, r.err) == (1, "Error: No public port '81' published for web\n")
        assert docker("ps", "--format", "{{.Ports}}", "--filter", "name=web").out == f"0.0.0.0:{port}->80/tcp\n"
        ports = json.loads(docker("inspect", "web").out)[0]["NetworkSettings"]["Ports"]
        assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}

        # the same host port again: Docker's error, nothing left running, no rule for it
        r = docker("run", "-d", "--name", "web2", "-p", f"{port}:80", "busybox", *HTTPD, check=False)
        assert r.rc == 125
        assert "driver failed programming external connectivity on endpoint web2 (" in r.err
        assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in r.err
        state = json.loads(docker("inspect", "web2").out)[0]["State"]
        assert not state["Running"]
        web2 = json.loads(docker("inspect", "web2").out)[0]["Id"]
        assert _rules_mentioning(daemon, web2) == 0
        assert _get(port) == "webhost\n"  # the first one still serves
    finally:
        docker("rm", "-f", "web", "web2", check=False)
    assert _rules_mentioning(daemon, cid) == 0
    with socket.socket() as s:
        s.bind(("0.0.0.0", port))  # freed


def test_publish_all_and_ephemeral_ports_through_the_portside_cli(daemon, busybox) -> None:
    cid = daemon.cli("run", "-d", "--name", "eph", "--hostname", "ephhost", "--expose", "80", "--expose", "90/udp",
                     "-P", "busybox", *HTTPD).stdout.decode().strip()
    try:
        lines = daemon.cli("port", "eph").stdout.decode().splitlines()
        assert len(lines) == 2 and lines[0].startswith("80/tcp -> 0.0.0.0:") and lines[1].startswith("90/udp -> 0.0.0.0:")
        low, high = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
        port = int(lines[0].rsplit(":", 1)[1])
        assert low <= port <= high
        assert _get(port) == "ephhost\n"
        column = daemon.cli("ps", "--format", "{{.Ports}}", "--filter", "name=eph").stdout.decode().strip()
        assert column == f"0.0.0.0:{port}->80/tcp, 0.0.0.0:{lines[1].rsplit(':', 1)[1]}->90/udp"
        assert _rules_mentioning(daemon, cid) == 4
        daemon.cli("stop", "-t", "1", "eph")
        assert _rules_mentioning(daemon, cid) == 0  # stopped: unpublished
        assert daemon.cli("port", "eph").stdout == b""
    finally:
        daemon.cli("rm", "-f", "eph", check=False)


def test_docker_cli_ports_on_a_user_network(daemon, docker, busybox) -> None:
    """docker run -p with an address and an ephemeral port, UDP and a range, --expose; docker port and ps."""
    udp, low = _free_port(), _free_port()
    while True:  # two consecutive free ports for the range
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("0.0.0.0", low))
                b.bind(("0.0.0.0", low + 1))
            break
        except OSError:
            low = _free_port()
    docker("network", "create", "portnet")
    docker("run", "-d", "--name", "multi", "--network", "portnet", "--hostname", "multihost",
           "-p", "127.0.0.1::80", "-p", f"{udp}:53/udp", "-p", f"{low}-{low + 1}:90-91", "--expose", "7000",
           "busybox", *HTTPD)
    try:
        lines = docker("port", "multi").out.splitlines()
        eph = int(next(line for line in lines if line.startswith("80/tcp -> 127.0.0.1:")).rsplit(":", 1)[1])
        assert sorted(lines) == sorted([f"53/udp -> 0.0.0.0:{udp}", f"80/tcp -> 127.0.0.1:{eph}",
                                        f"90/tcp -> 0.0.0.0:{low}", f"91/tcp -> 0.0.0.0:{low + 1}"])
        assert docker("port", "multi", "53/udp").out == f"0.0.0.0:{udp}\n"
        assert _get(eph) == "multihost\n"
        ports = json.loads(docker("inspect", "multi").out)[0]["NetworkSettings"]["Ports"]
        assert ports == {"53/udp": [{"HostIp": "0.0.0.0", "HostPort": str(udp)}], "7000/tcp": None,
                         "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(eph)}],
                         "90/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(low)}],
                         "91/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(low + 1)}]}
        column = docker("ps", "--format", "{{.Ports}}", "--filter", "name=multi").out.strip()
        # as dockerd 20.10's (less its [::] lines): mapped ports one by one, after the unpublished ones
        assert column.split(", ") == ["7000/tcp", f"0.0.0.0:{udp}->53/udp", f"127.0.0.1:{eph}->80/tcp",
                                      f"0.0.0.0:{low}->90/tcp", f"0.0.0.0:{low + 1}->91/tcp"]
        # live connect/disconnect keeps the published ports of the first network
        docker("network", "connect", "bridge", "multi")
        assert "eth1" in docker("exec", "multi", "ip", "-o", "link").out
        docker("network", "disconnect", "bridge", "multi")
        assert "eth1" not in docker("exec", "multi", "ip", "-o", "link").out
        assert _get(eph) == "multihost\n"
    finally:
        docker("rm", "-f", "multi", check=False)
        docker("network", "rm", "portnet", check=False)
