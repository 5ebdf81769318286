"""network/rtnl.py against the kernel: a container's endpoint made by hand-packed requests is what the
pyroute2 path made (address, broadcast, MAC, route, both ends up, the alias); refusals keep their errno
and leave no veth behind."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys

import pytest

from nethelpers import leftovers
from portside.errors import Internal
from portside.network import links, netns, rtnl
from portside.network.service import EndpointRequest, NetworkService

pytestmark = pytest.mark.root


def ip_json(*args: str) -> list[dict]:
    return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout)


def test_endpoint_made_by_rtnl_is_complete_and_released(tmp_path) -> None:
    tag = "pt" + secrets.token_hex(3)
    service = NetworkService(str(tmp_path / "root"), str(tmp_path / "run"), tag=tag)
    cid = secrets.token_hex(32)
    try:
        path = service.create_sandbox(cid)
        record, endpoint = service.attach("bridge", cid, "/c", EndpointRequest(), ifname="eth0", default_route=True)
        (eth0,) = json.loads(subprocess.run(["nsenter", f"--net={path}", "ip", "-j", "addr", "show", "eth0"],
                                      capture_output=True, text=True, check=True).stdout)
        assert "UP" in eth0["flags"] and eth0["address"] == endpoint.mac
        (inet,) = [a for a in eth0["addr_info"] if a["family"] == "inet"]
        assert inet["local"] == endpoint.ip
        assert inet["broadcast"] == str(ipaddress.IPv4Network(record.subnet).broadcast_address)  # as Docker adds it
        routes = json.loads(subprocess.run(["nsenter", f"--net={path}", "ip", "-j", "route"], capture_output=True,
                                           text=True, check=True).stdout)
        assert {"dst": "default", "gateway": record.gateway, "dev": "eth0"}.items() <= routes[0].items()
        with socket.create_server((record.gateway, 0)) as server:  # the host, reached over the veth and bridge
            code = (f"import socket; s = socket.create_connection(('{record.gateway}', {server.getsockname()[1]}), 3);"
                    "print(s.getsockname()[0])")
            hello = subprocess.run(["nsenter", f"--net={path}", sys.executable, "-c", code], capture_output=True,
                                   text=True, check=False, timeout=20)
        assert hello.stdout.strip() == endpoint.ip, hello.stderr
        (host_end,) = ip_json("-d", "link", "show", endpoint.host_ifname)
        assert host_end["ifalias"] == f"{tag} {cid}" and host_end["master"] == record.bridge
        assert "UP" in host_end["flags"]
        service.release(cid)
    finally:
        service.release(cid)
        service.shutdown()
    assert leftovers(tag, str(tmp_path / "run")) == []


def test_refusals_keep_their_errno_and_leave_no_veth(tmp_path) -> None:
    path = str(tmp_path / "ns")
    sock = netns.create(path)
    host = rtnl.Socket()
    try:
        with rtnl.Socket(sock) as inner:
            with pytest.raises(rtnl.NetlinkError) as e:
                inner.batch([rtnl.link_up(1), rtnl.add_address(4242, "10.9.9.2", 24)])
            assert e.value.errno == errno.ENODEV and "address 10.9.9.2/24" in str(e.value)
        name = "vt" + secrets.token_hex(4)
        link = links.EndpointLink(bridge="nobr" + secrets.token_hex(3), host_ifname=name, ifname="eth0",
                                  address="10.9.9.2", prefixlen=24, mac="02:42:0a:09:09:02", gateway="", alias="x")
        with pytest.raises(Internal, match="is gone"):
            links.plug(host, links.host(), path, link)
        assert not subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0
    finally:
        host.close()
        netns.remove(path)


def test_a_name_taken_by_someone_else_is_refused_and_their_link_kept(tmp_path) -> None:
    path = str(tmp_path / "ns")
    netns.create(path).close()
    suffix = secrets.token_hex(3)
    bridge, theirs = f"vb{suffix}", f"vt{suffix}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "add", theirs, "type", "veth", "peer", "name", f"vu{suffix}"], check=True)
    try:
        link = links.EndpointLink(bridge=bridge, host_ifname=theirs, ifname="eth0", address="10.9.9.2", prefixlen=24,
                                  mac="02:42:0a:09:09:02", gateway="", alias="x")
        with rtnl.Socket() as host, pytest.raises(Internal, match=os.strerror(errno.EEXIST)):
            links.plug(host, links.host(), path, link)
        assert subprocess.run(["ip", "link", "show", theirs], capture_output=True).returncode == 0
    finally:
        subprocess.run(["ip", "link", "del", theirs], check=False)
        subprocess.run(["ip", "link", "del", bridge], check=False)
        netns.remove(path)
