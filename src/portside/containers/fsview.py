"""A container's filesystem as ``docker cp`` and ``docker export`` see it, opened in the daemon.

What is seen is the container's root filesystem and, for ``cp``, its volumes,
bind mounts and /etc/hosts, /etc/hostname, /etc/resolv.conf, as Docker's
``openContainerFS`` shows them; never its /proc, /sys or /dev. For ``export``
the root filesystem alone.

How (moby's ``containerfs_linux.go`` made to fit portside): a thread of its
own unshares its filesystem context and mount namespace, builds the view
there and hands out one fd of the view's ``/``; the rest of the daemon never
sees these mounts, its ``/proc/self/mountinfo`` stays as it was, and when
the thread ends its namespace goes and the mounts with it (a crash of the
daemon included). The other threads work through the fd (archive.rootpath),
so they need not be in the namespace.

* A running or paused container's overlay is mounted only inside its own
  mount namespace, and a second overlayfs mount of the same upper directory
  is undefined behaviour. So the thread joins the container's namespace and
  unshares again: a private copy of its mount tree, same superblocks, in
  which every mount but the root and the kept ones is detached.
* A created or stopped container's overlay is mounted by the thread in a
  copy of the daemon's namespace, with the bind mounts of the container's
  spec on top (made as the container's init makes them, copy-up included).

A ``--userns-remap`` container's view is in host ids throughout: its upper
directory and volumes are owned by shifted ids on disk, and the shared image
layers are mounted idmapped (snapshots/idmap.py), in its own namespace when
it runs and here when it does not. ``ids`` shifts them back (containers/archive.py).

A view holds the container's rootfs lock: ``start`` and ``remove`` wait for
it, so the overlay is never mounted twice and never removed under a view.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portside.archive.rootpath import Root, clean
from portside.containers import userns
from portside.containers.record import ContainerRecord, State
from portside.containers.userns import BundleIds
from portside.errors import Conflict
from portside.runtime import init, linux
from portside.snapshots.mount import Mount

if TYPE_CHECKING:
    from portside.containers.service import ContainerService

_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_UMOUNT_NOFOLLOW = 0x8
_SETUP_TIMEOUT = 60.0
# Mounts of a spec that are not the container's volumes or binds for Docker's archive view.
_NOT_VOLUMES = frozenset({"/dev/init", "/dev/shm"})


@dataclass(frozen=True)
class VolumeMount:
    """A volume or bind mount of the container (Docker's MountPoints), for the read-only checks."""

    destination: str
    read_only: bool


@dataclass
class ContainerFS:
    """An open view of a container's filesystem; ``root`` resolves paths inside it. Close it."""

    record: ContainerRecord
    root: Root
    volumes: tuple[VolumeMount, ...]
    # A remapped container's mappings: its files are owned by host ids it sees shifted back.
    ids: BundleIds | None
    _close: Callable[[], None] = field(repr=False)

    def close(self) -> None:
        close, self._close = self._close, _nothing
        close()

    def __enter__(self) -> ContainerFS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _nothing() -> None:
    pass


class RootfsLocks:
    """One lock per container: held while its filesystem is open in the daemon, and by start and remove."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _locks
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # container ID -> (its lock, users)

    def acquire(self, cid: str) -> Callable[[], None]:
        """Take the container's lock; returns the function that releases it (exactly once)."""
        with self._lock:
            lock, users = self._locks.get(cid, (threading.Lock(), 0))
            self._locks[cid] = (lock, users + 1)
        lock.acquire()
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            lock.release()
            with self._lock:
                _, users = self._locks[cid]
                if users <= 1:
                    del self._locks[cid]
                else:
                    self._locks[cid] = (lock, users - 1)

        return release

    @contextmanager
    def hold(self, cid: str) -> Iterator[None]:
        release = self.acquire(cid)
        try:
            yield
        finally:
            release()


def open_container_fs(service: ContainerService, name_or_id: str, *, volumes: bool) -> ContainerFS:
    """Open the view of a container's filesystem (with its volumes and binds, or its rootfs alone)."""
    cid = service.resolve(name_or_id)
    release = service.rootfs_locks.acquire(cid)
    try:
        record = service.store.load(cid)
        if record.state is State.REMOVING:
            raise Conflict(f"container {cid} is being removed")
        if record.state is State.DEAD:
            raise Conflict(f"container {cid} is dead")
        with open(os.path.join(service.store.dir(cid), "config.json")) as f:
            spec = json.load(f)
        kept = [m for m in spec.get("mounts") or [] if _is_volume(m)] if volumes else []
        ns_fd = _namespace_of(record) if record.state in (State.RUNNING, State.PAUSED) else -1
        if ns_fd >= 0:
            try:
                view = _Namespace(lambda: _running_root(ns_fd, [m["destination"] for m in kept]))
            finally:
                os.close(ns_fd)
        else:
            image = service.images.load_image(record.image_id)
            # Idmapped as at start: the shared layers' files then read as the same host ids as the
            # container's own (its upper directory is owned by them on disk), as in a running view.
            overlay = userns.idmapped(service.images.snapshots.mounts(cid, [la.chain_id for la in image.row.layers]),
                                      spec)
            target = os.path.join(service.store.dir(cid), "rootfs")
            view = _Namespace(lambda: _stopped_root(target, overlay, kept), teardown=lambda: _detach(target))
    except BaseException:
        release()
        raise

    def close() -> None:
        try:
            view.close()
        finally:
            release()

    return ContainerFS(record, Root(view.root_fd), tuple(_volume_mounts(spec)), userns.bundle_ids(spec), close)


def _is_volume(m: dict[str, Any]) -> bool:
    """A mount Docker's archive view has: volumes, binds and the etc files, not shm or the init binary."""
    return m.get("type") == "bind" and clean(str(m.get("destination", ""))) not in _NOT_VOLUMES


def _volume_mounts(spec: dict[str, Any]) -> Iterator[VolumeMount]:
    for m in spec.get("mounts") or []:
        if _is_volume(m):
            options = m.get("options") or []
            yield VolumeMount(clean(str(m["destination"])), "ro" in options or "rro" in options)


def _namespace_of(record: ContainerRecord) -> int:
    """An fd of the running container's mount namespace, or -1 if its process is gone."""
    try:
        fd = os.open(f"/proc/{record.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return -1
    try:
        # The pid is the container's (not a reused one) if it is in the container's cgroup.
        with open(f"/proc/{record.pid}/cgroup") as f:
            if record.id not in f.read():
                os.close(fd)
                return -1
    except OSError:
        os.close(fd)
        return -1
    return fd


# -- the namespace thread --------------------------------------------------------------


class _Namespace:
    """A thread in a mount namespace of its own, alive until ``close``; ``root_fd`` is its view's ``/``."""

    def __init__(self, setup: Callable[[], int], teardown: Callable[[], None] | None = None) -> None:
        self._ready: queue.Queue[int | BaseException] = queue.Queue()
        self._release = threading.Event()
        self._done = threading.Event()
        self._setup, self._teardown = setup, teardown
        self._thread = threading.Thread(target=self._run, name="portside-container-fs", daemon=True)
        self._thread.start()
        try:
            result = self._ready.get(timeout=_SETUP_TIMEOUT)
        except queue.Empty:
            self._release.set()
            raise TimeoutError("opening the container's filesystem took too long") from None
        if isinstance(result, BaseException):
            self._done.wait(_SETUP_TIMEOUT)
            raise result
        self.root_fd = result

    def close(self) -> None:
        os.close(self.root_fd)
        self._release.set()
        self._done.wait(_SETUP_TIMEOUT)  # the mounts are gone when it is set

    def _run(self) -> None:
        try:
            try:
                # Our own root, cwd and umask first: a thread of a threaded process may
                # change mount namespace only then (the kernel's check in mntns_install).
                linux.unshare(linux.CLONE_FS)
                fd = self._setup()
            except BaseException as e:
                self._ready.put(e)
                return
            self._ready.put(fd)
            self._release.wait()
            if self._teardown is not None:
                self._teardown()
        except BaseException:
            pass  # nothing to report to: the namespace goes with the thread anyway
        finally:
            self._done.set()


def _stopped_root(target: str, overlay: Sequence[Mount], kept: Sequence[dict[str, Any]]) -> int:
    linux.unshare(linux.CLONE_NEWNS)
    # Private before anything is mounted: nothing of ours may propagate to the daemon's namespace.
    linux.mount("", "/", None, linux.MS_REC | linux.MS_PRIVATE)
    for m in overlay:
        m.mount(target)
    for spec_mount in kept:
        init.mount_spec_entry(target, spec_mount)
    return os.open(target, _PATH_DIR)


def _detach(target: str) -> None:
    # Lazily, but the overlay's superblock goes as this call returns: the view's fds are closed.
    linux.umount2(target, linux.MNT_DETACH)


def _running_root(ns_fd: int, kept_destinations: Sequence[str]) -> int:
    host_root = os.open("/", _PATH_DIR)
    proc_fd = os.open("/proc", _PATH_DIR)  # the daemon's procfs: its thread-self is this thread
    try:
        try:
            linux.setns(ns_fd, linux.CLONE_NEWNS)
            linux.unshare(linux.CLONE_NEWNS)  # a copy: what we detach stays attached for the container
            # Private first, or detaching a mount the container shares with a peer would detach the peer.
            linux.mount("", "/", None, linux.MS_REC | linux.MS_PRIVATE)
            root_fd = os.open("/", _PATH_DIR)
            # Its mount points are given relative to the root at open time: the container's.
            info_fd = os.open("thread-self/mountinfo", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
        finally:
            # setns made the container's root this thread's root: back to the daemon's at once, so
            # that nothing run here (a finalizer, an import) resolves a path in the container.
            os.fchdir(host_root)
            os.chroot(".")
        try:
            root = Root(root_fd)
            keep = {"/"} | {root.resolve(d) for d in kept_destinations}
            _detach_all_but(root_fd, _mount_points(info_fd), keep)
        except BaseException:
            os.close(root_fd)
            raise
        finally:
            os.close(info_fd)
        return root_fd
    finally:
        os.close(proc_fd)
        os.close(host_root)


def _detach_all_but(root_fd: int, points: list[str], keep: set[str]) -> None:
    """Detach every mount whose mount point (in the container) is not in ``keep`` nor above one of them."""
    unwanted = [p for p in points if p not in keep and not any(k.startswith(p.rstrip("/") + "/") for k in keep)]
    # Shallow first: detaching /dev takes /dev/pts with it. A mount stacked on another is seen once per
    # layer in mountinfo, and each umount takes one layer.
    for point in sorted(unwanted, key=lambda p: p.count("/")):
        try:
            # Through the root's fd: resolved in our copy of the container's tree, and umount
            # only ever acts on a mount of this thread's namespace.
            linux.umount2(f"/proc/self/fd/{root_fd}{point}", linux.MNT_DETACH | _UMOUNT_NOFOLLOW)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):  # went with its parent already
                raise


def _mount_points(fd: int) -> list[str]:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    points = []
    for line in b"".join(chunks).splitlines():
        fields = line.split(b" ")
        if len(fields) > 4:
            points.append(_unescape(fields[4]))
    return points


def _unescape(field: bytes) -> str:
    """mountinfo writes space, tab, newline and backslash as ``\\ooo``."""
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i] == 0x5C and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return os.fsdecode(bytes(out))
