"""The real docker CLI's network commands against a portside daemon: create, ls, inspect, connect,
disconnect, rm, and run --network/--ip/--network-alias, with traffic between two containers."""

from __future__ import annotations

import json
import re
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers]

HEX64 = re.compile(r"^[0-9a-f]{64}$")
HTTPD_ETC = ["httpd", "-f", "-p", "80", "-h", "/etc"]


@pytest.fixture
def docker(daemon, docker_client):
    return docker_client(daemon.host)


@pytest.fixture
def busybox(docker, busybox_tar: str) -> str:
    return docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()


def test_network_commands_and_traffic(docker, busybox):
    nid = docker("network", "create", "--subnet", "10.254.99.0/24", "--label", "team=core", "appnet").out.strip()
    assert HEX64.match(nid)
    table = docker("network", "ls").out.splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert sorted(line.split()[1] for line in table[1:]) == ["appnet", "bridge", "host", "none"]
    assert docker("network", "ls", "-q", "--filter", "label=team=core").out == nid[:12] + "\n"
    assert docker("network", "ls", "--format", "{{.Name}} {{.Driver}}", "-f", "type=custom").out == \
        "appnet bridge\n"
    (doc,) = json.loads(docker("network", "inspect", "appnet").out)
    assert doc["Id"] == nid and doc["IPAM"]["Config"] == [{"Subnet": "10.254.99.0/24", "Gateway": "10.254.99.1"}]
    docker("run", "-d", "--name", "web", "--network", "appnet", "--ip", "10.254.99.20", "--network-alias", "www",
           "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    assert docker("inspect", "-f", "{{.NetworkSettings.Networks.appnet.IPAddress}}", "web").out == "10.254.99.20\n"
    assert docker("inspect", "-f", "{{json .NetworkSettings.Networks.appnet.Aliases}}", "web").out == '["www"]\n'
    r = docker("run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
               "timeout 3 wget -q -O- http://10.254.99.20/hostname; exit $?", check=False)
    assert r.rc == 0 and r.out.strip() == docker("inspect", "-f", "{{.Id}}", "web").out.strip()[:12]
    members = docker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
                     "appnet").out
    assert members == "web 10.254.99.20/24\n"
    # a container on the default bridge gains and loses an interface on appnet
    docker("run", "-d", "--name", "box", "busybox", "sleep", "300")
    docker("network", "connect", "--ip", "10.254.99.30", "appnet", "box")
    assert "10.254.99.30/24" in docker("exec", "box", "ip", "addr").out
    r = docker("exec", "box", "sh", "-c", "timeout 3 wget -q -O- http://10.254.99.20/hostname; exit $?", check=False)
    assert r.rc == 0
    docker("network", "disconnect", "appnet", "box")
    assert "10.254.99.30" not in docker("exec", "box", "ip", "addr").out
    r = docker("network", "rm", "appnet", check=False)
    assert r.rc == 1 and "has active endpoints" in r.err
    docker("rm", "-f", "web", "box")
    assert docker("network", "rm", "appnet").out == "appnet\n"
    r = docker("network", "inspect", "appnet", check=False)
    assert r.rc == 1 and "network appnet not found" in r.err


def test_run_network_container_mode(docker, busybox):
    docker("network", "create", "joinnet")
    peer = docker("run", "-d", "--name", "peer", "--network", "joinnet", "busybox", *HTTPD_ETC).out.strip()
    # one network stack: the peer's server on the joiner's loopback, the peer's hostname and /etc/hosts
    r = docker("run", "--rm", "--network", "container:peer", "busybox", "sh", "-c",
               "hostname; wget -q -O - http://127.0.0.1/hostname; cat /etc/hosts")
    lines = r.out.splitlines()
    assert lines[:2] == [peer[:12], peer[:12]]
    assert "\n".join(lines[2:]) + "\n" == docker("exec", "peer", "cat", "/etc/hosts").out
    docker("run", "-d", "--name", "joiner", "--network", "container:peer", "busybox", "sleep", "300")
    assert docker("inspect", "-f", "{{.HostConfig.NetworkMode}} {{json .NetworkSettings.Networks}}",
                  "joiner").out == f"container:{peer} {{}}\n"
    assert docker("ps", "--format", "{{.Names}}|{{.Networks}}|{{.Ports}}", "-f", "name=joiner").out == "joiner||\n"
    r = docker("network", "connect", "joinnet", "joiner", check=False)
    assert r.rc == 1 and r.err == ("Error response from daemon: container sharing network namespace with another "
                                   "container or host cannot be connected to any other network\n")
    for flags, message in [(["-p", "80"], "conflicting options: port publishing and the container type network mode"),
                           (["--hostname", "h"], "conflicting options: hostname and the network mode"),
                           (["--dns", "1.1.1.1"], "conflicting options: dns and the network mode"),
                           (["--add-host", "a:1.2.3.4"],
                            "conflicting options: custom host-to-IP mapping and the network mode"),
                           (["--mac-address", "02:42:ac:11:00:09"], "conflicting options: mac-address and the network mode"),
                           (["--network-alias", "a"], "network-scoped aliases are only supported for user-defined networks"),
                           (["--link", "peer:a"], "conflicting options: container type network can't be used with links")]:
        r = docker("run", "--rm", "--network", "container:peer", *flags, "busybox", "true", check=False)
        assert r.rc == 125 and message in r.err, (flags, r.err)
    # the peer stops: the joiner keeps running with lo only; it cannot start again until the peer runs
    docker("stop", "-t", "0", "peer")
    deadline = time.monotonic() + 10
    while "eth0" in docker("exec", "joiner", "ip", "-o", "link").out and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [line.split()[1] for line in docker("exec", "joiner", "ip", "-o", "link").out.splitlines()] == ["lo:"]
    docker("stop", "-t", "0", "joiner")
    r = docker("start", "joiner", check=False)
    assert r.rc == 1 and f"cannot join network of a non running container: {peer}" in r.err
    docker("start", "peer")
    docker("start", "joiner")
    assert "eth0" in docker("exec", "joiner", "ip", "-o", "link").out
    docker("rm", "-f", "joiner", "peer")
    docker("network", "rm", "joinnet")
