"""The real docker CLI's --dns, --dns-search, --dns-option, --add-host, --hostname, --domainname against portside."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers]


@pytest.fixture
def docker(daemon, docker_client):
    return docker_client(daemon.host)


@pytest.fixture
def busybox(docker, busybox_tar: str) -> str:
    return docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()


def test_dns_and_hosts_flags(docker, busybox):
    r = docker("run", "--rm", "--dns", "192.0.2.53", "--dns-search", "corp.example", "--dns-option", "ndots:3",
               "--add-host", "db:10.0.0.9", "--add-host", "db6:fd00::9", "--hostname", "web",
               "--domainname", "corp.example", "busybox", "sh", "-c",
               "cat /etc/resolv.conf; tail -n 3 /etc/hosts; cat /etc/hostname; hostname")
    # the last hosts line is the container's own address on the default bridge, as dockerd writes it
    assert re.fullmatch(r"search corp.example\nnameserver 192.0.2.53\noptions ndots:3\n"
                        r"10.0.0.9\tdb\nfd00::9\tdb6\n\d+\.\d+\.\d+\.\d+\tweb.corp.example web\nweb\nweb\n", r.out), r.out


def test_add_host_gateway_is_the_default_bridge_gateway(docker, busybox):
    r = docker("run", "--rm", "--add-host", "gw:host-gateway", "busybox", "grep", "gw$", "/etc/hosts")
    gateway = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge").out.strip()
    assert gateway and r.out == f"{gateway}\tgw\n"
