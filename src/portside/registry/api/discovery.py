"""Content discovery: tags list and _catalog (n/last pagination with Link), the referrers API."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from portside.errors import NotFound
from portside.registry import manifests as manifestlib
from portside.registry.api.common import API_VERSION, Context, blob_digest, json_response
from portside.registry.codes import RegistryError
from portside.registry.wire import Request, Response

DEFAULT_PAGE = 1000


def _page(req: Request, items: list[str], link_path: str) -> tuple[list[str], list[tuple[str, str]]]:
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


def tags(ctx: Context, req: Request, name: str) -> Response:
    try:
        tags = ctx.storage.tags(name)
    except NotFound:
        raise RegistryError("NAME_UNKNOWN", detail={"name": name}) from None
    page, headers = _page(req, tags, f"/v2/{name}/tags/list")
    return json_response({"name": name, "tags": page}, headers=headers)


def catalog(ctx: Context, req: Request) -> Response:
    page, headers = _page(req, ctx.storage.repositories(), "/v2/_catalog")
    return json_response({"repositories": page}, headers=headers)


def referrers(ctx: Context, req: Request, name: str, subject: str) -> Response:
    subject = blob_digest(subject)
    found = ctx.storage.referrers(name, subject)
    headers: list[tuple[str, str]] = []
    wanted = req.arg("artifactType")
    if wanted:
        found = [d for d in found if d.get("artifactType") == wanted]
        headers.append(("OCI-Filters-Applied", "artifactType"))
    index = {"schemaVersion": 2, "mediaType": manifestlib.OCI_INDEX, "manifests": found}
    return Response(200, [("Content-Type", manifestlib.OCI_INDEX), API_VERSION, *headers],
                    json.dumps(index).encode())
