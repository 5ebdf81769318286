"""Starting a container process: new namespaces, then the init sequence, then the command.

The caller (the monitor, a single-threaded process that is a child
subreaper) forks; the child joins or creates the spec's namespaces and
forks again, because a new pid namespace applies only to children: the
grandchild is pid 1 of the container and runs ``runtime.init``. The child
exits at once; the grandchild is re-parented to the caller, which reaps it.

``start`` returns once the container's process has called ``execve`` (or
failed to), which it learns from a close-on-exec pipe: end of file without a
word means the exec happened.

A container with a user namespace takes the steps of ``runtime.userns``
around its ``unshare`` (what needs the host's root first, then the id maps).
"""

from __future__ import annotations

import json
import os
import resource
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from portside.errors import PortsideError
from portside.runtime import init, linux, userns
from portside.snapshots.mount import Mount

if TYPE_CHECKING:
    from portside.runtime.spare import Spare


class StartError(PortsideError):
    """The container process could not be started; ``exit_code`` is Docker's (126, 127 or 1)."""

    def __init__(self, message: str, exit_code: int, pid: int | None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.pid = pid


def start(spec: dict[str, Any], root_mounts: list[Mount], *, stdio: tuple[int, int, int],
          join_cgroup: Callable[[], None] | None = None, exec_into: bool = False,
          spare: "Spare | None" = None) -> int:
    """Start the container; returns its pid (as seen from here). Raises StartError.

    With ``exec_into``, the spec's namespaces all have paths (a running
    container's): the process joins them and runs only the process steps of
    the init (``docker exec``). With ``spare``, a pre-forked launcher that
    already sits in the container's cgroup (``runtime.spare``) is the child
    instead of a new fork.
    """
    new_flags = 0
    join: list[str] = []
    for ns in (spec.get("linux") or {}).get("namespaces") or []:
        if ns.get("path"):
            join.append(ns["path"])
        else:
            new_flags |= linux.NAMESPACE_FLAGS[ns["type"]]
    try:
        init.precompile(spec)  # here, once per profile: the forked child finds it compiled
        remap = userns.of(spec)
        if remap is not None and not exec_into:
            userns.warm(remap)  # the layers' id-mapping namespace, likewise made once
    except (PortsideError, OSError, ValueError) as e:
        raise StartError(str(e), 1, None) from None
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    if spare is not None:
        child = spare.pid
        try:
            from portside.runtime import spare as spares

            spares.go(spare, spec, root_mounts, join, new_flags, [*stdio, err_w, pid_w])
        except OSError as e:
            for fd in (err_r, err_w, pid_r, pid_w):
                os.close(fd)
            raise StartError(f"container setup: the spare launcher is gone: {e}", 1, None) from None
    else:
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the forked child
            become_container(spec, root_mounts, stdio, join, new_flags, err_w, pid_w, join_cgroup, exec_into)
    os.close(err_w)
    os.close(pid_w)
    try:
        _, status = os.waitpid(child, 0)
        pid_text = _read_all(pid_r)
        report = _read_all(err_r)
    finally:
        os.close(pid_r)
        os.close(err_r)
    pid = int(pid_text) if pid_text else None
    if report:
        detail = json.loads(report.splitlines()[0])
        raise StartError(detail["error"], int(detail.get("exit_code", 1)), pid)
    if pid is None:
        raise StartError(f"container setup exited with status {status}", 1, None)
    return pid


def become_container(spec: dict[str, Any], root_mounts: list[Mount], stdio: tuple[int, int, int], join: list[str],
                     new_flags: int, err_w: int, pid_w: int, join_cgroup: Callable[[], None] | None,
                     exec_into: bool) -> NoReturn:
    """The launcher's part (in a fresh fork or a spare): into the namespaces, fork pid 1, report, exit."""
    try:
        if join_cgroup is not None:  # first: every process of the container is born inside its limits
            join_cgroup()
        for target, fd in enumerate(stdio):
            os.dup2(fd, target, inheritable=True)
        remap = None if exec_into else userns.of(spec)  # an exec joins the user namespace like the others
        for path in join:
            if remap is not None and path == remap.join_path:
                continue  # userns.enter joins it, after what needs the host's root
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            linux.setns(fd)
            os.close(fd)
        os.setsid()
        host_side = None
        if remap is None:
            linux.unshare(new_flags)
        else:
            host_side = userns.enter(spec, root_mounts, remap, new_flags)
        grandchild = os.fork()
        if grandchild == 0:
            _close_inherited(keep={err_w, *(host_side.binds.values() if host_side is not None else ())})
            if exec_into:
                init.run_exec(spec, err_w)
            init.run(spec, root_mounts, err_w, host_side)
        os.write(pid_w, str(grandchild).encode())
        os._exit(0)
    except BaseException as e:
        os.write(err_w, json.dumps({"error": f"container setup: {e}", "exit_code": 1}).encode() + b"\n")
        os._exit(1)


def _close_inherited(keep: set[int]) -> None:
    """Close every descriptor but stdio and ``keep`` (the error pipe, a user-namespaced container's
    detached bind mounts): the caller's (the monitor's pipes for every other container, its sockets)
    are close-on-exec, but until execve they would count against the container's open-file limit,
    which ``--ulimit nofile`` may set below their number."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(low, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)
