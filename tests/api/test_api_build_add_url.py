"""ADD <url> through POST /build: a real HTTP server on loopback (the daemon is in the host's network namespace)."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.api.test_api_build import build, context_tar, run, text
from tests.helpers import Daemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds run containers: needs root")

LAST_MODIFIED = 1_000_000_000                      # Sun, 09 Sep 2001 01:46:40 GMT
LATER_EPOCH = 2_000_000_000


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None      # a Content-Length that lies (the connection closes after the body)
    generated: int = 0             # instead of body: this many MiB of generated_chunk(i), written as they are made


class Server:
    """Routes path -> Reply, changeable between builds; counts the GETs of each path."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                reply = server.routes.get(self.path, Reply(404, b"404 page not found\n"))
                self.send_response(reply.status)
                if reply.generated:
                    self.send_header("Content-Length", str(reply.generated << 20))
                    self.end_headers()
                    for i in range(reply.generated):
                        self.wfile.write(generated_chunk(i))
                    return
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body) if reply.length is None else reply.length))
                if reply.length is not None:
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.close()


def generated_chunk(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (1 << 15)  # 1 MiB


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def scratch_left(daemon: Daemon) -> list[str]:
    """What the build's scratch directory still holds once the build's response is over (the context goes last)."""
    scratch = os.path.join(daemon.root, "build", "tmp")
    deadline = time.monotonic() + 5
    while True:
        left = sorted(os.listdir(scratch)) if os.path.isdir(scratch) else []
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def errors(lines: list[dict[str, Any]]) -> list[str]:
    return [line["error"] for line in lines if "error" in line]


def image_id(lines: list[dict[str, Any]]) -> str:
    return [line["aux"]["ID"] for line in lines if "aux" in line][0]


def served_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("inside.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"inside"))
    return buf.getvalue()


def test_names_mode_owner_and_no_extraction(daemon: Daemon, busybox_image: str, server: Server) -> None:
    server.routes.update({
        "/files/hello.txt": Reply(body=b"hello\n", headers={"Last-Modified": "Sun, 09 Sep 2001 01:46:40 GMT"}),
        "/files/archive.tar": Reply(body=served_tar()),
        "/get/": Reply(body=b"disposed\n", headers={"Content-Disposition": 'attachment; filename="report.csv"'}),
        "/nameless/": Reply(body=b"nameless\n"),
        "/old": Reply(302, headers={"Location": "/files/hello.txt"}),
        "/older": Reply(301, headers={"Location": "/old"}),
    })
    b = server.base
    dockerfile = (f"FROM busybox\n"
                  f"ADD {b}/files/hello.txt /dl/\n"                      # named from the URL
                  f"ADD {b}/files/hello.txt /renamed.txt\n"              # the destination names it
                  f"ADD {b}/files/archive.tar /tars/\n"                  # a tar, not extracted
                  f"ADD --chown=1:2 --chmod=640 {b}/files/hello.txt /owned\n"
                  f"ADD {b}/get/ /disposed/\n"                           # Content-Disposition's name
                  f"ADD {b}/nameless/ /nameless.txt\n"                   # no name: the destination's
                  f"ADD {b}/nameless/ /etc\n"                            # no name, into a directory: moby's
                  f"ADD {b}/older /redirected/\n"                        # two redirects; named as asked
                  f"ADD {b}/files/hello.txt local.txt /mix/\n")          # a URL and a context file
    status, lines = build(daemon, {"Dockerfile": dockerfile, "local.txt": "local\n"}, t="addurl:names")
    assert status == 200 and not errors(lines), lines
    out = run(daemon, "addurl:names", "sh", "-c",
              "stat -c '%n %a %u:%g %s %Y' /dl/hello.txt /renamed.txt /tars/archive.tar /owned "
              "/disposed/report.csv /nameless.txt /etc/__unnamed__ /redirected/older /mix/hello.txt /mix/local.txt; "
              "ls /tars; ls /mix; cat /dl/hello.txt /redirected/older /disposed/report.csv /nameless.txt")
    assert out.splitlines() == [
        # mode 0600 (--chmod wins), owner 0:0 (--chown wins); mtime: Last-Modified clamped to the epoch (0)
        "/dl/hello.txt 600 0:0 6 0",
        "/renamed.txt 600 0:0 6 0",
        f"/tars/archive.tar 600 0:0 {len(served_tar())} 0",
        "/owned 640 1:2 6 0",
        "/disposed/report.csv 600 0:0 9 0",
        "/nameless.txt 600 0:0 9 0",
        "/etc/__unnamed__ 600 0:0 9 0",
        "/redirected/older 600 0:0 6 0",
        "/mix/hello.txt 600 0:0 6 0",
        "/mix/local.txt 644 0:0 6 0",
        "archive.tar",
        "hello.txt", "local.txt",
        "hello", "hello", "disposed", "nameless",
    ]
    assert server.hits["/older"] == server.hits["/old"] == 1
    assert scratch_left(daemon) == []


def test_last_modified_is_clamped_to_the_epoch(daemon: Daemon, busybox_image: str, server: Server) -> None:
    server.routes.update({
        "/dated": Reply(body=b"dated\n", headers={"Last-Modified": "Sun, 09 Sep 2001 01:46:40 GMT"}),
        "/undated": Reply(body=b"undated\n"),
    })
    dockerfile = f"FROM busybox\nADD {server.base}/dated {server.base}/undated /t/\n"
    _, lines = build(daemon, {"Dockerfile": dockerfile}, t="addurl:dated",
                     buildargs={"SOURCE_DATE_EPOCH": str(LATER_EPOCH)})
    assert not errors(lines), lines
    out = run(daemon, "addurl:dated", "stat", "-c", "%n %Y", "/t/dated", "/t/undated")
    # Last-Modified when it is before the epoch; the epoch when the server gives no date
    assert out.splitlines() == [f"/t/dated {LAST_MODIFIED}", f"/t/undated {LATER_EPOCH}"]


def test_checksum(daemon: Daemon, busybox_image: str, server: Server) -> None:
    body = b"pinned content\n"
    server.routes["/pinned.bin"] = Reply(body=body)
    right = "sha256:" + hashlib.sha256(body).hexdigest()
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    url = f"{server.base}/pinned.bin"

    _, lines = build(daemon, {"Dockerfile": f"FROM busybox\nADD --checksum={right} {url} /p/\n"}, t="addurl:sum")
    assert not errors(lines), lines
    assert run(daemon, "addurl:sum", "cat", "/p/pinned.bin") == body.decode()
    sha512 = "sha512:" + hashlib.sha512(body).hexdigest()
    _, lines = build(daemon, {"Dockerfile": f"FROM busybox\nARG SUM={sha512}\nADD --checksum=$SUM {url} /p/\n"})
    assert not errors(lines), lines

    _, lines = build(daemon, {"Dockerfile": f"FROM busybox\nADD --checksum={wrong} {url} /p/\n"}, t="addurl:bad")
    assert errors(lines) == [f"ADD failed: digest mismatch for {url}: expected {wrong}, got {right}"]
    assert "addurl:bad" not in daemon.cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode()

    for dockerfile, message in (
            (f"ADD --checksum={right} {url} {url} /p/", "checksum can't be specified for multiple sources"),
            (f"ADD --checksum={right} local.txt /p/", "checksum can't be specified for non-HTTP(S) sources"),
            (f"ADD --checksum=md5:0123 {url} /p/", "unsupported digest algorithm: md5:0123")):
        _, lines = build(daemon, {"Dockerfile": f"FROM busybox\n{dockerfile}\n", "local.txt": "x"})
        assert errors(lines) == [message]
    assert scratch_left(daemon) == []


def test_http_errors_are_build_errors(daemon: Daemon, busybox_image: str, server: Server) -> None:
    server.routes.update({
        "/loop": Reply(302, headers={"Location": "/loop"}),
        "/to-file": Reply(302, headers={"Location": "file:///etc/passwd"}),
        "/nameless/": Reply(body=b"x"),
        "/short": Reply(body=b"only this", length=1000),
    })
    b = server.base
    for source, dest, message in (
            (f"{b}/missing.txt", "/m", f"ADD failed: failed to GET {b}/missing.txt with status 404 Not Found: "
                                       "404 page not found"),
            (f"{b}/loop", "/m", f'ADD failed: Get "{b}/loop": stopped after 10 redirects'),
            (f"{b}/to-file", "/m", 'ADD failed: Get "file:///etc/passwd": unsupported protocol scheme "file"'),
            (f"{b}/nameless/", "/d/", f"ADD failed: cannot determine filename for source {b}/nameless/"),
            (f"{b}/short", "/m", f"ADD failed: failed to download {b}/short: unexpected EOF"),
            ("http://127.0.0.1:1/x", "/m", 'ADD failed: Get "http://127.0.0.1:1/x": connection refused')):
        status, lines = build(daemon, {"Dockerfile": f"FROM busybox\nADD {source} {dest}\n"}, t="addurl:err")
        assert status == 200 and errors(lines) == [message], lines
        assert "Successfully built" not in text(lines)
    _, lines = build(daemon, {"Dockerfile": f"FROM busybox\nCOPY {b}/nameless/ /m\n"})
    assert errors(lines) == ["COPY failed: source can't be a URL for COPY"]
    assert server.hits["/nameless/"] == 1  # COPY did not fetch it
    assert scratch_left(daemon) == []


def test_cache_compares_the_downloaded_content(daemon: Daemon, busybox_image: str, server: Server) -> None:
    server.routes["/data.txt"] = Reply(body=b"version 1\n")
    dockerfile = f"FROM busybox\nADD {server.base}/data.txt /data.txt\nRUN cat /data.txt > /copy\n"
    files = {"Dockerfile": dockerfile}

    _, first = build(daemon, files)
    assert " ---> Using cache" not in text(first) and not errors(first), first
    _, second = build(daemon, files)
    assert text(second).count(" ---> Using cache") == 2           # same content: ADD and RUN hit
    assert image_id(second) == image_id(first)
    assert server.hits["/data.txt"] == 2                           # yet it was downloaded again, to compare

    server.routes["/data.txt"] = Reply(body=b"version 2\n")
    _, third = build(daemon, files)
    assert " ---> Using cache" not in text(third) and not errors(third), third
    assert run(daemon, image_id(third), "cat", "/copy") == "version 2\n"
    assert run(daemon, image_id(first), "cat", "/copy") == "version 1\n"
    assert scratch_left(daemon) == []


def test_a_big_download_streams_to_disk(daemon: Daemon, busybox_image: str, server: Server) -> None:
    mib = 160
    server.routes["/big.bin"] = Reply(generated=mib)
    digest = hashlib.sha256()
    for i in range(mib):
        digest.update(generated_chunk(i))
    before = peak_rss_kib(daemon.proc.pid)
    dockerfile = f"FROM busybox\nADD --checksum=sha256:{digest.hexdigest()} {server.base}/big.bin /big.bin\n"
    _, lines = build(daemon, {"Dockerfile": dockerfile}, t="addurl:big")
    assert not errors(lines), lines
    grown_mib = (peak_rss_kib(daemon.proc.pid) - before) >> 10
    assert grown_mib < mib // 2, f"the daemon's peak RSS grew by {grown_mib} MiB for a {mib} MiB download"
    assert run(daemon, "addurl:big", "stat", "-c", "%s", "/big.bin") == f"{mib << 20}\n"
    assert scratch_left(daemon) == []
