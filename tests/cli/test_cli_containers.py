"""The container commands end to end: the ``portside`` CLI against real engines.

Each test runs against two servers of the Engine API:

* ``portside``: a ``portside daemon`` on a temporary root (``daemon`` and
  ``busybox_image`` of tests/conftest.py). While the daemon does not serve
  a route yet (404 ``page not found``), the tests that need it skip and say
  which route; they turn on by themselves when it lands.
* ``dockerd``: a private dockerd (Debian's docker.io 20.10) with its own data
  root, exec root and socket, no iptables and no bridge. It speaks API 1.41
  at most, so the CLI runs with its API version pinned to 1.41; nothing else
  changes. This is the reference the portside daemon is held to.

Both import the same busybox rootfs as ``busybox:latest``.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import fcntl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from helpers import Api, mounts_under

LONG_ID = re.compile(r"^[0-9a-f]{64}$")

# A process that stays up whatever the clock does (a long `sleep` may be cut short
# when the sandbox skips idle time) and leaves at once on SIGTERM or SIGKILL.
FOREVER = "trap 'exit 0' TERM; while :; do sleep 1; done"

# Run the CLI with its API version pinned (dockerd 20.10 refuses anything above 1.41).
_PINNED = ("import sys; import portside.cli.client as c; c.API_VERSION = sys.argv.pop(1); "
           "from portside.cli.main import main; sys.exit(main())")


@dataclass
class Engine:
    name: str
    socket: str
    api_version: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return "unix://" + self.socket

    @property
    def api(self) -> Api:
        return Api(self.socket)

    def argv(self, *args: str) -> list[str]:
        if self.api_version:
            return [sys.executable, "-c", _PINNED, self.api_version, "--host", self.host, *args]
        return [sys.executable, "-m", "portside", "--host", self.host, *args]

    def cli(self, *args: str, input: bytes | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(self.argv(*args), input=input, capture_output=True, timeout=timeout,
                                env={**os.environ, **self.env}, stdin=None if input is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n"
                                 f"stdout: {result.stdout.decode(errors='replace')}\n"
                                 f"stderr: {result.stderr.decode(errors='replace')}")
        return result

    def require(self, method: str, path: str, what: str) -> None:
        """Skip unless the daemon serves ``method path`` (it answers anything but 404 page not found)."""
        status, _, body = self.api.request(method, path, body={})
        if status == 404 and b"page not found" in body:
            pytest.skip(f"the {self.name} daemon does not serve {what} yet ({method} {path}: 404 page not found)")


def out(r: subprocess.CompletedProcess[bytes]) -> str:
    return r.stdout.decode()


def err(r: subprocess.CompletedProcess[bytes]) -> str:
    return r.stderr.decode()


# ---------------------------------------------------------------------------
# The engines


@pytest.fixture(scope="module")
def dockerd_engine(tmp_path_factory: pytest.TempPathFactory, busybox_tar: str) -> Iterator[Engine]:
    """A private dockerd 20.10 for this module, with busybox:latest."""
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    binary = shutil.which("dockerd")
    if binary is None:
        pytest.skip("dockerd is not installed")
    base = tempfile.mkdtemp(prefix="ps-cli-dockerd-")  # short: socket paths are limited to 108 bytes
    with open(os.path.join(base, "daemon.json"), "w") as f:
        json.dump({"deprecated-key-path": os.path.join(base, "key.json")}, f)
    sock = os.path.join(base, "docker.sock")
    cmd = [binary, "--data-root", f"{base}/data", "--exec-root", f"{base}/exec", "--pidfile", f"{base}/docker.pid",
           "-H", "unix://" + sock, "--config-file", f"{base}/daemon.json", "--iptables=false", "--ip6tables=false",
           "--ip-forward=false", "--ip-masq=false", "--bridge=none"]
    with open(os.path.join(base, "dockerd.log"), "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    engine = Engine("dockerd", sock, api_version="1.41")
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dockerd exited {proc.returncode}")
            try:
                if engine.api.request("GET", "/_ping")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("dockerd did not answer /_ping in 60 s")
            time.sleep(0.1)
        engine.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        yield engine
    finally:
        try:
            for c in json.loads(engine.api.request("GET", "/containers/json?all=1")[2] or b"[]"):
                engine.api.request("DELETE", f"/containers/{c['Id']}?force=1")
        except OSError:
            pass
        proc.send_signal(signal.SIGTERM)  # dockerd stops its containerd on the way out
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for mount in sorted(mounts_under(base), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["portside", "dockerd"])
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "dockerd":
        engine: Engine = request.getfixturevalue("dockerd_engine")
        return engine
    daemon = request.getfixturevalue("daemon")
    request.getfixturevalue("busybox_image")
    portside = Engine("portside", daemon.socket, env=dict(daemon.env))
    portside.require("POST", "/containers/create", "containers")
    return portside


# ---------------------------------------------------------------------------
# run


def test_run_prints_the_output_and_removes_the_container(engine: Engine) -> None:
    r = engine.cli("run", "--rm", "busybox", "echo", "hello")
    assert out(r) == "hello\n"
    assert err(r) in ("", "WARNING: IPv4 forwarding is disabled. Networking will not work.\n")
    assert out(engine.cli("ps", "-aq")) == ""


def test_run_keeps_stdout_and_stderr_apart(engine: Engine) -> None:
    r = engine.cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert out(r) == "out\n"
    assert err(r).endswith("err\n")


def test_run_exits_with_the_container_s_status(engine: Engine) -> None:
    assert engine.cli("run", "--rm", "busybox", "sh", "-c", "exit 3", check=False).returncode == 3
    r = engine.cli("run", "--rm", "busybox", "nosuch", check=False)
    assert r.returncode == 127
    assert "portside: Error response from daemon: " in err(r)
    assert 'exec: "nosuch": executable file not found in $PATH' in err(r)
    assert err(r).endswith("See 'portside run --help'.\n")


def test_run_flag_errors_exit_125(engine: Engine) -> None:
    r = engine.cli("run", "-m", "x", "busybox", check=False)
    assert r.returncode == 125
    assert err(r) == "invalid argument \"x\" for \"-m, --memory\" flag: invalid size: 'x'\nSee 'portside run --help'.\n"
    r = engine.cli("run", "--rm", "--restart", "always", "busybox", check=False)
    assert (r.returncode, err(r)) == (
        125, "portside: conflicting options: cannot specify both --restart and --rm\nSee 'portside run --help'.\n")


def test_run_a_missing_image_tries_to_pull_it(engine: Engine) -> None:
    r = engine.cli("run", "--rm", "nosuch.invalid/nosuch:1", check=False, timeout=180)
    assert r.returncode == 125
    assert err(r).startswith("Unable to find image 'nosuch.invalid/nosuch:1' locally\n")
    assert "See 'portside run --help'." in err(r)


def test_run_interactive_passes_stdin_and_ends_at_its_eof(engine: Engine) -> None:
    r = engine.cli("run", "-i", "--rm", "busybox", "cat", input=b"hi\nthere\n", timeout=60)
    assert out(r) == "hi\nthere\n"
    r = engine.cli("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done; exit 5", input=b"a\n",
                   check=False, timeout=60)
    assert (r.returncode, out(r)) == (5, "a\ndone\n")


def test_run_detached_then_logs_stop_wait_rm(engine: Engine) -> None:
    r = engine.cli("run", "-d", "--name", "web", "busybox", "sh", "-c", f"echo started; echo e >&2; {FOREVER}")
    container_id = out(r).strip()
    assert LONG_ID.match(container_id), out(r)
    deadline = time.monotonic() + 30
    while "started" not in out(logs := engine.cli("logs", "web")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (out(logs), err(logs)) == ("started\n", "e\n")
    timestamped = out(engine.cli("logs", "-t", "web"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z started\n", timestamped), timestamped
    inspect = json.loads(out(engine.cli("container", "inspect", "web")))
    assert inspect[0]["Id"] == container_id and inspect[0]["State"]["Running"] is True
    assert out(engine.cli("inspect", "-f", "{{.Name}}", "web")) == "/web\n"

    assert out(engine.cli("stop", "-t", "5", "web")) == "web\n"
    assert out(engine.cli("wait", "web")) == "0\n"
    assert out(engine.cli("rm", "web")) == "web\n"
    r = engine.cli("rm", "web", check=False)
    assert (r.returncode, err(r)) == (1, "Error response from daemon: No such container: web\n")


def test_create_then_start_attached(engine: Engine) -> None:
    container_id = out(engine.cli("create", "--name", "c1", "busybox", "sh", "-c", "echo hi; exit 2")).strip()
    assert LONG_ID.match(container_id)
    r = engine.cli("start", "-a", "c1", check=False, timeout=60)
    assert (r.returncode, out(r)) == (2, "hi\n")
    assert out(engine.cli("start", "c1")) == "c1\n"
    assert out(engine.cli("wait", "c1")) == "2\n"
    assert out(engine.cli("rm", "c1")) == "c1\n"


def test_ps_command_column_quotes_as_dockerd(engine: Engine) -> None:
    engine.cli("create", "--name", "q1", "busybox", "sh", "-c", "echo a b; exit 3")
    try:
        assert out(engine.cli("ps", "-a", "--no-trunc", "--filter", "name=q1", "--format", "{{.Command}}")) == \
            '"sh -c \'echo a b; exit 3\'"\n'
        assert out(engine.cli("ps", "-a", "--filter", "name=q1", "--format", "{{.Command}}")) == '"sh -c \'echo a b; ex…"\n'
    finally:
        engine.cli("rm", "q1")


def test_kill_and_missing_containers(engine: Engine) -> None:
    engine.cli("run", "-d", "--name", "k1", "busybox", "sh", "-c", FOREVER)
    assert out(engine.cli("kill", "k1")) == "k1\n"
    assert out(engine.cli("wait", "k1")) == "137\n"
    assert out(engine.cli("rm", "-f", "k1")) == "k1\n"
    r = engine.cli("stop", "nosuch", check=False)
    assert (r.returncode, err(r)) == (1, "Error response from daemon: No such container: nosuch\n")
    r = engine.cli("start", "nosuch1", "nosuch2", check=False)
    assert r.returncode == 1
    assert err(r).endswith("Error: failed to start containers: nosuch1, nosuch2\n")


def test_signals_are_forwarded_to_the_container(engine: Engine) -> None:
    proc = subprocess.Popen(
        engine.argv("run", "--rm", "busybox", "sh", "-c",
                    "trap 'echo got TERM; exit 9' TERM; echo ready; while :; do sleep 1; done"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env={**os.environ, **engine.env})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 9
        assert proc.stdout.read() == b"got TERM\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------
# exec


def test_exec(engine: Engine) -> None:
    engine.require("POST", "/containers/nosuch/exec", "exec")
    engine.cli("run", "-d", "--name", "x1", "busybox", "sh", "-c", FOREVER)
    r = engine.cli("exec", "x1", "sh", "-c", "echo in exec; echo e >&2; exit 4", check=False, timeout=60)
    assert (r.returncode, out(r), err(r)) == (4, "in exec\n", "e\n")
    assert out(engine.cli("exec", "-i", "x1", "cat", input=b"piped\n", timeout=60)) == "piped\n"
    assert out(engine.cli("exec", "-e", "A=1", "-w", "/tmp", "x1", "sh", "-c", "echo $A $PWD")) == "1 /tmp\n"
    engine.cli("exec", "-d", "x1", "touch", "/tmp/detached")
    deadline = time.monotonic() + 10
    while engine.cli("exec", "x1", "test", "-e", "/tmp/detached", check=False).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    engine.cli("rm", "-f", "x1")


# ---------------------------------------------------------------------------
# -t, under a pseudo-terminal


def _read_pty(fd: int, until: bytes, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while until not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side is gone
                break
            if not chunk:
                break
            data += chunk
    return data


def _spawn_in_pty(argv: list[str], env: dict[str, str], rows: int = 30, cols: int = 100) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the pty
        try:
            os.execve(argv[0], argv, {**os.environ, **env})
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return pid, fd


def _exit_status(pid: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the CLI did not exit")


def test_tty_session(engine: Engine) -> None:
    pid, fd = _spawn_in_pty(engine.argv("run", "-it", "--rm", "busybox", "sh"), engine.env)
    try:
        assert b"# " in _read_pty(fd, b"# ", 30)
        os.write(fd, b"stty size; echo hi-$((3+4))\r")
        seen = _read_pty(fd, b"hi-7", 30)
        assert b"30 100\r\n" in seen  # the container's terminal has our size
        assert b"hi-7\r\n" in seen  # echoed by the container's pty, not by ours (ours is raw)
        # A new size: the kernel sends the CLI SIGWINCH, the CLI resizes the container's TTY.
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        deadline = time.monotonic() + 30
        while True:
            os.write(fd, b"stty size\r")
            if b"40 120\r\n" in _read_pty(fd, b"40 120\r\n", 1):
                break
            assert time.monotonic() < deadline, "the container's terminal was not resized"
        os.write(fd, b"exit 7\r")
        _read_pty(fd, b"\x00", 5)
        assert _exit_status(pid) == 7
    finally:
        os.close(fd)


def test_tty_has_the_terminal_size_from_the_start(engine: Engine) -> None:
    if engine.name == "dockerd":
        pytest.skip("the CLI is pinned to API 1.41 for dockerd 20.10: ConsoleSize came in 1.42")
    pid, fd = _spawn_in_pty(engine.argv("run", "-it", "--rm", "busybox", "stty", "size"), engine.env, 33, 101)
    try:
        assert b"33 101\r\n" in _read_pty(fd, b"33 101\r\n", 30)  # before any resize could arrive
        assert _exit_status(pid) == 0
    finally:
        os.close(fd)
    engine.cli("run", "-d", "--name", "sz", "busybox", "sleep", "300")
    try:
        pid, fd = _spawn_in_pty(engine.argv("exec", "-it", "sz", "stty", "size"), engine.env, 21, 77)
        try:
            assert b"21 77\r\n" in _read_pty(fd, b"21 77\r\n", 30)
            assert _exit_status(pid) == 0
        finally:
            os.close(fd)
    finally:
        engine.cli("rm", "-f", "sz")


def test_tty_detach_keys_leave_the_container_running(engine: Engine) -> None:
    pid, fd = _spawn_in_pty(engine.argv("run", "-it", "--name", "d1", "busybox", "sh"), engine.env)
    try:
        assert b"# " in _read_pty(fd, b"# ", 30)
        os.write(fd, b"\x10\x11")  # ctrl-p ctrl-q
        _read_pty(fd, b"\x00", 5)
        assert _exit_status(pid) == 0
    finally:
        os.close(fd)
    inspect = json.loads(out(engine.cli("container", "inspect", "d1")))
    assert inspect[0]["State"]["Running"] is True
    engine.cli("rm", "-f", "d1")


def test_tty_needs_a_terminal_on_stdin(engine: Engine) -> None:
    r = engine.cli("run", "-it", "--rm", "busybox", "true", input=b"", check=False)
    assert (r.returncode, err(r)) == (1, "the input device is not a TTY\n")


def test_attach_to_a_tty_container_and_detach(engine: Engine) -> None:
    engine.cli("run", "-dit", "--name", "a1", "busybox", "sh")
    pid, fd = _spawn_in_pty(engine.argv("attach", "a1"), engine.env)
    try:
        os.write(fd, b"echo attached-$((1+1))\r")
        assert b"attached-2\r\n" in _read_pty(fd, b"attached-2\r\n", 30)
        os.write(fd, b"\x10\x11")
        assert b"read escape sequence" in _read_pty(fd, b"read escape sequence", 10)
        assert _exit_status(pid) == 1  # docker attach reports the detach as an error
    finally:
        os.close(fd)
    assert json.loads(out(engine.cli("container", "inspect", "a1")))[0]["State"]["Running"] is True
    engine.cli("rm", "-f", "a1")


def test_start_interactive(engine: Engine) -> None:
    engine.cli("create", "-i", "--name", "s1", "busybox", "sh", "-c", "cat; exit 3")
    r = engine.cli("start", "-ai", "s1", input=b"typed\n", check=False, timeout=60)
    assert (r.returncode, out(r)) == (3, "typed\n")
    engine.cli("rm", "s1")


def test_restart_and_prune(engine: Engine) -> None:
    engine.cli("run", "-d", "--name", "r1", "busybox", "sh", "-c", f"echo up; {FOREVER}")
    assert out(engine.cli("restart", "-t", "1", "r1")) == "r1\n"
    deadline = time.monotonic() + 30
    while out(engine.cli("logs", "r1")) != "up\nup\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    engine.cli("stop", "r1")
    engine.cli("create", "--name", "r2", "busybox", "true")
    r = engine.cli("container", "prune", "-f")
    lines = out(r).splitlines()
    assert lines[0] == "Deleted Containers:" and len(lines) == 5 and lines[3] == ""
    assert lines[4].startswith("Total reclaimed space: ")
    assert out(engine.cli("ps", "-aq")) == ""


def test_pause_rename_top_port_diff_export(engine: Engine, tmp_path: Any) -> None:
    for method, path, what in (("POST", "/containers/nosuch/pause", "pause"),
                               ("POST", "/containers/nosuch/rename?name=x", "rename"),
                               ("GET", "/containers/nosuch/top", "top"),
                               ("GET", "/containers/nosuch/changes", "diff"),
                               ("GET", "/containers/nosuch/export", "export")):
        engine.require(method, path, what)
    engine.cli("run", "-d", "--name", "p1", "busybox", "sh", "-c", f"touch /made; {FOREVER}")
    assert out(engine.cli("pause", "p1")) == "p1\n"
    assert json.loads(out(engine.cli("container", "inspect", "p1")))[0]["State"]["Paused"] is True
    assert out(engine.cli("unpause", "p1")) == "p1\n"
    assert out(engine.cli("rename", "p1", "p2")) == ""
    r = engine.cli("rename", "p1", "p3", check=False)
    assert (r.returncode, err(r)) == (
        1, "Error response from daemon: No such container: p1\nError: failed to rename container named p1\n")
    top = out(engine.cli("top", "p2")).splitlines()
    assert top[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    deadline = time.monotonic() + 10
    while "A /made\n" not in out(engine.cli("diff", "p2")):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert out(engine.cli("port", "p2")) == ""
    engine.cli("export", "-o", str(tmp_path / "p2.tar"), "p2")
    import tarfile

    with tarfile.open(tmp_path / "p2.tar") as tar:
        assert "made" in tar.getnames() and "bin/busybox" in tar.getnames()
    engine.cli("rm", "-f", "p2")
