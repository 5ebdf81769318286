"""Published ports: host port allocation, its state on disk, and the DNAT rules that serve it.

``PortPublisher`` is what container start and stop call (docs/networking-ports.md):

- ``publish`` allocates every requested host port (explicit ones must be free of
  our other containers and of anything bound on the host; ephemeral ones come
  from the kernel's ephemeral range), writes the allocation, then replaces the
  rules table. Any failure releases what it took: nothing is half-published.
- ``unpublish`` drops a container's rules and allocation; idempotent.
- ``sweep`` at daemon start keeps only the containers still alive and rewrites
  the table from them, so a crash between a state write and an nft transaction,
  or a restart, neither loses nor duplicates a rule.

On disk, under ``state_dir``::

  <container id>.json   one Publication: the container's address, bridge and mappings

The state files are the truth; the nft table is always rendered whole from them.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import threading
from collections.abc import Iterable, Mapping

from portside.errors import Internal, PortsideError
from portside.network import conntrack, hostports, portbridge, portrules
from portside.network.portmap import (
    PortMapping,
    PortRequest,
    Publication,
    check_container_id,
    network_settings_ports,
    parse_requests,
)

log = logging.getLogger(__name__)


class PortPublisher:
    """The published ports of one daemon, in nft table ``ip TAG_ports`` and files under ``state_dir``."""

    def __init__(self, tag: str, *, state_dir: str, nft: str = "nft",
                 port_range: tuple[int, int] | None = None) -> None:
        self.table = f"{tag}_ports"
        self.state_dir = state_dir
        self.nft = nft
        self.port_range = port_range or hostports.ephemeral_range()
        self._lock = threading.Lock()
        # guarded by _lock: the publications by container id, and the sockets holding their host ports
        self._publications: dict[str, Publication] = {}
        self._held: dict[str, list[socket.socket]] = {}
        self._last_ephemeral = self.port_range[1]
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        self._load()

    # ------------------------------------------------------------------ the interface

    def publish(self, container_id: str, container_ip: str, bridge: str,
                bindings: Mapping[str, list[dict[str, str]]], *, endpoint: str = "") -> dict[str, list[dict[str, str]]]:
        """Publish ``bindings`` (HostConfig.PortBindings form) to ``container_ip`` behind ``bridge``.

        Returns the ``NetworkSettings.Ports`` form of what was published. A container
        already published is republished: its old ports count as free for it.
        ``endpoint`` names it in Docker's error (the container's name; default its id).
        """
        check_container_id(container_id)
        requests = parse_requests(bindings)
        with self._lock:
            if not requests and container_id not in self._publications:
                return {}
            held: list[socket.socket] = []
            try:
                mappings = self._allocate(container_id, requests, endpoint or container_id, held)
                subnets = portbridge.prepare(bridge) if mappings else ()
                publication = Publication(container_id, container_ip, bridge, subnets, tuple(mappings))
                self._commit(container_id, publication if mappings else None)
            except BaseException:
                for sock in held:
                    sock.close()
                previous = self._publications.get(container_id)
                if previous and container_id not in self._held:
                    self._held[container_id] = self._rehold(previous)
                raise
            self._release_sockets(container_id)
            if mappings:
                self._held[container_id] = held
            return network_settings_ports(mappings)

    def unpublish(self, container_id: str) -> None:
        """Remove the container's rules and free its host ports; nothing to do is no error."""
        check_container_id(container_id)
        with self._lock:
            if container_id in self._publications:
                self._commit(container_id, None)
            else:
                self._remove_state(container_id)
            self._release_sockets(container_id)

    def sweep(self, live: set[str]) -> None:
        """At daemon start: forget every container not in ``live`` and rewrite the table from the rest."""
        with self._lock:
            gone = [cid for cid in self._publications if cid not in live]
            gone_udp = [m.host_port for cid in gone for m in self._publications[cid].mappings if m.proto == "udp"]
            for cid in gone:
                del self._publications[cid]
                self._release_sockets(cid)
            for cid, publication in self._publications.items():
                if cid not in self._held:
                    self._held[cid] = self._rehold(publication)
                try:
                    portbridge.prepare(publication.bridge)
                except Internal as e:
                    log.warning("ports of %s: %s", cid, e)
            if self._publications or gone or shutil.which(self.nft):
                # a host without nft that never published anything can still start the daemon
                portrules.apply(portrules.render(self.table, list(self._publications.values())), self.nft)
            conntrack.forget_udp(gone_udp)
            for cid in gone:
                self._remove_state(cid)

    def published(self, container_id: str) -> dict[str, list[dict[str, str]]]:
        """The ``NetworkSettings.Ports`` form of what ``container_id`` has published now ({} if nothing)."""
        with self._lock:
            publication = self._publications.get(container_id)
            return network_settings_ports(list(publication.mappings)) if publication else {}

    def close(self) -> None:
        """Let go of the sockets holding host ports (daemon shutdown); rules and state stay for the next start."""
        with self._lock:
            for cid in list(self._held):
                self._release_sockets(cid)

    # ------------------------------------------------------------------ allocation

    def _allocate(self, container_id: str, requests: list[PortRequest], endpoint: str,
                  held: list[socket.socket]) -> list[PortMapping]:
        """A host port for each request, each held by a socket appended to ``held``; Docker's error if one is taken."""
        taken = [m for cid, p in self._publications.items() if cid != container_id for m in p.mappings]
        # a republish: our own ports are held by our own sockets; let them go for the probe
        self._release_sockets(container_id)
        mappings: list[PortMapping] = []
        for r in requests:
            try:
                mapping, sock = self._allocate_one(r, taken + mappings)
            except _Refused as e:
                raise Internal(f"driver failed programming external connectivity on endpoint {endpoint} "
                               f"({container_id}): {e}") from None
            mappings.append(mapping)
            if sock is not None:
                held.append(sock)
        return mappings

    def _allocate_one(self, r: PortRequest, taken: list[PortMapping]) -> tuple[PortMapping, socket.socket | None]:
        if r.ephemeral:
            low, high = self.port_range
            start = self._last_ephemeral + 1 if self._last_ephemeral < high else low
            candidates: Iterable[int] = [*range(start, high + 1), *range(low, start)]
        else:
            candidates = range(r.host_low, r.host_high + 1)
        single = not r.ephemeral and r.host_low == r.host_high
        for port in candidates:
            if any(m.overlaps(r.proto, r.host_ip, port) for m in taken):
                if single:
                    raise _Refused(f"Bind for {r.host_ip}:{port} failed: port is already allocated")
                continue
            try:
                sock = hostports.hold(r.proto, r.host_ip, port)
            except OSError as e:
                if e.errno == errno.EADDRINUSE and not single:
                    continue
                raise _Refused(hostports.bind_error(r.proto, r.host_ip, port, e)) from None
            if r.ephemeral:
                self._last_ephemeral = port
            return PortMapping(r.proto, r.container_port, r.host_ip, port), sock
        raise _Refused("all ports are allocated")

    def _rehold(self, publication: Publication) -> list[socket.socket]:
        """Hold a publication's ports again (after a restart); one taken meanwhile is only logged."""
        held = []
        for m in publication.mappings:
            try:
                sock = hostports.hold(m.proto, m.host_ip, m.host_port)
            except OSError as e:
                log.warning("cannot hold published port %s:%d/%s of %s: %s", m.host_ip, m.host_port, m.proto,
                            publication.container_id, e.strerror)
                continue
            if sock is not None:
                held.append(sock)
        return held

    def _release_sockets(self, container_id: str) -> None:
        for sock in self._held.pop(container_id, []):
            sock.close()

    # ------------------------------------------------------------------ state and rules

    def _commit(self, container_id: str, publication: Publication | None) -> None:
        """Make ``publication`` (None: nothing) the container's: state file first, then the rules; undone on failure."""
        before = self._publications.get(container_id)
        after = dict(self._publications)
        if publication is None:
            after.pop(container_id, None)
        else:
            after[container_id] = publication
            self._write_state(publication)
        try:
            portrules.apply(portrules.render(self.table, list(after.values())), self.nft)
        except PortsideError:
            if before is not None:
                self._write_state(before)
            elif publication is not None:
                self._remove_state(container_id)
            raise
        if publication is None:
            self._remove_state(container_id)
        self._publications = after
        touched = [*(before.mappings if before else ()), *(publication.mappings if publication else ())]
        conntrack.forget_udp(m.host_port for m in touched if m.proto == "udp")

    def _path(self, container_id: str) -> str:
        return os.path.join(self.state_dir, f"{container_id}.json")

    def _write_state(self, publication: Publication) -> None:
        path = self._path(publication.container_id)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(publication.to_json(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.state_dir)

    def _remove_state(self, container_id: str) -> None:
        try:
            os.unlink(self._path(container_id))
        except FileNotFoundError:
            return
        _fsync_dir(self.state_dir)

    def _load(self) -> None:
        for name in sorted(os.listdir(self.state_dir)):
            path = os.path.join(self.state_dir, name)
            if name.endswith(".tmp"):
                os.unlink(path)  # a write torn by a crash: its rules were never applied
                continue
            if not name.endswith(".json"):
                continue
            try:
                with open(path) as f:
                    publication = Publication.from_json(json.load(f))
            except (OSError, ValueError, KeyError, TypeError, PortsideError) as e:
                log.warning("dropping unreadable port state %s: %s", path, e)
                os.unlink(path)
                continue
            self._publications[publication.container_id] = publication


class _Refused(Exception):
    """A host port cannot be had; the message is Docker's reason."""


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

