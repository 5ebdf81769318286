"""docker-compose 1.29 (Debian's, the Python one, on docker-py 5) against a portside daemon.

A one-service project from an image, with and without its own network; and
the two-service project of the issue: a build, a named volume, a user-defined
network, depends_on, ports and environment.
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


TWO_SERVICES = """\
version: "3.8"
services:
  web:
    build: ./web
    image: tour-web:1
    ports:
      - "127.0.0.1::80"
    environment:
      GREETING: from-web
    volumes:
      - site:/site
    networks: [back]
  client:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    depends_on: [web]
    networks: [back]
volumes:
  site:
networks:
  back:
"""

WEB_DOCKERFILE = """\
FROM busybox
COPY index.html /www/index.html
CMD ["sh", "-c", "echo $GREETING > /site/greeting; echo web is up; exec httpd -f -v -p 80 -h /www"]
"""


def test_build_network_ports_volume_and_depends_on(daemon, busybox_image, tmp_path):
    import json
    import urllib.request

    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    (tmp_path / "docker-compose.yml").write_text(TWO_SERVICES)
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text(WEB_DOCKERFILE)
    (tmp_path / "web" / "index.html").write_text("built by compose\n")
    compose = Compose(binary, str(tmp_path), daemon.host)
    compose.env["DOCKER_BUILDKIT"] = "0"
    compose.env["COMPOSE_DOCKER_CLI_BUILD"] = "0"
    try:
        compose("up", "-d", "--build")
        states = {c["Names"][0]: c["State"] for c in containers(daemon)}
        assert states == {"/tour_web_1": "running", "/tour_client_1": "running"}, states
        # the published port, from the host
        port = compose("port", "web", "80").stdout.strip().rpartition(":")[2]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
            assert reply.read() == b"built by compose\n"
        # the service name resolves on the project's network; the environment reached the volume
        r = compose("exec", "-T", "client", "nslookup", "web")
        web = daemon.api.json("GET", "/containers/tour_web_1/json")
        ip = web["NetworkSettings"]["Networks"]["tour_back"]["IPAddress"]
        assert f"Address: {ip}" in r.stdout
        assert compose("exec", "-T", "web", "cat", "/site/greeting").stdout == "from-web\n"
        assert "web is up" in compose("logs", "web").stdout
        assert "tour_web_1" in compose("ps").stdout
    finally:
        compose("down", "-v", "--rmi", "local", check=False)
    assert containers(daemon) == []
    networks = daemon.api.json("GET", "/networks")
    assert "tour_back" not in {n["Name"] for n in networks}
