"""Sizes and durations as docker/go-units prints and parses them.

The expected strings are go-units' own test cases (size_test.go, duration_test.go)
plus values checked against the Go implementation.
"""

from __future__ import annotations

import pytest

from portside.units import (
    GB,
    KB,
    MB,
    PB,
    TB,
    GiB,
    KiB,
    MiB,
    PiB,
    TiB,
    bytes_size,
    from_human_size,
    human_duration,
    human_size,
    human_size_precision,
    ram_in_bytes,
    time_ago,
)
from portside.errors import InvalidArgument


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0B"),
        (1, "1B"),
        (999, "999B"),
        (1000, "1kB"),
        (1024, "1.024kB"),
        (1000000, "1MB"),
        (1048576, "1.049MB"),
        (2 * MB, "2MB"),
        (4261296, "4.261MB"),
        (999950, "1000kB"),  # rounds up without moving to the next unit, as Go does
        (3.42 * GB, "3.42GB"),
        (5.372 * TB, "5.372TB"),
        (2.22 * PB, "2.22PB"),
        (10000000000000 * PB, "1e+04YB"),
        (-5000, "-5000B"),
    ],
)
def test_human_size(size: float, expected: str) -> None:
    assert human_size(size) == expected


@pytest.mark.parametrize(
    ("size", "precision", "expected"),
    [
        (4261296, 3, "4.26MB"),  # docker image ls
        (1234567890, 3, "1.23GB"),
        (0, 3, "0B"),
        (999, 3, "999B"),
        (1001, 3, "1kB"),
        (12345, 3, "12.3kB"),
        (123456, 2, "1.2e+02kB"),
        (4261296, 4, "4.261MB"),
    ],
)
def test_human_size_precision(size: float, precision: int, expected: str) -> None:
    assert human_size_precision(size, precision) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0B"),
        (1024, "1KiB"),
        (1024 * 1024, "1MiB"),
        (2 * MiB, "2MiB"),
        (3.42 * GiB, "3.42GiB"),
        (5.372 * TiB, "5.372TiB"),
        (2.22 * PiB, "2.22PiB"),
        (KiB * KiB * KiB * KiB * KiB * PiB, "1.049e+06YiB"),
    ],
)
def test_bytes_size(size: float, expected: str) -> None:
    assert bytes_size(size) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("0b", 0),
        ("0 B", 0),
        ("32", 32),
        ("32b", 32),
        ("32B", 32),
        ("32k", 32 * KB),
        ("32K", 32 * KB),
        ("32kb", 32 * KB),
        ("32Kb", 32 * KB),
        ("32Mb", 32 * MB),
        ("32Gb", 32 * GB),
        ("32Tb", 32 * TB),
        ("32Pb", 32 * PB),
        ("32.5kB", 32500),
        ("32.5 kB", 32500),
        ("32.5 B", 32),
        ("0.3 K", 300),
        (".3kB", 300),
        ("0.", 0),
        ("0. ", 0),
        ("-0", 0),
        ("32.", 32),
        ("32. b", 32),
        ("0 ", 0),
        ("1e3", 1000),
        ("1_0", 10),
        ("32KiB", 32 * KB),
    ],
)
def test_from_human_size(text: str, expected: int) -> None:
    assert from_human_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid size: ''"),
        ("hello", "invalid size: 'hello'"),
        (".", 'strconv.ParseFloat: parsing ".": invalid syntax'),
        (" 0", 'strconv.ParseFloat: parsing "": invalid syntax'),
        (" 32 ", 'strconv.ParseFloat: parsing "": invalid syntax'),
        ("-32", "invalid size: '-32'"),
        ("-32 B", "invalid size: '-32 B'"),
        ("32b.", 'strconv.ParseFloat: parsing "32b.": invalid syntax'),
        ("32 bb", "invalid suffix: 'bb'"),
        ("32  b", "invalid suffix: ' b'"),
        ("32m b", 'strconv.ParseFloat: parsing "32m": invalid syntax'),
        ("32bm", "invalid suffix: 'bm'"),
        ("0b ", 'strconv.ParseFloat: parsing "0b": invalid syntax'),
        ("32kibb", "invalid suffix: 'kibb'"),
    ],
)
def test_from_human_size_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        from_human_size(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32", 32),
        ("32b", 32),
        ("32B", 32),
        ("32k", 32 * KiB),
        ("32K", 32 * KiB),
        ("32kb", 32 * KiB),
        ("32Kib", 32 * KiB),
        ("32KIB", 32 * KiB),
        ("32Mb", 32 * MiB),
        ("32Gb", 32 * GiB),
        ("32Tb", 32 * TiB),
        ("32PB", 32 * PiB),
        ("32P", 32 * PiB),
        ("32.3", 32),
        ("32.3 mb", 33869004),
        ("0.3MB", 314572),
        ("512k", 524288),
        ("10m", 10485760),
        ("1.5GB", 1610612736),
        ("1.5g", 1610612736),
    ],
)
def test_ram_in_bytes(text: str, expected: int) -> None:
    assert ram_in_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "hello", "-32", " 32 ", "32m b", "32bm", "10x"])
def test_ram_in_bytes_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument):
        ram_in_bytes(text)


MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 30 * DAY
YEAR = 365 * DAY


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "Less than a second"),
        (0.45, "Less than a second"),
        (-5, "Less than a second"),
        (1, "1 second"),
        (1.9, "1 second"),
        (45, "45 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (3 * MINUTE, "3 minutes"),
        (35 * MINUTE + 40, "35 minutes"),
        (59 * MINUTE, "59 minutes"),
        (HOUR, "About an hour"),
        (HOUR + 29 * MINUTE, "About an hour"),
        (HOUR + 31 * MINUTE, "2 hours"),
        (HOUR + 59 * MINUTE, "2 hours"),
        (3 * HOUR + 29 * MINUTE, "3 hours"),
        (3 * HOUR + 31 * MINUTE, "4 hours"),
        (DAY, "24 hours"),
        (DAY + 12 * HOUR, "36 hours"),
        (2 * DAY, "2 days"),
        (7 * DAY, "7 days"),
        (13 * DAY + 5 * HOUR, "13 days"),
        (2 * WEEK, "2 weeks"),
        (2 * WEEK + 4 * DAY, "2 weeks"),
        (4 * WEEK + 3 * DAY, "4 weeks"),
        (MONTH, "4 weeks"),
        (MONTH + 2 * WEEK, "6 weeks"),
        (2 * MONTH, "2 months"),
        (3 * MONTH + WEEK, "3 months"),
        (5 * MONTH + 2 * WEEK, "5 months"),
        (13 * MONTH, "13 months"),
        (24 * MONTH, "24 months"),
        (24 * MONTH + 2 * WEEK, "2 years"),
        (3 * YEAR + 2 * MONTH, "3 years"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (0, "Less than a second ago"),
        (30, "30 seconds ago"),
        (2 * HOUR, "2 hours ago"),
        (3 * DAY, "3 days ago"),
        (5 * MONTH, "5 months ago"),
    ],
)
def test_time_ago(age: float, expected: str) -> None:
    created = 1_700_000_000
    assert time_ago(created, now=created + age) == expected


def test_time_ago_defaults_to_now() -> None:
    import time

    assert time_ago(time.time() - 3 * HOUR) == "3 hours ago"
