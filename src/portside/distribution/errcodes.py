"""A registry's JSON ``errors`` array → Docker's messages and portside's error classes.

The registry answers ``{"errors":[{"code":"MANIFEST_UNKNOWN","message":"...","detail":...}]}``;
distribution's client prints one entry as ``<code in lower case, spaces>: <message>``
and moby wraps the ones a pull can meet in its own words
(``distribution/errors.go``): DENIED → "pull access denied for x, repository
does not exist or may require 'docker login'", MANIFEST_UNKNOWN → "manifest
for x:y not found", NAME_UNKNOWN → "repository x not found".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from portside.errors import Forbidden, Internal, InvalidArgument, NotFound, PortsideError, Unauthorized, Unavailable

_NOT_FOUND = {"BLOB_UNKNOWN", "MANIFEST_UNKNOWN", "NAME_UNKNOWN", "DENIED"}


@dataclass(frozen=True)
class RegistryErrorEntry:
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code.lower().replace('_', ' ')}: {self.message}"


def parse_errors(status: int, body: bytes) -> list[RegistryErrorEntry]:
    """The entries of an error body; an entry made from the status when there is no JSON."""
    try:
        doc = json.loads(body)
        raw = doc.get("errors") if isinstance(doc, dict) else None
    except (ValueError, UnicodeDecodeError):
        raw = None
    entries = []
    for e in raw if isinstance(raw, list) else []:
        if isinstance(e, dict) and isinstance(e.get("code"), str):
            entries.append(RegistryErrorEntry(e["code"], str(e.get("message") or e["code"].lower().replace("_", " "))))
    if entries:
        return entries
    if status == 401:
        return [RegistryErrorEntry("UNAUTHORIZED", "authentication required")]
    if status == 429:
        return [RegistryErrorEntry("TOOMANYREQUESTS", "too many requests")]
    if status == 404:
        return [RegistryErrorEntry("NOT_FOUND", "not found")]
    return [RegistryErrorEntry("UNKNOWN", f"unexpected HTTP status {status}")]


def error_for(entries: list[RegistryErrorEntry], *, what: str = "") -> PortsideError:
    """The portside error for a registry's answer; ``what`` prefixes the message ("manifest for x:y not found")."""
    first = entries[0]
    message = f"{what}: {first}" if what else str(first)
    if first.code in _NOT_FOUND or first.code == "NOT_FOUND":
        return NotFound(message)
    if first.code == "UNAUTHORIZED":
        return Unauthorized(message)
    if first.code == "TOOMANYREQUESTS":
        return Unavailable(message)
    if first.code in ("UNSUPPORTED", "MANIFEST_INVALID", "NAME_INVALID", "TAG_INVALID", "DIGEST_INVALID"):
        return InvalidArgument(message)
    if first.code == "FORBIDDEN":
        return Forbidden(message)
    return Internal(message)


def pull_error(entries: list[RegistryErrorEntry], familiar_name: str, familiar_ref: str) -> PortsideError:
    """moby's translatePullError for the manifest request of ``docker pull``."""
    code = entries[0].code
    if code in ("DENIED", "UNAUTHORIZED"):
        # A 404 like dockerd's, never a 401: on a 401 the docker CLI asks for credentials and retries.
        return NotFound(f"pull access denied for {familiar_name}, repository does not exist or may "
                        f"require 'docker login': {entries[0]}")
    if code == "MANIFEST_UNKNOWN":
        return error_for(entries, what=f"manifest for {familiar_ref} not found")
    if code == "NAME_UNKNOWN":
        return error_for(entries, what=f"repository {familiar_name} not found")
    return error_for(entries)
