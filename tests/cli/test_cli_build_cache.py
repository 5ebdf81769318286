"""portside build: --rm / --force-rm (what is left of RUN containers, as dockerd) and --cache-from."""

from __future__ import annotations

import os
import pathlib
import re

import pytest

from tests.helpers import Daemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds run containers: needs root")

FAILING = "FROM busybox\nRUN echo hi > /hi\nRUN exit 3\n"


def containers(daemon: Daemon) -> list[str]:
    """``ps -a`` as "status | command" lines (the "ago" part dropped)."""
    out = daemon.cli("ps", "-a", "--no-trunc", "--format", "{{.Status}} | {{.Command}}").stdout.decode()
    return sorted(re.sub(r" (About an? \w+|Less than a second|\d+ \w+) ago", "", line) for line in out.splitlines())


def running_in(out: str) -> list[str]:
    return re.findall(r"^ ---> Running in ([0-9a-f]{12})$", out, re.M)


def removed(out: str) -> list[str]:
    return re.findall(r"^Removing intermediate container ([0-9a-f]{12})$", out, re.M)


def test_rm_false_keeps_every_run_container(daemon: Daemon, busybox_image: str, tmp_path: pathlib.Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo one > /one\nENV A=1\nRUN echo two > /two\n")
    out = daemon.cli("build", "--rm=false", "-t", "kept:1", str(tmp_path)).stdout.decode()
    assert len(running_in(out)) == 2 and removed(out) == []
    assert containers(daemon) == ['Exited (0) | "/bin/sh -c \'echo one > /one\'"',
                                  'Exited (0) | "/bin/sh -c \'echo two > /two\'"']
    ids = daemon.cli("ps", "-aq", "--no-trunc").stdout.decode().split()
    assert sorted(i[:12] for i in ids) == sorted(running_in(out))
    daemon.cli("rm", *ids)
    assert daemon.cli("run", "--rm", "kept:1", "cat", "/one", "/two").stdout == b"one\ntwo\n"


def test_failed_step_container_kept_unless_force_rm(daemon: Daemon, busybox_image: str,
                                                    tmp_path: pathlib.Path) -> None:
    (tmp_path / "Dockerfile").write_text(FAILING)
    # default (rm): the step that worked is cleaned up, the failed one stays for inspection
    r = daemon.cli("build", str(tmp_path), check=False)
    out = r.stdout.decode()
    assert r.returncode == 3 and b"returned a non-zero code: 3" in r.stderr
    started = running_in(out)
    assert len(started) == 2 and removed(out) == started[:1]
    assert containers(daemon) == ['Exited (3) | "/bin/sh -c \'exit 3\'"']
    assert daemon.cli("ps", "-aq").stdout.decode().split() == started[1:]
    assert daemon.cli("logs", started[1]).returncode == 0
    daemon.cli("rm", started[1])

    # --force-rm: the failed step's container goes too (the first step is a cache hit now)
    r = daemon.cli("build", "--force-rm", str(tmp_path), check=False)
    out = r.stdout.decode()
    assert r.returncode == 3 and len(running_in(out)) == 1 and removed(out) == running_in(out)
    assert containers(daemon) == []

    # --rm=false: nothing is removed; with --force-rm as well, everything is
    r = daemon.cli("build", "--no-cache", "--rm=false", str(tmp_path), check=False)
    assert r.returncode == 3 and removed(r.stdout.decode()) == []
    assert containers(daemon) == ['Exited (0) | "/bin/sh -c \'echo hi > /hi\'"',
                                  'Exited (3) | "/bin/sh -c \'exit 3\'"']
    daemon.cli("rm", *daemon.cli("ps", "-aq").stdout.decode().split())
    r = daemon.cli("build", "--no-cache", "--rm=false", "--force-rm", str(tmp_path), check=False)
    assert r.returncode == 3 and len(removed(r.stdout.decode())) == 2
    assert containers(daemon) == []


def test_cache_from_after_save_rmi_load(daemon: Daemon, busybox_image: str, tmp_path: pathlib.Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo one > /one\nENV A=1\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n")
    (ctx / "f").write_text("F\n")
    iid = tmp_path / "iid"
    daemon.cli("build", "-q", "--iidfile", str(iid), "-t", "src:1", str(ctx))
    saved = str(tmp_path / "src.tar")
    daemon.cli("save", "-o", saved, "src:1")
    daemon.cli("rmi", "src:1")  # its intermediate images go with it: the local cache has nothing left
    daemon.cli("load", "-i", saved)
    # docker's --cache-from is a StringSlice: repeatable, and comma-separated values are several images
    out = daemon.cli("build", "--iidfile", str(tmp_path / "again"), "--cache-from", "nothere:1,src:1",
                     "--cache-from", "other:2", str(ctx)).stdout.decode()
    assert out.count(" ---> Using cache\n") == 4 and " ---> Running in" not in out
    assert (tmp_path / "again").read_text() == iid.read_text()
