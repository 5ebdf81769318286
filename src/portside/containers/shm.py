"""A shareable IPC's /dev/shm: ``--ipc shareable`` and the containers that join it (``--ipc container:X``).

As dockerd's ``<container dir>/mounts/shm``: a tmpfs on the host, mounted
when the donor starts and unmounted when it stops (or at rm, or when a
restarted daemon finds it stopped), bound as /dev/shm into the donor and into
every container that joins its IPC namespace, so POSIX shared memory is shared
along with the SysV objects. A private IPC keeps its tmpfs inside its own
mount namespace (containers/spec.py) and has no such directory: dockerd's
``non-shareable IPC`` test is whether it is a mount point.
"""

from __future__ import annotations

import os

from portside.errors import Internal
from portside.runtime import linux


def path(container_dir: str) -> str:
    return os.path.join(container_dir, "mounts", "shm")


def mount(container_dir: str, size: int, owner: tuple[int, int] | None = None) -> None:
    """``owner``: the remapped root (--userns-remap), so the container's root owns its /dev/shm."""
    target = path(container_dir)
    os.makedirs(target, mode=0o700, exist_ok=True)
    if os.path.ismount(target):
        return
    data = f"mode=1777,size={size}" + (f",uid={owner[0]},gid={owner[1]}" if owner else "")
    try:
        linux.mount("shm", target, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, data)
    except OSError as e:  # Internal: the start's failure path undoes what it did so far
        raise Internal(f"mounting the shareable /dev/shm: {e}") from None


def mounted(container_dir: str) -> bool:
    return os.path.ismount(path(container_dir))


def unmount(container_dir: str) -> None:
    """Idempotent; lazily, so a container still holding the bind (a joiner) does not keep it busy."""
    target = path(container_dir)
    if os.path.ismount(target):
        linux.umount2(target, linux.MNT_DETACH)
