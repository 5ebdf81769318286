"""Go's fmt: how ``{{.X}}``, ``print`` and ``printf`` print values.

Values print as Go prints the JSON-decoded equivalent: ``[a b]``,
``map[k:v]`` with sorted keys, ``true``, ``4261296`` for an int and
``4.261296e+06`` for a float. ``printf`` is ``fmt.Sprintf`` with flags, widths,
``*``, ``[n]`` and Go's ``%!d(string=x)`` markers for mismatched arguments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from portside.cli.gotemplate.strconv import format_float, go_quote
from portside.cli.gotemplate.values import MISSING, go_type_name, sort_key, utf8


@dataclass
class _Flags:
    """One directive's flags, width and precision, as Go's ``fmt`` keeps them."""

    minus: bool = False
    plus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    plus_v: bool = False  # %+v: struct field names
    sharp_v: bool = False  # %#v: Go syntax
    wid: int | None = None
    prec: int | None = None


_PLAIN = _Flags()


def format_value(v: Any) -> str:
    """Go's ``fmt.Sprint(v)`` of one value, which is what ``{{.X}}`` prints."""
    return _print_arg(v, "v", _PLAIN)


def sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out: list[str] = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(_print_arg(arg, "v", _PLAIN))
        prev_string = is_string
    return "".join(out)


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: operands separated by spaces, then a newline."""
    return " ".join(_print_arg(a, "v", _PLAIN) for a in args) + "\n"


_TOO_LARGE = 1_000_000  # Go rejects widths and precisions beyond this


def _parse_num(s: str, i: int, end: int) -> tuple[int | None, int]:
    """Go's parsenum: digits from i, or None; an absurdly long number eats the rest."""
    num, start = 0, i
    while i < end and "0" <= s[i] <= "9":
        if abs(num) > _TOO_LARGE:
            return None, end
        num = num * 10 + int(s[i])
        i += 1
    return (num if i > start else None), i


class _Printf:
    """fmt.Sprintf's directive loop: flags, ``[n]`` indexes, ``*`` widths, verbs."""

    def __init__(self, format: str, args: tuple[Any, ...]) -> None:
        self.format = format
        self.args = args
        self.argn = 0
        self.reordered = False
        self.good_argn = True
        self.out: list[str] = []

    def arg_number(self, i: int) -> tuple[int, bool]:
        """An explicit ``[n]`` at i: move to argument n; returns (new i, index found)."""
        s = self.format
        if i >= len(s) or s[i] != "[":
            return i, False
        self.reordered = True
        close = s.find("]", i + 1)
        if close < 0 or len(s) - i < 3:
            self.good_argn = False
            return i + 1, False
        num, after = _parse_num(s, i + 1, close)
        if num is None or after != close:
            self.good_argn = False
            return close + 1, False
        if 1 <= num <= len(self.args):
            self.argn = num - 1
            return close + 1, True
        self.good_argn = False
        return close + 1, True

    def int_from_arg(self) -> int | None:
        if self.argn >= len(self.args):
            return None
        arg = self.args[self.argn]
        self.argn += 1
        if isinstance(arg, bool) or not isinstance(arg, int) or abs(arg) > _TOO_LARGE:
            return None
        return arg

    def run(self) -> str:
        s, end = self.format, len(self.format)
        i = 0
        while i < end:
            self.good_argn = True
            percent = s.find("%", i)
            if percent < 0:
                self.out.append(s[i:])
                break
            self.out.append(s[i:percent])
            i = percent + 1
            f = _Flags()
            while i < end and s[i] in "#0+- ":
                c = s[i]
                if c == "#":
                    f.sharp = True
                elif c == "0":
                    f.zero = not f.minus  # zero padding only on the left
                elif c == "+":
                    f.plus = True
                elif c == "-":
                    f.minus, f.zero = True, False
                else:
                    f.space = True
                i += 1
            i, after_index = self.arg_number(i)
            if i < end and s[i] == "*":
                i += 1
                f.wid = self.int_from_arg()
                if f.wid is None:
                    self.out.append("%!(BADWIDTH)")
                elif f.wid < 0:
                    f.wid, f.minus, f.zero = -f.wid, True, False
                after_index = False
            else:
                f.wid, i = _parse_num(s, i, end)
                if after_index and f.wid is not None:  # "%[3]2d"
                    self.good_argn = False
            if i + 1 < end and s[i] == ".":
                i += 1
                if after_index:  # "%[3].2d"
                    self.good_argn = False
                i, after_index = self.arg_number(i)
                if i < end and s[i] == "*":
                    i += 1
                    f.prec = self.int_from_arg()
                    if f.prec is not None and f.prec < 0:
                        f.prec = None
                    if f.prec is None:
                        self.out.append("%!(BADPREC)")
                    after_index = False
                else:
                    f.prec, i = _parse_num(s, i, end)
                    if f.prec is None:
                        f.prec = 0
            if not after_index:
                i, after_index = self.arg_number(i)
            if i >= end:
                self.out.append("%!(NOVERB)")
                break
            verb = s[i]
            i += 1
            if verb == "%":
                self.out.append("%")
            elif not self.good_argn:
                self.out.append(f"%!{verb}(BADINDEX)")
            elif self.argn >= len(self.args):
                self.out.append(f"%!{verb}(MISSING)")
            else:
                if verb == "v":
                    f.sharp_v, f.sharp = f.sharp, False
                    f.plus_v, f.plus = f.plus, False
                self.out.append(_print_arg(self.args[self.argn], verb, f))
                self.argn += 1
        if not self.reordered and self.argn < len(self.args):
            extra = ", ".join(
                "<nil>" if a is None else f"{go_type_name(a)}={_print_arg(a, 'v', _PLAIN)}"
                for a in self.args[self.argn :]
            )
            self.out.append(f"%!(EXTRA {extra})")
        return "".join(self.out)


