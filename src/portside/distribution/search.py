"""``docker search``: the registry's v1 search API, as dockerd's registry/search.go asks it.

The term's registry part picks the index (``localhost:5000/busy`` → that
registry, ``q=busy``); a term with no registry part goes to Docker Hub's
index — here the first ``--registry-mirror`` when one is set, so a daemon
that mirrors docker.io never reaches index.docker.io (dockerd would).
Loopback and insecure registries are tried over https, then plain http.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from portside.distribution.auth import Credentials
from portside.distribution.hosts import DOCKER_HUB, Endpoint, RegistryOptions, endpoints
from portside.distribution.transport import USER_AGENT, ConnectionPool, RegistryUnreachable, _describe
from portside.errors import Internal, InvalidArgument

INDEX_HOST = "index.docker.io"
MAX_BODY = 8 << 20


@dataclass(frozen=True)
class SearchTerm:
    index: str   # "docker.io" or "host[:port]"
    remote: str  # what goes in ?q=


def parse_term(term: str) -> SearchTerm:
    """moby's ParseSearchIndexInfo: a first component with '.' or ':', or ``localhost``, names the index."""
    if "://" in term:
        raise InvalidArgument(f"invalid repository name: repository name ({term}) should not have a scheme")
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if first in ("docker.io", INDEX_HOST, "registry-1.docker.io"):
            return SearchTerm(DOCKER_HUB, rest.removeprefix("library/"))
        return SearchTerm(first, rest)
    return SearchTerm(DOCKER_HUB, term.removeprefix("library/"))


def _index_endpoint(options: RegistryOptions, index: str) -> Endpoint:
    if index == DOCKER_HUB:
        if options.mirrors:
            return endpoints(options, DOCKER_HUB)[0]
        return endpoints(options, INDEX_HOST, mirrors=False)[0]
    return endpoints(options, index, mirrors=False)[0]


def search(options: RegistryOptions, term: str, limit: int, credentials: Credentials) -> list[dict[str, Any]]:
    """The index's results for ``term``: ``[{"name","description","star_count","is_official","is_automated"}]``."""
    parsed = parse_term(term)
    endpoint = _index_endpoint(options, parsed.index)
    target = "/v1/search?" + urllib.parse.urlencode({"q": parsed.remote, "n": str(limit)})
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if credentials.username or credentials.password:
        headers["Authorization"] = credentials.basic()
    pool = ConnectionPool()
    failures: list[str] = []
    try:
        for ep in [endpoint, endpoint.as_http()] if endpoint.fallback_http else [endpoint]:
            _, conn, _ = pool.get(ep)
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
                body = resp.read(MAX_BODY + 1)
            except (OSError, http.client.HTTPException) as e:
                failures.append(f'Get "{ep.base}{target}": {_describe(e, ep.host)}')
                continue
            finally:
                conn.close()
            if resp.status != 200:
                # registry/search_session.go, word for word; dockerd answers it as a 500
                raise Internal(f"Unexpected status code {resp.status}")
            return _results(body)
    finally:
        pool.close()
    raise RegistryUnreachable("; ".join(reversed(failures)))


def _results(body: bytes) -> list[dict[str, Any]]:
    if len(body) > MAX_BODY:
        raise Internal("search results are larger than 8 MiB")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise Internal(f"error decoding search results: {e}") from None
    raw = doc.get("results") if isinstance(doc, dict) else None
    out = []
    for r in raw if isinstance(raw, list) else []:
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            continue
        stars = r.get("star_count")
        out.append({"name": r["name"], "description": str(r.get("description") or ""),
                    "star_count": stars if isinstance(stars, int) and not isinstance(stars, bool) else 0,
                    "is_official": r.get("is_official") is True, "is_automated": r.get("is_automated") is True})
    return out
