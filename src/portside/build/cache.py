"""The build cache: a step's key to the image that step made.

A key is the parent image's ID, the instruction as it ran (variables
expanded, build args included) and, for COPY/ADD, a hash of the files'
content and metadata. The index is one JSON file written temp → fsync →
rename; an entry whose image is gone is a miss (``docker image prune`` does
not need to know about it).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading

from portside.errors import NotFound
from portside.images.service import ImageService


# One lock per index file, shared by every BuildCache on it (one per build request).
_locks: dict[str, threading.Lock] = {}


def step_key(parent: str, command: str, content: str = "") -> str:
    return hashlib.sha256(json.dumps([parent, command, content]).encode()).hexdigest()


class BuildCache:
    def __init__(self, directory: str, images: ImageService) -> None:
        self.path = os.path.join(directory, "cache.json")
        self.images = images
        self._lock = _locks.setdefault(self.path, threading.Lock())  # guards the index file's read-modify-write
        os.makedirs(directory, mode=0o700, exist_ok=True)

    def _read(self) -> dict[str, str]:
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> str | None:
        """The image made by the step ``key``, if it is still in the store."""
        with self._lock:
            image_id = self._read().get(key)
        if not image_id:
            return None
        try:
            self.images.load_image(image_id)
        except NotFound:
            return None
        return image_id

    def put(self, key: str, image_id: str) -> None:
        with self._lock:
            data = self._read()
            data[key] = image_id
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(data, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)

    def prune(self) -> list[str]:
        """Forget every entry (``POST /build/prune``); returns their keys."""
        with self._lock:
            keys = sorted(self._read())
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        return keys
