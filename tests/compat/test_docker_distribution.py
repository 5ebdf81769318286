"""The real docker CLI pulls and logs in through portside's daemon, against Distribution on loopback.

``docker login`` files its credentials in config.json and portside's CLI pulls
with them (and the other way round): both read the same file.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator

import pytest

from compat.conftest import DockerCLI
from helpers import Daemon, remove_containers, start_daemon, stop_daemon, stop_monitor
from registries import Registry, make_tls, skopeo_push, start_registry

pytestmark = [pytest.mark.root, pytest.mark.peers]


@pytest.fixture
def setup(busybox_tar: str, docker_client: Callable[[str], DockerCLI]) -> Iterator[tuple[Daemon, Registry, DockerCLI, str]]:
    base = tempfile.mkdtemp(prefix="portside-dist-docker-")
    certs = os.path.join(base, "certs.d")
    tls_dir = os.path.join(base, "tls")
    os.makedirs(tls_dir)
    tls = make_tls(tls_dir)
    reg = start_registry(base, tls=tls, user="carol", password="pa55")
    os.makedirs(os.path.join(certs, reg.host))
    shutil.copy(tls.ca, os.path.join(certs, reg.host, "ca.crt"))
    daemon = start_daemon(os.path.join(base, "root"), os.path.join(base, "run", "p.sock"),
                          os.path.join(base, "daemon.log"), ("--registry-certs-dir", certs))
    try:
        image_id = daemon.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "src:1").stdout.decode().strip()
        archive = os.path.join(base, "bb.tar")
        daemon.cli("save", "-o", archive, "src:1")
        daemon.cli("rmi", "src:1")
        skopeo_push(f"docker-archive:{archive}", reg, "team/bb:1")
        docker = docker_client(daemon.host)
        daemon.env = {"DOCKER_CONFIG": docker.config_dir}
        yield daemon, reg, docker, image_id
    finally:
        remove_containers(daemon)
        stop_daemon(daemon)
        stop_monitor(daemon)
        reg.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_docker_login_then_pull_and_run(setup: tuple[Daemon, Registry, DockerCLI, str]) -> None:
    daemon, reg, docker, image_id = setup
    name = f"{reg.host}/team/bb:1"
    denied = docker("pull", name, input=b"", check=False)
    assert denied.rc == 1 and "no basic auth credentials" in denied.err, denied

    bad = docker("login", "-u", "carol", "--password-stdin", reg.host, input=b"wrong\n", check=False)
    assert bad.rc == 1 and "401 Unauthorized" in bad.err, bad
    ok = docker("login", "-u", "carol", "--password-stdin", reg.host, input=b"pa55\n")
    assert "Login Succeeded" in ok.out
    with open(os.path.join(docker.config_dir, "config.json")) as f:
        assert json.load(f)["auths"][reg.host]["auth"] == base64.b64encode(b"carol:pa55").decode()

    out = docker("pull", name)
    lines = out.out.splitlines()
    assert lines[0] == f"1: Pulling from {reg.host}/team/bb", lines
    assert lines[-3].startswith("Digest: sha256:") and lines[-2] == f"Status: Downloaded newer image for {name}"
    assert lines[-1] == name
    assert docker.image_id(name) == image_id
    assert docker("run", "--rm", name, "echo", "via-docker").out == "via-docker\n"

    # portside's CLI reads the credentials docker's CLI filed
    daemon.cli("rmi", name)
    assert daemon.cli("pull", "-q", name).stdout.decode() == name + "\n"
    assert docker("logout", reg.host).out == f"Removing login credentials for {reg.host}\n"
    daemon.cli("rmi", name)
    assert daemon.cli("pull", name, check=False).returncode == 1


def test_portside_login_is_read_by_docker(setup: tuple[Daemon, Registry, DockerCLI, str]) -> None:
    daemon, reg, docker, image_id = setup
    daemon.cli("login", "-u", "carol", "-p", "pa55", reg.host)
    name = f"{reg.host}/team/bb:1"
    docker("pull", "-q", name)
    assert docker.image_id(name) == image_id


def test_docker_push_through_portside(setup: tuple[Daemon, Registry, DockerCLI, str]) -> None:
    daemon, reg, docker, image_id = setup
    docker("login", "-u", "carol", "--password-stdin", reg.host, input=b"pa55\n")
    docker("pull", "-q", f"{reg.host}/team/bb:1")
    docker("tag", f"{reg.host}/team/bb:1", f"{reg.host}/team/copy:2")
    out = docker("push", f"{reg.host}/team/copy:2").out.splitlines()
    assert out[0] == f"The push refers to repository [{reg.host}/team/copy]"
    assert out[1].endswith(": Preparing") and out[2].endswith(": Mounted from team/bb"), out
    assert out[-1].startswith("2: digest: sha256:")
    digest = out[-1].split()[2]
    docker("rmi", f"{reg.host}/team/bb:1", f"{reg.host}/team/copy:2")
    docker("pull", "-q", f"{reg.host}/team/copy@{digest}")
    assert docker.image_id(f"{reg.host}/team/copy@{digest}") == image_id
