"""A bare OCI Distribution client over http.client, for the conformance suite.

Deliberately nothing but HTTP: no retries, no redirects followed unless asked,
no header added that a test did not ask for beyond Host and Content-Length, so
a test sees exactly what the registry answered. Content helpers build blobs and
manifests whose digests the tests compute themselves.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ACCEPT_ALL = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    incomplete: bool = False   # the connection closed before Content-Length bytes came

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)

    def error_codes(self) -> list[str]:
        """The ``code`` of each entry of the spec's error body; [] when the body is not one."""
        try:
            doc = json.loads(self.body)
        except ValueError:
            return []
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if not isinstance(errors, list):
            return []
        return [str(e.get("code")) for e in errors if isinstance(e, dict)]

    def __repr__(self) -> str:
        return f"<Response {self.status} {dict(self.headers)!r} {self.body[:300]!r}>"


@dataclass
class Client:
    """One registry at ``host:port`` (plain HTTP; ``https`` when the URL said so)."""

    host: str
    port: int
    tls: bool = False
    timeout: float = 60.0

    @classmethod
    def from_url(cls, url: str) -> Client:
        u = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        tls = u.scheme == "https"
        return cls(u.hostname or "127.0.0.1", u.port or (443 if tls else 80), tls)

    def connection(self) -> http.client.HTTPConnection:
        if self.tls:
            import ssl

            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the suite tests the API, not a certificate chain
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        """One request on a fresh connection; ``path`` may be an absolute URL (a Location header)."""
        conn = self.connection()
        try:
            conn.request(method, self.relative(path), body=body, headers=headers or {})
            resp = conn.getresponse()
            try:
                return Response(resp.status, resp.headers, resp.read())
            except http.client.IncompleteRead as e:
                return Response(resp.status, resp.headers, e.partial, incomplete=True)
        finally:
            conn.close()

    @staticmethod
    def relative(location: str) -> str:
        """A Location header may be absolute or relative (both allowed by the spec): keep path and query."""
        u = urllib.parse.urlsplit(location)
        return u.path + (f"?{u.query}" if u.query else "")

    # -- building blocks the tests share -------------------------------------------------

    def start_upload(self, name: str) -> Response:
        return self.request("POST", f"/v2/{name}/blobs/uploads/", b"", {"Content-Length": "0"})

    def push_blob(self, name: str, data: bytes) -> str:
        """POST then monolithic PUT; returns the digest. Asserts each step's status."""
        digest = sha256(data)
        start = self.start_upload(name)
        assert start.status == 202, start
        done = self.request("PUT", with_query(start.header("Location") or "", digest=digest), data,
                            {"Content-Type": "application/octet-stream"})
        assert done.status == 201, done
        return digest

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> Response:
        return self.request("PUT", f"/v2/{name}/manifests/{reference}", body, {"Content-Type": media_type})

    def get_manifest(self, name: str, reference: str, method: str = "GET") -> Response:
        return self.request(method, f"/v2/{name}/manifests/{reference}", None, {"Accept": ACCEPT_ALL})

    def tags(self, name: str, query: str = "") -> Response:
        return self.request("GET", f"/v2/{name}/tags/list" + (f"?{query}" if query else ""))


def with_query(location: str, **params: str) -> str:
    """Add query parameters to an upload Location that may already carry some (its state token)."""
    sep = "&" if "?" in location else "?"
    return location + sep + urllib.parse.urlencode(params)


def unique_name(prefix: str = "conformance") -> str:
    """A fresh repository name per test, so tests never see each other's content."""
    return f"{prefix}/r{secrets.token_hex(5)}"


@dataclass
class Image:
    """A config blob, layers and the manifest over them (nothing pushed until `push`)."""

    config: bytes
    layers: list[bytes]
    media_type: str = OCI_MANIFEST
    extra: dict[str, Any] = field(default_factory=dict)   # merged into the manifest (subject, artifactType...)

    @classmethod
    def random(cls, *, layers: int = 1, media_type: str = OCI_MANIFEST, **extra: Any) -> Image:
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []},
                             "nonce": secrets.token_hex(8)}).encode()
        return cls(config, [secrets.token_bytes(1024 + i) for i in range(layers)], media_type, dict(extra))

    @property
    def manifest(self) -> bytes:
        docker = self.media_type == DOCKER_MANIFEST
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, self.config),
            "layers": [descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer) for layer in self.layers],
        }
        doc.update(self.extra)
        return json.dumps(doc, separators=(",", ":")).encode()

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def push_blobs(self, client: Client, name: str) -> None:
        for blob in (self.config, *self.layers):
            client.push_blob(name, blob)

    def push(self, client: Client, name: str, reference: str | None = None) -> Response:
        """Push the blobs, then the manifest by ``reference`` (its digest when None); asserts 201."""
        self.push_blobs(client, name)
        resp = client.put_manifest(name, reference or self.digest, self.manifest, self.media_type)
        assert resp.status == 201, resp
        return resp


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def index(manifests: list[tuple[str, bytes]], media_type: str = OCI_INDEX) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": media_type,
           "manifests": [descriptor(mt, body, platform={"architecture": "amd64", "os": "linux"})
                         for mt, body in manifests]}
    return json.dumps(doc, separators=(",", ":")).encode()


def raw_request_then_close(host: str, port: int, head: bytes, partial_body: bytes) -> None:
    """Send a request head and part of its body, then drop the connection (a client that died mid-upload)."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(head + partial_body)
        s.shutdown(socket.SHUT_RDWR)
