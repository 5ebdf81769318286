"""A small Docker Engine API client over a unix socket or TCP, with TLS if asked (stdlib only).

The CLI is a thin client: one connection per request, no ping first. When the
host is the default socket and nothing listens there, the daemon is started in
the background (its own session, logging to /var/log/portside/daemon.log) and
the request is retried; any other host that does not answer gives docker's
"Cannot connect" error.

Errors mirror moby's client (``client/request.go`` checkResponseErr): a status
of 400 or more becomes APIError whose text is ``Error response from daemon:
<message>``.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import time

# _socket, not socket: socket.py turns its constants into enums and loads
# selectors at import, which costs a `portside run` more than its own
# requests. The CLI needs only connect, send, recv and shutdown on a
# blocking unix socket; ``SocketReader`` and ``sendfile`` below stand in for
# the two conveniences of socket.py it used (docs/cli-startup.md).
import _socket

from portside.cli import jsonwire
from portside.cli.endpoint import Endpoint, EndpointError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from io import BufferedIOBase
    from typing import IO, Any, Iterable, Iterator, TextIO

API_VERSION = "1.45"
DEFAULT_HOST = "unix:///run/portside/portside.sock"
DAEMON_LOG = "/var/log/portside/daemon.log"
AUTOSTART_TIMEOUT = 15.0

if TYPE_CHECKING:
    from typing import Protocol

    Query = Iterable[tuple[str, str]] | dict[str, str] | None

    class SelfSending(Protocol):
        """A body that writes itself to the socket, of a length known beforehand (cli/contexttar.py)."""

        length: int

        def send_to(self, sock: _socket.socket, use_sendfile: bool) -> None: ...

    Body = bytes | IO[bytes] | SelfSending | None


class ConnectionFailed(Exception):
    """Nothing answers at the host (docker's errConnectionFailed), or the TLS handshake failed."""

    def __init__(self, host: str, reason: str = "") -> None:
        super().__init__(
            f"error during connect: {host}: {reason}" if reason
            else f"Cannot connect to the portside daemon at {host}. Is the portside daemon running?"
        )
        self.host = host


def _tls_failure(e: OSError) -> str:
    """The ssl module's words for a refused handshake (ssl itself is not imported for this)."""
    return str(e) if type(e).__module__ == "ssl" else ""


class APIError(Exception):
    """The daemon answered with a status of 400 or more."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Error response from daemon: {message}")
        self.status = status
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404


class Connection:
    """One HTTP/1.1 exchange over a connected socket (unix, TCP, or TLS over TCP).

    A deliberately small client: ``http.client`` drags in ``email`` and ``ssl``
    and costs more than the rest of the CLI's startup together. The daemon
    speaks plain HTTP/1.1 (h11), so the CLI needs only: a request line and
    headers, a body sent whole, from a file (Content-Length) or as chunks, and
    a response read by Content-Length, chunks, or to EOF.
    """

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        # sendfile() would put the file's bytes on the wire unencrypted.
        self.sendfile = type(sock) is _socket.socket

    def send(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Body,
        chunked: bool,
    ) -> None:
        hdrs = {"Host": "api.moby.localhost", **headers}
        stream: IO[bytes] | None = None
        size = -1
        if hasattr(body, "send_to"):  # a body that writes itself (cli/contexttar.py): its length is known
            sending: SelfSending = body  # type: ignore[assignment]
            hdrs["Content-Length"] = str(sending.length)
            self.sock.sendall(_head(method, target, hdrs))
            sending.send_to(self.sock, self.sendfile)
            return
        if body is not None and not isinstance(body, (bytes, bytearray)):
            try:
                st = os.fstat(body.fileno())
                if stat.S_ISREG(st.st_mode):
                    size = st.st_size - body.tell()
            except (OSError, AttributeError, ValueError):
                pass
            chunked = chunked or size < 0  # a pipe, a FIFO, a socket: length unknown
        if chunked:
            hdrs["Transfer-Encoding"] = "chunked"
            stream = None if isinstance(body, (bytes, bytearray)) else body
        elif isinstance(body, (bytes, bytearray)):
            hdrs["Content-Length"] = str(len(body))
        elif body is not None:
            hdrs["Content-Length"] = str(size)
            stream = body
        elif method in ("POST", "PUT"):
            hdrs["Content-Length"] = "0"
        head = _head(method, target, hdrs)
        sendall = self.sock.sendall
        if isinstance(body, (bytes, bytearray)):
            if chunked:
                body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
            sendall(head + body)
            return
        sendall(head)
        if stream is None:
            if chunked:
                sendall(b"0\r\n\r\n")
            return
        if not chunked and self.sendfile:
            # A regular file of known length: the kernel copies it to the socket.
            sendfile(self.sock, stream, size)
            return
        read = getattr(stream, "read1", None) or stream.read
        while True:
            data = read(1 << 20)
            if not data:
                break
            if chunked:
                sendall(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                sendall(data)
        if chunked:
            sendall(b"0\r\n\r\n")

    def response(self, method: str) -> "Response":
        reader = io.BufferedReader(SocketReader(self.sock))
        line = reader.readline(65537)
        while line in (b"\r\n", b"\n"):
            line = reader.readline(65537)
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProtocolError(f"malformed status line {line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            h = reader.readline(65537)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return Response(self, reader, status, headers, method)

    def close(self) -> None:
        self.sock.close()


class ProtocolError(Exception):
    pass


class SocketReader(io.RawIOBase):
    """The read side of a socket as a raw stream, for io.BufferedReader (socket.makefile("rb") without socket.py).

    Closing it leaves the socket open: the Connection closes that.
    """

    def __init__(self, sock: _socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)


def _head(method: str, target: str, headers: dict[str, str]) -> bytes:
    return (f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n").encode("latin-1")


def sendfile(sock: _socket.socket, file: IO[bytes], count: int) -> None:
    """Send ``count`` bytes of a regular file from its current position, as socket.sendfile does.

    The socket must be blocking (no timeout). Stops early if the file ends
    first; the file is left positioned after what was sent.
    """
    offset = file.tell()
    out_fd, in_fd = sock.fileno(), file.fileno()
    try:
        while count > 0:
            sent = os.sendfile(out_fd, in_fd, offset, min(count, 1 << 30))
            if sent == 0:
                break
            offset += sent
            count -= sent
    finally:
        file.seek(offset)


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = _UNRESERVED | frozenset(b"/:@!$&'()*+,;=")


def _percent(s: str, safe: frozenset[int], space_plus: bool = False) -> str:
    out = []
    for b in s.encode("utf-8"):
        if b in safe:
            out.append(chr(b))
        elif b == 0x20 and space_plus:
            out.append("+")
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def _encode_query(query: Query) -> str:
    """url.Values.Encode-style ``k=v&k=v`` (repeated keys kept, in order)."""
    if not query:
        return ""
    items = query.items() if isinstance(query, dict) else query
    return "&".join(f"{_percent(k, _UNRESERVED, True)}={_percent(v, _UNRESERVED, True)}" for k, v in items)


def api_path(path: str, query: Query = None) -> str:
    """``/v1.45/<path>?query``: the path escaped like Go's url.URL.EscapedPath."""
    q = _encode_query(query)
    return "/v" + API_VERSION + _percent(path, _PATH_SAFE) + ("?" + q if q else "")


class Response:
    """A response whose body is read whole (``read``, ``json``) or streamed (``iter_chunks``)."""

    def __init__(self, conn: Connection, reader: BufferedIOBase, status: int, headers: dict[str, str], method: str) -> None:
        self._conn = conn
        self._reader = reader
        self.status = status
        self.headers = headers
        te = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in te
        self._remaining: int | None = None  # bytes left in the body (or chunk); None: until EOF
        self._done = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        if not self._chunked and not self._done:
            length = headers.get("content-length")
            if length is not None and length.isdigit():
                self._remaining = int(length)
                self._done = self._remaining == 0
        elif self._chunked:
            self._remaining = 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip()

    def _read_some(self, size: int) -> bytes:
        if self._done:
            return b""
        reader = self._reader
        if self._chunked:
            if not self._remaining:
                line = reader.readline(1024)
                if not line:
                    raise ProtocolError("connection closed inside a chunked body")
                n = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if n == 0:
                    while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self._done = True
                    return b""
                self._remaining = n
            data = reader.read1(min(size, self._remaining))
            if not data:
                raise ProtocolError("connection closed inside a chunk")
            self._remaining -= len(data)
            if self._remaining == 0:
                reader.readline(3)  # the CRLF after the chunk
            return data
        if self._remaining is None:
            data = reader.read1(size)
            if not data:
                self._done = True
            return data
        data = reader.read1(min(size, self._remaining))
        if not data:
            raise ProtocolError("connection closed before the end of the body")
        self._remaining -= len(data)
        if self._remaining == 0:
            self._done = True
        return data

    def read(self, limit: int | None = None) -> bytes:
        """The body (at most ``limit`` bytes); the connection is closed afterwards."""
        parts = []
        total = 0
        try:
            while limit is None or total < limit:
                data = self._read_some(1 << 16 if limit is None else min(1 << 16, limit - total))
                if not data:
                    break
                parts.append(data)
                total += len(data)
        finally:
            self.close()
        return b"".join(parts)

    def json(self) -> Any:
        return jsonwire.loads(self.read() or b"null")

    def iter_chunks(self, size: int = 1 << 16) -> Iterator[bytes]:
        try:
            while True:
                data = self._read_some(size)
                if not data:
                    return
                yield data
        finally:
            self.close()

    def iter_json(self) -> Iterator[Any]:
        """Decode a stream of concatenated JSON values (NDJSON or not)."""
        buf = ""
        pending = b""
        for chunk in self.iter_chunks():
            pending += chunk
            try:
                buf += pending.decode("utf-8")
                pending = b""
            except UnicodeDecodeError:
                continue  # a multi-byte character split across chunks
            while True:
                stripped = buf.lstrip()
                if not stripped:
                    buf = ""
                    break
                try:
                    value, end = jsonwire.raw_decode(stripped, 0)
                except ValueError:
                    buf = stripped  # a value cut short by the chunk: wait for the rest
                    break
                yield value
                buf = stripped[end:]
        rest = buf.strip()
        if rest:
            yield jsonwire.loads(rest)

    def close(self) -> None:
        try:
            self._reader.close()
        finally:
            self._conn.close()


class Client:
    def __init__(self, host: str | Endpoint, *, autostart: bool = False, stderr: TextIO | None = None) -> None:
        try:
            self.endpoint = host if isinstance(host, Endpoint) else Endpoint(host)
        except EndpointError as e:
            raise ValueError(str(e)) from None
        self.host = self.endpoint.host
        self.path = self.endpoint.path  # the unix socket's, "" for TCP
        self.tls = self.endpoint.tls is not None
        self.autostart = autostart and self.endpoint.scheme == "unix"
        self.stderr = stderr or sys.stderr

    def open_socket(self, timeout: float | None = None) -> _socket.socket:
        """A connected socket (TLS handshake done); ConnectionFailed when nobody answers or TLS fails."""
        try:
            # an EndpointError (a setting, not the daemon) goes up as is: docker prints it alone
            return self.endpoint.connect(timeout)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError, TimeoutError) as e:
            if self.autostart:
                self.autostart = False  # one attempt per invocation
                start_daemon(self, self.stderr)
                return self.open_socket(timeout)
            raise ConnectionFailed(self.host) from e
        except OSError as e:
            raise ConnectionFailed(self.host, _tls_failure(e)) from e

    def _connect(self, timeout: float | None = None) -> Connection:
        return Connection(self.open_socket(timeout))

    def ping(self, timeout: float = 2.0) -> bool:
        """GET /_ping without autostart; True when the daemon answers 200."""
        try:
            conn = Connection(self.endpoint.connect(timeout))
        except (OSError, EndpointError):
            return False
        try:
            conn.send("GET", "/_ping", {}, None, False)
            resp = conn.response("GET")
            resp.read()
            return resp.status == 200
        except (OSError, ProtocolError):
            return False
        finally:
            conn.close()

    def request(
        self,
        method: str,
        path: str,
        query: Query = None,
        *,
        body: Body = None,
        headers: dict[str, str] | None = None,
        chunked: bool = False,
        versioned: bool = True,
    ) -> Response:
        """Send one request; raise APIError for a status of 400 or more."""
        conn = self._connect()
        if versioned:
            target = api_path(path, query)
        else:
            q = _encode_query(query)
            target = path + ("?" + q if q else "")
        hdrs = {"User-Agent": "portside-cli/" + _version()}
        if headers:
            hdrs.update(headers)
        try:
            try:
                conn.send(method, target, hdrs, body, chunked)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the daemon stopped reading (it refused the upload): its answer says why
            resp = conn.response(method)
        except (OSError, ProtocolError) as e:
            conn.close()
            raise ConnectionFailed(self.host, _tls_failure(e) if isinstance(e, OSError) else "") from e
        if resp.status >= 400:
            raise _response_error(resp, target)
        return resp

    def get_json(self, path: str, query: Query = None) -> Any:
        return self.request("GET", path, query).json()

    def post_json(self, path: str, query: Query = None, payload: Any = None) -> Any:
        body = None if payload is None else jsonwire.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else None
        return self.request("POST", path, query, body=body, headers=headers).json()


