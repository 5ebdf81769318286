"""Shared fixtures: real daemons on temporary roots and sockets, and the busybox rootfs.

Every daemon a test starts is stopped at teardown, and the teardown fails the
test if anything of it is left: a process, a mount under its root.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from helpers import Daemon, mounts_under, remove_containers, start_daemon, stop_daemon, stop_monitor

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (overlayfs, mknod, the daemon)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


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
        remove_containers(d)
        stop_daemon(d)
        stop_monitor(d)


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
