"""`docker load`: image tarballs in every form Docker, podman and skopeo write.

Accepted forms:

* legacy ``docker save``: ``manifest.json`` + ``repositories`` + one directory
  per layer (``<id>/layer.tar``, ``json``, ``VERSION``); duplicate layers may
  be symlinks to another layer's file;
* Docker Engine 25+: an OCI image layout (``oci-layout``, ``index.json``,
  ``blobs/sha256/...``) that also carries ``manifest.json``;
* the containerd form: compressed layers, ``index.json``, maybe no
  ``repositories``;
* a plain OCI image layout, ``podman save --format oci-archive`` and
  ``skopeo copy ... oci-archive:``.

The archive is read once, as a stream: small members (JSON documents) are
kept in memory, large ones go straight into the content store while being
hashed. Then the documents are interpreted — ``manifest.json`` when present,
else ``index.json`` — and every image goes through ``ImageService.add_image``,
which unpacks and verifies its layers.
"""

from __future__ import annotations

import bz2
import io
import lzma
import platform
import posixpath
import tarfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable

from portside.archive.streams import RawSource
from portside.archive.compression import Compression, decompressing_reader, detect
from portside.archive.tarstream import BadHeader, ForwardReader, open_layer_tar
from portside.content.store import FileContentStore, Info
from portside.errors import ArchiveError, DataCorruption, InvalidArgument, PortsideError
from portside.images.service import Added, ImageService, NewLayer
from portside.oci import digest as digestlib
from portside.oci import mediatypes as mt
from portside.oci.image import Descriptor, load_json, parse_index, parse_manifest
from portside.oci.reference import Reference, parse_docker_ref
from portside.readers import Reader
from portside.unpack import Unpacked, release, unpack_stream

_IN_MEMORY = 1 << 20          # members up to this size are kept in memory (documents) ...
_IN_MEMORY_TOTAL = 64 << 20   # ... until they add up to this; later ones go to the content store
_MAX_DOCUMENT = 16 << 20      # JSON documents larger than this are refused
_MAX_LINK_DEPTH = 16


@dataclass
class _Archive:
    """What the stream held: member name → bytes, blob, or link target."""

    data: dict[str, bytes] = field(default_factory=dict)
    data_bytes: int = 0
    blobs: dict[str, Info] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    # large uncompressed tars, unpacked as they streamed by, in case they are layers
    unpacked: dict[str, Unpacked] = field(default_factory=dict)
    # ... and the ones that would not unpack: an error only if a manifest names them as layers
    refused: dict[str, ArchiveError] = field(default_factory=dict)

    def resolve(self, name: str) -> str:
        for _ in range(_MAX_LINK_DEPTH):
            if name not in self.links:
                return name
            name = self.links[name]
        raise ArchiveError(f"too many levels of links at {name!r}")

    def has(self, name: str) -> bool:
        name = self.resolve(name)
        return name in self.data or name in self.blobs or name in self.unpacked or name in self.refused


@dataclass(frozen=True)
class _ImageToAdd:
    config: bytes
    layers: list[NewLayer]
    tags: list[Reference]
    manifests: list[tuple[str, str]]   # (digest, media type) of manifest blobs to keep


def load(service: ImageService, untrusted_stream: Reader, *, progress: Callable[[str], None]) -> list[str]:
    """Load every image in the tarball; returns the names (or IDs) loaded.

    ``progress`` receives Docker's lines ("Loaded image: busybox:latest").
    """
    loaded: list[str] = []
    archive = _Archive()
    with service.pinned() as pin:
        try:
            _read_stream(service, untrusted_stream, archive, pin)
            images = _interpret(archive, service.content, pin)
            if not images:
                raise InvalidArgument("no images found in the archive (neither manifest.json nor index.json)")
            for image in images:
                added = service.add_image(image.config, image.layers, tags=image.tags, manifests=image.manifests,
                                          pin=pin)
                for tag, old_id in added.moved:
                    progress(_renamed_message(tag, old_id))
                service.event(added.image_id, "load")
                loaded.extend(_report(added, image, progress))
        finally:
            for unpacked in archive.unpacked.values():
                release(service.snapshots, unpacked)
    return loaded


