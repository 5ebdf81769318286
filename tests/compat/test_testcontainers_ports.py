"""testcontainers-python: a busybox httpd with an exposed port, reached from the test.

Pending published ports (issue 4's networking part): move next to
tests/compat/test_testcontainers.py once ``-p``/``PortBindings`` with an
ephemeral host port works. Same environment as that file.
"""

from __future__ import annotations

import urllib.request

import pytest

pytest.importorskip("testcontainers")
from testcontainers.core.config import get_user_overwritten_connection_mode, testcontainers_config  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.wait_strategies import LogMessageWaitStrategy  # noqa: E402

pytestmark = pytest.mark.root

HTTPD = "mkdir -p /www && echo 'hello from portside' > /www/index.html && echo serving && exec httpd -f -v -p 80 -h /www"


@pytest.fixture
def testcontainers_env(daemon, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", daemon.host)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    monkeypatch.setenv("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    monkeypatch.setattr(testcontainers_config, "_ryuk_disabled", None)
    monkeypatch.setattr(testcontainers_config, "connection_mode_override", get_user_overwritten_connection_mode())
    return daemon


def test_httpd_with_an_exposed_port(testcontainers_env, busybox_image):
    container = (DockerContainer("busybox").with_command(["sh", "-c", HTTPD]).with_exposed_ports(80)
                 .waiting_for(LogMessageWaitStrategy("serving")))
    with container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(80)
        assert host == "localhost" and 1024 <= int(port) <= 65535
        with urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=10) as response:
            assert response.status == 200 and response.read() == b"hello from portside\n"
        stdout, stderr = container.get_logs()
        assert b"response:200" in stdout + stderr   # httpd -v logs the request's answer
    assert testcontainers_env.api.json("GET", "/containers/json?all=1") == []
