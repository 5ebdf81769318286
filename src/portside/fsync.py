"""Durability syscalls the standard library lacks: syncfs and early writeback.

Writing a large layer and only then syncing makes the final sync wait for the
whole file to reach the disk. Starting writeback of each written stretch as
we go (``sync_file_range(SYNC_FILE_RANGE_WRITE)``, asynchronous) lets the disk
work while we hash and untar the rest, so the final ``syncfs``/``fsync``
finds little left to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
_libc.syncfs.argtypes = [ctypes.c_int]
_SYNC_FILE_RANGE_WRITE = 2

# Start writeback after this many bytes of a file have been written since the last start.
WRITEBACK_STRIDE = 8 << 20


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing this range to disk now, without waiting for it.

    A hint: failure (a filesystem without support) is ignored.
    """
    _libc.sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def syncfs(path: str) -> None:
    """Flush every dirty page of the filesystem holding ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs {path}: {os.strerror(err)}")
    finally:
        os.close(fd)
