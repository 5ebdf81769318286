"""The functions a template may call, and how their parameters are typed.

Go's builtins (``and or not len index slice eq ne lt le gt ge print printf
println``) and docker's (``json split join title lower upper pad truncate``,
from docker/cli ``templates/templates.go``), plus ``inc``, which docker does
not define. Not supported: the builtins ``call``, ``html``, ``js`` and
``urlquery``.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from portside.cli.gotemplate.gofmt import format_value, sprint, sprintf, sprintln
from portside.cli.gotemplate.gojson import json_marshal
from portside.cli.gotemplate.values import MISSING, go_type_name, truth, utf8


class Arg(enum.Enum):
    """The Go parameter type a function declares, which decides how arguments convert."""

    ANY = "interface {}"  # anything; a missing value arrives as None
    VALUE = "reflect.Value"  # anything, MISSING passed through (Go builtins)
    STRING = "string"
    INT = "int"
    BOOL = "bool"
    STRINGS = "[]string"


@dataclass(frozen=True)
class Func:
    """A template function with Go-style typed parameters.

    A plain callable given in ``funcs`` is treated as ``Func(fn, variadic=Arg.ANY)``.
    The function signals failure by raising; the template then fails with
    ``error calling NAME: MESSAGE``.
    """

    fn: Callable[..., Any]
    params: tuple[Arg, ...] = ()
    variadic: Arg | None = None


class FuncError(Exception):
    """Raised by builtins: becomes ``error calling NAME: MESSAGE``."""


def _not(v: Any) -> bool:
    return not truth(v)


def _len(v: Any) -> int:
    if v is MISSING:
        raise FuncError("reflect: call of reflect.Value.Type on zero Value")
    if v is None:
        raise FuncError("len of nil pointer")
    if isinstance(v, str):
        return len(utf8(v))
    if isinstance(v, (list, tuple, dict)):
        return len(v)
    raise FuncError(f"len of type {go_type_name(v)}")


def _index_arg(index: Any, cap: int) -> int:
    if index is None or index is MISSING:
        raise FuncError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise FuncError(f"cannot index slice/array with type {go_type_name(index)}")
    if index < 0 or index > cap:
        raise FuncError(f"index out of range: {index}")
    return index


def _index(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise FuncError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, (str, list, tuple)):
            seq = utf8(item) if isinstance(item, str) else item
            i = _index_arg(index, len(seq))
            if i == len(seq):
                kind = "string" if isinstance(item, str) else "slice"
                raise FuncError(f"reflect: {kind} index out of range")
            item = seq[i]
        elif isinstance(item, dict):
            if index is None or index is MISSING:
                raise FuncError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise FuncError(f"value has type {go_type_name(index)}; should be string")
            item = item.get(index)
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        data: Any = utf8(item)
    elif isinstance(item, (list, tuple)):
        data = list(item)
    else:
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    bounds = [0, len(data)]
    for i, index in enumerate(indexes):
        value = _index_arg(index, len(data))
        if i < 2:
            bounds[i] = value
    if bounds[0] > bounds[1]:
        raise FuncError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indexes) == 3 and bounds[1] > _index_arg(indexes[2], len(data)):
        raise FuncError(f"invalid slice index: {bounds[1]} > {indexes[2]}")
    result = data[bounds[0] : bounds[1]]
    if isinstance(item, str):
        return result.decode("utf-8", "replace")
    return result


def _basic_kind(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return None


def _eq(arg1: Any, *args: Any) -> bool:
    if not args:
        raise FuncError("missing argument for comparison")
    arg1 = None if arg1 is MISSING else arg1
    k1 = _basic_kind(arg1)
    for arg in args:
        arg = None if arg is MISSING else arg
        k2 = _basic_kind(arg)
        if k1 != k2:
            if arg1 is not None and arg is not None:
                raise FuncError("incompatible types for comparison")
            equal = False
        elif k1 is not None:
            equal = arg1 == arg
        elif arg1 is None or arg is None:
            equal = arg1 is None and arg is None
        elif _kind_of(arg1) != _kind_of(arg):
            raise FuncError(
                f"non-comparable types {sprintf('%s', arg1)}: {go_type_name(arg1)}, "
                f"{go_type_name(arg)}: {format_value(arg)}"
            )
        elif isinstance(arg, (list, tuple, dict)):
            raise FuncError(f"non-comparable type {sprintf('%s', arg)}: {go_type_name(arg)}")
        else:
            equal = arg1 == arg
        if equal:
            return True
    return False


def _kind_of(v: Any) -> str:
    return "slice" if isinstance(v, (list, tuple)) else "map" if isinstance(v, dict) else type(v).__name__


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    a = None if a is MISSING else a
    b = None if b is MISSING else b
    k1, k2 = _basic_kind(a), _basic_kind(b)
    if k1 is None or k2 is None:
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    if k1 == "bool":
        raise FuncError("invalid type for comparison")
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _json(v: Any) -> str:
    try:
        return json_marshal(v)
    except ValueError:
        return ""  # docker ignores the encoder's error: nothing is printed


def _go_title(s: str) -> str:
    """strings.Title: upper-case each letter that follows a separator."""
    out: list[str] = []
    prev = " "
    for ch in s:
        out.append(_single_case(ch, str.title) if _is_separator(prev) else ch)
        prev = ch
    return "".join(out)


def _is_separator(ch: str) -> bool:
    if ord(ch) < 0x80:
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or unicodedata.category(ch) == "Nd":
        return False
    return ch.isspace()


def _single_case(ch: str, mapping: Callable[[str], str]) -> str:
    """Go maps case rune by rune; Python's full mappings can grow a rune ("ß" -> "SS")."""
    mapped = mapping(ch)
    return mapped if len(mapped) == 1 else ch


