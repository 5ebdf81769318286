"""Blobs: GET (with Range, sent with sendfile), HEAD, DELETE (unlinks from the repository; gc frees the bytes)."""

from __future__ import annotations

import os
import re

from portside.errors import NotFound
from portside.registry.api.common import API_VERSION, Context, blob_digest, empty
from portside.registry.codes import RegistryError
from portside.registry.wire import Request, Response

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def handle(ctx: Context, req: Request, name: str, digest: str) -> Response:
    digest = blob_digest(digest)
    if req.method == "DELETE":
        if not ctx.storage.unlink_blob(name, digest):
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
        return empty(202, [("Docker-Content-Digest", digest)])
    if req.method not in ("GET", "HEAD"):
        raise RegistryError("UNSUPPORTED")
    # A blob is visible in a repository that holds it; a manifest stored in
    # the repository is a blob of it as well (distribution serves those too).
    if not (ctx.storage.has_blob_link(name, digest) or ctx.storage.has_manifest(name, digest)):
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    try:
        f = ctx.storage.open_blob(digest)
    except NotFound:
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest}) from None
    size = os.fstat(f.fileno()).st_size
    headers = [API_VERSION, ("Docker-Content-Digest", digest), ("Accept-Ranges", "bytes"),
               ("Content-Type", "application/octet-stream"), ("ETag", f'"{digest}"'),
               ("Cache-Control", "max-age=31536000")]
    rng = req.header("Range")
    if not rng:
        if req.method == "HEAD":
            f.close()
            return Response(200, headers + [("Content-Length", str(size))])
        return Response(200, headers, file=(f, 0, size))
    m = _RANGE.fullmatch(rng.strip())
    start = end = -1
    if m and (m[1] or m[2]):
        if m[1]:
            start = int(m[1])
            end = min(int(m[2]), size - 1) if m[2] else size - 1
        else:
            start, end = max(0, size - int(m[2])), size - 1
    if not m or start < 0 or start > end or start >= size:
        f.close()
        return Response(416, [API_VERSION, ("Content-Range", f"bytes */{size}")])
    headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
    if req.method == "HEAD":
        f.close()
        return Response(206, headers + [("Content-Length", str(end - start + 1))])
    return Response(206, headers, file=(f, start, end - start + 1))
