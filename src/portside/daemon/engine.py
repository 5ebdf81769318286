"""The engine the API serves: the services the composition root builds, passed to every handler."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from portside.containers.networking import ContainerNetworking
from portside.containers.service import ContainerService
from portside.containers.userns import IdentityMapping
from portside.distribution.hosts import RegistryOptions
from portside.events import Recorder
from portside.images.service import ImageService
from portside.network import dns
from portside.network.ports import PortPublisher
from portside.network.service import NetworkService
from portside.runtime.client import MonitorClient


@dataclass
class Engine:
    root: str
    images: ImageService
    exec_root: str                 # transient state: the monitor's socket, exit files
    started: float = field(default_factory=time.time)
    name: str = field(default_factory=socket.gethostname)
    debug: bool = False
    remap: IdentityMapping | None = None  # --userns-remap
    events: Recorder = field(default_factory=Recorder)  # the one event log every service emits into
    registry: RegistryOptions = field(default_factory=RegistryOptions)  # --registry-mirror, --insecure-registry
    network_tag: str = "portside"  # names what this daemon makes on the host: bridge TAG0, nft table TAG
    bridge: str = ""               # --bridge: the default bridge's name (default TAG0)
    bip: str = ""                  # --bip: the default bridge's address and subnet
    _containers: ContainerService | None = None
    _networks: NetworkService | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)  # guards _containers
    _network_lock: threading.Lock = field(default_factory=threading.Lock)  # guards _networks

    def networks(self) -> NetworkService:
        """The network service, made on first use (image-only use never loads netlink)."""
        with self._network_lock:
            if self._networks is None:
                self._networks = NetworkService(self.root, self.exec_root, tag=self.network_tag, bridge=self.bridge,
                                                bip=self.bip, dns=dns.network_server)
            return self._networks

    def containers(self) -> ContainerService:
        """The container service, with the monitor started (or found) on first use.

        Image-only use never starts the monitor; a daemon that finds containers
        it had running starts it at once (``reconcile``) to pick them up again.
        """
        with self._lock:
            if self._containers is None:
                monitor = MonitorClient(os.path.join(self.exec_root, "monitor"))
                monitor.ensure_running()
                publisher = PortPublisher(self.network_tag, state_dir=os.path.join(self.root, "network", "ports"))
                networking = ContainerNetworking(self.networks,
                                                 lambda cid: os.path.join(self.root, "containers", cid), publisher)
                service = ContainerService(self.root, os.path.join(self.exec_root, "monitor"), self.images, monitor,
                                           remap=self.remap, events=self.events, networking=networking)
                service.reconcile()
                self._containers = service
            return self._containers

    def has_containers(self) -> bool:
        return os.path.isdir(os.path.join(self.root, "containers")) and bool(
            os.listdir(os.path.join(self.root, "containers")))

    @property
    def id(self) -> str:
        """A stable daemon ID, kept in the root (dockerd's engine ID)."""
        path = os.path.join(self.root, "engine-id")
        try:
            with open(path) as f:
                return f.read().strip()
        except FileNotFoundError:
            value = str(uuid.uuid4())
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(value)
            os.replace(tmp, path)
            return value

    def shutdown_networks(self) -> None:
        """At daemon stop: what the network service made on the host goes if nothing uses it."""
        with self._network_lock:
            if self._networks is not None:
                self._networks.shutdown()
