"""How the data a template runs over stand for Go values.

Data are what the Engine API returns, decoded by ``json``: dicts, lists, str,
int, float, bool and None, or objects with attributes. Go sees them as
``map[string]interface{}`` and friends; this module holds what the printer,
the functions and the executor all need to agree on: the invalid value, type
names, truth, map key order and a string's bytes.
"""

from __future__ import annotations

from typing import Any


class _Missing:
    """Go's invalid ``reflect.Value``: a missing map key, or nil reaching an action."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def go_type_name(v: Any) -> str:
    """The Go type a JSON-decoded value would have, for messages and ``%T``."""
    if v is None or v is MISSING:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if callable(v):
        return "func"
    return type(v).__name__


def truth(v: Any) -> bool:
    """Go's isTrue: empty collections, zero, "" and nil are false."""
    if v is None or v is MISSING:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True  # structs, functions: true


def sort_key(key: Any) -> tuple[int, Any]:
    """Go's fmtsort order for map keys of one kind; mixed kinds group by kind."""
    if isinstance(key, bool):
        return (0, key)
    if isinstance(key, (int, float)):
        return (1, key)
    if isinstance(key, str):
        return (2, key)
    return (3, str(key))


def utf8(s: str) -> bytes:
    """The bytes Go would hold for a string, raw escaped bytes included.

    A ``\\x`` escape in a template string is one raw byte, which
    :func:`~portside.cli.gotemplate.strconv.go_unquote` keeps as Python's
    surrogateescape does; this turns it back into that byte.
    """
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("utf-8", "replace")
