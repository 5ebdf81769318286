"""Tar-split: a layer tar kept as its headers plus the files already unpacked.

An uncompressed layer needs its exact bytes back only for `save` and `push`,
where its digest (the diff ID) must come out the same. Keeping the tar blob
beside the unpacked layer would write every byte twice; Docker's layer store
keeps instead what the unpacked files lack: the tar headers, padding and
trailing bytes, with a pointer to the unpacked file for each entry's data.

While a layer is applied, ``TarSplitRecorder`` is told of every byte of the
stream: raw bytes (``raw``) and, for regular-file data, the path the data
went to (``file``). When the applier is about to remove something it wrote
earlier in the same layer (a later entry replaces it, a whiteout hides it), it
calls ``release`` first and the data of the files about to go is copied into
the record, so the layer can always be put back together.

Raw bytes go to an unlinked spool file, not to memory: a small hostile
upload (a few MB of gzip expanding to hundreds of MB of headers or trailing
zeros) must not grow the daemon. Only the list of segments stays in memory.

Serialised form (zstd-compressed)::

    b"PSTS1\\n" then records:  b"R" <u64 length> <bytes>                    raw stream bytes
                               b"F" <u32 path length> <path> <u64 size>   file data

``reassemble`` writes the tar back from the record and the layer directory,
hashing as it goes; a layer changed on disk comes out with a different digest
and is refused by the caller.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, cast

import zstandard

from portside.errors import ArchiveError, DataCorruption
from portside.readers import Reader

MAGIC = b"PSTS1\n"
# More regular files than this in one layer is refused (each costs a little memory here).
MAX_FILES = 1_000_000
_CHUNK = 1 << 20
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

# A segment: raw bytes at (offset, length) of the spool, or a file's data at (path parts, size).
_Raw = tuple[int, int]
_File = tuple[tuple[str, ...], int]


class TarSplitRecorder:
    """Collects a layer's tar-split while ``apply_layer`` writes the layer under ``root_fd``.

    ``max_bytes`` bounds the raw bytes (headers, padding, trailing data) kept.
    Close it (or use it as a context manager) to drop the spool.
    """

    def __init__(self, spool_dir: str | None = None, *, max_bytes: int | None = None) -> None:
        self._spool = tempfile.TemporaryFile(dir=spool_dir)  # O_TMPFILE: nothing left after a crash
        self._spooled = 0
        self._max_bytes = max_bytes
        self._segments: list[_Raw | _File] = []
        self._files = 0
        self._root_fd = -1

    def __enter__(self) -> "TarSplitRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._spool.close()

    def attach(self, root_fd: int) -> None:
        """The applier's root directory fd, for ``release`` to read files from."""
        self._root_fd = root_fd

    def raw(self, data: bytes) -> None:
        if not data:
            return
        start = self._append(data)
        last = self._segments[-1] if self._segments else None
        if last is not None and isinstance(last[0], int) and last[0] + last[1] == start:
            self._segments[-1] = (last[0], last[1] + len(data))
        else:
            self._segments.append((start, len(data)))

    def file(self, parts: tuple[str, ...], size: int) -> None:
        self._files += 1
        if self._files > MAX_FILES:
            raise ArchiveError(f"layer has more than {MAX_FILES} files")
        self._segments.append((parts, size))

    def release(self, parts: tuple[str, ...]) -> None:
        """``parts`` (a file, or a directory and all below it) is about to be removed: keep its data."""
        n = len(parts)
        for i, seg in enumerate(self._segments):
            if isinstance(seg[0], tuple) and seg[0][:n] == parts:
                start = self._spooled
                for chunk in _iter_file(self._root_fd, seg[0], seg[1]):
                    self._append(chunk)
                self._segments[i] = (start, seg[1])

    def _append(self, data: bytes) -> int:
        start = self._spooled
        if self._max_bytes is not None and start + len(data) > self._max_bytes:
            raise ArchiveError(f"layer headers and padding exceed {self._max_bytes} bytes")
        self._spool.write(data)
        self._spooled += len(data)
        return start

    def write_to(self, write: Callable[[bytes], object]) -> None:
        """Write the serialised (compressed) tar-split."""
        self._spool.flush()
        fd = self._spool.fileno()
        compressor = zstandard.ZstdCompressor(level=3).compressobj()

        def emit(data: bytes) -> None:
            out = compressor.compress(data)
            if out:
                write(out)

        emit(MAGIC)
        for seg in self._segments:
            if isinstance(seg[0], int):
                offset, length = seg[0], int(seg[1])
                emit(b"R" + _U64.pack(length))
                while length:
                    chunk = os.pread(fd, min(_CHUNK, length), offset)
                    if not chunk:
                        raise OSError("tar-split spool is shorter than recorded")
                    emit(chunk)
                    offset += len(chunk)
                    length -= len(chunk)
            else:
                path = "/".join(seg[0]).encode("utf-8", "surrogateescape")
                emit(b"F" + _U32.pack(len(path)) + path + _U64.pack(seg[1]))
        write(compressor.flush())


