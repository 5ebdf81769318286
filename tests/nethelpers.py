"""Test helpers for networking: what a daemon's network tag left on the host, and a fake "outside" host.

Tests never send traffic beyond this machine: the outside host is a network
namespace the test makes, joined to the host by a veth pair of its own.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass

from pyroute2 import IPRoute

from portside.network import netns


def leftovers(tag: str, exec_root: str, wait: float = 5.0) -> list[str]:
    """Links carrying the tag's alias, its nft table, namespace files under the exec root.

    Waits up to ``wait`` seconds for the list to empty: the kernel destroys a released
    container's namespace, and the veths in it, asynchronously."""
    deadline = time.monotonic() + wait
    while True:
        left = _leftovers(tag, exec_root)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _leftovers(tag: str, exec_root: str) -> list[str]:
    left = []
    with IPRoute() as ipr:
        for msg in ipr.get_links():
            alias = msg.get_attr("IFLA_IFALIAS") or ""
            if alias == tag or alias.startswith(tag + " "):
                left.append("link " + msg.get_attr("IFLA_IFNAME"))
    out = subprocess.run(["nft", "-j", "list", "tables", "ip"], capture_output=True, text=True, check=True)
    for item in json.loads(out.stdout).get("nftables", []):
        if item.get("table", {}).get("name") == tag:
            left.append("nft table ip " + tag)
    left += ["netns " + n for n in netns.listing(os.path.join(exec_root, "netns"))]
    return left


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that nothing on the host uses (parallel tests pick different ones)."""
    with IPRoute() as ipr:
        used = [ipaddress.IPv4Network(f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}", strict=False)
                for m in ipr.get_addr(family=2)]
        used += [ipaddress.IPv4Network(f"{m.get_attr('RTA_DST')}/{m['dst_len']}", strict=False)
                 for m in ipr.get_routes(family=2, table=254) if m.get_attr("RTA_DST") and m["dst_len"]]
    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise AssertionError("no free /24 in 10.0.0.0/8")


@dataclass
class Outside:
    """A fake outside host: a namespace behind a veth, serving HTTP at ``address``:8080 (busybox httpd).

    It has no route to any container subnet: a container that gets an answer from it was masqueraded
    behind ``host_address``."""

    path: str
    host_link: str
    host_address: str
    address: str
    server: subprocess.Popen[bytes]
    www: str

    def close(self) -> None:
        self.server.kill()
        self.server.wait()
        with IPRoute() as ipr:
            for index in ipr.link_lookup(ifname=self.host_link):
                ipr.link("del", index=index)
        netns.remove(self.path)


def make_outside(directory: str) -> Outside:
    subnet = free_subnet()
    host_address, address = str(subnet.network_address + 1), str(subnet.network_address + 2)
    path = os.path.join(directory, "outside-" + secrets.token_hex(3))
    netns.create(path).close()
    host_link = "pto" + secrets.token_hex(4)
    fd = os.open(path, os.O_RDONLY)
    with IPRoute() as ipr:
        ipr.link("add", ifname=host_link, kind="veth", peer={"ifname": "o" + host_link, "net_ns_fd": fd})
        os.close(fd)
        index = ipr.link_lookup(ifname=host_link)[0]
        ipr.addr("add", index=index, address=host_address, prefixlen=24)
        ipr.link("set", index=index, state="up")
    www = tempfile.mkdtemp(prefix="outside-www-")
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("outside\n")
    script = (f"ip link set o{host_link} name eth0 && ip addr add {address}/24 dev eth0 && ip link set eth0 up && "
              f"ip link set lo up && exec /bin/busybox httpd -f -vv -p {address}:8080 -h {www}")
    server = subprocess.Popen(["nsenter", f"--net={path}", "sh", "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    return Outside(path, host_link, host_address, address, server, www)
