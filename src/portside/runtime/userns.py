"""A container in its own user namespace: the steps around ``unshare(CLONE_NEWUSER)``.

Inside the namespace the container's root is host uid ``<start>``: it has no
power over the host's files, cannot walk the daemon's 0700 directories, and
cannot mount overlayfs over layers it does not own. So what needs the host's
root happens before the namespace exists, in the launch child:

    1. a private "setup" mount namespace (still owned by the host's user namespace)
    2. the root filesystem mounted there: overlay over idmapped layers
    3. a fresh volume filled from the image (copy-up), and every bind mount's
       source cloned as a detached mount (open_tree), both as the host's root:
       ``-v /root/file:/f`` works though the container's root could not reach
       /root (runc's "mount sources opened before the user namespace")
    4. the working directory moved into the root filesystem

Then ``unshare(CLONE_NEWUSER | the others)``: the kernel creates the user
namespace first and the new ones belong to it; the mount namespace is a copy
of the setup one. Only a process outside the namespace may write its
uid_map and gid_map: a helper forked just before the unshare does, while the
child waits (runc's parent does it; a helper keeps the whole handshake here).
The child becomes the namespace's root (``setresuid(0)``: host ``<start>``,
so what it creates is the container root's) and forks pid 1, whose init:

    5. clones the root filesystem onto itself and works on the clone: mounts
       copied into a less privileged namespace are locked together, and a
       pivot_root onto a locked mount would lock the old root, which then
       could not be detached
    6. attaches the bind mounts from the descriptors of step 3 (move_mount)

A container joining a peer's user namespace (``--network container:X``)
takes the same steps, with ``setns`` for ``unshare`` and no maps to write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from portside.runtime import linux
from portside.runtime.paths import secure_join
from portside.snapshots import idmap
from portside.snapshots.mount import Mount


@dataclass(frozen=True)
class Remap:
    """The spec's user namespace: its mappings, and whether it is new or joined (a path)."""

    uids: tuple[idmap.IDMap, ...]
    gids: tuple[idmap.IDMap, ...]
    join_path: str = ""


def of(spec: dict[str, Any]) -> Remap | None:
    """The spec's user namespace, if it has one (the bundle's linux.namespaces and uid/gidMappings)."""
    linux_spec = spec.get("linux") or {}
    user = next((ns for ns in linux_spec.get("namespaces") or [] if ns.get("type") == "user"), None)
    if user is None:
        return None
    uids = tuple(idmap.IDMap(int(m["containerID"]), int(m["hostID"]), int(m["size"]))
                 for m in linux_spec.get("uidMappings") or [])
    gids = tuple(idmap.IDMap(int(m["containerID"]), int(m["hostID"]), int(m["size"]))
                 for m in linux_spec.get("gidMappings") or [])
    if not user.get("path") and not (uids and gids):
        raise ValueError("a new user namespace needs linux.uidMappings and linux.gidMappings")
    return Remap(uids, gids, user.get("path") or "")


def _is_bind(m: dict[str, Any]) -> bool:
    options = m.get("options") or []
    return "bind" in options or "rbind" in options


@dataclass
class HostSide:
    """What the launch child prepared as the host's root, for the init inside the namespace."""

    binds: dict[int, int] = field(default_factory=dict)  # index in spec["mounts"] → detached mount

    def enter_rootfs(self) -> str:
        """Step 5, in the container's mount namespace: an unlocked clone of the root filesystem
        (at the working directory) on top of it; returns the root to use from now on, ``.``."""
        fd = linux.open_tree(".", linux.OPEN_TREE_CLONE | linux.AT_RECURSIVE)
        try:
            linux.move_mount(fd, ".")
            os.fchdir(fd)  # onto the clone: "." alone would still name the mount below it
        finally:
            os.close(fd)
        return "."

    def bind_source(self, index: int) -> int | None:
        return self.binds.get(index)


def prepare(spec: dict[str, Any], root_mounts: list[Mount], remap: Remap) -> HostSide:
    """Steps 1 to 4, in the launch child, before the user namespace."""
    from portside.runtime import init  # the copy-up lives with the init that does it for other containers

    linux.unshare(linux.CLONE_NEWNS)
    linux.mount("", "/", None, linux.MS_REC | linux.MS_PRIVATE)
    rootfs = spec["root"]["path"]
    for m in root_mounts:
        m.mount(rootfs)
    side = HostSide()
    for index, m in enumerate(spec.get("mounts") or []):
        if not _is_bind(m):
            continue
        init.copy_up(m["source"], secure_join(rootfs, m["destination"]))
        recursive = linux.AT_RECURSIVE if "rbind" in (m.get("options") or []) else 0
        side.binds[index] = linux.open_tree(m["source"], linux.OPEN_TREE_CLONE | recursive)
    if (spec.get("process") or {}).get("terminal") and remap.uids and remap.gids:
        os.fchown(0, _to_host(remap.uids, 0), _to_host(remap.gids, 0))  # the container's root owns its console
    os.chdir(rootfs)
    return side


def _to_host(maps: tuple[idmap.IDMap, ...], container_id: int) -> int:
    for m in maps:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    raise ValueError(f"container id {container_id} is not mapped")


def enter(spec: dict[str, Any], root_mounts: list[Mount], remap: Remap, flags: int) -> HostSide:
    """In the launch child, in place of ``unshare(flags)``: steps 1 to 4, then into the user
    namespace (new and mapped, or the joined one), then its root."""
    side = prepare(spec, root_mounts, remap)
    if remap.join_path:
        fd = os.open(remap.join_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(fd)
        finally:
            os.close(fd)
    if flags & linux.CLONE_NEWUSER:
        _unshare_mapped(flags, remap)
    else:
        linux.unshare(flags)
    os.setresgid(0, 0, 0)
    os.setgroups([])
    os.setresuid(0, 0, 0)
    return side


def _unshare_mapped(flags: int, remap: Remap) -> None:
    """unshare(flags) with CLONE_NEWUSER; a helper forked first (still outside) writes the maps."""
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    helper = os.fork()
    if helper == 0:  # pragma: no cover - the helper
        report = b""
        try:
            os.close(go_w)
            os.close(done_r)
            if os.read(go_r, 1) == b"u":
                idmap.write_proc_maps(os.getppid(), remap.uids, remap.gids)
                report = b"ok"
        except BaseException as e:
            report = str(e).encode()
        finally:
            os.write(done_w, report)
            os._exit(0)
    os.close(go_r)
    os.close(done_w)
    try:
        linux.unshare(flags)
        os.write(go_w, b"u")
        report = os.read(done_r, 4096)
    finally:
        os.close(go_w)
        os.close(done_r)
        os.waitpid(helper, 0)
    if report != b"ok":
        raise OSError(f"writing the user namespace's id maps: {report.decode(errors='replace') or 'helper died'}")


def warm(remap: Remap) -> None:
    """Make the layers' id-mapping namespace in the calling (long-lived) process, so launch
    children inherit it instead of each forking a helper."""
    if remap.uids and remap.gids:
        idmap.userns_fd(remap.uids, remap.gids)
