"""The container service: create, start, wait, stop, kill, remove, list; records on disk, processes in the monitor.

The daemon side of ``run``, one call per step:

    resolve the image → prepare the container's snapshot → build the OCI spec
    (containers.spec, pure) → write the bundle and the record → ask the
    monitor to start it → the monitor's exit event updates the record and
    wakes waiters → remove in the reverse order.

Every operation takes the service lock, reloads the record and checks the
state it requires. Waiters wait on one condition variable.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import secrets
import shlex
import shutil
import subprocess
import signal
import socket
import stat
import threading
import time
from typing import Any, Callable

from portside import cgroups
from portside.cgroups import from_host_config
from portside.containers import runtimes, spec as specs
from portside.containers import update as updates
from portside.containers import peers, shm, userns
from portside.containers.eventlog import container_event, exec_action, volume_mounts
from portside.containers.names import random_name
from portside.containers.fsview import RootfsLocks
from portside.containers.networking import ContainerNetworking
from portside.containers.record import ContainerRecord, ContainerStore, State, Sync, validate_name
from portside.containers.user import resolve_user
from portside.events import Recorder
from portside.errors import Conflict, Internal, InvalidArgument, NotFound, NotImplementedYet, NotModified, PortsideError
from portside.images.service import ImageService
from portside.network import etchosts, resolvconf
from portside.runtime import caps
from portside.runtime.client import MonitorClient, MonitorError
from portside.volumes import VolumeStore

log = logging.getLogger(__name__)


def _is_id(name: str) -> bool:
    """A full container (or anonymous volume) ID: 64 lowercase hex digits."""
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class StartFailed(PortsideError):
    """The container's process could not be started (HTTP 500 in dockerd, with exit code 126/127 in the record)."""


