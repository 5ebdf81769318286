"""Content digests (``sha256:<64 hex>``)."""

from __future__ import annotations

import hashlib
import re

from portside.errors import InvalidArgument

_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
_HEX = re.compile(r"[a-f0-9]{64}")


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def validate(untrusted_digest: str) -> str:
    """Return the digest if it is a well-formed sha256 digest, else raise."""
    if not isinstance(untrusted_digest, str) or not _SHA256.fullmatch(untrusted_digest):
        raise InvalidArgument(f"invalid digest: {untrusted_digest!r}")
    return untrusted_digest


def is_digest(value: str) -> bool:
    return bool(_SHA256.fullmatch(value))


def is_hex(value: str) -> bool:
    return bool(_HEX.fullmatch(value))


def hex_of(digest: str) -> str:
    return validate(digest).split(":", 1)[1]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Chain IDs per the OCI image spec: ChainID(L0)=DiffID(L0), ChainID(Ln)=sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append(sha256_bytes(f"{out[-1]} {diff_id}".encode()))
    return out
