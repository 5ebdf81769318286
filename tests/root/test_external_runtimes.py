"""``--runtime runc`` and ``--runtime crun``: portside's bundles run by the standard runtimes.

Each test runs once per runtime and skips when that runtime is not installed
(or, for crun, when this host's cgroups are a hybrid whose v2 hierarchy holds
controllers, which crun refuses; see docs/runtimes.md). Everything goes
through the portside CLI or the Engine API of a real daemon: the runtime
reads the bundle the daemon wrote, the monitor holds the container's stdio,
reaps it and records its exit.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import time

import pytest

from helpers import mounts_under
from portside import cgroups

pytestmark = pytest.mark.root

RUNTIMES = ("runc", "crun")


def _hybrid_with_v2_controllers() -> bool:
    try:
        with open("/sys/fs/cgroup/unified/cgroup.controllers") as f:
            return bool(f.read().strip())
    except OSError:
        return False


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    name = request.param
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")
    if name == "crun" and _hybrid_with_v2_controllers():
        pytest.skip("crun refuses a hybrid cgroup host whose v2 hierarchy holds controllers "
                    "(mount hugetlb as a v1 hierarchy: docs/runtimes.md)")
    return name


def exec_root(daemon) -> str:
    return os.path.dirname(daemon.socket)


def inspect(daemon, cid: str) -> dict:
    return daemon.api.json("GET", f"/containers/{cid}/json")


def cgroup_dirs(cid: str) -> list[str]:
    """The container's cgroup directories in every hierarchy (portside/<id>)."""
    return sorted(glob.glob(f"/sys/fs/cgroup/portside/{cid}") + glob.glob(f"/sys/fs/cgroup/*/portside/{cid}"))


