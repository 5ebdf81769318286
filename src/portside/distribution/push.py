"""``docker push``: blobs first (skipped when the registry has them, mounted from another
repository of the same registry when the image came from there), the config, the manifest last.

A pulled layer is offered first as it was pulled: already in the target
repository, or mounted from the repository it came from; when every layer can
be, the pulled manifest is pushed byte for byte (same digest, same RepoDigest).
Otherwise a Docker schema2 manifest names the layers as stored: a tar-split
layer is put back together and sent uncompressed (``...rootfs.diff.tar``, its
digest its diff ID: loopback and LAN registries gain nothing from compressing). Uploads: ``POST`` a session, then
one ``PUT ?digest=`` for small blobs, or a streamed ``PATCH`` and the ``PUT``
for layers. The pushed digest becomes one of the image's RepoDigests.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import json
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Iterator

from portside.distribution import progress
from portside.distribution.auth import Credentials, repository_scope
from portside.distribution.hosts import RegistryOptions
from portside.distribution.transport import RegistryClient
from portside.errors import InvalidArgument, NotFound, PortsideError
from portside.images.metadata import LayerRow
from portside.images.service import Image, ImageService
from portside.oci import digest as digestlib
from portside.oci import mediatypes as mt
from portside.oci.image import Descriptor, Manifest, parse_manifest
from portside.oci.reference import Reference

MAX_CONCURRENT_UPLOADS = 5     # dockerd's default
MONOLITHIC_MAX = 1 << 20       # blobs up to this go in one PUT
PROGRESS_INTERVAL = 0.1

Emit = Callable[[progress.Message], None]


@dataclass(frozen=True)
class _Blob:
    desc: Descriptor            # what is stored here: the layer as the image row holds it, or the config
    short: str                  # the id in progress lines (the layer's diff ID, as dockerd)
    layer: LayerRow | None      # None for the config
    pulled: Descriptor | None = None  # the layer as the manifest it was pulled with names it


def push(service: ImageService, options: RegistryOptions, ref: Reference, credentials: Credentials,
         emit: Emit) -> str:
    """Push the image ``ref`` (with a tag) names; returns the manifest digest."""
    try:
        image = service.get(str(ref))
    except NotFound:
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}") from None
    emit(progress.status(f"The push refers to repository [{ref.name}]"))
    client = RegistryClient(options, ref.domain, credentials, mirrors=False)  # mirrors are read-only
    try:
        return _Push(service, client, ref, image, emit).run()
    finally:
        client.close()


class _Push:
    def __init__(self, service: ImageService, client: RegistryClient, ref: Reference, image: Image,
                 emit: Emit) -> None:
        self.service, self.client, self.ref, self.image = service, client, ref, image
        self.scope = repository_scope(ref.path, "pull,push")
        self._emit_lock = threading.Lock()
        self._emit = emit
        # repositories of the same registry this image came from: blobs can be mounted from them
        self.sources = [d.path for d in image.digests if d.domain == ref.domain and d.path != ref.path]

    def emit(self, msg: progress.Message) -> None:
        with self._emit_lock:
            self._emit(msg)

    def run(self) -> str:
        with self.service.pinned() as pin:
            self.service.pin_image(pin, self.image)
            stored = self._stored_manifest()
            rows = self.image.row.layers
            blobs = [_Blob(Descriptor(_docker_layer_type(r.blob_media_type), r.blob_digest, r.blob_size),
                           progress.short_id(r.diff_id), r, stored[2].layers[i] if stored else None)
                     for i, r in enumerate(rows)]
            for b in blobs:
                self.emit(progress.layer("Preparing", b.short))
            for b in blobs[MAX_CONCURRENT_UPLOADS:]:
                self.emit(progress.layer("Waiting", b.short))
            used: dict[str, Descriptor] = {}
            with concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENT_UPLOADS, thread_name_prefix="push") as pool:
                futures = {b.desc.digest: pool.submit(self._upload, b) for b in _unique(blobs)}
                for key, fut in futures.items():
                    used[key] = fut.result()
            config = Descriptor(mt.DOCKER_CONFIG if not stored else stored[2].config.media_type, self.image.id,
                                len(self.image.config.raw))
            self._upload(_Blob(config, "", None))
            layers = tuple(used[b.desc.digest] for b in blobs)
            if stored is not None and layers == stored[2].layers:
                manifest_bytes, media_type = stored[0], stored[1]  # the pulled manifest, byte for byte
            else:
                media_type = mt.DOCKER_MANIFEST
                manifest_bytes = _manifest_json(Manifest(media_type, Descriptor(mt.DOCKER_CONFIG, config.digest,
                                                                                config.size), layers))
            reply = self.client.request("PUT", f"/v2/{self.ref.path}/manifests/{self.ref.tag or 'latest'}",
                                        scope=self.scope, headers={"Content-Type": media_type,
                                                                   "Content-Length": str(len(manifest_bytes))},
                                        ok=(200, 201, 202), body=manifest_bytes)
            reply.read_all(1 << 20)
            digest = digestlib.sha256_bytes(manifest_bytes)
            pin(digest)
            self.service.content.put_bytes(manifest_bytes, expected=digest)
            self.service.db.add_image(self.image.row, digests=[str(Reference(self.ref.domain, self.ref.path, None,
                                                                             digest))],
                                      manifests=[(digest, media_type)])
        tag = self.ref.tag or "latest"
        self.emit(progress.status(f"{tag}: digest: {digest} size: {len(manifest_bytes)}"))
        self.emit({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(manifest_bytes)}})
        return digest

    def _stored_manifest(self) -> tuple[bytes, str, Manifest] | None:
        """The manifest this image was pulled (or last pushed) with, if it describes these layers."""
        content = self.service.content
        for digest, media_type in self.service.db.manifests_of(self.image.id):
            if media_type not in mt.MANIFESTS or not content.exists(digest):
                continue
            data = content.read_bytes(digest)
            try:
                m = parse_manifest(data)
            except PortsideError:
                continue
            if m.config.digest == self.image.id and len(m.layers) == len(self.image.row.layers):
                return data, media_type, m
        return None

    # -- blobs ------------------------------------------------------------------

    def _upload(self, blob: _Blob) -> Descriptor:
        """Make the blob present in the repository; returns the descriptor the manifest must name.

        A pulled layer is offered as it was pulled (already there, or mounted from the
        repository it came from), so that the pulled manifest can be pushed unchanged;
        otherwise the layer goes as it is stored.
        """
        if blob.pulled is not None and blob.pulled.digest != blob.desc.digest:
            if self._present(blob.pulled, blob):
                return blob.pulled
            if self.service.content.exists(blob.pulled.digest):
                self._send(_Blob(blob.pulled, blob.short, blob.layer))
                return blob.pulled
        if not self._present(blob.desc, blob):
            self._send(blob)
        return blob.desc

    def _present(self, desc: Descriptor, blob: _Blob) -> bool:
        """Already in the repository, or mounted from another one of the same registry."""
        digest = desc.digest
        head = self.client.request("HEAD", f"/v2/{self.ref.path}/blobs/{digest}", scope=self.scope, ok=(200, 404))
        head.read_all(0)
        if head.status == 200:
            if blob.layer is not None:
                self.emit(progress.layer("Layer already exists", blob.short))
            return True
        for source in self.sources:
            query = urllib.parse.urlencode({"mount": digest, "from": source})
            reply = self.client.request("POST", f"/v2/{self.ref.path}/blobs/uploads/?{query}",
                                        scope=f"{self.scope} {repository_scope(source)}", ok=(201, 202),
                                        headers={"Content-Length": "0"}, body=b"")
            reply.read_all(1 << 20)
            if reply.status == 201:
                if blob.layer is not None:
                    self.emit(progress.layer(f"Mounted from {source}", blob.short))
                return True
            self._cancel(reply.header("Location"))
        return False

    def _send(self, blob: _Blob) -> None:
        digest = blob.desc.digest
        reply = self.client.request("POST", f"/v2/{self.ref.path}/blobs/uploads/", scope=self.scope, ok=(202,),
                                    headers={"Content-Length": "0"}, body=b"")
        reply.read_all(1 << 20)
        location = self._target(reply.header("Location"))
        size = blob.desc.size
        if size <= MONOLITHIC_MAX:
            data = self._blob_bytes(blob)
            done = self.client.request("PUT", _with_digest(location, digest), scope=self.scope, ok=(201,),
                                       headers={"Content-Type": "application/octet-stream",
                                                "Content-Length": str(len(data))}, body=data)
            done.read_all(1 << 20)
        else:
            patched = self.client.request("PATCH", location, scope=self.scope, ok=(202,),
                                          headers={"Content-Type": "application/octet-stream",
                                                   "Content-Length": str(size)},
                                          body=lambda: self._blob_chunks(blob))
            patched.read_all(1 << 20)
            done = self.client.request("PUT", _with_digest(self._target(patched.header("Location")), digest),
                                       scope=self.scope, ok=(201,), headers={"Content-Length": "0"}, body=b"")
            done.read_all(1 << 20)
        if blob.layer is not None:
            self.emit(progress.layer("Pushed", blob.short))

    def _cancel(self, location: str) -> None:
        """A mount the registry could not do opened an upload instead: end it."""
        if location:
            try:
                self.client.request("DELETE", self._target(location), scope=self.scope,
                                    ok=(202, 204, 404)).read_all(1 << 20)
            except PortsideError:
                pass

    def _target(self, location: str) -> str:
        if not location:
            raise InvalidArgument("the registry started an upload without a Location")
        parts = urllib.parse.urlsplit(location)
        assert self.client.endpoint is not None
        if parts.netloc and parts.netloc != self.client.endpoint.host:
            raise InvalidArgument(f"the registry sent the upload to another host: {parts.netloc}")
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _blob_bytes(self, blob: _Blob) -> bytes:
        return b"".join(self._blob_chunks(blob))

    def _blob_chunks(self, blob: _Blob) -> Iterator[bytes]:
        """The blob's bytes: from the content store, or the layer's tar put back together (on a thread)."""
        sent = 0
        last = 0.0
        for chunk in self._raw_chunks(blob):
            sent += len(chunk)
            now = time.monotonic()
            if blob.layer is not None and (now - last >= PROGRESS_INTERVAL or sent == blob.desc.size):
                last = now
                self.emit(progress.bytes_progress("Pushing", blob.short, sent, blob.desc.size))
            yield chunk

    def _raw_chunks(self, blob: _Blob) -> Iterator[bytes]:
        content = self.service.content
        if blob.layer is None:
            yield self.image.config.raw
            return
        if content.exists(blob.desc.digest):
            with content.open(blob.desc.digest) as f:
                while chunk := f.read(1 << 20):
                    yield chunk
            return
        layer = blob.layer
        yield from _produced(lambda write: self.service.write_layer(layer, write))


def _produced(produce: Callable[[Callable[[bytes], None]], None]) -> Iterator[bytes]:
    """The bytes ``produce(write)`` writes on a thread of its own, as an iterator."""
    read_fd, write_fd = os.pipe()
    try:
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 1 << 20)  # 1 MiB reads: fewer, larger sends
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size: the default size works, only slower
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with open(write_fd, "wb", closefd=True) as out:
                def write(data: bytes) -> None:
                    out.write(data)

                produce(write)
        except BaseException as e:  # reported by the reader below
            failure.append(e)

    writer = threading.Thread(target=run, name="push-layer", daemon=True)
    writer.start()
    try:
        with open(read_fd, "rb", closefd=True) as src:
            while chunk := src.read(1 << 20):
                yield chunk
    finally:
        writer.join()
    if failure and not isinstance(failure[0], BrokenPipeError):
        raise failure[0]


def _unique(blobs: list[_Blob]) -> list[_Blob]:
    seen: set[str] = set()
    out = []
    for b in blobs:
        if b.desc.digest not in seen:
            seen.add(b.desc.digest)
            out.append(b)
    return out


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})


def _docker_layer_type(media_type: str) -> str:
    return {mt.OCI_LAYER: mt.DOCKER_LAYER, mt.OCI_LAYER_GZIP: mt.DOCKER_LAYER_GZIP}.get(media_type, media_type)


def _manifest_json(m: Manifest) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": m.media_type,
           "config": m.config.to_json(), "layers": [d.to_json() for d in m.layers]}
    return json.dumps(doc, indent=3).encode()

