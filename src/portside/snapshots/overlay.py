"""Overlay snapshotter: one directory per layer, keyed by chain ID.

Layout under the snapshotter root::

    layers/<chain-id hex>/      a committed layer: the layer's diff with overlay
                                whiteouts, read-only by convention, shared by
                                every image whose chain contains it
    active/<key>/{fs,work}      a writable snapshot (a container layer) and
                                overlayfs's work dir
    tmp/<random>/               a layer being unpacked; renamed into layers/
                                once whole, removed by ``sweep`` after a crash
    empty/                      an empty lower dir for writable snapshots of
                                an empty chain (overlayfs needs a lowerdir)

Which committed layers belong to which images is the image database's
business; this module only knows directories.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import threading
from typing import Callable, Iterator, TypeVar

from portside.errors import Conflict, NotFound
from portside.oci import digest as digestlib
from portside.snapshots.mount import Mount

T = TypeVar("T")


class OverlaySnapshotter:
    def __init__(self, root: str) -> None:
        self.root = root
        self.layers_dir = os.path.join(root, "layers")
        self.active_dir = os.path.join(root, "active")
        self.tmp_dir = os.path.join(root, "tmp")
        self.empty_dir = os.path.join(root, "empty")
        for d in (self.layers_dir, self.active_dir, self.tmp_dir, self.empty_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)

    # -- committed layers ---------------------------------------------------

    def layer_path(self, chain_id: str) -> str:
        return os.path.join(self.layers_dir, digestlib.hex_of(chain_id))

    def has(self, chain_id: str) -> bool:
        return os.path.isdir(self.layer_path(chain_id))

    def begin(self) -> str:
        """A fresh directory to unpack a layer into; ``commit`` or ``abort`` it."""
        tmp = os.path.join(self.tmp_dir, secrets.token_hex(8))
        os.mkdir(tmp, 0o755)
        return tmp

    def commit(self, tmp: str, chain_id: str) -> None:
        """Make ``tmp`` the committed layer ``chain_id``.

        If another unpack committed the same chain ID meanwhile, ours is
        dropped: by definition of the chain ID the content is the same.
        """
        try:
            os.rename(tmp, self.layer_path(chain_id))
        except OSError:
            if not self.has(chain_id):
                raise
            _rmtree(tmp)

    def abort(self, tmp: str) -> None:
        _rmtree(tmp)

    def unpack(self, chain_id: str, apply: Callable[[str], T]) -> T:
        """Run ``apply(dir)`` on a fresh directory and commit it as ``chain_id``; nothing is kept if it raises."""
        tmp = self.begin()
        try:
            result = apply(tmp)
        except BaseException:
            self.abort(tmp)
            raise
        self.commit(tmp, chain_id)
        return result

    def remove_layer(self, chain_id: str) -> None:
        doomed = self.detach_layer(chain_id)
        if doomed is not None:
            self.abort(doomed)

    def detach_layer(self, chain_id: str) -> str | None:
        """Take a committed layer out of sight (a rename, fast); the caller ``abort``s the returned dir.

        Renaming first also means a crash mid-delete leaves a tmp dir, not half a layer.
        """
        path = self.layer_path(chain_id)
        if not os.path.isdir(path):
            return None
        doomed = os.path.join(self.tmp_dir, "rm-" + secrets.token_hex(8))
        os.rename(path, doomed)
        return doomed

    def usage(self, chain_id: str) -> int:
        """A committed layer's size as Docker counts it: file contents (each inode once) and symlinks."""
        return _tree_size(self.layer_path(chain_id))

    def upper_usage(self, key: str) -> int:
        """What a container wrote (Docker's ``SizeRw``), counted as ``usage`` counts a layer."""
        return _tree_size(self.upper_path(key))

    def layers(self) -> Iterator[str]:
        for name in os.listdir(self.layers_dir):
            if digestlib.is_hex(name):
                yield "sha256:" + name

    # -- mounts ---------------------------------------------------------------

    def _lowerdirs(self, chain: list[str]) -> str:
        """Overlay's lowerdir lists the topmost layer first; ``chain`` is bottom first."""
        for c in chain:
            if not self.has(c):
                raise NotFound(f"layer {c} is not unpacked")
        return ":".join(self.layer_path(c) for c in reversed(chain))

    def view(self, chain: list[str]) -> list[Mount]:
        """A read-only view of the chain (bottom layer first)."""
        if not chain:
            return [Mount("bind", self.empty_dir, ("ro",))]
        if len(chain) == 1:
            return [Mount("bind", self.layer_path(chain[0]), ("ro",))]
        return [Mount("overlay", "overlay", ("ro", "lowerdir=" + self._lowerdirs(chain)))]

    def prepare(self, key: str, chain: list[str]) -> list[Mount]:
        """Create a writable snapshot ``key`` on top of ``chain``; returns its mounts."""
        base = self._active_path(key)
        try:
            os.mkdir(base, 0o700)
        except FileExistsError:
            raise Conflict(f"snapshot {key} already exists") from None
        os.mkdir(os.path.join(base, "fs"), 0o755)
        os.mkdir(os.path.join(base, "work"), 0o700)
        return self.mounts(key, chain)

    def mounts(self, key: str, chain: list[str]) -> list[Mount]:
        base = self._active_path(key)
        if not os.path.isdir(base):
            raise NotFound(f"snapshot {key} does not exist")
        lower = self._lowerdirs(chain) if chain else self.empty_dir
        return [Mount("overlay", "overlay", (
            "lowerdir=" + lower,
            "upperdir=" + os.path.join(base, "fs"),
            "workdir=" + os.path.join(base, "work"),
            "index=off",
        ))]

    def active_keys(self) -> list[str]:
        """Every active (writable) snapshot's key."""
        return sorted(os.listdir(self.active_dir))

    def upper_path(self, key: str) -> str:
        return os.path.join(self._active_path(key), "fs")

    def remove(self, key: str, *, background: bool = False) -> None:
        """Remove snapshot ``key``: gone from the active ones at once; its files deleted now, or by a
        thread when ``background`` (a build step's scratch: nobody waits for its megabytes to be freed;
        a daemon stopped meanwhile leaves them in tmp/ for the next start's sweep)."""
        base = self._active_path(key)
        if os.path.isdir(base):
            doomed = os.path.join(self.tmp_dir, "rm-" + secrets.token_hex(8))
            os.rename(base, doomed)
            if background:
                try:
                    threading.Thread(target=_rmtree, args=(doomed,), name="snapshot-rm", daemon=True).start()
                    return
                except RuntimeError:
                    pass  # no thread to be had: delete it here
            _rmtree(doomed)

    def _active_path(self, key: str) -> str:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad snapshot key {key!r}")
        return os.path.join(self.active_dir, key)

    # -- maintenance ----------------------------------------------------------

    def sweep(self) -> int:
        """Remove unfinished unpacks and deletions; call only when nothing is unpacking."""
        names = os.listdir(self.tmp_dir)
        for name in names:
            _rmtree(os.path.join(self.tmp_dir, name))
        return len(names)


def _tree_size(path: str) -> int:
    total = 0
    seen: set[int] = set()
    for dirpath, dirs, files in os.walk(path):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_ino not in seen):
                seen.add(st.st_ino)
                total += st.st_size
    return total


def _rmtree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        # Immutable or busy entries: try once more, then give up loudly.
        shutil.rmtree(path)
