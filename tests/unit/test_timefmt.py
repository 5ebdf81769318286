"""Times and durations read as Go and moby read them: RFC 3339, time.ParseDuration, GetTimestamp."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from portside.errors import InvalidArgument
from portside.timefmt import format_rfc3339, parse_duration, parse_rfc3339, parse_timestamp, validate_created

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *,
       offset_hours: float = 0, fraction: float = 0.0) -> float:
    zone = timezone(timedelta(hours=offset_hours))
    return datetime(year, month, day, hour, minute, tzinfo=zone).timestamp() + fraction


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The daemon's zone is UTC+02:00 (no daylight saving) for the length of a test."""
    monkeypatch.setenv("TZ", "XYZ-2")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("value, expected", [
    ("2024-01-01T10:00:00Z", at(2024, 1, 1, 10)),
    ("2024-01-01T10:00:00.5Z", at(2024, 1, 1, 10, fraction=0.5)),
    ("2024-01-01T10:00:00,25Z", at(2024, 1, 1, 10, fraction=0.25)),  # Go takes a comma too
    ("2024-01-01T10:00:00.123456789123Z", at(2024, 1, 1, 10, fraction=0.123456789)),
    ("2024-01-01T10:00:00+02:00", at(2024, 1, 1, 10, offset_hours=2)),
    ("2024-01-01T10:00:00-05:30", at(2024, 1, 1, 10, offset_hours=-5.5)),
    ("2024-01-01T1:00:00Z", at(2024, 1, 1, 1)),  # Go's parser takes a one-digit hour
    ("2024-02-29T00:00:00Z", at(2024, 2, 29)),
    ("0000-01-01T00:00:00Z", -62167219200.0),
    # what Go refuses reads as 0.0, never an exception
    ("2024-02-30T00:00:00Z", 0.0),
    ("2023-02-29T00:00:00Z", 0.0),
    ("2024-13-01T00:00:00Z", 0.0),
    ("2024-01-01T24:00:00Z", 0.0),
    ("2024-01-01T10:60:00Z", 0.0),
    ("2024-01-01T10:00:60Z", 0.0),
    ("2024-01-01T10:00:00+25:00", 0.0),
    ("2024-01-01t10:00:00z", 0.0),
    ("2024-01-01T10:00:00", 0.0),
    ("2024-01-01", 0.0),
    (" 2024-01-01T10:00:00Z", 0.0),
    ("", 0.0),
    ("yesterday", 0.0),
])
def test_parse_rfc3339(value: str, expected: float) -> None:
    assert parse_rfc3339(value) == pytest.approx(expected)


@pytest.mark.parametrize("ns, text", [
    (0, "1970-01-01T00:00:00Z"),
    (1_700_000_000_123_000_000, "2023-11-14T22:13:20.123Z"),
    (1_700_000_000_000_000_001, "2023-11-14T22:13:20.000000001Z"),
])
def test_format_rfc3339_round_trips(ns: int, text: str) -> None:
    assert format_rfc3339(ns) == text
    assert parse_rfc3339(text) == pytest.approx(ns / 1e9)


