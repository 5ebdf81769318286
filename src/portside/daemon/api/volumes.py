"""/volumes: create, list, inspect, remove, prune (the local driver)."""

from __future__ import annotations

from typing import Any

from portside.daemon.engine import Engine
from portside.daemon.filters import bool_filter, parse_filters
from portside.daemon.http import Request, Response
from portside.daemon.router import Router
from portside.volumes import Volume


def register(router: Router, engine: Engine) -> None:
    api = _VolumesAPI(engine)
    router.add("GET", "/volumes", api.list_volumes)
    router.add("POST", "/volumes/create", api.create)
    router.add("POST", "/volumes/prune", api.prune)
    router.add("GET", "/volumes/{name}", api.inspect)
    router.add("DELETE", "/volumes/{name}", api.delete)


class _VolumesAPI:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _doc(self, v: Volume) -> dict[str, Any]:
        store = self.engine.containers().volumes
        return {"Name": v.name, "Driver": "local", "Mountpoint": store.mountpoint(v.name), "CreatedAt": v.created_at,
                "Labels": v.labels or None, "Scope": "local", "Options": v.options or None}

    def create(self, req: Request) -> Response:
        body = req.json() or {}
        volume = self.engine.containers().volumes.create(body.get("Name") or None, labels=body.get("Labels") or None,
                                                         options=body.get("DriverOpts") or None)
        return Response.json(self._doc(volume), status=201)

    def inspect(self, req: Request) -> Response:
        return Response.json(self._doc(self.engine.containers().volumes.get(req.params["name"])))

    def list_volumes(self, req: Request) -> Response:
        filters = parse_filters(req.json_arg("filters"), {"dangling", "name", "label", "driver"})
        containers = self.engine.containers()
        dangling = bool_filter(filters, "dangling")
        out = []
        for v in containers.volumes.all():
            if dangling is not None and dangling == bool(containers.volume_users(v.name)):
                continue
            if filters.get("name") and not any(n in v.name for n in filters["name"]):
                continue
            if any(label.partition("=")[0] not in v.labels or
                   ("=" in label and v.labels[label.partition("=")[0]] != label.partition("=")[2])
                   for label in filters.get("label", [])):
                continue
            out.append(self._doc(v))
        return Response.json({"Volumes": out, "Warnings": None})

    def delete(self, req: Request) -> Response:
        containers = self.engine.containers()
        name = req.params["name"]
        containers.volumes.remove(name, containers.volume_users(name))
        return Response(status=204)

    def prune(self, req: Request) -> Response:
        filters = parse_filters(req.json_arg("filters"), {"label", "all"})
        containers = self.engine.containers()
        everything = bool_filter(filters, "all") or False
        deleted, reclaimed = [], 0
        for v in containers.volumes.all():
            if (v.anonymous or everything) and not containers.volume_users(v.name):
                reclaimed += containers.volumes.usage(v.name)
                containers.volumes.remove(v.name, [])
                deleted.append(v.name)
        return Response.json({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})
