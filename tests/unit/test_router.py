"""Docker's URL space: version prefixes, patterns with slashes, dockerd's 404 and 400 answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from portside.daemon.http import Request, Response, Server
from portside.daemon.router import API_VERSION, MIN_API_VERSION, Router, compare_versions
from portside.errors import ArchiveError, Conflict, Internal, NotModified

pytestmark = pytest.mark.timeout(30)


def echo(name: str):  # type: ignore[no-untyped-def]
    def handler(request: Request) -> Response:
        return Response.json({"route": name, "params": request.params, "version": request.api_version})

    return handler


@pytest.fixture
def router() -> Router:
    r = Router()
    r.add("GET", "/_ping", echo("ping"))
    r.add("HEAD", "/_ping", echo("ping-head"))
    r.add("GET", "/version", echo("version"))
    r.add("GET", "/images/json", echo("list"))
    r.add("GET", "/images/search", echo("search"))
    r.add("GET", "/images/get", echo("get-many"))
    r.add("GET", "/images/{name}/get", echo("get"))
    r.add("GET", "/images/{name}/history", echo("history"))
    r.add("GET", "/images/{name}/json", echo("inspect"))
    r.add("POST", "/images/load", echo("load"))
    r.add("POST", "/images/create", echo("create"))
    r.add("POST", "/images/prune", echo("prune"))
    r.add("POST", "/images/{name}/push", echo("push"))
    r.add("POST", "/images/{name}/tag", echo("tag"))
    r.add("DELETE", "/images/{name}", echo("delete"))
    r.add("POST", "/containers/{id}/attach", echo("attach"))
    r.add("GET", "/containers/{id}/archive", echo("archive-get"))
    r.add("HEAD", "/containers/{id}/archive", echo("archive-head"))
    return r


def call(router: Router, method: str, target: str) -> tuple[int, object, Request]:
    request = Request.from_target(method, target)
    response = router(request)
    assert isinstance(response, Response)
    body = json.loads(response.body) if response.body.startswith((b"{", b"[")) else response.body
    return response.status, body, request


NAMES = [
    "busybox",
    "busybox:latest",
    "library/busybox:1.36",
    "localhost:5000/ns/app:tag",
    "registry.example.com:443/a/b/c/app",
    "app@sha256:" + "a" * 64,
    "localhost:5000/ns/app:tag@sha256:" + "b" * 64,
    "json",  # an image called "json": /images/json/json
    "ns/get",  # a name that ends like another route's suffix
    "sha256:" + "c" * 64,
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("method", "suffix", "route"),
    [
        ("GET", "/json", "inspect"),
        ("GET", "/history", "history"),
        ("GET", "/get", "get"),
        ("POST", "/push", "push"),
        ("POST", "/tag", "tag"),
        ("DELETE", "", "delete"),
    ],
)
@pytest.mark.parametrize("prefix", ["", "/v1.45", "/v1.24"])
def test_image_routes_take_names_with_slashes_and_colons(
    router: Router, name: str, method: str, suffix: str, route: str, prefix: str
) -> None:
    status, body, _ = call(router, method, f"{prefix}/images/{name}{suffix}?tag=x")
    assert status == 200
    assert body == {"route": route, "params": {"name": name}, "version": prefix[2:] or API_VERSION}


def test_a_name_containing_a_route_suffix_matches_greedily(router: Router) -> None:
    _, body, _ = call(router, "GET", "/images/ns/app/json/json")
    assert body == {"route": "inspect", "params": {"name": "ns/app/json"}, "version": API_VERSION}
    _, body, _ = call(router, "DELETE", "/images/ns/app/json")
    assert body == {"route": "delete", "params": {"name": "ns/app/json"}, "version": API_VERSION}


def test_literal_routes_win_over_patterns(router: Router) -> None:
    for path, route in [("/images/json", "list"), ("/images/search", "search"), ("/images/get", "get-many")]:
        _, body, _ = call(router, "GET", path)
        assert body == {"route": route, "params": {}, "version": API_VERSION}
    _, body, _ = call(router, "POST", "/images/create?fromImage=busybox")
    assert body["route"] == "create"  # type: ignore[index]


def test_percent_encoded_names_are_decoded(router: Router) -> None:
    _, body, _ = call(router, "GET", "/v1.45/images/localhost%3A5000%2Fns%2Fapp%3Atag/json")
    assert body == {"route": "inspect", "params": {"name": "localhost:5000/ns/app:tag"}, "version": "1.45"}


def test_container_routes(router: Router) -> None:
    _, body, request = call(router, "POST", "/v1.44/containers/3f4e/attach?stream=1&stdout=1")
    assert body == {"route": "attach", "params": {"id": "3f4e"}, "version": "1.44"}
    assert request.flag("stream") and request.params == {"id": "3f4e"}


@pytest.mark.parametrize("prefix", ["", "/v1.40", "/v1.45"])
def test_version_prefixes(router: Router, prefix: str) -> None:
    status, body, request = call(router, "GET", f"{prefix}/version")
    assert status == 200
    assert request.api_version == (prefix[2:] or API_VERSION)
    assert request.path == f"{prefix}/version"  # the request keeps its full path


@pytest.mark.parametrize("version", ["1.45.0", "1.45", "01.45", "1.30.99"])
def test_any_dotted_number_is_a_version(router: Router, version: str) -> None:
    status, body, _ = call(router, "GET", f"/v{version}/version")
    assert status == 200 and body["version"] == version  # type: ignore[index]


@pytest.mark.parametrize("version", ["1.46", "1.99", "2.0", "1.45.1"])
def test_too_new(router: Router, version: str) -> None:
    status, body, _ = call(router, "GET", f"/v{version}/images/json")
    assert status == 400
    assert body == {"message": f"client version {version} is too new. Maximum supported API version is 1.45"}


@pytest.mark.parametrize("version", ["1.12", "1.23", "1", "0.9", "."])
def test_too_old_is_plain_text_like_dockerd(router: Router, version: str) -> None:
    request = Request.from_target("GET", f"/v{version}/images/json")
    response = router(request)
    assert isinstance(response, Response)
    assert response.status == 400
    assert response.body == (
        f"client version {version} is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version\n"
    ).encode()
    assert ("Content-Type", "text/plain; charset=utf-8") in response.headers


def test_version_constants() -> None:
    assert (MIN_API_VERSION, API_VERSION) == ("1.24", "1.45")
    assert compare_versions("1.45", "1.45.0") == 0
    assert compare_versions("1.9", "1.10") == -1
    assert compare_versions("2", "1.99") == 1


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/nope"),
        ("GET", "/v1.45/nope"),
        ("GET", "/v1.99/nope"),  # unknown path: 404 even for an unsupported version
        ("GET", "/vfoo/images/json"),  # not a version segment
        ("GET", "/v1.45"),
        ("GET", "/v1.45/"),
        ("GET", "/images/"),  # empty name
        ("GET", "/images//json"),
        ("POST", "/images/json"),  # known path, wrong method: dockerd answers 404 too
        ("PUT", "/images/busybox"),
        ("DELETE", "/_ping"),
        ("GET", "/images/busybox/tag"),
    ],
)
def test_page_not_found(router: Router, method: str, target: str) -> None:
    status, body, _ = call(router, method, target)
    assert (status, body) == (404, {"message": "page not found"})


def test_head_is_answered_by_get_routes_unless_a_head_route_exists(router: Router) -> None:
    _, body, request = call(router, "HEAD", "/v1.45/images/localhost:5000/app:1/json")
    assert body == {"route": "inspect", "params": {"name": "localhost:5000/app:1"}, "version": "1.45"}
    assert request.method == "HEAD"
    assert call(router, "HEAD", "/_ping")[1]["route"] == "ping-head"  # type: ignore[index]
    assert call(router, "HEAD", "/containers/c1/archive?path=/")[1]["route"] == "archive-head"  # type: ignore[index]
    assert call(router, "GET", "/containers/c1/archive?path=/")[1]["route"] == "archive-get"  # type: ignore[index]
    assert call(router, "HEAD", "/images/load")[0] == 404  # POST routes do not answer HEAD


@pytest.mark.parametrize(
    ("exc", "status", "body"),
    [
        (Conflict("conflict: unable to delete"), 409, {"message": "conflict: unable to delete"}),
        (ArchiveError("bad tar entry ../x"), 400, {"message": "bad tar entry ../x"}),
        (Internal("disk on fire"), 500, {"message": "disk on fire"}),
        (NotModified("already started"), 304, b""),
    ],
)
def test_handler_errors_become_responses(exc: Exception, status: int, body: object) -> None:
    def fail(request: Request) -> Response:
        raise exc

    r = Router()
    r.add("POST", "/containers/{id}/start", fail)
    assert call(r, "POST", "/containers/c/start")[:2] == (status, body)


def test_duplicate_and_malformed_routes_are_refused() -> None:
    r = Router()
    r.add("get", "/x/{id}", echo("x"))
    with pytest.raises(ValueError):
        r.add("GET", "/x/{id}", echo("x"))
    with pytest.raises(ValueError):
        r.add("GET", "x", echo("x"))


def test_router_behind_the_server(tmp_path: Path, router: Router) -> None:
    server = Server(router, default_headers=[("Api-Version", API_VERSION)])
    path = str(tmp_path / "d.sock")
    server.listen_unix(path, group=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(
            b"GET /v1.43/images/localhost:5000/ns/app:tag/json HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /v1.99/images/json HTTP/1.1\r\nHost: x\r\n\r\n"
            b"PATCH /images/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        responses = data.split(b"HTTP/1.1 ")[1:]
        assert [r[:3] for r in responses] == [b"200", b"400", b"404"]
        assert responses[0].endswith(
            b'{"route":"inspect","params":{"name":"localhost:5000/ns/app:tag"},"version":"1.43"}\n'
        )
        assert all(b"Api-Version: 1.45" in r for r in responses)
    finally:
        server.shutdown()
        thread.join(5)


def test_docker_py_talks_to_the_router_behind_the_server(tmp_path: Path) -> None:
    docker = pytest.importorskip("docker")
    from portside.daemon.http import Hijack, StreamResponse
    from portside.errors import NotFound

    def inspect(request: Request) -> Response:
        raise NotFound(f"No such image: {request.params['name']}")

    def attach(request: Request) -> Hijack:
        def run(sock: socket.socket, already_read: bytes) -> None:
            # docker-py reads the 101 head through a buffered file and then the
            # raw socket, so bytes that arrive together with the head are lost to
            # it (the Go client keeps its bufio buffer). Let the head go first.
            time.sleep(0.2)
            sock.sendall(b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n")

        return Hijack(run)

    def wait(request: Request) -> StreamResponse:
        return StreamResponse(lambda write: write(b'{"StatusCode":3,"Error":null}\n'), headers=[("Content-Type", "application/json")])

    r = Router()
    r.add("GET", "/_ping", lambda req: Response(200, b"OK", [("Content-Type", "text/plain; charset=utf-8")]))
    r.add("GET", "/version", lambda req: Response.json({"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION}))
    r.add("GET", "/images/{name}/json", inspect)
    r.add("GET", "/containers/{id}/json", lambda req: Response.json({"Id": req.params["id"], "Config": {"Tty": False}}))
    r.add("POST", "/containers/{id}/attach", attach)
    r.add("POST", "/containers/{id}/wait", wait)
    server = Server(r, default_headers=[("Api-Version", API_VERSION), ("Ostype", "linux")])
    path = str(tmp_path / "d.sock")
    server.listen_unix(path, group=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = docker.APIClient(base_url=f"unix://{path}", version="auto", timeout=10)
    try:
        assert client.api_version == API_VERSION  # negotiated through GET /version
        assert client.ping() is True
        with pytest.raises(docker.errors.ImageNotFound, match="No such image: localhost:5000/ns/app:tag"):
            client.inspect_image("localhost:5000/ns/app:tag")
        assert client.wait("c1") == {"StatusCode": 3, "Error": None}
        # 101 UPGRADED, then the multiplexed stream until the server closes
        assert client.attach("c1", stdout=True, stderr=True, logs=True) == b"hi\n"
    finally:
        client.close()
        server.shutdown()
        thread.join(5)
