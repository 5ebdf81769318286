"""``docker commit`` (the real docker CLI) against portside, and the committed image in dockerd and podman."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers]

HEX64 = re.compile(r"^sha256:[0-9a-f]{64}$")
CHANGES = "echo made > /made; rm /bin/cat; rm -rf /var/spool; mkdir /var/spool; echo new > /var/spool/new"


@pytest.fixture
def docker(daemon, docker_client):
    return docker_client(daemon.host)


@pytest.fixture
def busybox(docker, busybox_tar: str) -> str:
    image_id = docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()
    assert HEX64.match(image_id), image_id
    return image_id


@pytest.fixture
def committed(docker, busybox) -> str:
    """An image committed with the docker CLI from a container that added, deleted and replaced files."""
    docker("run", "--name", "c1", "busybox", "sh", "-c", CHANGES)
    r = docker("commit", "--author", "Jane <j@example.com>", "--message", "made by docker commit",
               "--change", 'CMD ["head", "/made"]', "-c", "ENV STAGE=committed", "-c", "LABEL made=yes",
               "c1", "example/committed:1")
    assert HEX64.match(r.out.strip()) and r.err == "", r
    return r.out.strip()


def test_docker_commit_makes_an_image_docker_can_run(docker, busybox, committed):
    doc = json.loads(docker("image", "inspect", "example/committed:1").out)[0]
    assert doc["Id"] == committed
    assert doc["Parent"] == busybox
    assert (doc["Comment"], doc["Author"]) == ("made by docker commit", "Jane <j@example.com>")
    assert doc["Config"]["Cmd"] == ["head", "/made"]
    assert doc["Config"]["Env"] == ["STAGE=committed"]
    assert doc["Config"]["Labels"] == {"made": "yes"}
    history = docker("history", "--no-trunc", "--format", "{{.ID}}\t{{.CreatedBy}}\t{{.Comment}}",
                     "example/committed:1").out.splitlines()
    assert history[0] == f"{committed}\tsh -c {CHANGES}\tmade by docker commit"
    assert history[1].startswith(busybox + "\t")

    assert docker("run", "--rm", "example/committed:1").out == "made\n"
    r = docker("run", "--rm", "example/committed:1", "sh", "-c", "ls -A /var/spool; echo $STAGE; ls /bin/cat",
               check=False)
    assert r.out == "new\ncommitted\n" and "/bin/cat: No such file or directory" in r.err


def test_docker_container_commit_of_a_running_container(docker, busybox):
    docker("run", "-d", "--name", "r1", "busybox", "sh", "-c", "echo up > /up; trap 'exit 0' TERM; "
           "while :; do sleep 1; done")
    for flags in ([], ["--pause=false"]):
        image_id = docker("container", "commit", *flags, "r1").out.strip()
        assert HEX64.match(image_id)
        assert docker("inspect", "-f", "{{.State.Running}} {{.State.Paused}}", "r1").out == "true false\n"
    assert docker("run", "--rm", image_id, "head", "/up").out == "up\n"
    docker("rm", "-f", "r1")


def test_docker_commit_errors(docker, busybox):
    docker("create", "--name", "e1", "busybox")
    r = docker("commit", "nosuch", check=False)
    assert (r.rc, r.err) == (1, "Error response from daemon: No such container: nosuch\n")
    r = docker("commit", "-c", "RUN true", "e1", check=False)
    assert (r.rc, r.err) == (1, "Error response from daemon: run is not a valid change command\n")
    assert docker("images", "-aq").out.split() == [busybox[7:19]]


def test_dockerd_loads_and_runs_a_committed_image(docker, committed, dockerd, tmp_path):
    archive = str(tmp_path / "committed.tar")
    docker("save", "-o", archive, "example/committed:1")
    assert dockerd.cli("load", "-i", archive).out.strip() == "Loaded image: example/committed:1"
    assert dockerd.cli.image_id("example/committed:1") == committed
    layers = json.loads(dockerd.cli("image", "inspect", "-f", "{{json .RootFS.Layers}}", "example/committed:1").out)
    assert layers == json.loads(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", "example/committed:1").out)
    r = dockerd.cli("run", "--rm", "--network", "none", "example/committed:1", "sh", "-c",
                    "head /made; ls -A /var/spool; ls /bin/cat", check=False)
    assert r.out == "made\nnew\n" and "/bin/cat: No such file or directory" in r.err


def test_podman_loads_a_committed_image(docker, committed, podman, tmp_path):
    archive = str(tmp_path / "committed.tar")
    docker("save", "-o", archive, "example/committed:1")
    podman("load", "-i", archive)
    assert podman.images() == {(committed, "docker.io/example/committed:1")}
