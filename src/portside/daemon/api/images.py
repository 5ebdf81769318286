"""/images/*: list, inspect, history, tag, delete, import, load, save, prune."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any, Callable, Iterable

from portside.daemon.api import distribution as distribution_api
from portside.daemon.engine import Engine
from portside.daemon.filters import Filters, bool_filter, parse_filters
from portside.daemon.http import Request, Response, StreamResponse
from portside.daemon.router import Router
from portside.errors import InvalidArgument, PortsideError
from portside.images import importer, load, save
from portside.images.refmatch import reference_matches
from portside.images.service import Image, labels_match
from portside.oci.reference import Reference, parse_repository_and_tag
from portside.timefmt import format_rfc3339, parse_rfc3339, parse_timestamp


def register(router: Router, engine: Engine) -> None:
    api = _ImagesAPI(engine)
    router.add("GET", "/images/json", api.list_images)
    router.add("POST", "/images/create", api.create)
    router.add("POST", "/images/load", api.load)
    router.add("GET", "/images/get", api.get_many)
    router.add("POST", "/images/prune", api.prune)
    router.add("GET", "/images/{name}/json", api.inspect)
    router.add("GET", "/images/{name}/history", api.history)
    router.add("GET", "/images/{name}/get", api.get_one)
    router.add("POST", "/images/{name}/tag", api.tag)
    router.add("DELETE", "/images/{name}", api.delete)


def summary(engine: Engine, image: Image, api_version: str, *, count_containers: bool = False) -> dict[str, Any]:
    """An entry of GET /images/json (and of /system/df, which counts containers; the list says -1 as dockerd)."""
    out: dict[str, Any] = {
        "Containers": len(engine.images.containers_using(image.id)) if count_containers else -1,
        "Created": int(image.created_unix),
        "Id": image.id,
        "Labels": image.labels or None,
        "ParentId": engine.images.db.parent_of(image.id) or "",
        "RepoDigests": [d.familiar() for d in image.digests],
        "RepoTags": [t.familiar() for t in image.tags],
        "SharedSize": -1,
        "Size": image.row.size,
    }
    if _older(api_version, "1.44"):
        out["VirtualSize"] = image.row.size
    return out


def _older(version: str, than: str) -> bool:
    return tuple(int(x) for x in version.split(".")) < tuple(int(x) for x in than.split("."))


_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


def inspect_document(engine: Engine, image: Image, api_version: str) -> dict[str, Any]:
    doc = image.config.doc
    config = {**_CONFIG_DEFAULTS, **image.config.config}
    chain = [layer.chain_id for layer in image.row.layers]
    snapshots = engine.images.snapshots
    out: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": [t.familiar() for t in image.tags],
        "RepoDigests": [d.familiar() for d in image.digests],
        "Parent": engine.images.db.parent_of(image.id) or "",
        "Comment": str((image.config.history[-1] if image.config.history else {}).get("comment", "")),
        "Created": doc.get("created") or "0001-01-01T00:00:00Z",
        "DockerVersion": str(doc.get("docker_version", "")),
        "Author": str(doc.get("author", "")),
        "Config": config,
        "Architecture": str(doc.get("architecture", "")),
        "Os": str(doc.get("os", "")),
        "Size": image.row.size,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": _graph_data(snapshots.layer_path(c) for c in reversed(chain)),
        },
        "RootFS": {"Type": "layers", "Layers": image.config.diff_ids},
        "Metadata": {"LastTagTime": format_rfc3339(int(image.last_tag_time * 1e9)) if image.last_tag_time
                     else "0001-01-01T00:00:00Z"},
    }
    if doc.get("variant"):
        out["Variant"] = doc["variant"]
    if doc.get("os.version"):
        out["OsVersion"] = doc["os.version"]
    if _older(api_version, "1.44"):
        out["VirtualSize"] = image.row.size
    if _older(api_version, "1.45"):
        out["Container"] = str(doc.get("container", ""))
        out["ContainerConfig"] = {**_CONFIG_DEFAULTS, **(doc.get("container_config") or {})}
    return out


def _referenced(filters: Filters, ref: Reference) -> bool:
    return any(reference_matches(pattern, ref) for pattern in filters["reference"])


def _graph_data(paths: Iterable[str]) -> dict[str, str]:
    """Where the layers are, as dockerd's overlay2 shows it (string values only; no key when empty)."""
    top_first = list(paths)
    data = {}
    if top_first:
        data["UpperDir"] = top_first[0]
    if len(top_first) > 1:
        data["LowerDir"] = ":".join(top_first[1:])
    return data


