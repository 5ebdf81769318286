"""A content-addressed blob store on the filesystem.

Layout under the store root::

    blobs/sha256/<hex>    committed blobs, read-only, named by their digest
    ingest/<random>       blobs being written; never visible under blobs/

A blob becomes visible only through ``Writer.commit``: the bytes are hashed
while written, fsynced, compared with the expected digest, renamed into
``blobs/`` and the directory fsynced. A crash leaves at most a file in
``ingest/``, which ``sweep`` removes at daemon start.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Protocol

from portside.errors import DataCorruption, NotFound
from portside.fsync import WRITEBACK_STRIDE, start_writeback
from portside.oci import digest as digestlib
from portside.readers import Reader

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Info:
    digest: str
    size: int


class Writer:
    """An ingest in progress: write bytes, then commit (or abort).

    Usable as a context manager: leaving the block without commit aborts.
    """

    def __init__(self, store: "FileContentStore") -> None:
        self._store = store
        self._path = os.path.join(store.ingest_dir, secrets.token_hex(16))
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._hash = hashlib.sha256()
        self.size = 0
        self._unsynced = 0  # bytes written since writeback was last started
        self.committed: Info | None = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.size += len(data)
        self._unsynced += len(data)
        if self._unsynced >= WRITEBACK_STRIDE:
            start_writeback(self._fd, self.size - self._unsynced, self._unsynced)
            self._unsynced = 0
        return len(data)

    def copy_from(self, src: Reader, *, limit: int | None = None) -> int:
        """Copy ``src`` (up to ``limit`` bytes) into the blob; returns bytes copied."""
        copied = 0
        while limit is None or copied < limit:
            want = _CHUNK if limit is None else min(_CHUNK, limit - copied)
            chunk = src.read(want)
            if not chunk:
                break
            self.write(chunk)
            copied += len(chunk)
        return copied

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self, expected: str | None = None, expected_size: int | None = None) -> Info:
        actual = self.digest
        if expected is not None and expected != actual:
            self.abort()
            raise DataCorruption(f"digest mismatch: expected {expected}, got {actual}")
        if expected_size is not None and expected_size != self.size:
            self.abort()
            raise DataCorruption(f"size mismatch for {actual}: expected {expected_size}, got {self.size}")
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        target = self._store.blob_path(actual)
        if os.path.exists(target):
            os.unlink(self._path)  # same bytes are already there
        else:
            os.rename(self._path, target)
            _fsync_dir(os.path.dirname(target))
        self.committed = Info(actual, self.size)
        return self.committed

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.committed is None:
            self.abort()


class ContentStore(Protocol):
    def info(self, digest: str) -> Info: ...
    def exists(self, digest: str) -> bool: ...
    def open(self, digest: str) -> BinaryIO: ...
    def read_bytes(self, digest: str, *, max_size: int = ...) -> bytes: ...
    def writer(self) -> Writer: ...
    def put_bytes(self, data: bytes, expected: str | None = None) -> Info: ...
    def delete(self, digest: str) -> None: ...
    def walk(self) -> Iterator[Info]: ...


class FileContentStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.blobs_dir = os.path.join(root, "blobs", "sha256")
        self.ingest_dir = os.path.join(root, "ingest")
        os.makedirs(self.blobs_dir, exist_ok=True)
        os.makedirs(self.ingest_dir, exist_ok=True)

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.blobs_dir, digestlib.hex_of(digest))

    def info(self, digest: str) -> Info:
        try:
            st = os.stat(self.blob_path(digest))
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None
        return Info(digest, st.st_size)

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def read_bytes(self, digest: str, *, max_size: int = 64 << 20) -> bytes:
        with self.open(digest) as f:
            data = f.read(max_size + 1)
        if len(data) > max_size:
            raise DataCorruption(f"content {digest} is larger than {max_size} bytes")
        if digestlib.sha256_bytes(data) != digest:
            raise DataCorruption(f"content {digest} does not match its digest")
        return data

    def writer(self) -> Writer:
        return Writer(self)

    def put_bytes(self, data: bytes, expected: str | None = None) -> Info:
        with self.writer() as w:
            w.write(data)
            return w.commit(expected)

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.blob_path(digest))
        except FileNotFoundError:
            pass

    def walk(self) -> Iterator[Info]:
        for name in os.listdir(self.blobs_dir):
            if digestlib.is_hex(name):
                yield Info("sha256:" + name, os.stat(os.path.join(self.blobs_dir, name)).st_size)

    def sweep(self) -> int:
        """Remove unfinished ingests (left by a crash); call only when no writer is active."""
        removed = 0
        for name in os.listdir(self.ingest_dir):
            os.unlink(os.path.join(self.ingest_dir, name))
            removed += 1
        return removed


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
