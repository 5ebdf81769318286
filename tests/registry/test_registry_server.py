"""``portside registry serve`` as a subprocess on 127.0.0.1: its endpoints, storage, auth and gc,
and real clients (skopeo, portside's daemon, the docker CLI through it) pushing and pulling.

The conformance suite (tests/registry/ by the conformance work) tests the spec against
any registry; these tests check what is portside's own: blobs stored once, nothing
visible from failed uploads, the auth modes, read-only, gc, session expiry.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from registries import free_port, make_tls, require

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Reg:
    host: str
    root: str
    base: str
    proc: subprocess.Popen[bytes]
    log_path: str
    tls: ssl.SSLContext | None = None
    auth: str = ""  # an Authorization header value sent with every request

    def conn(self) -> http.client.HTTPConnection:
        h, p = self.host.split(":")
        if self.tls is not None:
            return http.client.HTTPSConnection(h, int(p), timeout=30, context=self.tls)
        return http.client.HTTPConnection(h, int(p), timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        hdrs = dict(headers or {})
        if self.auth and "Authorization" not in hdrs:
            hdrs["Authorization"] = self.auth
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def error(self, body: bytes) -> str:
        return json.loads(body)["errors"][0]["code"]

    def push_blob(self, repo: str, data: bytes) -> str:
        d = sha(data)
        status, _, body = self.request("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data,
                                       {"Content-Type": "application/octet-stream"})
        assert status == 201, body
        return d

    def push_manifest(self, repo: str, ref: str, doc: dict[str, Any], media_type: str = OCI_MANIFEST) -> str:
        data = json.dumps(doc).encode()
        status, headers, body = self.request("PUT", f"/v2/{repo}/manifests/{ref}", data, {"Content-Type": media_type})
        assert status == 201, body
        assert headers["docker-content-digest"] == sha(data)
        return sha(data)

    def push_image(self, repo: str, tag: str, layer: bytes, config: bytes = b"{}") -> tuple[str, dict[str, Any]]:
        doc = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.push_blob(repo, config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": self.push_blob(repo, layer),
                        "size": len(layer)}],
        }
        return self.push_manifest(repo, tag, doc), doc

    def blob_files(self) -> set[str]:
        return {"sha256:" + n for n in os.listdir(os.path.join(self.root, "blobs", "sha256"))}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(base: str, config: dict[str, Any] | None = None, *, ca: str = "") -> Reg:
    port = free_port()
    root = (config or {}).get("root") or os.path.join(base, f"root-{port}")
    args = [sys.executable, "-m", "portside", "registry", "serve", "--addr", f"127.0.0.1:{port}", "--root", root]
    if config is not None:
        path = os.path.join(base, f"config-{port}.json")
        with open(path, "w") as f:
            json.dump(config, f)
        args += ["--config", path]
    log_path = os.path.join(base, f"registry-{port}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    tls = None
    if ca:
        tls = ssl.create_default_context(cafile=ca)
    reg = Reg(f"127.0.0.1:{port}", root, base, proc, log_path, tls)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"registry exited {proc.returncode}: {open(log_path).read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return reg
        except OSError:
            time.sleep(0.05)
    reg.stop()
    raise AssertionError("registry did not listen in 20 s")


@pytest.fixture
def base() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="portside-registry-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def reg(base: str) -> Iterator[Reg]:
    r = start(base)
    try:
        yield r
    finally:
        r.stop()


# -- blobs and uploads ------------------------------------------------------------


def test_base_and_blob_roundtrip_with_ranges(reg: Reg) -> None:
    status, headers, body = reg.request("GET", "/v2/")
    assert (status, body) == (200, b"{}") and headers["docker-distribution-api-version"] == "registry/2.0"
    data = os.urandom(100_000)
    d = reg.push_blob("a/b", data)
    status, headers, body = reg.request("GET", f"/v2/a/b/blobs/{d}")
    assert status == 200 and body == data and headers["docker-content-digest"] == d
    status, headers, body = reg.request("HEAD", f"/v2/a/b/blobs/{d}")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(data))
    status, headers, body = reg.request("GET", f"/v2/a/b/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert status == 206 and body == data[10:20] and headers["content-range"] == f"bytes 10-19/{len(data)}"
    status, _, body = reg.request("GET", f"/v2/a/b/blobs/{d}", headers={"Range": "bytes=-5"})
    assert status == 206 and body == data[-5:]
    status, headers, _ = reg.request("GET", f"/v2/a/b/blobs/{d}", headers={"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(data)}"
    # another repository does not see it until it holds it
    status, _, body = reg.request("GET", f"/v2/other/blobs/{d}")
    assert status == 404 and reg.error(body) == "BLOB_UNKNOWN"
    status, _, _ = reg.request("DELETE", f"/v2/a/b/blobs/{d}")
    assert status == 202
    status, _, body = reg.request("HEAD", f"/v2/a/b/blobs/{d}")
    assert status == 404


def test_chunked_upload_status_order_and_cancel(reg: Reg) -> None:
    data = os.urandom(300_000)
    status, headers, _ = reg.request("POST", "/v2/up/blobs/uploads/")
    assert status == 202 and headers["location"].startswith("/v2/up/blobs/uploads/")
    loc, uuid = headers["location"], headers["docker-upload-uuid"]
    status, headers, _ = reg.request("PATCH", loc, data[:100_000],
                                     {"Content-Range": "0-99999", "Content-Type": "application/octet-stream"})
    assert status == 202 and headers["range"] == "0-99999"
    # a chunk that does not start where the upload ends
    status, headers, body = reg.request("PATCH", loc, data[200_000:],
                                        {"Content-Range": "200000-299999", "Content-Type": "application/octet-stream"})
    assert status == 416, body
    status, headers, _ = reg.request("GET", loc)
    assert status == 204 and headers["range"] == "0-99999" and headers["docker-upload-uuid"] == uuid
    # a chunk without Content-Range (streamed), then the last one with the PUT
    status, headers, _ = reg.request("PATCH", loc, data[100_000:200_000])
    assert status == 202 and headers["range"] == "0-199999"
    status, headers, _ = reg.request("PUT", f"{loc}?digest={sha(data)}", data[200_000:],
                                     {"Content-Type": "application/octet-stream"})
    assert status == 201 and headers["docker-content-digest"] == sha(data)
    assert reg.request("GET", f"/v2/up/blobs/{sha(data)}")[2] == data
    status, _, body = reg.request("GET", loc)
    assert status == 404 and reg.error(body) == "BLOB_UPLOAD_UNKNOWN"
    # cancel
    status, headers, _ = reg.request("POST", "/v2/up/blobs/uploads/")
    loc = headers["location"]
    reg.request("PATCH", loc, b"abc")
    assert reg.request("DELETE", loc)[0] == 204
    assert reg.request("GET", loc)[0] == 404
    assert os.listdir(os.path.join(reg.root, "uploads")) == []


def test_wrong_digest_stores_nothing(reg: Reg) -> None:
    data, wrong = b"real bytes", sha(b"other bytes")
    before = reg.blob_files()
    status, _, body = reg.request("POST", f"/v2/x/blobs/uploads/?digest={wrong}", data)
    assert status == 400 and reg.error(body) == "DIGEST_INVALID"
    _, headers, _ = reg.request("POST", "/v2/x/blobs/uploads/")
    status, _, body = reg.request("PUT", f"{headers['location']}?digest={wrong}", data)
    assert status == 400 and reg.error(body) == "DIGEST_INVALID"
    assert reg.blob_files() == before
    assert os.listdir(os.path.join(reg.root, "ingest")) == []
    assert reg.request("HEAD", f"/v2/x/blobs/{sha(data)}")[0] == 404
    status, _, body = reg.request("GET", "/v2/x/blobs/sha256:abc")
    assert status == 400 and reg.error(body) == "DIGEST_INVALID"


def test_blob_stored_once_mount_and_concurrent_pushes(reg: Reg) -> None:
    data = os.urandom(2_000_000)
    d = sha(data)
    results: list[int] = []

    def push(repo: str) -> None:
        results.append(reg.request("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data)[0])

    threads = [threading.Thread(target=push, args=(f"team/r{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 6
    assert reg.blob_files() == {d}
    with open(os.path.join(reg.root, "blobs", "sha256", d.split(":")[1]), "rb") as f:
        assert sha(f.read()) == d
    status, headers, _ = reg.request("POST", f"/v2/team/new/blobs/uploads/?mount={d}&from=team/r0")
    assert status == 201 and headers["location"] == f"/v2/team/new/blobs/{d}"
    assert reg.request("GET", f"/v2/team/new/blobs/{d}")[2] == data
    # from a repository that does not hold it: a plain upload session
    status, headers, _ = reg.request("POST", f"/v2/team/new2/blobs/uploads/?mount={d}&from=nobody/here")
    assert status == 202 and "docker-upload-uuid" in headers
    assert reg.blob_files() == {d}


def test_client_gone_mid_upload_leaves_no_blob(reg: Reg) -> None:
    data = os.urandom(4_000_000)
    d = sha(data)
    for path in (f"/v2/gone/blobs/uploads/?digest={d}", None):
        if path is None:
            _, headers, _ = reg.request("POST", "/v2/gone/blobs/uploads/")
            path = f"{headers['location']}?digest={d}"
            method = "PUT"
        else:
            method = "POST"
        s = socket.create_connection(tuple(reg.host.split(":")[0:1]) + (int(reg.host.split(":")[1]),))  # type: ignore[arg-type]
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                  + data[: len(data) // 2])
        s.close()
    time.sleep(0.5)
    assert d not in reg.blob_files()
    assert reg.request("HEAD", f"/v2/gone/blobs/{d}")[0] == 404
    assert os.listdir(os.path.join(reg.root, "ingest")) == []


def test_upload_sessions_expire(base: str) -> None:
    reg = start(base, {"upload_ttl": 2})
    try:
        _, headers, _ = reg.request("POST", "/v2/e/blobs/uploads/")
        loc = headers["location"]
        assert reg.request("GET", loc)[0] == 204
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and reg.request("GET", loc)[0] == 204:
            time.sleep(0.5)
        status, _, body = reg.request("GET", loc)
        assert status == 404 and reg.error(body) == "BLOB_UPLOAD_UNKNOWN"
        assert os.listdir(os.path.join(reg.root, "uploads")) == []
    finally:
        reg.stop()


# -- manifests, tags, catalog, referrers ------------------------------------------------


def test_manifests_validated_stored_and_deleted(reg: Reg) -> None:
    layer = os.urandom(1000)
    config = b'{"architecture":"amd64","os":"linux"}'
    cfg_d = reg.push_blob("img", config)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_d, "size": len(config)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": 1000}]}
    data = json.dumps(doc).encode()
    status, _, body = reg.request("PUT", "/v2/img/manifests/v1", data, {"Content-Type": OCI_MANIFEST})
    assert status == 400 and reg.error(body) == "MANIFEST_BLOB_UNKNOWN"
    reg.push_blob("img", layer)
    status, _, body = reg.request("PUT", "/v2/img/manifests/v1", b"{not json", {"Content-Type": OCI_MANIFEST})
    assert status == 400 and reg.error(body) == "MANIFEST_INVALID"
    status, _, body = reg.request("PUT", f"/v2/img/manifests/{sha(b'x')}", data, {"Content-Type": OCI_MANIFEST})
    assert status == 400 and reg.error(body) == "DIGEST_INVALID"
    big = b" " * (4 << 20) + data
    status, _, body = reg.request("PUT", "/v2/img/manifests/big", big, {"Content-Type": OCI_MANIFEST})
    assert status == 413 and reg.error(body) == "MANIFEST_INVALID"
    d = reg.push_manifest("img", "v1", doc)
    for ref in ("v1", d):
        status, headers, body = reg.request("GET", f"/v2/img/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert status == 200 and body == data
        assert headers["content-type"] == OCI_MANIFEST and headers["docker-content-digest"] == d
        status, headers, body = reg.request("HEAD", f"/v2/img/manifests/{ref}")
        assert status == 200 and body == b"" and headers["content-length"] == str(len(data))
    # a Docker schema2 list naming a manifest the repository lacks, then one it has
    lst = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
           "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha(b"nope"), "size": 4,
                          "platform": {"architecture": "amd64", "os": "linux"}}]}
    status, _, body = reg.request("PUT", "/v2/img/manifests/list", json.dumps(lst).encode(),
                                  {"Content-Type": lst["mediaType"]})
    assert status == 400 and reg.error(body) == "MANIFEST_BLOB_UNKNOWN"
    lst["manifests"][0].update(digest=d, size=len(data))
    ld = reg.push_manifest("img", "list", lst, lst["mediaType"])
    assert reg.request("GET", "/v2/img/manifests/list")[1]["content-type"] == lst["mediaType"]
    # delete the tag only, then the manifest by digest (its other tags go with it)
    assert reg.request("DELETE", "/v2/img/manifests/list")[0] == 202
    assert reg.request("GET", "/v2/img/manifests/list")[0] == 404
    assert reg.request("GET", f"/v2/img/manifests/{ld}")[0] == 200
    assert reg.request("DELETE", f"/v2/img/manifests/{d}")[0] == 202
    status, _, body = reg.request("GET", "/v2/img/manifests/v1")
    assert status == 404 and reg.error(body) == "MANIFEST_UNKNOWN"


def test_tags_catalog_pagination_and_names(reg: Reg) -> None:
    for repo in ("b/one", "a/two", "c"):
        d, _ = reg.push_image(repo, "t0", b"layer " + repo.encode())
    for tag in ("t3", "t1", "t2"):
        reg.request("PUT", "/v2/c/manifests/" + tag, reg.request("GET", "/v2/c/manifests/t0")[2],
                    {"Content-Type": OCI_MANIFEST})
    status, headers, body = reg.request("GET", "/v2/c/tags/list?n=2")
    assert json.loads(body) == {"name": "c", "tags": ["t0", "t1"]}
    assert headers["link"] == '</v2/c/tags/list?n=2&last=t1>; rel="next"'
    status, headers, body = reg.request("GET", "/v2/c/tags/list?n=2&last=t1")
    assert json.loads(body)["tags"] == ["t2", "t3"] and "link" not in headers
    assert json.loads(reg.request("GET", "/v2/c/tags/list")[2])["tags"] == ["t0", "t1", "t2", "t3"]
    status, _, body = reg.request("GET", "/v2/nothere/tags/list")
    assert status == 404 and reg.error(body) == "NAME_UNKNOWN"
    status, headers, body = reg.request("GET", "/v2/_catalog?n=1")
    assert json.loads(body) == {"repositories": ["a/two"]} and 'last=a%2Ftwo' in headers["link"]
    assert json.loads(reg.request("GET", "/v2/_catalog?n=5&last=a/two")[2]) == {"repositories": ["b/one", "c"]}
    # names and tags outside the grammar; no path leaves the root
    for path in ("/v2/UPPER/tags/list", "/v2/a..b/tags/list", "/v2/-a/tags/list"):
        status, _, body = reg.request("GET", path)
        assert status == 400 and reg.error(body) == "NAME_INVALID", path
    status, _, body = reg.request("PUT", "/v2/c/manifests/-bad", b"{}", {"Content-Type": OCI_MANIFEST})
    assert status == 400 and reg.error(body) == "TAG_INVALID"
    marker = os.path.join(reg.base, "outside")
    for path in ("/v2/../../outside/tags/list", "/v2/c/blobs/sha256:..%2F..%2F..%2Foutside",
                 "/v2/c/manifests/..%2F..%2Foutside", "/v2/c/blobs/uploads/..%2F..%2Fx"):
        status, _, _ = reg.request("PUT", path, b"x")
        assert status in (400, 404, 405), (path, status)
        assert reg.request("GET", path)[0] in (400, 404), path
    assert not os.path.exists(marker)


def test_subject_and_referrers(reg: Reg) -> None:
    subject_d, subject_doc = reg.push_image("art", "v1", b"image layer")
    subject_size = len(json.dumps(subject_doc).encode())
    empty = reg.push_blob("art", b"{}")
    referrers = []
    for kind in ("application/vnd.example.sbom", "application/vnd.example.sig"):
        blob = reg.push_blob("art", kind.encode())
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
               "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
               "layers": [{"mediaType": "application/octet-stream", "digest": blob, "size": len(kind)}],
               "subject": {"mediaType": OCI_MANIFEST, "digest": subject_d, "size": subject_size},
               "annotations": {"org.example": kind}}
        data = json.dumps(doc).encode()
        status, headers, body = reg.request("PUT", f"/v2/art/manifests/{sha(data)}", data, {"Content-Type": OCI_MANIFEST})
        assert status == 201 and headers["oci-subject"] == subject_d, body
        referrers.append({"mediaType": OCI_MANIFEST, "digest": sha(data), "size": len(data), "artifactType": kind,
                          "annotations": {"org.example": kind}})
    status, headers, body = reg.request("GET", f"/v2/art/referrers/{subject_d}")
    assert status == 200 and headers["content-type"] == OCI_INDEX
    index = json.loads(body)
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    assert sorted(index["manifests"], key=lambda m: m["digest"]) == sorted(referrers, key=lambda m: m["digest"])
    status, headers, body = reg.request("GET", f"/v2/art/referrers/{subject_d}?artifactType=application/vnd.example.sig")
    assert headers["oci-filters-applied"] == "artifactType"
    assert json.loads(body)["manifests"] == [referrers[1]]
    # a subject not (yet) pushed may be referred to; an unknown one lists nothing
    assert json.loads(reg.request("GET", f"/v2/art/referrers/{sha(b'none')}")[2])["manifests"] == []
    reg.request("DELETE", f"/v2/art/manifests/{referrers[0]['digest']}")
    assert json.loads(reg.request("GET", f"/v2/art/referrers/{subject_d}")[2])["manifests"] == [referrers[1]]


# -- auth, TLS, read-only ----------------------------------------------------------


def _htpasswd(base: str, user: str, password: str) -> str:
    require("htpasswd")
    path = os.path.join(base, "htpasswd")
    out = subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True).stdout
    with open(path, "wb") as f:
        f.write(out)
    return path


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_read_only_refuses_writes(base: str) -> None:
    reg = start(base)
    d, _ = reg.push_image("ro", "v1", b"layer")
    reg.stop()
    ro = start(base, {"read_only": True, "root": reg.root})
    try:
        assert ro.request("GET", "/v2/ro/manifests/v1")[0] == 200
        for method, path in (("POST", "/v2/ro/blobs/uploads/"), ("DELETE", f"/v2/ro/manifests/{d}"),
                             ("PUT", "/v2/ro/manifests/v2")):
            status, _, body = ro.request(method, path, b"{}")
            assert status == 405 and ro.error(body) == "UNSUPPORTED", (method, path)
    finally:
        ro.stop()


def test_htpasswd_basic_auth_over_tls_with_skopeo(base: str, oci_layout: str) -> None:
    tls = make_tls(os.path.join(base))
    reg = start(base, {"tls": {"cert": tls.cert, "key": tls.key},
                       "auth": {"htpasswd": {"path": _htpasswd(base, "dora", "expl0re"), "realm": "test"}}},
                ca=tls.ca)
    try:
        status, headers, body = reg.request("GET", "/v2/")
        assert status == 401 and headers["www-authenticate"] == 'Basic realm="test"'
        assert reg.error(body) == "UNAUTHORIZED"
        assert reg.request("GET", "/v2/", headers={"Authorization": _basic("dora", "wrong")})[0] == 401
        reg.auth = _basic("dora", "expl0re")
        assert reg.request("GET", "/v2/")[0] == 200
        certs = os.path.join(base, "skopeo-certs")
        os.makedirs(certs)
        shutil.copy(tls.ca, os.path.join(certs, "ca.crt"))
        _skopeo("copy", "--dest-creds", "dora:expl0re", "--dest-cert-dir", certs,
                f"oci:{oci_layout}:latest", f"docker://{reg.host}/sec/bb:1")
        out = os.path.join(base, "back")
        _skopeo("copy", "--src-creds", "dora:expl0re", "--src-cert-dir", certs,
                f"docker://{reg.host}/sec/bb:1", f"oci:{out}:latest")
        assert _layout_manifest(out) == _layout_manifest(oci_layout)
        denied = subprocess.run(["skopeo", "inspect", "--cert-dir", certs, f"docker://{reg.host}/sec/bb:1"],
                                capture_output=True)
        assert denied.returncode != 0 and b"unauthorized" in denied.stderr
    finally:
        reg.stop()


def test_bearer_tokens_issued_and_scopes_enforced(base: str, oci_layout: str) -> None:
    reg = start(base, {"auth": {"token": {"secret": "k" * 32, "htpasswd": _htpasswd(base, "tok", "en"),
                                          "service": "test-registry", "anonymous_pull": True}}})
    try:
        status, headers, body = reg.request("POST", "/v2/t/bb/blobs/uploads/")
        assert status == 401 and reg.error(body) == "UNAUTHORIZED"
        assert headers["www-authenticate"] == (f'Bearer realm="http://{reg.host}/token",service="test-registry",'
                                               'scope="repository:t/bb:pull,push"')
        status, _, body = reg.request("GET", "/token?service=test-registry&scope=repository:t/bb:pull,push",
                                      headers={"Authorization": _basic("tok", "wrong")})
        assert status == 401
        # anonymous: pull only
        anon = json.loads(reg.request("GET", "/token?service=test-registry&scope=repository:t/bb:pull,push")[2])
        status, headers, _ = reg.request("POST", "/v2/t/bb/blobs/uploads/",
                                         headers={"Authorization": f"Bearer {anon['token']}"})
        assert status == 401 and 'error="insufficient_scope"' in headers["www-authenticate"]
        status, _, body = reg.request("GET", "/token?service=test-registry&scope=repository:t/bb:pull,push",
                                      headers={"Authorization": _basic("tok", "en")})
        token = json.loads(body)
        assert token["expires_in"] == 300 and token["token"] == token["access_token"]
        reg.auth = f"Bearer {token['token']}"
        assert reg.request("POST", "/v2/t/bb/blobs/uploads/")[0] == 202
        # the token is for t/bb only
        assert reg.request("POST", "/v2/t/other/blobs/uploads/")[0] == 401
        forged = token["token"][:-4] + ("AAAA" if not token["token"].endswith("AAAA") else "BBBB")
        assert reg.request("GET", "/v2/", headers={"Authorization": f"Bearer {forged}"})[0] == 401
        _skopeo("copy", "--dest-creds", "tok:en", "--dest-tls-verify=false",
                f"oci:{oci_layout}:latest", f"docker://{reg.host}/t/bb:1")
        _skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/t/bb:1")  # anonymous pull
    finally:
        reg.stop()


# -- real clients, gc ------------------------------------------------------------------


def _skopeo(*args: str) -> str:
    require("skopeo")
    proc = subprocess.run(["skopeo", *args], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode()


def _layout_manifest(layout: str) -> bytes:
    with open(os.path.join(layout, "index.json")) as f:
        d = json.load(f)["manifests"][0]["digest"]
    with open(os.path.join(layout, "blobs", "sha256", d.split(":")[1]), "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def oci_layout(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An OCI layout with a busybox image (one gzip layer) tagged latest."""
    import gzip
    import io

    from portside import busybox

    if not os.path.exists(busybox.DEFAULT_BUSYBOX):
        pytest.skip("busybox-static is not installed (/bin/busybox)")
    out = str(tmp_path_factory.mktemp("layout"))
    os.makedirs(os.path.join(out, "blobs", "sha256"))

    def put(data: bytes) -> str:
        with open(os.path.join(out, "blobs", "sha256", sha(data).split(":")[1]), "wb") as f:
            f.write(data)
        return sha(data)

    buf = io.BytesIO()
    busybox.write_rootfs(buf, mtime=1_700_000_000)
    layer = gzip.compress(buf.getvalue(), 1, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(buf.getvalue())]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(layer),
                    "size": len(layer)}]}).encode()
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": put(manifest),
                                                      "size": len(manifest),
                                                      "annotations": {"org.opencontainers.image.ref.name": "latest"}}]},
                  f)
    return out


