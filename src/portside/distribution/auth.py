"""Registry credentials and the challenge-response handshake.

Credentials reach the daemon in ``X-Registry-Auth``: base64url of a JSON
AuthConfig (``username``, ``password``, ``serveraddress``, or an
``identitytoken``). A registry names its scheme in ``WWW-Authenticate``:

* ``Basic realm=...``: the credentials go with every request;
* ``Bearer realm=...,service=...,scope=...``: a token is fetched from the
  realm (with the credentials as Basic auth, or an identity token as an OAuth2
  refresh token), cached per scope until it expires, and fetched again when
  the registry answers 401 to it (a token that expired mid-pull).

Secrets never reach a message or a log line: ``Credentials.__repr__`` hides them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from dataclasses import dataclass, field

from portside.distribution.hosts import DOCKER_HUB
from portside.errors import InvalidArgument


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)   # a bearer token given by the client

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


ANONYMOUS = Credentials()


def decode_registry_auth(header: str | None) -> Credentials:
    """The ``X-Registry-Auth`` header; empty or ``{}`` is anonymous (as dockerd, padding optional)."""
    if not header:
        return ANONYMOUS
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidArgument("invalid X-Registry-Auth header: not base64url-encoded JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
    return credentials_from_json(doc)


def decode_registry_config(header: str | None) -> dict[str, Credentials]:
    """``X-Registry-Config`` (``POST /build``): base64url JSON of AuthConfigs keyed by server, by registry domain."""
    if not header:
        return {}
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidArgument("invalid X-Registry-Config header: not base64url-encoded JSON") from None
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise InvalidArgument("invalid X-Registry-Config header: not a JSON object of auth configurations")
    return {server_domain(str(server)): credentials_from_json(conf) for server, conf in doc.items()}


def server_domain(server: str) -> str:
    """A login server as the docker CLI names it (``https://index.docker.io/v1/``, ``host:port``, a URL): its domain."""
    host = server.split("://", 1)[-1].split("/", 1)[0]
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io", ""):
        return DOCKER_HUB
    return host


def credentials_from_json(doc: dict[str, object]) -> Credentials:
    """A Docker AuthConfig (as in ``X-Registry-Auth`` and ``POST /auth``); ``auth`` is base64 ``user:pass``."""
    def text(key: str) -> str:
        v = doc.get(key)
        return v if isinstance(v, str) else ""

    username, password = text("username"), text("password")
    if not username and text("auth"):
        try:
            username, _, password = base64.b64decode(text("auth")).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument("invalid auth configuration: auth is not base64 user:password") from None
    return Credentials(username, password, text("identitytoken"), text("registrytoken"))


@dataclass(frozen=True)
class Challenge:
    scheme: str                    # "bearer", "basic" (lowercase)
    params: dict[str, str]


_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenges(header: str) -> list[Challenge]:
    """``WWW-Authenticate`` values: ``Bearer realm="...",service="...",scope="..."``."""
    found: list[Challenge] = []
    rest = header.strip()
    while rest:
        scheme, _, rest = rest.partition(" ")
        params: dict[str, str] = {}
        while True:
            m = _PARAM.match(rest)
            if not m:
                break
            params[m.group(1).lower()] = m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
            rest = rest[m.end():]
        found.append(Challenge(scheme.strip(",").lower(), params))
        rest = rest.strip().lstrip(",").strip()
    return [c for c in found if c.scheme]


@dataclass
class _Token:
    value: str
    expires: float


class TokenCache:
    """Bearer tokens by scope; refreshed when they expire or the registry refuses them.

    ``_tokens`` is guarded by ``_lock`` (three layer downloads share one cache).
    """

    # Docker's default lifetime when the token server does not say.
    DEFAULT_LIFETIME = 60.0

    def __init__(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()

    def get(self, scope: str) -> str | None:
        with self._lock:
            t = self._tokens.get(scope)
            if t is None or t.expires <= time.monotonic():
                return None
            return t.value

    def put(self, scope: str, value: str, lifetime: float | None) -> None:
        # A little early: a token that expires on the way is refreshed before it is refused.
        life = max(1.0, (lifetime or self.DEFAULT_LIFETIME) - 2.0)
        with self._lock:
            self._tokens[scope] = _Token(value, time.monotonic() + life)

    def drop(self, scope: str, value: str) -> None:
        with self._lock:
            t = self._tokens.get(scope)
            if t is not None and t.value == value:
                del self._tokens[scope]


def repository_scope(path: str, actions: str = "pull") -> str:
    return f"repository:{path}:{actions}"