def _renamed_message(tag: str, old_id: str) -> str:
    familiar = parse_docker_ref(tag).familiar()
    return f"The image {familiar} already exists, renaming the old one with ID {old_id} to empty string"


def _report(added: Added, image: _ImageToAdd, progress: Callable[[str], None]) -> list[str]:
    if not image.tags:
        progress(f"Loaded image ID: {added.image_id}")
        return [added.image_id]
    names = [t.familiar() for t in image.tags]
    for n in names:
        progress(f"Loaded image: {n}")
    return names


# -- reading the stream ---------------------------------------------------------


def _member_name(untrusted: str) -> str:
    name = posixpath.normpath("/" + untrusted.replace("\\", "/")).lstrip("/")
    if "\x00" in untrusted or name in ("", "."):
        raise ArchiveError(f"invalid archive entry {untrusted!r}")
    return name


def _read_stream(service: ImageService, untrusted_stream: Reader, archive: _Archive,
                 pin: Callable[[str], None]) -> None:
    reader = ForwardReader(_decompressed(untrusted_stream))
    last = "(start of archive)"
    try:
        tar = open_layer_tar(reader)
        while (member := tar.next()) is not None:
            if member.isdir():
                continue  # directories ("./" included) carry nothing a loader needs
            name = _member_name(member.name)
            last = name
            if member.issym() or member.islnk():
                archive.links[name] = _link_target(name, member)
            elif member.isfile():
                reader.seek(member.offset_data)
                _read_member(service, reader, member.size, name, archive, pin)
    except (BadHeader, tarfile.TarError, EOFError, io.UnsupportedOperation) as e:
        raise ArchiveError(f"invalid archive after entry {last!r}: {e}") from None


def _decompressed(untrusted_stream: Reader) -> Reader:
    """docker load takes the archive plain or compressed (gzip, bzip2, xz, zstd)."""
    head = untrusted_stream.read(6)
    replay = RawSource(untrusted_stream, head)
    if head.startswith(b"BZh"):
        return _Decoding(bz2.BZ2File(io.BufferedReader(replay, 1 << 20)), "bzip2")
    if head.startswith(b"\xfd7zXZ\x00"):
        return _Decoding(lzma.LZMAFile(io.BufferedReader(replay, 1 << 20)), "xz")
    return decompressing_reader(replay)[1]


class _Decoding:
    """bz2 and lzma report bad data as OSError/LZMAError/EOFError: name it as the archive's fault."""

    def __init__(self, src: Reader, kind: str) -> None:
        self._src = src
        self._kind = kind

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._src.read(size)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise ArchiveError(f"invalid {self._kind} archive: {e}") from None


def _link_target(name: str, member: tarfile.TarInfo) -> str:
    target = member.linkname
    if member.issym():
        if target.startswith("/"):
            raise ArchiveError(f"archive entry {name!r} links outside the archive")
        target = posixpath.join(posixpath.dirname(name), target)
    target = posixpath.normpath(target)
    if target.startswith("..") or target.startswith("/"):
        raise ArchiveError(f"archive entry {name!r} links outside the archive")
    return target


def _looks_like_tar(head: bytes) -> bool:
    return head[257:262] == b"ustar"


def _read_member(service: ImageService, reader: ForwardReader, size: int, name: str,
                 archive: _Archive, pin: Callable[[str], None]) -> None:
    """Keep a small member in memory; unpack a large uncompressed tar as it streams by (it is
    most likely a layer, and this way its bytes are written once); store anything else as a blob."""
    expected = _digest_from_blob_path(name)
    if size <= _IN_MEMORY and archive.data_bytes + size <= _IN_MEMORY_TOTAL:
        data = reader.read(size)
        if len(data) != size:
            raise ArchiveError(f"archive entry {name!r} is truncated")
        if expected and digestlib.sha256_bytes(data) != expected:
            raise DataCorruption(f"archive entry {name!r} does not match its digest")
        archive.data_bytes += len(data) - len(archive.data.get(name, b""))
        archive.data[name] = data
        return
    if _looks_like_tar(reader.peek(512)):
        _unpack_member(service, reader, size, name, expected, archive, pin)
        return
    with service.content.writer() as w:
        if w.copy_from(reader, limit=size) != size:
            raise ArchiveError(f"archive entry {name!r} is truncated")
        if expected and w.digest != expected:
            raise DataCorruption(f"archive entry {name!r} does not match its digest ({w.digest})")
        pin(w.digest)
        archive.blobs[name] = w.commit()


