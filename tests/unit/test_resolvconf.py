"""A container's /etc/resolv.conf (network/resolvconf.py) against what dockerd writes."""

from __future__ import annotations

import pathlib

import pytest

from portside.network import resolvconf
from portside.network.resolvconf import build

HOST = """# a comment
search corp.example lab.example
nameserver 127.0.0.53
nameserver 10.1.2.3
nameserver ::1
nameserver fd00::53
options edns0 timeout:2
"""


def test_host_network_copies_the_host_file() -> None:
    assert build(HOST, host_network=True).text == HOST


def test_private_network_drops_loopback_and_ipv6_nameservers() -> None:
    assert build(HOST).text == ("# a comment\nsearch corp.example lab.example\nnameserver 10.1.2.3\n"
                                "options edns0 timeout:2\n")
    assert "nameserver fd00::53" in build(HOST, ipv6=True).text


@pytest.mark.parametrize("host", ["nameserver 127.0.0.53\n", "nameserver 127.1.2.3\nnameserver ::1\n", "",
                                  "search x.example\nnameserver 127.0.0.1"])
def test_no_usable_nameserver_falls_back_to_dockers_defaults(host: str) -> None:
    text = build(host).text
    assert resolvconf.parse(text).nameservers == ("8.8.8.8", "8.8.4.4")
    assert text.endswith("nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
    with_ipv6 = resolvconf.parse(build(host, ipv6=True).text).nameservers
    assert with_ipv6 == resolvconf.DEFAULT_IPV4 + resolvconf.DEFAULT_IPV6


def test_dns_options_replace_the_hosts() -> None:
    assert build(HOST, dns=["192.0.2.1", "192.0.2.2"]).text == (
        "search corp.example lab.example\nnameserver 192.0.2.1\nnameserver 192.0.2.2\noptions edns0 timeout:2\n")
    assert build(HOST, dns_search=["a.example"], dns_options=["ndots:2"]).text == (
        "search a.example\nnameserver 10.1.2.3\noptions ndots:2\n")
    # "." as the search list: none at all
    assert build(HOST, dns=["192.0.2.1"], dns_search=["."]).text == (
        "nameserver 192.0.2.1\noptions edns0 timeout:2\n")
    # the host's network keeps its loopback resolver when only the search list changes
    assert build(HOST, dns_search=["b.example"], host_network=True).text == (
        "search b.example\nnameserver 127.0.0.53\nnameserver 10.1.2.3\nnameserver ::1\nnameserver fd00::53\n"
        "options edns0 timeout:2\n")
    assert build("nameserver 127.0.0.1\n", dns_search=["c.example"]).text == (
        "search c.example\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n")


def test_embedded_server_on_user_defined_networks() -> None:
    rc = build(HOST, embedded="172.18.0.1")
    assert rc.text == "search corp.example lab.example\nnameserver 172.18.0.1\noptions edns0 timeout:2 ndots:0\n"
    # the server forwards from the daemon, in the host's namespace: its loopback resolver answers there
    assert rc.upstreams == ("127.0.0.53", "10.1.2.3")
    rc = build(HOST, embedded="172.18.0.1", dns=["192.0.2.1"], dns_search=["x.example"], dns_options=["ndots:3"])
    assert rc.text == "search x.example\nnameserver 172.18.0.1\noptions ndots:3\n"
    assert rc.upstreams == ("192.0.2.1",)
    assert build("", embedded="172.18.0.1").upstreams == ("8.8.8.8", "8.8.4.4")


def test_parse_takes_the_last_search_and_options_lines() -> None:
    parsed = resolvconf.parse("search a\nsearch b c\n; nameserver 1.1.1.1\nnameserver bogus\nnameserver 9.9.9.9 x\n"
                              "options a\noptions b\n  nameserver 1.0.0.1\n")
    assert parsed == resolvconf.Parsed(("9.9.9.9", "1.0.0.1"), ("b", "c"), ("b",))


def test_read_host_follows_systemd_resolved(tmp_path: pathlib.Path) -> None:
    stub, real = tmp_path / "resolv.conf", tmp_path / "real.conf"
    stub.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    real.write_text("nameserver 10.9.8.7\n")
    assert resolvconf.read_host(str(stub), systemd_path=str(real)) == "nameserver 10.9.8.7\n"
    real.unlink()
    assert resolvconf.read_host(str(stub), systemd_path=str(real)).startswith("nameserver 127.0.0.53")
    assert resolvconf.read_host(str(tmp_path / "missing")) == ""
