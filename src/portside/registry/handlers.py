"""The registry's endpoints (distribution-spec v1.1, "Endpoints" table), thin over Storage.

Routing, then the checks every endpoint shares (name grammar, auth, read-only),
then one function per endpoint. Errors are raised as RegistryError and sent
as the spec's JSON body.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from typing import Any, Callable
from urllib.parse import urlencode

from portside.errors import DataCorruption, NotFound
from portside.registry import manifests
from portside.registry.auth import Authorizer, Scope
from portside.registry.codes import RegistryError
from portside.registry.config import Config
from portside.registry.names import is_digest, is_sha256, valid_name, valid_tag
from portside.registry.storage import FileStorage, OutOfOrder, UploadUnknown
from portside.registry.wire import BodyError, Request, Response

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
JSON = ("Content-Type", "application/json")
_ROUTE = re.compile(
    r"/v2/(?P<name>.+?)/(?:"
    r"(?P<manifests>manifests)/(?P<ref>[^/]+)"
    r"|(?P<uploads>blobs/uploads)/(?P<uuid>[^/]*)"
    r"|(?P<blobs>blobs)/(?P<digest>[^/]+)"
    r"|(?P<tags>tags/list)"
    r"|(?P<referrers>referrers)/(?P<subject>[^/]+))"
)
_CONTENT_RANGE = re.compile(r"(?:bytes )?(\d+)-(\d+)(?:/(?:\d+|\*))?")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
DEFAULT_PAGE = 1000


def _json(obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, [JSON, API_VERSION, *(headers or [])], json.dumps(obj).encode())


def _empty(status: int, headers: list[tuple[str, str]]) -> Response:
    return Response(status, [API_VERSION, *headers, ("Content-Length", "0")])


class App:
    """Dispatches a Request to its endpoint; the only state is storage, config and auth."""

    def __init__(self, cfg: Config, storage: FileStorage) -> None:
        self.cfg = cfg
        self.storage = storage
        self.auth = Authorizer(cfg)

    def __call__(self, req: Request) -> Response:
        try:
            return self._dispatch(req)
        except RegistryError as e:
            return Response(e.status, [JSON, API_VERSION, *e.headers], e.body())
        except BodyError as e:
            err = RegistryError("BLOB_UPLOAD_INVALID", detail=str(e))
            return Response(err.status, [JSON, API_VERSION], err.body())

    # -- routing and shared checks ------------------------------------------

    def _dispatch(self, req: Request) -> Response:
        path = req.path
        if path == "/token" and self.auth.issues_tokens:
            return self._token(req)
        if path in ("/v2", "/v2/"):
            self._authorize(req, [])
            if req.method not in ("GET", "HEAD"):
                raise RegistryError("UNSUPPORTED")
            return _json({})
        if path == "/v2/_catalog":
            self._authorize(req, [Scope("registry", "catalog", "*")])
            return self._catalog(req)
        m = _ROUTE.fullmatch(path)
        if m is None or not path.startswith("/v2/"):
            raise RegistryError("NAME_UNKNOWN", status=404, message="page not found") if path.startswith("/v2/") else \
                RegistryError("UNSUPPORTED", status=404, message="not found")
        name = m["name"]
        if not valid_name(name):
            raise RegistryError("NAME_INVALID", detail={"name": name})
        write = req.method not in ("GET", "HEAD")
        action = "delete" if req.method == "DELETE" else "push" if write else "pull"
        needed = [Scope("repository", name, "pull")] if not write else (
            [Scope("repository", name, "delete")] if action == "delete"
            else [Scope("repository", name, "pull"), Scope("repository", name, "push")])
        mount_from = req.arg("from") if m["uploads"] is not None and req.method == "POST" else None
        if mount_from and valid_name(mount_from) and mount_from != name:
            needed.append(Scope("repository", mount_from, "pull"))
        self._authorize(req, needed)
        if write and self.cfg.read_only:
            raise RegistryError("UNSUPPORTED", message="registry is in read-only mode")
        if req.method == "DELETE" and not self.cfg.delete_enabled:
            raise RegistryError("UNSUPPORTED", message="deletes are disabled")
        if m["manifests"]:
            return self._manifests(req, name, m["ref"])
        if m["uploads"]:
            return self._uploads(req, name, m["uuid"])
        if m["blobs"]:
            return self._blobs(req, name, m["digest"])
        if m["tags"]:
            if req.method != "GET":
                raise RegistryError("UNSUPPORTED")
            return self._tags(req, name)
        if req.method != "GET":
            raise RegistryError("UNSUPPORTED")
        return self._referrers(req, name, m["subject"])

    def _authorize(self, req: Request, needed: list[Scope]) -> None:
        self.auth.check(req.header("Authorization"), needed, req.base_url)

    def _token(self, req: Request) -> Response:
        body = self.auth.token_response(req.header("Authorization"), req.query.get("scope", []),
                                        req.arg("service") or "")
        return _json(body)

    # -- blobs -----------------------------------------------------------------

    def _blob_digest(self, digest: str) -> str:
        if not is_digest(digest) or (digest.startswith("sha256:") and not is_sha256(digest)):
            raise RegistryError("DIGEST_INVALID", detail={"digest": digest})
        if not is_sha256(digest):
            raise RegistryError("UNSUPPORTED", message=f"unsupported digest algorithm: {digest.split(':')[0]}")
        return digest

    def _blobs(self, req: Request, name: str, digest: str) -> Response:
        digest = self._blob_digest(digest)
        if req.method == "DELETE":
            if not self.storage.unlink_blob(name, digest):
                raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
            return _empty(202, [("Docker-Content-Digest", digest)])
        if req.method not in ("GET", "HEAD"):
            raise RegistryError("UNSUPPORTED")
        # A blob is visible in a repository that holds it; a manifest stored in
        # the repository is a blob of it as well (distribution serves those too).
        if not (self.storage.has_blob_link(name, digest) or self.storage.has_manifest(name, digest)):
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
        try:
            f = self.storage.open_blob(digest)
        except NotFound:
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest}) from None
        size = _fsize(f)
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

    # -- uploads -------------------------------------------------------------

    def _upload_headers(self, name: str, uuid: str, offset: int) -> list[tuple[str, str]]:
        return [("Location", f"/v2/{name}/blobs/uploads/{uuid}"), ("Docker-Upload-UUID", uuid),
                ("Range", f"0-{max(offset - 1, 0)}"), ("OCI-Chunk-Min-Length", "0")]

    def _uploads(self, req: Request, name: str, uuid: str) -> Response:
        if not uuid:
            if req.method != "POST":
                raise RegistryError("UNSUPPORTED")
            return self._start_upload(req, name)
        try:
            if req.method == "GET":
                up = self.storage.upload(name, uuid)
                return _empty(204, self._upload_headers(name, uuid, up.offset))
            if req.method == "PATCH":
                return self._patch(req, name, uuid)
            if req.method == "PUT":
                return self._finish(req, name, uuid)
            if req.method == "DELETE":
                self.storage.cancel_upload(name, uuid)
                return _empty(204, [])
        except UploadUnknown:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": uuid}) from None
        raise RegistryError("UNSUPPORTED")

    def _start_upload(self, req: Request, name: str) -> Response:
        mount, source = req.arg("mount"), req.arg("from")
        if mount is not None and source is not None and valid_name(source) and is_sha256(mount):
            if self.storage.has_blob_link(source, mount) and self._blob_exists(mount):
                self.storage.link_blob(name, mount)
                return _empty(201, [("Location", f"/v2/{name}/blobs/{mount}"), ("Docker-Content-Digest", mount)])
        elif mount is not None and source is None and is_sha256(mount) and self.storage.has_blob_link(name, mount):
            # mount without from: the spec lets a registry mount a blob it knows; only the same repository here
            return _empty(201, [("Location", f"/v2/{name}/blobs/{mount}"), ("Docker-Content-Digest", mount)])
        digest = req.arg("digest")
        if digest is not None:
            digest = self._blob_digest(digest)
            try:
                self.storage.put_blob(req.body, req.length, digest)
            except DataCorruption as e:
                raise RegistryError("DIGEST_INVALID", detail=str(e)) from None
            self.storage.link_blob(name, digest)
            return _empty(201, [("Location", f"/v2/{name}/blobs/{digest}"), ("Docker-Content-Digest", digest)])
        up = self.storage.start_upload(name)
        return _empty(202, self._upload_headers(name, up.uuid, 0))

    def _blob_exists(self, digest: str) -> bool:
        try:
            self.storage.blob_size(digest)
            return True
        except NotFound:
            return False

    def _patch(self, req: Request, name: str, uuid: str) -> Response:
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
            up = self.storage.append(name, uuid, req.body, req.length, start)
        except OutOfOrder as e:
            return Response(416, [JSON, API_VERSION, *self._upload_headers(name, uuid, e.offset)],
                            RegistryError("BLOB_UPLOAD_INVALID", status=416, detail="chunk out of order").body())
        return _empty(202, self._upload_headers(name, uuid, up.offset))

    def _finish(self, req: Request, name: str, uuid: str) -> Response:
        digest = req.arg("digest")
        if digest is None:
            raise RegistryError("DIGEST_INVALID", detail="digest missing")
        digest = self._blob_digest(digest)
        if req.length is None or req.length > 0:
            start = None
            content_range = req.header("Content-Range")
            if content_range:
                m = _CONTENT_RANGE.fullmatch(content_range.strip())
                if m is None:
                    raise RegistryError("BLOB_UPLOAD_INVALID", status=416, detail="invalid Content-Range")
                start = int(m[1])
            try:
                self.storage.append(name, uuid, req.body, req.length, start)
            except OutOfOrder:
                raise RegistryError("BLOB_UPLOAD_INVALID", status=416, detail="chunk out of order") from None
        try:
            self.storage.finish_upload(name, uuid, digest)
        except DataCorruption as e:
            # the session stays, as in distribution: the client may cancel or retry with the right digest
            raise RegistryError("DIGEST_INVALID", detail=str(e)) from None
        return _empty(201, [("Location", f"/v2/{name}/blobs/{digest}"), ("Docker-Content-Digest", digest)])

    # -- manifests -----------------------------------------------------------

    def _resolve(self, name: str, ref: str) -> str:
        if ":" in ref:
            digest = self._blob_digest(ref)
            if not self.storage.has_manifest(name, digest):
                raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": digest})
            return digest
        if not valid_tag(ref):
            raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": ref})
        try:
            return self.storage.tag(name, ref)
        except NotFound:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": ref}) from None

    def _manifests(self, req: Request, name: str, ref: str) -> Response:
        if req.method in ("GET", "HEAD"):
            digest = self._resolve(name, ref)
            try:
                media_type, data = self.storage.manifest(name, digest)
            except NotFound:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": digest}) from None
            headers = [("Content-Type", media_type), API_VERSION, ("Docker-Content-Digest", digest),
                       ("ETag", f'"{digest}"')]
            if req.method == "HEAD":
                return Response(200, headers + [("Content-Length", str(len(data)))])
            return Response(200, headers, data)
        if req.method == "PUT":
            return self._put_manifest(req, name, ref)
        if req.method == "DELETE":
            return self._delete_manifest(name, ref)
        raise RegistryError("UNSUPPORTED")

    def _put_manifest(self, req: Request, name: str, ref: str) -> Response:
        by_digest = ":" in ref
        if by_digest:
            self._blob_digest(ref)
        elif not valid_tag(ref):
            raise RegistryError("TAG_INVALID", detail={"tag": ref})
        if req.length is not None and req.length > manifests.MAX_MANIFEST:
            raise RegistryError("MANIFEST_INVALID", status=413, message="manifest too large",
                                detail={"limit": manifests.MAX_MANIFEST})
        data = _read_all(req.body, manifests.MAX_MANIFEST + 1 if req.length is None else req.length,
                         until_eof=req.length is None)
        if len(data) > manifests.MAX_MANIFEST:
            raise RegistryError("MANIFEST_INVALID", status=413, message="manifest too large",
                                detail={"limit": manifests.MAX_MANIFEST})
        parsed = manifests.parse(data, req.header("Content-Type"))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if by_digest and ref != digest:
            raise RegistryError("DIGEST_INVALID", detail={"expected": ref, "actual": digest})
        unknown = [d for d in parsed.blobs if not (self.storage.has_blob_link(name, d) and self._blob_exists(d))]
        unknown += [d for d in parsed.manifests if not self.storage.has_manifest(name, d)]
        if unknown:
            raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": unknown[0]})
        self.storage.put_manifest(name, digest, parsed.media_type, data)
        headers = [("Location", f"/v2/{name}/manifests/{digest}"), ("Docker-Content-Digest", digest)]
        if parsed.subject is not None:
            self.storage.add_referrer(name, parsed.subject,
                                      manifests.referrer_descriptor(parsed, digest, len(data)))
            headers.append(("OCI-Subject", parsed.subject))
        if not by_digest:
            self.storage.set_tag(name, ref, digest)
        return _empty(201, headers)

    def _delete_manifest(self, name: str, ref: str) -> Response:
        if ":" not in ref:
            # OCI v1.1: deleting a tag removes the tag only
            if not valid_tag(ref) or not self.storage.delete_tag(name, ref):
                raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": ref})
            return _empty(202, [])
        digest = self._blob_digest(ref)
        try:
            _, data = self.storage.manifest(name, digest)
        except NotFound:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": digest}) from None
        try:
            subject = manifests.parse(data, None).subject
        except RegistryError:
            subject = None
        self.storage.delete_manifest(name, digest)
        for tag in self.storage.tags(name):
            try:
                if self.storage.tag(name, tag) == digest:
                    self.storage.delete_tag(name, tag)
            except NotFound:
                pass
        if subject is not None:
            self.storage.remove_referrer(name, subject, digest)
        return _empty(202, [])

    # -- content discovery ---------------------------------------------------

    def _page(self, req: Request, items: list[str], link_path: str) -> tuple[list[str], list[tuple[str, str]]]:
        n_arg, last = req.arg("n"), req.arg("last")
        if last:
            items = [i for i in items if i > last]
        if n_arg is None or n_arg == "":
            n = DEFAULT_PAGE
        else:
            try:
                n = int(n_arg)
                if n < 0:
                    raise ValueError
            except ValueError:
                raise RegistryError("PAGINATION_NUMBER_INVALID", detail={"n": n_arg}) from None
        page = items[:n]
        headers: list[tuple[str, str]] = []
        if n > 0 and len(items) > n:
            query = urlencode({"n": n, "last": page[-1]})
            headers.append(("Link", f'<{link_path}?{query}>; rel="next"'))
        return page, headers

    def _tags(self, req: Request, name: str) -> Response:
        try:
            tags = self.storage.tags(name)
        except NotFound:
            raise RegistryError("NAME_UNKNOWN", detail={"name": name}) from None
        page, headers = self._page(req, tags, f"/v2/{name}/tags/list")
        return _json({"name": name, "tags": page}, headers=headers)

    def _catalog(self, req: Request) -> Response:
        page, headers = self._page(req, self.storage.repositories(), "/v2/_catalog")
        return _json({"repositories": page}, headers=headers)

    def _referrers(self, req: Request, name: str, subject: str) -> Response:
        subject = self._blob_digest(subject)
        found = self.storage.referrers(name, subject)
        headers: list[tuple[str, str]] = []
        wanted = req.arg("artifactType")
        if wanted:
            found = [d for d in found if d.get("artifactType") == wanted]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        index = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": found}
        return Response(200, [("Content-Type", manifests.OCI_INDEX), API_VERSION, *headers],
                        json.dumps(index).encode())


def _fsize(f: Any) -> int:
    return os.fstat(f.fileno()).st_size


def _read_all(body: Any, length: int, *, until_eof: bool = False) -> bytes:
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


def expire_loop(storage: FileStorage, ttl: float, stop: Callable[[float], bool]) -> None:
    """Purge upload sessions idle longer than ttl, every ttl/4 (at least every minute)."""
    while not stop(min(60.0, max(1.0, ttl / 4))):
        storage.expire_uploads(time.time() - ttl)

