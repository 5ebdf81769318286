"""Both cgroup managers on the real kernel: limits written and enforced, stats, OOM, freezing, killing, cleanup.

One suite, run over every implementation this host can drive:

- ``v1``: the V1Manager built from /proc/self/mountinfo (v1 and hybrid hosts);
- ``v2``: a V2Manager on the host's cgroup2 mount. On a unified host that is
  the whole of cgroups; on a hybrid host it is the v2 hierarchy beside the v1
  ones, which has the core files (cgroup.procs, cgroup.freeze, cgroup.kill,
  cgroup.events, cpu.stat) but usually no controller: the tests that need a
  controller skip there, saying so, and the rest run on the real kernel.

Processes join through a gate: the child waits on stdin until it is in the
cgroup, so everything it allocates or forks afterwards is accounted there.
Every cgroup is made under a top-level ``portside-test-<pid>-<hex>`` and the
teardown fails the test if anything named ``portside-test*`` is left under
/sys/fs/cgroup.
"""

from __future__ import annotations

import glob
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from portside.cgroups import v1 as v1_module
from portside.cgroups import v2 as v2_module
from portside.cgroups.manager import CgroupVersion, Manager, detect, for_host
from portside.cgroups.mountinfo import read_mounts, v1_hierarchies, v2_mountpoint, version_of
from portside.cgroups.resources import Resources
from portside.cgroups.v1 import V1Manager
from portside.cgroups.v2 import V2Manager
from portside.errors import Conflict, InvalidArgument

pytestmark = pytest.mark.root

MiB = 1024 * 1024
V1_UNLIMITED = "9223372036854771712"
GATE = "import sys\nsys.stdin.buffer.read(1)\n"


def leftovers() -> list[str]:
    return sorted(glob.glob("/sys/fs/cgroup/portside-test*") + glob.glob("/sys/fs/cgroup/*/portside-test*"))


@dataclass
class Cgroups:
    """One manager under test, the cgroups a test made with it, and its children."""

    kind: str                      # "v1" or "v2"
    manager: Manager
    base: str
    tops: dict[str, str]           # controller → mount point (v2: every controller → the one root)
    controllers: set[str]
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    made: list[str] = field(default_factory=list)

    def need(self, *controllers: str) -> None:
        missing = [c for c in controllers if c not in self.controllers]
        if missing:
            root = self.tops.get("", "")
            pytest.skip(f"no {', '.join(missing)} controller in the cgroup v2 hierarchy at {root} "
                        "(a hybrid host keeps its controllers in v1)")

    def create(self, resources: Resources, name: str = "c") -> str:
        path = f"{self.base}/{name}"
        self.made.append(path)
        self.manager.create(path, resources)
        return path

    def file(self, controller: str, path: str, name: str) -> pathlib.Path:
        return pathlib.Path(self.tops[controller if self.kind == "v1" else ""], path, name)

    def read(self, controller: str, path: str, name: str) -> str:
        return self.file(controller, path, name).read_text().strip()

    def dirs(self, path: str) -> list[str]:
        return [d for d in (os.path.join(t, path) for t in set(self.tops.values())) if os.path.isdir(d)]

    def start(self, path: str, code: str) -> subprocess.Popen[bytes]:
        """A Python child that runs ``code`` once it is in the cgroup."""
        child = subprocess.Popen([sys.executable, "-S", "-c", GATE + code], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, close_fds=True)
        self.children.append(child)
        assert child.stdin is not None
        self.manager.add_process(path, child.pid)
        child.stdin.write(b"g")
        child.stdin.close()
        return child


