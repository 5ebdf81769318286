"""What a bridge needs so its containers' published ports work from the host's loopback and from itself.

- ``route_localnet``: a connection to 127.0.0.1:HOSTPORT is DNATed to the
  container but keeps its 127.0.0.1 source until postrouting masquerades it; the
  kernel routes such a packet out of a non-loopback device only with this set,
  and accepts the reply to 127.0.0.1 coming back in only with it too.
- ``hairpin_mode`` on the bridge's ports: with bridge netfilter on, a container's
  packet to a host address DNATed back to the same container is bridged out of
  the port it came in by, which a bridge refuses unless the port is in hairpin
  mode (Docker sets it on every endpoint when its userland proxy is off).
- the bridge's IPv4 networks: the sources whose DNATed connections come back
  onto the same bridge and must be masqueraded (hairpin).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from portside.errors import Internal

_SYS_NET = "/sys/class/net"
_PROC_CONF = "/proc/sys/net/ipv4/conf"


def prepare(bridge: str) -> tuple[str, ...]:
    """Set route_localnet and hairpin mode for ``bridge``; its IPv4 networks. Internal if it does not exist."""
    if not os.path.isdir(os.path.join(_SYS_NET, bridge, "brif")):
        raise Internal(f"no such bridge: {bridge}")
    try:
        _write(os.path.join(_PROC_CONF, bridge, "route_localnet"), "1")
    except FileNotFoundError:
        raise Internal(f"no such bridge: {bridge}") from None
    brif = os.path.join(_SYS_NET, bridge, "brif")
    for port in os.listdir(brif):
        try:
            _write(os.path.join(brif, port, "hairpin_mode"), "1")
        except FileNotFoundError:
            pass  # the port left the bridge meanwhile
    return subnets(bridge)


def subnets(bridge: str) -> tuple[str, ...]:
    from pyroute2 import IPRoute  # type: ignore[import-untyped, unused-ignore]

    with IPRoute() as ipr:
        indexes: list[int] = ipr.link_lookup(ifname=bridge)
        if not indexes:
            raise Internal(f"no such bridge: {bridge}")
        addrs: list[Any] = list(ipr.get_addr(index=indexes[0], family=2))
    nets = {str(ipaddress.ip_interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}").network) for a in addrs}
    return tuple(sorted(nets))


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise Internal(f"write {path}: {e.strerror}") from None
