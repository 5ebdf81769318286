"""DNS messages (RFC 1035, EDNS0 from RFC 6891): parse a query, check an upstream's reply, build answers.

Sans-IO: bytes in, bytes out, so the codec is tested (and fuzzed) without a
socket. Everything that arrives is ``untrusted``: every read is bounds-checked,
a compression pointer must point strictly backwards (so following pointers
always ends), a name is at most 255 bytes, and a malformed message raises
:class:`FormatError`, never anything else.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

HEADER = struct.Struct("!HHHHHH")
HEADER_SIZE = HEADER.size

# types and classes this server answers itself
TYPE_A = 1
TYPE_PTR = 12
TYPE_AAAA = 28
TYPE_OPT = 41
TYPE_ANY = 255
CLASS_IN = 1

# response codes
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5

# flag bits of the header's second word
QR = 0x8000
OPCODE = 0x7800
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
RCODE = 0x000F

UDP_MIN = 512          # what a client without EDNS accepts
UDP_MAX = 4096         # the most we send over UDP whatever a client advertises (DNS flag day 2020 suggests 1232)
EDNS_SIZE = 1232       # the payload size we advertise in our own OPT record
TCP_MAX = 65535        # the 2-byte length prefix
MAX_NAME = 255         # octets, wire form (RFC 1035 2.3.4)
MAX_LABEL = 63
TTL = 600              # seconds; Docker's embedded DNS answers with this TTL


class FormatError(ValueError):
    """The message is malformed; ``id`` is its id when the header at least was readable."""

    def __init__(self, reason: str, id: int | None = None) -> None:
        super().__init__(reason)
        self.id = id


@dataclass(frozen=True)
class Question:
    labels: tuple[bytes, ...]   # as sent: the case is kept, resolvers check it (0x20 randomisation)
    qtype: int
    qclass: int

    @property
    def name(self) -> str | None:
        """The name as lowercase text without the trailing dot, None when no host name could be spelt so.

        A label holding a dot, a control or non-ASCII byte names nothing
        portside knows: such a name is only ever forwarded.
        """
        text = []
        for label in self.labels:
            if any(b <= 0x20 or b >= 0x7F or b == 0x2E for b in label):
                return None
            text.append(label.decode("ascii").lower())
        return ".".join(text)

    def same(self, other: Question) -> bool:
        """The same question, comparing names without regard to ASCII case (RFC 4343)."""
        return (self.qtype, self.qclass) == (other.qtype, other.qclass) and \
            tuple(x.lower() for x in self.labels) == tuple(x.lower() for x in other.labels)


@dataclass(frozen=True)
class Message:
    """What this server needs of a message: its header, its one question, and the EDNS payload size."""

    id: int
    flags: int
    question: Question
    edns_size: int | None       # None: no OPT record (the client accepts 512 bytes over UDP)

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE) >> 11

    @property
    def rcode(self) -> int:
        return self.flags & RCODE

    def udp_limit(self) -> int:
        """How large a UDP answer to this query may be."""
        if self.edns_size is None:
            return UDP_MIN
        return max(UDP_MIN, min(self.edns_size, UDP_MAX))


def header(untrusted: bytes) -> tuple[int, int, int, int, int, int]:
    """(id, flags, qdcount, ancount, nscount, arcount); FormatError when shorter than a header."""
    if len(untrusted) < HEADER_SIZE:
        raise FormatError("shorter than a header")
    return HEADER.unpack_from(untrusted)


def read_name(untrusted: bytes, offset: int) -> tuple[tuple[bytes, ...], int]:
    """The labels of the name at ``offset`` and the offset just past it (past the first pointer, if any)."""
    labels: list[bytes] = []
    size = 1                    # the root label's length byte
    end = -1                    # where the name ends in the message: set at the first pointer
    lowest = offset             # a pointer must go below every place already read: no loops
    while True:
        if offset >= len(untrusted):
            raise FormatError("name runs past the end")
        length = untrusted[offset]
        kind = length & 0xC0
        if kind == 0xC0:
            if offset + 1 >= len(untrusted):
                raise FormatError("pointer runs past the end")
            target = ((length & 0x3F) << 8) | untrusted[offset + 1]
            if end < 0:
                end = offset + 2
            if target >= lowest:
                raise FormatError("compression pointer does not point backwards")
            offset = lowest = target
            continue
        if kind:
            raise FormatError("unknown label type")
        if length == 0:
            return tuple(labels), (end if end >= 0 else offset + 1)
        if offset + 1 + length > len(untrusted):
            raise FormatError("label runs past the end")
        size += 1 + length
        if size > MAX_NAME:
            raise FormatError("name longer than 255 octets")
        labels.append(untrusted[offset + 1:offset + 1 + length])
        offset += 1 + length


def encode_name(labels: tuple[bytes, ...] | list[bytes]) -> bytes:
    """The uncompressed wire form; ValueError for an empty or overlong label or name."""
    out = bytearray()
    for label in labels:
        if not label or len(label) > MAX_LABEL:
            raise ValueError(f"bad label {label!r}")
        out.append(len(label))
        out += label
    out.append(0)
    if len(out) > MAX_NAME:
        raise ValueError("name longer than 255 octets")
    return bytes(out)


def name_labels(name: str) -> tuple[bytes, ...]:
    """``"a.b."`` or ``"a.b"`` → ``(b"a", b"b")``; ValueError when it is no valid name."""
    text = name[:-1] if name.endswith(".") else name
    labels = tuple(part.encode("ascii") for part in text.split(".")) if text else ()
    encode_name(labels)  # validates
    return labels


def _question(untrusted: bytes, offset: int) -> tuple[Question, int]:
    labels, offset = read_name(untrusted, offset)
    if offset + 4 > len(untrusted):
        raise FormatError("question runs past the end")
    qtype, qclass = struct.unpack_from("!HH", untrusted, offset)
    return Question(labels, qtype, qclass), offset + 4


def _skip_record(untrusted: bytes, offset: int) -> tuple[int, int, int, int]:
    """(type, class, ttl, offset past the record); its name and data only bounds-checked."""
    _, offset = read_name(untrusted, offset)
    if offset + 10 > len(untrusted):
        raise FormatError("record runs past the end")
    rtype, rclass, ttl, rdlength = struct.unpack_from("!HHIH", untrusted, offset)
    offset += 10 + rdlength
    if offset > len(untrusted):
        raise FormatError("record data runs past the end")
    return rtype, rclass, ttl, offset


def parse(untrusted: bytes) -> Message:
    """A message with exactly one question, every section walked to the last byte.

    The number of records is bounded by the message's length (a record takes
    at least 11 bytes), so the work is too.
    """
    id, flags, qdcount, ancount, nscount, arcount = header(untrusted)
    try:
        if qdcount != 1:
            raise FormatError(f"{qdcount} questions")
        question, offset = _question(untrusted, HEADER_SIZE)
        edns: int | None = None
        for index in range(ancount + nscount + arcount):
            start = offset
            rtype, rclass, _, offset = _skip_record(untrusted, offset)
            if rtype == TYPE_OPT and index >= ancount + nscount:
                if edns is not None or untrusted[start] != 0:
                    raise FormatError("more than one OPT record, or one not at the root")
                edns = rclass
        if offset != len(untrusted):
            raise FormatError("bytes after the last record")
    except FormatError as e:
        e.id = id
        raise
    return Message(id, flags, question, edns)


def with_id(message: bytes, id: int) -> bytes:
    return struct.pack("!H", id) + message[2:]


@dataclass(frozen=True)
class Record:
    """One answer to the question: its type and data; the name is the question's."""

    rtype: int
    data: bytes

    @staticmethod
    def a(address: str) -> Record:
        return Record(TYPE_A, ipaddress.IPv4Address(address).packed)

    @staticmethod
    def ptr(name: str) -> Record:
        return Record(TYPE_PTR, encode_name(name_labels(name)))


