"""The CLI end to end against a real daemon: image commands, system commands, exit statuses.

Uses the shared fixtures of tests/conftest.py: ``daemon`` (a running
``portside daemon`` on a temporary root and socket, with ``.cli(...)``) and
``busybox_tar`` (a rootfs tarball made from /bin/busybox).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import tarfile
import tempfile
import time
from typing import Any

import pytest

pytest.importorskip("portside.daemon.main")

SHORT_ID = re.compile(r"^[0-9a-f]{12}$")
LONG_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


def out(result: Any) -> str:
    return result.stdout.decode()


def err(result: Any) -> str:
    return result.stderr.decode()


def import_busybox(daemon: Any, busybox_tar: str, ref: str = "busybox:latest") -> str:
    r = daemon.cli("import", "--change", 'CMD ["sh"]', "-m", "from the tests", busybox_tar, ref)
    image_id = out(r).strip()
    assert LONG_ID.match(image_id), out(r)
    return image_id


def table(text: str) -> list[list[str]]:
    """Rows of a docker table, cells split on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]


def test_import_then_images(daemon: Any, busybox_tar: str) -> None:
    assert out(daemon.cli("images")) == "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    image_id = import_busybox(daemon, busybox_tar)

    rows = table(out(daemon.cli("images")))
    assert rows[0] == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    assert len(rows) == 2
    repo, tag, short, created, size = rows[1]
    assert (repo, tag, short) == ("busybox", "latest", image_id[7:19])
    assert created.endswith("ago")
    assert re.match(r"^\d+(\.\d+)?(B|kB|MB)$", size), size

    assert out(daemon.cli("images", "-q")) == image_id[7:19] + "\n"
    assert out(daemon.cli("images", "-q", "--no-trunc")) == image_id + "\n"
    assert out(daemon.cli("image", "ls", "--format", "{{.Repository}}:{{.Tag}}")) == "busybox:latest\n"
    assert out(daemon.cli("images", "busybox")).count("\n") == 2
    assert out(daemon.cli("images", "nothing-like-this")).count("\n") == 1

    row = json.loads(out(daemon.cli("images", "--format", "{{json .}}")))
    assert set(row) == {
        "Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
        "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize",
    }
    assert (row["Repository"], row["Tag"], row["ID"]) == ("busybox", "latest", image_id[7:19])

    digests = table(out(daemon.cli("images", "--digests")))
    assert digests[0] == ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]


def test_import_from_stdin_with_message(daemon: Any, busybox_tar: str) -> None:
    with open(busybox_tar, "rb") as f:
        data = f.read()
    r = daemon.cli("import", "-m", "piped", "-", "piped:v1", input=data)
    image_id = out(r).strip()
    assert LONG_ID.match(image_id)
    assert table(out(daemon.cli("images", "piped")))[1][:2] == ["piped", "v1"]
    history = daemon.cli("history", "--format", "{{.Comment}}", "piped:v1")
    assert "piped" in out(history)


def test_inspect(daemon: Any, busybox_tar: str) -> None:
    image_id = import_busybox(daemon, busybox_tar)
    text = out(daemon.cli("image", "inspect", "busybox"))
    assert text.startswith("[\n    {\n        \"Id\": ")
    assert text.endswith("\n]\n")
    (obj,) = json.loads(text)
    assert obj["Id"] == image_id
    assert obj["RepoTags"] == ["busybox:latest"]
    assert obj["Config"]["Cmd"] == ["sh"]

    assert out(daemon.cli("image", "inspect", "-f", "{{.Id}} {{.ID}} {{json .Config.Cmd}}", "busybox")) == (
        f'{image_id} {image_id} ["sh"]\n'
    )
    assert out(daemon.cli("inspect", "--format", "{{.Os}}/{{.Architecture}}", "busybox")).strip().startswith("linux/")
    assert json.loads(out(daemon.cli("inspect", "--type", "image", "--format", "json", image_id[7:19])))[0]["Id"] == image_id

    missing = daemon.cli("image", "inspect", "busybox", "nope", check=False)
    assert missing.returncode == 1
    assert json.loads(out(missing))[0]["Id"] == image_id
    assert "No such image: nope" in err(missing)

    missing = daemon.cli("inspect", "nope", check=False)
    assert (missing.returncode, out(missing), err(missing)) == (1, "[]\n", "Error: No such object: nope\n")

    bad = daemon.cli("inspect", "-f", "{{.Id", "busybox", check=False)
    assert bad.returncode == 64
    assert err(bad).startswith("template parsing error:")


