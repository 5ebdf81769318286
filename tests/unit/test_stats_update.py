"""Docker's stats documents, the update rules, and the CLI's arithmetic, without root.

The cgroup figures come from a V1Manager / V2Manager over fake cgroup trees
(cgroups/fake.py) and a fake /proc; the expected JSON is what dockerd 20.10
answered on this project's host (recorded with curl, see docs/stats.md).
The kernel-facing half is in tests/api/test_api_stats.py.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from portside.cgroups import fake
from portside.cgroups.resources import HostLimits
from portside.cgroups.v1 import V1Manager
from portside.cgroups.v2 import V2Manager
from portside.cli.commands import stats as cli
from portside.containers import stats
from portside.containers import update as updates
from portside.containers.record import ContainerRecord, State
from portside.errors import Conflict, InvalidArgument, NotFound

CID = "c0ffee" + "0" * 58
PATH = f"portside/{CID}"
GiB = 1 << 30
MiB = 1 << 20
HOST = HostLimits(ncpu=2, cpus="0-1", mems="0")

# dockerd 20.10's answer for a created, never started container named s2 (stream=false)
STOPPED = ('{"read":"0001-01-01T00:00:00Z","preread":"0001-01-01T00:00:00Z","pids_stats":{},"blkio_stats":'
           '{"io_service_bytes_recursive":null,"io_serviced_recursive":null,"io_queue_recursive":null,'
           '"io_service_time_recursive":null,"io_wait_time_recursive":null,"io_merged_recursive":null,'
           '"io_time_recursive":null,"sectors_recursive":null},"num_procs":0,"storage_stats":{},"cpu_stats":'
           '{"cpu_usage":{"total_usage":0,"usage_in_kernelmode":0,"usage_in_usermode":0},"throttling_data":'
           '{"periods":0,"throttled_periods":0,"throttled_time":0}},"precpu_stats":{"cpu_usage":{"total_usage":0,'
           '"usage_in_kernelmode":0,"usage_in_usermode":0},"throttling_data":{"periods":0,"throttled_periods":0,'
           '"throttled_time":0}},"memory_stats":{},"name":"/s2","id":"' + CID + '"}')
# the top-level keys of a running container's document, in dockerd's order
KEYS = ["read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats", "precpu_stats",
        "memory_stats", "name", "id"]
NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth1:     114       1    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0:       0       0    0    0    0     0          0         0      114       1    0    3    0     0       0          0
"""


def record(state: State = State.RUNNING, **host_config: Any) -> ContainerRecord:
    return ContainerRecord(id=CID, name="/s1", image_id="sha256:x", image="busybox", created_ns=1, config={},
                           host_config=dict(host_config), state=state, pid=4242 if state is State.RUNNING else 0)


def fake_proc(tmp_path: pathlib.Path, cpu_ticks: int = 1000) -> pathlib.Path:
    proc = tmp_path / "proc"
    (proc / "4242" / "net").mkdir(parents=True, exist_ok=True)
    (proc / "4242" / "net" / "dev").write_text(NET_DEV)
    (proc / "stat").write_text(f"cpu  {cpu_ticks} 0 0 0 0 0 0 0 0 0\ncpu0 1 0 0 0 0 0 0\ncpu1 1 0 0 0 0 0 0\n")
    return proc


