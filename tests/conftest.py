"""Shared fixtures: real daemons on temporary roots and sockets, and the busybox rootfs.

Every daemon a test starts is stopped at teardown, and the teardown fails the
test if anything of it is left: a process, a mount under its root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from helpers import Api, mounts_under

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (overlayfs, mknod, the daemon)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@dataclass
class Daemon:
    root: str
    socket: str
    proc: subprocess.Popen[bytes]
    log_path: str
    env: dict[str, str] = field(default_factory=dict)

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


def start_daemon(root: str, sock: str, log_path: str) -> Daemon:
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "portside.daemon.main", "--root", root, "--host", "unix://" + sock],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    daemon = Daemon(root, sock, proc, log_path)
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
            daemon.proc.kill()
            daemon.proc.wait()
    return daemon.proc.returncode


@pytest.fixture
def daemon_dirs() -> Iterator[tuple[str, str, str]]:
    """(root, socket path, log path) in a short temp dir (socket paths are limited to 108 bytes)."""
    base = tempfile.mkdtemp(prefix="portside-test-")
    try:
        yield os.path.join(base, "root"), os.path.join(base, "run", "portside.sock"), os.path.join(base, "daemon.log")
    finally:
        left = mounts_under(base)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"mounts left behind: {left}"


@pytest.fixture
def daemon(daemon_dirs: tuple[str, str, str]) -> Iterator[Daemon]:
    if os.geteuid() != 0:
        pytest.skip("the daemon needs root")
    d = start_daemon(*daemon_dirs)
    try:
        yield d
    finally:
        stop_daemon(d)


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An uncompressed rootfs tarball made from /bin/busybox (Debian's busybox-static)."""
    from portside import busybox

    if not os.path.exists(busybox.DEFAULT_BUSYBOX):
        pytest.skip("busybox-static is not installed (/bin/busybox)")
    path = str(tmp_path_factory.mktemp("busybox") / "rootfs.tar")
    with open(path, "wb") as f:
        busybox.write_rootfs(f, mtime=1_700_000_000)
    return path


@pytest.fixture
def busybox_image(daemon: Daemon, busybox_tar: str) -> str:
    """busybox:latest imported into the test daemon; returns the image ID."""
    out = daemon.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
    return out.stdout.decode().strip()
