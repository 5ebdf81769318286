"""Docker's stream framing, byte for byte: the header moby writes, and a reader fed any chunking."""

from __future__ import annotations

import pytest

from portside.errors import InvalidArgument
from portside.streams import stdcopy
from portside.streams.stdcopy import STDERR, STDIN, STDOUT, SYSTEMERR, Demuxer, frame, frame_header


def demux_all(data: bytes, chunk: int) -> list[tuple[int, bytes]]:
    """Feed ``data`` in ``chunk``-byte pieces; join adjacent pieces of one stream."""
    d = Demuxer()
    pieces: list[tuple[int, bytes]] = []
    for i in range(0, len(data), chunk):
        pieces += d.feed(data[i:i + chunk])
    d.eof()
    joined: list[tuple[int, bytes]] = []
    for stream, piece in pieces:
        if joined and joined[-1][0] == stream and stream != SYSTEMERR:
            joined[-1] = (stream, joined[-1][1] + piece)
        else:
            joined.append((stream, piece))
    return joined


def test_header_layout() -> None:
    assert frame(STDOUT, b"hello\n") == b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n"
    assert frame(STDERR, b"x") == b"\x02\x00\x00\x00\x00\x00\x00\x01x"
    assert frame(SYSTEMERR, b"boom") == b"\x03\x00\x00\x00\x00\x00\x00\x04boom"
    assert frame(STDIN, b"") == b"\x00" * 8  # moby writes an empty frame for an empty write
    assert frame_header(STDOUT, 0x01020304) == b"\x01\x00\x00\x00\x01\x02\x03\x04"
    assert frame_header(STDERR, 0xFFFF_FFFF) == b"\x02\x00\x00\x00\xff\xff\xff\xff"


def test_one_frame_per_write_whatever_its_size() -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: moby does not cut at 32 KiB
    framed = frame(STDOUT, data)
    assert framed[:8] == b"\x01\x00\x00\x00\x00\x04\x00\x00"
    assert framed[8:] == data


def test_data_beyond_a_uint32_goes_in_several_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stdcopy, "MAX_FRAME_SIZE", 4)
    assert frame(STDERR, b"abcdefghij") == (b"\x02\x00\x00\x00\x00\x00\x00\x04abcd"
                                           b"\x02\x00\x00\x00\x00\x00\x00\x04efgh"
                                           b"\x02\x00\x00\x00\x00\x00\x00\x02ij")


@pytest.mark.parametrize("stream, size", [(4, 1), (-1, 1), (STDOUT, -1), (STDOUT, 2**32)])
def test_bad_headers_are_refused(stream: int, size: int) -> None:
    with pytest.raises(ValueError):
        frame_header(stream, size)


MIXED = (frame(STDOUT, b"out 1\n") + frame(STDERR, b"err 1\n") + frame(STDOUT, b"") +
         frame(STDIN, b"in") + frame(STDERR, b"") + frame(STDOUT, b"out 2\n"))
EXPECTED = [(STDOUT, b"out 1\n"), (STDERR, b"err 1\n"), (STDIN, b"in"), (STDOUT, b"out 2\n")]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 8, 9, 13, 16, len(MIXED)])
def test_any_chunking_gives_the_same_streams(chunk: int) -> None:
    assert demux_all(MIXED, chunk) == EXPECTED


def test_a_header_split_across_feeds() -> None:
    d = Demuxer()
    data = frame(STDERR, b"abc")
    assert d.feed(data[:3]) == []
    assert d.feed(data[3:7]) == []
    assert d.feed(data[7:9]) == [(STDERR, b"a")]
    assert d.feed(data[9:]) == [(STDERR, b"bc")]
    d.eof()


def test_payload_is_handed_on_as_it_arrives() -> None:
    d = Demuxer()
    header = frame_header(STDOUT, 10 * 2**20)
    assert d.feed(header) == []
    block = b"z" * 2**20
    for _ in range(10):
        assert d.feed(block) == [(STDOUT, block)]  # nothing is held back waiting for the frame's end
    assert d.feed(frame(STDERR, b"after")) == [(STDERR, b"after")]
    d.eof()


def test_zero_length_frames_give_nothing() -> None:
    d = Demuxer()
    assert d.feed(frame(STDOUT, b"") * 100) == []
    assert d.feed(frame(STDOUT, b"") + frame(STDERR, b"x") + frame(STDOUT, b"")) == [(STDERR, b"x")]
    d.eof()


def test_a_system_error_comes_whole() -> None:
    message = b"Error grabbing logs: log file is corrupt\n"
    data = frame(STDOUT, b"a") + frame(SYSTEMERR, message) + frame(STDOUT, b"b")
    assert demux_all(data, 1) == [(STDOUT, b"a"), (SYSTEMERR, message), (STDOUT, b"b")]
    assert demux_all(data, 11) == [(STDOUT, b"a"), (SYSTEMERR, message), (STDOUT, b"b")]
    assert Demuxer().feed(frame(SYSTEMERR, b"")) == [(SYSTEMERR, b"")]


def test_an_unknown_stream_is_an_error_for_good() -> None:
    d = Demuxer()
    assert d.feed(frame(STDOUT, b"ok")) == [(STDOUT, b"ok")]
    with pytest.raises(InvalidArgument, match="^unrecognized stream: 4$"):
        d.feed(b"\x04\x00\x00\x00\x00\x00\x00\x01x")
    with pytest.raises(InvalidArgument, match="unrecognized stream: 4"):
        d.feed(frame(STDOUT, b"more"))
    with pytest.raises(InvalidArgument, match="unrecognized stream: 4"):
        d.eof()


def test_the_stream_byte_alone_decides() -> None:
    # moby reads byte 0 and the size; bytes 1-3 are not checked, and neither are they here
    assert Demuxer().feed(b"\x02\xaa\xbb\xcc\x00\x00\x00\x01!") == [(STDERR, b"!")]
    with pytest.raises(InvalidArgument, match="unrecognized stream: 255"):
        Demuxer().feed(b"\xff" + b"\x00" * 7)


@pytest.mark.parametrize("tail, message", [
    (b"\x01\x00\x00", "3 of 8 bytes of a frame header"),
    (b"\x01\x00\x00\x00\x00\x00\x00\x05ab", "3 bytes of a stream 1 frame missing"),
    (b"\x03\x00\x00\x00\x00\x00\x00\x05ab", "3 bytes of a stream 3 frame missing"),
])
def test_eof_inside_a_frame(tail: bytes, message: str) -> None:
    d = Demuxer()
    d.feed(frame(STDOUT, b"whole") + tail)
    with pytest.raises(InvalidArgument, match=message):
        d.eof()


def test_eof_between_frames_is_clean() -> None:
    d = Demuxer()
    d.feed(b"")
    d.eof()
    d.feed(frame(STDOUT, b"x"))
    d.eof()
