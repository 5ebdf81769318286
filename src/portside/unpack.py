"""Layers → snapshots, keyed by chain ID, each layer unpacked exactly once.

Three ways in:

* **from a stream** (load, import): the uncompressed tar is hashed and applied
  in one pass into a fresh snapshot directory, with its tar-split recorded
  (archive.tarsplit); no copy of the tar is stored. The result, ``Unpacked``,
  is committed under its chain ID once the image config confirms the diff ID.
* **from a writer** (commit): a function writes the tar into a pipe that is
  applied as a stream, as above.
* **from a blob** in the content store (a compressed layer): decompress, hash,
  apply, compare with the config's diff ID, commit. The blob stays.

A mismatch or a hostile entry aborts the layer: its directory is removed and
nothing is committed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import threading
from dataclasses import dataclass
from typing import Callable, TypeVar

from portside.archive.apply import apply_layer
from portside.archive.compression import decompressing_reader
from portside.archive.tarsplit import TarSplitRecorder, reassemble
from portside.content.store import FileContentStore
from portside.errors import DataCorruption
from portside.readers import Reader
from portside.snapshots.overlay import OverlaySnapshotter

# A layer may not expand beyond this, nor leave less than DISK_RESERVE free:
# a decompression bomb fails with an error instead of filling the disk.
MAX_LAYER_BYTES = 64 << 30
DISK_RESERVE = 512 << 20

T = TypeVar("T")


def layer_budget(directory: str) -> int:
    """How many bytes a layer unpacked into ``directory`` may expand to."""
    st = os.statvfs(directory)
    return max(0, min(MAX_LAYER_BYTES, st.f_bavail * st.f_frsize - DISK_RESERVE))


class _BackgroundHash:
    """sha256 computed on another thread, in order: hashing overlaps the writes of the thread
    that reads (hashlib and os.write both release the GIL for large buffers)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        # Bounded: a reader faster than the hash waits instead of queueing the whole layer.
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()
        self._digest: str | None = None

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            self._hash.update(data)

    def update(self, data: bytes) -> None:
        self._queue.put(data)  # bytes are immutable: safe to hash later

    def hexdigest(self) -> str:
        if self._digest is None:
            self.close()
            self._digest = self._hash.hexdigest()
        return self._digest

    def close(self) -> None:
        """End the thread (idempotent); every failure path must call it, or the thread lives on."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class HashingReader:
    """Reads through ``src`` (at most ``limit`` bytes) and hashes every byte handed out."""

    def __init__(self, src: Reader, limit: int | None = None) -> None:
        self._src = src
        self._hash = _BackgroundHash()
        self._left = limit
        self.size = 0
        # whole reads through, when the source reads whole (archive.tarstream then adds no buffer)
        self.reads_whole = bool(getattr(src, "reads_whole", False))

    def read(self, n: int = -1) -> bytes:
        if self._left is not None:
            n = self._left if n < 0 else min(n, self._left)
            if n == 0:
                return b""
        data = self._src.read(n)
        self._hash.update(data)
        self.size += len(data)
        if self._left is not None:
            self._left -= len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def close(self) -> None:
        self._hash.close()

    def __enter__(self) -> "HashingReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Unpacked:
    """A layer applied into a snapshot tmp dir, not yet committed; its tar kept as a tar-split."""

    directory: str
    diff_id: str
    size: int          # bytes of regular-file content
    tar_size: int      # bytes of the uncompressed tar
    tarsplit: str      # digest of the tar-split blob in the content store
    committed_as: str | None = None   # the chain ID it was committed as


def unpack_stream(content: FileContentStore, snapshots: OverlaySnapshotter, untrusted: Reader,
                  pin: Callable[[str], None], *, limit: int | None = None, compressed: bool = True) -> Unpacked:
    """Hash and apply a layer stream (gzip, zstd or plain when ``compressed``) into a fresh directory.

    Reads at most ``limit`` bytes of an uncompressed ``untrusted``. The tar-split blob is
    stored and pinned; the directory is the caller's to ``commit`` or
    ``abort`` (``release`` does the latter if it was not committed).
    """
    if compressed and limit is not None:
        raise ValueError("a limit applies to uncompressed streams only")
    tmp = snapshots.begin()
    try:
        plain: Reader = decompressing_reader(untrusted)[1] if compressed else untrusted
        budget = layer_budget(tmp)
        with HashingReader(plain, limit) as hashing, \
                TarSplitRecorder(content.ingest_dir, max_bytes=budget) as recorder:
            result = apply_layer(hashing, tmp, max_bytes=budget, recorder=recorder)
            hashing.drain()
            diff_id, tar_size = hashing.digest, hashing.size
            with content.writer() as writer:
                recorder.write_to(writer.write)
                pin(writer.digest)  # before it is visible, so no collection can take it
                info = writer.commit()
    except BaseException:
        snapshots.abort(tmp)
        raise
    return Unpacked(tmp, diff_id, result.size, tar_size, info.digest)


def commit_unpacked(snapshots: OverlaySnapshotter, unpacked: Unpacked, chain_id: str) -> None:
    snapshots.commit(unpacked.directory, chain_id)
    unpacked.committed_as = chain_id


def release(snapshots: OverlaySnapshotter, unpacked: Unpacked) -> None:
    if unpacked.committed_as is None:
        snapshots.abort(unpacked.directory)


def unpack_blob(content: FileContentStore, snapshots: OverlaySnapshotter, *,
                blob_digest: str, diff_id: str, chain_id: str) -> int:
    """Unpack a layer blob as snapshot ``chain_id``; returns the layer's size."""
    tmp = snapshots.begin()
    try:
        with content.open(blob_digest) as blob, HashingReader(decompressing_reader(blob)[1]) as hashing:
            result = apply_layer(hashing, tmp, max_bytes=layer_budget(tmp))
            hashing.drain()
            if hashing.digest != diff_id:
                raise DataCorruption(
                    f"layer diff ID mismatch: the image config says {diff_id}, the content is {hashing.digest}")
        snapshots.commit(tmp, chain_id)
    except BaseException:
        snapshots.abort(tmp)
        raise
    return result.size


