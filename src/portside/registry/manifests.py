"""Manifest validation: what a pushed manifest is and which blobs and manifests it names.

A manifest is checked before anything is stored: JSON object, a media type
we know (from the body's ``mediaType`` or the request's Content-Type, which
must agree), descriptors with valid digests. The caller checks that every
referenced blob or child manifest exists in the repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from portside.registry.codes import RegistryError
from portside.registry.names import is_sha256

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
KNOWN_TYPES = MANIFEST_TYPES | INDEX_TYPES
MAX_MANIFEST = 4 << 20  # distribution's default limit for a manifest body


@dataclass
class Parsed:
    media_type: str
    blobs: list[str] = field(default_factory=list)       # config and layers (foreign layers excluded)
    manifests: list[str] = field(default_factory=list)   # an index's children
    subject: str | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None


def _invalid(detail: str) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", detail=detail)


def _descriptor(untrusted: Any, where: str) -> dict[str, Any]:
    if not isinstance(untrusted, dict):
        raise _invalid(f"{where}: not a descriptor")
    digest = untrusted.get("digest")
    if not isinstance(digest, str) or not is_sha256(digest):
        raise _invalid(f"{where}: invalid digest {digest!r}")
    size = untrusted.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}: invalid size")
    if not isinstance(untrusted.get("mediaType", ""), str):
        raise _invalid(f"{where}: invalid mediaType")
    return untrusted


def parse(untrusted_body: bytes, content_type: str | None) -> Parsed:
    try:
        doc = json.loads(untrusted_body)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise _invalid("manifest is not a JSON object")
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise _invalid("mediaType is not a string")
    header_type = (content_type or "").split(";")[0].strip() or None
    if body_type and header_type and body_type != header_type and header_type in KNOWN_TYPES:
        raise _invalid(f"mediaType {body_type} does not match Content-Type {header_type}")
    media_type = body_type or header_type
    if media_type not in KNOWN_TYPES:
        if doc.get("schemaVersion") == 1:
            raise _invalid("schema 1 manifests are not accepted")
        # An OCI manifest may leave mediaType out; tell it by its shape.
        if "manifests" in doc:
            media_type = OCI_INDEX
        elif "config" in doc and "layers" in doc:
            media_type = OCI_MANIFEST
        else:
            raise _invalid(f"unsupported manifest media type {media_type!r}")
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    parsed = Parsed(media_type)
    if media_type in MANIFEST_TYPES:
        config = _descriptor(doc.get("config"), "config")
        parsed.blobs.append(config["digest"])
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise _invalid("layers is not a list")
        for i, layer in enumerate(layers):
            layer = _descriptor(layer, f"layers[{i}]")
            if layer.get("urls"):
                continue  # a foreign layer lives elsewhere
            parsed.blobs.append(layer["digest"])
        parsed.artifact_type = doc.get("artifactType") or config.get("mediaType")
    else:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise _invalid("manifests is not a list")
        for i, child in enumerate(children):
            parsed.manifests.append(_descriptor(child, f"manifests[{i}]")["digest"])
        parsed.artifact_type = doc.get("artifactType")
    if not isinstance(parsed.artifact_type, str):
        parsed.artifact_type = None
    if "subject" in doc:
        parsed.subject = _descriptor(doc["subject"], "subject")["digest"]
    annotations = doc.get("annotations")
    if isinstance(annotations, dict):
        parsed.annotations = {str(k): str(v) for k, v in annotations.items()}
    return parsed


def referrer_descriptor(parsed: Parsed, digest: str, size: int) -> dict[str, Any]:
    """The descriptor a referrers index lists for this manifest (spec: mediaType, size, digest, artifactType, annotations)."""
    d: dict[str, Any] = {"mediaType": parsed.media_type, "digest": digest, "size": size}
    if parsed.artifact_type:
        d["artifactType"] = parsed.artifact_type
    if parsed.annotations:
        d["annotations"] = parsed.annotations
    return d