def _unpack_member(service: ImageService, reader: ForwardReader, size: int, name: str, expected: str | None,
                   archive: _Archive, pin: Callable[[str], None]) -> None:
    try:
        unpacked = unpack_stream(service.content, service.snapshots, reader, pin, limit=size, compressed=False)
    except ArchiveError as e:
        archive.refused[name] = ArchiveError(f"layer {name!r}: {e}")
        return
    if unpacked.tar_size != size:
        release(service.snapshots, unpacked)
        raise ArchiveError(f"archive entry {name!r} is truncated")
    if expected and unpacked.diff_id != expected:
        release(service.snapshots, unpacked)
        raise DataCorruption(f"archive entry {name!r} does not match its digest ({unpacked.diff_id})")
    previous = archive.unpacked.get(name)
    if previous is not None:  # a name given twice: the last one wins, as when extracting
        release(service.snapshots, previous)
    archive.unpacked[name] = unpacked


def _digest_from_blob_path(name: str) -> str | None:
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256":
        if not digestlib.is_hex(parts[2]):
            raise ArchiveError(f"archive entry {name!r} is not named by a sha256 digest")
        return "sha256:" + parts[2]
    return None


# -- interpreting the documents ---------------------------------------------------


def _document(archive: _Archive, content: FileContentStore, name: str, what: str) -> bytes:
    resolved = archive.resolve(name)
    if resolved in archive.data:
        return archive.data[resolved]
    if resolved in archive.blobs:
        info = archive.blobs[resolved]
        if info.size > _MAX_DOCUMENT:
            raise InvalidArgument(f"{what} {name!r} is too large")
        return content.read_bytes(info.digest, max_size=_MAX_DOCUMENT)
    raise InvalidArgument(f"{what} {name!r} is missing from the archive")


def _blob(archive: _Archive, content: FileContentStore, name: str, pin: Callable[[str], None]) -> Info:
    resolved = archive.resolve(name)
    if resolved in archive.blobs:
        return archive.blobs[resolved]
    if resolved in archive.data:
        data = archive.data[resolved]
        pin(digestlib.sha256_bytes(data))  # before it is visible, so no collection can take it
        info = content.put_bytes(data)
        archive.blobs[resolved] = info
        return info
    raise InvalidArgument(f"{name!r} is missing from the archive")


def _layer(archive: _Archive, content: FileContentStore, name: str, pin: Callable[[str], None]) -> NewLayer:
    resolved = archive.resolve(name)
    if resolved in archive.refused:
        raise archive.refused[resolved]
    if resolved in archive.unpacked:
        return NewLayer.from_unpacked(archive.unpacked[resolved])
    if not archive.has(resolved):
        raise InvalidArgument(f"layer {name!r} is missing from the archive")
    info = _blob(archive, content, resolved, pin)
    return NewLayer.from_blob(info, _sniff_media_type(content, info))


def _sniff_media_type(content: FileContentStore, info: Info) -> str:
    with content.open(info.digest) as f:
        kind = detect(f.read(8))
    return {Compression.GZIP: mt.DOCKER_LAYER_GZIP, Compression.ZSTD: mt.OCI_LAYER_ZSTD}.get(kind, mt.DOCKER_LAYER)


def _interpret(archive: _Archive, content: FileContentStore, pin: Callable[[str], None]) -> list[_ImageToAdd]:
    if archive.has("manifest.json"):
        return _from_docker_manifest(archive, content, pin)
    if archive.has("index.json"):
        return _from_oci_index(archive, content, pin)
    return []


