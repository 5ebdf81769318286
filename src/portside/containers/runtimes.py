"""``HostConfig.Runtime``: portside's own runtime by default, runc or crun when asked for and installed.

dockerd names its default runtime ``runc`` and records the name in the
container's HostConfig when the request leaves it empty; portside's default
is its own runtime, named ``portside``, recorded the same way. A name that
is neither the default nor an installed external runtime is refused at
create, with dockerd's message.
"""

from __future__ import annotations

import sys

from portside.errors import InvalidArgument
from portside.runtime import external

DEFAULT = "portside"


def check(requested: str) -> str:
    """The runtime a create request gets (the default for ""); raises InvalidArgument for an unknown name."""
    name = requested or DEFAULT
    if name != DEFAULT and external.find(name) is None:
        raise InvalidArgument(f"unknown or invalid runtime name: {name}")
    return name


def external_name(host_config: dict[str, object]) -> str | None:
    """The external runtime a container record names, None for portside's own."""
    name = host_config.get("Runtime") or DEFAULT
    return None if name == DEFAULT else str(name)


def info() -> dict[str, dict[str, str]]:
    """``Runtimes`` of GET /info: every runtime a container may name, with its binary."""
    runtimes = {DEFAULT: {"path": sys.executable}}
    runtimes.update({name: {"path": path} for name, path in external.available().items()})
    return runtimes
