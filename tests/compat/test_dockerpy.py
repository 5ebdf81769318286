"""docker-py 7 (PyPI ``docker``) against a portside daemon.

The client is used as its users use it, through ``docker.DockerClient`` on
the test daemon's socket; what is asserted is what those calls return.
``ports=`` and ``networks.*`` wait for the networking work.
"""

from __future__ import annotations

import io
import tarfile
import time

import pytest

docker = pytest.importorskip("docker")
from docker.errors import APIError, ContainerError, ImageNotFound, NotFound  # noqa: E402
from docker.utils.socket import next_frame_header, read_exactly  # noqa: E402

pytestmark = pytest.mark.root

FOREVER = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


@pytest.fixture
def client(daemon):
    c = docker.DockerClient(base_url=daemon.host, timeout=60)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def busybox(client, busybox_image):
    return client.images.get("busybox")


def wait_for(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_system_calls(client, busybox):
    assert client.ping() is True
    version = client.version()
    assert version["Components"][0]["Name"] == "Engine" and version["ApiVersion"] == client.api.api_version
    info = client.info()
    assert (info["Images"], info["Containers"], info["Driver"], info["OSType"]) == (1, 0, "overlay2", "linux")
    client.containers.create("busybox", "true", name="made")
    assert client.info()["Containers"] == 1
    df = client.df()
    assert [i["Id"] for i in df["Images"]] == [busybox.id]
    assert [c["Names"] for c in df["Containers"]] == [["/made"]]
    assert df["Volumes"] == [] and df["LayersSize"] > 1_000_000


def test_run_detached_with_volumes_environment_labels(client, busybox, tmp_path):
    (tmp_path / "host.txt").write_text("from the host\n")
    volume = client.volumes.create("pydata", labels={"suite": "dockerpy"})
    container = client.containers.run(
        "busybox", ["sh", "-c", 'echo "$GREETING"; cat /host/host.txt; echo to-stderr >&2; echo kept > /data/f; '
                    "i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.2; done"],
        detach=True, name="pyct", environment={"GREETING": "hello"}, labels={"suite": "dockerpy"},
        volumes={"pydata": {"bind": "/data", "mode": "rw"}, str(tmp_path): {"bind": "/host", "mode": "ro"}})
    container.reload()
    assert (container.name, container.status, container.labels) == ("pyct", "running", {"suite": "dockerpy"})
    assert "GREETING=hello" in container.attrs["Config"]["Env"]
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert (mounts["/data"]["Name"], mounts["/data"]["RW"]) == ("pydata", True)
    assert (mounts["/host"]["Source"], mounts["/host"]["RW"]) == (str(tmp_path), False)

    # logs(stream=True, follow=True) yields lines as they come
    lines = []
    for chunk in container.logs(stream=True, follow=True):
        lines.append(chunk)
        if b"tick2\n" in lines and b"to-stderr\n" in lines:
            break
    # stdout and stderr are two pipes: their lines may interleave either way
    assert b"to-stderr\n" in lines
    assert [line for line in lines if line != b"to-stderr\n"][:5] == [
        b"hello\n", b"from the host\n", b"tick0\n", b"tick1\n", b"tick2\n"]
    assert container.logs(stdout=False).startswith(b"to-stderr\n")
    assert container.logs(stderr=False, tail=1).startswith(b"tick")

    assert client.containers.list(filters={"label": "suite=dockerpy"}) == [container]
    assert client.containers.list(filters={"label": "suite=other"}) == []
    assert client.containers.list(filters={"name": "pyct", "status": "running"}) == [container]
    assert client.containers.get("pyct").id == container.id

    processes = container.top()
    assert processes["Titles"][:3] == ["UID", "PID", "PPID"]
    assert any(p[-1].startswith("sh -c echo") for p in processes["Processes"]), processes
    stats = container.stats(stream=False)
    assert stats["id"] == container.id and stats["pids_stats"]["current"] >= 1

    container.stop(timeout=5)
    assert container.wait() == {"StatusCode": 137, "Error": None}  # the shell ignores TERM as pid 1
    container.reload()
    assert container.status == "exited"
    with pytest.raises(APIError) as refused:
        volume.remove()
    assert refused.value.status_code == 409 and "volume is in use" in str(refused.value)
    container.remove(v=True)
    assert client.containers.list(all=True) == []
    assert client.volumes.get("pydata").attrs["Labels"] == {"suite": "dockerpy"}  # named: not removed with v=True
    with pytest.raises(NotFound):
        client.containers.get("pyct")


def test_run_in_the_foreground(client, busybox):
    assert client.containers.run("busybox", "echo hi", remove=True) == b"hi\n"
    assert client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], stderr=True,
                                 remove=True) == b"out\nerr\n"
    with pytest.raises(ContainerError) as failed:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert failed.value.exit_status == 3 and failed.value.stderr == b"bad\n"
    streamed = client.containers.run("busybox", ["sh", "-c", "echo a; sleep 0.3; echo b"], stream=True, remove=True)
    assert b"".join(streamed) == b"a\nb\n"
    wait_for(lambda: client.containers.list(all=True) == [], "auto-removal")


