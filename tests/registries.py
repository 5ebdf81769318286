"""Registry peers for the distribution tests, all on loopback and started by the tests.

* ``start_registry``: the CNCF Distribution registry (Debian's ``docker-registry``)
  on 127.0.0.1:<free port> with a temporary storage root; optionally behind TLS
  with a CA the test makes (openssl) and htpasswd basic auth (``htpasswd -B``).
* ``TokenProxy``: a small Docker Hub-like Bearer front in this process: ``/token``
  issues tokens for ``realm/service/scope`` (Basic credentials checked), ``/v2/``
  demands them and forwards to an open registry. A token stops working after
  ``uses`` requests (the client was told it lives 300 s), so a pull meets an
  expired token mid-way. Faults on request: a 429 first, a blob connection
  dropped half-way.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed")
    return path


@dataclass
class TLSFiles:
    ca: str
    cert: str
    key: str


def make_tls(directory: str) -> TLSFiles:
    """A CA and a server certificate for 127.0.0.1 signed by it (EC P-256: quick to make)."""
    require("openssl")
    ca_key, ca, key, csr, cert = (os.path.join(directory, n) for n in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt"))
    ext = os.path.join(directory, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-subj", "/CN=portside test CA",
                    "-days", "2"], check=True, capture_output=True)
    subprocess.run(["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", ext], check=True, capture_output=True)
    return TLSFiles(ca, cert, key)


@dataclass
class Registry:
    host: str                 # "127.0.0.1:PORT"
    root: str                 # its storage root
    proc: subprocess.Popen[bytes]
    log_path: str
    tls: TLSFiles | None = None
    user: str = ""
    password: str = ""

    def blob_path(self, digest: str) -> str:
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.root, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_registry(base: str, *, tls: TLSFiles | None = None, user: str = "", password: str = "") -> Registry:
    binary = require("docker-registry")
    port = free_port()
    root = os.path.join(base, f"registry-{port}")
    os.makedirs(root)
    lines = ["version: 0.1", "log:", "  level: warn", "  accesslog:", "    disabled: true",
             "storage:", "  filesystem:", f"    rootdirectory: {root}", "  delete:", "    enabled: true",
             "http:", f"  addr: 127.0.0.1:{port}", f"  secret: {secrets.token_hex(8)}"]
    if tls:
        lines += ["  tls:", f"    certificate: {tls.cert}", f"    key: {tls.key}"]
    if user:
        require("htpasswd")
        htpasswd = os.path.join(base, f"htpasswd-{port}")
        out = subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True).stdout
        with open(htpasswd, "wb") as f:
            f.write(out)
        lines += ["auth:", "  htpasswd:", "    realm: portside-test", f"    path: {htpasswd}"]
    config = os.path.join(base, f"registry-{port}.yml")
    with open(config, "w") as f:
        f.write("\n".join(lines) + "\n")
    log_path = os.path.join(base, f"registry-{port}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([binary, "serve", config], stdout=log, stderr=subprocess.STDOUT)
    reg = Registry(f"127.0.0.1:{port}", root, proc, log_path, tls, user, password)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"docker-registry exited {proc.returncode}: {open(log_path).read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return reg
        except OSError:
            time.sleep(0.05)
    reg.stop()
    raise AssertionError("docker-registry did not listen in 20 s")


def skopeo_push(source: str, reg: Registry, name: str) -> str:
    """``skopeo copy`` an archive (``docker-archive:...``) to ``reg/name``; returns the manifest digest."""
    skopeo = require("skopeo")
    creds = ["--dest-creds", f"{reg.user}:{reg.password}"] if reg.user else []
    tls = ["--dest-tls-verify=false"]
    if reg.tls:
        # a directory with the CA alone: skopeo takes any *.key there for half of a client certificate
        ca_dir = os.path.join(os.path.dirname(reg.root), f"skopeo-ca-{secrets.token_hex(4)}")
        os.makedirs(ca_dir)
        shutil.copy(reg.tls.ca, os.path.join(ca_dir, "ca.crt"))
        tls = ["--dest-cert-dir", ca_dir]
    digest_file = os.path.join(os.path.dirname(reg.root), f"digest-{secrets.token_hex(4)}")
    env = {**os.environ, "TMPDIR": os.path.dirname(reg.root)}
    proc = subprocess.run([skopeo, "copy", "--quiet", *creds, *tls, "--digestfile", digest_file, source,
                           f"docker://{reg.host}/{name}"], capture_output=True, env=env, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"skopeo copy to {reg.host}/{name} failed: {proc.stderr.decode(errors='replace')}")
    with open(digest_file) as f:
        return f.read().strip()


@dataclass
class TokenProxy:
    """See the module docstring. Counters let a test see what happened."""

    upstream: str                      # "127.0.0.1:PORT" of an open registry
    user: str = "alice"
    password: str = "wonderland"
    uses: int = 1000                   # requests a token is good for
    anonymous_pull: bool = True
    tokens_issued: int = 0
    refused: int = 0
    fail_429_once: bool = False
    drop_blob_once: bool = False
    overrides: dict[str, tuple[str, bytes]] = field(default_factory=dict)   # path -> (media type, body)
    _tokens: dict[str, list[object]] = field(default_factory=dict)   # token -> [uses left, scope]
    _lock: threading.Lock = field(default_factory=threading.Lock)
    host: str = ""

    def start(self) -> "TokenProxy":
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            do_HEAD = do_GET

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- handling ---------------------------------------------------------------

    def _reply(self, h: http.server.BaseHTTPRequestHandler, status: int, body: bytes,
               headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        if url.path == "/token":
            return self._token(h, urllib.parse.parse_qs(url.query))
        if not url.path.startswith("/v2/"):
            return self._reply(h, 404, b"not found")
        scope = ""
        parts = url.path[4:].split("/")
        for marker in ("manifests", "blobs", "tags"):
            if marker in parts:
                scope = f"repository:{'/'.join(parts[:parts.index(marker)])}:pull"
        if not self._authorized(h.headers.get("Authorization", ""), scope):
            self.refused += 1
            challenge = f'Bearer realm="http://{self.host}/token",service="portside-test"'
            if scope:
                challenge += f',scope="{scope}"'
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}).encode()
            return self._reply(h, 401, body, {"WWW-Authenticate": challenge, "Content-Type": "application/json"})
        if url.path in self.overrides:
            media_type, body = self.overrides[url.path]
            return self._reply(h, 200, body, {"Content-Type": media_type})
        if self.fail_429_once and "/manifests/" in url.path:
            self.fail_429_once = False
            body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}).encode()
            return self._reply(h, 429, body, {"Retry-After": "0", "Content-Type": "application/json"})
        self._forward(h)

    def _authorized(self, header: str, scope: str) -> bool:
        if not header.startswith("Bearer "):
            return False
        with self._lock:
            entry = self._tokens.get(header[7:])
            if entry is None or int(entry[0]) <= 0:  # type: ignore[call-overload]
                return False
            if scope and scope not in str(entry[1]).split(" "):
                return False
            entry[0] = int(entry[0]) - 1  # type: ignore[call-overload]
            return True

    def _token(self, h: http.server.BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if (user, password) != (self.user, self.password):
                return self._reply(h, 401, json.dumps({"details": "incorrect username or password"}).encode(),
                                   {"Content-Type": "application/json"})
        elif not self.anonymous_pull:
            return self._reply(h, 401, b'{"details":"credentials required"}', {"Content-Type": "application/json"})
        if query.get("service") != ["portside-test"]:
            return self._reply(h, 400, b'{"details":"unknown service"}')
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = [self.uses, " ".join(query.get("scope", []))]
            self.tokens_issued += 1
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300,
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
        self._reply(h, 200, body, {"Content-Type": "application/json"})

    def _forward(self, h: http.server.BaseHTTPRequestHandler) -> None:
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in h.headers.items() if k.lower() in ("accept", "range")}
        conn.request(h.command, h.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        drop = (self.drop_blob_once and "/blobs/" in h.path and resp.status == 200 and len(body) > 4096)
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in ("content-type", "docker-content-digest", "content-range", "accept-ranges", "etag"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command == "HEAD":
            return
        if drop:
            self.drop_blob_once = False
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)  # the connection drops half-way through the blob
            return
        h.wfile.write(body)


def ssl_context_for(ca: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    return ctx
