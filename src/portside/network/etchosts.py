"""A container's /etc/hosts, as dockerd writes it (libnetwork ``etchosts``, daemon ``buildSandboxOptions``).

Docker's default lines, then ``--add-host`` entries (``host-gateway`` standing
for the daemon's host-gateway address, by default the default bridge's
gateway), then legacy links, then one line per address of the container
itself: ``IP\\tFQDN HOSTNAME`` when it has a domain, ``IP\\tHOSTNAME``
otherwise. A container without an address (``--network none``) has no line
for its own name, as in Docker. ``--network host`` without ``--add-host``
gets the host's own file instead: :func:`build` is not called then.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from portside.errors import InvalidArgument

DEFAULTS = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)
HOST_GATEWAY = "host-gateway"


def extra_host_records(extra_hosts: Sequence[str], host_gateway: str = "") -> list[tuple[str, str]]:
    """HostConfig.ExtraHosts (``NAME:IP``; the first colon splits, so IPv6 works) → (IP, NAME) records.

    ``host-gateway`` without a host-gateway address is dockerd's error.
    """
    records = []
    for entry in extra_hosts:
        name, sep, ip = entry.partition(":")
        if not sep or not name:
            raise InvalidArgument(f'bad format for add-host: "{entry}"')
        if ip == HOST_GATEWAY:
            if not host_gateway:
                raise InvalidArgument("unable to derive the IP value for host-gateway")
            ip = host_gateway
        else:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise InvalidArgument(f'invalid IP address in add-host: "{ip}"') from None
        records.append((ip, name))
    return records


def own_names(hostname: str, domainname: str = "") -> str:
    """``web`` → ``web``; ``web`` + ``example.com`` or ``web.example.com`` → ``web.example.com web``."""
    fqdn = f"{hostname}.{domainname}" if domainname else hostname
    short, dot, _ = fqdn.partition(".")
    return f"{fqdn} {short}" if dot else fqdn


def build(*, hostname: str, domainname: str = "", extra_hosts: Sequence[str] = (), host_gateway: str = "",
          links: Sequence[tuple[str, str]] = (), addresses: Sequence[str] = ()) -> str:
    """The file's text. ``links``: (IP, names) of linked containers; ``addresses``: the container's own IPs."""
    records = list(DEFAULTS) + extra_host_records(extra_hosts, host_gateway) + list(links)
    records += [(address, own_names(hostname, domainname)) for address in addresses]
    return "".join(f"{ip}\t{names}\n" for ip, names in records)
