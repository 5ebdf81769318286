"""cgroup v2: one directory in the unified hierarchy.

    <root>/cgroup.subtree_control            "+cpuset +cpu +io +memory +pids ..." (each ancestor)
    <root>/portside/cgroup.subtree_control
    <root>/portside/<id>/memory.max, cpu.max, pids.max, ...

A controller's files appear in a cgroup only once its parent lists the
controller in ``cgroup.subtree_control``, and only a cgroup without
processes may do so ("no internal processes"): the ancestors enable every
controller they have, the container's own cgroup enables none. ``root`` is
the v2 mount point, or any directory laid out like one (the unit tests point
it at a tree of plain files: the interface is files).
"""

from __future__ import annotations

import os

from portside.cgroups import fs
from portside.cgroups.resources import Resources
from portside.cgroups.settings import v2_settings
from portside.cgroups.stats import Stats, host_cpu, v2_io
from portside.errors import NotFound, PortsideError, Unavailable

FREEZE_TIMEOUT = 10.0
KILL_TIMEOUT = 10.0
REMOVE_TIMEOUT = 5.0


class V2Manager:
    def __init__(self, root: str, *, proc: str = "/proc") -> None:
        self._root = root
        self._proc = proc

    def _leaf(self, path: str, *, must_exist: bool = True) -> str:
        d = os.path.join(self._root, fs.check_path(path))
        if must_exist and not os.path.isdir(d):
            raise NotFound(f"cgroup {path} does not exist")
        return d

    # lifecycle

    def create(self, path: str, resources: Resources) -> None:
        leaf = self._leaf(path, must_exist=False)
        current, new = self._root, False
        for part in fs.check_path(path).split("/"):
            self._enable_controllers(current)
            current = os.path.join(current, part)
            new = fs.mkdir(current)
        try:
            self._apply(leaf, resources, fresh=new)
        except BaseException:
            if new:
                try:
                    os.rmdir(leaf)
                except OSError:
                    pass
            raise

    def _enable_controllers(self, directory: str) -> None:
        available = (fs.read_optional(os.path.join(directory, "cgroup.controllers")) or "").split()
        if not available:
            return
        control = os.path.join(directory, "cgroup.subtree_control")
        try:
            fs.write(control, " ".join("+" + c for c in available))
        except PortsideError:
            # One refusal fails the whole write (cpu, while a realtime task runs in the cgroup);
            # enable the others one by one. A limit that needs a refused controller fails later, by name.
            for c in available:
                try:
                    fs.write(control, "+" + c)
                except PortsideError:
                    pass

    def update(self, path: str, resources: Resources) -> None:
        self._apply(self._leaf(path), resources, fresh=False)

    def _apply(self, leaf: str, r: Resources, *, fresh: bool) -> None:
        for setting in v2_settings(r):
            if fresh and setting.default:
                continue
            target = next(((os.path.join(leaf, f), v) for f, v in setting.choices
                           if fs.exists(os.path.join(leaf, f))), None)
            if target is None:
                if setting.skippable:
                    continue
                raise Unavailable(f"the cgroup v2 {setting.controller} controller is not available in {leaf}: "
                                  f"cannot set {setting.file}")
            fs.write(*target)

    def add_process(self, path: str, pid: int) -> None:
        fs.add_pid(self._leaf(path), pid)

    def remove(self, path: str) -> None:
        fs.rmdir_tree(self._leaf(path, must_exist=False), timeout=REMOVE_TIMEOUT)

    def remove_if_empty(self, path: str) -> None:
        fs.rmdir_if_empty(self._leaf(path, must_exist=False))

    # processes

    def procs(self, path: str) -> list[int]:
        return fs.procs(self._leaf(path))

    def freeze(self, path: str) -> None:
        leaf = self._leaf(path)
        freeze = os.path.join(leaf, "cgroup.freeze")
        if not fs.exists(freeze):
            raise Unavailable("this kernel has no cgroup v2 freezer (cgroup.freeze, Linux 5.2)")
        fs.write(freeze, "1")
        events = os.path.join(leaf, "cgroup.events")
        try:
            fs.wait_for(lambda: "frozen 1" in fs.read(events).splitlines(), timeout=FREEZE_TIMEOUT,
                        what=f"cgroup {path} to freeze")
        except PortsideError:
            fs.write(freeze, "0")
            raise

    def thaw(self, path: str) -> None:
        freeze = os.path.join(self._leaf(path), "cgroup.freeze")
        if fs.exists(freeze):
            fs.write(freeze, "0")

    def kill_all(self, path: str) -> None:
        leaf = self._leaf(path)
        kill = os.path.join(leaf, "cgroup.kill")
        atomic = fs.exists(kill)
        if atomic:
            fs.write(kill, "1")   # Linux 5.14+: every task, and whatever they fork meanwhile; frozen ones too
        else:
            frozen = fs.exists(os.path.join(leaf, "cgroup.freeze"))
            if frozen:
                try:
                    self.freeze(path)   # no forks while the list is read and signalled
                except PortsideError:
                    frozen = False
            fs.kill_pids(fs.procs(leaf))
            if frozen:
                self.thaw(path)

        def empty() -> bool:
            left = fs.procs(leaf)
            if left and not atomic:
                fs.kill_pids(left)
            return not left
        fs.wait_for(empty, timeout=KILL_TIMEOUT, what=f"the processes of cgroup {path} to exit")

    # figures

    def oom_killed(self, path: str) -> bool:
        events = fs.flat_keyed(fs.read_optional(os.path.join(self._leaf(path), "memory.events")))
        return events.get("oom_kill", 0) > 0

    def stats(self, path: str) -> Stats:
        leaf = self._leaf(path)

        def get(file: str) -> str | None:
            return fs.read_optional(os.path.join(leaf, file))

        memory_stat = fs.flat_keyed(get("memory.stat"))
        cpu = fs.flat_keyed(get("cpu.stat"))
        system, ncpu = host_cpu(self._proc)
        return Stats(
            memory_usage=fs.to_int(get("memory.current")) or 0,
            memory_max_usage=fs.to_int(get("memory.peak")),
            memory_limit=fs.to_int(get("memory.max")),
            memory_cache=memory_stat.get("file", 0),
            memory_stat=memory_stat,
            cpu_total=cpu.get("usage_usec", 0) * 1000,
            cpu_user=cpu.get("user_usec", 0) * 1000,
            cpu_system=cpu.get("system_usec", 0) * 1000,
            throttling_periods=cpu.get("nr_periods", 0),
            throttled_periods=cpu.get("nr_throttled", 0),
            throttled_time=cpu.get("throttled_usec", 0) * 1000,
            system_cpu_usage=system,
            online_cpus=ncpu,
            pids_current=fs.to_int(get("pids.current")) or 0,
            pids_limit=fs.to_int(get("pids.max")),
            blkio_service_bytes=v2_io(get("io.stat")),
        )
