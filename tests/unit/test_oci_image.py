"""Untrusted JSON documents: deep nesting and dates Go cannot read are refused as InvalidArgument."""

from __future__ import annotations

import json
from typing import Any

import pytest

from portside.errors import InvalidArgument
from portside.oci.image import load_json, parse_config, parse_index, parse_manifest

DIFF_ID = "sha256:" + "a" * 64


def config(**fields: Any) -> bytes:
    return json.dumps({"rootfs": {"type": "layers", "diff_ids": [DIFF_ID]}, **fields}).encode()


@pytest.mark.parametrize("document", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b"[" * 100_000,  # unterminated as well
])
def test_load_json_refuses_deep_nesting(document: bytes) -> None:
    with pytest.raises(InvalidArgument) as e:
        load_json(document, "manifest")
    assert str(e.value) == "invalid manifest: exceeded max depth"


@pytest.mark.parametrize("parse", [parse_manifest, parse_index, parse_config])
def test_parsers_refuse_deep_nesting(parse: Any) -> None:
    with pytest.raises(InvalidArgument, match="exceeded max depth"):
        parse(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("document", [b"{", b"\xff", b"", b"[1,]"])
def test_load_json_refuses_malformed(document: bytes) -> None:
    with pytest.raises(InvalidArgument, match="^invalid manifest: "):
        load_json(document, "manifest")


def test_load_json_keeps_moderate_nesting() -> None:
    assert load_json(b"[" * 100 + b"]" * 100, "manifest") is not None


@pytest.mark.parametrize("created", [
    None,  # absent
    "",
    "2024-01-01T10:00:00Z",
    "2024-01-01T10:00:00.123456789+02:00",
    "2024-01-01T10:00:00,5Z",  # Go's parser takes a comma before the fraction
])
def test_parse_config_accepts_created(created: str | None) -> None:
    fields = {} if created is None else {"created": created}
    assert parse_config(config(**fields)).created == (created or "")


def test_parse_config_accepts_null_created() -> None:
    assert parse_config(config(created=None)).created == ""


@pytest.mark.parametrize("created, message", [
    ("2024-02-30T00:00:00Z", 'invalid image config: parsing time "2024-02-30T00:00:00Z": day out of range'),
    ("2024-01-01T10:00:00", 'invalid image config: parsing time "2024-01-01T10:00:00" as '
                            '"2006-01-02T15:04:05Z07:00": cannot parse'),
    ("2024-01-01", 'invalid image config: parsing time "2024-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse'),
    ("yesterday", 'invalid image config: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse'),
    (1700000000, "invalid image config: created must be a string"),
])
def test_parse_config_refuses_created(created: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_config(config(created=created))
    assert str(e.value) == message
