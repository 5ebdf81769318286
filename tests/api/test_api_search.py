"""``docker search`` end to end: ``portside registry serve``'s ``/v1/search``, the daemon's
``GET /images/search`` against it, the portside CLI and the real docker CLI.

Two repositories are pushed by the daemon to a registry on 127.0.0.1; a term
naming that registry is searched there. A term without a registry goes to the
daemon's docker.io mirror, which the test daemons point at a dead port.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from registries import free_port


class Serve:
    def __init__(self, base: str) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = os.path.join(base, "registry.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "portside", "registry", "serve", "--addr", self.host,
                                          "--root", os.path.join(base, "reg")], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, open(self.log).read()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("registry did not listen")

    def get(self, path: str) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, json.loads(r.read())
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)



@pytest.fixture
def base() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="portside-search-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _push_blob_and_manifest(reg: Serve, repo: str) -> None:
    import hashlib

    def put(method: str, path: str, body: bytes, ctype: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": ctype})
            return conn.getresponse().status
        finally:
            conn.close()

    config = b"{}"
    d = "sha256:" + hashlib.sha256(config).hexdigest()
    assert put("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", config, "application/octet-stream") == 201
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d,
                                      "size": len(config)}, "layers": []}).encode()
    assert put("PUT", f"/v2/{repo}/manifests/v1", manifest, "application/vnd.oci.image.manifest.v1+json") == 201


def test_registry_v1_search_pages_the_catalog_by_substring(base: str) -> None:
    reg = Serve(base)
    try:
        for repo in ("lib/busy", "team/busybox", "other/alpine"):
            _push_blob_and_manifest(reg, repo)
        status, doc = reg.get("/v1/search?q=busy")
        assert status == 200
        assert doc == {"num_results": 2, "query": "busy", "page": 1, "page_size": 25, "num_pages": 1, "results": [
            {"name": "lib/busy", "description": "", "star_count": 0, "is_official": False, "is_automated": False},
            {"name": "team/busybox", "description": "", "star_count": 0, "is_official": False,
             "is_automated": False}]}
        status, doc = reg.get("/v1/search?q=busy&n=1&page=2")
        assert (doc["num_pages"], doc["page"], [r["name"] for r in doc["results"]]) == (2, 2, ["team/busybox"])
        assert reg.get("/v1/search?q=")[1]["num_results"] == 3
        assert reg.get("/v1/search?q=nothing")[1]["results"] == []
        status, doc = reg.get("/v1/search?q=a&n=x")
        assert status == 400 and doc["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"
    finally:
        reg.stop()


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(404 if self.path.startswith("/v1/") else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.root
def test_search_through_the_daemon_portside_cli_and_docker_cli(daemon_dirs: tuple[str, str, str], busybox_tar: str,
                                                              base: str) -> None:
    from helpers import start_daemon, stop_daemon, stop_monitor

    if os.geteuid() != 0:
        pytest.skip("the daemon needs root")
    reg = Serve(base)
    daemon = start_daemon(*daemon_dirs, ("--registry-certs-dir", os.path.join(base, "certs.d")))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        daemon.cli("import", busybox_tar, f"{reg.host}/lib/busy:1")
        daemon.cli("tag", f"{reg.host}/lib/busy:1", f"{reg.host}/team/busybox:1")
        daemon.cli("tag", f"{reg.host}/lib/busy:1", f"{reg.host}/other/alpine:1")
        for repo in ("lib/busy", "team/busybox", "other/alpine"):
            daemon.cli("push", f"{reg.host}/{repo}:1")

        def search(query: dict[str, str]) -> tuple[int, object]:
            status, _, body = daemon.api.request("GET", "/images/search?" + urllib.parse.urlencode(query))
            return status, json.loads(body)

        status, found = search({"term": f"{reg.host}/busy"})
        assert status == 200
        assert found == [
            {"name": "lib/busy", "description": "", "star_count": 0, "is_official": False, "is_automated": False},
            {"name": "team/busybox", "description": "", "star_count": 0, "is_official": False,
             "is_automated": False}]
        assert [r["name"] for r in search({"term": f"{reg.host}/busy", "limit": "1"})[1]] == ["lib/busy"]
        assert search({"term": f"{reg.host}/busy", "filters": '{"is-official":{"true":true}}'}) == (200, [])
        assert len(search({"term": f"{reg.host}/busy", "filters": '{"is-official":["false"]}'})[1]) == 2
        assert search({"term": f"{reg.host}/busy", "filters": '{"stars":["1"]}'}) == (200, [])
        assert search({"term": f"{reg.host}/busy", "filters": '{"is-automated":["true"]}'}) == (200, [])
        assert search({"term": f"{reg.host}/busy", "limit": "0"}) == (
            400, {"message": "limit 0 is outside the range of [1, 100]"})
        assert search({"term": f"{reg.host}/busy", "limit": "101"})[0] == 400
        assert search({"term": "x", "filters": '{"label":["a"]}'}) == (400, {"message": "invalid filter 'label'"})
        assert search({"term": "x", "filters": '{"stars":["many"]}'}) == (
            400, {"message": "invalid filter 'stars=many'"})
        assert search({"term": "x", "filters": '{"is-official":["maybe"]}'}) == (
            400, {"message": "invalid filter 'is-official=maybe'"})
        # a registry without the v1 search API: dockerd's words, a 500
        assert search({"term": f"127.0.0.1:{server.server_address[1]}/x"}) == (
            500, {"message": "Unexpected status code 404"})
        # no registry part: docker.io's index, here the dead mirror — an error, nothing reached outside
        status, doc = search({"term": "busybox"})
        assert status >= 500 and "127.0.0.1:1" in doc["message"], doc

        # the portside CLI
        out = daemon.cli("search", f"{reg.host}/busy").stdout.decode()
        assert out == ("NAME           DESCRIPTION   STARS     OFFICIAL\n"
                       "lib/busy                     0         \n"
                       "team/busybox                 0         \n"), out
        out = daemon.cli("search", "--limit", "1", "--format", "{{.Name}}:{{.StarCount}}:{{.IsOfficial}}",
                         f"{reg.host}/busy").stdout.decode()
        assert out == "lib/busy:0:\n"
        assert daemon.cli("search", "-f", "is-official=true", "--no-trunc", f"{reg.host}/busy").stdout == \
            b"NAME      DESCRIPTION   STARS     OFFICIAL\n"
        bad = daemon.cli("search", "--limit", "200", f"{reg.host}/busy", check=False)
        assert bad.returncode == 1 and b"limit 200 is outside the range of [1, 100]" in bad.stderr

        docker = shutil.which("docker")
        if docker is not None:
            env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": os.path.join(base, "docker-config")}
            p = subprocess.run([docker, "search", f"{reg.host}/busy"], env=env, capture_output=True, timeout=60)
            assert p.returncode == 0, p.stderr
            assert p.stdout.decode() == out_table(["lib/busy", "team/busybox"]), p.stdout
            p = subprocess.run([docker, "search", "--format", "{{.Name}}", f"{reg.host}/alp"], env=env,
                               capture_output=True, timeout=60)
            assert p.stdout == b"other/alpine\n", p
    finally:
        server.shutdown()
        server.server_close()
        stop_daemon(daemon)
        stop_monitor(daemon)
        reg.stop()


def out_table(names: list[str]) -> str:
    width = max(10, max(len(n) for n in names) + 3)
    return "".join([f"{'NAME'.ljust(width)}DESCRIPTION   STARS     OFFICIAL\n",
                    *(f"{n.ljust(width)}              0         \n" for n in names)])


def test_format_search_truncates_descriptions_and_marks_official() -> None:
    from portside.cli.commands.search import format_search, index_domain

    results = [{"name": "busybox", "description": "Busybox base image.\nWith a long second line of text",
                "star_count": 3400, "is_official": True, "is_automated": False}]
    assert format_search(results) == (
        "NAME      DESCRIPTION                                     STARS     OFFICIAL\n"
        "busybox   Busybox base image. With a long second line …   3400      [OK]\n")
    assert "second line of text" in format_search(results, trunc=False)
    assert format_search(results, fmt="{{.IsAutomated}}|{{.IsOfficial}}") == "|[OK]\n"
    assert (index_domain("busybox"), index_domain("localhost:5000/b"), index_domain("a.io/b/c")) == \
        ("docker.io", "localhost:5000", "a.io")