def test_skopeo_copies_in_out_and_between_repositories(reg: Reg, oci_layout: str) -> None:
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{oci_layout}:latest", f"docker://{reg.host}/lib/bb:latest")
    _skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
            f"docker://{reg.host}/lib/bb:latest", f"docker://{reg.host}/other/bb:v1")
    out = os.path.join(reg.base, "out")
    _skopeo("copy", "--src-tls-verify=false", f"docker://{reg.host}/other/bb:v1", f"oci:{out}:latest")
    assert _layout_manifest(out) == _layout_manifest(oci_layout)
    manifest = json.loads(_layout_manifest(oci_layout))
    # every blob once, whatever the number of repositories
    assert reg.blob_files() == {sha(_layout_manifest(oci_layout)), manifest["config"]["digest"],
                                manifest["layers"][0]["digest"]}
    with open(reg.log_path) as f:
        assert "Traceback" not in f.read()


def test_gc_reclaims_unreferenced_and_keeps_tagged(reg: Reg, oci_layout: str) -> None:
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{oci_layout}:latest", f"docker://{reg.host}/lib/bb:latest")
    orphan = reg.push_blob("lib/bb", os.urandom(5000))
    untagged, _ = reg.push_image("lib/bb", "tmp", b"untagged layer")
    untagged_layer = sha(b"untagged layer")
    reg.request("DELETE", "/v2/lib/bb/manifests/tmp")

    def gc(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "portside", "registry", "gc", "--root", reg.root, *args],
                              capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.decode()

    out = gc("--dry-run")
    assert f"would delete blob {orphan}" in out and untagged_layer not in out
    assert orphan in reg.blob_files()
    out = gc()
    assert f"deleted blob {orphan}" in out and orphan not in reg.blob_files()
    assert untagged_layer in reg.blob_files()  # untagged manifests are kept by default
    out = gc("--delete-untagged")
    assert f"deleted manifest lib/bb@{untagged}" in out and untagged_layer not in reg.blob_files()
    assert reg.request("HEAD", f"/v2/lib/bb/blobs/{orphan}")[0] == 404
    back = os.path.join(reg.base, "after-gc")
    _skopeo("copy", "--src-tls-verify=false", f"docker://{reg.host}/lib/bb:latest", f"oci:{back}:latest")
    assert _layout_manifest(back) == _layout_manifest(oci_layout)


