"""The bridge driver's links, over netlink (pyroute2): bridges, and a veth pair per endpoint.

Every link we make carries an interface alias (IFLA_IFALIAS): the network
tag for bridges, ``<tag> <container id>`` for veths. That is how a sweep
after a crash, or a test, tells our links from anyone else's on the host
(parallel daemons use different tags).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from portside.errors import Internal
from portside.network import netns

# pyroute2 is imported on first use (140 ms): a daemon that never touches a network never pays it
IPRoute = Any


def _netlink_error() -> type[Exception]:
    from pyroute2.netlink.exceptions import NetlinkError

    return NetlinkError  # type: ignore[no-any-return]


def _iproute(**kwargs: Any) -> Any:
    from pyroute2 import IPRoute as _IPRoute

    return _IPRoute(**kwargs)


@dataclass(frozen=True)
class HostLink:
    index: int
    name: str
    kind: str
    alias: str


def host() -> IPRoute:
    return _iproute()


def links(ipr: IPRoute) -> list[HostLink]:
    out = []
    for msg in ipr.get_links():
        info = msg.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else ""
        out.append(HostLink(msg["index"], msg.get_attr("IFLA_IFNAME"), kind or "", msg.get_attr("IFLA_IFALIAS") or ""))
    return out


def host_networks(ipr: IPRoute, skip: frozenset[int] | set[int] = frozenset()) -> list[ipaddress.IPv4Network]:
    """What IPv4 space the host uses: its addresses' networks and its routes' destinations (not the
    default), leaving out the links in ``skip``."""
    out = []
    for msg in ipr.get_addr(family=socket.AF_INET):
        if msg["index"] in skip:
            continue
        out.append(ipaddress.IPv4Network(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}", strict=False))
    for msg in ipr.get_routes(family=socket.AF_INET, table=254):
        dst = msg.get_attr("RTA_DST")
        if msg.get_attr("RTA_OIF") in skip:
            continue
        if dst and msg["dst_len"] > 0:
            out.append(ipaddress.IPv4Network(f"{dst}/{msg['dst_len']}", strict=False))
    return out


def ensure_bridge(ipr: IPRoute, name: str, gateway: str, prefixlen: int, alias: str) -> None:
    """The bridge up with the gateway address; made if missing (idempotent)."""
    found = ipr.link_lookup(ifname=name)
    if not found:
        try:
            ipr.link("add", ifname=name, kind="bridge")
        except _netlink_error() as e:
            if getattr(e, "code", None) != 17:  # EEXIST: a parallel call made it
                raise Internal(f"creating bridge {name}: {e}") from None
        found = ipr.link_lookup(ifname=name)
    index = found[0]
    ipr.link("set", index=index, ifalias=alias)
    have = {(m.get_attr("IFA_ADDRESS"), m["prefixlen"]) for m in ipr.get_addr(index=index, family=socket.AF_INET)}
    if (gateway, prefixlen) not in have:
        try:
            ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
        except _netlink_error() as e:
            if getattr(e, "code", None) != 17:
                raise Internal(f"address {gateway}/{prefixlen} on {name}: {e}") from None
    ipr.link("set", index=index, state="up")


def delete(ipr: IPRoute, name: str) -> None:
    """Delete a link by name; gone already is fine (deleting one end of a veth deletes both)."""
    for index in ipr.link_lookup(ifname=name):
        try:
            ipr.link("del", index=index)
        except _netlink_error() as e:
            if getattr(e, "code", None) != 19:  # ENODEV
                raise


def veth_name() -> str:
    return "veth" + secrets.token_hex(4)[:7]   # dockerd's shape: veth and 7 hex digits


@dataclass(frozen=True)
class EndpointLink:
    bridge: str
    host_ifname: str
    ifname: str          # inside: eth0, eth1...
    address: str
    prefixlen: int
    mac: str
    gateway: str         # "" : no default route through this one
    alias: str


def loopback_up(inner_sock: socket.socket) -> None:
    """lo up in the namespace of ``inner_sock`` (closed after)."""
    with _iproute(use_socket=inner_sock) as inner:
        inner.link("set", index=1, state="up")  # lo: always index 1 in a namespace


def plug(ipr: IPRoute, netns_path: str, link: EndpointLink, inner_sock: socket.socket | None = None) -> None:
    """A veth pair: one end on the bridge, the other in the container's namespace as ``link.ifname``
    with its address, MAC and (if asked) the default route; the namespace's lo up too.

    Made in as few netlink requests as the kernel allows (each takes the rtnl lock, and a
    veth's creation is most of an endpoint's cost): the pair is created with the host end
    already on the bridge and up, and the container end already in the namespace with its
    name and MAC. ``inner_sock``: a netlink socket already inside the namespace (it is closed).
    """
    bridge = ipr.link_lookup(ifname=link.bridge)
    if not bridge:
        raise Internal(f"bridge {link.bridge} is gone")
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        ipr.link("add", ifname=link.host_ifname, kind="veth", master=bridge[0], state="up",
                 peer={"ifname": link.ifname, "address": link.mac, "net_ns_fd": fd})
    except _netlink_error() as e:
        raise Internal(f"creating veth {link.host_ifname}: {e}") from None
    finally:
        os.close(fd)
    try:
        ipr.link("set", ifname=link.host_ifname, ifalias=link.alias)  # not taken at creation
        with _iproute(use_socket=inner_sock or netns.netlink_in(netns_path)) as inner:
            inside = inner.link_lookup(ifname=link.ifname)[0]
            inner.link("set", index=inside, state="up")
            inner.addr("add", index=inside, address=link.address, prefixlen=link.prefixlen)
            inner.link("set", index=1, state="up")  # lo: always index 1 in a namespace
            if link.gateway:
                inner.route("replace", dst="0.0.0.0/0", gateway=link.gateway, oif=inside)
    except BaseException:
        delete(ipr, link.host_ifname)
        raise
