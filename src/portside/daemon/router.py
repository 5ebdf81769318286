"""Docker's URL space: versioned paths, route patterns, and dockerd's 404/400 answers.

Like dockerd (moby ``daemon/server/server.go``), every route answers both
bare (``/images/json``) and under a version prefix ``/v<digits and dots>``
(``/v1.45/images/json``). The version is checked only once a route matched:
an unknown path is ``404 page not found`` whatever its version, and so is a
known path with the wrong method (dockerd's mux sends method mismatches to
the same not-found handler).
"""

from __future__ import annotations

import logging
import re

from portside.daemon.errors import error_response, status_for
from portside.daemon.http import Handler, Hijack, Request, Response, StreamResponse
from portside.errors import PortsideError

MIN_API_VERSION = "1.24"
API_VERSION = "1.45"

# dockerd's versionMatcher is "/v{version:[0-9.]+}": "/v1", "/v1.45.0" and
# "/v." are all versions (compared numerically below); "/vfoo" is not.
_VERSIONED = re.compile(r"/v([0-9.]+)(/.*)", re.DOTALL)
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as API version ``a`` is below, equal to or above ``b``.

    Dot-separated numbers compared one by one, missing or non-numeric parts
    counting as 0 (so "1.45" == "1.45.0"), as moby's versions.compare does.
    """
    pa, pb = a.split("."), b.split(".")
    for i in range(max(len(pa), len(pb))):
        x = int(pa[i]) if i < len(pa) and pa[i].isdigit() else 0
        y = int(pb[i]) if i < len(pb) and pb[i].isdigit() else 0
        if x != y:
            return -1 if x < y else 1
    return 0


def _page_not_found() -> Response:
    return Response.json({"message": "page not found"}, status=404)


def _version_error(version: str) -> Response | None:
    if compare_versions(version, MIN_API_VERSION) < 0:
        # dockerd answers clients older than 1.24 in plain text: they predate
        # JSON errors and would print the JSON verbatim.
        message = (
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version\n"
        )
        return Response(
            400,
            message.encode(),
            [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
        )
    if compare_versions(version, API_VERSION) > 0:
        message = f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
        return Response.json({"message": message}, status=400)
    return None


class _Route:
    def __init__(self, method: str, pattern: str, handler: Handler) -> None:
        self.method, self.pattern, self.handler = method, pattern, handler
        # Each {param} matches one or more characters, slashes included, and
        # greedily: "/images/{name}/json" gives name="localhost:5000/ns/app:tag"
        # for "/images/localhost:5000/ns/app:tag/json".
        parts = _PARAM.split(pattern)
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+)" for i, p in enumerate(parts))
        self.regex = re.compile(regex, re.DOTALL)


class Router:
    """Maps (method, path) to handlers; itself a Handler for the Server."""

    def __init__(self, *, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger(__name__)
        self._literal: dict[tuple[str, str], _Route] = {}  # patterns without parameters
        self._patterns: list[_Route] = []  # tried in the order they were added

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for ``method`` on ``pattern`` (e.g. "/images/{name}/json").

        Literal paths win over patterns ("/images/json" over "/images/{name}/json");
        among patterns the first added wins. A GET route also answers HEAD unless
        a HEAD route is registered for the same path.
        """
        method = method.upper()
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        route = _Route(method, pattern, handler)
        if any(r.method == method and r.pattern == pattern for r in self._routes()):
            raise ValueError(f"duplicate route {method} {pattern}")
        if _PARAM.search(pattern):
            self._patterns.append(route)
        else:
            self._literal[(method, pattern)] = route

    def _routes(self) -> list[_Route]:
        return [*self._literal.values(), *self._patterns]

    def _find(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | None:
        literal = self._literal.get((method, path))
        if literal is not None:
            return literal, {}
        for route in self._patterns:
            if route.method == method:
                match = route.regex.fullmatch(path)
                if match:
                    return route, match.groupdict()
        return None

    def __call__(self, request: Request) -> Response | StreamResponse | Hijack:
        path, version = request.path, None
        versioned = _VERSIONED.fullmatch(path)
        if versioned:
            version, path = versioned.group(1), versioned.group(2)
        found = self._find(request.method, path)
        if found is None and request.method == "HEAD":
            found = self._find("GET", path)
        if found is None:
            return _page_not_found()
        route, params = found
        if version is not None:
            refused = _version_error(version)
            if refused is not None:
                return refused
        request.api_version = version or API_VERSION
        request.params = params
        try:
            return route.handler(request)
        except PortsideError as exc:
            if status_for(exc) >= 500:
                self.log.error("handler for %s %s failed", request.method, request.path, exc_info=exc)
            return error_response(exc)
