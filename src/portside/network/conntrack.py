"""Forgetting the conntrack entries of UDP flows to a host port whose mapping changed.

NAT is decided on a flow's first packet and kept in its conntrack entry, and a
UDP "flow" lives as long as packets keep coming: a client that sent to a port
before it was published (or while it led to a container now gone) would keep
its old fate for good. Docker deletes those entries when it maps and unmaps
UDP ports; so do we. TCP needs nothing: a new connection is a new entry.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


def forget_udp(host_ports: Iterable[int]) -> None:
    """Delete every conntrack entry of a UDP flow originally sent to one of ``host_ports``; best effort."""
    ports = sorted(set(host_ports))
    if not ports:
        return
    from pyroute2 import Conntrack  # type: ignore[import-untyped, unused-ignore]
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple  # type: ignore[import-untyped, unused-ignore]

    try:
        with Conntrack() as ct:
            for port in ports:
                entries: list[Any] = list(ct.dump_entries(tuple_orig=NFCTAttrTuple(proto=socket.IPPROTO_UDP, dport=port)))
                for entry in entries:
                    try:
                        ct.entry("del", tuple_orig=entry.tuple_orig)
                    except OSError:
                        pass  # expired meanwhile
    except OSError as e:
        log.warning("cannot forget udp flows to ports %s: %s", ports, e)
