"""Copy a request body into a file while hashing it, the hash and the write overlapping.

sha256 and write(2) both release the GIL, so the hash of chunk N runs on a
helper thread while chunk N is written and chunk N+1 is read from the
socket: an upload costs about max(hash, write) instead of their sum.
Writeback of each stretch starts as we go, so the final fsync finds little
to flush.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from portside.fsync import WRITEBACK_STRIDE, start_writeback
from portside.readers import Reader

CHUNK = 1 << 20
_hashers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="registry-hash")


def copy_hashing(body: Reader, fd: int, offset: int, hasher: Any, length: int | None,
                 advance: Callable[[int], None] = lambda n: None) -> int:
    """Write ``body`` (``length`` bytes, or to its end) at ``offset``; returns bytes written.

    ``hasher`` has seen exactly the bytes written when this returns, also when
    it raises (a connection that dropped mid-chunk); ``advance`` is told of
    each chunk written, so a caller keeps its offset right in both cases.
    """
    written = 0
    unsynced = 0
    pending: Future[None] | None = None
    try:
        while length is None or written < length:
            chunk = body.read(CHUNK if length is None else min(CHUNK, length - written))
            if not chunk:
                break
            if pending is not None:
                pending.result()
            view = memoryview(chunk)
            pos = offset + written
            while view:
                n = os.pwrite(fd, view, pos)
                view = view[n:]
                pos += n
            pending = _hashers.submit(hasher.update, chunk)
            written += len(chunk)
            advance(len(chunk))
            unsynced += len(chunk)
            if unsynced >= WRITEBACK_STRIDE:
                start_writeback(fd, offset + written - unsynced, unsynced)
                unsynced = 0
    finally:
        if pending is not None:
            pending.result()
    return written

