"""A container's record and its lifecycle: one enum, one transition table, one file on disk.

Docker's ``Running``/``Paused``/``Restarting``/``Dead`` booleans are derived
from ``state`` at the API edge, never stored. Records are written whole,
temp → rename, so no reader sees half of one; how soon they reach the disk
is each save's ``Sync``. A record a power loss left torn (a new file whose
data never reached the disk) is found by ``torn`` at the daemon's start
and the container's leftovers removed, so it never shows up half-made.
"""

from __future__ import annotations

import enum
import itertools
import json
import os
import queue
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from portside.errors import Conflict, InvalidArgument, NotFound


class State(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    REMOVING = "removing"
    DEAD = "dead"


# state → the states it may move to
TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATED: frozenset({State.RUNNING, State.EXITED, State.REMOVING}),
    State.RUNNING: frozenset({State.EXITED, State.PAUSED, State.RESTARTING, State.REMOVING}),
    State.PAUSED: frozenset({State.RUNNING, State.EXITED, State.REMOVING}),
    State.RESTARTING: frozenset({State.RUNNING, State.EXITED, State.REMOVING}),
    State.EXITED: frozenset({State.RUNNING, State.RESTARTING, State.REMOVING}),
    State.REMOVING: frozenset({State.DEAD}),
    State.DEAD: frozenset({State.REMOVING}),
}

