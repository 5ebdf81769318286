"""Container and volume events with the attributes dockerd gives them (moby ``daemon/events.go``).

A container event carries the container's labels, then ``image`` (the name it
was created from, as typed) and ``name`` (without the slash), which win over
a label of the same key; the action's own attributes come first and lose to
both, as in dockerd.
"""

from __future__ import annotations

from typing import Mapping, Protocol

from portside.containers.record import ContainerRecord
from portside.events import CONTAINER, VOLUME, Recorder


def container_event(recorder: Recorder, record: ContainerRecord, action: str,
                    attributes: Mapping[str, object] | None = None) -> None:
    attrs = {k: str(v) for k, v in (attributes or {}).items()}
    attrs.update(record.config.get("Labels") or {})
    if record.image:
        attrs["image"] = record.image
    attrs["name"] = record.name.lstrip("/")
    recorder.emit(CONTAINER, action, record.id, attrs)


class _Containers(Protocol):
    events: Recorder

    def get(self, name_or_id: str) -> ContainerRecord: ...


def emit_for(containers: _Containers, name_or_id: str, action: str,
             attributes: Mapping[str, object] | None = None) -> None:
    """For the API handlers: the event of an operation done on a container named by the client."""
    container_event(containers.events, containers.get(name_or_id), action, attributes)


def exec_action(action: str, cmd: list[str]) -> str:
    """``exec_create: sh -c date``: dockerd puts the command in the action itself, as the entrypoint,
    a space and the joined arguments (so ``true`` alone gives ``exec_create: true `` with its space)."""
    return f"{action}: {cmd[0]} {' '.join(cmd[1:])}"


def volume_mounts(recorder: Recorder, record: ContainerRecord, action: str) -> None:
    """``mount`` (at start) or ``unmount`` (at exit) of each volume the container uses."""
    for point in record.mount_points:
        if point.get("type") != "volume" or not point.get("source"):
            continue
        attrs = {"driver": "local", "container": record.id}
        if action == "mount":
            attrs.update({"destination": str(point.get("destination", "")),
                          "read/write": "true" if point.get("rw", True) else "false",
                          "propagation": str(point.get("propagation", ""))})
        recorder.emit(VOLUME, action, str(point["source"]), attrs)
