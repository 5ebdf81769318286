"""Layer compression: tell gzip, zstd and plain tar apart, and stream them.

Layer blobs reach us as gzip (Docker's default), zstd (OCI, containerd) or
uncompressed tar. Readers never seek: a blob is usually being pulled from the
network and hashed as it is read, so the magic bytes are peeked into a small
prefix and replayed.

gzip goes through ISA-L (``isal``), several times faster than zlib in both
directions; zstd through ``zstandard``. Decoder failures on hostile or corrupt
input become ``ArchiveError``; failures of the underlying stream (network,
disk) keep their own type so that they are not reported as bad images.

zstandard's stream reader does not report a stream cut in the middle of a
frame: such a cut shows up as a truncated tar in ``apply_layer`` or as a digest
mismatch in the caller, both of which look at every byte.
"""

from __future__ import annotations

import enum
import gzip
import io
from typing import TYPE_CHECKING, BinaryIO, cast

import zstandard
from isal import igzip, isal_zlib

from portside.archive.streams import RawSource, read_up_to
from portside.errors import ArchiveError
from portside.readers import Reader

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

# Large reads amortise the per-call cost of the decoders and of Python itself.
CHUNK_SIZE = 1 << 20

_GZIP_MAGIC = b"\x1f\x8b\x08"  # ID1, ID2, CM=deflate (RFC 1952)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878 frame magic, little-endian 0xFD2FB528
_MAGIC_SIZE = max(len(_GZIP_MAGIC), len(_ZSTD_MAGIC))

# What the decoders raise on bad input. BadGzipFile is an OSError subclass, so
# it is named on its own rather than catching OSError, which would swallow
# real I/O errors of the source.
_DECODE_ERRORS: tuple[type[Exception], ...] = (
    gzip.BadGzipFile,
    cast(type[Exception], isal_zlib.error),  # isal's stub declares the class as an instance
    EOFError,
    zstandard.ZstdError,
)

_ZSTD_DEFAULT_LEVEL = 3  # zstd's own default; the CLI and containerd use it too


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


def detect(head: bytes) -> Compression:
    """Identify the compression of a stream from its first bytes (4 suffice)."""
    if head.startswith(_GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(_ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


def decompressing_reader(fileobj: Reader) -> tuple[Compression, BinaryIO]:
    """Detect the compression of ``fileobj`` and return a reader of its plain bytes.

    ``fileobj`` need not be seekable. Closing the returned reader leaves
    ``fileobj`` open; the caller owns it.
    """
    head = read_up_to(fileobj, _MAGIC_SIZE)
    source = RawSource(fileobj, replay=head)
    compression = detect(head)
    decoded: BinaryIO
    if compression is Compression.GZIP:
        # The empty filename keeps GzipFile from asking the source for a name.
        decoded = cast(
            BinaryIO,
            igzip.IGzipFile(filename="", fileobj=source, mode="rb"),  # type: ignore[no-untyped-call]
        )
    elif compression is Compression.ZSTD:
        decoded = cast(
            BinaryIO,
            zstandard.ZstdDecompressor().stream_reader(
                cast(BinaryIO, source), read_size=CHUNK_SIZE, read_across_frames=True, closefd=False
            ),
        )
    else:
        return compression, cast(BinaryIO, io.BufferedReader(source, CHUNK_SIZE))
    return compression, cast(BinaryIO, _DecodeErrorTranslator(decoded, compression))


def compressing_writer(
    fileobj: BinaryIO, compression: Compression, level: int | None = None
) -> BinaryIO:
    """Return a writer that compresses into ``fileobj``.

    ``level`` is on the codec's own scale: ISA-L's 0-3 for gzip (default 2),
    zstd's 1-22 (default 3); it is ignored for ``NONE``. Closing the writer
    finishes the stream and flushes ``fileobj`` but does not close it.
    """
    encoder: BinaryIO | None = None
    if compression is Compression.GZIP:
        # mtime=0 and no file name in the header: the same tar must always give
        # the same blob, hence the same digest.
        encoder = cast(
            BinaryIO,
            igzip.IGzipFile(  # type: ignore[no-untyped-call]
                filename="",
                fileobj=fileobj,
                mode="wb",
                compresslevel=isal_zlib.ISAL_DEFAULT_COMPRESSION if level is None else level,
                mtime=0,
            ),
        )
    elif compression is Compression.ZSTD:
        # With a content checksum, like the zstd CLI and containerd write:
        # stored (incompressible) blocks have no other integrity check.
        compressor = zstandard.ZstdCompressor(
            level=_ZSTD_DEFAULT_LEVEL if level is None else level, write_checksum=True
        )
        encoder = cast(BinaryIO, compressor.stream_writer(fileobj, closefd=False))
    return cast(BinaryIO, _EncodingWriter(fileobj, encoder))


class _DecodeErrorTranslator(io.RawIOBase):
    """Passes reads through and turns decoder failures into ArchiveError."""

    def __init__(self, decoded: BinaryIO, compression: Compression) -> None:
        super().__init__()
        self._decoded = decoded
        self._compression = compression

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._decoded.read(size)
        except _DECODE_ERRORS as e:
            raise self._error(e) from e

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        try:
            return int(self._decoded.readinto(buffer) or 0)  # type: ignore[attr-defined]
        except _DECODE_ERRORS as e:
            raise self._error(e) from e

    def close(self) -> None:
        try:
            self._decoded.close()
        finally:
            super().close()

    def _error(self, e: Exception) -> ArchiveError:
        return ArchiveError(f"invalid {self._compression.value} layer stream: {e}")


class _EncodingWriter(io.RawIOBase):
    """Writes through an encoder (or none) into a stream owned by someone else.

    Neither codec flushes the destination on close, and a gzip or zstd flush in
    mid-stream would cost compression, so flush() does nothing and close()
    finishes the encoder, then flushes the destination without closing it.
    """

    def __init__(self, fileobj: BinaryIO, encoder: BinaryIO | None) -> None:
        super().__init__()
        self._fileobj = fileobj
        self._encoder = encoder

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        (self._encoder or self._fileobj).write(data)
        return memoryview(data).nbytes

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._encoder is not None:
                self._encoder.close()
            self._fileobj.flush()
        finally:
            super().close()
