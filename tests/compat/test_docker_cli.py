"""The real docker CLI (`docker` on PATH, 28.x here) against a portside daemon.

Every command runs with ``DOCKER_HOST=unix://<the test daemon's socket>`` and a
private ``DOCKER_CONFIG``; what is asserted is what a user sees: exit codes,
tables, messages, the JSON of ``inspect``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile

import pytest

import portside

pytestmark = [pytest.mark.root, pytest.mark.peers]

HEX64 = re.compile(r"^sha256:[0-9a-f]{64}$")


@pytest.fixture
def docker(daemon, docker_client):
    """The docker CLI against the test daemon (a conftest.DockerCLI)."""
    return docker_client(daemon.host)


@pytest.fixture
def busybox(docker, busybox_tar: str) -> str:
    """busybox:latest imported with the docker CLI; returns the image ID."""
    image_id = docker("import", "-c", 'CMD ["sh"]', busybox_tar, "busybox:latest").out.strip()
    assert HEX64.match(image_id), image_id
    return image_id


def table(text: str) -> list[dict[str, str]]:
    """Docker's tables: columns are separated by two spaces or more."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    return [dict(zip(header, re.split(r"\s{2,}", line.strip()))) for line in lines[1:]]


def header(text: str) -> list[str]:
    return re.split(r"\s{2,}", text.splitlines()[0].strip())


def docker_size(rootfs_tar: str) -> int:
    """The size Docker reports for a one-layer image of this tarball.

    Docker sums the lstat sizes of everything but directories in the layer,
    counting a hard-linked inode once (moby pkg/directory.Size): regular
    file bytes plus symlink target lengths; hard links add nothing.
    """
    total = 0
    with tarfile.open(rootfs_tar) as tf:
        for member in tf:
            if member.isreg():
                total += member.size
            elif member.issym():
                total += len(member.linkname.encode())
    return total


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# -- the server ------------------------------------------------------------------


def test_version_shows_the_server(docker):
    out = docker("version").out
    assert "Server: portside" in out
    assert docker("version", "--format", "{{.Server.Version}}").out.strip() == portside.__version__
    api = docker("version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}").out.split()
    assert api[2] == "linux"
    assert tuple(map(int, api[0].split("."))) >= (1, 41) and api[1] == "1.24"
    # The client negotiated down to the server's version (an older client stays at its own).
    client = docker("version", "--format", "{{.Client.APIVersion}}").out.strip()
    assert tuple(map(int, client.split("."))) <= tuple(map(int, api[0].split(".")))


def test_info(docker, busybox):
    out = docker("info").out
    assert f"Server Version: {portside.__version__}" in out
    assert "Storage Driver: overlay2" in out
    assert "Images: 1" in out
    doc = json.loads(docker("info", "--format", "{{json .}}").out)
    assert doc["Images"] == 1 and doc["Driver"] == "overlay2" and doc["OSType"] == "linux"
    assert doc["ServerVersion"] == portside.__version__


# -- import ------------------------------------------------------------------------


def test_import_from_a_file_with_cmd(docker, busybox, busybox_tar):
    doc = json.loads(docker("image", "inspect", busybox).out)[0]
    assert doc["Id"] == busybox
    assert doc["RepoTags"] == ["busybox:latest"]
    assert doc["Config"]["Cmd"] == ["sh"]
    # An uncompressed tarball is the layer itself: its digest is the diff ID.
    assert doc["RootFS"] == {"Type": "layers", "Layers": [sha256_file(busybox_tar)]}
    assert doc["Comment"] == "Imported from -"


def test_import_from_stdin_with_env(docker, busybox_tar):
    with open(busybox_tar, "rb") as f:
        data = f.read()
    image_id = docker("import", "-c", "ENV A=1", "-", "envimg:1", input=data).out.strip()
    assert HEX64.match(image_id)
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", "envimg:1").out)
    assert config["Env"] == ["A=1"]
    assert config.get("Cmd") is None  # the CLI drops empty fields when it renders .Config


def test_import_with_several_changes_and_no_name(docker, busybox_tar):
    image_id = docker("import", "-c", 'CMD ["sh"]', "-c", "ENV A=1", "-c", "WORKDIR /tmp", busybox_tar).out.strip()
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image_id).out)
    assert (config["Cmd"], config["Env"], config.get("WorkingDir")) == (["sh"], ["A=1"], "/tmp")
    assert docker("image", "inspect", "-f", "{{json .RepoTags}}", image_id).out.strip() == "[]"


# -- images ------------------------------------------------------------------------


def test_images_default_table(docker, busybox):
    out = docker("images").out
    assert header(out) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    rows = table(out)
    assert len(rows) == 1
    row = rows[0]
    assert (row["REPOSITORY"], row["TAG"], row["IMAGE ID"]) == ("busybox", "latest", busybox[7:19])
    assert row["CREATED"].endswith("ago")
    assert re.fullmatch(r"\d+(\.\d+)?[kMG]?B", row["SIZE"]), row["SIZE"]


