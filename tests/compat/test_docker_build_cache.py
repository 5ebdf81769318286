"""``DOCKER_BUILDKIT=0 docker build --cache-from / --rm=false / --force-rm``: the real docker CLIs against
portside, and the same commands against a private dockerd 20.10 (classic builder) as the reference."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from typing import Any

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers]

CLASSIC = {"DOCKER_BUILDKIT": "0"}
DOCKERFILE = "FROM busybox\nRUN echo one > /one\nENV A=1\nCOPY f /f\nRUN cat /f /one > /both\nCMD [\"cat\", \"/both\"]\n"
CLIS = [path for path in ("/usr/local/bin/docker", "/usr/bin/docker") if os.path.exists(path)]


def cached_steps(out: str) -> list[int]:
    steps, current = [], 0
    for line in out.splitlines():
        if line.startswith("Step "):
            current = int(line.split()[1].split("/")[0])
        elif line == " ---> Using cache":
            steps.append(current)
    return steps


def cache_from_flow(cli: Any, tmp_path: pathlib.Path) -> dict[str, object]:
    """Build, save, remove, load, build again with --cache-from; then a changed step. What happened, as data."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "f").write_text("F\n")
    cli("build", "-t", "src:1", str(ctx), env=CLASSIC)
    built = cli.image_id("src:1")
    saved = str(tmp_path / "src.tar")
    cli("save", "-o", saved, "src:1")
    cli("rmi", "src:1")
    cli("load", "-i", saved)
    again = cli("build", "--cache-from", "nothere:1", "--cache-from", "src:1", "-t", "again:1", str(ctx), env=CLASSIC)
    (ctx / "Dockerfile").write_text(DOCKERFILE.replace("ENV A=1", "ENV A=2"))
    changed = cli("build", "--cache-from", "src:1", "-t", "changed:1", str(ctx), env=CLASSIC)
    return {"again": cached_steps(again.out), "same id": cli.image_id("again:1") == built,
            "ran": "Running in" in again.out, "changed": cached_steps(changed.out),
            "output": cli("run", "--rm", "changed:1").out}


def leftovers(cli: Any, tmp_path: pathlib.Path) -> dict[str, object]:
    """The intermediate containers a failing build leaves under each of rm / forcerm."""
    ctx = tmp_path / "failing"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /hi\nRUN exit 3\n")
    out: dict[str, object] = {}
    for label, flags in (("default", ()), ("force-rm", ("--force-rm",)), ("rm=false", ("--no-cache", "--rm=false")),
                         ("rm=false force-rm", ("--no-cache", "--rm=false", "--force-rm"))):
        r = cli("build", *flags, str(ctx), env=CLASSIC, check=False)
        ps = cli("ps", "-a", "--format", "{{.Status}}").out.split("\n")
        out[label] = (r.rc, sorted(re.sub(r"\) .*", ")", s) for s in ps if s),
                      len(re.findall(r"^Removing intermediate container", r.out, re.M)))
        ids = cli("ps", "-aq").out.split()
        if ids:
            cli("rm", *ids)
    return out


@pytest.mark.parametrize("binary", CLIS, ids=[os.path.basename(os.path.dirname(c)) for c in CLIS])
def test_docker_cli_cache_from_and_rm(daemon, docker_client, busybox_tar: str, tmp_path: pathlib.Path,
                                      binary: str) -> None:
    cli = dataclasses.replace(docker_client(daemon.host), binary=binary)
    cli("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest")
    flow = cache_from_flow(cli, tmp_path)
    assert flow == {"again": [2, 3, 4, 5, 6], "same id": True, "ran": False, "changed": [2], "output": "F\none\n"}
    assert leftovers(cli, tmp_path) == {"default": (3, ["Exited (3)"], 1), "force-rm": (3, [], 1),
                                        "rm=false": (3, ["Exited (0)", "Exited (3)"], 0),
                                        "rm=false force-rm": (3, [], 2)}


def test_same_as_dockerd(daemon, dockerd, docker_client, busybox_tar: str, tmp_path: pathlib.Path) -> None:
    mine = docker_client(daemon.host)
    mine("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest")
    saved = tmp_path / "busybox.tar"
    mine("save", "-o", str(saved), "busybox:latest")
    dockerd.cli("load", "-i", str(saved))
    results = {}
    for name, cli in (("portside", mine), ("dockerd", dockerd.cli)):
        base = tmp_path / name
        base.mkdir()
        results[name] = (cache_from_flow(cli, base), leftovers(cli, base))
    assert results["portside"] == results["dockerd"]


def test_dockerd_built_image_as_cache_from(daemon, dockerd, docker_client, busybox_tar: str,
                                           tmp_path: pathlib.Path) -> None:
    """An image dockerd's classic builder made, loaded here: the steps whose history entries read alike hit."""
    mine = docker_client(daemon.host)
    mine("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest")
    mine("save", "-o", str(tmp_path / "busybox.tar"), "busybox:latest")
    dockerd.cli("load", "-i", str(tmp_path / "busybox.tar"))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nARG V=1\nRUN echo one > /one\nENV A=1\nWORKDIR /app\n"
                                    "RUN echo $V > v\n")
    dockerd.cli("build", "-t", "theirs:1", str(ctx), env=CLASSIC)
    dockerd.cli("save", "-o", str(tmp_path / "theirs.tar"), "theirs:1")
    mine("load", "-i", str(tmp_path / "theirs.tar"))
    out = mine("build", "--cache-from", "theirs:1", "-t", "mine:1", str(ctx), env=CLASSIC).out
    assert cached_steps(out) == [2, 3, 4, 5, 6] and "Running in" not in out
    assert mine.image_id("mine:1") == dockerd.cli.image_id("theirs:1")  # the last step is the source itself
    assert mine("run", "--rm", "mine:1", "cat", "/one", "/app/v").out == "one\n1\n"
