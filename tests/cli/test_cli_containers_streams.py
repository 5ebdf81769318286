"""The attach plumbing of the CLI, over real unix sockets and pipes, without a daemon.

A tiny HTTP server in a thread plays the daemon's side of a hijacked
connection: it answers ``101 UPGRADED`` (with the first stream bytes in the
same packet as the head), then echoes what the client sends as stdout
frames, and ends when the client half-closes. The detach-key proxy, the
signal relay and the ``since``/``until`` timestamps are pure and tested with
bytes and numbers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from portside.cli.client import APIError, Client
from portside.cli.commands.containers import api_timestamp
from portside.cli.hijack import Streamer, hijack, raw_request
from portside.cli.tty import EscapeProxy, SignalRelay, detach_keys, signal_name
from portside.streams.stdcopy import STDERR, STDOUT, SYSTEMERR, frame

Handler = Callable[[socket.socket, bytes], None]


class Server:
    """One-connection-at-a-time HTTP server on a unix socket; ``handler(conn, request_head)``."""

    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.requests: list[bytes] = []
        self.bodies: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(1)  # byte by byte: never read past the head
            if not data:
                conn.close()
                return
            head += data
        self.requests.append(head)
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = b""
        while len(body) < length:
            body += conn.recv(length - len(body))
        self.bodies.append(body)
        try:
            self.handler(conn, head)
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], tuple[Server, Client]]]:
    base = tempfile.mkdtemp(prefix="ps-hijack-")
    servers: list[Server] = []

    def start(handler: Handler) -> tuple[Server, Client]:
        server = Server(os.path.join(base, f"s{len(servers)}.sock"), handler)
        servers.append(server)
        return server, Client("unix://" + server.path)

    yield start
    for s in servers:
        s.close()
    for name in os.listdir(base):
        os.unlink(os.path.join(base, name))
    os.rmdir(base)


UPGRADED = (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")


def echo_framed(conn: socket.socket, head: bytes) -> None:
    """The daemon's side of a non-TTY attach with stdin: echo as stdout, a word on stderr, bye at EOF."""
    conn.sendall(UPGRADED + frame(STDOUT, b"early\n"))  # stream bytes in the same packet as the head
    conn.sendall(frame(STDERR, b"to stderr\n"))
    while data := conn.recv(4096):
        conn.sendall(frame(STDOUT, data))
    conn.sendall(frame(STDOUT, b"bye\n"))


def collect() -> tuple[list[bytes], Callable[[bytes], None]]:
    parts: list[bytes] = []
    return parts, parts.append


def test_hijack_pumps_both_ways_and_half_closes_at_eof(serve: Any) -> None:
    server, client = serve(echo_framed)
    conn = hijack(client, "/containers/abc/attach", [("stderr", "1"), ("stdin", "1"), ("stdout", "1"), ("stream", "1")])
    assert conn.content_type == "application/vnd.docker.multiplexed-stream"
    r, w = os.pipe()
    os.write(w, b"hello\n")
    os.close(w)  # stdin at EOF: the client must half-close, the server then says bye
    out, write_out = collect()
    err, write_err = collect()
    streamer = Streamer(conn, tty=False, stdin_fd=r, stdout=write_out, stderr=write_err).start()
    assert streamer.wait(10)
    os.close(r)
    assert b"".join(out) == b"early\nhello\nbye\n"
    assert b"".join(err) == b"to stderr\n"
    assert streamer.result.error == "" and not streamer.result.detached

    head = server.requests[0].decode()
    lines = head.split("\r\n")
    assert lines[0] == "POST /v1.45/containers/abc/attach?stderr=1&stdin=1&stdout=1&stream=1 HTTP/1.1"
    assert "Connection: Upgrade" in lines and "Upgrade: tcp" in lines


def test_hijack_tty_stream_is_raw(serve: Any) -> None:
    def raw_echo(conn: socket.socket, head: bytes) -> None:
        conn.sendall(UPGRADED.replace(b"multiplexed", b"raw") + b"$ ")
        while data := conn.recv(4096):
            conn.sendall(data.upper())

    server, client = serve(raw_echo)
    conn = hijack(client, "/exec/e1/start", None, {"Detach": False, "Tty": True})
    r, w = os.pipe()
    os.write(w, b"ls\r")
    os.close(w)
    out, write_out = collect()
    streamer = Streamer(conn, tty=True, stdin_fd=r, stdout=write_out, stderr=write_out).start()
    assert streamer.wait(10)
    os.close(r)
    assert b"".join(out) == b"$ LS\r"
    assert json.loads(server.bodies[0]) == {"Detach": False, "Tty": True}


def test_hijack_sends_json_body(serve: Any) -> None:
    server, client = serve(lambda conn, head: conn.sendall(UPGRADED))
    hijack(client, "/exec/e1/start", None, {"Detach": False, "Tty": False}).close()
    assert json.loads(server.bodies[0]) == {"Detach": False, "Tty": False}
    assert b"Content-Type: application/json" in server.requests[0]


def test_hijack_without_stdin_closes_the_write_side_at_once(serve: Any) -> None:
    def wait_for_eof(conn: socket.socket, head: bytes) -> None:
        conn.sendall(UPGRADED)
        assert conn.recv(10) == b""  # docker's CLI half-closes when it has no stdin to send
        conn.sendall(frame(STDOUT, b"done\n"))

    _, client = serve(wait_for_eof)
    out, write_out = collect()
    streamer = Streamer(hijack(client, "/containers/c/attach"), tty=False, stdin_fd=None,
                        stdout=write_out, stderr=write_out).start()
    assert streamer.wait(10)
    assert b"".join(out) == b"done\n"