def test_images_quiet(docker, busybox, busybox_tar):
    other = docker("import", busybox_tar, "other:1").out.strip()
    docker("tag", "busybox", "busybox:again")
    ids = docker("images", "-q").out.split()
    # One line per (image, tag) pair, as Docker prints them.
    assert sorted(ids) == sorted([busybox[7:19], busybox[7:19], other[7:19]])


def test_images_no_trunc(docker, busybox):
    rows = table(docker("images", "--no-trunc").out)
    assert rows[0]["IMAGE ID"] == busybox


def test_images_digests(docker, busybox):
    out = docker("images", "--digests").out
    assert header(out) == ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    row = table(out)[0]
    assert (row["REPOSITORY"], row["DIGEST"], row["IMAGE ID"]) == ("busybox", "<none>", busybox[7:19])


def test_images_filter_dangling(docker, busybox, busybox_tar):
    dangling = docker("import", "-c", "ENV X=1", busybox_tar).out.strip()
    rows = table(docker("images", "--filter", "dangling=true").out)
    assert [(r["REPOSITORY"], r["TAG"], r["IMAGE ID"]) for r in rows] == [("<none>", "<none>", dangling[7:19])]
    rows = table(docker("images", "--filter", "dangling=false").out)
    assert [r["IMAGE ID"] for r in rows] == [busybox[7:19]]


def test_images_filter_reference_glob(docker, busybox, busybox_tar):
    docker("import", busybox_tar, "other:1")
    docker("tag", "busybox", "bus2:x")
    rows = table(docker("images", "--filter", "reference=bus*").out)
    assert sorted((r["REPOSITORY"], r["TAG"]) for r in rows) == [("bus2", "x"), ("busybox", "latest")]
    rows = table(docker("images", "--filter", "reference=*:1").out)
    assert [(r["REPOSITORY"], r["TAG"]) for r in rows] == [("other", "1")]


def test_images_format_json(docker, busybox):
    lines = docker("images", "--format", "{{json .}}").out.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert (doc["Repository"], doc["Tag"], doc["ID"], doc["Digest"]) == ("busybox", "latest", busybox[7:19], "<none>")
    assert {"CreatedAt", "CreatedSince", "Size", "Containers"} <= doc.keys()


def test_images_size_counts_hard_links_once(docker, busybox, busybox_tar):
    # /bin/busybox and its ~270 applets are one inode: Docker counts it once.
    size = int(docker("image", "inspect", "-f", "{{.Size}}", busybox).out)
    assert size == docker_size(busybox_tar)


# -- inspect, tag, history -----------------------------------------------------------


def test_image_inspect_shape_and_format(docker, busybox):
    docs = json.loads(docker("image", "inspect", "busybox").out)
    assert isinstance(docs, list) and len(docs) == 1
    doc = docs[0]
    assert doc["Id"] == busybox
    assert doc["RepoTags"] == ["busybox:latest"] and doc["RepoDigests"] == []
    assert doc["Config"]["Cmd"] == ["sh"]
    assert len(doc["RootFS"]["Layers"]) == 1 and HEX64.match(doc["RootFS"]["Layers"][0])
    machine = os.uname().machine
    assert (doc["Os"], doc["Architecture"]) == ("linux", {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine))
    assert docker("image", "inspect", "-f", "{{.Id}}", "busybox").out.strip() == busybox
    assert docker("image", "inspect", "-f", "{{.Id}}", busybox[7:19]).out.strip() == busybox


def test_image_inspect_missing(docker):
    r = docker("image", "inspect", "nope", check=False)
    assert r.rc == 1
    assert "No such image: nope" in r.err


def test_tag_with_registry_and_namespace(docker, busybox):
    docker("tag", "busybox", "localhost:5000/ns/app:tag")
    rows = table(docker("images").out)
    assert sorted((r["REPOSITORY"], r["TAG"], r["IMAGE ID"]) for r in rows) == [
        ("busybox", "latest", busybox[7:19]), ("localhost:5000/ns/app", "tag", busybox[7:19])]
    tags = json.loads(docker("image", "inspect", "-f", "{{json .RepoTags}}", busybox).out)
    assert sorted(tags) == ["busybox:latest", "localhost:5000/ns/app:tag"]
    assert docker("image", "inspect", "-f", "{{.Id}}", "localhost:5000/ns/app:tag").out.strip() == busybox


def test_tag_refuses_an_invalid_name(docker, busybox):
    r = docker("tag", "busybox", "Bad:x", check=False)
    assert r.rc == 1
    # The CLI checks the name itself; 20.10's message does not name the repository.
    assert r.err.startswith('Error parsing reference: "Bad:x" is not a valid repository/tag: ')
    assert r.err.rstrip().endswith("must be lowercase")


