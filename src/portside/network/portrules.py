"""The nftables table ``ip TAG_ports``: DNAT for published ports, and the masquerades that make it work.

The table is rendered whole from the publications and replaced in one ``nft -f -``
transaction (add, delete, recreate), so every change is atomic, a restart that
re-applies the same state adds nothing twice, and rules of a container that is
gone cannot outlive a sweep. Each rule's comment names the container it is for.

Why each chain::

  prerouting   traffic from other hosts and from containers to any host address
               (``fib daddr type local``) is DNATed to the container
  output       the same for connections the host makes itself, 127.0.0.1 included
  postrouting  a connection from 127.0.0.0/8 leaving by the bridge is masqueraded
               (route_localnet lets the kernel route it at all); a connection from
               the bridge's own subnet DNATed back onto the bridge (hairpin, a
               container reaching itself or a neighbour by a host address) is
               masqueraded so the reply comes back through the host's NAT
  input        route_localnet would also let a container address the host's
               127.0.0.1: only replies of connections we DNATed may arrive so
"""

from __future__ import annotations

import subprocess

from portside.errors import Internal
from portside.network import nftlib
from portside.network.portmap import ANY_IP, Publication


def comment(container_id: str) -> str:
    """The comment on every rule of a container: how a reader (and a test) tells them apart."""
    return f"portside container {container_id}"


def render(table: str, publications: list[Publication]) -> str:
    """The ``nft -f`` script that replaces ``ip TABLE`` by the rules for ``publications`` (none: no table)."""
    script = [f"table ip {table}", f"delete table ip {table}"]
    mappings = [(p, m) for p in publications for m in p.mappings]
    if not mappings:
        return "\n".join(script) + "\n"
    dnat, postrouting = [], []
    for p, m in mappings:
        tag = f'comment "{comment(p.container_id)}"'
        match_ip = "" if m.host_ip == ANY_IP else f"ip daddr {m.host_ip} "
        dnat.append(f"{match_ip}{m.proto} dport {m.host_port} dnat to {p.container_ip}:{m.container_port} {tag}")
        sources = ", ".join(("127.0.0.0/8", *p.bridge_subnets))
        postrouting.append(f'oifname "{p.bridge}" ip saddr {{ {sources} }} ip daddr {p.container_ip} '
                           f"{m.proto} dport {m.container_port} ct status dnat masquerade {tag}")
    bridges = sorted({p.bridge for p, _ in mappings})
    guard = [f'iifname "{b}" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop comment "portside bridge {b}"'
             for b in bridges]
    script += [
        f"table ip {table} {{",
        "  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;",
        "    fib daddr type local jump published", "  }",
        "  chain output {", "    type nat hook output priority -100; policy accept;",
        "    fib daddr type local jump published", "  }",
        "  chain published {", *(f"    {r}" for r in dnat), "  }",
        "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;",
        *(f"    {r}" for r in postrouting), "  }",
        "  chain input {", "    type filter hook input priority filter; policy accept;",
        *(f"    {r}" for r in guard), "  }",
        "}",
    ]
    return "\n".join(script) + "\n"


def apply(script: str, nft: str = "nft") -> None:
    """Run ``script`` as one nft transaction: all of it takes effect, or none.

    In-process through libnftables when it loads (network/nftlib.py says why), else ``nft -f -``.
    """
    if nft == "nft":
        try:
            nftlib.run(script)
            return
        except nftlib.NftError as e:
            raise Internal(f"programming port rules: {e}") from None
        except nftlib.Unavailable:
            pass
    try:
        result = subprocess.run([nft, "-f", "-"], input=script, capture_output=True, text=True, timeout=30)
    except OSError as e:
        raise Internal(f"programming port rules: {nft}: {e.strerror}") from None
    if result.returncode != 0:
        raise Internal(f"programming port rules: {result.stderr.strip() or f'nft exited {result.returncode}'}")
