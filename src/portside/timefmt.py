"""Timestamps as Docker writes and reads them (RFC 3339 with nanoseconds, UTC)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)


def now_rfc3339() -> str:
    return format_rfc3339(time.time_ns())


def format_rfc3339(ns: int) -> str:
    """Go's time.RFC3339Nano: fraction without trailing zeros, Z for UTC."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{frac:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch; 0.0 for an empty or unparseable value (Docker shows those as 0001-01-01)."""
    m = _RFC3339.fullmatch(value.strip()) if value else None
    if not m:
        return 0.0
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    tz = m.group(3).upper()
    if tz == "Z":
        offset = 0
    else:
        sign = 1 if tz[0] == "+" else -1
        offset = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return base.replace(tzinfo=timezone.utc).timestamp() - offset + frac
