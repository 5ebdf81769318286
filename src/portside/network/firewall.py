"""The bridge networks' nftables rules: table ``ip <tag>``, rendered whole and replaced in one transaction.

Rules are per network, never per container, so a container's start and exit
touch no rule. Every change re-renders the table from the records and hands
``nft -f -`` one script that declares, deletes and re-creates it: atomic,
idempotent, and a restart can neither lose nor duplicate a rule.

For each bridge network:
- forward: traffic within the bridge passes; to another of our bridges it is
  dropped (isolation); an --internal network's traffic never leaves its
  bridge; new connections from outside into a bridge are dropped unless
  DNAT'd (published ports, table ``ip <tag>_ports``), replies pass.
- postrouting: the subnet is masqueraded out of any other interface (not for
  --internal networks).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from portside.errors import Internal


@dataclass(frozen=True)
class BridgeRules:
    bridge: str
    subnet: str
    internal: bool


def _q(name: str) -> str:
    return json.dumps(name)  # interface names are [A-Za-z0-9_.-]; quoting keeps nft from reading keywords


def render(tag: str, networks: list[BridgeRules]) -> str:
    forward: list[str] = []
    nat: list[str] = []
    bridges = [n.bridge for n in networks]
    for n in networks:
        br = _q(n.bridge)
        forward.append(f"iifname {br} oifname {br} accept")
        others = [b for b in bridges if b != n.bridge]
        if others:
            forward.append(f"iifname {br} oifname {{ {', '.join(_q(b) for b in others)} }} drop")
        if n.internal:
            forward.append(f"iifname {br} drop")
            forward.append(f"oifname {br} drop")
            continue
        forward.append(f"oifname {br} ct state established,related accept")
        forward.append(f"oifname {br} ct status dnat accept")
        forward.append(f"oifname {br} drop")
        forward.append(f"iifname {br} accept")
        nat.append(f"ip saddr {n.subnet} oifname != {br} masquerade")
    body = "\n".join(
        [f"table ip {tag} {{",
         "  chain forward {", "    type filter hook forward priority filter; policy accept;",
         *("    " + r for r in forward), "  }",
         "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;",
         *("    " + r for r in nat), "  }",
         "}"])
    # declare (so the delete cannot fail), delete, re-create: one transaction
    return f"table ip {tag}\ndelete table ip {tag}\n{body}\n"


def apply(tag: str, networks: list[BridgeRules]) -> None:
    _nft(render(tag, networks))
    if networks:
        _ip_forward()


def remove(tag: str) -> None:
    _nft(f"table ip {tag}\ndelete table ip {tag}\n")


def exists(tag: str) -> bool:
    out = subprocess.run(["nft", "-j", "list", "tables", "ip"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return False
    return any(item.get("table", {}).get("name") == tag for item in json.loads(out.stdout).get("nftables", []))


def _nft(script: str) -> None:
    out = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise Internal(f"nft: {out.stderr.strip()}")


def _ip_forward() -> None:
    """Routing between the bridges and the uplink (dockerd turns it on as well, and leaves it on)."""
    with open("/proc/sys/net/ipv4/ip_forward", "r+") as f:
        if f.read().strip() != "1":
            f.seek(0)
            f.write("1")
