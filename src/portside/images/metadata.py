"""The image metadata database (sqlite3 in WAL mode).

The database is the single source of truth for which images exist. Blobs and
layer directories are written first; one transaction here makes an image
visible, so a crash before it leaves only unreferenced files, which the
daemon sweeps at start.

Tables::

    images(id, created, size, added)       id = config digest (the image ID)
    image_layers(image_id, idx, ...)       per layer: diff ID, chain ID and the blob that carries it
    names(name, image_id, kind)            kind 'tag': docker.io/library/busybox:latest
                                           kind 'digest': docker.io/library/busybox@sha256:... (RepoDigests)
    manifests(image_id, digest, media_type)  manifest blobs kept for an image (for save and push)
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

from portside.errors import NotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    size INTEGER NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    diff_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    blob_digest TEXT NOT NULL,
    blob_media_type TEXT NOT NULL,
    blob_size INTEGER NOT NULL,
    tarsplit TEXT,
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS names (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS names_image ON names(image_id);
CREATE TABLE IF NOT EXISTS manifests (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (image_id, digest)
);
CREATE TABLE IF NOT EXISTS parents (
    image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    parent TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
"""


@dataclass(frozen=True)
class LayerRow:
    diff_id: str
    chain_id: str
    size: int            # bytes of the unpacked layer's file contents
    blob_digest: str     # the layer blob's digest (for a tar-split layer: the diff ID; no blob is stored)
    blob_media_type: str
    blob_size: int
    tarsplit: str | None = None  # the tar-split blob that, with the layer directory, gives the tar back


@dataclass(frozen=True)
class ImageRow:
    id: str
    created: str
    size: int
    added: float
    layers: tuple[LayerRow, ...]


class MetadataDB:
    """Thread-safe: one connection, every call under ``_lock``."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()  # guards _conn and _generation
        self._generation = 0
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- writes ---------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Moves on with every write: what a reader derived from the database holds while it stays the same."""
        return self._generation

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _transaction(self._conn) as c:
            yield c
            # before the COMMIT, under the lock: a reader that sees the new generation reads after the commit
            self._generation += 1

    def add_image(self, image: ImageRow, *, tags: Iterable[str] = (), digests: Iterable[str] = (),
                  manifests: Iterable[tuple[str, str]] = (), parent: str | None = None) -> list[tuple[str, str]]:
        """Make an image visible with its names, atomically.

        Returns (name, previous image id) for every tag that moved away from
        another image, so the caller can report or collect the old image.
        """
        now = time.time()
        moved: list[tuple[str, str]] = []
        with self._write() as c:
            c.execute("INSERT OR IGNORE INTO images(id, created, size, added) VALUES (?,?,?,?)",
                      (image.id, image.created, image.size, image.added))
            if not c.execute("SELECT 1 FROM image_layers WHERE image_id=?", (image.id,)).fetchone():
                c.executemany(
                    "INSERT INTO image_layers VALUES (?,?,?,?,?,?,?,?,?)",
                    [(image.id, i, la.diff_id, la.chain_id, la.size, la.blob_digest, la.blob_media_type, la.blob_size,
                      la.tarsplit)
                     for i, la in enumerate(image.layers)])
            for name in tags:
                moved.extend(self._set_name(c, name, image.id, "tag", now))
            for name in digests:
                self._set_name(c, name, image.id, "digest", now)
            c.executemany("INSERT OR IGNORE INTO manifests VALUES (?,?,?)",
                          [(image.id, d, m) for d, m in manifests])
            if parent is not None and parent != image.id:
                # a parent removed meanwhile is simply not recorded
                c.execute("INSERT OR IGNORE INTO parents SELECT ?, id FROM images WHERE id=?", (image.id, parent))
        return moved

    @staticmethod
    def _set_name(c: sqlite3.Connection, name: str, image_id: str, kind: str, now: float) -> list[tuple[str, str]]:
        row = c.execute("SELECT image_id FROM names WHERE name=?", (name,)).fetchone()
        c.execute("INSERT OR REPLACE INTO names VALUES (?,?,?,?)", (name, image_id, kind, now))
        if row and row[0] != image_id:
            return [(name, row[0])]
        return []

    def set_name(self, name: str, image_id: str, kind: str = "tag") -> str | None:
        """Point ``name`` at ``image_id``; returns the image it pointed at before, if another."""
        try:
            with self._write() as c:
                moved = self._set_name(c, name, image_id, kind, time.time())
        except sqlite3.IntegrityError:  # the image was removed meanwhile
            raise NotFound(f"No such image: {image_id}") from None
        return moved[0][1] if moved else None

    def remove_name(self, name: str) -> bool:
        with self._write() as c:
            return c.execute("DELETE FROM names WHERE name=?", (name,)).rowcount > 0

    def remove_image(self, image_id: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM images WHERE id=?", (image_id,))

    # -- reads ----------------------------------------------------------------

    def image_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT id FROM images ORDER BY added DESC")]

    def get_image(self, image_id: str) -> ImageRow | None:
        with self._lock:
            row = self._conn.execute("SELECT id, created, size, added FROM images WHERE id=?", (image_id,)).fetchone()
            if row is None:
                return None
            layers = tuple(LayerRow(*r) for r in self._conn.execute(
                "SELECT diff_id, chain_id, size, blob_digest, blob_media_type, blob_size, tarsplit FROM image_layers "
                "WHERE image_id=? ORDER BY idx", (image_id,)))
        return ImageRow(row[0], row[1], row[2], row[3], layers)

    def images(self) -> Iterator[ImageRow]:
        for image_id in self.image_ids():
            row = self.get_image(image_id)
            if row is not None:
                yield row

    def find_id_prefix(self, hex_prefix: str) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute(
                "SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2",
                ("sha256:" + hex_prefix, "sha256:" + hex_prefix + "\x7f"))]

    def lookup_name(self, name: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT image_id FROM names WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def names_of(self, image_id: str) -> list[tuple[str, str, float]]:
        """(name, kind, updated) of an image, oldest first."""
        with self._lock:
            return [(r[0], r[1], r[2]) for r in self._conn.execute(
                "SELECT name, kind, updated FROM names WHERE image_id=? ORDER BY updated, name", (image_id,))]

    def all_names(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return [(r[0], r[1], r[2]) for r in self._conn.execute("SELECT name, image_id, kind FROM names")]

    def manifests_of(self, image_id: str) -> list[tuple[str, str]]:
        with self._lock:
            return [(r[0], r[1]) for r in self._conn.execute(
                "SELECT digest, media_type FROM manifests WHERE image_id=?", (image_id,))]

    def parent_of(self, image_id: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT parent FROM parents WHERE image_id=?", (image_id,)).fetchone()
        return row[0] if row else None

    def referenced_blobs(self) -> set[str]:
        with self._lock:
            out = {r[0] for r in self._conn.execute("SELECT id FROM images")}
            out |= {r[0] for r in self._conn.execute("SELECT blob_digest FROM image_layers")}
            out |= {r[0] for r in self._conn.execute("SELECT tarsplit FROM image_layers WHERE tarsplit IS NOT NULL")}
            out |= {r[0] for r in self._conn.execute("SELECT digest FROM manifests")}
        return out

    def referenced_chains(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._conn.execute("SELECT chain_id FROM image_layers")}

    def layer_by_chain(self, chain_id: str) -> LayerRow | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT diff_id, chain_id, size, blob_digest, blob_media_type, blob_size, tarsplit FROM image_layers "
                "WHERE chain_id=? LIMIT 1", (chain_id,)).fetchone()
        return LayerRow(*row) if row else None



class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
