"""Go's encoding/json, which docker's ``json`` template function writes with."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from portside.cli.gotemplate.strconv import fixed_point, format_float, shortest_digits
from portside.cli.gotemplate.values import MISSING


def json_marshal(value: Any, *, escape_html: bool = False, sort_keys: bool = False) -> str:
    """Compact JSON as Go's encoder writes it, without the trailing newline.

    docker's ``json`` template function disables HTML escaping (docker/cli
    ``templates/templates.go``, since moby/moby#32120), so ``<`` stays ``<``;
    ``escape_html=True`` gives ``json.Marshal``'s ``\\u003c``. Keys keep the
    dict's order (a Go struct's field order); ``sort_keys=True`` orders them as
    Go orders a map's. Raises ValueError for NaN and infinities, as Go does.
    """
    out: list[str] = []
    _json_encode(value, out, escape_html, sort_keys)
    return "".join(out)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_string(s: str, escape_html: bool) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif code < 0x20 or (escape_html and ch in "<>&") or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code < 0xE000:
            out.append("\\ufffd")  # not valid UTF-8: Go writes the replacement character
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_float(v: float) -> str:
    if not math.isfinite(v):
        raise ValueError(f"json: unsupported value: {format_float(v, 'g', -1)}")
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    digits, exp = shortest_digits(v)
    sign = "-" if v < 0 else ""
    if abs(v) < 1e-6 or abs(v) >= 1e21:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        # Go writes e-7, not e-07, but keeps two digits after e+.
        exponent = f"-{abs(exp)}" if exp < 0 else f"+{exp:02d}"
        return f"{sign}{mantissa}e{exponent}"
    return sign + fixed_point(digits, exp)


def _json_encode(v: Any, out: list[str], escape_html: bool, sort_keys: bool) -> None:
    if v is None or v is MISSING:
        out.append("null")
    elif isinstance(v, bool):
        out.append("true" if v else "false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(_json_float(v))
    elif isinstance(v, str):
        out.append(_json_string(v, escape_html))
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, e in enumerate(v):
            if i:
                out.append(",")
            _json_encode(e, out, escape_html, sort_keys)
        out.append("]")
    elif isinstance(v, Mapping):
        items = [(str(k) if not isinstance(k, str) else k, e) for k, e in v.items()]
        if sort_keys:
            items.sort(key=lambda kv: kv[0])
        out.append("{")
        for i, (k, e) in enumerate(items):
            if i:
                out.append(",")
            out.append(_json_string(k, escape_html))
            out.append(":")
            _json_encode(e, out, escape_html, sort_keys)
        out.append("}")
    elif hasattr(v, "__go_json__"):  # a value that knows its Go struct's JSON (tags, field order)
        _json_encode(v.__go_json__(), out, escape_html, sort_keys)
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}
        _json_encode(fields, out, escape_html, sort_keys)
    elif hasattr(v, "__dict__"):
        public = {k: e for k, e in vars(v).items() if not k.startswith("_")}
        _json_encode(public, out, escape_html, sort_keys)
    else:
        raise ValueError(f"json: unsupported type: {type(v).__name__}")
