"""Requests to one registry: pooled connections, the auth handshake, retries.

A ``RegistryClient`` serves one registry domain with one set of credentials.
Its first request pings ``GET /v2/`` on each endpoint in turn (mirrors first)
to pick the one that answers and learn its auth challenge; later requests
carry the matching ``Authorization``. A 401 to a Bearer token drops the token
and retries once with a new one (tokens expire mid-pull); a 429 is retried
with backoff (``Retry-After`` when given). Redirects (blob storage on another
host) are followed without the registry's credentials.

Connections are kept per (scheme, host) and reused once a response has been
read to its end: a pull of many layers opens as many connections as layers
download at once, not one per request.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Callable, Iterable

from portside.distribution.auth import Challenge, Credentials, TokenCache, parse_challenges
from portside.distribution.errcodes import RegistryErrorEntry, error_for, parse_errors
from portside.distribution.hosts import Endpoint, RegistryOptions, endpoints, is_insecure
from portside.errors import Internal, InvalidArgument, PortsideError, Unauthorized, Unavailable

log = logging.getLogger(__name__)

Body = bytes | Callable[[], Iterable[bytes]] | None

TIMEOUT = 60.0
MAX_REDIRECTS = 5
RATE_LIMIT_ATTEMPTS = 5
USER_AGENT = "portside (docker-compatible; registry client)"


class RegistryUnreachable(Unavailable):
    """No endpoint of the registry answered (connection refused, TLS failure, timeout)."""


class Reply:
    """A response being read; ``close`` returns its connection to the pool when fully read."""

    def __init__(self, pool: "ConnectionPool", key: tuple[str, str], conn: http.client.HTTPConnection,
                 resp: http.client.HTTPResponse, url: str) -> None:
        self._pool, self._key, self._conn, self._resp = pool, key, conn, resp
        self.status = resp.status
        self.headers = resp.headers
        self.url = url
        self._done = False

    def header(self, name: str) -> str:
        return self._resp.getheader(name) or ""

    def read(self, n: int = -1) -> bytes:
        data = self._resp.read() if n < 0 else self._resp.read(n)
        if n < 0 or not data:
            self._finish()
        return data

    def read_all(self, limit: int) -> bytes:
        data = self._resp.read(limit + 1)
        if len(data) > limit:
            self.close()
            raise InvalidArgument(f"response from {self.url} is larger than {limit} bytes")
        self._finish()
        return data

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            if self._resp.isclosed() and not self._resp.will_close:
                self._pool.put(self._key, self._conn)
            else:
                self._conn.close()

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._conn.close()  # unread bytes: the connection cannot be reused


class ConnectionPool:
    """Idle connections by (scheme, host); ``_idle`` is guarded by ``_lock``."""

    MAX_IDLE = 6

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}

    def get(self, endpoint: Endpoint) -> tuple[tuple[str, str], http.client.HTTPConnection, bool]:
        """A connection (and whether it was reused, so a failure on it may be retried)."""
        key = (endpoint.scheme, endpoint.host)
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return key, idle.pop(), True
            ctx = self._contexts.get(key)
            if ctx is None and endpoint.scheme == "https":
                ctx = self._contexts[key] = endpoint.ssl_context()
        if endpoint.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(endpoint.host, timeout=TIMEOUT, context=ctx)
        else:
            conn = http.client.HTTPConnection(endpoint.host, timeout=TIMEOUT)
        return key, conn, False

    def put(self, key: tuple[str, str], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            for conns in self._idle.values():
                for c in conns:
                    c.close()
            self._idle.clear()


class RegistryClient:
    def __init__(self, options: RegistryOptions, domain: str, credentials: Credentials, *,
                 pool: ConnectionPool | None = None, mirrors: bool = True) -> None:
        self.options = options
        self.domain = domain
        self.credentials = credentials
        self.pool = pool or ConnectionPool()
        self.tokens = TokenCache()
        self._candidates = endpoints(options, domain, mirrors=mirrors)
        self.endpoint: Endpoint | None = None
        self._challenge: Challenge | None = None
        self._ping_lock = threading.Lock()

    # -- endpoint and challenge -------------------------------------------------

    def ping(self) -> None:
        """Pick the endpoint (the first whose ``GET /v2/`` answers 200 or 401) and learn its challenge."""
        with self._ping_lock:
            if self.endpoint is not None:
                return
            failures: list[str] = []
            for candidate in self._candidates:
                for ep in ([candidate, candidate.as_http()] if candidate.fallback_http else [candidate]):
                    try:
                        reply = self._send(ep, "GET", "/v2/", {})
                    except (OSError, http.client.HTTPException) as e:
                        failures.append(f'Get "{ep.base}/v2/": {_describe(e, ep.host)}')
                        continue
                    reply.read_all(1 << 20)
                    if reply.status == 401:
                        found = parse_challenges(reply.header("WWW-Authenticate"))
                        self._challenge = found[0] if found else None
                    elif reply.status != 200:
                        failures.append(f'Get "{ep.base}/v2/": unexpected status {reply.status}')
                        continue
                    self.endpoint = ep
                    return
            # Go's error for the last endpoint tried first, as dockerd reports it
            raise RegistryUnreachable("; ".join(reversed(failures)))

    def check_login(self) -> None:
        """``POST /auth``: the credentials are good for this registry, or Unauthorized."""
        self.ping()
        assert self.endpoint is not None
        if self._challenge is None:
            return  # the registry wants no auth: any credentials "succeed", as with dockerd
        if self._challenge.scheme == "bearer":
            self._fetch_token("")
            return
        reply = self._send(self.endpoint, "GET", "/v2/", self._auth_headers(""))
        reply.read_all(1 << 20)
        if reply.status != 200:
            raise Unauthorized(f"login attempt to {self.endpoint.base}/v2/ failed with status: "
                               f"{reply.status} {http.client.responses.get(reply.status, '')}")

    # -- requests -----------------------------------------------------------------

    def request(self, method: str, path: str, *, scope: str, headers: dict[str, str] | None = None,
                ok: Iterable[int] = (200,), body: Body = None) -> Reply:
        """Send with auth, retries and redirects; a reply with a status in ``ok``, or the registry's error.

        ``body`` is bytes, or a function giving the body's chunks afresh (a retry sends it again).
        """
        self.ping()
        assert self.endpoint is not None
        ok = tuple(ok)
        refreshed = False
        for attempt in range(RATE_LIMIT_ATTEMPTS):
            hdrs = {**(headers or {}), **self._auth_headers(scope, f"{self.endpoint.base}{path}")}
            reply = self._follow(method, path, hdrs, body)
            if reply.status == 401 and not refreshed and self._challenge_from(reply):
                # a token that expired (or was revoked) mid-pull: drop it, get another, once
                reply.read_all(1 << 20)
                refreshed = True
                token = hdrs.get("Authorization", "")
                if token.startswith("Bearer "):
                    self.tokens.drop(scope, token[7:])
                continue
            if reply.status == 429 and attempt < RATE_LIMIT_ATTEMPTS - 1:
                reply.read_all(1 << 20)
                time.sleep(_retry_after(reply.header("Retry-After"), attempt))
                continue
            if reply.status in ok:
                return reply
            raise error_for(parse_errors(reply.status, reply.read_all(1 << 20)))
        raise Unavailable(f"{method} {path}: too many requests")

    def _challenge_from(self, reply: Reply) -> bool:
        found = parse_challenges(reply.header("WWW-Authenticate"))
        if found:
            self._challenge = found[0]
        return self._challenge is not None

    def _follow(self, method: str, path: str, headers: dict[str, str], body: Body = None) -> Reply:
        assert self.endpoint is not None
        ep, target = self.endpoint, path
        for _ in range(MAX_REDIRECTS):
            reply = self._send(ep, method, target, headers, body)
            if reply.status not in (301, 302, 303, 307, 308):
                return reply
            location = reply.header("Location")
            reply.read_all(1 << 20)
            url = urllib.parse.urljoin(f"{ep.base}{target}", location)
            parts = urllib.parse.urlsplit(url)
            if parts.netloc != ep.host:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                if parts.scheme == "http" and not is_insecure(self.options, parts.netloc):
                    raise InvalidArgument(f"registry redirected to plain http: {parts.netloc}")
                ep = Endpoint(parts.scheme, parts.netloc)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        raise InvalidArgument(f"{method} {path}: too many redirects")

    def _send(self, ep: Endpoint, method: str, target: str, headers: dict[str, str], body: Body = None) -> Reply:
        hdrs = {"User-Agent": USER_AGENT, **headers}
        for retry in (True, False):
            key, conn, reused = self.pool.get(ep)
            try:
                conn.request(method, target, body=body() if callable(body) else body, headers=hdrs)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException):
                conn.close()
                if reused and retry:
                    continue  # an idle connection the server had closed meanwhile
                raise
            return Reply(self.pool, key, conn, resp, f"{ep.base}{target}")
        raise AssertionError("unreachable")

    # -- auth -------------------------------------------------------------------

    def _auth_headers(self, scope: str, url: str = "") -> dict[str, str]:
        c = self._challenge
        if c is None:
            return {}
        if c.scheme == "basic":
            if self.credentials.username or self.credentials.password:
                return {"Authorization": self.credentials.basic()}
            # distribution's client refuses before sending, in these words (dockerd answers 500)
            raise Internal(f'Get "{url}": no basic auth credentials' if url else "no basic auth credentials")
        if c.scheme == "bearer":
            if self.credentials.registry_token:
                return {"Authorization": "Bearer " + self.credentials.registry_token}
            token = self.tokens.get(scope) or self._fetch_token(scope)
            return {"Authorization": "Bearer " + token}
        return {}

    def _fetch_token(self, scope: str) -> str:
        c = self._challenge
        assert c is not None
        realm = c.params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgument(f"invalid token realm {realm!r} in the registry's challenge")
        if parts.scheme == "http" and not is_insecure(self.options, parts.netloc):
            raise InvalidArgument(f"token realm {realm} is plain http to a host that is not an insecure registry")
        ep = self._realm_endpoint(parts)
        query = [("service", c.params["service"])] if c.params.get("service") else []
        scopes = sorted({*scope.split(" "), c.params.get("scope", "")} - {""}) if scope else []
        query += [("scope", s) for s in scopes]
        creds = self.credentials
        if creds.identity_token:
            form = urllib.parse.urlencode([("grant_type", "refresh_token"), ("refresh_token", creds.identity_token),
                                           ("client_id", "docker"), *query]).encode()
            reply = self._send(ep, "POST", parts.path or "/",
                               {"Content-Type": "application/x-www-form-urlencoded"}, form)
        else:
            target = (parts.path or "/") + "?" + urllib.parse.urlencode(
                [*urllib.parse.parse_qsl(parts.query), *query, *([("account", creds.username)] if creds.username else [])])
            hdrs = {"Authorization": creds.basic()} if creds.username else {}
            reply = self._send(ep, "GET", target, hdrs)
        body = reply.read_all(1 << 20)
        if reply.status in (401, 403):
            raise Unauthorized("unauthorized: incorrect username or password" if not creds.anonymous
                               else str(parse_errors(reply.status, body)[0]))
        if reply.status != 200:
            raise error_for(parse_errors(reply.status, body) or [RegistryErrorEntry("UNKNOWN", "token request failed")])
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
            lifetime = doc.get("expires_in")
        except (ValueError, AttributeError):
            token, lifetime = None, None
        if not isinstance(token, str) or not token:
            raise PortsideError("the token server answered without a token")
        self.tokens.put(scope, token, float(lifetime) if isinstance(lifetime, (int, float)) else None)
        return token

    def _realm_endpoint(self, parts: urllib.parse.SplitResult) -> Endpoint:
        assert self.endpoint is not None
        if parts.netloc == self.endpoint.host and parts.scheme == self.endpoint.scheme:
            return self.endpoint  # same server: same trust (certs.d CA)
        for ep in endpoints(self.options, parts.netloc):
            if ep.scheme == parts.scheme:
                return ep
        return Endpoint(parts.scheme, parts.netloc)

    def close(self) -> None:
        self.pool.close()


def _retry_after(value: str, attempt: int) -> float:
    try:
        return min(30.0, max(0.0, float(value or "x")))
    except ValueError:
        return min(30.0, 0.5 * 2.0 ** attempt)


def _describe(e: BaseException, host: str = "") -> str:
    """An OSError in the words of Go's net/http, which docker users know."""
    if isinstance(e, socket.gaierror):
        return f"dial tcp: lookup {host.rsplit(':', 1)[0] if host.count(':') == 1 else host}: no such host"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: {e.verify_message}"
    if isinstance(e, ssl.SSLError):
        return f"tls: {e.reason or e}"
    if isinstance(e, ConnectionRefusedError):
        return f"dial tcp {host}: connect: connection refused"
    if isinstance(e, socket.timeout):
        return "i/o timeout"
    return str(e) or type(e).__name__
