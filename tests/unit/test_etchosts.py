"""A container's /etc/hosts (network/etchosts.py) against what dockerd writes."""

from __future__ import annotations

import pytest

from portside.errors import InvalidArgument
from portside.network import etchosts

DEFAULT = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
           "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def test_without_an_address_only_the_defaults() -> None:
    assert etchosts.build(hostname="abc123") == DEFAULT   # --network none: no line for its own name


def test_extra_hosts_links_then_own_addresses() -> None:
    text = etchosts.build(hostname="web", domainname="example.com",
                          extra_hosts=["db:10.0.0.9", "v6:fd00::1", "gw:host-gateway"], host_gateway="172.17.0.1",
                          links=[("172.17.0.5", "cache 5f2d5ea7c2f1 web_cache")], addresses=["172.17.0.2"])
    assert text == DEFAULT + ("10.0.0.9\tdb\nfd00::1\tv6\n172.17.0.1\tgw\n172.17.0.5\tcache 5f2d5ea7c2f1 web_cache\n"
                              "172.17.0.2\tweb.example.com web\n")


@pytest.mark.parametrize(("hostname", "domainname", "names"), [
    ("web", "", "web"), ("web.example.com", "", "web.example.com web"), ("web", "lan", "web.lan web")])
def test_own_names(hostname: str, domainname: str, names: str) -> None:
    assert etchosts.own_names(hostname, domainname) == names


def test_bad_extra_hosts() -> None:
    with pytest.raises(InvalidArgument, match="unable to derive the IP value for host-gateway"):
        etchosts.build(hostname="x", extra_hosts=["gw:host-gateway"])
    with pytest.raises(InvalidArgument, match='invalid IP address in add-host: "nope"'):
        etchosts.build(hostname="x", extra_hosts=["a:nope"])
    with pytest.raises(InvalidArgument, match='bad format for add-host: "a"'):
        etchosts.build(hostname="x", extra_hosts=["a"])
