"""testcontainers-python 4 against a portside daemon.

Configured as the brief of issue 4 says and as a user on a plain host has
it: ``DOCKER_HOST`` is the test daemon's socket, ``TESTCONTAINERS_RYUK_DISABLED=true``
(its reaper image would need a registry). This VM has a ``/.dockerenv``, so
testcontainers would believe it runs inside a container and look for the
``bridge`` network's gateway: ``TESTCONTAINERS_CONNECTION_MODE=docker_host``
says what is true here. The exposed-port half (httpd, ``get_exposed_port``)
waits for published ports.
"""

from __future__ import annotations

import pytest

pytest.importorskip("testcontainers")
from testcontainers.core.config import get_user_overwritten_connection_mode, testcontainers_config  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.wait_strategies import LogMessageWaitStrategy  # noqa: E402
from testcontainers.core.waiting_utils import wait_for_logs  # noqa: E402

pytestmark = pytest.mark.root

SCRIPT = "echo booting; sleep 0.5; echo ready now; echo on-stderr >&2; trap 'exit 0' TERM; while :; do sleep 0.1; done"


@pytest.fixture
def testcontainers_env(daemon, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", daemon.host)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    monkeypatch.setenv("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    # the settings are read once and kept: make them what the environment now says
    monkeypatch.setattr(testcontainers_config, "_ryuk_disabled", None)
    monkeypatch.setattr(testcontainers_config, "connection_mode_override", get_user_overwritten_connection_mode())
    return daemon


def containers(daemon) -> list[dict]:
    return daemon.api.json("GET", "/containers/json?all=1")


def test_docker_container_logs_exec_and_stop(testcontainers_env, busybox_image):
    daemon = testcontainers_env
    container = DockerContainer("busybox").with_command(["sh", "-c", SCRIPT]).with_env("TC", "yes")
    with container:
        waited = wait_for_logs(container, "ready now", timeout=30)
        assert 0 < waited < 30
        result = container.exec(["sh", "-c", 'echo "$TC"; echo err >&2; exit 3'])
        assert (result.exit_code, result.output) == (3, b"yes\nerr\n")
        assert container.get_container_host_ip() == "localhost"
        stdout, stderr = container.get_logs()
        assert stdout.startswith(b"booting\nready now\n") and stderr == b"on-stderr\n"
        [listed] = containers(daemon)
        assert listed["Labels"]["org.testcontainers"] == "true" and listed["State"] == "running"
        assert "org.testcontainers.session-id" in listed["Labels"]
    assert containers(daemon) == []  # stop() removes it (DELETE ?force=True&v=True)


def test_structured_wait_strategy(testcontainers_env, busybox_image):
    container = DockerContainer("busybox").with_command(["sh", "-c", SCRIPT]).waiting_for(
        LogMessageWaitStrategy("ready now"))
    container.start()
    try:
        assert b"ready now" in container.get_logs()[0]  # start() returned only once the line was there
    finally:
        container.stop()
    assert containers(testcontainers_env) == []


def test_missing_image_is_pulled_and_the_failure_reported(testcontainers_env, busybox_image):
    from docker.errors import APIError

    # the test daemon's docker.io mirror is a loopback port where nothing listens (tests/helpers.py)
    with pytest.raises(APIError) as refused:
        DockerContainer("nosuch/image:1").start()
    assert refused.value.status_code >= 500 and "127.0.0.1:1" in str(refused.value)