def sprintf(format: str, *args: Any) -> str:
    """fmt.Sprintf, with Go's ``%!verb(type=value)`` markers for mismatched arguments."""
    return _Printf(format, args).run()


def _padding(n: int, f: _Flags) -> str:
    return ("0" if f.zero else " ") * max(n, 0)


def _pad(s: str, f: _Flags) -> str:
    """Pad to the width (counted in runes), on the right with ``-``, with zeros with ``0``."""
    if not f.wid:
        return s
    fill = f.wid - len(s)
    return s + _padding(fill, f) if f.minus else _padding(fill, f) + s


def _no_zero(f: _Flags) -> _Flags:
    return dataclasses.replace(f, zero=False) if f.zero else f


def _bad_verb(verb: str, arg: Any, f: _Flags) -> str:
    """``%!d(string=x)``: Go prints the value with %v and the directive's flags."""
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(arg)}={_print_arg(arg, 'v', f)})"


def _print_arg(arg: Any, verb: str, f: _Flags, depth: int = 0) -> str:
    if arg is None or arg is MISSING:
        if depth > 0:
            # A nil inside a list or map: Go prints it whatever the verb.
            return "interface {}(nil)" if f.sharp_v else "<nil>"
        return _pad("<nil>", f) if verb in "Tv" else _bad_verb(verb, None, f)
    if verb == "T":
        return _fmt_s(go_type_name(arg), f)
    if isinstance(arg, bool):
        if verb in "tv":
            return _pad("true" if arg else "false", f)
        return _bad_verb(verb, arg, f)
    if isinstance(arg, int):
        return _fmt_integer(arg, verb, f)
    if isinstance(arg, float):
        return _fmt_float(arg, verb, f)
    if isinstance(arg, str):
        if verb == "v":
            return _fmt_q(arg, f) if f.sharp_v else _fmt_s(arg, f)
        if verb == "s":
            return _fmt_s(arg, f)
        if verb in "xX":
            return _fmt_sx(arg, verb, f)
        if verb == "q":
            return _fmt_q(arg, f)
        return _bad_verb(verb, arg, f)
    if isinstance(arg, (list, tuple)):
        items = [_print_arg(e, verb, f, depth + 1) for e in arg]
        if f.sharp_v:
            return "[]interface {}{" + ", ".join(items) + "}"
        return "[" + " ".join(items) + "]"
    if isinstance(arg, dict):
        pairs = [
            _print_arg(k, verb, f, depth + 1) + ":" + _print_arg(v, verb, f, depth + 1)
            for k, v in sorted(arg.items(), key=lambda kv: sort_key(kv[0]))
        ]
        if f.sharp_v:
            return "map[string]interface {}{" + ", ".join(pairs) + "}"
        return "map[" + " ".join(pairs) + "]"
    if dataclasses.is_dataclass(arg) and not isinstance(arg, type):
        parts = []
        for fld in dataclasses.fields(arg):
            value = _print_arg(getattr(arg, fld.name), verb, f, depth + 1)
            parts.append(f"{fld.name}:{value}" if f.plus_v or f.sharp_v else value)
        prefix = type(arg).__name__ if f.sharp_v else ""
        return prefix + "{" + (", " if f.sharp_v else " ").join(parts) + "}"
    return _fmt_s(str(arg), f)


def _fmt_s(s: str, f: _Flags) -> str:
    if f.prec is not None:
        s = s[: f.prec]
    return _pad(s, f)


def _fmt_q(s: str, f: _Flags) -> str:
    if f.prec is not None:
        s = s[: f.prec]
    if f.sharp and _can_backquote(s):
        return _pad("`" + s + "`", f)
    return _pad(go_quote(s, ascii_only=f.plus), f)


def _can_backquote(s: str) -> bool:
    return all(
        ch == "\t" or (ch >= " " and ch not in "`\x7f\ufeff" and not 0xD800 <= ord(ch) < 0xE000) for ch in s
    )


