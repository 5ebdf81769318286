"""The registry's configuration: command-line flags over a JSON or TOML file.

YAML (distribution's format) is not in the standard library, so the file is
JSON, or TOML when its name ends in ``.toml``. Keys (all optional)::

    addr = "127.0.0.1:5000"        root = "/var/lib/portside-registry"
    read_only = false              delete_enabled = true
    upload_ttl = 3600              # seconds before an idle upload session is purged
    log = false                    # one line per request on stderr
    [tls]   cert = "srv.crt"   key = "srv.key"
    [auth.htpasswd]  path = "htpasswd"   realm = "portside-registry"
    [auth.token]     realm = "https://host:5000/token"   # omit: the registry issues at /token
                     service = "portside-registry"   issuer = "portside-registry"
                     secret = "..." | secret_file = "key"   # HMAC-SHA256 key
                     htpasswd = "htpasswd"    # users the /token issuer accepts
                     expires_in = 300    anonymous_pull = false
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from portside.errors import InvalidArgument


@dataclass
class TokenConfig:
    secret: bytes
    realm: str = ""          # "" = this registry's own /token
    service: str = "portside-registry"
    issuer: str = "portside-registry"
    htpasswd: str = ""
    expires_in: int = 300
    anonymous_pull: bool = False


@dataclass
class Config:
    addr: str = "127.0.0.1:5000"
    root: str = "/var/lib/portside-registry"
    read_only: bool = False
    delete_enabled: bool = True
    upload_ttl: float = 3600.0
    log: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    htpasswd: str = ""
    htpasswd_realm: str = "portside-registry"
    token: TokenConfig | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.addr.rpartition(":")
        if not sep or not port.isdigit():
            raise InvalidArgument(f"invalid --addr {self.addr!r}: want HOST:PORT")
        return host.strip("[]") or "0.0.0.0", int(port)


def _relative(base: str, path: str) -> str:
    return path if not path or os.path.isabs(path) else os.path.join(base, path)


def load(path: str) -> Config:
    with open(path, "rb") as f:
        raw = f.read()
    try:
        if path.endswith(".toml"):
            import tomllib

            doc = tomllib.loads(raw.decode())
        else:
            doc = json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"{path}: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{path}: not a table/object")
    base = os.path.dirname(os.path.abspath(path))
    cfg = Config()
    kinds: dict[str, tuple[type, ...]] = {"addr": (str,), "root": (str,), "read_only": (bool,),
                                          "delete_enabled": (bool,), "upload_ttl": (int, float), "log": (bool,)}
    for key, kind in kinds.items():
        if key in doc:
            if not isinstance(doc[key], kind) or (kind != (bool,) and isinstance(doc[key], bool)):
                raise InvalidArgument(f"{path}: {key} must be {' or '.join(k.__name__ for k in kind)}")
            setattr(cfg, key, doc[key])
    cfg.root = _relative(base, cfg.root)
    tls = doc.get("tls") or {}
    cfg.tls_cert = _relative(base, tls.get("cert", ""))
    cfg.tls_key = _relative(base, tls.get("key", ""))
    auth = doc.get("auth") or {}
    if "htpasswd" in auth:
        cfg.htpasswd = _relative(base, auth["htpasswd"]["path"])
        cfg.htpasswd_realm = auth["htpasswd"].get("realm", cfg.htpasswd_realm)
    if "token" in auth:
        t = auth["token"]
        if "secret_file" in t:
            with open(_relative(base, t["secret_file"]), "rb") as f:
                secret = f.read().strip()
        elif "secret" in t:
            secret = str(t["secret"]).encode()
        else:
            raise InvalidArgument(f"{path}: auth.token needs secret or secret_file")
        cfg.token = TokenConfig(
            secret=secret,
            realm=t.get("realm", ""),
            service=t.get("service", "portside-registry"),
            issuer=t.get("issuer", "portside-registry"),
            htpasswd=_relative(base, t.get("htpasswd", "")),
            expires_in=int(t.get("expires_in", 300)),
            anonymous_pull=bool(t.get("anonymous_pull", False)),
        )
    return cfg
