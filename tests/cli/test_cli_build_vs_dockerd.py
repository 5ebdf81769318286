"""The same Dockerfiles built by portside and by dockerd 20.10's classic builder give the same images.

dockerd is the private one of test_cli_containers.py (its own root and
socket, API 1.41, the classic builder: its default). Both engines build each
context with ``portside build``; the images are compared through ``save``:

* the merged filesystem (every layer applied in order, whiteouts and opaque
  directories honoured): each path's kind, mode, owner, size, link target,
  device and content; not mtimes, which differ by nature (portside clamps
  them to the build's epoch);
* the config: Env, Cmd, Entrypoint, User, WorkingDir, ExposedPorts, Volumes,
  Labels, StopSignal, Shell, Healthcheck, OnBuild;
* the history's ``created_by`` lines and ``empty_layer`` flags, COPY/ADD's
  content hashes left out (each engine hashes in its own way).

Left out on purpose: ``COPY --chmod`` (dockerd 20.10's classic builder says
it requires BuildKit) and here-documents (BuildKit only).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import pathlib
import posixpath
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import debian
from test_cli_containers import Engine, dockerd_engine  # noqa: F401  (a fixture)

pytestmark = pytest.mark.root

Entry = tuple[Any, ...]


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class Dir:
    mode: int


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), 0o640, 1_600_000_000, 7, 8
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("inside/link")
        link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "a.txt", 1_600_000_000
        tf.addfile(link)
    return buf.getvalue()


# Each case: the context's files (name → content, (content, mode), Symlink, Dir), and the build args
# (NAME: value) and other flags ("--flag": value; a blank after the flag's name makes a second key).
CASES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "multi-stage": ({
        "Dockerfile": """\
ARG BASE=busybox
FROM $BASE AS builder
ARG GREETING=hello
ENV OUT=/out PATH=/opt/bin:$PATH
WORKDIR /src
COPY greet.txt ./
RUN mkdir -p $OUT/sub && echo "$GREETING from $(cat greet.txt)" > $OUT/message && ln -s message $OUT/link \\
    && chmod 600 $OUT/message && touch $OUT/sub/empty
FROM busybox AS unused
RUN echo unused > /unused
FROM busybox
LABEL org.example.version=1 "quoted key"="a b"
ENV A=1 B="two words" C=${A}x
COPY --from=builder /out /app/
COPY --from=builder /out/message /single
COPY --from=0 /src/greet.txt /greet-copy
EXPOSE 80 53/udp
VOLUME /data /cache
USER nobody
WORKDIR /app/work
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat ../message"]
STOPSIGNAL SIGQUIT
""",
        "greet.txt": "world\n",
    }, {"GREETING": "hi"}),

    "context-copies": ({
        "Dockerfile": """\
