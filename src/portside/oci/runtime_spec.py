"""The OCI runtime spec (``config.json``) as frozen dataclasses: the parts a Linux container uses.

Field names are Python's; each field carries the spec's JSON name and Go's rule
for leaving it out (``omitempty`` on a value, or a pointer that is nil), so
``to_json`` writes what runc's ``specs-go`` would write for the same values,
and ``from_json`` reads a bundle's ``config.json`` back, checking every type on
the way (a bundle on disk is input like any other).

Pure data: no I/O, no host probing. ``containers/spec.py`` builds a ``Spec``
from a Docker create request; the runtime consumes its JSON.

Seccomp is kept as an opaque JSON object. ``SECCOMP_DEFAULT`` is the marker
for "Docker's default profile": the runtime replaces it with the profile it
compiles. It is written as a profile whose default action denies every
syscall, so a runtime that does not know the marker fails closed.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Mapping

from portside.errors import InvalidArgument

# The version written; any 1.x is read.
OCI_VERSION = "1.2.1"

# "The runtime's default seccomp profile goes here." Denies everything if a runtime takes it literally.
SECCOMP_DEFAULT: Mapping[str, Any] = types.MappingProxyType(
    {"defaultAction": "SCMP_ACT_ERRNO", "x-portside-profile": "default"})


def is_default_seccomp(seccomp: Mapping[str, Any] | None) -> bool:
    return seccomp is not None and seccomp.get("x-portside-profile") == "default"


# How a field is left out of the JSON, after Go's encoding/json:
#   ALWAYS  a plain field without omitempty
#   NONE    a pointer: left out when nil (None), written even when zero or false
#   EMPTY   omitempty: left out when None, false, 0, "" or an empty list or map
ALWAYS, NONE, EMPTY = "always", "none", "empty"


def _f(name: str, omit: str = EMPTY, default: Any = MISSING) -> Any:
    """A dataclass field with its JSON name; immutable defaults only (tuples, None, scalars)."""
    return field(default=default, metadata={"json": name, "omit": omit})


@dataclass(frozen=True)
class Box:
    height: int = _f("height", ALWAYS)
    width: int = _f("width", ALWAYS)


@dataclass(frozen=True)
class User:
    uid: int = _f("uid", ALWAYS, 0)
    gid: int = _f("gid", ALWAYS, 0)
    umask: int | None = _f("umask", NONE, None)
    additional_gids: tuple[int, ...] = _f("additionalGids", EMPTY, ())


@dataclass(frozen=True)
class Capabilities:
    bounding: tuple[str, ...] = _f("bounding", EMPTY, ())
    effective: tuple[str, ...] = _f("effective", EMPTY, ())
    permitted: tuple[str, ...] = _f("permitted", EMPTY, ())
    inheritable: tuple[str, ...] = _f("inheritable", EMPTY, ())
    ambient: tuple[str, ...] = _f("ambient", EMPTY, ())


@dataclass(frozen=True)
class Rlimit:
    type: str = _f("type", ALWAYS)
    hard: int = _f("hard", ALWAYS)
    soft: int = _f("soft", ALWAYS)


@dataclass(frozen=True)
class Process:
    cwd: str = _f("cwd", ALWAYS)
    args: tuple[str, ...] = _f("args", EMPTY, ())
    env: tuple[str, ...] = _f("env", EMPTY, ())
    terminal: bool = _f("terminal", EMPTY, False)
    console_size: Box | None = _f("consoleSize", NONE, None)
    user: User = _f("user", ALWAYS, User())
    capabilities: Capabilities | None = _f("capabilities", NONE, None)
    rlimits: tuple[Rlimit, ...] = _f("rlimits", EMPTY, ())
    no_new_privileges: bool = _f("noNewPrivileges", EMPTY, False)
    apparmor_profile: str = _f("apparmorProfile", EMPTY, "")
    oom_score_adj: int | None = _f("oomScoreAdj", NONE, None)


@dataclass(frozen=True)
class Root:
    path: str = _f("path", ALWAYS)
    readonly: bool = _f("readonly", EMPTY, False)


@dataclass(frozen=True)
class Mount:
    destination: str = _f("destination", ALWAYS)
    type: str = _f("type", EMPTY, "")
    source: str = _f("source", EMPTY, "")
    options: tuple[str, ...] = _f("options", EMPTY, ())


@dataclass(frozen=True)
class Namespace:
    type: str = _f("type", ALWAYS)
    path: str = _f("path", EMPTY, "")


@dataclass(frozen=True)
class IDMapping:
    container_id: int = _f("containerID", ALWAYS)
    host_id: int = _f("hostID", ALWAYS)
    size: int = _f("size", ALWAYS)


@dataclass(frozen=True)
class Device:
    """A device node the runtime creates in the container's /dev."""

    path: str = _f("path", ALWAYS)
    type: str = _f("type", ALWAYS)
    major: int = _f("major", ALWAYS)
    minor: int = _f("minor", ALWAYS)
    file_mode: int | None = _f("fileMode", NONE, None)
    uid: int | None = _f("uid", NONE, None)
    gid: int | None = _f("gid", NONE, None)


