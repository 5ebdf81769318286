"""build.history: Go's fmt forms the classic builder writes into created_by (checked against Go's own outputs)."""

from __future__ import annotations

import pytest

from portside.build import history


@pytest.mark.parametrize("ns, text", [
    (0, "0s"), (1, "1ns"), (1_100, "1.1µs"), (2_200_000, "2.2ms"), (500_000_000, "500ms"), (1_000_000_000, "1s"),
    (90_000_000_000, "1m30s"), (7_200_000_000_000, "2h0m0s"), (3_723_500_000_000, "1h2m3.5s"),
    (-1_500_000_000, "-1.5s"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert history.go_duration(ns) == text


def test_go_quote_forms() -> None:
    assert history.go_quote_list(["echo", 'say "hi"', "tab\there", "é", "back\\slash", "\x01"]) == \
        '["echo" "say \\"hi\\"" "tab\\there" "é" "back\\\\slash" "\\x01"]'
    assert history.go_list(["/a", "/b c"]) == "[/a /b c]"
    assert [history.go_quote_rune(n) for n in (0, 2, 9, 39, 65)] == ["'\\x00'", "'\\x02'", "'\\t'", "'\\''", "'A'"]


def test_healthcheck_and_prefixes() -> None:
    hc = {"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000, "Retries": 3}
    assert history.healthcheck(hc) == '&{["CMD-SHELL" "true"] "30s" "0s" "0s" \'\\x03\'}'
    assert history.healthcheck({"Test": ["NONE"]}) == '&{["NONE"] "0s" "0s" "0s" \'\\x00\'}'
    assert history.metadata(["/bin/sh", "-ec"], "USER app") == "/bin/sh -ec #(nop)  USER app"
    assert history.file_step(["/bin/sh", "-c"], "WORKDIR /w") == "/bin/sh -c #(nop) WORKDIR /w"
