"""Images moving between portside and real peers: podman, skopeo, dockerd (docker.io 20.10).

Two subjects travel: ``busybox`` (the busybox rootfs imported into portside,
one uncompressed layer of hard links) and ``layered`` (built with
tests/layers.py: three layers, a plain whiteout, an opaque directory, a
symlink, the middle layer gzip-compressed, loaded into portside from a legacy
``docker save`` tarball). The image ID is the config digest everywhere, so
"the same image" means the same ID in both engines; where a peer rewrites the
config on the way (containers/image converting a Docker manifest to OCI), the
expected ID is the one of the config the peer wrote, and the layers (diff IDs)
must be unchanged.

docs/interop.md is the matrix these tests establish.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
import urllib.parse
from dataclasses import dataclass

import pytest

from layers import Image, config_for, docker_save_legacy, layer_tar

pytestmark = [pytest.mark.root, pytest.mark.peers]


# -- portside through its API -------------------------------------------------------


def _stream(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def portside_import(daemon, tar_path: str, ref: str, changes: list[str]) -> str:
    repo, _, tag = ref.rpartition(":")
    query = urllib.parse.urlencode([("fromSrc", "-"), ("repo", repo), ("tag", tag)]
                                   + [("changes", c) for c in changes])
    with open(tar_path, "rb") as f:
        status, _, body = daemon.api.request("POST", "/images/create?" + query, f.read())
    assert status == 200, body
    return str(_stream(body)[-1]["status"])


def portside_load(daemon, data: bytes) -> list[str]:
    """POST /images/load; the ``Loaded image...`` lines."""
    status, _, body = daemon.api.request("POST", "/images/load", data,
                                         headers={"Content-Type": "application/x-tar"})
    assert status == 200, body
    lines = _stream(body)
    errors = [line for line in lines if "error" in line]
    assert not errors, errors
    return [str(line["stream"]).rstrip("\n") for line in lines]


def portside_save(daemon, *names: str) -> bytes:
    status, _, body = daemon.api.request("GET", "/images/get?" + urllib.parse.urlencode([("names", n) for n in names]))
    assert status == 200, body
    return body


def portside_inspect(daemon, name: str) -> dict:
    return daemon.api.json("GET", f"/images/{name}/json")


def portside_tag(daemon, name: str, target: str) -> None:
    repo, _, tag = target.rpartition(":")
    status, _, body = daemon.api.request("POST", f"/images/{name}/tag?"
                                         + urllib.parse.urlencode({"repo": repo, "tag": tag}))
    assert status == 201, body


def portside_remove(daemon, name: str) -> None:
    daemon.api.json("DELETE", f"/images/{name}?force=1")


def write(path: str, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return path


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def tar_directory(directory: str) -> bytes:
    """An OCI layout directory as a tarball, its files at the top (as `tar -C dir -c .` would)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(os.listdir(directory)):
            tf.add(os.path.join(directory, name), arcname=name)
    return buf.getvalue()


