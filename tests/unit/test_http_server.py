"""The Engine API HTTP server over a real unix socket, driven by real clients."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portside.daemon.http import Body, Hijack, Request, Response, Server, StreamResponse
from portside.errors import InvalidArgument, NotFound

pytestmark = pytest.mark.timeout(60)

DEFAULT_HEADERS = [("Api-Version", "1.45"), ("Docker-Experimental", "false"), ("Ostype", "linux")]
MiB = 1 << 20


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class Harness:
    """A Server on a socket under tmp_path, serving in a thread; ``handler`` may be swapped."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = str(tmp_path / "run" / "portside.sock")
        self.handler: Callable[[Request], Response | StreamResponse | Hijack] = lambda r: Response.json({})
        self.server = Server(lambda r: self.handler(r), default_headers=DEFAULT_HEADERS)
        self.server.listen_unix(self.path, group=None)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def client(self) -> UnixHTTPConnection:
        return UnixHTTPConnection(self.path)

    def raw(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self.path)
        return sock

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        assert not self.thread.is_alive()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.stop()


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read up to the end of a response head; return (head, bytes read past it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"EOF before the end of the head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def read_to_eof(sock: socket.socket, already: bytes = b"") -> bytes:
    """Everything until the server closes.

    A server closing with unread request bytes makes Linux report ECONNRESET
    to the peer after the queued data: that counts as the end too.
    """
    data = already
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


# --- plain responses -----------------------------------------------------------


def test_json_get_has_body_length_and_default_headers(harness: Harness) -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response.json({"Path": request.path, "ünï": "côdé"})

    harness.handler = handler
    conn = harness.client()
    conn.request("GET", "/v1.45/images/a%20b/json?all=1&filters=&x=1&x=2", headers={"X-Thing": "a"})
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/json"
    assert resp.getheader("Content-Length") == str(len(body))
    assert resp.getheader("Api-Version") == "1.45"
    assert resp.getheader("Docker-Experimental") == "false"
    assert resp.getheader("Ostype") == "linux"
    assert body.endswith(b"}\n") and b" " not in body.replace(b"a b", b"")  # compact, newline-terminated
    assert json.loads(body) == {"Path": "/v1.45/images/a b/json", "ünï": "côdé"}
    request = seen[0]
    assert request.method == "GET"
    assert request.target == "/v1.45/images/a%20b/json?all=1&filters=&x=1&x=2"
    assert request.query == {"all": ["1"], "filters": [""], "x": ["1", "2"]}
    assert request.headers["x-thing"] == "a"
    assert request.headers["host"] == "localhost"


def test_repeated_headers_are_joined(harness: Harness) -> None:
    harness.handler = lambda r: Response.json(r.headers["x-dup"])
    sock = harness.raw()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Dup: a\r\nX-Dup: b\r\nConnection: close\r\n\r\n")
    assert read_to_eof(sock).endswith(b'"a, b"\n')


def test_handler_headers_override_defaults_and_framing_is_the_servers(harness: Harness) -> None:
    harness.handler = lambda r: Response(200, b"abc", [("Ostype", "plan9"), ("Content-Length", "999")])
    conn = harness.client()
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert resp.read() == b"abc"
    assert resp.getheader("Ostype") == "plan9"
    assert resp.getheader("Content-Length") == "3"


def test_keep_alive_serves_two_requests_on_one_connection(harness: Harness) -> None:
    threads: list[int] = []

    def handler(request: Request) -> Response:
        threads.append(threading.get_ident())
        return Response.json({"n": len(threads)})

    harness.handler = handler
    conn = harness.client()
    for n in (1, 2):
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        assert json.loads(resp.read()) == {"n": n}
        assert not resp.will_close
    assert threads[0] == threads[1]  # one connection, one thread


def test_no_body_statuses_have_no_content_length(harness: Harness) -> None:
    harness.handler = lambda r: Response(204 if r.path == "/a" else 304, b"ignored")
    conn = harness.client()
    for path, status in (("/a", 204), ("/b", 304), ("/a", 204)):
        conn.request("POST", path)
        resp = conn.getresponse()
        assert resp.status == status
        assert resp.read() == b""
        assert resp.getheader("Content-Length") is None


def test_head_sends_headers_but_no_body(harness: Harness) -> None:
    methods: list[str] = []

    def handler(request: Request) -> Response:
        methods.append(request.method)
        return Response.json({"OK": True})

    harness.handler = handler
    sock = harness.raw()
    sock.sendall(b"HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_to_eof(sock)
    first, _, second = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Length: 12" in first
    # The next bytes are the second response: nothing was sent for the HEAD body.
    assert second.startswith(b"HTTP/1.1 200 ")
    assert second.endswith(b'{"OK":true}\n')
    assert methods == ["HEAD", "GET"]


# --- request bodies ------------------------------------------------------------


def hashing_handler(request: Request) -> Response:
    digest, size = hashlib.sha256(), 0
    while chunk := request.body.read(256 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return Response.json({"sha256": digest.hexdigest(), "size": size})


def blob(size: int) -> bytes:
    return (hashlib.sha256(b"seed").digest() * (size // 32 + 1))[:size]


def test_post_with_content_length_50mib(harness: Harness) -> None:
    harness.handler = hashing_handler
    data = blob(50 * MiB)
    conn = harness.client()
    conn.request("POST", "/images/load", body=data, headers={"Content-Type": "application/x-tar"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert json.loads(resp.read()) == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_post_chunked_50mib(harness: Harness) -> None:
    harness.handler = hashing_handler
    data = blob(50 * MiB)
    pieces = (data[i : i + 100_000] for i in range(0, len(data), 100_000))
    conn = harness.client()
    conn.request("POST", "/build", body=pieces, encode_chunked=True)
    resp = conn.getresponse()
    assert json.loads(resp.read()) == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    # the connection is still good
    conn.request("POST", "/build", body=b"x")
    assert json.loads(conn.getresponse().read())["size"] == 1


def test_body_is_a_raw_io_object(harness: Harness) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))

    def handler(request: Request) -> Response:
        with tarfile.open(fileobj=io.BufferedReader(request.body), mode="r|") as tar:
            names = [m.name for m in tar]
        return Response.json(names)

    harness.handler = handler
    conn = harness.client()
    conn.request("POST", "/load", body=buf.getvalue())
    assert json.loads(conn.getresponse().read()) == ["hello.txt"]


def test_request_json_and_query_helpers(harness: Harness) -> None:
    def handler(request: Request) -> Response:
        return Response.json(
            {
                "body": request.json(),
                "flags": [request.flag(k) for k in ("a", "b", "c", "d", "e", "f", "g")],
                "absent": [request.flag("zz"), request.flag("zz", True)],
                "int": request.int_arg("n"),
                "int_default": request.int_arg("empty", 7),
                "filters": request.json_arg("filters"),
                "arg": request.arg("a"),
                "missing": request.arg("zz", "dflt"),
            }
        )

    harness.handler = handler
    conn = harness.client()
    target = "/x?a=&b=0&c=No&d=FALSE&e=none&f=True&g=1&n=-12&empty=&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"
    conn.request("POST", target, body=b'{"Image": "busybox"}', headers={"Content-Type": "application/json"})
    assert json.loads(conn.getresponse().read()) == {
        "body": {"Image": "busybox"},
        "flags": [False, False, False, False, False, True, True],
        "absent": [False, True],
        "int": -12,
        "int_default": 7,
        "filters": {"label": ["a=b"]},
        "arg": "",
        "missing": "dflt",
    }


@pytest.mark.parametrize(
    ("target", "body", "message"),
    [
        ("/x?n=1_000", b"", "invalid value for n"),
        ("/x?n=abc", b"", "invalid value for n"),
        ("/x?filters=%7Bnope", b"", "invalid JSON in query parameter filters"),
        ("/x", b'{"a": ', "invalid JSON"),
    ],
)
def test_bad_arguments_are_400(harness: Harness, target: str, body: bytes, message: str) -> None:
    def handler(request: Request) -> Response:
        request.int_arg("n")
        request.json_arg("filters")
        request.json()
        return Response.json("unreachable")

    harness.handler = handler
    conn = harness.client()
    conn.request("POST", target, body=body)
    resp = conn.getresponse()
    assert resp.status == 400
    assert json.loads(resp.read())["message"].startswith(message)


def test_expect_100_continue_is_answered_when_the_body_is_read(harness: Harness) -> None:
    harness.handler = hashing_handler
    sock = harness.raw()
    sock.sendall(b"POST /images/load HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    head, rest = read_head(sock)
    assert head == b"HTTP/1.1 100 Continue" and rest == b""
    sock.sendall(b"hello")
    head, body = read_head(sock)
    assert head.startswith(b"HTTP/1.1 200 ")
    while len(body) < int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
        body += sock.recv(4096)
    assert json.loads(body)["sha256"] == hashlib.sha256(b"hello").hexdigest()


def test_expect_100_continue_rejected_without_reading_closes(harness: Harness) -> None:
    def handler(request: Request) -> Response:
        raise InvalidArgument("no such thing")

    harness.handler = handler
    sock = harness.raw()
    sock.sendall(b"POST /load HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
    data = read_to_eof(sock)  # the server closes: the client never sent the body
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"100 Continue" not in data
    assert b"Connection: close" in data
    assert data.endswith(b'{"message":"no such thing"}\n')


def test_small_unread_body_is_drained_for_keep_alive(harness: Harness) -> None:
    harness.handler = lambda r: Response.json("ignored the body")
    conn = harness.client()
    for _ in range(2):
        conn.request("POST", "/containers/create", body=b"x" * 100_000)
        resp = conn.getresponse()
        assert json.loads(resp.read()) == "ignored the body"
        assert not resp.will_close


def test_large_unread_body_closes_the_connection(harness: Harness) -> None:
    harness.handler = lambda r: Response.json("nope", status=400)
    sock = harness.raw()

    def send() -> None:
        try:
            sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 1_000_000)
        except BrokenPipeError:
            pass  # the server answered and closed without reading the rest: expected

    sender = threading.Thread(target=send)
    sender.start()
    data = read_to_eof(sock)
    sender.join()
    assert data.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in data


def test_malformed_chunked_body_is_400(harness: Harness) -> None:
    harness.handler = hashing_handler
    sock = harness.raw()
    sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
    data = read_to_eof(sock)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"malformed request body" in data


# --- malformed requests and errors --------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"this is not http\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    ],
)
def test_malformed_request_is_400_and_closed(harness: Harness, raw: bytes) -> None:
    called: list[Request] = []
    harness.handler = lambda r: called.append(r) or Response.json({})
    sock = harness.raw()
    sock.sendall(raw)
    data = read_to_eof(sock)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in data and b"Api-Version: 1.45" in data
    assert b'"message":"malformed HTTP request' in data
    assert called == []


def test_handler_raising_not_found_is_404_json(harness: Harness) -> None:
    def handler(request: Request) -> Response:
        raise NotFound("No such image: busybox:latest")

    harness.handler = handler
    conn = harness.client()
    conn.request("GET", "/images/busybox/json")
    resp = conn.getresponse()
    assert resp.status == 404
    assert resp.getheader("Content-Type") == "application/json"
    assert resp.read() == b'{"message":"No such image: busybox:latest"}\n'
    assert resp.getheader("Api-Version") == "1.45"


def test_handler_raising_anything_else_is_500_and_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: Request) -> Response:
        raise RuntimeError("kaboom")

    harness.handler = handler
    conn = harness.client()
    with caplog.at_level(logging.ERROR, logger="portside.daemon.http"):
        conn.request("GET", "/x")
        resp = conn.getresponse()
        assert resp.status == 500
        assert json.loads(resp.read()) == {"message": "kaboom"}
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "GET /x" in record.getMessage() and "kaboom" in caplog.text
    # the connection survives a failed handler
    harness.handler = lambda r: Response.json("fine")
    conn.request("GET", "/x")
    assert json.loads(conn.getresponse().read()) == "fine"


# --- streams -----------------------------------------------------------------


def test_stream_headers_arrive_before_the_body_writer_runs(harness: Harness) -> None:
    headers_seen = threading.Event()
    writer_started = threading.Event()

    def write_body(write: Callable[[bytes], None]) -> None:
        writer_started.set()
        assert headers_seen.wait(10), "the client never saw the headers"
        write(b'{"StatusCode":0}\n')
        write(b"")  # empty writes are ignored, not an early end of the chunked body
        write(b"more\n")

    harness.handler = lambda r: StreamResponse(write_body, headers=[("Content-Type", "application/json")])
    conn = harness.client()
    conn.request("POST", "/containers/abc/wait")
    resp = conn.getresponse()  # returns once the head is in: the writer is still blocked
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Type") == "application/json"
    assert resp.getheader("Ostype") == "linux"
    headers_seen.set()
    assert writer_started.wait(10)
    assert resp.read() == b'{"StatusCode":0}\nmore\n'
    harness.handler = lambda r: Response.json({})
    conn.request("GET", "/again")  # keep-alive after a stream
    assert conn.getresponse().read() == b"{}\n"


def test_each_stream_write_is_sent_at_once(harness: Harness) -> None:
    gates = [threading.Event() for _ in range(3)]

    def write_body(write: Callable[[bytes], None]) -> None:
        for n, gate in enumerate(gates):
            write(f'{{"progress":{n}}}\n'.encode())
            assert gate.wait(10), "the client did not see the chunk"

    harness.handler = lambda r: StreamResponse(write_body)
    conn = harness.client()
    conn.request("POST", "/images/create?fromImage=busybox")
    resp = conn.getresponse()
    for n, gate in enumerate(gates):
        assert resp.readline() == f'{{"progress":{n}}}\n'.encode()
        gate.set()
    assert resp.read() == b""


def test_stream_that_fails_is_truncated(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    def write_body(write: Callable[[bytes], None]) -> None:
        write(b'{"status":"Downloading"}\n')
        raise RuntimeError("registry went away")

    harness.handler = lambda r: StreamResponse(write_body)
    conn = harness.client()
    conn.request("POST", "/images/create")
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    assert "registry went away" in caplog.text


def test_head_on_a_stream_does_not_run_the_writer(harness: Harness) -> None:
    ran: list[bool] = []
    harness.handler = lambda r: StreamResponse(lambda write: ran.append(True))
    sock = harness.raw()
    sock.sendall(b"HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_to_eof(sock)
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\n")
    assert ran == []


def test_stream_writer_sees_the_client_leave(harness: Harness) -> None:
    outcome: list[BaseException] = []
    done = threading.Event()

    def write_body(write: Callable[[bytes], None]) -> None:
        try:
            for _ in range(100_000):
                write(b"x" * 65536)
        except OSError as exc:
            outcome.append(exc)
            raise
        finally:
            done.set()

    harness.handler = lambda r: StreamResponse(write_body)
    conn = harness.client()
    conn.request("GET", "/events")
    resp = conn.getresponse()
    resp.read(10)
    conn.close()
    resp.close()
    assert done.wait(10)
    assert outcome and isinstance(outcome[0], OSError)


# --- hijack ------------------------------------------------------------------


def echo_until_eof(sock: socket.socket, already_read: bytes) -> None:
    received = already_read
    sock.sendall(already_read.upper())
    while chunk := sock.recv(65536):
        received += chunk
        sock.sendall(chunk.upper())
    sock.sendall(b"got " + str(len(received)).encode() + b" bytes: " + received[:20])


def test_hijack_with_upgrade_answers_101_and_streams_both_ways(harness: Harness) -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Hijack:
        seen.append(request)
        options = request.json()
        assert options == {"Detach": False, "Tty": True}
        return Hijack(echo_until_eof, content_type="application/vnd.docker.multiplexed-stream")

    harness.handler = handler
    sock = harness.raw()
    body = b'{"Detach":false,"Tty":true}'
    request = (
        b"POST /v1.45/exec/abc/start HTTP/1.1\r\nHost: api.moby.localhost\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    sock.sendall(request + b"early ")  # stream bytes right behind the request
    head, rest = read_head(sock)
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 101 UPGRADED"
    assert b"Content-Type: application/vnd.docker.multiplexed-stream" in lines
    assert b"Connection: Upgrade" in lines and b"Upgrade: tcp" in lines
    assert b"Api-Version: 1.45" in lines
    assert not any(line.lower().startswith((b"content-length", b"transfer-encoding")) for line in lines)
    echoed = rest
    while len(echoed) < len(b"EARLY "):
        echoed += sock.recv(100)
    assert echoed == b"EARLY "
    sock.sendall(b"hello")
    echoed = b""
    while len(echoed) < 5:
        echoed += sock.recv(100)
    assert echoed == b"HELLO"
    sock.shutdown(socket.SHUT_WR)  # half-close: the handler sees EOF, answers, and the server closes
    assert read_to_eof(sock) == b"got 11 bytes: early hello"
    assert seen[0].headers["upgrade"] == "tcp"


def test_hijack_without_upgrade_answers_200_raw(harness: Harness) -> None:
    def run(sock: socket.socket, already_read: bytes) -> None:
        sock.sendall(b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n")

    harness.handler = lambda r: Hijack(run)
    sock = harness.raw()
    sock.sendall(b"POST /containers/abc/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    head, rest = read_head(sock)
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Content-Type: application/vnd.docker.raw-stream" in lines
    assert not any(line.lower().startswith((b"content-length", b"transfer-encoding", b"upgrade")) for line in lines)
    assert read_to_eof(sock, rest) == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"


def test_hijack_handler_failure_closes_the_connection(harness: Harness) -> None:
    def run(sock: socket.socket, already_read: bytes) -> None:
        raise RuntimeError("container vanished")

    harness.handler = lambda r: Hijack(run)
    sock = harness.raw()
    sock.sendall(b"POST /containers/abc/attach HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
    assert read_to_eof(sock).startswith(b"HTTP/1.1 101 UPGRADED\r\n")


# --- the socket and its lifecycle ---------------------------------------------


def test_socket_mode_and_removal_on_shutdown(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    assert stat.S_ISSOCK(os.stat(h.path).st_mode)
    assert stat.S_IMODE(os.stat(h.path).st_mode) == 0o660
    assert stat.S_IMODE(os.stat(os.path.dirname(h.path)).st_mode) & 0o755 == 0o755
    h.stop()
    assert not os.path.exists(h.path)
    h.server.shutdown()  # idempotent


def test_custom_mode_and_missing_group(tmp_path: Path) -> None:
    server = Server(lambda r: Response.json({}))
    path = str(tmp_path / "s.sock")
    server.listen_unix(path, mode=0o600, group="no-such-group-portside-test")
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        server.shutdown()
    assert not os.path.exists(path)


def test_stale_socket_is_replaced_but_a_live_one_is_not(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays behind, nobody listens
    live = Server(lambda r: Response.json({}))
    live.listen_unix(path, group=None)
    try:
        with pytest.raises(OSError, match="another daemon is listening"):
            Server(lambda r: Response.json({})).listen_unix(path, group=None)
        assert os.path.exists(path)
    finally:
        live.shutdown()


def test_shutdown_with_a_connected_client_does_not_hang(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    idle = h.client()
    idle.request("GET", "/_ping")
    assert idle.getresponse().read() == b"{}\n"  # now idle in keep-alive
    busy_started, release = threading.Event(), threading.Event()

    def slow(request: Request) -> Response:
        busy_started.set()
        release.wait(10)
        return Response.json("finished")

    h.handler = slow
    busy = h.client()
    busy.request("GET", "/slow")
    assert busy_started.wait(10)
    never_spoke = h.raw()  # connected, never sends a byte
    h.stop()  # returns promptly: serve_forever has exited
    with pytest.raises(OSError):
        h.raw()
    # the idle keep-alive connections are closed (or, if the server had not
    # accepted it yet, reset with the listener) ...
    assert read_to_eof(never_spoke) == b""
    with pytest.raises(OSError):  # BrokenPipeError or http.client.RemoteDisconnected
        idle.request("GET", "/_ping")
        idle.getresponse()
    # ... the request in progress completes, then its connection closes
    release.set()
    resp = busy.getresponse()
    assert json.loads(resp.read()) == "finished"
    assert resp.will_close


def test_serve_forever_needs_a_socket() -> None:
    with pytest.raises(RuntimeError):
        Server(lambda r: Response.json({})).serve_forever()


def test_body_from_bytes() -> None:
    body = Body.from_bytes(b"hello world")
    assert body.read(5) == b"hello"
    assert body.read() == b" world"
    assert body.read(3) == b"" and body.finished
    assert Body.from_bytes(b"").read() == b""


def test_shutdown_from_a_signal_handler_stops_serve_forever(tmp_path: Path) -> None:
    import signal

    server = Server(lambda r: Response.json({}))
    path = str(tmp_path / "s.sock")
    server.listen_unix(path, group=None)
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: server.shutdown())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        server.serve_forever()  # in the main thread, blocked in accept() when the signal lands
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not os.path.exists(path)
