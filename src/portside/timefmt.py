"""Timestamps and durations as Docker writes and reads them.

Docker is written in Go, so every time value it accepts is one that Go's
``time`` package parses: RFC 3339 via ``time.Parse`` (which is laxer than the
RFC: a one-digit hour, a comma before the fraction), durations via
``time.ParseDuration``, and the ``since``/``until`` filter values via moby's
``GetTimestamp``, which tries a duration, then a few date layouts, then Unix
seconds. Error messages are Go's, because the Docker CLI prints them.
"""

from __future__ import annotations

import calendar
import functools
import json
import re
import time
from datetime import datetime, timezone

from portside.errors import InvalidArgument

RFC3339 = "2006-01-02T15:04:05Z07:00"

# Go layout elements, as the regular expressions Go's parser effectively applies.
# The hour takes one or two digits (Go's "15"); every other number is fixed
# width. A fraction may follow the seconds even where the layout has none.
_ELEMENTS = {
    "2006": r"(?P<year>[0-9]{4})",
    "01": r"(?P<month>[0-9]{2})",
    "02": r"(?P<day>[0-9]{2})",
    "15": r"(?P<hour>[0-9]{1,2})",
    "04": r"(?P<minute>[0-9]{2})",
    "05": r"(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]+))?",
    ".999999999": "",
    "Z07:00": r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})",
}
_ELEMENT_RE = re.compile("|".join(re.escape(e) for e in _ELEMENTS))

