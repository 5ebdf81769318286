"""Published ports as the docker CLI prints them: the PORTS column of ``ps`` and the lines of ``port``.

Pure functions over the API's two shapes: ``/containers/json``'s ``Ports``
list (``[{"IP", "PrivatePort", "PublicPort", "Type"}]``) and inspect's
``NetworkSettings.Ports`` map (``{"80/tcp": [{"HostIp", "HostPort"}] | null}``).
After docker/cli ``formatter.DisplayablePorts`` and ``container/port.go``.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence


class NoPublicPort(Exception):
    """``port CONTAINER PRIVATE`` for a port with no binding; the message is the CLI's."""


def join_host_port(host: str, port: str) -> str:
    """Go's net.JoinHostPort: an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def displayable_ports(ports: Sequence[Mapping[str, Any]]) -> str:
    """The PORTS column: runs of consecutive unmapped (or same-numbered) ports grouped, then host mappings.

    ``0.0.0.0:8080->80/tcp``, ``80/tcp`` for exposed-but-unpublished, ``80-82/tcp`` for a run.
    """

    def sort_key(p: Mapping[str, Any]) -> tuple[int, str, int, str]:
        return (int(p.get("PrivatePort") or 0), p.get("IP") or "", int(p.get("PublicPort") or 0), p.get("Type") or "")

    groups: dict[str, list[int]] = {}   # insertion order is the order Go records its group keys in
    result: list[str] = []
    host_mappings: list[str] = []
    for p in sorted(ports, key=sort_key):
        current = int(p.get("PrivatePort") or 0)
        key = p.get("Type") or ""
        ip = p.get("IP") or ""
        if ip:
            public = int(p.get("PublicPort") or 0)
            if public != current:
                host_mappings.append(f"{join_host_port(ip, str(public))}->{current}/{key}")
                continue
            key = f"{ip}/{key}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
            continue
        if current == group[1] + 1:
            group[1] = current
            continue
        result.append(_form_group(key, group[0], group[1]))
        groups[key] = [current, current]
    for key, (first, last) in groups.items():
        result.append(_form_group(key, first, last))
    return ", ".join(result + host_mappings)


def _form_group(key: str, first: int, last: int) -> str:
    # the key is "TYPE" or "IP/TYPE"; split on the last "/" as an IPv6 address holds none
    ip, _, kind = key.rpartition("/")
    group = str(first) if first == last else f"{first}-{last}"
    if ip:
        group = f"{ip}:{group}->{group}"
    return f"{group}/{kind}"


def port_lines(ports: Mapping[str, Sequence[Mapping[str, Any]] | None], container: str,
               private: str | None = None) -> list[str]:
    """``docker port``'s lines, sorted naturally: ``80/tcp -> 0.0.0.0:8080``, or for one private port ``0.0.0.0:8080``.

    ValueError for a private port that is not a number (the CLI's message),
    NoPublicPort when that port has no binding.
    """
    out: list[str] = []
    if private is not None:
        port, _, proto = private.partition("/")
        if not re.fullmatch(r"[0-9]+", port) or int(port) > 0xFFFF:
            reason = "value out of range" if port.isdigit() else "invalid syntax"
            raise ValueError(f'Error: invalid port ({port}): strconv.ParseUint: parsing "{port}": {reason}')
        key = f"{port}/{proto or 'tcp'}"
        if key not in ports or ports[key] is None:
            raise NoPublicPort(f"Error: No public port '{private}' published for {container}")
        out = [join_host_port(f.get("HostIp") or "", f.get("HostPort") or "") for f in ports[key] or ()]
    else:
        for name, frontends in ports.items():
            for f in frontends or ():
                out.append(f"{name} -> {join_host_port(f.get('HostIp') or '', f.get('HostPort') or '')}")
    return sorted(out, key=_natural_key)


def _natural_key(s: str) -> list[tuple[int, int | str]]:
    """sortorder.NaturalLess: runs of digits compare as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", s) if part]