def _version() -> str:
    from portside import __version__

    return __version__


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


def _response_error(r: Response, url: str) -> APIError:
    """moby's checkResponseErr: the JSON ``message``, else the body, else a description."""
    limit = 1 << 20
    try:
        data = r.read(limit + 1)
    except (OSError, ProtocolError):
        data = b""
    reason = _REASONS.get(r.status, str(r.status))
    if len(data) > limit:
        return APIError(
            r.status,
            f"request returned {reason} with a message (> {limit} bytes) for API route and version {url}, "
            "check if the server supports the requested API version",
        )
    if not data:
        return APIError(
            r.status,
            f"request returned {reason} for API route and version {url}, "
            "check if the server supports the requested API version",
        )
    if r.content_type == "application/json":
        try:
            message = str(jsonwire.loads(data).get("message", ""))
        except (ValueError, AttributeError):
            message = data.decode("utf-8", "replace")
    else:
        message = data.decode("utf-8", "replace")
    return APIError(r.status, message.strip())


# ---------------------------------------------------------------------------
# Starting the daemon on demand


def daemon_argv(host: str) -> list[str]:
    """The command that starts a daemon serving ``host`` (its data root is the daemon's default)."""
    return [sys.executable, "-m", "portside", "daemon", "--host", host]


def start_daemon(client: Client, stderr: TextIO) -> None:
    """Start ``portside daemon`` detached and wait until it answers /_ping.

    A lock next to the socket keeps two CLIs started at once from both
    launching a daemon: the second waits on the lock, then finds the first
    one's daemon answering.
    """
    import fcntl
    import subprocess

    run_dir = os.path.dirname(client.path) or "."
    try:
        os.makedirs(run_dir, exist_ok=True)
        lock = open(os.path.join(run_dir, ".autostart.lock"), "w")
    except OSError as e:
        raise ConnectionFailed(client.host) from e
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if client.ping():
            return
        log_path = DAEMON_LOG
        try:
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            log = open(log_path, "ab")
        except OSError as e:
            stderr.write(f"portside: cannot open {log_path}: {e.strerror}\n")
            raise ConnectionFailed(client.host) from e
        with log, open(os.devnull, "rb") as devnull:
            proc = subprocess.Popen(
                daemon_argv(client.host),
                stdin=devnull,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.monotonic() + AUTOSTART_TIMEOUT
        while time.monotonic() < deadline:
            if client.ping(timeout=1.0):
                stderr.write(f"portside: started the daemon (pid {proc.pid}, log {log_path})\n")
                return
            if proc.poll() is not None:
                stderr.write(
                    f"portside: the daemon exited with status {proc.returncode}; see {log_path}\n"
                )
                raise ConnectionFailed(client.host)
            time.sleep(0.05)
        stderr.write(f"portside: the daemon (pid {proc.pid}) did not answer in time; see {log_path}\n")
        raise ConnectionFailed(client.host)
