"""Spare launchers (runtime/spare.py): pre-forked children of the monitor, each already in its cgroup.

The daemon takes a spare's ID for the container it creates; the start hands
the spare the container. These tests hold the spare to what a freshly forked
launcher gives: the container's own cgroup with its limits, nothing left
after ``rm`` of a container that never started, nothing after the spare is
let go or idles out, and no descriptor of another container kept open.
"""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from helpers import Daemon, remove_containers, start_daemon, stop_daemon, stop_monitor

pytestmark = pytest.mark.root


def _cgroup_dirs(name: str) -> list[str]:
    found = []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(dirpath, d) for d in dirnames if d == name]
        if dirpath.count("/") > 5:
            dirnames.clear()
    return found


def _monitor(daemon: Daemon, request: dict) -> dict:
    path = os.path.join(os.path.dirname(daemon.socket), "monitor", "monitor.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(json.dumps(request).encode() + b"\n")
        reply = s.makefile("rb").readline()
    return json.loads(reply)


def _monitor_pid(daemon: Daemon) -> int:
    with open(os.path.join(os.path.dirname(daemon.socket), "monitor", "monitor.pid")) as f:
        return int(f.read())


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _reserve(daemon: Daemon, timeout: float = 10) -> str:
    """A spare's ID: the first reserve wakes the monitor's spares, a later one gets one."""
    daemon.api.request("POST", "/containers/create", {"Image": "nosuch-image"})  # the daemon starts its monitor
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sid = _monitor(daemon, {"op": "reserve"})["id"]
        if sid:
            return sid
        time.sleep(0.05)
    raise AssertionError("the monitor never had a spare")


def _wait_for(predicate, timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _create(daemon: Daemon, cmd: list[str], **extra) -> str:
    status, _, body = daemon.api.request("POST", "/containers/create",
                                         {"Image": "busybox", "Cmd": cmd, "HostConfig": {"NetworkMode": "none"},
                                          **extra})
    assert status == 201, body
    return json.loads(body)["Id"]


def test_a_created_container_starts_in_its_spares_cgroup_with_its_limits(daemon, busybox_image):
    _monitor(daemon, {"op": "release", "id": _reserve(daemon)})  # spares are on
    _wait_for(lambda: any(_cgroup_dirs(c) for c in _children_cgroups(daemon)), what="a ready spare")
    cid = _create(daemon, ["sh", "-c", "cat /proc/self/cgroup; sleep 30"], HostConfig={
        "NetworkMode": "none", "PidsLimit": 9, "Memory": 64 << 20})
    assert _cgroup_dirs(cid), "the container's ID is a spare's, whose cgroup is made"
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    limits = {}
    for d in _cgroup_dirs(cid):
        for name in ("pids.max", "memory.limit_in_bytes", "memory.max"):
            if os.path.exists(os.path.join(d, name)):
                with open(os.path.join(d, name)) as f:
                    limits[name] = f.read().strip()
    assert limits.get("pids.max") == "9"
    assert (limits.get("memory.limit_in_bytes") or limits.get("memory.max")) == str(64 << 20)
    _wait_for(lambda: b"portside/" in _logs(daemon, cid), what="the container's output")
    assert f"portside/{cid}".encode() in _logs(daemon, cid)
    assert daemon.api.request("DELETE", f"/containers/{cid}?force=1")[0] == 204
    assert _cgroup_dirs(cid) == []


def _children_cgroups(daemon: Daemon) -> list[str]:
    """The cgroup names (last component) of the monitor's children that are not containers."""
    names = []
    for pid in _children(_monitor_pid(daemon)):
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                for line in f:
                    path = line.rstrip("\n").split(":", 2)[2]
                    if path.startswith("/portside/"):
                        names.append(path.rsplit("/", 1)[1])
                        break
        except FileNotFoundError:
            pass
    return names


def _logs(daemon: Daemon, cid: str) -> bytes:
    return daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1")[2]


def test_removing_a_never_started_container_lets_its_spare_go(daemon, busybox_image):
    _monitor(daemon, {"op": "release", "id": _reserve(daemon)})
    _wait_for(lambda: bool(_children_cgroups(daemon)), what="a spare")
    spare_id = _children_cgroups(daemon)[0]
    _wait_for(lambda: bool(_cgroup_dirs(spare_id)), what="the spare's cgroup")
    cid = _create(daemon, ["true"])
    assert cid == spare_id
    assert daemon.api.request("DELETE", f"/containers/{cid}")[0] == 204
    assert _cgroup_dirs(cid) == []
    assert spare_id not in _children_cgroups(daemon)


def test_a_spare_holds_no_other_containers_stdin(daemon, busybox_image):
    # cat ends only when every write end of its stdin is closed: a spare forked while this
    # container ran must not have kept the monitor's copy
    cid = _create(daemon, ["cat"], OpenStdin=True, StdinOnce=True, AttachStdin=True)
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    for _ in range(3):  # more spares forked (reserved and released) while cat runs
        _monitor(daemon, {"op": "release", "id": _reserve(daemon)})
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(daemon.socket)
    sock.sendall(f"POST /containers/{cid}/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
                 "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0]
    sock.sendall(b"hello\n")
    sock.shutdown(socket.SHUT_WR)
    status = daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"]
    sock.close()
    assert status == 0
    daemon.api.request("DELETE", f"/containers/{cid}")


def test_spares_idle_out_and_the_monitor_leaves_no_cgroup(daemon_dirs, busybox_tar, monkeypatch):
    monkeypatch.setenv("PORTSIDE_SPARE_IDLE", "1")
    daemon = start_daemon(*daemon_dirs)
    try:
        daemon.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        daemon.cli("run", "--rm", "--network", "none", "busybox", "true")
        _monitor(daemon, {"op": "release", "id": _reserve(daemon)})
        _wait_for(lambda: bool(_children_cgroups(daemon)), what="a spare")
        spare_id = _children_cgroups(daemon)[0]
        _wait_for(lambda: not _children(_monitor_pid(daemon)), timeout=15, what="the idle spare to go")
        assert _cgroup_dirs(spare_id) == []
        # and on SIGTERM: a spare made just before is gone with the monitor
        _monitor(daemon, {"op": "release", "id": _reserve(daemon)})
        _wait_for(lambda: bool(_children_cgroups(daemon)), what="a spare")
        spare_id = _children_cgroups(daemon)[0]
    finally:
        remove_containers(daemon)
        stop_daemon(daemon)
        stop_monitor(daemon)
    assert _cgroup_dirs(spare_id) == []


def test_a_spare_whose_monitor_is_killed_leaves_no_cgroup(daemon_dirs, busybox_tar):
    import signal

    daemon = start_daemon(*daemon_dirs)
    try:
        _monitor(daemon, {"op": "release", "id": _reserve(daemon)})
        _wait_for(lambda: bool(_children_cgroups(daemon)), what="a spare")
        spare_id = _children_cgroups(daemon)[0]
        _wait_for(lambda: bool(_cgroup_dirs(spare_id)), what="the spare's cgroup")
        os.kill(_monitor_pid(daemon), signal.SIGKILL)  # no cleanup of its own: the spare sees its socket close
        _wait_for(lambda: not _cgroup_dirs(spare_id), what="the orphaned spare to remove its cgroup")
    finally:
        remove_containers(daemon)
        stop_daemon(daemon)
        stop_monitor(daemon)


def test_containers_start_with_no_signal_blocked(daemon, busybox_image):
    # spares are forked with SIGTERM blocked; neither pid 1 nor an exec may inherit that
    _monitor(daemon, {"op": "release", "id": _reserve(daemon)})
    _wait_for(lambda: bool(_children_cgroups(daemon)), what="a spare")
    cid = _create(daemon, ["sh", "-c", "grep SigBlk /proc/1/status; sleep 30"])
    assert _cgroup_dirs(cid), "the container took a spare (its cgroup is made before start)"
    assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
    _wait_for(lambda: b"SigBlk" in _logs(daemon, cid), what="the container's output")
    assert b"SigBlk:\t0000000000000000" in _logs(daemon, cid)
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")
