"""portside network create/ls/inspect/rm/prune/connect/disconnect: Docker's output, messages and exit codes."""

from __future__ import annotations

import json

from helpers import Daemon


def test_network_cli(daemon: Daemon, busybox_image: str) -> None:
    nid = daemon.cli("network", "create", "--internal", "-o", "com.docker.network.bridge.name=ptcli" +
                     daemon.network_tag[-4:], "quiet").stdout.decode().strip()
    assert len(nid) == 64
    out = daemon.cli("network", "ls").stdout.decode().splitlines()
    assert out[0] == "NETWORK ID     NAME      DRIVER    SCOPE"
    assert f"{nid[:12]}   quiet     bridge    local" in out
    assert daemon.cli("network", "ls", "-q", "--no-trunc", "-f", "name=qui").stdout.decode() == nid + "\n"
    assert daemon.cli("network", "ls", "--format", "{{.Name}} {{.Internal}}", "-f", "type=custom").stdout == \
        b"quiet true\n"
    (doc,) = json.loads(daemon.cli("network", "inspect", "quiet").stdout)
    assert doc["Internal"] is True and doc["Options"] == {"com.docker.network.bridge.name": "ptcli" +
                                                          daemon.network_tag[-4:]}
    r = daemon.cli("network", "create", "quiet", check=False)
    assert r.returncode == 1 and r.stderr == b"Error response from daemon: network with name quiet already exists\n"
    daemon.cli("create", "--name", "idle", "--network", "quiet", "busybox", "true")
    daemon.cli("network", "connect", "bridge", "idle")  # not running: recorded for its next start
    networks = json.loads(daemon.cli("inspect", "-f", "{{json .NetworkSettings.Networks}}", "idle").stdout)
    assert set(networks) == {"quiet", "bridge"}
    daemon.cli("network", "disconnect", "bridge", "idle")
    r = daemon.cli("network", "prune", "-f")
    assert r.stdout == b""  # quiet is used by idle
    daemon.cli("rm", "idle")
    r = daemon.cli("network", "rm", "quiet", "nonesuch", check=False)
    assert r.returncode == 1 and r.stdout == b"quiet\n"
    assert r.stderr == b"Error response from daemon: network nonesuch not found\n"
    daemon.cli("network", "create", "spare")
    assert daemon.cli("network", "prune", "-f").stdout == b"Deleted Networks:\nspare\n\n"
    r = daemon.cli("network", "rm", "host", check=False)
    assert r.stderr == b"Error response from daemon: host is a pre-defined network and cannot be removed\n"
