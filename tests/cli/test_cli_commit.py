"""``portside commit`` end to end, against portside and against a private dockerd 20.10 as the reference.

The engines are those of test_cli_containers.py. Where the two are held to
the same result, the result is spelled out once and both must give it: the
committed layer's entries (names, kinds, modes, owners, sizes, links,
contents; not mtimes, which differ by nature, nor user names, which dockerd
takes from the host), the image's metadata, the files a container of the new
image sees.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from typing import Any

import pytest

from test_cli_containers import FOREVER, Engine, dockerd_engine, engine, err, out  # noqa: F401  (fixtures)

pytestmark = pytest.mark.root

IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}\n$")

# One container's changes, in both engines. /etc/hosts and friends, and /proc /sys /dev
# exist in neither image nor diff: dockerd keeps their mount points in its init layer.
CHANGES = ("echo hi > /etc/newfile; chown 5:6 /etc/newfile; ln /etc/newfile /etc/hl; rm /bin/cat;"
           " rm -rf /var/spool; mkdir -p /var/spool/x; mkfifo -m 640 /tmp/fifo; mknod -m 600 /tmp/null c 1 3;"
           " ln -s ../etc/newfile /tmp/sl; chmod 700 /root/.; mkdir -p /a/b/c; echo data > /a/b/c/f")

# (name, type, mode, uid, gid, size, linkname, device, data) of the committed layer
EXPECTED_LAYER = [
    ("a", "dir", 0o755, 0, 0, 0, "", None, None),
    ("a/b", "dir", 0o755, 0, 0, 0, "", None, None),
    ("a/b/c", "dir", 0o755, 0, 0, 0, "", None, None),
    ("a/b/c/f", "file", 0o644, 0, 0, 5, "", None, b"data\n"),
    ("bin", "dir", 0o755, 0, 0, 0, "", None, None),
    ("bin/.wh.cat", "file", 0o600, 0, 0, 0, "", None, b""),
    ("data", "dir", 0o755, 0, 0, 0, "", None, None),          # a volume's mount point stays, as in dockerd
    ("data/sub", "dir", 0o755, 0, 0, 0, "", None, None),
    ("etc", "dir", 0o755, 0, 0, 0, "", None, None),
    ("etc/hl", "file", 0o644, 5, 6, 3, "", None, b"hi\n"),
    ("etc/newfile", "link", 0o644, 5, 6, 0, "etc/hl", None, None),
    ("root", "dir", 0o700, 0, 0, 0, "", None, None),
    ("tmp", "dir", 0o1777, 0, 0, 0, "", None, None),
    ("tmp/fifo", "fifo", 0o640, 0, 0, 0, "", None, None),
    ("tmp/null", "chr", 0o600, 0, 0, 0, "", (1, 3), None),
    ("tmp/sl", "symlink", 0o777, 0, 0, 0, "../etc/newfile", None, None),
    ("var", "dir", 0o755, 0, 0, 0, "", None, None),
    ("var/spool", "dir", 0o755, 0, 0, 0, "", None, None),
    ("var/spool/.wh..wh..opq", "file", 0o755, 0, 0, 0, "", None, b""),
    ("var/spool/x", "dir", 0o755, 0, 0, 0, "", None, None),
]

_KINDS = {tarfile.DIRTYPE: "dir", tarfile.REGTYPE: "file", tarfile.LNKTYPE: "link", tarfile.SYMTYPE: "symlink",
          tarfile.FIFOTYPE: "fifo", tarfile.CHRTYPE: "chr", tarfile.BLKTYPE: "blk"}


def saved_layers(engine: Engine, image: str, tmp_path: Any) -> tuple[dict[str, Any], list[bytes]]:
    """(the image config, its layer tars) from ``save``: dockerd's legacy layout and portside's both have manifest.json."""
    path = tmp_path / f"{engine.name}-{image.replace(':', '_')}.tar"
    engine.cli("save", "-o", str(path), image)
    with tarfile.open(path) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(tf.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        return config, [tf.extractfile(name).read() for name in manifest["Layers"]]  # type: ignore[union-attr]


def layer_entries(data: bytes) -> list[tuple[Any, ...]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            content = tf.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
            device = (m.devmajor, m.devminor) if m.ischr() or m.isblk() else None
            out.append((m.name, _KINDS[m.type], m.mode & 0o7777, m.uid, m.gid, m.size, m.linkname, device, content))
    return out


def test_commit_prints_the_id_and_the_image_holds_the_changes(engine: Engine, tmp_path: Any) -> None:
    engine.cli("run", "--name", "c1", "-v", "/data/sub", "busybox", "sh", "-c", CHANGES)
    r = engine.cli("commit", "-a", "Jane <j@example.com>", "-m", "a message", "-c", 'CMD ["ls", "/a/b/c"]',
                   "--change", "ENV A=1", "c1", "committed:v1")
    assert IMAGE_ID.match(out(r)) and err(r) == ""
    image_id = out(r).strip()

    seen = engine.cli("run", "--rm", "committed:v1", "sh", "-c",
                      "head /etc/newfile /a/b/c/f; ls -A /var/spool; ls /bin/cat; echo $A; stat -c %a /root")
    assert out(seen) == "==> /etc/newfile <==\nhi\n\n==> /a/b/c/f <==\ndata\nx\n1\n700\n"
    assert "ls: /bin/cat: No such file or directory" in err(seen)
    assert out(engine.cli("run", "--rm", "committed:v1")) == "f\n"

    config, layers = saved_layers(engine, "committed:v1", tmp_path)
    assert layer_entries(layers[-1]) == EXPECTED_LAYER
    _, parent_layers = saved_layers(engine, "busybox", tmp_path)
    assert len(layers) == len(parent_layers) + 1
    assert config["history"][-1]["created_by"] == "sh -c " + CHANGES
    assert (config["history"][-1]["author"], config["history"][-1]["comment"]) == ("Jane <j@example.com>", "a message")
    assert config["author"] == "Jane <j@example.com>"
    assert (config["config"]["Cmd"], config["config"]["Env"]) == (["ls", "/a/b/c"], ["A=1"])
    assert config["config"]["Volumes"] == {"/data/sub": {}}

    parent = out(engine.cli("image", "inspect", "-f", "{{.Id}}", "busybox")).strip()
    shown = out(engine.cli("image", "inspect", "-f", "{{.Id}}|{{.Parent}}|{{.Comment}}|{{.Author}}", "committed:v1"))
    assert shown == f"{image_id}|{parent}|a message|Jane <j@example.com>\n"
    history = out(engine.cli("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
                             "committed:v1")).splitlines()
    assert history[0] == f"{image_id}|sh -c {CHANGES}|22B|a message"  # "hi\n", "data\n" and the symlink's 14 bytes
    assert history[1].startswith(parent + "|")


def test_only_what_changed_is_in_the_layer(engine: Engine, tmp_path: Any) -> None:
    engine.cli("run", "--name", "c2", "busybox", "sh", "-c", "echo x > /tmp/x")
    engine.cli("commit", "c2", "small")
    _, layers = saved_layers(engine, "small", tmp_path)
    assert [e[0] for e in layer_entries(layers[-1])] == ["tmp", "tmp/x"]
    # nothing changed: an empty history entry, no layer
    engine.cli("create", "--name", "c3", "busybox", "true")
    engine.cli("commit", "c3", "same")
    config, layers = saved_layers(engine, "same", tmp_path)
    _, parent_layers = saved_layers(engine, "busybox", tmp_path)
    assert len(layers) == len(parent_layers)
    assert config["history"][-1]["empty_layer"] is True and config["history"][-1]["created_by"] == "true"


def test_commit_of_a_running_container(engine: Engine) -> None:
    engine.cli("run", "-d", "--name", "r1", "busybox", "sh", "-c", f"echo live > /live; {FOREVER}")
    deadline = time.monotonic() + 10
    while "A /live\n" not in out(engine.cli("diff", "r1")):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for flags in ([], ["--pause=false"], ["-p=false"]):
        image_id = out(engine.cli("commit", *flags, "r1")).strip()
        assert out(engine.cli("run", "--rm", image_id, "cat", "/live")) == "live\n"
        state = json.loads(out(engine.cli("container", "inspect", "r1")))[0]["State"]
        assert state["Running"] and not state["Paused"], flags
    engine.cli("rm", "-f", "r1")


def test_commit_errors(engine: Engine) -> None:
    engine.cli("create", "--name", "e1", "busybox", "true")
    images = sorted(out(engine.cli("images", "-aq")).split())
    for args, message in (
        (["nosuch"], "Error response from daemon: No such container: nosuch\n"),
        (["e1", "BAD"], "invalid reference format: repository name (library/BAD) must be lowercase\n"),
        (["e1", "x@sha256:" + "a" * 64], "refusing to create a tag with a digest reference\n"),
        (["-c", "RUN true", "e1"], "Error response from daemon: run is not a valid change command\n"),
        (["-c", "ENV", "e1"], "Error response from daemon: ENV requires at least one argument\n"),
    ):
        r = engine.cli("commit", *args, check=False)
        assert (r.returncode, out(r), err(r)) == (1, "", message), args
    r = engine.cli("commit", check=False)
    assert r.returncode == 1 and "requires at least 1 and at most 2 arguments" in err(r)
    assert sorted(out(engine.cli("images", "-aq")).split()) == images  # nothing was made (order: by time, ties arbitrary)
