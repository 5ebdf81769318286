"""`docker save`: images out as a tarball that Docker (old and new), podman and skopeo load.

The tarball is Docker Engine 25's form: an OCI image layout (``oci-layout``,
``index.json``, ``blobs/sha256/``) that also carries Docker's
``manifest.json`` and ``repositories``, so both old readers (which read
``manifest.json``) and OCI readers (which read ``index.json``) find the
same blobs. Layers are written as stored; the image ID is the config digest
and survives the round trip.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from portside.errors import InvalidArgument
from portside.images.metadata import LayerRow
from portside.images.service import Image, ImageService
from portside.oci import digest as digestlib
from portside.oci import mediatypes as mt
from portside.oci.image import Descriptor, Manifest, canonical_json
from portside.oci.reference import Reference, parse_normalized

_BLOCK = 512
_CHUNK = 1 << 20

Write = Callable[[bytes], None]


@dataclass
class _Selection:
    image: Image
    tags: list[Reference] = field(default_factory=list)


def select(service: ImageService, names: list[str]) -> list[_Selection]:
    """Which images, under which tags, as ``docker save`` picks them.

    A name with a tag saves that tag; a repository name alone saves every tag
    of that repository; an ID saves the image without tags.
    """
    if not names:
        raise InvalidArgument("no images specified")
    chosen: dict[str, _Selection] = {}

    def add(image: Image, tag: Reference | None) -> None:
        sel = chosen.setdefault(image.id, _Selection(image))
        if tag is not None and str(tag) not in {str(t) for t in sel.tags}:
            sel.tags.append(tag)

    for name in names:
        repo_tags = _tags_of_repository(service, name)
        if repo_tags:
            for image_id, tag in repo_tags:
                add(service.load_image(image_id), tag)
            continue
        image = service.get(name)
        named = next((t for t in image.tags if _same(t, name)), None)
        add(image, named)
    return list(chosen.values())


def _tags_of_repository(service: ImageService, name: str) -> list[tuple[str, Reference]]:
    """For a repository name alone (``busybox``): every tag of it, oldest first."""
    try:
        ref = parse_normalized(name)
    except InvalidArgument:
        return []
    if ref.tag is not None or ref.digest is not None:
        return []
    found = []
    for full, image_id, kind in service.db.all_names():
        if kind == "tag":
            tag = parse_normalized(full)
            if tag.name == ref.name:
                found.append((image_id, tag))
    return found


def _same(tag: Reference, name: str) -> bool:
    try:
        return str(parse_normalized(name)) == str(tag)
    except InvalidArgument:
        return False


def save(service: ImageService, selections: list[_Selection], write: Write) -> None:
    out = _TarWriter(write)
    index_entries: list[dict[str, object]] = []
    docker_manifest: list[dict[str, object]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    out.directory("blobs/")
    out.directory("blobs/sha256/")

    def blob(digest: str) -> str:
        name = "blobs/sha256/" + digestlib.hex_of(digest)
        if digest not in written:
            info = service.content.info(digest)
            with service.content.open(digest) as f:
                out.file(name, info.size, f)
            written.add(digest)
        return name

    def layer(row: LayerRow) -> str:
        name = "blobs/sha256/" + digestlib.hex_of(row.blob_digest)
        if row.blob_digest not in written:
            out.begin_file(name, row.blob_size)
            service.write_layer(row, out.write)
            out.end_file(row.blob_size)
            written.add(row.blob_digest)
        return name

    for sel in selections:
        image = sel.image
        service.event(image.id, "save")
        config_path = blob(image.id)
        layer_paths = [layer(row) for row in image.row.layers]
        manifest = Manifest(
            mt.OCI_MANIFEST,
            Descriptor(mt.OCI_CONFIG, image.id, service.content.info(image.id).size),
            tuple(Descriptor(_oci_layer_type(layer.blob_media_type), layer.blob_digest, layer.blob_size)
                  for layer in image.row.layers),
        )
        raw = manifest.to_json_bytes()
        manifest_digest = digestlib.sha256_bytes(raw)
        if manifest_digest not in written:
            out.bytes_file("blobs/sha256/" + digestlib.hex_of(manifest_digest), raw)
            written.add(manifest_digest)
        descriptor = {"mediaType": mt.OCI_MANIFEST, "digest": manifest_digest, "size": len(raw)}
        if sel.tags:
            for tag in sel.tags:
                index_entries.append({**descriptor, "annotations": {
                    mt.ANNOTATION_CONTAINERD_NAME: str(tag),
                    mt.ANNOTATION_REF_NAME: tag.tag or "latest",
                }})
                repositories.setdefault(tag.familiar_name(), {})[tag.tag or "latest"] = \
                    digestlib.hex_of(image.row.layers[-1].chain_id) if image.row.layers else digestlib.hex_of(image.id)
        else:
            index_entries.append(dict(descriptor))
        docker_manifest.append({
            "Config": config_path,
            "RepoTags": [t.familiar() for t in sel.tags] or None,
            "Layers": layer_paths,
        })

    out.bytes_file("index.json", canonical_json(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index_entries}))
    out.bytes_file("manifest.json", canonical_json(docker_manifest))
    out.bytes_file("oci-layout", json.dumps({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}).encode())
    if repositories:
        out.bytes_file("repositories", canonical_json(repositories))
    out.close()


def _oci_layer_type(media_type: str) -> str:
    return {
        mt.DOCKER_LAYER: mt.OCI_LAYER,
        mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
        mt.DOCKER_LAYER_FOREIGN: mt.OCI_LAYER_NONDIST_GZIP,
    }.get(media_type, media_type)


class _TarWriter:
    """A streaming tar writer that copies file bodies in large chunks (tarfile's copy uses 16 KiB)."""

    def __init__(self, write: Write) -> None:
        self._write = write

    def _header(self, name: str, size: int, kind: bytes, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.type = kind
        info.mode = mode
        info.mtime = 0
        self._write(info.tobuf(tarfile.PAX_FORMAT))

    def directory(self, name: str) -> None:
        self._header(name, 0, tarfile.DIRTYPE, 0o755)

    def bytes_file(self, name: str, data: bytes) -> None:
        self._header(name, len(data), tarfile.REGTYPE, 0o644)
        self._write(data + b"\0" * (-len(data) % _BLOCK))

    def file(self, name: str, size: int, src: BinaryIO) -> None:
        self.begin_file(name, size)
        remaining = size
        while remaining:
            chunk = src.read(min(_CHUNK, remaining))
            if not chunk:
                raise OSError(f"{name}: blob shorter than recorded ({size} bytes)")
            self._write(chunk)
            remaining -= len(chunk)
        self.end_file(size)

    def begin_file(self, name: str, size: int) -> None:
        """A file whose ``size`` bytes the caller writes with ``write``, then ``end_file``."""
        self._header(name, size, tarfile.REGTYPE, 0o644)

    def write(self, data: bytes) -> None:
        self._write(data)

    def end_file(self, size: int) -> None:
        if size % _BLOCK:
            self._write(b"\0" * (_BLOCK - size % _BLOCK))

    def close(self) -> None:
        self._write(b"\0" * (_BLOCK * 2))
