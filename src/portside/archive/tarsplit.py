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

Serialised form (then zstd-compressed)::

    b"PSTS1\\n" then records:  b"R" <u64 length> <bytes>          raw stream bytes
                               b"F" <u32 path length> <path> <u64 size>   file data

``reassemble`` writes the tar back from the record and the layer directory,
hashing as it goes; a layer changed on disk comes out with a different digest
and is refused.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator

import zstandard

from portside.errors import DataCorruption

MAGIC = b"PSTS1\n"
_CHUNK = 1 << 20
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class TarSplitRecorder:
    """Collects a layer's tar-split while ``apply_layer`` writes the layer under ``root_fd``."""

    def __init__(self) -> None:
        self._segments: list[bytearray | tuple[tuple[str, ...], int]] = []
        self._root_fd = -1

    def attach(self, root_fd: int) -> None:
        """The applier's root directory fd, for ``release`` to read files from."""
        self._root_fd = root_fd

    def raw(self, data: bytes) -> None:
        if not data:
            return
        last = self._segments[-1] if self._segments else None
        if isinstance(last, bytearray):
            last += data
        else:
            self._segments.append(bytearray(data))

    def file(self, parts: tuple[str, ...], size: int) -> None:
        self._segments.append((parts, size))

    def release(self, parts: tuple[str, ...]) -> None:
        """``parts`` (a file, or a directory and all below it) is about to be removed: keep its data."""
        n = len(parts)
        for i, seg in enumerate(self._segments):
            if isinstance(seg, tuple) and seg[0][:n] == parts:
                self._segments[i] = bytearray(_read_file(self._root_fd, seg[0], seg[1]))

    def serialize(self) -> bytes:
        out = bytearray(MAGIC)
        for seg in self._segments:
            if isinstance(seg, bytearray):
                out += b"R" + _U64.pack(len(seg)) + seg
            else:
                path = "/".join(seg[0]).encode("utf-8", "surrogateescape")
                out += b"F" + _U32.pack(len(path)) + path + _U64.pack(seg[1])
        return bytes(zstandard.ZstdCompressor(level=3).compress(bytes(out)))


def _records(data: bytes) -> list[bytes | tuple[tuple[str, ...], int]]:
    """Parse a serialised tar-split; it is our own file, but a damaged one must not crash."""
    try:
        plain = zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 31)
    except zstandard.ZstdError as e:
        raise DataCorruption(f"damaged tar-split: {e}") from None
    if not plain.startswith(MAGIC):
        raise DataCorruption("damaged tar-split: bad magic")
    out: list[bytes | tuple[tuple[str, ...], int]] = []
    pos = len(MAGIC)
    try:
        while pos < len(plain):
            kind = plain[pos : pos + 1]
            pos += 1
            if kind == b"R":
                (length,) = _U64.unpack_from(plain, pos)
                pos += 8
                out.append(plain[pos : pos + length])
                pos += length
            elif kind == b"F":
                (length,) = _U32.unpack_from(plain, pos)
                pos += 4
                path = plain[pos : pos + length].decode("utf-8", "surrogateescape")
                pos += length
                (size,) = _U64.unpack_from(plain, pos)
                pos += 8
                parts = tuple(path.split("/"))
                if any(p in ("", ".", "..") for p in parts):
                    raise DataCorruption(f"damaged tar-split: bad path {path!r}")
                out.append((parts, size))
            else:
                raise DataCorruption("damaged tar-split: unknown record")
    except struct.error:
        raise DataCorruption("damaged tar-split: truncated") from None
    return out


def reassemble(tarsplit: bytes, root: str, write: Callable[[bytes], object]) -> tuple[str, int]:
    """Write the layer tar back out; returns (sha256 digest, size) of what was written."""
    digest = hashlib.sha256()
    size = 0
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        for record in _records(tarsplit):
            chunks: Iterable[bytes]
            if isinstance(record, bytes):
                chunks = (record,)
            else:
                chunks = _iter_file(root_fd, record[0], record[1])
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                write(chunk)
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


def _read_file(root_fd: int, parts: tuple[str, ...], size: int) -> bytes:
    return b"".join(_iter_file(root_fd, parts, size))
