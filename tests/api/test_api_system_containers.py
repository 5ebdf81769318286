"""Containers in ``/info`` and ``/system/df``: the counts and sizes ``docker info`` and ``docker system df`` show."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root


def test_info_counts_and_df_lists_containers(daemon, busybox_image):
    info = daemon.api.json("GET", "/info")
    assert (info["Containers"], info["ContainersRunning"], info["ContainersStopped"]) == (0, 0, 0)
    assert daemon.api.json("GET", "/system/df")["Containers"] == []

    wrote = daemon.cli("run", "--name", "wrote", "busybox", "sh", "-c", "head -c 5000 /dev/zero > /made")
    assert wrote.returncode == 0
    daemon.cli("run", "-d", "--name", "up", "busybox", "sleep", "100")
    daemon.cli("create", "--name", "fresh", "busybox", "true")
    daemon.cli("run", "-d", "--name", "frozen", "busybox", "sleep", "100")
    daemon.cli("pause", "frozen")

    info = daemon.api.json("GET", "/info")
    assert {k: info[k] for k in ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped")} == {
        "Containers": 4, "ContainersRunning": 1, "ContainersPaused": 1, "ContainersStopped": 2}

    image_size = daemon.api.json("GET", f"/images/{busybox_image}/json")["Size"]
    entries = {c["Names"][0]: c for c in daemon.api.json("GET", "/system/df")["Containers"]}
    assert sorted(entries) == ["/fresh", "/frozen", "/up", "/wrote"]
    assert (entries["/wrote"]["SizeRw"], entries["/wrote"]["SizeRootFs"]) == (5000, 5000 + image_size)
    assert entries["/fresh"]["SizeRw"] == 0 and entries["/fresh"]["State"] == "created"
    assert entries["/up"]["State"] == "running" and entries["/up"]["ImageID"] == busybox_image
    daemon.cli("unpause", "frozen")


def test_list_with_size(daemon, busybox_image):
    daemon.cli("run", "--name", "wrote", "busybox", "sh", "-c", "head -c 1234 /dev/zero > /made")
    image_size = daemon.api.json("GET", f"/images/{busybox_image}/json")["Size"]
    [entry] = daemon.api.json("GET", "/containers/json?all=1&size=1")
    assert (entry["SizeRw"], entry["SizeRootFs"]) == (1234, 1234 + image_size)
    [entry] = daemon.api.json("GET", "/containers/json?all=1")
    assert "SizeRw" not in entry  # sizes cost a walk of the container's layer: only when asked, as dockerd


def test_inspect_with_size(daemon, busybox_image):
    daemon.cli("run", "--name", "wrote", "busybox", "sh", "-c", "head -c 777 /dev/zero > /made")
    image_size = daemon.api.json("GET", f"/images/{busybox_image}/json")["Size"]
    doc = daemon.api.json("GET", "/containers/wrote/json?size=1")
    assert (doc["SizeRw"], doc["SizeRootFs"]) == (777, 777 + image_size)  # docker inspect -s
    assert "SizeRw" not in daemon.api.json("GET", "/containers/wrote/json")