def test_hijack_error_answer_is_an_api_error(serve: Any) -> None:
    def refuse(conn: socket.socket, head: bytes) -> None:
        body = b'{"message":"No such container: nope"}'
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))

    _, client = serve(refuse)
    with pytest.raises(APIError) as e:
        hijack(client, "/containers/nope/attach")
    assert str(e.value) == "Error response from daemon: No such container: nope"
    assert e.value.status == 404


def test_system_error_frame_ends_the_stream(serve: Any) -> None:
    def fail(conn: socket.socket, head: bytes) -> None:
        conn.sendall(UPGRADED + frame(STDOUT, b"partial") + frame(SYSTEMERR, b"container exploded"))
        time.sleep(0.5)

    _, client = serve(fail)
    out, write_out = collect()
    streamer = Streamer(hijack(client, "/containers/c/attach"), tty=False, stdin_fd=None,
                        stdout=write_out, stderr=write_out).start()
    assert streamer.wait(10)
    assert b"".join(out) == b"partial"
    assert streamer.result.error == "error from daemon in stream: container exploded"


def test_detach_keys_end_the_session(serve: Any) -> None:
    received: list[bytes] = []

    def keep(conn: socket.socket, head: bytes) -> None:
        conn.sendall(UPGRADED)
        while data := conn.recv(4096):
            received.append(data)

    _, client = serve(keep)
    r, w = os.pipe()
    os.write(w, b"ab\x10c\x10\x11never sent")  # ctrl-p c is no detach; ctrl-p ctrl-q is
    out, write_out = collect()
    streamer = Streamer(hijack(client, "/containers/c/attach"), tty=True, stdin_fd=r, stdout=write_out,
                        stderr=write_out, escape=EscapeProxy(detach_keys("ctrl-p,ctrl-q"))).start()
    assert streamer.wait(10)
    assert streamer.result.detached
    streamer.close()
    os.close(w)
    os.close(r)
    deadline = time.monotonic() + 5
    while b"".join(received) != b"ab\x10c" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b"".join(received) == b"ab\x10c"


def test_wait_request_answers_headers_first_and_body_later(serve: Any) -> None:
    release = threading.Event()

    def wait(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        release.wait(10)
        body = b'{"StatusCode":3,"Error":null}\n'
        conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))

    _, client = serve(wait)
    resp = raw_request(client, "POST", "/containers/c/wait", [("condition", "next-exit")])
    assert resp.status == 200  # returned on the head alone
    release.set()
    assert json.loads(resp.read_body()) == {"StatusCode": 3, "Error": None}
    resp.close()


def test_closing_a_pending_wait_does_not_block(serve: Any) -> None:
    def never(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.recv(1)  # until the client goes away

    _, client = serve(never)
    resp = raw_request(client, "POST", "/containers/c/wait")
    errors: list[Exception] = []

    def read() -> None:
        try:
            resp.read_body()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.1)
    started = time.monotonic()
    resp.close()  # run -d drops its wait: this must not wait for the body
    reader.join(5)
    assert not reader.is_alive()
    assert time.monotonic() - started < 2


# ---------------------------------------------------------------------------
# Pure pieces


@pytest.mark.parametrize(
    ("keys", "chunks", "sent", "detached"),
    [
        (b"\x10\x11", [b"abc"], b"abc", False),
        (b"\x10\x11", [b"a\x10\x11b"], b"a", True),
        (b"\x10\x11", [b"a\x10", b"\x11"], b"a", True),  # the sequence split over two reads
        (b"\x10\x11", [b"a\x10", b"b"], b"a\x10b", False),  # held back, then let through
        (b"\x10\x11", [b"\x10\x10\x11"], b"\x10", True),  # a repeated first key still starts a sequence
        (b"x", [b"abxcd"], b"ab", True),
        (b"", [b"\x10\x11"], b"\x10\x11", False),
    ],
)
def test_escape_proxy(keys: bytes, chunks: list[bytes], sent: bytes, detached: bool) -> None:
    proxy = EscapeProxy(keys)
    out = b""
    done = False
    for chunk in chunks:
        data, done = proxy.feed(chunk)
        out += data
        if done:
            break
    assert (out, done) == (sent, detached)


def test_detach_keys_spec() -> None:
    assert detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert detach_keys("ctrl-@,a,DEL,ctrl-_") == b"\x00a\x7f\x1f"
    with pytest.raises(ValueError, match="Unknown character: 'bogus'"):
        detach_keys("bogus")


def test_signal_names() -> None:
    assert signal_name(signal.SIGTERM) == "TERM"
    assert signal_name(signal.SIGINT) == "INT"
    assert signal_name(signal.SIGRTMIN + 3) == "RTMIN+3"


def test_signal_relay_runs_the_callback_in_a_thread() -> None:
    seen: list[tuple[int, str]] = []
    got = threading.Event()

    def callback(signum: int) -> None:
        seen.append((signum, threading.current_thread().name))
        got.set()

    before = signal.getsignal(signal.SIGUSR1)
    with SignalRelay([signal.SIGUSR1], callback):
        os.kill(os.getpid(), signal.SIGUSR1)
        assert got.wait(5)
    assert seen == [(signal.SIGUSR1, "signal-relay")]
    assert signal.getsignal(signal.SIGUSR1) == before


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("10m", "1699999400"),
        ("1h30m", "1699994600"),
        ("1700000000", "1700000000"),
        ("1700000000.5", "1700000000.5"),
        ("2023-11-14T22:13:20Z", "1700000000.000000000"),
        ("2023-11-14T22:13:20.25Z", "1700000000.250000000"),
        ("2023-11-14T23:13:20+01:00", "1700000000.000000000"),
    ],
)
def test_logs_since_until_as_the_client_sends_them(value: str, sent: str) -> None:
    assert api_timestamp(value, "since", now=1_700_000_000.0) == sent
