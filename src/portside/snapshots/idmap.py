"""Idmapped layers: a layer directory seen through a user namespace's id mapping.

On disk a layer's files belong to the host's ids (its root files to uid 0). A
container in a user namespace must see them owned by its own root, which is
host uid ``start``. dockerd keeps a chowned copy of every layer per mapping
(``<root>/<uid>.<gid>/``); portside mounts the shared layers *idmapped*
instead (``mount_setattr(MOUNT_ATTR_IDMAP)``, Linux 5.12; overlayfs takes
idmapped lower layers since 5.19): through such a mount, on-disk uid ``u``
reads as host uid ``start + u``, and nothing is copied (docs/userns.md).

A mapping needs a user namespace to point at: ``userns_fd`` makes one per
mapping (a short-lived helper process unshares it, the caller writes its
maps and keeps a file descriptor) and caches the descriptor in the process.

The mount record carries the mapping as options, ``uidmap=0:100000:65536``
and ``gidmap=...`` (ranges separated by ``;``), so nothing but this package
has to know which directories an overlay mount reads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

_SYS_OPEN_TREE = 428  # x86_64
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = os.O_CLOEXEC
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOUNT_ATTR_IDMAP = 0x00100000
_MNT_DETACH = 0x2
_CLONE_NEWUSER = 0x10000000


@dataclass(frozen=True)
class IDMap:
    """One range of a uid_map or gid_map: ``size`` ids from ``container_id`` are host ``host_id``..."""

    container_id: int
    host_id: int
    size: int


def format_maps(maps: tuple[IDMap, ...]) -> str:
    """``0:100000:65536;65536:300000:10``: the option value."""
    return ";".join(f"{m.container_id}:{m.host_id}:{m.size}" for m in maps)


def parse_maps(text: str) -> tuple[IDMap, ...]:
    out = []
    for part in text.split(";"):
        fields = part.split(":")
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise ValueError(f"bad id map {text!r}: want CONTAINER:HOST:SIZE[;...]")
        out.append(IDMap(int(fields[0]), int(fields[1]), int(fields[2])))
    return tuple(out)


def proc_map_text(maps: tuple[IDMap, ...]) -> str:
    """What /proc/<pid>/uid_map (or gid_map) takes: one ``container host size`` line per range."""
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)


def write_proc_maps(pid: int, uids: tuple[IDMap, ...], gids: tuple[IDMap, ...]) -> None:
    """Give ``pid``'s (fresh) user namespace its mappings; only a process outside it may."""
    for name, maps in (("uid_map", uids), ("gid_map", gids)):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(proc_map_text(maps))


# A user namespace per mapping, by (uids, gids), kept open for the life of the process.
_USERNS: dict[tuple[tuple[IDMap, ...], tuple[IDMap, ...]], int] = {}


def userns_fd(uids: tuple[IDMap, ...], gids: tuple[IDMap, ...]) -> int:
    """A descriptor of a user namespace with these mappings (made once per process).

    A user namespace lives while something refers to it: a helper process
    unshares one and waits, we write its maps, open it, and let the helper go.
    Forks: call it from a single-threaded process (the monitor, a launch child).
    """
    key = (uids, gids)
    if key in _USERNS:
        return _USERNS[key]
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the helper
        try:
            os.close(ready_r)
            os.close(done_w)
            _check(_libc.unshare(ctypes.c_int(_CLONE_NEWUSER)), "unshare(CLONE_NEWUSER)")
            os.write(ready_w, b"1")
            os.read(done_r, 1)  # end of file: the parent holds the namespace now
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(f"user namespace helper {pid} exited before unsharing")
        write_proc_maps(pid, uids, gids)
        fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)
    _USERNS[key] = fd
    return fd


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


def idmapped_clone(path: str, userns: int) -> int:
    """A detached copy of the mount at ``path``, idmapped through ``userns``; returns its descriptor."""
    fd = _libc.syscall(ctypes.c_long(_SYS_OPEN_TREE), ctypes.c_int(_AT_FDCWD), path.encode(),
                       ctypes.c_uint(_OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC))
    _check(fd, f"open_tree({path})")
    try:
        attr = _MountAttr(_MOUNT_ATTR_IDMAP, 0, 0, userns)
        rc = _libc.syscall(ctypes.c_long(_SYS_MOUNT_SETATTR), ctypes.c_int(fd), b"", ctypes.c_uint(_AT_EMPTY_PATH),
                           ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))
        _check(rc, f"mount_setattr({path}, idmap)")
    except BaseException:
        os.close(fd)
        raise
    return int(fd)


def attach(fd: int, target: str) -> None:
    """move_mount: put a detached mount (``idmapped_clone``) on ``target``."""
    rc = _libc.syscall(ctypes.c_long(_SYS_MOVE_MOUNT), ctypes.c_int(fd), b"", ctypes.c_int(_AT_FDCWD),
                       target.encode(), ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH))
    _check(rc, f"move_mount to {target}")


def detach(target: str) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(_MNT_DETACH)), f"umount {target}")


def supported(path: str, uids: tuple[IDMap, ...], gids: tuple[IDMap, ...]) -> str | None:
    """None if the filesystem at ``path`` takes idmapped mounts, else why not (nothing is mounted)."""
    try:
        os.close(idmapped_clone(path, userns_fd(uids, gids)))
    except OSError as e:
        return str(e)
    return None


def _check(rc: int, what: str) -> None:
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
