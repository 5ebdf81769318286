"""POST /commit: a new image from a container's changes (``docker commit``)."""

from __future__ import annotations

from portside.containers.commit import CommitRequest, commit_container
from portside.daemon.engine import Engine
from portside.daemon.http import Request, Response, decode_json
from portside.daemon.router import Router
from portside.errors import InvalidArgument
from portside.images import containerconfig


def register(router: Router, engine: Engine) -> None:
    router.add("POST", "/commit", lambda req: commit(engine, req))


def commit(engine: Engine, req: Request) -> Response:
    data = req.json_body()
    content_type = req.headers.get("content-type", "")
    if data and content_type.split(";", 1)[0].strip().lower() != "application/json":
        # moby's CheckForJSON: a body must say it is JSON
        raise InvalidArgument(f"Content-Type specified ({content_type}) must be 'application/json'")
    untrusted = None
    if data.strip():
        untrusted = decode_json(data)
    request = CommitRequest(
        container=req.arg("container") or "", repo=req.arg("repo") or "", tag=req.arg("tag") or "",
        author=req.arg("author") or "", comment=req.arg("comment") or "",
        pause=req.flag("pause") if req.arg("pause") else True,  # absent or empty: pause, as dockerd
        changes=tuple(req.query.get("changes", [])),
        config=containerconfig.decode(untrusted))
    image_id = commit_container(engine.containers(), request)
    return Response.json({"Id": image_id}, status=201)
