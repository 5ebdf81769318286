"""The real docker CLI's ``stats`` and ``update`` against a portside daemon.

``docker stats`` computes CPU %, memory and I/O from portside's documents
itself, so its table is the proof that the documents have Docker's shape;
``docker update`` sends its own UpdateConfig, and the cgroup files show
what portside made of it.
"""

from __future__ import annotations

import json
import re

import pytest

from portside.cgroups import CgroupVersion, detect

pytestmark = [pytest.mark.root, pytest.mark.peers]

FOREVER = "trap 'exit 0' TERM; while :; do sleep 1; done"
BUSY = "trap 'exit 0' TERM; while :; do :; done"
HEADER = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]


@pytest.fixture
def docker(daemon, docker_client):
    return docker_client(daemon.host)


@pytest.fixture
def busybox(docker, busybox_tar: str) -> str:
    return docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()


def cgroup_file(cid: str, hierarchy: str, name: str, v2_name: str) -> str:
    if detect() is CgroupVersion.V2:
        path = f"/sys/fs/cgroup/portside/{cid}/{v2_name}"
    else:
        path = f"/sys/fs/cgroup/{hierarchy}/portside/{cid}/{name}"
    with open(path) as f:
        return f.read().strip()


def rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def test_docker_stats_no_stream(docker, busybox):
    cid = docker("run", "-d", "--name", "hot", "--network", "none", "busybox", "sh", "-c",
                 f"head -c 20000000 /dev/zero > /dev/shm/ballast; {BUSY}").out.strip()
    docker("create", "--name", "cold", "busybox", "true")
    table = rows(docker("stats", "--no-stream", "hot", "cold").out)
    assert table[0] == HEADER
    hot, cold = table[1], table[2]
    assert hot[:2] == [cid[:12], "hot"]
    assert float(hot[2].rstrip("%")) > 1.0                     # docker's own arithmetic over our two samples
    used, limit = hot[3].split(" / ")
    assert limit.endswith("GiB") and used.endswith(("MiB", "KiB"))
    assert hot[5] == "0B / 0B" and int(hot[7]) >= 1           # no interface but lo
    assert cold[1:] == ["cold", "0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"]
    entry = json.loads(docker("stats", "--no-stream", "--format", "{{json .}}", "hot").out)
    assert entry["Name"] == "hot" and entry["ID"] == cid[:12] and entry["Container"] == "hot"
    # no names: the running containers (docker lists them, then reads each one's stats)
    names = docker("stats", "--no-stream", "--format", "{{.Name}}").out.split()
    assert names == ["hot"]
    assert sorted(docker("container", "stats", "--no-stream", "-a", "--format", "{{.Name}}").out.split()) == [
        "cold", "hot"]
    missing = docker("stats", "--no-stream", "nosuch", check=False)
    assert missing.rc == 1 and "No such container: nosuch" in missing.err
    docker("rm", "-f", "hot", "cold")


def test_docker_update(docker, busybox):
    cid = docker("run", "-d", "--name", "limited", "-m", "128m", "busybox", "sh", "-c", FOREVER).out.strip()
    result = docker("update", "-m", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--pids-limit", "30", "limited")
    assert result.out == "limited\n"
    assert cgroup_file(cid, "memory", "memory.limit_in_bytes", "memory.max") == str(64 << 20)
    assert cgroup_file(cid, "pids", "pids.max", "pids.max") == "30"
    quota = cgroup_file(cid, "cpu", "cpu.cfs_quota_us", "cpu.max")
    assert quota.split()[0] == "50000"
    host_config = json.loads(docker("inspect", "-f", "{{json .HostConfig}}", "limited").out)
    assert (host_config["Memory"], host_config["MemorySwap"], host_config["NanoCpus"], host_config["PidsLimit"]) == (
        64 << 20, 128 << 20, 500_000_000, 30)
    stats = json.loads(docker("stats", "--no-stream", "--format", "{{json .}}", "limited").out)
    assert stats["MemUsage"].endswith(" / 64MiB")
    refused = docker("update", "--cpu-quota", "20000", "limited", check=False)
    assert refused.rc == 1
    assert (f"Cannot update container {cid}: Conflicting options: CPU Quota cannot be updated as NanoCPUs has "
            "already been set") in refused.err
    # a stopped container: the record now, the cgroup at its next start
    docker("create", "--name", "later", "busybox", "sh", "-c", FOREVER)
    assert docker("update", "-m", "48m", "--memory-swap", "-1", "--restart", "unless-stopped", "later").out == "later\n"
    later = docker("start", "later").out.strip()
    later_id = docker("inspect", "-f", "{{.Id}}", later).out.strip()
    assert cgroup_file(later_id, "memory", "memory.limit_in_bytes", "memory.max") == str(48 << 20)
    assert docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "later").out.strip() == "unless-stopped"
    docker("rm", "-f", "limited", "later")
