"""Published-port records: what a container asked for, what it was given, and the JSON forms of both.

A request comes in HostConfig.PortBindings form (``{"80/tcp": [{"HostIp": "",
"HostPort": "8080"}]}``); each binding becomes one ``PortRequest`` whose host
port is a range (``8080-8080`` explicit, ``8000-8010`` any free one in it, or
0-0 for an ephemeral port). Allocation turns each into a ``PortMapping`` with
one concrete host port; those are what the rules, the state file and
``NetworkSettings.Ports`` are made of.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from portside.errors import Internal, InvalidArgument, NotImplementedYet

PROTOCOLS = ("tcp", "udp", "sctp")
ANY_IP = "0.0.0.0"

_PORT_KEY = re.compile(r"([0-9]+)(?:/([a-z]+))?")
_HOST_PORT = re.compile(r"([0-9]+)(?:-([0-9]+))?")


@dataclass(frozen=True)
class PortRequest:
    """One binding of one container port: host port ``host_low``-``host_high``, 0-0 for ephemeral."""

    proto: str
    container_port: int
    host_ip: str
    host_low: int
    host_high: int

    @property
    def ephemeral(self) -> bool:
        return self.host_low == 0


@dataclass(frozen=True)
class PortMapping:
    """One published port: ``host_ip:host_port`` on the host goes to ``container_port`` of the container."""

    proto: str
    container_port: int
    host_ip: str
    host_port: int

    def to_json(self) -> dict[str, Any]:
        return {"Proto": self.proto, "ContainerPort": self.container_port,
                "HostIp": self.host_ip, "HostPort": self.host_port}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PortMapping:
        return cls(proto=str(d["Proto"]), container_port=int(d["ContainerPort"]),
                   host_ip=str(d["HostIp"]), host_port=int(d["HostPort"]))

    def overlaps(self, proto: str, host_ip: str, host_port: int) -> bool:
        """Whether a binding of ``host_ip:host_port`` would collide with this one (0.0.0.0 covers every address)."""
        return (self.proto == proto and self.host_port == host_port
                and (self.host_ip == host_ip or ANY_IP in (self.host_ip, host_ip)))


_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Publication:
    """The ports one container has published, and where they lead."""

    container_id: str
    container_ip: str
    bridge: str
    bridge_subnets: tuple[str, ...]   # the bridge's IPv4 networks when published: the hairpin sources
    mappings: tuple[PortMapping, ...] = field(default=())

    def __post_init__(self) -> None:
        # Every field ends up in an nft script (some in quoted strings): refuse what is not what it claims.
        check_container_id(self.container_id)
        if not _IFNAME.fullmatch(self.bridge):
            raise Internal(f"invalid bridge name for port rules: {self.bridge!r}")
        try:
            for address in (self.container_ip, *(m.host_ip for m in self.mappings)):
                ipaddress.IPv4Address(address)
            for subnet in self.bridge_subnets:
                ipaddress.IPv4Network(subnet)
        except ValueError as e:
            raise Internal(f"invalid address for port rules: {e}") from None
        for m in self.mappings:
            if m.proto not in PROTOCOLS or not (0 < m.container_port <= 0xFFFF and 0 < m.host_port <= 0xFFFF):
                raise Internal(f"invalid port mapping for port rules: {m}")

    def to_json(self) -> dict[str, Any]:
        return {"ContainerID": self.container_id, "ContainerIP": self.container_ip, "Bridge": self.bridge,
                "BridgeSubnets": list(self.bridge_subnets), "Mappings": [m.to_json() for m in self.mappings]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Publication:
        return cls(container_id=str(d["ContainerID"]), container_ip=str(d["ContainerIP"]), bridge=str(d["Bridge"]),
                   bridge_subnets=tuple(str(s) for s in d.get("BridgeSubnets") or ()),
                   mappings=tuple(PortMapping.from_json(m) for m in d.get("Mappings") or ()))


def check_container_id(container_id: str) -> None:
    """Internal unless ``container_id`` is safe in an nft string and as a file name (no quote, no slash, no dot first)."""
    if not _CONTAINER_ID.fullmatch(container_id):
        raise Internal(f"invalid container id for port rules: {container_id!r}")


def parse_requests(bindings: Mapping[str, Any]) -> list[PortRequest]:
    """HostConfig.PortBindings -> requests, in the order given; Docker's messages for what it refuses."""
    requests: list[PortRequest] = []
    for key, host_bindings in bindings.items():
        m = _PORT_KEY.fullmatch(key)
        if not m or not 0 < int(m.group(1)) <= 0xFFFF:
            raise InvalidArgument(f'invalid port specification: "{key}"')
        proto = m.group(2) or "tcp"
        if proto not in PROTOCOLS:
            raise InvalidArgument(f'invalid port specification: "{key}"')
        for b in host_bindings or []:
            host_ip = _host_ip(str(b.get("HostIp") or ""))
            low, high = _host_range(str(b.get("HostPort") or ""))
            requests.append(PortRequest(proto, int(m.group(1)), host_ip, low, high))
    return requests


