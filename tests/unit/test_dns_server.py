"""The embedded DNS server (network/dns.py) on loopback, asked with hand-built packets over UDP and TCP.

Each server binds a random 127.x.y.z address with a kernel-chosen port, so
parallel runs never meet; the "upstream" is a second DnsServer or a socket
the test drives, never a real resolver.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from portside.network import dnsmsg
from portside.network.dns import DnsServer, network_server, parse_upstream

NAMES = {"web": ["10.0.0.2", "10.0.0.3"], "db": ["10.0.0.4"], "many": [f"10.1.{i // 250}.{i % 250 + 1}"
                                                                       for i in range(100)]}
PTRS = {"10.0.0.4": "db.mynet"}


def _loopback() -> str:
    return f"127.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(2, 255)}"


@pytest.fixture
def server_factory() -> Iterator[Callable[..., DnsServer]]:
    made: list[DnsServer] = []

    def make(lookup: Callable[[str], list[str]] = lambda n: NAMES.get(n, []),
             reverse: Callable[[str], str | None] = PTRS.get, upstreams: list[str] | None = None,
             **kw: object) -> DnsServer:
        s = DnsServer(_loopback(), 0, lookup, reverse, upstreams or [], **kw)  # type: ignore[arg-type]
        s.start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def udp(server: DnsServer, message: bytes, timeout: float = 3.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(timeout)
        c.sendto(message, (server.address, server.port))
        return c.recv(65535)


def no_answer(server: DnsServer, message: bytes) -> bool:
    try:
        udp(server, message, timeout=0.3)
    except socket.timeout:
        return True
    return False


def tcp(server: DnsServer, *messages: bytes) -> list[bytes]:
    with socket.create_connection((server.address, server.port), timeout=5) as c:
        c.sendall(b"".join(struct.pack("!H", len(m)) + m for m in messages))
        answers = []
        buf = b""
        while len(answers) < len(messages):
            chunk = c.recv(65535)
            assert chunk, "server closed the connection"
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack_from("!H", buf)[0]:
                n = struct.unpack_from("!H", buf)[0]
                answers.append(buf[2:2 + n])
                buf = buf[2 + n:]
        return answers


def rcode(answer: bytes) -> int:
    return dnsmsg.header(answer)[1] & dnsmsg.RCODE


def addresses(answer: bytes) -> list[str]:
    return [socket.inet_ntoa(data) for _, rtype, data in dnsmsg.answers(answer) if rtype == dnsmsg.TYPE_A]


@pytest.mark.parametrize("name", ["web", "WEB", "web.", "Web.MyNet", "web.mynet."])
def test_a_for_known_names(server_factory: Callable[..., DnsServer], name: str) -> None:
    s = server_factory(domains=["mynet"])
    answer = udp(s, dnsmsg.query(0x1234, name))
    assert dnsmsg.header(answer)[0] == 0x1234 and rcode(answer) == dnsmsg.NOERROR
    assert addresses(answer) == ["10.0.0.2", "10.0.0.3"]
    assert dnsmsg.parse(answer).question.labels == dnsmsg.name_labels(name)   # case kept


@pytest.mark.parametrize("qtype", [dnsmsg.TYPE_AAAA, 15, 16, 33])   # AAAA, MX, TXT, SRV
def test_other_types_for_known_names_are_empty(server_factory: Callable[..., DnsServer], qtype: int) -> None:
    s = server_factory()
    answer = udp(s, dnsmsg.query(9, "db", qtype))
    assert rcode(answer) == dnsmsg.NOERROR and dnsmsg.header(answer)[3] == 0


def test_ptr_for_known_addresses(server_factory: Callable[..., DnsServer]) -> None:
    s = server_factory()
    answer = udp(s, dnsmsg.query(5, "4.0.0.10.in-addr.arpa", dnsmsg.TYPE_PTR))
    assert dnsmsg.answers(answer) == [("4.0.0.10.in-addr.arpa", dnsmsg.TYPE_PTR, b"db.mynet")]
    unknown = udp(s, dnsmsg.query(6, "9.0.0.10.in-addr.arpa", dnsmsg.TYPE_PTR))
    assert rcode(unknown) == dnsmsg.SERVFAIL   # no upstream to forward it to


def test_unknown_without_upstreams_is_servfail(server_factory: Callable[..., DnsServer]) -> None:
    s = server_factory()
    answer = udp(s, dnsmsg.query(77, "example.org"))
    assert dnsmsg.header(answer)[0] == 77 and rcode(answer) == dnsmsg.SERVFAIL


def test_forwarded_to_upstream_with_the_clients_id(server_factory: Callable[..., DnsServer]) -> None:
    upstream = server_factory(lookup=lambda n: ["192.0.2.7"] if n == "outside.example" else [])
    s = server_factory(upstreams=[f"{upstream.address}:{upstream.port}"])
    answer = udp(s, dnsmsg.query(0xABCD, "Outside.Example"))
    assert dnsmsg.header(answer)[0] == 0xABCD and rcode(answer) == dnsmsg.NOERROR
    assert addresses(answer) == ["192.0.2.7"]
    assert dnsmsg.parse(answer).question.labels == (b"Outside", b"Example")
    # the upstream's own failure is relayed as it is
    assert rcode(udp(s, dnsmsg.query(1, "nowhere.example"))) == dnsmsg.SERVFAIL
    # and over TCP
    (over_tcp,) = tcp(s, dnsmsg.query(0x4321, "outside.example"))
    assert dnsmsg.header(over_tcp)[0] == 0x4321 and addresses(over_tcp) == ["192.0.2.7"]


def test_next_upstream_when_one_is_down(server_factory: Callable[..., DnsServer]) -> None:
    upstream = server_factory(lookup=lambda n: ["192.0.2.8"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:   # a port nothing listens on
        closed.bind((upstream.address, 0))
        dead = f"{upstream.address}:{closed.getsockname()[1]}"
    s = server_factory(upstreams=[dead, f"{upstream.address}:{upstream.port}"], timeout=2.0)
    started = time.monotonic()
    assert addresses(udp(s, dnsmsg.query(3, "x.example"))) == ["192.0.2.8"]
    assert time.monotonic() - started < 1.5   # the refusal, not the timeout, moved it on


class FakeUpstream:
    """A UDP socket that answers each query with what ``respond`` makes of it (None: silence)."""

    def __init__(self, respond: Callable[[bytes], list[bytes]]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((_loopback(), 0))
        self.sock.settimeout(0.2)
        self.respond = respond
        self.seen: list[bytes] = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @property
    def spec(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def run(self) -> None:
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            self.seen.append(data)
            for out in self.respond(data):
                self.sock.sendto(out, peer)

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.sock.close()


def test_upstream_garbage_is_never_relayed(server_factory: Callable[..., DnsServer]) -> None:
    def respond(query: bytes) -> list[bytes]:
        good = dnsmsg.response(dnsmsg.parse(query), dnsmsg.NOERROR, [dnsmsg.Record.a("192.0.2.9")])
        wrong_id = dnsmsg.with_id(good, (dnsmsg.header(query)[0] + 1) & 0xFFFF)
        other_q = dnsmsg.with_id(dnsmsg.response(dnsmsg.parse(dnsmsg.query(0, "evil.example")), 0,
                                                 [dnsmsg.Record.a("6.6.6.6")]), dnsmsg.header(query)[0])
        return [b"\xff" * 7, good[:-3], wrong_id, other_q, query, good]   # only the last is the answer

    fake = FakeUpstream(respond)
    try:
        s = server_factory(upstreams=[fake.spec])
        answer = udp(s, dnsmsg.query(0x0F0F, "x.example"))
        assert dnsmsg.header(answer)[0] == 0x0F0F and addresses(answer) == ["192.0.2.9"]
        # the query went on under another id than the client's (a fresh one per query)
        assert len(fake.seen) == 1 and fake.seen[0][2:] == dnsmsg.query(0x0F0F, "x.example")[2:]
    finally:
        fake.close()


def test_silent_upstream_times_out_to_servfail(server_factory: Callable[..., DnsServer]) -> None:
    fake = FakeUpstream(lambda q: [])
    try:
        s = server_factory(upstreams=[fake.spec], timeout=0.5)
        started = time.monotonic()
        answer = udp(s, dnsmsg.query(8, "slow.example"))
        assert rcode(answer) == dnsmsg.SERVFAIL and 0.4 < time.monotonic() - started < 2.5
        # meanwhile and after, local names are answered at once
        assert addresses(udp(s, dnsmsg.query(9, "db"))) == ["10.0.0.4"]
    finally:
        fake.close()


def test_truncation_over_udp_and_whole_over_tcp(server_factory: Callable[..., DnsServer]) -> None:
    s = server_factory()
    small = udp(s, dnsmsg.query(1, "many"))
    assert dnsmsg.header(small)[1] & dnsmsg.TC and dnsmsg.header(small)[3] == 0 and len(small) <= 512
    big = udp(s, dnsmsg.query(2, "many", edns_size=4096))
    assert not dnsmsg.header(big)[1] & dnsmsg.TC and len(addresses(big)) == 100
    (whole,) = tcp(s, dnsmsg.query(3, "many"))
    assert not dnsmsg.header(whole)[1] & dnsmsg.TC and len(addresses(whole)) == 100


def test_tcp_client_gets_whole_forwarded_answer(server_factory: Callable[..., DnsServer]) -> None:
    # the upstream truncates over UDP; the server asks it again over TCP for its TCP client
    upstream = server_factory()
    s = server_factory(lookup=lambda n: [], upstreams=[f"{upstream.address}:{upstream.port}"])
    assert dnsmsg.header(udp(s, dnsmsg.query(1, "many")))[1] & dnsmsg.TC
    (whole,) = tcp(s, dnsmsg.query(2, "many"))
    assert dnsmsg.header(whole)[0] == 2 and len(addresses(whole)) == 100


def test_tcp_pipelined_and_split(server_factory: Callable[..., DnsServer]) -> None:
    s = server_factory()
    answers = tcp(s, dnsmsg.query(1, "web"), dnsmsg.query(2, "db"), dnsmsg.query(3, "db", dnsmsg.TYPE_AAAA))
    assert [dnsmsg.header(a)[0] for a in answers] == [1, 2, 3]
    assert addresses(answers[1]) == ["10.0.0.4"]
    q = dnsmsg.query(4, "db")
    framed = struct.pack("!H", len(q)) + q
    with socket.create_connection((s.address, s.port), timeout=5) as c:
        for byte in framed:   # one byte at a time
            c.send(bytes([byte]))
            time.sleep(0.002)
        reply = c.recv(65535)
    assert addresses(reply[2:]) == ["10.0.0.4"]


def test_malformed_queries(server_factory: Callable[..., DnsServer]) -> None:
    s = server_factory()
    good = dnsmsg.query(0x2222, "web")
    assert no_answer(s, b"")
    assert no_answer(s, good[:11])                                     # not even a header
    assert no_answer(s, good[:2] + b"\x81\x80" + good[4:])            # QR set: an answer, not a query
    bad = udp(s, good[:-2])                                            # question cut short
    assert dnsmsg.header(bad)[0] == 0x2222 and rcode(bad) == dnsmsg.FORMERR
    loop = struct.pack("!HHHHHH", 0x3333, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01"
    assert rcode(udp(s, loop)) == dnsmsg.FORMERR
    notify = bytearray(good)
    notify[2] |= 0x20                                                  # opcode 4, NOTIFY
    assert rcode(udp(s, bytes(notify))) == dnsmsg.NOTIMP
    assert addresses(udp(s, good)) == ["10.0.0.2", "10.0.0.3"]        # and it still serves


def test_lookup_errors_are_servfail(server_factory: Callable[..., DnsServer]) -> None:
    def broken(name: str) -> list[str]:
        raise RuntimeError("the network went away")

    s = server_factory(lookup=broken)
    assert rcode(udp(s, dnsmsg.query(1, "web"))) == dnsmsg.SERVFAIL
    s2 = server_factory(lookup=lambda n: ["not-an-ip", "fd00::1", "10.0.0.9"])
    assert addresses(udp(s2, dnsmsg.query(1, "x"))) == ["10.0.0.9"]


def test_fuzzed_packets_then_still_serving(server_factory: Callable[..., DnsServer]) -> None:
    s = server_factory()
    rng = random.Random(7)
    base = dnsmsg.query(1, "web.mynet", edns_size=1232)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(2)
        for _ in range(2000):
            raw = bytearray(base)
            for _ in range(rng.randrange(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            c.sendto(bytes(raw[:rng.randrange(len(raw) + 1)]), (s.address, s.port))
        c.setblocking(False)
        time.sleep(0.5)
        while True:    # every answer it gave parses
            try:
                dnsmsg.header(c.recv(65535))
            except BlockingIOError:
                break
    for _ in range(50):   # random bytes over TCP, then a good query on a new connection
        with socket.create_connection((s.address, s.port), timeout=5) as t:
            t.sendall(rng.randbytes(rng.randrange(1, 200)))
    assert addresses(udp(s, dnsmsg.query(2, "web"))) == ["10.0.0.2", "10.0.0.3"]
    assert addresses(tcp(s, dnsmsg.query(3, "web"))[0]) == ["10.0.0.2", "10.0.0.3"]


def test_close_is_prompt_with_queries_in_flight() -> None:
    fake = FakeUpstream(lambda q: [])
    s = DnsServer(_loopback(), 0, lambda n: [], lambda a: None, [fake.spec], timeout=30)
    s.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            for i in range(20):
                c.sendto(dnsmsg.query(i, f"q{i}.example"), (s.address, s.port))
            held = socket.create_connection((s.address, s.port))
            time.sleep(0.2)
            started = time.monotonic()
            s.close()
            assert time.monotonic() - started < 1.0
            held.settimeout(2)
            assert held.recv(10) == b""   # its connection was closed
            held.close()
            with pytest.raises(OSError):
                socket.create_connection((s.address, s.port), timeout=1).close()
        s.close()   # again: nothing happens
    finally:
        fake.close()


def test_parse_upstream() -> None:
    assert parse_upstream("10.0.0.1") == ("10.0.0.1", 53)
    assert parse_upstream("10.0.0.1:5353") == ("10.0.0.1", 5353)
    assert parse_upstream("::1") == ("::1", 53)
    assert parse_upstream("[fd00::1]:54") == ("fd00::1", 54)
    for bad in ("example.org", "10.0.0.1:0", "10.0.0.1:x", "[::1]:99999"):
        with pytest.raises(ValueError):
            parse_upstream(bad)


def test_does_not_forward_to_itself_nor_to_non_addresses() -> None:
    s = DnsServer("127.0.0.1", 5399, upstreams=["127.0.0.1:5399", "127.0.0.2", "resolver", "10.0.0.1:x"])
    assert s._upstreams == [("127.0.0.2", 53)]
    s.close()


def test_tcp_clients_are_bounded(server_factory: Callable[..., DnsServer]) -> None:
    s = server_factory(max_clients=2, tcp_idle=0.5)
    first = socket.create_connection((s.address, s.port), timeout=3)
    time.sleep(0.05)
    second = socket.create_connection((s.address, s.port), timeout=3)
    time.sleep(0.05)
    third = socket.create_connection((s.address, s.port), timeout=3)
    try:
        assert first.recv(10) == b""            # the one idle longest made room
        q = dnsmsg.query(1, "db")
        third.sendall(struct.pack("!H", len(q)) + q)
        assert addresses(third.recv(65535)[2:]) == ["10.0.0.4"]
        started = time.monotonic()
        assert second.recv(10) == b""           # silent: dropped after tcp_idle
        assert time.monotonic() - started < 2
    finally:
        for c in (first, second, third):
            c.close()


def test_queries_in_flight_are_bounded(server_factory: Callable[..., DnsServer]) -> None:
    fake = FakeUpstream(lambda q: [])
    try:
        s = server_factory(upstreams=[fake.spec], max_pending=3, timeout=5)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(3)
            for i in range(4):
                c.sendto(dnsmsg.query(i, f"q{i}.example"), (s.address, s.port))
            answer = c.recv(65535)              # the fourth, at once: no room upstream
            assert dnsmsg.header(answer)[0] == 3 and rcode(answer) == dnsmsg.SERVFAIL
            assert addresses(udp(s, dnsmsg.query(9, "db"))) == ["10.0.0.4"]   # local names still answered
    finally:
        fake.close()


def test_a_containers_own_dns_servers(server_factory: Callable[..., DnsServer]) -> None:
    network_upstream = server_factory(lookup=lambda n: ["192.0.2.1"])
    own_upstream = server_factory(lookup=lambda n: ["192.0.2.2"])
    me = _loopback()
    s = server_factory(lookup=lambda n: [], upstreams=[f"{network_upstream.address}:{network_upstream.port}"],
                       client_upstreams=lambda client: [f"{own_upstream.address}:{own_upstream.port}"]
                       if client == me else [])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:   # a client at the address with --dns
        c.bind((me, 0))
        c.settimeout(3)
        c.sendto(dnsmsg.query(1, "x.example"), (s.address, s.port))
        assert addresses(c.recv(65535)) == ["192.0.2.2"]
    assert addresses(udp(s, dnsmsg.query(2, "x.example"))) == ["192.0.2.1"]   # any other client


def test_network_server_is_set_up_from_the_hosts_resolv_conf() -> None:
    s = network_server("172.30.0.1", lambda n: [], lambda a: None, network="mynet",
                       host_resolv_conf="search corp.example\nnameserver 127.0.0.53\nnameserver 10.0.0.53\n")
    try:
        assert (s.address, s.port) == ("172.30.0.1", 53)
        assert s._upstreams == [("127.0.0.53", 53), ("10.0.0.53", 53)]
        assert s.domains == ("mynet", "corp.example")
    finally:
        s.close()
    internal = network_server("172.30.0.1", lambda n: [], lambda a: None, internal=True,
                              host_resolv_conf="nameserver 10.0.0.53\n")
    assert internal._upstreams == []
    internal.close()
