"""Mount records and the two syscalls that act on them.

A snapshotter describes a root filesystem as a list of ``Mount`` records; only
the code that finally needs the filesystem (the runtime, the builder, a test)
performs the mount. Nothing outside ``snapshots/`` knows what overlayfs is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

from portside.snapshots import idmap

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MS_RDONLY = 0x1
MS_BIND = 0x1000
MS_REMOUNT = 0x20
MNT_DETACH = 0x2


@dataclass(frozen=True)
class Mount:
    type: str            # "overlay" or "bind"
    source: str
    options: tuple[str, ...] = ()

    def mount(self, target: str) -> None:
        """Mount on ``target``.

        An overlay with ``uidmap=``/``gidmap=`` options gets idmapped lower
        layers (snapshots/idmap.py): each lower directory is covered by an
        idmapped copy of itself for the length of the overlay mount call, and
        uncovered after (overlayfs holds its own reference). Do that only in a
        private mount namespace: others would see the covered layers meanwhile.
        """
        idmaps = {k: v for k, _, v in (o.partition("=") for o in self.options) if k in ("uidmap", "gidmap")}
        if idmaps:
            self._mount_idmapped(target, idmaps)
            return
        flags = 0
        data: list[str] = []
        for opt in self.options:
            if opt == "ro":
                flags |= MS_RDONLY
            elif opt in ("bind", "rbind"):
                flags |= MS_BIND
            else:
                data.append(opt)
        fstype = None if self.type == "bind" else self.type
        if self.type == "bind":
            flags |= MS_BIND
        _mount(self.source, target, fstype, flags & ~MS_RDONLY if flags & MS_BIND else flags, ",".join(data))
        if flags & MS_BIND and flags & MS_RDONLY:
            # A bind mount ignores MS_RDONLY on creation; it takes a remount.
            _mount("", target, None, MS_BIND | MS_REMOUNT | MS_RDONLY, "")

    def _mount_idmapped(self, target: str, idmaps: dict[str, str]) -> None:
        if self.type != "overlay" or set(idmaps) != {"uidmap", "gidmap"}:
            raise ValueError(f"idmapped {self.type} mount needs overlay with both uidmap and gidmap: {self.options}")
        plain = tuple(o for o in self.options if o.partition("=")[0] not in idmaps)
        lowers = next((o[len("lowerdir="):] for o in plain if o.startswith("lowerdir=")), "")
        userns = idmap.userns_fd(idmap.parse_maps(idmaps["uidmap"]), idmap.parse_maps(idmaps["gidmap"]))
        covered: list[str] = []
        try:
            for lower in dict.fromkeys(lowers.split(":")) if lowers else ():
                fd = idmap.idmapped_clone(lower, userns)
                try:
                    idmap.attach(fd, lower)
                finally:
                    os.close(fd)
                covered.append(lower)
            Mount(self.type, self.source, plain).mount(target)
        finally:
            for lower in reversed(covered):
                idmap.detach(lower)


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str) -> None:
    rc = _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                     data.encode() if data else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype or 'bind'} {source} on {target} ({data}): {os.strerror(err)}")


def mount_all(mounts: list[Mount], target: str) -> None:
    for m in mounts:
        m.mount(target)


def unmount(target: str, *, detach: bool = False) -> None:
    rc = _libc.umount2(target.encode(), MNT_DETACH if detach else 0)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")
