"""Reading a hostile tar stream with tarfile, forwards only and with bounded effort.

tarfile is lenient in ways that suit backups and not attackers: it buffers
extension headers of any size, recurses once per chained header, takes a bad
checksum or truncated header after the first entry as a quiet end of archive,
parses pax headers with regexes that backtrack quadratically (CVE-2024-6232 in
CPython 3.11.7) and skips malformed pax records. ``LayerTarFile`` closes each
of these, raising ``BadHeader`` for the caller to name.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from typing import cast

from portside.archive.streams import RawSource
from portside.readers import Reader

CHUNK_SIZE = 1 << 20
# Biggest pax or GNU long name/link header accepted; real ones are a few KiB.
MAX_EXTENSION_HEADER = 1 << 20
# Extension headers in front of one entry: a global pax, a pax and the two GNU
# long headers are the most any real archiver writes.
_MAX_EXTENSION_CHAIN = 8

# tarfile's header error subclasses are undocumented and missing from typeshed.
_EOFHeaderError: type[tarfile.HeaderError] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_EmptyHeaderError: type[tarfile.HeaderError] = tarfile.EmptyHeaderError  # type: ignore[attr-defined]
# GNU sparse files: tarfile's parsers for them are regex- and memory-hungry on
# hostile input, and no image builder writes them (Go's archive/tar never does).
_SPARSE_REFUSED = "{!r} is a GNU sparse file, which is not supported"
_EXTENSION_TYPES = frozenset(
    {
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
    }
)


def open_layer_tar(reader: ForwardReader) -> LayerTarFile:
    """Start reading a layer; the first header is parsed here already."""
    # UTF-8 with surrogateescape turns any name or value back into its exact
    # bytes (os functions encode the same way), which LayerTarInfo relies on.
    return LayerTarFile(fileobj=reader, mode="r", encoding="utf-8", errors="surrogateescape")


class BadHeader(Exception):
    """A header is malformed or abusive; the caller names the last good entry."""


class LayerTarInfo(tarfile.TarInfo):
    """TarInfo that refuses abusive headers instead of buffering or skipping them."""

    @classmethod
    def fromtarfile(cls, tar: tarfile.TarFile) -> LayerTarInfo:
        # TarInfo.fromtarfile's steps, with two changes. tarfile.next() takes a
        # bad checksum or a truncated header anywhere but at offset 0 as a quiet
        # end of archive, which would apply a silently cut layer: those raise
        # here. And a stream ending cleanly between entries, without the zero
        # blocks, ends the archive (Go's archive/tar agrees), which also makes
        # an empty stream an empty layer.
        block = tar.fileobj.read(tarfile.BLOCKSIZE)
        try:
            info = cls.frombuf(block, tar.encoding or "utf-8", tar.errors)
        except _EmptyHeaderError:
            raise _EOFHeaderError("end of stream") from None
        except _EOFHeaderError:
            raise
        except tarfile.HeaderError as e:
            raise BadHeader(f"bad tar header {_raw_name(block)!r}: {e}") from None
        info.offset = tar.fileobj.tell() - tarfile.BLOCKSIZE
        try:
            member: LayerTarInfo = info._proc_member(tar)
        except tarfile.HeaderError as e:
            raise BadHeader(f"bad tar header {info.name!r}: {e}") from None
        if member.size < 0:
            raise BadHeader(f"entry {member.name!r} has a negative size")
        return member

    def _proc_member(self, tar: tarfile.TarFile) -> LayerTarInfo:
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise BadHeader(_SPARSE_REFUSED.format(self.name))
        if self.type in _EXTENSION_TYPES:
            self._check_extension(tar)
        result: LayerTarInfo = super()._proc_member(tar)  # type: ignore[misc]
        return result

    def _proc_pax(self, tar: tarfile.TarFile) -> LayerTarInfo:
        # tarfile's own version (CPython 3.11.7) searches the header with
        # regexes that backtrack quadratically on crafted input
        # (CVE-2024-6232) and skips malformed records without a word. This
        # one parses strictly in one pass, and otherwise does what it does.
        data = tar.fileobj.read(self._block(self.size))  # type: ignore[attr-defined]
        if len(data) < self.size:
            raise BadHeader(f"pax header {self.name!r} is truncated")
        headers = cast(dict[str, str], tar.pax_headers)
        if self.type != tarfile.XGLTYPE:
            headers = dict(headers)  # global headers persist, an entry's own do not
        # The archive is read as UTF-8 with surrogateescape, which gives back
        # the exact bytes of names and values however they were encoded, so
        # hdrcharset needs no special handling.
        for key, value in _parse_pax_records(data[: self.size]):
            headers[key.decode("utf-8", "surrogateescape")] = value.decode(
                "utf-8", "surrogateescape"
            )
        if any(key.startswith("GNU.sparse.") for key in headers):
            raise BadHeader(_SPARSE_REFUSED.format(self.name))
        try:
            member = self.fromtarfile(tar)
        except tarfile.HeaderError as e:
            raise BadHeader(f"no valid entry after pax header {self.name!r}: {e}") from None
        if self.type != tarfile.XGLTYPE:
            member._apply_pax_info(headers, tar.encoding, tar.errors)  # type: ignore[attr-defined]
            member.offset = self.offset
            if "size" in headers:
                # The pax size replaces the header's: the next header moves.
                tar.offset = member.offset_data + (
                    self._block(member.size) if member.isreg() else 0  # type: ignore[attr-defined]
                )
        return member

    def _check_extension(self, tar: tarfile.TarFile) -> None:
        # tarfile reads an extension header's whole body into memory, and
        # recurses once per header in a chain: bound both before that happens.
        if not 0 <= self.size <= MAX_EXTENSION_HEADER:
            raise BadHeader(
                f"extension header {self.name!r} is {self.size} bytes"
                f" (limit {MAX_EXTENSION_HEADER})"
            )
        if not isinstance(tar, LayerTarFile):
            raise TypeError("LayerTarInfo needs a LayerTarFile")
        tar.extension_headers += 1
        if tar.extension_headers > _MAX_EXTENSION_CHAIN:
            raise BadHeader(f"more than {_MAX_EXTENSION_CHAIN} extension headers in a row")
        if self.type == tarfile.XGLTYPE:
            # Global headers accumulate for the whole archive and are re-applied
            # to every later entry.
            tar.global_header_bytes += self.size
            if tar.global_header_bytes > MAX_EXTENSION_HEADER:
                raise BadHeader(f"global pax headers exceed {MAX_EXTENSION_HEADER} bytes")


class LayerTarFile(tarfile.TarFile):
    """A TarFile for one forward pass over a hostile stream."""

    tarinfo = LayerTarInfo
    extension_headers = 0  # in front of the entry being read
    global_header_bytes = 0

    data_end: int | None = None  # where the last entry's data ended

    def next(self) -> tarfile.TarInfo | None:
        self.extension_headers = 0
        pending = self.firstmember is not None  # type: ignore[attr-defined]  # read ahead by __init__
        if self.data_end is not None and not pending and self.offset != self.fileobj.tell():
            # Some writers (umoci) end a layer right after the last file's data:
            # no padding, no end blocks. Docker and containers/storage accept it.
            self.fileobj.seek(self.offset)
            if self.data_end <= self.fileobj.tell() < self.offset:
                return None
        member = super().next()
        if member is not None:
            has_data = member.isreg() or member.type not in tarfile.SUPPORTED_TYPES
            self.data_end = member.offset_data + (member.size if has_data else 0)
        # tarfile remembers every member for random access; a stream does not
        # need them, and a hostile layer could list millions.
        self.members.clear()  # type: ignore[attr-defined]  # undocumented, not in typeshed
        return member


class ForwardReader:
    """A non-seekable stream as tarfile's random-access mode sees it: read, tell, seek forwards.

    tarfile's stream mode ("r|") re-slices its whole read-ahead buffer on
    every read: with the 1 MiB read-ahead that big files need, each 512-byte
    header of a small file would copy 1 MiB. A BufferedReader that skips
    forwards gives tarfile's "r" mode all it uses, because tarfile never seeks
    backwards when members are read in order and extractfile() is not used.
    """

    # Whole reads: read(n) returns n bytes unless the stream ends. A stream with this
    # attribute set is not wrapped in another buffer (each buffer is one more copy).
    reads_whole = True

    def __init__(self, source: Reader, *, tap: Callable[[bytes], None] | None = None) -> None:
        self._buffered: Reader
        if getattr(source, "reads_whole", False):
            self._buffered = source
        else:
            self._buffered = io.BufferedReader(RawSource(source), CHUNK_SIZE)
        self._position = 0
        # Sees every byte handed out, except file data read with read_data (tar-split).
        self._tap = tap

    def read(self, size: int = -1, /) -> bytes:
        data = self._buffered.read(size)
        self._position += len(data)
        if self._tap is not None:
            self._tap(data)
        return data

    def peek(self, size: int) -> bytes:
        """Up to ``size`` bytes ahead, without consuming them (fewer near the end of the stream)."""
        peek = getattr(self._buffered, "peek", None)
        return peek(size)[:size] if peek is not None else b""

    def read_data(self, size: int) -> bytes:
        """Like read, but the bytes are an entry's file data: the tap does not see them."""
        data = self._buffered.read(size)
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position

    def seek(self, position: int, /) -> int:
        if position < self._position:
            raise io.UnsupportedOperation("a layer stream cannot seek backwards")
        while self._position < position and self.read(min(position - self._position, CHUNK_SIZE)):
            pass
        return self._position

    def write(self, data: bytes, /) -> int:
        raise io.UnsupportedOperation("a layer stream is read-only")

    def close(self) -> None:
        """The caller owns the stream; tarfile may not close it."""


def _parse_pax_records(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split pax records, "LEN key=value\\n" where LEN counts the whole record."""
    records = []
    position = 0
    while position < len(data):
        space = data.find(b" ", position, position + 21)
        length = data[position:space]
        if space < 0 or not length.isdigit():
            raise BadHeader("malformed pax record")
        end = position + int(length)
        equals = data.find(b"=", space + 1, end)
        if end > len(data) or equals <= space + 1 or data[end - 1 : end] != b"\n":
            raise BadHeader("malformed pax record")
        records.append((data[space + 1 : equals], data[equals + 1 : end - 1]))
        position = end
    return records


def _raw_name(block: bytes) -> str:
    """The name field of a header that failed to parse, for the error message."""
    return block[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
