"""The embedded DNS server of a user-defined network, as Docker's (libnetwork ``resolver.go``).

One :class:`DnsServer` per network listens on the bridge's gateway address,
UDP and TCP. It answers what the network knows (``lookup``: a name → the
IPv4 addresses of the containers so named, aliased or id'd; ``reverse``: an
address → the name for PTR) and forwards every other question to the host's
resolvers, relaying their answer under the client's id; with no resolver it
answers SERVFAIL.

One thread runs a selector loop over the listening sockets, the TCP clients
and the queries in flight upstream, so a slow upstream holds up nothing
else. The work is bounded: one question per message, at most
``max_pending`` queries upstream, ``max_clients`` TCP clients, each with a
bounded buffer and an idle timeout. ``lookup`` and ``reverse`` run on that
thread: they must be quick and thread-safe, and whatever they raise becomes
SERVFAIL, never the end of the loop.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import secrets
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from portside.network import dnsmsg, resolvconf
from portside.network.dnsmsg import FormatError, Message, Record

log = logging.getLogger(__name__)

_IP_FREEBIND = 15           # linux/in.h: bind before the bridge has its address
_TCP_BUFFER = 2 + dnsmsg.TCP_MAX
_TCP_OUT_MAX = 256 * 1024   # a client that does not read its answers is dropped
_UDP_BATCH = 64             # datagrams read per wakeup before the loop looks at anything else


def _nobody(name: str) -> list[str]:
    return []


def _no_name(address: str) -> str | None:
    return None


def parse_upstream(text: str) -> tuple[str, int]:
    """``"10.0.0.2"``, ``"10.0.0.2:5353"``, ``"::1"`` or ``"[::1]:5353"`` → (address, port)."""
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest.removeprefix(":"))
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, port


class _Client:
    """A TCP client: its socket, what it sent that is not a whole message yet, what waits to be sent."""

    def __init__(self, sock: socket.socket, address: str, now: float) -> None:
        self.sock = sock
        self.address = address
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.idle_since = now
        self.waiting = 0            # its queries still upstream
        self.closed = False


@dataclass
class _Pending:
    """A query sent upstream on its own socket (a fresh port and id: hard to spoof an answer to)."""

    query: Message
    raw: bytes                          # the client's message, sent on with our id
    reply: Callable[[bytes], None]      # delivers an answer to the client
    limit: int                          # the client's size limit
    tcp_client: _Client | None
    upstreams: list[tuple[str, int]]    # still to try, in order
    sock: socket.socket | None = None
    id: int = 0
    deadline: float = 0.0
    over_tcp: bool = False
    tcp_out: bytearray = field(default_factory=bytearray)
    tcp_in: bytearray = field(default_factory=bytearray)


class DnsServer:
    """An embedded DNS server; :meth:`start` binds and serves on a thread, :meth:`close` stops it."""

    def __init__(self, address: str, port: int = 53, lookup: Callable[[str], list[str]] = _nobody,
                 reverse: Callable[[str], str | None] = _no_name, upstreams: Iterable[str] = (), *,
                 domains: Sequence[str] = (), timeout: float = 2.0, max_pending: int = 256,
                 max_clients: int = 64, tcp_idle: float = 10.0,
                 client_upstreams: Callable[[str], Sequence[str]] | None = None) -> None:
        self.address = address
        self.port = port
        self.lookup = lookup
        self.reverse = reverse
        # suffixes under which the network's names are answered too: the network's name (Docker answers
        # web.mynet), and the search domains its containers get, since some resolvers (busybox nslookup)
        # ask for web.<search domain> and never for web alone
        self.domains = tuple(d.strip(".").lower() for d in domains if d.strip("."))
        # a client address → that container's --dns servers (Docker forwards per container); empty: the network's
        self.client_upstreams = client_upstreams
        self.timeout = timeout
        self.max_pending = max_pending
        self.max_clients = max(1, max_clients)
        self.tcp_idle = tcp_idle    # seconds a TCP client may stay silent (RFC 7766: seconds, not minutes)
        self._upstreams: list[tuple[str, int]] = []
        self.set_upstreams(upstreams)
        self._selector = selectors.DefaultSelector()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._clients: dict[int, _Client] = {}         # by fd; loop thread only
        self._pending: dict[int, _Pending] = {}        # by fd of the upstream socket; loop thread only
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def set_upstreams(self, upstreams: Iterable[str]) -> None:
        """Where to forward from now on; our own address is left out (it would forward to itself).

        An entry that is no address (a host name, a bad port) is
        left out too: one odd line must not cost the network its names.
        """
        parsed = []
        for text in upstreams:
            try:
                parsed.append(parse_upstream(text))
            except ValueError:
                log.warning("dns %s: upstream %r is not an address[:port], left out", self.address, text)
        self._upstreams = [u for u in parsed if u != (self.address, self.port)]

    def start(self) -> None:
        """Bind UDP and TCP on (address, port) and serve; OSError (e.g. EADDRINUSE) when binding fails."""
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        udp = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        tcp = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            for s in (udp, tcp):
                s.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)  # shared by IPv6 sockets
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            udp.bind((self.address, self.port))
            if self.port == 0:
                self.port = udp.getsockname()[1]   # tests: the kernel's pick, TCP on the same number
            tcp.bind((self.address, self.port))
            tcp.listen(64)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        self._udp, self._tcp = udp, tcp
        self._wake_r.setblocking(False)
        self._selector.register(udp, selectors.EVENT_READ, self._on_udp)
        self._selector.register(tcp, selectors.EVENT_READ, self._on_accept)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name=f"dns {self.address}:{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close every socket; returns once the loop has ended. Idempotent."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        for p in list(self._pending.values()):
            self._drop_pending(p)
        for c in list(self._clients.values()):
            self._close_client(c)
        for s in (self._udp, self._tcp):
            if s is not None:
                s.close()
        self._udp = self._tcp = None
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> DnsServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- the loop --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                events = self._selector.select(self._next_timeout())
                for key, mask in events:
                    if self._stop.is_set():
                        return
                    if key.data is None:
                        self._wake_r.recv(64)
                        continue
                    key.data(key.fileobj, mask)
                self._expire(time.monotonic())
            except Exception:  # a bug must not take name resolution down with it
                log.exception("dns %s:%d: loop error", self.address, self.port)
                time.sleep(0.01)

    def _next_timeout(self) -> float:
        now = time.monotonic()
        soonest = now + 1.0
        for p in self._pending.values():
            soonest = min(soonest, p.deadline)
        for c in self._clients.values():
            soonest = min(soonest, c.idle_since + self.tcp_idle)
        return max(0.0, soonest - now)

    def _expire(self, now: float) -> None:
        for p in [p for p in self._pending.values() if p.deadline <= now]:
            log.debug("dns %s: upstream timed out", self.address)
            self._next_upstream(p)
        for c in list(self._clients.values()):
            if c.idle_since + self.tcp_idle <= now and not c.outbox and not c.waiting:
                self._close_client(c)

    # --- UDP -------------------------------------------------------------------------------------------------

    def _on_udp(self, sock: socket.socket, mask: int) -> None:
        for _ in range(_UDP_BATCH):
            try:
                data, peer = sock.recvfrom(dnsmsg.TCP_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. ICMP errors surfacing on the socket
                log.debug("dns %s: udp recv: %s", self.address, e)
                return

            def reply(answer: bytes, peer: tuple[str, int] = peer) -> None:
                try:
                    sock.sendto(answer, peer)
                except OSError as e:
                    log.debug("dns %s: udp send to %s: %s", self.address, peer, e)

            self._handle(data, reply, client=peer[0], tcp_client=None)

    # --- TCP clients -----------------------------------------------------------------------------------------

    def _on_accept(self, sock: socket.socket, mask: int) -> None:
        try:
            conn, peer = sock.accept()
        except OSError:
            return
        if len(self._clients) >= self.max_clients:
            # the one idle longest makes room: a flood of silent connections cannot lock clients out
            oldest = min(self._clients.values(), key=lambda c: c.idle_since)
            self._close_client(oldest)
        conn.setblocking(False)
        client = _Client(conn, peer[0], time.monotonic())
        self._clients[conn.fileno()] = client
        self._selector.register(conn, selectors.EVENT_READ, lambda s, m: self._on_client(client, m))

    def _on_client(self, client: _Client, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush(client)
        if client.closed or not mask & selectors.EVENT_READ:
            return
        try:
            chunk = client.sock.recv(_TCP_BUFFER - len(client.inbox))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close_client(client)
            return
        client.idle_since = time.monotonic()
        client.inbox += chunk
        while len(client.inbox) >= 2 and not client.closed:
            (length,) = struct.unpack_from("!H", client.inbox)
            if len(client.inbox) < 2 + length:
                break
            data = bytes(client.inbox[2:2 + length])
            del client.inbox[:2 + length]

            def reply(answer: bytes, client: _Client = client) -> None:
                self._send_tcp(client, answer)

            self._handle(data, reply, client=client.address, tcp_client=client)

    def _send_tcp(self, client: _Client, answer: bytes) -> None:
        if client.closed:
            return
        client.outbox += struct.pack("!H", len(answer)) + answer
        if len(client.outbox) > _TCP_OUT_MAX:
            self._close_client(client)
            return
        self._flush(client)

    def _flush(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.outbox) if client.outbox else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close_client(client)
            return
        del client.outbox[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbox else 0)
        self._selector.modify(client.sock, events, self._selector.get_key(client.sock).data)

    def _close_client(self, client: _Client) -> None:
        if client.closed:
            return
        client.closed = True
        self._clients.pop(client.sock.fileno(), None)
        try:
            self._selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()

    # --- answering -------------------------------------------------------------------------------------------

    def _handle(self, untrusted: bytes, reply: Callable[[bytes], None], *, client: str,
                tcp_client: _Client | None) -> None:
        try:
            id, flags = dnsmsg.header(untrusted)[:2]
        except FormatError:
            return                                  # not even a header: nobody to answer
        if flags & dnsmsg.QR:
            return                                  # an answer sent to us: answering it could loop
        try:
            query = dnsmsg.parse(untrusted)
        except FormatError as e:
            log.debug("dns %s: malformed query: %s", self.address, e)
            reply(dnsmsg.error(id, flags, dnsmsg.FORMERR))
            return
        limit = query.udp_limit() if tcp_client is None else dnsmsg.TCP_MAX
        if query.opcode != 0:
            reply(dnsmsg.response(query, dnsmsg.NOTIMP, limit=limit))
            return
        try:
            local = self._answer(query)
        except Exception:
            log.exception("dns %s: lookup failed", self.address)
            reply(dnsmsg.response(query, dnsmsg.SERVFAIL, limit=limit))
            return
        if local is not None:
            reply(dnsmsg.response(query, dnsmsg.NOERROR, local, limit=limit))
            return
        self._forward(query, untrusted, reply, limit, client, tcp_client)

    def _answer(self, query: Message) -> list[Record] | None:
        """The answers for a name this network knows, None to forward."""
        q = query.question
        name = q.name
        if q.qclass != dnsmsg.CLASS_IN or not name:
            return None
        if q.qtype == dnsmsg.TYPE_PTR:
            address = dnsmsg.reverse_address(name)
            target = self.reverse(address) if address else None
            return [Record.ptr(target)] if target else None
        addresses = self._lookup(name)
        if not addresses:
            return None
        if q.qtype not in (dnsmsg.TYPE_A, dnsmsg.TYPE_ANY):
            return []                               # the name exists, without records of that type
        records = []
        for address in addresses:
            try:
                records.append(Record.a(address))
            except ValueError:                      # an IPv6 or bad entry from lookup: not an A record
                continue
        return records

    def _lookup(self, name: str) -> list[str]:
        found = self.lookup(name)
        if found:
            return found
        for domain in self.domains:
            if name.endswith("." + domain):
                found = self.lookup(name[:-len(domain) - 1])
                if found:
                    return found
        return []

    # --- forwarding ------------------------------------------------------------------------------------------

    def _forward(self, query: Message, raw: bytes, reply: Callable[[bytes], None], limit: int, client: str,
                 tcp_client: _Client | None) -> None:
        upstreams = self._upstreams_of(client)
        if not upstreams or len(self._pending) >= self.max_pending:
            reply(dnsmsg.response(query, dnsmsg.SERVFAIL, limit=limit))
            return
        pending = _Pending(query, raw, reply, limit, tcp_client, upstreams)
        if tcp_client is not None:
            tcp_client.waiting += 1
        self._next_upstream(pending)

    def _upstreams_of(self, client: str) -> list[tuple[str, int]]:
        """The client container's own ``--dns`` servers if it has any, else the network's."""
        try:
            own = self.client_upstreams(client) if self.client_upstreams is not None else None
        except Exception:
            log.exception("dns %s: upstreams of %s", self.address, client)
            own = None
        if not own:
            return list(self._upstreams)
        parsed = []
        for text in own:
            try:
                parsed.append(parse_upstream(text))
            except ValueError:
                continue
        return [u for u in parsed if u != (self.address, self.port)]

    def _next_upstream(self, p: _Pending) -> None:
        """Ask the next upstream (UDP), or answer SERVFAIL when none is left."""
        self._drop_pending(p)
        while p.upstreams:
            host, port = p.upstreams.pop(0)
            if self._send_upstream(p, host, port, over_tcp=False):
                return
        self._finish(p, dnsmsg.response(p.query, dnsmsg.SERVFAIL, limit=p.limit))

    def _send_upstream(self, p: _Pending, host: str, port: int, *, over_tcp: bool) -> bool:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        kind = socket.SOCK_STREAM if over_tcp else socket.SOCK_DGRAM
        sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        p.id = secrets.randbelow(0x10000)
        message = dnsmsg.with_id(p.raw, p.id)
        try:
            if over_tcp:
                code = sock.connect_ex((host, port))
                if code not in (0, errno.EINPROGRESS):
                    raise OSError(code, os.strerror(code))
                p.tcp_out = bytearray(struct.pack("!H", len(message)) + message)
                p.tcp_in = bytearray()
                events = selectors.EVENT_WRITE
            else:
                sock.connect((host, port))          # a connected socket takes answers from that peer only
                sock.send(message)
                events = selectors.EVENT_READ
        except OSError as e:
            log.debug("dns %s: upstream %s:%d: %s", self.address, host, port, e)
            sock.close()
            return False
        p.sock, p.over_tcp = sock, over_tcp
        p.deadline = time.monotonic() + self.timeout
        self._pending[sock.fileno()] = p
        self._selector.register(sock, events, lambda s, m: self._on_upstream(p, (host, port), m))
        return True

    def _on_upstream(self, p: _Pending, upstream: tuple[str, int], mask: int) -> None:
        if p.sock is None:
            return
        if p.over_tcp:
            answer = self._upstream_tcp(p, mask)
            if answer is None:
                return
        else:
            try:
                answer = p.sock.recv(dnsmsg.TCP_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:                    # ICMP port unreachable: that upstream is down
                log.debug("dns %s: upstream %s: %s", self.address, upstream, e)
                self._next_upstream(p)
                return
        try:
            checked = dnsmsg.parse(answer)
        except FormatError as e:
            log.debug("dns %s: malformed answer from %s: %s", self.address, upstream, e)
            checked = None
        if checked is None or checked.id != p.id or not checked.flags & dnsmsg.QR \
                or not checked.question.same(p.query.question):
            if not p.over_tcp:
                return                              # not the answer: keep waiting for it until the deadline
            self._next_upstream(p)
            return
        if checked.flags & dnsmsg.TC and not p.over_tcp and p.tcp_client is not None:
            # the client asked over TCP: it should get the whole answer, so ask that upstream over TCP
            self._drop_pending(p)
            if self._send_upstream(p, *upstream, over_tcp=True):
                return
        self._finish(p, dnsmsg.truncate(dnsmsg.with_id(answer, p.query.id), p.limit))

    def _upstream_tcp(self, p: _Pending, mask: int) -> bytes | None:
        """Advance a TCP exchange with an upstream; the answer once whole, None meanwhile (or on failure)."""
        assert p.sock is not None
        try:
            if p.tcp_out:
                sent = p.sock.send(p.tcp_out)
                del p.tcp_out[:sent]
                if not p.tcp_out:
                    self._selector.modify(p.sock, selectors.EVENT_READ, self._selector.get_key(p.sock).data)
                return None
            chunk = p.sock.recv(_TCP_BUFFER - len(p.tcp_in))
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            chunk = b""
        if not chunk:
            self._next_upstream(p)
            return None
        p.tcp_in += chunk
        if len(p.tcp_in) >= 2:
            (length,) = struct.unpack_from("!H", p.tcp_in)
            if len(p.tcp_in) >= 2 + length:
                return bytes(p.tcp_in[2:2 + length])
        return None

    def _drop_pending(self, p: _Pending) -> None:
        if p.sock is None:
            return
        self._pending.pop(p.sock.fileno(), None)
        try:
            self._selector.unregister(p.sock)
        except (KeyError, ValueError):
            pass
        p.sock.close()
        p.sock = None

    def _finish(self, p: _Pending, answer: bytes) -> None:
        self._drop_pending(p)
        p.upstreams.clear()
        if p.tcp_client is not None:
            p.tcp_client.waiting -= 1
        p.reply(answer)


def network_server(gateway: str, lookup: Callable[[str], list[str]], reverse: Callable[[str], str | None], *,
                   network: str = "", internal: bool = False, host_resolv_conf: str | None = None,
                   port: int = 53, client_upstreams: Callable[[str], Sequence[str]] | None = None) -> DnsServer:
    """A user-defined network's server (not started), set up as Docker's.

    It forwards to the host's resolvers (loopback ones included: it runs in
    the host's namespace), answers the network's names bare and under the
    network's name and the host's search domains (what a container's
    resolv.conf searches). An ``internal`` network forwards nothing.
    ``host_resolv_conf``: the host file's text, :func:`resolvconf.read_host` when None.
    """
    text = resolvconf.read_host() if host_resolv_conf is None else host_resolv_conf
    built = resolvconf.build(text, embedded=gateway)
    domains = ((network,) if network else ()) + resolvconf.parse(built.text).search
    return DnsServer(gateway, port, lookup, reverse, () if internal else built.upstreams, domains=domains,
                     client_upstreams=client_upstreams)


__all__ = ["DnsServer", "network_server", "parse_upstream"]
