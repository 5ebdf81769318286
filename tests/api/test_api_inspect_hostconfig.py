"""``HostConfig`` in a container's inspect has every field dockerd shows, whatever the creator sent."""

from __future__ import annotations

import pytest

from portside.daemon.api.hostconfig import DEFAULTS

pytestmark = pytest.mark.root


def test_sparse_create_shows_the_whole_host_config(daemon, busybox_image):
    created = daemon.api.json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]}, expect=201)
    host_config = daemon.api.json("GET", f"/containers/{created['Id']}/json")["HostConfig"]
    assert set(DEFAULTS) <= set(host_config)
    # docker-py's containers.run() returns the output only for these two log drivers
    assert host_config["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert host_config["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert host_config["Runtime"] == "portside"


def test_what_was_asked_wins_over_the_defaults(daemon, busybox_image):
    body = {"Image": "busybox", "Cmd": ["true"],
            "HostConfig": {"Memory": 64 << 20, "LogConfig": {"Type": "", "Config": {"max-size": "1m"}},
                           "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}}
    created = daemon.api.json("POST", "/containers/create", body, expect=201)
    host_config = daemon.api.json("GET", f"/containers/{created['Id']}/json")["HostConfig"]
    assert host_config["Memory"] == 64 << 20
    assert host_config["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert host_config["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
