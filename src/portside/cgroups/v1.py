"""cgroup v1: one directory per hierarchy, and the unified hierarchy beside them on hybrid hosts.

A container's cgroup "portside/<id>" is the directory of that name under the
mount point of every v1 hierarchy the host has (cpu, cpuacct, cpuset,
memory, pids, blkio, freezer, devices, name=systemd, ... however they are
joined), as runc's fs driver lays it out. On a hybrid host it is also made in
the v2 hierarchy, which then tracks the same processes and lends its
``cgroup.kill``: the one way to kill every process of a cgroup without racing
its forks.

    /sys/fs/cgroup/memory/portside/<id>/memory.limit_in_bytes
    /sys/fs/cgroup/cpu/portside/<id>/cpu.cfs_quota_us          (or cpu,cpuacct/portside/<id>)
    /sys/fs/cgroup/unified/portside/<id>/cgroup.procs          (hybrid only)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from portside.cgroups import fs
from portside.cgroups.mountinfo import CgroupMount, v1_hierarchies, v2_mountpoint
from portside.cgroups.resources import Resources
from portside.cgroups.settings import Setting, v1_settings
from portside.cgroups.stats import V1_UNLIMITED, Stats, host_cpu, ticks_to_ns, v1_blkio
from portside.errors import InvalidArgument, NotFound, PortsideError, Unavailable

FREEZE_TIMEOUT = 10.0     # seconds; a v1 freeze races forks and may need many attempts (runc: 1000)
KILL_TIMEOUT = 10.0       # until every killed process has left the cgroup
REMOVE_TIMEOUT = 5.0      # rmdir retries while exiting processes leave

# Where procs() looks on a v1-only host, in order of preference (hybrid hosts use the v2 hierarchy).
_PRIMARY = ("pids", "freezer", "memory", "cpu", "cpuacct", "cpuset", "blkio", "devices", "name=systemd")


class V1Manager:
    """Container cgroups on v1 (and hybrid) hosts; see the module docstring for the layout.

    ``hierarchies`` maps each controller (or ``name=systemd``) to the mount
    point of its hierarchy; controllers mounted together share one mount
    point and get one directory. ``unified`` is the v2 mount point of a
    hybrid host. Both come from /proc/self/mountinfo (``from_mounts``), or
    from a test's fake tree.
    """

    def __init__(self, hierarchies: Mapping[str, str], *, unified: str | None = None, proc: str = "/proc") -> None:
        self._hierarchies = dict(hierarchies)
        self._unified = unified
        self._proc = proc
        self._tops = sorted(set(self._hierarchies.values())) + ([unified] if unified else [])

    @classmethod
    def from_mounts(cls, mounts: list[CgroupMount], *, proc: str = "/proc") -> V1Manager:
        return cls(v1_hierarchies(mounts), unified=v2_mountpoint(mounts), proc=proc)

    def _dir(self, controller: str, rel: str) -> str | None:
        top = self._hierarchies.get(controller)
        return os.path.join(top, rel) if top else None

    def _primary(self, rel: str) -> str:
        """The directory whose cgroup.procs is read: every hierarchy lists the same processes."""
        if self._unified:
            top = self._unified
        else:
            found = [self._hierarchies[c] for c in _PRIMARY if c in self._hierarchies] + self._tops
            if not found:
                raise Unavailable("no cgroup v1 hierarchy is mounted")
            top = found[0]
        d = os.path.join(top, rel)
        if not os.path.isdir(d):
            raise NotFound(f"cgroup {rel} does not exist")
        return d

    # lifecycle

    def create(self, path: str, resources: Resources) -> None:
        rel = fs.check_path(path)
        made: list[str] = []
        try:
            for top in self._tops:
                if self._make(top, rel, cpuset=top == self._hierarchies.get("cpuset")):
                    made.append(os.path.join(top, rel))
            # A directory that was there already (left by a crash) may hold old limits: reset everything.
            self._apply(rel, resources, fresh=len(made) == len(self._tops))
        except BaseException:
            for d in made:
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            raise

    def _make(self, top: str, rel: str, *, cpuset: bool) -> bool:
        current, new = top, False
        for part in rel.split("/"):
            parent, current = current, os.path.join(current, part)
            new = fs.mkdir(current)
            if cpuset:
                # A new v1 cpuset cgroup has no CPUs and no memory nodes, and no task can join it
                # until it has both; copy the parent's, level by level (runc's cpusetEnsureParent).
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not fs.read(os.path.join(current, name)).strip():
                        fs.write(os.path.join(current, name), fs.read(os.path.join(parent, name)).strip())
        return new

    def update(self, path: str, resources: Resources) -> None:
        rel = fs.check_path(path)
        self._primary(rel)
        self._apply(rel, resources, fresh=False)

    def _apply(self, rel: str, r: Resources, *, fresh: bool) -> None:
        parent_cpus = parent_mems = ""
        cpuset = self._dir("cpuset", rel)
        if cpuset:
            parent = os.path.dirname(cpuset)
            parent_cpus = fs.read(os.path.join(parent, "cpuset.cpus")).strip()
            parent_mems = fs.read(os.path.join(parent, "cpuset.mems")).strip()
        refused: list[tuple[str, str]] = []
        for setting in v1_settings(r, parent_cpus=parent_cpus, parent_mems=parent_mems):
            if fresh and setting.default:
                continue
            target = self._target(setting, rel)
            if target is None:
                continue
            try:
                fs.write(*target)
            except InvalidArgument:
                # The kernel compares some pairs: memory.limit_in_bytes may not exceed the current
                # memsw limit, nor memsw fall below the current memory limit; a cfs period may be
                # refused against the old quota. One of each pair always fits first, so a refused
                # write is retried once, after the rest; a second refusal is the real error.
                refused.append(target)
        for file, value in refused:
            fs.write(file, value)
        if r.cpu_shares is not None and (cpu := self._dir("cpu", rel)):
            # The kernel clamps shares to 2..262144 without an error; say so, as runc does.
            got = int(fs.read(os.path.join(cpu, "cpu.shares")))
            if got != r.cpu_shares:
                bound = "maximum" if r.cpu_shares > got else "minimum"
                raise InvalidArgument(f"the {bound} allowed cpu-shares is {got}")

    def _target(self, setting: Setting, rel: str) -> tuple[str, str] | None:
        d = self._dir(setting.controller, rel)
        if d is not None:
            for file, value in setting.choices:
                if fs.exists(os.path.join(d, file)):
                    return os.path.join(d, file), value
        if setting.skippable:
            return None
        if d is None:
            raise Unavailable(f"the cgroup v1 {setting.controller} hierarchy is not mounted: cannot set {setting.file}")
        raise Unavailable(f"this kernel has no {setting.file} in its {setting.controller} cgroup: cannot set it")

    def add_process(self, path: str, pid: int) -> None:
        rel = fs.check_path(path)
        for top in self._tops:
            fs.add_pid(os.path.join(top, rel), pid)

    def remove(self, path: str) -> None:
        rel = fs.check_path(path)
        for top in self._tops:
            fs.rmdir_tree(os.path.join(top, rel), timeout=REMOVE_TIMEOUT)

    def remove_if_empty(self, path: str) -> None:
        rel = fs.check_path(path)
        for top in self._tops:
            fs.rmdir_if_empty(os.path.join(top, rel))

    # processes

    def procs(self, path: str) -> list[int]:
        return fs.procs(self._primary(fs.check_path(path)))

    def freeze(self, path: str) -> None:
        rel = fs.check_path(path)
        freezer = self._dir("freezer", rel)
        if freezer is None:
            self._unified_freezer(rel, "1")
            return
        state = os.path.join(freezer, "freezer.state")
        # A v1 freeze can stall in FREEZING while tasks fork; rewriting FROZEN nudges it on
        # (runc does the same, and thaws if it gives up: a half-frozen cgroup is the worst state).
        def frozen() -> bool:
            fs.write(state, "FROZEN")
            return fs.read(state).strip() == "FROZEN"
        try:
            fs.wait_for(frozen, timeout=FREEZE_TIMEOUT, what=f"cgroup {rel} to freeze")
        except PortsideError:
            fs.write(state, "THAWED")
            raise

    def thaw(self, path: str) -> None:
        rel = fs.check_path(path)
        freezer = self._dir("freezer", rel)
        if freezer is None:
            self._unified_freezer(rel, "0")
            return
        fs.write(os.path.join(freezer, "freezer.state"), "THAWED")

    def _unified_freezer(self, rel: str, value: str) -> None:
        if self._unified is None or not fs.exists(os.path.join(self._unified, rel, "cgroup.freeze")):
            raise Unavailable("no freezer: the freezer hierarchy is not mounted and there is no cgroup v2 freezer")
        fs.write(os.path.join(self._unified, rel, "cgroup.freeze"), value)
        if value == "1":
            events = os.path.join(self._unified, rel, "cgroup.events")
            fs.wait_for(lambda: "frozen 1" in fs.read(events), timeout=FREEZE_TIMEOUT, what=f"cgroup {rel} to freeze")

    def kill_all(self, path: str) -> None:
        rel = fs.check_path(path)
        primary = self._primary(rel)
        kill_file = os.path.join(self._unified, rel, "cgroup.kill") if self._unified else ""
        atomic = bool(kill_file) and fs.exists(kill_file)
        freezer = self._dir("freezer", rel)
        if atomic:
            fs.write(kill_file, "1")   # the kernel kills every task, and any it forks meanwhile
        else:
            if freezer:
                try:
                    self.freeze(path)   # no forks while the list is read and signalled
                except PortsideError:
                    pass                # kill what we can see; the loop below catches the rest
            fs.kill_pids(fs.procs(primary))
        if freezer:
            # A task frozen by the v1 freezer takes its SIGKILL only once thawed.
            fs.write(os.path.join(freezer, "freezer.state"), "THAWED")

        def empty() -> bool:
            left = fs.procs(primary)
            if left and not atomic:
                fs.kill_pids(left)      # forked between our listing and our signals
            return not left
        fs.wait_for(empty, timeout=KILL_TIMEOUT, what=f"the processes of cgroup {rel} to exit")

    # figures

    def oom_killed(self, path: str) -> bool:
        memory = self._dir("memory", fs.check_path(path))
        if memory is None:
            return False
        control = fs.flat_keyed(fs.read(os.path.join(memory, "memory.oom_control")))
        # oom_kill counts kills (kernel 4.13+); under_oom is a cgroup stuck at its limit with the killer disabled
        return control.get("oom_kill", 0) > 0 or control.get("under_oom", 0) == 1

    def stats(self, path: str) -> Stats:
        rel = fs.check_path(path)
        self._primary(rel)

        def get(controller: str, file: str) -> str | None:
            d = self._dir(controller, rel)
            return fs.read_optional(os.path.join(d, file)) if d else None

        memory_stat = fs.flat_keyed(get("memory", "memory.stat"))
        limit = fs.to_int(get("memory", "memory.limit_in_bytes"))
        cpuacct = fs.flat_keyed(get("cpuacct", "cpuacct.stat"))
        cpu_stat = fs.flat_keyed(get("cpu", "cpu.stat"))
        blkio: str | None = None
        for name in ("blkio.io_service_bytes_recursive", "blkio.bfq.io_service_bytes_recursive",
                     "blkio.throttle.io_service_bytes_recursive"):
            blkio = get("blkio", name)
            if blkio and any(line.split()[0] != "Total" for line in blkio.splitlines() if line.strip()):
                break   # CFQ's file on old kernels, BFQ's, or the throttle layer's (counts every device)
        system, ncpu = host_cpu(self._proc)
        return Stats(
            memory_usage=fs.to_int(get("memory", "memory.usage_in_bytes")) or 0,
            memory_max_usage=fs.to_int(get("memory", "memory.max_usage_in_bytes")),
            memory_limit=None if limit is None or limit >= V1_UNLIMITED else limit,
            memory_cache=memory_stat.get("cache", 0),
            memory_failcnt=fs.to_int(get("memory", "memory.failcnt")),
            memory_stat=memory_stat,
            cpu_total=fs.to_int(get("cpuacct", "cpuacct.usage")) or 0,
            cpu_percpu=tuple(int(v) for v in (get("cpuacct", "cpuacct.usage_percpu") or "").split()),
            cpu_user=ticks_to_ns(cpuacct.get("user", 0)),
            cpu_system=ticks_to_ns(cpuacct.get("system", 0)),
            throttling_periods=cpu_stat.get("nr_periods", 0),
            throttled_periods=cpu_stat.get("nr_throttled", 0),
            throttled_time=cpu_stat.get("throttled_time", 0),
            system_cpu_usage=system,
            online_cpus=ncpu,
            pids_current=fs.to_int(get("pids", "pids.current")) or 0,
            pids_limit=fs.to_int(get("pids", "pids.max")),
            blkio_service_bytes=v1_blkio(blkio),
        )

