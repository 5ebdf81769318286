"""``GET /images/search?term=&limit=&filters=`` (``docker search``), as dockerd's image router and registry service.

``limit`` defaults to 25 and must be within [1, 100]; filters ``is-official``,
``is-automated`` (deprecated, as in dockerd: results are never automated now,
but the filter still applies to what the index says) and ``stars`` (at least
that many; the largest value given wins) are applied to the index's answer.
"""

from __future__ import annotations

from portside.daemon.engine import Engine
from portside.daemon.filters import bool_filter, parse_filters
from portside.daemon.http import Request, Response
from portside.daemon.router import Router
from portside.distribution.auth import decode_registry_auth
from portside.distribution.search import search
from portside.errors import InvalidArgument

DEFAULT_LIMIT = 25


def register(router: Router, engine: Engine) -> None:
    router.add("GET", "/images/search", lambda req: images_search(engine, req))


def images_search(engine: Engine, req: Request) -> Response:
    term = req.arg("term") or ""
    limit_arg = req.arg("limit")
    try:
        limit = int(limit_arg) if limit_arg else DEFAULT_LIMIT
    except ValueError:
        raise InvalidArgument(f'strconv.Atoi: parsing "{limit_arg}": invalid syntax') from None
    if not 1 <= limit <= 100:
        raise InvalidArgument(f"limit {limit} is outside the range of [1, 100]")
    filters = parse_filters(req.json_arg("filters"), {"is-official", "is-automated", "stars"})
    official = bool_filter(filters, "is-official")
    automated = bool_filter(filters, "is-automated")
    min_stars = 0
    for value in filters.get("stars", []):
        try:
            min_stars = max(min_stars, int(value))
        except ValueError:
            raise InvalidArgument(f"invalid filter 'stars={value}'") from None
    results = search(engine.registry, term, limit, decode_registry_auth(req.headers.get("x-registry-auth")))
    kept = [r for r in results
            if (official is None or r["is_official"] == official)
            and (automated is None or r["is_automated"] == automated)
            and r["star_count"] >= min_stars]
    return Response.json(kept[:limit])
