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
from portside.network import netns, rtnl

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


def ensure_bridge(ipr: IPRoute, name: str, gateway: str, prefixlen: int, alias: str, *, mtu: int = 0) -> None:
    """The bridge up with the gateway address (and ``mtu`` when given: the veths get the same);
    made if missing (idempotent)."""
    found = ipr.link_lookup(ifname=name)
    if not found:
        try:
            ipr.link("add", ifname=name, kind="bridge")
        except _netlink_error() as e:
            if getattr(e, "code", None) != 17:  # EEXIST: a parallel call made it
                raise Internal(f"creating bridge {name}: {e}") from None
        found = ipr.link_lookup(ifname=name)
    index = found[0]
    ipr.link("set", index=index, ifalias=alias, **({"mtu": mtu} if mtu else {}))
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
    mtu: int = 0         # 0: the kernel's (1500)


def loopback_up(inner_sock: socket.socket) -> None:
    """lo up in the namespace of ``inner_sock`` (closed after)."""
    with rtnl.Socket(inner_sock) as inner:
        inner.batch([rtnl.link_up(1)])  # lo: always index 1 in a namespace


def plug(host: rtnl.Socket, ipr: IPRoute, netns_path: str, link: EndpointLink,
         inner_sock: socket.socket | None = None) -> None:
    """A veth pair: one end on the bridge, the other in the container's namespace as ``link.ifname``
    with its address, MAC and (if asked) the default route; the namespace's lo up too.

    Four round trips of hand-packed requests (rtnl.py): on the host, the bridge's index; then the
    pair created with the host end already on the bridge and up and the container end already
    inside the namespace with its name and MAC, and its alias, in one batch; inside, the container
    end's index; then it up, its address, lo and the route in one batch. ``host``: a socket in the host's namespace; ``inner_sock``: one already
    inside the namespace (it is closed); ``ipr`` only deletes the pair if a step fails.
    """
    try:
        bridge = host.index_of(link.bridge)
    except rtnl.NetlinkError:
        raise Internal(f"bridge {link.bridge} is gone") from None
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        host.batch([rtnl.new_veth(link.host_ifname, master=bridge, peer_ifname=link.ifname, peer_mac=link.mac,
                                  peer_netns_fd=fd, mtu=link.mtu),
                    rtnl.set_alias(link.host_ifname, link.alias)])
    except rtnl.NetlinkError as e:
        if e.request is not None and e.request.kind == rtnl.RTM_SETLINK:  # the pair was made, its alias failed
            delete(ipr, link.host_ifname)  # (never on a failed creation: the name may be someone else's)
        raise Internal(f"creating veth {link.host_ifname}: {e.strerror}") from None
    finally:
        os.close(fd)
    try:
        with rtnl.Socket(inner_sock or netns.netlink_in(netns_path)) as inner:
            inside = inner.index_of(link.ifname)
            steps = [rtnl.link_up(inside), rtnl.add_address(inside, link.address, link.prefixlen), rtnl.link_up(1)]
            if link.gateway:
                steps.append(rtnl.default_route(link.gateway, inside))
            inner.batch(steps)
    except BaseException as e:
        delete(ipr, link.host_ifname)
        if isinstance(e, rtnl.NetlinkError):
            raise Internal(f"configuring {link.ifname}: {e.strerror}") from None
        raise