def test_history(docker, busybox):
    out = docker("history", "busybox").out
    assert header(out) == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    lines = [line for line in out.splitlines()[1:] if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(busybox[7:19]) and lines[0].rstrip().endswith("Imported from -")
    full = docker("history", "--no-trunc", "--format", "{{.ID}}|{{.Comment}}", "busybox").out.splitlines()
    assert full == [f"{busybox}|Imported from -"]


# -- save, rmi, load -----------------------------------------------------------------


def test_save_rmi_load_keeps_the_id(docker, busybox, tmp_path):
    docker("tag", "busybox", "localhost:5000/ns/app:tag")
    archive = str(tmp_path / "images.tar")
    docker("save", "-o", archive, "busybox", "localhost:5000/ns/app:tag")
    with tarfile.open(archive) as tf:
        names = set(tf.getnames())
    assert {"manifest.json", "index.json", "oci-layout"} <= names
    out = docker("rmi", "busybox", "localhost:5000/ns/app:tag").out.splitlines()
    assert out[:2] == ["Untagged: busybox:latest", "Untagged: localhost:5000/ns/app:tag"]
    assert f"Deleted: {busybox}" in out
    assert docker("images", "-q").out.strip() == ""
    out = docker("load", "-i", archive).out.splitlines()
    assert out == ["Loaded image: busybox:latest", "Loaded image: localhost:5000/ns/app:tag"]
    assert docker("image", "inspect", "-f", "{{.Id}}", "busybox").out.strip() == busybox
    assert docker("image", "inspect", "-f", "{{.Id}}", "localhost:5000/ns/app:tag").out.strip() == busybox


def test_save_to_stdout_and_load_from_stdin(docker, busybox):
    data = docker("save", "busybox").raw
    docker("rmi", "busybox")
    assert docker("load", input=data).out.strip() == "Loaded image: busybox:latest"
    assert docker.image_id("busybox") == busybox


def test_load_refuses_garbage(docker):
    r = docker("load", input=b"this is not a tarball\n" * 100, check=False)
    assert r.rc == 1
    assert r.err.startswith("Error response from daemon: ")


def test_rmi_missing_image(docker):
    r = docker("rmi", "nope", check=False)
    assert r.rc == 1
    if docker.client_version() < (23,):
        assert r.err == "Error: No such image: nope\n"  # 20.10's CLI words a 404 itself
    else:
        assert r.err == "Error response from daemon: No such image: nope:latest\n"


def test_rmi_id_with_two_tags_needs_force(docker, busybox):
    docker("tag", "busybox", "localhost:5000/ns/app:tag")
    r = docker("rmi", busybox[7:19], check=False)
    assert r.rc == 1
    assert r.err == (f"Error response from daemon: conflict: unable to delete {busybox[7:19]} (must be forced)"
                     " - image is referenced in multiple repositories\n")
    assert docker.image_id("busybox") == busybox
    out = docker("rmi", "-f", busybox[7:19]).out.splitlines()
    assert sorted(out[:2]) == ["Untagged: busybox:latest", "Untagged: localhost:5000/ns/app:tag"]
    assert out[2] == f"Deleted: {busybox}"
    assert docker("images", "-q").out.strip() == ""


def test_rmi_one_of_two_tags_only_untags(docker, busybox):
    docker("tag", "busybox", "second:1")
    assert docker("rmi", "second:1").out == "Untagged: second:1\n"
    assert docker.image_id("busybox") == busybox


def test_image_prune_removes_only_dangling(docker, busybox, busybox_tar):
    dangling = docker("import", "-c", "ENV X=1", busybox_tar).out.strip()
    out = docker("image", "prune", "-f").out
    assert out.startswith(f"Deleted Images:\ndeleted: {dangling}\n")
    assert "Total reclaimed space: " in out
    assert docker("images", "-q", "--no-trunc").out.split() == [busybox]
    # Nothing left to prune.
    assert docker("image", "prune", "-f").out.strip() == "Total reclaimed space: 0B"


def test_system_df(docker, busybox):
    out = docker("system", "df").out
    assert header(out) == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    rows = {r["TYPE"]: r for r in table(out)}
    assert (rows["Images"]["TOTAL"], rows["Images"]["ACTIVE"]) == ("1", "0")
    assert rows["Images"]["RECLAIMABLE"].endswith("(100%)")
    assert rows["Containers"]["TOTAL"] == "0"
    verbose = docker("system", "df", "-v").out
    assert "Images space usage:" in verbose and busybox[7:19] in verbose


# -- older API versions --------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.41", "1.24"])
def test_old_api_version(docker, busybox, version):
    env = {"DOCKER_API_VERSION": version}
    assert docker("version", "--format", "{{.Client.APIVersion}}", env=env).out.strip() == version
    rows = table(docker("images", env=env).out)
    assert [(r["REPOSITORY"], r["TAG"], r["IMAGE ID"]) for r in rows] == [("busybox", "latest", busybox[7:19])]
    assert docker("image", "inspect", "-f", "{{.Id}}", "busybox", env=env).out.strip() == busybox


def test_load_error_reaches_the_client_while_it_is_still_sending(docker, tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(os.urandom(5_000_000))
    results = [docker("load", "-i", str(path), check=False) for _ in range(20)]
    assert {r.rc for r in results} == {1}
    lost = [r.err.strip() for r in results if not r.err.startswith("Error response from daemon: ")]
    assert not lost, f"{len(lost)} of 20 answers lost, e.g. {lost[0]!r}"
