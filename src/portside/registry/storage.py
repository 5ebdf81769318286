"""Where the registry keeps bytes and the repository index.

The bytes live in the one content store (``portside.content``), each blob
once whatever the number of repositories holding it. Repositories hold links
only, kept apart from the bytes (as distribution's ``registry/storage/paths.go``)::

    ROOT/
      blobs/sha256/<hex>                         every blob and manifest, once
      ingest/<random>                            monolithic uploads being written
      uploads/<uuid>/{data,repo,started}         upload sessions (never visible as blobs)
      repositories/<name>/
        _layers/<hex>                            the repository holds this blob (empty file)
        _manifests/revisions/<hex>               a manifest of the repository; holds its media type
        _manifests/tags/<tag>                    holds the digest the tag names
        _referrers/<subject hex>/<hex>           holds the referrer's descriptor (JSON)

Names, tags and digests are validated (``names``) before they reach here, so
every path stays under ROOT. Links are written temp + fsync + rename, so a
reader sees the old link or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator, Protocol

from portside.content.store import FileContentStore, _fsync_dir
from portside.errors import DataCorruption, NotFound
from portside.readers import Reader
from portside.registry.ingest import copy_hashing

_CHUNK = 1 << 20


class UploadUnknown(NotFound):
    """No such upload session (never started, finished, cancelled or expired)."""


class OutOfOrder(Exception):
    """A chunk does not start where the upload ends (416)."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"upload is at {offset}")
        self.offset = offset


@dataclass(frozen=True)
class Upload:
    uuid: str
    repo: str
    offset: int
    started: float


class Storage(Protocol):
    """The registry's storage: blobs by digest, upload sessions, repository links.

    A second backend (an object store, for several instances behind a load
    balancer) implements the same methods; handlers see nothing else.
    """

    # blobs
    def blob_size(self, digest: str) -> int: ...             # NotFound
    def open_blob(self, digest: str) -> BinaryIO: ...        # NotFound; has fileno() on the filesystem
    def put_blob(self, body: Reader, length: int | None, digest: str) -> int: ...  # DataCorruption
    def delete_blob(self, digest: str) -> None: ...
    def walk_blobs(self) -> Iterator[str]: ...
    # upload sessions
    def start_upload(self, repo: str) -> Upload: ...
    def upload(self, repo: str, uuid: str) -> Upload: ...    # UploadUnknown
    def append(self, repo: str, uuid: str, body: Reader, length: int | None, start: int | None) -> Upload: ...
    def finish_upload(self, repo: str, uuid: str, digest: str) -> int: ...  # DataCorruption, UploadUnknown
    def cancel_upload(self, repo: str, uuid: str) -> None: ...
    def expire_uploads(self, older_than: float) -> int: ...
    # repositories
    def repositories(self) -> list[str]: ...
    def link_blob(self, repo: str, digest: str) -> None: ...
    def has_blob_link(self, repo: str, digest: str) -> bool: ...
    def unlink_blob(self, repo: str, digest: str) -> bool: ...
    def put_manifest(self, repo: str, digest: str, media_type: str, data: bytes) -> None: ...
    def manifest(self, repo: str, digest: str) -> tuple[str, bytes]: ...   # NotFound
    def has_manifest(self, repo: str, digest: str) -> bool: ...
    def revisions(self, repo: str) -> list[str]: ...
    def delete_manifest(self, repo: str, digest: str) -> bool: ...
    def tags(self, repo: str) -> list[str]: ...              # NotFound: no such repository
    def tag(self, repo: str, tag: str) -> str: ...            # NotFound
    def set_tag(self, repo: str, tag: str, digest: str) -> None: ...
    def delete_tag(self, repo: str, tag: str) -> bool: ...
    def add_referrer(self, repo: str, subject: str, descriptor: dict[str, Any]) -> None: ...
    def referrers(self, repo: str, subject: str) -> list[dict[str, Any]]: ...
    def remove_referrer(self, repo: str, subject: str, digest: str) -> None: ...


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


def _write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    _fsync_dir(os.path.dirname(path))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except (FileNotFoundError, NotADirectoryError):
        return False


class _Session:
    """In-process state of an upload: its running hash, so finishing does not reread the data.

    ``lock`` serialises the chunks of one session; a session the process did
    not start (after a restart) is rehashed from its data file once.
    """

    def __init__(self, hasher: Any, offset: int) -> None:
        self.lock = threading.Lock()
        self.hasher = hasher
        self.offset = offset


