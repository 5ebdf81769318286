"""POST /build: real builds (RUN in real containers) from a tar context, Docker's JSON stream."""

from __future__ import annotations

import io
import json
import os
import tarfile
import urllib.parse
from typing import Any

import pytest

from tests.helpers import Daemon, start_daemon, stop_daemon, stop_monitor, remove_containers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds run containers: needs root")


def context_tar(files: dict[str, str | bytes], modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(raw), (modes or {}).get(name, 0o644), 1_700_000_000
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def build(daemon: Daemon, files: dict[str, str | bytes], **query: Any) -> tuple[int, list[dict[str, Any]]]:
    params: list[tuple[str, str]] = []
    for key, value in query.items():
        for v in value if isinstance(value, list) else [value]:
            params.append((key, json.dumps(v) if isinstance(v, dict) else str(v)))
    status, _, body = daemon.api.request("POST", "/build?" + urllib.parse.urlencode(params), context_tar(files),
                                         {"Content-Type": "application/x-tar"})
    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    return status, lines


def text(lines: list[dict[str, Any]]) -> str:
    return "".join(line.get("stream", "") for line in lines)


def cached_steps(lines: list[dict[str, Any]]) -> list[int]:
    """The numbers of the steps that printed `` ---> Using cache``."""
    steps, current = [], 0
    for chunk in text(lines).splitlines():
        if chunk.startswith("Step "):
            current = int(chunk.split()[1].split("/")[0])
        elif chunk == " ---> Using cache":
            steps.append(current)
    return steps


def run(daemon: Daemon, image: str, *cmd: str) -> str:
    return daemon.cli("run", "--rm", image, *cmd).stdout.decode()


MULTI = """\
ARG BASE=busybox
FROM $BASE AS builder
ARG GREETING=hello
ENV OUT=/out
WORKDIR /src
COPY greet.txt ./
RUN mkdir -p $OUT && echo "$GREETING from $(cat greet.txt)" > $OUT/message && echo built
FROM busybox AS unused
RUN exit 7
FROM busybox
COPY --from=builder /out/message /app/message
USER nobody
WORKDIR /app
CMD ["cat", "message"]
"""


def test_multi_stage_build_args_user_workdir(daemon: Daemon, busybox_image: str) -> None:
    status, lines = build(daemon, {"Dockerfile": MULTI, "greet.txt": "world"}, t=["multi:1", "multi:2"],
                          buildargs={"GREETING": "hi"})
    assert status == 200
    out = text(lines)
    assert not [line for line in lines if "error" in line], lines
    assert "Step 1/12 : ARG BASE=busybox\nStep 2/12 : FROM $BASE AS builder\n" in out  # the unused stage is
    # skipped, not counted; an ARG before FROM is a step, as in the classic builder
    assert " ---> Running in " in out and "built\n" in out
    assert "Removing intermediate container" in out
    aux = [line["aux"]["ID"] for line in lines if "aux" in line]
    assert len(aux) == 1 and aux[0].startswith("sha256:")
    assert f"Successfully built {aux[0][7:19]}\n" in out
    assert "Successfully tagged multi:1\n" in out and "Successfully tagged multi:2\n" in out
    assert run(daemon, "multi:1") == "hi from world\n"
    assert run(daemon, "multi:2", "pwd") == "/app\n"
    assert run(daemon, "multi:1", "stat", "-c", "%U %a", "/app") == "root 755\n"  # WORKDIR made it in the image
    assert run(daemon, "multi:2", "id", "-u") == "65534\n"
    inspect = daemon.api.json("GET", "/images/multi:1/json")
    assert inspect["Id"] == aux[0]
    assert inspect["Config"]["User"] == "nobody" and inspect["Config"]["Cmd"] == ["cat", "message"]
    history = daemon.api.json("GET", "/images/multi:1/history")
    assert history[0]["CreatedBy"] == '/bin/sh -c #(nop)  CMD ["cat" "message"]'  # Go's %q of a list


def test_failing_run_reports_exit_code_and_tags_nothing(daemon: Daemon, busybox_image: str) -> None:
    status, lines = build(daemon, {"Dockerfile": "FROM busybox\nRUN echo before\nRUN exit 3\n"}, t="broken")
    assert status == 200
    errors = [line for line in lines if "errorDetail" in line]
    assert errors == [{"errorDetail": {"code": 3, "message": "The command '/bin/sh -c exit 3' returned a "
                                       "non-zero code: 3"},
                       "error": "The command '/bin/sh -c exit 3' returned a non-zero code: 3"}]
    assert "before\n" in text(lines)
    assert daemon.api.request("GET", "/images/broken/json")[0] == 404
    # as dockerd (rm=1, forcerm=0): the failed step's container stays for inspection, the other one is gone
    left = daemon.api.json("GET", "/containers/json?all=1")
    assert [(c["Command"], c["State"]) for c in left] == [("/bin/sh -c 'exit 3'", "exited")]


def test_missing_copy_source_is_named(daemon: Daemon, busybox_image: str) -> None:
    _, lines = build(daemon, {"Dockerfile": "FROM busybox\nCOPY nothere /x\n"})
    assert lines[-1]["error"] == ("COPY failed: file not found in build context or excluded by .dockerignore: "
                                  "stat nothere: file does not exist")


def test_cache_hits_and_misses_step_by_step(daemon: Daemon, busybox_image: str) -> None:
    dockerfile = "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nRUN cat /a.txt /b.txt > /ab\n"
    files = {"Dockerfile": dockerfile, "a.txt": "A", "b.txt": "B"}
    _, first = build(daemon, files)
    assert " ---> Using cache" not in text(first)

    _, second = build(daemon, files)
    assert cached_steps(second) == [2, 3, 4, 5]
    assert [line for line in second if "aux" in line] == [line for line in first if "aux" in line]
    _, third = build(daemon, {**files, "b.txt": "changed"})
    assert cached_steps(third) == [2, 3]
    _, fourth = build(daemon, files, nocache=1)
    assert cached_steps(fourth) == []
    image = [line["aux"]["ID"] for line in fourth if "aux" in line][0]
    assert run(daemon, image, "cat", "/ab") == "AB"


def test_copy_semantics(daemon: Daemon, busybox_image: str) -> None:
    files = {
        "Dockerfile": "FROM busybox\nCOPY dir /dest/\nCOPY *.txt /texts/\nCOPY --chown=1:2 --chmod=600 one.txt /owned\n"
                      "ADD arch.tar /unpacked/\n",
        "dir/sub/f": "f", "one.txt": "1", "two.txt": "2", "arch.tar": context_tar({"inside/x": "x"}),
    }
    _, lines = build(daemon, files, t="copies")
    assert not [line for line in lines if "error" in line], lines
    listing = run(daemon, "copies", "sh", "-c",
                  "ls /dest /texts /unpacked/inside; stat -c '%u:%g %a' /owned; cat /dest/sub/f")
    assert listing.split("\n") == ["/dest:", "sub", "", "/texts:", "one.txt", "two.txt", "", "/unpacked/inside:", "x",
                                   "1:2 600", "f"]


def test_reproducible_in_two_fresh_roots(daemon_dirs: tuple[str, str, str], busybox_tar: str) -> None:
    files = {"Dockerfile": "FROM busybox\nENV A=1\nRUN echo x > /x && mkdir /d\nCOPY f /d/f\nCMD [\"sh\"]\n",
             "f": "content"}
    ids, docs = [], []
    for n in range(2):
        base = os.path.join(os.path.dirname(daemon_dirs[0]), f"r{n}")  # short: a socket path is limited
        os.makedirs(base)
        root, sock, log = (os.path.join(base, p) for p in ("root", "s.sock", "log"))
        d = start_daemon(root, sock, log)
        try:
            saved = os.path.join(os.path.dirname(daemon_dirs[0]), "busybox-image.tar")
            if n == 0:  # the same base in both roots: an import's config says when it was made
                d.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
                d.cli("save", "-o", saved, "busybox:latest")
            else:
                d.cli("load", "-i", saved)
            _, lines = build(d, files)
            ids.append([line["aux"]["ID"] for line in lines if "aux" in line])
            docs.append(d.api.json("GET", f"/images/{ids[-1][0]}/json")["RootFS"]["Layers"])
        finally:
            remove_containers(d)
            stop_daemon(d)
            stop_monitor(d)
    assert docs[0] == docs[1]
    assert ids[0] and ids[0] == ids[1]


def test_metadata_instructions_onbuild_and_heredoc(daemon: Daemon, busybox_image: str) -> None:
    parent = ("FROM busybox\nONBUILD RUN echo triggered > /t\nHEALTHCHECK --interval=5s CMD true\n"
              "EXPOSE 80 53/udp\nVOLUME /data\nSTOPSIGNAL SIGINT\nSHELL [\"/bin/sh\", \"-c\"]\n"
              "RUN <<EOF\necho heredoc > /h\necho second >> /h\nEOF\nENTRYPOINT [\"cat\"]\n"
              "ENV WHO=me\nCOPY <<A <<\"B\" /docs/\nhello $WHO\nA\nliteral $WHO\nB\n")
    _, lines = build(daemon, {"Dockerfile": parent}, t="parent")
    assert not [line for line in lines if "error" in line], lines
    config = daemon.api.json("GET", "/images/parent/json")["Config"]
    assert config["OnBuild"] == ["RUN echo triggered > /t"]
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}
    assert config["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}}
    assert config["Volumes"] == {"/data": {}} and config["StopSignal"] == "SIGINT"
    assert config["Entrypoint"] == ["cat"]
    assert run(daemon, "parent", "/h") == "heredoc\nsecond\n"
    assert run(daemon, "parent", "/docs/A", "/docs/B") == "hello me\nliteral $WHO\n"
    history = daemon.api.json("GET", "/images/parent/history")
    assert [h["Size"] == 0 for h in history[:5]] == [False, True, True, False, True]

    _, lines = build(daemon, {"Dockerfile": "FROM parent\nRUN cat /t\n"}, t="child")
    out = text(lines)
    assert "# Executing 1 build trigger\n" in out and "triggered\n" in out
    assert daemon.api.json("GET", "/images/child/json")["Config"]["OnBuild"] is None


def test_target_stops_at_the_stage(daemon: Daemon, busybox_image: str) -> None:
    dockerfile = "FROM busybox AS first\nRUN echo 1 > /one\nFROM first AS second\nRUN exit 9\n"
    _, lines = build(daemon, {"Dockerfile": dockerfile}, target="first", t="first")
    assert not [line for line in lines if "error" in line], lines
    assert "Step 2/2 : RUN echo 1 > /one\n" in text(lines)
    _, lines = build(daemon, {"Dockerfile": dockerfile}, target="nosuch")
    assert lines[-1]["error"] == "failed to reach build target nosuch in Dockerfile"


def test_build_prune_forgets_the_cache(daemon: Daemon, busybox_image: str) -> None:
    files = {"Dockerfile": "FROM busybox\nRUN echo x > /x\n"}
    build(daemon, files)
    pruned = daemon.api.json("POST", "/build/prune")
    assert len(pruned["CachesDeleted"]) == 1 and pruned["SpaceReclaimed"] == 0
    _, lines = build(daemon, files)
    assert " ---> Using cache" not in text(lines)


def test_bad_query_is_refused_before_the_stream(daemon: Daemon, busybox_image: str) -> None:
    status, _, body = daemon.api.request("POST", "/build?t=Bad%3ATag", context_tar({"Dockerfile": "FROM busybox\n"}),
                                         {"Content-Type": "application/x-tar"})
    assert status == 400 and b"invalid reference format" in body
    status, _, body = daemon.api.request("POST", "/build?buildargs=%5B1%5D", context_tar({"Dockerfile": "FROM x\n"}),
                                         {"Content-Type": "application/x-tar"})
    assert status == 400


def test_context_symlinks_stay_links_and_cannot_reach_out(daemon: Daemon, busybox_image: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        df = b"FROM busybox\nCOPY . /ctx/\nCOPY abs /copied\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        tar.addfile(info, io.BytesIO(df))
        link = tarfile.TarInfo("abs")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/hostname"
        tar.addfile(link)
    status, _, body = daemon.api.request("POST", "/build?t=links", buf.getvalue(), {"Content-Type": "application/x-tar"})
    lines = [json.loads(line) for line in body.decode().splitlines()]
    # the link is followed inside the context, where /etc/hostname does not exist
    assert lines[-1]["error"] == ("COPY failed: file not found in build context or excluded by .dockerignore: "
                                  "stat abs: file does not exist")
    buf2 = io.BytesIO()
    with tarfile.open(fileobj=buf2, mode="w") as tar:
        link = tarfile.TarInfo("out")
        link.type, link.linkname = tarfile.SYMTYPE, "/tmp"
        tar.addfile(link)
        evil = tarfile.TarInfo("out/escaped")
        tar.addfile(evil, io.BytesIO(b""))
    status, _, body = daemon.api.request("POST", "/build", buf2.getvalue(), {"Content-Type": "application/x-tar"})
    assert status == 400 and not os.path.exists("/tmp/escaped")