def oci_images(reader) -> list[tuple[str, str, list[str]]]:
    """(config digest, ref.name annotation, layer media types) of each image in an OCI layout."""
    out = []
    for entry in json.loads(reader("index.json"))["manifests"]:
        manifest = json.loads(reader("blobs/sha256/" + entry["digest"].split(":")[1]))
        name = (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name", "")
        out.append((manifest["config"]["digest"], name, [layer["mediaType"] for layer in manifest["layers"]]))
    return out


def tar_reader(data: bytes):
    tf = tarfile.open(fileobj=io.BytesIO(data))

    def reader(name: str) -> bytes:
        f = tf.extractfile(name)
        assert f is not None, name
        return f.read()
    return reader


def dir_reader(directory: str):
    return lambda name: read(os.path.join(directory, name))


# -- the subjects ---------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    ref: str        # the familiar name portside and docker print
    full: str       # the fully qualified name podman prints
    id: str
    diff_ids: list[str]


def layered_image() -> Image:
    base = layer_tar({"bin/": None, "bin/tool": b"base tool\n", "etc/": None, "etc/motd": b"hello\n",
                      "etc/gone": b"to be whited out\n", "opt/": None, "opt/old-a": b"a\n", "opt/old-b": b"b\n"},
                     symlinks={"bin/tool-link": "tool"})
    middle = gzip.compress(layer_tar({"etc/": None, "etc/motd": b"changed\n", "etc/.wh.gone": b"",
                                      "opt/": None, "opt/.wh..wh..opq": b"", "opt/new": b"new\n"}), mtime=0)
    top = layer_tar({"usr/": None, "usr/share/": None, "usr/share/doc.txt": b"documentation\n" * 5000})
    layers = [base, middle, top]
    return Image(config_for(layers, cmd=["/bin/tool"], labels={"org.example.subject": "layered"}), layers,
                 ["localhost:5000/interop/layered:v1"])


def make_subject(name: str, daemon, busybox_tar: str) -> Subject:
    if name == "busybox":
        image_id = portside_import(daemon, busybox_tar, "busybox:latest", ['CMD ["sh"]'])
        ref, full = "busybox:latest", "docker.io/library/busybox:latest"
    else:
        image = layered_image()
        assert portside_load(daemon, docker_save_legacy([image])) == [f"Loaded image: {image.tags[0]}"]
        image_id, ref, full = image.id, image.tags[0], image.tags[0]
    doc = portside_inspect(daemon, ref)
    assert doc["Id"] == image_id
    return Subject(ref, full, image_id, doc["RootFS"]["Layers"])


@pytest.fixture(params=["busybox", "layered"])
def subject(request, daemon, busybox_tar) -> Subject:
    return make_subject(request.param, daemon, busybox_tar)


@pytest.fixture
def both(daemon, busybox_tar) -> tuple[Subject, Subject]:
    return make_subject("busybox", daemon, busybox_tar), make_subject("layered", daemon, busybox_tar)


def assert_in_portside(daemon, subject: Subject, *, image_id: str | None = None) -> None:
    doc = portside_inspect(daemon, subject.ref)
    assert doc["Id"] == (image_id or subject.id)
    assert subject.ref in doc["RepoTags"]
    assert doc["RootFS"]["Layers"] == subject.diff_ids


def test_layered_subject_is_what_it_claims(daemon, busybox_tar):
    subject = make_subject("layered", daemon, busybox_tar)
    assert len(subject.diff_ids) == 3
    saved = portside_save(daemon, subject.ref)
    [(config, _, media_types)] = oci_images(tar_reader(saved))
    assert config == subject.id
    assert media_types == ["application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
                           "application/vnd.oci.image.layer.v1.tar"]


# -- podman ---------------------------------------------------------------------------


def test_podman_loads_portside_save(daemon, podman, subject, tmp_path):
    archive = write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref))
    podman("load", "-i", archive)
    assert podman.images() == {(subject.id, subject.full)}


def test_podman_loads_a_multi_image_save(daemon, podman, both, tmp_path):
    busybox, layered = both
    portside_tag(daemon, "busybox:latest", "localhost:5000/ns/app:tag")
    archive = write(str(tmp_path / "s.tar"),
                    portside_save(daemon, "busybox:latest", "localhost:5000/ns/app:tag", layered.ref))
    podman("load", "-i", archive)
    # With several images podman reads manifest.json (docker-archive) and, as for
    # any Docker archive, names the short name busybox:latest localhost/busybox.
    assert podman.images() == {(busybox.id, "localhost/busybox:latest"),
                               (busybox.id, "localhost:5000/ns/app:tag"),
                               (layered.id, layered.full)}


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_portside_loads_podman_save(daemon, podman, subject, fmt, tmp_path):
    podman("load", "-i", write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref)))
    out = str(tmp_path / "podman.tar")
    podman("save", "--format", fmt, "-o", out, subject.full)
    portside_remove(daemon, subject.id)
    assert portside_load(daemon, read(out)) == [f"Loaded image: {subject.ref}"]
    assert_in_portside(daemon, subject)