def _flags(query_flags: int, rcode: int, truncated: bool = False) -> int:
    # QR, the query's opcode and RD; RA because names we do not know are forwarded
    flags = QR | (query_flags & (OPCODE | RD)) | RA | (rcode & RCODE)
    return flags | TC if truncated else flags


def _opt() -> bytes:
    return b"\x00" + struct.pack("!HHIH", TYPE_OPT, EDNS_SIZE, 0, 0)


def response(query: Message, rcode: int, answers: list[Record] | tuple[Record, ...] = (), *,
             limit: int = TCP_MAX) -> bytes:
    """The answer to ``query``: its question echoed, ``answers`` for it, an OPT record if it had one.

    Longer than ``limit`` → the question alone with TC set, so the client asks again over TCP.
    """
    question = encode_name(query.question.labels) + struct.pack("!HH", query.question.qtype,
                                                                 query.question.qclass)
    opt = _opt() if query.edns_size is not None else b""
    records = bytearray()
    for answer in answers:
        # the owner is the question's name: a pointer to it, at offset 12
        records += struct.pack("!HHHIH", 0xC000 | HEADER_SIZE, answer.rtype, CLASS_IN, TTL, len(answer.data))
        records += answer.data
    arcount = 1 if opt else 0
    message = HEADER.pack(query.id, _flags(query.flags, rcode), 1, len(answers), 0, arcount) + question \
        + bytes(records) + opt
    if len(message) <= limit:
        return message
    return HEADER.pack(query.id, _flags(query.flags, rcode, truncated=True), 1, 0, 0, arcount) + question + opt


