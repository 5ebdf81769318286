"""The client side of a hijacked connection: attach and exec start.

``POST /containers/{id}/attach`` and ``POST /exec/{id}/start`` are sent with
``Connection: Upgrade`` and ``Upgrade: tcp``; the daemon answers ``101
UPGRADED`` (or ``200 OK`` to a client that did not ask to upgrade) and from
then on the socket is a raw full-duplex stream: what the user types goes up,
the container's output comes down, framed by ``streams.stdcopy`` unless the
container has a TTY (moby's ``client/hijack.go``).

The response head is read here, not by the buffered reader of ``client``,
because whatever the daemon sends right after the head (the first output of
a fast container) may arrive in the same ``recv``: those bytes are kept and
handed to the stream reader first.

``Streamer`` then pumps both ways, as the docker CLI's hijackedIOStreamer:

* input: stdin -> socket, through the detach-key proxy on a TTY; at the end
  of stdin the write side is shut (``SHUT_WR``) so the container sees EOF
  (``echo hi | portside run -i busybox cat`` ends); with no stdin attached the
  write side is shut at once, as docker does;
* output: socket -> stdout/stderr (demultiplexed, or raw with a TTY) until
  the daemon closes the connection.

It ends when the output ends, when the input ends and no output is attached,
or when the user types the detach sequence.
"""

from __future__ import annotations

import _socket  # not socket: see cli/client.py
import os

from portside import __version__
from portside.cli import jsonwire, threads
from portside.cli.client import APIError, ConnectionFailed, ProtocolError, api_path
from portside.errors import InvalidArgument
from portside.streams import stdcopy

# No typing or dataclasses at run time: `portside run` imports this module
# (docs/cli-startup.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from portside.cli.client import Client, Query
    from portside.cli.tty import EscapeProxy

    Writer = Callable[[bytes], None]

MAX_HEAD = 1 << 16
READ_SIZE = 1 << 16


