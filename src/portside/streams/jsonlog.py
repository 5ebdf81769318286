"""Docker's json-file log driver: the format, a writer that cuts output as moby does, and the reader behind ``logs``.

A log is one JSON object a line, as moby's ``jsonlog.JSONLogs.MarshalJSONBuf``
writes it, fields in this order::

    {"log":"hello\\n","stream":"stdout","attrs":{"tag":"web"},"time":"2024-01-02T03:04:05.123456789Z"}

``log`` is the output, ending in ``\\n`` unless the line was cut (see
``LogWriter``); ``attrs`` appears only when the container has log attributes;
``time`` is Go's RFC 3339 with nanoseconds, trailing zeros dropped. The
output is bytes but JSON holds text: each byte that is not part of valid
UTF-8 is written as ``\\ufffd``, so binary output does not survive the trip
(moby's choice, kept for compatibility with everything that reads these files).

The reader follows moby's ``loggerutils.LogFile``: ``--tail`` counts lines
from the end of the file (read backwards, a block at a time), then ``since``
and ``until`` apply, then the choice of streams. docs/logs.md has the details
and what differs from moby.
"""

from __future__ import annotations

import calendar
import ctypes
import functools
import io
import json
import logging
import os
import re
import select
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from types import TracebackType

from portside.errors import InvalidArgument, NotFound
from portside.streams.stdcopy import STDERR, STDOUT, frame
from portside.timefmt import format_rfc3339

log = logging.getLogger(__name__)

STREAMS = ("stdout", "stderr")

# moby's copier reads a stream into a 16 KiB buffer: a line that does not fit
# is logged in pieces of exactly this size, without the newline but the last.
LINE_BUFFER = 16 * 1024

# What Go's decoder leaves in a time.Time when "time" is missing: 0001-01-01T00:00:00Z.
GO_ZERO_TIME_NS = -62135596800 * 10**9

_READ_BLOCK = 64 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of a log: the bytes, which stream, when; ``attrs`` are the container's log attributes."""
    stream: str
    data: bytes
    time_ns: int
    attrs: tuple[tuple[str, str], ...] = ()


# --- the codec --------------------------------------------------------------------------------------

