"""POST /build with ``cachefrom``: steps answered from images that were built elsewhere and saved/loaded.

The real-world flow: build an image in one root, ship it (save/load here),
build the same Dockerfile in a fresh root with ``cachefrom`` that image:
every step is a cache hit and the result has the same image ID.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.test_api_build import build, cached_steps, text
from tests.helpers import Daemon, remove_containers, start_daemon, stop_daemon, stop_monitor
from tests.registries import start_registry

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds run containers: needs root")

DOCKERFILE = """\
FROM busybox
ARG V=1
RUN echo one > /one
ENV A=1
WORKDIR /app
COPY f ./f
RUN cat f /one > both
CMD ["cat", "/app/both"]
"""
FILES = {"Dockerfile": DOCKERFILE, "f": "F\n"}
ALL_CACHED = [2, 3, 4, 5, 6, 7, 8]


def step_ids(lines: list[dict[str, Any]]) -> list[str]:
    """The short image ID after each step (`` ---> 0123456789ab``)."""
    return re.findall(r"^ ---> ([0-9a-f]{12})$", text(lines), re.M)


def result(lines: list[dict[str, Any]]) -> str:
    assert not [line for line in lines if "error" in line], lines
    ids = [line["aux"]["ID"] for line in lines if "aux" in line]
    assert len(ids) == 1, lines
    return ids[0]


@contextlib.contextmanager
def fresh_daemon(base: str) -> Iterator[Daemon]:
    os.makedirs(base)
    d = start_daemon(os.path.join(base, "root"), os.path.join(base, "s.sock"), os.path.join(base, "log"))
    try:
        yield d
    finally:
        remove_containers(d)
        stop_daemon(d)
        stop_monitor(d)


@pytest.fixture
def built(daemon: Daemon, busybox_image: str, tmp_path: Any) -> tuple[list[dict[str, Any]], str]:
    """x:1 built in the first root and saved with its base: (build stream, path of the saved tar)."""
    status, lines = build(daemon, FILES, t="x:1")
    assert status == 200
    saved = str(tmp_path / "x.tar")
    daemon.cli("save", "-o", saved, "x:1", "busybox:latest")
    return lines, saved


def test_fresh_root_rebuilds_nothing_and_gets_the_same_image(daemon_dirs: tuple[str, str, str], built: Any) -> None:
    first, saved = built
    x_id = result(first)
    with fresh_daemon(os.path.join(os.path.dirname(daemon_dirs[0]), "b")) as other:
        other.cli("load", "-i", saved)
        status, lines = build(other, FILES, cachefrom=json.dumps(["x:1"]), t="y:1")
        assert status == 200
        out = text(lines)
        assert cached_steps(lines) == ALL_CACHED and " ---> Running in" not in out, out
        assert result(lines) == x_id
        # every intermediate image is the one the first root built: parent layers + the source's layer
        assert step_ids(lines) == step_ids(first)
        assert other.cli("run", "--rm", "y:1").stdout == b"F\none\n"
        assert other.api.json("GET", "/containers/json?all=1") == []

        # a step changed in the middle: what comes before it hits, it and everything after it runs
        changed = {**FILES, "Dockerfile": DOCKERFILE.replace("ENV A=1", "ENV A=2")}
        status, lines = build(other, changed, cachefrom=json.dumps(["x:1"]), t="z:1")
        assert status == 200 and cached_steps(lines) == [2, 3]
        assert text(lines).count(" ---> Running in") == 1  # the second RUN
        z_id = result(lines)
        assert z_id != x_id and step_ids(lines)[:3] == step_ids(first)[:3]
        assert other.cli("run", "--rm", "z:1", "sh", "-c", "echo $A; cat both").stdout == b"2\nF\none\n"


def test_registry_round_trip(daemon_dirs: tuple[str, str, str], daemon: Daemon, busybox_image: str) -> None:
    """Push from one root, pull into a fresh one, build with the pulled image as cache-from, push the result."""
    base = os.path.dirname(daemon_dirs[0])
    registry = start_registry(base)
    try:
        name = f"{registry.host}/cf/x:1"
        status, first = build(daemon, FILES, t=name)
        assert status == 200
        daemon.cli("tag", "busybox:latest", f"{registry.host}/cf/busybox:latest")
        digest = re.findall(r"digest: (sha256:[0-9a-f]{64})", daemon.cli("push", name).stdout.decode())
        daemon.cli("push", f"{registry.host}/cf/busybox:latest")
        with fresh_daemon(os.path.join(base, "b")) as other:
            other.cli("pull", f"{registry.host}/cf/busybox:latest")
            other.cli("tag", f"{registry.host}/cf/busybox:latest", "busybox:latest")
            other.cli("pull", name)
            status, lines = build(other, FILES, cachefrom=json.dumps([name]), t=f"{registry.host}/cf/y:1")
            assert status == 200 and cached_steps(lines) == ALL_CACHED
            assert result(lines) == result(first) and step_ids(lines) == step_ids(first)
            # restored images are whole: runnable, and pushable (their layers are the pulled blobs)
            assert other.cli("run", "--rm", f"{registry.host}/cf/y:1").stdout == b"F\none\n"
            pushed = other.cli("push", f"{registry.host}/cf/y:1").stdout.decode()
            assert "Mounted from cf/x" in pushed and "Pushed" not in pushed  # no layer had to be uploaded
            assert re.findall(r"digest: (sha256:[0-9a-f]{64})", pushed) == digest  # the very same manifest
    finally:
        registry.stop()


def test_missing_source_is_ignored_and_local_hits_need_a_source(daemon: Daemon, built: Any) -> None:
    first, _ = built
    # as dockerd: no error for an image that is not there, and with cache-from images the local cache is
    # trusted only inside them, so everything runs again (and, reproducible, gives the same image)
    status, lines = build(daemon, FILES, cachefrom=json.dumps(["nothere:1"]))
    assert status == 200 and cached_steps(lines) == [] and text(lines).count(" ---> Running in") == 2
    assert result(lines) == result(first)
    assert "Could not look up nothere:1 for cache resolution, skipping" in daemon.log()
    # local hits inside a source count; a missing source next to it changes nothing
    status, lines = build(daemon, FILES, cachefrom=json.dumps(["nothere:1", "x:1"]))
    assert cached_steps(lines) == ALL_CACHED and result(lines) == result(first)
    # nocache wins over cachefrom
    status, lines = build(daemon, FILES, cachefrom=json.dumps(["x:1"]), nocache=1)
    assert cached_steps(lines) == [] and result(lines) == result(first)


def _rewrite_config(saved: str, out: str, change: Any, tag: str, source: str = "x:1") -> None:
    """A copy of ``source`` from a saved tar whose image config went through ``change`` (a new image ID),
    tagged ``tag``."""
    with tarfile.open(saved) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(members["manifest.json"])
    entry = [m for m in manifest if source in (m.get("RepoTags") or [])][0]
    config = json.loads(members[entry["Config"]])
    change(config)
    raw = json.dumps(config).encode()
    digest = hashlib.sha256(raw).hexdigest()
    name = os.path.join(os.path.dirname(entry["Config"]), digest if "blobs/" in entry["Config"] else digest + ".json")
    members[name] = raw
    entry["Config"], entry["RepoTags"] = name, [tag]
    members["manifest.json"] = json.dumps([entry]).encode()
    members.pop("index.json", None)
    members.pop("repositories", None)
    with tarfile.open(out, "w") as tar:
        for member, data in sorted(members.items()):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_sources_whose_history_does_not_line_up_never_match(daemon_dirs: tuple[str, str, str], built: Any,
                                                            tmp_path: Any) -> None:
    _, saved = built

    def no_history(config: dict[str, Any]) -> None:
        config.pop("history")

    def one_layer_too_many(config: dict[str, Any]) -> None:
        for entry in config["history"]:
            entry.pop("empty_layer", None)  # the ENV entry now claims a layer the rootfs does not have

    with fresh_daemon(os.path.join(os.path.dirname(daemon_dirs[0]), "b")) as other:
        other.cli("load", "-i", saved)
        other.cli("rmi", "x:1")
        for change in (no_history, one_layer_too_many):
            out = str(tmp_path / f"{change.__name__}.tar")
            _rewrite_config(saved, out, change, f"bad:{change.__name__.replace('_', '-')}")
            other.cli("load", "-i", out)
        status, lines = build(other, FILES, cachefrom=json.dumps(["bad:no-history", "bad:one-layer-too-many"]))
        assert status == 200 and cached_steps(lines) == []
        result(lines)


def test_bad_cachefrom_is_a_400(daemon: Daemon) -> None:
    status, lines = build(daemon, {"Dockerfile": "FROM busybox\n"}, cachefrom=json.dumps({"a": "b"}))
    assert status == 400
    status, lines = build(daemon, {"Dockerfile": "FROM busybox\n"}, cachefrom="[not json")
    assert status == 400


def test_a_base_whose_history_says_nothing_of_its_layers_still_lets_the_steps_match(
        daemon_dirs: tuple[str, str, str], daemon: Daemon, busybox_image: str, tmp_path: Any) -> None:
    """A base image with no history (as ko's or jib's): only the entries after it must line up (moby)."""
    base_tar, nohist_tar = str(tmp_path / "busybox.tar"), str(tmp_path / "nohist.tar")
    daemon.cli("save", "-o", base_tar, "busybox:latest")
    _rewrite_config(base_tar, nohist_tar, lambda config: config.pop("history", None), "nohist:1",
                    source="busybox:latest")
    daemon.cli("load", "-i", nohist_tar)
    files = {**FILES, "Dockerfile": DOCKERFILE.replace("FROM busybox", "FROM nohist:1")}
    status, lines = build(daemon, files, t="y:1")
    assert status == 200
    first = result(lines)
    saved = str(tmp_path / "y.tar")
    daemon.cli("save", "-o", saved, "y:1")

    with fresh_daemon(os.path.join(os.path.dirname(daemon_dirs[0]), "nohist")) as other:
        other.cli("load", "-i", nohist_tar)
        other.cli("load", "-i", saved)

        status, lines = build(other, files, cachefrom=json.dumps(["y:1"]))
        assert status == 200 and cached_steps(lines) == ALL_CACHED, text(lines)
        assert result(lines) == first
