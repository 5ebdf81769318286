"""The per-network name table (network/dnsnames.py) the DNS server looks names up in."""

from __future__ import annotations

import pytest

from portside.network.dnsnames import NameTable


def test_names_aliases_and_shared_aliases() -> None:
    t = NameTable("mynet")
    t.add("ep1", "172.18.0.2", ["Web", "0123456789ab", "frontend"])
    t.add("ep2", "172.18.0.3", ["api", "abcdef012345", "frontend"])
    assert t.lookup("web") == t.lookup("WEB.") == ["172.18.0.2"]
    assert t.lookup("0123456789ab") == ["172.18.0.2"]
    assert t.lookup("frontend") == ["172.18.0.2", "172.18.0.3"]
    assert t.lookup("nope") == []
    assert t.reverse("172.18.0.2") == "Web.mynet"
    assert t.reverse("172.18.0.9") is None
    t.remove("ep1")
    t.remove("ep1")
    assert t.lookup("web") == [] and t.lookup("frontend") == ["172.18.0.3"] and t.reverse("172.18.0.2") is None
    t.add("ep2", "172.18.0.4", ["api"])           # replaced, not added
    assert t.lookup("api") == ["172.18.0.4"] and t.lookup("frontend") == []


def test_only_ipv4_addresses() -> None:
    with pytest.raises(ValueError):
        NameTable("n").add("ep", "fd00::2", ["x"])
