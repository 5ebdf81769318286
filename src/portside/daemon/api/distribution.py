"""Registries: ``POST /images/create?fromImage=`` (pull), ``POST /auth``, ``GET /distribution/{name}/json``.

As in dockerd, what fails before the first progress message (a bad name, an
unknown repository, refused credentials) is an error status; what fails after
is an ``errorDetail`` message at the end of the 200 stream.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from portside.daemon.api import search as search_api
from portside.daemon.engine import Engine
from portside.daemon.http import Request, Response, StreamResponse
from portside.daemon.router import Router
from portside.distribution import progress
from portside.distribution.auth import Credentials, credentials_from_json, decode_registry_auth, repository_scope, \
    server_domain
from portside.distribution.errcodes import parse_errors, pull_error
from portside.distribution.hosts import DOCKER_HUB, DOCKER_HUB_AUTH_KEY
from portside.distribution.platforms import parse_platform
from portside.distribution.pull import ACCEPT, Pull, resolve
from portside.distribution.push import push as push_image
from portside.distribution.transport import RegistryClient
from portside.errors import InvalidArgument, NotFound, PortsideError
from portside.oci import digest as digestlib
from portside.oci.image import load_json
from portside.oci.reference import Reference, parse_normalized


def register(router: Router, engine: Engine) -> None:
    router.add("POST", "/auth", lambda req: auth(engine, req))
    router.add("GET", "/distribution/{name}/json", lambda req: distribution_inspect(engine, req))
    router.add("POST", "/images/{name}/push", lambda req: push(engine, req))
    search_api.register(router, engine)


def pull_reference(from_image: str, tag: str | None) -> Reference:
    """``fromImage`` and ``tag`` as dockerd joins them: a tag that is a digest pins the manifest."""
    ref = parse_normalized(from_image)
    if tag:
        ref = ref.with_digest(tag) if ":" in tag and digestlib.is_digest(tag) else ref.with_tag(tag)
    if ref.tag is None and ref.digest is None:
        ref = ref.with_tag("latest")  # docker pull -a (every tag) is not served: the default tag instead
    return ref


def credentials(req: Request) -> Credentials:
    return decode_registry_auth(req.headers.get("x-registry-auth"))


def pull(engine: Engine, req: Request) -> StreamResponse:
    ref = pull_reference(req.arg("fromImage") or "", req.arg("tag"))
    platform_arg = req.arg("platform")
    platform = parse_platform(platform_arg) if platform_arg else None
    resolved = resolve(engine.registry, ref, credentials(req), platform=platform)

    def write_body(write: Callable[[bytes], None]) -> None:
        def emit(msg: progress.Message) -> None:
            write(json.dumps(msg).encode() + b"\r\n")

        try:
            image_id = Pull(engine.images, resolved, emit).run()
            # dockerd names the reference, not the image, as the pull event's actor
            engine.images.event(image_id, "pull", ref.familiar())
        except PortsideError as e:
            emit(progress.error(e.message))

    return StreamResponse(write_body, headers=[("Content-Type", "application/json")],
                          on_close=resolved.client.close)


def push(engine: Engine, req: Request) -> StreamResponse:
    """``docker push``: one tag, or every tag of the repository when ``tag`` is empty."""
    ref = parse_normalized(req.params["name"])
    tag = req.arg("tag") or ref.tag
    if ref.digest is not None:
        raise InvalidArgument("cannot push a digest reference")
    if tag:
        refs = [ref.with_tag(tag)]
    else:
        refs = sorted({r for image in engine.images.images() for r in image.tags if r.name == ref.name}, key=str)
        if not refs:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}")
    if engine.images.db.lookup_name(str(refs[0])) is None:  # a 404 before the stream, as dockerd
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}")
    creds = credentials(req)

    def write_body(write: Callable[[bytes], None]) -> None:
        def emit(msg: progress.Message) -> None:
            write(json.dumps(msg).encode() + b"\r\n")

        try:
            for r in refs:
                push_image(engine.images, engine.registry, r, creds, emit)
                engine.images.event(engine.images.resolve(str(r)), "push", r.familiar())
        except PortsideError as e:
            emit(progress.error(e.message))

    return StreamResponse(write_body, headers=[("Content-Type", "application/json")])


def auth(engine: Engine, req: Request) -> Response:
    doc = load_json(req.body.readall(), "auth configuration")
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid auth configuration: not a JSON object")
    creds = credentials_from_json(doc)
    server = str(doc.get("serveraddress") or DOCKER_HUB_AUTH_KEY)
    client = RegistryClient(engine.registry, server_domain(server), creds, mirrors=False)  # the registry, not a mirror
    try:
        client.check_login()
    finally:
        client.close()
    return Response.json({"Status": "Login Succeeded", "IdentityToken": ""})


def distribution_inspect(engine: Engine, req: Request) -> Response:
    """The descriptor of a remote image and the platforms it has, without pulling it."""
    ref = pull_reference(req.params["name"], None)
    client = RegistryClient(engine.registry, ref.domain, credentials(req))
    try:
        return _inspect_remote(client, ref)
    finally:
        client.close()


def _inspect_remote(client: RegistryClient, ref: Reference) -> Response:
    scope = repository_scope(ref.path)
    reply = client.request("GET", f"/v2/{ref.path}/manifests/{ref.digest or ref.tag}", scope=scope,
                           headers={"Accept": ACCEPT}, ok=(200, 401, 403, 404))
    if reply.status != 200:
        raise pull_error(parse_errors(reply.status, reply.read_all(1 << 20)), ref.familiar_name(), ref.familiar())
    data = reply.read_all(4 << 20)
    media_type = reply.header("Content-Type").split(";")[0].strip()
    digest = digestlib.sha256_bytes(data)
    if ref.digest is not None and digest != ref.digest:
        raise InvalidArgument(f"manifest verification failed for digest {ref.digest}")
    doc = load_json(data, "manifest")
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid manifest: not a JSON object")
    platforms: list[dict[str, Any]] = []
    if isinstance(doc.get("manifests"), list):
        for m in doc["manifests"]:
            p = m.get("platform") if isinstance(m, dict) else None
            if isinstance(p, dict):
                platforms.append({"architecture": p.get("architecture", ""), "os": p.get("os", ""),
                                  **({"variant": p["variant"]} if p.get("variant") else {})})
    elif isinstance(doc.get("config"), dict):
        platforms.append(_config_platform(client, ref, str(doc["config"].get("digest", ""))))
    if isinstance(doc.get("mediaType"), str):
        media_type = doc["mediaType"]
    return Response.json({"Descriptor": {"mediaType": media_type, "digest": digest, "size": len(data)},
                          "Platforms": platforms})


def _config_platform(client: RegistryClient, ref: Reference, untrusted_digest: str) -> dict[str, Any]:
    digest = digestlib.validate(untrusted_digest)
    reply = client.request("GET", f"/v2/{ref.path}/blobs/{digest}", scope=repository_scope(ref.path))
    data = reply.read_all(8 << 20)
    if digestlib.sha256_bytes(data) != digest:
        raise InvalidArgument(f"image config verification failed for digest {digest}")
    doc = load_json(data, "image config")
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid image config: not a JSON object")
    out = {"architecture": str(doc.get("architecture", "")), "os": str(doc.get("os", ""))}
    if doc.get("variant"):
        out["variant"] = str(doc["variant"])
    return out
