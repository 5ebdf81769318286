"""Who may do what: open, htpasswd (bcrypt) Basic, or Bearer tokens (HMAC-SHA256 JWT).

A request needs a set of scopes (``repository:NAME:pull``, ``...:push``,
``...:delete``, ``registry:catalog:*``). Basic grants every scope to a valid
user. Bearer grants what the token's ``access`` claim lists; the registry's
own ``/token`` endpoint issues tokens for the scopes asked for to users of its
htpasswd file (anonymous callers get pull only if ``anonymous_pull``). A
missing or insufficient credential is a 401 with the challenge
(``WWW-Authenticate``) naming the realm, service and the scopes needed, as
distribution's token auth does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from portside.registry.codes import RegistryError
from portside.registry.config import Config, TokenConfig


@dataclass(frozen=True)
class Scope:
    type: str       # "repository" or "registry"
    name: str
    action: str     # pull, push, delete, *

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{self.action}"


class Htpasswd:
    """An htpasswd file of bcrypt entries (``htpasswd -B``); reread when it changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime = -1.0
        self._users: dict[str, bytes] = {}
        self._lock = threading.Lock()  # guards _mtime, _users
        # bcrypt is slow by design: remember successful checks for the process's life.
        self._ok: set[tuple[str, bytes]] = set()

    def _load(self) -> dict[str, bytes]:
        mtime = os.stat(self.path).st_mtime
        with self._lock:
            if mtime != self._mtime:
                users: dict[str, bytes] = {}
                with open(self.path, "rb") as f:
                    for line in f.read().splitlines():
                        user, sep, hashed = line.strip().partition(b":")
                        if sep and user and not user.startswith(b"#"):
                            users[user.decode()] = hashed
                self._users, self._mtime, self._ok = users, mtime, set()
            return self._users

    def check(self, user: str, password: str) -> bool:
        import bcrypt

        hashed = self._load().get(user)
        if hashed is None or not hashed.startswith((b"$2a$", b"$2b$", b"$2y$")):
            return False
        key = (user, hashlib.sha256(hashed + b"\0" + password.encode()).digest())
        if key in self._ok:
            return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False
        if ok:
            self._ok.add(key)
        return ok


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class Tokens:
    """Sign and verify HS256 JWTs carrying distribution's ``access`` claim."""

    def __init__(self, cfg: TokenConfig) -> None:
        self.cfg = cfg

    def issue(self, subject: str, granted: list[Scope]) -> str:
        now = int(time.time())
        access: dict[tuple[str, str], list[str]] = {}
        for s in granted:
            access.setdefault((s.type, s.name), []).append(s.action)
        claims = {
            "iss": self.cfg.issuer, "sub": subject, "aud": self.cfg.service,
            "iat": now, "nbf": now - 5, "exp": now + self.cfg.expires_in, "jti": secrets.token_hex(8),
            "access": [{"type": t, "name": n, "actions": a} for (t, n), a in access.items()],
        }
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        sig = hmac.new(self.cfg.secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(sig)}"

    def verify(self, untrusted_token: str) -> set[Scope] | None:
        """The scopes a valid token grants; None if it is not valid (signature, issuer, audience, time)."""
        parts = untrusted_token.split(".")
        if len(parts) != 3:
            return None
        expected = hmac.new(self.cfg.secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(_unb64(parts[2]), expected):
                return None
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
            return None
        now = time.time()
        if claims.get("iss") != self.cfg.issuer or claims.get("aud") != self.cfg.service:
            return None
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now:
            return None
        if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > now + 60:
            return None
        granted: set[Scope] = set()
        for entry in claims.get("access") or []:
            if isinstance(entry, dict) and isinstance(entry.get("actions"), list):
                for action in entry["actions"]:
                    granted.add(Scope(str(entry.get("type")), str(entry.get("name")), str(action)))
        return granted


def parse_scopes(values: list[str]) -> list[Scope]:
    """``repository:NAME:pull,push`` (repeatable, space-separated too) as single-action scopes."""
    out: list[Scope] = []
    for value in values:
        for item in value.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name:
                out.extend(Scope(kind, name, a) for a in actions.split(",") if a)
    return out


class Authorizer:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.htpasswd = Htpasswd(cfg.htpasswd) if cfg.htpasswd else None
        self.tokens = Tokens(cfg.token) if cfg.token else None
        self.token_users = Htpasswd(cfg.token.htpasswd) if cfg.token and cfg.token.htpasswd else None

    @property
    def issues_tokens(self) -> bool:
        return self.tokens is not None and not self.cfg.token.realm  # type: ignore[union-attr]

    def check(self, authorization: str, needed: list[Scope], base_url: str) -> None:
        """Return if the request may go on; raise UNAUTHORIZED (401) with the challenge otherwise."""
        if self.tokens is not None:
            scheme, _, value = authorization.partition(" ")
            granted = self.tokens.verify(value.strip()) if scheme.lower() == "bearer" else None
            if granted is not None and all(s in granted or Scope(s.type, s.name, "*") in granted for s in needed):
                return
            cfg = self.cfg.token
            assert cfg is not None
            realm = cfg.realm or f"{base_url}/token"
            challenge = f'Bearer realm="{realm}",service="{cfg.service}"'
            if needed:
                challenge += ',scope="' + " ".join(_merge(needed)) + '"'
            if granted is not None:
                # a valid token that lacks a scope: distribution answers 401 with
                # error="insufficient_scope" so clients fetch a wider token
                challenge += ',error="insufficient_scope"'
            raise RegistryError("UNAUTHORIZED", detail=[{"Type": s.type, "Name": s.name, "Action": s.action} for s in needed] or None,
                                headers=(("WWW-Authenticate", challenge),))
        if self.htpasswd is not None:
            creds = basic_credentials(authorization)
            if creds is None or not self.htpasswd.check(*creds):
                raise RegistryError("UNAUTHORIZED",
                                    headers=(("WWW-Authenticate", f'Basic realm="{self.cfg.htpasswd_realm}"'),))

    def token_response(self, authorization: str, scope_params: list[str], service: str) -> dict[str, Any]:
        """The body of ``GET /token``; raises UNAUTHORIZED for bad credentials."""
        assert self.tokens is not None and self.cfg.token is not None
        subject = ""
        if authorization:
            creds = basic_credentials(authorization)
            if creds is None or self.token_users is None or not self.token_users.check(*creds):
                raise RegistryError("UNAUTHORIZED", message="authentication failed",
                                    headers=(("WWW-Authenticate", 'Basic realm="portside-registry-token"'),))
            subject = creds[0]
        requested = parse_scopes(scope_params)
        if subject:
            granted = requested
        elif self.cfg.token.anonymous_pull:
            granted = [s for s in requested if s.action == "pull"]
        else:
            granted = []
        token = self.tokens.issue(subject, granted)
        return {"token": token, "access_token": token, "expires_in": self.cfg.token.expires_in,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _merge(scopes: list[Scope]) -> list[str]:
    merged: dict[tuple[str, str], list[str]] = {}
    for s in scopes:
        merged.setdefault((s.type, s.name), []).append(s.action)
    return [f"{t}:{n}:{','.join(a)}" for (t, n), a in merged.items()]
