"""GET /containers/{id}/stats and POST /containers/{id}/update on a real daemon, real cgroups, real processes.

The figures are the kernel's: a busy loop shows CPU time, a file in the
container's /dev/shm shows memory, a veth pair made in the container's
network namespace shows traffic. Updates are checked in the cgroup files the
kernel enforces, and by what the processes can no longer do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import UnixHTTPConnection

from portside.cgroups import CgroupVersion, detect

pytestmark = pytest.mark.root

MiB = 1 << 20
FOREVER = "trap 'exit 0' TERM; while :; do sleep 1; done"
BUSY = "trap 'exit 0' TERM; while :; do :; done"
KEYS = ["read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats", "precpu_stats",
        "memory_stats", "name", "id"]
ZERO_TIME = "0001-01-01T00:00:00Z"


def run(daemon, cmd: str, *, name: str | None = None, start: bool = True, **host_config: Any) -> str:
    body = {"Image": "busybox", "Cmd": ["sh", "-c", cmd], "HostConfig": host_config}
    cid = daemon.api.json("POST", "/containers/create" + (f"?name={name}" if name else ""), body, expect=201)["Id"]
    if start:
        assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    return cid


def stats(daemon, cid: str, query: str = "stream=false") -> dict[str, Any]:
    status, headers, body = daemon.api.request("GET", f"/containers/{cid}/stats?{query}")
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    doc: dict[str, Any] = json.loads(body)
    return doc


def inspect(daemon, cid: str) -> dict[str, Any]:
    doc: dict[str, Any] = daemon.api.json("GET", f"/containers/{cid}/json")
    return doc


def update(daemon, cid: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, _, data = daemon.api.request("POST", f"/containers/{cid}/update", body)
    return status, json.loads(data)


def cgroup_value(cid: str, v1: tuple[str, str], v2: str) -> str:
    """A file of the container's cgroup: (hierarchy, file) on v1 and hybrid hosts, the file on v2."""
    if detect() is CgroupVersion.V2:
        path = f"/sys/fs/cgroup/portside/{cid}/{v2}"
    else:
        path = f"/sys/fs/cgroup/{v1[0]}/portside/{cid}/{v1[1]}"
    with open(path) as f:
        return f.read().strip()


def memory_limit(cid: str) -> str:
    return cgroup_value(cid, ("memory", "memory.limit_in_bytes"), "memory.max")


def pids_max(cid: str) -> str:
    return cgroup_value(cid, ("pids", "pids.max"), "pids.max")