# Characters Go escapes in a JSON string: controls, the quote and backslash,
# the HTML ones (<>&), U+2028/U+2029; a lone surrogate is how an invalid UTF-8
# byte reaches the regular expression (``surrogateescape``).
_ESCAPED = re.compile("[\x00-\x1f\"\\\\<>&\u2028\u2029\ud800-\udfff]")
# moby's hand-written encoder for "log" and "stream" shortens only \n and \r ...
_LOG_ESCAPES = {chr(c): f"\\u{c:04x}" for c in range(0x20)} | {
    "\n": "\\n", "\r": "\\r", '"': '\\"', "\\": "\\\\",
    "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
# ... encoding/json, which writes "attrs", also \t, \b and \f (Go 1.22 and later).
_ATTR_ESCAPES = _LOG_ESCAPES | {"\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _quote(text: str, escapes: Mapping[str, str]) -> str:
    return '"' + _ESCAPED.sub(lambda m: escapes.get(m.group(), "\\ufffd"), text) + '"'


def _quote_bytes(data: bytes) -> str:
    # surrogateescape turns each byte of an invalid sequence into its own
    # surrogate, as Go's utf8.DecodeRune reports each such byte alone: one
    # \ufffd per byte, where Python's "replace" would write one per sequence.
    return _quote(data.decode("utf-8", "surrogateescape"), _LOG_ESCAPES)


def _attrs_json(attrs: Iterable[tuple[str, str]]) -> str:
    """encoding/json's rendering of a map[string]string: keys sorted, "" for none (moby then omits the field)."""
    pairs = sorted(dict(attrs).items())
    if not pairs:
        return ""
    return "{" + ",".join(f"{_quote(k, _ATTR_ESCAPES)}:{_quote(v, _ATTR_ESCAPES)}" for k, v in pairs) + "}"


def _encode(stream: str, data: bytes, time_ns: int, attrs_json: str) -> bytes:
    fields = []
    if data:  # Go's omitempty; moby never writes an empty line, as each carries its newline or is a cut piece
        fields.append('"log":' + _quote_bytes(data))
    if stream:
        fields.append('"stream":' + _quote_bytes(stream.encode()))
    if attrs_json:
        fields.append('"attrs":' + attrs_json)
    fields.append(f'"time":"{format_rfc3339(time_ns)}"')
    return ("{" + ",".join(fields) + "}\n").encode()


def encode_entry(entry: LogEntry) -> bytes:
    """The line, newline included, that moby writes for ``entry``."""
    return _encode(entry.stream, entry.data, entry.time_ns, _attrs_json(entry.attrs))


_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
                   r"(Z|[+-][0-9]{2}:[0-9]{2})")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_time(value: str) -> int:
    """RFC 3339 as Go's time.Time decodes it from JSON, in nanoseconds since the epoch."""
    m = _TIME.fullmatch(value)
    if m is None:
        raise InvalidArgument(f'parsing time {json.dumps(value)} as "2006-01-02T15:04:05Z07:00": cannot parse')
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError as e:
        raise InvalidArgument(f"parsing time {json.dumps(value)}: {e}") from None
    seconds = calendar.timegm((year, month, day, hour, minute, second))
    zone = m.group(8)
    if zone != "Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[0] == "+" else -offset
    return seconds * 10**9 + int((m.group(7) or "")[:9].ljust(9, "0"))


def decode_entry(line: bytes) -> LogEntry:
    """One line of a log, as moby's decoder reads it into a ``jsonlog.JSONLog``; ``InvalidArgument`` if it cannot."""
    try:
        untrusted = json.loads(line.decode("utf-8", "replace"))
    except ValueError as e:
        raise InvalidArgument(f"invalid log entry: {e}") from None
    if not isinstance(untrusted, dict):
        raise InvalidArgument(f"invalid log entry: a JSON {type(untrusted).__name__}, not an object")
    text, stream, stamp, attrs = (untrusted.get(k) for k in ("log", "stream", "time", "attrs"))
    if not isinstance(text, (str, type(None))) or not isinstance(stream, (str, type(None))) \
            or not isinstance(stamp, (str, type(None))):
        raise InvalidArgument("invalid log entry: log, stream and time must be strings")
    if attrs is None:
        attrs = {}
    if not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values()):
        raise InvalidArgument("invalid log entry: attrs must map strings to strings")
    # Go turns an escaped lone surrogate into U+FFFD; Python keeps it, and could not encode it.
    data = _SURROGATE.sub("\ufffd", text or "").encode()
    time_ns = GO_ZERO_TIME_NS if stamp is None else _parse_time(stamp)
    return LogEntry(stream or "", data, time_ns, tuple(sorted(attrs.items())))


def _format_fixed(ns: int) -> str:
    """moby's rfc3339NanoFixed ("2006-01-02T15:04:05.000000000Z07:00"), in UTC."""
    seconds, fraction = divmod(ns, 10**9)
    t = _EPOCH + timedelta(seconds=seconds)
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            f".{fraction:09d}Z")


def format_entry_for_api(entry: LogEntry, *, timestamps: bool, tty: bool, details: bool = False) -> bytes:
    """The bytes ``GET /containers/{id}/logs`` sends for ``entry`` (moby's ``logstream.Write``).

    ``details`` puts the attributes first (``k=v,k2=v2``, keys sorted,
    query-escaped, then a space, even when there are none); ``timestamps``
    puts the time first, with all nine digits of nanoseconds, then a space.
    Without a TTY the result is one stdcopy frame of the entry's stream.
    """
    line = entry.data
    if details:
        attrs = ",".join(f"{urllib.parse.quote_plus(k, safe='')}={urllib.parse.quote_plus(v, safe='')}"
                         for k, v in sorted(entry.attrs))
        line = attrs.encode() + b" " + line
    if timestamps:
        line = _format_fixed(entry.time_ns).encode() + b" " + line
    if tty:
        return line
    if entry.stream not in STREAMS:
        raise ValueError(f"no frame for stream {entry.stream!r}")
    return frame(STDOUT if entry.stream == "stdout" else STDERR, line)


