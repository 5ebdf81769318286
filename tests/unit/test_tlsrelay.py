"""streams/tlsrelay.py over a real TLS connection on loopback: both directions, half-close, hang-ups.

The daemon's relay (``half_close=False``) and the CLI's (``half_close=True``)
face each other as in a hijacked attach: a "container" echoes what comes up
transformed, after the client's input ends, which is the order that loses
output when half-close is wrong.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from portside.streams import tlsrelay
from tlscerts import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def contexts(pki: Pki) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.verify_mode = ssl.CERT_REQUIRED
    server.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    server.load_verify_locations(pki.ca)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    client.load_verify_locations(pki.ca)
    client.load_cert_chain(pki.client_cert, pki.client_key)
    return server, client


def read_all(sock: socket.socket) -> bytes:
    parts = []
    while data := sock.recv(1 << 16):
        parts.append(data)
    return b"".join(parts)


class Pair:
    """A TLS connection whose two ends are relayed to plain sockets: ``container`` and ``user``."""

    def __init__(self, pki: Pki) -> None:
        server_ctx, client_ctx = contexts(pki)
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        accepted: list[ssl.SSLSocket] = []
        t = threading.Thread(target=lambda: accepted.append(server_ctx.wrap_socket(listener.accept()[0],
                                                                                      server_side=True)))
        t.start()
        client_tls = client_ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                                            server_hostname="127.0.0.1")
        t.join(10)
        listener.close()
        server_tls = accepted[0]
        self.container, daemon_end = socket.socketpair()
        self.user, cli_end = socket.socketpair()
        self.threads = [
            threading.Thread(target=self._run, args=(server_tls, daemon_end, False), daemon=True),
            threading.Thread(target=self._run, args=(client_tls, cli_end, True), daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _run(tls: ssl.SSLSocket, plain: socket.socket, half_close: bool) -> None:
        try:
            tlsrelay.relay(tls, plain, half_close=half_close)
            if not half_close:
                tlsrelay.close_tls(tls)
        finally:
            plain.close()
            tls.close()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(20)
            assert not thread.is_alive()


@pytest.fixture
def pair(pki: Pki) -> Iterator[Pair]:
    p = Pair(pki)
    yield p
    p.container.close()
    p.user.close()


def test_output_after_the_end_of_input_arrives(pair: Pair) -> None:
    data = os.urandom(3 << 20)

    def container() -> None:  # md5sum: reads stdin to its end, then answers
        got = read_all(pair.container)
        pair.container.sendall(hashlib.md5(got).hexdigest().encode() + b"\n" + got[:1000])
        pair.container.close()

    threading.Thread(target=container, daemon=True).start()
    threading.Thread(target=lambda: (pair.user.sendall(data), pair.user.shutdown(socket.SHUT_WR)),
                     daemon=True).start()
    out = read_all(pair.user)
    assert out == hashlib.md5(data).hexdigest().encode() + b"\n" + data[:1000]
    pair.join()


def test_large_output_with_no_input(pair: Pair) -> None:
    data = os.urandom(5 << 20)
    pair.user.shutdown(socket.SHUT_WR)  # docker: no stdin attached, write side shut at once
    assert read_all(pair.container) == b""  # the container sees end of input
    threading.Thread(target=lambda: (pair.container.sendall(data), pair.container.close()), daemon=True).start()
    assert read_all(pair.user) == data
    pair.join()


def test_interleaved_both_ways(pair: Pair) -> None:
    for i in range(50):
        line = f"line {i}\n".encode() * 100
        pair.user.sendall(line)
        got = b""
        while len(got) < len(line):
            got += pair.container.recv(1 << 16)
        pair.container.sendall(got.upper())
        back = b""
        while len(back) < len(line):
            back += pair.user.recv(1 << 16)
        assert back == line.upper()
    pair.user.close()
    assert read_all(pair.container) == b""
    pair.container.close()
    pair.join()


def test_the_user_hanging_up_ends_both_relays(pair: Pair) -> None:
    pair.container.sendall(b"x" * 100000)
    pair.user.close()  # the CLI was killed mid-stream
    # the container's side ends: end of input, or a reset when output was left unread (as when a
    # unix-socket client closes with output unread)
    try:
        assert read_all(pair.container) == b""
    except ConnectionResetError:
        pass
    pair.container.close()
    pair.join()