def _go_upper(s: str) -> str:
    return "".join(_single_case(ch, str.upper) for ch in s)


def _go_lower(s: str) -> str:
    return "".join(_single_case(ch, str.lower) for ch in s)


def _split(s: str, sep: str) -> list[str]:
    return list(s) if sep == "" else s.split(sep)


def _pad_with_space(source: str, prefix: int, suffix: int) -> str:
    if source == "":
        return source
    return " " * prefix + source + " " * suffix


def _truncate(source: str, length: int) -> str:
    data = utf8(source)
    if len(data) < length:
        return source
    return data[: max(length, 0)].decode("utf-8", "replace")


def _inc(n: int) -> int:
    return n + 1


def _identity(v: Any, *_: Any) -> Any:
    return v


_A, _V, _S, _I, _SS = Arg.ANY, Arg.VALUE, Arg.STRING, Arg.INT, Arg.STRINGS

BUILTINS: Mapping[str, Func] = {
    # and/or are evaluated lazily by the executor; these entries give their arity.
    "and": Func(_identity, (_V,), _V),
    "or": Func(_identity, (_V,), _V),
    "not": Func(_not, (_V,)),
    "len": Func(_len, (_V,)),
    "index": Func(_index, (_V,), _V),
    "slice": Func(_slice, (_V,), _V),
    "eq": Func(_eq, (_V,), _V),
    "ne": Func(_ne, (_V, _V)),
    "lt": Func(_lt, (_V, _V)),
    "le": Func(_le, (_V, _V)),
    "gt": Func(_gt, (_V, _V)),
    "ge": Func(_ge, (_V, _V)),
    "print": Func(sprint, (), _A),
    "printf": Func(sprintf, (_S,), _A),
    "println": Func(sprintln, (), _A),
}

DOCKER_FUNCS: Mapping[str, Func] = {
    "json": Func(_json, (_A,)),
    "split": Func(_split, (_S, _S)),
    "join": Func(lambda items, sep: sep.join(items), (_SS, _S)),
    "title": Func(_go_title, (_S,)),
    "lower": Func(_go_lower, (_S,)),
    "upper": Func(_go_upper, (_S,)),
    "pad": Func(_pad_with_space, (_S, _I, _I)),
    "truncate": Func(_truncate, (_S, _I)),
    "inc": Func(_inc, (_I,)),  # not a docker function; kept for portside's own templates
}

# docker/cli HeaderFunctions: rendering a table header leaves titles as they are
# (pad is deliberately not overridden, to keep headers aligned with padded cells).
HEADER_FUNCS: Mapping[str, Func] = {
    "json": Func(_identity, (_S,)),
    "split": Func(_identity, (_S, _S)),
    "join": Func(_identity, (_S, _S)),
    "title": Func(_identity, (_S,)),
    "lower": Func(_identity, (_S,)),
    "upper": Func(_identity, (_S,)),
    "truncate": Func(_identity, (_S, _I)),
}


def as_func(fn: Any) -> Func:
    return fn if isinstance(fn, Func) else Func(fn, (), Arg.ANY)
