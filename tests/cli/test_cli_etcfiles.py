"""/etc/hosts, /etc/resolv.conf and /etc/hostname in a container, portside against dockerd 20.10.

The reference dockerd runs with ``--bridge=none``: its containers have no
address, so their files hold what is written before networking adds the
container's own line, which is what portside writes at create.
"""

from __future__ import annotations

import socket

import pytest

from test_cli_containers import Engine, dockerd_engine, engine, err, out  # noqa: F401 (fixtures)

pytestmark = pytest.mark.root


def _files(engine: Engine, *flags: str, paths: str = "/etc/hosts /etc/resolv.conf /etc/hostname") -> str:
    return out(engine.cli("run", "--rm", *flags, "busybox", "sh", "-c", f"for f in {paths}; do echo \"== $f\"; "
                                                                          "cat $f; done"))


def test_add_host_hostname_and_domainname(engine: Engine) -> None:
    # --network none: no address, so no line of the container's own (the reference has no bridge)
    text = _files(engine, "--network", "none", "--add-host", "db:10.0.0.9", "--add-host", "v6:fd00::1", "-h", "web",
                  "--domainname", "example.com", paths="/etc/hosts /etc/hostname")
    assert text == ("== /etc/hosts\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                    "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
                    "10.0.0.9\tdb\nfd00::1\tv6\n== /etc/hostname\nweb\n")


def test_dns_flags_make_the_resolv_conf(engine: Engine) -> None:
    text = _files(engine, "--dns", "192.0.2.1", "--dns", "192.0.2.2", "--dns-search", "x.example",
                  "--dns-search", "y.example", "--dns-option", "ndots:2", "--dns-option", "edns0",
                  paths="/etc/resolv.conf")
    assert text == ("== /etc/resolv.conf\nsearch x.example y.example\nnameserver 192.0.2.1\nnameserver 192.0.2.2\n"
                    "options ndots:2 edns0\n")
    text = _files(engine, "--dns", "192.0.2.1", "--dns-search", ".", paths="/etc/resolv.conf")
    assert text.startswith("== /etc/resolv.conf\nnameserver 192.0.2.1\n")


def test_without_flags_the_hosts_resolvers(engine: Engine) -> None:
    with open("/etc/resolv.conf") as f:
        host = f.read()
    if any(line.split()[1:2] and line.split()[1].startswith(("127.", "::1")) for line in host.splitlines()
           if line.startswith("nameserver")):
        pytest.skip("the host names a loopback resolver: the engines' filtering differs in details")
    assert _files(engine, paths="/etc/resolv.conf") == "== /etc/resolv.conf\n" + host


def test_host_network_gets_the_hosts_files(engine: Engine) -> None:
    with open("/etc/hosts") as f:
        hosts = f.read()
    text = _files(engine, "--network", "host", paths="/etc/hosts /etc/hostname")
    assert text == f"== /etc/hosts\n{hosts}== /etc/hostname\n{socket.gethostname()}\n"


def test_inspect_shows_the_chosen_hostname(engine: Engine) -> None:
    for flags, expected in (((), None), (("--network", "host"), socket.gethostname()), (("-h", "web.lan"), "web.lan")):
        cid = out(engine.cli("create", *flags, "busybox")).strip()
        try:
            shown = out(engine.cli("inspect", "-f", "{{.Config.Hostname}}", cid)).strip()
            assert shown == (expected or cid[:12])
        finally:
            engine.cli("rm", cid)