@pytest.fixture(params=["v1", "v2"])
def cg(request: pytest.FixtureRequest) -> Iterator[Cgroups]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    mounts = read_mounts()
    version = version_of(mounts)
    manager: Manager
    if request.param == "v1":
        if version is CgroupVersion.V2:
            pytest.skip("no cgroup v1 hierarchy: this host is unified cgroup v2")
        manager = V1Manager.from_mounts(mounts)
        tops = v1_hierarchies(mounts)
        if (unified := v2_mountpoint(mounts)) is not None:
            tops[""] = unified
        controllers = set(tops) - {""}
    else:
        root = v2_mountpoint(mounts)
        if root is None:
            pytest.skip("no cgroup v2 mount on this host")
        manager = V2Manager(root)
        # every controller the root has, the manager enables for the ancestors of a container's cgroup
        controllers = set(pathlib.Path(root, "cgroup.controllers").read_text().split())
        tops = {"": root}
    assert not leftovers(), f"cgroups left by an earlier run: {leftovers()}"
    cg = Cgroups(request.param, manager, f"portside-test-{os.getpid()}-{secrets.token_hex(3)}", tops, controllers)
    try:
        yield cg
    finally:
        for child in cg.children:
            if child.poll() is None:
                child.kill()
            child.wait()
        for path in cg.made:
            if cg.dirs(path):
                cg.manager.kill_all(path)
                cg.manager.remove(path)
        cg.manager.remove(cg.base)
        assert not leftovers(), f"cgroups left behind: {leftovers()}"


def test_detect_picks_the_manager_for_this_host() -> None:
    version = detect()
    assert version is version_of(read_mounts())
    if version is CgroupVersion.V2:
        assert isinstance(for_host(), V2Manager)
    else:
        assert isinstance(for_host(), V1Manager)   # hybrid hosts too: their controllers are in v1


def test_create_writes_the_limits_and_update_resets_them(cg: Cgroups) -> None:
    cg.need("memory", "cpu", "pids", "cpuset")
    path = cg.create(Resources(memory=64 * MiB, memory_swap=64 * MiB, memory_reservation=32 * MiB, cpu_shares=512,
                               cpu_quota=50_000, cpu_period=100_000, pids_limit=20, cpuset_cpus="0"))
    if cg.kind == "v1":
        assert cg.read("memory", path, "memory.limit_in_bytes") == str(64 * MiB)
        if cg.file("memory", path, "memory.memsw.limit_in_bytes").exists():
            assert cg.read("memory", path, "memory.memsw.limit_in_bytes") == str(64 * MiB)
        assert cg.read("memory", path, "memory.soft_limit_in_bytes") == str(32 * MiB)
        assert cg.read("cpu", path, "cpu.shares") == "512"
        assert cg.read("cpu", path, "cpu.cfs_quota_us") == "50000"
        assert cg.read("cpu", path, "cpu.cfs_period_us") == "100000"
    else:
        assert cg.read("memory", path, "memory.max") == str(64 * MiB)
        if cg.file("memory", path, "memory.swap.max").exists():
            assert cg.read("memory", path, "memory.swap.max") == "0"
        assert cg.read("memory", path, "memory.low") == str(32 * MiB)
        assert cg.read("cpu", path, "cpu.weight") == "59"
        assert cg.read("cpu", path, "cpu.max") == "50000 100000"
    assert cg.read("pids", path, "pids.max") == "20"
    assert cg.read("cpuset", path, "cpuset.cpus") == "0"

    cg.manager.update(path, Resources(memory=128 * MiB))
    if cg.kind == "v1":
        assert cg.read("memory", path, "memory.limit_in_bytes") == str(128 * MiB)
        assert cg.read("memory", path, "memory.soft_limit_in_bytes") == V1_UNLIMITED
        assert cg.read("cpu", path, "cpu.shares") == "1024"
        assert cg.read("cpu", path, "cpu.cfs_quota_us") == "-1"
        assert cg.read("cpuset", path, "cpuset.cpus") == cg.read("cpuset", cg.base, "cpuset.cpus")
    else:
        assert cg.read("memory", path, "memory.max") == str(128 * MiB)
        assert cg.read("cpu", path, "cpu.max") == "max 100000"
        assert cg.read("cpu", path, "cpu.weight") == "100"
        assert cg.read("cpuset", path, "cpuset.cpus") == ""
    assert cg.read("pids", path, "pids.max") == "max"


def test_a_refused_limit_leaves_no_cgroup(cg: Cgroups) -> None:
    cg.need("cpuset")
    with pytest.raises(InvalidArgument):
        cg.create(Resources(cpuset_cpus="100000"))     # beyond any CPU the kernel could have
    assert cg.dirs(f"{cg.base}/c") == []


def test_a_child_joins_and_is_counted(cg: Cgroups) -> None:
    limits = {"memory": 64 * MiB} if "memory" in cg.controllers else {}
    path = cg.create(Resources(**limits, pids_limit=50 if "pids" in cg.controllers else None))
    child = cg.start(path, "data = b'x' * (8 << 20)\n"
                           "n = 0\nfor i in range(3_000_000): n += i\n"
                           "print('ready', flush=True)\nimport time\ntime.sleep(60)\n")
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    assert cg.manager.procs(path) == [child.pid]
    assert f":/{path}\n" in pathlib.Path(f"/proc/{child.pid}/cgroup").read_text()
    stats = cg.manager.stats(path)
    assert stats.cpu_total > 10_000_000               # 3 million additions: well over 10 ms
    assert stats.system_cpu_usage > stats.cpu_total
    assert stats.online_cpus == os.cpu_count()
    if "memory" in cg.controllers:
        assert stats.memory_usage >= 8 * MiB
        assert stats.memory_limit == 64 * MiB
    if "pids" in cg.controllers:
        assert (stats.pids_current, stats.pids_limit) == (1, 50)
    if cg.kind == "v1":
        assert len(stats.cpu_percpu) >= 1 and sum(stats.cpu_percpu) == stats.cpu_total
    assert not cg.manager.oom_killed(path)


FORK_BOMB = """\
import os, time
forked = failed = 0
for _ in range(30):
    try:
        pid = os.fork()
    except OSError:
        failed += 1
        continue
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    forked += 1
print(forked, failed, flush=True)
time.sleep(60)
"""


def test_the_pids_limit_stops_a_fork_bomb(cg: Cgroups) -> None:
    cg.need("pids")
    path = cg.create(Resources(pids_limit=10))
    child = cg.start(path, FORK_BOMB)
    assert child.stdout is not None
    forked, failed = map(int, child.stdout.readline().split())
    assert (forked, failed) == (9, 21)               # the bomb itself is the tenth
    assert cg.manager.stats(path).pids_current == 10
    assert len(cg.manager.procs(path)) == 10
    cg.manager.kill_all(path)
    assert cg.manager.procs(path) == []
    assert child.wait(timeout=10) == -signal.SIGKILL


def test_the_memory_limit_oom_kills(cg: Cgroups) -> None:
    cg.need("memory")
    path = cg.create(Resources(memory=32 * MiB, memory_swap=32 * MiB))   # no swap to spill into
    child = cg.start(path, "chunks = [b'x' * (1 << 20) for _ in range(200)]\nprint('survived', flush=True)\n")
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert child.stdout is not None and child.stdout.read() == b""
    assert cg.manager.oom_killed(path)
    assert cg.manager.procs(path) == []


COUNTER = """\
import os
fd = os.open({file!r}, os.O_WRONLY | os.O_CREAT)
n = 0
while True:
    n += 1
    os.pwrite(fd, b"%20d" % n, 0)
"""


def test_freeze_stops_a_child_and_thaw_resumes_it(cg: Cgroups, tmp_path: pathlib.Path) -> None:
    counter = tmp_path / "counter"
    path = cg.create(Resources())
    child = cg.start(path, COUNTER.format(file=str(counter)))

    def count() -> int:
        text = counter.read_text().strip() if counter.exists() else ""
        return int(text) if text else 0

    deadline = time.monotonic() + 10
    while count() < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count() >= 1000

    cg.manager.freeze(path)
    state = pathlib.Path(f"/proc/{child.pid}/status").read_text().split("State:")[1].split()[0]
    assert state in ("D", "S")          # a busy loop, stopped: v1 shows D (frozen), v2 shows S
    if cg.kind == "v1" and "freezer" in cg.tops:
        assert cg.read("freezer", path, "freezer.state") == "FROZEN"
    else:
        assert "frozen 1" in cg.read("", path, "cgroup.events")
    before = count()
    time.sleep(0.3)
    assert count() == before

    cg.manager.thaw(path)
    deadline = time.monotonic() + 10
    while count() == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count() > before
    assert child.poll() is None


TREE = """\
import os, time
for _ in range(3):
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "60"])
print("forked", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("frozen", [False, True], ids=["running", "frozen"])
def test_kill_all_then_remove_leaves_nothing(cg: Cgroups, frozen: bool) -> None:
    path = cg.create(Resources())
    child = cg.start(path, TREE)
    assert child.stdout is not None and child.stdout.readline() == b"forked\n"
    assert len(cg.manager.procs(path)) == 4
    if frozen:
        cg.manager.freeze(path)        # docker kill of a paused container: frozen tasks must die too
    cg.manager.kill_all(path)
    assert cg.manager.procs(path) == []
    assert child.wait(timeout=10) == -signal.SIGKILL
    assert cg.dirs(path) != []
    cg.manager.remove(path)
    assert cg.dirs(path) == []
    cg.manager.remove(path)            # removing what is gone is fine


def test_remove_refuses_a_cgroup_with_processes(cg: Cgroups, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(v1_module, "REMOVE_TIMEOUT", 0.2)
    monkeypatch.setattr(v2_module, "REMOVE_TIMEOUT", 0.2)
    path = cg.create(Resources())
    child = cg.start(path, "import time\ntime.sleep(60)\n")
    with pytest.raises(Conflict, match=str(child.pid)):
        cg.manager.remove(path)
    assert cg.manager.procs(path) == [child.pid]     # remove never kills
    cg.manager.kill_all(path)
    cg.manager.remove(path)
    assert cg.dirs(path) == []


def test_remove_if_unused_spares_a_parent_in_use_and_never_waits(cg: Cgroups) -> None:
    """The monitor's last container gone, it prunes the shared parent: other daemons' containers may be
    in it (busy) or have just had their directory made (empty, no process yet): both stay, at once."""
    busy = cg.create(Resources(), "busy")
    child = cg.start(busy, "import time\ntime.sleep(60)\n")
    empty = cg.create(Resources(), "empty")
    t = time.monotonic()
    cg.manager.remove_if_unused(cg.base)
    assert time.monotonic() - t < 0.5
    assert cg.dirs(busy) != [] and cg.dirs(empty) != [] and cg.dirs(cg.base) != []
    assert cg.manager.procs(busy) == [child.pid]
    cg.manager.kill_all(busy)
    cg.manager.remove(busy)
    cg.manager.remove(empty)
    cg.manager.remove_if_unused(cg.base)
    assert cg.dirs(cg.base) == []
    cg.manager.remove_if_unused(cg.base)  # gone already: fine


def test_nested_cgroups_are_killed_and_removed_leaf_first(cg: Cgroups) -> None:
    path = cg.create(Resources())
    inner = f"{path}/inner"          # what a container with its own cgroup namespace may make
    for d in cg.dirs(path):
        os.mkdir(os.path.join(d, "inner"))
    if cg.kind == "v1" and "cpuset" in cg.tops:
        inner_cpuset = cg.file("cpuset", inner, "")
        for name in ("cpuset.cpus", "cpuset.mems"):
            (inner_cpuset / name).write_text(cg.read("cpuset", path, name))
    child = cg.start(inner, "import time\ntime.sleep(60)\n")
    assert cg.manager.procs(path) == [child.pid]
    cg.manager.kill_all(path)
    child.wait(timeout=10)
    cg.manager.remove(path)
    assert cg.dirs(path) == []


def test_v1_oom_killer_switch_and_blkio_weight(cg: Cgroups) -> None:
    if cg.kind != "v1":
        pytest.skip("memory.oom_control and blkio weights are cgroup v1 files (v2 has no OOM-killer switch)")
    cg.need("memory", "blkio")
    path = cg.create(Resources(memory=64 * MiB, oom_kill_disable=True))
    assert "oom_kill_disable 1" in cg.read("memory", path, "memory.oom_control")
    weights = [f for f in ("blkio.weight", "blkio.bfq.weight") if cg.file("blkio", path, f).exists()]
    if not weights:
        pytest.skip("this kernel has neither CFQ's blkio.weight nor BFQ's blkio.bfq.weight")
    cg.manager.update(path, Resources(blkio_weight=300))
    assert cg.read("blkio", path, weights[0]) == "300"
    assert "oom_kill_disable 0" in cg.read("memory", path, "memory.oom_control")
    assert cg.read("memory", path, "memory.limit_in_bytes") == V1_UNLIMITED
