"""Upload sessions: POST (monolithic with ?digest=, mount with ?mount=&from=), PATCH, PUT, GET status, DELETE."""

from __future__ import annotations

import re

from portside.errors import DataCorruption
from portside.registry.api.common import API_VERSION, JSON, Context, blob_digest, blob_exists, empty
from portside.registry.codes import RegistryError
from portside.registry.names import is_sha256, valid_name
from portside.registry.storage import OutOfOrder, UploadUnknown
from portside.registry.wire import Request, Response

_CONTENT_RANGE = re.compile(r"(?:bytes )?(\d+)-(\d+)(?:/(?:\d+|\*))?")


def _headers(name: str, uuid: str, offset: int) -> list[tuple[str, str]]:
    return [("Location", f"/v2/{name}/blobs/uploads/{uuid}"), ("Docker-Upload-UUID", uuid),
            ("Range", f"0-{max(offset - 1, 0)}"), ("OCI-Chunk-Min-Length", "0")]


def handle(ctx: Context, req: Request, name: str, uuid: str) -> Response:
    if not uuid:
        if req.method != "POST":
            raise RegistryError("UNSUPPORTED")
        return _start(ctx, req, name)
    try:
        if req.method == "GET":
            up = ctx.storage.upload(name, uuid)
            return empty(204, _headers(name, uuid, up.offset))
        if req.method == "PATCH":
            return _patch(ctx, req, name, uuid)
        if req.method == "PUT":
            return _finish(ctx, req, name, uuid)
        if req.method == "DELETE":
            ctx.storage.cancel_upload(name, uuid)
            return empty(204, [])
    except UploadUnknown:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": uuid}) from None
    raise RegistryError("UNSUPPORTED")


def _start(ctx: Context, req: Request, name: str) -> Response:
    mount, source = req.arg("mount"), req.arg("from")
    if mount is not None and source is not None and valid_name(source) and is_sha256(mount):
        if ctx.storage.has_blob_link(source, mount) and blob_exists(ctx.storage, mount):
            ctx.storage.link_blob(name, mount)
            return empty(201, [("Location", f"/v2/{name}/blobs/{mount}"), ("Docker-Content-Digest", mount)])
    elif mount is not None and source is None and is_sha256(mount) and ctx.storage.has_blob_link(name, mount):
        # mount without from: the spec lets a registry mount a blob it knows; only the same repository here
        return empty(201, [("Location", f"/v2/{name}/blobs/{mount}"), ("Docker-Content-Digest", mount)])
    digest = req.arg("digest")
    if digest is not None:
        digest = blob_digest(digest)
        try:
            ctx.storage.put_blob(req.body, req.length, digest)
        except DataCorruption as e:
            raise RegistryError("DIGEST_INVALID", detail=str(e)) from None
        ctx.storage.link_blob(name, digest)
        return empty(201, [("Location", f"/v2/{name}/blobs/{digest}"), ("Docker-Content-Digest", digest)])
    up = ctx.storage.start_upload(name)
    return empty(202, _headers(name, up.uuid, 0))


def _patch(ctx: Context, req: Request, name: str, uuid: str) -> Response:
    start: int | None = None
    content_range = req.header("Content-Range")
    if content_range:
        m = _CONTENT_RANGE.fullmatch(content_range.strip())
        if m is None:
            raise RegistryError("BLOB_UPLOAD_INVALID", status=416, detail="invalid Content-Range")
        start, end = int(m[1]), int(m[2])
        if end < start or (req.length is not None and req.length != end - start + 1):
            raise RegistryError("BLOB_UPLOAD_INVALID", status=416, detail="Content-Range does not match the body")
    try:
        up = ctx.storage.append(name, uuid, req.body, req.length, start)
    except OutOfOrder as e:
        return Response(416, [JSON, API_VERSION, *_headers(name, uuid, e.offset)],
                        RegistryError("BLOB_UPLOAD_INVALID", status=416, detail="chunk out of order").body())
    return empty(202, _headers(name, uuid, up.offset))


def _finish(ctx: Context, req: Request, name: str, uuid: str) -> Response:
    digest = req.arg("digest")
    if digest is None:
        raise RegistryError("DIGEST_INVALID", detail="digest missing")
    digest = blob_digest(digest)
    if req.length is None or req.length > 0:
        start = None
        content_range = req.header("Content-Range")
        if content_range:
            m = _CONTENT_RANGE.fullmatch(content_range.strip())
            if m is None:
                raise RegistryError("BLOB_UPLOAD_INVALID", status=416, detail="invalid Content-Range")
            start = int(m[1])
        try:
            ctx.storage.append(name, uuid, req.body, req.length, start)
        except OutOfOrder:
            raise RegistryError("BLOB_UPLOAD_INVALID", status=416, detail="chunk out of order") from None
    try:
        ctx.storage.finish_upload(name, uuid, digest)
    except DataCorruption as e:
        # the session stays, as in distribution: the client may cancel or retry with the right digest
        raise RegistryError("DIGEST_INVALID", detail=str(e)) from None
    return empty(201, [("Location", f"/v2/{name}/blobs/{digest}"), ("Docker-Content-Digest", digest)])
