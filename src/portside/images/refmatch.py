"""The ``reference=`` filter of the image list: shell patterns over image names.

Patterns follow Go's ``path.Match``, which moby uses::

    *        any run of characters except "/"
    ?        any one character except "/"
    [a-z]    one character of a class; [^a-z] one character not in it, "/" included
    \\c       the character c, here and inside a class

A malformed pattern (``[``, ``[a-]``, ``[]a]``, a trailing ``\\``) raises
InvalidArgument whatever the name, as Go reports it, instead of quietly matching nothing.
"""

from __future__ import annotations

import functools
import re

from portside.errors import InvalidArgument
from portside.oci.reference import DEFAULT_TAG, Reference


def match(pattern: str, name: str) -> bool:
    """Go's ``path.Match(pattern, name)``: whether the pattern matches all of ``name``."""
    return _compile(pattern).fullmatch(name) is not None


def reference_matches(pattern: str, ref: Reference) -> bool:
    """moby's ``reference`` filter for one of an image's names.

    The pattern is tried against four spellings of ``ref``, as moby does since
    May 2026 (``daemon/images/image_list.go``; earlier releases tried only the
    first two): the familiar reference (``busybox:latest``,
    ``user/app@sha256:...``), the familiar name (``busybox``), the full
    reference with ``latest`` added when it has neither tag nor digest
    (``docker.io/library/busybox:latest``), and the full name
    (``docker.io/library/busybox``). Since ``*`` stops at ``/``, ``busybox*``
    does not match ``user/busybox``.
    """
    if ref.tag is None and ref.digest is None:
        full = ref.with_tag(DEFAULT_TAG)
    else:
        full = ref
    targets = (ref.familiar(), ref.familiar_name(), str(full), ref.name)
    compiled = _compile(pattern)
    return any(compiled.fullmatch(target) for target in targets)


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    """The pattern as a regular expression, or InvalidArgument if it is malformed."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            cls, i = _character_class(pattern, i + 1)
            out.append(cls)
            continue
        else:
            if c == "\\":
                i += 1
                if i == len(pattern):
                    raise _bad(pattern)
            out.append(re.escape(pattern[i]))
        i += 1
    return re.compile("".join(out))


def _character_class(pattern: str, i: int) -> tuple[str, int]:
    """The class whose body starts at ``pattern[i]``, and the index after its ``]``."""
    negated = pattern.startswith("^", i)
    if negated:
        i += 1
    ranges: list[tuple[str, str]] = []
    while not (ranges and pattern.startswith("]", i)):  # a class has at least one range
        lo, i = _class_character(pattern, i)
        hi = lo
        if pattern.startswith("-", i):
            hi, i = _class_character(pattern, i + 1)
        ranges.append((lo, hi))
    # A range such as z-a is allowed and matches nothing.
    body = "".join(f"\\U{ord(lo):08x}-\\U{ord(hi):08x}" for lo, hi in ranges if lo <= hi)
    if not body:
        return ("[\\s\\S]" if negated else "(?!)"), i + 1
    return f"[{'^' if negated else ''}{body}]", i + 1


def _class_character(pattern: str, i: int) -> tuple[str, int]:
    """One possibly escaped character of a class; an unescaped ``-`` or ``]`` is malformed here."""
    if i < len(pattern) and pattern[i] == "\\":
        i += 1
    elif i < len(pattern) and pattern[i] in "-]":
        raise _bad(pattern)
    # The class must go on after the character: at least its closing "]".
    if i + 1 >= len(pattern):
        raise _bad(pattern)
    return pattern[i], i + 1


def _bad(pattern: str) -> InvalidArgument:
    return InvalidArgument(f'syntax error in pattern "{pattern}"')
