"""The network service: Docker's networks (bridge, host, none and user-defined bridges) and their endpoints.

Owns the records (``records``), IPAM (``ipam``), the host's links
(``links``), containers' namespaces (``netns``) and the firewall
(``firewall``). Containers call it at start (``sandbox`` then ``attach`` per
network), at exit (``release``) and at daemon start (``sweep``); the API
calls the rest.

Host state is made lazily: the first call that needs it looks at the host's
addresses and routes, makes the missing bridges and applies the table.
Everything host-global is named from the daemon's network tag.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Protocol

from portside.errors import Conflict, Forbidden, Internal, InvalidArgument, NotFound
from portside.network import firewall, ipam, links, netns, rtnl
from portside.network.records import Endpoint, NetworkRecord, NetworkStore
from portside.timefmt import now_rfc3339

log = logging.getLogger(__name__)

_DEFAULT_BRIDGE_OPTIONS = {
    "com.docker.network.bridge.default_bridge": "true",
    "com.docker.network.bridge.enable_icc": "true",
    "com.docker.network.bridge.enable_ip_masquerade": "true",
    "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
    "com.docker.network.driver.mtu": "1500",
}
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
MTU_OPTION = "com.docker.network.driver.mtu"


def mtu_of(options: dict[str, str]) -> int:
    """The network's MTU option (0: not given, the kernel's 1500); dockerd's message for a bad one."""
    value = options.get(MTU_OPTION, "")
    if not value:
        return 0
    try:
        mtu = int(value)
    except ValueError:
        raise InvalidArgument(f'strconv.Atoi: parsing "{value}": invalid syntax') from None
    if not 68 <= mtu <= 65535:  # dockerd refuses below 0 only; the kernel refuses the rest at the first start
        raise InvalidArgument(f"invalid MTU number: {mtu}")
    return mtu
DRIVERS = {"bridge", "host", "null"}


class DnsServer(Protocol):
    def start(self) -> None: ...
    def close(self) -> None: ...


class DnsFactory(Protocol):
    """A user network's DNS server, not yet started (network/dns.py's ``network_server`` fits):
    it listens on the gateway and answers with ``lookup``/``reverse``; ``network`` names the
    network (``web.NETWORK``), and an ``internal`` network's server forwards nothing."""

    def __call__(self, gateway: str, lookup: Callable[[str], list[str]], reverse: Callable[[str], str | None], *,
                 network: str = "", internal: bool = False) -> DnsServer: ...


@dataclass
class CreateOptions:
    name: str
    driver: str = "bridge"
    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ipam_options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointRequest:
    """What a container asks of one network (its EndpointsConfig entry)."""

    ip: str = ""
    aliases: tuple[str, ...] = ()


# Held from the choice of a subnet until the bridge has its address (so the host's routes show it):
# parallel daemons (one per test, tags apart) would otherwise both take the first free pool.
HOST_LOCK = "/run/lock/portside-network.lock"


