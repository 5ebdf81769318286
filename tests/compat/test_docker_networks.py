"""The real docker CLI's network commands against a portside daemon: create, ls, inspect, connect,
disconnect, rm, and run --network/--ip/--network-alias, with traffic between two containers."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers]

HEX64 = re.compile(r"^[0-9a-f]{64}$")


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
