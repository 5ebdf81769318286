"""Relay a hijacked TLS connection to a plain socket, in one thread.

A hijacked stream (attach, exec) is full duplex: one side reads what the user
types while the other writes the container's output. Over a plain socket the
daemon hands the socket's descriptor to the monitor and the CLI pumps it in
two threads. Neither works over TLS: the monitor cannot speak TLS, and an
OpenSSL connection must not be read and written by two threads at once. So
the TLS side stays with one thread that runs ``relay``, which copies between
the TLS socket and one end of a ``socketpair``; the other end is handed out as
if it were the client's socket, with the same half-close semantics:

* end of the TLS input (close_notify, or the peer's TCP half-close as the
  docker CLI sends it) -> ``shutdown(SHUT_WR)`` of the plain end, after what
  was received is delivered;
* end of the plain input -> what is left is sent over TLS; then the daemon's
  relay returns (the container's output is over: the caller closes the
  connection), the CLI's half-closes the TCP connection (the user's stdin is
  over) and goes on relaying the output until the daemon closes.

``ssl`` is imported only by this module, which is imported only when TLS is
in use (the CLI's start-up, docs/cli-startup.md).
"""

from __future__ import annotations

import _socket
import select
import ssl

# One TLS record's worth of plaintext per send; also what a retried send must repeat.
CHUNK = 16 << 10
# Bytes buffered in each direction before the relay stops reading that side.
BUFFER_LIMIT = 256 << 10


def shutdown_write(tls: ssl.SSLSocket) -> None:
    """Half-close the TCP connection under ``tls`` and keep reading through TLS.

    ``SSLSocket.shutdown`` would drop the TLS state (later reads would return
    raw records); the docker CLI's CloseWrite on a TLS connection, too, shuts
    only the TCP write side.
    """
    try:
        _socket.socket.shutdown(tls, _socket.SHUT_WR)
    except OSError:
        pass


def relay(tls: ssl.SSLSocket, plain: _socket.socket, *, half_close: bool = False) -> None:
    """Copy both ways until the plain side's input ends (or either side fails); see the module docstring.

    ``half_close``: at the end of the plain input, shut the TCP write side and
    relay until the TLS input ends too. Both sockets are made non-blocking;
    neither is closed here.
    """
    tls.setblocking(False)
    plain.setblocking(False)
    to_plain = bytearray()  # received over TLS, not yet written to the plain end
    to_tls = bytearray()  # read from the plain end, not yet sent over TLS
    retry_len = 0  # a TLS send that wanted I/O must be repeated with the same length
    tls_in = plain_in = True  # still reading that side
    plain_shut = False  # its write side shut (TLS input ended)
    tls_shut = False  # the TCP write side shut (plain input ended, half_close)
    poller = select.poll()
    while True:
        progress = False
        tls_events = plain_events = 0
        # TLS -> plain
        if tls_in and len(to_plain) < BUFFER_LIMIT:
            try:
                data = tls.recv(CHUNK)
            except ssl.SSLWantReadError:
                tls_events |= select.POLLIN
            except ssl.SSLWantWriteError:
                tls_events |= select.POLLOUT
            except OSError:  # ssl.SSLError too: a reset, a bad record
                return
            else:
                progress = True
                if data:
                    to_plain += data
                else:
                    tls_in = False
        if to_plain:
            try:
                sent = plain.send(to_plain)
            except BlockingIOError:
                plain_events |= select.POLLOUT
            except OSError:  # the plain end no longer reads: drop the rest of the input
                to_plain.clear()
                tls_in = False
            else:
                del to_plain[:sent]
                progress = True
        if not tls_in and not to_plain and not plain_shut:
            plain_shut = True
            try:
                plain.shutdown(_socket.SHUT_WR)
            except OSError:
                pass
        # plain -> TLS
        if plain_in and len(to_tls) < BUFFER_LIMIT:
            try:
                data = plain.recv(CHUNK)
            except BlockingIOError:
                plain_events |= select.POLLIN
            except OSError:
                plain_in = False
            else:
                progress = True
                if data:
                    to_tls += data
                else:
                    plain_in = False
        if to_tls:
            length = retry_len or min(len(to_tls), CHUNK)
            try:
                sent = tls.send(to_tls[:length])
            except ssl.SSLWantWriteError:
                retry_len = length
                tls_events |= select.POLLOUT
            except ssl.SSLWantReadError:
                retry_len = length
                tls_events |= select.POLLIN
            except OSError:
                return
            else:
                retry_len = 0
                del to_tls[:sent]
                progress = True
        if not plain_in and not to_tls:
            if not half_close or (not tls_in and not to_plain):
                return
            if not tls_shut:
                tls_shut = True
                shutdown_write(tls)
        # Decrypted bytes OpenSSL holds are invisible to poll(): read them first, if there is room.
        if progress or (tls_in and len(to_plain) < BUFFER_LIMIT and tls.pending()):
            continue
        if not tls_events and not plain_events:
            return  # nothing to wait for (cannot happen; never block forever)
        for sock, events in ((tls, tls_events), (plain, plain_events)):
            try:
                poller.unregister(sock)
            except KeyError:
                pass
            if events:
                poller.register(sock, events)
        poller.poll()


def close_tls(tls: ssl.SSLSocket) -> None:
    """Send close_notify if the connection still takes it; never waits for the peer's."""
    try:
        tls.setblocking(False)
        tls.unwrap()
    except (OSError, ValueError):
        pass
