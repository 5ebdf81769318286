"""`docker import`: a root filesystem tarball becomes a one-layer image."""

from __future__ import annotations

from typing import Any, BinaryIO

from portside.images.changes import apply_changes
from portside.images.load import host_architecture
from portside.images.service import ImageService, NewLayer
from portside.oci import mediatypes as mt
from portside.oci.image import canonical_json
from portside.oci.reference import Reference
from portside.timefmt import now_rfc3339
from portside.unpack import ingest_layer


def import_image(service: ImageService, untrusted_tar: BinaryIO, *, ref: Reference | None,
                 changes: list[str], message: str = "", source: str = "-") -> str:
    """Store and unpack the tarball (plain, gzip or zstd) as one layer; returns the image ID."""
    created = now_rfc3339()
    config: dict[str, Any] = apply_changes({}, changes)
    with service.pinned() as pin:
        layer = ingest_layer(service.content, service.snapshots, untrusted_tar, pin)
        doc = {
            "architecture": host_architecture(),
            "config": config,
            "created": created,
            "history": [{"created": created, "comment": message or f"Imported from {source}"}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.blob.digest]},
        }
        added = service.add_image(canonical_json(doc), [NewLayer(layer.blob, mt.DOCKER_LAYER)],
                                  tags=[ref] if ref else [], pin=pin)
    return added.image_id
