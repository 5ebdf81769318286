"""The daemon's side of the monitor: start it if needed, send it requests, follow its exit events.

The monitor outlives the daemon (live restore): on start the daemon first
connects to a monitor already serving its run directory, and starts one
only when none answers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable

from portside.errors import Unavailable


class MonitorError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class MonitorClient:
    def __init__(self, run_dir: str, *, log_path: str | None = None) -> None:
        self.run_dir = run_dir
        self.socket_path = os.path.join(run_dir, "monitor.sock")
        self.log_path = log_path or os.path.join(run_dir, "monitor.log")
        self._lock = threading.Lock()  # guards _conn: one request at a time on the shared connection
        self._conn: socket.socket | None = None
        self._reader: Any = None

    # -- lifecycle ---------------------------------------------------------------

    def ensure_running(self, timeout: float = 10.0) -> None:
        if self._ping():
            return
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        with open(self.log_path, "ab") as log:
            subprocess.Popen([sys.executable, "-m", "portside.runtime.monitor", "--run", self.run_dir],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                             close_fds=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ping():
                return
            time.sleep(0.02)
        raise Unavailable(f"the container monitor did not start (log: {self.log_path})")

    def _ping(self) -> bool:
        try:
            return bool(self.request({"op": "ping"}).get("ok"))
        except (OSError, MonitorError):
            return False

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- requests ------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.socket_path)
        return s

    def request(self, req: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        """Send one request and read its reply (on the shared connection, or a new one with fds)."""
        payload = json.dumps(req).encode() + b"\n"
        with self._lock:
            for attempt in (0, 1):  # a monitor restarted meanwhile: reconnect once
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                        self._reader = self._conn.makefile("rb")
                    if fds:
                        self._conn.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                        bytes(_fd_array(fds)))])
                    else:
                        self._conn.sendall(payload)
                    line = self._reader.readline()
                    if not line:
                        raise ConnectionResetError("the monitor closed the connection")
                    break
                except OSError:
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt:
                        raise
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise MonitorError(str(reply.get("error")), int(reply.get("exit_code", 1)))
        return reply

    def reserve(self) -> str | None:
        """A container ID whose cgroup a spare launcher has made ready (runtime/spare.py), if one is free."""
        try:
            return self.request({"op": "reserve"}).get("id")
        except (OSError, MonitorError):
            return None  # an older monitor, or none: the container gets an ID of its own

    def release(self, cid: str) -> None:
        """The container reserved ``cid`` will never start: let its spare go."""
        try:
            self.request({"op": "release", "id": cid})
        except (OSError, MonitorError):
            pass

    def subscribe(self, on_event: Callable[[dict[str, Any]], None]) -> threading.Thread:
        """Call ``on_event`` for every exit the monitor reports, from a thread of its own."""
        conn = self._connect()
        conn.sendall(b'{"op":"subscribe"}\n')
        reader = conn.makefile("rb")
        reader.readline()  # {"ok": true}

        def follow() -> None:
            for line in reader:
                on_event(json.loads(line))

        t = threading.Thread(target=follow, name="monitor-events", daemon=True)
        t.start()
        return t


def _fd_array(fds: list[int]) -> Any:
    import array

    return array.array("i", fds)
