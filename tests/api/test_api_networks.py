"""Networks through the Engine API with real containers: bridges, user networks, isolation, IPAM, cleanup."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.parse
from typing import Any

import pytest

from helpers import Daemon, remove_containers, start_daemon, stop_daemon, stop_monitor
from nethelpers import leftovers, make_outside
from portside.network import netns


def q(filters: dict[str, list[str]]) -> str:
    return urllib.parse.quote(json.dumps(filters))


def nft_rules(tag: str) -> list[str]:
    out = subprocess.run(["nft", "-j", "list", "table", "ip", tag], capture_output=True, text=True, check=True)
    return [json.dumps(item["rule"]["expr"], sort_keys=True) for item in json.loads(out.stdout)["nftables"]
            if "rule" in item]


def exec_root(d: Daemon) -> str:
    return os.path.dirname(d.socket)


def create_network(d: Daemon, name: str, **body: Any) -> str:
    status, _, data = d.api.request("POST", "/networks/create", {"Name": name, **body})
    assert status == 201, data
    return json.loads(data)["Id"]


def ip_of(d: Daemon, container: str, network: str) -> str:
    doc = d.api.json("GET", f"/containers/{container}/json")
    return doc["NetworkSettings"]["Networks"][network]["IPAddress"]


def fetch(d: Daemon, network: str, url: str, *extra: str) -> tuple[int, str]:
    # busybox's own -T timeout crashes this static build: timeout(1) bounds it instead, not as pid 1
    # (busybox's timeout execs the command in its own process, and pid 1 ignores the SIGTERM)
    r = d.cli("run", "--rm", "--network", network, *extra, "busybox", "sh", "-c",
              f"timeout 3 wget -q -O- {url}; exit $?", timeout=30, check=False)
    return r.returncode, r.stdout.decode()


def serve(d: Daemon, name: str, network: str, *extra: str) -> None:
    """busybox httpd on port 80 of a container, serving its /etc (hostname is its short ID)."""
    d.cli("run", "-d", "--name", name, "--network", network, *extra, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")


def test_predefined_networks_and_lifecycle(daemon: Daemon, busybox_image: str) -> None:
    names = {n["Name"]: n for n in daemon.api.json("GET", "/networks")}
    assert {"bridge", "host", "none"} <= set(names)
    assert names["none"]["Driver"] == "null" and names["host"]["Driver"] == "host"
    nid = create_network(daemon, "web", Labels={"tier": "front"}, Options={})
    doc = daemon.api.json("GET", "/networks/web")
    assert doc["Id"] == nid and doc["Driver"] == "bridge" and doc["Scope"] == "local"
    assert doc["Labels"] == {"tier": "front"} and doc["Internal"] is False and doc["Containers"] == {}
    (config,) = doc["IPAM"]["Config"]
    subnet, gateway = config["Subnet"], config["Gateway"]
    assert gateway.rsplit(".", 1)[1] == "1" and subnet.startswith(gateway.rsplit(".", 2)[0])
    status, _, data = daemon.api.request("POST", "/networks/create", {"Name": "web"})
    assert status == 409 and json.loads(data)["message"] == "network with name web already exists"
    status, _, data = daemon.api.request("POST", "/networks/create", {"Name": "x", "Driver": "nope"})
    assert status == 404 and json.loads(data)["message"] == 'plugin "nope" not found'
    status, _, data = daemon.api.request("POST", "/networks/create",
                                         {"Name": "clash", "IPAM": {"Config": [{"Subnet": subnet}]}})
    assert status == 409, data
    status, _, data = daemon.api.request("POST", "/networks/create", {
        "Name": "hijack", "Options": {"com.docker.network.bridge.name": "lo"}})
    assert status == 409 and "already in use" in json.loads(data)["message"]  # never someone else's link
    # filters
    custom = daemon.api.json("GET", "/networks?filters=" + q({"type": ["custom"]}))
    assert [n["Name"] for n in custom] == ["web"]
    labelled = daemon.api.json("GET", "/networks?filters=" + q({"label": ["tier=front"]}))
    assert [n["Name"] for n in labelled] == ["web"]
    assert daemon.api.json("GET", "/networks?filters=" + q({"driver": ["null"]}))[0]["Name"] == "none"
    dangling = daemon.api.json("GET", "/networks?filters=" + q({"dangling": ["true"]}))
    assert [n["Name"] for n in dangling] == ["web"]
    status, _, data = daemon.api.request("DELETE", "/networks/bridge")
    assert status == 403 and json.loads(data)["message"] == "bridge is a pre-defined network and cannot be removed"
    assert daemon.api.request("DELETE", f"/networks/{nid[:12]}")[0] == 204
    status, _, data = daemon.api.request("GET", "/networks/web")
    assert status == 404 and json.loads(data)["message"] == "network web not found"


def test_containers_on_a_user_network_talk_and_other_networks_cannot(daemon: Daemon, busybox_image: str) -> None:
    create_network(daemon, "front")
    create_network(daemon, "back")
    serve(daemon, "web", "front")
    ip = ip_of(daemon, "web", "front")
    doc = daemon.api.json("GET", "/containers/web/json")["NetworkSettings"]["Networks"]["front"]
    assert doc["MacAddress"] == "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))
    assert doc["DNSNames"][0] == "web" and doc["Gateway"].endswith(".1") and doc["EndpointID"]
    members = daemon.api.json("GET", "/networks/front")["Containers"]
    (member,) = members.values()
    assert member["Name"] == "web" and member["IPv4Address"] == f"{ip}/{doc['IPPrefixLen']}"
    code, body = fetch(daemon, "front", f"http://{ip}/hostname")
    assert code == 0 and body.strip() == daemon.api.json("GET", "/containers/web/json")["Id"][:12]
    code, _ = fetch(daemon, "back", f"http://{ip}/hostname")
    assert code != 0  # another network: isolated
    code, _ = fetch(daemon, "bridge", f"http://{ip}/hostname")
    assert code != 0  # the default bridge too
    (listed,) = [c for c in daemon.api.json("GET", "/containers/json") if c["Names"] == ["/web"]]
    assert listed["NetworkSettings"]["Networks"]["front"]["IPAddress"] == ip
    hosts = daemon.cli("exec", "web", "cat", "/etc/hosts").stdout.decode()
    assert f"{ip}\t" in hosts
    status, _, data = daemon.api.request("DELETE", "/networks/front")
    assert status == 403 and "has active endpoints" in json.loads(data)["message"]


def test_internal_network_has_no_route_out_and_others_are_masqueraded(daemon: Daemon, busybox_image: str) -> None:
    outside = make_outside(tempfile.gettempdir())
    try:
        create_network(daemon, "open")
        create_network(daemon, "sealed", Internal=True)
        url = f"http://{outside.address}:8080/index.html"
        deadline = time.monotonic() + 5
        while True:  # the outside server may take a moment to listen
            code, body = fetch(daemon, "open", url)
            if code == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert code == 0 and body == "outside\n"  # the outside host has no route back: masqueraded
        r = daemon.cli("run", "--rm", "--network", "sealed", "busybox", "sh", "-c",
                       f"ip route; timeout 3 wget -q -O- {url}; exit $?", check=False)
        assert r.returncode != 0 and b"default" not in r.stdout
        rules = daemon.api.json("GET", "/networks/sealed")
        assert rules["Internal"] is True
    finally:
        outside.close()


def test_connect_and_disconnect_a_running_container(daemon: Daemon, busybox_image: str) -> None:
    create_network(daemon, "extra", IPAM={"Config": [{"Subnet": "10.254.77.0/24", "IPRange": "10.254.77.64/26"}]})
    daemon.cli("run", "-d", "--name", "box", "busybox", "sleep", "300")
    settings = daemon.api.json("GET", "/containers/box/json")["NetworkSettings"]
    bridge = settings["Networks"]["bridge"]
    assert settings["IPAddress"] == bridge["IPAddress"] and settings["Gateway"] == bridge["Gateway"]
    assert settings["MacAddress"] == bridge["MacAddress"] and os.path.exists(settings["SandboxKey"])
    status, _, data = daemon.api.request("POST", "/networks/extra/connect",
                                         {"Container": "box", "EndpointConfig": {
                                             "IPAMConfig": {"IPv4Address": "10.254.77.9"}, "Aliases": ["b"]}})
    assert status == 200, data
    addrs = daemon.cli("exec", "box", "ip", "addr").stdout.decode()
    assert "eth1" in addrs and "10.254.77.9/24" in addrs
    stats = daemon.api.json("GET", "/containers/box/stats?stream=0&one-shot=1")
    assert sorted(stats["networks"]) == ["eth0", "eth1"]  # as dockerd's: the container's interfaces
    networks = daemon.api.json("GET", "/containers/box/json")["NetworkSettings"]["Networks"]
    assert set(networks) == {"bridge", "extra"} and networks["extra"]["IPAddress"] == "10.254.77.9"
    assert networks["extra"]["Aliases"] == ["b"]
    status, _, data = daemon.api.request("POST", "/networks/extra/connect", {"Container": "box"})
    assert status == 403 and "already exists in network extra" in json.loads(data)["message"]
    assert daemon.api.request("POST", "/networks/extra/disconnect", {"Container": "box"})[0] == 200
    assert "10.254.77.9" not in daemon.cli("exec", "box", "ip", "addr").stdout.decode()
    assert set(daemon.api.json("GET", "/containers/box/json")["NetworkSettings"]["Networks"]) == {"bridge"}
    status, _, data = daemon.api.request("POST", "/networks/extra/disconnect", {"Container": "box"})
    assert status == 403 and "is not connected to network extra" in json.loads(data)["message"]
    assert daemon.api.request("POST", "/networks/extra/connect", {"Container": "box"})[0] == 200
    drawn = ip_of(daemon, "box", "extra")
    assert 64 <= int(drawn.rsplit(".", 1)[1]) < 128  # from --ip-range
    assert daemon.api.request("POST", "/networks/extra/disconnect", {"Container": "box", "Force": True})[0] == 200
    assert daemon.api.request("DELETE", "/networks/extra")[0] == 204


def test_ipam_never_hands_out_an_address_twice_even_across_a_restart(daemon_dirs: tuple[str, str, str],
                                                                      busybox_tar: str) -> None:
    d = start_daemon(*daemon_dirs)
    try:
        d.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        create_network(d, "small", IPAM={"Config": [{"Subnet": "10.254.88.0/29"}]})  # .2 to .6
        d.cli("run", "-d", "--name", "ca", "--network", "small", "--ip", "10.254.88.3", "busybox", "sleep", "300")
        r = d.cli("run", "-d", "--name", "dup", "--network", "small", "--ip", "10.254.88.3", "busybox", "true",
                  check=False)
        assert r.returncode != 0 and b"Address already in use" in r.stderr
        d.cli("rm", "dup")
        d.cli("run", "-d", "--name", "cb", "--network", "small", "busybox", "sleep", "300")
        before = {c: ip_of(d, c, "small") for c in ("ca", "cb")}
        assert before["ca"] == "10.254.88.3" and before["cb"] not in ("10.254.88.3", "10.254.88.1")
        rules = nft_rules(d.network_tag)
        assert any("masquerade" in r for r in rules)
        stop_daemon(d)  # the containers keep running (live restore)
        assert nft_rules(d.network_tag) == rules  # they still need them
        d = start_daemon(*daemon_dirs, extra_args=("--network-tag", d.network_tag))
        assert {c: ip_of(d, c, "small") for c in ("ca", "cb")} == before
        seen = set(before.values())
        for name in ("cc", "ce", "cf"):
            d.cli("run", "-d", "--name", name, "--network", "small", "busybox", "sleep", "300")
            seen.add(ip_of(d, name, "small"))
        assert seen == {f"10.254.88.{i}" for i in range(2, 7)}
        r = d.cli("run", "-d", "--name", "full", "--network", "small", "busybox", "true", check=False)
        assert r.returncode != 0 and b"no available IPv4 addresses" in r.stderr
        d.cli("rm", "-f", "cb", "full")
        d.cli("run", "-d", "--name", "cg", "--network", "small", "busybox", "sleep", "300")
        assert ip_of(d, "cg", "small") == before["cb"]  # freed, and the only one left
        assert nft_rules(d.network_tag) == rules  # the restarted daemon re-applied them: none lost, none twice
    finally:
        remove_containers(d)
        stop_daemon(d)
        stop_monitor(d)
    assert leftovers(d.network_tag, exec_root(d)) == [], d.log()[-3000:]


def test_nothing_of_the_tag_is_left_after_removal_and_stop(daemon_dirs: tuple[str, str, str],
                                                          busybox_tar: str) -> None:
    d = start_daemon(*daemon_dirs)
    try:
        d.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        create_network(d, "n1")
        d.cli("run", "-d", "--name", "one", "--network", "n1", "busybox", "sleep", "300")
        d.cli("run", "-d", "--name", "two", "busybox", "sleep", "300")
        assert any(x.startswith("netns") for x in leftovers(d.network_tag, exec_root(d)))
        d.cli("rm", "-f", "one", "two")
        left = leftovers(d.network_tag, exec_root(d))
        assert not [x for x in left if not x.startswith(("link " + d.network_tag + "0", "link br-", "nft"))], left
        assert d.api.request("DELETE", "/networks/n1")[0] == 204
        assert not any("br-" in x for x in leftovers(d.network_tag, exec_root(d)))
        assert d.cli("run", "--rm", "busybox", "true").returncode == 0
    finally:
        remove_containers(d)
        stop_daemon(d)
        stop_monitor(d)
    assert leftovers(d.network_tag, exec_root(d)) == [], d.log()[-3000:]


def test_host_and_none_modes_keep_working(daemon: Daemon, busybox_image: str) -> None:
    out = daemon.cli("run", "--rm", "--network", "none", "busybox", "ip", "addr").stdout.decode()
    assert "eth0" not in out and "127.0.0.1/8" in out and "LOOPBACK,UP" in out
    daemon.cli("run", "-d", "--name", "hostbox", "--network", "host", "busybox", "sleep", "300")
    assert set(daemon.api.json("GET", "/containers/hostbox/json")["NetworkSettings"]["Networks"]) == {"host"}
    status, _, data = daemon.api.request("POST", "/containers/create?name=bad",
                                         {"Image": "busybox", "HostConfig": {"NetworkMode": "nonesuch"}})
    assert status == 404 and json.loads(data)["message"] == "network nonesuch not found"


def test_daemon_start_sweeps_what_dead_containers_left(daemon_dirs: tuple[str, str, str], busybox_tar: str) -> None:
    d = start_daemon(*daemon_dirs)
    try:
        d.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        create_network(d, "swept")
        d.cli("run", "-d", "--name", "victim", "--network", "swept", "busybox", "sleep", "300")
        pid = d.api.json("GET", "/containers/victim/json")["State"]["Pid"]
        assert len(d.api.json("GET", "/networks/swept")["Containers"]) == 1
        d.proc.kill()  # a crash: nothing of the daemon's shutdown runs
        d.proc.wait()
        os.kill(pid, 9)  # the container dies while no daemon watches
        stray = os.path.join(exec_root(d), "netns", "f" * 64)
        netns.create(stray).close()  # a namespace file of a container the records never knew
        d = start_daemon(*daemon_dirs, extra_args=("--network-tag", d.network_tag))
        assert d.api.json("GET", "/containers/victim/json")["State"]["Running"] is False
        assert d.api.json("GET", "/networks/swept")["Containers"] == {}
        assert netns.listing(os.path.join(exec_root(d), "netns")) == []
        d.cli("start", "victim")  # its address is free again, and it gets one
        assert ip_of(d, "victim", "swept")
    finally:
        remove_containers(d)
        stop_daemon(d)
        stop_monitor(d)
    assert leftovers(d.network_tag, exec_root(d)) == [], d.log()[-3000:]
