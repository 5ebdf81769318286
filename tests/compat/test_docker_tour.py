"""A scripted tour of a portside daemon with the real docker CLIs.

Every test runs once per installed client: the docker CLI 28 at
/usr/local/bin/docker and Debian's docker.io 20.10 at /usr/bin/docker, each
with ``DOCKER_HOST=unix://<the test daemon's socket>``. What is asserted is
what a user sees: output parsed, exit codes, and docker's messages.

The image commands are covered in detail by test_docker_cli.py, cp by
test_docker_cp.py, volumes by test_docker_volumes.py, commit by
test_docker_commit.py and stats by test_docker_stats.py (all with the CLI on
PATH); here each of them appears once in a user's day, with both clients,
and the container lifecycle (run, ps, logs -f, exec, -it under a PTY, wait,
top, stop, rm, prune) is checked in full.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import tarfile
import termios
import time
from dataclasses import dataclass

import pytest

import portside
from conftest import DockerCLI

pytestmark = [pytest.mark.root, pytest.mark.peers]

CLIENTS = {"docker-28": "/usr/local/bin/docker", "docker.io-20.10": "/usr/bin/docker"}
FOREVER = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


@pytest.fixture(params=sorted(CLIENTS))
def docker(request: pytest.FixtureRequest, daemon, tmp_path_factory: pytest.TempPathFactory) -> DockerCLI:
    binary = CLIENTS[request.param]
    if not os.access(binary, os.X_OK):
        pytest.skip(f"{binary} is not installed")
    return DockerCLI(binary, daemon.host, str(tmp_path_factory.mktemp("docker-config")))


@pytest.fixture
def busybox(docker: DockerCLI, busybox_tar: str) -> str:
    image_id = docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id), image_id
    return image_id


def table(text: str) -> list[dict[str, str]]:
    """Docker's tables: columns are separated by two spaces or more (an empty cell makes a row shorter)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    return [dict(zip(header, re.split(r"\s{2,}", line.strip()))) for line in lines[1:]]


