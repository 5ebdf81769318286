"""Manifests: GET/HEAD by tag or digest (served as stored), PUT (validated, subject recorded), DELETE."""

from __future__ import annotations

import hashlib

from portside.errors import NotFound
from portside.registry import manifests as manifestlib
from portside.registry.api.common import API_VERSION, Context, blob_digest, blob_exists, empty, read_all
from portside.registry.codes import RegistryError
from portside.registry.names import valid_tag
from portside.registry.wire import Request, Response


def _resolve(ctx: Context, name: str, ref: str) -> str:
    if ":" in ref:
        digest = blob_digest(ref)
        if not ctx.storage.has_manifest(name, digest):
            raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": digest})
        return digest
    if not valid_tag(ref):
        raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": ref})
    try:
        return ctx.storage.tag(name, ref)
    except NotFound:
        raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": ref}) from None


def handle(ctx: Context, req: Request, name: str, ref: str) -> Response:
    if req.method in ("GET", "HEAD"):
        digest = _resolve(ctx, name, ref)
        try:
            media_type, data = ctx.storage.manifest(name, digest)
        except NotFound:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": digest}) from None
        headers = [("Content-Type", media_type), API_VERSION, ("Docker-Content-Digest", digest),
                   ("ETag", f'"{digest}"')]
        if req.method == "HEAD":
            return Response(200, headers + [("Content-Length", str(len(data)))])
        return Response(200, headers, data)
    if req.method == "PUT":
        return _put(ctx, req, name, ref)
    if req.method == "DELETE":
        return _delete(ctx, name, ref)
    raise RegistryError("UNSUPPORTED")


def _put(ctx: Context, req: Request, name: str, ref: str) -> Response:
    by_digest = ":" in ref
    if by_digest:
        blob_digest(ref)
    elif not valid_tag(ref):
        raise RegistryError("TAG_INVALID", detail={"tag": ref})
    if req.length is not None and req.length > manifestlib.MAX_MANIFEST:
        raise RegistryError("MANIFEST_INVALID", status=413, message="manifest too large",
                            detail={"limit": manifestlib.MAX_MANIFEST})
    data = read_all(req.body, manifestlib.MAX_MANIFEST + 1 if req.length is None else req.length,
                     until_eof=req.length is None)
    if len(data) > manifestlib.MAX_MANIFEST:
        raise RegistryError("MANIFEST_INVALID", status=413, message="manifest too large",
                            detail={"limit": manifestlib.MAX_MANIFEST})
    parsed = manifestlib.parse(data, req.header("Content-Type"))
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if by_digest and ref != digest:
        raise RegistryError("DIGEST_INVALID", detail={"expected": ref, "actual": digest})
    unknown = [d for d in parsed.blobs if not (ctx.storage.has_blob_link(name, d) and blob_exists(ctx.storage, d))]
    unknown += [d for d in parsed.manifests if not ctx.storage.has_manifest(name, d)]
    if unknown:
        raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": unknown[0]})
    ctx.storage.put_manifest(name, digest, parsed.media_type, data)
    headers = [("Location", f"/v2/{name}/manifests/{digest}"), ("Docker-Content-Digest", digest)]
    if parsed.subject is not None:
        ctx.storage.add_referrer(name, parsed.subject,
                                  manifestlib.referrer_descriptor(parsed, digest, len(data)))
        headers.append(("OCI-Subject", parsed.subject))
    if not by_digest:
        ctx.storage.set_tag(name, ref, digest)
    return empty(201, headers)


def _delete(ctx: Context, name: str, ref: str) -> Response:
    if ":" not in ref:
        # OCI v1.1: deleting a tag removes the tag only
        if not valid_tag(ref) or not ctx.storage.delete_tag(name, ref):
            raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": ref})
        return empty(202, [])
    digest = blob_digest(ref)
    try:
        _, data = ctx.storage.manifest(name, digest)
    except NotFound:
        raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": digest}) from None
    try:
        subject = manifestlib.parse(data, None).subject
    except RegistryError:
        subject = None
    ctx.storage.delete_manifest(name, digest)
    for tag in ctx.storage.tags(name):
        try:
            if ctx.storage.tag(name, tag) == digest:
                ctx.storage.delete_tag(name, tag)
        except NotFound:
            pass
    if subject is not None:
        ctx.storage.remove_referrer(name, subject, digest)
    return empty(202, [])