class _Records:
    """Reads a serialised tar-split; it is our own file, but a damaged one must fail cleanly."""

    def __init__(self, src: Reader) -> None:
        # zstandard reads any object with read(); its stubs ask for IO[bytes]
        self._plain = zstandard.ZstdDecompressor().stream_reader(cast(IO[bytes], src), read_across_frames=True)

    def exactly(self, n: int) -> bytes:
        parts = []
        left = n
        try:
            while left:
                data = self._plain.read(min(left, _CHUNK))
                if not data:
                    raise DataCorruption("damaged tar-split: truncated")
                parts.append(data)
                left -= len(data)
        except zstandard.ZstdError as e:
            raise DataCorruption(f"damaged tar-split: {e}") from None
        return b"".join(parts)

    def kind(self) -> bytes:
        try:
            return bytes(self._plain.read(1))
        except zstandard.ZstdError as e:
            raise DataCorruption(f"damaged tar-split: {e}") from None


def reassemble(tarsplit: Reader, root: str, write: Callable[[bytes], object]) -> tuple[str, int]:
    """Write the layer tar back out; returns (sha256 digest, size) of what was written."""
    records = _Records(tarsplit)
    if records.exactly(len(MAGIC)) != MAGIC:
        raise DataCorruption("damaged tar-split: bad magic")
    digest = hashlib.sha256()
    size = 0

    def out(chunk: bytes) -> None:
        nonlocal size
        digest.update(chunk)
        size += len(chunk)
        write(chunk)

    root_fd = os.open(root, _DIR_FLAGS)
    try:
        while kind := records.kind():
            if kind == b"R":
                (left,) = _U64.unpack(records.exactly(8))
                while left:
                    chunk = records.exactly(min(left, _CHUNK))
                    out(chunk)
                    left -= len(chunk)
            elif kind == b"F":
                (length,) = _U32.unpack(records.exactly(4))
                path = records.exactly(length).decode("utf-8", "surrogateescape")
                (file_size,) = _U64.unpack(records.exactly(8))
                parts = tuple(path.split("/"))
                if any(p in ("", ".", "..") for p in parts):
                    raise DataCorruption(f"damaged tar-split: bad path {path!r}")
                for chunk in _iter_file(root_fd, parts, file_size):
                    out(chunk)
            else:
                raise DataCorruption("damaged tar-split: unknown record")
    finally:
        os.close(root_fd)
    return "sha256:" + digest.hexdigest(), size


def _open_file(root_fd: int, parts: tuple[str, ...]) -> int:
    fd = os.dup(root_fd)
    try:
        for name in parts[:-1]:
            nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def _iter_file(root_fd: int, parts: tuple[str, ...], size: int) -> Iterator[bytes]:
    try:
        fd = _open_file(root_fd, parts)
    except OSError as e:
        raise DataCorruption(f"layer file {'/'.join(parts)!r} is missing: {e.strerror}") from None
    try:
        remaining = size
        while remaining:
            chunk = os.read(fd, min(_CHUNK, remaining))
            if not chunk:
                raise DataCorruption(f"layer file {'/'.join(parts)!r} is shorter than recorded")
            remaining -= len(chunk)
            yield chunk
    finally:
        os.close(fd)
