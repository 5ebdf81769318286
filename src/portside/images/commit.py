"""A new image: a parent image's layers plus one layer diff (``docker commit``, and a builder's steps).

The diff is written by a function (``archive.layerdiff.write_layer_diff`` over
a container's upper directory) and unpacked as it is written, its tar kept as a
tar-split like an imported layer's. The config follows dockerd's
``NewChildImage``: the parent's platform, history and diff IDs, one history
entry more (``created_by``, author, comment), one diff ID more unless the diff
is empty (then the entry says ``empty_layer`` and no layer is added), and the
new ``config``. The parent is recorded as the image's Parent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portside.archive.layerdiff import DiffResult
from portside.errors import NotFound
from portside.images import containerconfig
from portside.images.load import host_architecture
from portside.images.service import Image, ImageService, NewLayer
from portside.oci.image import canonical_json
from portside.oci.reference import Reference
from portside.timefmt import now_rfc3339
from portside.unpack import release, unpack_written

# Writes an uncompressed layer tar through its argument.
DiffWriter = Callable[[Callable[[bytes], object]], DiffResult]

# What a child image takes over from its parent's config besides config, history and rootfs.
_PLATFORM_KEYS = ("architecture", "os", "os.version", "os.features", "variant")


@dataclass(frozen=True)
class Commit:
    config: dict[str, Any]                  # the new image's config section (a container.Config)
    created_by: str = ""
    author: str = ""
    comment: str = ""
    container_id: str = ""                  # the image config's "container", when made from one
    container_config: dict[str, Any] | None = None
    tags: list[Reference] = field(default_factory=list)
    created: str | None = None              # a fixed creation time (a reproducible build); else now


def commit_image(service: ImageService, parent: Image | None, write_diff: DiffWriter, commit: Commit) -> str:
    """Unpack the diff, add the image (tagged with ``commit.tags``); returns its ID."""
    with service.pinned() as pin:
        if parent is not None:
            service.pin_image(pin, parent)
            for row in parent.row.layers:
                if not service.snapshots.has(row.chain_id):
                    raise NotFound(f"layer {row.diff_id} of image {parent.id} is missing")
        layer, diff = unpack_written(service.content, service.snapshots, write_diff, pin)
        try:
            created = commit.created or now_rfc3339()  # after the diff: the image is as new as its layer
            layers = [NewLayer.from_row(row) for row in parent.row.layers] if parent is not None else []
            if diff.entries:
                layers.append(NewLayer.from_unpacked(layer))
            doc = child_config(parent, commit, created=created, diff_id=layer.diff_id if diff.entries else None)
            added = service.add_image(canonical_json(doc), layers, tags=commit.tags,
                                      parent=parent.id if parent is not None else None, pin=pin)
        finally:
            release(service.snapshots, layer)
    return added.image_id


def child_config(parent: Image | None, commit: Commit, *, created: str, diff_id: str | None) -> dict[str, Any]:
    """The new image's config document; ``diff_id`` None for an empty diff."""
    base = parent.config.doc if parent is not None else {}
    entry: dict[str, Any] = {"created": created}
    if commit.created_by:
        entry["created_by"] = commit.created_by
    if commit.author:
        entry["author"] = commit.author
    if commit.comment:
        entry["comment"] = commit.comment
    if diff_id is None:
        entry["empty_layer"] = True
    diff_ids = list(parent.config.diff_ids) if parent is not None else []
    if diff_id is not None:
        diff_ids.append(diff_id)
    doc: dict[str, Any] = {key: base[key] for key in _PLATFORM_KEYS if base.get(key)}
    doc.setdefault("architecture", host_architecture())
    doc.setdefault("os", "linux")
    doc.update({
        "config": containerconfig.document(commit.config),
        "created": created,
        "history": [*(parent.config.history if parent is not None else []), entry],
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    if commit.author:
        doc["author"] = commit.author
    if commit.container_id:
        doc["container"] = commit.container_id
        doc["container_config"] = containerconfig.document(commit.container_config or {})
    return dict(sorted(doc.items()))  # dockerd writes the image config as a map: keys sorted