FROM busybox
COPY . /ctx/
COPY *.txt /texts/
COPY dir/sub?/*.c /csrc/
COPY --chown=1000:1000 one.txt /owned/
COPY --chown=nobody:nogroup dir /owned-dir/
COPY --chown=daemon one.txt two.txt /owned-by-name/
COPY exec.sh /usr/local/bin/
COPY dir/sub1 /deep/new/parents/
ADD arch.tar /unpacked/
ADD arch.tar.gz /unpacked-gz
ADD one.txt /added.txt
COPY one.txt /etc/
COPY one.txt /renamed
""",
        ".dockerignore": "secret*\nlogs/\n!logs/keep.log\n**/*.tmp\n",
        "one.txt": "1\n", "two.txt": ("2\n", 0o600), "secret.key": "k", "logs/a.log": "a", "logs/keep.log": "kept",
        "dir/sub1/a.c": "a", "dir/sub1/b.h": "b", "dir/sub2/c.c": ("c", 0o755), "dir/sub2/x.tmp": "t",
        "dir/sub10/no.c": "no", "exec.sh": ("#!/bin/sh\necho hi\n", 0o755),
        "arch.tar": _tar({"inside/a.txt": b"A\n", "inside/deeper/b.txt": b"B\n"}),
        "arch.tar.gz": gzip.compress(_tar({"gz/c.txt": b"C\n"}), mtime=0),
    }, {}),

    "context-edges": ({
        "Dockerfile": """\
FROM busybox
WORKDIR /work
COPY link-to-one ./
COPY tree/ rel/
COPY --chown=5:6 one.txt /a/b/c/
COPY one.txt /a/b/c/d.txt
COPY setuid /usr/local/bin/
COPY modes /modes/
COPY one.txt /etc/passwd-copy
COPY one.txt /etc/hostname
COPY ["name with spaces.txt", "/quoted/"]
ADD --chown=9:9 arch.tar /chowned-tar/
ADD packed.tar.xz packed.tar.bz2 /compressed/
COPY tree/empty /was-empty
""",
        "one.txt": "1\n", "link-to-one": Symlink("one.txt"), "tree/link": Symlink("../one.txt"),
        "setuid": ("#!/bin/sh\n", 0o4755), "modes/group-writable": ("g", 0o775), "modes/setgid": ("s", 0o2755),
        "modes/private": ("p", 0o600), "modes/world-writable": ("w", 0o666), "modes/read-only": ("r", 0o444),
        "modes/others-exec": ("o", 0o701), "modes/d700": Dir(0o700), "modes/d700/f": "f", "modes/d1777": Dir(0o1777),
        "modes/d1777/f": "f", "modes/d775": Dir(0o775), "modes/d2755": Dir(0o2755), "modes/d2755/f": "f",
        "name with spaces.txt": "s",
        "tree/private/x": ("x", 0o600), "tree/.hidden": "h", "tree/empty/.keep": "",
        "arch.tar": _tar({"t/a.txt": b"A\n"}),
        "packed.tar.xz": lzma.compress(_tar({"xz/a": b"xz\n"})),
        "packed.tar.bz2": bz2.compress(_tar({"bz/a": b"bz\n"})),
    }, {}),

    "users-and-dirs": ({
        "Dockerfile": """\
FROM busybox
USER nobody
WORKDIR /home/nobody/app
RUN touch /tmp/made-by-nobody && id > /tmp/id
USER root
RUN chown nobody /home/nobody/app
USER 65534:100
WORKDIR sub
COPY one.txt .
RUN id -u > /tmp/uid2 && id -g >> /tmp/uid2
""",
        "one.txt": "1\n",
    }, {}),

    "links-and-empty-steps": ({
        "Dockerfile": """\
FROM busybox
RUN mkdir /target && ln -s /target /linkdir && ln -s target /rellink
COPY one.txt /linkdir/
COPY one.txt /rellink/sub/
COPY hard1 hard2 /hard/
COPY --from=busybox /bin/busybox /bb
ADD notatar.gz /plain/
RUN true
WORKDIR /tmp
WORKDIR /tmp
ENV LEGACY value with  spaces
ENV EMPTY=
RUN echo "[$LEGACY] [$EMPTY]" > /env.txt
""",
        "one.txt": "1\n", "hard1": "same inode\n", "notatar.gz": gzip.compress(b"not a tar\n", mtime=0),
    }, {}),

    "target-and-labels": ({
        "Dockerfile": """\
FROM busybox AS base
RUN echo base > /base
FROM base AS mid
LABEL stage=mid
RUN echo mid > /mid
FROM mid AS last
RUN echo last > /last
""",
    }, {"--target": "mid", "--label": "extra=yes", "--label ": "other=with space"}),

    "triggers-and-forms": ({
        "Dockerfile": """\
FROM busybox AS parent
RUN echo 'app:x:1500:1501::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1501:' >> /etc/group && mkdir /home/app
ONBUILD RUN echo triggered > /triggered
ONBUILD COPY one.txt /from-trigger/
FROM parent
# a comment between instructions
COPY --chown=app:app one.txt /home/app/
COPY --chown=app one.txt rel/
LABEL desc="a \\"quoted\\" value" multi="two \\
  lines"
EXPOSE 7000-7002/udp 8000
VOLUME ["/v1", "/v2"]
ENV DIR=/srv
WORKDIR $DIR/app
RUN echo one \\
    # a comment inside a continuation
    && echo two > /two
STOPSIGNAL 9
HEALTHCHECK NONE
ENTRYPOINT echo entry
""",
        "one.txt": "1\n",
    }, {}),

    "go-formats": ({
        "Dockerfile": """\
ARG META=meta
FROM busybox
ARG P="80 443"
ARG GIVEN
ENV Q="with \\"quotes\\"" EMPTY=""
LABEL empty="" tabbed="a\tb"
CMD ["echo", "tab\\there", "é", "back\\\\slash"]
HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2h --retries=65 CMD wget -q -O - http://localhost/ || exit 1
EXPOSE $P
VOLUME $Q /data/$GIVEN
RUN echo "[$META] [$GIVEN]" > /scope
STOPSIGNAL SIGKILL
""",
    }, {"GIVEN": "given"}),

    "ignored-dockerfile": ({
        "Dockerfile": "FROM busybox\nCOPY . /ctx/\n",
        ".dockerignore": "Dockerfile\n.dockerignore\n*.log\n",
        "kept.txt": "k", "dropped.log": "d",
    }, {}),

    "more-paths": ({
        "Dockerfile": """\
FROM busybox AS src
RUN mkdir -p /real/sub && echo r > /real/sub/f && ln -s /real /link && ln -s f /real/sub/lf
FROM busybox
RUN mkdir -p /opt/existing && echo old > /opt/existing/keep && ln -s /opt/existing /opt/ln-dir \\
    && echo t > /target-file && ln -s /target-file /ln-file
COPY --from=src /link /from-link/
COPY --from=src /link/sub/lf /lf-followed
ADD arch.tar /opt/existing/
COPY one.txt /opt/ln-dir/
COPY one.txt /ln-file
WORKDIR /w/a
WORKDIR ../b/./c/..
USER nobody
WORKDIR /made-for-nobody
RUN pwd > /tmp/pwd
""",
        "one.txt": "1\n", "arch.tar": _tar({"inside/a.txt": b"A\n"}),
    }, {}),

    "run-deletes": ({
        "Dockerfile": """\
FROM busybox
RUN rm /bin/cat /etc/group && rm -rf /var && mkdir -p /var/spool && echo new > /var/spool/f
RUN mkdir -m 700 /private && echo s > /private/x && chown 12:34 /private/x && ln /private/x /private/hard \\
    && ln -s /private/x /sym && mkfifo -m 640 /fifo && chmod 4755 /bin/busybox
RUN rm -rf /private/hard /tmp && mkdir -m 1777 /tmp && touch /tmp/t && rm /sym
""",
    }, {}),

    "args-env-metadata": ({
        "Dockerfile": """\
ARG V=1
FROM busybox
ARG V
ARG W=dflt
ARG UNSET
ENV PATH=/custom:$PATH V_ENV=$V
ENV V_ENV=replaced-${W}
RUN echo "$V $W $V_ENV ${UNSET:-none}" > /args
SHELL ["/bin/sh", "-ec"]
RUN echo shell > /shell
HEALTHCHECK --interval=30s --timeout=5s --retries=2 CMD ["true"]
ONBUILD RUN echo child
MAINTAINER someone
USER 123:456
WORKDIR relative
WORKDIR /abs/$W
EXPOSE 8080/tcp 9090
CMD echo $V_ENV
""",
    }, {"V": "given", "W": "w"}),
}


