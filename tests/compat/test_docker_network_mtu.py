"""The real docker CLI's `network create -o com.docker.network.driver.mtu=N` against portside: the option
shows in inspect and the container's eth0 has the MTU; a bad value fails with dockerd's message."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers]


@pytest.fixture
def docker(daemon, docker_client):
    return docker_client(daemon.host)


def test_mtu_option_through_the_docker_cli(docker, busybox_tar: str) -> None:
    docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest")
    docker("network", "create", "-o", "com.docker.network.driver.mtu=65520", "wide")
    try:
        assert docker("network", "inspect", "-f", '{{index .Options "com.docker.network.driver.mtu"}}',
                      "wide").out == "65520\n"
        assert docker("run", "--rm", "--network", "wide", "busybox", "cat", "/sys/class/net/eth0/mtu").out == "65520\n"
    finally:
        docker("network", "rm", "wide", check=False)
    r = docker("network", "create", "-o", "com.docker.network.driver.mtu=-2", "bad", check=False)
    assert r.rc == 1 and "invalid MTU number: -2" in r.err
