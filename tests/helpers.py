"""Test helpers: daemons on temporary roots, a raw Engine API client, mount inspection."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import hashlib
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class Api:
    """Plain HTTP calls to the daemon, for asserting on the API itself."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = UnixHTTPConnection(self.socket_path)
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, _, data = self.request(method, path, body)
        assert status == expect, (status, data)
        return json.loads(data) if data else None


def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` (from /proc/self/mountinfo)."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = line.split()[4].replace("\\040", " ")
            if target == path or target.startswith(path.rstrip("/") + "/"):
                found.append(target)
    return found


@dataclass
class Daemon:
    root: str
    socket: str
    proc: subprocess.Popen[bytes]
    log_path: str
    env: dict[str, str] = field(default_factory=dict)
    network_tag: str = ""

    @property
    def host(self) -> str:
        return "unix://" + self.socket

    @property
    def api(self) -> Api:
        return Api(self.socket)

    def cli(self, *args: str, input: bytes | None = None, check: bool = True,
            env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        cmd = [sys.executable, "-m", "portside", "--host", self.host, *args]
        result = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout,
                                env={**os.environ, **self.env, **(env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n"
                                 f"stdout: {result.stdout.decode(errors='replace')}\n"
                                 f"stderr: {result.stderr.decode(errors='replace')}")
        return result

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


def start_daemon(root: str, sock: str, log_path: str, extra_args: tuple[str, ...] = ()) -> Daemon:
    """A daemon on ``root`` serving ``sock``; ``extra_args``: more daemon flags (``--userns-remap default``)."""
    if "--network-tag" not in extra_args:
        # host-global network names (bridge, nft table) unique per test daemon, and the same for every
        # daemon on one root: a test that restarts a crashed daemon gets back what the first one made
        tag = "pt" + hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:6]
        extra_args = (*extra_args, "--network-tag", tag)
    if "--registry-mirror" not in extra_args:
        # no test reaches Docker Hub: docker.io names go to a loopback port where nothing listens
        extra_args = (*extra_args, "--registry-mirror", "http://127.0.0.1:1")
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "portside.daemon.main", "--root", root, "--host", "unix://" + sock,
                             *extra_args], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    daemon = Daemon(root, sock, proc, log_path, network_tag=extra_args[extra_args.index("--network-tag") + 1])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited {proc.returncode}:\n{daemon.log()}")
        try:
            status, _, _ = daemon.api.request("GET", "/_ping")
            if status == 200:
                return daemon
        except OSError:
            pass
        time.sleep(0.05)
    stop_daemon(daemon)
    raise AssertionError("daemon did not answer /_ping in 20 s:\n" + daemon.log())


def stop_daemon(daemon: Daemon, sig: int = signal.SIGTERM) -> int:
    if daemon.proc.poll() is None:
        daemon.proc.send_signal(sig)
        try:
            daemon.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.proc.send_signal(signal.SIGUSR1)  # the daemon dumps its threads' stacks to its log
            time.sleep(1)
            daemon.proc.kill()
            daemon.proc.wait()
            print(f"daemon did not stop on signal {sig}; its log:\n{daemon.log()}", file=sys.stderr)
    return daemon.proc.returncode


def remove_containers(daemon: Daemon) -> None:
    """Force-remove every container of a test daemon (a test that failed may leave some)."""
    if daemon.proc.poll() is not None:
        return
    try:
        status, _, body = daemon.api.request("GET", "/containers/json?all=1")
    except OSError:
        return
    if status != 200:
        return
    for c in json.loads(body):
        daemon.api.request("DELETE", f"/containers/{c['Id']}?force=1")


def stop_monitor(daemon: Daemon) -> None:
    """The container monitor outlives the daemon by design (live restore); tests end it too.

    Once daemon and monitor are both gone, so is what the daemon's network tag put on the host: a daemon
    stopped while containers still ran kept its bridges and nft table for them (live restore), and no
    daemon will start on this test's root again to sweep them.
    """
    _stop_monitor_process(daemon)
    if daemon.proc.poll() is not None and daemon.network_tag:
        sweep_network(daemon.network_tag, os.path.join(os.path.dirname(daemon.socket), "netns"))


def sweep_network(tag: str, netns_dir: str = "") -> None:
    """Delete the network namespaces kept in ``netns_dir``, the bridges carrying ``tag`` as their alias and
    the nft table ``ip <tag>``."""
    from portside.network import firewall, links, netns

    for name in netns.listing(netns_dir) if netns_dir else []:
        netns.remove(os.path.join(netns_dir, name))
    ipr = links.host()
    try:
        for link in links.links(ipr):
            if link.alias == tag:
                links.delete(ipr, link.name)
    finally:
        ipr.close()
    if firewall.exists(tag):
        firewall.remove(tag)


def _stop_monitor_process(daemon: Daemon) -> None:
    pid_file = os.path.join(os.path.dirname(daemon.socket), "monitor", "monitor.pid")
    try:
        with open(pid_file) as f:
            pid = int(f.read())
    except (FileNotFoundError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent (this sandbox's pid 1 may never reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