@dataclass(frozen=True)
class DeviceCgroup:
    """One rule of the devices cgroup; no type/major/minor means all."""

    allow: bool = _f("allow", ALWAYS)
    type: str = _f("type", EMPTY, "")
    major: int | None = _f("major", NONE, None)
    minor: int | None = _f("minor", NONE, None)
    access: str = _f("access", EMPTY, "")


@dataclass(frozen=True)
class Memory:
    limit: int | None = _f("limit", NONE, None)
    reservation: int | None = _f("reservation", NONE, None)
    swap: int | None = _f("swap", NONE, None)
    swappiness: int | None = _f("swappiness", NONE, None)
    disable_oom_killer: bool | None = _f("disableOOMKiller", NONE, None)


@dataclass(frozen=True)
class CPU:
    shares: int | None = _f("shares", NONE, None)
    quota: int | None = _f("quota", NONE, None)
    period: int | None = _f("period", NONE, None)
    realtime_runtime: int | None = _f("realtimeRuntime", NONE, None)
    realtime_period: int | None = _f("realtimePeriod", NONE, None)
    cpus: str = _f("cpus", EMPTY, "")
    mems: str = _f("mems", EMPTY, "")


@dataclass(frozen=True)
class Pids:
    limit: int = _f("limit", ALWAYS)


@dataclass(frozen=True)
class WeightDevice:
    major: int = _f("major", ALWAYS)
    minor: int = _f("minor", ALWAYS)
    weight: int | None = _f("weight", NONE, None)


@dataclass(frozen=True)
class ThrottleDevice:
    major: int = _f("major", ALWAYS)
    minor: int = _f("minor", ALWAYS)
    rate: int = _f("rate", ALWAYS)


@dataclass(frozen=True)
class BlockIO:
    weight: int | None = _f("weight", NONE, None)
    weight_device: tuple[WeightDevice, ...] = _f("weightDevice", EMPTY, ())
    throttle_read_bps_device: tuple[ThrottleDevice, ...] = _f("throttleReadBpsDevice", EMPTY, ())
    throttle_write_bps_device: tuple[ThrottleDevice, ...] = _f("throttleWriteBpsDevice", EMPTY, ())
    throttle_read_iops_device: tuple[ThrottleDevice, ...] = _f("throttleReadIOPSDevice", EMPTY, ())
    throttle_write_iops_device: tuple[ThrottleDevice, ...] = _f("throttleWriteIOPSDevice", EMPTY, ())


@dataclass(frozen=True)
class Resources:
    devices: tuple[DeviceCgroup, ...] = _f("devices", EMPTY, ())
    memory: Memory | None = _f("memory", NONE, None)
    cpu: CPU | None = _f("cpu", NONE, None)
    pids: Pids | None = _f("pids", NONE, None)
    block_io: BlockIO | None = _f("blockIO", NONE, None)
    unified: Mapping[str, str] | None = _f("unified", NONE, None)


@dataclass(frozen=True)
class Linux:
    namespaces: tuple[Namespace, ...] = _f("namespaces", EMPTY, ())
    uid_mappings: tuple[IDMapping, ...] = _f("uidMappings", EMPTY, ())
    gid_mappings: tuple[IDMapping, ...] = _f("gidMappings", EMPTY, ())
    sysctl: Mapping[str, str] | None = _f("sysctl", EMPTY, None)
    resources: Resources | None = _f("resources", NONE, None)
    cgroups_path: str = _f("cgroupsPath", EMPTY, "")
    devices: tuple[Device, ...] = _f("devices", EMPTY, ())
    seccomp: Mapping[str, Any] | None = _f("seccomp", NONE, None)
    rootfs_propagation: str = _f("rootfsPropagation", EMPTY, "")
    masked_paths: tuple[str, ...] = _f("maskedPaths", EMPTY, ())
    readonly_paths: tuple[str, ...] = _f("readonlyPaths", EMPTY, ())


