"""Spare launchers: a child of the monitor that is already in a container's cgroup, waiting for its spec.

Why: on cgroup v1 the first write to a ``cgroup.procs`` after a pause blocks
for an RCU grace period (7-15 ms on this kind of machine: the kernel's
cgroup_threadgroup_rwsem), which was a third of a container's start. A spare
pays it before any container asks: the monitor forks it when idle, the spare
makes its cgroup, moves itself in and says so, then waits on a socket.

The spare's cgroup is named after a container ID the spare itself draws. The
daemon takes that ID for the next container it creates (``reserve``), so the
cgroup never needs renaming (v2 hierarchies, the hybrid host's included,
cannot rename a cgroup). At ``start`` the monitor writes the container's
limits into the cgroup and sends the spare the spec, the mounts and the file
descriptors (stdio and the two report pipes of ``launch.start``); from there
the spare does exactly what a freshly forked launcher does
(``launch.become_container``).

A spare is a forked copy of the monitor: it closes every inherited
descriptor at once (an inherited write end of another container's stdin
would keep that container from ever reading end of file), restores default
signal handling and turns the garbage collector off, so no finaliser of the
monitor's objects closes a descriptor number it has since been given.
"""

from __future__ import annotations

import array
import gc
import json
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any, NoReturn

from portside import cgroups
from portside.runtime import launch
from portside.snapshots.mount import Mount

_MAX_MESSAGE = 1 << 20      # a spec with its mounts; SOCK_SEQPACKET keeps it one message
_MAX_FDS = 8


@dataclass
class Spare:
    id: str                          # the container ID it will serve, and its cgroup's last component
    pid: int
    sock: socket.socket              # the monitor's end; the spare's says "ready" or why it failed
    cgroup: str                      # "portside/<id>"
    born: float                      # time.monotonic()
    ready: bool = False
    bound_at: float | None = None    # when the daemon reserved it for a container being created


def fork(manager: cgroups.Manager, parent: str) -> Spare:
    """Fork a spare; it reports on its socket once it sits in its own new cgroup below ``parent``."""
    sid = secrets.token_hex(32)
    cgroup = f"{parent}/{sid}"
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        _main(theirs.fileno(), manager, cgroup)
    theirs.close()
    ours.setblocking(False)
    return Spare(sid, pid, ours, cgroup, born=time.monotonic())


def read_report(spare: Spare, timeout: float | None = None) -> bool | None:
    """Read the spare's word: True once ready, False if it failed or is gone, None if it has not spoken yet."""
    try:
        spare.sock.settimeout(timeout)
        data = spare.sock.recv(4096)
    except (BlockingIOError, socket.timeout):
        return None
    except OSError:
        return False
    finally:
        if spare.sock.fileno() != -1:
            spare.sock.setblocking(False)
    if not data:
        return False
    report = json.loads(data)
    spare.ready = bool(report.get("ready"))
    return spare.ready


def go(spare: Spare, spec: dict[str, Any], root_mounts: list[Mount], join: list[str], new_flags: int,
       fds: list[int]) -> None:
    """Hand the spare its container: it becomes the launcher of ``launch.start``. Raises OSError."""
    order = json.dumps({"spec": spec, "root_mounts": [[m.type, m.source, list(m.options)] for m in root_mounts],
                        "join": join, "new_flags": new_flags}).encode()
    spare.sock.setblocking(True)
    spare.sock.sendmsg([order], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())])


def _main(fd: int, manager: cgroups.Manager, cgroup: str) -> NoReturn:  # pragma: no cover - forked child
    try:
        gc.disable()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        # forked with SIGTERM blocked (the monitor's bookkeeping): a container must not inherit that
        # mask (tini, --init, hands its own mask to the command: a blocked TERM would never arrive)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.closerange(3, fd)
        os.closerange(fd + 1, 1 << 20)
        manager.create(cgroup, cgroups.Resources())
        manager.add_process(cgroup, 0)
        os.write(fd, b'{"ready": true}')
        order, fds = _receive(fd)
    except BaseException as e:  # noqa: BLE001 - nothing may unwind into the monitor's code
        try:
            os.write(fd, json.dumps({"ready": False, "error": f"{type(e).__name__}: {e}"}).encode())
        finally:
            os._exit(1)
    if order is None or len(fds) != 5:
        _leave(manager, cgroup)  # the monitor let us go, or is gone: our cgroup must not outlive us
        os._exit(0)
    request = json.loads(order)
    mounts = [Mount(t, s, tuple(o)) for t, s, o in request["root_mounts"]]
    launch.become_container(request["spec"], mounts, (fds[0], fds[1], fds[2]), request["join"],
                            int(request["new_flags"]), fds[3], fds[4], None, False)


def _leave(manager: cgroups.Manager, cgroup: str) -> None:  # pragma: no cover - forked child
    """Step out of our cgroup into its parent and remove it (the monitor may do the same: either wins)."""
    try:
        manager.add_process(cgroup.rsplit("/", 1)[0], 0)
        manager.remove(cgroup)
    except Exception:  # noqa: BLE001 - best effort; the monitor removes it when it reaps us
        pass


def _receive(fd: int) -> tuple[bytes | None, list[int]]:
    sock = socket.socket(fileno=fd)
    fds = array.array("i")
    # close-on-exec, as launch.start's own pipes are: the report pipe must close when pid 1 execs
    data, ancdata, _, _ = sock.recvmsg(_MAX_MESSAGE, socket.CMSG_LEN(_MAX_FDS * fds.itemsize),
                                       socket.MSG_CMSG_CLOEXEC)
    sock.detach()
    for level, kind, cmsg in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(cmsg[: len(cmsg) - (len(cmsg) % fds.itemsize)])
    return (data or None), list(fds)
