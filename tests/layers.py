"""Building image tarballs inside tests: layers, configs, docker-save and OCI layouts."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes | None], *, symlinks: dict[str, str] | None = None) -> bytes:
    """An uncompressed layer: path → content (None = directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def config_for(layers: list[bytes], *, cmd: list[str] | None = None, created: str = "2024-01-02T03:04:05Z",
               labels: dict[str, str] | None = None) -> bytes:
    doc = {
        "architecture": "amd64", "os": "linux", "created": created,
        "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/bin"], **({"Labels": labels} if labels else {})},
        "rootfs": {"type": "layers", "diff_ids": [sha(_plain(layer)) for layer in layers]},
        "history": [{"created": created, "created_by": f"layer {i}"} for i in range(len(layers))],
    }
    return json.dumps(doc).encode()


def _plain(layer: bytes) -> bytes:
    return gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tf.addfile(info, io.BytesIO(data))


def _link(tf: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    tf.addfile(info)


@dataclass
class Image:
    config: bytes
    layers: list[bytes]
    tags: list[str]

    @property
    def id(self) -> str:
        return sha(self.config)


def docker_save_legacy(images: list[Image], *, duplicate_as_symlink: bool = True) -> bytes:
    """The pre-25 `docker save` form: one directory per layer, manifest.json, repositories."""
    buf = io.BytesIO()
    manifest = []
    repositories: dict[str, dict[str, str]] = {}
    seen: dict[str, str] = {}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for image in images:
            layer_paths = []
            for i, layer in enumerate(image.layers):
                layer_id = hashlib.sha256(image.id.encode() + bytes([i])).hexdigest()
                path = f"{layer_id}/layer.tar"
                _add(tf, f"{layer_id}/VERSION", b"1.0")
                _add(tf, f"{layer_id}/json", json.dumps({"id": layer_id}).encode())
                if sha(layer) in seen and duplicate_as_symlink:
                    _link(tf, path, f"../{seen[sha(layer)]}")
                else:
                    _add(tf, path, layer)
                    seen[sha(layer)] = path
                layer_paths.append(path)
            config_name = image.id.split(":")[1] + ".json"
            _add(tf, config_name, image.config)
            manifest.append({"Config": config_name, "RepoTags": image.tags or None, "Layers": layer_paths})
            for tag in image.tags:
                repo, _, t = tag.rpartition(":")
                repositories.setdefault(repo, {})[t] = layer_paths[-1].split("/")[0]
        _add(tf, "manifest.json", json.dumps(manifest).encode())
        _add(tf, "repositories", json.dumps(repositories).encode())
    return buf.getvalue()


def oci_layout(images: list[Image], *, layer_media_type: str = "application/vnd.oci.image.layer.v1.tar",
               name_annotation: str = "io.containerd.image.name", docker_manifest: bool = False) -> bytes:
    """A plain OCI image layout tar (optionally with Docker's manifest.json, as Engine 25+ writes)."""
    buf = io.BytesIO()
    index = []
    docker = []
    blobs: dict[str, bytes] = {}
    for image in images:
        for layer in image.layers:
            blobs[sha(layer)] = layer
        blobs[image.id] = image.config
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": image.id,
                       "size": len(image.config)},
            "layers": [{"mediaType": layer_media_type, "digest": sha(layer), "size": len(layer)}
                       for layer in image.layers],
        }).encode()
        blobs[sha(manifest)] = manifest
        for tag in image.tags or [None]:
            entry: dict[str, object] = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                        "digest": sha(manifest), "size": len(manifest)}
            if tag:
                entry["annotations"] = {name_annotation: tag}
            index.append(entry)
        docker.append({"Config": "blobs/sha256/" + image.id[7:], "RepoTags": image.tags or None,
                       "Layers": ["blobs/sha256/" + sha(layer)[7:] for layer in image.layers]})
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        _add(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        for digest, data in blobs.items():
            _add(tf, "blobs/sha256/" + digest[7:], data)
        _add(tf, "index.json", json.dumps({"schemaVersion": 2, "manifests": index}).encode())
        if docker_manifest:
            _add(tf, "manifest.json", json.dumps(docker).encode())
    return buf.getvalue()