def history_document(image: Image, parent: Callable[[str], Image | None] = lambda image_id: None) -> list[dict[str, Any]]:
    """Newest first; entries that made a layer carry its size.

    The top entry carries the image's ID and tags, the next its parent's (a
    commit's), and so on while there are parents; the rest say <missing>.
    """
    layers = list(image.row.layers)
    entries = image.config.history or [{"created": image.config.created} for _ in layers]
    out: list[dict[str, Any]] = []
    layer_index = 0
    for entry in entries:
        size = 0
        if not entry.get("empty_layer") and layer_index < len(layers):
            size = layers[layer_index].size
            layer_index += 1
        out.append({
            "Id": "<missing>",
            "Created": int(parse_rfc3339(str(entry.get("created", "")))),
            "CreatedBy": str(entry.get("created_by", "")),
            "Tags": None,
            "Size": size,
            "Comment": str(entry.get("comment", "")),
        })
    out.reverse()
    current: Image | None = image
    for item in out:
        if current is None:
            break
        item["Id"] = current.id
        item["Tags"] = [t.familiar() for t in current.tags] or None
        current = parent(current.id)
    return out


class _ImagesAPI:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.images = engine.images
        # The unfiltered list as last sent, for (database generation, API version): it reads
        # the database and every config blob, which 50 clients listing at once should not redo.
        self._unfiltered: tuple[tuple[int, str, list[tuple[str, tuple[str, ...]]]], Response] | None = None

    def list_images(self, req: Request) -> Response:
        filters = parse_filters(req.json_arg("filters"),
                                {"dangling", "label", "label!", "reference", "before", "since", "until"})
        if req.arg("filter"):  # the pre-1.25 single reference filter
            filters.setdefault("reference", []).append(req.arg("filter") or "")
        if filters:
            return self._list_images(filters, req.api_version)
        # the generation taken first: a write meanwhile makes what is built stale, not wrong
        key = (self.images.db.generation, req.api_version, sorted((k, tuple(v)) for k, v in req.query.items()))
        cached = self._unfiltered
        if cached is None or cached[0] != key:
            cached = self._unfiltered = (key, self._list_images(filters, req.api_version))
        return Response(cached[1].status, cached[1].body, list(cached[1].headers))

    def _list_images(self, filters: Filters, api_version: str) -> Response:
        now = time.time()
        out = []
        for image in sorted(self.images.images(), key=lambda i: i.created_unix, reverse=True):
            if not self._matches(image, filters, now):
                continue
            entry = summary(self.engine, image, api_version)
            if filters.get("reference"):
                # as dockerd: only the names the filter matched are listed
                entry["RepoTags"] = [t.familiar() for t in image.tags if _referenced(filters, t)]
                entry["RepoDigests"] = [d.familiar() for d in image.digests if _referenced(filters, d)]
                if not entry["RepoTags"] and not entry["RepoDigests"]:
                    continue
            out.append(entry)
        return Response.json(out)

    def _matches(self, image: Image, filters: Filters, now: float) -> bool:
        dangling = bool_filter(filters, "dangling")
        if dangling is not None and dangling == bool(image.tags):
            return False
        for key in ("before", "since"):
            for name in filters.get(key, []):
                pivot = self.images.get(name).created_unix
                if (key == "before" and image.created_unix >= pivot) or (key == "since" and image.created_unix <= pivot):
                    return False
        for value in filters.get("until", []):
            if image.created_unix >= parse_timestamp(value, now, what="until"):
                return False
        labels = filters.get("label", []) + ["!" + f for f in filters.get("label!", [])]
        return labels_match(image.labels, labels)

    def inspect(self, req: Request) -> Response:
        image = self.images.get(req.params["name"])
        return Response.json(inspect_document(self.engine, image, req.api_version))

    def history(self, req: Request) -> Response:
        return Response.json(history_document(self.images.get(req.params["name"]), self._parent))

    def _parent(self, image_id: str) -> Image | None:
        parent_id = self.images.db.parent_of(image_id)
        try:
            return self.images.load_image(parent_id) if parent_id else None
        except PortsideError:  # removed meanwhile, or damaged
            return None

    def tag(self, req: Request) -> Response:
        repo = req.arg("repo") or ""
        target = parse_repository_and_tag(repo, req.arg("tag") or None)
        self.images.tag(req.params["name"], target)
        return Response(status=201)

    def delete(self, req: Request) -> Response:
        records = self.images.remove(req.params["name"], force=req.flag("force"), prune=not req.flag("noprune"))
        return Response.json(records)

    def prune(self, req: Request) -> Response:
        filters = parse_filters(req.json_arg("filters"), {"dangling", "until", "label", "label!"})
        dangling = bool_filter(filters, "dangling")
        now = time.time()
        until = min((parse_timestamp(v, now, what="until") for v in filters.get("until", [])), default=None)
        labels = filters.get("label", []) + ["!" + f for f in filters.get("label!", [])]
        deleted, reclaimed = self.images.prune(dangling_only=dangling is not False, until=until, label_filters=labels)
        return Response.json({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    def create(self, req: Request) -> Response | StreamResponse:
        if req.arg("fromImage"):
            return distribution_api.pull(self.engine, req)
        source = req.arg("fromSrc")
        if source is None:
            raise InvalidArgument("either fromSrc or fromImage must be set")
        repo = req.arg("repo") or ""
        ref: Reference | None = parse_repository_and_tag(repo, req.arg("tag") or None) if repo else None
        changes = req.query.get("changes", [])
        message = req.arg("message") or ""
        if source == "-":
            image_id = importer.import_image(self.images, req.body, ref=ref, changes=changes, message=message)
        else:
            image_id = self._import_url(source, ref, changes, message)
        return _ndjson([{"status": image_id}])

    def _import_url(self, url: str, ref: Reference | None, changes: list[str], message: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise InvalidArgument(f"import source must be - or an http(s) URL, not {url!r}")
        try:
            with urllib.request.urlopen(url, timeout=30) as remote:
                return importer.import_image(self.images, remote, ref=ref, changes=changes, message=message,
                                             source=url)
        except OSError as e:
            raise InvalidArgument(f"import from {url}: {e}") from None

    def load(self, req: Request) -> Response | StreamResponse:
        messages: list[str] = []
        try:
            load.load(self.images, req.body, progress=messages.append)
        except PortsideError as e:
            if not messages:
                raise
            return _ndjson([{"stream": m + "\n"} for m in messages] + [_error(e)])
        return _ndjson([{"stream": m + "\n"} for m in messages])

    def get_many(self, req: Request) -> StreamResponse:
        names = [n for value in req.query.get("names", []) for n in value.split(",") if n]
        return self._save(names)

    def get_one(self, req: Request) -> StreamResponse:
        return self._save([req.params["name"]])

    def _save(self, names: list[str]) -> StreamResponse:
        save.select(self.images, names)  # errors (404) before the 200 goes out

        def write_body(write: Callable[[bytes], None]) -> None:
            with self.images.pinned() as pin:
                # Pinned, then chosen again: an rmi in between is seen here, and none
                # after can take what the stream still has to send.
                selections = save.select(self.images, names)
                for sel in selections:
                    self.images.pin_image(pin, sel.image)
                selections = save.select(self.images, names)
                for sel in selections:
                    self.images.pin_image(pin, sel.image)
                batched = _Batched(write)
                save.save(self.images, selections, batched)
                batched.flush()

        return StreamResponse(write_body, headers=[("Content-Type", "application/x-tar")])


class _Batched:
    """Coalesces small writes (tar headers, padding) so each HTTP chunk is large."""

    def __init__(self, write: Callable[[bytes], None], size: int = 1 << 20) -> None:
        self._write = write
        self._buf = bytearray()
        self._size = size

    def __call__(self, data: bytes) -> None:
        if len(data) >= self._size:
            self.flush()
            self._write(data)
            return
        self._buf += data
        if len(self._buf) >= self._size:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self._write(bytes(self._buf))
            self._buf.clear()


def _error(e: PortsideError) -> dict[str, Any]:
    return {"errorDetail": {"message": e.message}, "error": e.message}


def _ndjson(lines: list[dict[str, Any]]) -> StreamResponse:
    def write_body(write: Callable[[bytes], None]) -> None:
        write(b"".join(json.dumps(line).encode() + b"\r\n" for line in lines))

    return StreamResponse(write_body, headers=[("Content-Type", "application/json")])
