"""A build step's filesystem transaction: a snapshot on the image so far, changed, diffed into a new image.

COPY, ADD and WORKDIR change the files without a container: the snapshot is
mounted on a private directory, written through an fd of its root, unmounted,
and its upper directory becomes the layer (with ``clamp_mtime`` so that the
same inputs give the same diff ID). RUN uses a container's snapshot instead
(build.run) and shares ``commit_upper``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import secrets
import tempfile
from collections.abc import Callable, Collection, Iterator

from portside.archive.layerdiff import DiffResult, write_layer_diff
from portside.images.commit import Commit, commit_image
from portside.images.service import Image, ImageService
from portside.snapshots.mount import Mount, mount_all, unmount


def fs_step(images: ImageService, parent: Image | None, scratch: str, change: Callable[[int], None],
            commit: Commit, *, clamp_mtime: int) -> str:
    """Prepare a snapshot on ``parent``, ``change(root_fd)`` it, commit its upper directory; returns the image ID.

    The snapshot is removed whatever happens: a failed step leaves nothing behind.
    """
    key = "build-" + secrets.token_hex(16)
    chain = [layer.chain_id for layer in parent.row.layers] if parent is not None else []
    mounts = images.snapshots.prepare(key, chain)
    try:
        with _mounted(mounts, scratch) as root_fd:
            change(root_fd)
        return commit_upper(images, parent, images.snapshots.upper_path(key), commit, clamp_mtime=clamp_mtime)
    finally:
        images.snapshots.remove(key, background=True)


@contextlib.contextmanager
def _mounted(mounts: list[Mount], scratch: str) -> Iterator[int]:
    global _volatile
    target = tempfile.mkdtemp(prefix="mnt-", dir=scratch)
    try:
        try:
            mount_all([_with_volatile(m) for m in mounts] if _volatile else mounts, target)
        except OSError as e:
            if not _volatile or e.errno != errno.EINVAL:
                raise
            mount_all(mounts, target)
            _volatile = False  # only now known: a kernel before 5.10, whose overlayfs lacks the option
        try:
            fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                yield fd
            finally:
                os.close(fd)
        finally:
            unmount(target, detach=True)
    finally:
        os.rmdir(target)


# volatile: no sync of the upper directory at unmount. It is read once into the new layer (stored and
# synced by the image store), then thrown away: syncing it first cost ~15 ms per 10 MiB written.
_volatile = True


def _with_volatile(m: Mount) -> Mount:
    return dataclasses.replace(m, options=(*m.options, "volatile")) if m.type == "overlay" else m


def commit_upper(images: ImageService, parent: Image | None, upper: str, commit: Commit, *,
                 clamp_mtime: int, skip: Collection[str] = ()) -> str:
    """The new image: ``parent`` plus the upper directory as a layer (none if it is empty)."""
    def write(out: Callable[[bytes], object]) -> DiffResult:
        return write_layer_diff(upper, out, skip=skip, clamp_mtime=clamp_mtime)
    return commit_image(images, parent, write, commit)


def commit_config(images: ImageService, parent: Image | None, commit: Commit) -> str:
    """A metadata step: the config changes, no layer (history says ``empty_layer``)."""
    def write(out: Callable[[bytes], object]) -> DiffResult:
        out(b"\0" * 1024)  # an empty tar: commit_image adds no layer for it
        return DiffResult(0, 1024)
    return commit_image(images, parent, write, commit)