# --- the writer ------------------------------------------------------------------------------------

def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class LogWriter:
    """Appends a container's stdout and stderr to its json-file log, cut into lines as moby's copier cuts them.

    Each stream has its own line buffer. A line becomes an entry when its
    newline arrives, stamped at that moment (``now_ns``, or the clock). A line
    of ``LINE_BUFFER`` (16 KiB) bytes or more without a newline is written in
    pieces of exactly 16 KiB with no newline, then the rest with its newline;
    every piece carries the time of the first, as in moby. ``close`` writes
    what is left of each stream as a piece without a newline. Entries made by
    one ``write`` go to the file in one ``write(2)``; the file is opened
    ``O_APPEND``, so a reader sees whole entries, or a torn last line it must
    wait on. There is no rotation (``max-size``/``max-file``) yet. One writer
    a file, used from one thread: the monitor.
    """

    def __init__(self, path: str | os.PathLike[str], *, attrs: Mapping[str, str] | None = None) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._attrs = _attrs_json(attrs.items()) if attrs else ""
        self._pending = {stream: bytearray() for stream in STREAMS}
        self._piece_time: dict[str, int] = {}  # stream -> the time of the first piece of a line being cut

    def write(self, stream: str, data: bytes, now_ns: int | None = None) -> None:
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}")
        if self._fd < 0:
            raise ValueError("write to a closed log")
        pending = self._pending[stream]
        pending += data
        now = time.time_ns() if now_ns is None else now_ns
        out = bytearray()
        pos = 0
        while True:
            newline = pending.find(b"\n", pos, pos + LINE_BUFFER)
            if newline >= 0:
                out += self._entry(stream, bytes(pending[pos:newline + 1]), now, last=True)
                pos = newline + 1
            elif len(pending) - pos >= LINE_BUFFER:
                out += self._entry(stream, bytes(pending[pos:pos + LINE_BUFFER]), now, last=False)
                pos += LINE_BUFFER
            else:
                break
        del pending[:pos]
        if out:
            _write_all(self._fd, out)

    def _entry(self, stream: str, data: bytes, now: int, *, last: bool) -> bytes:
        first = self._piece_time.get(stream)
        if last:
            self._piece_time.pop(stream, None)
        elif first is None:
            self._piece_time[stream] = now
        return _encode(stream, data, now if first is None else first, self._attrs)

    def close(self, now_ns: int | None = None) -> None:
        """Write what is left of each stream's line (without a newline) and close the file."""
        if self._fd < 0:
            return
        now = time.time_ns() if now_ns is None else now_ns
        try:
            out = b"".join(self._entry(stream, bytes(pending), now, last=False)
                           for stream, pending in self._pending.items() if pending)
            if out:
                _write_all(self._fd, out)
        finally:
            os.close(self._fd)
            self._fd = -1
            self._pending.clear()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# --- the reader ------------------------------------------------------------------------------------

class LogStream(Iterator[LogEntry]):
    """The entries ``read_logs`` or ``follow_logs`` yield; ``close`` (or ``with``) releases the file."""

    def __init__(self, file: io.FileIO, entries: Generator[LogEntry, None, None]) -> None:
        self._file = file
        self._entries = entries

    def __next__(self) -> LogEntry:
        return next(self._entries)

    def close(self) -> None:
        self._entries.close()
        self._file.close()

    def __enter__(self) -> LogStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@dataclass
class _Window:
    """moby's forwarder (since, until) and the stream choice of its logstream.Write, in that order.

    ``since`` lets entries through from the first one at or after it, and
    then every later one, as times need not be monotonic; the first entry
    after ``until`` (of any stream) ends the read.
    """
    streams: frozenset[str]
    since_ns: int | None
    until_ns: int | None


_UNTIL, _CORRUPT = "until", "corrupt"


