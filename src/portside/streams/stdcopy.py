"""Docker's multiplexed stream framing, as a codec without I/O.

Without a TTY, attach, exec and logs carry stdout and stderr over one
connection, each write in a frame::

    [stream, 0, 0, 0, size (big-endian uint32)] + size bytes

with stream 0 = stdin, 1 = stdout, 2 = stderr, 3 = an error from the daemon.
This follows moby's ``api/pkg/stdcopy``: its writer puts each write in one
frame, whatever its size (there is no 32 KiB cap: that is only the reader's
starting buffer), and its reader routes stdin frames to stdout and ends the
copy with an error at a system-error frame. Both ends here are pure: bytes in,
bytes out; the transports that own the sockets call them.
"""

from __future__ import annotations

import struct

from portside.errors import InvalidArgument

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3

HEADER_SIZE = 8
MAX_FRAME_SIZE = 0xFFFF_FFFF  # the size field is a uint32

_HEADER = struct.Struct(">B3xI")


def frame_header(stream: int, size: int) -> bytes:
    """The 8-byte header of a frame of ``size`` bytes: for a writer that sends header and payload apart (sendmsg)."""
    if not STDIN <= stream <= SYSTEMERR:
        raise ValueError(f"unknown stream {stream}")
    if not 0 <= size <= MAX_FRAME_SIZE:
        raise ValueError(f"frame size {size} out of range")
    return _HEADER.pack(stream, size)


def frame(stream: int, data: bytes) -> bytes:
    """``data`` framed for ``stream``: one frame, as moby's writer makes for one write.

    Empty data makes a frame of size 0, as moby's writer does for an empty
    (non-nil) write; readers skip it. Data longer than a uint32 can say,
    which moby would mislabel, goes in several frames.
    """
    if len(data) <= MAX_FRAME_SIZE:
        return frame_header(stream, len(data)) + data
    view = memoryview(data)
    return b"".join(frame_header(stream, len(view[i:i + MAX_FRAME_SIZE])) + view[i:i + MAX_FRAME_SIZE]
                    for i in range(0, len(view), MAX_FRAME_SIZE))


class Demuxer:
    """Splits a multiplexed byte stream, fed in chunks of any size, back into streams.

    ``feed`` returns ``(stream, data)`` pieces in stream order. Payloads are
    handed on as they arrive, a frame's payload possibly in several pieces
    over several calls, so a huge frame is never held whole; zero-length
    frames give nothing. A system-error frame (``SYSTEMERR``) is the
    exception: it is gathered and returned whole, as one message (moby's
    ``StdCopy`` stops there with ``error from daemon in stream: <message>``;
    what to do with it is the caller's choice). Stdin frames come back as
    ``STDIN``; moby's ``StdCopy`` writes them to stdout.

    A header naming any other stream raises ``InvalidArgument`` with moby's
    message (``unrecognized stream: N``); so does every later call, as the
    rest of the stream cannot be framed. ``eof`` checks that the stream did
    not end inside a frame (moby's reader drops such a tail silently).
    """

    def __init__(self) -> None:
        # Between frames: the header bytes gathered so far. In a system-error
        # frame: the message gathered so far.
        self._buffer = bytearray()
        self._stream = -1  # the stream of the frame being read; -1 between frames
        self._remaining = 0  # payload bytes of that frame still to come
        self._error: InvalidArgument | None = None

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self._error is not None:
            raise self._error
        out: list[tuple[int, bytes]] = []
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            if self._stream < 0:
                need = HEADER_SIZE - len(self._buffer)
                self._buffer += view[pos:pos + need]
                pos += need
                if len(self._buffer) < HEADER_SIZE:
                    break
                stream, size = _HEADER.unpack(self._buffer)
                self._buffer.clear()
                if stream > SYSTEMERR:
                    self._error = InvalidArgument(f"unrecognized stream: {stream}")
                    raise self._error
                self._stream, self._remaining = stream, size
                if size == 0:
                    self._end_frame(out)
                continue
            piece = view[pos:pos + self._remaining]
            pos += len(piece)
            self._remaining -= len(piece)
            if self._stream == SYSTEMERR:
                self._buffer += piece
            else:
                out.append((self._stream, bytes(piece)))
            if self._remaining == 0:
                self._end_frame(out)
        return out

    def _end_frame(self, out: list[tuple[int, bytes]]) -> None:
        if self._stream == SYSTEMERR:
            out.append((SYSTEMERR, bytes(self._buffer)))
            self._buffer.clear()
        self._stream = -1

    def eof(self) -> None:
        """The input has ended: raise ``InvalidArgument`` if it ended inside a frame."""
        if self._error is not None:
            raise self._error
        if self._stream >= 0:
            raise InvalidArgument(f"unexpected EOF: {self._remaining} bytes of a stream {self._stream} frame missing")
        if self._buffer:
            raise InvalidArgument(f"unexpected EOF: {len(self._buffer)} of {HEADER_SIZE} bytes of a frame header")