@dataclass(frozen=True)
class Spec:
    process: Process = _f("process", NONE)
    root: Root = _f("root", NONE)
    oci_version: str = _f("ociVersion", ALWAYS, OCI_VERSION)
    hostname: str = _f("hostname", EMPTY, "")
    mounts: tuple[Mount, ...] = _f("mounts", EMPTY, ())
    linux: Linux | None = _f("linux", NONE, None)
    annotations: Mapping[str, str] | None = _f("annotations", EMPTY, None)

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_json(cls, untrusted: Any) -> "Spec":
        """A spec read from a bundle: types checked, unknown fields ignored, only ociVersion 1.x."""
        if not isinstance(untrusted, dict):
            raise InvalidArgument("invalid runtime spec: not an object")
        version = untrusted.get("ociVersion")
        if not isinstance(version, str) or not version.startswith("1."):
            raise InvalidArgument(f"invalid runtime spec: unsupported ociVersion {version!r}")
        for required in ("process", "root"):
            if not isinstance(untrusted.get(required), dict):
                raise InvalidArgument(f"invalid runtime spec: {required} must be an object")
        spec = _from_json(cls, untrusted, "")
        assert isinstance(spec, Spec)
        return spec


# Order of the keys: the spec's own (specs-go's struct order), for readable config.json files.
def _to_json(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in _ordered_fields(type(obj)):
        value = getattr(obj, f.name)
        omit = f.metadata["omit"]
        if omit == NONE and value is None:
            continue
        if omit == EMPTY and not value:
            continue
        out[f.metadata["json"]] = _value_to_json(value)
    return out


def _value_to_json(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return _to_json(value)
    if isinstance(value, tuple):
        return [_value_to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _value_to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value_to_json(v) for v in value]
    return value


_JSON_ORDER = {
    Spec: ("ociVersion", "process", "root", "hostname", "mounts", "annotations", "linux"),
    Process: ("terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities", "rlimits",
              "noNewPrivileges", "apparmorProfile", "oomScoreAdj"),
    Linux: ("uidMappings", "gidMappings", "sysctl", "resources", "cgroupsPath", "namespaces", "devices",
            "seccomp", "rootfsPropagation", "maskedPaths", "readonlyPaths"),
    Rlimit: ("type", "hard", "soft"),
}


def _ordered_fields(cls: type) -> list[Any]:
    fs = list(fields(cls))
    order = _JSON_ORDER.get(cls)
    if order:
        fs.sort(key=lambda f: order.index(f.metadata["json"]))
    return fs


def _from_json(cls: type, doc: Any, where: str) -> Any:
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid runtime spec: {where or 'document'} must be an object")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        name = f.metadata["json"]
        path = f"{where}.{name}" if where else name
        if name not in doc or doc[name] is None:
            if f.default is MISSING:
                raise InvalidArgument(f"invalid runtime spec: {path} is required")
            continue
        kwargs[f.name] = _parse_value(hints[f.name], doc[name], path)
    return cls(**kwargs)


def _parse_value(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):  # X | None: None was handled by the caller
        return _parse_value(next(a for a in args if a is not type(None)), value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise InvalidArgument(f"invalid runtime spec: {path} must be a boolean")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"invalid runtime spec: {path} must be an integer")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise InvalidArgument(f"invalid runtime spec: {path} must be a string")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise InvalidArgument(f"invalid runtime spec: {path} must be an array")
        return tuple(_parse_value(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is collections.abc.Mapping:
        if not isinstance(value, dict):
            raise InvalidArgument(f"invalid runtime spec: {path} must be an object")
        if args[1] is str and not all(isinstance(v, str) for v in value.values()):
            raise InvalidArgument(f"invalid runtime spec: {path} values must be strings")
        return dict(value)
    if isinstance(tp, type) and hasattr(tp, "__dataclass_fields__"):
        return _from_json(tp, value, path)
    raise AssertionError(f"unhandled type {tp!r}")  # a field type this reader does not know: a bug here