class HijackedConnection:
    """A socket whose HTTP exchange is over, plus the stream bytes that came with the response head."""

    def __init__(self, sock: _socket.socket, pending: bytes, content_type: str) -> None:
        self.sock = sock
        self.pending = pending
        self.content_type = content_type

    def recv(self, size: int = READ_SIZE) -> bytes:
        """The next stream bytes; b"" when the daemon closed its side."""
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        try:
            return self.sock.recv(size)
        except OSError:
            return b""  # shut down under us (close()) or reset: the stream is over

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        """Half-close: the daemon reads EOF on the container's stdin, output keeps flowing."""
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def read_head(sock: _socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read a response head: (status, headers with lower-case names, bytes received after it)."""
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(buf) > MAX_HEAD:
            raise ProtocolError("response head too large")
        data = sock.recv(READ_SIZE)
        if not data:
            raise ProtocolError("connection closed before the response head")
        buf += data
    head, rest = buf[:end].decode("latin-1"), buf[end + 4:]
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProtocolError(f"malformed status line {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, rest


class RawResponse:
    """A response read straight off its socket: the head parsed, the body read on demand.

    ``close`` shuts the socket down, which also ends a ``read_body`` blocked
    in another thread (a buffered reader could not be closed under a reader:
    it holds a lock while it reads).
    """

    def __init__(self, sock: _socket.socket, status: int, headers: dict[str, str], pending: bytes) -> None:
        self.sock = sock
        self.status = status
        self.headers = headers
        self._buf = pending

    def _fill(self) -> bool:
        data = self.sock.recv(READ_SIZE)
        self._buf += data
        return bool(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self._buf:
            if not self._fill():
                raise ProtocolError("connection closed inside a chunked body")
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def _exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed before the end of the body")
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def read_body(self, limit: int = 1 << 20) -> bytes:
        """The whole body (Content-Length, chunked, or up to EOF); at most ``limit`` bytes are kept."""
        if self.status in (101, 204, 304):
            return b""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self._line().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    return bytes(out[:limit])
                out += self._exact(size)
                self._exact(2)
        length = self.headers.get("content-length", "")
        if length.isdigit():
            return self._exact(int(length))[:limit]
        while len(self._buf) <= limit and self._fill():
            pass
        return self._buf[:limit]

    def error(self) -> APIError:
        """The daemon's refusal as moby's client reports it: the JSON ``message``, else the body."""
        try:
            body = self.read_body()
        except (OSError, ProtocolError):
            body = b""
        message = body.decode("utf-8", "replace").strip()
        if self.headers.get("content-type", "").startswith("application/json"):
            try:
                message = str(jsonwire.loads(body).get("message", message))
            except (ValueError, AttributeError):
                pass
        return APIError(self.status, message)

    def close(self) -> None:
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def raw_request(
    client: Client, method: str, path: str, query: Query = None, body: Any = None, *, upgrade: bool = False
) -> RawResponse:
    """Send one request on a connection of its own; the response once its head has arrived."""
    target = api_path(path, query)
    payload = b"" if body is None else jsonwire.dumps(body).encode()
    headers = [("Host", "api.moby.localhost"), ("User-Agent", f"portside-cli/{__version__}")]
    if body is not None:
        headers.append(("Content-Type", "application/json"))
    if body is not None or method in ("POST", "PUT"):
        headers.append(("Content-Length", str(len(payload))))
    if upgrade:
        headers += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
    request = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    sock = client.open_socket()
    try:
        sock.sendall(request.encode("latin-1") + payload)
        status, resp_headers, rest = read_head(sock)
    except (OSError, ProtocolError) as e:
        sock.close()
        raise ConnectionFailed(client.host) from e
    return RawResponse(sock, status, resp_headers, rest)


def hijack(client: Client, path: str, query: Query = None, body: Any = None) -> HijackedConnection:
    """``POST path`` asking to upgrade; the connection once the daemon agreed.

    A status of 400 or more raises APIError with the daemon's message, as for
    any request; anything else that is not 101 or 200 is a protocol error.
    """
    resp = raw_request(client, "POST", path, query, body, upgrade=True)
    if resp.status in (101, 200):
        sock = _relayed(resp.sock) if client.tls else resp.sock
        return HijackedConnection(sock, resp._buf, resp.headers.get("content-type", ""))
    try:
        if resp.status >= 400:
            raise resp.error()
        raise ProtocolError(f"unable to upgrade to tcp, received {resp.status}")
    finally:
        resp.close()


def _relayed(tls: Any) -> _socket.socket:
    """A plain socket whose other end a thread relays to the TLS connection (streams/tlsrelay.py).

    The Streamer reads and writes from two threads, which one OpenSSL connection
    does not allow; half-closing our end half-closes the TCP connection.
    """
    from portside.streams import tlsrelay

    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)

    def run() -> None:
        try:
            tlsrelay.relay(tls, theirs, half_close=True)
        finally:
            theirs.close()
            tls.close()

    threads.start(run, "tls-relay")
    return ours


# ---------------------------------------------------------------------------
# The pump


class StreamResult:
    __slots__ = ("detached", "error")

    def __init__(self) -> None:
        self.detached = False  # the user typed the detach sequence
        self.error = ""  # a system-error frame from the daemon, or a broken stream


def new_demuxer() -> stdcopy.Demuxer:
    return stdcopy.Demuxer()


class Streamer:
    """Copies stdin to the connection and the connection to stdout/stderr, in two threads.

    ``stdin_fd`` None: no stdin attached (no input thread: the write side is
    shut at start). ``stdout``/``stderr`` None: that stream is not attached
    (with a TTY, stderr is not used: the terminal carries both). ``escape``:
    the detach-key proxy (TTY sessions). ``notify``: also set when the stream
    ends (the caller waits for the first of several things).
    """

    def __init__(
        self,
        conn: HijackedConnection,
        *,
        tty: bool,
        stdin_fd: int | None,
        stdout: Writer | None,
        stderr: Writer | None,
        escape: EscapeProxy | None = None,
        on_output_end: Callable[[], None] | None = None,
        notify: threads.Latch | None = None,
    ) -> None:
        self.conn = conn
        self.tty = tty
        self.stdin_fd = stdin_fd
        self.stdout = stdout
        self.stderr = stderr
        self.escape = escape
        self.on_output_end = on_output_end  # restores the terminal as soon as output ends
        self.result = StreamResult()
        self._done = threads.Latch()
        self._notify = notify
        self._lock = threads.Lock()
        self._output_attached = stdout is not None or stderr is not None

    def start(self) -> Streamer:
        if self._output_attached:
            threads.start(self._output, "attach-output")
        if self.stdin_fd is None:
            self._input()  # nothing to read: shut the write side now
        else:
            # Never joined: a read of an interactive stdin may block until the user types.
            threads.start(self._input, "attach-input")
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the stream to end; False on timeout."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def close(self) -> None:
        """Stop both directions: the socket is shut, the output thread sees its end."""
        self.conn.close()
        self._finish()

    def _finish(self, *, detached: bool = False, error: str = "") -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.result.detached = detached
            self.result.error = error
            self._done.set()
        if self._notify is not None:
            self._notify.set()

    def _output(self) -> None:
        error = ""
        try:
            if self.tty:
                write = self.stdout or self.stderr
                assert write is not None
                while data := self.conn.recv():
                    write(data)
            else:
                error = self._demux()
        except (BrokenPipeError, ValueError):
            error = ""  # our stdout went away (`portside run ... | head`)
        finally:
            if self.on_output_end is not None:
                self.on_output_end()
            self._finish(error=error)

    def _demux(self) -> str:
        demuxer = new_demuxer()
        while data := self.conn.recv():
            try:
                pieces = demuxer.feed(data)
            except InvalidArgument as e:
                return str(e)
            for stream, payload in pieces:
                if stream == stdcopy.SYSTEMERR:
                    return "error from daemon in stream: " + payload.decode("utf-8", "replace")
                write = self.stderr if stream == stdcopy.STDERR else self.stdout
                if write is not None:
                    write(payload)
        try:
            demuxer.eof()
        except InvalidArgument:
            pass  # moby's reader drops a truncated tail silently
        return ""

    def _input(self) -> None:
        if self.stdin_fd is not None:
            while True:
                try:
                    data = os.read(self.stdin_fd, READ_SIZE)
                except OSError:
                    break
                if not data:
                    break
                detached = False
                if self.escape is not None:
                    data, detached = self.escape.feed(data)
                try:
                    if data:
                        self.conn.sendall(data)
                except OSError:
                    break  # the daemon closed the stream; the output side reports it
                if detached:
                    if self.on_output_end is not None:
                        self.on_output_end()
                    self._finish(detached=True)
                    return
        self.conn.close_write()
        if not self._output_attached:
            self._finish()