# -- portside's daemon and the docker CLI through it ------------------------------------


@pytest.mark.root
def test_portside_and_docker_push_and_pull_through_the_daemon(daemon_dirs: tuple[str, str, str], busybox_tar: str,
                                                               base: str) -> None:
    from helpers import remove_containers, start_daemon, stop_daemon, stop_monitor

    if os.geteuid() != 0:
        pytest.skip("the daemon needs root")
    reg = start(base)
    daemon = start_daemon(*daemon_dirs, ("--registry-certs-dir", os.path.join(base, "certs.d")))
    try:
        name = f"{reg.host}/ps/bb"
        image_id = daemon.cli("import", "--change", 'CMD ["sh"]', busybox_tar, f"{name}:1").stdout.decode().strip()
        out = daemon.cli("push", f"{name}:1").stdout.decode()
        assert "1: digest: sha256:" in out, out
        daemon.cli("rmi", f"{name}:1")
        daemon.cli("pull", f"{name}:1")
        assert daemon.api.json("GET", f"/images/{name}:1/json")["Id"] == image_id
        assert daemon.cli("run", "--rm", "--network", "none", f"{name}:1", "echo", "hi").stdout == b"hi\n"
        docker = shutil.which("docker")
        if docker is not None:
            env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": os.path.join(base, "docker-config")}
            run = lambda *a: subprocess.run([docker, *a], env=env, capture_output=True, timeout=120)  # noqa: E731
            p = run("tag", f"{name}:1", f"{reg.host}/docker/bb:2")
            assert p.returncode == 0, p.stderr
            p = run("push", f"{reg.host}/docker/bb:2")
            assert p.returncode == 0 and b"Mounted from ps/bb" in p.stdout, p
            assert run("rmi", f"{name}:1", f"{reg.host}/docker/bb:2").returncode == 0
            p = run("pull", f"{reg.host}/docker/bb:2")
            assert p.returncode == 0, p.stderr
            assert daemon.api.json("GET", f"/images/{reg.host}/docker/bb:2/json")["Id"] == image_id
    finally:
        remove_containers(daemon)
        stop_daemon(daemon)
        stop_monitor(daemon)
        reg.stop()


