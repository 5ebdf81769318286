"""IPAM and the firewall's rendering: pure functions, no root."""

from __future__ import annotations

import ipaddress

import pytest

from portside.errors import Conflict, InvalidArgument
from portside.network import firewall, ipam
from portside.network.records import Endpoint, NetworkRecord


def network(subnet: str, ip_range: str = "") -> NetworkRecord:
    net = ipaddress.IPv4Network(subnet)
    return NetworkRecord(id="n" * 64, name="n", driver="bridge", created="", subnet=subnet,
                         gateway=ipam.first_host(net), ip_range=ip_range, user_subnet=True)


def lease(record: NetworkRecord, cid: str, wanted: str = "") -> str:
    ip = ipam.allocate(record, wanted)
    record.endpoints[cid] = Endpoint(container_id=cid, endpoint_id="e", name=cid, ip=ip)
    return ip


def test_default_pools_are_dockers() -> None:
    pools = list(ipam.default_pools())
    assert str(pools[0]) == "172.17.0.0/16" and str(pools[14]) == "172.31.0.0/16"
    assert str(pools[15]) == "192.168.0.0/20" and str(pools[-1]) == "192.168.240.0/20" and len(pools) == 31


def test_pick_subnet_skips_what_the_host_and_other_networks_use() -> None:
    taken = [ipaddress.IPv4Network("172.17.0.0/16"), ipaddress.IPv4Network("172.18.5.0/24")]
    assert str(ipam.pick_subnet(taken)) == "172.19.0.0/16"
    every = list(ipam.default_pools())
    with pytest.raises(InvalidArgument, match="non-overlapping"):
        ipam.pick_subnet(every)
    with pytest.raises(Conflict, match="Pool overlaps"):
        ipam.check_subnet(ipaddress.IPv4Network("172.18.0.0/16"), taken)


def test_addresses_are_drawn_in_order_never_twice_and_not_reused_at_once() -> None:
    record = network("10.0.0.0/29")  # .1 gateway, .2 to .6
    assert [lease(record, c) for c in "abc"] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    del record.endpoints["b"]  # freed
    assert lease(record, "d") == "10.0.0.5"  # after the last drawn, as libnetwork
    assert lease(record, "e") == "10.0.0.6"
    assert lease(record, "f") == "10.0.0.3"  # wraps around to the freed one
    with pytest.raises(Conflict, match="no available IPv4 addresses"):
        ipam.allocate(record)


def test_static_addresses_and_ranges() -> None:
    record = network("10.0.0.0/24", ip_range="10.0.0.128/25")
    assert lease(record, "a") == "10.0.0.128"
    assert lease(record, "b", "10.0.0.7") == "10.0.0.7"  # static: anywhere in the subnet
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate(record, "10.0.0.7")
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate(record, "10.0.0.1")  # the gateway
    with pytest.raises(InvalidArgument, match="no configured subnet"):
        ipam.allocate(record, "10.9.0.7")


def test_mac_is_dockers() -> None:
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def test_firewall_isolates_networks_and_seals_internal_ones() -> None:
    script = firewall.render("pt1", [firewall.BridgeRules("pt10", "172.17.0.0/16", False),
                                     firewall.BridgeRules("br-1", "10.1.0.0/24", True)])
    assert script.startswith("table ip pt1\ndelete table ip pt1\ntable ip pt1 {")  # one atomic replacement
    assert 'iifname "pt10" oifname { "br-1" } drop' in script
    assert 'iifname "br-1" oifname { "pt10" } drop' in script
    assert 'ip saddr 172.17.0.0/16 oifname != "pt10" masquerade' in script
    assert "10.1.0.0/24" not in script  # an internal network is never masqueraded
    assert 'iifname "br-1" drop' in script and 'oifname "br-1" drop' in script