@pytest.mark.parametrize("value", ["", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.999999999+01:00"])
def test_validate_created_accepts(value: str) -> None:
    validate_created(value)


@pytest.mark.parametrize("value, message", [
    ("2024-02-30T00:00:00Z", 'parsing time "2024-02-30T00:00:00Z": day out of range'),
    ("2024-00-01T00:00:00Z", 'parsing time "2024-00-01T00:00:00Z": month out of range'),
    ("2024-01-01T25:00:00Z", 'parsing time "2024-01-01T25:00:00Z": hour out of range'),
    ("2024-01-01", 'parsing time "2024-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse'),
    ("yesterday", 'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse'),
])
def test_validate_created_refuses(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        validate_created(value)
    assert str(e.value) == message


@pytest.mark.parametrize("value, ns", [
    ("0", 0),
    ("-0", 0),
    ("0s", 0),
    ("300ms", 300_000_000),
    ("10m", 600_000_000_000),
    ("1h30m", 5_400_000_000_000),
    ("1.5h", 5_400_000_000_000),
    (".5s", 500_000_000),
    ("1.s", 1_000_000_000),
    ("+3s", 3_000_000_000),
    ("-2m", -120_000_000_000),
    ("2us", 2_000),
    ("2µs", 2_000),
    ("2μs", 2_000),
    ("7ns", 7),
    ("1h2m3s4ms5us6ns", 3_723_004_005_006),
    ("9223372036854775807ns", 2**63 - 1),
    ("-9223372036854775808ns", -(2**63)),
])
def test_parse_duration(value: str, ns: int) -> None:
    assert parse_duration(value) == ns


@pytest.mark.parametrize("value, message", [
    ("", 'time: invalid duration ""'),
    ("-", 'time: invalid duration "-"'),
    ("h", 'time: invalid duration "h"'),
    (".s", 'time: invalid duration ".s"'),
    ("10", 'time: missing unit in duration "10"'),
    ("1h30", 'time: missing unit in duration "1h30"'),
    ("3d", 'time: unknown unit "d" in duration "3d"'),
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
])
def test_parse_duration_refuses(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_duration(value)
    assert str(e.value) == message


@pytest.mark.parametrize("value, expected", [
    # a Go duration before now
    ("10m", NOW - 600),
    ("1h30m", NOW - 5400),
    ("1.5h", NOW - 5400),
    ("300ms", NOW - 0.3),
    ("0s", NOW),
    ("-10m", NOW + 600),
    # Unix seconds; "0" is a timestamp, not a duration
    ("0", 0.0),
    ("1700000000", 1_700_000_000.0),
    ("1700000000.5", 1_700_000_000.5),
    ("1700000000.", 1_700_000_000.0),
    ("1700000000.123456789123", 1_700_000_000.123456789),
    ("+5", 5.0),
    # dates with a zone
    ("2024-01-01T10:00:00Z", at(2024, 1, 1, 10)),
    ("2024-01-01T10:00:00.5+02:00", at(2024, 1, 1, 10, offset_hours=2, fraction=0.5)),
    ("2024-01-01T10:00:00-05:00", at(2024, 1, 1, 10, offset_hours=-5)),
    ("2024-01-01T10:30Z", at(2024, 1, 1, 10, 30)),
    ("2024-01-01T10:30+01:00", at(2024, 1, 1, 10, 30, offset_hours=1)),
    ("2024-01-01T10Z", at(2024, 1, 1, 10)),
    ("2024-01-01T10-03:00", at(2024, 1, 1, 10, offset_hours=-3)),
    ("2024-01-01Z", at(2024, 1, 1)),
    ("2024-01-01+02:00", at(2024, 1, 1, offset_hours=2)),
    ("2024-01-01-02:00", at(2024, 1, 1, offset_hours=-2)),
])
def test_parse_timestamp(value: str, expected: float) -> None:
    assert parse_timestamp(value, NOW, what="until") == pytest.approx(expected)


@pytest.mark.parametrize("value, expected", [
    ("2024-01-01", at(2024, 1, 1, offset_hours=2)),
    ("2024-01-01T10", at(2024, 1, 1, 10, offset_hours=2)),
    ("2024-01-01T10:00", at(2024, 1, 1, 10, offset_hours=2)),
    ("2024-01-01T10:00:00", at(2024, 1, 1, 10, offset_hours=2)),
    ("2024-01-01T10:00:00.25", at(2024, 1, 1, 10, offset_hours=2, fraction=0.25)),
    ("2024-01-01T10:00:00Z", at(2024, 1, 1, 10)),  # a zone in the value wins
])
def test_parse_timestamp_without_zone_is_local_time(local_zone: None, value: str, expected: float) -> None:
    assert parse_timestamp(value, NOW, what="until") == pytest.approx(expected)


@pytest.mark.parametrize("value, what, message", [
    ("", "until", "invalid value for 'until' filter: failed to parse value as time or duration: value is empty"),
    ("  ", "since", "invalid value for 'since' filter: failed to parse value as time or duration: value is empty"),
    ("abc", "until",
     "invalid value for 'until' filter: failed to parse value as time or duration: invalid seconds \"abc\": invalid syntax"),
    ("1.5.5", "until", "invalid value for 'until' filter: failed to parse value as time or duration: "
                       "invalid nanoseconds: invalid character '.' at position 1"),
    ("1." + "1" * 21, "until", "invalid value for 'until' filter: failed to parse value as time or duration: "
                              "invalid nanoseconds: length 21 exceeds maximum 20"),
    ("99999999999999999999", "until", "invalid value for 'until' filter: failed to parse value as time or duration: "
                                      "invalid seconds \"99999999999999999999\": value out of range"),
    ("2024-02-30", "until", "invalid value for 'until' filter: parsing time \"2024-02-30\": day out of range"),
    ("2024-01-01T10:00:00z", "until", "invalid value for 'until' filter: parsing time \"2024-01-01T10:00:00z\" "
                                      "as \"2006-01-02T15:04:05Z07:00\": cannot parse"),
    ("2024-1-1", "until", "invalid value for 'until' filter: parsing time \"2024-1-1\" as \"2006-01-02\": cannot parse"),
    ("10 m", "until", "invalid value for 'until' filter: failed to parse value as time or duration: "
                      "invalid seconds \"10 m\": invalid syntax"),
])
def test_parse_timestamp_refuses(value: str, what: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_timestamp(value, NOW, what=what)
    assert str(e.value) == message
