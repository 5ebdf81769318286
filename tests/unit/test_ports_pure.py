"""Published ports without root: binding parsing, the rendered nft table, the API shapes, the CLI's formatting."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from portside.cli.portfmt import NoPublicPort, displayable_ports, port_lines
from portside.errors import Internal, InvalidArgument, NotImplementedYet
from portside.network import hostports
from portside.network.portmap import (
    PortMapping,
    PortRequest,
    api_port_list,
    network_settings_ports,
    parse_requests,
    with_exposed,
)
from portside.network.portmap import Publication, check_container_id
from portside.network.portrules import render


def test_parse_requests_reads_port_bindings_in_order() -> None:
    got = parse_requests({
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": ""}],
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5300-5310"}],
        "90": [{"HostPort": "0"}],
        "91/tcp": None,
        "92/tcp": [],
    })
    assert got == [
        PortRequest("tcp", 80, "0.0.0.0", 8080, 8080),
        PortRequest("tcp", 80, "127.0.0.1", 0, 0),
        PortRequest("udp", 53, "0.0.0.0", 5300, 5310),
        PortRequest("tcp", 90, "0.0.0.0", 0, 0),
    ]
    assert got[1].ephemeral and not got[0].ephemeral


@pytest.mark.parametrize("bindings, error, message", [
    ({"80/tcpx": []}, InvalidArgument, 'invalid port specification: "80/tcpx"'),
    ({"0/tcp": []}, InvalidArgument, 'invalid port specification: "0/tcp"'),
    ({"70000/tcp": []}, InvalidArgument, 'invalid port specification: "70000/tcp"'),
    ({"80/tcp": [{"HostPort": "99999"}]}, InvalidArgument, 'invalid port specification: "99999"'),
    ({"80/tcp": [{"HostPort": "90-80"}]}, InvalidArgument, 'invalid port specification: "90-80"'),
    ({"80/tcp": [{"HostPort": "abc"}]}, InvalidArgument, 'invalid port specification: "abc"'),
    ({"80/tcp": [{"HostIp": "1.2.3", "HostPort": "80"}]}, InvalidArgument, "invalid host IP address: 1.2.3"),
    ({"80/tcp": [{"HostIp": "::1", "HostPort": "80"}]}, NotImplementedYet, "IPv6"),
])
def test_parse_requests_refuses(bindings: dict, error: type, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(error, match=message.replace("(", r"\(")):
        parse_requests(bindings)


def test_mapping_overlap_rules() -> None:
    m = PortMapping("tcp", 80, "0.0.0.0", 8080)
    assert m.overlaps("tcp", "127.0.0.1", 8080) and m.overlaps("tcp", "0.0.0.0", 8080)
    assert not m.overlaps("udp", "0.0.0.0", 8080) and not m.overlaps("tcp", "0.0.0.0", 8081)
    specific = PortMapping("tcp", 80, "127.0.0.1", 8080)
    assert not specific.overlaps("tcp", "10.0.0.1", 8080) and specific.overlaps("tcp", "0.0.0.0", 8080)


def _publication(cid: str = "c1") -> Publication:
    return Publication(cid, "10.9.0.2", "ptb0", ("10.9.0.0/24",),
                       (PortMapping("tcp", 80, "0.0.0.0", 8080), PortMapping("udp", 53, "127.0.0.1", 5353)))


def test_render_names_every_rule_after_its_container() -> None:
    script = render("ptab_ports", [_publication("c1"), _publication("c2")])
    lines = script.splitlines()
    assert lines[:2] == ["table ip ptab_ports", "delete table ip ptab_ports"]  # replaced whole, atomically
    assert 'tcp dport 8080 dnat to 10.9.0.2:80 comment "portside container c1"' in script
    assert 'ip daddr 127.0.0.1 udp dport 5353 dnat to 10.9.0.2:53 comment "portside container c2"' in script
    assert ('oifname "ptb0" ip saddr { 127.0.0.0/8, 10.9.0.0/24 } ip daddr 10.9.0.2 tcp dport 80 '
            'ct status dnat masquerade comment "portside container c1"') in script
    assert sum('"portside container c1"' in line for line in lines) == 4  # 2 mappings x (dnat, masquerade)
    assert sum("portside bridge ptb0" in line for line in lines) == 1     # one guard per bridge
    assert "fib daddr type local jump published" in script


def test_render_without_publications_drops_the_table() -> None:
    assert render("ptab_ports", []) == "table ip ptab_ports\ndelete table ip ptab_ports\n"
    assert render("ptab_ports", [Publication("c1", "10.9.0.2", "ptb0", ())]).count("\n") == 2


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed")
def test_rendered_script_is_valid_nft() -> None:
    check = subprocess.run(["nft", "-c", "-f", "-"], input=render("ptab_ports", [_publication()]),
                           capture_output=True, text=True)
    if "Operation not permitted" in check.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN")
    assert check.returncode == 0, check.stderr


def test_publication_refuses_names_that_could_break_out_of_a_comment() -> None:
    with pytest.raises(Internal):
        Publication('c1" drop', "10.9.0.2", "ptb0", ())
    with pytest.raises(Internal):
        Publication("c1", "10.9.0.2", 'br"0', ())
    for bad in ("../../etc/x", ".hidden", "", "a/b"):
        with pytest.raises(Internal):
            check_container_id(bad)
    check_container_id("0123abc")
    assert Publication.from_json(_publication().to_json()) == _publication()


def test_ephemeral_range_reads_the_kernel_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "range"
    path.write_text("40000\t40100\n")
    assert hostports.ephemeral_range(str(path)) == (40000, 40100)
    path.write_text("garbage")
    assert hostports.ephemeral_range(str(path)) == hostports.DEFAULT_RANGE


def test_api_shapes_of_published_and_exposed_ports() -> None:
    published = network_settings_ports([PortMapping("tcp", 80, "0.0.0.0", 8080),
                                        PortMapping("tcp", 80, "127.0.0.1", 8081)])
    assert published == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                                     {"HostIp": "127.0.0.1", "HostPort": "8081"}]}
    settings = with_exposed(published, {"80/tcp": {}, "443/tcp": {}, "53/udp": {}})
    assert settings == {"80/tcp": published["80/tcp"], "443/tcp": None, "53/udp": None}
    assert api_port_list(settings) == [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"},
    ]
    assert displayable_ports(api_port_list(settings)) == \
        "53/udp, 443/tcp, 0.0.0.0:8080->80/tcp, 127.0.0.1:8081->80/tcp"


@pytest.mark.parametrize("ports, column", [
    ([], ""),
    ([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}], "0.0.0.0:8080->80/tcp"),
    ([{"PrivatePort": 80, "Type": "tcp"}], "80/tcp"),
    # same number on both sides groups into a run, as -p 8000-8001:8000-8001 shows
    ([{"IP": "0.0.0.0", "PrivatePort": p, "PublicPort": p, "Type": "tcp"} for p in (8000, 8001)],
     "0.0.0.0:8000-8001->8000-8001/tcp"),
    ([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
      {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}], "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"),
    ([{"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
      {"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 81, "Type": "tcp"}], "80-81/tcp, 0.0.0.0:5353->53/udp"),
])
def test_ps_ports_column(ports: list, column: str) -> None:  # type: ignore[type-arg]
    assert displayable_ports(ports) == column


def test_port_command_lines() -> None:
    ports = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
             "9/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}],
             "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}], "443/tcp": None}
    assert port_lines(ports, "web") == ["9/tcp -> 0.0.0.0:32768", "53/udp -> 127.0.0.1:5353",
                                        "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"]
    assert port_lines(ports, "web", "80") == ["0.0.0.0:8080", "[::]:8080"]
    assert port_lines(ports, "web", "53/udp") == ["127.0.0.1:5353"]
    with pytest.raises(NoPublicPort, match="^Error: No public port '443' published for web$"):
        port_lines(ports, "web", "443")
    with pytest.raises(NoPublicPort, match="^Error: No public port '53' published for web$"):
        port_lines(ports, "web", "53")  # tcp unless a protocol is given
    with pytest.raises(ValueError, match=r'^Error: invalid port \(x\): strconv.ParseUint: parsing "x": invalid syntax$'):
        port_lines(ports, "web", "x")


@pytest.mark.parametrize("fields", [
    {"container_ip": "10.9.0.2; flush ruleset"},
    {"container_ip": "fd00::2"},
    {"bridge_subnets": ("10.9.0.0/24 }",)},
    {"mappings": (PortMapping("tcp", 80, "0.0.0.0 accept", 8080),)},
    {"mappings": (PortMapping("icmp", 80, "0.0.0.0", 8080),)},
    {"mappings": (PortMapping("tcp", 0, "0.0.0.0", 8080),)},
])
def test_publication_refuses_what_would_not_be_an_address_or_port_in_the_script(fields: dict) -> None:  # type: ignore[type-arg]
    good = {"container_id": "c1", "container_ip": "10.9.0.2", "bridge": "ptb0", "bridge_subnets": ("10.9.0.0/24",),
            "mappings": (PortMapping("tcp", 80, "0.0.0.0", 8080),)}
    Publication(**good)  # type: ignore[arg-type]
    with pytest.raises(Internal):
        Publication(**{**good, **fields})  # type: ignore[arg-type]