def _fmt_sx(s: str, verb: str, f: _Flags) -> str:
    """%x on a string: hex of its bytes; ``% x`` separates them, ``%#x`` adds 0x."""
    data = utf8(s)
    if f.prec is not None:
        data = data[: f.prec]
    if not data:
        return _padding(f.wid or 0, f)
    pattern = "{:02x}" if verb == "x" else "{:02X}"
    prefix = ("0x" if verb == "x" else "0X") if f.sharp else ""
    if f.space:
        text = " ".join(prefix + pattern.format(b) for b in data)
    else:
        text = prefix + "".join(pattern.format(b) for b in data)
    return _pad(text, f)


def _fmt_integer(v: int, verb: str, f: _Flags) -> str:
    if verb == "c":
        return _pad(_rune(v), f)
    if verb == "q":
        return _pad(go_quote(_rune(v), "'", ascii_only=f.plus), f)
    if verb == "U":
        return _fmt_unicode(v, f)
    base = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}.get(verb)
    if base is None:
        return _bad_verb(verb, v, f)
    negative = v < 0
    if f.prec is not None:
        prec = f.prec
        if prec == 0 and v == 0:
            return _padding(f.wid or 0, _no_zero(f))
    elif f.zero and f.wid is not None:
        prec = f.wid - (1 if negative or f.plus or f.space else 0)
    else:
        prec = 0
    digits = {10: "{:d}", 2: "{:b}", 8: "{:o}", 16: "{:x}"}[base].format(abs(v))
    if verb == "X":
        digits = digits.upper()
    digits = digits.rjust(prec, "0")
    if f.sharp:
        if base == 2:
            digits = "0b" + digits
        elif base == 8 and not digits.startswith("0"):
            digits = "0" + digits
        elif base == 16:
            digits = ("0x" if verb == "x" else "0X") + digits
    if verb == "O":
        digits = "0o" + digits
    sign = "-" if negative else "+" if f.plus else " " if f.space else ""
    # Zero padding was done above, as a precision.
    return _pad(sign + digits, _no_zero(f))


def _rune(v: int) -> str:
    """The character for %c and %q; invalid code points print as U+FFFD."""
    if v < 0 or v > 0x10FFFF or 0xD800 <= v < 0xE000:
        return "\ufffd"
    return chr(v)


def _fmt_unicode(v: int, f: _Flags) -> str:
    """%U: "U+0078", at least four hex digits (or the precision); %#U adds 'x'."""
    prec = f.prec if f.prec is not None and f.prec > 4 else 4
    code = v if v >= 0 else v + 2**64  # Go formats the bits as unsigned
    text = "U+" + f"{code:X}".rjust(prec, "0")
    if f.sharp and 0 <= v <= 0x10FFFF and _rune(v).isprintable():
        text += f" '{chr(v)}'"
    return _pad(text, _no_zero(f))


def _fmt_float(v: float, verb: str, f: _Flags) -> str:
    """Go's fmtFloat: strconv's digits, then sign, ``#`` and zero-padding rules."""
    if verb == "v":
        fmt_verb, default_prec = "g", -1
    elif verb in "bgGxX":
        fmt_verb, default_prec = verb, -1
    elif verb in "feE":
        fmt_verb, default_prec = verb, 6
    elif verb == "F":
        fmt_verb, default_prec = "f", 6
    else:
        return _bad_verb(verb, v, f)
    prec = f.prec if f.prec is not None else default_prec
    num = format_float(v, fmt_verb, prec)
    num = num if num[0] in "+-" else "+" + num
    if f.space and num[0] == "+" and not f.plus:
        num = " " + num[1:]
    if num[1] in "IN":  # Inf and NaN are not numbers to pad with zeros
        if num[1] == "N" and not f.space and not f.plus:
            num = num[1:]
        return _pad(num, _no_zero(f))
    if f.sharp and fmt_verb != "b":
        num = _sharp_float(num, fmt_verb, prec)
    if f.plus or num[0] != "+":
        if f.zero and f.wid is not None and f.wid > len(num):
            return num[0] + _padding(f.wid - len(num), f) + num[1:]
        return _pad(num, f)
    return _pad(num[1:], f)


def _sharp_float(num: str, verb: str, prec: int) -> str:
    """``%#g`` and friends: always a decimal point, trailing zeros kept."""
    digits = (6 if prec == -1 else prec) if verb in "gGx" else 0  # not X: Go's quirk
    tail = ""
    body = num
    for marker in ("p", "P") if verb in "xX" else ("e", "E", "p", "P"):
        at = body.find(marker, 1)
        if at >= 0:
            body, tail = body[:at], body[at:]
            break
    seen_nonzero = False
    for ch in body[1:]:
        if ch == ".":
            continue
        if ch != "0":
            seen_nonzero = True
        if seen_nonzero:
            digits -= 1
    if "." not in body:
        if body[1:] == "0":
            digits -= 1
        body += "."
    return body + "0" * max(digits, 0) + tail
