"""Containers through the Engine API on a real daemon: create, attach, start, wait, logs, stop, rm."""

from __future__ import annotations

import json
import urllib.parse
import os
import shutil
import socket
import subprocess
import time

import pytest

from helpers import mounts_under

pytestmark = pytest.mark.root


def create(daemon, cmd: list[str], **config) -> str:
    body = {"Image": "busybox", "Cmd": cmd, **config}
    doc = daemon.api.json("POST", "/containers/create", body, expect=201)
    return doc["Id"]


def demux(data: bytes) -> tuple[bytes, bytes]:
    out, err = b"", b""
    while data:
        kind, size = data[0], int.from_bytes(data[4:8], "big")
        chunk, data = data[8:8 + size], data[8 + size:]
        if kind == 1:
            out += chunk
        elif kind == 2:
            err += chunk
    return out, err


def test_create_start_wait_logs_remove(daemon, busybox_image):
    cid = create(daemon, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert daemon.api.json("GET", f"/containers/{cid}/json")["State"]["Status"] == "created"
    status, _, _ = daemon.api.request("POST", f"/containers/{cid}/start")
    assert status == 204
    waited = daemon.api.json("POST", f"/containers/{cid}/wait")
    assert waited == {"StatusCode": 3, "Error": None}
    state = daemon.api.json("GET", f"/containers/{cid}/json")["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 3 and not state["Running"]
    status, headers, body = daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
    assert status == 200 and demux(body) == (b"out\n", b"err\n")
    listed = daemon.api.json("GET", "/containers/json?all=1")
    assert [c["Id"] for c in listed] == [cid] and listed[0]["Status"].startswith("Exited (3)")
    assert daemon.api.json("GET", "/containers/json") == []
    assert daemon.api.request("DELETE", f"/containers/{cid}")[0] == 204
    assert daemon.api.request("GET", f"/containers/{cid}/json")[0] == 404
    assert not os.path.exists(os.path.join(daemon.root, "containers", cid))
    assert os.listdir(os.path.join(daemon.root, "snapshots", "active")) == []


def test_exec_errors_are_docker_exit_codes(daemon, busybox_image):
    cid = create(daemon, ["nosuch"])
    status, _, body = daemon.api.request("POST", f"/containers/{cid}/start")
    assert status == 500
    assert 'exec: "nosuch": executable file not found in $PATH' in json.loads(body)["message"]
    assert daemon.api.json("GET", f"/containers/{cid}/json")["State"]["ExitCode"] == 127
    daemon.api.request("DELETE", f"/containers/{cid}")


def test_stop_and_force_remove(daemon, busybox_image):
    cid = create(daemon, ["sleep", "1000"])
    daemon.api.request("POST", f"/containers/{cid}/start")
    assert daemon.api.json("GET", f"/containers/{cid}/json")["State"]["Running"] is True
    status, _, body = daemon.api.request("DELETE", f"/containers/{cid}")
    assert status == 409 and "cannot remove a running container" in json.loads(body)["message"]
    t = time.monotonic()
    assert daemon.api.request("POST", f"/containers/{cid}/stop?t=1")[0] == 204
    assert time.monotonic() - t < 5
    state = daemon.api.json("GET", f"/containers/{cid}/json")["State"]
    assert state["Status"] == "exited" and state["ExitCode"] in (137, 143)
    assert daemon.api.request("POST", f"/containers/{cid}/stop")[0] == 304
    daemon.api.request("POST", f"/containers/{cid}/start")
    assert daemon.api.request("DELETE", f"/containers/{cid}?force=1")[0] == 204


def test_attach_before_start_gets_all_output(daemon, busybox_image):
    cid = create(daemon, ["sh", "-c", "for i in 1 2 3; do echo line$i; done"], AttachStdout=True, AttachStderr=True)
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.socket)
    s.sendall(f"POST /containers/{cid}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\n"
              "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    daemon.api.request("POST", f"/containers/{cid}/start")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    assert demux(data)[0] == b"line1\nline2\nline3\n"
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")


def test_stdin_is_forwarded_and_half_close_ends_it(daemon, busybox_image):
    cid = create(daemon, ["cat"], OpenStdin=True, StdinOnce=True, AttachStdin=True, AttachStdout=True)
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.socket)
    s.sendall(f"POST /containers/{cid}/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
              "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    daemon.api.request("POST", f"/containers/{cid}/start")
    s.sendall(b"hello through stdin\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    assert demux(data)[0] == b"hello through stdin\n"
    assert daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"] == 0
    daemon.api.request("DELETE", f"/containers/{cid}")


def test_auto_remove_and_wait_removed(daemon, busybox_image):
    cid = create(daemon, ["true"], HostConfig={"AutoRemove": True})
    daemon.api.request("POST", f"/containers/{cid}/start")
    assert daemon.api.json("POST", f"/containers/{cid}/wait?condition=removed")["StatusCode"] == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and daemon.api.request("GET", f"/containers/{cid}/json")[0] != 404:
        time.sleep(0.05)
    assert daemon.api.request("GET", f"/containers/{cid}/json")[0] == 404


def test_running_containers_survive_a_daemon_kill(daemon_dirs, busybox_tar):
    """Live restore: SIGKILL the daemon; the container keeps running; a new daemon stops it."""
    import signal

    from helpers import start_daemon, stop_daemon

    root, sock, log = daemon_dirs
    d = start_daemon(root, sock, log)
    d.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
    cid = create(d, ["sleep", "1000"])
    d.api.request("POST", f"/containers/{cid}/start")
    pid = d.api.json("GET", f"/containers/{cid}/json")["State"]["Pid"]
    stop_daemon(d, signal.SIGKILL)
    os.kill(pid, 0)  # still alive
    d = start_daemon(root, sock, log)
    try:
        assert d.api.json("GET", f"/containers/{cid}/json")["State"]["Running"] is True
        assert d.api.request("POST", f"/containers/{cid}/stop?t=1")[0] == 204
        assert d.api.json("GET", f"/containers/{cid}/json")["State"]["Status"] == "exited"
        assert d.api.request("DELETE", f"/containers/{cid}")[0] == 204
    finally:
        stop_daemon(d)
        monitor_pid_file = os.path.join(os.path.dirname(sock), "monitor", "monitor.pid")
        if os.path.exists(monitor_pid_file):
            with open(monitor_pid_file) as f:
                os.kill(int(f.read()), signal.SIGTERM)


def test_default_seccomp_profile_and_capabilities_apply(daemon, busybox_image):
    """A default container cannot unshare, mount, or reboot; a privileged one can unshare."""
    def run(cmd: str, **host) -> bytes:
        cid = create(daemon, ["sh", "-c", cmd], HostConfig=host)
        daemon.api.request("POST", f"/containers/{cid}/start")
        daemon.api.json("POST", f"/containers/{cid}/wait")
        out = demux(daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")[2])
        daemon.api.request("DELETE", f"/containers/{cid}")
        return out[0] + out[1]

    probe = ("unshare -U true 2>/dev/null && echo userns=yes || echo userns=no; "
             "mkdir -p /tmp/m; mount -t tmpfs t /tmp/m 2>/dev/null && echo mount=yes || echo mount=no; "
             "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -d ' \\t'")
    default = run(probe).decode()
    assert "userns=no" in default and "mount=no" in default and "Seccomp:2" in default
    privileged = run(probe, Privileged=True).decode()
    assert "mount=yes" in privileged and "Seccomp:0" in privileged
    unconfined = run(probe, SecurityOpt=["seccomp=unconfined"]).decode()
    assert "Seccomp:0" in unconfined and "mount=no" in unconfined  # still no CAP_SYS_ADMIN
    nnp = run(probe, SecurityOpt=["no-new-privileges"]).decode()
    assert "NoNewPrivs:1" in nnp and "Seccomp:2" in nnp


def _cgroup_dirs(cid: str) -> list[str]:
    found = []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(dirpath, d) for d in dirnames if d == cid]
        if dirpath.count("/") > 5:
            dirnames.clear()
    return found


def test_memory_limit_oom_and_cgroup_cleanup(daemon, busybox_image):
    # 'tail /dev/zero' keeps one ever-growing "line" in memory: far past 16 MiB
    cid = create(daemon, ["tail", "/dev/zero"], HostConfig={"Memory": 16 << 20, "MemorySwap": 16 << 20})
    daemon.api.request("POST", f"/containers/{cid}/start")
    assert daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"] == 137
    state = daemon.api.json("GET", f"/containers/{cid}/json")["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    assert _cgroup_dirs(cid) == []           # the monitor removed the cgroup at exit
    daemon.api.request("DELETE", f"/containers/{cid}")


def test_pids_limit_and_cpu_quota_apply(daemon, busybox_image):
    cid = create(daemon, ["sleep", "30"], HostConfig={"PidsLimit": 7, "NanoCpus": 500_000_000})
    daemon.api.request("POST", f"/containers/{cid}/start")
    dirs = _cgroup_dirs(cid)
    assert dirs, "the container has a cgroup while it runs"
    values = {}
    for d in dirs:
        for name in ("pids.max", "cpu.cfs_quota_us", "cpu.max"):
            path = os.path.join(d, name)
            if os.path.exists(path):
                with open(path) as f:
                    values[name] = f.read().strip()
    assert values.get("pids.max") == "7"
    assert values.get("cpu.cfs_quota_us") == "50000" or values.get("cpu.max", "").startswith("50000")
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")
    assert _cgroup_dirs(cid) == []


def test_bad_limits_are_refused_at_create(daemon, busybox_image):
    status, _, body = daemon.api.request("POST", "/containers/create",
                                         {"Image": "busybox", "HostConfig": {"Memory": 1024}})
    assert status == 400 and "Minimum memory limit allowed is 6MB" in json.loads(body)["message"]


def test_exec_joins_the_running_container(daemon, busybox_image):
    cid = create(daemon, ["sleep", "30"], Hostname="box")
    daemon.api.request("POST", f"/containers/{cid}/start")
    ex = daemon.api.json("POST", f"/containers/{cid}/exec",
                         {"Cmd": ["sh", "-c", "hostname; echo $$; cat /proc/1/comm; id -u; exit 4"],
                          "AttachStdout": True, "AttachStderr": True, "User": "nobody"}, expect=201)["Id"]
    status, _, body = daemon.api.request("POST", f"/exec/{ex}/start", {"Detach": False, "Tty": False})
    assert status == 200
    out = demux(body)[0].decode().split("\n")
    assert out[0] == "box"                       # its uts namespace
    assert int(out[1]) < 10                      # its pid namespace
    assert out[2].startswith("sleep")            # sees the container's pid 1
    assert out[3] == "65534"                     # the user, resolved in the image's /etc/passwd
    info = daemon.api.json("GET", f"/exec/{ex}/json")
    assert info["ExitCode"] == 4 and info["Running"] is False
    ex2 = daemon.api.json("POST", f"/containers/{cid}/exec", {"Cmd": ["nosuch"], "AttachStdout": True},
                          expect=201)["Id"]
    status, _, body = daemon.api.request("POST", f"/exec/{ex2}/start", {})
    assert b"executable file not found" in body
    assert daemon.api.json("GET", f"/exec/{ex2}/json")["ExitCode"] == 127
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")
    status, _, body = daemon.api.request("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
    assert status == 404


def test_pause_rename_top_changes(daemon, busybox_image):
    cid = create(daemon, ["sh", "-c", "echo new > /newfile; rm /etc/shadow; exec sleep 30"])
    daemon.api.request("POST", f"/containers/{cid}/start")
    time.sleep(0.3)
    top = daemon.api.json("GET", f"/containers/{cid}/top")
    assert "PID" in top["Titles"] and any("sleep 30" in " ".join(p) for p in top["Processes"])
    changes = {c["Path"]: c["Kind"] for c in daemon.api.json("GET", f"/containers/{cid}/changes")}
    assert changes["/newfile"] == 1 and changes["/etc/shadow"] == 2 and changes["/etc"] == 0
    assert daemon.api.request("POST", f"/containers/{cid}/pause")[0] == 204
    assert daemon.api.json("GET", f"/containers/{cid}/json")["State"]["Paused"] is True
    assert daemon.api.request("POST", f"/containers/{cid}/pause")[0] == 409
    assert daemon.api.request("POST", f"/containers/{cid}/unpause")[0] == 204
    assert daemon.api.json("GET", f"/containers/{cid}/json")["State"]["Status"] == "running"
    assert daemon.api.request("POST", f"/containers/{cid}/rename?name=renamed")[0] == 204
    assert daemon.api.json("GET", "/containers/renamed/json")["Id"] == cid
    daemon.api.request("POST", f"/containers/{cid}/pause")
    assert daemon.api.request("DELETE", f"/containers/{cid}?force=1")[0] == 204   # paused: killed all the same
    assert _cgroup_dirs(cid) == []


def test_restart_policies(daemon, busybox_image):
    def inspect(cid):
        return daemon.api.json("GET", f"/containers/{cid}/json")

    def settle(cid, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = inspect(cid)
            if doc["RestartCount"] >= count and doc["State"]["Status"] == "exited":
                return doc
            time.sleep(0.05)
        return inspect(cid)

    flaky = create(daemon, ["sh", "-c", "exit 2"], HostConfig={"RestartPolicy": {"Name": "on-failure",
                                                                                 "MaximumRetryCount": 2}})
    daemon.api.request("POST", f"/containers/{flaky}/start")
    doc = settle(flaky, 2)
    assert doc["RestartCount"] == 2 and doc["State"]["ExitCode"] == 2

    fine = create(daemon, ["true"], HostConfig={"RestartPolicy": {"Name": "on-failure"}})
    daemon.api.request("POST", f"/containers/{fine}/start")
    daemon.api.json("POST", f"/containers/{fine}/wait")
    time.sleep(0.5)
    assert inspect(fine)["RestartCount"] == 0

    always = create(daemon, ["sleep", "0.2"], HostConfig={"RestartPolicy": {"Name": "always"}})
    daemon.api.request("POST", f"/containers/{always}/start")
    deadline = time.monotonic() + 10
    while inspect(always)["RestartCount"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert inspect(always)["RestartCount"] >= 2
    assert daemon.api.request("POST", f"/containers/{always}/stop?t=1")[0] in (204, 304)
    count = inspect(always)["RestartCount"]
    time.sleep(1.0)
    doc = inspect(always)
    assert doc["State"]["Status"] == "exited" and doc["RestartCount"] == count  # a manual stop stays stopped
    for cid in (flaky, fine, always):
        assert daemon.api.request("DELETE", f"/containers/{cid}?force=1")[0] == 204


@pytest.mark.skipif(not os.path.exists("/usr/bin/tini-static"), reason="needs Debian's tini (tini-static)")
def test_init_reaps_zombies_and_forwards_signals(daemon, busybox_image):
    # sh exits leaving an orphan: with --init it is reaped by pid 1 (tini), the command is pid 2
    cid = create(daemon, ["sh", "-c", "cat /proc/1/comm; echo $$; (sleep 0.1 &) ; sleep 0.5; "
                                      "grep -c Z /proc/[0-9]*/stat 2>/dev/null | grep -v ':0' | wc -l"],
                 HostConfig={"Init": True})
    daemon.api.request("POST", f"/containers/{cid}/start")
    assert daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"] == 0
    out = demux(daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1")[2])[0].decode().split()
    assert out[0] == "init" and out[1] != "1" and out[2] == "0"
    daemon.api.request("DELETE", f"/containers/{cid}")
    # a signal reaches the command through tini
    cid = create(daemon, ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; sleep 30 & wait"], HostConfig={"Init": True})
    daemon.api.request("POST", f"/containers/{cid}/start")
    time.sleep(0.3)
    daemon.api.request("POST", f"/containers/{cid}/kill?signal=TERM")
    assert daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"] == 0
    assert b"got TERM" in demux(daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1")[2])[0]
    daemon.api.request("DELETE", f"/containers/{cid}")


def run_to_end(daemon, cmd: list[str], **config) -> tuple[str, bytes]:
    cid = create(daemon, cmd, **config)
    daemon.api.request("POST", f"/containers/{cid}/start")
    daemon.api.json("POST", f"/containers/{cid}/wait")
    return cid, demux(daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")[2])[0]


def test_named_volume_outlives_containers_and_copies_up(daemon, busybox_image):
    cid, _ = run_to_end(daemon, ["sh", "-c", "echo kept > /etc/note"], HostConfig={"Binds": ["cfg:/etc"]})
    daemon.api.request("DELETE", f"/containers/{cid}?v=1")
    cid, out = run_to_end(daemon, ["sh", "-c", "cat /etc/note; head -1 /etc/passwd"],
                          HostConfig={"Binds": ["cfg:/etc:ro"]})
    assert out == b"kept\nroot:x:0:0:root:/root:/bin/sh\n"   # the data, and the image's /etc copied up
    status, _, body = daemon.api.request("DELETE", "/volumes/cfg")
    assert status == 409 and "volume is in use" in json.loads(body)["message"]
    daemon.api.request("DELETE", f"/containers/{cid}")
    vols = daemon.api.json("GET", "/volumes")["Volumes"]
    assert [v["Name"] for v in vols] == ["cfg"] and vols[0]["Driver"] == "local"
    assert daemon.api.request("DELETE", "/volumes/cfg")[0] == 204
    assert daemon.api.json("GET", "/volumes")["Volumes"] == []


def test_anonymous_volumes_and_binds(daemon, busybox_tar, tmp_path):
    daemon.cli("import", "--change", "VOLUME /data", busybox_tar, "withvol:1")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "in").write_text("from host\n")
    (tmp_path / "rw").mkdir()
    cid = create(daemon, ["sh", "-c", "echo x > /data/f; cat /host/in; echo out > /rw/o; touch /host/no"],
                 Image="withvol:1", HostConfig={"Binds": [f"{tmp_path}/ro:/host:ro", f"{tmp_path}/rw:/rw"]})
    daemon.api.request("POST", f"/containers/{cid}/start")
    assert daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"] == 1   # /host is read-only
    out, err = demux(daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")[2])
    assert out == b"from host\n" and b"Read-only file system" in err
    assert (tmp_path / "rw" / "o").read_text() == "out\n"
    vols = daemon.api.json("GET", "/volumes")["Volumes"]
    assert len(vols) == 1 and len(vols[0]["Name"]) == 64       # the image's VOLUME, anonymous
    with open(os.path.join(vols[0]["Mountpoint"], "f")) as f:
        assert f.read() == "x\n"
    assert daemon.api.request("DELETE", f"/containers/{cid}?v=1")[0] == 204
    assert daemon.api.json("GET", "/volumes")["Volumes"] == []   # rm -v took it
    named = daemon.api.json("POST", "/volumes/create", {"Name": "keep", "Labels": {"a": "b"}}, expect=201)
    assert named["Labels"] == {"a": "b"}
    assert daemon.api.json("POST", "/volumes/prune")["VolumesDeleted"] == []  # named ones stay
    assert daemon.api.json("POST", "/volumes/prune?filters=" + urllib.parse.quote('{"all":["true"]}'))[
        "VolumesDeleted"] == ["keep"]


def test_wait_removed_after_start_of_a_quick_rm_container_answers_its_code(daemon, busybox_image):
    # posted after start, the wait can resolve the container just before its auto-removal ends:
    # it must still answer with the exit code, never a broken stream
    answered = 0
    for i in range(15):
        # the first few sleep a little: their wait surely comes first, exit and removal happen during it
        cmd = f"sleep 0.3; exit {i % 3}" if i < 3 else f"exit {i % 3}"
        cid = create(daemon, ["sh", "-c", cmd], HostConfig={"AutoRemove": True, "NetworkMode": "none"})
        assert daemon.api.request("POST", f"/containers/{cid}/start")[0] == 204
        status, _, body = daemon.api.request("POST", f"/containers/{cid}/wait?condition=removed")
        if status == 404:
            continue  # removed before the wait arrived: dockerd's answer too
        assert status == 200 and json.loads(body)["StatusCode"] == i % 3, (status, body)
        answered += 1
    assert answered >= 3
    assert daemon.api.request("POST", f"/containers/{cid}/wait?condition=removed")[0] == 404
