"""The RUN containers of a build take the build's --network, --add-host and --shm-size, as dockerd's classic builder's do."""

from __future__ import annotations

import pathlib

import pytest

from tests.api.test_api_build import build
from tests.helpers import Daemon

pytestmark = pytest.mark.root

PROBE = """\
FROM busybox
RUN cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ' > /ifaces; \
    cp /etc/hosts /hosts.seen; df -k /dev/shm | tail -1 > /shm.seen
"""


def _read(daemon: Daemon, image: str, path: str) -> str:
    return daemon.cli("run", "--rm", "--network", "none", image, "cat", path).stdout.decode()


def test_network_none_add_host_and_shm_size_apply_to_run(daemon: Daemon, busybox_image: str) -> None:
    status, lines = build(daemon, {"Dockerfile": PROBE}, t="probe-none", networkmode="none",
                          extrahosts="db.internal:10.9.8.7,cache.internal:10.9.8.6", shmsize=str(8 << 20), nocache=1)
    assert status == 200 and not any("error" in line for line in lines), lines
    assert _read(daemon, "probe-none", "/ifaces").split() == ["lo"]
    hosts = _read(daemon, "probe-none", "/hosts.seen")
    assert "10.9.8.7\tdb.internal" in hosts and "10.9.8.6\tcache.internal" in hosts, hosts
    assert _read(daemon, "probe-none", "/shm.seen").split()[1] == str(8 << 10)  # 1K-blocks

    # the default: the bridge, as Docker's
    status, lines = build(daemon, {"Dockerfile": PROBE}, t="probe-default", nocache=1)
    assert status == 200, lines
    assert _read(daemon, "probe-default", "/ifaces").split() == ["eth0", "lo"]


def test_cli_flags(daemon: Daemon, busybox_image: str, tmp_path: pathlib.Path) -> None:
    (tmp_path / "Dockerfile").write_text(PROBE)
    out = daemon.cli("build", "--network", "none", "--add-host", "db.internal:10.9.8.7", "--shm-size", "16m",
                     "-t", "probe-cli", str(tmp_path)).stdout.decode()
    assert "Successfully tagged probe-cli:latest" in out, out
    assert _read(daemon, "probe-cli", "/ifaces").split() == ["lo"]
    assert "10.9.8.7\tdb.internal" in _read(daemon, "probe-cli", "/hosts.seen")
    assert _read(daemon, "probe-cli", "/shm.seen").split()[1] == str(16 << 10)
    bad = daemon.cli("build", "--shm-size", "lots", str(tmp_path), check=False)
    assert bad.returncode != 0 and b"--shm-size" in bad.stderr, bad



def test_memory_and_cpu_limits_apply_to_run(daemon: Daemon, busybox_image: str) -> None:
    """docker-py's container_limits reach the RUN container (kept with rm=0 to be inspected)."""
    status, lines = build(daemon, {"Dockerfile": "FROM busybox\nRUN true\n"}, memory=str(64 << 20),
                          memswap="-1", cpushares="512", cpusetcpus="0", rm=0, nocache=1)
    assert status == 200 and not any("error" in line for line in lines), lines
    kept = [c["Id"] for c in daemon.api.json("GET", "/containers/json?all=1")]
    assert len(kept) == 1, kept
    host = daemon.api.json("GET", f"/containers/{kept[0]}/json")["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["CpuShares"], host["CpusetCpus"]) == (64 << 20, -1, 512, "0")
    daemon.cli("rm", kept[0])
    status, lines = build(daemon, {"Dockerfile": "FROM busybox\n"}, memory="lots")
    assert status == 400 and "memory" in str(lines), lines
