"""The local driver's options (``docker volume create -o``): ``type``, ``device``, ``o`` and ``size``.

A volume with a ``type`` or a ``device`` is a mount: the filesystem named by
them is mounted on the volume's ``_data`` while a container that uses the
volume runs, and unmounted when the last one stops, as moby's local driver
does (``type=tmpfs,device=tmpfs`` loses its content then; ``type=none,
o=bind,device=/path`` shows a host directory). ``o`` is split as moby/sys/mount
splits it: known words become mount flags, the rest is the filesystem's data.

The mounts are made in the daemon's mount namespace, before the container's
own namespace copies them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping

from portside.errors import Internal, InvalidArgument
from portside.units import ram_in_bytes

_VALID = ("type", "o", "device", "size")
# an option → the ones it needs beside it (moby's mandatoryOpts; Go visits its map in no set order)
_REQUIRED = {"device": ("type",), "type": ("device",), "o": ("device", "type")}

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC = 0x10, 0x20, 0x40, 0x80
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 0x400, 0x800, 0x1000, 0x4000
MS_SILENT, MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 0x8000, 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
MNT_DETACH = 0x2
_PROPAGATION_TYPES = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE

# word in ``o`` → (clears the flag?, flag): moby/sys/mount's flags table for Linux
_FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0), "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "suid": (True, MS_NOSUID), "nosuid": (False, MS_NOSUID), "dev": (True, MS_NODEV), "nodev": (False, MS_NODEV),
    "exec": (True, MS_NOEXEC), "noexec": (False, MS_NOEXEC), "sync": (False, MS_SYNCHRONOUS),
    "async": (True, MS_SYNCHRONOUS), "dirsync": (False, MS_DIRSYNC), "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK), "nomand": (True, MS_MANDLOCK), "atime": (True, MS_NOATIME),
    "noatime": (False, MS_NOATIME), "diratime": (True, MS_NODIRATIME), "nodiratime": (False, MS_NODIRATIME),
    "bind": (False, MS_BIND), "rbind": (False, MS_BIND | MS_REC), "unbindable": (False, MS_UNBINDABLE),
    "runbindable": (False, MS_UNBINDABLE | MS_REC), "private": (False, MS_PRIVATE),
    "rprivate": (False, MS_PRIVATE | MS_REC), "shared": (False, MS_SHARED), "rshared": (False, MS_SHARED | MS_REC),
    "slave": (False, MS_SLAVE), "rslave": (False, MS_SLAVE | MS_REC), "relatime": (False, MS_RELATIME),
    "norelatime": (True, MS_RELATIME), "strictatime": (False, MS_STRICTATIME),
    "nostrictatime": (True, MS_STRICTATIME),
}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def validate(options: Mapping[str, str]) -> None:
    """Refuse what moby's local driver refuses at create, with its messages."""
    for key in options:
        if key not in _VALID:
            raise InvalidArgument(f'invalid option: "{key}"')
    if "size" in options:
        if ram_in_bytes(options["size"]) > 0:  # InvalidArgument "invalid size: ..." if it is no size
            raise InvalidArgument("quota size requested but no quota support")  # portside keeps no quotas
    for key, needed in _REQUIRED.items():
        if key in options:
            for other in needed:
                if other not in options:
                    raise InvalidArgument(f'missing required option: "{other}"')


def needs_mount(options: Mapping[str, str]) -> bool:
    return bool(options.get("device") or options.get("type"))


def parse(o: str) -> tuple[int, str]:
    """``o`` → (mount flags, filesystem data): words of the flags table set or clear flags, the rest is data."""
    flags = 0
    data = []
    for word in o.split(","):
        clear, flag = _FLAGS.get(word, (False, 0))
        if flag == 0:
            data.append(word)
        elif clear:
            flags &= ~flag
        else:
            flags |= flag
    return flags, ",".join(data)


class MountError(Exception):
    """moby's mountError: ``mount SOURCE:TARGET, flags: 0x.., data: ..: ERRNO TEXT``."""

    def __init__(self, op: str, source: str, target: str, flags: int, data: str, errno: int) -> None:
        text = os.strerror(errno)
        message = f"{op} {source}:{target}" if source else f"{op} {target}"
        if flags:
            message += f", flags: 0x{flags:x}"
        if data:
            message += f", data: {data}"
        super().__init__(f"{message}: {text[:1].lower()}{text[1:]}")


def _syscall(source: str, target: str, fstype: str, flags: int, data: str) -> int:
    rc = _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                     data.encode() if data else None)
    return ctypes.get_errno() if rc != 0 else 0


def mount(options: Mapping[str, str], target: str) -> None:
    """Mount the volume's filesystem on ``target``, or raise Internal with dockerd's message."""
    device, fstype = options.get("device", ""), options.get("type", "")
    try:
        if not device:
            raise Internal("missing device in volume options")
        _mount(device, target, fstype, *parse(options.get("o", "")))
    except MountError as e:
        raise Internal(f"error while mounting volume '{target}': failed to mount local volume: {e}") from None
    except Internal as e:
        raise Internal(f"error while mounting volume '{target}': {e}") from None


def _mount(device: str, target: str, fstype: str, flags: int, data: str) -> None:
    """moby/sys/mount's mount: the mount, then its propagation, then read-only for a bind.

    As there, a device of "" or "none" without data means a remount of what is
    already at ``target``, so ``type=tmpfs,device=none`` alone mounts nothing.
    """
    plain = flags & ~_PROPAGATION_TYPES
    remount = bool(flags & MS_REMOUNT) or device in ("", "none")
    if not remount or data:
        if errno := _syscall(device, target, fstype, plain, data):
            raise MountError("mount", device, target, plain, data, errno)
    if flags & _PROPAGATION_TYPES:
        propagation = flags & (_PROPAGATION_TYPES | MS_REC | MS_SILENT)
        if errno := _syscall("", target, "", propagation, ""):
            raise MountError("remount", "", target, propagation, "", errno)
    if plain & (MS_BIND | MS_RDONLY) == MS_BIND | MS_RDONLY:
        if errno := _syscall("", target, "", plain | MS_REMOUNT, ""):
            raise MountError("remount-ro", "", target, plain | MS_REMOUNT, "", errno)


def unmount(target: str) -> None:
    """Detach whatever is mounted on ``target`` (nothing mounted: nothing to do)."""
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        if errno != 22 or mounted(target):  # EINVAL: not a mount point
            raise Internal(f"unmount {target}: {os.strerror(errno).lower()}")


def mounted(path: str) -> bool:
    """Whether ``path`` is a mount point (in /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    return path in mount_points()


def mount_points(under: str = "/") -> list[str]:
    """Mount points at or below ``under``, from /proc/self/mountinfo."""
    under = os.path.realpath(under)
    prefix = under.rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = _unescape(line.split(" ", 5)[4])
            if target == under or target.startswith(prefix):
                out.append(target)
    return out


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
