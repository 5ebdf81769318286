"""``docker pull``: manifest → config → layers, verified, into the image store.

Two steps, so that the Engine API can answer an error status for what fails
before anything is downloaded (as dockerd does) and a 200 progress stream after:

1. ``resolve``: ping, auth, the manifest by tag or digest (an index narrowed
   to one platform), every document checked against its digest.
2. ``Pull.run``: the config blob (verified), then the layers. A layer whose
   chain ID is already unpacked is not fetched ("Already exists"); the others
   download three at a time, each streamed at once through decompression,
   hashing and unpacking (``unpack.unpack_stream``) while its compressed bytes
   are hashed on another thread. The layer is kept unpacked with its tar-split,
   as ``load`` keeps one; the compressed blob is not stored (as dockerd: push
   mounts it or sends the layer again). A dropped connection
   resumes with ``Range``. The blob digest is compared before anything is
   recorded; one failed layer stops the others, and the image is added
   (``ImageService.add_image``, one transaction) only when every layer is in.

Everything written is pinned until the image row holds it; what a failed pull
wrote is collected before the error is reported.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from portside.distribution import progress
from portside.distribution.auth import Credentials, repository_scope
from portside.distribution.errcodes import parse_errors, pull_error
from portside.distribution.hosts import RegistryOptions
from portside.distribution.platforms import format_platform, host_platform, select
from portside.distribution.transport import Reply, RegistryClient
from portside.errors import DataCorruption, InvalidArgument, NotFound, PortsideError
from portside.images.service import ImageService, NewLayer
from portside.oci import digest as digestlib
from portside.oci import mediatypes as mt
from portside.oci.image import Descriptor, Manifest, Platform, parse_config, parse_index, parse_manifest
from portside.oci.reference import Reference
from portside.unpack import Unpacked, release, unpack_stream

MAX_CONCURRENT_DOWNLOADS = 3       # dockerd's default
MAX_MANIFEST_BYTES = 4 << 20
MAX_CONFIG_BYTES = 8 << 20
RESUME_ATTEMPTS = 5
PROGRESS_INTERVAL = 0.1            # seconds between two Downloading messages of a layer

SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
ACCEPT = ", ".join([mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST, mt.OCI_MANIFEST, *SCHEMA1])

Emit = Callable[[progress.Message], None]


class PullAborted(Exception):
    """Another layer failed (or the client went away): this download stops."""


@dataclass(frozen=True)
class Resolved:
    client: RegistryClient
    ref: Reference                 # as asked (tag or digest)
    top_digest: str                # the digest a RepoDigest names: the index's when there is one
    documents: tuple[tuple[str, str, bytes], ...]   # (digest, media type, bytes): index and manifest
    manifest: Manifest

    @property
    def scope(self) -> str:
        return repository_scope(self.ref.path)


def resolve(options: RegistryOptions, ref: Reference, credentials: Credentials, *,
            platform: Platform | None = None) -> Resolved:
    """Fetch and check the manifest ``ref`` names; raises Docker's errors (404 for an unknown one)."""
    client = RegistryClient(options, ref.domain, credentials)
    try:
        return _resolve(client, ref, platform or host_platform())
    except BaseException:
        client.close()
        raise


def _resolve(client: RegistryClient, ref: Reference, want: Platform) -> Resolved:
    scope = repository_scope(ref.path)
    reference = ref.digest or ref.tag or "latest"
    media_type, data, digest = _fetch_manifest(client, ref, reference, scope)
    if ref.digest is not None and digest != ref.digest:
        raise DataCorruption(f"manifest verification failed for digest {ref.digest}")
    documents = [(digest, media_type, data)]
    top = digest
    if media_type in mt.INDEXES:
        chosen = select(parse_index(data), want)
        if chosen is None:
            raise NotFound(f"no matching manifest for {format_platform(want)} in the manifest list entries")
        media_type, data, digest = _fetch_manifest(client, ref, chosen.digest, scope)
        if digest != chosen.digest or len(data) != chosen.size:
            raise DataCorruption(f"manifest verification failed for digest {chosen.digest}")
        if media_type not in mt.MANIFESTS:
            raise InvalidArgument(f"unsupported manifest media type {media_type!r} for {chosen.digest}")
        documents.append((digest, media_type, data))
    manifest = parse_manifest(data)
    return Resolved(client, ref, top, tuple(documents), manifest)


