"""``DOCKER_BUILDKIT=0 docker build`` (the real docker CLI, classic builder protocol) against portside."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peers]

HEX64 = re.compile(r"^sha256:[0-9a-f]{64}$")
CLASSIC = {"DOCKER_BUILDKIT": "0"}

DOCKERFILE = """\
FROM busybox AS build
ARG FLAVOUR=plain
COPY src/ /src/
RUN cat /src/*.txt > /joined && echo "$FLAVOUR" >> /joined
FROM busybox
ENV GREETING=hello
COPY --from=build /joined /app/joined
USER 1000:1000
WORKDIR /app
CMD ["sh", "-c", "echo $GREETING; cat joined; id -u; pwd"]
"""


@pytest.fixture
def docker(daemon, docker_client):
    return docker_client(daemon.host)


@pytest.fixture
def busybox(docker, busybox_tar: str) -> str:
    image_id = docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()
    assert HEX64.match(image_id), image_id
    return image_id


def context(tmp_path: pathlib.Path) -> str:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("A\n")
    (tmp_path / "src" / "b.txt").write_text("B\n")
    (tmp_path / "src" / "ignored.txt").write_text("never\n")
    (tmp_path / ".dockerignore").write_text("src/ignored.txt\n")
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    return str(tmp_path)


def test_docker_classic_build_multi_stage(docker, busybox, tmp_path):
    ctx = context(tmp_path)
    r = docker("build", "-t", "example/built:1", "--build-arg", "FLAVOUR=spicy", ctx, env=CLASSIC)
    assert "Step 1/10 : FROM busybox AS build" in r.out
    assert " ---> Running in " in r.out and "Successfully tagged example/built:1" in r.out
    short = re.search(r"Successfully built ([0-9a-f]{12})", r.out)
    assert short is not None
    doc = json.loads(docker("image", "inspect", "example/built:1").out)[0]
    assert doc["Id"].startswith("sha256:" + short.group(1))
    assert doc["Config"]["User"] == "1000:1000" and doc["Config"]["WorkingDir"] == "/app"
    assert docker("run", "--rm", "example/built:1").out == "hello\nA\nB\nspicy\n1000\n/app\n"

    again = docker("build", "-t", "example/built:2", "--build-arg", "FLAVOUR=spicy", ctx, env=CLASSIC)
    assert again.out.count(" ---> Using cache") == 8  # every step after the two FROMs
    assert json.loads(docker("image", "inspect", "example/built:2").out)[0]["Id"] == doc["Id"]


def test_docker_classic_build_failure(docker, busybox, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    r = docker("build", "-t", "example/failed", str(tmp_path), env=CLASSIC, check=False)
    assert r.rc == 3
    assert "The command '/bin/sh -c exit 3' returned a non-zero code: 3" in r.err
    assert docker("image", "inspect", "example/failed", check=False).rc == 1


def test_docker_classic_build_quiet(docker, busybox, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo quiet > /q\n")
    r = docker("build", "-q", str(tmp_path), env=CLASSIC)
    image_id = r.out.strip()
    assert HEX64.match(image_id), r
    assert docker("run", "--rm", image_id, "cat", "/q").out == "quiet\n"


def test_docker_py_build(daemon, busybox, tmp_path):
    """docker-py's images.build reads the stream's "Successfully built" line (and aux) for the image."""
    docker_py = pytest.importorskip("docker")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nLABEL via=docker-py\nRUN echo py > /py\n")
    client = docker_py.DockerClient(base_url=daemon.host)
    try:
        image, logs = client.images.build(path=str(tmp_path), tag="example/py:1", rm=True)
        assert image.id.startswith("sha256:") and "example/py:1" in image.tags
        assert image.labels == {"via": "docker-py"}
        assert any("Successfully built" in entry.get("stream", "") for entry in logs)
        with pytest.raises(docker_py.errors.BuildError, match="returned a non-zero code: 4"):
            (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 4\n")
            client.images.build(path=str(tmp_path))
    finally:
        client.close()


def _files(tar_bytes: bytes) -> dict[str, tuple[str, int, int, int, str]]:
    """name -> (type, mode, uid, gid, content or link target) of an exported container filesystem."""
    import hashlib
    import io
    import tarfile
    out = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for m in tar:
            data = tar.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
            out[m.name.rstrip("/")] = (m.type.decode(), m.mode, m.uid, m.gid,
                                       hashlib.sha256(data).hexdigest() if m.isreg() else m.linkname)
    return out


def test_same_filesystem_as_dockerd_classic_builder(docker, busybox, dockerd, tmp_path):
    """The same Dockerfile and context built by dockerd 20.10's classic builder: the same files in the result."""
    ctx = context(tmp_path)
    saved = tmp_path / "busybox.tar"
    docker("save", "-o", str(saved), "busybox:latest")
    dockerd.cli("load", "-i", str(saved))
    built = {}
    for name, cli in (("portside", docker), ("dockerd", dockerd.cli)):
        cli("build", "-t", "example/same:1", "--build-arg", "FLAVOUR=x", ctx, env=CLASSIC)
        cid = cli("create", "example/same:1").out.strip()
        built[name] = _files(cli("export", cid).raw)
        cli("rm", cid)
    # what dockerd's init layer adds to every container it exports (mount points, .dockerenv)
    init_layer = {".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", "dev/console",
                  "dev/pts", "dev/shm", "proc", "sys"}
    mine = {k: v for k, v in built["portside"].items() if k not in init_layer}
    theirs = {k: v for k, v in built["dockerd"].items() if k not in init_layer}
    assert len(mine) > 250 and mine == theirs