def runtime_processes(cid: str) -> list[int]:
    """Processes whose command line names the container: a runtime left running would be one."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if cid.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            pass
    return found


def frozen(cid: str) -> bool:
    """The freezer's word: v1's freezer.state, else v2's cgroup.events."""
    v1 = f"/sys/fs/cgroup/freezer/portside/{cid}/freezer.state"
    if os.path.exists(v1):
        with open(v1) as f:
            return f.read().strip() == "FROZEN"
    with open(f"/sys/fs/cgroup/portside/{cid}/cgroup.events") as f:
        return "frozen 1" in f.read().splitlines()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_exited(daemon, cid: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = inspect(daemon, cid)["State"]
        if state["Status"] == "exited":
            return state
        time.sleep(0.05)
    raise AssertionError(f"{cid[:12]} did not exit in {timeout} s")


def assert_nothing_left(daemon, runtime: str, cid: str, rootfs: str, pid: int) -> None:
    assert not os.path.exists(os.path.join(exec_root(daemon), "runtime", runtime, cid)), "runtime state left"
    assert not mounts_under(rootfs), "root filesystem still mounted"
    assert cgroup_dirs(cid) == [], "cgroup left"
    assert not alive(pid), "container process left"
    assert runtime_processes(cid) == [], "a process naming the container is left"


# -- running, exit codes, the process ------------------------------------------------------


def test_run_prints_and_exits(daemon, busybox_image, runtime):
    out = daemon.cli("run", "--rm", "--runtime", runtime, "busybox", "echo", "hi")
    assert out.stdout == b"hi\n"
    failed = daemon.cli("run", "--rm", "--runtime", runtime, "busybox", "sh", "-c", "echo oops >&2; exit 3",
                        check=False)
    assert failed.returncode == 3
    assert failed.stdout == b"" and failed.stderr == b"oops\n"


def test_unknown_runtime_is_refused_at_create(daemon, busybox_image):
    out = daemon.cli("run", "--rm", "--runtime", "nosuch", "busybox", "true", check=False)
    assert out.returncode == 125
    assert b"Error response from daemon: unknown or invalid runtime name: nosuch" in out.stderr
    status, _, body = daemon.api.request("POST", "/containers/create",
                                         {"Image": "busybox", "HostConfig": {"Runtime": "nosuch"}})
    assert status == 400 and json.loads(body)["message"] == "unknown or invalid runtime name: nosuch"
    assert json.loads(daemon.api.request("GET", "/containers/json?all=1")[2]) == []


def test_info_names_the_runtimes_and_inspect_the_chosen_one(daemon, busybox_image):
    info = daemon.api.json("GET", "/info")
    assert info["DefaultRuntime"] == "portside"
    assert "portside" in info["Runtimes"]
    for name in RUNTIMES:
        assert (name in info["Runtimes"]) == (shutil.which(name) is not None)
        if name in info["Runtimes"]:
            assert info["Runtimes"][name]["path"] == shutil.which(name)
    default = daemon.cli("create", "busybox", "true").stdout.decode().strip()
    assert inspect(daemon, default)["HostConfig"]["Runtime"] == "portside"  # as dockerd records "runc"
    text = daemon.cli("info").stdout.decode()
    assert " Default Runtime: portside" in text


def test_hostname_env_user_and_read_only_root(daemon, busybox_image, runtime):
    out = daemon.cli("run", "--rm", "--runtime", runtime, "-h", "box", "-e", "GREETING=hello", "-u", "1000:1000",
                     "--read-only", "busybox", "sh", "-c",
                     "hostname; echo $GREETING; id -u; id -g; touch /x 2>/dev/null || echo read-only; "
                     "cat /etc/hostname")
    assert out.stdout.decode().split() == ["box", "hello", "1000", "1000", "read-only", "box"]


def test_terminal_and_stdin(daemon, busybox_image, runtime):
    tty = daemon.cli("run", "--rm", "-t", "--runtime", runtime, "busybox", "sh", "-c", "tty; echo in-a-tty")
    assert tty.stdout.replace(b"\r\n", b"\n") == b"/dev/pts/0\nin-a-tty\n"
    piped = daemon.cli("run", "--rm", "-i", "--runtime", runtime, "busybox", "sh", input=b"echo from-stdin; exit 4\n",
                       check=False)
    assert piped.returncode == 4 and piped.stdout == b"from-stdin\n"


# -- the bundle: standard, with the default seccomp profile spelled out ---------------------


def test_bundle_is_standard_and_seccomp_default_is_enforced(daemon, busybox_image, runtime):
    cid = daemon.cli("run", "-d", "--runtime", runtime, "busybox", "sleep", "30").stdout.decode().strip()
    with open(os.path.join(exec_root(daemon), "monitor", "containers", cid, "bundle", "config.json")) as f:
        bundle = json.load(f)
    seccomp = bundle["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO" and seccomp["defaultErrnoRet"] == 1
    assert "x-portside-profile" not in seccomp and "archMap" not in seccomp
    assert seccomp["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = {n for e in seccomp["syscalls"] if e["action"] == "SCMP_ACT_ALLOW" and not e.get("args")
               for n in e["names"]}
    assert "read" in allowed and "unshare" not in allowed and "mount" not in allowed
    assert bundle["linux"]["cgroupsPath"] == f"/portside/{cid}"
    assert bundle["ociVersion"] == "1.1.0"
    daemon.cli("rm", "-f", cid)

    # the filter is the runtime's: unshare(CLONE_NEWUSER) needs no capability, only the profile refuses it
    confined = daemon.cli("run", "--rm", "--runtime", runtime, "busybox", "sh", "-c",
                          "grep Seccomp: /proc/self/status; unshare -U true && echo allowed || echo refused")
    assert confined.stdout.decode().split() == ["Seccomp:", "2", "refused"]
    unconfined = daemon.cli("run", "--rm", "--runtime", runtime, "--security-opt", "seccomp=unconfined", "busybox",
                            "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true && echo allowed")
    assert unconfined.stdout.decode().split() == ["Seccomp:", "0", "allowed"]
    # CAP_SYS_ADMIN unlocks the calls Docker's profile keeps behind it
    admin = daemon.cli("run", "--rm", "--runtime", runtime, "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c",
                       "unshare -U true && echo allowed")
    assert admin.stdout == b"allowed\n"


# -- cgroup: portside's limits and stats on the runtime's container --------------------------


def test_memory_limit_is_in_the_containers_cgroup(daemon, busybox_image, runtime):
    cid = daemon.cli("run", "-d", "--runtime", runtime, "-m", "32m", "--pids-limit", "9", "busybox",
                     "sleep", "30").stdout.decode().strip()
    pid = inspect(daemon, cid)["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        memberships = f.read().splitlines()
    assert any(line.endswith(f":/portside/{cid}") and ("memory" in line or line.startswith("0::"))
               for line in memberships), memberships
    stats = cgroups.for_host().stats(f"portside/{cid}")  # what portside's stats read
    assert stats.memory_limit == 32 << 20 and stats.pids_limit == 9 and stats.pids_current == 1
    top = daemon.api.json("GET", f"/containers/{cid}/top")
    assert [row[-1] for row in top["Processes"]] == ["sleep 30"]
    # no runtime process per container: runc/crun exited once the container ran
    assert runtime_processes(cid) == []
    daemon.cli("rm", "-f", cid)


def test_oom_kill_is_reported(daemon, busybox_image, runtime):
    out = daemon.cli("run", "--name", "hog", "--runtime", runtime, "-m", "16m", "--memory-swap", "16m", "busybox",
                     "tail", "/dev/zero", check=False)
    assert out.returncode == 137
    state = inspect(daemon, "hog")["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    daemon.cli("rm", "hog")


# -- stop, kill, pause, exec, logs, cleanup -----------------------------------------------------


def test_logs_stop_kill_and_cleanup(daemon, busybox_image, runtime):
    script = "echo started; trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done"
    cid = daemon.cli("run", "-d", "--runtime", runtime, "busybox", "sh", "-c", script).stdout.decode().strip()
    container = inspect(daemon, cid)
    rootfs = os.path.join(daemon.root, "containers", cid, "rootfs")
    pid = container["State"]["Pid"]
    assert container["HostConfig"]["Runtime"] == runtime
    assert os.path.isdir(os.path.join(exec_root(daemon), "runtime", runtime, cid))
    assert mounts_under(rootfs) == [rootfs]  # mounted for the runtime, on the host
    deadline = time.monotonic() + 10
    while b"started" not in daemon.cli("logs", cid).stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    daemon.cli("stop", "-t", "10", cid)
    state = inspect(daemon, cid)["State"]
    assert state["ExitCode"] == 0, state
    assert daemon.cli("logs", cid).stdout == b"started\ngot-term\n"
    # exited: the runtime forgot it, the rootfs is unmounted, the cgroup is gone
    assert_nothing_left(daemon, runtime, cid, rootfs, pid)

    daemon.cli("start", cid)  # a second run of the same container, then a kill
    pid = inspect(daemon, cid)["State"]["Pid"]
    daemon.cli("kill", cid)
    assert wait_exited(daemon, cid)["ExitCode"] == 137
    daemon.cli("rm", cid)
    assert_nothing_left(daemon, runtime, cid, rootfs, pid)
    assert not os.path.exists(os.path.join(daemon.root, "containers", cid))


def test_kill_with_a_signal_and_force_remove(daemon, busybox_image, runtime):
    cid = daemon.cli("run", "-d", "--runtime", runtime, "busybox", "sh", "-c",
                     "trap 'exit 12' USR1; while true; do sleep 0.1; done").stdout.decode().strip()
    time.sleep(0.3)
    daemon.cli("kill", "-s", "USR1", cid)
    assert wait_exited(daemon, cid)["ExitCode"] == 12
    daemon.cli("start", cid)
    pid = inspect(daemon, cid)["State"]["Pid"]
    daemon.cli("rm", "-f", cid)
    assert_nothing_left(daemon, runtime, cid, os.path.join(daemon.root, "containers", cid, "rootfs"), pid)


def test_pause_and_unpause_through_the_runtime(daemon, busybox_image, runtime):
    cid = daemon.cli("run", "-d", "--runtime", runtime, "busybox", "sleep", "30").stdout.decode().strip()
    pid = inspect(daemon, cid)["State"]["Pid"]
    daemon.cli("pause", cid)
    assert inspect(daemon, cid)["State"]["Status"] == "paused"
    assert frozen(cid)
    daemon.cli("unpause", cid)
    assert inspect(daemon, cid)["State"]["Status"] == "running"
    assert not frozen(cid)
    daemon.cli("pause", cid)
    daemon.cli("rm", "-f", cid)  # a paused container is killed and cleaned up too
    assert_nothing_left(daemon, runtime, cid, os.path.join(daemon.root, "containers", cid, "rootfs"), pid)


def test_exec_through_the_runtime(daemon, busybox_image, runtime):
    cid = daemon.cli("run", "-d", "--runtime", runtime, "-e", "FROM=container", "busybox",
                     "sleep", "30").stdout.decode().strip()
    out = daemon.cli("exec", "-u", "1000", "-e", "EXTRA=1", cid, "sh", "-c", "echo $FROM $EXTRA; id -u; hostname")
    assert out.stdout.decode().split() == ["container", "1", "1000", cid[:12]]
    assert daemon.cli("exec", cid, "sh", "-c", "exit 5", check=False).returncode == 5
    missing = daemon.cli("exec", cid, "no-such-command", check=False)
    assert missing.returncode == 127, missing.stderr
    tty = daemon.cli("exec", "-t", cid, "tty")
    assert tty.stdout.strip().startswith(b"/dev/pts/")
    daemon.cli("rm", "-f", cid)


def test_bad_command_fails_the_start_with_docker_codes(daemon, busybox_image, runtime):
    out = daemon.cli("run", "--rm", "--runtime", runtime, "busybox", "no-such-command", check=False)
    assert out.returncode in (125, 127), out.stderr  # docker's CLI matches crun's message case-sensitively: 125
    assert b"no-such-command" in out.stderr
    deadline = time.monotonic() + 10
    while json.loads(daemon.api.request("GET", "/containers/json?all=1")[2]) and time.monotonic() < deadline:
        time.sleep(0.05)  # --rm removes a container that could not start
    assert json.loads(daemon.api.request("GET", "/containers/json?all=1")[2]) == []
    assert os.listdir(os.path.join(exec_root(daemon), "runtime", runtime)) == []
    assert not [m for m in mounts_under(daemon.root) if m.endswith("/rootfs")]


def test_named_volume_is_filled_from_the_image(daemon, busybox_image, runtime):
    out = daemon.cli("run", "--rm", "--runtime", runtime, "-v", "etc:/etc", "busybox", "cat", "/etc/group")
    assert out.stdout.startswith(b"root:")
    again = daemon.cli("run", "--rm", "-v", "etc:/etc", "busybox", "cat", "/etc/group")
    assert again.stdout == out.stdout


def test_a_running_container_survives_a_daemon_restart(daemon_dirs, busybox_tar, runtime):
    from helpers import remove_containers, start_daemon, stop_daemon, stop_monitor

    d = start_daemon(*daemon_dirs)
    try:
        d.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        cid = d.cli("run", "-d", "--runtime", runtime, "busybox", "sleep", "30").stdout.decode().strip()
        stop_daemon(d, signal.SIGKILL)
        d = start_daemon(*daemon_dirs)
        assert inspect(d, cid)["State"]["Status"] == "running"
        d.cli("kill", cid)
        assert wait_exited(d, cid)["ExitCode"] == 137
        d.cli("rm", cid)
        assert not os.path.exists(os.path.join(exec_root(d), "runtime", runtime, cid))
    finally:
        remove_containers(d)
        stop_daemon(d)
        stop_monitor(d)
