"""Network records and their store: one JSON file per network under ``<root>/network``.

A record holds the network's settings and its IPAM state (the addresses
leased to endpoints), so one atomic rewrite keeps both consistent.

Files are written temp → rename; only creations and removals of networks are
fsynced. A lease lost to a power cut belongs to a container that did not
survive it either (the daemon start sweeps endpoints of containers that no
longer run); a daemon crash alone loses nothing, the page cache has it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from portside.errors import NotFound

BUILTIN = ("bridge", "host", "none")


@dataclass
class Endpoint:
    """A container's attachment to a network while it runs (an address leased, a veth made)."""

    container_id: str
    endpoint_id: str
    name: str                          # the container's name without the slash
    ip: str = ""                       # "" on host/none networks
    mac: str = ""
    ifname: str = ""                   # inside the container: eth0, eth1...
    host_ifname: str = ""              # the host end of the veth
    aliases: list[str] = field(default_factory=list)
    static: bool = False               # --ip: asked for, not drawn
    ports: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # published (NetworkSettings.Ports)


@dataclass
class NetworkRecord:
    id: str
    name: str
    driver: str                        # bridge, host, null
    created: str                       # RFC 3339 with nanoseconds
    subnet: str = ""                   # "" for host/none
    gateway: str = ""
    ip_range: str = ""
    user_subnet: bool = False          # --subnet was given: --ip is allowed (Docker's rule)
    bridge: str = ""                   # the Linux bridge's name
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ipam_options: dict[str, str] = field(default_factory=dict)
    last_ip: str = ""                  # IPAM draws after this one, as libnetwork's bitmap does
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # by container ID

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "NetworkRecord":
        endpoints = {k: Endpoint(**v) for k, v in (doc.get("endpoints") or {}).items()}
        return cls(**{**doc, "endpoints": endpoints})


class NetworkStore:
    """``<root>/<id>.json`` per network; the caller (NetworkService) serialises access.

    The files are read once: only this daemon (it holds the root's lock) writes them, and
    ``ps`` asks for every container's networks, so reads come from memory (as copies: a
    caller's change counts only once saved).
    """

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o700, exist_ok=True)
        self._cache: dict[str, NetworkRecord] = {}
        for entry in sorted(os.listdir(root)):
            if entry.endswith(".json"):
                try:
                    with open(os.path.join(root, entry)) as f:
                        self._cache[entry[:-5]] = NetworkRecord.from_json(json.load(f))
                except (ValueError, TypeError):
                    continue  # a torn temp never has the .json name; anything else is not ours

    def _path(self, nid: str) -> str:
        return os.path.join(self.root, nid + ".json")

    def all(self) -> list[NetworkRecord]:
        return [copy.deepcopy(self._cache[nid]) for nid in sorted(self._cache)]

    def load(self, nid: str) -> NetworkRecord:
        try:
            return copy.deepcopy(self._cache[nid])
        except KeyError:
            raise NotFound(f"network {nid} not found") from None

    def save(self, record: NetworkRecord, *, sync: bool = False) -> None:
        path = self._path(record.id)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record.to_json(), f, separators=(",", ":"))
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        self._cache[record.id] = copy.deepcopy(record)
        if sync:
            _sync_dir(self.root)

    def delete(self, nid: str) -> None:
        self._cache.pop(nid, None)
        try:
            os.unlink(self._path(nid))
        except FileNotFoundError:
            return
        _sync_dir(self.root)


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