def test_tag_and_rmi(daemon: Any, busybox_tar: str) -> None:
    image_id = import_busybox(daemon, busybox_tar)
    daemon.cli("tag", "busybox", "me/bb:1.0")
    daemon.cli("image", "tag", image_id[7:19], "localhost:5000/bb")
    rows = {(r[0], r[1]) for r in table(out(daemon.cli("images")))[1:]}
    assert rows == {("busybox", "latest"), ("me/bb", "1.0"), ("localhost:5000/bb", "latest")}

    bad = daemon.cli("tag", "busybox", "Me/BB", check=False)
    assert bad.returncode == 1
    assert err(bad).startswith('Error parsing reference: "Me/BB" is not a valid repository/tag')
    missing = daemon.cli("tag", "nope", "x", check=False)
    assert missing.returncode == 1
    assert err(missing).startswith("Error response from daemon: ")
    assert "nope" in err(missing)

    r = daemon.cli("rmi", "me/bb:1.0", "nope", "localhost:5000/bb", check=False)
    assert r.returncode == 1
    assert out(r) == "Untagged: me/bb:1.0\nUntagged: localhost:5000/bb:latest\n"
    assert err(r).startswith("Error response from daemon: ")
    assert "nope" in err(r)

    r = daemon.cli("image", "rm", "busybox")
    lines = out(r).splitlines()
    assert lines[0] == "Untagged: busybox:latest"
    assert f"Deleted: {image_id}" in lines
    assert out(daemon.cli("images", "-a", "-q")) == ""


def test_history(daemon: Any, busybox_tar: str) -> None:
    image_id = import_busybox(daemon, busybox_tar)
    rows = table(out(daemon.cli("history", "busybox")))
    assert rows[0] == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    assert rows[1][0] == image_id[7:19]
    assert out(daemon.cli("image", "history", "-q", "--no-trunc", "busybox")).splitlines()[0] == image_id
    not_human = out(daemon.cli("history", "-H=false", "busybox")).splitlines()
    assert "CREATED AT" in not_human[0]
    missing = daemon.cli("history", "nope", check=False)
    assert missing.returncode == 1 and "No such image" in err(missing)


def test_save_and_load_round_trip(daemon: Any, busybox_tar: str, tmp_path: Any) -> None:
    image_id = import_busybox(daemon, busybox_tar)
    path = str(tmp_path / "busybox.tar")
    assert out(daemon.cli("save", "-o", path, "busybox")) == ""
    assert sorted(os.listdir(tmp_path)) == ["busybox.tar"]  # the temporary file was renamed
    with tarfile.open(path) as tf:
        names = tf.getnames()
    assert "manifest.json" in names

    piped = daemon.cli("image", "save", "busybox").stdout
    with tarfile.open(fileobj=io.BytesIO(piped)) as tf:
        assert "manifest.json" in tf.getnames()

    daemon.cli("rmi", "busybox")
    r = daemon.cli("load", "-i", path)
    assert out(r) == "Loaded image: busybox:latest\n"
    assert out(daemon.cli("images", "-q", "--no-trunc")) == image_id + "\n"

    daemon.cli("rmi", "busybox")
    with open(path, "rb") as f:
        r = daemon.cli("image", "load", input=f.read())
    assert "Loaded image: busybox:latest" in out(r)

    bad = daemon.cli("load", input=b"this is not a tarball" * 100, check=False)
    assert bad.returncode == 1
    assert err(bad).strip()

    missing = daemon.cli("save", "-o", path, "nope", check=False)
    assert missing.returncode == 1 and "nope" in err(missing)


def test_prune(daemon: Any, busybox_tar: str) -> None:
    import_busybox(daemon, busybox_tar)
    dangling = out(daemon.cli("import", busybox_tar)).strip()  # no name: dangling
    rows = table(out(daemon.cli("images")))
    assert ["<none>", "<none>", dangling[7:19]] in [r[:3] for r in rows]

    declined = daemon.cli("image", "prune", input=b"n\n")
    assert out(declined) == "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    assert dangling[7:19] in out(daemon.cli("images", "-q"))

    r = daemon.cli("image", "prune", input=b"y\n")
    text = out(r)
    assert "Deleted Images:\n" in text
    assert f"deleted: {dangling}" in text
    assert re.search(r"\nTotal reclaimed space: \d+(\.\d+)?(B|kB|MB)\n$", text), text
    assert table(out(daemon.cli("images")))[1][:2] == ["busybox", "latest"]

    assert out(daemon.cli("image", "prune", "-f")) == "Total reclaimed space: 0B\n"
    r = daemon.cli("image", "prune", "-a", "-f")
    assert "untagged: busybox:latest" in out(r)
    assert out(daemon.cli("images", "-q")) == ""


