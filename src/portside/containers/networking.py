"""A container's networks: what its record asks for, made real at start and undone at exit.

The record keeps the wish (HostConfig.NetworkMode, NetworkingConfig.EndpointsConfig);
the network service keeps what exists while the container runs (endpoints
with leased addresses, the veths, the namespace file). ``up`` runs at start,
before the container's process: the namespace is made, each network's veth
put in it (eth0 for the first, which holds the default route, eth1... for
the others), the ports published, the container's /etc files written; the
spec's network namespace then names the file, so the process starts with its
interfaces in place. ``down`` undoes all of it and is idempotent.
"""

from __future__ import annotations

import logging
import re
import os
from typing import Any, Callable, Protocol

from portside.errors import Conflict, Forbidden, InvalidArgument, NotFound
from portside.network import etchosts, resolvconf
from portside.network.portmap import with_exposed
from portside.network.records import Endpoint, NetworkRecord
from portside.network.service import EndpointRequest, NetworkService

log = logging.getLogger(__name__)


# in a NetworkingConfig: the container was disconnected from its NetworkMode's network while stopped
_MODE_DETACHED = "PortsideModeDetached"


class PortPublisher(Protocol):
    """network/ports.py (NETWORK.md): DNAT for HostConfig.PortBindings on the container's first bridge network."""

    def publish(self, container_id: str, container_ip: str, bridge: str,
                bindings: dict[str, list[dict[str, str]]], *, endpoint: str = "") -> dict[str, list[dict[str, str]]]: ...
    def unpublish(self, container_id: str) -> None: ...
    def sweep(self, live: set[str]) -> None: ...


SPECIAL_MODES = ("host", "none")
_SYSCTL_NAME = re.compile(r"net(\.[A-Za-z0-9_-]+)+")  # becomes a path under /proc/sys: no '/' may pass


def network_mode(host_config: dict[str, Any]) -> str:
    mode = str(host_config.get("NetworkMode") or "default")
    return "bridge" if mode == "default" else mode


def _is_container_mode(mode: str) -> bool:
    return mode.startswith("container:")


