"""/volumes: create, list, inspect, remove, prune (the local driver), in moby's shapes and words."""

from __future__ import annotations

import os
import re
import threading
from typing import Any

from portside.daemon.engine import Engine
from portside.daemon.filters import Filters, bool_filter, parse_filters
from portside.daemon.http import Request, Response
from portside.daemon.router import Router, compare_versions
from portside.errors import Conflict, InvalidArgument, NotFound, json_kind
from portside.volumes import Volume, VolumeStore

ANONYMOUS_LABEL = "com.docker.volume.anonymous"
# Longest volume name: its directory (and the record files named after it) must fit in NAME_MAX.
MAX_NAME = 200


def register(router: Router, engine: Engine) -> None:
    api = _VolumesAPI(engine)
    router.add("GET", "/volumes", api.list_volumes)
    router.add("POST", "/volumes/create", api.create)
    router.add("POST", "/volumes/prune", api.prune)
    router.add("GET", "/volumes/{name}", api.inspect)
    router.add("DELETE", "/volumes/{name}", api.delete)


def volume_doc(store: VolumeStore, v: Volume) -> dict[str, Any]:
    """moby's volume.Volume: no UsageData (only /system/df asks for it), no Status."""
    return {"CreatedAt": v.created_at, "Driver": "local", "Labels": dict(sorted(v.labels.items())) or None,
            "Mountpoint": store.mountpoint(v.name), "Name": v.name,
            "Options": dict(sorted(v.options.items())) or None, "Scope": "local"}


def disk_usage(engine: Engine) -> list[dict[str, Any]]:
    """/system/df's Volumes: local volumes without driver options, with their size and reference count."""
    refs: dict[str, int] = {}
    if engine.has_containers():
        containers = engine.containers()
        store = containers.volumes
        for record in containers.store.all():
            for name in set(containers.volumes_of(record.id)):
                refs[name] = refs.get(name, 0) + 1
    else:  # nothing refers to a volume; reading them needs no monitor
        store = VolumeStore(os.path.join(engine.root, "volumes"))
    return [{**volume_doc(store, v), "UsageData": {"RefCount": refs.get(v.name, 0), "Size": store.usage(v.name)}}
            for v in store.all() if not v.options]


def _matches_labels(filters: Filters, key: str, labels: dict[str, str]) -> bool:
    """filters.Args.MatchKVList: every ``k`` or ``k=v`` of ``key`` is among the labels."""
    wanted = filters.get(key) or []
    if not wanted:
        return True
    for item in wanted:
        k, sep, value = item.partition("=")
        if k not in labels or (sep and labels[k] != value):
            return False
    return True


def _name_matches(patterns: list[str], name: str) -> bool:
    """filters.Args.Match: an exact name, or a regular expression found in it."""
    for pattern in patterns:
        if pattern == name:
            return True
        try:
            if re.search(pattern, name):
                return True
        except re.error:
            continue
    return False


class _VolumesAPI:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pruning = threading.Lock()

    def create(self, req: Request) -> Response:
        body = req.json() or {}
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON: json: cannot unmarshal into Go value of type volume.CreateOptions")
        name = body.get("Name") or ""
        if not isinstance(name, str):
            raise InvalidArgument(f"json: cannot unmarshal {json_kind(name)} into Go struct field "
                                  "CreateOptions.Name of type string")
        if len(name) > MAX_NAME:  # the volume's directory name: the file system's limit
            raise InvalidArgument(f"create {name[:64]}...: volume name is longer than {MAX_NAME} characters")
        driver = body.get("Driver") or "local"
        if driver != "local":
            raise NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')
        labels, options = body.get("Labels") or {}, body.get("DriverOpts") or {}
        for what, mapping in (("Labels", labels), ("DriverOpts", options)):
            for value in (mapping.values() if isinstance(mapping, dict) else [mapping]):
                if not isinstance(value, str):
                    raise InvalidArgument(f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                                          f"CreateOptions.{what} of type "
                                          f"{'string' if isinstance(mapping, dict) else 'map[string]string'}")
        if not name:  # moby: a random name, and the label that makes it anonymous
            labels = {**labels, ANONYMOUS_LABEL: ""}
        store = self.engine.containers().volumes
        # empty until a container mounts it first: then the image's content there is copied in, as dockerd does
        volume = store.create(name or None, labels=labels, options=options, anonymous=not name, copyup=True)
        return Response.json(volume_doc(store, volume), status=201)

    def inspect(self, req: Request) -> Response:
        store = self.engine.containers().volumes
        return Response.json(volume_doc(store, store.get(req.params["name"])))

    def list_volumes(self, req: Request) -> Response:
        filters = parse_filters(req.json_arg("filters"), {"dangling", "name", "label", "driver"})
        containers = self.engine.containers()
        dangling = bool_filter(filters, "dangling")
        out = []
        for v in containers.volumes.all():
            if filters.get("driver") and "local" not in filters["driver"]:
                continue
            if filters.get("name") and not _name_matches(filters["name"], v.name):
                continue
            if not _matches_labels(filters, "label", v.labels):
                continue
            if dangling is not None and dangling == bool(containers.volume_users(v.name)):
                continue
            out.append(volume_doc(containers.volumes, v))
        return Response.json({"Volumes": out, "Warnings": None})

    def delete(self, req: Request) -> Response:
        containers = self.engine.containers()
        name = req.params["name"]
        try:
            containers.volumes.remove(name, containers.volume_users(name))
        except NotFound:
            if not req.flag("force"):  # moby purges on error with force: a missing volume is no error
                raise
        return Response(status=204)

    def prune(self, req: Request) -> Response:
        """Unused local volumes without driver options: anonymous ones, or all of them with ``all``.

        Before API 1.42 a prune took named volumes too, as dockerd still does for
        old clients.
        """
        filters = parse_filters(req.json_arg("filters"), {"label", "label!", "all"})
        if len(filters.get("all", [])) > 1:
            raise InvalidArgument(f"invalid filter 'all={filters['all']}': only one value is expected")
        everything = bool_filter(filters, "all") or compare_versions(req.api_version, "1.42") < 0
        if not self._pruning.acquire(blocking=False):
            raise Conflict("a prune operation is already running")
        try:
            containers = self.engine.containers()
            deleted, reclaimed = [], 0
            for v in containers.volumes.all():
                if v.options or (not everything and ANONYMOUS_LABEL not in v.labels):
                    continue
                if not _matches_labels(filters, "label", v.labels):
                    continue
                if filters.get("label!") and _matches_labels(filters, "label!", v.labels):
                    continue
                if containers.volume_users(v.name):
                    continue
                size = containers.volumes.usage(v.name)
                try:
                    containers.volumes.remove(v.name, containers.volume_users(v.name))
                except (Conflict, NotFound):
                    continue  # taken or removed meanwhile
                reclaimed += size
                deleted.append(v.name)
        finally:
            self._pruning.release()
        return Response.json({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed})
