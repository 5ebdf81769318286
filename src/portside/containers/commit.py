"""``docker commit``: a container's changes become a new image on top of its image.

In dockerd's order (daemon/commit.go ``CreateImageFromContainer``): refuse a
dead container or one being removed; freeze a running one while its layer is
read (``pause``, the default); the new config is the request's (or else the
container's) with the ``--change`` instructions applied, then completed from
the container's config (moby's ``merge``); the layer is the container's upper
directory as a tar (archive.layerdiff); the image is added on top of the
container's image (images.commit), which becomes its Parent.

What dockerd keeps out of the diff, because it lives in a separate "init"
layer there, is kept out here too: the mount points the runtime makes itself
(``/proc``, ``/dev``, ``/etc/hosts``...) when the image lacked them. The mount
points of the container's volumes and binds stay in, as in dockerd.

Everything the request says is checked before anything is paused or written.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from portside.archive.layerdiff import mount_placeholders, write_layer_diff
from portside.containers.eventlog import container_event
from portside.containers.record import State
from portside.containers import userns
from portside.containers.service import ContainerService
from portside.errors import Conflict, InvalidArgument, PortsideError
from portside.images.changes import apply_changes
from portside.images.commit import Commit, commit_image
from portside.oci.reference import Reference, parse_normalized, parse_repository_and_tag

log = logging.getLogger(__name__)

# Where the runtime mounts something of its own (containers.spec's default
# mounts, the etc files, --init and a terminal's console): dockerd's init layer
# holds these mount points.
RUNTIME_MOUNT_POINTS = (
    "/proc", "/sys", "/sys/fs/cgroup", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/console", "/dev/init",
    "/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
)


@dataclass(frozen=True)
class CommitRequest:
    container: str
    repo: str = ""
    tag: str = ""
    author: str = ""
    comment: str = ""
    pause: bool = True
    changes: tuple[str, ...] = ()
    config: dict[str, Any] | None = None   # the request's Config (images.containerconfig.decode)


def commit_container(service: ContainerService, request: CommitRequest) -> str:
    """Commit the container; returns the new image's ID."""
    if not request.container:
        raise InvalidArgument('invalid name or ID supplied: ""')
    record = service.get(request.container)
    if record.state is State.DEAD:
        raise Conflict(f"You cannot commit container {record.id} which is Dead")
    if record.state is State.REMOVING:
        raise Conflict(f"You cannot commit container {record.id} which is being removed")
    tags = [_target(request.repo, request.tag)] if request.repo else []
    base = request.config if request.config is not None else record.config
    config = merge_config(apply_changes(base, list(request.changes)), record.config)
    image = service.images.load_image(record.image_id)
    snapshots = service.images.snapshots
    upper = snapshots.upper_path(record.id)
    lowers = [snapshots.layer_path(layer.chain_id) for layer in reversed(image.row.layers)]
    commit = Commit(config=config, created_by=" ".join(record.config.get("Cmd") or []), author=request.author,
                    comment=request.comment, container_id=record.id, container_config=record.config, tags=tags)
    with _paused(service, record.id, request.pause):
        skip = mount_placeholders(upper, lowers, RUNTIME_MOUNT_POINTS)
        ids = userns.bundle_ids_of(service.store.dir(record.id))
        owners = ids.to_container if ids is not None else None
        image_id = commit_image(service.images, image,
                                lambda write: write_layer_diff(upper, write, skip=skip, owners=owners), commit)
        for tag in tags:
            service.images.event(image_id, "tag", tag.familiar())
        container_event(service.events, record, "commit", {"comment": request.comment, "imageID": image_id,
                                                           "imageRef": tags[0].familiar() if tags else ""})
    return image_id


def _target(repo: str, tag: str) -> Reference:
    if parse_normalized(repo).digest is not None:
        raise InvalidArgument("refusing to create a tag with a digest reference")
    return parse_repository_and_tag(repo, tag or None)


@contextlib.contextmanager
def _paused(service: ContainerService, cid: str, pause: bool) -> Iterator[None]:
    """Freeze a running container for the block; as dockerd, a pause that fails is not an error."""
    paused = False
    if pause:
        try:
            service.pause(cid)
            paused = True
        except Conflict:
            pass  # not running, or paused already: nothing to freeze or thaw
        except (PortsideError, OSError) as e:
            log.warning("commit of %s: cannot pause it: %s", cid[:12], e)
    try:
        yield
    finally:
        if paused:
            try:
                service.unpause(cid)
            except Conflict:
                pass  # it exited (or was unpaused) meanwhile
            except (PortsideError, OSError) as e:
                log.warning("commit of %s: cannot unpause it: %s", cid[:12], e)


def merge_config(user: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, Any]:
    """moby's ``merge``: what the commit's config leaves empty comes from the container's."""
    out = dict(user)
    if not out.get("User"):
        out["User"] = container.get("User") or ""
    ports = dict(container.get("ExposedPorts") or {})
    out["ExposedPorts"] = {**ports, **(out.get("ExposedPorts") or {})} if out.get("ExposedPorts") else ports
    if not out.get("Env"):
        out["Env"] = container.get("Env")
    else:
        keys = {e.split("=", 1)[0] for e in out["Env"]}
        out["Env"] = [*out["Env"], *(e for e in container.get("Env") or [] if e.split("=", 1)[0] not in keys)]
    out["Labels"] = {**(container.get("Labels") or {}), **(out.get("Labels") or {})}
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = container.get("Cmd")
            out["ArgsEscaped"] = container.get("ArgsEscaped")
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = container.get("Entrypoint")
    health = container.get("Healthcheck")
    if health:
        mine = dict(out.get("Healthcheck") or {})
        out["Healthcheck"] = {**health, **{k: v for k, v in mine.items() if v}} if mine else health
    if not out.get("WorkingDir"):
        out["WorkingDir"] = container.get("WorkingDir") or ""
    volumes = container.get("Volumes") or {}
    out["Volumes"] = {**out["Volumes"], **volumes} if out.get("Volumes") else (volumes or None)
    if not out.get("StopSignal"):
        out["StopSignal"] = container.get("StopSignal") or ""
    return out