def copy_layer(content: FileContentStore, snapshots: OverlaySnapshotter, *, source_chain: str, tarsplit: str,
               diff_id: str, chain_id: str) -> int:
    """Unpack again, under another chain ID, a layer already unpacked (the same diff at two places)."""
    tmp = snapshots.begin()
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []
    made: list[str] = []

    def produce() -> None:
        try:
            with open(write_fd, "wb", closefd=True) as out, content.open(tarsplit) as split:
                made.append(reassemble(split, snapshots.layer_path(source_chain), out.write)[0])
        except BaseException as e:  # reported by the consumer below
            failure.append(e)

    writer = threading.Thread(target=produce, daemon=True)
    writer.start()
    try:
        with open(read_fd, "rb", closefd=True) as src:
            result = apply_layer(src, tmp, max_bytes=layer_budget(tmp))
            while src.read(1 << 20):
                pass
        writer.join()
        if failure:
            raise failure[0]
        if made != [diff_id]:
            raise DataCorruption(f"layer {source_chain} was changed on disk: its tar no longer matches {diff_id}")
        snapshots.commit(tmp, chain_id)
    except BaseException:
        writer.join()
        snapshots.abort(tmp)
        raise
    return result.size


def unpack_written(content: FileContentStore, snapshots: OverlaySnapshotter,
                   produce: Callable[[Callable[[bytes], object]], T], pin: Callable[[str], None]) -> tuple[Unpacked, T]:
    """Unpack, as ``unpack_stream`` does, the uncompressed layer tar that ``produce(write)`` writes.

    ``produce`` runs on a thread of its own, writing into a pipe that this
    thread applies from; returns the unpacked layer and what ``produce`` returned.
    """
    read_fd, write_fd = os.pipe()
    try:
        # a 1 MiB pipe: the default 64 KiB costs a thread switch every 64 KiB of a large layer
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size for an unprivileged user: keep the default
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with open(write_fd, "wb", closefd=True) as out:
                outcome.append(produce(out.write))
        except BaseException as e:  # reported by the consumer below
            failure.append(e)

    writer = threading.Thread(target=run, name="layer-writer", daemon=True)
    writer.start()
    try:
        with open(read_fd, "rb", closefd=True) as src:
            unpacked = unpack_stream(content, snapshots, src, pin, compressed=False)
    except BaseException:
        writer.join()  # the read end is closed: the writer stops at its next write
        if failure and not isinstance(failure[0], BrokenPipeError):
            raise failure[0] from None
        raise
    writer.join()
    if failure:
        release(snapshots, unpacked)
        raise failure[0]
    return unpacked, outcome[0]
