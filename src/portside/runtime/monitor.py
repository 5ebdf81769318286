"""The monitor: one single-threaded process that starts, holds and reaps every container.

Why a separate process (docs/containers.md): the daemon is threaded and must
not fork containers; a per-container helper would cost memory per container;
and containers must outlive a restart of the daemon. The monitor is a child
subreaper, so each container's pid 1 becomes its child; it holds the
containers' stdout/stderr (pipes or a pty master), writes them to the
json-file logs, forwards them to attached clients, reaps exits and records
them in ``<run>/containers/<id>/exit`` before telling subscribers.

Protocol: JSON lines over ``<run>/monitor.sock`` (see docs/containers.md).
A request may carry one file descriptor (SCM_RIGHTS): ``attach`` hands over
the client's hijacked HTTP socket, so output goes to it without passing
through the daemon.

Everything runs in one epoll loop; no threads, so forking is safe.
"""

from __future__ import annotations

import argparse
import array
import errno
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from portside import cgroups
from portside.cgroups import Resources
from portside.errors import NotFound
from portside.runtime import external, external_launch, launch, linux, nofile, userns
from portside.runtime import spare as spares
from portside.snapshots.mount import Mount
from portside.streams.jsonlog import LogWriter
from portside.streams.stdcopy import STDERR, STDOUT, frame

_READ = 65536
SPARE_PARENT = "portside"   # the daemon's cgroups are portside/<id>; a spare's is too
SPARE_IDLE = float(os.environ.get("PORTSIDE_SPARE_IDLE", "10"))  # s without a container or start: the spare goes
SPARE_BOUND_TTL = 60.0      # a reserved spare whose container was never started goes after this
SPARE_START_GRACE = 2.0     # a reserved spare's start is this close: no fork meanwhile
SPARE_EXIT_GRACE = 0.05     # after a start, the time a short container gets to exit before a fork


@dataclass
class _Attached:
    sock: socket.socket
    stdin: bool          # forward what the client sends to the container's stdin
    stdout: bool
    stderr: bool


@dataclass
class _Container:
    id: str
    pid: int
    tty: bool
    log: LogWriter | None                                     # None for an exec: its output is not logged
    outputs: dict[int, int] = field(default_factory=dict)   # fd → STDOUT/STDERR
    stdin: int | None = None                                  # write end of its stdin (or the pty master)
    attached: list[_Attached] = field(default_factory=list)
    status: int | None = None                                 # exit code, once reaped
    started_at: int = 0
    cgroup: str | None = None                                 # its cgroup path, relative to each hierarchy
    exec_of: str | None = None                                # for an exec: the container it runs in
    runtime: external.Runtime | None = None                   # an external runtime runs it (runc, crun)
    rootfs: str = ""                                          # with one: where its root filesystem is mounted
    rootfs_mounts: int = 0                                    # and how many mounts are stacked there