_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6,
                   "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_ELEMENT = re.compile(r"(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?(?P<unit>[^0-9.]*)")


def now_rfc3339() -> str:
    return format_rfc3339(time.time_ns())


def format_rfc3339(ns: int) -> str:
    """Go's time.RFC3339Nano: fraction without trailing zeros, Z for UTC."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{frac:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch; 0.0 for an empty or unparseable value (Docker shows those as 0001-01-01).

    Never raises: this reads stored values for display. Use ``validate_created``
    where a bad value must be refused.
    """
    try:
        return _parse_layout(value, RFC3339, local_offset=0)
    except InvalidArgument:
        return 0.0


def validate_created(value: str) -> None:
    """Refuse an image config ``created`` that Go's JSON decoder would refuse.

    moby decodes ``created`` into a ``time.Time``, which accepts what
    ``time.Parse(time.RFC3339, ...)`` accepts; anything else makes the whole
    config fail to load. An empty string is let through here (Docker refuses
    it too), as portside shows such images as created at 0001-01-01.
    """
    if value:
        _parse_layout(value, RFC3339, local_offset=0)


def parse_duration(value: str) -> int:
    """Go's ``time.ParseDuration``, in nanoseconds: ``300ms``, ``-1.5h``, ``1h30m``, ``2us``."""
    quoted = json.dumps(value, ensure_ascii=False)
    rest = value[1:] if value[:1] in ("+", "-") else value
    if rest == "0":
        return 0
    if not rest:
        raise InvalidArgument(f"time: invalid duration {quoted}")
    negative = value[0] == "-"
    limit = 2**63 if negative else 2**63 - 1  # a time.Duration is an int64
    total = 0
    while rest:
        m = _DURATION_ELEMENT.match(rest)
        assert m is not None  # every part of the pattern may be empty
        whole, fraction, unit = m.group("whole"), m.group("fraction") or "", m.group("unit")
        if not whole and not fraction:
            raise InvalidArgument(f"time: invalid duration {quoted}")
        if not unit:
            raise InvalidArgument(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise InvalidArgument(f"time: unknown unit {json.dumps(unit, ensure_ascii=False)} in duration {quoted}")
        scale = _DURATION_UNITS[unit]
        total += int(whole or 0) * scale + (int(fraction) * scale // 10 ** len(fraction) if fraction else 0)
        if total > limit:
            raise InvalidArgument(f"time: invalid duration {quoted}")
        rest = rest[m.end():]
    return -total if negative else total


def parse_timestamp(value: str, now: float, *, what: str) -> float:
    """A ``since``/``until`` filter value as seconds since the epoch (moby's ``GetTimestamp``).

    ``value`` is, in the order Docker tries them:

    - a Go duration before ``now``: ``10m``, ``1h30m``, ``1.5h``, ``300ms``
      (``0`` alone is Unix second 0, not "now");
    - a date: ``2024-01-01``, ``2024-01-01T10``, ``2024-01-01T10:00``,
      ``2024-01-01T10:00:00``, ``2024-01-01T10:00:00.5``, each optionally
      followed by ``Z`` or ``+02:00``/``-05:00``;
    - Unix seconds with an optional fraction: ``1700000000``, ``1700000000.5``.

    A date without a zone is in the daemon's local time zone, as in Docker,
    which uses the zone offset in effect at ``now``; on a daemon whose zone is
    UTC (the usual case in a container) that is UTC. ``what`` names the filter
    in the error: ``invalid value for 'until' filter: ...``.
    """
    try:
        return _get_timestamp(value, now)
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid value for '{what}' filter: {e}") from None


def _get_timestamp(value: str, now: float) -> float:
    if not value.strip():
        raise InvalidArgument("failed to parse value as time or duration: value is empty")
    if value != "0":
        try:
            return now - parse_duration(value) / 1e9
        except InvalidArgument:
            pass
    # Docker's rule: a Z, a + or a third dash means the value carries its zone.
    zoned = any(c in value for c in "zZ+") or value.count("-") == 3
    zone = "Z07:00" if zoned else ""
    if "." in value:
        layout = "2006-01-02T15:04:05.999999999" + zone
    elif "T" in value:
        colons = value.count(":")
        if zoned and "z" not in value.lower() and colons > 0:
            colons -= 1  # the colon of the +hh:mm offset
        layout = "2006-01-02" + ("T15", "T15:04", "T15:04:05")[min(colons, 2)] + zone
    else:
        layout = "2006-01-02" + zone
    try:
        return _parse_layout(value, layout, local_offset=time.localtime(now).tm_gmtoff)
    except InvalidArgument:
        if "-" in value:  # it looked like a date
            raise
    try:
        return _parse_unix(value)
    except InvalidArgument as e:
        raise InvalidArgument(f"failed to parse value as time or duration: {e}") from None


def _parse_unix(value: str) -> float:
    """Seconds, optionally with up to 20 digits of fraction (moby's ParseUnixTimestamp)."""
    seconds, _, fraction = value.partition(".")
    if not re.fullmatch(r"[+-]?[0-9]+", seconds):
        raise InvalidArgument(f"invalid seconds {json.dumps(seconds, ensure_ascii=False)}: invalid syntax")
    if not -(2**63) <= int(seconds) < 2**63:
        raise InvalidArgument(f"invalid seconds {json.dumps(seconds, ensure_ascii=False)}: value out of range")
    if len(fraction) > 20:
        raise InvalidArgument(f"invalid nanoseconds: length {len(fraction)} exceeds maximum 20")
    for i, c in enumerate(fraction):
        if c not in "0123456789":
            raise InvalidArgument(f"invalid nanoseconds: invalid character '{c}' at position {i}")
    return int(seconds) + int(fraction[:9].ljust(9, "0")) / 1e9


@functools.cache
def _layout_re(layout: str) -> re.Pattern[str]:
    return re.compile(_ELEMENT_RE.sub(lambda m: _ELEMENTS[m.group()], layout))


def _parse_layout(value: str, layout: str, *, local_offset: int) -> float:
    """Go's ``time.Parse(layout, value)`` for the layouts above, as seconds since the epoch.

    ``local_offset`` (seconds east of UTC) applies when the layout has no zone.
    """
    quoted = json.dumps(value, ensure_ascii=False)
    m = _layout_re(layout).fullmatch(value)
    if m is None:
        raise InvalidArgument(f"parsing time {quoted} as {json.dumps(layout)}: cannot parse")
    fields = {k: v for k, v in m.groupdict().items() if v is not None}
    year, month, day = int(fields["year"]), int(fields["month"]), int(fields["day"])
    hour, minute, second = (int(fields.get(k, 0)) for k in ("hour", "minute", "second"))
    zone = fields.get("zone", "Z")
    zone_hours, zone_minutes = (int(zone[1:3]), int(zone[4:6])) if zone != "Z" else (0, 0)
    # Go checks the fields in layout order, the day against its month last.
    # Offsets of 24 hours or 60 minutes pass, as in Go.
    for field, ok in (("month", 1 <= month <= 12), ("day", day <= 31), ("hour", hour < 24), ("minute", minute < 60),
                      ("second", second < 60), ("time zone offset hour", zone_hours <= 24),
                      ("time zone offset minute", zone_minutes <= 60)):
        if not ok:
            raise InvalidArgument(f"parsing time {quoted}: {field} out of range")
    # Go has a year 0 and Python does not; the Gregorian calendar repeats every 400 years.
    calendar_year = year or 400
    if not 1 <= day <= calendar.monthrange(calendar_year, month)[1]:
        raise InvalidArgument(f"parsing time {quoted}: day out of range")
    epoch = calendar.timegm((calendar_year, month, day, hour, minute, second))
    if year == 0:
        epoch -= 146097 * 86400  # the 400 years from year 0 to year 400
    if "zone" in fields:
        offset = (zone_hours * 3600 + zone_minutes * 60) * (-1 if zone[0] == "-" else 1)
    else:
        offset = local_offset
    return epoch - offset + int(fields.get("fraction", "")[:9].ljust(9, "0")) / 1e9