@contextlib.contextmanager
def _host_wide_lock() -> Iterator[None]:
    os.makedirs(os.path.dirname(HOST_LOCK), exist_ok=True)
    fd = os.open(HOST_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class NetworkService:
    def __init__(self, root: str, exec_root: str, *, tag: str = "portside", bridge: str = "", bip: str = "",
                 dns: DnsFactory | None = None) -> None:
        self.store = NetworkStore(os.path.join(root, "network"))
        self.netns_dir = os.path.join(exec_root, "netns")
        self.tag = tag
        self.default_bridge = bridge or f"{tag}0"
        self.bip = bip
        self.dns_factory = dns
        self._dns: dict[str, DnsServer] = {}           # by network ID; guarded by _lock
        self._lock = threading.RLock()                 # guards the records on disk and the host's links/rules
        self._ipr: Any = None                          # pyroute2 IPRoute once the host state is up
        self._rtnl: rtnl.Socket | None = None          # the start path's netlink socket, beside _ipr
        self._inner: dict[str, Any] = {}               # netlink sockets in new sandboxes, by container ID
        self._predefined()

    # -- records ----------------------------------------------------------------------

    def _predefined(self) -> None:
        with self._lock:
            names = {r.name for r in self.store.all()}
            for name, driver in (("bridge", "bridge"), ("host", "host"), ("none", "null")):
                if name not in names:
                    record = NetworkRecord(id=secrets.token_hex(32), name=name, driver=driver, created=now_rfc3339())
                    if name == "bridge":
                        record.bridge = self.default_bridge
                        record.options = {**_DEFAULT_BRIDGE_OPTIONS, BRIDGE_NAME_OPTION: self.default_bridge}
                        if self.bip:
                            iface = ipaddress.IPv4Interface(self.bip)
                            record.subnet, record.gateway = str(iface.network), str(iface.ip)
                    self.store.save(record)  # made again if lost; a new daemon root pays no fsync

    def all(self) -> list[NetworkRecord]:
        with self._lock:
            return self.store.all()

    def default_gateway(self) -> str:
        """The default bridge's gateway, made if need be: what ``--add-host NAME:host-gateway`` maps to."""
        with self._lock:
            self._host()
            for r in self.store.all():
                if r.name == "bridge":
                    return r.gateway
        return ""

    def get(self, ref: str) -> NetworkRecord:
        """By full ID, name, or ID prefix (Docker's order of preference)."""
        with self._lock:
            every = self.store.all()
        for r in every:
            if r.id == ref:
                return r
        for r in every:
            if r.name == ref:
                return r
        matches = [r for r in every if ref and r.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"network {ref} is ambiguous ({len(matches)} matches found based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def create(self, opts: CreateOptions) -> NetworkRecord:
        driver = opts.driver or "bridge"
        if driver not in DRIVERS:
            raise NotFound(f'plugin "{driver}" not found')
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if opts.gateway and not opts.subnet:
            raise Forbidden("ipv4 pool is empty")  # dockerd's answer for --gateway without --subnet
        if opts.ip_range and not opts.subnet:
            raise Forbidden("ipv4 pool is empty")
        with self._lock:
            if any(r.name == opts.name for r in self.store.all()):
                raise Conflict(f"network with name {opts.name} already exists")
            nid = secrets.token_hex(32)
            bridge = opts.options.get(BRIDGE_NAME_OPTION) or f"br-{nid[:12]}"
            if len(bridge) > 15:
                raise InvalidArgument(f"bridge name {bridge} is longer than 15 characters")
            mtu = mtu_of(opts.options)
            if any(r.bridge == bridge for r in self.store.all()):
                raise Conflict(f"bridge name {bridge} is already in use by another network")
            self._host()
            if self._ipr.link_lookup(ifname=bridge):  # never someone else's link (eth0...)
                raise Conflict(f"bridge name {bridge} is already in use by another interface of the host")
            with _host_wide_lock():  # from the choice of a subnet to its bridge's address on the host
                subnet, gateway, ip_range = self._address_space(opts)
                record = NetworkRecord(
                    id=nid, name=opts.name, driver="bridge", created=now_rfc3339(), subnet=str(subnet),
                    gateway=gateway, ip_range=ip_range, user_subnet=bool(opts.subnet), bridge=bridge,
                    internal=opts.internal, attachable=opts.attachable, labels=dict(opts.labels),
                    options=dict(opts.options), ipam_options=dict(opts.ipam_options))
                links.ensure_bridge(self._ipr, bridge, gateway, subnet.prefixlen, self.tag, mtu=mtu)
            try:
                self.store.save(record, sync=True)
                self._apply_rules()
            except BaseException:
                self.store.delete(record.id)
                links.delete(self._ipr, bridge)
                raise
            self._start_dns(record)
            return record

    def _address_space(self, opts: CreateOptions) -> tuple[ipaddress.IPv4Network, str, str]:
        others = [ipaddress.IPv4Network(r.subnet) for r in self.store.all() if r.subnet]
        if opts.subnet:
            subnet = ipam.parse_subnet(opts.subnet)
            ipam.check_subnet(subnet, others)
        else:
            subnet = ipam.pick_subnet(others + self._host_networks())
        gateway = ipam.first_host(subnet)
        if opts.gateway:
            try:
                gw = ipaddress.IPv4Address(opts.gateway)
            except ValueError:
                raise InvalidArgument(f"invalid gateway address {opts.gateway}") from None
            if gw not in subnet:
                raise Forbidden(f"no matching subnet for gateway {opts.gateway}")
            gateway = opts.gateway
        ip_range = ""
        if opts.ip_range:
            rng = ipam.parse_subnet(opts.ip_range)
            if not rng.subnet_of(subnet):
                raise Forbidden(f"no matching subnet for range {opts.ip_range}")
            ip_range = str(rng)
        return subnet, gateway, ip_range

    def remove(self, ref: str) -> None:
        with self._lock:
            record = self.get(ref)
            if record.builtin:
                raise Forbidden(f"{record.name} is a pre-defined network and cannot be removed")
            if record.endpoints:
                raise Forbidden(f"error while removing network: network {record.name} id {record.id} "
                                "has active endpoints")
            self._stop_dns(record.id)
            self.store.delete(record.id)
            if self._ipr is not None:
                links.delete(self._ipr, record.bridge)
                self._apply_rules()

    # -- host state ---------------------------------------------------------------------

    def _host(self) -> None:
        """The bridges of every network and the table, made on first need (under _lock)."""
        if self._ipr is not None:
            return
        self._ipr = links.host()
        self._rtnl = rtnl.Socket()
        self._predefined()
        with _host_wide_lock():
            for record in self.store.all():
                if record.driver != "bridge":
                    continue
                present = bool(self._ipr.link_lookup(ifname=record.bridge))
                if record.subnet and not present and any(
                        ipaddress.IPv4Network(record.subnet).overlaps(n) for n in self._host_networks()):
                    # taken by someone else while our bridge was down (after a stop or a reboot)
                    if record.name == "bridge" and not record.endpoints and not self.bip:
                        record.subnet = record.gateway = ""  # the default bridge picks anew
                    else:
                        log.warning("network %s: its subnet %s now overlaps an address or route of the host",
                                    record.name, record.subnet)
                if not record.subnet:  # the default bridge, first use: a subnet nothing on the host has
                    others = [ipaddress.IPv4Network(r.subnet) for r in self.store.all() if r.subnet]
                    subnet = ipam.pick_subnet(others + self._host_networks())
                    record.subnet, record.gateway = str(subnet), ipam.first_host(subnet)
                    self.store.save(record, sync=True)
                links.ensure_bridge(self._ipr, record.bridge, record.gateway,
                                    ipaddress.IPv4Network(record.subnet).prefixlen, self.tag,
                                    mtu=mtu_of(record.options))
                self._start_dns(record)
        self._apply_rules()

    def _host_networks(self) -> list[ipaddress.IPv4Network]:
        ipr = self._ipr
        ours = {r.bridge for r in self.store.all() if r.bridge}
        indexes = {lk.index for lk in links.links(ipr) if lk.name in ours}
        # our own bridges' routes are the networks' subnets, counted already (and free to keep)
        return [n for n in links.host_networks(ipr, skip=indexes)]

    def _apply_rules(self) -> None:
        rules = [firewall.BridgeRules(r.bridge, r.subnet, r.internal)
                 for r in self.store.all() if r.driver == "bridge" and r.subnet]
        firewall.apply(self.tag, rules)

    def shutdown(self) -> None:
        """At daemon stop: with no endpoint left, nothing of ours stays on the host (bridges, table).
        Containers that still run (live restore) keep theirs, and the records keep every setting."""
        with self._lock:
            for nid in list(self._dns):
                self._stop_dns(nid)
            if any(r.endpoints for r in self.store.all()) or netns.listing(self.netns_dir):
                return
            ipr = self._ipr or links.host()
            for lk in links.links(ipr):
                if lk.alias == self.tag and lk.kind == "bridge":
                    links.delete(ipr, lk.name)
            firewall.remove(self.tag)
            self._ipr = None
            if self._rtnl is not None:
                self._rtnl.close()
                self._rtnl = None

    # -- sandboxes and endpoints -----------------------------------------------------------

    def sandbox_path(self, cid: str) -> str:
        return os.path.join(self.netns_dir, cid)

    def create_sandbox(self, cid: str, sysctls: dict[str, str] | None = None) -> str:
        """The container's network namespace, with its ``net.*`` sysctls already set: the daemon
        owns the namespace, so a user-namespaced container could not set them itself."""
        path = self.sandbox_path(cid)
        netns.remove(path)  # a leftover of a crash between two runs of the container
        sock = netns.create(path, sysctls)
        with self._lock:
            self._inner[cid] = sock  # the first attach configures the namespace through it
        return path

    def loopback_sandbox(self, cid: str, sysctls: dict[str, str] | None = None) -> str:
        """A namespace with only lo, up (--network none, as Docker gives it)."""
        path = self.create_sandbox(cid, sysctls)
        with self._lock:
            sock = self._inner.pop(cid)
        links.loopback_up(sock)
        return path

    def attach(self, ref: str, cid: str, name: str, request: EndpointRequest, *, ifname: str,
               default_route: bool) -> tuple[NetworkRecord, Endpoint]:
        """An endpoint on a bridge network in the container's sandbox (which must exist)."""
        with self._lock:
            self._host()
            record = self.get(ref)
            if record.driver != "bridge":
                raise Forbidden("container cannot be disconnected from host network or connected to host network")
            if cid in record.endpoints:
                raise Forbidden(f"endpoint with name {name} already exists in network {record.name}")
            if request.ip and not record.user_subnet:
                raise Forbidden("user specified IP address is supported only when connecting to networks with "
                                "user configured subnets" if not record.name == "bridge" else
                                "user specified IP address is supported on user defined networks only")
            ip = ipam.allocate(record, request.ip)
            endpoint = Endpoint(container_id=cid, endpoint_id=secrets.token_hex(32), name=name.lstrip("/"), ip=ip,
                                mac=ipam.mac_for(ip), ifname=ifname, host_ifname=links.veth_name(),
                                aliases=list(request.aliases), static=bool(request.ip))
            record.endpoints[cid] = endpoint
            self.store.save(record)
            try:
                assert self._rtnl is not None  # made with _ipr
                links.plug(self._rtnl, self._ipr, self.sandbox_path(cid), links.EndpointLink(
                    bridge=record.bridge, host_ifname=endpoint.host_ifname, ifname=ifname, address=ip,
                    prefixlen=ipaddress.IPv4Network(record.subnet).prefixlen, mac=endpoint.mac,
                    gateway=record.gateway if default_route and not record.internal else "",
                    alias=f"{self.tag} {cid}", mtu=mtu_of(record.options)), inner_sock=self._inner.pop(cid, None))
            except BaseException:
                del record.endpoints[cid]
                self.store.save(record)
                raise
            return record, endpoint

    def detach(self, ref: str, cid: str) -> None:
        """Drop the container's endpoint on one network: its veth and its lease. Idempotent."""
        with self._lock:
            record = self.get(ref)
            endpoint = record.endpoints.pop(cid, None)
            if endpoint is None:
                return
            if endpoint.host_ifname:
                links.delete(self._ipr or links.host(), endpoint.host_ifname)
            self.store.save(record)

    def release(self, cid: str) -> None:
        """The container stopped (or is removed): every endpoint and its sandbox go. Idempotent.

        The veths are not deleted one by one: unmounting the namespace file drops its last
        reference (the container's processes are gone), and the kernel then destroys the
        namespace and, with it, both ends of every veth in it, off this thread. Deleting them
        here would cost a run --rm about 30 ms of rtnl work for nothing.
        """
        with self._lock:
            sock = self._inner.pop(cid, None)
            if sock is not None:
                sock.close()
            for record in self.store.all():
                if record.endpoints.pop(cid, None) is not None:
                    self.store.save(record)
            netns.remove(self.sandbox_path(cid))

    def set_ports(self, nid: str, cid: str, ports: dict[str, list[dict[str, str]]]) -> None:
        with self._lock:
            record = self.store.load(nid)
            if cid in record.endpoints and record.endpoints[cid].ports != ports:  # mostly {} == {}: no write
                record.endpoints[cid].ports = ports
                self.store.save(record)

    def endpoints_of(self, cid: str) -> dict[str, tuple[NetworkRecord, Endpoint]]:
        """The container's live endpoints, by network name."""
        with self._lock:
            return {r.name: (r, r.endpoints[cid]) for r in self.store.all() if cid in r.endpoints}

    def sweep(self, live: set[str]) -> None:
        """At daemon start: sandboxes, veths and leases of containers that no longer run."""
        with self._lock:
            for record in self.store.all():
                stale = [cid for cid in record.endpoints if cid not in live]
                for cid in stale:
                    del record.endpoints[cid]
                if stale:
                    self.store.save(record)
            for entry in netns.listing(self.netns_dir):
                if entry not in live:
                    netns.remove(os.path.join(self.netns_dir, entry))
            ipr = self._ipr or links.host()
            for lk in links.links(ipr):
                owner, _, cid = lk.alias.partition(" ")
                if owner == self.tag and lk.kind == "veth" and cid not in live:
                    links.delete(ipr, lk.name)

    # -- names ----------------------------------------------------------------------------

    def lookup(self, network_id: str, name: str) -> list[str]:
        """The addresses of the containers on the network that answer to ``name``: container name,
        short ID (12), full ID, or an alias (what the DNS server answers)."""
        try:
            with self._lock:  # called from the DNS server's threads
                record = self.store.load(network_id)
        except NotFound:
            return []
        name = name.rstrip(".").lower()
        out = []
        for cid, e in record.endpoints.items():
            if name in (e.name.lower(), cid[:12], cid) or name in (a.lower() for a in e.aliases):
                out.append(e.ip)
        return out

    def reverse(self, network_id: str, address: str) -> str | None:
        try:
            with self._lock:
                record = self.store.load(network_id)
        except NotFound:
            return None
        for e in record.endpoints.values():
            if e.ip == address:
                return f"{e.name}.{record.name}"
        return None

    def _start_dns(self, record: NetworkRecord) -> None:
        """The one place a user network's DNS server starts (network/dns.py, wired by the daemon)."""
        if self.dns_factory is None or record.builtin or record.id in self._dns:
            return
        nid = record.id
        server = self.dns_factory(record.gateway, lambda name: self.lookup(nid, name),
                                  lambda address: self.reverse(nid, address), network=record.name,
                                  internal=record.internal)
        try:
            server.start()
        except OSError as e:
            log.warning("DNS server for network %s on %s: %s", record.name, record.gateway, e)
            return
        self._dns[nid] = server

    def _stop_dns(self, nid: str) -> None:
        server = self._dns.pop(nid, None)
        if server is not None:
            server.close()

    def has_dns(self, nid: str) -> bool:
        with self._lock:
            return nid in self._dns
