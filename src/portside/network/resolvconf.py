"""A container's /etc/resolv.conf from the host's, as dockerd builds it (libnetwork ``sandbox_dns_unix.go``).

- ``--network host`` without DNS options: the host's file as it is (same
  network namespace: its loopback resolvers work).
- Any other network: the host's file less its loopback nameservers
  (127.0.0.0/8, ::1: in the container's namespace nothing answers there) and,
  IPv6 being off, less its IPv6 ones; with no nameserver left, Google's
  8.8.8.8 and 8.8.4.4, as Docker.
- ``--dns``, ``--dns-search``, ``--dns-option`` each replace the host's
  nameservers, search list, options; a search list of ``.`` means none.
- A user-defined network: the one nameserver is the network's embedded server
  (for portside the bridge's gateway, where :class:`~portside.network.dns.DnsServer`
  listens), with ``ndots:0`` unless the options set ndots; the nameservers the
  container would otherwise have used become that server's upstreams. Those
  keep the host's loopback resolvers: the server forwards from the daemon, in
  the host's namespace, where they answer (as Docker's "host loopback" resolvers).

Pure functions over text; :func:`read_host` is the one that reads files.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_IPV4 = ("8.8.8.8", "8.8.4.4")
DEFAULT_IPV6 = ("2001:4860:4860::8888", "2001:4860:4860::8844")
HOST_PATH = "/etc/resolv.conf"
SYSTEMD_RESOLVED = ("127.0.0.53",)
SYSTEMD_PATH = "/run/systemd/resolve/resolv.conf"


@dataclass(frozen=True)
class ResolvConf:
    text: str                           # the container's /etc/resolv.conf
    upstreams: tuple[str, ...] = ()     # with an embedded server: where it forwards what it does not know


@dataclass(frozen=True)
class Parsed:
    nameservers: tuple[str, ...]
    search: tuple[str, ...]
    options: tuple[str, ...]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.partition("%")[0])  # fe80::1%eth0: the zone names an interface
    except ValueError:
        return None


def parse(text: str) -> Parsed:
    """Nameservers in order; the last ``search`` line's domains and the last ``options`` line's, as resolv.conf(5)."""
    nameservers: list[str] = []
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        keyword, values = words[0], words[1:]
        if keyword == "nameserver" and len(values) >= 1 and _address(values[0]) is not None:
            nameservers.append(values[0])
        elif keyword == "search":
            search = tuple(values)
        elif keyword == "options":
            options = tuple(values)
    return Parsed(tuple(nameservers), search, options)


def _is_loopback(nameserver: str) -> bool:
    address = _address(nameserver)
    return address is not None and address.is_loopback


def _is_ipv6(nameserver: str) -> bool:
    return isinstance(_address(nameserver), ipaddress.IPv6Address)


def _kept(nameserver: str, ipv6: bool) -> bool:
    return not _is_loopback(nameserver) and (ipv6 or not _is_ipv6(nameserver))


def filter_host(text: str, *, ipv6: bool = False) -> str:
    """The host's file without the nameserver lines a container cannot use; Docker's defaults if none remain.

    Everything else (comments, search, options) is kept as it is, as Docker's
    ``FilterResolvDNS`` does.
    """
    lines = []
    for line in text.splitlines(keepends=True):
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and not _kept(words[1], ipv6):
            continue
        lines.append(line)
    kept = "".join(lines)
    if not parse(kept).nameservers:
        defaults = DEFAULT_IPV4 + (DEFAULT_IPV6 if ipv6 else ())
        if kept and not kept.endswith("\n"):
            kept += "\n"
        kept += "".join(f"nameserver {d}\n" for d in defaults)
    return kept


def render(nameservers: Sequence[str], search: Sequence[str], options: Sequence[str]) -> str:
    """The file dockerd writes from lists (its ``resolvconf.Build``): search, nameservers, options."""
    out = []
    if search and " ".join(search).strip() != ".":
        out.append("search " + " ".join(search) + "\n")
    out += [f"nameserver {n}\n" for n in nameservers]
    if options and " ".join(options).strip():
        out.append("options " + " ".join(options) + "\n")
    return "".join(out)


def build(host_text: str, *, dns: Sequence[str] = (), dns_search: Sequence[str] = (),
          dns_options: Sequence[str] = (), host_network: bool = False, embedded: str | None = None,
          ipv6: bool = False) -> ResolvConf:
    """The container's resolv.conf (and, with ``embedded``, its DNS server's upstreams).

    ``host_text``: the host's file (:func:`read_host`); ``dns``/``dns_search``/``dns_options``:
    HostConfig.Dns/DnsSearch/DnsOptions; ``embedded``: the address of the
    network's DNS server, for a container on a user-defined network.
    """
    custom = bool(dns or dns_search or dns_options)
    host = parse(host_text)
    if host_network and not custom:
        return ResolvConf(host_text)
    if embedded is not None:
        upstreams = tuple(dns) if dns else tuple(n for n in host.nameservers if ipv6 or not _is_ipv6(n))
        upstreams = upstreams or DEFAULT_IPV4
        options = tuple(dns_options) if dns_options else host.options
        if not any(o.startswith("ndots:") for o in options):
            # names are tried as given first: a container's name before search-domain variants of it
            options += ("ndots:0",)
        search = tuple(dns_search) if dns_search else host.search
        return ResolvConf(render([embedded], search, options), upstreams)
    if not custom:
        return ResolvConf(filter_host(host_text, ipv6=ipv6))
    if dns:
        nameservers = tuple(dns)
    else:
        nameservers = tuple(n for n in host.nameservers if host_network or _kept(n, ipv6))
        nameservers = nameservers or DEFAULT_IPV4 + (DEFAULT_IPV6 if ipv6 else ())
    return ResolvConf(render(nameservers, tuple(dns_search) if dns_search else host.search,
                             tuple(dns_options) if dns_options else host.options))


def read_host(path: str = HOST_PATH, *, systemd_path: str = SYSTEMD_PATH) -> str:
    """The host's resolv.conf; systemd-resolved's list of real servers when the file only names its stub.

    A missing file reads as empty (a container then gets Docker's defaults).
    """
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return ""
    if parse(text).nameservers == SYSTEMD_RESOLVED:
        try:
            with open(systemd_path) as f:
                return f.read()
        except OSError:
            pass
    return text