def v1_sampler(tmp_path: pathlib.Path) -> tuple[stats.Sampler, pathlib.Path]:
    manager = V1Manager(fake.v1_tree(str(tmp_path / "cg"), PATH), proc=str(fake_proc(tmp_path)))
    memory = tmp_path / "cg" / "memory" / PATH
    (memory / "memory.usage_in_bytes").write_text(f"{3 * MiB}\n")
    (memory / "memory.max_usage_in_bytes").write_text(f"{4 * MiB}\n")
    (memory / "memory.stat").write_text("cache 4096\nrss 8192\nshmem 0\ntotal_inactive_file 1048576\n")
    (tmp_path / "cg" / "cpuacct" / PATH / "cpuacct.usage").write_text("2000000000\n")
    (tmp_path / "cg" / "cpuacct" / PATH / "cpuacct.usage_percpu").write_text("1500000000 500000000 \n")
    (tmp_path / "cg" / "pids" / PATH / "pids.current").write_text("3\n")
    (tmp_path / "cg" / "blkio" / PATH / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n")
    return stats.Sampler(manager, proc=str(tmp_path / "proc")), tmp_path / "cg"


# -- /proc/<pid>/net/dev -----------------------------------------------------------------


def test_net_dev_leaves_out_lo() -> None:
    found = stats.parse_net_dev(NET_DEV)
    assert list(found) == ["eth1", "eth0"]
    assert found["eth0"] == stats.NetDev(tx_bytes=114, tx_packets=1, tx_dropped=3)
    assert found["eth1"].rx_bytes == 114
    assert stats.parse_net_dev("") == {} and stats.parse_net_dev(NET_DEV.splitlines()[0]) == {}


# -- documents ---------------------------------------------------------------------------


def test_a_stopped_container_is_dockerds_zeroed_document(tmp_path: pathlib.Path) -> None:
    sampler, _ = v1_sampler(tmp_path)
    r = record(State.CREATED)
    r.name = "/s2"
    doc = stats.document(sampler.sample(r), None, machine_memory=24 * GiB)
    assert json.dumps(doc, separators=(",", ":")) == STOPPED


def test_v1_document(tmp_path: pathlib.Path) -> None:
    sampler, _ = v1_sampler(tmp_path)
    first = sampler.sample(record())
    second = sampler.sample(record())
    doc = stats.document(second, first, machine_memory=24 * GiB)
    assert list(doc) == KEYS + ["networks"]
    assert doc["name"] == "/s1" and doc["id"] == CID
    assert doc["preread"] == stats.document(first, None, machine_memory=1)["read"] != "0001-01-01T00:00:00Z"
    assert doc["pids_stats"] == {"current": 3}   # no limit: left out, as dockerd does
    assert doc["cpu_stats"]["cpu_usage"] == {"total_usage": 2_000_000_000, "percpu_usage": [1_500_000_000, 500_000_000],
                                             "usage_in_kernelmode": 0, "usage_in_usermode": 0}
    assert doc["cpu_stats"]["online_cpus"] == 2 and doc["cpu_stats"]["system_cpu_usage"] > 0
    assert doc["precpu_stats"] == doc["cpu_stats"]
    memory = doc["memory_stats"]
    assert list(memory) == ["usage", "max_usage", "stats", "limit"]       # failcnt 0: left out
    assert (memory["usage"], memory["max_usage"], memory["limit"]) == (3 * MiB, 4 * MiB, 24 * GiB)
    assert list(memory["stats"]) == sorted(stats.V1_MEMORY_KEYS)          # shmem is not one of dockerd's
    assert memory["stats"]["total_inactive_file"] == MiB and memory["stats"]["rss"] == 8192
    blkio = doc["blkio_stats"]
    assert blkio["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096}, {"major": 8, "minor": 0, "op": "Write", "value": 8192},
        {"major": 8, "minor": 0, "op": "Total", "value": 12288}]
    assert blkio["io_serviced_recursive"] == [] and blkio["sectors_recursive"] == []   # v1: lists, empty
    assert list(doc["networks"]) == ["eth0", "eth1"]
    assert doc["networks"]["eth0"] == {"rx_bytes": 0, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                                       "tx_bytes": 114, "tx_packets": 1, "tx_errors": 0, "tx_dropped": 3}


def test_v1_limits_and_host_network(tmp_path: pathlib.Path) -> None:
    sampler, cg = v1_sampler(tmp_path)
    (cg / "memory" / PATH / "memory.limit_in_bytes").write_text(f"{64 * MiB}\n")
    (cg / "pids" / PATH / "pids.max").write_text("10\n")
    doc = stats.document(sampler.sample(record(NetworkMode="host")), None, machine_memory=24 * GiB)
    assert doc["memory_stats"]["limit"] == 64 * MiB
    assert doc["pids_stats"] == {"current": 3, "limit": 10}
    assert "networks" not in doc
    assert doc["precpu_stats"] == {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                                   "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    # a limit above the machine's memory is reported as the machine's (dockerd's machineMemory)
    assert stats.document(sampler.sample(record()), None, machine_memory=32 * MiB)["memory_stats"]["limit"] == 32 * MiB


def test_v2_document(tmp_path: pathlib.Path) -> None:
    leaf = pathlib.Path(fake.v2_tree(str(tmp_path / "cg"), PATH))
    (leaf / "memory.current").write_text(f"{5 * MiB}\n")
    (leaf / "memory.stat").write_text("anon 4096\nfile 8192\ninactive_file 4096\nzswap 1\n")
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n")
    (leaf / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    (leaf / "pids.current").write_text("1\n")
    sampler = stats.Sampler(V2Manager(str(tmp_path / "cg"), proc=str(fake_proc(tmp_path))), proc=str(tmp_path / "proc"))
    doc = stats.document(sampler.sample(record()), None, machine_memory=24 * GiB)
    assert list(doc["memory_stats"]) == ["usage", "stats", "failcnt", "limit"]    # no max_usage on v2
    assert doc["memory_stats"]["failcnt"] == 2
    assert list(doc["memory_stats"]["stats"]) == sorted(stats.V2_MEMORY_KEYS)    # zswap is not one of them
    assert doc["cpu_stats"]["cpu_usage"] == {"total_usage": 1_500_000, "usage_in_kernelmode": 500_000,
                                             "usage_in_usermode": 1_000_000}   # no per-CPU figures on v2
    assert doc["blkio_stats"] == {key: None for key in doc["blkio_stats"]}      # no io.stat lines
    (leaf / "io.stat").write_text("8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")
    blkio = stats.document(sampler.sample(record()), None, machine_memory=1)["blkio_stats"]
    assert blkio["io_service_bytes_recursive"] == [{"major": 8, "minor": 0, "op": "read", "value": 4096},
                                                   {"major": 8, "minor": 0, "op": "write", "value": 0}]
    assert blkio["io_serviced_recursive"] is None


def test_one_waits_for_a_second_sample_unless_one_shot(tmp_path: pathlib.Path) -> None:
    sampler, cg = v1_sampler(tmp_path)
    slept: list[float] = []
    usage = cg / "cpuacct" / PATH / "cpuacct.usage"

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        usage.write_text("3000000000\n")   # the container used a second of CPU meanwhile

    doc = stats.one(record, sampler, machine_memory=GiB, one_shot=False, sleep=sleep)
    assert slept == [stats.INTERVAL]
    assert doc["precpu_stats"]["cpu_usage"]["total_usage"] == 2_000_000_000
    assert doc["cpu_stats"]["cpu_usage"]["total_usage"] == 3_000_000_000
    slept.clear()
    doc = stats.one(record, sampler, machine_memory=GiB, one_shot=True, sleep=sleep)
    assert slept == [] and doc["preread"] == "0001-01-01T00:00:00Z"
    assert doc["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    doc = stats.one(lambda: record(State.EXITED), sampler, machine_memory=GiB, one_shot=False, sleep=sleep)
    assert slept == [] and doc["memory_stats"] == {}   # a stopped container answers at once


def test_frames_pair_each_sample_with_the_one_before_until_the_container_is_gone(tmp_path: pathlib.Path) -> None:
    sampler, _ = v1_sampler(tmp_path)
    states = [State.RUNNING, State.RUNNING, State.EXITED]

    def load() -> ContainerRecord:
        if not states:
            raise NotFound("No such container")
        return record(states.pop(0))

    docs = list(stats.frames(load, sampler, machine_memory=GiB, sleep=lambda s: None))
    assert len(docs) == 3
    assert docs[0]["preread"] == "0001-01-01T00:00:00Z"
    assert docs[1]["preread"] == docs[0]["read"] and docs[1]["precpu_stats"] == docs[0]["cpu_stats"]
    # stopped: zeroes, but the pre-sample is still the last running one (as dockerd streams it)
    assert docs[2]["read"] == "0001-01-01T00:00:00Z" and docs[2]["memory_stats"] == {}
    assert docs[2]["preread"] == docs[1]["read"] and docs[2]["precpu_stats"] == docs[1]["cpu_stats"]


# -- update ------------------------------------------------------------------------------


def test_update_requests_are_checked_as_dockerd_does() -> None:
    check = lambda body: updates.check(body, host=HOST)  # noqa: E731
    with pytest.raises(InvalidArgument, match="^Minimum memory limit allowed is 6MB$"):
        check({"Memory": 1})
    with pytest.raises(InvalidArgument, match="Nano CPUs and CPU Period cannot both be set"):
        check({"NanoCpus": 10**9, "CpuPeriod": 50_000})
    with pytest.raises(InvalidArgument, match="Range of CPUs is from 0.01 to 2.00"):
        check({"NanoCpus": 3 * 10**9})
    with pytest.raises(InvalidArgument, match="Requested CPUs are not available - requested 5, available: 0-1"):
        check({"CpusetCpus": "5"})
    with pytest.raises(InvalidArgument, match="unknown policy 'bogus'"):
        check({"RestartPolicy": {"Name": "bogus"}})
    with pytest.raises(InvalidArgument, match="cannot unmarshal string into Go struct field UpdateConfig.KernelMemory"):
        check({"KernelMemory": "1"})
    with pytest.raises(InvalidArgument, match="HostConfig.Memory of type int64"):
        check({"Memory": "64m"})
    # a swap limit alone is fine in an update: the container's memory limit stays
    assert check({"MemorySwap": 128 * MiB}).resources == {"MemorySwap": 128 * MiB}
    # zero means "leave it"; "unlimited" pids (0, -1) is stored as 0; an empty restart policy changes nothing
    request = check({"Memory": 0, "CpuShares": 512, "CpusetCpus": "", "PidsLimit": -1, "RestartPolicy": {"Name": ""}})
    assert request == updates.UpdateRequest({"CpuShares": 512, "PidsLimit": 0}, None)
    assert check(None) == updates.UpdateRequest({}, None)


def test_update_merge_follows_dockerds_update_container() -> None:
    def merge(stored: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        return updates.merge(stored, updates.check(body, host=HOST))

    # a memory limit needs the swap limit raised with it, unless it stays below it
    with pytest.raises(Conflict, match="Memory limit should be smaller than already set memoryswap limit"):
        merge({}, {"Memory": 64 * MiB})
    assert merge({}, {"Memory": 64 * MiB, "MemorySwap": 128 * MiB})["Memory"] == 64 * MiB
    # created with -m 64m: dockerd's memory+swap is 128m, so 100m fits and the swap limit stays 128m
    assert merge({"Memory": 64 * MiB}, {"Memory": 100 * MiB}) == {"Memory": 100 * MiB, "MemorySwap": 128 * MiB}
    with pytest.raises(Conflict, match="memoryswap"):
        merge({"Memory": 64 * MiB}, {"Memory": 200 * MiB})
    # --cpus and --cpu-quota/--cpu-period exclude each other across updates
    with pytest.raises(Conflict, match="^Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set$"):
        merge({"NanoCpus": 5 * 10**8}, {"CpuQuota": 20_000})
    with pytest.raises(Conflict, match="^Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set$"):
        merge({"CpuPeriod": 50_000}, {"NanoCpus": 10**9})
    assert merge({"NanoCpus": 5 * 10**8}, {"NanoCpus": 10**9})["NanoCpus"] == 10**9
    # restart policies, and --rm containers
    assert merge({}, {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})["RestartPolicy"] == {
        "Name": "on-failure", "MaximumRetryCount": 3}
    with pytest.raises(Conflict, match="because AutoRemove is enabled"):
        merge({"AutoRemove": True}, {"RestartPolicy": {"Name": "always"}})
    assert merge({"AutoRemove": True}, {"RestartPolicy": {"Name": "no"}})["RestartPolicy"]["Name"] == "no"
    # everything else is kept
    assert merge({"Binds": ["/a:/b"], "PidsLimit": 5}, {"PidsLimit": -1}) == {"Binds": ["/a:/b"], "PidsLimit": 0}
    with pytest.raises(Conflict, match="^Cannot update container abc: Memory limit"):
        updates.merged("abc", {}, updates.check({"Memory": 64 * MiB}, host=HOST))


# -- the CLI's arithmetic and table --------------------------------------------------------


def test_cli_cpu_memory_and_io_figures() -> None:
    pre = {"cpu_usage": {"total_usage": 1_000_000_000}, "system_cpu_usage": 100_000_000_000, "online_cpus": 2}
    cur = {"cpu_usage": {"total_usage": 1_500_000_000}, "system_cpu_usage": 102_000_000_000, "online_cpus": 2}
    assert cli.cpu_percent(pre, cur) == pytest.approx(50.0)
    assert cli.cpu_percent({}, {"cpu_usage": {"total_usage": 5, "percpu_usage": [1, 2, 3, 4]},
                                "system_cpu_usage": 10}) == pytest.approx(200.0)   # no online_cpus: the per-CPU count
    assert cli.cpu_percent(cur, pre) == 0.0
    assert cli.memory_usage({"usage": 3 * MiB, "stats": {"total_inactive_file": MiB, "inactive_file": 2}}) == 2 * MiB
    assert cli.memory_usage({"usage": 3 * MiB, "stats": {"inactive_file": MiB}}) == 2 * MiB
    assert cli.memory_usage({"usage": 3 * MiB, "stats": {"total_inactive_file": 4 * MiB}}) == 3 * MiB
    assert cli.block_io({"io_service_bytes_recursive": [{"op": "Read", "value": 5}, {"op": "write", "value": 7},
                                                        {"op": "Total", "value": 12}]}) == (5.0, 7.0)
    assert cli.network_io({"eth0": {"rx_bytes": 1200, "tx_bytes": 0}, "eth1": {"rx_bytes": 34}}) == (1234.0, 0.0)


def test_cli_table_and_formats() -> None:
    doc = {"name": "/web", "id": CID, "memory_stats": {"usage": 1536 * 1024, "limit": 24 * GiB + GiB // 2,
                                                       "stats": {"total_inactive_file": 0}},
           "cpu_stats": {"cpu_usage": {"total_usage": 3}, "system_cpu_usage": 200, "online_cpus": 2},
           "precpu_stats": {"cpu_usage": {"total_usage": 1}, "system_cpu_usage": 100},
           "networks": {"eth0": {"rx_bytes": 1200, "tx_bytes": 0}},
           "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4_100_000}]},
           "pids_stats": {"current": 2}}
    entry = cli.entry_from("web", doc)
    assert cli.render([entry, cli.Entry("gone", invalid=True)]) == (
        "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      BLOCK I/O    PIDS\n"
        "c0ffee000000   web       4.00%     1.5MiB / 24.5GiB    0.01%     1.2kB / 0B   4.1MB / 0B   2\n"
        "               --        --        -- / --             --        --           --           --\n")
    assert cli.render([entry], "{{.Container}} {{.ID}} {{.PIDs}}", trunc=False) == f"web {CID} 2\n"
    assert json.loads(cli.render([entry], "json")) == {
        "BlockIO": "4.1MB / 0B", "CPUPerc": "4.00%", "Container": "web", "ID": "c0ffee000000", "MemPerc": "0.01%",
        "MemUsage": "1.5MiB / 24.5GiB", "Name": "web", "NetIO": "1.2kB / 0B", "PIDs": "2"}
    assert cli.render([entry], "table {{.Name}}\\t{{.MemPerc}}") == "NAME      MEM %\nweb       0.01%\n"
    assert cli.render([]) == "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS\n"

