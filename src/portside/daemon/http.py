"""The Engine API's HTTP/1.1 server: h11 over sockets we own.

We own the socket so that attach and exec can take the raw connection over
after ``101 UPGRADED`` (an ASGI or ``http.server`` stack cannot hand it out
cleanly). One daemon thread serves each connection and runs the handler in
that thread, so blocking engine code is called directly.

Lifecycle of a connection::

    accept -> [idle: wait for a request] -> handler -> response -> drain body
                 ^                                                    |
                 +------------------- keep-alive ---------------------+
    a Hijack result, a malformed request, Connection: close, an unread
    body we chose not to drain, or shutdown() while idle -> close

A handler returns one of three results:

* ``Response``: a complete body; the server sets Content-Length.
* ``StreamResponse``: the status line and headers are sent and flushed before
  ``write_body`` runs (``docker wait`` deadlocks otherwise), then every write
  is one chunk sent at once.
* ``Hijack``: the server writes ``101 UPGRADED`` (or ``200 OK`` when the
  client did not ask to upgrade) and gives the socket to ``run``.
"""

from __future__ import annotations

import errno
import grp
import io
import json as jsonlib
import logging
import os
import select
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote

import h11

from portside.errors import InvalidArgument, TooLarge
from portside.streams import tlsrelay

# recv() size: large so that a 100 MiB upload takes ~100 system calls.
RECV_SIZE = 1 << 20
# Largest request head we accept (Go's http.Server default MaxHeaderBytes).
MAX_HEADER_BYTES = 1 << 20
# How much of a body the handler left unread we read and discard to keep the
# connection alive (Go's net/http uses the same bound); beyond it we close.
MAX_DRAIN_BYTES = 256 << 10
# How long a closing connection keeps reading a body it will not use (see _linger).
LINGER_SECONDS = 0.5
# Largest JSON request body Request.json() reads (a create request is a few KiB); streamed
# bodies (image load, archive PUT, build contexts) are read by their handlers and not capped.
MAX_JSON_BODY = 16 << 20
# A TLS handshake not finished after this long is dropped: each connection holds a thread.
HANDSHAKE_TIMEOUT = 10.0

_FALSE_FLAGS = frozenset({"", "0", "no", "false", "none"})
# Responses that carry no body whatever the handler returns.
_NO_BODY_STATUS = frozenset({204, 304})
# Framing headers belong to the server, never to a handler.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
# Headers of a hijack answer that the server writes itself.
_HIJACK_HEADERS = frozenset({"content-type", "connection", "upgrade"})