def _fetch_manifest(client: RegistryClient, ref: Reference, reference: str, scope: str) -> tuple[str, bytes, str]:
    path = f"/v2/{ref.path}/manifests/{reference}"
    reply = client.request("GET", path, scope=scope, headers={"Accept": ACCEPT}, ok=(200, 401, 403, 404))
    if reply.status != 200:
        entries = parse_errors(reply.status, reply.read_all(1 << 20))
        raise pull_error(entries, ref.familiar_name(), ref.familiar())
    data = reply.read_all(MAX_MANIFEST_BYTES)
    digest = digestlib.sha256_bytes(data)
    claimed = reply.header("Docker-Content-Digest")
    if claimed.startswith("sha256:") and claimed != digest and not digestlib.is_digest(reference):
        raise DataCorruption(f"manifest verification failed for digest {claimed}")
    media_type = reply.header("Content-Type").split(";")[0].strip()
    doc = _json_object(data)
    declared, version = doc.get("mediaType"), doc.get("schemaVersion")
    if media_type in SCHEMA1 or declared in SCHEMA1 or version == 1:
        raise InvalidArgument(
            "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support "
            f"has been removed. Suggest the author of {ref.name} to upgrade the image to the OCI Format or "
            "Docker Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/")
    # the document's own mediaType wins over the header; an OCI document may carry none
    if isinstance(declared, str) and declared in mt.INDEXES | mt.MANIFESTS:
        media_type = declared
    if media_type not in mt.INDEXES | mt.MANIFESTS:
        media_type = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    return media_type, data, digest


def _json_object(untrusted: bytes) -> dict[str, object]:
    try:
        doc = json.loads(untrusted)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}  # parse_manifest / parse_index report it with their words
    return doc if isinstance(doc, dict) else {}


