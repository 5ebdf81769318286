"""Small stream adapters shared by the archive modules."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from portside.readers import Reader

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class RawSource(io.RawIOBase):
    """A raw (``readinto``) view of any binary stream, replaying bytes already taken from it.

    ``io.BufferedReader`` and the gzip decoder want a raw stream; callers hand
    us whatever they have (a file, a hashing wrapper, an HTTP body). Closing
    this view leaves the stream open: the caller owns it.
    """

    def __init__(self, fileobj: Reader, replay: bytes = b"") -> None:
        super().__init__()
        self._fileobj = fileobj
        self._replay = replay

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if self._replay:
            count = min(len(self._replay), len(view))
            view[:count] = self._replay[:count]
            self._replay = self._replay[count:]
            return count
        readinto = getattr(self._fileobj, "readinto", None)
        if readinto is not None:
            return int(readinto(view) or 0)
        data = self._fileobj.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int = -1, /) -> bytes:
        # Straight through once the replayed bytes are gone: saves a copy.
        if self._replay:
            return super().read(size) or b""
        return self._fileobj.read(size)


def read_up_to(fileobj: Reader, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at end of stream (a read may come back short)."""
    parts: list[bytes] = []
    remaining = size
    while remaining:
        data = fileobj.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)
