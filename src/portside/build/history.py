"""A build step's ``created_by`` as dockerd's classic builder writes it (what ``docker history`` shows).

The classic builder commits a metadata step with the config's Cmd set to
``<shell> #(nop)  <comment>`` (the current SHELL, two blanks), a COPY/ADD or
WORKDIR step with ``<shell> #(nop) <comment>`` (one blank), and formats the
comments with Go's fmt verbs: ``CMD %q`` of a list gives ``["a" "b"]``,
``VOLUME %v`` gives ``[/a /b]``, ``HEALTHCHECK %q`` of the HealthConfig
struct gives ``&{["CMD" "true"] "30s" "5s" "0s" '\\x02'}``. Checked against
dockerd 20.10 (tests/cli/test_cli_build_vs_dockerd.py).
"""

from __future__ import annotations

from typing import Any

_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v",
            "\\": r"\\"}


def metadata(shell: list[str], comment: str) -> str:
    return f"{' '.join(shell)} #(nop)  {comment}"


def file_step(shell: list[str], comment: str) -> str:
    return f"{' '.join(shell)} #(nop) {comment}"


def _escape(ch: str, quote: str) -> str:
    if ch == quote:
        return "\\" + ch
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch == " " or ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """Go's strconv.Quote (``%q`` of a string)."""
    return '"' + "".join(_escape(ch, '"') for ch in text) + '"'


def go_quote_rune(code: int) -> str:
    """Go's ``%q`` of an integer: the character literal of that code point."""
    return "'" + _escape(chr(code), "'") + "'"


def go_quote_list(items: list[str]) -> str:
    """``%q`` of a []string."""
    return "[" + " ".join(go_quote(s) for s in items) + "]"


def go_list(items: list[str]) -> str:
    """``%v`` of a []string."""
    return "[" + " ".join(items) + "]"


def go_duration(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 1_000_000_000:
        for unit, size, digits in (("ms", 1_000_000, 6), ("µs", 1_000, 3), ("ns", 1, 0)):
            if u >= size:
                return sign + _decimal(u, size, digits) + unit
    hours, rest = divmod(u, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    out = f"{hours}h" if hours else ""
    out += f"{minutes}m" if hours or minutes else ""
    return sign + out + _decimal(rest, 1_000_000_000, 9) + "s"


def _decimal(value: int, size: int, digits: int) -> str:
    whole, frac = divmod(value, size)
    text = f"{frac:0{digits}d}".rstrip("0") if digits else ""
    return f"{whole}.{text}" if text else str(whole)


def healthcheck(config: dict[str, Any]) -> str:
    """``%q`` of dockerd 20.10's HealthConfig {Test, Interval, Timeout, StartPeriod, Retries}."""
    fields = [go_quote_list(list(config.get("Test") or []))]
    fields += [go_quote(go_duration(int(config.get(k) or 0))) for k in ("Interval", "Timeout", "StartPeriod")]
    fields.append(go_quote_rune(int(config.get("Retries") or 0)))
    return "&{" + " ".join(fields) + "}"
