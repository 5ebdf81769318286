"""The monitor's cgroup removal when the cgroup is not in every hierarchy.

A spare killed while it made its cgroup, or an external runtime that removed
its own, leaves the cgroup in some hierarchies only: listing its processes
(in the primary hierarchy) then says it does not exist, and what is left in
the other hierarchies must still go.
"""

from __future__ import annotations

from portside.errors import NotFound
from portside.runtime.monitor import Monitor


class _PartialCgroup:
    def __init__(self) -> None:
        self.removed: list[str] = []

    def procs(self, path: str) -> list[int]:
        raise NotFound(f"cgroup {path} does not exist")

    def kill_all(self, path: str) -> None:
        raise AssertionError("nothing to kill in a cgroup that is not there")

    def remove(self, path: str) -> None:
        self.removed.append(path)

    def remove_if_unused(self, path: str) -> None:
        self.removed.append(path)


def test_a_cgroup_missing_from_the_primary_hierarchy_is_still_removed(tmp_path):
    monitor = Monitor(str(tmp_path))
    manager = _PartialCgroup()
    monitor._cgroups = manager  # type: ignore[assignment]
    monitor._remove_cgroup("portside/" + "a" * 64)
    assert manager.removed == ["portside/" + "a" * 64, "portside"]  # then the shared parent, if unused