def test_podman_oci_archive_of_a_docker_archive_image_has_a_new_id(daemon, podman, both, tmp_path):
    busybox, layered = both
    archive = write(str(tmp_path / "s.tar"), portside_save(daemon, busybox.ref, layered.ref))
    podman("load", "-i", archive)  # two images: podman reads it as docker-archive
    out = str(tmp_path / "podman.tar")
    podman("save", "--format", "oci-archive", "-o", out, "localhost/busybox:latest")
    [(config, _, _)] = oci_images(tar_reader(read(out)))
    # containers/image converted the Docker manifest to OCI and re-serialised the config.
    assert config != busybox.id
    portside_remove(daemon, busybox.id)
    portside_load(daemon, read(out))
    doc = portside_inspect(daemon, config)
    assert doc["RootFS"]["Layers"] == busybox.diff_ids
    assert doc["Config"]["Cmd"] == ["sh"]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_portside_loads_a_podman_made_image(daemon, podman, busybox_tar, fmt, tmp_path):
    podman("import", "--change", 'CMD ["sh"]', busybox_tar, "localhost/made:1")
    [(podman_id, _)] = podman.images()
    out = str(tmp_path / "podman.tar")
    podman("save", "--format", fmt, "-o", out, "localhost/made:1")
    assert portside_load(daemon, read(out)) == ["Loaded image: localhost/made:1"]
    doc = portside_inspect(daemon, "localhost/made:1")
    assert doc["Id"] == podman_id
    assert doc["Config"]["Cmd"] == ["sh"]


def test_portside_loads_a_podman_multi_image_archive(daemon, podman, busybox_tar, tmp_path):
    podman("import", "--change", 'CMD ["sh"]', busybox_tar, "localhost/a:1")
    podman("import", busybox_tar, "localhost/b:1")  # another config, the same layer
    expected = podman.images()
    out = str(tmp_path / "multi.tar")
    podman("save", "--multi-image-archive", "-o", out, "localhost/a:1", "localhost/b:1")
    assert sorted(portside_load(daemon, read(out))) == ["Loaded image: localhost/a:1", "Loaded image: localhost/b:1"]
    assert {(portside_inspect(daemon, name)["Id"], name) for name in ("localhost/a:1", "localhost/b:1")} == expected


def test_podman_save_oci_dir(daemon, podman, tmp_path):
    podman("import", _empty_rootfs(tmp_path), "localhost/empty:1")
    out = str(tmp_path / "oci-dir")
    podman("save", "--format", "oci-dir", "-o", out, "localhost/empty:1")
    if os.path.isdir(out):
        pytest.skip("podman save --format oci-dir writes a directory, not a tarball: nothing `load` reads as is "
                    "(skopeo's oci: directory, tarred, is tested below)")
    [(config, _, _)] = oci_images(tar_reader(read(out)))
    portside_load(daemon, read(out))
    assert portside_inspect(daemon, config)["Id"] == config


def _empty_rootfs(tmp_path) -> str:
    path = str(tmp_path / "empty.tar")
    write(path, layer_tar({"etc/": None, "etc/hostname": b"empty\n"}))
    return path


# -- skopeo ---------------------------------------------------------------------------


def test_skopeo_docker_archive_to_oci_archive(daemon, skopeo, subject, tmp_path):
    saved = write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref))
    out = str(tmp_path / "oci.tar")
    skopeo("copy", f"docker-archive:{saved}", f"oci-archive:{out}:{subject.ref}")
    [(config, name, _)] = oci_images(tar_reader(read(out)))
    assert name == subject.ref
    # Converting a Docker manifest to OCI, containers/image re-serialises the
    # config (Go's OCI struct order): a new ID, the same layers.
    portside_remove(daemon, subject.id)
    assert portside_load(daemon, read(out)) == [f"Loaded image: {subject.ref}"]
    assert_in_portside(daemon, subject, image_id=config)


def test_skopeo_oci_archive_to_oci_archive_keeps_the_id(daemon, skopeo, subject, tmp_path):
    saved = write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref))
    out = str(tmp_path / "oci.tar")
    # portside's save is an OCI layout too; its ref.name is the tag, as Docker 25 writes it.
    tag = subject.ref.rpartition(":")[2]
    skopeo("copy", f"oci-archive:{saved}:{tag}", f"oci-archive:{out}:{subject.ref}")
    [(config, _, _)] = oci_images(tar_reader(read(out)))
    assert config == subject.id
    portside_remove(daemon, subject.id)
    assert portside_load(daemon, read(out)) == [f"Loaded image: {subject.ref}"]
    assert_in_portside(daemon, subject)


