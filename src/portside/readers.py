"""The one shape of input stream the engine reads: anything with ``read(n) -> bytes``.

Request bodies, files, decompressors and the archive readers all have it;
typing parameters as this Protocol instead of ``BinaryIO`` lets each of them
be passed where a stream is read.
"""

from __future__ import annotations

from typing import Protocol


class Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...