def _from_docker_manifest(archive: _Archive, content: FileContentStore, pin: Callable[[str], None]) -> list[_ImageToAdd]:
    doc = load_json(_document(archive, content, "manifest.json", "manifest"), "manifest.json")
    if not isinstance(doc, list):
        raise InvalidArgument("invalid manifest.json: not a list")
    images: list[_ImageToAdd] = []
    for entry in doc:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list):
            raise InvalidArgument("invalid manifest.json: each entry needs Config and Layers")
        config = _document(archive, content, _member_name(entry["Config"]), "image config")
        layers = []
        for layer_name in entry["Layers"]:
            if not isinstance(layer_name, str):
                raise InvalidArgument("invalid manifest.json: layer names must be strings")
            layers.append(_layer(archive, content, _member_name(layer_name), pin))
        repo_tags = entry.get("RepoTags") or []
        if not isinstance(repo_tags, list):
            raise InvalidArgument("invalid manifest.json: RepoTags must be a list of strings")
        tags = [_parse_tag(t) for t in repo_tags]
        images.append(_ImageToAdd(config, layers, tags, []))
    return images


def _parse_tag(untrusted: Any) -> Reference:
    if not isinstance(untrusted, str):
        raise InvalidArgument(f"invalid tag in archive: {untrusted!r}")
    ref = parse_docker_ref(untrusted)
    if ref.digest:
        raise InvalidArgument(f"invalid tag in archive: {untrusted!r} has a digest")
    return ref


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digestlib.hex_of(digest)


def _from_oci_index(archive: _Archive, content: FileContentStore, pin: Callable[[str], None]) -> list[_ImageToAdd]:
    index = parse_index(_document(archive, content, "index.json", "index"))
    images: list[_ImageToAdd] = []
    for desc in index.manifests:
        manifest_desc = _pick_manifest(archive, content, desc)
        if manifest_desc is None:
            continue
        raw_manifest = _verified_document(archive, content, manifest_desc, "manifest")
        manifest = parse_manifest(raw_manifest)
        config = _verified_document(archive, content, manifest.config, "image config")
        layers = []
        for layer in manifest.layers:
            new = _layer(archive, content, _blob_name(layer.digest), pin)
            if new.digest != layer.digest or new.size != layer.size:
                raise DataCorruption(f"layer {layer.digest}: blob does not match its descriptor")
            layers.append(new if new.unpacked else NewLayer.from_blob(Info(new.digest, new.size), layer.media_type))
        manifest_info = _blob(archive, content, _blob_name(manifest_desc.digest), pin)
        tags = _names_from_annotations(desc.annotations)
        images.append(_ImageToAdd(config, layers, tags, [(manifest_info.digest, manifest.media_type)]))
    return images


def _verified_document(archive: _Archive, content: FileContentStore, desc: Descriptor, what: str) -> bytes:
    data = _document(archive, content, _blob_name(desc.digest), what)
    if digestlib.sha256_bytes(data) != desc.digest or len(data) != desc.size:
        raise DataCorruption(f"{what} {desc.digest} does not match its descriptor")
    return data


def _pick_manifest(archive: _Archive, content: FileContentStore, desc: Descriptor, depth: int = 0) -> Descriptor | None:
    """Follow nested indexes down to the manifest for this host's platform."""
    if desc.media_type in mt.MANIFESTS:
        return desc
    if desc.media_type not in mt.INDEXES or depth > 4:
        return None
    index = parse_index(_verified_document(archive, content, desc, "index"))
    want_arch = host_architecture()
    candidates = [m for m in index.manifests if m.media_type in mt.MANIFESTS | mt.INDEXES]
    for m in candidates:
        if m.platform is None or (m.platform.os == "linux" and m.platform.architecture == want_arch):
            if archive.has(_blob_name(m.digest)):
                found = _pick_manifest(archive, content, m, depth + 1)
                if found is not None:
                    return Descriptor(found.media_type, found.digest, found.size, desc.annotations, found.platform)
    return None


def _names_from_annotations(annotations: dict[str, str]) -> list[Reference]:
    full = annotations.get(mt.ANNOTATION_CONTAINERD_NAME)
    if full:
        return [_parse_tag(full)]
    ref_name = annotations.get(mt.ANNOTATION_REF_NAME, "")
    # A bare tag ("latest") names no repository; only a full reference is a name.
    if ref_name and ("/" in ref_name or ":" in ref_name):
        try:
            return [_parse_tag(ref_name)]
        except PortsideError:
            return []
    return []


def host_architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)

