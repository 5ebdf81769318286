"""`docker import`: a root filesystem tarball becomes a one-layer image."""

from __future__ import annotations

from typing import Any

from portside.images.changes import apply_changes
from portside.images.load import host_architecture
from portside.images.service import ImageService, NewLayer
from portside.oci.image import canonical_json
from portside.oci.reference import Reference
from portside.readers import Reader
from portside.timefmt import now_rfc3339
from portside.unpack import release, unpack_stream


def import_image(service: ImageService, untrusted_tar: Reader, *, ref: Reference | None,
                 changes: list[str], message: str = "", source: str = "-") -> str:
    """Unpack the tarball (plain, gzip or zstd) as one layer, kept as a tar-split; returns the image ID."""
    created = now_rfc3339()
    config: dict[str, Any] = apply_changes({}, changes)
    with service.pinned() as pin:
        layer = unpack_stream(service.content, service.snapshots, untrusted_tar, pin)
        try:
            doc = {
                "architecture": host_architecture(),
                "config": config,
                "created": created,
                "history": [{"created": created, "comment": message or f"Imported from {source}"}],
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            }
            added = service.add_image(canonical_json(doc), [NewLayer.from_unpacked(layer)],
                                      tags=[ref] if ref else [], pin=pin)
        finally:
            release(service.snapshots, layer)
    if ref is not None:
        service.event(added.image_id, "tag", ref.familiar())  # dockerd tags, then logs the import
    service.event(added.image_id, "import")
    return added.image_id