def endpoints_config(networking_config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cfg = networking_config.get("EndpointsConfig") or {}
    if not isinstance(cfg, dict):
        return {}
    # "default" is the daemon's choice of network: the default bridge here, as on Linux dockerd
    return {("bridge" if k == "default" else str(k)): dict(v or {}) for k, v in cfg.items()}


def endpoint_request(settings: dict[str, Any]) -> EndpointRequest:
    ipam = settings.get("IPAMConfig") or {}
    aliases = settings.get("Aliases") or []
    return EndpointRequest(ip=str(ipam.get("IPv4Address") or ""), aliases=tuple(str(a) for a in aliases))


class ContainerNetworking:
    def __init__(self, networks: Callable[[], NetworkService], etc_dir: Callable[[str], str],
                 publisher: PortPublisher | None = None) -> None:
        self._networks = networks          # the service, made on first use (it loads pyroute2)
        self.etc_dir = etc_dir             # a container's directory: hosts, resolv.conf
        self.publisher = publisher

    @property
    def networks(self) -> NetworkService:
        return self._networks()

    # -- create ---------------------------------------------------------------------------

    def check(self, host_config: dict[str, Any], networking_config: dict[str, Any]) -> None:
        """At create: the networks named exist, and what is asked of them is allowed (dockerd's checks)."""
        mode = network_mode(host_config)
        wanted = endpoints_config(networking_config)
        if _is_container_mode(mode):
            return
        if mode in SPECIAL_MODES:
            if any(name != mode for name in wanted):
                raise InvalidArgument("Container cannot be connected to network endpoints: "
                                      + ", ".join(sorted({mode, *wanted})))
            return
        for name in {mode, *wanted}:
            record = self.networks.get(name)
            if record.name in SPECIAL_MODES:
                raise InvalidArgument(f"container cannot be connected to {record.name} network with others")
        for name, settings in wanted.items():
            request = endpoint_request(settings)
            record = self.networks.get(name)
            if request.ip and not record.user_subnet:
                if record.name == "bridge":
                    raise InvalidArgument("user specified IP address is supported on user defined networks only")
                raise InvalidArgument("user specified IP address is supported only when connecting to networks "
                                      "with user configured subnets")
        if network_mode(host_config) == "bridge" and endpoint_request(wanted.get("bridge", {})).aliases:
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")

    # -- start and exit -----------------------------------------------------------------------

    def wanted(self, host_config: dict[str, Any], networking_config: dict[str, Any]) -> list[tuple[str, EndpointRequest]]:
        """The bridge networks to attach, the NetworkMode's first."""
        mode = network_mode(host_config)
        if mode in SPECIAL_MODES or _is_container_mode(mode):
            return []
        cfg = endpoints_config(networking_config)
        names = [mode, *(n for n in cfg if n != mode and self.networks.get(n).id != self._id_or(mode))]
        return [(n, endpoint_request(cfg.get(n, {}))) for n in names]

    def _id_or(self, ref: str) -> str:
        try:
            return self.networks.get(ref).id
        except NotFound:
            return ref

    def up(self, cid: str, name: str, hostname: str, config: dict[str, Any], host_config: dict[str, Any],
           networking_config: dict[str, Any], spec: dict[str, Any]) -> None:
        wanted = self.wanted(host_config, networking_config)
        service = self.networks
        if not wanted:
            if network_mode(host_config) == "none":
                _set_netns(spec, service.loopback_sandbox(cid, _take_net_sysctls(spec)))
            return
        path = service.create_sandbox(cid, _take_net_sysctls(spec))
        try:
            attached: list[tuple[NetworkRecord, Endpoint]] = []
            for i, (ref, request) in enumerate(wanted):
                attached.append(service.attach(ref, cid, name, request, ifname=f"eth{i}", default_route=i == 0))
            first, endpoint = attached[0]
            if self.publisher is not None:  # the one call site for published ports (NETWORK.md)
                ports = self.publisher.publish(cid, endpoint.ip, first.bridge, _bindings(config, host_config),
                                               endpoint=name.lstrip("/"))
                service.set_ports(first.id, cid, ports)
            self._write_etc(cid, hostname, config, host_config, attached)
        except BaseException:
            self.down(cid)
            raise
        _set_netns(spec, path)

    def down(self, cid: str, *, shared: bool = False) -> None:
        """``shared``: containers joined its namespace (--network container:X) and keep it alive, so
        its veths are deleted here, not by the kernel: they are left with lo only, as in Docker."""
        if self.publisher is not None:
            self.publisher.unpublish(cid)
        if shared:
            for record, _ in self.networks.endpoints_of(cid).values():
                self.networks.detach(record.id, cid)
        self.networks.release(cid)

    def sweep(self, live: set[str]) -> None:
        self.networks.sweep(live)
        if self.publisher is not None:
            self.publisher.sweep(live)

    def _write_etc(self, cid: str, hostname: str, config: dict[str, Any], host_config: dict[str, Any],
                   attached: list[tuple[NetworkRecord, Endpoint]]) -> None:
        """/etc/hosts: the container's own addresses for its names (in place: the file is bind-mounted);
        /etc/resolv.conf: the network's DNS server when its first network has one."""
        directory = self.etc_dir(cid)
        hosts = os.path.join(directory, "hosts")
        names = etchosts.own_names(hostname, config.get("Domainname") or "")
        try:
            with open(hosts) as f:
                lines = [ln for ln in f.read().splitlines() if not ln.endswith(f"\t{names}")]
        except FileNotFoundError:
            return
        lines += [f"{e.ip}\t{names}" for _, e in attached]
        _rewrite(hosts, "\n".join(lines) + "\n")
        first = attached[0][0]
        if self.networks.has_dns(first.id):
            built = resolvconf.build(resolvconf.read_host(), dns=host_config.get("Dns") or (),
                                     dns_search=host_config.get("DnsSearch") or (),
                                     dns_options=host_config.get("DnsOptions") or (), embedded=first.gateway)
            _rewrite(os.path.join(directory, "resolv.conf"), built.text)

    # -- connect, disconnect (the container record is the caller's) ---------------------------------

    def connect(self, cid: str, name: str, hostname: str, running: bool, host_config: dict[str, Any],
                networking_config: dict[str, Any], network_ref: str, settings: dict[str, Any], *,
                domainname: str = "") -> dict[str, Any]:
        """Returns the new NetworkingConfig; a running container gains its interface now."""
        record = self.networks.get(network_ref)
        mode = network_mode(host_config)
        if mode in SPECIAL_MODES or record.name in SPECIAL_MODES:
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        if _is_container_mode(mode):
            raise Forbidden("container sharing network namespace with another container or host cannot be "
                            "connected to any other network")
        cfg = endpoints_config(networking_config)
        detached = bool(networking_config.get(_MODE_DETACHED)) and not running
        current = {self._id_or(n) for n in [*([] if detached else [mode]), *cfg]}
        if record.id in current and (running or record.name in cfg or self._id_or(mode) == record.id):
            raise Forbidden(f"endpoint with name {name.lstrip('/')} already exists in network {record.name}")
        request = endpoint_request(settings)
        if request.ip and not record.user_subnet:
            raise Forbidden("user specified IP address is supported only when connecting to networks with user "
                            "configured subnets")
        if running:
            taken = {e.ifname for _, e in self.networks.endpoints_of(cid).values()}
            index = next(i for i in range(len(taken) + 1) if f"eth{i}" not in taken)
            self.networks.attach(record.id, cid, name, request, ifname=f"eth{index}", default_route=index == 0)
            self._write_etc(cid, hostname, {"Domainname": domainname}, host_config,
                            [v for v in self.networks.endpoints_of(cid).values()])
        cfg[record.name] = settings
        out = {**networking_config, "EndpointsConfig": cfg}
        out.pop(_MODE_DETACHED, None)
        return out

    def disconnect(self, cid: str, running: bool, host_config: dict[str, Any], networking_config: dict[str, Any],
                   network_ref: str, force: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """Returns the new (HostConfig, NetworkingConfig); a running container loses its interface now."""
        try:
            record = self.networks.get(network_ref)
        except NotFound:
            if not force:
                raise
            cfg = endpoints_config(networking_config)
            cfg.pop(network_ref, None)
            return host_config, {**networking_config, "EndpointsConfig": cfg}
        mode = network_mode(host_config)
        if record.name in SPECIAL_MODES and mode == record.name:
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        cfg = endpoints_config(networking_config)
        names = [n for n in cfg if self._id_or(n) == record.id]
        is_mode = self._id_or(mode) == record.id
        live = cid in record.endpoints
        if not names and not is_mode and not live:
            raise Forbidden(f"container {cid} is not connected to network {record.name}")
        if live:
            self.networks.detach(record.id, cid)
        for n in names:
            del cfg[n]
        if is_mode and cfg:
            # a later start attaches only what is left
            host_config = {**host_config, "NetworkMode": next(iter(cfg))}
        elif is_mode and not running:
            # dockerd keeps the NetworkMode of a created container left with no network (a start
            # attaches it again): docker-compose disconnects and reconnects it to set its aliases
            return host_config, {**networking_config, "EndpointsConfig": cfg, _MODE_DETACHED: True}
        elif is_mode:
            host_config = {**host_config, "NetworkMode": "none"}
        return host_config, {**networking_config, "EndpointsConfig": cfg}

    # -- inspect ------------------------------------------------------------------------------------

    def published(self, cid: str) -> dict[str, list[dict[str, str]]]:
        """The container's published ports (NetworkSettings.Ports form) while it runs."""
        out: dict[str, list[dict[str, str]]] = {}
        for _, e in self.networks.endpoints_of(cid).values():
            out.update(e.ports)
        return out

    def settings(self, cid: str, host_config: dict[str, Any], networking_config: dict[str, Any],
                 running: bool, exposed: dict[str, Any] | None = None) -> dict[str, Any]:
        """Container inspect's NetworkSettings (``exposed``: Config.ExposedPorts, listed as null when unpublished)."""
        exposed = exposed or {}
        live = self.networks.endpoints_of(cid) if running else {}
        networks = self._networks_doc(cid, host_config, networking_config, live)
        bridge = live.get("bridge")
        ports: dict[str, Any] = {}
        if live:
            published: dict[str, Any] = {}
            for _, e in live.values():
                published.update(e.ports)
            ports = with_exposed(published, {**exposed, **dict.fromkeys(host_config.get("PortBindings") or {})})
        doc: dict[str, Any] = {
            "Bridge": "", "SandboxID": "", "SandboxKey": self.networks.sandbox_path(cid) if live else "",
            "Ports": ports, "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": networks,
        }
        if bridge is not None:
            record, e = bridge
            doc.update(EndpointID=e.endpoint_id, Gateway=record.gateway, IPAddress=e.ip,
                       IPPrefixLen=int(record.subnet.split("/")[1]), MacAddress=e.mac)
        if live:
            doc["SandboxID"] = cid  # one sandbox per container; its key is the namespace file
        return doc

    def summary(self, cid: str, host_config: dict[str, Any], networking_config: dict[str, Any],
                running: bool) -> dict[str, Any]:
        """/containers/json's NetworkSettings."""
        live = self.networks.endpoints_of(cid) if running else {}
        return {"Networks": self._networks_doc(cid, host_config, networking_config, live)}

    def _networks_doc(self, cid: str, host_config: dict[str, Any], networking_config: dict[str, Any],
                      live: dict[str, tuple[NetworkRecord, Endpoint]]) -> dict[str, Any]:
        mode = network_mode(host_config)
        if _is_container_mode(mode):
            return {}
        cfg = endpoints_config(networking_config)
        hidden = bool(networking_config.get(_MODE_DETACHED)) and not live  # disconnected while stopped
        names = [*([] if hidden else [mode]), *(n for n in cfg if n != mode)]
        out: dict[str, Any] = {}
        for name in names:
            try:
                record = self.networks.get(name)
            except NotFound:
                continue
            settings = cfg.get(name) or cfg.get(record.name) or {}
            found = live.get(record.name)
            e = found[1] if found else None
            dns_names = None
            if e is not None and not record.builtin:
                dns_names = [e.name, cid[:12], *e.aliases]
            out[record.name] = {
                "IPAMConfig": settings.get("IPAMConfig"), "Links": settings.get("Links"),
                "Aliases": settings.get("Aliases"), "MacAddress": e.mac if e else "",
                "DriverOpts": settings.get("DriverOpts"), "NetworkID": record.id,
                "EndpointID": e.endpoint_id if e else "", "Gateway": record.gateway if e else "",
                "IPAddress": e.ip if e else "", "IPPrefixLen": int(record.subnet.split("/")[1]) if e else 0,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": dns_names,
            }
        return out


def _bindings(config: dict[str, Any], host_config: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """PortBindings, with -P's every exposed port without a binding made ephemeral (the publisher's input)."""
    out = {str(k): [dict(b or {}) for b in (v or [])] for k, v in (host_config.get("PortBindings") or {}).items()}
    if host_config.get("PublishAllPorts"):
        for port in config.get("ExposedPorts") or {}:
            out.setdefault(str(port), [{"HostIp": "", "HostPort": ""}])
    return out


def _take_net_sysctls(spec: dict[str, Any]) -> dict[str, str]:
    """The spec's ``net.*`` sysctls, moved out of it: the daemon sets them in the namespace it makes."""
    sysctl = (spec.get("linux") or {}).get("sysctl") or {}
    net = {k: str(v) for k, v in sysctl.items() if k.startswith("net.") and _SYSCTL_NAME.fullmatch(k)}
    for key in net:
        del sysctl[key]
    return net


def _set_netns(spec: dict[str, Any], path: str) -> None:
    """The spec's network namespace: the file made for it, which the launcher joins."""
    for ns in (spec.get("linux") or {}).get("namespaces") or []:
        if ns.get("type") == "network":
            ns["path"] = path


def _rewrite(path: str, text: str) -> None:
    with open(path, "r+") as f:  # same inode: the container's bind mount sees it
        f.truncate(0)
        f.write(text)