def test_exec_run(client, busybox):
    container = client.containers.run("busybox", ["sh", "-c", FOREVER], detach=True)
    result = container.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.exit_code, result.output) == (3, b"out\nerr\n")
    result = container.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    assert (result.exit_code, result.output) == (0, (b"out\n", b"err\n"))
    result = container.exec_run(["sh", "-c", "echo out; echo err >&2"], stderr=False)
    assert result.output == b"out\n"
    result = container.exec_run("sh -c 'echo $X $(pwd) $(id -u)'", environment={"X": "y"}, workdir="/tmp",
                                user="1000")
    assert (result.exit_code, result.output) == (0, b"y /tmp 1000\n")
    result = container.exec_run(["sh", "-c", "echo a; sleep 0.3; echo b >&2"], stream=True)
    assert result.exit_code is None and b"".join(result.output) == b"a\nb\n"
    result = container.exec_run(["sh", "-c", "echo a; echo b >&2"], stream=True, demux=True)
    chunks = list(result.output)
    assert b"".join(o for o, _ in chunks if o) == b"a\n" and b"".join(e for _, e in chunks if e) == b"b\n"
    result = container.exec_run("tty", tty=True)
    assert result.output.endswith(b"\r\n")                       # a TTY's line discipline
    container.exec_run(["sh", "-c", "echo detached > /d"], detach=True)
    wait_for(lambda: container.exec_run("cat /d").output == b"detached\n", "exec detach")
    result = container.exec_run("nosuchcmd")
    assert result.exit_code == 127 and b'exec: "nosuchcmd": executable file not found in $PATH' in result.output
    container.remove(force=True)


