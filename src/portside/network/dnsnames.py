"""The names one network's DNS server answers: a table core fills as endpoints come and go.

An endpoint (a container on the network) has one IPv4 address and names:
its container name, its short id, its ``--network-alias`` aliases. Names
match without regard to ASCII case; several endpoints may share a name (an
alias), and then the name has all their addresses, as in Docker. PTR
answers ``NAME.NETWORK`` with the endpoint's first name, as Docker's.

``lookup`` and ``reverse`` are what :class:`~portside.network.dns.DnsServer`
calls, on its own thread, while core adds and removes endpoints on others.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class _Entry:
    address: str
    names: tuple[str, ...]      # lowercase, for lookups
    ptr: str                    # the first name as given: what PTR answers


class NameTable:
    def __init__(self, network: str) -> None:
        self.network = network
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}    # by endpoint id; guarded by _lock
        self._by_name: dict[str, list[str]] = {}  # lowercase name → addresses; guarded by _lock, rebuilt on change

    def add(self, endpoint: str, address: str, names: Iterable[str]) -> None:
        """Register (or replace) an endpoint: ``names`` first the container name, then its short id and aliases."""
        ipaddress.IPv4Address(address)
        given = [n.strip(".") for n in names if n.strip(".")]
        clean = tuple(dict.fromkeys(n.lower() for n in given))
        with self._lock:
            self._entries[endpoint] = _Entry(address, clean, given[0] if given else "")
            self._rebuild()

    def remove(self, endpoint: str) -> None:
        """Forget an endpoint; nothing happens if it is not there."""
        with self._lock:
            if self._entries.pop(endpoint, None) is not None:
                self._rebuild()

    def _rebuild(self) -> None:
        by_name: dict[str, list[str]] = {}
        for entry in self._entries.values():
            for name in entry.names:
                addresses = by_name.setdefault(name, [])
                if entry.address not in addresses:
                    addresses.append(entry.address)
        self._by_name = by_name

    def lookup(self, name: str) -> list[str]:
        return list(self._by_name.get(name.rstrip(".").lower(), ()))

    def reverse(self, address: str) -> str | None:
        with self._lock:
            for entry in self._entries.values():
                if entry.address == address and entry.ptr:
                    return f"{entry.ptr}.{self.network}"
        return None
