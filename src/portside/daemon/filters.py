"""Docker's `filters` query parameter: JSON in either of its two shapes."""

from __future__ import annotations

from typing import Any

from portside.errors import InvalidArgument

Filters = dict[str, list[str]]


def parse_filters(raw: Any, allowed: set[str]) -> Filters:
    """``{"label":{"a=b":true}}`` or ``{"label":["a=b"]}`` → ``{"label": ["a=b"]}``; unknown keys are refused."""
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid filter: filters must be a JSON object")
    out: Filters = {}
    for key, values in raw.items():
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
        if isinstance(values, dict):
            out[key] = [str(v) for v, on in values.items() if on]
        elif isinstance(values, list):
            out[key] = [str(v) for v in values]
        elif isinstance(values, str):
            out[key] = [values]
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    return out


def bool_filter(filters: Filters, key: str) -> bool | None:
    values = filters.get(key)
    if not values:
        return None
    if len(set(v.lower() for v in values)) > 1:
        raise InvalidArgument(f"invalid filter '{key}': conflicting values")
    value = values[0].lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter '{key}={values[0]}'")
