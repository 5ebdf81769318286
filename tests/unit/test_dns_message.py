"""The DNS codec (network/dnsmsg.py): parse what clients and upstreams send, build answers, refuse garbage."""

from __future__ import annotations

import random
import struct

import pytest

from portside.network import dnsmsg
from portside.network.dnsmsg import FormatError, Record


def test_query_round_trip() -> None:
    raw = dnsmsg.query(0xBEEF, "Web.Example.", dnsmsg.TYPE_AAAA)
    m = dnsmsg.parse(raw)
    assert (m.id, m.opcode, m.edns_size, m.udp_limit()) == (0xBEEF, 0, None, 512)
    assert m.question.labels == (b"Web", b"Example")  # the case as sent: resolvers check it comes back
    assert m.question.name == "web.example"
    assert (m.question.qtype, m.question.qclass) == (dnsmsg.TYPE_AAAA, dnsmsg.CLASS_IN)


@pytest.mark.parametrize(("advertised", "limit"), [(0, 512), (512, 512), (1232, 1232), (65535, 4096)])
def test_edns_size_bounds_the_udp_answer(advertised: int, limit: int) -> None:
    m = dnsmsg.parse(dnsmsg.query(1, "a", edns_size=advertised))
    assert (m.edns_size, m.udp_limit()) == (advertised, limit)


def test_response_echoes_question_and_points_answers_at_it() -> None:
    m = dnsmsg.parse(dnsmsg.query(7, "WeB", edns_size=1232))
    out = dnsmsg.response(m, dnsmsg.NOERROR, [Record.a("10.0.0.2"), Record.a("10.0.0.3")])
    id, flags, qd, an, ns, ar = dnsmsg.header(out)
    assert (id, qd, an, ns, ar) == (7, 1, 2, 0, 1)  # the OPT record answers the client's
    assert flags & dnsmsg.QR and flags & dnsmsg.RD and flags & dnsmsg.RA and not flags & dnsmsg.TC
    assert out[12:12 + 5] == b"\x03WeB\x00"
    assert dnsmsg.answers(out) == [("web", 1, bytes([10, 0, 0, 2])), ("web", 1, bytes([10, 0, 0, 3]))]
    assert dnsmsg.parse(out).question.same(m.question)


def test_response_over_the_limit_is_truncated() -> None:
    m = dnsmsg.parse(dnsmsg.query(9, "many"))
    records = [Record.a(f"10.0.{i // 256}.{i % 256}") for i in range(100)]   # 16 bytes each
    full = dnsmsg.response(m, dnsmsg.NOERROR, records)
    assert len(full) > 512 and dnsmsg.header(full)[3] == 100
    cut = dnsmsg.response(m, dnsmsg.NOERROR, records, limit=512)
    id, flags, qd, an, ns, ar = dnsmsg.header(cut)
    assert flags & dnsmsg.TC and (qd, an) == (1, 0) and len(cut) <= 512
    assert dnsmsg.truncate(full, 512) == cut
    assert dnsmsg.truncate(cut, 512) == cut


def test_ptr_record_and_reverse_names() -> None:
    m = dnsmsg.parse(dnsmsg.query(3, "2.0.17.172.in-addr.arpa", dnsmsg.TYPE_PTR))
    out = dnsmsg.response(m, dnsmsg.NOERROR, [Record.ptr("web.mynet")])
    assert dnsmsg.answers(out) == [("2.0.17.172.in-addr.arpa", dnsmsg.TYPE_PTR, b"web.mynet")]
    assert dnsmsg.reverse_address("2.0.17.172.in-addr.arpa") == "172.17.0.2"
    for name in ("2.0.17.in-addr.arpa", "256.0.17.172.in-addr.arpa", "02.0.17.172.in-addr.arpa",
                 "x.0.17.172.in-addr.arpa", "2.0.17.172.ip6.arpa", "1.2.0.17.172.in-addr.arpa"):
        assert dnsmsg.reverse_address(name) is None, name