class ContainerService:
    def __init__(self, root: str, run_dir: str, images: ImageService, monitor: MonitorClient,
                 remap: userns.IdentityMapping | None = None, events: Recorder | None = None,
                 networking: ContainerNetworking | None = None) -> None:
        self.store = ContainerStore(os.path.join(root, "containers"))
        self.networking = networking  # None: every container keeps a namespace of its own with only lo
        self.remap = remap  # --userns-remap: new containers get user namespaces (containers/userns.py)
        # what --add-host NAME:host-gateway maps to: dockerd's --host-gateway-ip, by default the
        # default bridge's gateway (networking sets it when the bridge is up); "" → dockerd's error
        self.host_gateway_ip = ""
        self.events = events or Recorder()
        self.volumes = VolumeStore(os.path.join(root, "volumes"), data_owner=remap.root if remap else None,
                                   events=self.events)
        self.run_dir = run_dir
        self.images = images
        self.monitor = monitor
        self._lock = threading.RLock()         # guards records on disk and _names
        self._changed = threading.Condition(self._lock)
        self._names: dict[str, str] = {r.name: r.id for r in self.store.all()}
        # attachments made before start (docker run attaches first), by container ID
        self._pending: dict[str, list[AttachSlot]] = {}
        # --network container:X: X's ID → the containers started in its namespace (guarded by _lock);
        # X's exit must take its veths out of the namespace they keep alive (containers/peers.py)
        self._joiners: dict[str, set[str]] = {}
        self.execs: dict[str, ExecRecord] = {}  # guarded by _lock; in memory, as dockerd keeps them
        # Exit codes of the containers removed last (guarded by _lock): a wait that resolved its
        # container just before an auto-remove still answers with the code (docker run --rm).
        self._removed_codes: collections.OrderedDict[str, int] = collections.OrderedDict()
        # Held while the daemon has a container's filesystem open (cp, export; containers.fsview):
        # start waits, so its overlay is never mounted twice; remove waits, so it is not removed under a view.
        # Taken before _lock, never while holding it.
        self.rootfs_locks = RootfsLocks()
        images.containers_using = self.using_image

    # -- start-up --------------------------------------------------------------------

    def reconcile(self) -> None:
        """After a (re)start of the daemon: learn from the monitor which containers still run."""
        self._sweep()
        running = self.monitor.request({"op": "state"}).get("containers", {})
        for record in self.store.all():
            if record.state is State.RESTARTING:  # its timer died with the old daemon
                threading.Thread(target=self._restart, args=(record.id,), daemon=True).start()
                continue
            if record.state not in (State.RUNNING, State.PAUSED):
                continue
            live = running.get(record.id)
            if live is not None and live.get("status") is None:
                peer = peers.network_peer(record.host_config)
                if peer:  # still in its peer's namespace: the peer's exit must take its veths out
                    self._joiners.setdefault(peer, set()).add(record.id)
                continue
            exit_record = self._exit_record(record.id)
            self._exited(record.id, exit_record.get("status", 255) if exit_record else 255,
                         exit_record.get("finished_at") if exit_record else None,
                         bool(exit_record.get("oom")) if exit_record else False)
        if self.networking is not None:
            self.networking.sweep({r.id for r in self.store.all() if r.state in (State.RUNNING, State.PAUSED)})
        self._unmount_volumes(None)
        self.monitor.subscribe(self._on_event)

    def _exit_record(self, cid: str) -> dict[str, Any] | None:
        try:
            with open(os.path.join(self.run_dir, "containers", cid, "exit")) as f:
                doc: dict[str, Any] = json.load(f)
                return doc
        except (FileNotFoundError, ValueError):
            return None

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "exec-exit":
            with self._lock:
                record = self.execs.get(event["id"])
                if record is not None:
                    record.running = False
                    record.exit_code = int(event["status"])
                    self._changed.notify_all()
                    self._exec_died(record)
            return
        if event.get("event") == "exit":
            try:
                self._exited(event["id"], int(event["status"]), event.get("finished_at"), bool(event.get("oom")))
            except NotFound:
                pass

    def _exited(self, cid: str, status: int, finished_ns: int | None, oom: bool = False) -> None:
        with self._lock:
            record = self.store.load(cid)
            if record.state in (State.EXITED, State.REMOVING, State.DEAD):
                return
            record.move_to(State.EXITED)
            record.exit_code = status
            record.oom_killed = oom
            record.pid = 0
            record.finished_ns = finished_ns or time.time_ns()
            restart = _should_restart(record)
            if restart:
                record.move_to(State.RESTARTING)
                record.restart_count += 1
            self.store.save(record, sync=Sync.NEVER)
            self._changed.notify_all()
            self._emit_exit(record)
            self._unmount_volumes(cid)
            shm.unmount(self.store.dir(cid))
            self._network_down(cid, shared=self._has_joiners(cid))
            auto_remove = bool(record.host_config.get("AutoRemove"))
        if restart:
            delay = min(0.1 * 2 ** min(record.restart_count - 1, 10), 60.0)  # dockerd's back-off, capped
            threading.Timer(delay, self._restart, args=(cid,)).start()
        elif auto_remove:
            threading.Thread(target=self._auto_remove, args=(cid,), daemon=True).start()

    def _emit_exit(self, record: ContainerRecord) -> None:
        """oom (when the kernel killed it), die, then the unmount of its volumes, as dockerd reports an exit."""
        if record.oom_killed:
            container_event(self.events, record, "oom")
        ran = max(0, record.finished_ns - record.started_ns) // 1_000_000_000 if record.started_ns else 0
        container_event(self.events, record, "die", {"exitCode": record.exit_code, "execDuration": ran})
        volume_mounts(self.events, record, "unmount")

    def _exec_died(self, ex: "ExecRecord") -> None:
        try:
            record = self.store.load(ex.container_id)
        except NotFound:
            return
        container_event(self.events, record, "exec_die", {"execID": ex.id, "exitCode": ex.exit_code})

    def _restart(self, cid: str) -> None:
        try:
            with self._lock:
                record = self.store.load(cid)
                if record.state is not State.RESTARTING:
                    return  # stopped or removed meanwhile
                record.state = State.EXITED  # start() takes it from here
                self.store.save(record)
            self.start(cid, by_policy=True)
        except PortsideError as e:
            log.warning("restarting %s: %s", cid[:12], e)

    def _auto_remove(self, cid: str) -> None:
        try:
            self.remove(cid, force=True, volumes=True)
        except NotFound:
            pass
        except PortsideError as e:
            log.warning("auto-remove of %s: %s", cid[:12], e)

    # -- lookup ---------------------------------------------------------------------

    def resolve(self, name_or_id: str) -> str:
        """Full ID, unique ID prefix, or name (with or without the slash)."""
        with self._lock:
            if len(name_or_id) == 64 and self.store.exists(name_or_id):  # the usual case: no directory listing
                return name_or_id
            named = self._names.get(name_or_id if name_or_id.startswith("/") else "/" + name_or_id)
            if named:
                return named
            matches = self.store.ids(name_or_id) if name_or_id else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {name_or_id}")
        raise NotFound(f"No such container: {name_or_id}")

    def get(self, name_or_id: str) -> ContainerRecord:
        return self.store.load(self.resolve(name_or_id))

    def all(self) -> list[ContainerRecord]:
        return sorted(self.store.all(), key=lambda r: r.created_ns, reverse=True)

    def using_image(self, image_id: str) -> list[tuple[str, bool]]:
        return [(r.id, r.state in (State.RUNNING, State.PAUSED, State.RESTARTING))
                for r in self.store.all() if r.image_id == image_id]

    # -- create -----------------------------------------------------------------------

    def create(self, untrusted_body: Any, name: str | None) -> ContainerRecord:
        request = specs.parse_create(untrusted_body, name, volumes_from=self._mount_points_of)
        peers.check(dict(request.body))
        request = dataclasses.replace(request, body={  # container:NAME → container:<full id>, as dockerd keeps it
            **request.body, "HostConfig": peers.pin(dict(request.body.get("HostConfig") or {}), self.resolve)})
        if self.networking is not None:
            self.networking.check(dict(request.body.get("HostConfig") or {}), dict(request.networking_config or {}))
        from_host_config(dict(request.body.get("HostConfig") or {}))  # dockerd refuses bad limits at create
        runtime = runtimes.check(request.host_config.runtime)
        image = self.images.get(request.image)
        # A spare launcher's ID when the monitor has one: its cgroup is made and joined already
        # (runtime/spare.py), which saves the start a cgroup migration.
        cid = self.monitor.reserve() or secrets.token_hex(32)
        with self._lock:
            full_name = validate_name(name) if name else "/" + random_name(lambda n: "/" + n in self._names)
            if full_name in self._names:
                raise Conflict(f'Conflict. The container name "{full_name}" is already in use by container '
                               f'"{self._names[full_name]}". You have to remove (or rename) that container to '
                               "be able to reuse that name.")
            self._names[full_name] = cid
        try:
            record = self._prepare(cid, full_name, request, image, runtime)
        except BaseException:
            with self._lock:
                self._names.pop(full_name, None)
            self._discard(cid)
            self.monitor.release(cid)
            raise
        container_event(self.events, record, "create")
        return record

    def _prepare(self, cid: str, name: str, request: specs.CreateRequest, image: Any,
                 runtime: str) -> ContainerRecord:
        directory = self.store.dir(cid)
        os.makedirs(os.path.join(directory, "rootfs"), mode=0o755, exist_ok=True)
        chain = [layer.chain_id for layer in image.row.layers]
        self.images.snapshots.prepare(cid, chain)
        config = specs.merged_config(request, image.config.config)
        # dockerd: a container on the host's network is named as the host
        hostname_default = socket.gethostname() if request.host_config.network_mode == "host" else cid[:12]
        peer = peers.network_peer(request.body["HostConfig"])
        if peer and self.store.exists(peer):  # dockerd: the peer's hostname (its /etc files come at start)
            hostname_default = self.store.load(peer).config.get("Hostname") or hostname_default
        hostname = request.config.hostname or hostname_default
        config["Hostname"] = hostname  # dockerd keeps the one it chose in the container's Config
        host_gateway = self.host_gateway_ip
        if not host_gateway and self.networking is not None and any(
                e.rpartition(":")[2] == "host-gateway" for e in request.host_config.extra_hosts):
            host_gateway = self.networking.networks.default_gateway()  # dockerd's default: docker0's address
        etc = write_etc_files(directory, hostname, request, host_gateway)
        spec = specs.build_spec(
            request, image.config.config, container_id=cid, rootfs=os.path.join(directory, "rootfs"),
            hostname_default=hostname_default, etc_files=etc, volume_path=self._volume_for(cid),
            passwd=self._image_file(image, "etc/passwd"), group=self._image_file(image, "etc/group"),
            peer_namespace=lambda ref, ns: "",  # the peer's process is known at start (containers/peers.py)
            shm_path=self._shm_path(directory, request.body["HostConfig"]),
            host=self.remap.host_facts(_host_facts()) if self.remap else _host_facts())
        doc = spec.to_json()
        userns.hand_over([self.images.snapshots.upper_path(cid), *filter(None, dataclasses.astuple(etc))], doc)
        if (doc.get("annotations") or {}).get(specs.INIT_ANNOTATION) == "true":
            _add_init(doc)
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(doc, f, separators=(",", ":"))  # compact: usually one 4 KiB block, indented two
        points = specs.container_mount_points(request, specs.merge_image_config(request.config, image.config.config),
                                              cid)
        record = ContainerRecord(
            id=cid, name=name, image_id=image.id, image=request.image, created_ns=time.time_ns(),
            config=config, host_config={**(request.body.get("HostConfig") or {}), "Runtime": runtime},
            networking_config=dict(request.networking_config or {}),
            mount_points=[dataclasses.asdict(p) for p in points])
        with self._lock:
            self.store.save(record, sync=Sync.SOON)
        return record

    def _has_joiners(self, cid: str) -> bool:
        live = False
        for joiner in self._joiners.pop(cid, set()):
            try:
                live = live or self.store.load(joiner).state in (State.RUNNING, State.PAUSED)
            except NotFound:
                pass
        return live

    def _shm_path(self, directory: str, host_config: dict[str, Any]) -> str | None:
        """The host directory bound as /dev/shm (containers/shm.py); None: a private tmpfs."""
        mode = str(host_config.get("IpcMode") or "")
        if mode == "host":
            return "/dev/shm"
        if mode == "shareable":
            return shm.path(directory)
        peer = peers.peer_of(mode)
        return shm.path(self.store.dir(peer)) if peer else None  # start checks the peer shares it

    def _mount_shm(self, record: ContainerRecord) -> None:
        if record.host_config.get("IpcMode") == "shareable":
            size = int(record.host_config.get("ShmSize") or 0) or specs.DEFAULT_SHM_SIZE
            shm.mount(self.store.dir(record.id), size, self.remap.root if self.remap else None)

    def _network_down(self, cid: str, *, shared: bool = False) -> None:
        if self.networking is None:
            return
        try:
            self.networking.down(cid, shared=shared)
        except PortsideError as e:
            log.warning("releasing the network of %s: %s", cid[:12], e)

    def _volume_for(self, cid: str) -> Callable[[str], str]:
        """The spec's volume_path: a named volume made on first use, an anonymous one per VOLUME."""
        def volume_path(name: str) -> str:
            anonymous = _is_id(name)
            self.volumes.create(name, anonymous=anonymous, copyup=True,
                                labels={"com.docker.volume.anonymous": ""} if anonymous else None)
            return self.volumes.mountpoint(name)
        return volume_path

    def volumes_of(self, cid: str) -> list[str]:
        """Names of the volumes a container mounts (from its bundle)."""
        try:
            with open(os.path.join(self.store.dir(cid), "config.json")) as f:
                mounts = json.load(f).get("mounts") or []
        except (FileNotFoundError, ValueError):
            return []
        prefix = self.volumes.root.rstrip("/") + "/"
        return [m["source"][len(prefix):].split("/", 1)[0] for m in mounts
                if str(m.get("source", "")).startswith(prefix)]

    def volume_users(self, name: str) -> list[str]:
        return [r.id for r in self.store.all() if name in self.volumes_of(r.id)]

    def _mount_points_of(self, ref: str) -> tuple[specs.MountPoint, ...]:
        """--volumes-from: another container's mount points (dockerd answers 400 for a missing one)."""
        try:
            record = self.get(ref)
        except NotFound as e:
            raise InvalidArgument(str(e)) from None
        return tuple(specs.MountPoint(**p) for p in record.mount_points)

    def _mount_volumes(self, cid: str) -> None:
        """Before a start: mount the container's volumes that have driver options (tmpfs, bind...)."""
        for name in self.volumes_of(cid):
            self.volumes.mount(name)

    def _unmount_volumes(self, cid: str | None) -> None:
        """After a container stops (None: after a daemon restart, for all): unmount the option volumes
        no running container uses any more, as moby's local driver does when its count drops to 0."""
        names = [n for n in (self.volumes_of(cid) if cid else [v.name for v in self.volumes.all()])
                 if self.volumes.has_mount(n)]
        if not names:
            return
        busy = {n for r in self.store.all() if r.id != cid and r.state in (State.RUNNING, State.PAUSED)
                for n in self.volumes_of(r.id)}
        for name in names:
            if name not in busy:
                try:
                    self.volumes.unmount(name)
                except PortsideError as e:
                    log.warning("unmounting volume %s: %s", name, e)

    def _image_file(self, image: Any, path: str) -> str | None:
        """A small text file of the image (/etc/passwd), read from its top-most layer that has it."""
        parent, name = os.path.split(path)
        for layer in reversed(image.row.layers):
            base = self.images.snapshots.layer_path(layer.chain_id)
            candidate = os.path.join(base, path)
            try:
                st = os.lstat(candidate)
            except FileNotFoundError:
                if os.path.exists(os.path.join(base, parent, ".wh..wh..opq")):
                    return None
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_size > 1 << 20:
                return None  # a whiteout, a symlink or something else: not read from the host side
            with open(candidate, errors="replace") as f:
                return f.read()
        return None

    def _discard(self, cid: str) -> None:
        # The record goes first: from that unlink on the container does not exist, even for a
        # daemon that crashes halfway; what is left is swept at the next start (_sweep).
        self.store.forget(cid)
        self.images.snapshots.remove(cid)
        shm.unmount(self.store.dir(cid))
        shutil.rmtree(self.store.dir(cid), ignore_errors=True)

    def _sweep(self) -> None:
        """At start: finish what a crash interrupted (torn creations, half-done removals)."""
        for cid in self.store.torn():
            log.warning("removing container %s: its record was cut short by a crash", cid[:12])
            self._discard(cid)
        for record in self.store.all():
            if record.state is State.REMOVING:
                self._discard(record.id)
        for cid in self.store.orphans():
            self._discard(cid)
        for key in self.images.snapshots.active_keys():
            if _is_id(key) and not os.path.exists(self.store.dir(key)):
                self.images.snapshots.remove(key)  # a container layer whose container is gone

    # -- start, stop, kill, wait --------------------------------------------------------

    def start(self, name_or_id: str, *, by_policy: bool = False) -> None:
        cid = self.resolve(name_or_id)
        with self.rootfs_locks.hold(cid), self._lock:
            record = self.store.load(cid)
            if not by_policy:
                record.stopped_by_user = False
            if record.state in (State.RUNNING, State.RESTARTING):
                raise NotModified("container already started")
            if record.state is State.PAUSED:
                raise Conflict(f"cannot start a paused container, try unpause instead")
            directory = self.store.dir(record.id)
            with open(os.path.join(directory, "config.json")) as f:
                spec = json.load(f)
            image = self.images.load_image(record.image_id)
            mounts = userns.idmapped(self.images.snapshots.mounts(record.id, [la.chain_id for la in image.row.layers]),
                                     spec)
            net_peer = peers.join(spec, record.id, record.host_config, self.get, self.store.dir)
            if net_peer:
                self._joiners.setdefault(net_peer, set()).add(record.id)
            pending = [slot for slot in self._pending.pop(record.id, []) if slot.wait()]
            try:
                self._mount_volumes(record.id)
                self._mount_shm(record)
                if self.networking is not None:
                    self.networking.up(record.id, record.name, spec.get("hostname") or record.id[:12], record.config,
                                       record.host_config, record.networking_config, spec)
                reply = self.monitor.request({
                    "op": "start", "id": record.id, "spec": spec,
                    "root_mounts": [[m.type, m.source, list(m.options)] for m in mounts],
                    "log": self.log_path(record.id), "tty": bool(record.config.get("Tty")),
                    "stdin": bool(record.config.get("OpenStdin")),
                    "attach": [{**slot.opts, "preface": slot.preface.hex()} for slot in pending],
                    "cgroup": f"portside/{record.id}",
                    "resources": dataclasses.asdict(from_host_config(record.host_config)),
                    "runtime": runtimes.external_name(record.host_config),
                }, fds=[slot.fd for slot in pending])
            except (MonitorError, Internal) as e:
                self._unmount_volumes(record.id)
                shm.unmount(directory)
                self._network_down(record.id)
                record.exit_code = e.exit_code if isinstance(e, MonitorError) else 128  # dockerd's exitUnknown
                record.error = str(e)
                self.store.save(record, sync=Sync.NEVER)
                if record.host_config.get("AutoRemove"):
                    # as dockerd: a --rm container that cannot start is removed (docker run waits for it)
                    threading.Thread(target=self._auto_remove, args=(record.id,), daemon=True).start()
                if isinstance(e, Internal):  # a volume could not be mounted: dockerd's message as is
                    raise
                raise StartFailed(f"failed to create task for container: {e}: unknown") from None
            finally:
                for slot in pending:  # the monitor holds its own copies now
                    slot.close()
            record.move_to(State.RUNNING)
            record.pid = int(reply["pid"])
            record.started_ns = time.time_ns()
            record.exit_code = 0
            record.error = ""
            self.store.save(record, sync=Sync.NEVER)
            self._changed.notify_all()
            volume_mounts(self.events, record, "mount")
            container_event(self.events, record, "start")

    def reserve_attach(self, cid: str, opts: dict[str, bool]) -> "AttachSlot":
        """Called before the 101 goes out: a start that comes right after it waits for this attachment."""
        slot = AttachSlot(opts)
        with self._lock:
            if self.store.load(cid).state is not State.RUNNING:
                self._pending.setdefault(cid, []).append(slot)
                slot.reserved = True
        return slot

    def attach(self, cid: str, slot: "AttachSlot", sock: Any, preface: bytes) -> None:
        """Hand a hijacked client connection to the monitor (now, or at start if not yet running)."""
        fd = os.dup(sock.fileno())
        # Not under the service lock: a start that holds it is waiting for exactly this.
        if slot.reserved and slot.fill(fd, preface):
            return
        # started meanwhile without waiting for us (it waits only so long): attach live
        try:
            self.monitor.request({"op": "attach", "id": cid, **slot.opts, "preface": preface.hex()}, fds=[fd])
        except MonitorError:
            pass  # not running (any more): the client sees the connection close
        finally:
            os.close(fd)

    # -- update -------------------------------------------------------------------------

    def update(self, name_or_id: str, untrusted: Any) -> list[str]:
        """docker update (containers/update.py): the record first; a running container's cgroup follows."""
        request = updates.check(untrusted)
        with self._lock:
            record = self.get(name_or_id)
            if record.state in (State.REMOVING, State.DEAD):
                raise Conflict(updates.cannot_update(
                    record.id, 'container is marked for removal and cannot be "update"'))
            old = record.host_config
            record.host_config = updates.merged(record.id, old, request)
            self.store.save(record)
            if record.state in (State.RUNNING, State.PAUSED):
                try:
                    updates.apply(self._cgroups(), record.id, old, record.host_config)
                except PortsideError:
                    record.host_config = old
                    self.store.save(record)
                    raise
            container_event(self.events, record, "update")
        return []

    # -- networks (containers/networking.py does the work; the record is ours) -------------------

    def connect_network(self, name_or_id: str, network: str, settings: dict[str, Any]) -> None:
        if self.networking is None:
            raise NotImplementedYet("networks need the network service")
        with self._lock:
            record = self.get(name_or_id)
            running = record.state in (State.RUNNING, State.PAUSED)
            record.networking_config = self.networking.connect(
                record.id, record.name, record.config.get("Hostname") or record.id[:12], running,
                record.host_config, record.networking_config, network, settings,
                domainname=record.config.get("Domainname") or "")
            self.store.save(record)

    def disconnect_network(self, name_or_id: str, network: str, force: bool) -> None:
        if self.networking is None:
            raise NotImplementedYet("networks need the network service")
        with self._lock:
            record = self.get(name_or_id)
            running = record.state in (State.RUNNING, State.PAUSED)
            record.host_config, record.networking_config = self.networking.disconnect(
                record.id, running, record.host_config, record.networking_config, network, force)
            self.store.save(record)

    # -- pause, rename, top, changes -------------------------------------------------------

    def _cgroups(self) -> "cgroups.Manager":
        return cgroups.for_host()

    def pause(self, name_or_id: str) -> None:
        with self._lock:
            record = self.get(name_or_id)
            if record.state is State.PAUSED:
                raise Conflict(f"Container {record.id} is already paused")
            if record.state is not State.RUNNING:
                raise Conflict(f"Container {record.id} is not running")
            self._freeze(record, True)
            record.move_to(State.PAUSED)
            self.store.save(record)
            container_event(self.events, record, "pause")

    def unpause(self, name_or_id: str) -> None:
        with self._lock:
            record = self.get(name_or_id)
            if record.state is not State.PAUSED:
                raise Conflict(f"Container {record.id} is not paused")
            self._freeze(record, False)
            record.move_to(State.RUNNING)
            self.store.save(record)
            container_event(self.events, record, "unpause")

    def _freeze(self, record: ContainerRecord, frozen: bool) -> None:
        """Pause or resume: through the container's external runtime, else its cgroup's freezer."""
        if runtimes.external_name(record.host_config) is None:
            manager = self._cgroups()
            manager.freeze(f"portside/{record.id}") if frozen else manager.thaw(f"portside/{record.id}")
            return
        try:
            self.monitor.request({"op": "pause" if frozen else "resume", "id": record.id})
        except MonitorError as e:
            raise Internal(str(e)) from None

    def rename(self, name_or_id: str, new_name: str) -> None:
        with self._lock:
            record = self.get(name_or_id)
            full = validate_name(new_name)
            if full == record.name:
                raise Conflict(f"Renaming a container with the same name as its current name")
            if full in self._names:
                raise Conflict(f'Conflict. The container name "{full}" is already in use by container '
                               f'"{self._names[full]}". You have to remove (or rename) that container to be '
                               "able to reuse that name.")
            self._names.pop(record.name, None)
            old, record.name = record.name, full
            self._names[full] = record.id
            self.store.save(record)
            container_event(self.events, record, "rename", {"oldName": old})

    def top(self, name_or_id: str, ps_args: str) -> tuple[list[str], list[list[str]]]:
        """Docker's top: the host's ps, keeping the rows of the container's processes."""
        record = self.get(name_or_id)
        if record.state not in (State.RUNNING, State.PAUSED):
            raise Conflict(f"Container {record.id} is not running")
        pids = set(self._cgroups().procs(f"portside/{record.id}"))
        args = shlex.split(ps_args or "-ef")
        out = subprocess.run(["ps", *args], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise InvalidArgument(f"Error running ps: {out.stderr.strip()}")
        lines = out.stdout.splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise InvalidArgument(f"Couldn't find PID field in ps output")
        column = titles.index("PID")
        rows = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > column and fields[column].isdigit() and int(fields[column]) in pids:
                rows.append(fields)
        container_event(self.events, record, "top")
        return titles, rows

    def changes(self, name_or_id: str) -> list[dict[str, Any]]:
        """The container layer against its image: Kind 0 modified, 1 added, 2 deleted (overlay whiteouts)."""
        record = self.get(name_or_id)
        image = self.images.load_image(record.image_id)
        lowers = [self.images.snapshots.layer_path(la.chain_id) for la in image.row.layers]
        upper = self.images.snapshots.upper_path(record.id)
        out = []
        for dirpath, dirnames, filenames in os.walk(upper):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                rel = "/" + os.path.relpath(full, upper)
                st = os.lstat(full)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    kind = 2
                elif any(os.path.lexists(os.path.join(lower, rel.lstrip("/"))) for lower in lowers):
                    kind = 0
                else:
                    kind = 1
                out.append({"Path": rel, "Kind": kind})
        return sorted(out, key=lambda c: c["Path"])

    # -- exec ---------------------------------------------------------------------------

    def exec_create(self, name_or_id: str, untrusted: Any) -> "ExecRecord":
        record = self.get(name_or_id)
        if record.state is not State.RUNNING:
            raise Conflict(f"Container {record.id} is not running")
        if not isinstance(untrusted, dict) or not isinstance(untrusted.get("Cmd"), list) or not untrusted["Cmd"] \
                or not all(isinstance(a, str) for a in untrusted["Cmd"]):
            raise InvalidArgument("No exec command specified")
        exec_record = ExecRecord(id=secrets.token_hex(32), container_id=record.id, config=dict(untrusted))
        with self._lock:
            self.execs[exec_record.id] = exec_record
        container_event(self.events, record, exec_action("exec_create", exec_record.config["Cmd"]),
                        {"execID": exec_record.id})
        return exec_record

    def exec_get(self, exec_id: str) -> "ExecRecord":
        with self._lock:
            found = self.execs.get(exec_id)
        if found is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return found

    def exec_start(self, exec_id: str, sock: Any | None, preface: bytes = b"") -> None:
        """Run the exec's process; with ``sock``, the client's stream is handed to the monitor."""
        ex = self.exec_get(exec_id)
        if ex.started:
            raise Conflict(f"Error: Exec command {exec_id} is already running")
        record = self.store.load(ex.container_id)
        if record.state is not State.RUNNING:
            raise Conflict(f"Container {record.id} is not running")
        with open(os.path.join(self.store.dir(record.id), "config.json")) as f:
            spec = json.load(f)
        process = self._exec_process(spec["process"], record, ex.config)
        container_event(self.events, record, exec_action("exec_start", ex.config["Cmd"]), {"execID": ex.id})
        ex.started = True
        ex.running = True
        fds = [os.dup(sock.fileno())] if sock is not None else []
        try:
            reply = self.monitor.request({
                "op": "exec", "id": record.id, "exec_id": ex.id, "process": process,
                "seccomp": (spec.get("linux") or {}).get("seccomp"),
                "stdin": bool(ex.config.get("AttachStdin")), "preface": preface.hex(),
                # a body without them (not a docker client) gets both, as before
                "stdout": bool(ex.config.get("AttachStdout", True)), "stderr": bool(ex.config.get("AttachStderr", True)),
            }, fds=fds)
            with self._lock:
                ex.pid = int(reply["pid"])
                size, ex.pending_size = ex.pending_size, None
        except MonitorError as e:
            with self._lock:
                ex.running = False
                ex.exit_code = e.exit_code
                self._changed.notify_all()
            raise StartFailed(f"OCI runtime exec failed: exec failed: {e}: unknown") from None
        finally:
            for fd in fds:
                os.close(fd)
        if size is not None and process.get("terminal"):
            # docker 20.10 sends no ConsoleSize: its first resize races the process's start
            try:
                self.monitor.request({"op": "resize", "id": ex.id, "h": size[0], "w": size[1]})
            except MonitorError:
                pass  # it exited already

    def exec_resize(self, ex: ExecRecord, height: int, width: int) -> None:
        """Resize an exec's terminal; before its process exists, the start applies the size."""
        with self._lock:
            if not ex.pid:
                ex.pending_size = (height, width)
                return
        self.monitor.request({"op": "resize", "id": ex.id, "h": height, "w": width})

    def _exec_process(self, base: dict[str, Any], record: ContainerRecord, cfg: dict[str, Any]) -> dict[str, Any]:
        """The container's process settings, with the exec's command, env, user, cwd and terminal."""
        process = {**base, "args": list(cfg["Cmd"]), "terminal": bool(cfg.get("Tty"))}
        process.pop("consoleSize", None)  # the container's terminal size is not the exec's
        size = cfg.get("ConsoleSize")
        if cfg.get("Tty") and isinstance(size, list) and len(size) == 2 and all(
                isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 65536 for x in size) and any(size):
            process["consoleSize"] = {"height": size[0], "width": size[1]}
        env = list(base.get("env") or [])
        for item in cfg.get("Env") or []:
            key = str(item).split("=", 1)[0]
            env = [e for e in env if e.split("=", 1)[0] != key] + [str(item)]
        process["env"] = env
        if cfg.get("WorkingDir"):
            process["cwd"] = cfg["WorkingDir"]
        if cfg.get("User"):
            image = self.images.load_image(record.image_id)
            uid, gid, extra = resolve_user(str(cfg["User"]), self._image_file(image, "etc/passwd"),
                                           self._image_file(image, "etc/group"))
            process["user"] = {"uid": uid, "gid": gid, "additionalGids": list(extra)}
        if cfg.get("Privileged"):
            every = [f"CAP_{c}" for c in caps.CAPABILITIES]
            process["capabilities"] = {k: every for k in ("bounding", "effective", "permitted")}
        return process

    def exec_wait(self, exec_id: str, timeout: float | None = None) -> int | None:
        ex = self.exec_get(exec_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while ex.running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(min(left, 1.0) if left is not None else 1.0)
        return ex.exit_code

    def log_path(self, cid: str) -> str:
        return os.path.join(self.store.dir(cid), f"{cid}-json.log")

    def kill(self, name_or_id: str, sig: int = signal.SIGKILL) -> None:
        """Signal the container; as dockerd, any kill counts as a manual stop for restart policies."""
        with self._lock:
            record = self.get(name_or_id)
            if record.state is State.RESTARTING:  # between two runs: it just stays down
                record.stopped_by_user = True
                record.move_to(State.EXITED)
                self.store.save(record)
                self._changed.notify_all()
                return
            if record.state not in (State.RUNNING, State.PAUSED):
                raise Conflict(f"Cannot kill container: {name_or_id}: Container {record.id} is not running")
            record.stopped_by_user = True
            self.store.save(record)
        try:
            self.monitor.request({"op": "kill", "id": record.id, "signal": int(sig)})
        except MonitorError:
            pass  # it exited meanwhile
        container_event(self.events, record, "kill", {"signal": int(sig)})
        if record.state is State.PAUSED and sig == signal.SIGKILL:
            # a frozen process keeps a pending SIGKILL until it thaws: let it die
            self._cgroups().thaw(f"portside/{record.id}")

    def stop(self, name_or_id: str, timeout: float | None = None, sig: int | None = None) -> None:
        record = self.get(name_or_id)
        if record.state not in (State.RUNNING, State.PAUSED, State.RESTARTING):
            raise NotModified("container already stopped")
        stop_signal = sig if sig is not None else specs.parse_signal(record.config.get("StopSignal") or "SIGTERM")
        grace = timeout if timeout is not None else float(record.config.get("StopTimeout") or 10)
        self.kill(record.id, stop_signal)
        if not self._wait_state(record.id, lambda r: r.state is State.EXITED, grace):
            self.kill(record.id, signal.SIGKILL)
            self._wait_state(record.id, lambda r: r.state is State.EXITED, None)
        container_event(self.events, record, "stop")

    def wait(self, name_or_id: str, condition: str = "not-running",
             gone: Callable[[], bool] = lambda: False) -> int:
        """Block until the condition holds; returns the exit code.

        ``gone`` tells whether the caller stopped waiting (an API client that hung up: every
        ``docker run -d`` does, right after start); checked at least once a second, it ends the
        wait with ConnectionAbortedError instead of holding a thread until the container exits.
        """
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        try:
            return self._wait(self.resolve(name_or_id), condition, gone)
        except NotFound:
            with self._lock:
                code = self._removed_codes.get(name_or_id)
            if code is None:
                raise
            return code

    def _wait(self, cid: str, condition: str, gone: Callable[[], bool]) -> int:
        with self._lock:
            start = self.store.load(cid)
            if condition == "next-exit":
                finished = start.finished_ns
                self._wait_state(cid, lambda r: r.state is State.EXITED and r.finished_ns != finished, None, gone)
            elif condition == "not-running":
                self._wait_state(cid, lambda r: r.state not in (State.RUNNING, State.PAUSED, State.RESTARTING),
                                 None, gone)
            else:
                code = start.exit_code
                while self.store.exists(cid):
                    code = self.store.load(cid).exit_code
                    self._changed.wait(1.0)
                    if gone():
                        raise ConnectionAbortedError(f"the client waiting for {cid[:12]} went away")
                return self._removed_codes.get(cid, code)  # its last word, even if gone between looks
            return self.store.load(cid).exit_code

    def _wait_state(self, cid: str, ok: Callable[[ContainerRecord], bool], timeout: float | None,
                    gone: Callable[[], bool] = lambda: False) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                try:
                    if ok(self.store.load(cid)):
                        return True
                except NotFound:
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(min(left, 1.0) if left is not None else 1.0)
                if gone():
                    raise ConnectionAbortedError(f"the client waiting for {cid[:12]} went away")

    # -- remove -------------------------------------------------------------------------

    def remove(self, name_or_id: str, *, force: bool = False, volumes: bool = False) -> None:
        """Remove a container; with ``volumes``, its anonymous volumes too (docker rm -v)."""
        record = self.get(name_or_id)
        if record.state in (State.RUNNING, State.PAUSED, State.RESTARTING):
            if not force:
                raise Conflict(f"You cannot remove a running container {record.id}. Stop the container before "
                               "attempting removal or force remove")
            self.kill(record.id, signal.SIGKILL)
            self._wait_state(record.id, lambda r: r.state is State.EXITED, 30)
        with self._lock:
            record = self.store.load(record.id)
            if record.state is State.REMOVING:
                raise Conflict(f"removal of container {record.id} is already in progress")
            record.move_to(State.REMOVING)
            self.store.save(record, sync=Sync.NEVER)  # _discard unlinks it first thing
            self._removed_codes[record.id] = record.exit_code
            while len(self._removed_codes) > 256:
                self._removed_codes.popitem(last=False)
            self._names.pop(record.name, None)
        for slot in self._pending.pop(record.id, []):
            slot.close()
        used = self.volumes_of(record.id)
        self._network_down(record.id)
        if not record.started_ns:
            self.monitor.release(record.id)  # never started: the spare reserved at create goes now
        with self.rootfs_locks.hold(record.id):
            self._discard(record.id)
        if volumes:
            for name in used:
                try:
                    if self.volumes.get(name).anonymous:
                        self.volumes.remove(name, self.volume_users(name))
                except (NotFound, Conflict):
                    pass
        shutil.rmtree(os.path.join(self.run_dir, "containers", record.id), ignore_errors=True)
        container_event(self.events, record, "destroy")
        with self._lock:
            self._changed.notify_all()


@dataclasses.dataclass
class ExecRecord:
    id: str
    container_id: str
    config: dict[str, Any]          # the create request: Cmd, Env, User, WorkingDir, Tty, Attach*
    started: bool = False
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    pending_size: tuple[int, int] | None = None  # a resize that came before the process existed


class AttachSlot:
    """An attachment promised before start; filled with the client's socket once hijacked."""

    def __init__(self, opts: dict[str, bool]) -> None:
        self.opts = opts
        self.fd = -1
        self.preface = b""
        self.reserved = False
        self._filled = threading.Event()
        self._lock = threading.Lock()  # guards fd, preface, _abandoned
        self._abandoned = False

    def fill(self, fd: int, preface: bytes) -> bool:
        """Hand over the socket; False if the start gave up waiting (the caller attaches live)."""
        with self._lock:
            if self._abandoned:
                return False
            self.fd, self.preface = fd, preface
            self._filled.set()
            return True

    def wait(self, timeout: float = 2.0) -> bool:
        """For start: True once filled; after the timeout the slot is abandoned."""
        if self._filled.wait(timeout):
            return True
        with self._lock:
            self._abandoned = not self._filled.is_set()
            return not self._abandoned

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --init: Debian's static tini, bind-mounted as /dev/init, as dockerd does with docker-init (tini too)
INIT_BINARY = "/usr/bin/tini-static"


def _add_init(spec: dict[str, Any]) -> None:
    if not os.path.exists(INIT_BINARY):
        raise InvalidArgument(f"--init needs {INIT_BINARY} (Debian's tini package)")
    spec["mounts"] = [*spec.get("mounts", []), {"destination": "/dev/init", "type": "bind",
                                                  "source": INIT_BINARY, "options": ["bind", "ro"]}]
    spec["process"]["args"] = ["/dev/init", "--", *spec["process"]["args"]]


def _should_restart(record: ContainerRecord) -> bool:
    """Docker's restart policies: no, always, unless-stopped, on-failure[:N]."""
    policy = record.host_config.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if record.stopped_by_user or name == "no":
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return record.exit_code != 0 and (limit == 0 or record.restart_count < limit)
    return False


def _host_facts() -> specs.HostFacts:
    """What this host can give a container: cgroup version, CPUs, and the capabilities we hold
    (a privileged container gets all of those, not capabilities this host lacks: CAP_SYS_RESOURCE here)."""
    bounding = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                bounding = int(line.split()[1], 16)
    held = tuple("CAP_" + name for i, name in enumerate(caps.CAPABILITIES) if bounding & (1 << i))
    return specs.HostFacts(cgroup2=os.path.exists("/sys/fs/cgroup/cgroup.controllers"), cpus=os.cpu_count() or 0,
                           capabilities=held)


def write_etc_files(directory: str, hostname: str, request: specs.CreateRequest,
                    host_gateway: str = "") -> specs.EtcFiles:
    """The container's /etc/hostname, /etc/hosts and /etc/resolv.conf, bind-mounted by the spec.

    As dockerd writes them for a container without a network address yet
    (network/etchosts.py, network/resolvconf.py); networking rewrites hosts and
    resolv.conf at start for the container's addresses and embedded DNS server.
    """
    h, c = request.host_config, request.config
    host_network = h.network_mode == "host"
    if host_network and not h.extra_hosts:
        try:
            with open("/etc/hosts") as f:
                hosts = f.read()
        except OSError:
            hosts = etchosts.build(hostname=hostname)
    else:
        hosts = etchosts.build(hostname=hostname, domainname=c.domainname, extra_hosts=h.extra_hosts,
                               host_gateway=host_gateway)
    resolv = resolvconf.build(resolvconf.read_host(), dns=h.dns, dns_search=h.dns_search,
                              dns_options=h.dns_options, host_network=host_network)
    files = {"hostname": hostname + "\n", "hosts": hosts, "resolv.conf": resolv.text}
    for name, text in files.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)
    return specs.EtcFiles(hosts=os.path.join(directory, "hosts"), hostname=os.path.join(directory, "hostname"),
                          resolv_conf=os.path.join(directory, "resolv.conf"))


def parse_signal(value: str | None, default: int = signal.SIGKILL) -> int:
    """``9``, ``KILL`` or ``SIGKILL`` → 9 (Docker's signal parsing)."""
    if not value:
        return default
    if value.isdigit():
        return int(value)
    name = value.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {value}") from None
