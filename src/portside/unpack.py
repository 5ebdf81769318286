"""Layers → snapshots, keyed by chain ID, each layer unpacked exactly once.

The data path of one layer, top to bottom::

    blob in the content store (maybe gzip/zstd)
      → decompress (archive.compression)
      → hash the uncompressed tar (the diff ID)
      → apply entries into a fresh snapshot directory (archive.apply)
      → compare the hash with the config's diff ID
      → commit the directory as layers/<chain id>

A mismatch or a hostile entry aborts the layer: its directory is removed and
nothing is committed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import BinaryIO, Callable

from portside.archive.apply import apply_layer
from portside.archive.compression import decompressing_reader
from portside.content.store import FileContentStore, Info, Writer
from portside.errors import DataCorruption
from portside.snapshots.overlay import OverlaySnapshotter

# A layer may not expand beyond this, nor leave less than DISK_RESERVE free:
# a decompression bomb fails with an error instead of filling the disk.
MAX_LAYER_BYTES = 64 << 30
DISK_RESERVE = 512 << 20


def layer_budget(directory: str) -> int:
    """How many bytes a layer unpacked into ``directory`` may expand to."""
    st = os.statvfs(directory)
    return max(0, min(MAX_LAYER_BYTES, st.f_bavail * st.f_frsize - DISK_RESERVE))


class HashingReader:
    """Reads through ``src`` and hashes every byte handed out."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self._hash.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


@dataclass(frozen=True)
class UnpackedLayer:
    chain_id: str
    diff_id: str
    size: int


def apply_verified(src: BinaryIO, directory: str, expected_diff_id: str | None) -> tuple[str, int]:
    """Apply a (maybe compressed) layer stream into ``directory``; returns (diff ID, size).

    With ``expected_diff_id`` None the content is not hashed (the caller has
    verified it already) and the diff ID returned is empty.
    """
    _, plain = decompressing_reader(src)
    if expected_diff_id is None:
        return "", apply_layer(plain, directory, max_bytes=layer_budget(directory)).size
    hashing = HashingReader(plain)
    result = apply_layer(hashing, directory, max_bytes=layer_budget(directory))
    hashing.drain()
    if hashing.digest != expected_diff_id:
        raise DataCorruption(
            f"layer diff ID mismatch: the image config says {expected_diff_id}, the content is {hashing.digest}")
    return hashing.digest, result.size


def unpack_layer(content: FileContentStore, snapshots: OverlaySnapshotter, *,
                 blob_digest: str, diff_id: str, chain_id: str) -> UnpackedLayer | None:
    """Unpack one layer blob as snapshot ``chain_id``; None when it was already there."""
    if snapshots.has(chain_id):
        return None
    tmp = snapshots.begin()
    # An uncompressed blob's digest is its diff ID, checked when it was stored:
    # hashing it again while applying would only cost time.
    expected = None if blob_digest == diff_id else diff_id
    try:
        with content.open(blob_digest) as blob:
            _, size = apply_verified(blob, tmp, expected)
    except BaseException:
        snapshots.abort(tmp)
        raise
    snapshots.commit(tmp, chain_id)
    return UnpackedLayer(chain_id, diff_id, size)


class _TeeToBlob:
    """Hands out ``src``'s bytes and copies each one into a content-store writer."""

    def __init__(self, src: BinaryIO, writer: Writer) -> None:
        self._src = src
        self._writer = writer

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        if data:
            self._writer.write(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


@dataclass(frozen=True)
class IngestedLayer:
    blob: Info           # the uncompressed layer tar in the content store; its digest is the diff ID
    size: int


def ingest_layer(content: FileContentStore, snapshots: OverlaySnapshotter, src: BinaryIO,
                 pin: Callable[[str], None]) -> IngestedLayer:
    """Store and unpack a layer whose digest is not known in advance (import, commit).

    One pass over the bytes: decompress, copy into a blob writer (which
    hashes), apply into a fresh snapshot. The snapshot is committed as a
    base layer (chain ID = diff ID), pinned through ``pin`` (the blob digest
    and the chain ID are the same string) until the caller records its image.
    """
    _, plain = decompressing_reader(src)
    tmp = snapshots.begin()
    try:
        with content.writer() as writer:
            tee = _TeeToBlob(plain, writer)
            result = apply_layer(tee, tmp, max_bytes=layer_budget(tmp))
            tee.drain()
            pin(writer.digest)  # before it is visible, so no collection can take it
            info = writer.commit()
    except BaseException:
        snapshots.abort(tmp)
        raise
    snapshots.commit(tmp, info.digest)
    return IngestedLayer(info, result.size)
