"""Compression detection and streaming, over sources that cannot seek."""

from __future__ import annotations

import gzip
import io
import os
from typing import BinaryIO, cast

import pytest
import zstandard

from portside.archive.compression import (
    Compression,
    compressing_writer,
    decompressing_reader,
    detect,
)
from portside.errors import ArchiveError


class Trickle:
    """A pipe-like source: no seek, no readinto, and at most ``step`` bytes per read."""

    def __init__(self, data: bytes, step: int = 1 << 20) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = self._step
        return self._data.read(min(size, self._step))

    def seekable(self) -> bool:
        return False

    def seek(self, *args: object) -> int:
        raise io.UnsupportedOperation("not seekable")


class Unclosable(io.BytesIO):
    """A destination that records whether anyone flushed or closed it."""

    flushed = False

    def flush(self) -> None:
        self.flushed = True
        super().flush()

    def close(self) -> None:
        raise AssertionError("the writer closed a stream it does not own")


def source(data: bytes, step: int = 1 << 20) -> BinaryIO:
    return cast(BinaryIO, Trickle(data, step))


def compress(data: bytes, compression: Compression, level: int | None = None) -> bytes:
    out = Unclosable()
    writer = compressing_writer(cast(BinaryIO, out), compression, level)
    for start in range(0, len(data), 100_000):  # many writes, like tarfile makes
        writer.write(data[start : start + 100_000])
    writer.close()
    assert out.flushed
    return out.getvalue()


def read_all(stream: BinaryIO) -> bytes:
    parts = []
    while chunk := stream.read(1 << 16):
        parts.append(chunk)
    return b"".join(parts)


PAYLOAD = os.urandom(300_000) + b"\0" * 700_000 + b"tar" * 1000


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x1f\x8b\x08\x00", Compression.GZIP),
        (b"\x1f\x8b\x08", Compression.GZIP),
        (b"\x28\xb5\x2f\xfd\x04", Compression.ZSTD),
        (b"\x1f\x8b\x07", Compression.NONE),  # gzip magic, but not deflate
        (b"\x28\xb5\x2f", Compression.NONE),
        (b"usr/\0\0\0", Compression.NONE),
        (b"", Compression.NONE),
    ],
)
def test_detect(head: bytes, expected: Compression) -> None:
    assert detect(head) is expected


@pytest.mark.parametrize("compression", list(Compression))
def test_round_trip_through_a_non_seekable_source(compression: Compression) -> None:
    blob = compress(PAYLOAD, compression)
    assert detect(blob[:4]) is compression
    if compression is not Compression.NONE:
        assert len(blob) < len(PAYLOAD) // 2
    detected, stream = decompressing_reader(source(blob, step=3))
    assert detected is compression
    assert read_all(stream) == PAYLOAD


@pytest.mark.parametrize("compression", list(Compression))
def test_empty_and_tiny_streams(compression: Compression) -> None:
    for data in (b"", b"a", b"abc"):
        detected, stream = decompressing_reader(source(compress(data, compression)))
        assert detected is compression
        assert read_all(stream) == data


def test_short_plain_stream_shorter_than_any_magic() -> None:
    detected, stream = decompressing_reader(source(b"\x1f\x8b"))
    assert detected is Compression.NONE
    assert read_all(stream) == b"\x1f\x8b"


def test_reads_are_large_when_asked() -> None:
    _, stream = decompressing_reader(source(compress(PAYLOAD, Compression.GZIP)))
    assert len(stream.read(1 << 20)) == len(PAYLOAD)


def test_gzip_is_readable_by_the_standard_library_and_reproducible() -> None:
    blob = compress(PAYLOAD, Compression.GZIP)
    assert gzip.decompress(blob) == PAYLOAD
    # mtime 0 and no file name: the same tar gives the same digest.
    assert blob[4:8] == b"\0\0\0\0"
    assert compress(PAYLOAD, Compression.GZIP) == blob


def test_zstd_is_readable_by_zstandard() -> None:
    blob = compress(PAYLOAD, Compression.ZSTD, level=19)
    assert zstandard.ZstdDecompressor().decompressobj().decompress(blob) == PAYLOAD


def test_concatenated_members_and_frames() -> None:
    # Layers written in parallel chunks are several gzip members / zstd frames.
    gz = gzip.compress(b"first ") + gzip.compress(b"second")
    zst = zstandard.ZstdCompressor().compress(b"first ") + zstandard.ZstdCompressor().compress(
        b"second"
    )
    for blob in (gz, zst):
        _, stream = decompressing_reader(source(blob, step=5))
        assert read_all(stream) == b"first second"


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD])
def test_corrupt_streams_raise_archive_error(compression: Compression) -> None:
    blob = bytearray(compress(os.urandom(200_000), compression))
    blob[100:164] = b"\xa5" * 64
    _, stream = decompressing_reader(source(bytes(blob)))
    with pytest.raises(ArchiveError, match=f"invalid {compression.value} layer stream"):
        read_all(stream)


def test_truncated_gzip_raises_archive_error() -> None:
    blob = compress(PAYLOAD, Compression.GZIP)
    _, stream = decompressing_reader(source(blob[: len(blob) // 2]))
    with pytest.raises(ArchiveError):
        read_all(stream)


def test_source_errors_are_not_blamed_on_the_archive() -> None:
    class Failing(Trickle):
        def read(self, size: int = -1) -> bytes:
            data = super().read(size)
            if not data:
                raise ConnectionResetError("peer went away")
            return data

    blob = compress(PAYLOAD, Compression.GZIP)
    _, stream = decompressing_reader(cast(BinaryIO, Failing(blob[:1000])))
    with pytest.raises(ConnectionResetError):
        read_all(stream)


def test_closing_the_reader_leaves_the_source_open() -> None:
    raw = io.BytesIO(compress(b"data", Compression.ZSTD))
    _, stream = decompressing_reader(raw)
    assert read_all(stream) == b"data"
    stream.close()
    assert not raw.closed