def test_skopeo_zstd_layers(daemon, skopeo, subject, tmp_path):
    saved = write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref))
    out = str(tmp_path / "zstd.tar")
    skopeo("copy", "--dest-compress", "--dest-compress-format", "zstd", f"docker-archive:{saved}",
           f"oci-archive:{out}:{subject.ref}")
    [(config, _, media_types)] = oci_images(tar_reader(read(out)))
    assert set(media_types) == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    portside_remove(daemon, subject.id)
    assert portside_load(daemon, read(out)) == [f"Loaded image: {subject.ref}"]
    assert_in_portside(daemon, subject, image_id=config)


def test_skopeo_oci_to_docker_archive_keeps_the_id(daemon, skopeo, subject, tmp_path):
    saved = write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref))
    out = str(tmp_path / "docker.tar")
    tag = subject.ref.rpartition(":")[2]
    skopeo("copy", f"oci-archive:{saved}:{tag}", f"docker-archive:{out}:{subject.ref}")
    with tarfile.open(out) as tf:
        assert "index.json" not in tf.getnames()  # the legacy form
    portside_remove(daemon, subject.id)
    assert portside_load(daemon, read(out)) == [f"Loaded image: {subject.ref}"]
    assert_in_portside(daemon, subject)


@pytest.mark.parametrize("naming", ["tag", "reference"])
def test_skopeo_oci_directory_tarred(daemon, skopeo, subject, naming, tmp_path):
    saved = write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref))
    directory = str(tmp_path / "layout")
    ref_name = subject.ref.rpartition(":")[2] if naming == "tag" else subject.ref
    skopeo("copy", f"docker-archive:{saved}", f"oci:{directory}:{ref_name}")
    [(config, _, _)] = oci_images(dir_reader(directory))
    portside_remove(daemon, subject.id)
    loaded = portside_load(daemon, tar_directory(directory))
    if naming == "tag":
        # A bare tag names no repository: the image loads untagged, by ID.
        assert loaded == [f"Loaded image ID: {config}"]
        doc = portside_inspect(daemon, config)
        assert doc["RepoTags"] == [] and doc["RootFS"]["Layers"] == subject.diff_ids
    else:
        assert loaded == [f"Loaded image: {subject.ref}"]
        assert_in_portside(daemon, subject, image_id=config)


def test_podman_and_portside_agree_on_a_converted_archive(daemon, podman, skopeo, subject, tmp_path):
    saved = write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref))
    out = str(tmp_path / "oci.tar")
    skopeo("copy", f"docker-archive:{saved}", f"oci-archive:{out}:{subject.full}")
    podman("load", "-i", out)
    [(podman_id, podman_name)] = podman.images()
    portside_remove(daemon, subject.id)
    portside_load(daemon, read(out))
    assert podman_name == subject.full
    assert portside_inspect(daemon, subject.ref)["Id"] == podman_id


# -- umoci ----------------------------------------------------------------------------


def test_umoci_unpacks_portside_save(daemon, umoci, busybox_tar, tmp_path):
    subject = make_subject("layered", daemon, busybox_tar)
    layout, bundle = str(tmp_path / "layout"), str(tmp_path / "bundle")
    os.makedirs(layout)
    with tarfile.open(fileobj=io.BytesIO(portside_save(daemon, subject.ref))) as tf:
        tf.extractall(layout, filter="data")
    umoci("unpack", "--image", f"{layout}:v1", bundle)
    rootfs = os.path.join(bundle, "rootfs")
    assert read(os.path.join(rootfs, "etc/motd")) == b"changed\n"
    assert not os.path.lexists(os.path.join(rootfs, "etc/gone"))        # whiteout
    assert os.listdir(os.path.join(rootfs, "opt")) == ["new"]           # opaque directory
    assert os.readlink(os.path.join(rootfs, "bin/tool-link")) == "tool"
    assert read(os.path.join(rootfs, "usr/share/doc.txt")) == b"documentation\n" * 5000
    config = json.loads(read(os.path.join(bundle, "config.json")))
    assert config["process"]["args"] == ["/bin/tool"]