@pytest.mark.root
@pytest.mark.parametrize("mode", ["htpasswd+tls", "token"])
def test_daemon_and_docker_login_push_pull_with_auth(daemon_dirs: tuple[str, str, str], busybox_tar: str,
                                                      base: str, mode: str) -> None:
    from helpers import remove_containers, start_daemon, stop_daemon, stop_monitor

    if os.geteuid() != 0:
        pytest.skip("the daemon needs root")
    certs = os.path.join(base, "certs.d")
    htpasswd = _htpasswd(base, "erin", "s3cr3t")
    if mode == "token":
        reg = start(base, {"auth": {"token": {"secret": "t" * 32, "htpasswd": htpasswd}}})
    else:
        tls = make_tls(base)
        reg = start(base, {"tls": {"cert": tls.cert, "key": tls.key}, "auth": {"htpasswd": {"path": htpasswd}}},
                    ca=tls.ca)
        os.makedirs(os.path.join(certs, reg.host))
        shutil.copy(tls.ca, os.path.join(certs, reg.host, "ca.crt"))
    daemon = start_daemon(*daemon_dirs, ("--registry-certs-dir", certs))
    config_dir = os.path.join(base, "docker-config")
    daemon.env = {"DOCKER_CONFIG": config_dir}
    try:
        name = f"{reg.host}/sec/bb"
        image_id = daemon.cli("import", busybox_tar, f"{name}:1").stdout.decode().strip()
        refused = daemon.cli("push", f"{name}:1", check=False)
        assert refused.returncode != 0, refused
        bad = daemon.cli("login", "-u", "erin", "--password-stdin", reg.host, input=b"nope\n", check=False)
        assert bad.returncode == 1, bad
        assert daemon.cli("login", "-u", "erin", "--password-stdin", reg.host, input=b"s3cr3t\n").stdout == \
            b"Login Succeeded\n"
        assert "1: digest: sha256:" in daemon.cli("push", f"{name}:1").stdout.decode()
        daemon.cli("rmi", f"{name}:1")
        docker = shutil.which("docker")
        if docker is None:
            daemon.cli("pull", f"{name}:1")
        else:
            # the docker CLI reads the login portside's CLI filed, and pulls through portside's daemon
            env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": config_dir}
            p = subprocess.run([docker, "pull", f"{name}:1"], env=env, capture_output=True, timeout=120)
            assert p.returncode == 0, p.stderr
        assert daemon.api.json("GET", f"/images/{name}:1/json")["Id"] == image_id
    finally:
        remove_containers(daemon)
        stop_daemon(daemon)
        stop_monitor(daemon)
        reg.stop()


def test_chunked_bodies_for_manifests_and_blobs(reg: Reg) -> None:
    """Go clients stream bodies with Transfer-Encoding: chunked; a body in several chunks is read whole."""
    layer = os.urandom(3 << 20)

    def chunked(method: str, path: str, data: bytes, content_type: str) -> tuple[int, bytes]:
        c = reg.conn()
        try:
            pieces = [data[i:i + 100_000] for i in range(0, len(data), 100_000)] or [b""]
            c.request(method, path, body=iter(pieces), headers={"Content-Type": content_type}, encode_chunked=True)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    status, body = chunked("POST", f"/v2/ch/blobs/uploads/?digest={sha(layer)}", layer, "application/octet-stream")
    assert status == 201, body
    cfg = reg.push_blob("ch", b"{}")
    doc = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer),
                                  "size": len(layer)}],
                      "annotations": {"pad": "x" * 250_000}}).encode()
    status, body = chunked("PUT", "/v2/ch/manifests/v1", doc, OCI_MANIFEST)
    assert status == 201, body
    assert reg.request("GET", "/v2/ch/manifests/v1")[2] == doc