def error(id: int, query_flags: int, rcode: int) -> bytes:
    """A bare answer (no question) for a query too malformed to echo."""
    return HEADER.pack(id, _flags(query_flags, rcode), 0, 0, 0, 0)


def truncate(reply: bytes, limit: int) -> bytes:
    """``reply`` (already checked by :func:`parse`) cut to its question with TC set, when over ``limit``."""
    if len(reply) <= limit:
        return reply
    id, flags = HEADER.unpack_from(reply)[:2]
    _, end = _question(reply, HEADER_SIZE)
    return HEADER.pack(id, flags | TC, 1, 0, 0, 0) + reply[HEADER_SIZE:end]


def query(id: int, name: str, qtype: int = TYPE_A, *, rd: bool = True, edns_size: int | None = None) -> bytes:
    """A query message, for clients and tests."""
    opt = b"\x00" + struct.pack("!HHIH", TYPE_OPT, edns_size, 0, 0) if edns_size is not None else b""
    return HEADER.pack(id, RD if rd else 0, 1, 0, 0, 1 if opt else 0) + encode_name(name_labels(name)) \
        + struct.pack("!HH", qtype, CLASS_IN) + opt


def reverse_address(name: str) -> str | None:
    """``"4.3.2.1.in-addr.arpa"`` → ``"1.2.3.4"``; None for any other name."""
    parts = name.split(".")
    if len(parts) != 6 or parts[4:] != ["in-addr", "arpa"]:
        return None
    if not all(p.isdigit() and len(p) <= 3 and (p == "0" or not p.startswith("0")) and int(p) <= 255
               for p in parts[:4]):
        return None
    return ".".join(reversed(parts[:4]))


def answers(untrusted: bytes) -> list[tuple[str | None, int, bytes]]:
    """The answer section as (owner name, type, data), for tests and diagnostics."""
    id, _, qdcount, ancount, _, _ = header(untrusted)
    offset = HEADER_SIZE
    for _ in range(qdcount):
        _, offset = _question(untrusted, offset)
    found = []
    for _ in range(ancount):
        labels, after_name = read_name(untrusted, offset)
        rtype, _, _, end = _skip_record(untrusted, offset)
        data = untrusted[after_name + 10:end]
        if rtype == TYPE_PTR:
            target, _ = read_name(untrusted, after_name + 10)
            data = b".".join(target)
        found.append((Question(labels, rtype, CLASS_IN).name, rtype, data))
        offset = end
    return found
