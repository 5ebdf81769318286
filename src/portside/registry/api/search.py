"""``GET /v1/search?q=&n=&page=``: Docker Hub's v1 search over this registry's repositories.

``docker search host:port/TERM`` asks a registry this; distribution has no
such endpoint (it answers 404). A repository matches when its name contains
the term; results are sorted by name and paged (``n`` 1..100, default 25).
"""

from __future__ import annotations

from portside.registry.api.common import Context, json_response
from portside.registry.codes import RegistryError
from portside.registry.wire import Request, Response

DEFAULT_PAGE_SIZE = 25


def _positive(req: Request, name: str, default: int, most: int) -> int:
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RegistryError("PAGINATION_NUMBER_INVALID", detail={name: raw}) from None
    if value < 1:
        raise RegistryError("PAGINATION_NUMBER_INVALID", detail={name: raw})
    return min(value, most)


def search(ctx: Context, req: Request) -> Response:
    query = req.arg("q") or ""
    page_size = _positive(req, "n", DEFAULT_PAGE_SIZE, 100)
    page = _positive(req, "page", 1, 1 << 20)
    names = sorted(n for n in ctx.storage.repositories() if query in n)
    start = (page - 1) * page_size
    results = [{"name": n, "description": "", "star_count": 0, "is_official": False, "is_automated": False}
               for n in names[start:start + page_size]]
    return json_response({"num_results": len(names), "query": query, "page": page, "page_size": page_size,
                          "num_pages": -(-len(names) // page_size), "results": results})