class _ProtocolBroken(Exception):
    """The request could not be parsed (h11 raised); the connection must close."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status  # h11's error_status_hint: 400, 431...


class Body(io.RawIOBase):
    """A request body, read on demand in the connection thread.

    ``pull()`` returns the next piece of the body and b"" at its end. The
    server's pull undoes Content-Length or chunked framing (h11) and answers
    ``Expect: 100-continue`` on the first read, so a handler that rejects a
    request without reading spares the client the upload.
    """

    def __init__(self, pull: Callable[[], bytes | bytearray]) -> None:
        super().__init__()
        self._pull = pull
        self._chunk: bytes | bytearray = b""  # the latest piece ...
        self._pos = 0  # ... and how much of it was returned
        self._eof = False

    @classmethod
    def from_bytes(cls, data: bytes) -> Body:
        """A body that is already in memory (tests, in-process callers)."""
        pieces = iter([data] if data else [])
        return cls(lambda: next(pieces, b""))

    @property
    def finished(self) -> bool:
        """True once the whole body has been received."""
        return self._eof and self._pos >= len(self._chunk)

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            return self.readall()
        if n == 0:
            return b""
        if not self._ready():
            return b""
        out = bytes(memoryview(self._chunk)[self._pos : self._pos + n])
        self._pos += len(out)
        return out

    def _ready(self) -> bool:
        """Make sure unread bytes are at hand; False at the end of the body."""
        while self._pos >= len(self._chunk):
            if self._eof or not self._fill():
                return False
        return True

    def readall(self) -> bytes:
        parts = [bytes(self._chunk[self._pos :])]
        self._pos = len(self._chunk)
        while not self._eof and self._fill():
            parts.append(bytes(self._chunk))
            self._pos = len(self._chunk)
        return b"".join(parts)

    def readinto(self, b: Any) -> int:
        # Straight from the received piece into the caller's buffer: one copy.
        view = memoryview(b).cast("B")
        if not view or not self._ready():
            return 0
        count = min(len(view), len(self._chunk) - self._pos)
        view[:count] = memoryview(self._chunk)[self._pos : self._pos + count]
        self._pos += count
        return count

    def discard(self, limit: int) -> bool:
        """Read and drop at most ``limit`` more bytes; True if the body is then complete."""
        while not self.finished:
            if limit <= 0:
                return False
            limit -= len(self.read(min(limit, RECV_SIZE)))
        return True

    def _fill(self) -> bool:
        """Load the next piece; False at the end of the body."""
        chunk = self._pull()
        self._chunk, self._pos = chunk, 0
        if not chunk:
            self._eof = True
        return bool(chunk)


@dataclass
class Request:
    method: str
    target: str
    path: str  # percent-decoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names; repeated headers joined by ", "
    body: Body
    params: dict[str, str] = field(default_factory=dict)  # set by the router
    api_version: str = ""  # set by the router
    # True once the client has closed its end: a handler that blocks (wait) stops then, as Go's
    # request context is cancelled; set by the server, never true for in-process requests
    client_gone: Callable[[], bool] = lambda: False

    @classmethod
    def from_target(
        cls, method: str, target: str, headers: dict[str, str] | None = None, body: Body | None = None
    ) -> Request:
        """Parse ``target`` ("/path?query") into path and query, as the server does."""
        raw_path, _, raw_query = target.partition("?")
        return cls(
            method=method,
            target=target,
            path=unquote(raw_path),
            query=parse_qs(raw_query, keep_blank_values=True),
            headers=headers or {},
            body=body if body is not None else Body.from_bytes(b""),
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``, or ``default`` when absent."""
        values = self.query.get(name)
        return values[0] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """Docker's boolean query parsing: "", 0, no, false, none (any case) are false."""
        value = self.arg(name)
        if value is None:
            return default
        return value.strip().lower() not in _FALSE_FLAGS

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """An integer query parameter; absent or empty gives ``default``."""
        value = self.arg(name)
        if not value:
            return default
        # int() would also take " 5", "1_000" and non-ASCII digits; Go does not.
        digits = value[1:] if value[0] in "+-" else value
        if not (digits.isascii() and digits.isdigit()):
            raise InvalidArgument(f"invalid value for {name}: {value!r} is not an integer")
        return int(value)

    def json_arg(self, name: str) -> Any:
        """A JSON-encoded query value (filters, buildargs); absent or empty gives None."""
        value = self.arg(name)
        if not value:
            return None
        return decode_json(value, f"invalid JSON in query parameter {name}")

    def json_body(self) -> bytes:
        """The whole body, for a handler that decodes JSON itself; over MAX_JSON_BODY it is refused (413)."""
        data = self.body.read(MAX_JSON_BODY + 1)
        while len(data) <= MAX_JSON_BODY and (more := self.body.read(MAX_JSON_BODY + 1 - len(data))):
            data += more
        if len(data) > MAX_JSON_BODY:
            raise TooLarge(f"request body is too large: the limit for JSON bodies is {MAX_JSON_BODY >> 20} MiB")
        return data

    def json(self) -> Any:
        """The body decoded as JSON; an empty body gives None; one over MAX_JSON_BODY is refused (413)."""
        data = self.json_body()
        if not data.strip():
            return None
        return decode_json(data)


def decode_json(untrusted: str | bytes, what: str = "invalid JSON") -> Any:
    """``json.loads`` whose every failure is an InvalidArgument (400) saying ``what: why``."""
    try:
        return jsonlib.loads(untrusted)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise InvalidArgument(f"{what}: {exc}") from None
    except RecursionError:  # "[[[[..." deeper than the interpreter's stack; Go's decoder has a limit too
        raise InvalidArgument(f"{what}: exceeded max depth") from None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Response:
        """Compact JSON ending in a newline, as Go's json.Encoder writes it."""
        body = jsonlib.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"
        return cls(status, body.encode(), [("Content-Type", "application/json")])


