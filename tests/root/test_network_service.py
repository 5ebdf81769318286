"""NetworkService's seam for the DNS server: started per user network with its gateway, name and
lookups, closed at network rm; and what a service leaves on the host after shutdown (nothing)."""

from __future__ import annotations

import secrets
from typing import Callable

import pytest

from nethelpers import leftovers
from portside.network.records import Endpoint
from portside.network.service import CreateOptions, NetworkService

pytestmark = pytest.mark.root


class FakeDns:
    def __init__(self, gateway: str, lookup: Callable[[str], list[str]], reverse: Callable[[str], str | None], *,
                 network: str = "", internal: bool = False) -> None:
        self.gateway, self.lookup, self.reverse, self.network, self.internal = gateway, lookup, reverse, network, internal
        self.started = self.closed = False
        made.append(self)

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        self.closed = True


made: list[FakeDns] = []


def test_dns_server_per_user_network_and_nothing_left(tmp_path) -> None:
    tag = "pt" + secrets.token_hex(3)
    service = NetworkService(str(tmp_path / "root"), str(tmp_path / "run"), tag=tag, dns=FakeDns)
    try:
        record = service.create(CreateOptions(name="front", internal=True))
        (server,) = [s for s in made if s.network == "front"]
        assert server.started and server.gateway == record.gateway and server.internal is True
        assert not any(s.network == "bridge" for s in made)  # the default bridge has no DNS, as Docker's
        with service._lock:  # an endpoint as attach records it (no container needed to test the lookups)
            stored = service.store.load(record.id)
            stored.endpoints["c" * 64] = Endpoint(container_id="c" * 64, endpoint_id="e", name="web",
                                                   ip="172.30.0.9", aliases=["www"])
            service.store.save(stored)
        assert server.lookup("web") == server.lookup("WWW.") == server.lookup("c" * 12) == ["172.30.0.9"]
        assert server.lookup("other") == [] and server.reverse("172.30.0.9") == "web.front"
        assert service.has_dns(record.id)
        with service._lock:
            stored = service.store.load(record.id)
            stored.endpoints.clear()
            service.store.save(stored)
        service.remove("front")
        assert server.closed and not service.has_dns(record.id)
    finally:
        service.shutdown()
    assert leftovers(tag, str(tmp_path / "run")) == []