_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def validate_name(untrusted: str) -> str:
    """Docker's container name rule; returns the name with its leading slash."""
    if not _NAME.fullmatch(untrusted):
        raise InvalidArgument(f'Invalid container name ({untrusted}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    return untrusted if untrusted.startswith("/") else "/" + untrusted


@dataclass
class ContainerRecord:
    id: str
    name: str                       # with the leading slash, as Docker stores it
    image_id: str
    image: str                      # the image as the user named it
    created_ns: int
    config: dict[str, Any]          # Docker's Config, merged with the image's
    host_config: dict[str, Any]
    networking_config: dict[str, Any] = field(default_factory=dict)
    state: State = State.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_ns: int = 0
    finished_ns: int = 0
    oom_killed: bool = False
    restart_count: int = 0
    stopped_by_user: bool = False   # docker stop/kill: no restart policy brings it back
    # its binds, volumes and tmpfs mounts (spec.MountPoint fields), named: what inspect and --volumes-from read
    mount_points: list[dict[str, Any]] = field(default_factory=list)

    def move_to(self, new: State) -> None:
        if new is not self.state and new not in TRANSITIONS[self.state]:
            raise Conflict(f"container {self.id[:12]} cannot go from {self.state.value} to {new.value}")
        self.state = new

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["state"] = self.state.value
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "ContainerRecord":
        return cls(**{**doc, "state": State(doc["state"])})


class Sync(enum.Enum):
    """When a saved record must be on disk."""

    NOW = "now"       # fsync before save returns: user changes (rename, policies), removal
    SOON = "soon"     # fsync'd by a background flusher a moment later: creation
    NEVER = "never"   # left to the kernel: start and exit


@dataclass(frozen=True)
class Listed:
    """A record as ``ContainerStore.listing`` hands it out: shared, never to be changed.

    ``generation`` changes whenever the record is saved again, so what a reader
    derives from the record (the API's list entry) can be kept until it does.
    """

    generation: int
    record: ContainerRecord


class ContainerStore:
    """``<root>/containers/<id>/container.json`` per container.

    The daemon is the only writer of its root, so besides the files the store
    keeps the last saved state of every record in memory (``listing``): listing
    1000 containers then reads no file. The copy is filled from the disk on the
    first ``listing`` and follows every ``save`` and ``forget`` after it.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o710, exist_ok=True)
        self._to_flush: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._flusher: threading.Thread | None = None
        # Guards _listed, and orders each record's rename with its update there, so the
        # copy in memory is always the file's last content.
        self._listed_lock = threading.Lock()
        self._listed: dict[str, Listed] | None = None  # None until the first listing reads the disk
        self._generations = itertools.count(1)

    def dir(self, container_id: str) -> str:
        return os.path.join(self.root, container_id)

    def save(self, record: ContainerRecord, *, sync: Sync = Sync.NOW) -> None:
        """Replace the record atomically.

        Why not always ``Sync.NOW``: create, start and exit are on every ``docker run``'s
        path and an fsync costs 2 ms on a quiet disk and tens of milliseconds on a busy
        one. What a power loss can undo for start and exit (a container recorded as
        created or running) is what the reconcile at the daemon's start corrects anyway,
        since nothing survives a reboot running. A creation is flushed in the background
        (``Sync.SOON``): a crash within those milliseconds loses the container whole,
        its torn record is swept at the next start (``torn``).
        """
        directory = self.dir(record.id)
        os.makedirs(directory, mode=0o710, exist_ok=True)
        path = os.path.join(directory, "container.json")
        tmp = path + ".tmp"
        doc = record.to_json()
        with open(tmp, "w") as f:
            json.dump(doc, f)
            if sync is Sync.NOW:
                f.flush()
                os.fsync(f.fileno())
        with self._listed_lock:
            os.replace(tmp, path)
            if self._listed is not None:
                # a copy made from the document: the caller may go on changing its record
                self._listed[record.id] = Listed(next(self._generations), ContainerRecord.from_json(doc))
        if sync is Sync.SOON:
            self._flush_soon(path)

    def _flush_soon(self, path: str) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="record-flusher", daemon=True)
            self._flusher.start()
        self._to_flush.put(path)

    def _flush_loop(self) -> None:
        while True:
            path = self._to_flush.get()
            for target in (path, os.path.dirname(path)):  # the data, then the rename
                try:
                    fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    break  # removed meanwhile: nothing to keep
                try:
                    os.fsync(fd)
                except OSError:
                    pass
                finally:
                    os.close(fd)

    def forget(self, container_id: str) -> None:
        """Unlink the record: the container no longer exists, whatever of its directory is left."""
        with self._listed_lock:
            try:
                os.unlink(os.path.join(self.dir(container_id), "container.json"))
            except FileNotFoundError:
                pass
            if self._listed is not None:
                self._listed.pop(container_id, None)

    def orphans(self) -> list[str]:
        """Container directories without a record: a removal a crash cut short."""
        return [name for name in os.listdir(self.root)
                if not os.path.exists(os.path.join(self.root, name, "container.json"))
                and os.path.isdir(os.path.join(self.root, name))]

    def torn(self) -> list[str]:
        """IDs whose record cannot be read whole: a creation a crash cut short."""
        out = []
        for cid in self.ids():
            try:
                self.load(cid)
            except (ValueError, KeyError, TypeError):
                out.append(cid)
            except NotFound:
                continue
        return out

    def load(self, container_id: str) -> ContainerRecord:
        try:
            with open(os.path.join(self.dir(container_id), "container.json")) as f:
                return ContainerRecord.from_json(json.load(f))
        except FileNotFoundError:
            raise NotFound(f"No such container: {container_id}") from None

    def exists(self, container_id: str) -> bool:
        """Whether the container has a record: one stat, where ``ids()`` lists the whole directory."""
        return bool(container_id) and "/" not in container_id and container_id not in (".", "..") and \
            os.path.exists(os.path.join(self.root, container_id, "container.json"))

    def ids(self, prefix: str = "") -> list[str]:
        """The containers with a record (whose ID starts with ``prefix``)."""
        return [name for name in os.listdir(self.root)
                if name.startswith(prefix) and os.path.exists(os.path.join(self.root, name, "container.json"))]

    def listing(self) -> list[Listed]:
        """Every record as last saved, from memory; the records are shared: read them, never change them."""
        with self._listed_lock:
            if self._listed is None:
                # under the lock: a save that renames meanwhile waits, so nothing is missed
                self._listed = {r.id: Listed(next(self._generations), r) for r in self.all()}
            return list(self._listed.values())

    def all(self) -> list[ContainerRecord]:
        out = []
        for cid in self.ids():
            try:
                out.append(self.load(cid))
            except (NotFound, ValueError, KeyError, TypeError):
                continue
        return out
