"""``portside events`` end to end: the same lifecycle against portside and the private dockerd 20.10.

Each test that takes ``engine`` runs twice (test_cli_containers.py's
fixtures): the events a scripted lifecycle produces, replayed with
``--since``/``--until``, must be the ones dockerd produces, in its order and
with its attributes.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import time

from test_cli_containers import FOREVER, Engine, dockerd_engine, engine, err, out  # noqa: F401 (fixtures)


def _window(e: Engine, since: float, *args: str) -> list[str]:
    r = e.cli("events", "--since", f"{since:.9f}", "--until", f"{time.time():.9f}", *args, timeout=30)
    return out(r).splitlines()


def test_a_container_lifecycle_replays_as_dockerd_reports_it(engine: Engine) -> None:
    e = engine
    t0 = time.time()
    e.cli("create", "--name", "ev1", "--label", "team=a", "busybox", "sh", "-c", FOREVER)
    e.cli("start", "ev1")
    e.cli("exec", "ev1", "true")
    e.cli("pause", "ev1")
    e.cli("unpause", "ev1")
    e.cli("rename", "ev1", "ev2")
    e.cli("stop", "-t", "5", "ev2")
    e.cli("rm", "ev2")
    lines = _window(e, t0, "--filter", "type=container",
                    "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.team}}")
    assert lines == [
        "create ev1 a", "start ev1 a", "exec_create: true  ev1 a", "exec_start: true  ev1 a", "exec_die ev1 a",
        "pause ev1 a", "unpause ev1 a", "rename ev2 a", "kill ev2 a", "die ev2 a", "stop ev2 a", "destroy ev2 a",
    ], lines


def test_default_lines_and_json_are_docker_s(engine: Engine) -> None:
    e = engine
    t0 = time.time()
    r = e.cli("run", "--name", "ev3", "--label", "team=b", "busybox", "sh", "-c", "exit 3", check=False)
    assert r.returncode == 3
    cid = json.loads(out(e.cli("inspect", "ev3")))[0]["Id"]
    e.cli("rm", "ev3")
    lines = _window(e, t0, "--filter", "container=ev3", "--filter", "event=die")
    assert len(lines) == 1, lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container die " + cid +
                        r" \(((execDuration=0|exitCode=3|image=busybox|name=ev3|team=b)(, |\)$))+", lines[0]), lines[0]

    docs = [json.loads(line) for line in _window(e, t0, "--filter", "container=ev3", "--format", "json")]
    assert [d["Action"] for d in docs] == ["create", "attach", "start", "die", "destroy"], docs
    die = docs[3]
    assert list(die) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert (die["status"], die["id"], die["from"], die["Type"], die["scope"]) == ("die", cid, "busybox", "container",
                                                                                 "local")
    assert die["Actor"]["ID"] == cid
    assert {k: v for k, v in die["Actor"]["Attributes"].items() if k != "execDuration"} == {
        "exitCode": "3", "image": "busybox", "name": "ev3", "team": "b"}
    assert die["time"] == die["timeNano"] // 10**9 and t0 <= die["timeNano"] / 1e9 <= time.time()


def test_image_tag_and_untag(engine: Engine) -> None:
    e = engine
    image_id = json.loads(out(e.cli("image", "inspect", "busybox")))[0]["Id"]
    t0 = time.time()
    e.cli("tag", "busybox", "evtag:1")
    e.cli("rmi", "evtag:1")
    docs = [json.loads(line) for line in _window(e, t0, "--filter", "type=image", "--format", "json")]
    assert [(d["Action"], d["id"], d["Actor"]["Attributes"]["name"]) for d in docs] == [
        ("tag", image_id, "evtag:1"), ("untag", image_id, image_id)], docs
    assert "from" not in docs[0]
    # an image filter matches the image by ID or by name, with or without tag
    assert len(_window(e, t0, "--filter", "image=evtag")) == 1


def test_until_ahead_ends_the_live_stream_when_reached(engine: Engine) -> None:
    e = engine
    until = time.time() + 3
    # as dockerd, an --until without --since replays the kept events first: the name tells ours apart
    proc = subprocess.Popen(e.argv("events", "--until", f"{until:.3f}", "--filter", "event=start",
                                   "--filter", "container=ev4",
                                   "--format", "{{.Actor.Attributes.name}}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **e.env})
    try:
        time.sleep(0.5)  # the CLI's request is in
        e.cli("run", "--rm", "--name", "ev4", "busybox", "true")
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.time() >= until
    assert (proc.returncode, stdout, stderr) == (0, b"ev4\n", b"")


def test_bad_filters_and_times(engine: Engine) -> None:
    e = engine
    r = e.cli("events", "--filter", "nonsense", check=False)
    assert r.returncode == 125
    assert "bad format of filter (expected name=value)" in err(r)
    r = e.cli("events", "--since", "yesterday", check=False)
    assert r.returncode != 0 and "yesterday" in err(r), err(r)


# What dockerd 20.10 reports for the tour below, IDs replaced by ID and the
# times cut off; newer dockerds (and portside) add execDuration to die, dropped here.
TOUR = """\
volume create xv (driver=local)
volume create xv (driver=local)
volume create ID (driver=local)
container create ID (image=busybox, name=x1)
volume mount xv (container=ID, destination=/data, driver=local, propagation=, read/write=false)
volume mount ID (container=ID, destination=/data2, driver=local, propagation=, read/write=true)
container start ID (image=busybox, name=x1)
container kill ID (image=busybox, name=x1, signal=1)
container create ID (image=busybox, name=x2)
container start ID (image=busybox, name=x2)
container top ID (image=busybox, name=x2)
container update ID (image=busybox, name=x2)
container archive-path ID (image=busybox, name=x2)
container extract-to-dir ID (image=busybox, name=x2)
container export ID (image=busybox, name=x2)
container pause ID (image=busybox, name=x2)
image tag sha256:ID (name=evcommit:1)
container commit ID (comment=msg, image=busybox, imageID=sha256:ID, imageRef=evcommit:1, name=x2)
container unpause ID (image=busybox, name=x2)
container kill ID (image=busybox, name=x2, signal=15)
container die ID (exitCode=0, image=busybox, name=x2)
container stop ID (image=busybox, name=x2)
container start ID (image=busybox, name=x2)
container restart ID (image=busybox, name=x2)
container kill ID (image=busybox, name=x2, signal=9)
container die ID (exitCode=137, image=busybox, name=x2)
container destroy ID (image=busybox, name=x2)
image save sha256:ID (name=sha256:ID)
image untag sha256:ID (name=sha256:ID)
image delete sha256:ID (name=sha256:ID)
image load sha256:ID (name=sha256:ID)
image untag sha256:ID (name=sha256:ID)
image delete sha256:ID (name=sha256:ID)
container kill ID (image=busybox, name=x1, signal=9)
container die ID (exitCode=137, image=busybox, name=x1)
volume unmount xv (container=ID, driver=local)
volume unmount ID (container=ID, driver=local)
volume destroy ID (driver=local)
container destroy ID (image=busybox, name=x1)
volume destroy xv (driver=local)
"""


def test_every_action_of_a_tour_as_dockerd(engine: Engine, tmp_path: pathlib.Path) -> None:
    e = engine
    t0 = time.time()
    e.cli("volume", "create", "xv")
    e.cli("run", "-d", "--name", "x1", "-v", "xv:/data:ro", "-v", "/data2", "busybox", "sh", "-c", FOREVER)
    e.cli("kill", "-s", "HUP", "x1")  # the container's init ignores it: no die
    e.cli("run", "-d", "--name", "x2", "busybox", "sh", "-c", FOREVER)
    e.cli("top", "x2")
    e.cli("update", "--cpu-shares", "512", "x2")
    e.cli("cp", "x2:/etc/hostname", str(tmp_path / "h"))
    e.cli("cp", str(tmp_path / "h"), "x2:/tmp/")
    e.cli("export", "-o", str(tmp_path / "x.tar"), "x2")
    e.cli("commit", "-m", "msg", "x2", "evcommit:1")
    e.cli("restart", "-t", "1", "x2")
    e.cli("rm", "-f", "x2")
    e.cli("save", "-o", str(tmp_path / "s.tar"), "evcommit:1")
    e.cli("rmi", "evcommit:1")
    e.cli("load", "-i", str(tmp_path / "s.tar"))
    e.cli("rmi", "evcommit:1")
    e.cli("rm", "-f", "-v", "x1")
    e.cli("volume", "rm", "xv")
    lines = [re.sub(r"execDuration=\d+, ", "", re.sub(r"[0-9a-f]{64}", "ID", line.split(" ", 1)[1]))
             for line in _window(e, t0)]
    # a container's volumes are mounted and unmounted in no set order (dockerd walks a Go map): each run of
    # mount (or unmount) lines is compared as a set
    i = 0
    while i < len(lines):
        kind = next((k for k in ("volume mount ", "volume unmount ") if lines[i].startswith(k)), None)
        j = i + 1
        while kind and j < len(lines) and lines[j].startswith(kind):
            j += 1
        lines[i:j] = sorted(lines[i:j], reverse=True)
        i = j
    assert "".join(line + "\n" for line in lines) == TOUR