class Pull:
    """One pull into ``service``, after ``resolve``; ``run`` streams progress through ``emit``."""

    def __init__(self, service: ImageService, resolved: Resolved, emit: Emit) -> None:
        self.service = service
        self.resolved = resolved
        self._emit_lock = threading.Lock()
        self._emit = emit
        self._abort = threading.Event()

    def emit(self, msg: progress.Message) -> None:
        with self._emit_lock:
            try:
                self._emit(msg)
            except OSError:
                self._abort.set()  # the client went away: stop the downloads
                raise

    def run(self) -> str:
        """Pull; returns the image ID."""
        r = self.resolved
        ref = r.ref
        self.emit(progress.status(f"Pulling from {_repo_path(ref)}", ref.digest or ref.tag or "latest"))
        tag_ref = Reference(ref.domain, ref.path, ref.tag) if ref.tag and not ref.digest else None
        before = self.service.db.lookup_name(str(tag_ref)) if tag_ref else None
        digest_ref = Reference(ref.domain, ref.path, None, r.top_digest)
        try:
            with self.service.pinned() as pin:
                image_id = self._run(pin, tag_ref, digest_ref)
        except BaseException:
            self.service.collect()  # what this pull wrote and no image holds
            raise
        finally:
            r.client.close()
        self.emit(progress.status(f"Digest: {r.top_digest}"))
        name = (tag_ref or ref).familiar()
        if before == image_id:
            self.emit(progress.status(f"Status: Image is up to date for {name}"))
        else:
            self.emit(progress.status(f"Status: Downloaded newer image for {name}"))
        return image_id

    def _run(self, pin: Callable[[str], None], tag_ref: Reference | None, digest_ref: Reference) -> str:
        r = self.resolved
        manifest = r.manifest
        config_bytes = self._fetch_config(manifest.config)
        config = parse_config(config_bytes)
        diff_ids = config.diff_ids
        if len(diff_ids) != len(manifest.layers):
            raise InvalidArgument(f"image config lists {len(diff_ids)} layers (diff_ids) but the manifest has "
                                  f"{len(manifest.layers)}")
        chains = digestlib.chain_ids(diff_ids)
        layers: list[NewLayer | None] = [None] * len(manifest.layers)
        to_fetch: dict[str, Descriptor] = {}
        for i, (desc, chain) in enumerate(zip(manifest.layers, chains)):
            pin(chain)
            known = self.service.db.layer_by_chain(chain)
            if known is not None and self.service.snapshots.has(chain):
                layers[i] = NewLayer.from_row(known)
                self.emit(progress.layer("Already exists", progress.short_id(desc.digest)))
            elif desc.digest not in to_fetch:
                to_fetch[desc.digest] = desc
                self.emit(progress.layer("Pulling fs layer", progress.short_id(desc.digest)))
        for n, desc in enumerate(to_fetch.values()):
            if n >= MAX_CONCURRENT_DOWNLOADS:
                self.emit(progress.layer("Waiting", progress.short_id(desc.digest)))
        fetched: dict[str, NewLayer] = {}
        try:
            fetched = self._download_all(list(to_fetch.values()), pin)
            for i, desc in enumerate(manifest.layers):
                if layers[i] is None:
                    layers[i] = fetched[desc.digest]
            for digest, media_type, data in r.documents:
                pin(digest)
                self.service.content.put_bytes(data, expected=digest)
            added = self.service.add_image(
                config_bytes, [la for la in layers if la is not None],
                tags=[tag_ref] if tag_ref else [], digests=[digest_ref],
                manifests=[(d, m) for d, m, _ in r.documents], pin=pin)
        finally:
            for la in fetched.values():
                if la.unpacked is not None:
                    release(self.service.snapshots, la.unpacked)
        return added.image_id

    def _fetch_config(self, desc: Descriptor) -> bytes:
        r = self.resolved
        if desc.size > MAX_CONFIG_BYTES:
            raise InvalidArgument(f"image config {desc.digest} is too large ({desc.size} bytes)")
        reply = r.client.request("GET", f"/v2/{r.ref.path}/blobs/{desc.digest}", scope=r.scope)
        data = reply.read_all(MAX_CONFIG_BYTES)
        if digestlib.sha256_bytes(data) != desc.digest or len(data) != desc.size:
            raise DataCorruption(f"image config verification failed for digest {desc.digest}")
        return data

    def _download_all(self, descs: list[Descriptor], pin: Callable[[str], None]) -> dict[str, NewLayer]:
        done: dict[str, NewLayer] = {}
        if not descs:
            return done
        with concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENT_DOWNLOADS, thread_name_prefix="pull") as pool:
            futures = {pool.submit(self._download, d, pin): d for d in descs}
            failure: BaseException | None = None
            for fut in concurrent.futures.as_completed(futures):
                try:
                    done[futures[fut].digest] = fut.result()
                except BaseException as e:
                    if failure is None or isinstance(failure, PullAborted):
                        failure = e
                    self._abort.set()
            if failure is not None:
                for la in done.values():
                    if la.unpacked is not None:
                        release(self.service.snapshots, la.unpacked)
                raise failure
        return done

    def _download(self, desc: Descriptor, pin: Callable[[str], None]) -> NewLayer:
        if self._abort.is_set():
            raise PullAborted()
        sid = progress.short_id(desc.digest)
        r = self.resolved
        content = self.service.content
        digest = _BackgroundDigest()
        stream = _BlobStream(r.client, f"/v2/{r.ref.path}/blobs/{desc.digest}", r.scope, desc, digest.update,
                             self._abort,
                             lambda cur: self.emit(progress.bytes_progress("Downloading", sid, cur, desc.size)))
        unpacked: Unpacked | None = None
        try:
            try:
                unpacked = unpack_stream(content, self.service.snapshots, stream, pin, compressed=True)
                stream.drain()
            finally:
                digest.finish()
        except PullAborted:
            raise
        except (PortsideError, OSError, EOFError, ValueError) as e:
            # A tampered or truncated blob often fails to decompress before its digest is known:
            # read it to its end (bounded by its size) so the error names the real cause.
            if isinstance(e, OSError) and self._abort.is_set():
                raise
            try:
                stream.drain()
            except PortsideError:
                pass
            if stream.complete and digest.value != desc.digest:
                raise _verification_failed(desc) from None
            raise
        try:
            self.emit(progress.layer("Verifying Checksum", sid))
            if digest.value != desc.digest or digest.size != desc.size:
                raise _verification_failed(desc)
            self.emit(progress.layer("Download complete", sid))
            self.emit(progress.bytes_progress("Extracting", sid, desc.size, desc.size))
            self.emit(progress.layer("Pull complete", sid))
        except BaseException:
            release(self.service.snapshots, unpacked)
            raise
        # Kept as the store keeps a loaded layer: unpacked, with its tar-split; the compressed blob
        # is not stored (as dockerd) — its descriptor stays in the stored manifest, for push.
        return NewLayer.from_unpacked(unpacked)


