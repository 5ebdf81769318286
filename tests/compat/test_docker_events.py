"""Events through the real clients: the docker CLI's ``events`` and docker-py's ``api.events`` against portside.

The containers are real; what is checked is what the clients print or
decode: the lines, the JSON, the filters, ``--since``/``--until`` in the
forms the CLI converts (Unix time, RFC 3339, durations), and a live stream
that a thread consumes while a container runs.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import threading
import time
from typing import Any

import pytest

from conftest import DockerCLI

pytestmark = [pytest.mark.root, pytest.mark.peers]



@pytest.fixture
def docker(daemon: Any, docker_client: Any) -> DockerCLI:
    cli: DockerCLI = docker_client(daemon.host)
    return cli


@pytest.fixture
def busybox(docker: DockerCLI, busybox_tar: str) -> str:
    return docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()


def _clis(docker: DockerCLI) -> list[DockerCLI]:
    """The docker CLI on PATH, and Debian's 20.10 client when it is installed too."""
    clis = [docker]
    debian = shutil.which("docker", path="/usr/bin")
    if debian and debian != docker.binary:
        clis.append(DockerCLI(debian, docker.host, docker.config_dir))
    return clis


def test_events_since_until_with_filters_and_formats(docker: DockerCLI, busybox: str) -> None:
    t0 = time.time()
    assert docker("run", "--name", "ev-cli", "--label", "team=a", "busybox", "sh", "-c", "exit 4", check=False).rc == 4
    cid = docker("inspect", "-f", "{{.Id}}", "ev-cli").out.strip()
    docker("rm", "ev-cli")
    t1 = time.time()
    for cli in _clis(docker):
        window = ("--since", f"{t0:.6f}", "--until", f"{t1:.6f}")
        r = cli("events", *window, "--filter", "container=ev-cli",
                "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.team}}")
        assert r.out.splitlines() == ["container create ev-cli a", "container attach ev-cli a",
                                      "container start ev-cli a", "container die ev-cli a",
                                      "container destroy ev-cli a"], (cli.binary, r.out)
        # two filters of different keys must both hold; two of one key, either
        r = cli("events", *window, "-f", "container=ev-cli", "-f", "event=die", "-f", "event=destroy")
        lines = r.out.splitlines()
        assert len(lines) == 2, lines
        die = (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container die " + cid +
               r" \((execDuration=\d+, )?exitCode=4, image=busybox, name=ev-cli, team=a\)")
        assert re.fullmatch(die, lines[0]), lines
        assert lines[1].endswith(f" container destroy {cid} (image=busybox, name=ev-cli, team=a)"), lines
        # "--format json" came with docker 23; "{{json .}}" is what 20.10 knows
        docs = [json.loads(line) for line in cli("events", *window, "-f", "label=team=a", "-f", "event=start",
                                                 "--format", "{{json .}}").out.splitlines()]
        if cli is docker:
            assert cli("events", *window, "-f", "label=team=a", "-f", "event=start", "--format", "json").out == (
                json.dumps(docs[0], separators=(",", ":")) + "\n")
        assert len(docs) == 1
        assert {k: docs[0][k] for k in ("status", "id", "from", "Type", "Action", "scope")} == {
            "status": "start", "id": cid, "from": "busybox", "Type": "container", "Action": "start",
            "scope": "local"}
        assert docs[0]["Actor"] == {"ID": cid, "Attributes": {"image": "busybox", "name": "ev-cli", "team": "a"}}
        assert t0 <= docs[0]["timeNano"] / 1e9 <= t1 and docs[0]["time"] == docs[0]["timeNano"] // 10**9


def test_since_as_rfc3339_and_as_a_duration(docker: DockerCLI, busybox: str) -> None:
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    docker("volume", "create", "ev-vol")
    until = f"{time.time():.3f}"
    rfc = start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for since in (rfc, "1m"):
        r = docker("events", "--since", since, "--until", until, "-f", "type=volume", "-f", "volume=ev-vol",
                   "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}")
        assert r.out == "create ev-vol local\n", (since, r.out)


def test_bad_filter_and_bad_template(docker: DockerCLI, busybox: str) -> None:
    r = docker("events", "--since", "0", "--until", "1", "--filter", "colour=red", check=False)
    assert (r.rc, r.err) == (1, "Error response from daemon: invalid filter 'colour'\n")
    r = docker("events", "--since", "0", "--until", "1", "--format", "{{.Nope}}", check=False)
    assert r.rc == 64 and "can't evaluate field Nope" in r.err


def test_live_stream_follows_a_container_until_until(docker: DockerCLI, busybox: str) -> None:
    until = time.time() + 4
    proc = subprocess.Popen([docker.binary, "events", "--until", f"{until:.3f}", "-f", "container=ev-live",
                             "--format", "{{.Action}}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=docker.env())
    try:
        time.sleep(0.5)
        docker("run", "--rm", "--name", "ev-live", "busybox", "true")
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, err) == (0, b"")
    assert out.decode().splitlines() == ["create", "attach", "start", "die", "destroy"]


def test_docker_py_events_in_a_thread_while_a_container_runs(daemon: Any, busybox: str) -> None:
    docker_py = pytest.importorskip("docker")
    client = docker_py.DockerClient(base_url=daemon.host, version="1.43", timeout=30)
    seen: list[dict[str, Any]] = []
    stream = client.api.events(decode=True, filters={"container": "ev-py"})

    def consume() -> None:
        for event in stream:
            seen.append(event)
            if event.get("Action") == "destroy":
                return

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    try:
        container = client.containers.run("busybox", ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
                                          name="ev-py", detach=True, labels={"via": "docker-py"})
        assert container.exec_run(["sh", "-c", "exit 5"]).exit_code == 5
        container.stop(timeout=5)
        container.remove()
        reader.join(timeout=20)
    finally:
        stream.close()
        client.close()
    assert not reader.is_alive(), seen
    assert [e["Action"] for e in seen] == ["create", "start", "exec_create: sh -c exit 5", "exec_start: sh -c exit 5",
                                           "exec_die", "kill", "die", "stop", "destroy"], seen
    for event in seen:
        assert (event["Type"], event["status"], event["id"], event["from"]) == (
            "container", event["Action"], container.id, "busybox")
        assert event["Actor"]["Attributes"]["via"] == "docker-py"
    exec_die, kill, die = seen[4], seen[5], seen[6]
    assert exec_die["Actor"]["Attributes"]["exitCode"] == "5"
    assert exec_die["Actor"]["Attributes"]["execID"] == seen[2]["Actor"]["Attributes"]["execID"]
    assert kill["Actor"]["Attributes"]["signal"] == "15"
    assert die["Actor"]["Attributes"]["exitCode"] == "0"