def test_portside_loads_an_umoci_made_image(daemon, umoci, tmp_path):
    # Layers made with `umoci repack` (umoci 0.4.7's `insert` writes truncated tars: see docs/interop.md).
    layout, bundle = str(tmp_path / "layout"), str(tmp_path / "bundle")
    name = "localhost:5000/umoci/made:v1"
    image = f"{layout}:{name}"
    umoci("init", "--layout", layout)
    umoci("new", "--image", image)
    umoci("unpack", "--image", image, bundle)
    etc = os.path.join(bundle, "rootfs", "etc")
    os.makedirs(etc)
    write(os.path.join(etc, "hello"), b"hi\n")
    write(os.path.join(etc, "bye"), b"bye\n")
    umoci("repack", "--refresh-bundle", "--image", image, bundle)
    os.unlink(os.path.join(etc, "bye"))  # the second layer whites it out
    umoci("repack", "--image", image, bundle)
    umoci("config", "--image", image, "--config.cmd", "sh", "--config.env", "A=1")
    [(config, ref_name, media_types)] = oci_images(dir_reader(layout))
    assert ref_name == name and len(media_types) == 2
    assert portside_load(daemon, tar_directory(layout)) == [f"Loaded image: {name}"]
    doc = portside_inspect(daemon, name)
    assert doc["Id"] == config
    assert (doc["Config"]["Cmd"], doc["Config"]["Env"]) == (["sh"], ["A=1"])


# -- archives tarred by hand ------------------------------------------------------------


def test_portside_loads_a_layout_tarred_with_tar_c_dot(daemon, skopeo, busybox_tar, tmp_path):
    subject = make_subject("layered", daemon, busybox_tar)  # small: the error answer is not lost (see test_docker_cli)
    saved = write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref))
    directory = str(tmp_path / "layout")
    skopeo("copy", f"oci-archive:{saved}:v1", f"oci:{directory}:{subject.ref}")
    archive = str(tmp_path / "dot.tar")
    subprocess.run(["tar", "-C", directory, "-cf", archive, "."], check=True)
    with tarfile.open(archive) as tf:
        assert tf.getnames()[0] == "."  # tarfile's name for the ./ entry
    portside_remove(daemon, subject.id)
    assert portside_load(daemon, read(archive)) == [f"Loaded image: {subject.ref}"]
    assert_in_portside(daemon, subject)


# -- dockerd (docker.io 20.10) ----------------------------------------------------------


def test_dockerd_flags_exist_and_host_network_is_untouched(dockerd):
    help_text = subprocess.run([dockerd.binary, "--help"], capture_output=True, text=True).stdout
    for flag in dockerd.flags:
        assert flag.split("=")[0] in help_text, flag
    assert dockerd.cli("version", "--format", "{{.Server.APIVersion}}").out.strip() == "1.41"
    assert dockerd.network_changes() == {}


def test_dockerd_loads_portside_save(daemon, dockerd, subject, tmp_path):
    archive = write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref))
    assert dockerd.cli("load", "-i", archive).out.strip() == f"Loaded image: {subject.ref}"
    assert dockerd.cli.image_id(subject.ref) == subject.id
    layers = json.loads(dockerd.cli("image", "inspect", "-f", "{{json .RootFS.Layers}}", subject.ref).out)
    assert layers == subject.diff_ids


def test_dockerd_loads_a_multi_image_save(daemon, dockerd, both, tmp_path):
    busybox, layered = both
    portside_tag(daemon, "busybox:latest", "localhost:5000/ns/app:tag")
    archive = write(str(tmp_path / "s.tar"),
                    portside_save(daemon, "busybox:latest", "localhost:5000/ns/app:tag", layered.ref))
    out = dockerd.cli("load", "-i", archive).out.splitlines()
    assert sorted(out) == sorted(["Loaded image: busybox:latest", "Loaded image: localhost:5000/ns/app:tag",
                                  f"Loaded image: {layered.ref}"])
    for name, image_id in [("busybox:latest", busybox.id), ("localhost:5000/ns/app:tag", busybox.id),
                           (layered.ref, layered.id)]:
        assert dockerd.cli.image_id(name) == image_id


def test_portside_loads_dockerd_save(daemon, dockerd, subject, tmp_path):
    dockerd.cli("load", "-i", write(str(tmp_path / "s.tar"), portside_save(daemon, subject.ref)))
    out = str(tmp_path / "docker.tar")
    dockerd.cli("save", "-o", out, subject.ref)
    with tarfile.open(out) as tf:
        names = tf.getnames()
    # 20.10 writes the legacy form: a directory per layer, no OCI layout.
    assert "manifest.json" in names and "index.json" not in names
    assert sum(n.endswith("/layer.tar") for n in names) == len(subject.diff_ids)
    portside_remove(daemon, subject.id)
    assert portside_load(daemon, read(out)) == [f"Loaded image: {subject.ref}"]
    assert_in_portside(daemon, subject)


