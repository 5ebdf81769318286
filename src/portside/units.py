"""Sizes and durations printed and parsed exactly as docker/go-units does.

Which docker command prints what (docker/cli, read from the source):

=====================================  =========================================
``docker image ls`` SIZE               ``human_size_precision(size, 3)``
``docker image ls`` SHARED/UNIQUE SIZE ``human_size(...)``
``docker history`` SIZE (``-H``)       ``human_size_precision(size, 3)``
``docker history`` SIZE (``-H=false``) the plain byte count
``docker system df`` SIZE/RECLAIMABLE  ``human_size(...)`` (4 significant digits)
CREATED columns (images, history, ps)  ``time_ago(created)``
=====================================  =========================================

``docker history`` leaves CREATED empty for layers created before 2000-01-01;
``docker image ls`` prints ``time_ago`` of whatever ``Created`` holds.
"""

from __future__ import annotations

import time

from portside.errors import InvalidArgument

KB = 1000
MB = 1000 * KB
GB = 1000 * MB
TB = 1000 * GB
PB = 1000 * TB

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB
PiB = 1024 * TiB

_DECIMAL_ABBRS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_ABBRS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_DECIMAL_MAP = {"k": KB, "m": MB, "g": GB, "t": TB, "p": PB}
_BINARY_MAP = {"k": KiB, "m": MiB, "g": GiB, "t": TiB, "p": PiB}


def _size_and_unit(size: float, base: float, abbrs: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(abbrs) - 1:
        size /= base
        i += 1
    return size, abbrs[i]


def human_size_precision(size: float, precision: int) -> str:
    """go-units ``HumanSizeWithPrecision``: decimal units, ``%.{precision}g``.

    ``docker image ls`` and ``docker history -H`` print sizes with precision 3
    (``human_size_precision(4261296, 3) == "4.26MB"``).
    """
    value, unit = _size_and_unit(float(size), 1000.0, _DECIMAL_ABBRS)
    # Python's %g and Go's %g agree for an explicit precision: both round the
    # exact binary value and switch to an exponent when exp < -4 or exp >= precision.
    return f"{value:.{precision}g}{unit}"


def human_size(size: float) -> str:
    """go-units ``HumanSize``: decimal units, 4 significant digits ("4.261MB", "0B", "1kB").

    Used by ``docker system df`` and the SHARED/UNIQUE SIZE image columns.
    """
    return human_size_precision(size, 4)


def bytes_size(size: float) -> str:
    """go-units ``BytesSize``: binary units, 4 significant digits ("1KiB", "3.42GiB")."""
    value, unit = _size_and_unit(float(size), 1024.0, _BINARY_ABBRS)
    return f"{value:.4g}{unit}"


def from_human_size(size: str) -> int:
    """go-units ``FromHumanSize``: "32", "32kb", "32.5 kB", ".3kB" with decimal (SI) multipliers."""
    return _parse_size(size, _DECIMAL_MAP)


def ram_in_bytes(size: str) -> int:
    """go-units ``RAMInBytes`` as ``--memory`` uses it: "512k", "10m", "1.5GB", "32KiB" (binary)."""
    return _parse_size(size, _BINARY_MAP)


def _parse_size(size_str: str, multipliers: dict[str, int]) -> int:
    """The number, one optional space, then an optional suffix: b, k, kb, kib (any case)."""
    num, sep, suffix = size_str.partition(" ")
    if not sep:
        # No space: the suffix starts after the last digit or dot.
        last = max(size_str.rfind(c) for c in "0123456789.")
        if last == -1:
            raise InvalidArgument(f"invalid size: '{size_str}'")
        num, suffix = size_str[: last + 1], size_str[last + 1 :]
    value = _go_parse_float(num)
    if value < 0:
        raise InvalidArgument(f"invalid size: '{size_str}'")
    if not suffix:
        return int(value)
    if len(suffix) > 3:
        raise InvalidArgument(f"invalid suffix: '{suffix}'")
    lowered = suffix.lower()
    if lowered[0] == "b":
        if len(lowered) > 1:
            raise InvalidArgument(f"invalid suffix: '{lowered}'")
        return int(value)
    multiplier = multipliers.get(lowered[0])
    if multiplier is None or lowered[1:] not in ("", "b", "ib"):
        raise InvalidArgument(f"invalid suffix: '{lowered}'")
    return int(value * multiplier)


_DIGITS = r"[0-9]+(?:_[0-9]+)*"  # Go literals allow "_" between digits: "1_000"
# A pattern string, and re imported at first use: the CLI imports this module
# on every `portside run`, where no size flag is usually given.
_GO_DECIMAL_FLOAT = rf"[+-]?(?:{_DIGITS}\.?(?:{_DIGITS})?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?"


def _go_parse_float(text: str) -> float:
    """strconv.ParseFloat for the decimal forms a size can take ("32", "32.", ".3", "1e3", "1_0").

    Python's float() is laxer (it takes "inf" and surrounding spaces), so the
    syntax is checked first; the message is the one Go's error prints.
    """
    import re

    if not re.fullmatch(_GO_DECIMAL_FLOAT, text):
        raise InvalidArgument(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    return float(text)


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration`` of a duration given in seconds.

    "Less than a second", "1 second", "59 seconds", "About a minute", "3 minutes",
    "About an hour", "2 hours" ... "47 hours", "2 days" ... "13 days", "2 weeks",
    "8 weeks", "2 months" ... "23 months", "2 years".
    """
    # Go works on an int64 count of nanoseconds and truncates towards zero.
    nanos = int(seconds * 1e9)
    whole_seconds = _trunc_div(nanos, 1_000_000_000)
    if whole_seconds < 1:
        return "Less than a second"
    if whole_seconds == 1:
        return "1 second"
    if whole_seconds < 60:
        return f"{whole_seconds} seconds"
    minutes = _trunc_div(nanos, 60 * 1_000_000_000)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(_go_hours(nanos) + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(_go_hours(nanos)) // 24 // 365} years"


def _go_hours(nanos: int) -> float:
    """time.Duration.Hours: whole hours plus the float remainder, as Go computes it."""
    hour_ns = 3600 * 1_000_000_000
    whole = _trunc_div(nanos, hour_ns)
    return whole + (nanos - whole * hour_ns) / (60 * 60 * 1e9)


def _trunc_div(a: int, b: int) -> int:
    quotient = abs(a) // b
    return quotient if a >= 0 else -quotient


def time_ago(created_unix: float, now: float | None = None) -> str:
    """The CREATED column: ``HumanDuration(now - created) + " ago"`` ("2 hours ago")."""
    if now is None:
        now = time.time()
    return human_duration(now - created_unix) + " ago"
