"""HTTP/1.1 for the registry: stdlib ``http.server`` framing, a thread per connection.

Chosen over daemon/http.py's h11 server because the registry needs none of
hijacking and its hot paths are raw bytes: request bodies are read straight
from the socket's buffered reader (no per-event parsing), and blob GETs go
out with ``socket.sendfile`` (zero-copy ``sendfile(2)`` on plain TCP; Python
falls back to read/send under TLS). Small answers are one ``sendall`` of head
and body together, and Nagle is off.
"""

from __future__ import annotations

import io
import logging
import socket
import ssl
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("portside.registry")

_CHUNK = 1 << 20
# Most of a refused body we read and discard so the client reads our answer.
MAX_DRAIN = 16 << 20


class BodyError(Exception):
    """The request body is malformed (bad chunked framing)."""


class ChunkedReader(io.RawIOBase):
    """Decodes ``Transfer-Encoding: chunked`` from a buffered reader (Go clients stream PATCH bodies so)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._left = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self._done:
            return b""
        if self._left == 0:
            line = self._raw.readline(1024)
            if not line:
                raise ConnectionError("request body ended early")
            try:
                self._left = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BodyError("bad chunk size") from None
            if self._left == 0:
                while self._raw.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._done = True
                return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        data: bytes = self._raw.read(want)
        if not data:
            raise ConnectionError("request body ended early")
        self._left -= len(data)
        if self._left == 0:
            self._raw.readline(16)  # the CRLF after the chunk
        return data


class LengthReader(io.RawIOBase):
    def __init__(self, raw: Any, length: int) -> None:
        self._raw = raw
        self.left = length

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = self.left if n is None or n < 0 else min(n, self.left)
        data: bytes = self._raw.read(want)
        if not data:
            raise ConnectionError("request body ended early")
        self.left -= len(data)
        return data


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # email.message.Message: case-insensitive get()
    body: Any     # a reader with read(n)
    length: int | None  # Content-Length, None when chunked
    base_url: str

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str:
        return self.headers.get(name, "") or ""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # a file to send instead of body: (file object, offset, count)
    file: tuple[Any, int, int] | None = None


Handler = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "portside-registry"
    # Each connection holds a thread: one that sends nothing for this long is dropped.
    timeout = 120
    sys_version = ""
    app: Handler
    scheme: str
    verbose: bool

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _serve(self) -> None:
        url = urlsplit(self.path)
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        length: int | None
        if "chunked" in te:
            body: Any = ChunkedReader(self.rfile)
            length = None
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length < 0:
                    raise ValueError
            except ValueError:
                self.send_error(400, "bad Content-Length")
                return
            body = LengthReader(self.rfile, length)
        host = self.headers.get("Host") or "%s:%s" % self.connection.getsockname()[:2]
        request = Request(self.command, url.path, parse_qs(url.query, keep_blank_values=True),
                          self.headers, body, length, f"{self.scheme}://{host}")
        try:
            response = self.app(request)
        except (ConnectionError, BodyError, ssl.SSLError, TimeoutError):
            self.close_connection = True
            return
        # A body the handler did not read (an error answer) is drained when not
        # too large (a refused 4 MiB manifest is), else the connection closes: its
        # bytes would be taken for the next request.
        if isinstance(body, LengthReader) and body.left:
            if body.left <= MAX_DRAIN:
                try:
                    while body.read(_CHUNK):
                        pass
                except ConnectionError:
                    self.close_connection = True
            else:
                self.close_connection = True
        elif isinstance(body, ChunkedReader) and not body._done:
            self.close_connection = True
        self._send(response)

    def _send(self, response: Response) -> None:
        lines = [f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}"]
        lines += [f"{k}: {v}" for k, v in response.headers]
        count = response.file[2] if response.file else len(response.body)
        if response.status not in (204, 304) and not any(k.lower() == "content-length" for k, _ in response.headers):
            lines.append(f"Content-Length: {count}")
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")  # an HTTP/1.0 client closes otherwise
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.log_request(response.status, count)
        if self.command == "HEAD" or response.status in (204, 304):
            self.wfile.write(head)
            return
        if response.file is None:
            self.wfile.write(head + response.body)
            return
        f, offset, count = response.file
        self.wfile.write(head)
        try:
            if count:
                self.connection.sendfile(f, offset, count)
        finally:
            f.close()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    # Each connection holds a thread; beyond this many, new ones are closed at once.
    max_connections = 1024

    def __init__(self, addr: tuple[str, int], app: Handler, *, tls: ssl.SSLContext | None = None,
                 verbose: bool = False) -> None:
        handler = type("Handler", (_Handler,), {"app": staticmethod(app), "scheme": "https" if tls else "http",
                                                 "verbose": verbose})
        self.tls = tls
        self._slots = threading.BoundedSemaphore(self.max_connections)
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:
            # The handshake happens in the connection's thread (first read), not in the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        log.exception("request from %s failed", client_address)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx
