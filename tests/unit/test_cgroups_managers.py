"""The managers' write and read logic on fake cgroup trees (plain files), and mount discovery.

The kernel-facing behaviour (limits enforced, freezing, killing, removal) is
in tests/root/test_cgroups_manager.py; here every file the managers touch is
a plain file in a temporary directory, so these run anywhere, as any user.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from portside.cgroups import fake
from portside.cgroups.mountinfo import CgroupVersion, parse_mountinfo, v1_hierarchies, v2_mountpoint, version_of
from portside.cgroups.resources import Resources
from portside.cgroups.settings import Setting, v1_settings, v2_settings
from portside.cgroups.stats import BlkioEntry, system_cpu
from portside.cgroups.v1 import V1Manager
from portside.cgroups.v2 import V2Manager
from portside.errors import InvalidArgument, NotFound, Unavailable

MiB = 1024 * 1024
PATH = "portside/c0ffee"
FULL = Resources(memory=256 * MiB, memory_swap=512 * MiB, memory_reservation=128 * MiB, cpu_shares=512,
                 cpu_quota=150_000, cpu_period=100_000, cpuset_cpus="1", cpuset_mems="0", pids_limit=100,
                 blkio_weight=300, oom_kill_disable=True)

# /proc/self/mountinfo of this project's host (v1 with separate cpu and cpuacct, v2 beside: hybrid)
HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
# systemd's v1 layout: cpu and cpuacct joined, net_cls and net_prio joined, a mount point with a space
JOINED = """\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:13 - cgroup cgroup rw,net_cls,net_prio
32 25 0:29 / /mnt/my\\040cgroups/memory rw,nosuid shared:14 - cgroup cgroup rw,memory
"""
UNIFIED = """\
24 18 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
40 25 0:29 / /opt/old/systemd rw,nosuid - cgroup cgroup rw,name=systemd
"""


def test_mountinfo_versions() -> None:
    assert version_of(parse_mountinfo(HYBRID)) is CgroupVersion.HYBRID
    assert version_of(parse_mountinfo(JOINED)) is CgroupVersion.V1
    assert version_of(parse_mountinfo(UNIFIED)) is CgroupVersion.V2   # a named v1 hierarchy holds no controller
    with pytest.raises(Unavailable):
        version_of(parse_mountinfo("22 1 0:21 / /proc rw - proc proc rw\n"))


def test_mountinfo_hierarchies() -> None:
    hybrid = parse_mountinfo(HYBRID)
    assert v1_hierarchies(hybrid)["cpu"] == "/sys/fs/cgroup/cpu"
    assert v1_hierarchies(hybrid)["cpuacct"] == "/sys/fs/cgroup/cpuacct"
    assert v2_mountpoint(hybrid) == "/sys/fs/cgroup/unified"
    joined = v1_hierarchies(parse_mountinfo(JOINED))
    assert joined == {"name=systemd": "/sys/fs/cgroup/systemd", "cpu": "/sys/fs/cgroup/cpu,cpuacct",
                      "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "net_cls": "/sys/fs/cgroup/net_cls,net_prio",
                      "net_prio": "/sys/fs/cgroup/net_cls,net_prio", "memory": "/mnt/my cgroups/memory"}
    assert v2_mountpoint(parse_mountinfo(JOINED)) is None


def settings_table(settings: list[Setting]) -> dict[str, str]:
    """The writes a fresh cgroup needs: everything but the kernel's defaults."""
    return {s.file: s.value for s in settings if not s.default}


def test_v1_mapping() -> None:
    assert settings_table(v1_settings(FULL, parent_cpus="0-3", parent_mems="0")) == {
        "cpuset.cpus": "1", "cpuset.mems": "0",
        "memory.limit_in_bytes": str(256 * MiB), "memory.memsw.limit_in_bytes": str(512 * MiB),
        "memory.soft_limit_in_bytes": str(128 * MiB), "memory.oom_control": "1",
        "cpu.shares": "512", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "150000",
        "pids.max": "100", "blkio.weight": "300",
    }
    defaults = {s.file: s.value for s in v1_settings(Resources(), parent_cpus="0-3", parent_mems="0")}
    assert defaults == {"cpuset.cpus": "0-3", "cpuset.mems": "0", "memory.limit_in_bytes": "-1",
                        "memory.memsw.limit_in_bytes": "-1", "memory.soft_limit_in_bytes": "-1",
                        "memory.oom_control": "0", "cpu.shares": "1024", "cpu.cfs_period_us": "100000",
                        "cpu.cfs_quota_us": "-1", "pids.max": "max", "blkio.weight": "500"}
    assert all(s.default for s in v1_settings(Resources(), parent_cpus="0-3", parent_mems="0"))


def test_v2_mapping() -> None:
    assert settings_table(v2_settings(FULL)) == {
        "cpuset.cpus": "1", "cpuset.mems": "0",
        "memory.max": str(256 * MiB), "memory.swap.max": str(256 * MiB),   # swap alone: 512m total - 256m
        "memory.low": str(128 * MiB),
        "cpu.weight": "59", "cpu.max": "150000 100000", "pids.max": "100",
        "io.bfq.weight": "300",    # BFQ takes the v1 weight; io.weight (the fallback) gets it converted
    }
    assert [s for s in v2_settings(FULL) if s.controller == "io"][0].choices[1] == ("io.weight", "2930")
    assert {s.file: s.value for s in v2_settings(Resources())} == {
        "cpuset.cpus": "", "cpuset.mems": "", "memory.max": "max", "memory.swap.max": "max", "memory.low": "0",
        "cpu.weight": "100", "cpu.max": "max 100000", "pids.max": "max", "io.bfq.weight": "100"}
    # no swap: the total equals the memory limit
    no_swap = Resources(memory=64 * MiB, memory_swap=64 * MiB)
    assert settings_table(v2_settings(no_swap))["memory.swap.max"] == "0"
    # unlimited swap with a memory limit (Docker's --memory-swap -1)
    assert {s.file: s.value for s in v2_settings(Resources(memory=64 * MiB))}["memory.swap.max"] == "max"
    assert settings_table(v2_settings(Resources(cpu_period=50_000))) == {"cpu.max": "max 50000"}


def read(d: str | pathlib.Path, name: str) -> str:
    return pathlib.Path(d, name).read_text().strip()


# V2Manager over a fake unified hierarchy

def test_v2_create_enables_controllers_and_writes_limits(tmp_path: pathlib.Path) -> None:
    leaf = fake.v2_tree(str(tmp_path), PATH)
    m = V2Manager(str(tmp_path))
    m.create(PATH, FULL)
    for level in (tmp_path, tmp_path / "portside"):   # every ancestor; never the container's own cgroup
        assert read(level, "cgroup.subtree_control") == "+cpuset +cpu +io +memory +pids"
    assert read(leaf, "cgroup.subtree_control") == ""
    assert read(leaf, "memory.max") == str(256 * MiB)
    assert read(leaf, "memory.swap.max") == str(256 * MiB)
    assert read(leaf, "memory.low") == str(128 * MiB)
    assert read(leaf, "cpu.weight") == "59"
    assert read(leaf, "cpu.max") == "150000 100000"
    assert read(leaf, "cpuset.cpus") == "1"
    assert read(leaf, "pids.max") == "100"
    assert read(leaf, "io.weight") == "2930"     # no BFQ in this tree: the converted weight


def test_v2_update_resets_what_is_not_given(tmp_path: pathlib.Path) -> None:
    leaf = fake.v2_tree(str(tmp_path), PATH)
    m = V2Manager(str(tmp_path))
    m.create(PATH, FULL)
    m.update(PATH, Resources(memory=64 * MiB))
    assert read(leaf, "memory.max") == str(64 * MiB)
    assert read(leaf, "memory.swap.max") == "max"
    assert read(leaf, "cpu.max") == "max 100000"
    assert read(leaf, "cpu.weight") == "100"
    assert read(leaf, "pids.max") == "max"
    assert read(leaf, "cpuset.cpus") == ""
    assert read(leaf, "io.weight") == "default 100"


def test_v2_missing_controller(tmp_path: pathlib.Path) -> None:
    fake.v2_tree(str(tmp_path), PATH, controllers=("cpu", "memory"))
    m = V2Manager(str(tmp_path))
    m.create(PATH, Resources(memory=64 * MiB))     # resetting pids/io/cpuset where they do not exist is a no-op
    with pytest.raises(Unavailable, match="pids controller"):
        m.update(PATH, Resources(pids_limit=10))


def test_v2_stats_and_oom(tmp_path: pathlib.Path) -> None:
    leaf = pathlib.Path(fake.v2_tree(str(tmp_path), PATH))
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text("cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 50 0 25 500 5 0 0 0 0 0\n"
                               "cpu1 50 0 25 500 5 0 0 0 0 0\nintr 1\n")
    (leaf / "memory.current").write_text("10485760\n")
    (leaf / "memory.peak").write_text("20971520\n")
    (leaf / "memory.max").write_text("33554432\n")
    (leaf / "memory.stat").write_text("anon 8388608\nfile 2097152\ninactive_file 1048576\n")
    (leaf / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\n"
                                   "nr_throttled 1\nthrottled_usec 70\n")
    (leaf / "pids.current").write_text("3\n")
    (leaf / "pids.max").write_text("10\n")
    (leaf / "io.stat").write_text("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n")
    s = V2Manager(str(tmp_path), proc=str(proc)).stats(PATH)
    assert (s.memory_usage, s.memory_max_usage, s.memory_limit, s.memory_cache) == (10485760, 20971520, 33554432, 2097152)
    assert s.memory_stat["inactive_file"] == 1048576
    assert (s.cpu_total, s.cpu_user, s.cpu_system, s.cpu_percpu) == (1_500_000, 1_000_000, 500_000, ())
    assert (s.throttling_periods, s.throttled_periods, s.throttled_time) == (4, 1, 70_000)
    assert (s.pids_current, s.pids_limit) == (3, 10)
    assert s.blkio_service_bytes == (BlkioEntry(8, 0, "read", 4096), BlkioEntry(8, 0, "write", 8192))
    assert s.online_cpus == 2
    assert s.system_cpu_usage == 1160 * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert s.unified and s.memory_failcnt == 0 and s.blkio_serviced == ()
    m = V2Manager(str(tmp_path))
    assert not m.oom_killed(PATH)
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    assert m.oom_killed(PATH)
    assert m.stats(PATH).memory_failcnt == 1     # dockerd's v2 failcnt: the "oom" count
    (leaf / "memory.max").write_text("max\n")
    assert m.stats(PATH).memory_limit is None


def test_v2_freeze_thaw_kill_write_the_core_files(tmp_path: pathlib.Path) -> None:
    leaf = pathlib.Path(fake.v2_tree(str(tmp_path), PATH))
    m = V2Manager(str(tmp_path))
    (leaf / "cgroup.events").write_text("populated 1\nfrozen 1\n")   # a fake kernel that freezes at once
    m.freeze(PATH)
    assert read(leaf, "cgroup.freeze") == "1"
    m.thaw(PATH)
    assert read(leaf, "cgroup.freeze") == "0"
    m.kill_all(PATH)
    assert read(leaf, "cgroup.kill") == "1"
    assert m.procs(PATH) == []


def test_paths_are_checked(tmp_path: pathlib.Path) -> None:
    fake.v2_tree(str(tmp_path), PATH)
    m = V2Manager(str(tmp_path))
    for bad in ("", "/portside/x", "portside/../../etc", "portside//x", "portside/./x", "a\0b"):
        with pytest.raises(InvalidArgument):
            m.create(bad, Resources())
    with pytest.raises(NotFound):
        m.stats("portside/nope")
    with pytest.raises(NotFound):
        m.update("portside/nope", Resources())


# V1Manager over fake hierarchies

def test_v1_joined_cpu_cpuacct(tmp_path: pathlib.Path) -> None:
    hierarchies = fake.v1_tree(str(tmp_path), PATH, layout=fake.JOINED)
    assert hierarchies["cpu"] == hierarchies["cpuacct"] == str(tmp_path / "cpu,cpuacct")
    m = V1Manager(hierarchies)
    m.create(PATH, FULL)
    joined = tmp_path / "cpu,cpuacct" / PATH
    assert read(joined, "cpu.shares") == "512"
    assert read(joined, "cpu.cfs_quota_us") == "150000"
    (joined / "cpuacct.usage").write_text("123456789\n")
    (joined / "cpuacct.usage_percpu").write_text("100000000 23456789 \n")
    s = m.stats(PATH)
    assert (s.cpu_total, s.cpu_percpu) == (123456789, (100000000, 23456789))
    assert sorted(os.listdir(tmp_path)) == ["blkio", "cpu,cpuacct", "cpuset", "freezer", "memory", "pids"]


def test_v1_writes_and_resets(tmp_path: pathlib.Path) -> None:
    hierarchies = fake.v1_tree(str(tmp_path), PATH)
    m = V1Manager(hierarchies)
    m.create(PATH, FULL)
    d = {c: tmp_path / c / PATH for c in fake.SEPARATE}
    assert read(d["memory"], "memory.limit_in_bytes") == str(256 * MiB)
    assert read(d["memory"], "memory.memsw.limit_in_bytes") == str(512 * MiB)
    assert read(d["memory"], "memory.soft_limit_in_bytes") == str(128 * MiB)
    assert read(d["memory"], "memory.oom_control") == "1"
    assert read(d["cpu"], "cpu.cfs_period_us") == "100000"
    assert read(d["pids"], "pids.max") == "100"
    assert read(d["blkio"], "blkio.bfq.weight") == "300"    # no CFQ blkio.weight: BFQ's file
    assert read(d["cpuset"], "cpuset.cpus") == "1"
    # the intermediate cgroup got the root's cpuset, or nothing could join below it
    assert read(tmp_path / "cpuset" / "portside", "cpuset.cpus") == "0-3"
    assert read(tmp_path / "cpuset" / "portside", "cpuset.mems") == "0"
    m.update(PATH, Resources())
    assert read(d["memory"], "memory.limit_in_bytes") == "-1"
    assert read(d["memory"], "memory.oom_control") == "0"
    assert read(d["cpu"], "cpu.shares") == "1024"
    assert read(d["cpu"], "cpu.cfs_quota_us") == "-1"
    assert read(d["pids"], "pids.max") == "max"
    assert read(d["blkio"], "blkio.bfq.weight") == "100"
    assert read(d["cpuset"], "cpuset.cpus") == "0-3"      # back to the parent's


def test_v1_unmounted_controller(tmp_path: pathlib.Path) -> None:
    layout = {k: v for k, v in fake.SEPARATE.items() if k != "pids"}
    m = V1Manager(fake.v1_tree(str(tmp_path), PATH, layout=layout))
    m.create(PATH, Resources(memory=64 * MiB))
    assert m.stats(PATH).pids_current == 0
    with pytest.raises(Unavailable, match="pids hierarchy is not mounted"):
        m.update(PATH, Resources(pids_limit=10))


def test_v1_stats_and_oom(tmp_path: pathlib.Path) -> None:
    m = V1Manager(fake.v1_tree(str(tmp_path), PATH))
    memory = tmp_path / "memory" / PATH
    (memory / "memory.usage_in_bytes").write_text("1048576\n")
    (memory / "memory.max_usage_in_bytes").write_text("2097152\n")
    (memory / "memory.stat").write_text("cache 4096\nrss 8192\ntotal_inactive_file 4096\n")
    (tmp_path / "cpuacct" / PATH / "cpuacct.stat").write_text(f"user {os.sysconf('SC_CLK_TCK')}\nsystem 0\n")
    (tmp_path / "cpu" / PATH / "cpu.stat").write_text("nr_periods 10\nnr_throttled 2\nthrottled_time 5000\n")
    (tmp_path / "blkio" / PATH / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 4096\n8:0 Write 0\n8:0 Sync 4096\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 4096\nTotal 4096\n")
    s = m.stats(PATH)
    assert (s.memory_usage, s.memory_max_usage, s.memory_limit, s.memory_cache) == (1048576, 2097152, None, 4096)
    assert s.cpu_user == 1_000_000_000
    assert (s.throttling_periods, s.throttled_periods, s.throttled_time) == (10, 2, 5000)
    assert s.blkio_service_bytes[0] == BlkioEntry(8, 0, "Read", 4096)
    assert len(s.blkio_service_bytes) == 6
    assert s.blkio_serviced == () and not s.unified
    # the operation counts come from the same layer as the bytes (the throttle layer's here)
    (tmp_path / "blkio" / PATH / "blkio.throttle.io_serviced_recursive").write_text("8:0 Read 1\n8:0 Write 2\nTotal 3\n")
    assert m.stats(PATH).blkio_serviced == (BlkioEntry(8, 0, "Read", 1), BlkioEntry(8, 0, "Write", 2))
    assert s.pids_limit is None
    assert not m.oom_killed(PATH)
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert m.oom_killed(PATH)
    (memory / "memory.oom_control").write_text("oom_kill_disable 1\nunder_oom 1\noom_kill 0\n")
    assert m.oom_killed(PATH)


def test_v1_freeze_thaw(tmp_path: pathlib.Path) -> None:
    m = V1Manager(fake.v1_tree(str(tmp_path), PATH))
    m.freeze(PATH)
    assert read(tmp_path / "freezer" / PATH, "freezer.state") == "FROZEN"
    m.thaw(PATH)
    assert read(tmp_path / "freezer" / PATH, "freezer.state") == "THAWED"


def test_system_cpu() -> None:
    hz = os.sysconf("SC_CLK_TCK")
    assert system_cpu(f"cpu  {hz} 0 0 {hz} 0 0 0 99 99\ncpu0 1 2 3\ncpufreq 1\n") == (2_000_000_000, 1)


def test_rmdir_if_unused_leaves_a_parent_with_children_and_never_waits(tmp_path):
    from portside.cgroups import fs as cgfs

    parent = tmp_path / "portside"
    (parent / "other-daemons-container").mkdir(parents=True)
    cgfs.rmdir_if_unused(str(parent))            # not empty: kept, at once, no error
    assert (parent / "other-daemons-container").is_dir()
    (parent / "other-daemons-container").rmdir()
    cgfs.rmdir_if_unused(str(parent))
    assert not parent.exists()
    cgfs.rmdir_if_unused(str(parent))            # absent: fine
