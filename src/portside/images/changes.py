"""The Dockerfile instructions `docker import --change` and `docker commit --change` accept.

Docker allows CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER,
VOLUME and WORKDIR there; each rewrites one field of the image config.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from typing import Any, Callable

from portside.errors import InvalidArgument


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return a copy of the image's ``config`` section with ``changes`` applied in order."""
    out: dict[str, Any] = copy.deepcopy(config)
    for change in changes:
        for line in _lines(change):
            keyword, _, rest = line.strip().partition(" ")
            handler = _HANDLERS.get(keyword.upper())
            if handler is None:
                raise InvalidArgument(f"{keyword.upper()} is not a valid change command")
            handler(out, rest.strip())
    return out


def _lines(change: str) -> list[str]:
    # A change may hold several instructions, one per line, with backslash continuations.
    joined = re.sub(r"\\\r?\n", " ", change)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _json_or_shell(rest: str, keyword: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    if not rest:
        raise InvalidArgument(f"{keyword} requires at least one argument")
    return ["/bin/sh", "-c", rest]


def _list_or_words(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        except ValueError:
            pass
    return rest.split()


def _pairs(rest: str, keyword: str) -> list[tuple[str, str]]:
    """ENV/LABEL arguments: `k=v k2="v 2"`, or the legacy `k v with spaces`."""
    words = shlex.split(rest, posix=True)
    if not words:
        raise InvalidArgument(f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = rest.partition(" ")
        if not value.strip():
            raise InvalidArgument(f"{keyword} names can not be blank" if not key else f"{keyword} {key}: missing value")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{keyword}: syntax error - can't find = in {word!r}. Must be of the form: name=value")
        pairs.append((key, value))
    return pairs


def _cmd(c: dict[str, Any], rest: str) -> None:
    c["Cmd"] = _json_or_shell(rest, "CMD")


def _entrypoint(c: dict[str, Any], rest: str) -> None:
    c["Entrypoint"] = _json_or_shell(rest, "ENTRYPOINT")
    c["Cmd"] = None  # Docker resets CMD when ENTRYPOINT changes


def _env(c: dict[str, Any], rest: str) -> None:
    env = [e for e in c.get("Env") or []]
    for key, value in _pairs(rest, "ENV"):
        env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
    c["Env"] = env


def _label(c: dict[str, Any], rest: str) -> None:
    labels = dict(c.get("Labels") or {})
    labels.update(_pairs(rest, "LABEL"))
    c["Labels"] = labels


def _expose(c: dict[str, Any], rest: str) -> None:
    ports = dict(c.get("ExposedPorts") or {})
    for word in rest.split():
        port, _, proto = word.partition("/")
        if not re.fullmatch(r"\d+(-\d+)?", port) or proto not in ("", "tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid containerPort: {word}")
        ports[f"{port}/{proto or 'tcp'}"] = {}
    c["ExposedPorts"] = ports


def _volume(c: dict[str, Any], rest: str) -> None:
    volumes = dict(c.get("Volumes") or {})
    for v in _list_or_words(rest):
        volumes[v] = {}
    c["Volumes"] = volumes


def _simple(field: str) -> Callable[[dict[str, Any], str], None]:
    def set_field(c: dict[str, Any], rest: str) -> None:
        if not rest:
            raise InvalidArgument(f"{field.upper()} requires exactly one argument")
        c[field] = rest
    return set_field


def _onbuild(c: dict[str, Any], rest: str) -> None:
    c["OnBuild"] = [*(c.get("OnBuild") or []), rest]


_HANDLERS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "CMD": _cmd,
    "ENTRYPOINT": _entrypoint,
    "ENV": _env,
    "EXPOSE": _expose,
    "LABEL": _label,
    "ONBUILD": _onbuild,
    "STOPSIGNAL": _simple("StopSignal"),
    "USER": _simple("User"),
    "VOLUME": _volume,
    "WORKDIR": _simple("WorkingDir"),
}
