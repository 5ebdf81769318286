"""The bridge driver's MTU option (`-o com.docker.network.driver.mtu=N`, as dockerd): the bridge, both ends
of every veth and the container's eth0 get it; a bad value is refused before anything is made."""

from __future__ import annotations

import json
import subprocess

from helpers import Daemon


def mtu_of_link(name: str) -> int:
    out = subprocess.run(["ip", "-j", "link", "show", name], capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout)[0]["mtu"])


def test_mtu_option_from_the_cli_reaches_the_bridge_the_veths_and_eth0(daemon: Daemon, busybox_image: str) -> None:
    nid = daemon.cli("network", "create", "-o", "com.docker.network.driver.mtu=9000", "jumbo").stdout.decode().strip()
    doc = daemon.api.json("GET", f"/networks/{nid}")
    assert doc["Options"]["com.docker.network.driver.mtu"] == "9000"
    daemon.cli("run", "-d", "--name", "j1", "--network", "jumbo", "busybox", "sleep", "60")
    try:
        inside = daemon.cli("exec", "j1", "cat", "/sys/class/net/eth0/mtu").stdout.decode().strip()
        assert inside == "9000"
        bridge = f"br-{nid[:12]}"
        assert mtu_of_link(bridge) == 9000
        cid = daemon.api.json("GET", "/containers/j1/json")["Id"]
        out = subprocess.run(["ip", "-j", "-d", "link", "show", "master", bridge], capture_output=True, text=True,
                             check=True)
        veths = [link for link in json.loads(out.stdout) if link.get("ifalias", "").endswith(cid)]
        assert [v["mtu"] for v in veths] == [9000]
        # the default bridge keeps Docker's 1500
        plain = daemon.cli("run", "--rm", "busybox", "cat", "/sys/class/net/eth0/mtu").stdout.decode().strip()
        assert plain == "1500"
    finally:
        daemon.cli("rm", "-f", "j1", check=False)
        daemon.api.request("DELETE", f"/networks/{nid}")


def test_bad_mtu_is_refused_and_nothing_is_made(daemon: Daemon) -> None:
    before = {n["Name"] for n in daemon.api.json("GET", "/networks")}
    for value, message in (("-2", "invalid MTU number: -2"), ("abc", 'parsing "abc": invalid syntax'),
                           ("70000", "invalid MTU number: 70000")):
        status, _, data = daemon.api.request("POST", "/networks/create", {
            "Name": "bad", "Options": {"com.docker.network.driver.mtu": value}})
        assert status == 400, (value, data)
        assert message in json.loads(data)["message"]
    assert {n["Name"] for n in daemon.api.json("GET", "/networks")} == before
