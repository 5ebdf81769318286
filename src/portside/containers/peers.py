"""Namespaces shared with another container: ``--network|--ipc|--pid container:X``.

At create, dockerd pins ``container:NAME`` to ``container:<full id>`` (a name it
does not know is kept: start then answers ``No such container``). At start the
peer must be running, and the spec's namespaces are pointed at the peer's
process (``/proc/PID/ns/...``): a path, not a fixed file, because the peer's
process changes with each of its starts. A container on the peer's network
also uses the peer's /etc/hosts, /etc/resolv.conf and /etc/hostname and its
hostname, as dockerd copies HostsPath, ResolvConfPath and HostnamePath.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from portside.containers import shm
from portside.containers.record import ContainerRecord, State
from portside.errors import Conflict, Internal, InvalidArgument, NotFound

# HostConfig field, OCI namespace type, /proc/PID/ns name
MODES = (("NetworkMode", "network", "net"), ("IpcMode", "ipc", "ipc"), ("PidMode", "pid", "pid"))
ETC_FILES = {"/etc/hosts": "hosts", "/etc/resolv.conf": "resolv.conf", "/etc/hostname": "hostname"}


def peer_of(mode: Any) -> str:
    """The X of ``container:X``; "" for any other mode."""
    text = str(mode or "")
    return text.partition(":")[2] if text.startswith("container:") else ""


def network_peer(host_config: dict[str, Any]) -> str:
    return peer_of(host_config.get("NetworkMode"))


def check(body: dict[str, Any]) -> None:
    """At create, runconfig's rule that the parser leaves: no MAC address of its own on another's network."""
    mode = str((body.get("HostConfig") or {}).get("NetworkMode") or "")
    endpoints = ((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).values()
    mac = body.get("MacAddress") or any(isinstance(e, dict) and e.get("MacAddress") for e in endpoints)
    if mac and (mode == "host" or mode.startswith("container:")):
        raise InvalidArgument("conflicting options: mac-address and the network mode")


def pin(host_config: dict[str, Any], resolve: Callable[[str], str]) -> dict[str, Any]:
    """At create: each ``container:NAME`` mode names the peer's full ID, when there is such a container."""
    out = dict(host_config)
    for field, _, _ in MODES:
        ref = peer_of(out.get(field))
        if ref:
            try:
                out[field] = "container:" + resolve(ref)
            except NotFound:
                if field != "NetworkMode":  # dockerd looks the IPC and PID donors up at create
                    raise
    return out


def join(spec: dict[str, Any], cid: str, host_config: dict[str, Any], load: Callable[[str], ContainerRecord],
         container_dir: Callable[[str], str]) -> str:
    """At start: point the spec at the peers' namespaces (dockerd's checks and messages first).

    ``load`` finds a record by name or ID (NotFound: dockerd's ``No such container``).
    Returns the network peer's ID ("" if none).
    """
    paths: dict[str, str] = {}
    net_peer = None
    shm_source = ""
    for field, ns_type, proc_name in MODES:
        ref = peer_of(host_config.get(field))
        if not ref:
            continue
        peer = load(ref)
        if ns_type == "network":
            if peer.id == cid:
                raise Internal("cannot join own network")
            if not _running(peer):
                raise Conflict(f"cannot join network of a non running container: {ref}")
            net_peer = peer
        elif ns_type == "ipc":
            if not _running(peer):
                raise Internal(f"can't join IPC of container {peer.id}: container {peer.id} is not running")
            shm_source = _shm_of(peer, container_dir(peer.id))
        elif ns_type == "pid" and not _running(peer):
            raise Internal(f"container {peer.id} is not running")
        paths[ns_type] = f"/proc/{peer.pid}/ns/{proc_name}"
        paths.setdefault("user", f"/proc/{peer.pid}/ns/user")  # a remapped peer's user namespace, as build_spec
    for ns in (spec.get("linux") or {}).get("namespaces") or []:
        if ns.get("type") in paths:
            ns["path"] = paths[ns["type"]]
    for mount in spec.get("mounts") or []:
        if shm_source and mount.get("destination") == "/dev/shm" and mount.get("type") == "bind":
            mount["source"] = shm_source
    if net_peer is None:
        return ""
    directory = container_dir(net_peer.id)
    for mount in spec.get("mounts") or []:
        name = ETC_FILES.get(mount.get("destination", ""))
        if name and mount.get("type") == "bind":
            mount["source"] = os.path.join(directory, name)
    hostname = (net_peer.config or {}).get("Hostname")
    if hostname and spec.get("hostname"):
        spec["hostname"] = hostname
    return net_peer.id


def _running(record: ContainerRecord) -> bool:
    return record.state in (State.RUNNING, State.PAUSED) and record.pid > 0


def _shm_of(peer: ContainerRecord, directory: str) -> str:
    """The donor's /dev/shm on the host: dockerd's ShmPath, which must exist (shareable or host IPC)."""
    if (peer.host_config.get("IpcMode") or "") == "host":
        return "/dev/shm"
    if not shm.mounted(directory):
        raise Internal(f"can't join IPC of container {peer.id}: non-shareable IPC "
                       "(hint: use IpcMode:shareable for the donor container)")
    return shm.path(directory)