def test_archives_attach_socket_and_commit(client, busybox):
    # attach_socket before start, as docker-py's own tests do: the raw hijacked stream, framed (no TTY)
    container = client.containers.create("busybox", ["sh", "-c", "echo attached; echo warned >&2; " + FOREVER])
    sock = container.attach_socket(params={"stdout": 1, "stderr": 1, "stream": 1})
    container.start()
    frames = []
    for _ in range(2):
        stream, size = next_frame_header(sock)
        frames.append((stream, read_exactly(sock, size)))
    assert sorted(frames) == [(1, b"attached\n"), (2, b"warned\n")]
    sock.close()

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("put.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"put\n"))
    assert container.put_archive("/tmp", buf.getvalue()) is True
    chunks, stat = container.get_archive("/tmp/put.txt")
    assert stat["name"] == "put.txt" and stat["size"] == 4
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tf:
        member = tf.extractfile("put.txt")
        assert member is not None and member.read() == b"put\n"

    image = container.commit("pycommit", "v1", changes=['CMD ["cat", "/tmp/put.txt"]'], message="by docker-py")
    assert image.tags == ["pycommit:v1"] and image.attrs["Comment"] == "by docker-py"
    assert client.containers.run("pycommit:v1", remove=True) == b"put\n"
    container.remove(force=True)


def test_images(client, busybox):
    assert client.images.list() == [busybox]
    assert busybox.tags == ["busybox:latest"]
    assert busybox.tag("pyimg", "1") is True
    assert sorted(client.images.get(busybox.id).tags) == ["busybox:latest", "pyimg:1"]
    assert client.images.list(name="pyimg") == [busybox]

    saved = b"".join(client.images.get("pyimg:1").save(named="pyimg:1"))
    by_id = b"".join(busybox.save())
    client.images.remove("pyimg:1")
    assert client.images.get(busybox.id).tags == ["busybox:latest"]
    client.images.remove("busybox", force=True)
    assert client.images.list() == []
    with pytest.raises(ImageNotFound):
        client.images.get("busybox")

    [loaded] = client.images.load(saved)
    assert (loaded.id, loaded.tags) == (busybox.id, ["pyimg:1"])
    [again] = client.images.load(by_id)                    # saved by ID: "Loaded image ID: sha256:..."
    assert again.id == busybox.id
    with pytest.raises(APIError) as bad:
        client.images.load(b"not a tarball" * 100)
    assert bad.value.status_code == 400 or "archive" in str(bad.value)

    dangling = client.images.get(busybox.id)
    dangling.tag("pyimg", "2")
    client.images.remove("pyimg:1")
    pruned = client.images.prune(filters={"dangling": True})
    assert pruned["ImagesDeleted"] is None                 # still tagged pyimg:2
    client.images.remove("pyimg:2")
    assert client.images.list() == []


def test_volumes(client, busybox):
    client.volumes.create("named", labels={"k": "v"})
    anonymous = client.volumes.create()
    assert sorted(v.name for v in client.volumes.list()) == sorted(["named", anonymous.name])
    assert [v.name for v in client.volumes.list(filters={"label": "k=v"})] == ["named"]
    named = client.volumes.get("named")
    assert (named.attrs["Driver"], named.attrs["Labels"], named.attrs["Scope"]) == ("local", {"k": "v"}, "local")
    assert named.attrs["Mountpoint"].endswith("/volumes/named/_data")
    with pytest.raises(NotFound):
        client.volumes.get("nosuch")

    client.containers.run("busybox", ["sh", "-c", "printf 12345 > /v/f"], volumes={"named": {"bind": "/v"}},
                          remove=True)
    assert [v["Name"] for v in client.df()["Volumes"] if v["UsageData"]["Size"] == 5] == ["named"]
    pruned = client.volumes.prune()
    assert pruned["VolumesDeleted"] == [anonymous.name]     # named volumes stay (API 1.42 and later)
    pruned = client.volumes.prune(filters={"all": "true"})
    assert pruned["VolumesDeleted"] == ["named"] and pruned["SpaceReclaimed"] == 5
    assert client.volumes.list() == []


def test_errors_are_docker_py_exceptions(client, busybox):
    with pytest.raises(NotFound) as missing:
        client.containers.get("nosuch")
    assert missing.value.status_code == 404 and "No such container: nosuch" in str(missing.value)
    with pytest.raises(ImageNotFound):
        client.containers.create("nosuch:1", "true")
    client.containers.create("busybox", "true", name="twice")
    with pytest.raises(APIError) as conflict:
        client.containers.create("busybox", "true", name="twice")
    assert conflict.value.status_code == 409
    running = client.containers.run("busybox", ["sh", "-c", FOREVER], detach=True)
    with pytest.raises(APIError) as busy:
        running.remove()
    assert busy.value.status_code == 409 and "cannot remove a running container" in str(busy.value)
    running.remove(force=True)
    pruned = client.containers.prune()
    assert len(pruned["ContainersDeleted"]) == 1


def test_container_operations(client, busybox, busybox_tar):
    container = client.containers.run("busybox", ["sh", "-c", "echo hi; echo > /made; " + FOREVER], detach=True,
                                      name="ops")
    wait_for(lambda: container.logs() == b"hi\n", "the first line")
    started = time.monotonic()
    replayed = container.attach(stdout=True, stderr=True, stream=False, logs=True)
    assert time.monotonic() - started < 10                      # returns at once: the container still runs
    # docker-py reads the hijacked socket past http.client's buffer, so bytes that arrive together with
    # the 101 are dropped on any engine; the replay itself is tested in tests/api/test_api_stream_choices.py
    assert replayed in (b"hi\n", b"")
    container.pause()
    container.reload()
    assert container.status == "paused"
    container.unpause()
    container.rename("renamed")
    container.reload()
    assert container.name == "renamed"
    container.kill("USR1")                                     # the trap ignores it
    container.reload()
    assert container.status == "running"
    assert container.update(mem_limit="64m", memswap_limit="128m") == {"Warnings": []}
    container.reload()
    assert (container.attrs["HostConfig"]["Memory"], container.attrs["HostConfig"]["MemorySwap"]) == (
        64 << 20, 128 << 20)
    assert {"Path": "/made", "Kind": 1} in container.diff()
    with tarfile.open(fileobj=io.BytesIO(b"".join(container.export()))) as tf:
        assert "made" in tf.getnames() and "bin/busybox" in tf.getnames()
    container.restart(timeout=2)
    container.reload()
    assert container.status == "running" and container.attrs["RestartCount"] == 0
    [sized] = client.api.containers(all=True, size=True)
    assert sized["SizeRw"] >= 1 and sized["SizeRootFs"] > sized["SizeRw"]  # /made; and the image
    container.remove(force=True)

    history = busybox.history()
    assert [(h["Id"], h["Comment"]) for h in history] == [(busybox.id, "Imported from -")]
    with open(busybox_tar, "rb") as f:
        status = client.api.import_image_from_data(f.read(), repository="imported", tag="1")
    assert client.images.get("imported:1").id in status