# Paths where the engines differ on purpose, with why: the test checks that they do differ (so that a
# change on either side is noticed) and leaves them out of the comparison.
KNOWN: dict[str, dict[str, str]] = {
    "context-edges": {
        "chowned-tar": "ADD --chown of a local tar: portside makes the missing destination directory with the "
                       "--chown owner (Docker's docs: new directories get it); dockerd 20.10 makes it 0:0",
    },
}


# Cases with a stage the target does not need: dockerd 20.10's classic builder runs every stage up to the
# target; portside runs only those the target needs, as BuildKit does (Docker's docs on multi-stage builds
# describe both), so their "Step N/M" lines differ. The image is the same.
ALL_STAGES = {"multi-stage"}


def _write(root: pathlib.Path, files: dict[str, Any]) -> None:
    for name, value in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, Symlink):
            path.symlink_to(value.target)
            continue
        if isinstance(value, Dir):
            path.mkdir(exist_ok=True)
            continue
        data, mode = value if isinstance(value, tuple) else (value, 0o644)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        path.chmod(mode)
    for top, dirs, _ in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(top, d), 0o755)
    for name, value in files.items():
        if isinstance(value, Dir):
            (root / name).chmod(value.mode)
    if (root / "hard1").exists():
        os.link(root / "hard1", root / "hard2")


