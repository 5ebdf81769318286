"""The image service: resolve names, add images, tag, remove, prune, collect garbage.

It composes the three stores — content (blobs), snapshots (unpacked layers),
metadata (which images exist and their names) — and keeps them consistent:

* adding an image writes blobs and layers first and the database last;
* removing an image deletes the database rows first, then collects blobs and
  layers that no image references;
* blobs and layers that an operation in flight has written but not yet
  recorded are *pinned*, so a concurrent collection cannot take them.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from portside.archive.tarsplit import reassemble
from portside.content.store import FileContentStore, Info
from portside.errors import Conflict, DataCorruption, InvalidArgument, NotFound
from portside.events import IMAGE, Recorder
from portside.fsync import syncfs
from portside.images.metadata import ImageRow, LayerRow, MetadataDB
from portside.oci import digest as digestlib
from portside.oci import mediatypes as mt
from portside.oci.image import ImageConfig, parse_config
from portside.oci.reference import Reference, parse_docker_ref, parse_normalized
from portside.snapshots.overlay import OverlaySnapshotter
from portside.timefmt import parse_rfc3339
from portside.unpack import Unpacked, commit_unpacked, copy_layer, unpack_blob

log = logging.getLogger(__name__)

# (container id, running) pairs of containers created from an image.
ContainerUsage = Callable[[str], list[tuple[str, bool]]]


@dataclass(frozen=True)
class Image:
    row: ImageRow
    config: ImageConfig
    tags: tuple[Reference, ...]        # oldest first
    digests: tuple[Reference, ...]
    last_tag_time: float

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def short_id(self) -> str:
        return self.row.id.split(":", 1)[1][:12]

    @property
    def created_unix(self) -> float:
        return parse_rfc3339(self.config.created)

    @property
    def labels(self) -> dict[str, str]:
        labels = self.config.config.get("Labels")
        return labels if isinstance(labels, dict) else {}


@dataclass(frozen=True)
class NewLayer:
    """A layer of an image being added: a blob already in the content store, a layer
    unpacked from a stream (load, import, commit) whose tar is kept as a tar-split, or
    a layer another image already has (a commit's parent layers)."""

    media_type: str
    digest: str                    # the blob's digest; for an unpacked layer, its diff ID
    size: int                      # the blob's size; for an unpacked layer, the tar's size
    unpacked: Unpacked | None = None
    tarsplit: str | None = None    # an existing layer's tar-split, when its blob is not stored

    @classmethod
    def from_blob(cls, blob: Info, media_type: str) -> "NewLayer":
        return cls(media_type, blob.digest, blob.size)

    @classmethod
    def from_unpacked(cls, unpacked: Unpacked) -> "NewLayer":
        return cls(mt.DOCKER_LAYER, unpacked.diff_id, unpacked.tar_size, unpacked)

    @classmethod
    def from_row(cls, row: LayerRow) -> "NewLayer":
        """A layer of an existing image, carried as it is stored (blob or tar-split)."""
        return cls(row.blob_media_type, row.blob_digest, row.blob_size, tarsplit=row.tarsplit)


@dataclass(frozen=True)
class Added:
    image_id: str
    moved: list[tuple[str, str]]   # (tag, id of the image it was taken from)


class ImageService:
    def __init__(self, root: str, *, containers_using: ContainerUsage | None = None,
                 events: Recorder | None = None) -> None:
        self.root = root
        self.events = events or Recorder()
        os.makedirs(root, mode=0o710, exist_ok=True)
        self.content = FileContentStore(os.path.join(root, "content"))
        self.snapshots = OverlaySnapshotter(os.path.join(root, "snapshots"))
        self.db = MetadataDB(os.path.join(root, "images.db"))
        self.containers_using: ContainerUsage = containers_using or (lambda image_id: [])
        self._pins: collections.Counter[str] = collections.Counter()  # guarded by _pin_lock
        self._pin_lock = threading.Lock()
        self._gc_lock = threading.Lock()  # one collection at a time

    def close(self) -> None:
        self.db.close()

    # -- pins -------------------------------------------------------------------

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Callable[[str], None]]:
        """Pin digests and chain IDs for the duration of the block."""
        held: list[str] = []

        def pin(key: str) -> None:
            with self._pin_lock:
                self._pins[key] += 1
            held.append(key)

        try:
            yield pin
        finally:
            with self._pin_lock:
                for key in held:
                    self._pins[key] -= 1
                    if self._pins[key] <= 0:
                        del self._pins[key]

    def pin_image(self, pin: Callable[[str], None], image: Image) -> None:
        """Pin everything an image's bytes come from: config, layers, tar-splits, blobs, manifests."""
        pin(image.id)
        for layer in image.row.layers:
            pin(layer.chain_id)
            pin(layer.blob_digest)
            if layer.tarsplit:
                pin(layer.tarsplit)
        for digest, _ in self.db.manifests_of(image.id):
            pin(digest)

    # -- resolution -------------------------------------------------------------

    def resolve(self, untrusted_name: str) -> str:
        """The image ID a name refers to: full or short ID, tag, or digest reference."""
        name = untrusted_name.strip()
        if digestlib.is_digest(name) or digestlib.is_hex(name):
            image_id = name if name.startswith("sha256:") else "sha256:" + name
            if self.db.get_image(image_id):
                return image_id
        ref: Reference | None = None
        try:
            ref = parse_docker_ref(name)
        except InvalidArgument:
            ref = None
        if ref is not None:
            found = self.db.lookup_name(str(ref))
            if found:
                return found
        prefix = name[7:] if name.startswith("sha256:") else name
        if 0 < len(prefix) <= 64 and all(c in "0123456789abcdef" for c in prefix):
            ids = self.db.find_id_prefix(prefix)
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1:
                raise InvalidArgument(f"ambiguous image reference: {untrusted_name}")  # Docker: 400
        raise NotFound(f"No such image: {ref.familiar() if ref else untrusted_name}")

    def get(self, name_or_id: str) -> Image:
        return self.load_image(self.resolve(name_or_id))

    def load_image(self, image_id: str) -> Image:
        row = self.db.get_image(image_id)
        if row is None:
            raise NotFound(f"No such image: {image_id}")
        try:
            config = parse_config(self.content.read_bytes(image_id))
        except NotFound:
            raise DataCorruption(f"image {image_id} is damaged: its config blob is missing") from None
        except InvalidArgument as e:  # recorded before a check that now refuses it
            raise DataCorruption(f"image {image_id} is damaged: {e}") from None
        tags: list[Reference] = []
        digests: list[Reference] = []
        last = 0.0
        for name, kind, updated in self.db.names_of(image_id):
            ref = parse_normalized(name)
            (tags if kind == "tag" else digests).append(ref)
            if kind == "tag":
                last = max(last, updated)
        return Image(row, config, tuple(tags), tuple(digests), last)

    def images(self) -> list[Image]:
        """Every image; one removed meanwhile is left out, a damaged one is logged and left out."""
        out = []
        for image_id in self.db.image_ids():
            try:
                out.append(self.load_image(image_id))
            except NotFound:
                continue
            except DataCorruption as e:
                log.warning("%s", e)
        return out

    # -- adding -----------------------------------------------------------------

    def add_image(self, config_bytes: bytes, layers: list[NewLayer], *, tags: list[Reference] = (),  # type: ignore[assignment]
                  digests: list[Reference] = (), manifests: list[tuple[str, str]] = (),  # type: ignore[assignment]
                  parent: str | None = None, pin: Callable[[str], None]) -> Added:
        """Unpack what is missing and record the image; blobs must already be stored and pinned.

        The config is validated against the layers: as many layers as diff IDs,
        and each layer's uncompressed content must hash to its diff ID
        (checked while unpacking). Nothing is recorded on any failure.
        """
        config = parse_config(config_bytes)
        diff_ids = config.diff_ids
        if len(diff_ids) != len(layers):
            raise InvalidArgument(
                f"image config lists {len(diff_ids)} layers (diff_ids) but the manifest has {len(layers)}")
        pin(digestlib.sha256_bytes(config_bytes))
        config_info = self.content.put_bytes(config_bytes)
        chains = digestlib.chain_ids(diff_ids)
        rows = [self._ensure_layer(layer, diff_id, chain_id, pin)
                for layer, diff_id, chain_id in zip(layers, diff_ids, chains)]
        image = ImageRow(config_info.digest, config.created, sum(r.size for r in rows), time.time(), tuple(rows))
        syncfs(self.root)  # layer files reach the disk before the record that makes them visible
        moved = self.db.add_image(image, tags=[str(t) for t in tags], digests=[str(d) for d in digests],
                                  manifests=manifests, parent=parent)
        return Added(image.id, moved)

    def _ensure_layer(self, layer: NewLayer, diff_id: str, chain_id: str, pin: Callable[[str], None]) -> LayerRow:
        """Make sure snapshot ``chain_id`` exists (unpacking what is needed); its database row."""
        pin(chain_id)
        unpacked = layer.unpacked
        if unpacked is not None and unpacked.diff_id != diff_id:
            raise DataCorruption(
                f"layer diff ID mismatch: the image config says {diff_id}, the content is {unpacked.diff_id}")
        if self.snapshots.has(chain_id):
            size = self._layer_size(chain_id)
        elif unpacked is not None and unpacked.committed_as is None:
            commit_unpacked(self.snapshots, unpacked, chain_id)
            size = unpacked.size
        elif unpacked is not None and unpacked.committed_as is not None:
            # the same diff sits at two places in the chain: unpack it again from the first
            size = copy_layer(self.content, self.snapshots, source_chain=unpacked.committed_as,
                              tarsplit=unpacked.tarsplit, diff_id=diff_id, chain_id=chain_id)
        else:
            size = unpack_blob(self.content, self.snapshots, blob_digest=layer.digest, diff_id=diff_id,
                               chain_id=chain_id)
        tarsplit = unpacked.tarsplit if unpacked is not None else layer.tarsplit
        return LayerRow(diff_id, chain_id, size, layer.digest, layer.media_type, layer.size, tarsplit)

    def _layer_size(self, chain_id: str) -> int:
        known = self.db.layer_by_chain(chain_id)
        return known.size if known is not None else self.snapshots.usage(chain_id)

    def write_layer(self, layer: LayerRow, write: Callable[[bytes], None]) -> None:
        """Write a layer's blob: from the content store, or put back together from its tar-split."""
        if layer.tarsplit is None:
            with self.content.open(layer.blob_digest) as f:
                while chunk := f.read(1 << 20):
                    write(chunk)
            return
        with self.content.open(layer.tarsplit) as split:
            digest, size = reassemble(split, self.snapshots.layer_path(layer.chain_id), write)
        if digest != layer.diff_id or size != layer.blob_size:
            raise DataCorruption(f"layer {layer.chain_id} was changed on disk: its tar no longer matches "
                                 f"its diff ID {layer.diff_id}")

    # -- names ------------------------------------------------------------------

    def tag(self, source: str, target: Reference) -> str:
        if target.tag is None:
            target = target.with_tag("latest")
        if target.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        image_id = self.resolve(source)
        self.db.set_name(str(target), image_id, "tag")
        self.event(image_id, "tag", target.familiar())
        return image_id

    def event(self, image_id: str, action: str, name: str | None = None,
              labels: dict[str, str] | None = None) -> None:
        """An image event as dockerd logs it: the image's labels, and ``name`` (the ID when not given)."""
        if labels is None:
            try:
                labels = self.load_image(image_id).labels
            except (NotFound, DataCorruption):
                labels = {}  # gone already (delete) or damaged
        self.events.emit(IMAGE, action, image_id, {**labels, "name": name or image_id})

    # -- removal ----------------------------------------------------------------

    def remove(self, name: str, *, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        """Docker's image delete: untag a reference, or delete an image by ID.

        Returns the ``[{"Untagged": ...}, {"Deleted": ...}]`` records of the API.
        """
        image_id = self.resolve(name)
        try:
            labels = self.load_image(image_id).labels
        except DataCorruption:
            labels = {}
        records = self._remove(image_id, name, force=force, prune=prune)
        self._removal_events(image_id, records, labels)
        return records

    def _removal_events(self, image_id: str, records: list[dict[str, str]], labels: dict[str, str]) -> None:
        """One untag per name taken, one delete for the image itself (not for its layers), as dockerd."""
        for record in records:
            if "Untagged" in record:
                self.event(image_id, "untag", labels=labels)
            elif record.get("Deleted") == image_id:
                self.event(image_id, "delete", labels=labels)

    def _remove(self, image_id: str, name: str, *, force: bool, prune: bool) -> list[dict[str, str]]:
        try:
            image = self.load_image(image_id)
        except DataCorruption:
            return self._remove_damaged(image_id)
        records: list[dict[str, str]] = []
        by_reference = self._names_reference(name, image)
        users = self.containers_using(image_id)
        if by_reference is not None:
            remaining = [r for r in (*image.tags, *image.digests) if str(r) != str(by_reference)]
            only_digests_remain = all(r.digest for r in remaining) and remaining
            if remaining and not only_digests_remain:
                self.db.remove_name(str(by_reference))
                return [{"Untagged": by_reference.familiar()}]
            # the last tag: the image goes with it, unless a container holds it
            if users and not force:
                cid = users[0][0]
                raise Conflict(f'conflict: unable to remove repository reference "{name}" (must force) - '
                               f"container {cid[:12]} is using its referenced image {image.short_id}")
            if users:
                self.db.remove_name(str(by_reference))
                return [{"Untagged": by_reference.familiar()}]
        else:
            running = [cid for cid, is_running in users if is_running]
            if running:
                raise Conflict(f"conflict: unable to delete {image.short_id} (cannot be forced) - "
                               f"image is being used by running container {running[0][:12]}")
            if users and not force:
                raise Conflict(f"conflict: unable to delete {image.short_id} (must be forced) - "
                               f"image is being used by stopped container {users[0][0][:12]}")
            if len(image.tags) > 1 and not force:
                raise Conflict(f"conflict: unable to delete {image.short_id} (must be forced) - "
                               "image is referenced in multiple repositories")
            if users:
                # forced, with a stopped container: untag, keep the image for the container
                for ref in (*image.tags, *image.digests):
                    self.db.remove_name(str(ref))
                    records.append({"Untagged": ref.familiar()})
                return records
        for ref in (*image.tags, *image.digests):
            records.append({"Untagged": ref.familiar()})
        self.db.remove_image(image_id)  # names go with it (ON DELETE CASCADE)
        records.append({"Deleted": image_id})
        if prune:
            records.extend({"Deleted": chain} for chain in self.collect()[1])
        return records

    def _remove_damaged(self, image_id: str) -> list[dict[str, str]]:
        """A damaged image can always be removed: its rows go, and whatever it left is collected."""
        records = [{"Untagged": parse_normalized(name).familiar()} for name, _, _ in self.db.names_of(image_id)]
        self.db.remove_image(image_id)
        records.append({"Deleted": image_id})
        self.collect()
        return records

    def _names_reference(self, name: str, image: Image) -> Reference | None:
        """The reference ``name`` spells, if it is one of the image's names (not an ID)."""
        try:
            ref = parse_docker_ref(name)
        except InvalidArgument:
            return None
        for candidate in (*image.tags, *image.digests):
            if str(candidate) == str(ref):
                return candidate
        return None

    def prune(self, *, dangling_only: bool = True, until: float | None = None,
              label_filters: list[str] = ()) -> tuple[list[dict[str, str]], int]:  # type: ignore[assignment]
        deleted: list[dict[str, str]] = []
        before = self.disk_usage()
        for image in self.images():
            if dangling_only and image.tags:
                continue
            if self.containers_using(image.id):
                continue
            if until is not None and image.created_unix >= until:
                continue
            if not labels_match(image.labels, label_filters):
                continue
            gone = [{"Untagged": ref.familiar()} for ref in (*image.tags, *image.digests)] + [{"Deleted": image.id}]
            self.db.remove_image(image.id)
            self._removal_events(image.id, gone, image.labels)
            deleted.extend(gone)
        if deleted:
            deleted.extend({"Deleted": chain} for chain in self.collect()[1])
        return deleted, max(0, before - self.disk_usage())

    # -- garbage collection -----------------------------------------------------

    def collect(self) -> tuple[list[str], list[str]]:
        """Delete blobs and layers that no image references and nothing pins.

        Returns (blob digests, chain IDs) removed.
        """
        with self._gc_lock:
            # Mark and unlink under the pin lock: an operation pins what it writes before
            # writing it and unpins only after its database commit, so with both read
            # together, everything in use is either referenced or pinned.
            with self._pin_lock:
                keep = self.db.referenced_blobs() | set(self._pins)
                keep_chains = self.db.referenced_chains() | set(self._pins)
                blobs = [i.digest for i in self.content.walk() if i.digest not in keep]
                chains = [c for c in self.snapshots.layers() if c not in keep_chains]
                for digest in blobs:
                    self.content.delete(digest)
                doomed = [d for d in (self.snapshots.detach_layer(c) for c in chains) if d is not None]
            for path in doomed:  # the slow part, outside the lock
                self.snapshots.abort(path)
        return blobs, chains

    def sweep(self) -> None:
        """At daemon start: drop unfinished writes and whatever a crash left unreferenced."""
        self.content.sweep()
        self.snapshots.sweep()
        self.collect()

    def disk_usage(self) -> int:
        """Bytes of unpacked layer content, counting each shared layer once."""
        sizes: dict[str, int] = {}
        for row in self.db.images():
            for layer in row.layers:
                sizes[layer.chain_id] = layer.size
        return sum(sizes.values())


def labels_match(labels: dict[str, str], filters: list[str]) -> bool:
    for f in filters:
        negate = f.startswith("!")  # label!=... arrives as "!" prefix from the API layer
        key, sep, value = f.lstrip("!").partition("=")
        hit = key in labels and (not sep or labels[key] == value)
        if hit == negate:
            return False
    return True
