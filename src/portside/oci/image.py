"""Descriptors, manifests, indexes and image configs: parsed and validated.

Everything here is pure: bytes in, typed records out. Values read from an
untrusted document are checked before they are used as digests or paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from portside.errors import InvalidArgument
from portside.oci import digest as digestlib
from portside.oci import mediatypes as mt
from portside.timefmt import validate_created


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    platform: Platform | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            p: dict[str, str] = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                p["variant"] = self.platform.variant
            out["platform"] = p
        return out

    @classmethod
    def from_json(cls, untrusted: Any, *, what: str = "descriptor") -> "Descriptor":
        if not isinstance(untrusted, dict):
            raise InvalidArgument(f"invalid {what}: not an object")
        digest = digestlib.validate(untrusted.get("digest", ""))
        size = untrusted.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidArgument(f"invalid {what} {digest}: bad size {size!r}")
        media_type = untrusted.get("mediaType", "")
        if not isinstance(media_type, str):
            raise InvalidArgument(f"invalid {what} {digest}: bad mediaType")
        ann = untrusted.get("annotations") or {}
        if not isinstance(ann, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in ann.items()):
            raise InvalidArgument(f"invalid {what} {digest}: bad annotations")
        plat = untrusted.get("platform")
        platform = None
        if isinstance(plat, dict):
            platform = Platform(str(plat.get("os", "")), str(plat.get("architecture", "")), str(plat.get("variant", "") or ""))
        return cls(media_type, digest, size, ann, platform)


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    def to_json_bytes(self) -> bytes:
        doc = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


def load_json(untrusted: bytes, what: str) -> Any:
    try:
        return json.loads(untrusted)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"invalid {what}: {e}") from None
    except RecursionError:
        # Deep nesting exhausts Python's recursion limit (near 1,000 levels; Go's decoder allows
        # 10,000): refused with the words Go uses past its own limit.
        raise InvalidArgument(f"invalid {what}: exceeded max depth") from None


def parse_manifest(untrusted: bytes) -> Manifest:
    doc = load_json(untrusted, "manifest")
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise InvalidArgument("invalid manifest: schemaVersion must be 2")
    media_type = doc.get("mediaType") or mt.OCI_MANIFEST
    if media_type not in mt.MANIFESTS:
        raise InvalidArgument(f"invalid manifest: unsupported mediaType {media_type!r}")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InvalidArgument("invalid manifest: layers must be a list")
    parsed = tuple(Descriptor.from_json(layer, what="layer descriptor") for layer in layers)
    for layer in parsed:
        if layer.media_type not in mt.LAYERS:
            raise InvalidArgument(f"invalid manifest: unsupported layer mediaType {layer.media_type!r}")
    return Manifest(media_type, Descriptor.from_json(doc.get("config"), what="config descriptor"), parsed)


def parse_index(untrusted: bytes) -> Index:
    doc = load_json(untrusted, "index")
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise InvalidArgument("invalid index: schemaVersion must be 2")
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise InvalidArgument("invalid index: manifests must be a list")
    return Index(doc.get("mediaType") or mt.OCI_INDEX,
                 tuple(Descriptor.from_json(m, what="manifest descriptor") for m in manifests))


@dataclass(frozen=True)
class ImageConfig:
    """An image config document; ``raw`` is kept byte-exact because its digest is the image ID."""

    raw: bytes
    doc: dict[str, Any]

    @property
    def diff_ids(self) -> list[str]:
        return list(self.doc["rootfs"]["diff_ids"])

    @property
    def config(self) -> dict[str, Any]:
        c = self.doc.get("config")
        return c if isinstance(c, dict) else {}

    @property
    def created(self) -> str:
        return str(self.doc.get("created") or "")

    @property
    def history(self) -> list[dict[str, Any]]:
        h = self.doc.get("history")
        return [x for x in h if isinstance(x, dict)] if isinstance(h, list) else []


def parse_config(untrusted: bytes) -> ImageConfig:
    doc = load_json(untrusted, "image config")
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid image config: not an object")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" or not isinstance(rootfs.get("diff_ids"), list):
        raise InvalidArgument("invalid image config: rootfs must be {type: layers, diff_ids: [...]}")
    for d in rootfs["diff_ids"]:
        digestlib.validate(d)
    if "config" in doc and doc["config"] is not None and not isinstance(doc["config"], dict):
        raise InvalidArgument("invalid image config: config must be an object")
    created = doc.get("created")
    if created is not None:
        # Docker decodes it into a time.Time: a config whose date Go cannot parse does not load.
        if not isinstance(created, str):
            raise InvalidArgument("invalid image config: created must be a string")
        try:
            validate_created(created)
        except InvalidArgument as e:
            raise InvalidArgument(f"invalid image config: {e}") from None
    return ImageConfig(untrusted, doc)


def canonical_json(doc: Any) -> bytes:
    """JSON as Go's encoding/json writes it for our own documents (compact, <>& escaped)."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()