@pytest.fixture
def portside_engine(request: pytest.FixtureRequest) -> Engine:
    daemon = request.getfixturevalue("daemon")
    request.getfixturevalue("busybox_image")
    return Engine("portside", daemon.socket, env=dict(daemon.env))


def _saved(engine: Engine, image: str, tmp_path: pathlib.Path) -> tuple[dict[str, Any], Iterator[bytes]]:
    path = tmp_path / f"{engine.name}.tar"
    engine.cli("save", "-o", str(path), image)
    with tarfile.open(path) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(tf.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        layers = [tf.extractfile(name).read() for name in manifest["Layers"]]  # type: ignore[union-attr]
    return config, iter(layers)


def merged(layers: Iterator[bytes]) -> dict[str, Entry]:
    """The filesystem the layers make: path → (kind, mode, uid, gid, size, link, device, sha256 of the content)."""
    fs: dict[str, Entry] = {}

    def drop(path: str, *, itself: bool) -> None:
        for p in [p for p in fs if p.startswith(path + "/") or (itself and p == path)]:
            del fs[p]

    for data in layers:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            members = list(tf)
            for m in members:  # whiteouts concern the layers below: apply them first
                name = posixpath.normpath(m.name.lstrip("/")).removeprefix("./")
                parent, base = posixpath.split(name)
                if base == ".wh..wh..opq":
                    drop(parent, itself=False)
                elif base.startswith(".wh."):
                    drop(posixpath.join(parent, base[4:]), itself=True)
            for m in members:
                name = posixpath.normpath(m.name.lstrip("/")).removeprefix("./")
                if posixpath.basename(name).startswith(".wh.") or name == ".":
                    continue
                if not m.isdir() and fs.get(name, ("",))[0] == "dir":
                    drop(name, itself=False)  # a directory of the layers below replaced by a file
                content = b""
                kind = {tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.FIFOTYPE: "fifo",
                        tarfile.CHRTYPE: "chr", tarfile.BLKTYPE: "blk"}.get(m.type, "file")
                if m.isreg() or m.islnk():  # a hard link is its target's content (either may come first)
                    content = tf.extractfile(m).read()  # type: ignore[union-attr]
                device = (m.devmajor, m.devminor) if m.ischr() or m.isblk() else None
                fs[name] = (kind, oct(m.mode & 0o7777), m.uid, m.gid, len(content),
                            m.linkname if m.issym() else "", device,
                            hashlib.sha256(content).hexdigest()[:16] if kind == "file" else "")
    return fs


def _history(config: dict[str, Any], engine: str) -> list[tuple[str, bool]]:
    """(created_by, empty_layer) of each step; COPY/ADD's hashes kept to their kind (each engine sums its way).

    Two deliberate differences are evened out: portside writes ``--from=<stage>`` in a COPY's line (dockerd
    20.10 leaves it out) and a blank after ``--chown=<owner>`` (dockerd 20.10 glues the hash to it).
    """
    out = []
    for h in config.get("history", []):
        line = re.sub(r"(file|dir|multi):[0-9a-f]{64} in ", r"\1:<hash> in ", h.get("created_by", ""))
        if engine == "portside":
            line = re.sub(r"(#\(nop\) COPY) --from=\S+", r"\1", line)
        else:
            line = re.sub(r"(--chown=\S+?)(file|dir|multi):", r"\1 \2:", line)
        out.append((line, bool(h.get("empty_layer"))))
    return out


CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "User", "WorkingDir", "ExposedPorts", "Volumes", "Labels", "StopSignal",
               "Shell", "Healthcheck", "OnBuild")


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_image_as_dockerd_s_classic_builder(case: str, portside_engine: Engine, dockerd_engine: Engine,
                                                  tmp_path: pathlib.Path) -> None:
    files, args = CASES[case]
    ctx = tmp_path / "ctx"
    _write(ctx, files)
    flags = [f for k, v in sorted(args.items()) for f in
             ((k.strip(), v) if k.startswith("--") else ("--build-arg", f"{k}={v}"))]
    images, steps = {}, {}
    for engine in (portside_engine, dockerd_engine):
        iid = tmp_path / f"{engine.name}.iid"
        r = engine.cli("build", "--iidfile", str(iid), *flags, str(ctx), timeout=300)
        steps[engine.name] = [line for line in r.stdout.decode().splitlines() if line.startswith("Step ")]
        images[engine.name] = _saved(engine, iid.read_text(), tmp_path)
    if case not in ALL_STAGES:
        assert steps["portside"] == steps["dockerd"]
    _same_images(images["portside"], images["dockerd"], KNOWN.get(case, {}))


