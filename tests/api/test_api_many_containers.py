"""Many containers at once through the Engine API: all running, and nothing left after rm -f.

bench/density.py measures 1000; this keeps to 200 so it runs in well under a
minute here. The daemon starts with a soft open-file limit of 256 (many
distributions give services 1024): the monitor holds three descriptors per
container, so without raising its limit the ~80th start fails with "Too many
open files".
"""

from __future__ import annotations

import concurrent.futures
import glob
import os
import resource
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from helpers import Daemon, mounts_under, remove_containers, start_daemon, stop_daemon, stop_monitor

pytestmark = pytest.mark.root

COUNT = 200
SOFT_NOFILE = 256


@pytest.fixture
def low_nofile_daemon(daemon_dirs: tuple[str, str, str]) -> Iterator[Daemon]:
    """A daemon started with a soft RLIMIT_NOFILE of 256 (it inherits ours at fork; ours is put back)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT_NOFILE, hard))
    try:
        d = start_daemon(*daemon_dirs)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield d
    finally:
        remove_containers(d)
        stop_daemon(d)
        stop_monitor(d)


def _create_start(daemon: Daemon, cmd: list[str], **host_config: object) -> str:
    body = {"Image": "busybox", "Cmd": cmd, "HostConfig": {"NetworkMode": "none", **host_config}}
    cid = daemon.api.json("POST", "/containers/create", body, expect=201)["Id"]
    status, _, data = daemon.api.request("POST", f"/containers/{cid}/start")
    assert status == 204, data
    return str(cid)


def _output(daemon: Daemon, cid: str) -> str:
    assert daemon.api.json("POST", f"/containers/{cid}/wait")["StatusCode"] == 0
    data = daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")[2]
    out = b""
    while data:  # stdcopy frames: 8-byte header, then the payload
        size = int.from_bytes(data[4:8], "big")
        out, data = out + data[8:8 + size], data[8 + size:]
    return out.decode()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_200_containers_run_at_once_and_rm_leaves_nothing(low_nofile_daemon: Daemon, busybox_tar: str) -> None:
    daemon = low_nofile_daemon
    daemon.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda _: _create_start(daemon, ["sleep", "3600"]), range(COUNT)))

    listed = daemon.api.json("GET", "/containers/json")
    assert sorted(c["Id"] for c in listed) == sorted(ids)
    assert {c["State"] for c in listed} == {"running"}
    pids = [daemon.api.json("GET", f"/containers/{cid}/json")["State"]["Pid"] for cid in ids]
    assert all(_alive(pid) for pid in pids)
    with open(os.path.join(os.path.dirname(daemon.socket), "monitor", "monitor.pid")) as f:
        monitor = int(f.read())
    assert len(os.listdir(f"/proc/{monitor}/fd")) > SOFT_NOFILE  # the limit the monitor was started with

    # containers keep the limit the daemon was started with, or get their --ulimit
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    inherited = _create_start(daemon, ["sh", "-c", "ulimit -n; ulimit -Hn"])
    assert _output(daemon, inherited).split() == [str(SOFT_NOFILE), str(hard)]
    own = _create_start(daemon, ["sh", "-c", "ulimit -n; ulimit -Hn"], Ulimits=[{"Name": "nofile", "Soft": 100,
                                                                                 "Hard": 200}])
    assert _output(daemon, own).split() == ["100", "200"]
    ids += [inherited, own]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda cid: daemon.api.request("DELETE", f"/containers/{cid}?force=1")[0], ids))
    assert set(statuses) == {204}

    assert daemon.api.json("GET", "/containers/json?all=1") == []
    assert not any(_alive(pid) for pid in pids)
    assert os.listdir(os.path.join(daemon.root, "containers")) == []
    assert os.listdir(os.path.join(daemon.root, "snapshots", "active")) == []
    assert os.listdir(os.path.join(os.path.dirname(daemon.socket), "monitor", "containers")) == []
    assert mounts_under(daemon.root) == []
    with open("/proc/self/mountinfo") as f:
        mounts = f.read()
    assert not [cid for cid in ids if cid in mounts]
    assert not [d for cid in ids for d in glob.glob(f"/sys/fs/cgroup/*/portside/{cid}")]


def _blocks(top: str) -> int:
    """Allocated bytes under ``top`` as du counts them: st_blocks, each inode once, directories included."""
    seen: set[int] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [".", *dirnames, *filenames] if dirpath == top else [*dirnames, *filenames]:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_blocks * 512
    return total


def test_an_idle_container_adds_under_64_kib_to_the_root(daemon: Daemon, busybox_image: str) -> None:
    """bench/disk.py's target: what a started, idle container costs on disk, its bundle in one block."""
    os.sync()
    before = _blocks(daemon.root)
    cid = _create_start(daemon, ["sleep", "3600"])
    os.sync()
    assert _blocks(daemon.root) - before < 64 * 1024
    assert os.stat(os.path.join(daemon.root, "containers", cid, "config.json")).st_blocks * 512 <= 4096


def _post_wait(daemon: Daemon, cid: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(daemon.socket)
    s.sendall(f"POST /containers/{cid}/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\n"
              "Content-Length: 0\r\n\r\n".encode())
    assert s.recv(65536).startswith(b"HTTP/1.1 200")  # the headers come at once, the body at exit
    return s


def _settled(count: Callable[[], int]) -> int:
    """The count once it has not dropped for half a second (connection threads end after their reply)."""
    value, deadline = count(), time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = count()
        if now >= value:
            return value
        value = now
    return value


def test_a_wait_whose_client_hung_up_ends(daemon: Daemon, busybox_image: str) -> None:
    """``docker run -d`` posts a wait before start and exits right after it: the daemon must not keep
    that wait's thread and socket until the container exits (1000 detached containers held 1000
    threads, each waking on every state change of any container)."""
    cid = _create_start(daemon, ["sleep", "3600"])
    tasks = f"/proc/{daemon.proc.pid}/task"
    before = _settled(lambda: len(os.listdir(tasks)))  # the threads of the calls above end too
    kept = _post_wait(daemon, cid)
    hung_up = [_post_wait(daemon, cid) for _ in range(20)]
    assert len(os.listdir(tasks)) >= before + 21
    for s in hung_up:
        s.close()
    deadline = time.monotonic() + 10
    while len(os.listdir(tasks)) > before + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(os.listdir(tasks)) == before + 1  # the one still waiting
    assert daemon.api.request("POST", f"/containers/{cid}/kill")[0] == 204
    answer = b""
    while b"StatusCode" not in answer:
        chunk = kept.recv(65536)
        assert chunk, answer
        answer += chunk
    kept.close()
    assert b'"StatusCode": 137' in answer or b'"StatusCode":137' in answer
