"""Go's strconv: number literals, quoted strings and float formatting.

The lexer and parser read Go literals with :func:`parse_int`,
:func:`parse_float` and :func:`go_unquote`; parse errors and ``%q`` quote
with :func:`go_quote`; ``fmt`` and ``encoding/json`` both print floats from
:func:`format_float`'s and :func:`shortest_digits`'s digits.
"""

from __future__ import annotations

import math
import re
import struct

_INT_RE = re.compile(
    r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)"
)
_DEC_FLOAT_RE = re.compile(
    r"[+-]?(?:[0-9](?:_?[0-9])*\.?(?:[0-9](?:_?[0-9])*)?|\.[0-9](?:_?[0-9])*)"
    r"(?:[eE][+-]?[0-9](?:_?[0-9])*)?"
)
_HEX_FLOAT_RE = re.compile(
    r"[+-]?0[xX](?:_?[0-9a-fA-F])*\.?(?:[0-9a-fA-F](?:_?[0-9a-fA-F])*)?[pP][+-]?[0-9](?:_?[0-9])*"
)


def parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64): Go's integer literal syntax, within int64."""
    if not _INT_RE.fullmatch(text):
        return None
    sign = -1 if text[0] == "-" else 1
    body = text.lstrip("+-").replace("_", "")
    legacy_octal = len(body) > 1 and body[0] == "0" and body[1] not in "xXbBoO"  # "017"
    value = sign * int(body, 8 if legacy_octal else 0)
    return value if -(2**63) <= value < 2**63 else None


def parse_float(text: str) -> float | None:
    if _DEC_FLOAT_RE.fullmatch(text):
        return float(text.replace("_", ""))
    if _HEX_FLOAT_RE.fullmatch(text):
        return float.fromhex(text.replace("_", ""))
    return None


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def go_unquote(quoted: str) -> str:
    """strconv.Unquote for "...", `...` and '.' literals; ValueError("invalid syntax") otherwise."""
    if len(quoted) < 2 or quoted[0] != quoted[-1] or quoted[0] not in "\"'`":
        raise ValueError("invalid syntax")
    quote, body = quoted[0], quoted[1:-1]
    if quote == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == quote or ch == "\n":
            raise ValueError("invalid syntax")
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("invalid syntax")
        esc = body[i]
        i += 1
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
        elif esc == quote:
            out.append(esc)
        elif esc in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i : i + size]
            if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            i += size
            code = int(digits, 16)
            if esc == "x":
                out.append(_byte_char(code, quote))
            else:
                if code > 0x10FFFF or 0xD800 <= code < 0xE000:
                    raise ValueError("invalid syntax")
                out.append(chr(code))
        elif esc in "01234567":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
                raise ValueError("invalid syntax")
            i += 2
            out.append(_byte_char(int(digits, 8), quote))
        else:
            raise ValueError("invalid syntax")
    result = "".join(out)
    if quote == "'" and len(result) != 1:
        raise ValueError("invalid syntax")
    return result


def _byte_char(code: int, quote: str) -> str:
    """A \\x or octal escape: one raw byte in a string (kept as Python's surrogateescape
    does, so it encodes back to that byte), a code point in a rune literal."""
    if quote == "'" or code < 0x80:
        return chr(code)
    return chr(0xDC00 + code)


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str, quote: str = '"', *, ascii_only: bool = False) -> str:
    """strconv.Quote (or QuoteRune with ``quote="'"``): Go escapes, printable runes kept."""
    out = [quote]
    for ch in s:
        code = ord(ch)
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable() and not (ascii_only and code >= 0x80) and not 0xD800 <= code < 0xE000:
            out.append(ch)
        elif ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")  # a raw byte that is not UTF-8
        elif 0xD800 <= code < 0xE000:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(quote)
    return "".join(out)


def format_float(v: float, verb: str, prec: int) -> str:
    """strconv.FormatFloat(v, verb, prec, 64); prec -1 means the shortest exact digits."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    if verb == "b":
        _, mant, exp = _float_bits(v)
        return f"{sign}{mant}p{exp - 52:+d}"
    if verb in "xX":
        return _hex_float(v, prec, upper=verb == "X")
    if prec >= 0:
        if verb in "gG":
            prec = max(prec, 1)
        return f"{v:.{prec}{verb}}"
    if v == 0:
        zero = {"e": "0e+00", "E": "0E+00"}.get(verb, "0")
        return sign + zero
    digits, exp = shortest_digits(v)
    if verb in "gG":
        use_exp = exp < -4 or exp >= 6
        verb = "e" if verb == "g" else "E"
        if not use_exp:
            return sign + fixed_point(digits, exp)
    if verb in "eE":
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}{verb}{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + fixed_point(digits, exp)


def _float_bits(v: float) -> tuple[bool, int, int]:
    """(negative, mantissa with its implicit bit, unbiased exponent) as strconv splits a float64."""
    bits = struct.unpack(">Q", struct.pack(">d", v))[0]
    biased = (bits >> 52) & 0x7FF
    mant = bits & ((1 << 52) - 1)
    if biased == 0:
        biased = 1  # subnormal
    else:
        mant |= 1 << 52
    return bool(bits >> 63), mant, biased - 1023


def _hex_float(v: float, prec: int, *, upper: bool) -> str:
    """%x of a float: -0x1.8p+01, the mantissa shifted to a leading 1 and rounded to prec digits."""
    neg, mant, exp = _float_bits(v)
    if mant == 0:
        exp = 0
    mant <<= 60 - 52
    while mant and not mant & (1 << 60):
        mant <<= 1
        exp -= 1
    if 0 <= prec < 15:
        shift = prec * 4
        extra = (mant << shift) & ((1 << 60) - 1)
        mant >>= 60 - shift
        if extra | (mant & 1) > 1 << 59:  # round half to even
            mant += 1
        mant <<= 60 - shift
        if mant & (1 << 61):
            mant >>= 1
            exp += 1
    hexdigits = "0123456789ABCDEF" if upper else "0123456789abcdef"
    out = ["-" if neg else "", "0X" if upper else "0x", str((mant >> 60) & 1)]
    mask = (1 << 64) - 1
    mant = (mant << 4) & mask
    count = prec if prec > 0 else (-1 if prec < 0 and mant else 0)
    if count:
        out.append(".")
        while (count < 0 and mant) or count > 0:
            out.append(hexdigits[(mant >> 60) & 15])
            mant = (mant << 4) & mask
            count -= 1 if count > 0 else 0
    out.append(f"{'P' if upper else 'p'}{'-' if exp < 0 else '+'}{abs(exp):02d}")
    return "".join(out)


def shortest_digits(v: float) -> tuple[str, int]:
    """The shortest decimal digits that round-trip ``v``, and the decimal exponent of the first."""
    mantissa, _, exponent = repr(abs(v)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    stripped = all_digits.lstrip("0")
    if not stripped:
        return "0", 0
    point = len(int_part) + (int(exponent) if exponent else 0) - (len(all_digits) - len(stripped))
    return stripped.rstrip("0"), point - 1


def fixed_point(digits: str, exp: int) -> str:
    """Digits d1d2d3... with the first at 10**exp, in plain notation."""
    if exp < 0:
        return "0." + "0" * (-exp - 1) + digits
    if exp + 1 >= len(digits):
        return digits + "0" * (exp + 1 - len(digits))
    return digits[: exp + 1] + "." + digits[exp + 1 :]
