"""/containers/{id}/archive (HEAD, GET, PUT) and /containers/{id}/export: ``docker cp`` and ``docker export``."""

from __future__ import annotations

import base64
import json

from portside.containers import archive
from portside.containers.eventlog import emit_for
from portside.daemon.engine import Engine
from portside.daemon.http import Request, Response, StreamResponse
from portside.daemon.router import Router
from portside.errors import InvalidArgument

STAT_HEADER = "X-Docker-Container-Path-Stat"


def register(router: Router, engine: Engine) -> None:
    api = _ArchiveAPI(engine)
    router.add("HEAD", "/containers/{id}/archive", api.stat)
    router.add("GET", "/containers/{id}/archive", api.get)
    router.add("PUT", "/containers/{id}/archive", api.put)
    router.add("GET", "/containers/{id}/export", api.export)


def _stat_header(stat: archive.PathStat) -> tuple[str, str]:
    doc = json.dumps(stat.to_json(), separators=(",", ":"), ensure_ascii=False).encode()
    return STAT_HEADER, base64.b64encode(doc).decode("ascii")


def _path(req: Request) -> str:
    """moby's ArchiveFormValues: the ``path`` query parameter is required."""
    path = req.arg("path") or ""
    if not path:
        raise InvalidArgument("bad parameter: path cannot be empty")
    return path


class _ArchiveAPI:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def stat(self, req: Request) -> Response:
        stat = archive.stat_path(self.engine.containers(), req.params["id"], _path(req))
        return Response(status=200, headers=[_stat_header(stat)])

    def get(self, req: Request) -> StreamResponse:
        stream = archive.archive_path(self.engine.containers(), req.params["id"], _path(req))
        assert stream.stat is not None
        emit_for(self.engine.containers(), req.params["id"], "archive-path")
        return StreamResponse(stream.write, headers=[_stat_header(stream.stat), ("Content-Type", "application/x-tar")],
                              on_close=stream.close)

    def put(self, req: Request) -> Response:
        archive.extract_to_dir(self.engine.containers(), req.params["id"], _path(req), req.body,
                               no_overwrite_dir_nondir=req.flag("noOverwriteDirNonDir"),
                               copy_uid_gid=req.flag("copyUIDGID"))
        emit_for(self.engine.containers(), req.params["id"], "extract-to-dir")
        return Response(status=200)

    def export(self, req: Request) -> StreamResponse:
        stream = archive.export(self.engine.containers(), req.params["id"])
        emit_for(self.engine.containers(), req.params["id"], "export")
        return StreamResponse(stream.write, headers=[("Content-Type", "application/x-tar")], on_close=stream.close)
