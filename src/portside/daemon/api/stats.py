"""GET /containers/{id}/stats and POST /containers/{id}/update.

stats (moby ``daemon/stats.go``): ``stream`` (default true) sends one JSON
document per second, each paired with the previous one, until the client
goes or the container is removed; a stopped container streams zeroed
documents. ``stream=false`` answers one document: after a second sample
(so CPU % can be computed), or at once with ``one-shot=true`` or for a
stopped container. The documents are built in ``containers/stats.py``.

update: the request is merged into the container's HostConfig and, if it
runs, applied to its cgroup (``ContainerService.update``); the answer is
``{"Warnings": [...]}``.
"""

from __future__ import annotations

import json
from typing import Callable

from portside import cgroups
from portside.containers import stats
from portside.containers.record import ContainerRecord
from portside.containers.service import ContainerService
from portside.daemon.engine import Engine
from portside.daemon.http import Request, Response, StreamResponse
from portside.daemon.router import Router


def register(router: Router, engine: Engine) -> None:
    api = _StatsAPI(engine)
    router.add("GET", "/containers/{id}/stats", api.stats)
    router.add("POST", "/containers/{id}/update", api.update)


class _StatsAPI:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def containers(self) -> ContainerService:
        return self.engine.containers()

    def stats(self, req: Request) -> Response | StreamResponse:
        containers = self.containers
        cid = containers.resolve(req.params["id"])   # 404 before anything is sent

        def load() -> ContainerRecord:
            return containers.store.load(cid)

        sampler = stats.Sampler(cgroups.for_host())
        memory = stats.host_memory()
        if not req.flag("stream", default=True):
            return Response.json(stats.one(load, sampler, machine_memory=memory, one_shot=req.flag("one-shot")))

        def write_body(write: Callable[[bytes], None]) -> None:
            for doc in stats.frames(load, sampler, machine_memory=memory):
                write(json.dumps(doc, separators=(",", ":")).encode() + b"\n")

        # dockerd's stream has no Content-Type; its headers go out before the first sample
        return StreamResponse(write_body)

    def update(self, req: Request) -> Response:
        warnings = self.containers.update(req.params["id"], req.json())
        return Response.json({"Warnings": warnings})
