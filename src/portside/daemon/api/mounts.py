"""A container's mount points as the Engine API shows them (``Mounts`` of inspect and of the list)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence


def mounts_json(points: Sequence[Mapping[str, Any]], volume_path: Callable[[str], str]) -> list[dict[str, Any]]:
    """moby's types.MountPoint for each stored mount point (spec.MountPoint fields), by destination.

    ``volume_path`` gives a volume's directory on the host (its Source).
    """
    out = []
    for p in sorted(points, key=lambda p: str(p.get("destination", ""))):
        doc: dict[str, Any] = {"Type": p.get("type", ""), "Source": p.get("source", "")}
        if doc["Type"] == "volume":
            doc = {"Type": "volume", "Name": p.get("source", ""), "Source": volume_path(p.get("source", ""))}
        doc["Destination"] = p.get("destination", "")
        if doc["Type"] == "volume":
            doc["Driver"] = "local"
        doc.update({"Mode": p.get("mode", ""), "RW": bool(p.get("rw", True)), "Propagation": p.get("propagation", "")})
        out.append(doc)
    return out
