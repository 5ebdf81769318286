"""portside network create/ls/inspect/rm/prune/connect/disconnect: Docker's output, messages and exit codes."""

from __future__ import annotations

import json

from helpers import Daemon


def test_network_cli(daemon: Daemon, busybox_image: str) -> None:
    nid = daemon.cli("network", "create", "--internal", "-o", "com.docker.network.bridge.name=ptcli" +
                     daemon.network_tag[-4:], "quiet").stdout.decode().strip()
    assert len(nid) == 64
    out = daemon.cli("network", "ls").stdout.decode().splitlines()
    assert out[0] == "NETWORK ID     NAME      DRIVER    SCOPE"
    assert f"{nid[:12]}   quiet     bridge    local" in out
    assert daemon.cli("network", "ls", "-q", "--no-trunc", "-f", "name=qui").stdout.decode() == nid + "\n"
    assert daemon.cli("network", "ls", "--format", "{{.Name}} {{.Internal}}", "-f", "type=custom").stdout == \
        b"quiet true\n"
    (doc,) = json.loads(daemon.cli("network", "inspect", "quiet").stdout)
    assert doc["Internal"] is True and doc["Options"] == {"com.docker.network.bridge.name": "ptcli" +
                                                          daemon.network_tag[-4:]}
    r = daemon.cli("network", "create", "quiet", check=False)
    assert r.returncode == 1 and r.stderr == b"Error response from daemon: network with name quiet already exists\n"
    daemon.cli("create", "--name", "idle", "--network", "quiet", "busybox", "true")
    daemon.cli("network", "connect", "bridge", "idle")  # not running: recorded for its next start
    networks = json.loads(daemon.cli("inspect", "-f", "{{json .NetworkSettings.Networks}}", "idle").stdout)
    assert set(networks) == {"quiet", "bridge"}
    daemon.cli("network", "disconnect", "bridge", "idle")
    r = daemon.cli("network", "prune", "-f")
    assert r.stdout == b""  # quiet is used by idle
    daemon.cli("rm", "idle")
    r = daemon.cli("network", "rm", "quiet", "nonesuch", check=False)
    assert r.returncode == 1 and r.stdout == b"quiet\n"
    assert r.stderr == b"Error response from daemon: network nonesuch not found\n"
    daemon.cli("network", "create", "spare")
    assert daemon.cli("network", "prune", "-f").stdout == b"Deleted Networks:\nspare\n\n"
    r = daemon.cli("network", "rm", "host", check=False)
    assert r.stderr == b"Error response from daemon: host is a pre-defined network and cannot be removed\n"


def test_containers_on_a_user_network_reach_each_other_by_name_and_alias(daemon: Daemon, busybox_image: str) -> None:
    daemon.cli("network", "create", "front")
    try:
        daemon.cli("run", "-d", "--name", "web", "--network", "front", "--network-alias", "www", "busybox",
                   "sh", "-c", "mkdir /www && echo hello-by-name > /www/index.html && httpd -f -p 80 -h /www")
        ip = json.loads(daemon.cli("inspect", "web").stdout)[0]["NetworkSettings"]["Networks"]["front"]["IPAddress"]
        # busybox's nslookup asks the network's DNS server; (Debian's static busybox wget cannot resolve
        # names, and crashes with -T: it fetches by address, without a timeout)
        for name in ("web", "www", "web.front"):
            r = daemon.cli("run", "--rm", "--network", "front", "busybox", "nslookup", name)
            assert f"Address: {ip}" in r.stdout.decode(), (name, r.stdout)
        r = daemon.cli("run", "--rm", "--network", "front", "busybox", "wget", "-q", "-O", "-",
                       f"http://{ip}/")
        assert r.stdout == b"hello-by-name\n"
        r = daemon.cli("run", "--rm", "--network", "front", "busybox", "cat", "/etc/resolv.conf")
        gateway = json.loads(daemon.cli("network", "inspect", "front").stdout)[0]["IPAM"]["Config"][0]["Gateway"]
        assert f"nameserver {gateway}\n" in r.stdout.decode()
        # the default bridge has no embedded DNS, as Docker's: the name does not resolve there
        r = daemon.cli("run", "--rm", "busybox", "sh", "-c", "grep -c web /etc/hosts", check=False)
        assert r.stdout == b"0\n"
    finally:
        daemon.cli("rm", "-f", "web", check=False)
        daemon.cli("network", "rm", "front", check=False)


def test_a_published_port_is_reached_from_the_host(daemon: Daemon, busybox_image: str) -> None:
    import urllib.request
    daemon.cli("run", "-d", "--name", "pub", "-p", "127.0.0.1::80", "busybox",
               "sh", "-c", "mkdir /www && echo published > /www/index.html && httpd -f -p 80 -h /www")
    try:
        line = daemon.cli("port", "pub", "80").stdout.decode().strip()
        host, _, port = line.rpartition(":")
        assert host == "127.0.0.1" and port.isdigit()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
            assert reply.read() == b"published\n"
        ps = daemon.cli("ps", "--format", "{{.Ports}}", "-f", "name=pub").stdout.decode()
        assert ps == f"127.0.0.1:{port}->80/tcp\n"
    finally:
        daemon.cli("rm", "-f", "pub", check=False)