def host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def until(condition, timeout: float = 15.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def exec_in(daemon, cid: str, cmd: str) -> str:
    ex = daemon.api.json("POST", f"/containers/{cid}/exec",
                         {"Cmd": ["sh", "-c", cmd], "AttachStdout": True, "AttachStderr": True}, expect=201)["Id"]
    _, _, body = daemon.api.request("POST", f"/exec/{ex}/start", {"Detach": False, "Tty": False})
    out = b""
    while body:   # stdcopy frames: stdout and stderr together
        size = int.from_bytes(body[4:8], "big")
        out, body = out + body[8:8 + size], body[8 + size:]
    return out.decode(errors="replace")


# -- stats -------------------------------------------------------------------------------


def test_a_busy_container_shows_cpu_memory_and_pids(daemon, busybox_image):
    cid = run(daemon, f"head -c 20000000 /dev/zero > /dev/shm/ballast; {BUSY}", name="busy", NetworkMode="none")
    until(lambda: stats(daemon, cid, "stream=false&one-shot=true")["memory_stats"]["usage"] > 20_000_000,
          what="the ballast to be written")
    started = time.monotonic()
    doc = stats(daemon, cid)
    assert time.monotonic() - started >= 0.9   # a second sample, a second later
    assert list(doc) == KEYS                   # no interface but lo: no "networks", as dockerd
    assert doc["name"] == "/busy" and doc["id"] == cid
    assert doc["num_procs"] == 0 and doc["storage_stats"] == {}
    cpu, pre = doc["cpu_stats"], doc["precpu_stats"]
    assert doc["preread"] != ZERO_TIME and doc["preread"] < doc["read"]
    delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    system = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    assert delta > 0 and system > 0
    assert delta / system * cpu["online_cpus"] * 100 > 5      # a busy loop (on a shared machine)
    assert cpu["online_cpus"] == os.cpu_count()
    assert cpu["cpu_usage"]["usage_in_usermode"] > 0
    memory = doc["memory_stats"]
    assert memory["usage"] > 20_000_000
    assert memory["limit"] == host_memory()      # unlimited: the machine's memory
    assert doc["pids_stats"]["current"] >= 1 and "limit" not in doc["pids_stats"]
    if detect() is CgroupVersion.V2:
        assert memory["stats"]["shmem"] >= 20_000_000 and "max_usage" not in memory
    else:
        assert memory["max_usage"] >= memory["usage"] and "total_inactive_file" in memory["stats"]
        assert len(cpu["cpu_usage"]["percpu_usage"]) >= 1
        assert isinstance(doc["blkio_stats"]["io_service_bytes_recursive"], list)
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")


def test_one_shot_answers_at_once_without_a_pre_sample(daemon, busybox_image):
    cid = run(daemon, FOREVER, Memory=64 * MiB, MemorySwap=64 * MiB, PidsLimit=50)
    started = time.monotonic()
    doc = stats(daemon, cid, "stream=0&one-shot=1")
    assert time.monotonic() - started < 0.9
    assert doc["preread"] == ZERO_TIME and doc["read"] != ZERO_TIME
    assert doc["precpu_stats"] == {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                                   "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    assert doc["memory_stats"]["limit"] == 64 * MiB
    assert doc["pids_stats"]["limit"] == 50
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")


def test_stopped_containers_have_zeroed_stats(daemon, busybox_image):
    cid = run(daemon, "true", name="idle", start=False)
    doc = stats(daemon, cid)
    assert doc["read"] == ZERO_TIME and doc["name"] == "/idle" and doc["id"] == cid
    assert doc["memory_stats"] == {} and doc["pids_stats"] == {}
    assert doc["cpu_stats"] == doc["precpu_stats"] == {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    assert set(doc["blkio_stats"].values()) == {None}
    status, _, body = daemon.api.request("GET", "/containers/nosuch/stats?stream=false")
    assert status == 404 and json.loads(body)["message"] == "No such container: nosuch"
    daemon.api.request("DELETE", f"/containers/{cid}")


def stream(daemon, cid: str) -> Iterator[dict[str, Any]]:
    conn = UnixHTTPConnection(daemon.socket, timeout=20)
    try:
        conn.request("GET", f"/containers/{cid}/stats")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Type") is None   # dockerd sends none either
        while True:
            line = resp.readline()
            if not line:
                return
            yield json.loads(line)
    finally:
        conn.close()


def test_the_stream_pairs_frames_zeroes_a_stopped_container_and_ends_at_removal(daemon, busybox_image):
    cid = run(daemon, FOREVER)
    frames = stream(daemon, cid)
    first, second = next(frames), next(frames)
    assert first["preread"] == ZERO_TIME
    assert second["preread"] == first["read"] and second["precpu_stats"] == first["cpu_stats"]
    assert second["memory_stats"]["usage"] > 0
    assert daemon.api.request("POST", f"/containers/{cid}/stop?t=1")[0] == 204
    frame = next(frames)
    while frame["read"] != ZERO_TIME:
        frame = next(frames)
    assert frame["memory_stats"] == {} and frame["name"] == second["name"]
    assert daemon.api.request("DELETE", f"/containers/{cid}")[0] == 204
    rest = list(frames)   # ends: the daemon closes the stream once the container is gone
    assert all(f["read"] == ZERO_TIME for f in rest)


def test_networks_are_the_container_interfaces_but_lo(daemon, busybox_image):
    cid = run(daemon, FOREVER, NetworkMode="none")
    pid = str(inspect(daemon, cid)["State"]["Pid"])
    assert "networks" not in stats(daemon, cid, "stream=0&one-shot=1")   # only lo so far

    def netns(*cmd: str) -> None:
        subprocess.run(["nsenter", "-t", pid, "-n", *cmd], check=True, capture_output=True)

    # a veth pair inside the container's own namespace: a frame sent on one end arrives on the other
    netns("ip", "link", "add", "name", "pstest0", "type", "veth", "peer", "name", "pstest1")
    netns("ip", "link", "set", "pstest0", "up")
    netns("ip", "link", "set", "pstest1", "up")
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + b"x" * 100   # local experimental ethertype
    netns(sys.executable, "-c", "import socket, sys; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
          f"s.bind(('pstest0', 0)); s.send({frame!r})")
    networks = stats(daemon, cid, "stream=0&one-shot=1")["networks"]
    assert sorted(networks) == ["pstest0", "pstest1"]
    assert networks["pstest0"]["tx_bytes"] >= len(frame) and networks["pstest0"]["tx_packets"] >= 1
    assert networks["pstest1"]["rx_bytes"] >= len(frame)
    assert set(networks["pstest0"]) == {"rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes",
                                        "tx_packets", "tx_errors", "tx_dropped"}
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")   # the namespace, and the pair, go with it


# -- update ------------------------------------------------------------------------------


def test_update_lowers_the_memory_limit_of_a_running_container(daemon, busybox_image):
    cid = run(daemon, FOREVER, Memory=256 * MiB)
    assert memory_limit(cid) == str(256 * MiB)
    status, reply = update(daemon, cid, {"Memory": 64 * MiB, "CpuShares": 512, "PidsLimit": 100})
    assert (status, reply) == (200, {"Warnings": []})
    assert memory_limit(cid) == str(64 * MiB)
    assert pids_max(cid) == "100"
    host_config = inspect(daemon, cid)["HostConfig"]
    # -m 256m had 512m of memory+swap: it stays, as dockerd keeps it
    assert (host_config["Memory"], host_config["MemorySwap"]) == (64 * MiB, 512 * MiB)
    assert (host_config["CpuShares"], host_config["PidsLimit"]) == (512, 100)
    assert stats(daemon, cid, "stream=0&one-shot=1")["memory_stats"]["limit"] == 64 * MiB
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")


def test_update_refusals_keep_the_old_limits(daemon, busybox_image):
    cid = run(daemon, f"head -c 40000000 /dev/zero > /dev/shm/ballast; {FOREVER}", NanoCpus=500_000_000)
    until(lambda: stats(daemon, cid, "stream=0&one-shot=1")["memory_stats"]["usage"] > 40_000_000,
          what="the ballast to be written")
    # the kernel cannot reclaim shared memory without swap: the limit is refused (500, as runc's refusal)
    status, reply = update(daemon, cid, {"Memory": 16 * MiB, "MemorySwap": 16 * MiB})
    assert status == 500
    assert reply["message"].startswith(f"Cannot update container {cid}: unable to set memory limit to 16777216 "
                                       "(current usage: ")
    assert memory_limit(cid) != str(16 * MiB)
    assert inspect(daemon, cid)["HostConfig"].get("Memory", 0) == 0
    status, reply = update(daemon, cid, {"CpuQuota": 20_000})
    assert (status, reply["message"]) == (409, f"Cannot update container {cid}: Conflicting options: CPU Quota "
                                               "cannot be updated as NanoCPUs has already been set")
    status, reply = update(daemon, cid, {"Memory": 64 * MiB})
    assert (status, reply["message"]) == (409, f"Cannot update container {cid}: Memory limit should be smaller than "
                                               "already set memoryswap limit, update the memoryswap at the same time")
    status, reply = update(daemon, cid, {"Memory": 1024})
    assert (status, reply["message"]) == (400, "Minimum memory limit allowed is 6MB")
    status, reply = update(daemon, cid, {"CpuShares": 1})
    assert status == 500 and "the minimum allowed cpu-shares is 2" in reply["message"]
    assert inspect(daemon, cid)["HostConfig"].get("CpuShares", 0) == 0
    assert cgroup_value(cid, ("cpu", "cpu.shares"), "cpu.weight") in ("1024", "100")   # put back
    assert update(daemon, "nosuch", {"CpuShares": 512})[0] == 404
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")


def test_update_of_a_stopped_container_applies_at_its_next_start(daemon, busybox_image):
    cid = run(daemon, FOREVER, start=False)
    status, _ = update(daemon, cid, {"Memory": 48 * MiB, "MemorySwap": 96 * MiB, "PidsLimit": 20,
                                     "RestartPolicy": {"Name": "unless-stopped"}})
    assert status == 200
    host_config = inspect(daemon, cid)["HostConfig"]
    assert (host_config["Memory"], host_config["MemorySwap"], host_config["PidsLimit"]) == (48 * MiB, 96 * MiB, 20)
    assert host_config["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    assert memory_limit(cid) == str(48 * MiB)
    assert pids_max(cid) == "20"
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")


def test_pids_limit_is_enforced_after_update(daemon, busybox_image):
    cid = run(daemon, FOREVER)
    assert update(daemon, cid, {"PidsLimit": 4})[0] == 200
    assert pids_max(cid) == "4"
    out = exec_in(daemon, cid, "i=0; while [ $i -lt 8 ]; do sleep 2 >/dev/null 2>&1 & i=$((i+1)); done; echo spawned")
    assert "can't fork" in out
    assert stats(daemon, cid, "stream=0&one-shot=1")["pids_stats"]["current"] <= 4
    assert update(daemon, cid, {"PidsLimit": -1})[0] == 200          # -1: unlimited again
    assert pids_max(cid) == "max"
    assert inspect(daemon, cid)["HostConfig"]["PidsLimit"] == 0
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")


def test_a_restart_policy_set_by_update_brings_the_container_back(daemon, busybox_image):
    cid = run(daemon, "sleep 1; exit 3")
    assert update(daemon, cid, {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 1}})[0] == 200
    until(lambda: inspect(daemon, cid)["RestartCount"] >= 1, what="the restart")
    auto = run(daemon, FOREVER, AutoRemove=True)
    status, reply = update(daemon, auto, {"RestartPolicy": {"Name": "always"}})
    assert (status, reply["message"]) == (409, f"Cannot update container {auto}: Restart policy cannot be updated "
                                               "because AutoRemove is enabled for the container")
    status, reply = update(daemon, auto, {"RestartPolicy": {"Name": "bogus"}})
    assert status == 400 and "unknown policy 'bogus'" in reply["message"]
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")
    daemon.api.request("DELETE", f"/containers/{auto}?force=1")