def _host_ip(untrusted_ip: str) -> str:
    if not untrusted_ip:
        return ANY_IP
    try:
        ip = ipaddress.ip_address(untrusted_ip)
    except ValueError:
        raise InvalidArgument(f"invalid host IP address: {untrusted_ip}") from None
    if ip.version == 6:
        raise NotImplementedYet(f"publishing on an IPv6 address ({untrusted_ip}) is not supported by portside yet")
    return str(ip)


def _host_range(untrusted_port: str) -> tuple[int, int]:
    if not untrusted_port:
        return 0, 0
    m = _HOST_PORT.fullmatch(untrusted_port)
    if not m:
        raise InvalidArgument(f'invalid port specification: "{untrusted_port}"')
    low = int(m.group(1))
    high = int(m.group(2)) if m.group(2) else low
    if low > 0xFFFF or high > 0xFFFF or high < low:
        raise InvalidArgument(f'invalid port specification: "{untrusted_port}"')
    if low == 0:
        return 0, 0  # "0" asks for an ephemeral port, as Docker reads it
    return low, high


def network_settings_ports(mappings: list[PortMapping]) -> dict[str, list[dict[str, str]]]:
    """The ``NetworkSettings.Ports`` form of what was published: ``{"80/tcp": [{"HostIp": ..., "HostPort": ...}]}``."""
    out: dict[str, list[dict[str, str]]] = {}
    for m in mappings:
        out.setdefault(f"{m.container_port}/{m.proto}", []).append(
            {"HostIp": m.host_ip, "HostPort": str(m.host_port)})
    return out


def with_exposed(published: Mapping[str, list[dict[str, str]]],
                 exposed: Mapping[str, Any]) -> dict[str, list[dict[str, str]] | None]:
    """A running container's ``NetworkSettings.Ports``: its published ports, and every other
    exposed port with ``null`` (what ``docker port`` skips and ``ps`` shows as ``80/tcp``)."""
    out: dict[str, list[dict[str, str]] | None] = {}
    for key in exposed:
        out[key if "/" in key else f"{key}/tcp"] = None
    out.update({key: list(bindings) for key, bindings in published.items()})
    return out


def api_port_list(settings_ports: Mapping[str, list[dict[str, str]] | None]) -> list[dict[str, Any]]:
    """``/containers/json``'s ``Ports`` from ``NetworkSettings.Ports``: one entry per binding,
    ``{"PrivatePort", "Type"}`` alone for a port with none (moby's container view)."""
    out: list[dict[str, Any]] = []
    for key, bindings in settings_ports.items():
        port, _, proto = key.partition("/")
        private = int(port) if port.isdigit() else 0
        if not bindings:
            out.append({"PrivatePort": private, "Type": proto or "tcp"})
            continue
        for b in bindings:
            public = b.get("HostPort") or ""
            out.append({"IP": b.get("HostIp") or "", "PrivatePort": private,
                        "PublicPort": int(public) if public.isdigit() else 0, "Type": proto or "tcp"})
    return out
