"""A build context as the tar stream docker's CLI sends, planned from lstat and sent with sendfile.

``portside build DIR`` used to write the whole context through tarfile into a
temporary file and send that: every byte read and written twice by Python,
plus tarfile's import. Here the tar is planned first (one header per entry,
from the walk's lstat), so its length is known before anything is sent, then
sent as it is planned: headers and small files gathered in a buffer, large
files copied by the kernel from the file to the socket (sendfile). Same bytes
as before: ustar headers, a pax header only for what ustar cannot hold (long
or non-ASCII names and link targets, sizes of 8 GiB and more), owners 0:0 with
no names, whole-second mtimes, hard links as links to the first name seen,
directories named with a trailing ``/``, two zero blocks at the end and no
padding to a record (docker's CLI sends none).

A file that changes size between the plan and the send is an error: the
request's length is already on the wire.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

BLOCK = 512
_SMALL = 64 << 10  # files up to this size travel in the buffer with the headers
_FLUSH = 1 << 20
_MAX_OCTAL_SIZE = 0o77777777777  # 11 octal digits: 8 GiB - 1


class ContextChanged(Exception):
    """A file of the context is not what it was when the tar was planned."""


class _Entry:
    __slots__ = ("header", "path", "size")

    def __init__(self, header: bytes, path: str, size: int) -> None:
        self.header, self.path, self.size = header, path, size


class ContextTar:
    """A tar stream planned entry by entry; ``length`` is its size, ``send_to`` writes it to a socket."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._links: dict[tuple[int, int], str] = {}
        self.length = 2 * BLOCK  # the end-of-archive blocks

    def add_path(self, path: str, arcname: str, st: os.stat_result | None = None) -> None:
        """Plan ``path`` (lstat'ed unless ``st`` is given) as ``arcname``; sockets, FIFOs and devices are left out."""
        st = st if st is not None else os.lstat(path)
        mode = stat.S_IMODE(st.st_mode)
        mtime = int(st.st_mtime)
        if stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            first = self._links.get(key) if st.st_nlink > 1 else None
            if first is not None:
                self._add(_header(arcname, b"1", mode, 0, mtime, first), "", 0)
                return
            if st.st_nlink > 1:
                self._links[key] = arcname
            self._add(_header(arcname, b"0", mode, st.st_size, mtime), path, st.st_size)
        elif stat.S_ISDIR(st.st_mode):
            self._add(_header(arcname.rstrip("/") + "/", b"5", mode, 0, mtime), "", 0)
        elif stat.S_ISLNK(st.st_mode):
            self._add(_header(arcname, b"2", mode, 0, mtime, os.readlink(path)), "", 0)

    def add_bytes(self, arcname: str, data: bytes, mode: int = 0o644) -> None:
        self._add(_header(arcname, b"0", mode, len(data), 0) + data + _padding(len(data)), "", 0)

    def _add(self, header: bytes, path: str, size: int) -> None:
        self._entries.append(_Entry(header, path, size))
        self.length += len(header) + size + len(_padding(size))

    def send_to(self, sock: "_socket.socket", use_sendfile: bool) -> None:
        """Write the stream: exactly ``length`` bytes, or ContextChanged (and the caller drops the connection)."""
        buf = bytearray()
        for entry in self._entries:
            buf += entry.header
            if entry.path:
                fd = _open_planned(entry.path)
                try:
                    if entry.size <= _SMALL:
                        data = os.read(fd, entry.size + 1)
                        if len(data) != entry.size:
                            raise ContextChanged(f"{entry.path}: file changed size while the context was sent")
                        buf += data
                    else:
                        sock.sendall(buf)
                        buf.clear()
                        _send_file(sock, fd, entry.size, use_sendfile, entry.path)
                finally:
                    os.close(fd)
                buf += _padding(entry.size)
            if len(buf) >= _FLUSH:
                sock.sendall(buf)
                buf.clear()
        buf += bytes(2 * BLOCK)
        sock.sendall(buf)


def _open_planned(path: str) -> int:
    """The regular file planned at ``path``: not a symlink or FIFO put there since (no following, no blocking)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise ContextChanged(f"error checking context: {path}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ContextChanged(f"{path}: no longer a regular file")
    return fd


def _send_file(sock: "_socket.socket", fd: int, size: int, use_sendfile: bool, path: str) -> None:
    offset = 0
    while offset < size:
        if use_sendfile:
            sent = os.sendfile(sock.fileno(), fd, offset, size - offset)
        else:  # a TLS socket: through Python
            data = os.pread(fd, min(size - offset, _FLUSH), offset)
            sock.sendall(data)
            sent = len(data)
        if sent == 0:
            raise ContextChanged(f"{path}: file changed size while the context was sent")
        offset += sent
    if os.fstat(fd).st_size != size:
        raise ContextChanged(f"{path}: file changed size while the context was sent")


def _padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _pax_record(key: str, value: str) -> bytes:
    """``"%d key=value\n"``, where the length counts its own digits."""
    body = f" {key}={value}\n".encode("utf-8", "surrogateescape")  # a name not in UTF-8 goes as its bytes
    n = len(body) + len(str(len(body)))
    while n != len(body) + len(str(n)):
        n = len(body) + len(str(n))
    return str(n).encode() + body


def _fits(text: str, limit: int) -> bool:
    return text.isascii() and len(text) <= limit  # else a pax record says it (surrogates are not ASCII)


def _header(name: str, kind: bytes, mode: int, size: int, mtime: int, link: str = "") -> bytes:
    """One entry's header block, after a pax header block (and its records) when ustar cannot say it all."""
    pax = b""
    if not _fits(name, 100):
        pax += _pax_record("path", name)
    if link and not _fits(link, 100):
        pax += _pax_record("linkpath", link)
    if size > _MAX_OCTAL_SIZE:
        pax += _pax_record("size", str(size))
    if not 0 <= mtime <= _MAX_OCTAL_SIZE:
        pax += _pax_record("mtime", str(mtime))
    block = _ustar(name, kind, mode, size, mtime, link)
    if not pax:
        return block
    return _ustar("././@PaxHeader", b"x", 0o644, len(pax), 0) + pax + _padding(len(pax)) + block


def _field(text: str, width: int) -> bytes:
    raw = text.encode()[:width] if _fits(text, width) else b""
    return raw.ljust(width, b"\0")


def _ustar(name: str, kind: bytes, mode: int, size: int, mtime: int, link: str = "") -> bytes:
    size_field = _octal(size, 12) if size <= _MAX_OCTAL_SIZE else _octal(0, 12)
    mtime_field = _octal(mtime, 12) if 0 <= mtime <= _MAX_OCTAL_SIZE else _octal(0, 12)
    head = b"".join((
        _field(name, 100), _octal(mode, 8), _octal(0, 8), _octal(0, 8), size_field, mtime_field,
        b" " * 8, kind, _field(link, 100), b"ustar\x0000", bytes(32), bytes(32),
        _octal(0, 8), _octal(0, 8), bytes(155)))
    head = head.ljust(BLOCK, b"\0")
    checksum = b"%06o\0 " % sum(head)
    return head[:148] + checksum + head[156:]
