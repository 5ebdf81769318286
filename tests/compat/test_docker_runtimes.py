"""The real docker CLI with ``--runtime runc`` / ``--runtime crun`` against portside.

What a docker user sees: ``docker info`` lists the runtimes, ``docker run
--runtime X`` prints and exits with the container's status, ``docker exec``
and ``docker inspect`` work on such a container, an unknown name is refused
with dockerd's message and status 125.
"""

from __future__ import annotations

import os
import shutil

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers]

RUNTIMES = ("runc", "crun")


@pytest.fixture
def docker(daemon, docker_client):
    return docker_client(daemon.host)


@pytest.fixture
def busybox(docker, busybox_tar: str) -> str:
    return docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    name = request.param
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")
    try:
        with open("/sys/fs/cgroup/unified/cgroup.controllers") as f:
            hybrid_v2_controllers = bool(f.read().strip())
    except OSError:
        hybrid_v2_controllers = False
    if name == "crun" and hybrid_v2_controllers:
        pytest.skip("crun refuses a hybrid cgroup host whose v2 hierarchy holds controllers (docs/runtimes.md)")
    return name


def test_docker_info_lists_the_runtimes(docker):
    out = docker("info").out
    line = next(line for line in out.splitlines() if line.startswith(" Runtimes:"))
    names = set(line.split(":", 1)[1].split())
    assert names == {"portside"} | {n for n in RUNTIMES if shutil.which(n)}
    assert " Default Runtime: portside" in out.splitlines()


def test_docker_run_with_a_runtime(docker, busybox, runtime):
    out = docker("run", "--rm", "--runtime", runtime, "busybox", "echo", "hi")
    assert out.out == "hi\n"
    failed = docker("run", "--rm", "--runtime", runtime, "busybox", "sh", "-c", "exit 3", check=False)
    assert failed.rc == 3
    piped = docker("run", "--rm", "-i", "--runtime", runtime, "busybox", "sh", "-c", "tr a-z A-Z",
                   input=b"loud\n")
    assert piped.out == "LOUD\n"


def test_docker_exec_inspect_stop_on_a_runtime_container(docker, busybox, runtime, daemon):
    cid = docker("run", "-d", "--name", "svc", "--runtime", runtime, "busybox", "sleep", "60").out.strip()
    assert docker("inspect", "-f", "{{.HostConfig.Runtime}} {{.State.Status}}", "svc").out.strip() \
        == f"{runtime} running"
    assert docker("exec", "svc", "hostname").out.strip() == cid[:12]
    assert docker("exec", "svc", "sh", "-c", "exit 4", check=False).rc == 4
    docker("stop", "-t", "1", "svc")
    assert docker("inspect", "-f", "{{.State.ExitCode}}", "svc").out.strip() == "137"
    docker("rm", "svc")
    assert not os.path.exists(os.path.join(os.path.dirname(daemon.socket), "runtime", runtime, cid))


def test_docker_refuses_an_unknown_runtime(docker, busybox):
    out = docker("run", "--rm", "--runtime", "nosuch", "busybox", "true", check=False)
    assert out.rc == 125
    assert "Error response from daemon: unknown or invalid runtime name: nosuch" in out.err
