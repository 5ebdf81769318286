"""The distribution spec's grammar for repository names, tags and digests.

A name that matches ``NAME`` cannot contain ``..``, an absolute path or a
backslash, so a valid name joined under the storage root stays inside it.
"""

from __future__ import annotations

import re

# distribution/reference: path components of lowercase alphanumerics joined by
# '.', '_', '__' or runs of '-'; components separated by '/'.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
# Only sha256 is stored; other algorithms are refused as unsupported.
DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
MAX_NAME = 255


def valid_name(untrusted: str) -> bool:
    return len(untrusted) <= MAX_NAME and NAME.fullmatch(untrusted) is not None


def valid_tag(untrusted: str) -> bool:
    return TAG.fullmatch(untrusted) is not None


def is_digest(untrusted: str) -> bool:
    return DIGEST.fullmatch(untrusted) is not None


def is_sha256(untrusted: str) -> bool:
    return SHA256.fullmatch(untrusted) is not None
