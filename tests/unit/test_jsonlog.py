"""Docker's json-file logs: moby's bytes, its copier's line cutting, and the reader behind ``docker logs``."""

from __future__ import annotations

import json
import math
import os
import pathlib
import stat
import threading
import time
from collections.abc import Iterator

import pytest

from portside.errors import InvalidArgument, NotFound
from portside.streams import jsonlog
from portside.streams.jsonlog import (GO_ZERO_TIME_NS, LINE_BUFFER, LogEntry, LogWriter, decode_entry, encode_entry,
                                      follow_logs, format_entry_for_api, read_logs)
from portside.streams.stdcopy import STDERR, STDOUT, Demuxer

T0 = 1_704_164_645_123_456_789  # 2024-01-02T03:04:05.123456789Z
SECOND = 10**9


def lines_of(path: pathlib.Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def entry(data: bytes, stream: str = "stdout", time_ns: int = T0) -> LogEntry:
    return LogEntry(stream, data, time_ns)


# --- the format, byte for byte -------------------------------------------------------------------

@pytest.mark.parametrize("data, log", [
    (b"A log line\n", r'"A log line\n"'),
    (b'"A log line with \\"', r'"\"A log line with \\\""'),
    (b"A log line with \r", r'"A log line with \r"'),
    (b"A log line with & < >", r'"A log line with \u0026 \u003c \u003e"'),  # Go's HTML-safe escaping
    (b"tab\there\x00\x01\x1b\x1f", r'"tab\u0009here\u0000\u0001\u001b\u001f"'),  # moby's encoder shortens only \n \r
    (b"\x7f", '"\x7f"'),  # DEL is not escaped
    ("utf8 : 🚀 ψ ω β\n".encode(), '"utf8 : 🚀 ψ ω β\\n"'),  # valid UTF-8 is written as it is
    ("\u2028 \u2029".encode(), r'"\u2028 \u2029"'),
    (b"\xaf", r'"\ufffd"'),
    # each byte of an invalid sequence is its own U+FFFD, as Go's utf8.DecodeRune reports them
    (b"\xe2\x82A", r'"\ufffd\ufffdA"'),
    (b"\xf0\x9f\x98", r'"\ufffd\ufffd\ufffd"'),  # a 4-byte sequence cut short
    (b"\xed\xa0\x80", r'"\ufffd\ufffd\ufffd"'),  # an encoded surrogate
    (b"\xc0\x80", r'"\ufffd\ufffd"'),  # an overlong NUL
    (b"\xf4\x90\x80\x80", r'"\ufffd\ufffd\ufffd\ufffd"'),  # beyond U+10FFFF
    ("\ufffd".encode(), '"\ufffd"'),  # a real U+FFFD stays raw
])
def test_log_field_escaping(data: bytes, log: str) -> None:
    assert encode_entry(entry(data)) == ('{"log":' + log + ',"stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}\n').encode()


@pytest.mark.parametrize("time_ns, text", [
    (T0, "2024-01-02T03:04:05.123456789Z"),
    (1_504_227_661_000_000_001, "2017-09-01T01:01:01.000000001Z"),
    (1_504_227_661_500_000_000, "2017-09-01T01:01:01.5Z"),  # RFC3339Nano drops trailing zeros...
    (1_504_227_661_000_000_000, "2017-09-01T01:01:01Z"),  # ... and the dot with them
    (0, "1970-01-01T00:00:00Z"),
])
def test_time_is_go_rfc3339nano(time_ns: int, text: str) -> None:
    assert encode_entry(entry(b"x\n", "stderr", time_ns)) == f'{{"log":"x\\n","stream":"stderr","time":"{text}"}}\n'.encode()


def test_field_order_and_attrs() -> None:
    # moby: log, stream, attrs, time; attrs as encoding/json writes a map: keys sorted, \t shortened
    e = LogEntry("stdout", b"hi\n", T0, (("z", "last"), ("a", "x<y\t\"q\"")))
    assert encode_entry(e) == (b'{"log":"hi\\n","stream":"stdout","attrs":{"a":"x\\u003cy\\t\\"q\\"","z":"last"},'
                               b'"time":"2024-01-02T03:04:05.123456789Z"}\n')


def test_empty_fields_are_omitted_as_go_does() -> None:
    assert encode_entry(LogEntry("", b"", 0)) == b'{"time":"1970-01-01T00:00:00Z"}\n'


def test_every_entry_is_valid_json_that_round_trips() -> None:
    data = bytes(range(256)) + "é€🚀\u2028".encode() + b"\n"
    line = encode_entry(LogEntry("stderr", data, T0, (("tag", "web"),)))
    assert line.count(b"\n") == 1
    parsed = json.loads(line)
    assert list(parsed) == ["log", "stream", "attrs", "time"]
    back = decode_entry(line)
    # the 128 bytes 0x80-0xff are not UTF-8: each reads back as U+FFFD
    assert back.data == bytes(range(128)) + "\ufffd".encode() * 128 + "é€🚀\u2028".encode() + b"\n"
    assert (back.stream, back.time_ns, back.attrs) == ("stderr", T0, (("tag", "web"),))


@pytest.mark.parametrize("line, expected", [
    (b'{"log":"a\\n","stream":"stdout","time":"2024-01-02T05:04:05.5+02:00"}', entry(b"a\n", time_ns=1_704_164_645_500_000_000)),
    (b'{"time":"2024-01-02T03:04:05.1234567891234Z","stream":"stderr","log":"b"}', entry(b"b", "stderr", T0)),  # Go keeps nine digits
    (b'{"log":"x","stream":"stdout"}', entry(b"x", time_ns=GO_ZERO_TIME_NS)),  # Go: the zero time
    (b'{"log":null,"stream":"stdout","time":"2024-01-02T03:04:05.123456789Z","extra":1}', entry(b"")),
    (b'{"log":"\\ud800 \\ud83d\\ude80","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}',
     entry("\ufffd 🚀".encode())),
    (b'{"log":"raw \xff byte","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}', entry("raw \ufffd byte".encode())),
])
def test_decode(line: bytes, expected: LogEntry) -> None:
    assert decode_entry(line) == expected


@pytest.mark.parametrize("line", [
    b'{"log":"a\\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"',  # torn
    b"not json",
    b'["log"]',
    b'{"log":5,"stream":"stdout","time":"2024-01-02T03:04:05Z"}',
    b'{"log":"x","stream":"stdout","time":"yesterday"}',
    b'{"log":"x","stream":"stdout","time":"2024-02-30T00:00:00Z"}',
    b'{"log":"x","stream":"stdout","time":"2024-01-02T03:04:05Z","attrs":{"n":1}}',
])
def test_decode_refuses_what_go_refuses(line: bytes) -> None:
    with pytest.raises(InvalidArgument):
        decode_entry(line)


# --- the writer: moby's copier --------------------------------------------------------------------

def decoded(path: pathlib.Path) -> list[LogEntry]:
    return [decode_entry(line) for line in lines_of(path)]


def test_lines_become_entries(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "c-json.log"
    with LogWriter(path) as w:
        w.write("stdout", b"one\ntwo\n", now_ns=T0)
        w.write("stderr", b"oops\n", now_ns=T0 + 1)
        w.write("stdout", b"\n", now_ns=T0 + 2)
    assert lines_of(path) == [
        b'{"log":"one\\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}\n',
        b'{"log":"two\\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}\n',
        b'{"log":"oops\\n","stream":"stderr","time":"2024-01-02T03:04:05.12345679Z"}\n',
        b'{"log":"\\n","stream":"stdout","time":"2024-01-02T03:04:05.123456791Z"}\n',
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_line_waits_for_its_newline_per_stream(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log"
    w = LogWriter(path)
    w.write("stdout", b"hel", now_ns=1)
    w.write("stderr", b"err", now_ns=2)
    assert path.read_bytes() == b""
    w.write("stdout", b"lo\nwor", now_ns=3)
    w.write("stderr", b"or\n", now_ns=4)
    w.close(now_ns=5)
    # a line is stamped when its newline arrives; what is left at close has no newline
    assert decoded(path) == [entry(b"hello\n", time_ns=3), entry(b"error\n", "stderr", 4), entry(b"wor", time_ns=5)]
    w.close()  # twice is fine
    with pytest.raises(ValueError):
        w.write("stdout", b"late\n")


@pytest.mark.parametrize("size, pieces", [
    (LINE_BUFFER - 1, [LINE_BUFFER]),  # 16383 bytes and the newline fit the buffer: one entry
    (LINE_BUFFER, [LINE_BUFFER, 1]),  # 16384 bytes fill it: a piece, then the newline alone
    (LINE_BUFFER + 1, [LINE_BUFFER, 2]),
    (3 * LINE_BUFFER + 100, [LINE_BUFFER, LINE_BUFFER, LINE_BUFFER, 101]),
])
def test_long_lines_are_cut_at_16k(tmp_path: pathlib.Path, size: int, pieces: list[int]) -> None:
    path = tmp_path / "log"
    data = bytes(ord("a") + i % 26 for i in range(size)) + b"\n"
    with LogWriter(path) as w:
        for i in range(0, len(data), 1000):  # fed in small writes, as a pipe delivers them
            w.write("stdout", data[i:i + 1000], now_ns=T0 + i)
        w.write("stdout", b"next\n", now_ns=T0 + 10 * SECOND)
    got = decoded(path)
    assert [len(e.data) for e in got[:-1]] == pieces
    assert [e.data.endswith(b"\n") for e in got[:-1]] == [False] * (len(pieces) - 1) + [True]
    assert b"".join(e.data for e in got[:-1]) == data
    assert {e.time_ns for e in got[:-1]} == {got[0].time_ns}  # every piece carries the first one's time
    assert got[-1] == entry(b"next\n", time_ns=T0 + 10 * SECOND)


def test_a_cut_splits_bytes_not_characters(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log"
    with LogWriter(path) as w:
        w.write("stdout", b"a" * (LINE_BUFFER - 1) + "é".encode() + b"\n", now_ns=T0)
    first, second = lines_of(path)
    assert first.startswith(b'{"log":"' + b"a" * (LINE_BUFFER - 1) + b'\\ufffd","stream"')
    assert second.startswith(b'{"log":"\\ufffd\\n","stream"')


def test_a_stream_ending_in_a_long_line_without_newline(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log"
    w = LogWriter(path)
    w.write("stderr", b"x" * (LINE_BUFFER + 5), now_ns=7)
    w.write("stdout", b"ok\n", now_ns=8)
    w.close(now_ns=9)
    assert decoded(path) == [entry(b"x" * LINE_BUFFER, "stderr", 7), entry(b"ok\n", time_ns=8),
                             entry(b"x" * 5, "stderr", 7)]


def test_appends_and_attrs(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b'{"log":"before\\n","stream":"stdout","time":"2024-01-02T03:04:05Z"}\n')
    with LogWriter(path, attrs={"tag": "web", "env": "prod"}) as w:
        w.write("stdout", b"after\n", now_ns=T0)
    assert lines_of(path)[1] == (b'{"log":"after\\n","stream":"stdout","attrs":{"env":"prod","tag":"web"},'
                                 b'"time":"2024-01-02T03:04:05.123456789Z"}\n')


def test_writer_refuses_other_streams(tmp_path: pathlib.Path) -> None:
    with LogWriter(tmp_path / "log") as w, pytest.raises(ValueError):
        w.write("stdin", b"x\n")


# --- the reader -----------------------------------------------------------------------------------

def write_log(path: pathlib.Path, entries: list[LogEntry]) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(encode_entry(e) for e in entries))


# ten entries, one a second, alternating streams: out0 err1 out2 err3 ...; at half seconds, which
# a float holds exactly (since and until are float seconds: about 0.24 µs apart in this century)
BASE = 1_704_164_645_500_000_000
TEN = [entry(f"{'out' if i % 2 == 0 else 'err'}{i}\n".encode(), "stdout" if i % 2 == 0 else "stderr", BASE + i * SECOND)
       for i in range(10)]


@pytest.fixture
def ten(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "ten.log"
    write_log(path, TEN)
    return path


def texts(entries: Iterator[LogEntry]) -> list[str]:
    return [e.data.decode().strip() for e in entries]


def seconds(i: float) -> float:
    """Entry i's time (i seconds after BASE) in float seconds."""
    return BASE / SECOND + i


def after(t: float) -> float:
    return math.nextafter(t, math.inf)


def before(t: float) -> float:
    return math.nextafter(t, -math.inf)


def test_read_everything_or_one_stream(ten: pathlib.Path) -> None:
    assert list(read_logs(ten)) == TEN
    assert texts(read_logs(ten, stderr=False)) == ["out0", "out2", "out4", "out6", "out8"]
    assert texts(read_logs(ten, stdout=False)) == ["err1", "err3", "err5", "err7", "err9"]
    with pytest.raises(InvalidArgument, match="at least one stream"):
        read_logs(ten, stdout=False, stderr=False)


def test_a_missing_log_fails_at_the_call(tmp_path: pathlib.Path) -> None:
    with pytest.raises(NotFound):
        read_logs(tmp_path / "nope.log")


@pytest.mark.parametrize("tail, expected", [
    (None, [f"{'out' if i % 2 == 0 else 'err'}{i}" for i in range(10)]),
    (-1, [f"{'out' if i % 2 == 0 else 'err'}{i}" for i in range(10)]),  # moby: a negative tail is "all"
    (0, []),
    (1, ["err9"]),
    (3, ["err7", "out8", "err9"]),
    (10, [f"{'out' if i % 2 == 0 else 'err'}{i}" for i in range(10)]),
    (1000, [f"{'out' if i % 2 == 0 else 'err'}{i}" for i in range(10)]),
])
def test_tail(ten: pathlib.Path, tail: int | None, expected: list[str]) -> None:
    assert texts(read_logs(ten, tail=tail)) == expected


def test_tail_counts_lines_before_the_stream_choice(ten: pathlib.Path) -> None:
    # as in moby: the last 3 lines of the file, then only stderr among them
    assert texts(read_logs(ten, tail=3, stdout=False)) == ["err7", "err9"]
    assert texts(read_logs(ten, tail=1, stderr=False)) == []


def test_tail_then_since(ten: pathlib.Path) -> None:
    assert texts(read_logs(ten, tail=5, since=seconds(7))) == ["err7", "out8", "err9"]
    assert texts(read_logs(ten, tail=2, since=seconds(3))) == ["out8", "err9"]


@pytest.mark.parametrize("since, until, expected", [
    (seconds(2.5), None, ["err3", "out4", "err5", "out6", "err7", "out8", "err9"]),
    (seconds(3), None, ["err3", "out4", "err5", "out6", "err7", "out8", "err9"]),  # since an entry's time: kept
    (after(seconds(3)), None, ["out4", "err5", "out6", "err7", "out8", "err9"]),
    (None, seconds(2), ["out0", "err1", "out2"]),  # until an entry's time: kept
    (None, before(seconds(2)), ["out0", "err1"]),
    (seconds(2), seconds(3.5), ["out2", "err3"]),
    (seconds(20), None, []),
    (None, seconds(-20), []),
])
def test_since_until(ten: pathlib.Path, since: float | None, until: float | None, expected: list[str]) -> None:
    assert texts(read_logs(ten, since=since, until=until)) == expected


def test_nanosecond_bounds(tmp_path: pathlib.Path) -> None:
    # the pieces of a cut line share their first piece's time; a float cannot name it, since_ns can
    path = tmp_path / "log"
    write_log(path, [entry(b"before\n", time_ns=T0 - 1), entry(b"x" * LINE_BUFFER, time_ns=T0),
                     entry(b"y\n", time_ns=T0), entry(b"after\n", time_ns=T0 + 1)])
    assert texts(read_logs(path, since_ns=T0)) == ["x" * LINE_BUFFER, "y", "after"]
    assert texts(read_logs(path, since_ns=T0 + 1)) == ["after"]
    assert texts(read_logs(path, until_ns=T0)) == ["before", "x" * LINE_BUFFER, "y"]
    assert texts(read_logs(path, until_ns=T0 - 1)) == ["before"]
    with pytest.raises(ValueError):
        read_logs(path, since=1.0, since_ns=1)


def test_since_lets_everything_through_after_the_first_match(tmp_path: pathlib.Path) -> None:
    # moby's forwarder: times need not be monotonic; once one entry is at or after since, the check stops
    path = tmp_path / "log"
    write_log(path, [entry(b"a\n", time_ns=BASE), entry(b"b\n", time_ns=BASE + 5 * SECOND),
                     entry(b"c\n", time_ns=BASE + SECOND), entry(b"d\n", time_ns=BASE + 6 * SECOND)])
    assert texts(read_logs(path, since=seconds(4))) == ["b", "c", "d"]


def test_until_ends_the_read_even_on_an_unchosen_stream(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log"
    write_log(path, [entry(b"a\n", time_ns=BASE), entry(b"late\n", "stderr", BASE + 9 * SECOND),
                     entry(b"b\n", time_ns=BASE + SECOND)])
    assert texts(read_logs(path, until=seconds(5), stderr=False)) == ["a"]


def test_a_torn_last_line_is_left_for_later(ten: pathlib.Path) -> None:
    with open(ten, "ab") as f:
        f.write(encode_entry(entry(b"half\n"))[:20])
    assert list(read_logs(ten)) == TEN
    assert texts(read_logs(ten, tail=2)) == ["out8", "err9"]


def test_a_bad_line_ends_the_read_as_in_moby(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "log"
    write_log(path, TEN[:2])
    with open(path, "ab") as f:
        f.write(b"\n  \n{not json}\n")  # blank lines are skipped, as Go's decoder skips whitespace
    write_log(path, TEN[2:4])
    assert texts(read_logs(path)) == ["out0", "err1"]
    assert "nothing after it is read" in caplog.text
    assert texts(read_logs(path, tail=2)) == ["out2", "err3"]  # a tail that starts after it does not see it


def test_unicode_and_binary_output(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log"
    with LogWriter(path) as w:
        w.write("stdout", "héllo wörld 🚀\n".encode(), now_ns=T0)
        w.write("stderr", b"\x00\x01\xfe\xff\n", now_ns=T0)
    assert [e.data for e in read_logs(path)] == ["héllo wörld 🚀\n".encode(), b"\x00\x01" + "\ufffd\ufffd".encode() + b"\n"]


def test_tail_reads_from_the_end(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.log"
    with open(path, "wb") as f:
        f.truncate(1 << 30)  # a gibibyte that is never read (sparse: costs no disk)
    write_log(path, [entry(f"line {i}\n".encode(), time_ns=T0 + i) for i in range(20)])
    read = 0
    real_pread = os.pread

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        nonlocal read
        data = real_pread(fd, n, offset)
        read += len(data)
        return data

    monkeypatch.setattr(jsonlog.os, "pread", counting_pread)
    assert texts(read_logs(path, tail=10)) == [f"line {i}" for i in range(10, 20)]
    assert read < 256 * 1024


def test_the_log_is_read_as_it_was_at_the_call(ten: pathlib.Path) -> None:
    logs = read_logs(ten, tail=2)
    write_log(ten, [entry(b"later\n")])
    assert texts(logs) == ["out8", "err9"]


def test_close_releases_the_file(ten: pathlib.Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    with read_logs(ten) as logs:
        next(logs)
    assert len(os.listdir("/proc/self/fd")) == before


# --- following ------------------------------------------------------------------------------------

@pytest.fixture(params=["inotify", "polling"])
def wakeups(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "polling":
        def no_inotify(path: str) -> int:
            raise OSError(24, "inotify_init1: Too many open files")
        monkeypatch.setattr(jsonlog, "_inotify_watch", no_inotify)
    return str(request.param)


class Follower:
    """Runs follow_logs on a thread, collecting entries."""

    def __init__(self, path: pathlib.Path, *, tail: int | None = None, stdout: bool = True,
                 until: float | None = None) -> None:
        self.stop = threading.Event()
        self.got: list[LogEntry] = []
        self.arrived = threading.Condition()
        self.logs = follow_logs(path, tail=tail, stdout=stdout, until=until, stop=self.stop.is_set, poll_interval=0.02)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.logs:
            for e in self.logs:
                with self.arrived:
                    self.got.append(e)
                    self.arrived.notify_all()

    def wait_for(self, n: int, timeout: float = 10) -> list[str]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.got) >= n, timeout), texts(iter(self.got))
        return texts(iter(self.got))

    def finish(self, timeout: float = 10) -> list[str]:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive()
        return texts(iter(self.got))


def test_follow_yields_what_a_writer_appends(ten: pathlib.Path, wakeups: str) -> None:
    f = Follower(ten, tail=2)
    assert f.wait_for(2) == ["out8", "err9"]
    written: list[str] = []

    def writer() -> None:
        with LogWriter(ten) as w:
            for i in range(50):
                w.write("stdout" if i % 3 else "stderr", f"new {i}\n".encode())
                written.append(f"new {i}")
                time.sleep(0.002)

    t = threading.Thread(target=writer)
    t.start()
    t.join()
    assert f.wait_for(52)[2:] == written
    assert f.finish() == ["out8", "err9"] + written


def test_follow_waits_for_a_torn_line(tmp_path: pathlib.Path, wakeups: str) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"")
    f = Follower(path)
    line = encode_entry(entry(b"slow line\n"))
    with open(path, "ab", buffering=0) as out:
        out.write(line[:10])
        time.sleep(0.1)
        assert f.got == []
        out.write(line[10:30])
        time.sleep(0.1)
        out.write(line[30:] + encode_entry(entry(b"next\n")))
    assert f.wait_for(2) == ["slow line", "next"]
    assert f.finish() == ["slow line", "next"]


def test_follow_picks_up_a_line_torn_at_the_call(ten: pathlib.Path, wakeups: str) -> None:
    line = encode_entry(entry(b"torn\n"))
    with open(ten, "ab") as out:
        out.write(line[:15])
    f = Follower(ten, tail=1)
    assert f.wait_for(1) == ["err9"]
    with open(ten, "ab") as out:
        out.write(line[15:])
    assert f.wait_for(2) == ["err9", "torn"]
    f.finish()


def test_stop_drains_what_was_written_before_it(tmp_path: pathlib.Path, wakeups: str) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"")
    stopped = threading.Event()
    calls = 0

    def stop() -> bool:
        # The producer finishes and sets the flag between two of the follower's reads:
        # the entries written just before must still come out.
        nonlocal calls
        calls += 1
        if calls == 3:
            write_log(path, TEN)
            stopped.set()
        return stopped.is_set()

    got = list(follow_logs(path, stop=stop, poll_interval=0.01))
    assert got == TEN


def test_follow_with_tail_zero_shows_only_new_entries(ten: pathlib.Path, wakeups: str) -> None:
    f = Follower(ten, tail=0, stdout=False)
    write_log(ten, [entry(b"new out\n"), entry(b"new err\n", "stderr")])
    assert f.wait_for(1) == ["new err"]
    assert f.finish() == ["new err"]


def test_follow_ends_past_until(ten: pathlib.Path, wakeups: str) -> None:
    f = Follower(ten, tail=1, until=seconds(20))
    f.wait_for(1)
    write_log(ten, [entry(b"in time\n", time_ns=BASE + 15 * SECOND), entry(b"too late\n", time_ns=BASE + 25 * SECOND),
                    entry(b"never\n", time_ns=BASE + 16 * SECOND)])
    f.thread.join(10)
    assert not f.thread.is_alive()  # it ended by itself
    assert texts(iter(f.got)) == ["err9", "in time"]


def test_a_bad_line_while_following_ends_it(tmp_path: pathlib.Path, wakeups: str) -> None:
    path = tmp_path / "log"
    write_log(path, TEN[:1])
    with open(path, "ab") as out:
        out.write(b"garbage\n")  # in what is there at the call: reading it stops there ...
    write_log(path, TEN[1:2])
    f = Follower(path)
    write_log(path, TEN[2:3])  # ... but following goes on after it, as in moby
    assert f.wait_for(2) == ["out0", "out2"]
    with open(path, "ab") as out:
        out.write(b"garbage\n")  # while following, it ends the follow
    write_log(path, TEN[3:4])
    f.thread.join(10)
    assert not f.thread.is_alive()
    assert texts(iter(f.got)) == ["out0", "out2"]


def test_polling_is_what_is_left_without_inotify(ten: pathlib.Path, wakeups: str) -> None:
    w = jsonlog._Wakeup(str(ten))
    try:
        assert w.uses_inotify == (wakeups == "inotify")
        start = time.monotonic()
        w.wait(0.05)
        assert time.monotonic() - start >= 0.04  # nothing written: it sleeps the whole timeout
        if w.uses_inotify:
            write_log(ten, TEN[:1])
            start = time.monotonic()
            w.wait(5)
            assert time.monotonic() - start < 1  # a write wakes it at once
    finally:
        w.close()


# --- what the logs endpoint sends -----------------------------------------------------------------

def test_api_bytes() -> None:
    out = LogEntry("stdout", b"hello\n", T0 - 789, (("tag", "web app"), ("a", "b&c")))
    err = LogEntry("stderr", b"oops\n", T0)
    assert format_entry_for_api(out, timestamps=False, tty=True) == b"hello\n"
    assert format_entry_for_api(err, timestamps=False, tty=True) == b"oops\n"
    # moby's rfc3339NanoFixed: always nine digits
    assert format_entry_for_api(out, timestamps=True, tty=True) == b"2024-01-02T03:04:05.123456000Z hello\n"
    assert format_entry_for_api(out, timestamps=False, tty=False) == b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n"
    framed = format_entry_for_api(err, timestamps=True, tty=False)
    assert framed == b"\x02\x00\x00\x00\x00\x00\x00\x24" + b"2024-01-02T03:04:05.123456789Z oops\n"
    assert Demuxer().feed(framed) == [(STDERR, b"2024-01-02T03:04:05.123456789Z oops\n")]
    # --details: attributes sorted, query-escaped, then a space (even with none)
    assert format_entry_for_api(out, timestamps=True, tty=True, details=True) == \
        b"2024-01-02T03:04:05.123456000Z a=b%26c,tag=web+app hello\n"
    assert format_entry_for_api(err, timestamps=False, tty=True, details=True) == b" oops\n"
    zero = LogEntry("stdout", b"x", GO_ZERO_TIME_NS)
    assert format_entry_for_api(zero, timestamps=True, tty=True) == b"0001-01-01T00:00:00.000000000Z x"


def test_api_stream_of_a_log(ten: pathlib.Path) -> None:
    body = b"".join(format_entry_for_api(e, timestamps=False, tty=False) for e in read_logs(ten, tail=4))
    d = Demuxer()
    assert d.feed(body) == [(STDOUT, b"out6\n"), (STDERR, b"err7\n"), (STDOUT, b"out8\n"), (STDERR, b"err9\n")]
    d.eof()