class FileStorage:
    def __init__(self, root: str) -> None:
        self.root = root
        self.content = FileContentStore(root)
        self.uploads_dir = os.path.join(root, "uploads")
        self.repos_dir = os.path.join(root, "repositories")
        os.makedirs(self.uploads_dir, exist_ok=True)
        os.makedirs(self.repos_dir, exist_ok=True)
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()  # guards _sessions

    # -- blobs ---------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        return self.content.blob_path(digest)

    def blob_size(self, digest: str) -> int:
        return self.content.info(digest).size

    def open_blob(self, digest: str) -> BinaryIO:
        return self.content.open(digest)

    def put_blob(self, body: Reader, length: int | None, digest: str) -> int:
        path = os.path.join(self.content.ingest_dir, secrets.token_hex(16))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            hasher = hashlib.sha256()
            size = copy_hashing(body, fd, 0, hasher, length)
            if length is not None and size != length:
                raise ConnectionError("request body ended early")
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest:
                raise DataCorruption(f"digest mismatch: expected {digest}, got {actual}")
            os.fsync(fd)
            target = self.content.blob_path(digest)
            os.rename(path, target)
            _fsync_dir(os.path.dirname(target))
            return size
        finally:
            os.close(fd)
            _unlink(path)  # gone already unless something failed: nothing half-written stays

    def delete_blob(self, digest: str) -> None:
        self.content.delete(digest)

    def walk_blobs(self) -> Iterator[str]:
        for info in self.content.walk():
            yield info.digest

    # -- upload sessions -----------------------------------------------------

    def _upload_dir(self, uuid: str) -> str:
        return os.path.join(self.uploads_dir, uuid)

    def start_upload(self, repo: str) -> Upload:
        uuid = secrets.token_hex(16)
        d = self._upload_dir(uuid)
        os.makedirs(d)
        started = time.time()
        with open(os.path.join(d, "repo"), "w") as f:
            f.write(repo)
        open(os.path.join(d, "data"), "wb").close()
        with self._sessions_lock:
            self._sessions[uuid] = _Session(hashlib.sha256(), 0)
        return Upload(uuid, repo, 0, started)

    def _session(self, repo: str, uuid: str) -> _Session:
        if not (len(uuid) == 32 and all(c in "0123456789abcdef" for c in uuid)):
            raise UploadUnknown(uuid)
        if _read(os.path.join(self._upload_dir(uuid), "repo")) != repo:
            raise UploadUnknown(uuid)
        with self._sessions_lock:
            session = self._sessions.get(uuid)
            if session is None:
                hasher = hashlib.sha256()
                size = 0
                try:
                    with open(os.path.join(self._upload_dir(uuid), "data"), "rb") as f:
                        while chunk := f.read(_CHUNK):
                            hasher.update(chunk)
                            size += len(chunk)
                except FileNotFoundError:
                    raise UploadUnknown(uuid) from None  # finished or purged meanwhile
                session = self._sessions[uuid] = _Session(hasher, size)
        return session

    def upload(self, repo: str, uuid: str) -> Upload:
        session = self._session(repo, uuid)
        started = os.stat(os.path.join(self._upload_dir(uuid), "repo")).st_mtime
        return Upload(uuid, repo, session.offset, started)

    def append(self, repo: str, uuid: str, body: Reader, length: int | None, start: int | None) -> Upload:
        session = self._session(repo, uuid)
        with session.lock:
            if start is not None and start != session.offset:
                raise OutOfOrder(session.offset)
            path = os.path.join(self._upload_dir(uuid), "data")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise UploadUnknown(uuid) from None
            try:
                # The hash and offset advance only with bytes written: a chunk cut short
                # by a dropped connection leaves the session at the last byte received.
                before = session.offset

                def advance(n: int) -> None:
                    session.offset += n

                try:
                    copy_hashing(body, fd, before, session.hasher, length, advance)
                finally:
                    os.ftruncate(fd, session.offset)
                if length is not None and session.offset - before != length:
                    raise ConnectionError("request body ended early")
            finally:
                os.close(fd)
            return Upload(uuid, repo, session.offset, 0.0)

    def finish_upload(self, repo: str, uuid: str, digest: str) -> int:
        session = self._session(repo, uuid)
        with session.lock:
            d = self._upload_dir(uuid)
            actual = "sha256:" + session.hasher.hexdigest()
            if actual != digest:
                raise DataCorruption(f"digest mismatch: expected {digest}, got {actual}")
            data = os.path.join(d, "data")
            fd = os.open(data, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            target = self.content.blob_path(digest)
            # rename is atomic: of two sessions finishing the same blob at once,
            # the second replaces the first with identical bytes.
            os.rename(data, target)
            _fsync_dir(os.path.dirname(target))
            size = session.offset
            self._drop_session(uuid)
            self.link_blob(repo, digest)
            return size

    def _drop_session(self, uuid: str) -> None:
        with self._sessions_lock:
            self._sessions.pop(uuid, None)
        shutil.rmtree(self._upload_dir(uuid), ignore_errors=True)

    def cancel_upload(self, repo: str, uuid: str) -> None:
        session = self._session(repo, uuid)
        with session.lock:
            self._drop_session(uuid)

    def expire_uploads(self, older_than: float) -> int:
        removed = 0
        for uuid in os.listdir(self.uploads_dir):
            try:
                # idle since the last chunk written
                touched = os.stat(os.path.join(self._upload_dir(uuid), "data")).st_mtime
            except FileNotFoundError:
                touched = 0.0
            if touched < older_than:
                self._drop_session(uuid)
                removed += 1
        return removed

    # -- repositories --------------------------------------------------------

    def _repo(self, repo: str, *parts: str) -> str:
        return os.path.join(self.repos_dir, repo, *parts)

    def repositories(self) -> list[str]:
        found: list[str] = []
        for dirpath, dirnames, _ in os.walk(self.repos_dir):
            if "_manifests" in dirnames or "_layers" in dirnames:
                found.append(os.path.relpath(dirpath, self.repos_dir))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("_"))
        return sorted(found)

    def link_blob(self, repo: str, digest: str) -> None:
        path = self._repo(repo, "_layers", _hex(digest))
        if not os.path.exists(path):
            _write_atomic(path, b"")

    def has_blob_link(self, repo: str, digest: str) -> bool:
        return os.path.exists(self._repo(repo, "_layers", _hex(digest)))

    def unlink_blob(self, repo: str, digest: str) -> bool:
        return _unlink(self._repo(repo, "_layers", _hex(digest)))

    def put_manifest(self, repo: str, digest: str, media_type: str, data: bytes) -> None:
        self.content.put_bytes(data, digest)
        _write_atomic(self._repo(repo, "_manifests", "revisions", _hex(digest)), media_type.encode())

    def manifest(self, repo: str, digest: str) -> tuple[str, bytes]:
        media_type = _read(self._repo(repo, "_manifests", "revisions", _hex(digest)))
        if media_type is None:
            raise NotFound(f"manifest {digest}")
        with self.content.open(digest) as f:
            return media_type, f.read()

    def has_manifest(self, repo: str, digest: str) -> bool:
        return os.path.exists(self._repo(repo, "_manifests", "revisions", _hex(digest)))

    def revisions(self, repo: str) -> list[str]:
        try:
            names = os.listdir(self._repo(repo, "_manifests", "revisions"))
        except FileNotFoundError:
            return []
        return ["sha256:" + n for n in names if len(n) == 64]

    def delete_manifest(self, repo: str, digest: str) -> bool:
        return _unlink(self._repo(repo, "_manifests", "revisions", _hex(digest)))

    def tags(self, repo: str) -> list[str]:
        if not os.path.isdir(self._repo(repo)) or not (
            os.path.isdir(self._repo(repo, "_manifests")) or os.path.isdir(self._repo(repo, "_layers"))
        ):
            raise NotFound(f"repository {repo}")
        try:
            names = os.listdir(self._repo(repo, "_manifests", "tags"))
        except FileNotFoundError:
            return []
        return sorted(n for n in names if ".tmp-" not in n)

    def tag(self, repo: str, tag: str) -> str:
        digest = _read(self._repo(repo, "_manifests", "tags", tag))
        if digest is None:
            raise NotFound(f"tag {tag}")
        return digest

    def set_tag(self, repo: str, tag: str, digest: str) -> None:
        _write_atomic(self._repo(repo, "_manifests", "tags", tag), digest.encode())

    def delete_tag(self, repo: str, tag: str) -> bool:
        return _unlink(self._repo(repo, "_manifests", "tags", tag))

    def add_referrer(self, repo: str, subject: str, descriptor: dict[str, Any]) -> None:
        path = self._repo(repo, "_referrers", _hex(subject), _hex(descriptor["digest"]))
        _write_atomic(path, json.dumps(descriptor).encode())

    def referrers(self, repo: str, subject: str) -> list[dict[str, Any]]:
        d = self._repo(repo, "_referrers", _hex(subject))
        try:
            names = sorted(os.listdir(d))
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for name in names:
            text = _read(os.path.join(d, name))
            if text is not None and ".tmp-" not in name:
                out.append(json.loads(text))
        return out

    def remove_referrer(self, repo: str, subject: str, digest: str) -> None:
        _unlink(self._repo(repo, "_referrers", _hex(subject), _hex(digest)))
