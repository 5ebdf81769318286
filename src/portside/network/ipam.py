"""IPAM: subnets for networks and addresses for endpoints (IPv4), as libnetwork's default driver.

Pure functions over the records: the service holds the lock and persists the
record after each change. A subnet is never one that overlaps another
network's or anything on the host (its addresses and routes), so parallel
daemons on one machine pick different ones.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Iterator

from portside.errors import Conflict, InvalidArgument
from portside.network.records import NetworkRecord

Net = ipaddress.IPv4Network


def default_pools() -> Iterator[Net]:
    """Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s."""
    for second in range(17, 32):
        yield ipaddress.IPv4Network(f"172.{second}.0.0/16")
    yield from ipaddress.IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


def parse_subnet(value: str) -> Net:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {value}") from None
    if net.version != 4:
        raise InvalidArgument("IPv6 subnets are not supported (no --ipv6 in portside)")
    assert isinstance(net, ipaddress.IPv4Network)
    return net


def pick_subnet(taken: Iterable[Net]) -> Net:
    used = list(taken)
    for pool in default_pools():
        if not any(pool.overlaps(t) for t in used):
            return pool
    raise InvalidArgument("could not find an available, non-overlapping IPv4 address pool among the defaults "
                          "to assign to the network")


def check_subnet(subnet: Net, others: Iterable[Net]) -> None:
    for other in others:
        if subnet.overlaps(other):
            raise Conflict("Pool overlaps with other one on this address space")


def first_host(subnet: Net) -> str:
    return str(subnet.network_address + 1)


def mac_for(ip: str) -> str:
    """Docker's derived MAC: 02:42 and the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def _usable(record: NetworkRecord) -> tuple[Net, Net]:
    subnet = ipaddress.IPv4Network(record.subnet)
    pool = ipaddress.IPv4Network(record.ip_range) if record.ip_range else subnet
    return subnet, pool


def _reserved(record: NetworkRecord, subnet: Net) -> set[str]:
    used = {e.ip for e in record.endpoints.values() if e.ip}
    used.add(record.gateway)
    used.add(str(subnet.network_address))
    used.add(str(subnet.broadcast_address))
    return used


def allocate(record: NetworkRecord, wanted: str = "") -> str:
    """An address for a new endpoint: ``wanted`` (--ip) if free, else the next free one after the last drawn."""
    subnet, pool = _usable(record)
    used = _reserved(record, subnet)
    if wanted:
        try:
            address = ipaddress.IPv4Address(wanted)
        except ValueError:
            raise InvalidArgument(f"invalid IPv4 address: {wanted}") from None
        if address not in subnet:
            raise InvalidArgument(f"no configured subnet or ip-range contain the IP address {wanted}")
        if wanted in used:
            raise Conflict(f"Address already in use")
        return wanted
    size = pool.num_addresses
    start = 0
    if record.last_ip:
        last = ipaddress.IPv4Address(record.last_ip)
        if last in pool:
            start = int(last) - int(pool.network_address) + 1
    base = int(pool.network_address)
    for step in range(size):
        candidate = str(ipaddress.IPv4Address(base + (start + step) % size))
        if candidate not in used:
            record.last_ip = candidate
            return candidate
    raise Conflict(f"no available IPv4 addresses on this network's address pools: {record.name} ({record.id})")