def test_compressed_names_are_followed() -> None:
    head = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    raw = head + b"\x07example\x00" + struct.pack("!HH", 1, 1)     # "example" at offset 12
    compressed = raw + b"\x03abc\xc0\x0c"                          # "abc" + a pointer to offset 12
    labels, end = dnsmsg.read_name(compressed, len(raw))
    assert labels == (b"abc", b"example")
    assert end == len(compressed)   # the name ends after the pointer, not where the pointer led


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\xc0\x0c", "pointer to itself"),
    (b"\x01a\xc0\x0c", "pointer back to its own start"),
    (b"\x01a\xc0\x0e", "pointer forwards"),
    (b"\x40", "label type 01"),
    (b"\x80", "label type 10"),
    (b"\x05ab", "label past the end"),
    (b"\x01a", "no root label"),
    (b"\xc0", "half a pointer"),
    ((b"\x3f" + b"a" * 63) * 4 + b"\x00", "name over 255 octets"),
])
def test_bad_names_are_format_errors(raw: bytes, reason: str) -> None:
    message = b"\x00" * 12 + raw
    with pytest.raises(FormatError):
        dnsmsg.read_name(message, 12)


def test_pointer_loops_end() -> None:
    # two names pointing at each other: the second pointer does not go below the first target
    message = b"\x00" * 12 + b"\x01a\xc0\x10" + b"\x01b\xc0\x0c"
    with pytest.raises(FormatError):
        dnsmsg.read_name(message, 16)


@pytest.mark.parametrize("qdcount", [0, 2])
def test_not_one_question(qdcount: int) -> None:
    raw = struct.pack("!HHHHHH", 5, 0, qdcount, 0, 0, 0) + b"\x01a\x00\x00\x01\x00\x01" * qdcount
    with pytest.raises(FormatError) as e:
        dnsmsg.parse(raw)
    assert e.value.id == 5


def test_trailing_bytes_and_short_records() -> None:
    good = dnsmsg.query(1, "a")
    with pytest.raises(FormatError):
        dnsmsg.parse(good + b"\x00")
    with pytest.raises(FormatError):   # claims an answer that is not there
        dnsmsg.parse(good[:6] + b"\x00\x01" + good[8:])
    with pytest.raises(FormatError):
        dnsmsg.parse(good[:11])


def test_two_opt_records_are_refused() -> None:
    opt = b"\x00" + struct.pack("!HHIH", dnsmsg.TYPE_OPT, 1232, 0, 0)
    raw = dnsmsg.query(1, "a")
    raw = raw[:10] + b"\x00\x02" + raw[12:] + opt + opt
    with pytest.raises(FormatError):
        dnsmsg.parse(raw)


def test_encode_name_refuses_bad_names() -> None:
    for name in ("a..b", "x" * 64, ".".join(["abcdefghi"] * 30)):
        with pytest.raises(ValueError):
            dnsmsg.name_labels(name)
    assert dnsmsg.name_labels(".") == ()
    assert dnsmsg.encode_name(()) == b"\x00"


def test_unspellable_names_have_no_text() -> None:
    for labels in ((b"a.b",), (b"a b",), (b"\xff",), (b"a\x00",)):
        assert dnsmsg.Question(labels, 1, 1).name is None


def _mutations(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    bases = [dnsmsg.query(1, "web.example", edns_size=1232),
             dnsmsg.response(dnsmsg.parse(dnsmsg.query(2, "web")), 0, [Record.a("10.0.0.1")]),
             dnsmsg.response(dnsmsg.parse(dnsmsg.query(3, "4.3.2.1.in-addr.arpa", 12)), 0, [Record.ptr("x.y")])]
    out = []
    for _ in range(3000):
        base = bytearray(rng.choice(bases))
        how = rng.randrange(4)
        if how == 0:
            base = base[:rng.randrange(len(base) + 1)]
        elif how == 1:
            for _ in range(rng.randrange(1, 6)):
                base[rng.randrange(len(base))] = rng.randrange(256)
        elif how == 2:
            base = bytearray(rng.randbytes(rng.randrange(64)))
        else:
            pos = rng.randrange(12, len(base))
            base[pos:pos] = rng.randbytes(rng.randrange(1, 8))
        out.append(bytes(base))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_parse_raises_only_format_errors(seed: int) -> None:
    for raw in _mutations(seed):
        try:
            m = dnsmsg.parse(raw)
        except FormatError:
            continue
        # whatever parses can be answered, and the answer parses again
        answer = dnsmsg.response(m, dnsmsg.NOERROR, limit=m.udp_limit())
        again = dnsmsg.parse(answer)
        assert again.id == m.id and again.question.same(m.question)
        dnsmsg.truncate(raw, 12)