def wait_for(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def is_modern(docker: DockerCLI) -> bool:
    """docker CLI 23 and later word a few messages differently from 20.10."""
    return docker.client_version() >= (23,)


# -- a real terminal ---------------------------------------------------------------------


@dataclass
class Terminal:
    """What a user saw in a terminal and the client's exit code."""

    rc: int
    screen: bytes


def in_terminal(docker: DockerCLI, args: list[str], script: list[tuple[bytes | None, bytes]], *,
                rows: int = 33, cols: int = 111, timeout: float = 30) -> Terminal:
    """Run the CLI on a fresh PTY of ``rows`` x ``cols``; ``script``: (wait until the screen shows this, then type).

    The CLI puts the terminal in raw mode itself; typing waits for the
    container's prompt so that nothing is typed while the terminal is still
    cooked (it would be echoed twice and ^D would end the CLI's stdin).
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, with the terminal as its stdin, stdout and stderr
        os.execve(docker.binary, [docker.binary, *args], docker.env())
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    screen = b""
    steps = list(script)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if steps and (steps[0][0] is None or steps[0][0] in screen):
                os.write(fd, steps.pop(0)[1])
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the CLI is gone and so is the terminal's other side
                break
            if not data:
                break
            screen += data
        else:
            os.kill(pid, 9)
            raise AssertionError(f"docker {' '.join(args)} did not end in {timeout} s; screen: {screen!r}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert not steps, f"never saw {steps[0][0]!r}; screen: {screen!r}"
    return Terminal(os.waitstatus_to_exitcode(status), screen)


# -- the tour ----------------------------------------------------------------------------


def test_server_identity_and_info(docker, busybox):
    out = docker("version").out
    assert "Server: portside" in out
    assert docker("version", "-f", "{{.Server.Version}}").out.strip() == portside.__version__
    # 20.10 speaks 1.41 at most: it stays there; 28 negotiates down to ours.
    client_api = docker("version", "-f", "{{.Client.APIVersion}}").out.strip()
    assert client_api == ("1.45" if is_modern(docker) else "1.41")

    docker("run", "--name", "done", "busybox", "true")
    docker("run", "-d", "--name", "up", "busybox", "sh", "-c", FOREVER)
    info = docker("info").out
    assert f"Server Version: {portside.__version__}" in info
    lines = [line.strip() for line in info.splitlines()]
    assert lines[lines.index("Containers: 2") + 1:][:3] == ["Running: 1", "Paused: 0", "Stopped: 1"]
    assert "Images: 1" in lines and "Storage Driver: overlay2" in lines
    doc = json.loads(docker("info", "-f", "{{json .}}").out)
    assert (doc["Containers"], doc["ContainersRunning"], doc["ContainersStopped"]) == (2, 1, 1)
    docker("rm", "-f", "up")


def test_images_import_tag_inspect(docker, busybox, busybox_tar):
    with open(busybox_tar, "rb") as f:
        piped = docker("import", "-c", "ENV FROM=stdin", "-", "piped:1", input=f.read()).out.strip()
    docker("tag", "busybox", "example.com/team/box:v1")
    rows = table(docker("images").out)
    assert sorted((r["REPOSITORY"], r["TAG"], r["IMAGE ID"]) for r in rows) == sorted([
        ("busybox", "latest", busybox[7:19]), ("example.com/team/box", "v1", busybox[7:19]),
        ("piped", "1", piped[7:19])])
    doc = json.loads(docker("inspect", "piped:1").out)[0]
    assert doc["Id"] == piped and doc["Config"]["Env"] == ["FROM=stdin"]
    assert docker("image", "inspect", "-f", "{{.Id}}", "example.com/team/box:v1").out.strip() == busybox

    missing = docker("inspect", "nosuch", check=False)
    assert (missing.rc, missing.out, missing.err) == (1, "[]\n", "Error: No such object: nosuch\n")


def test_run_exit_codes_and_stdin(docker, busybox):
    assert docker("run", "--rm", "busybox", "echo", "hi").out == "hi\n"
    assert docker("run", "--rm", "busybox", "sh", "-c", "exit 3", check=False).rc == 3
    r = docker("run", "--rm", "-e", "A=b", "-w", "/tmp", "-u", "1000", "busybox", "sh", "-c",
               'echo "$A $(pwd) $(id -u)"; echo oops >&2')
    assert (r.out, r.err) == ("b /tmp 1000\n", "oops\n")
    # stdin's end reaches the container: cat ends.
    assert docker("run", "-i", "--rm", "busybox", "cat", input=b"hi\n").out == "hi\n"
    assert docker("run", "-i", "--rm", "busybox", "wc", "-c", input=os.urandom(300_000)).out.strip() == "300000"

    r = docker("run", "--rm", "busybox", "nosuchcmd", check=False)
    assert r.rc == 127 and 'exec: "nosuchcmd": executable file not found in $PATH' in r.err
    r = docker("run", "--rm", "nosuchimage", "true", check=False)
    assert r.rc == 125 and "Unable to find image 'nosuchimage:latest' locally" in r.err
    r = docker("run", "--rm", "--name", "x", "busybox", "true", check=False)
    assert r.rc == 125 and "Invalid container name (x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" in r.err
    assert docker("ps", "-aq").out == ""  # --rm left nothing behind


def test_detached_container_lifecycle(docker, busybox):
    cid = docker("run", "-d", "--name", "web", "--label", "tier=front", "busybox", "sh", "-c",
                 "echo started; echo warn >&2; " + FOREVER).out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    docker("create", "--name", "idle", "busybox", "true")

    lines = docker("ps").out.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                                     "PORTS", "NAMES"]
    assert len(lines) == 2 and lines[1].startswith(cid[:12] + "   busybox   \"sh -c ") and lines[1].endswith(" web")
    row = docker("ps", "--format", "{{.ID}}|{{.Image}}|{{.Command}}|{{.Status}}|{{.Names}}|{{.Labels}}").out
    fields = row.strip().split("|")
    assert fields[:2] == [cid[:12], "busybox"] and fields[2].startswith('"sh -c \'echo started')
    assert fields[3].startswith("Up ") and fields[4:] == ["web", "tier=front"]
    assert sorted(docker("ps", "-aq").out.split()) == sorted([cid[:12], docker("inspect", "-f", "{{.Id}}", "idle")
                                                              .out.strip()[:12]])
    assert docker("ps", "-q", "--filter", "label=tier=front").out.strip() == cid[:12]
    assert docker("ps", "-a", "--filter", "status=created", "--format", "{{.Names}}").out == "idle\n"
    assert docker("ps", "-a", "--filter", "name=we", "--format", "{{.Names}} {{.State}}").out == "web running\n"

    wait_for(lambda: "started" in docker("logs", "web").out, "the first log line")
    logs = docker("logs", "web")
    assert (logs.out, logs.err) == ("started\n", "warn\n")
    stamped = docker("logs", "-t", "web").out
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z started\n", stamped), stamped

    r = docker("exec", "web", "sh", "-c", "echo out; echo err >&2; exit 4", check=False)
    assert (r.rc, r.out, r.err) == (4, "out\n", "err\n")
    assert docker("exec", "-e", "X=1", "-w", "/etc", "web", "sh", "-c", 'echo "$X $(pwd)"').out == "1 /etc\n"
    assert docker("exec", "-i", "web", "tr", "a-z", "A-Z", input=b"shout\n").out == "SHOUT\n"
    docker("exec", "-d", "web", "sh", "-c", "echo bg > /bg")
    wait_for(lambda: docker("exec", "web", "cat", "/bg", check=False).out == "bg\n", "exec -d's file")
    r = docker("exec", "web", "nosuchcmd", check=False)
    # dockerd writes a failed exec start into the stream, on stdout, with \r\n (moby postContainerExecStart)
    assert (r.rc, r.out) == (127, 'OCI runtime exec failed: exec failed: exec: "nosuchcmd": executable file not found '
                                  "in $PATH: unknown\r\n")

    top = table(docker("top", "web").out)
    assert {"UID", "PID", "PPID", "CMD"} <= top[0].keys()
    assert any(r["CMD"].startswith("sh -c echo started") for r in top)
    top = docker("top", "web", "-o", "pid,comm").out.split()
    assert top[:2] == ["PID", "COMMAND"] and "sh" in top

    r = docker("rm", "web", check=False)
    assert r.rc == 1 and (f"You cannot remove a running container {cid}. Stop the container before attempting "
                          "removal or force remove") in r.err
    started = time.monotonic()
    assert docker("stop", "web").out == "web\n"
    assert time.monotonic() - started < 8  # the trap answers SIGTERM: no 10 s grace period
    assert docker("wait", "web").out == "0\n"
    assert docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web").out == "exited 0\n"
    assert docker("ps", "-a", "--filter", "exited=0", "--format", "{{.Names}}").out == "web\n"
    assert docker("rm", "web", "idle").out == "web\nidle\n"
    assert docker("ps", "-aq").out == ""


def test_logs_follow_ends_with_the_container(docker, busybox):
    docker("run", "-d", "--name", "counter", "busybox", "sh", "-c",
           "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done; echo bye >&2")
    r = docker("logs", "-f", "counter")
    assert r.out == "".join(f"line{i}\n" for i in range(1, 6)) and r.err == "bye\n"
    tail = docker("logs", "--tail", "2", "counter")
    assert (tail.out, tail.err) == ("line5\n", "bye\n")  # the last two lines of both streams together
    assert docker("wait", "counter").out == "0\n"

    # logs -f on a running container streams what comes next
    docker("run", "-d", "--name", "slow", "busybox", "sh", "-c", "echo a; sleep 1; echo b; sleep 30")
    follower = subprocess.Popen([docker.binary, "logs", "-f", "slow"], stdout=subprocess.PIPE, env=docker.env())
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == b"a\n"
        assert follower.stdout.readline() == b"b\n"    # arrived while following
        docker("kill", "slow")
        assert follower.wait(timeout=20) == 0           # the stream ends when the container does
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert docker("wait", "slow").out == "137\n"


def test_missing_container_messages(docker, busybox):
    modern = is_modern(docker)
    for args in (["logs", "nosuch"], ["stop", "nosuch"], ["wait", "nosuch"], ["top", "nosuch"],
                 ["exec", "nosuch", "true"], ["rm", "nosuch"], ["kill", "nosuch"], ["start", "nosuch"]):
        r = docker(*args, check=False)
        assert r.rc == 1, (args, r)
        # 20.10 rewords a few 404s itself ("Error: No such container: nosuch").
        assert r.err.splitlines()[0] in ("Error response from daemon: No such container: nosuch",
                                         "Error: No such container: nosuch"), (args, r.err)
        if modern:
            assert r.err.startswith("Error response from daemon: "), (args, r.err)


def test_run_it_and_exec_it_in_a_terminal(docker, busybox):
    # 20.10 sends no ConsoleSize at create: it resizes after start, so a shell's first command may race it.
    t = in_terminal(docker, ["run", "-it", "--rm", "busybox", "sh"],
                    [(b"# ", b"stty size; echo $((6*7))\r"), (b"42", b"exit 5\r")])
    assert t.rc == 5
    assert b"33 111\r\n42\r\n" in t.screen                # the terminal's size; \r\n: a TTY's line discipline

    t = in_terminal(docker, ["run", "-it", "--rm", "busybox", "sh", "-c", "echo ready; cat; echo done"],
                    [(b"ready", b"typed\r"), (b"typed\r\ntyped", b"\x04")])
    assert t.rc == 0 and t.screen.endswith(b"typed\r\ntyped\r\ndone\r\n")  # the echo, cat's copy, ^D ends cat

    docker("run", "-d", "--name", "box", "busybox", "sh", "-c", FOREVER)
    t = in_terminal(docker, ["exec", "-it", "box", "sh"],
                    [(b"# ", b"stty size; echo $((6*7))\r"), (b"42", b"exit 6\r")])
    assert t.rc == 6 and b"33 111\r\n42\r\n" in t.screen
    t = in_terminal(docker, ["exec", "-it", "box", "sh", "-c", "echo ready; cat; echo done"],
                    [(b"ready", b"typed\r"), (b"typed\r\ntyped", b"\x04")])
    assert t.rc == 0 and t.screen.endswith(b"done\r\n")

    # ctrl-p ctrl-q detaches and leaves the container running; attach gets it back
    t = in_terminal(docker, ["run", "-it", "--name", "detached", "busybox", "sh"],
                    [(b"# ", b"echo $((6*7))\r"), (b"42", b"\x10\x11")])
    assert t.rc == 0
    assert docker("inspect", "-f", "{{.State.Running}}", "detached").out == "true\n"
    t = in_terminal(docker, ["attach", "detached"], [(None, b"\r"), (b"# ", b"exit 2\r")])
    assert t.rc == 2
    assert docker("wait", "detached").out == "2\n"

    r = docker("run", "-it", "--rm", "busybox", "true", check=False, input=b"")
    assert r.rc == 1 and "the input device is not a TTY" in r.err
    docker("rm", "-f", "box", "detached")


def test_files_volumes_and_images_of_a_day(docker, busybox, busybox_tar, tmp_path):
    docker("volume", "create", "--label", "day=1", "data")
    assert docker("volume", "ls", "-q").out == "data\n"
    docker("run", "-d", "--name", "worker", "-v", "data:/data", "busybox", "sh", "-c",
           "echo kept > /data/f; echo made > /made; " + FOREVER)
    wait_for(lambda: docker("exec", "worker", "cat", "/made", check=False).out == "made\n", "the worker's file")

    # cp both ways, and a tar stream to stdout
    (tmp_path / "in.txt").write_text("from the host\n")
    docker("cp", str(tmp_path / "in.txt"), "worker:/in.txt")
    docker("cp", "worker:/made", str(tmp_path / "made"))
    assert (tmp_path / "made").read_text() == "made\n"
    with tarfile.open(fileobj=io.BytesIO(docker("cp", "worker:/data", "-").raw)) as tf:
        assert sorted(tf.getnames()) == ["data", "data/f"]
    assert docker("exec", "worker", "cat", "/in.txt").out == "from the host\n"

    size_rw = docker("container", "inspect", "-s", "-f", "{{.SizeRw}}", "worker").out.strip()
    assert int(size_rw) >= len("made\nfrom the host\n")
    stats = docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "worker").out.split()
    assert stats[0] == "worker" and int(stats[1]) >= 1

    # commit, then save | load of what was committed
    committed = docker("commit", "-c", "CMD [\"cat\", \"/made\", \"/in.txt\"]", "worker", "day:1").out.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", committed)
    assert docker("run", "--rm", "day:1").out == "made\nfrom the host\n"
    saved = docker("save", "day:1").raw
    docker("rmi", "day:1")
    assert docker("load", input=saved).out.strip() == "Loaded image: day:1"
    assert docker.image_id("day:1") == committed

    assert docker("stop", "worker").out == "worker\n"
    rows = {r["TYPE"]: r for r in table(docker("system", "df").out)}
    assert (rows["Containers"]["TOTAL"], rows["Containers"]["ACTIVE"]) == ("1", "0")
    assert rows["Containers"]["SIZE"] != "0B"                # /made and /in.txt in its layer
    assert (rows["Local Volumes"]["TOTAL"], rows["Local Volumes"]["ACTIVE"]) == ("1", "1")
    assert (rows["Images"]["TOTAL"], rows["Images"]["ACTIVE"]) == ("2", "1")

    doc = json.loads(docker("volume", "inspect", "data").out)[0]
    assert (doc["Name"], doc["Labels"], doc["Driver"]) == ("data", {"day": "1"}, "local")
    r = docker("volume", "rm", "data", check=False)
    assert r.rc == 1 and "volume is in use" in r.err

    # prunes: the stopped container, then its volume, then the dangling image
    out = docker("container", "prune", "-f").out
    assert out.startswith("Deleted Containers:\n" + docker_id_prefix(out))
    assert not out.endswith("Total reclaimed space: 0B\n")
    assert docker("ps", "-aq").out == ""
    # API 1.41 (20.10) prunes named volumes too; 1.42 and later only with --all
    assert docker("volume", "prune", "-f", *(["-a"] if is_modern(docker) else [])).out.startswith(
        "Deleted Volumes:\ndata\n")
    assert docker("volume", "ls", "-q").out == ""
    docker("rmi", "day:1")
    dangling = docker("import", "-c", "ENV D=1", busybox_tar).out.strip()
    out = docker("image", "prune", "-f").out
    assert out.startswith(f"Deleted Images:\ndeleted: {dangling}\n") and "Total reclaimed space:" in out
    assert docker("images", "-q", "--no-trunc").out.split() == [busybox]


def docker_id_prefix(out: str) -> str:
    """The one ID ``container prune`` printed (checked to be a full container ID)."""
    cid = out.splitlines()[1]
    assert re.fullmatch(r"[0-9a-f]{64}", cid), out
    return cid + "\n"
