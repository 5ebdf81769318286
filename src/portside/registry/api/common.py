"""What every endpoint module shares: the context, answer builders, digest checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from portside.errors import NotFound
from portside.registry.codes import RegistryError
from portside.registry.config import Config
from portside.registry.names import is_digest, is_sha256
from portside.registry.storage import Storage
from portside.registry.wire import Response

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
JSON = ("Content-Type", "application/json")


@dataclass(frozen=True)
class Context:
    cfg: Config
    storage: Storage  # handlers see the protocol only


def json_response(obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, [JSON, API_VERSION, *(headers or [])], json.dumps(obj).encode())


def empty(status: int, headers: list[tuple[str, str]]) -> Response:
    return Response(status, [API_VERSION, *headers, ("Content-Length", "0")])


def blob_digest(untrusted: str) -> str:
    """A digest from a path or query: DIGEST_INVALID if malformed, UNSUPPORTED if not sha256."""
    if not is_digest(untrusted) or (untrusted.startswith("sha256:") and not is_sha256(untrusted)):
        raise RegistryError("DIGEST_INVALID", detail={"digest": untrusted})
    if not is_sha256(untrusted):
        raise RegistryError("UNSUPPORTED", message=f"unsupported digest algorithm: {untrusted.split(':')[0]}")
    return untrusted


def blob_exists(storage: Storage, digest: str) -> bool:
    try:
        storage.blob_size(digest)
        return True
    except NotFound:
        return False


def read_all(body: Any, length: int, *, until_eof: bool = False) -> bytes:
    """``length`` bytes of the body; with ``until_eof``, at most that many (a chunked body's end may come first)."""
    parts = []
    while length > 0:
        chunk = body.read(length)
        if not chunk:
            if until_eof:
                break
            raise ConnectionError("request body ended early")
        parts.append(chunk)
        length -= len(chunk)
    return b"".join(parts)
