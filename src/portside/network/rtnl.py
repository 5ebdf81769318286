"""The few rtnetlink requests a container start makes, packed by hand and sent as one batch.

pyroute2 costs about 0.5 ms of Python (an asyncio loop turn, encoders,
parsers) per request on this machine, more than the kernel's own work for
most of them; a start on a bridge makes seven. Here each request is a few
``struct.pack`` calls, the requests of one step travel in one ``sendmsg``,
and the acknowledgements are read back in order: the first error is raised
with its errno and the request it answers. Everything else (bridges,
listings, sweeps) stays with pyroute2: it is not on the start path.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

# linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/veth.h
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x200, 0x400
RTM_NEWLINK, RTM_GETLINK, RTM_SETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 18, 19, 20, 24
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 20, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg


class NetlinkError(OSError):
    """A request the kernel refused: the errno, and what was asked (``request``; None for a lookup)."""

    request: Request | None = None


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _string(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def ifinfo(index: int = 0, *, up: bool = False) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


@dataclass(frozen=True)
class Request:
    kind: int
    flags: int
    body: bytes
    what: str  # for the error message: "creating veth vethabc1234"


def new_veth(host_ifname: str, *, master: int, peer_ifname: str, peer_mac: str, peer_netns_fd: int,
             mtu: int = 0) -> Request:
    """The pair in one request: the host end on ``master`` and up, the peer already in the namespace
    of ``peer_netns_fd`` with its name and MAC. Not the peer up: the kernel configures the peer
    before it pairs the two, and a veth without its pair refuses to open (ENOTCONN)."""
    mtu_attr = _u32(IFLA_MTU, mtu) if mtu else b""
    peer = (ifinfo() + _string(IFLA_IFNAME, peer_ifname) + attr(IFLA_ADDRESS, _mac(peer_mac))
            + _u32(IFLA_NET_NS_FD, peer_netns_fd) + mtu_attr)
    linkinfo = _string(IFLA_INFO_KIND, "veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer))
    body = (ifinfo(up=True) + _string(IFLA_IFNAME, host_ifname) + _u32(IFLA_MASTER, master) + mtu_attr
            + attr(IFLA_LINKINFO, linkinfo))
    return Request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"creating veth {host_ifname}")


def set_alias(ifname: str, alias: str) -> Request:
    """By name (index 0): the kernel does not take IFLA_IFALIAS at creation."""
    return Request(RTM_SETLINK, 0, ifinfo() + _string(IFLA_IFNAME, ifname) + _string(IFLA_IFALIAS, alias),
                   f"alias of {ifname}")


def link_up(index: int) -> Request:
    return Request(RTM_SETLINK, 0, ifinfo(index, up=True), f"link {index} up")


def add_address(index: int, address: str, prefixlen: int) -> Request:
    """As Docker (vishvananda/netlink) adds it: local, address and the subnet's broadcast."""
    iface = ipaddress.IPv4Interface(f"{address}/{prefixlen}")
    body = (_IFADDR.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
            + attr(IFA_LOCAL, iface.ip.packed) + attr(IFA_ADDRESS, iface.ip.packed))
    if prefixlen < 31:
        body += attr(IFA_BROADCAST, iface.network.broadcast_address.packed)
    return Request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"address {address}/{prefixlen}")


def default_route(gateway: str, oif: int) -> Request:
    body = (_RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
            + attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed) + _u32(RTA_OIF, oif))
    return Request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body, f"default route via {gateway}")


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


class Socket:
    """A NETLINK_ROUTE socket (the namespace it was opened in is the one it speaks to)."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                          socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batch(self, requests: list[Request]) -> None:
        """Send every request at once; wait for every acknowledgement. The kernel handles them in
        order and carries on after a failure, so the first error (in request order) is raised."""
        first = self._seq + 1
        buf = bytearray()
        for req in requests:
            self._seq += 1
            buf += _HEADER.pack(_HEADER.size + len(req.body), req.kind, NLM_F_REQUEST | NLM_F_ACK | req.flags,
                                self._seq, 0) + req.body
        self.sock.send(bytes(buf))
        errors: dict[int, int] = {}
        pending = set(range(first, self._seq + 1))
        while pending:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, _, seq, _ = _HEADER.unpack_from(data, offset)
                if kind == NLMSG_ERROR and seq in pending:
                    pending.discard(seq)
                    (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                    if code:
                        errors[seq] = -code
                offset += max(length + (-length % 4), _HEADER.size)
        if errors:
            seq = min(errors)
            code = errors[seq]
            error = NetlinkError(code, f"{requests[seq - first].what}: {os.strerror(code)}")
            error.request = requests[seq - first]
            raise error

    def index_of(self, ifname: str) -> int:
        """The link's index by name (one RTM_GETLINK)."""
        self._seq += 1
        body = ifinfo() + _string(IFLA_IFNAME, ifname)
        self.sock.send(_HEADER.pack(_HEADER.size + len(body), RTM_GETLINK, NLM_F_REQUEST, self._seq, 0) + body)
        while True:
            data = self.sock.recv(65536)
            length, kind, _, seq, _ = _HEADER.unpack_from(data, 0)
            if seq != self._seq:
                continue
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, _HEADER.size)
                raise NetlinkError(-code or errno.ENODEV, f"link {ifname}: {os.strerror(-code or errno.ENODEV)}")
            _, _, index, _, _ = _IFINFO.unpack_from(data, _HEADER.size)
            return int(index)