class Monitor:
    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.state_dir = os.path.join(run_dir, "containers")
        # the exec root's: <exec-root>/monitor is ours, <exec-root>/runtime/<name> the external runtimes' state
        self.runtime_root = os.path.join(os.path.dirname(os.path.abspath(run_dir)), "runtime")
        self.console_path = os.path.join(run_dir, "console.sock")
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self.sel = selectors.DefaultSelector()
        self.containers: dict[str, _Container] = {}
        self.by_pid: dict[int, _Container] = {}
        self.subscribers: list[socket.socket] = []
        self.buffers: dict[socket.socket, bytes] = {}
        self.stopping = False
        self._cgroups: cgroups.Manager | None = None
        self.execs: dict[str, _Container] = {}
        self.spares: dict[str, spares.Spare] = {}      # by the container ID each serves
        self.spare_pids: dict[int, spares.Spare] = {}
        self.use_spares = os.environ.get("PORTSIDE_SPARES", "1") != "0"
        self.last_use = 0.0                             # monotonic time of the last reserve or start
        self.last_start = 0.0                           # monotonic time of the last start
        self.spare_due: float | None = None             # when a spare held back by _fork_delay is forked

    # -- the loop ------------------------------------------------------------------

    def serve(self) -> None:
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        path = os.path.join(self.run_dir, "monitor.sock")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(128)
        listener.setblocking(False)
        self.sel.register(listener, selectors.EVENT_READ, ("listener", None))
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        self.sel.register(wake_r, selectors.EVENT_READ, ("signal", None))
        with open(os.path.join(self.run_dir, "monitor.pid.tmp"), "w") as f:
            f.write(str(os.getpid()))
        os.replace(os.path.join(self.run_dir, "monitor.pid.tmp"), os.path.join(self.run_dir, "monitor.pid"))
        if self.use_spares:
            self._precompile_default()
        try:
            self._loop(listener, wake_r)
        finally:
            for spare in list(self.spares.values()):
                self._discard_spare(spare)

    def _loop(self, listener: socket.socket, wake_r: int) -> None:
        while not (self.stopping and not self.containers):
            # a spare waiting for a quiet moment (_fork_delay) is forked when that comes, not a second later
            due = self.spare_due
            wait = 1.0 if due is None else min(1.0, max(0.0, due - time.monotonic()))
            for key, _ in self.sel.select(timeout=wait):
                try:
                    self._dispatch(key, listener, wake_r)
                except Exception:  # noqa: BLE001 - one bad event must not end every container's supervision
                    traceback.print_exc(file=sys.stderr)
            self._reap()
            self._tend_spares()

    def _dispatch(self, key: selectors.SelectorKey, listener: socket.socket, wake_r: int) -> None:
        """One event of a select; an earlier event of the same batch may have closed this one's file."""
        if self.sel.get_map().get(key.fd) is not key:
            return  # unregistered meanwhile (a spare taken by a start, an output drained): stale
        kind, obj = key.data
        if kind == "listener":
            self._accept(listener)
        elif kind == "signal":
            while True:
                try:
                    if not os.read(wake_r, 512):
                        break
                except BlockingIOError:
                    break
            self._reap()
        elif kind == "client":
            self._client_readable(obj)
        elif kind == "output":
            self._output_readable(key.fd, obj)
        elif kind == "attach-in":
            self._attach_input(obj)
        elif kind == "spare":
            self._spare_readable(obj)

    def _stop(self, signum: int, frame_: object) -> None:
        # SIGTERM: stop accepting; containers keep running (live restore is the daemon's concern)
        self.stopping = True
        raise SystemExit(0)

    # -- requests ------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.buffers[conn] = b""
        self.sel.register(conn, selectors.EVENT_READ, ("client", conn))

    def _client_readable(self, conn: socket.socket) -> None:
        fds = array.array("i")
        try:
            data, ancdata, _, _ = conn.recvmsg(_READ, socket.CMSG_LEN(fds.itemsize * 4))
        except BlockingIOError:
            return
        except OSError:
            data, ancdata = b"", []
        passed: list[int] = []
        for level, kind, cmsg in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(cmsg[: len(cmsg) - (len(cmsg) % fds.itemsize)])
                passed.extend(fds)
        if not data:
            self._drop_client(conn)
            for fd in passed:
                os.close(fd)
            return
        buf = self.buffers.get(conn, b"") + data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                request = json.loads(line)
                reply = self._handle(conn, request, passed)
                passed = []
            except Exception as e:  # a bad request answers an error, it never stops the monitor
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}", "exit_code": 1}
            if reply is not None:
                self._send(conn, reply)
        self.buffers[conn] = buf
        for fd in passed:
            os.close(fd)

    def _send(self, conn: socket.socket, reply: dict[str, Any]) -> None:
        try:
            conn.setblocking(True)
            conn.sendall(json.dumps(reply).encode() + b"\n")
            conn.setblocking(False)
        except OSError:
            self._drop_client(conn)

    def _drop_client(self, conn: socket.socket) -> None:
        if conn in self.buffers:
            del self.buffers[conn]
            try:
                self.sel.unregister(conn)
            except (KeyError, ValueError):
                pass
        if conn in self.subscribers:
            self.subscribers.remove(conn)
        conn.close()

    def _handle(self, conn: socket.socket, req: dict[str, Any], fds: list[int]) -> dict[str, Any] | None:
        op = req.get("op")
        if op == "start":
            return self._start(req, fds)
        if op == "exec":
            return self._exec(req, fds)
        if op == "kill":
            c = self.containers.get(req["id"])
            if c is None or c.status is not None:
                return {"ok": False, "error": "not running"}
            if c.runtime is not None:
                c.runtime.kill(c.id, int(req.get("signal", signal.SIGKILL)))
            else:
                os.kill(c.pid, int(req.get("signal", signal.SIGKILL)))
            return {"ok": True}
        if op in ("pause", "resume"):  # portside's own containers are frozen by the daemon, through cgroups
            c = self.containers.get(req["id"])
            if c is None or c.status is not None or c.runtime is None:
                return {"ok": False, "error": "not running under an external runtime"}
            c.runtime.pause(c.id) if op == "pause" else c.runtime.resume(c.id)
            return {"ok": True}
        if op == "state":
            return {"ok": True, "containers": {cid: {"pid": c.pid, "status": c.status}
                                               for cid, c in self.containers.items()}}
        if op == "subscribe":
            self.subscribers.append(conn)
            return {"ok": True}
        if op == "attach":
            return self._attach(req, fds)
        if op == "resize":
            c = self.containers.get(req["id"]) or self.execs[req["id"]]
            if c.tty and c.stdin is not None:
                import fcntl
                import struct
                import termios

                fcntl.ioctl(c.stdin, termios.TIOCSWINSZ, struct.pack("HHHH", req["h"], req["w"], 0, 0))
            return {"ok": True}
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "reserve":
            return {"ok": True, "id": self._reserve_spare()}
        if op == "release":
            spare = self.spares.get(req["id"])
            if spare is not None:
                self._discard_spare(spare)
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    # -- containers ----------------------------------------------------------------

    def _start(self, req: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        cid = req["id"]
        if cid in self.containers and self.containers[cid].status is None:
            for fd in fds:
                _close(fd)
            return {"ok": False, "error": "already running"}
        tty = bool(req.get("tty"))
        mounts = [Mount(t, s, tuple(o)) for t, s, o in req.get("root_mounts") or []]
        runtime = None
        if req.get("runtime"):
            try:
                runtime = external.Runtime.for_container(req["runtime"], self.runtime_root,
                                                         os.path.join(self.state_dir, cid, "runtime.log"))
            except external.RuntimeFailed as e:
                for fd in fds:
                    _close(fd)
                return {"ok": False, "error": str(e), "exit_code": e.exit_code}
        stdin_w: int | None
        stdio: tuple[int, int, int] | None
        outputs: dict[int, int]
        if tty and runtime is not None:  # the runtime makes the pty in the container and sends us the master
            stdio = None
            outputs, stdin_w, child_ends, ours = {}, None, [], []
        elif tty:
            master, slave = _openpty(req["spec"].get("process") or {})
            stdio = (slave, slave, slave)
            outputs = {master: STDOUT}
            stdin_w = master
            child_ends, ours = [slave], [master]
        else:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            stdio = (in_r, out_w, err_w)
            outputs = {out_r: STDOUT, err_r: STDERR}
            stdin_w = in_w
            child_ends, ours = [in_r, out_w, err_w], [in_w, out_r, err_r]
        self._forget(cid)
        os.makedirs(os.path.join(self.state_dir, cid), mode=0o700, exist_ok=True)
        _remove(os.path.join(self.state_dir, cid, "exit"))
        log = LogWriter(req["log"])
        cgroup_path = req.get("cgroup")
        join = None
        self.last_use = self.last_start = time.monotonic()
        spare = None
        if runtime is None and userns.of(req["spec"]) is None:
            spare = self._take_spare(cid, cgroup_path, cgroups.Resources(**(req.get("resources") or {})))
        elif cid in self.spares:
            # runc and crun put their container in the cgroup themselves; a remapped one needs
            # the id-mapping state launch.start prepares in the monitor after the spare forked
            self._discard_spare(self.spares[cid])
        if cgroup_path and spare is None:
            manager = self.cgroups()
            manager.create(cgroup_path, cgroups.Resources(**(req.get("resources") or {})))
            join = lambda: manager.add_process(cgroup_path, 0)  # noqa: E731  ("0": the writing process)
        try:
            if runtime is not None:
                started = external_launch.start(runtime, cid, req["spec"], mounts, os.path.join(self.state_dir, cid),
                                                stdio=stdio, console_path=self.console_path, cgroup=cgroup_path)
                pid = started.pid
                if started.terminal is not None:
                    outputs, stdin_w = {started.terminal: STDOUT}, started.terminal
            else:
                assert stdio is not None
                pid = launch.start(req["spec"], mounts, stdio=stdio, join_cgroup=join, spare=spare)
        except (launch.StartError, external.RuntimeFailed) as e:
            for fd in [*ours, *fds]:  # the attached clients see the connection close
                _close(fd)
            log.close()
            if cgroup_path:
                self._remove_cgroup(cgroup_path)
            if isinstance(e, launch.StartError) and e.pid:
                self._reap_one_blocking(e.pid)
            return {"ok": False, "error": str(e), "exit_code": e.exit_code}
        finally:
            for fd in child_ends:
                _close(fd)
            if spare is not None:
                spare.sock.close()
        if not tty and not req.get("stdin"):  # no stdin: the container reads end of file at once
            _close(in_w)
            stdin_w = None
        c = _Container(cid, pid, tty, log, outputs=dict(outputs), stdin=stdin_w, started_at=time.time_ns(),
                       cgroup=cgroup_path, runtime=runtime, rootfs=req["spec"]["root"]["path"] if runtime else "",
                       rootfs_mounts=len(mounts) if runtime else 0)
        self.containers[cid] = c
        self.by_pid[pid] = c
        for fd in outputs:
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("output", c))
        # clients that attached before start: registered before any output is read
        for fd, opts in zip(fds, req.get("attach") or []):
            self._attach({"id": cid, **opts}, [fd])
        return {"ok": True, "pid": pid}

    def _exec(self, req: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        """A process in a running container's namespaces and cgroup (docker exec)."""
        container = self.containers.get(req["id"])
        if container is None or container.status is not None:
            for fd in fds:
                _close(fd)
            return {"ok": False, "error": f"Container {req['id']} is not running", "exit_code": 1}
        # the user namespace first (it owns the others), but after the network namespace, which the
        # daemon made (the host's user namespace owns it: only the host's root may join it); only those
        # the container does not share with us: once in its user namespace, ours are out of reach
        ns = [{"type": t, "path": f"/proc/{container.pid}/ns/{n}"}
              for t, n in (("network", "net"), ("user", "user"), ("ipc", "ipc"), ("uts", "uts"), ("pid", "pid"),
                           ("cgroup", "cgroup"), ("mount", "mnt"))
              if os.stat(f"/proc/{container.pid}/ns/{n}").st_ino != os.stat(f"/proc/self/ns/{n}").st_ino]
        spec = {"process": req["process"], "linux": {"namespaces": ns, "seccomp": req.get("seccomp")}}
        tty = bool(req["process"].get("terminal"))
        stdin_w: int | None
        stdio: tuple[int, int, int] | None
        outputs: dict[int, int]
        if tty and container.runtime is not None:
            stdio, outputs, stdin_w, child_ends, ours = None, {}, None, [], []
        elif tty:
            master, slave = _openpty(req["process"])
            stdio, outputs, stdin_w, child_ends, ours = (slave,) * 3, {master: STDOUT}, master, [slave], [master]
        else:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            stdio, outputs, stdin_w = (in_r, out_w, err_w), {out_r: STDOUT, err_r: STDERR}, in_w
            child_ends, ours = [in_r, out_w, err_w], [in_w, out_r, err_r]
        join = None
        if container.cgroup:
            manager, path = self.cgroups(), container.cgroup
            join = lambda: manager.add_process(path, 0)  # noqa: E731
        try:
            if container.runtime is not None:
                started = external_launch.exec_process(
                    container.runtime, container.id, req["process"],
                    os.path.join(self.state_dir, container.id, "exec-" + req["exec_id"][:12]),
                    stdio=stdio, console_path=self.console_path)
                pid = started.pid
                if started.terminal is not None:
                    outputs, stdin_w = {started.terminal: STDOUT}, started.terminal
            else:
                assert stdio is not None
                pid = launch.start(spec, [], stdio=stdio, join_cgroup=join, exec_into=True)
        except (launch.StartError, external.RuntimeFailed) as e:
            for fd in ours:
                _close(fd)
            if isinstance(e, launch.StartError) and e.pid:
                self._reap_one_blocking(e.pid)
            for fd in fds:
                _close(fd)
            return {"ok": False, "error": str(e), "exit_code": e.exit_code}
        finally:
            for fd in child_ends:
                _close(fd)
        if not tty and not req.get("stdin"):
            _close(in_w)
            stdin_w = None
        proc = _Container(req["exec_id"], pid, tty, None, outputs=dict(outputs), stdin=stdin_w,
                       started_at=time.time_ns(), exec_of=container.id)
        self.by_pid[pid] = proc
        self.execs[proc.id] = proc
        for fd in outputs:
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("output", proc))
        for fd in fds:
            self._attach_to(proc, fd, {"stdin": bool(req.get("stdin")), "stdout": req.get("stdout", True),
                                       "stderr": req.get("stderr", True)})
        return {"ok": True, "pid": pid}

    def _exec_finished(self, e: _Container) -> None:
        # The event first: a client that sees its stream end asks for the exit code next.
        event = {"event": "exec-exit", "id": e.id, "container": e.exec_of, "status": e.status}
        for sub in list(self.subscribers):
            self._send(sub, event)
        for a in list(e.attached):
            self._detach(e, a)
        self.by_pid.pop(e.pid, None)
        self.execs.pop(e.id, None)

    def cgroups(self) -> cgroups.Manager:
        if self._cgroups is None:
            self._cgroups = cgroups.for_host()
        return self._cgroups

    def _remove_cgroup(self, path: str) -> None:
        """Whatever is left in it is killed first (pid 1 is gone, but a frozen or escaped process may not be)."""
        try:
            manager = self.cgroups()
            try:
                if manager.procs(path):
                    manager.kill_all(path)
            except NotFound:
                pass  # not in every hierarchy: a spare killed while making it, an external runtime's own removal
            manager.remove(path)
        except Exception as e:  # noqa: BLE001 - logged, the container is gone either way
            print(f"portside monitor: removing cgroup {path}: {e}", file=sys.stderr)
            return
        parent = os.path.dirname(path)
        if parent and not self.spares and not any(c.cgroup for c in self.containers.values() if c.cgroup != path):
            try:  # the last container gone: the shared parent too, if no other daemon's containers use it
                manager.remove_if_unused(parent)
            except Exception:  # noqa: BLE001 - logged: nothing depends on it
                print(f"portside monitor: removing cgroup {parent}: {sys.exc_info()[1]}", file=sys.stderr)

    # -- spare launchers (runtime/spare.py) ---------------------------------------

    def _precompile_default(self) -> None:
        """Docker's default seccomp filter, compiled before any spare is forked, so spares inherit it."""
        from portside.oci.runtime_spec import SECCOMP_DEFAULT
        from portside.runtime import init
        from portside.runtime.seccomp import DEFAULT_CAPABILITIES

        try:
            init.precompile({"linux": {"seccomp": dict(SECCOMP_DEFAULT)},
                             "process": {"capabilities": {"bounding": sorted(DEFAULT_CAPABILITIES)}}})
        except Exception as e:  # noqa: BLE001 - a start compiles it then, and reports what is wrong
            print(f"portside monitor: precompiling the default seccomp filter: {e}", file=sys.stderr)

    def _tend_spares(self) -> None:
        """Keep one unreserved spare while containers run or starts are recent; drop stale ones."""
        if not self.use_spares or self.stopping:
            return
        now = time.monotonic()
        for spare in list(self.spares.values()):
            if spare.bound_at is not None and now - spare.bound_at > SPARE_BOUND_TTL:
                self._discard_spare(spare)
        wanted = bool(self.containers) or now - self.last_use < SPARE_IDLE
        free = [s for s in self.spares.values() if s.bound_at is None]
        delay = self._fork_delay(now) if wanted and not free else 0.0
        self.spare_due = now + delay if delay else None
        if wanted and not free and not delay:
            # SIGTERM ends the monitor by raising SystemExit wherever it lands: not between the
            # fork and the bookkeeping, or the exit's cleanup would not know this spare
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                spare = spares.fork(self.cgroups(), SPARE_PARENT)
                self.spares[spare.id] = spare
                self.spare_pids[spare.pid] = spare
                self.sel.register(spare.sock, selectors.EVENT_READ, ("spare", spare))
            except Exception as e:  # noqa: BLE001 - no spare: starts take the slow path
                print(f"portside monitor: forking a spare launcher: {e}", file=sys.stderr)
                self.use_spares = False
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        elif not wanted:
            for spare in free:
                self._discard_spare(spare)

    def _fork_delay(self, now: float) -> float:
        """Seconds until forking (a few ms of this process) is out of a client's way; 0: now.

        A reserved spare means a start is on its way (docker run: create, attach, wait,
        start); a container started moments ago may exit at once (run --rm true), and its
        exit is what the client waits for. The fork waits for the quiet after those.
        """
        ends = [s.bound_at + SPARE_START_GRACE for s in self.spares.values() if s.bound_at is not None]
        if any(c.status is None and c.exec_of is None for c in self.containers.values()):
            ends.append(self.last_start + SPARE_EXIT_GRACE)
        return max([0.0, *(end - now for end in ends)])

    def _reserve_spare(self) -> str | None:
        """Bind a free spare to the container being created: its ID becomes the container's."""
        self.last_use = time.monotonic()
        for spare in self.spares.values():
            if spare.bound_at is None:
                spare.bound_at = self.last_use
                return spare.id
        return None

    def _take_spare(self, cid: str, cgroup_path: str | None, resources: Resources) -> spares.Spare | None:
        """The spare reserved for ``cid``, ready and limited as the container asks; None: fork afresh."""
        spare = self.spares.get(cid)
        if spare is None:
            return None
        if cgroup_path != spare.cgroup:
            self._discard_spare(spare)
            return None
        if not spare.ready and not spares.read_report(spare, timeout=2.0):
            self._discard_spare(spare)
            return None
        try:
            self.cgroups().update(spare.cgroup, resources, fresh=True)
        except Exception:  # noqa: BLE001 - the slow path makes the cgroup again and reports what fails
            self._discard_spare(spare)
            return None
        # From here the spare is the container's launcher: launch.start waits for it.
        self.sel.unregister(spare.sock)
        self.spares.pop(spare.id, None)
        self.spare_pids.pop(spare.pid, None)
        return spare

    def _spare_readable(self, spare: spares.Spare) -> None:
        if spares.read_report(spare) is False:  # it failed (its report says why) or died
            self._discard_spare(spare)

    def _discard_spare(self, spare: spares.Spare) -> None:
        """Kill and reap a spare, then remove its cgroup."""
        if not self._forget_spare(spare):
            return
        try:
            os.kill(spare.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._reap_one_blocking(spare.pid)
        self._remove_cgroup(spare.cgroup)

    def _spare_gone(self, spare: spares.Spare) -> None:
        """A spare exited on its own (reaped already)."""
        if self._forget_spare(spare):
            self._remove_cgroup(spare.cgroup)

    def _forget_spare(self, spare: spares.Spare) -> bool:
        if self.spare_pids.pop(spare.pid, None) is None:
            return False
        self.spares.pop(spare.id, None)
        try:
            self.sel.unregister(spare.sock)
        except (KeyError, ValueError):
            pass
        spare.sock.close()
        return True

    def _forget(self, cid: str) -> None:
        old = self.containers.pop(cid, None)
        if old is not None:
            self.by_pid.pop(old.pid, None)

    def _output_readable(self, fd: int, c: _Container) -> None:
        try:
            data = os.read(fd, _READ)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:  # a pty master reads EIO once the slave side is gone
                raise
            data = b""
        stream = c.outputs[fd]
        if not data:
            self.sel.unregister(fd)
            os.close(fd)
            del c.outputs[fd]
            if c.tty:
                c.stdin = None  # the master was both
            self._maybe_finished(c)
            return
        if c.log is not None:
            c.log.write("stdout" if stream == STDOUT else "stderr", data)
        for a in list(c.attached):
            if (stream == STDOUT and a.stdout) or (stream == STDERR and a.stderr):
                try:
                    a.sock.setblocking(True)
                    a.sock.sendall(data if c.tty else frame(stream, data))
                except OSError:
                    self._detach(c, a)

    def _attach(self, req: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        c = self.containers.get(req["id"])
        if not fds:
            return {"ok": False, "error": "attach needs the client socket"}
        sock = socket.socket(fileno=fds[0])
        for extra in fds[1:]:
            os.close(extra)
        if c is None or (c.status is not None and not c.outputs):
            sock.close()
            return {"ok": False, "error": "container is not running"}
        self._attach_to(c, sock.detach(), req)
        return {"ok": True}

    def _attach_to(self, c: _Container, fd: int, opts: dict[str, Any]) -> None:
        sock = socket.socket(fileno=fd)
        a = _Attached(sock, bool(opts.get("stdin")), bool(opts.get("stdout", True)), bool(opts.get("stderr", True)))
        c.attached.append(a)
        preface = bytes.fromhex(opts.get("preface") or "")
        if preface and a.stdin and c.stdin is not None:
            os.write(c.stdin, preface)
        if a.stdin and c.stdin is not None:
            sock.setblocking(False)
            self.sel.register(sock, selectors.EVENT_READ, ("attach-in", (c, a)))

    def _attach_input(self, pair: tuple[_Container, _Attached]) -> None:
        c, a = pair
        try:
            data = a.sock.recv(_READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client half-closed: the container's stdin ends (StdinOnce)
            self.sel.unregister(a.sock)
            a.stdin = False
            if c.stdin is not None and not c.tty:
                _close(c.stdin)
                c.stdin = None
            return
        if c.stdin is not None:
            try:
                os.write(c.stdin, data)
            except OSError:
                pass

    def _detach(self, c: _Container, a: _Attached) -> None:
        if a in c.attached:
            c.attached.remove(a)
        try:
            self.sel.unregister(a.sock)
        except (KeyError, ValueError):
            pass
        a.sock.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            spare = self.spare_pids.get(pid)
            if spare is not None:
                self._spare_gone(spare)
                continue
            c = self.by_pid.get(pid)
            if c is not None:
                c.status = os.waitstatus_to_exitcode(status)
                if c.status < 0:  # killed by a signal: Docker reports 128 + signal
                    c.status = 128 - c.status
                self._maybe_finished(c)

    def _reap_one_blocking(self, pid: int) -> None:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def _maybe_finished(self, c: _Container) -> None:
        """Exited and its output drained: record the exit, then tell everyone."""
        if c.status is None or c.outputs:
            return
        if c.stdin is not None:
            _close(c.stdin)
            c.stdin = None
        if c.log is not None:
            c.log.close()
        if c.exec_of is not None:
            self._exec_finished(c)
            return
        oom = False
        if c.cgroup:
            try:
                oom = self.cgroups().oom_killed(c.cgroup)
            except (OSError, NotFound):
                pass
        if c.runtime is not None:  # before the cgroup goes: the runtime removes its own first
            try:
                external_launch.finish(c.runtime, c.id, c.rootfs, c.rootfs_mounts, os.path.join(self.state_dir, c.id))
            except Exception as e:  # noqa: BLE001 - logged; the exit is recorded all the same
                print(f"portside monitor: cleaning up after {c.id[:12]}: {e}", file=sys.stderr)
        if c.cgroup:
            self._remove_cgroup(c.cgroup)
        record = {"status": c.status, "finished_at": time.time_ns(), "started_at": c.started_at, "pid": c.pid,
                  "oom": oom}
        path = os.path.join(self.state_dir, c.id, "exit")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        for a in list(c.attached):
            self._detach(c, a)
        event = {"event": "exit", "id": c.id, **record}
        for sub in list(self.subscribers):
            self._send(sub, event)
        self.by_pid.pop(c.pid, None)
        self.containers.pop(c.id, None)


def _openpty(process: dict[str, Any]) -> tuple[int, int]:
    """A pty with the process's consoleSize (docker run -it sends the terminal's size at create),
    so what runs first (stty size, a full-screen program) sees it before any resize arrives."""
    master, slave = os.openpty()
    size = process.get("consoleSize") or {}
    if size.get("height") or size.get("width"):
        import fcntl
        import struct
        import termios

        fcntl.ioctl(master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", int(size.get("height", 0)), int(size.get("width", 0)), 0, 0))
    return master, slave


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="portside monitor")
    p.add_argument("--run", required=True, help="the daemon's run directory")
    args = p.parse_args(argv)
    nofile.raise_soft_limit()  # three descriptors a container
    os.makedirs(args.run, mode=0o700, exist_ok=True)
    Monitor(args.run).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
