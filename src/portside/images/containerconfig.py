"""Docker's ``container.Config`` as an image config carries it: decoded from a request, written back.

An image's ``config`` and ``container_config`` are this struct (moby
api/types/container/config.go). ``decode`` reads it the way Go's
encoding/json does (keys matched case-insensitively, an exact match first;
a wrong type is an error naming the field); ``document`` writes it in the
struct's field order, with Go's zero values and the ``omitempty`` fields left
out when empty, so a committed image's config reads like dockerd's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portside.errors import InvalidArgument, json_kind

# (field, Go type, omitempty), in the struct's order
_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("Hostname", "string", False),
    ("Domainname", "string", False),
    ("User", "string", False),
    ("AttachStdin", "bool", False),
    ("AttachStdout", "bool", False),
    ("AttachStderr", "bool", False),
    ("ExposedPorts", "nat.PortSet", True),
    ("Tty", "bool", False),
    ("OpenStdin", "bool", False),
    ("StdinOnce", "bool", False),
    ("Env", "[]string", False),
    ("Cmd", "strslice.StrSlice", False),
    ("Healthcheck", "container.HealthConfig", True),
    ("ArgsEscaped", "bool", True),
    ("Image", "string", False),
    ("Volumes", "map[string]struct {}", False),
    ("WorkingDir", "string", False),
    ("Entrypoint", "strslice.StrSlice", False),
    ("NetworkDisabled", "bool", True),
    ("MacAddress", "string", True),
    ("OnBuild", "[]string", False),
    ("Labels", "map[string]string", False),
    ("StopSignal", "string", True),
    ("StopTimeout", "int", True),
    ("Shell", "strslice.StrSlice", True),
)
_ZERO: dict[str, Any] = {"string": "", "bool": False}
_BY_FOLDED = {name.lower(): name for name, _, _ in _FIELDS}


def decode(untrusted: Any, struct: str = "ContainerConfigWrapper") -> dict[str, Any] | None:
    """The Config fields of a JSON body (they sit at its top level, Go's embedded ``*Config``).

    None when the body is empty or names no Config field, as Go leaves the
    embedded pointer nil then. Other keys (HostConfig...) are not looked at.
    """
    if untrusted is None:
        return None
    if not isinstance(untrusted, dict):
        raise InvalidArgument(f"json: cannot unmarshal {json_kind(untrusted)} into Go value of type "
                              f"container.{struct}")
    found: dict[str, tuple[str, Any]] = {}
    for key, value in untrusted.items():
        name = _BY_FOLDED.get(key.lower())
        if name is not None and (name not in found or key == name):  # an exact match wins
            found[name] = (key, value)
    if not found:
        return None
    kinds = {name: kind for name, kind, _ in _FIELDS}
    out: dict[str, Any] = {}
    for name, (_, value) in found.items():
        out[name] = _checked(name, kinds[name], value, struct)
    return out


def document(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as Go marshals a container.Config: every field in order, empty ``omitempty`` ones left out."""
    out: dict[str, Any] = {}
    for name, kind, omitempty in _FIELDS:
        value = config.get(name)
        if value is None:
            value = _ZERO.get(kind)
        if omitempty and not value:
            continue
        out[name] = value
    return out


def _checked(name: str, kind: str, value: Any, struct: str) -> Any:
    if value is None:
        return _ZERO.get(kind)
    if isinstance(value, float) and value.is_integer() and kind == "int":
        value = int(value)
    if not _valid(kind, value):
        raise InvalidArgument(f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                              f"{struct}.{name} of type {kind}")
    if kind == "strslice.StrSlice" and isinstance(value, str):
        return [value]  # a lone string is a list of one
    if kind in ("nat.PortSet", "map[string]struct {}"):
        return {str(k): {} for k in value}
    return value


def _valid(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "strslice.StrSlice" and isinstance(value, str):
        return True
    if kind in ("[]string", "strslice.StrSlice"):
        return isinstance(value, list) and all(isinstance(x, str) for x in value)
    if kind == "map[string]string":
        return isinstance(value, dict) and all(isinstance(x, str) for x in value.values())
    return isinstance(value, dict)  # the port set, the volume set, the health config
