"""Containers' network namespaces as files: ``<exec root>/netns/<container id>``, a bind mount of the namespace.

The daemon is threaded, so namespaces are made in a short-lived thread of
its own: a network namespace is a per-thread property, ``unshare`` of
CLONE_NEWNET changes only that thread, and the thread ends right after, so
no other thread of the daemon ever runs in the new namespace. The same trick
opens a netlink socket inside a namespace (a socket stays bound to the
namespace it was made in): no fork of the threaded daemon, about 1 ms.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from typing import Callable, TypeVar

from portside.runtime import linux

T = TypeVar("T")


def _in_thread(fn: Callable[[], T]) -> T:
    box: dict[str, object] = {}

    def body() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = e

    thread = threading.Thread(target=body, name="netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def create(path: str, sysctls: dict[str, str] | None = None) -> socket.socket:
    """A new network namespace bound at ``path``, with the ``net.*`` ``sysctls`` set in it;
    returns a netlink (route) socket inside it."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)

    def make() -> socket.socket:
        linux.unshare(linux.CLONE_NEWNET)
        for key, value in (sysctls or {}).items():  # /proc/sys/net is the opening thread's namespace
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        os.close(fd)
        try:
            linux.mount("/proc/thread-self/ns/net", path, None, linux.MS_BIND)
        except OSError:
            os.unlink(path)
            raise
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0)

    return _in_thread(make)


def netlink_in(path: str) -> socket.socket:
    """A netlink (route) socket inside the namespace bound at ``path``."""
    def make() -> socket.socket:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(fd, linux.CLONE_NEWNET)
        finally:
            os.close(fd)
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0)

    return _in_thread(make)


def remove(path: str) -> None:
    """Unmount and unlink; the namespace itself goes with its last process. Idempotent."""
    try:
        linux.umount2(path, linux.MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def listing(directory: str) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
