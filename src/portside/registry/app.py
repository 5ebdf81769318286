"""The registry application: routing and the checks every endpoint shares.

A request is matched to its resource (distribution-spec v1.1, "Endpoints"),
its repository name checked against the grammar, authorized for the scopes
it needs, refused if it writes to a read-only registry, then handed to the
resource's module in ``api/``. A RegistryError anywhere becomes the spec's
JSON error body.
"""

from __future__ import annotations

import logging
import re
import ssl
import time
from typing import Callable

from portside.registry.api import blobs, discovery, manifests, search, uploads
from portside.registry.api.common import API_VERSION, JSON, Context, json_response
from portside.registry.auth import Authorizer, Scope
from portside.registry.codes import RegistryError
from portside.registry.config import Config
from portside.registry.names import valid_name
from portside.registry.storage import FileStorage
from portside.registry.wire import BodyError, Request, Response

log = logging.getLogger("portside.registry")
_ROUTE = re.compile(
    r"/v2/(?P<name>.+?)/(?:"
    r"(?P<manifests>manifests)/(?P<ref>[^/]+)"
    r"|(?P<uploads>blobs/uploads)(?:/(?P<uuid>[^/]*))?"
    r"|(?P<blobs>blobs)/(?P<digest>[^/]+)"
    r"|(?P<tags>tags/list)"
    r"|(?P<referrers>referrers)/(?P<subject>[^/]+))"
)


class App:
    """Dispatches a Request to its endpoint; its state: the context (config, storage) and auth."""

    def __init__(self, cfg: Config, storage: FileStorage) -> None:
        self.cfg = cfg
        self.ctx = Context(cfg, storage)
        self.auth = Authorizer(cfg)

    def __call__(self, req: Request) -> Response:
        try:
            return self._dispatch(req)
        except RegistryError as e:
            return Response(e.status, [JSON, API_VERSION, *e.headers], e.body())
        except BodyError as e:
            err = RegistryError("BLOB_UPLOAD_INVALID", detail=str(e))
            return Response(err.status, [JSON, API_VERSION], err.body())
        except (ConnectionError, TimeoutError, ssl.SSLError):
            raise  # the client is gone: the server closes the connection
        except OSError as e:
            # a storage failure (disk full, permissions): answered, logged, never half-stored
            log.error("%s %s: %s", req.method, req.path, e)
            err = RegistryError("UNKNOWN", detail=e.strerror or str(e))
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
            return json_response({})
        if path == "/v2/_catalog":
            self._authorize(req, [Scope("registry", "catalog", "*")])
            if req.method not in ("GET", "HEAD"):
                raise RegistryError("UNSUPPORTED")
            return discovery.catalog(self.ctx, req)
        if path == "/v1/search":
            # lists repository names, as _catalog does: the same scope
            self._authorize(req, [Scope("registry", "catalog", "*")])
            if req.method not in ("GET", "HEAD"):
                raise RegistryError("UNSUPPORTED")
            return search.search(self.ctx, req)
        m = _ROUTE.fullmatch(path)
        if m is None:
            # not an endpoint of the spec: 404, with a JSON body as every other answer
            raise RegistryError("UNSUPPORTED", status=404, message="not found")
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
            return manifests.handle(self.ctx, req, name, m["ref"])
        if m["uploads"]:
            return uploads.handle(self.ctx, req, name, m["uuid"] or "")
        if m["blobs"]:
            return blobs.handle(self.ctx, req, name, m["digest"])
        if m["tags"]:
            if req.method != "GET":
                raise RegistryError("UNSUPPORTED")
            return discovery.tags(self.ctx, req, name)
        if req.method != "GET":
            raise RegistryError("UNSUPPORTED")
        return discovery.referrers(self.ctx, req, name, m["subject"])

    def _authorize(self, req: Request, needed: list[Scope]) -> None:
        self.auth.check(req.header("Authorization"), needed, req.base_url)

    def _token(self, req: Request) -> Response:
        body = self.auth.token_response(req.header("Authorization"), req.query.get("scope", []),
                                        req.arg("service") or "")
        return json_response(body)


def expire_loop(storage: FileStorage, ttl: float, stop: Callable[[float], bool]) -> None:
    """Purge upload sessions idle longer than ttl, every ttl/4 (at least every minute)."""
    while not stop(min(60.0, max(1.0, ttl / 4))):
        storage.expire_uploads(time.time() - ttl)

