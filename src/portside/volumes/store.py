"""The local volume driver: ``<root>/volumes/<name>/_data`` per volume, a JSON record beside it.

A volume created for a container (named on first use, or anonymous for an
image's VOLUME) carries a ``copyup`` marker: the container's init copies the
image's content at the mount point into it the first time, as Docker does,
and removes the marker.

A volume made with driver options (``type``, ``device``, ``o``) is a mount
on its ``_data`` while containers use it (``portside.volumes.options``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from portside.errors import Conflict, Internal, InvalidArgument, NotFound
from portside.events import VOLUME, Recorder
from portside.timefmt import format_rfc3339
from portside.volumes import options as driver_options

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
COPYUP_MARKER = "copyup"


@dataclass
class Volume:
    name: str
    created_at: str
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False


class VolumeStore:
    def __init__(self, root: str, *, data_owner: tuple[int, int] | None = None,
                 events: Recorder | None = None) -> None:
        self.root = root
        self.events = events or Recorder()
        self.data_owner = data_owner  # uid, gid of new _data dirs: a remapped container root's (--userns-remap)
        os.makedirs(root, mode=0o701, exist_ok=True)
        self._lock = threading.Lock()  # guards creation and removal

    def _directory(self, untrusted_name: str) -> str:
        """The volume's directory; a name that could not have been created is no volume (no "..", no "/")."""
        if not _NAME.fullmatch(untrusted_name):
            raise NotFound(f"get {untrusted_name}: no such volume")
        return os.path.join(self.root, untrusted_name)

    def mountpoint(self, name: str) -> str:
        return os.path.join(self._directory(name), "_data")

    def create(self, name: str | None = None, *, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, anonymous: bool = False, copyup: bool = False) -> Volume:
        """Create a volume, or return the existing one of that name (Docker's create is idempotent)."""
        name = name or secrets.token_hex(32)
        if not _NAME.fullmatch(name):
            raise InvalidArgument(f'create {name}: "{name}" includes invalid characters for a local volume name, '
                                  "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
                                  "directory, use absolute path")
        try:
            driver_options.validate(options or {})
        except InvalidArgument as e:
            raise InvalidArgument(f"create {name}: {e}") from None
        with self._lock:
            try:
                found = self.get(name)
                self.events.emit(VOLUME, "create", name, {"driver": "local"})  # dockerd logs it each time
                return found
            except NotFound:
                pass
            directory = os.path.join(self.root, name)
            tmp = os.path.join(self.root, ".tmp-" + secrets.token_hex(8))
            os.makedirs(os.path.join(tmp, "_data"), mode=0o755)
            if self.data_owner is not None:
                os.chown(os.path.join(tmp, "_data"), *self.data_owner)
            # dockerd formats the time with RFC 3339 to the second
            created = format_rfc3339(int(os.path.getmtime(tmp)) * 1_000_000_000)
            volume = Volume(name, created, dict(labels or {}), dict(options or {}), anonymous)
            with open(os.path.join(tmp, "volume.json"), "w") as f:
                json.dump(asdict(volume), f)
            if copyup:
                open(os.path.join(tmp, COPYUP_MARKER), "w").close()
            os.rename(tmp, directory)
        self.events.emit(VOLUME, "create", name, {"driver": "local"})
        return volume

    def get(self, name: str) -> Volume:
        try:
            with open(os.path.join(self._directory(name), "volume.json")) as f:
                doc: dict[str, Any] = json.load(f)
        except (FileNotFoundError, NotADirectoryError, ValueError):
            raise NotFound(f"get {name}: no such volume") from None
        return Volume(**doc)

    def all(self) -> list[Volume]:
        out = []
        for name in sorted(os.listdir(self.root)):
            if not name.startswith("."):
                try:
                    out.append(self.get(name))
                except NotFound:
                    continue
        return out

    def remove(self, name: str, users: list[str]) -> None:
        """Remove a volume that no container uses (``users``: the IDs of those that do)."""
        self.get(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        with self._lock:
            directory = self._directory(name)
            driver_options.unmount(self.mountpoint(name))
            # never delete through a mount: a bind volume's _data is the host's directory
            left = driver_options.mount_points(directory)
            if left:
                raise Internal(f"remove {name}: volume is still mounted at {', '.join(left)}")
            doomed = os.path.join(self.root, ".rm-" + secrets.token_hex(8))
            os.rename(directory, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        self.events.emit(VOLUME, "destroy", name, {"driver": "local"})

    # -- mounts of volumes with driver options -------------------------------------

    def has_mount(self, name: str) -> bool:
        """Whether the volume is made with driver options that mount something (False if it is gone)."""
        try:
            return driver_options.needs_mount(self.get(name).options)
        except NotFound:
            return False

    def mount(self, name: str) -> None:
        """Mount a volume made with driver options on its _data, unless it is already (others do nothing)."""
        volume = self.get(name)
        if not driver_options.needs_mount(volume.options):
            return
        with self._lock:
            if not driver_options.mounted(self.mountpoint(name)):
                driver_options.mount(volume.options, self.mountpoint(name))

    def unmount(self, name: str) -> None:
        """Undo ``mount`` once no running container uses the volume (the caller knows)."""
        try:
            volume = self.get(name)
        except NotFound:
            return
        if driver_options.needs_mount(volume.options):
            with self._lock:
                driver_options.unmount(self.mountpoint(name))

    def usage(self, name: str) -> int:
        """Bytes used, as moby's directory.Size counts them: all but directories, a hard-linked inode once."""
        total = 0
        seen: set[tuple[int, int]] = set()
        for dirpath, dirnames, files in os.walk(self.mountpoint(name)):
            for entry in (*files, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))):
                try:
                    st = os.lstat(os.path.join(dirpath, entry))
                except OSError:
                    continue
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
        return total