def test_portside_loads_a_dockerd_multi_image_save(daemon, dockerd, tmp_path):
    # Two images on one base layer: 20.10 writes the shared layer's directory once.
    base = layer_tar({"etc/": None, "etc/base": b"base\n"})
    images = [Image(config_for([base, layer_tar({f"srv/{n}": n.encode()})], labels={"n": n}),
                    [base, layer_tar({f"srv/{n}": n.encode()})], [f"localhost:5000/shared/{n}:1"]) for n in ("a", "b")]
    portside_load(daemon, docker_save_legacy(images, duplicate_as_symlink=False))
    names = [image.tags[0] for image in images]
    dockerd.cli("load", "-i", write(str(tmp_path / "s.tar"), portside_save(daemon, *names)))
    out = str(tmp_path / "docker.tar")
    dockerd.cli("save", "-o", out, *names)
    with tarfile.open(out) as tf:
        assert sum(n.endswith("/layer.tar") for n in tf.getnames()) == 3
    for image in images:
        portside_remove(daemon, image.id)
    assert sorted(portside_load(daemon, read(out))) == [f"Loaded image: {n}" for n in names]
    for image in images:
        assert portside_inspect(daemon, image.tags[0])["Id"] == image.id


def _without_tail(layer: bytes) -> bytes:
    """The layer's tar stream cut right after its last file's data: no padding, no end-of-archive blocks."""
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        last = tf.getmembers()[-1]
    return layer[:last.offset_data + last.size]


def test_layer_without_end_of_archive_blocks(daemon, dockerd, tmp_path):
    base = layer_tar({"etc/": None, "etc/hello": b"hi\n"})
    cut = _without_tail(layer_tar({"etc/": None, "etc/bye": b"bye\n"}))
    assert len(cut) % 512 != 0
    image = Image(config_for([base, cut]), [base, cut], ["localhost:5000/cut/tail:1"])
    archive = write(str(tmp_path / "cut.tar"), docker_save_legacy([image]))
    assert dockerd.cli("load", "-i", archive).out.strip() == "Loaded image: localhost:5000/cut/tail:1"
    assert dockerd.cli.image_id("localhost:5000/cut/tail:1") == image.id
    assert portside_load(daemon, read(archive)) == ["Loaded image: localhost:5000/cut/tail:1"]
    assert portside_inspect(daemon, image.id)["Id"] == image.id


def test_portside_loads_a_dockerd_made_image(daemon, dockerd, busybox_tar, tmp_path):
    image_id = dockerd.cli("import", "-c", 'CMD ["sh"]', busybox_tar, "made-by-docker:1").out.strip()
    out = str(tmp_path / "docker.tar")
    dockerd.cli("save", "-o", out, "made-by-docker:1")
    assert portside_load(daemon, read(out)) == ["Loaded image: made-by-docker:1"]
    doc = portside_inspect(daemon, "made-by-docker:1")
    assert doc["Id"] == image_id
    assert doc["DockerVersion"].startswith("20.10")
    dockerd.cli("rmi", "made-by-docker:1")


@pytest.mark.parametrize("how", [
    "busybox-imported",
    "busybox-loaded",
    "layered-loaded",
])
def test_image_size_matches_dockerd(daemon, dockerd, busybox_tar, how, tmp_path):
    subject = make_subject(how.split("-")[0], daemon, busybox_tar)
    saved = portside_save(daemon, subject.ref)
    dockerd.cli("load", "-i", write(str(tmp_path / "s.tar"), saved))
    docker_size = int(dockerd.cli("image", "inspect", "-f", "{{.Size}}", subject.ref).out)
    if how.endswith("loaded") and subject.ref.startswith("busybox"):
        portside_remove(daemon, subject.id)  # the layer is collected; the load unpacks it again
        portside_load(daemon, saved)
    assert portside_inspect(daemon, subject.ref)["Size"] == docker_size
