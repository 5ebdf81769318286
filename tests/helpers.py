"""Test helpers: a raw Engine API client over a unix socket, and mount inspection."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class Api:
    """Plain HTTP calls to the daemon, for asserting on the API itself."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = UnixHTTPConnection(self.socket_path)
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, _, data = self.request(method, path, body)
        assert status == expect, (status, data)
        return json.loads(data) if data else None


def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` (from /proc/self/mountinfo)."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = line.split()[4].replace("\\040", " ")
            if target == path or target.startswith(path.rstrip("/") + "/"):
                found.append(target)
    return found