def _emit(lines: Iterable[bytes], path: str, window: _Window) -> Generator[LogEntry, None, str | None]:
    """Decode and select; returns why it stopped early (_UNTIL, _CORRUPT), or None at the end of ``lines``."""
    for line in lines:
        if not line.strip(b" \t\r"):  # JSON whitespace between values: Go's decoder skips it
            continue
        try:
            entry = decode_entry(line)
        except InvalidArgument as e:
            log.warning("%s: %s; nothing after it is read", path, e)
            return _CORRUPT
        if window.until_ns is not None and entry.time_ns > window.until_ns:
            return _UNTIL
        if window.since_ns is not None:
            if entry.time_ns < window.since_ns:
                continue
            window.since_ns = None
        if entry.stream in window.streams:
            yield entry
    return None


class _Lines:
    """Complete lines of a file from an offset; a torn last line waits in ``torn`` for its newline."""

    def __init__(self, fd: int, offset: int) -> None:
        self.fd = fd
        self.offset = offset
        self.torn = b""

    def read(self, end: int | None) -> Iterator[bytes]:
        """Lines up to ``end`` (which follows a newline), or up to the end of the file as it is now."""
        while end is None or self.offset < end:
            size = _READ_BLOCK if end is None else min(_READ_BLOCK, end - self.offset)
            block = os.pread(self.fd, size, self.offset)
            if not block:
                return
            self.offset += len(block)
            lines = (self.torn + block).split(b"\n")
            self.torn = lines.pop()
            yield from lines


def _newlines_backwards(fd: int, size: int) -> Iterator[int]:
    """Offsets of the newlines before ``size``, last first, read a block at a time from the end."""
    pos = size
    while pos > 0:
        n = min(_READ_BLOCK, pos)
        pos -= n
        block = os.pread(fd, n, pos)
        i = len(block)
        while (i := block.rfind(b"\n", 0, i)) >= 0:
            yield pos + i


def _bounds(fd: int, tail: int | None) -> tuple[int, int]:
    """(start, end) of what a read covers: ``end`` follows the last complete line, ``start`` the tail."""
    newlines = _newlines_backwards(fd, os.fstat(fd).st_size)
    end = next(newlines, -1) + 1
    if tail is None or tail < 0:
        return 0, end
    if tail == 0:
        return end, end
    for count, pos in enumerate(newlines, 1):
        if count == tail:  # the newline before the tail-th line from the end
            return pos + 1, end
    return 0, end  # fewer lines than asked for: all of them


def _ns(seconds: float | None, ns: int | None, name: str) -> int | None:
    if seconds is not None and ns is not None:
        raise ValueError(f"{name} and {name}_ns are the same choice: give one")
    return ns if seconds is None else round(Fraction(seconds) * 10**9)


def _open(path: str | os.PathLike[str], window: _Window, tail: int | None) -> tuple[io.FileIO, int, int]:
    """The log opened, and the (start, end) a read covers, as the file is now."""
    if not window.streams:
        raise InvalidArgument("You must choose at least one stream")
    try:
        file = open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise NotFound(f"open {os.fsdecode(path)}: no such file or directory") from None
    try:
        return file, *_bounds(file.fileno(), tail)
    except BaseException:
        file.close()
        raise


def _window(stdout: bool, stderr: bool, since: float | None, until: float | None,
            since_ns: int | None, until_ns: int | None) -> _Window:
    streams = frozenset(s for s, chosen in (("stdout", stdout), ("stderr", stderr)) if chosen)
    return _Window(streams, _ns(since, since_ns, "since"), _ns(until, until_ns, "until"))


def read_logs(path: str | os.PathLike[str], *, stdout: bool = True, stderr: bool = True,
              since: float | None = None, until: float | None = None, tail: int | None = None,
              since_ns: int | None = None, until_ns: int | None = None) -> LogStream:
    """The entries of a log as it is now (``docker logs``).

    ``since``/``until`` are seconds since the epoch, both ends included. A
    float holds them to about a quarter of a microsecond in this century,
    too coarse to hit an entry's time exactly (Docker's ``since`` has all nine
    digits, and the pieces of a cut line share one time): ``since_ns`` and
    ``until_ns`` take nanoseconds instead. ``tail`` is a number of lines
    counted from the end before any other choice (``None`` or negative:
    all, 0: none). Only complete lines are read: a line being written is
    left for a follower. The file is opened now, so a missing log raises
    ``NotFound`` before anything is sent; the entries are read as they are
    asked for.
    """
    window = _window(stdout, stderr, since, until, since_ns, until_ns)
    file, start, end = _open(path, window, tail)
    fd = file.fileno()

    def entries() -> Generator[LogEntry, None, None]:
        yield from _emit(_Lines(fd, start).read(end), os.fsdecode(path), window)

    return LogStream(file, entries())


