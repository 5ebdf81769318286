"""docker-compose 1.29 (Debian's, the Python one, on docker-py 5) against a portside daemon.

A one-service project from an image (no build). Compose creates a
``<project>_default`` network for every service that does not choose its
network mode, and portside has no networks API yet: the project that works
today says ``network_mode: none``; the plain one is the expected failure
below, which turns into a pass (and fails, being strict) when networks land.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers]

PROJECT = """\
version: "3.8"
services:
  app:
    image: busybox
{network}    command: ["sh", "-c", "echo compose says $$GREETING; echo kept > /data/f; trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    environment:
      GREETING: hello
    volumes:
      - data:/data
volumes:
  data:
"""


class Compose:
    def __init__(self, binary: str, directory: str, host: str) -> None:
        self.binary, self.directory = binary, directory
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))
                    and k != "PYTHONPATH"}
        # run and exec call the docker CLI on PATH, as by default (compose's own docker-py path attaches
        # after start and loses a short command's output on any engine)
        self.env.update({"DOCKER_HOST": host, "COMPOSE_PROJECT_NAME": "tour"})

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.binary, "--ansi", "never", *args], cwd=self.directory, env=self.env,
                                capture_output=True, text=True, timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result


def compose_for(daemon, tmp_path, network: str) -> Compose:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    (tmp_path / "docker-compose.yml").write_text(PROJECT.format(network=network))
    return Compose(binary, str(tmp_path), daemon.host)


def containers(daemon) -> list[dict]:
    return daemon.api.json("GET", "/containers/json?all=1")


def test_up_ps_logs_exec_run_down(daemon, busybox_image, tmp_path):
    compose = compose_for(daemon, tmp_path, "    network_mode: none\n")
    up = compose("up", "-d")
    assert "Creating volume \"tour_data\" with default driver" in up.stderr
    assert re.search(r"Creating tour_app_1 \.\.\. done", up.stderr), up.stderr

    [listed] = containers(daemon)
    assert listed["Names"] == ["/tour_app_1"] and listed["State"] == "running"
    assert listed["Labels"]["com.docker.compose.project"] == "tour"
    assert listed["Labels"]["com.docker.compose.service"] == "app"

    ps = compose("ps").stdout.splitlines()
    assert ps[0].split() == ["Name", "Command", "State", "Ports"]
    assert ps[2].split()[0] == "tour_app_1" and " Up " in ps[2] + " "
    assert compose("ps", "-q").stdout.strip() == listed["Id"]

    logs = compose("logs", "app").stdout
    assert "app_1  | compose says hello" in logs

    ran = compose("exec", "-T", "app", "sh", "-c", "cat /data/f; echo $GREETING")
    assert ran.stdout == "kept\nhello\n"
    once = compose("run", "--rm", "-T", "app", "sh", "-c", "cat /data/f; exit 4", check=False)
    assert once.returncode == 4 and once.stdout == "kept\n"

    top = compose("top").stdout
    assert "sh -c echo compose says" in top  # its table cuts long commands
    compose("restart")
    compose("stop")
    assert [c["State"] for c in containers(daemon)] == ["exited"]
    compose("start")
    assert [c["State"] for c in containers(daemon)] == ["running"]

    down = compose("down", "-v")
    assert "Removing tour_app_1 ... done" in down.stderr and "Removing volume tour_data" in down.stderr
    assert containers(daemon) == []
    assert daemon.api.json("GET", "/volumes")["Volumes"] in ([], None)


def test_up_with_the_default_network(daemon, busybox_image, tmp_path):
    compose = compose_for(daemon, tmp_path, "")
    try:
        compose("up", "-d")
        assert [c["State"] for c in containers(daemon)] == ["running"]
    finally:
        compose("down", "-v", check=False)