@dataclass
class StreamResponse:
    """A chunked response whose body ``write_body`` produces through its argument.

    ``write_body(write)`` runs after the headers are on the wire. Each
    ``write(data)`` sends one chunk at once (callers batch); it raises OSError
    when the client has gone away, which is how long streams notice. If
    ``write_body`` raises, the connection is closed without the final chunk,
    so the client sees a truncated stream. For HEAD, ``write_body`` is not called.
    """

    write_body: Callable[[Callable[[bytes], None]], None]
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Called once the response is over, whether the body was written or not (a HEAD, a client
    # gone before the headers): releases what the handler held open for write_body.
    on_close: Callable[[], None] | None = None


@dataclass
class Hijack:
    """Take over the connection: ``run(sock, already_read)`` owns the socket until it returns.

    ``already_read`` holds bytes the client sent after the request that the
    server had already received. The server closes the socket afterwards.
    """

    run: Callable[[socket.socket, bytes], None]
    content_type: str = "application/vnd.docker.raw-stream"


Handler = Callable[[Request], Response | StreamResponse | Hijack]


class Server:
    """A threaded HTTP/1.1 server on a unix socket; see the module docstring."""

    def __init__(
        self,
        handler: Handler,
        *,
        log: logging.Logger | None = None,
        default_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._handler = handler
        self.log = log or logging.getLogger(__name__)
        # Sent on every response (dockerd: Api-Version, Docker-Experimental,
        # Ostype, Server) unless the handler set a header of the same name.
        self.default_headers = list(default_headers)
        # _lock guards _listeners, _closing and _connections (and each connection's
        # idle flag); _closing is also read without it, as a hint that only ever
        # goes from False to True. Reentrant because shutdown() may run in a
        # signal handler on the thread that holds it.
        self._lock = threading.RLock()
        self._listeners: list[_Listener] = []
        self._closing = False
        self._connections: set[_Connection] = set()

    def listen_unix(self, path: str, *, mode: int = 0o660, group: str | None = "portside") -> None:
        """Bind and listen on ``path``, replacing a stale socket file left by a dead daemon."""
        os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
        _remove_stale_socket(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            os.chmod(path, mode)
            if group is not None:
                self._chgrp(path, group)
            listener.listen(1024)
        except BaseException:
            listener.close()
            raise
        with self._lock:
            self._listeners.append(_Listener(listener, path=path, inode=os.stat(path).st_ino))

    def listen_tcp(self, host: str, port: int, tls: ssl.SSLContext) -> int:
        """Listen on ``host:port`` (port 0: any free one) for TLS clients; the port bound.

        There is no plain TCP: ``tls`` should require client certificates (daemon/listen.py).
        The handshake happens in the connection's thread, so a slow client holds up only itself.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(1024)
        except BaseException:
            listener.close()
            raise
        with self._lock:
            self._listeners.append(_Listener(listener, tls=tls))
        return int(listener.getsockname()[1])

    def _chgrp(self, path: str, group: str) -> None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            return  # no such group: only the owner (root) may connect
        try:
            os.chown(path, -1, gid)  # the owner is whoever runs the daemon: root
        except PermissionError as exc:
            self.log.warning("cannot give %s to group %s: %s", path, group, exc)

    def serve_forever(self) -> None:
        """Accept connections until shutdown(), then return; each connection gets a daemon thread.

        The last listener is served in this thread, every other one in a daemon thread of its own.
        """
        with self._lock:
            listeners = list(self._listeners)
        if not listeners:
            raise RuntimeError("serve_forever() before listen_unix() or listen_tcp()")
        for listener in listeners[:-1]:
            threading.Thread(target=self._accept_loop, args=(listener,), name="portside-accept",
                             daemon=True).start()
        self._accept_loop(listeners[-1])

    def _accept_loop(self, listener: _Listener) -> None:
        count = 0
        while True:
            try:
                sock, _ = listener.sock.accept()
            except OSError as exc:
                if self._closing:  # shutdown() closed the listener under us
                    return
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.log.error("accept: %s; retrying", exc)
                    time.sleep(0.1)
                    continue
                if exc.errno == errno.ECONNABORTED:
                    continue
                raise
            conn = _Connection(self, sock, listener.tls)
            with self._lock:
                if self._closing:
                    sock.close()
                    return
                self._connections.add(conn)
            count += 1
            name = f"portside-{'tls' if listener.tls else 'http'}-{count}"
            threading.Thread(target=conn.serve, name=name, daemon=True).start()

    def shutdown(self) -> None:
        """Stop accepting, remove the socket file and close idle keep-alive connections.

        Requests in progress finish; their connections close afterwards. Safe
        from a signal handler or any thread, and idempotent.
        """
        with self._lock:
            if self._closing:
                return
            self._closing = True
            listeners = list(self._listeners)
            # Closing under the lock: a connection removes itself under the
            # lock before closing its socket, so these sockets are still open.
            for conn in self._connections:
                if conn.idle:
                    conn.wake()
        for listener in listeners:
            try:
                listener.sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept()
            except OSError:
                pass
            listener.sock.close()
            if listener.path is not None:
                try:
                    # Only our own socket: a new daemon may already have replaced it.
                    if os.lstat(listener.path).st_ino == listener.inode:
                        os.unlink(listener.path)
                except FileNotFoundError:
                    pass

    # --- called by connections -------------------------------------------------

    def _set_idle(self, conn: _Connection, idle: bool) -> bool:
        """Mark a connection idle or busy; False if it should close (shutting down)."""
        with self._lock:
            conn.idle = idle
            return not self._closing

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._connections.discard(conn)
            conn.idle = False

    def _call(self, request: Request) -> Response | StreamResponse | Hijack:
        # Imported here: errors.py builds Response objects from this module.
        from portside.daemon.errors import error_response, status_for

        try:
            return self._handler(request)
        except Exception as exc:
            if status_for(exc) >= 500:
                self.log.error("handler for %s %s failed", request.method, request.path, exc_info=exc)
            return error_response(exc)

    def _headers(self, own: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """The handler's headers (minus framing) plus the defaults it did not override."""
        headers = [(k, v) for k, v in own if k.lower() not in _FRAMING_HEADERS]
        names = {k.lower() for k, _ in headers}
        return headers + [(k, v) for k, v in self.default_headers if k.lower() not in names]


@dataclass
class _Listener:
    sock: socket.socket
    path: str | None = None  # the unix socket file we bound ...
    inode: int | None = None  # ... and its inode, so that we remove only our own
    tls: ssl.SSLContext | None = None  # TCP listeners: the server context (client certificates required)


def _remove_stale_socket(path: str) -> None:
    """Unlink a socket file nobody listens on; refuse to steal a live daemon's socket."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        return  # not ours to remove: bind() will fail with EADDRINUSE and say so
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)  # nobody listens: a stale socket from a dead daemon
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"another daemon is listening on {path}")


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class _Connection:
    """One client connection, served by one thread from accept to close."""

    def __init__(self, server: Server, sock: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        self.server = server
        # Wrapped now (no I/O), the handshake is done by serve() in the connection's thread.
        self.sock: socket.socket = (
            sock if tls is None else tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        )
        self.tls = tls is not None
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.idle = False  # guarded by server._lock: waiting for the next request
        self._broken: _ProtocolBroken | None = None
        self._body_unread = False  # the last request's body was left unread: linger before closing

    def wake(self) -> None:
        """Make a blocked recv() return EOF (called by shutdown())."""
        try:
            # The plain socket's shutdown: SSLSocket.shutdown would also drop the TLS state
            # under the thread that is reading.
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def _handshake(self) -> bool:
        """TLS: complete the handshake (the client's certificate is checked here); False to close."""
        assert isinstance(self.sock, ssl.SSLSocket)
        try:
            self.sock.settimeout(HANDSHAKE_TIMEOUT)
            self.sock.do_handshake()
            self.sock.settimeout(None)
        except (OSError, ValueError) as exc:  # ssl.SSLError, a timeout, a reset
            self.server.log.info("TLS handshake failed: %s", exc)
            return False
        return True

    def serve(self) -> None:
        log = self.server.log
        try:
            if self.tls and not self._handshake():
                return
            while True:
                if not self.server._set_idle(self, True):
                    return
                request = self._next_request()
                self.server._set_idle(self, False)
                if request is None or not self._respond(request):
                    return
                self.h11.start_next_cycle()
        except ConnectionError as exc:  # the client went away
            log.debug("connection closed: %s", exc)
        except Exception:
            log.exception("connection failed")
        finally:
            self.server._forget(self)
            if self._body_unread:
                self._linger()
            self.sock.close()

    def _linger(self) -> None:
        """Close gently when the client may still be sending a body we did not read.

        Closing a socket with unread input makes the kernel send a reset, and
        the client, still writing, sees "broken pipe" instead of our answer.
        Half-close, then read and drop what still comes for a moment, as Go's
        net/http does (500 ms).
        """
        deadline = time.monotonic() + LINGER_SECONDS
        try:
            self.sock.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                if not self.sock.recv(RECV_SIZE):
                    break
        except OSError:
            pass

    # --- reading -----------------------------------------------------------------

    def _event(self) -> Any:
        """The next h11 event, reading from the socket as needed; raises _ProtocolBroken."""
        if self._broken is not None:
            raise self._broken
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._broken = _ProtocolBroken(str(exc), exc.error_status_hint)
                raise self._broken from None
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(self.sock.recv(RECV_SIZE))  # b"" tells h11 about EOF

    def pull_body(self) -> bytes | bytearray:
        """Body's source: the next piece of the request body, b"" at its end.

        Raises InvalidArgument if the body is malformed or the client hung up mid-body.
        """
        if self.h11.they_are_waiting_for_100_continue:
            self._send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
        while True:
            try:
                event = self._event()
            except _ProtocolBroken as exc:
                raise InvalidArgument(f"malformed request body: {exc}") from None
            if isinstance(event, h11.Data):
                if event.data:
                    data: bytes | bytearray = event.data  # a bytearray h11 made for us: no copy needed
                    return data
            elif isinstance(event, h11.EndOfMessage):
                return b""
            else:
                raise AssertionError(f"unexpected h11 event in a request body: {event!r}")

    def _next_request(self) -> Request | None:
        """Wait for the next request; None when the client closed or sent garbage."""
        try:
            event = self._event()
        except _ProtocolBroken as exc:
            if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                response = Response.json({"message": f"malformed HTTP request: {exc}"}, exc.status)
                self._send_response(response, head=False, close=True)
            return None
        if not isinstance(event, h11.Request):
            return None  # ConnectionClosed
        headers: dict[str, str] = {}
        for name, value in event.headers:  # h11 lower-cases the names
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        method, target = event.method.decode("ascii"), event.target.decode("latin-1")
        request = Request.from_target(method, target, headers, Body(self.pull_body))
        request.client_gone = self._client_gone
        return request

    def _client_gone(self) -> bool:
        """Whether the client has closed the connection: a peek that reads end of file, without waiting."""
        if self.tls:
            # No peeking through TLS (the peer's close_notify is unread data): ask whether
            # the peer shut its side of the TCP connection.
            poller = select.poll()
            poller.register(self.sock, select.POLLRDHUP)
            return any(ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR) for _, ev in poller.poll(0))
        try:
            return self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    # --- writing -----------------------------------------------------------------

    def _send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.sock.sendall(data)

    def _respond(self, request: Request) -> bool:
        """Run the handler and answer; True if the connection may serve another request."""
        result = self.server._call(request)
        if isinstance(result, Hijack):
            self._hijack(request, result)
            return False
        head = request.method == "HEAD"
        if isinstance(result, StreamResponse):
            try:
                return self._stream(request, result, head)
            finally:
                if result.on_close is not None:
                    result.on_close()
        # Before the headers: can we keep the connection? Only if the rest of the
        # body is (cheaply) read, and never if we did not let a 100-continue client send it.
        close = not self._drain(request.body) or self.server._closing
        return self._send_response(result, head=head, close=close)

    def _drain(self, body: Body) -> bool:
        """Read what is left of the body, if cheap; False if the connection must close."""
        drained = False
        if body.finished:
            drained = True
        elif not self.h11.they_are_waiting_for_100_continue:
            try:
                drained = body.discard(MAX_DRAIN_BYTES)
            except InvalidArgument:
                drained = False
        self._body_unread = not drained
        return drained

    def _send_response(self, response: Response, *, head: bool, close: bool) -> bool:
        headers = self.server._headers(response.headers)
        has_body = response.status not in _NO_BODY_STATUS and response.status >= 200
        if has_body:
            headers.append(("Content-Length", str(len(response.body))))
        if close:
            headers.append(("Connection", "close"))
        self._send(h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status)))
        if has_body and not head and response.body:
            self._send(h11.Data(data=response.body))
        self._send(h11.EndOfMessage())
        return not close and self._reusable()

    def _stream(self, request: Request, response: StreamResponse, head: bool) -> bool:
        headers = self.server._headers(response.headers)
        if self.server._closing:
            headers.append(("Connection", "close"))
        # No Content-Length: h11 frames the body with chunked encoding (or, for
        # an HTTP/1.0 client, by closing the connection at the end).
        self._send(h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status)))
        if not head and response.status not in _NO_BODY_STATUS:

            def write(data: bytes) -> None:
                if data:
                    self._send(h11.Data(data=data))

            try:
                response.write_body(write)
            except ConnectionError as exc:  # the client went away
                self.server.log.debug("stream for %s %s ended: %s", request.method, request.path, exc)
                return False
            except Exception:
                self.server.log.exception("stream for %s %s failed", request.method, request.path)
                return False
        self._send(h11.EndOfMessage())
        return self._drain(request.body) and self._reusable()

    def _reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def _hijack(self, request: Request, hijack: Hijack) -> None:
        # Whatever is left of the request body precedes the raw stream; consume it
        # so that trailing_data is exactly what the client sent after the request.
        try:
            request.body.discard(1 << 62)
        except InvalidArgument as exc:
            self.server.log.debug("not hijacking %s %s: %s", request.method, request.path, exc)
            return
        already_read, _ = self.h11.trailing_data
        if "upgrade" in request.headers:
            # h11 cannot continue after a 101 it did not negotiate: write it ourselves.
            lines = [
                "HTTP/1.1 101 UPGRADED",
                f"Content-Type: {hijack.content_type}",
                "Connection: Upgrade",
                "Upgrade: tcp",
            ]
        else:
            lines = ["HTTP/1.1 200 OK", f"Content-Type: {hijack.content_type}"]
        lines += [f"{k}: {v}" for k, v in self.server.default_headers if k.lower() not in _HIJACK_HEADERS]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if isinstance(self.sock, ssl.SSLSocket):
            self._hijack_tls(request, hijack, bytes(already_read))
        else:
            self._run_hijack(request, hijack, self.sock, bytes(already_read))

    def _run_hijack(self, request: Request, hijack: Hijack, sock: socket.socket, already_read: bytes) -> None:
        try:
            hijack.run(sock, already_read)
        except ConnectionError as exc:  # the client went away
            self.server.log.debug("hijacked %s %s ended: %s", request.method, request.path, exc)
        except Exception:
            self.server.log.exception("hijacked %s %s failed", request.method, request.path)

    def _hijack_tls(self, request: Request, hijack: Hijack, already_read: bytes) -> None:
        """The handler gets one end of a socketpair; this thread relays it to the TLS connection.

        The handler may hand its socket's descriptor to the monitor, which speaks no
        TLS (streams/tlsrelay.py). Its end is closed when it returns: whoever still
        needs the stream holds a duplicate.
        """
        assert isinstance(self.sock, ssl.SSLSocket)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

        def run() -> None:
            try:
                self._run_hijack(request, hijack, theirs, already_read)
            finally:
                theirs.close()

        threading.Thread(target=run, name="portside-hijack", daemon=True).start()
        try:
            tlsrelay.relay(self.sock, ours)
            tlsrelay.close_tls(self.sock)
        finally:
            ours.close()