def _same_images(portside: tuple[dict[str, Any], Iterator[bytes]], dockerd: tuple[dict[str, Any], Iterator[bytes]],
                 known: dict[str, str]) -> None:
    (p_config, p_layers), (d_config, d_layers) = portside, dockerd
    p_fs, d_fs = merged(p_layers), merged(d_layers)
    differ = {path: (p_fs.get(path), d_fs.get(path)) for path in sorted(set(p_fs) | set(d_fs))
              if p_fs.get(path) != d_fs.get(path)}
    for path in known:
        assert differ.pop(path, None), f"{path} is no longer a known difference: {known[path]}"
    assert not differ, "\n".join(f"{path}: portside {p} / dockerd {d}" for path, (p, d) in differ.items())

    p_c, d_c = p_config["config"], d_config["config"]
    assert {k: p_c.get(k) for k in CONFIG_KEYS} == {k: d_c.get(k) for k in CONFIG_KEYS}
    assert _history(p_config, "portside") == _history(d_config, "dockerd")
    assert len(p_config["rootfs"]["diff_ids"]) == len(d_config["rootfs"]["diff_ids"])


def test_quiet_build_writes_the_iidfile_against_dockerd(dockerd_engine: Engine, tmp_path: pathlib.Path) -> None:
    """dockerd's classic builder sends no aux ID with q: the CLI takes the ID from the output."""
    (tmp_path / "Dockerfile").write_text("FROM busybox\nLABEL quiet=1\n")
    r = dockerd_engine.cli("build", "-q", "--iidfile", str(tmp_path / "iid"), str(tmp_path))
    image_id = (tmp_path / "iid").read_text()
    assert image_id.startswith("sha256:") and r.stdout.decode() == image_id + "\n"


def _cached_steps(output: str) -> list[int]:
    steps, current = [], 0
    for line in output.splitlines():
        if line.startswith("Step "):
            current = int(line.split()[1].split("/")[0])
        elif line == " ---> Using cache":
            steps.append(current)
    return steps


def test_cache_hits_as_dockerd(portside_engine: Engine, dockerd_engine: Engine, tmp_path: pathlib.Path) -> None:
    """The same rebuilds hit and miss the same steps: nothing changed, a file's content, its mode, only its
    mtime, a build arg, --no-cache."""
    ctx = tmp_path / "ctx"
    _write(ctx, {"Dockerfile": "FROM busybox\nARG X\nRUN echo one > /one\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n"
                               "RUN cat /a.txt /b.txt > /ab\nENV Z=1\nRUN echo $X > /x\n",
                 "a.txt": "A", "b.txt": "B"})
    changes: list[tuple[str, Any]] = [
        ("first", None), ("again", None),
        ("b.txt content", lambda: (ctx / "b.txt").write_text("changed")),
        ("a.txt mtime", lambda: os.utime(ctx / "a.txt", (1_000_000, 1_000_000))),
        ("a.txt mode", lambda: (ctx / "a.txt").chmod(0o600)),
        ("build arg", "X=2"), ("no-cache", "--no-cache"),
    ]
    seen: dict[str, list[tuple[str, list[int]]]] = {"portside": [], "dockerd": []}
    for what, change in changes:
        if callable(change):
            change()
        flags = ["--build-arg", "X=1"]
        if change == "X=2":
            flags = ["--build-arg", "X=2"]
        elif change == "--no-cache":
            flags.append("--no-cache")
        for engine in (portside_engine, dockerd_engine):
            r = engine.cli("build", *flags, str(ctx), timeout=300)
            seen[engine.name].append((what, _cached_steps(r.stdout.decode())))
    assert seen["portside"] == seen["dockerd"]


