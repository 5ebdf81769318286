"""``portside stats`` and ``portside update`` end to end, against portside and against dockerd 20.10.

The engines come from test_cli_containers.py: each test runs once against a
portside daemon and once against a private dockerd (the reference), through
the same portside CLI, so tables, messages and exit statuses are held to
what dockerd answers. The cgroup files are read on the host: dockerd's
cgroupfs driver keeps a container's under ``docker/<id>``, portside's under
``portside/<id>``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from portside.cgroups import CgroupVersion, detect
from test_cli_containers import (  # noqa: F401  (fixtures: engine, dockerd_engine)
    FOREVER,
    Engine,
    _exit_status,
    _read_pty,
    _spawn_in_pty,
    dockerd_engine,
    engine,
    err,
    out,
)

pytestmark = pytest.mark.root

BUSY = "trap 'exit 0' TERM; while :; do :; done"
HEADER = "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT"
# one row of the default table: ID, name, CPU %, MEM USAGE / LIMIT, MEM %, NET I/O, BLOCK I/O, PIDS
ROW = re.compile(r"^(?P<id>[0-9a-f]{12}) +(?P<name>\S+) +(?P<cpu>[0-9.]+)% +(?P<mem>[0-9.]+[KMG]?i?B) / "
                 r"(?P<limit>[0-9.]+[KMG]?i?B) +(?P<memperc>[0-9.]+)% +(?P<net>\S+ / \S+) +(?P<block>\S+ / \S+) +"
                 r"(?P<pids>\d+)$")


def cgroup_file(engine: Engine, cid: str, hierarchy: str, name: str) -> str:
    parent = "docker" if engine.name == "dockerd" else "portside"
    if detect() is CgroupVersion.V2:
        v2_name = "memory.max" if name == "memory.limit_in_bytes" else name
        path = f"/sys/fs/cgroup/{parent}/{cid}/{v2_name}"
    else:
        path = f"/sys/fs/cgroup/{hierarchy}/{parent}/{cid}/{name}"
    with open(path) as f:
        return f.read().strip()


def container_id(engine: Engine, name: str) -> str:
    return out(engine.cli("inspect", "-f", "{{.Id}}", name)).strip()


def test_stats_no_stream_shows_a_busy_container(engine: Engine) -> None:
    # --network none: the reference dockerd runs without a bridge; NET I/O's width must match
    engine.cli("run", "-d", "--name", "st-busy", "--network", "none", "busybox", "sh", "-c",
               f"head -c 20000000 /dev/zero > /dev/shm/ballast; {BUSY}")
    engine.cli("create", "--name", "st-idle", "busybox", "true")
    try:
        cid = container_id(engine, "st-busy")
        deadline = time.monotonic() + 30
        while True:   # until the ballast is written
            lines = out(engine.cli("stats", "--no-stream", "st-busy")).splitlines()
            assert lines[0].startswith(HEADER) and lines[0].endswith("NET I/O   BLOCK I/O   PIDS")
            row = ROW.match(lines[1])
            assert row, lines[1]
            if row["mem"].endswith("MiB") and float(row["mem"][:-3]) > 19 or time.monotonic() > deadline:
                break
        assert row["id"] == cid[:12] and row["name"] == "st-busy"
        assert float(row["cpu"]) > 1.0                       # a busy loop, on a shared machine
        assert row["mem"].endswith("MiB") and float(row["mem"][:-3]) > 19
        assert row["limit"].endswith("GiB")                  # no limit: the machine's memory
        assert int(row["pids"]) >= 1
        # a container that never ran: zeroes, the same from both engines
        idle = out(engine.cli("stats", "--no-stream", "st-idle")).splitlines()[1]
        assert re.split(r"\s{2,}", idle)[1:] == ["st-idle", "0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"]
        # without names: the running containers, and with -a the others too
        listed = out(engine.cli("stats", "--no-stream", "--format", "{{.Name}}")).split()
        assert "st-busy" in listed and "st-idle" not in listed
        assert "st-idle" in out(engine.cli("stats", "--no-stream", "-a", "--format", "{{.Name}}")).split()
        fields = out(engine.cli("stats", "--no-stream", "--no-trunc", "--format",
                                "{{.Container}}|{{.ID}}|{{.Name}}|{{.PIDs}}", "st-busy")).strip().split("|")
        assert fields[:3] == ["st-busy", cid, "st-busy"] and int(fields[3]) >= 1
        missing = engine.cli("stats", "--no-stream", "st-busy", "nosuch", check=False)
        assert missing.returncode == 1 and out(missing) == ""
        assert err(missing) == "Error response from daemon: No such container: nosuch\n"
    finally:
        engine.cli("rm", "-f", "st-busy", "st-idle", check=False)


def test_stats_streams_and_redraws_on_a_terminal(engine: Engine) -> None:
    engine.cli("run", "-d", "--name", "st-live", "busybox", "sh", "-c", FOREVER)
    try:
        pid, fd = _spawn_in_pty(engine.argv("stats", "st-live"), engine.env)
        try:
            seen = _read_pty(fd, b"\x00", 3.0)   # about three seconds of screens
        finally:
            os.kill(pid, signal.SIGINT)
            _exit_status(pid)
            os.close(fd)
        screens = seen.split(b"\x1b[2J\x1b[H")
        assert len(screens) >= 3 and screens[0] == b""
        assert all(s.startswith(HEADER.encode()) and b"st-live" in s for s in screens[1:])
        # not a terminal: one table after another, no escape sequences
        proc = subprocess.Popen(engine.argv("stats", "st-live"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, **engine.env})
        time.sleep(3.5)
        proc.send_signal(signal.SIGINT)
        text = proc.communicate(timeout=30)[0].decode()
        assert "\x1b" not in text
        assert text.count(HEADER) >= 2 and text.count("st-live") == text.count(HEADER)
    finally:
        engine.cli("rm", "-f", "st-live", check=False)


def test_update_applies_to_running_and_stopped_containers(engine: Engine) -> None:
    engine.cli("run", "-d", "--name", "up-run", "-m", "128m", "busybox", "sh", "-c", FOREVER)
    engine.cli("create", "--name", "up-new", "busybox", "sh", "-c", FOREVER)
    try:
        run_id = container_id(engine, "up-run")
        updated = engine.cli("update", "-m", "64m", "--cpu-shares", "512", "up-run")
        assert out(updated).splitlines()[0] == "up-run"   # then dockerd's warnings, if any
        assert cgroup_file(engine, run_id, "memory", "memory.limit_in_bytes") == str(64 << 20)
        assert out(engine.cli("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} "
                              "{{.HostConfig.CpuShares}}", "up-run")).split() == [str(64 << 20), str(256 << 20), "512"]
        # a stopped container keeps the update in its record, and its next start applies it
        assert out(engine.cli("update", "--memory", "48m", "--memory-swap", "96m", "--pids-limit", "20",
                              "--restart", "on-failure:2", "up-new")).splitlines()[0] == "up-new"
        assert out(engine.cli("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} "
                              "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
                              "up-new")).split() == [str(48 << 20), "20", "on-failure:2"]
        engine.cli("start", "up-new")
        new_id = container_id(engine, "up-new")
        assert cgroup_file(engine, new_id, "memory", "memory.limit_in_bytes") == str(48 << 20)
        assert cgroup_file(engine, new_id, "pids", "pids.max") == "20"
        # several containers: each name that was updated, then the errors, status 1
        both = engine.cli("update", "--cpu-shares", "256", "up-run", "nosuch", "up-new", check=False)
        assert both.returncode == 1
        assert out(both).splitlines()[:2] == ["up-run", "up-new"]
        assert err(both) == "Error response from daemon: No such container: nosuch\n"
    finally:
        engine.cli("rm", "-f", "up-run", "up-new", check=False)


def test_pids_limit_is_enforced_after_update(engine: Engine) -> None:
    engine.cli("run", "-d", "--name", "up-pids", "busybox", "sh", "-c", FOREVER)
    try:
        # room for the exec itself (runc's init is a Go program: its threads count), not for 20 more processes
        engine.cli("update", "--pids-limit", "10", "up-pids")
        assert cgroup_file(engine, container_id(engine, "up-pids"), "pids", "pids.max") == "10"
        forks = engine.cli("exec", "up-pids", "sh", "-c",
                           "i=0; while [ $i -lt 20 ]; do sleep 2 >/dev/null 2>&1 & i=$((i+1)); done; echo spawned",
                           check=False)
        assert "can't fork" in err(forks) + out(forks)
    finally:
        engine.cli("rm", "-f", "up-pids", check=False)


def test_update_errors_are_dockerds(engine: Engine) -> None:
    engine.cli("run", "-d", "--name", "up-err", "--cpus", "0.5", "busybox", "sh", "-c", FOREVER)
    engine.cli("run", "-d", "--rm", "--name", "up-rm", "busybox", "sh", "-c", FOREVER)
    try:
        cid, rm_id = container_id(engine, "up-err"), container_id(engine, "up-rm")
        cases = [
            (["--cpu-quota", "20000", "up-err"],
             f"Cannot update container {cid}: Conflicting options: CPU Quota cannot be updated as NanoCPUs has "
             "already been set"),
            (["-m", "64m", "up-err"],
             f"Cannot update container {cid}: Memory limit should be smaller than already set memoryswap limit, "
             "update the memoryswap at the same time"),
            (["-m", "1m", "up-err"], "Minimum memory limit allowed is 6MB"),
            (["--restart", "always", "up-rm"],
             f"Cannot update container {rm_id}: Restart policy cannot be updated because AutoRemove is enabled "
             "for the container"),
            (["--cpuset-cpus", "4096", "up-err"], "Requested CPUs are not available - requested 4096, available: "),
        ]
        for args, message in cases:
            result = engine.cli("update", *args, check=False)
            assert result.returncode == 1, args
            assert err(result).startswith("Error response from daemon: " + message), (args, err(result))
        nothing = engine.cli("update", "up-err", check=False)
        assert (nothing.returncode, err(nothing)) == (1, "you must provide one or more flags when using this command\n")
        bad = engine.cli("update", "-m", "lots", "up-err", check=False)
        assert bad.returncode == 125 and err(bad).startswith(
            "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'")
    finally:
        engine.cli("rm", "-f", "up-err", "up-rm", check=False)
