"""Starting a container process: new namespaces, then the init sequence, then the command.

The caller (the monitor, a single-threaded process that is a child
subreaper) forks; the child joins or creates the spec's namespaces and
forks again, because a new pid namespace applies only to children: the
grandchild is pid 1 of the container and runs ``runtime.init``. The child
exits at once; the grandchild is re-parented to the caller, which reaps it.

``start`` returns once the container's process has called ``execve`` (or
failed to), which it learns from a close-on-exec pipe: end of file without a
word means the exec happened.
"""

from __future__ import annotations

import json
import os
import resource
from typing import Any, Callable

from portside.errors import PortsideError
from portside.runtime import init, linux
from portside.snapshots.mount import Mount


class StartError(PortsideError):
    """The container process could not be started; ``exit_code`` is Docker's (126, 127 or 1)."""

    def __init__(self, message: str, exit_code: int, pid: int | None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.pid = pid


def start(spec: dict[str, Any], root_mounts: list[Mount], *, stdio: tuple[int, int, int],
          join_cgroup: Callable[[], None] | None = None, exec_into: bool = False) -> int:
    """Start the container; returns its pid (as seen from here). Raises StartError.

    With ``exec_into``, the spec's namespaces all have paths (a running
    container's): the process joins them and runs only the process steps of
    the init (``docker exec``).
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
    except PortsideError as e:
        raise StartError(str(e), 1, None) from None
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        _child(spec, root_mounts, stdio, join, new_flags, err_w, pid_w, join_cgroup, exec_into)
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


def _child(spec: dict[str, Any], root_mounts: list[Mount], stdio: tuple[int, int, int], join: list[str],
           new_flags: int, err_w: int, pid_w: int, join_cgroup: Callable[[], None] | None,
           exec_into: bool) -> None:
    try:
        if join_cgroup is not None:  # first: every process of the container is born inside its limits
            join_cgroup()
        for target, fd in enumerate(stdio):
            os.dup2(fd, target, inheritable=True)
        for path in join:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            linux.setns(fd)
            os.close(fd)
        os.setsid()
        linux.unshare(new_flags)
        grandchild = os.fork()
        if grandchild == 0:
            _close_inherited(keep=err_w)
            if exec_into:
                init.run_exec(spec, err_w)
            init.run(spec, root_mounts, err_w)
        os.write(pid_w, str(grandchild).encode())
        os._exit(0)
    except BaseException as e:
        os.write(err_w, json.dumps({"error": f"container setup: {e}", "exit_code": 1}).encode() + b"\n")
        os._exit(1)


def _close_inherited(keep: int) -> None:
    """Close every descriptor but stdio and ``keep``: the caller's (the monitor's pipes for every other
    container, its sockets) are close-on-exec, but until execve they would count against the container's
    open-file limit, which ``--ulimit nofile`` may set below their number."""
    os.closerange(3, keep)
    os.closerange(keep + 1, max(keep + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)