def follow_logs(path: str | os.PathLike[str], *, stdout: bool = True, stderr: bool = True,
                since: float | None = None, until: float | None = None, tail: int | None = None,
                since_ns: int | None = None, until_ns: int | None = None,
                stop: Callable[[], bool], poll_interval: float = 0.05, wake_fd: int = -1) -> LogStream:
    """``read_logs``, then the entries written after it, as they come (``docker logs -f``).

    It ends after ``stop()`` has returned true and the file has been read to
    its end once more (so what was written before ``stop`` turned true is
    yielded), or at the first entry after ``until``. A torn last line is
    waited on until its newline arrives; one still torn when following
    ends is dropped. New data is noticed through inotify when the kernel
    grants an instance (``fs.inotify.max_user_instances`` is 128 by default),
    else by reading again every ``poll_interval`` seconds; ``stop`` is
    checked at least that often either way. ``wake_fd``, when given, is a
    descriptor that becomes readable when ``stop`` turns true (a pipe written
    when the container exits): the follower notices at once instead of at the
    next interval.
    """
    window = _window(stdout, stderr, since, until, since_ns, until_ns)
    file, start, end = _open(path, window, tail)
    fd = file.fileno()
    where = os.fsdecode(path)

    def entries() -> Generator[LogEntry, None, None]:
        lines = _Lines(fd, start)
        status = yield from _emit(lines.read(end), where, window)
        if status == _UNTIL:
            return
        # As in moby, a bad line ends the reading of what was there, but following goes on after it.
        lines.offset, lines.torn = end, b""
        wakeup = _Wakeup(where, wake_fd)
        try:
            while True:
                stopping = stop()
                before = lines.offset
                if (yield from _emit(lines.read(None), where, window)) is not None:
                    return
                if stopping:
                    return
                if lines.offset == before:
                    wakeup.wait(poll_interval)
        finally:
            wakeup.close()

    return LogStream(file, entries())


# --- waiting for the file to grow ------------------------------------------------------------------

_IN_MODIFY = 0x00000002


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc


def _inotify_watch(path: str) -> int:
    """An inotify descriptor (non-blocking, close-on-exec) that becomes readable when ``path`` is written."""
    libc = _libc()
    fd: int = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"inotify_init1: {os.strerror(err)}")
    if libc.inotify_add_watch(fd, os.fsencode(path), _IN_MODIFY) < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}")
    return fd


class _Wakeup:
    """Sleeps until the file is written, ``wake_fd`` is readable, or a timeout passes."""

    def __init__(self, path: str, wake_fd: int = -1) -> None:
        self._fd = -1
        self._poll: select.poll | None = None
        try:
            self._fd = _inotify_watch(path)
        except OSError as e:
            log.debug("following %s by polling: %s", path, e)
        if self._fd >= 0 or wake_fd >= 0:
            self._poll = select.poll()
            for fd in (self._fd, wake_fd):
                if fd >= 0:
                    self._poll.register(fd, select.POLLIN)

    @property
    def uses_inotify(self) -> bool:
        return self._fd >= 0

    def wait(self, timeout: float) -> None:
        if self._poll is None:
            time.sleep(timeout)
            return
        events = self._poll.poll(timeout * 1000)
        if self._fd >= 0 and any(fd == self._fd for fd, _ in events):
            try:
                while os.read(self._fd, 4096):  # drop the events: any of them means "read again"
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        if self._fd >= 0:
            # Closing an inotify descriptor waits for the kernel's SRCU grace period (~8 ms here):
            # a thread does it, so a build step or a `logs -f` does not wait for it.
            fd, self._fd = self._fd, -1
            try:
                threading.Thread(target=os.close, args=(fd,), name="inotify-close", daemon=True).start()
            except RuntimeError:
                os.close(fd)  # no thread to be had: wait for it here
