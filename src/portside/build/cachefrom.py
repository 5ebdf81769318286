"""``--cache-from``: build steps answered by images that the same steps made elsewhere (moby's image/cache rules).

A cache-from image (pulled or loaded, so without any build cache of ours)
carries only its history and layers. A step matches it when the image so far
(the step's parent) is a prefix of it -- the same history entries, the same
layers -- and its next history entry was written by the same instruction
(``created_by``). The step's result is then, without running anything, the
parent plus the layer that entry made (none for an ``empty_layer`` entry),
with the config this step would have given and that history entry: the image
the step would have committed (platform from the parent, as every step),
since our builds are reproducible. When the
entry is the source's last one, the result is the source itself, as moby.
After one restore only that source is consulted again (moby: a build does
not jump between sources).

A source answers a step only when its history from that step on accounts for
its layers from there on (one layer per entry without ``empty_layer``): else
the layer the entry made cannot be told, and it does not match. What lies
before (a base whose history says nothing of its layers, as ko's or jib's
images) does not matter, as in moby.
The restored layer is the source's own snapshot, pinned while the image is
recorded; a source whose layer went missing meanwhile is passed over.

With sources given, the classic builder trusts a local cache hit only when
that image is part of a source (the rest is rebuilt); a source that is not
in the store is skipped silently, as dockerd does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from portside.errors import PortsideError
from portside.images.commit import Commit, child_config
from portside.images.service import Image, ImageService, NewLayer
from portside.oci.image import canonical_json

log = logging.getLogger(__name__)

_GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # a history entry without a date, as Go's encoder writes it


@dataclass(frozen=True)
class _Chain:
    """An image's history, beside its layers."""

    image: Image
    entries: tuple[dict[str, Any], ...]        # as stored: a restored image repeats the entry byte for byte
    keys: tuple[tuple[Any, ...], ...]          # what moby compares of an entry
    diff_ids: tuple[str, ...]

    @property
    def length(self) -> int:
        return len(self.entries)

    def starts_with(self, prefix: "_Chain | None") -> bool:
        """Whether ``prefix`` is this chain's beginning and leaves at least one entry after it."""
        if prefix is None:
            return self.length > 0
        n, layers = prefix.length, len(prefix.diff_ids)
        return (n < self.length and self.keys[:n] == prefix.keys and self.diff_ids[:layers] == prefix.diff_ids)

    def lines_up_after(self, at: int, layers: int) -> bool:
        """Whether the entries from ``at`` on account for the layers from ``layers`` on, one per entry
        without ``empty_layer``: then the layer entry ``at`` made can be told. What comes before (a base
        image whose history says nothing of its layers, as ko's or jib's) does not matter, as in moby."""
        return sum(1 for key in self.keys[at:] if not key[4]) == len(self.diff_ids) - layers


def _chain(image: Image) -> _Chain | None:
    raw = image.config.doc.get("history")
    entries = image.config.history
    if raw is not None and (not isinstance(raw, list) or len(raw) != len(entries)):
        return None  # an entry that is not an object: what it says cannot be trusted
    keys = tuple((str(e.get("created") or ""), str(e.get("author") or ""), str(e.get("created_by") or ""),
                  str(e.get("comment") or ""), bool(e.get("empty_layer"))) for e in entries)
    return _Chain(image, tuple(entries), keys, tuple(image.config.diff_ids))


class CacheFrom:
    """The cache-from images of one build, looked up once when the build starts."""

    def __init__(self, images: ImageService, refs: Iterable[str]) -> None:
        self.images = images
        self.sources: list[_Chain] = []
        for ref in refs:
            try:
                image = images.get(ref)
            except PortsideError as e:  # dockerd too only logs it
                log.warning("Could not look up %s for cache resolution, skipping: %s", ref, e.message)
                continue
            chain = _chain(image)
            if chain is not None and chain.length:
                self.sources.append(chain)

    def covers(self, image_id: str) -> bool:
        """Whether a local cache hit lies inside a source (then the classic builder uses it)."""
        try:
            chain = _chain(self.images.load_image(image_id))
        except PortsideError:
            return False
        return chain is not None and any(source.starts_with(chain) for source in self.sources)

    def lookup(self, parent: Image | None, created_by: str, config: dict[str, Any]) -> str | None:
        """The image a step makes on ``parent`` from a source, or None; ``config`` is the step's result config."""
        base = _chain(parent) if parent is not None else None
        if parent is not None and base is None:
            return None
        at = base.length if base is not None else 0
        for source in self.sources:
            if not source.starts_with(base) or source.keys[at][2] != created_by:
                continue
            if at == source.length - 1:
                return source.image.id
            image_id = self._restore(parent, base, source, at, config)
            if image_id is None:
                continue
            self.sources = [source]
            return image_id
        return None

    def _restore(self, parent: Image | None, base: _Chain | None, source: _Chain, at: int,
                 config: dict[str, Any]) -> str | None:
        entry = source.entries[at]
        layers_before = len(base.diff_ids) if base is not None else 0
        if not source.lines_up_after(at, layers_before):
            return None  # which layer the entry made cannot be told: never guess one
        layer = None if entry.get("empty_layer") else layers_before
        images = self.images
        with images.pinned() as pin:
            images.pin_image(pin, source.image)
            if parent is not None:
                images.pin_image(pin, parent)
            rows = list(parent.row.layers) if parent is not None else []
            if layer is not None:
                rows.append(source.image.row.layers[layer])
            if not all(images.snapshots.has(row.chain_id) for row in rows):
                return None
            commit = Commit(config=config, created_by=str(entry.get("created_by") or ""))
            created = str(entry.get("created") or _GO_ZERO_TIME)
            doc = child_config(parent, commit, created=created,
                               diff_id=source.diff_ids[layer] if layer is not None else None)
            doc["history"][-1] = dict(entry)
            added = images.add_image(canonical_json(doc), [NewLayer.from_row(row) for row in rows],
                                     parent=parent.id if parent is not None else None, pin=pin)
        return added.image_id