def _verification_failed(desc: Descriptor) -> DataCorruption:
    return DataCorruption(f"filesystem layer verification failed for digest {desc.digest}")


def _repo_path(ref: Reference) -> str:
    """``Pulling from library/busybox``: the path, as dockerd prints it (the domain only when not Docker Hub)."""
    return ref.familiar_name() if ref.domain != "docker.io" else ref.path


class _BackgroundDigest:
    """sha256 of the compressed blob on a thread of its own, so that hashing it overlaps
    decompressing and unpacking it (hashlib releases the GIL)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=32)  # bounded: at most 32 MiB behind
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="blob-digest", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            self._hash.update(data)

    def update(self, data: bytes) -> None:
        self.size += len(data)
        if self._finished:
            self._hash.update(data)  # after finish (reading a failed blob to its end): in this thread
            return
        self._queue.put(data)

    def finish(self) -> None:
        """Wait for every byte to be hashed (idempotent)."""
        if not self._finished:
            self._finished = True
            self._queue.put(None)
            self._thread.join()

    @property
    def value(self) -> str:
        self.finish()
        return "sha256:" + self._hash.hexdigest()


class _BlobStream:
    """A blob read from the registry, written into the content store as it is read.

    Reads at most the descriptor's size. A connection that drops is reopened
    with ``Range: bytes=<offset>-`` (up to ``RESUME_ATTEMPTS`` times); a server
    that ignores the range has the bytes already held skipped.
    """

    def __init__(self, client: RegistryClient, path: str, scope: str, desc: Descriptor,
                 write: Callable[[bytes], None], abort: threading.Event, on_progress: Callable[[int], None]) -> None:
        self._client, self._path, self._scope, self._desc, self._write = client, path, scope, desc, write
        self._abort = abort
        self._on_progress = on_progress
        self._reply: Reply | None = None
        self.offset = 0
        self._failures = 0
        self._last_progress = time.monotonic()  # not at once: the first read is the 4-byte compression sniff

    @property
    def complete(self) -> bool:
        return self.offset >= self._desc.size

    def read(self, n: int = -1) -> bytes:
        while True:
            if self._abort.is_set():
                self._close()
                raise PullAborted()
            left = self._desc.size - self.offset
            if left <= 0:
                self._finish()
                return b""
            want = left if n < 0 else min(n, left, 1 << 20)
            if self._reply is None:
                self._open()
            assert self._reply is not None
            try:
                data = self._reply.read(want)
            except OSError:
                data = b""
            except Exception as e:  # http.client's IncompleteRead and kin: the connection dropped
                if isinstance(e, PortsideError):
                    raise
                data = b""
            if not data:
                self._dropped()
                continue
            self._write(data)
            self.offset += len(data)
            now = time.monotonic()
            if now - self._last_progress >= PROGRESS_INTERVAL or self.offset == self._desc.size:
                self._last_progress = now
                self._on_progress(self.offset)
            return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def _open(self) -> None:
        headers = {"Range": f"bytes={self.offset}-"} if self.offset else {}
        reply = self._client.request("GET", self._path, scope=self._scope,
                                     headers=headers, ok=(200, 206))
        if self.offset and reply.status == 200:
            skip = self.offset  # no range support: read again up to where we were
            while skip:
                got = reply.read(min(skip, 1 << 20))
                if not got:
                    reply.close()
                    self._dropped()
                    return
                skip -= len(got)
        elif reply.status == 206:
            start = reply.header("Content-Range").removeprefix("bytes ").split("-")[0]
            if start != str(self.offset):
                reply.close()
                raise DataCorruption(f"blob {self._desc.digest}: the registry answered range {start!r} "
                                     f"for a request from {self.offset}")
        self._reply = reply

    def _dropped(self) -> None:
        self._close()
        self._failures += 1
        if self._failures > RESUME_ATTEMPTS:
            raise DataCorruption(f"blob {self._desc.digest}: unexpected EOF after {self.offset} of "
                                 f"{self._desc.size} bytes")
        time.sleep(min(2.0, 0.1 * 2 ** self._failures))

    def _finish(self) -> None:
        if self._reply is None:
            return
        extra = b""
        try:
            extra = self._reply.read(1)
        except Exception:
            pass
        if extra:
            self._close()
            raise _verification_failed(self._desc)  # more bytes than the descriptor says
        self._reply = None

    def _close(self) -> None:
        if self._reply is not None:
            self._reply.close()
            self._reply = None