def test_system_df(daemon: Any, busybox_tar: str) -> None:
    import_busybox(daemon, busybox_tar)
    rows = table(out(daemon.cli("system", "df")))
    assert rows[0] == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [r[0] for r in rows[1:]] == ["Images", "Containers", "Local Volumes", "Build Cache"]
    assert rows[1][1:3] == ["1", "0"]
    verbose = out(daemon.cli("system", "df", "-v"))
    assert verbose.startswith("Images space usage:\n\nREPOSITORY   TAG       IMAGE ID       CREATED")
    assert "busybox" in verbose
    first = json.loads(out(daemon.cli("system", "df", "--format", "{{json .}}")).splitlines()[0])
    assert first["Type"] == "Images" and first["TotalCount"] == "1"


def test_version_and_info(daemon: Any, busybox_tar: str) -> None:
    import_busybox(daemon, busybox_tar)
    text = out(daemon.cli("version"))
    assert text.startswith("Client:\n Version:           ")
    assert "\n API version:       1.45\n" in text
    assert "\n Go version:        Python 3." in text
    assert "\nServer:" in text and "\n Engine:\n" in text
    assert re.search(r"\n  API version:      1\.\d+ \(minimum version 1\.\d+\)\n", text)
    assert out(daemon.cli("version", "--format", "{{.Client.APIVersion}}")) == "1.45\n"
    data = json.loads(out(daemon.cli("version", "-f", "json")))
    assert data["Client"]["ApiVersion"] == "1.45" and data["Server"]["Version"]

    info = out(daemon.cli("info"))
    assert info.startswith("Client:\n Version:    ")
    assert "\nServer:\n Containers: " in info
    assert "\n Images: 1\n" in info
    assert f"\n Docker Root Dir: {daemon.root}\n" in info
    assert out(daemon.cli("system", "info", "--format", "{{.Images}}")) == "1\n"
    assert out(daemon.cli("info", "--format", "{{.ClientInfo.Context}}")) == "default\n"


def test_ps_header(daemon: Any) -> None:
    r = daemon.cli("ps", "-a", check=False)
    if r.returncode != 0 and "page not found" in err(r):
        pytest.skip("the daemon does not serve GET /containers/json yet")
    assert r.returncode == 0, err(r)
    assert out(r).splitlines()[0] == "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES"


def test_daemon_errors_exit_1_and_usage_errors_exit_125(daemon: Any) -> None:
    r = daemon.cli("rmi", "nope", check=False)
    assert (r.returncode, out(r)) == (1, "")
    assert err(r).startswith("Error response from daemon: ")
    r = daemon.cli("images", "--bogus", check=False)
    assert (r.returncode, err(r)) == (125, "unknown flag: --bogus\nSee 'portside images --help'.\n")


def test_default_socket_starts_the_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default host and nothing listening, the client starts a daemon, detached, and uses it."""
    import sys

    from portside.cli import client

    if os.geteuid() != 0:
        pytest.skip("the daemon needs root")
    base = tempfile.mkdtemp(prefix="ps-auto-")
    sock = os.path.join(base, "run", "portside.sock")
    host = "unix://" + sock
    log = os.path.join(base, "log", "daemon.log")
    monkeypatch.setattr(client, "DAEMON_LOG", log)
    monkeypatch.setattr(
        client, "daemon_argv", lambda h: [sys.executable, "-m", "portside", "daemon", "--root", os.path.join(base, "root"), "--host", h]
    )
    stderr = io.StringIO()
    pid = None
    try:
        c = client.Client(host, autostart=True, stderr=stderr)
        version = c.get_json("/version")
        assert version["ApiVersion"]
        m = re.fullmatch(r"portside: started the daemon \(pid (\d+), log (.+)\)\n", stderr.getvalue())
        assert m, stderr.getvalue()
        pid = int(m.group(1))
        assert m.group(2) == log and os.path.exists(log)
        assert os.getsid(pid) == pid  # its own session: not killed with the CLI's terminal
        # a second client finds it running and starts nothing
        stderr2 = io.StringIO()
        client.Client(host, autostart=True, stderr=stderr2).get_json("/version")
        assert stderr2.getvalue() == ""
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        import shutil

        shutil.rmtree(base, ignore_errors=True)
