"""Container records across a daemon restart: kept whole, or swept when a crash cut them short.

A creation is flushed to disk in the background (containers/record.py,
``Sync.SOON``); a power loss in that window can leave a new container.json
empty. The next daemon start must remove such a container entirely, not
list a half-made one.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import remove_containers, start_daemon, stop_daemon, stop_monitor

pytestmark = pytest.mark.root


def test_a_torn_record_is_swept_and_a_whole_one_kept(daemon_dirs, busybox_tar):
    root = daemon_dirs[0]
    daemon = start_daemon(*daemon_dirs)
    try:
        daemon.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        kept = json.loads(daemon.api.request("POST", "/containers/create?name=kept",
                                             {"Image": "busybox", "Cmd": ["true"]})[2])["Id"]
        torn = json.loads(daemon.api.request("POST", "/containers/create?name=torn",
                                             {"Image": "busybox", "Cmd": ["true"]})[2])["Id"]
    finally:
        stop_daemon(daemon)
        stop_monitor(daemon)
    open(os.path.join(root, "containers", torn, "container.json"), "w").close()  # what the crash left

    daemon = start_daemon(*daemon_dirs)
    try:
        listed = daemon.api.json("GET", "/containers/json?all=1")
        assert [c["Id"] for c in listed] == [kept]
        assert not os.path.exists(os.path.join(root, "containers", torn))
        active = os.listdir(os.path.join(root, "snapshots", "active"))
        assert kept in active and torn not in active  # the container layer went with it
        assert daemon.api.request("GET", f"/containers/{torn}/json")[0] == 404
        # the name is free again
        status, _, body = daemon.api.request("POST", "/containers/create?name=torn",
                                             {"Image": "busybox", "Cmd": ["true"]})
        assert status == 201, body
    finally:
        remove_containers(daemon)
        stop_daemon(daemon)
        stop_monitor(daemon)


def test_removals_a_crash_cut_short_are_finished_at_start(daemon_dirs, busybox_tar):
    root = daemon_dirs[0]
    daemon = start_daemon(*daemon_dirs)
    try:
        daemon.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        ids = [json.loads(daemon.api.request("POST", "/containers/create",
                                             {"Image": "busybox", "Cmd": ["true"]})[2])["Id"] for _ in range(3)]
    finally:
        stop_daemon(daemon)
        stop_monitor(daemon)
    unlinked, removing, kept = ids
    os.unlink(os.path.join(root, "containers", unlinked, "container.json"))  # crashed right after the unlink
    path = os.path.join(root, "containers", removing, "container.json")
    with open(path) as f:
        doc = json.load(f)
    with open(path, "w") as f:
        json.dump({**doc, "state": "removing"}, f)                          # crashed before the unlink

    daemon = start_daemon(*daemon_dirs)
    try:
        assert [c["Id"] for c in daemon.api.json("GET", "/containers/json?all=1")] == [kept]
        assert sorted(os.listdir(os.path.join(root, "containers"))) == [kept]
        assert os.listdir(os.path.join(root, "snapshots", "active")) == [kept]
    finally:
        remove_containers(daemon)
        stop_daemon(daemon)
        stop_monitor(daemon)
