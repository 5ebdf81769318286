"""External OCI runtimes (runc, crun): which are installed, and the commands the monitor sends them.

A container created with ``HostConfig.Runtime`` ``runc`` or ``crun`` is run
by that binary from the standard bundle (``runtime/bundle.py``) instead of by
portside's own init. The monitor stays its parent all the same: it starts
the container with ``run --detach``, so the runtime process exits as soon as
the container runs, and the container's pid 1, re-parented to the monitor (a
child subreaper), is reaped by it like any other; its wait status is the
container's exit status. No process per container is left besides the
container's own, as with portside's runtime.

Layout (the exec root is the daemon's, the monitor's run directory is
``<exec-root>/monitor``)::

    <exec-root>/runtime/<name>/<id>/              the runtime's state (its --root)
    <exec-root>/monitor/containers/<id>/bundle/   config.json the runtime reads
    <exec-root>/monitor/containers/<id>/runtime.log   its log (JSON lines): errors are read from here
    <exec-root>/monitor/console.sock              --console-socket, for the one start at a time

Standard I/O: without a terminal the runtime passes its own stdin, stdout and
stderr to the container, so it is started on the monitor's pipes. With one,
it creates the pty in the container and sends the master over the console
socket (SCM_RIGHTS).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

from portside.errors import PortsideError

KNOWN = ("runc", "crun")
TIMEOUT = 60.0  # seconds a runtime command may take before it is killed: the monitor waits for it


class RuntimeFailed(PortsideError):
    """The runtime refused or failed; the message is its own, ``exit_code`` Docker's (126, 127 or 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code_for(message)


def exit_code_for(message: str) -> int:
    """moby's reading of a start error: a missing command is 127, one that cannot be run 126."""
    lower = message.lower()
    if "executable file not found" in lower or "no such file or directory" in lower:
        return 127
    if "permission denied" in lower:
        return 126
    return 1


def find(name: str) -> str | None:
    """The binary of a known external runtime, if installed."""
    return shutil.which(name) if name in KNOWN else None


def available() -> dict[str, str]:
    """Installed external runtimes: name → path."""
    return {name: path for name in KNOWN if (path := find(name)) is not None}


@dataclass(frozen=True)
class Runtime:
    """One runtime binary with its state root and log file, for one container."""

    name: str
    path: str
    root: str   # --root: where the runtime keeps its state of this daemon's containers
    log: str    # --log: the runtime writes its errors here as JSON lines

    @classmethod
    def for_container(cls, name: str, runtime_root: str, log: str) -> Runtime:
        path = find(name)
        if path is None:
            raise RuntimeFailed(f"unknown or invalid runtime name: {name}")
        return cls(name, path, os.path.join(runtime_root, name), log)

    # -- the container ------------------------------------------------------------

    def run(self, cid: str, bundle: str, *, stdio: tuple[int, int, int] | None, console: str | None) -> int:
        """Create and start the container; returns its pid. Without ``stdio`` (a terminal), ``console`` is needed."""
        pid_file = os.path.join(bundle, "pid")
        args = ["run", "--detach", "--bundle", bundle, "--pid-file", pid_file]
        if console:
            args += ["--console-socket", console]
        self._call(*args, cid, stdio=stdio)
        return _read_pid(pid_file)

    def exec(self, cid: str, process: dict[str, Any], directory: str, *, stdio: tuple[int, int, int] | None,
             console: str | None) -> int:
        """Start ``process`` (an OCI process object) in the running container; returns its pid."""
        process_file = os.path.join(directory, "process.json")
        pid_file = os.path.join(directory, "pid")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with open(process_file, "w") as f:
            json.dump(process, f)
        args = ["exec", "--detach", "--process", process_file, "--pid-file", pid_file]
        if console:
            args += ["--console-socket", console]
        try:
            self._call(*args, cid, stdio=stdio)
            return _read_pid(pid_file)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def kill(self, cid: str, sig: int) -> None:
        self._call("kill", cid, str(sig))

    def pause(self, cid: str) -> None:
        self._call("pause", cid)

    def resume(self, cid: str) -> None:
        self._call("resume", cid)

    def delete(self, cid: str) -> None:
        """Forget the container: its state, its cgroup, any process left in it. Nothing to do if absent."""
        if os.path.exists(os.path.join(self.root, cid)):
            self._call("delete", "--force", cid)

    # -- running the binary ----------------------------------------------------------

    def _call(self, *args: str, stdio: tuple[int, int, int] | None = None) -> None:
        argv = [self.path, "--root", self.root, "--log", self.log, "--log-format", "json", *args]
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        start = _log_size(self.log)
        # Its own messages go to the log; what it prints besides lands in a file, not a pipe: with a
        # pipe, waiting for its end could wait for the container, which may hold a copy.
        with tempfile.TemporaryFile() as said:
            if stdio is None:
                stdin, stdout, stderr = subprocess.DEVNULL, subprocess.DEVNULL, said.fileno()
            else:
                stdin, stdout, stderr = stdio
            try:
                proc = subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=stderr, timeout=TIMEOUT, check=False)
            except subprocess.TimeoutExpired:
                raise RuntimeFailed(f"{self.name} {args[0]} did not finish in {TIMEOUT:.0f} s") from None
            except OSError as e:
                raise RuntimeFailed(f"{self.name} {args[0]}: {e}") from None
            if proc.returncode != 0:
                said.seek(0)
                message = _last_error(self.log, start) or said.read(4096).decode(errors="replace").strip()
                raise RuntimeFailed(message or f"{self.name} {args[0]} exited with status {proc.returncode}")


def receive_console(listener: socket.socket) -> int:
    """The pty master the runtime sent over the console socket (it has exited: the connection is queued)."""
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        raise RuntimeFailed("the runtime did not send the container's terminal") from None
    with conn:
        conn.setblocking(True)
        conn.settimeout(5.0)
        _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
    if not fds:
        raise RuntimeFailed("the runtime did not send the container's terminal")
    for extra in fds[1:]:
        os.close(extra)
    os.set_inheritable(fds[0], False)
    return fds[0]


def console_listener(path: str) -> socket.socket:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(1)
    return listener


def _read_pid(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError) as e:
        raise RuntimeFailed(f"reading the container's pid from {path}: {e}") from None


def _log_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _last_error(path: str, offset: int) -> str:
    """The last error the runtime logged since ``offset`` (runc and crun log JSON: level, msg, time)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal") and entry.get("msg"):
            return str(entry["msg"])
    return ""