# Failed builds: the exit code and the error's last line. (A missing base image is left out: dockerd
# tries to pull it, portside's builder does not pull.)
FAILURES = {
    "missing source": "FROM busybox\nCOPY nothere /x\n",
    "no wildcard match": "FROM busybox\nCOPY *.nothing /x/\n",
    "run fails": "FROM busybox\nRUN echo out; exit 3\n",
    "chown unknown user": "FROM busybox\nCOPY --chown=nosuchuser Dockerfile /x\n",
    "chown unknown group": "FROM busybox\nCOPY --chown=daemon:nosuchgroup Dockerfile /x\n",
    "several sources to a file": "FROM busybox\nCOPY Dockerfile Dockerfile /x\n",
    "bad port": "FROM busybox\nEXPOSE 80-70\n",
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_failures_as_dockerd(case: str, portside_engine: Engine, dockerd_engine: Engine,
                             tmp_path: pathlib.Path) -> None:
    (tmp_path / "Dockerfile").write_text(FAILURES[case])
    seen = {}
    for engine in (portside_engine, dockerd_engine):
        r = engine.cli("build", str(tmp_path), check=False, timeout=300)
        seen[engine.name] = (r.returncode, r.stderr.decode().strip().splitlines()[-1:])
    assert seen["portside"] == seen["dockerd"]


def test_the_debian_build_as_dockerd(portside_engine: Engine, dockerd_engine: Engine, tmp_path: pathlib.Path) -> None:
    """The realistic build of tests/root/test_build_debian.py (dpkg, useradd, a script, 2000 files, whiteouts)."""
    try:
        base, _ = debian.minbase_tarball()
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        debian.write_context(ctx, tmp_path / "work")
    except debian.Unavailable as e:
        pytest.skip(str(e))
    images, steps = {}, {}
    for engine in (portside_engine, dockerd_engine):
        engine.cli("import", base, debian.BASE, timeout=600)
        iid = tmp_path / f"{engine.name}.iid"
        r = engine.cli("build", "--iidfile", str(iid), "--build-arg", f"SOURCE_DATE_EPOCH={debian.EPOCH}", str(ctx),
                       timeout=600)
        steps[engine.name] = [line for line in r.stdout.decode().splitlines() if line.startswith("Step ")]
        images[engine.name] = _saved(engine, iid.read_text(), tmp_path)
    assert len(steps["portside"]) == debian.STEPS and steps["portside"] == steps["dockerd"]
    _same_images(images["portside"], images["dockerd"], {})


def test_chown_user_without_group(portside_engine: Engine, dockerd_engine: Engine, tmp_path: pathlib.Path) -> None:
    """``--chown=<user>``: dockerd 20.10's classic builder looks up a group of the same name (busybox has no group
    ``nobody``: an error); portside takes the user's primary group, as BuildKit does. A deliberate difference."""
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY --chown=nobody Dockerfile /x\n")
    r = dockerd_engine.cli("build", str(tmp_path), check=False)
    assert (r.returncode, r.stderr.decode().strip().splitlines()[-1]) == (
        1, "unable to convert uid/gid chown string to host mapping: can't find gid for group nobody: "
           "no such group: nobody")
    iid = tmp_path / "iid"
    portside_engine.cli("build", "--iidfile", str(iid), str(tmp_path))
    r = portside_engine.cli("run", "--rm", iid.read_text(), "stat", "-c", "%u:%g", "/x")
    assert r.stdout == b"65534:65534\n"
