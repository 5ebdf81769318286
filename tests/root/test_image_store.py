"""The image service on a real root: import, load, save, tag, remove, garbage, crash leftovers."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tempfile

import pytest

from helpers import mounts_under
from layers import Image, config_for, docker_save_legacy, layer_tar, oci_layout, sha
from portside.errors import ArchiveError, Conflict, DataCorruption, InvalidArgument, NotFound
from portside.images import importer, load, save
from portside.images.service import ImageService
from portside.oci.reference import parse_docker_ref
from portside.snapshots.mount import unmount

pytestmark = pytest.mark.root

BASE = layer_tar({"bin/": None, "bin/tool": b"base tool", "etc/": None, "etc/motd": b"hello"})
TOP = layer_tar({"etc/": None, "etc/motd": b"changed", "etc/.wh.gone": b""})


@pytest.fixture
def service(tmp_path):
    svc = ImageService(str(tmp_path / "root"))
    yield svc
    svc.close()


def load_bytes(svc: ImageService, data: bytes) -> list[str]:
    lines: list[str] = []
    load.load(svc, io.BytesIO(data), progress=lines.append)
    return lines


def state(svc: ImageService) -> tuple[set[str], set[str], list[str]]:
    return ({i.digest for i in svc.content.walk()}, set(svc.snapshots.layers()), svc.db.image_ids())


def test_import_then_view_through_overlay(service, busybox_tar):
    with open(busybox_tar, "rb") as f:
        image_id = importer.import_image(service, f, ref=parse_docker_ref("busybox"), changes=['CMD ["sh"]'])
    image = service.get("busybox")
    assert image.id == image_id == service.get(image_id[7:19]).id == service.get("docker.io/library/busybox:latest").id
    assert image.config.config["Cmd"] == ["sh"]
    assert image.config.history[0]["comment"] == "Imported from -"
    assert image.row.size > 1_000_000
    target = tempfile.mkdtemp()
    try:
        for m in service.snapshots.view([image.row.layers[0].chain_id]):
            m.mount(target)
        try:
            out = subprocess.run(["chroot", target, "/bin/sh", "-c", "echo $((6*7)); ls /bin | wc -l"],
                                 capture_output=True, text=True, check=True).stdout.split()
            assert out[0] == "42" and int(out[1]) > 50
        finally:
            unmount(target)
    finally:
        os.rmdir(target)
    assert not mounts_under(target)


def test_gzip_import_stores_the_uncompressed_layer(service):
    layer = layer_tar({"a": b"1"})
    image_id = importer.import_image(service, io.BytesIO(gzip.compress(layer)), ref=None, changes=[])
    image = service.get(image_id)
    assert image.config.diff_ids == [sha(layer)]
    assert image.row.layers[0].blob_digest == sha(layer)
    assert image.tags == ()


def test_load_legacy_docker_save_with_shared_and_duplicate_layers(service):
    a = Image(config_for([BASE, TOP]), [BASE, TOP], ["app:1", "registry.local:5000/team/app:1"])
    b = Image(config_for([BASE, BASE], cmd=["true"]), [BASE, BASE], ["dup:latest"])
    lines = load_bytes(service, docker_save_legacy([a, b]))
    assert lines == ["Loaded image: app:1", "Loaded image: registry.local:5000/team/app:1",
                     "Loaded image: dup:latest"]
    assert service.get("app:1").id == a.id and service.get("dup").id == b.id
    # BASE is unpacked once as a base layer and shared by both images
    chains = {layer.chain_id for img in (a.id, b.id) for layer in service.get(img).row.layers}
    assert len(chains) == 3 and set(service.snapshots.layers()) == chains
    top = service.snapshots.layer_path(service.get("app:1").row.layers[1].chain_id)
    assert os.major(os.lstat(os.path.join(top, "etc", "gone")).st_rdev) == 0  # whiteout as a 0/0 char device
    with open(os.path.join(top, "etc", "motd"), "rb") as f:
        assert f.read() == b"changed"


@pytest.mark.parametrize("docker_manifest", [False, True])
def test_load_oci_layout_with_gzip_layers(service, docker_manifest):
    gz = gzip.compress(BASE)
    img = Image(config_for([gz]), [gz], ["docker.io/library/ocitest:2"])
    lines = load_bytes(service, oci_layout([img], layer_media_type="application/vnd.oci.image.layer.v1.tar+gzip",
                                           docker_manifest=docker_manifest))
    assert lines == ["Loaded image: ocitest:2"]
    assert service.get("ocitest:2").id == img.id


def test_load_oci_without_name_is_dangling(service):
    img = Image(config_for([BASE]), [BASE], [])
    assert load_bytes(service, oci_layout([img])) == [f"Loaded image ID: {img.id}"]
    assert service.get(img.id).tags == ()


def test_save_load_round_trip_keeps_the_id(service, tmp_path):
    img = Image(config_for([BASE, TOP]), [BASE, TOP], ["round:trip"])
    load_bytes(service, docker_save_legacy([img]))
    out = io.BytesIO()
    save.save(service, save.select(service, ["round:trip"]), out.write)
    other = ImageService(str(tmp_path / "other"))
    try:
        assert load_bytes(other, out.getvalue()) == ["Loaded image: round:trip"]
        assert other.get("round:trip").id == img.id
    finally:
        other.close()


def test_digest_mismatch_leaves_nothing(service):
    bad = Image(config_for([BASE]), [TOP], ["bad:1"])  # config's diff_id is not TOP's
    with pytest.raises(DataCorruption, match="diff ID mismatch"):
        load_bytes(service, docker_save_legacy([bad]))
    service.collect()
    assert state(service) == (set(), set(), [])
    assert os.listdir(service.snapshots.tmp_dir) == [] and os.listdir(service.content.ingest_dir) == []


def test_oci_blob_named_by_the_wrong_digest_is_refused(service):
    img = Image(config_for([BASE]), [BASE], ["x:1"])
    data = oci_layout([img]).replace(sha(BASE)[7:].encode(), sha(TOP)[7:].encode())
    with pytest.raises((DataCorruption, InvalidArgument)):
        load_bytes(service, data)
    service.collect()
    assert state(service)[2] == []


@pytest.mark.parametrize("garbage", [b"", b"not a tar at all" * 100, docker_save_legacy(
    [Image(config_for([BASE]), [BASE], ["t:1"])])[:3000]])
def test_garbage_archives_are_refused(service, garbage):
    with pytest.raises((ArchiveError, InvalidArgument)):
        load_bytes(service, garbage)
    service.collect()
    assert state(service) == (set(), set(), [])


def test_hostile_layer_in_load_leaves_nothing(service, tmp_path):
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../../escape")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    evil = buf.getvalue()
    with pytest.raises(ArchiveError, match="escape"):
        load_bytes(service, docker_save_legacy([Image(config_for([evil]), [evil], ["evil:1"])]))
    service.collect()
    assert state(service) == (set(), set(), [])
    assert not os.path.exists(os.path.join(os.path.dirname(service.root), "escape"))


def test_tag_and_remove_semantics(service):
    img = Image(config_for([BASE]), [BASE], ["one:1"])
    load_bytes(service, docker_save_legacy([img]))
    service.tag("one:1", parse_docker_ref("two"))
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        service.remove(img.id)
    assert service.remove("two") == [{"Untagged": "two:latest"}]
    records = service.remove("one:1")
    assert records[0] == {"Untagged": "one:1"} and records[1] == {"Deleted": img.id}
    assert state(service) == (set(), set(), [])
    with pytest.raises(NotFound, match="No such image: one:1"):
        service.get("one:1")


def test_force_remove_by_id_untags_everything(service):
    img = Image(config_for([BASE]), [BASE], ["a:1", "b:1"])
    load_bytes(service, docker_save_legacy([img]))
    records = service.remove(img.id[7:19], force=True)
    assert {"Untagged": "a:1"} in records and {"Untagged": "b:1"} in records and {"Deleted": img.id} in records
    assert state(service) == (set(), set(), [])


def test_image_used_by_a_container_is_refused(service):
    img = Image(config_for([BASE]), [BASE], ["used:1"])
    load_bytes(service, docker_save_legacy([img]))
    service.containers_using = lambda image_id: [("c" * 64, False)] if image_id == img.id else []
    with pytest.raises(Conflict, match="must be forced"):
        service.remove(img.id)
    with pytest.raises(Conflict, match="must force"):
        service.remove("used:1")
    service.containers_using = lambda image_id: [("c" * 64, True)]
    with pytest.raises(Conflict, match="cannot be forced"):
        service.remove(img.id, force=True)


def test_retag_moves_the_name_and_leaves_a_dangling_image(service):
    old = Image(config_for([BASE]), [BASE], ["moving:1"])
    new = Image(config_for([TOP], cmd=["new"]), [TOP], ["moving:1"])
    load_bytes(service, docker_save_legacy([old]))
    lines = load_bytes(service, docker_save_legacy([new]))
    assert lines[0] == f"The image moving:1 already exists, renaming the old one with ID {old.id} to empty string"
    assert service.get("moving:1").id == new.id
    assert service.get(old.id).tags == ()
    deleted, reclaimed = service.prune()
    assert {"Deleted": old.id} in deleted and reclaimed > 0
    assert service.db.image_ids() == [new.id]


def test_sweep_removes_what_a_crash_left(service):
    img = Image(config_for([BASE]), [BASE], ["kept:1"])
    load_bytes(service, docker_save_legacy([img]))
    kept = state(service)
    # a crash mid-load: an ingest, an unpack in progress, a committed layer and a blob no image references
    w = service.content.writer()
    w.write(b"partial")
    os.mkdir(os.path.join(service.snapshots.tmp_dir, "half"))
    orphan = service.content.put_bytes(b"orphan blob")
    os.mkdir(service.snapshots.layer_path(sha(b"orphan layer")))
    service.sweep()
    assert state(service) == kept and orphan.digest not in kept[0]
    assert os.listdir(service.content.ingest_dir) == [] and os.listdir(service.snapshots.tmp_dir) == []
    assert service.get("kept:1").id == img.id


BIG = layer_tar({"big/": None, "big/blob": os.urandom(3 << 20), "big/small": b"s"})
BIG2 = layer_tar({"other": os.urandom(2 << 20), "big/.wh.small": b""})


def _round_trip(service: ImageService, tmp_path, names: list[str]) -> bytes:
    out = io.BytesIO()
    save.save(service, save.select(service, names), out.write)
    return out.getvalue()


@pytest.mark.parametrize("form", ["legacy", "oci", "hybrid"])
def test_large_layers_are_unpacked_while_streaming_and_saved_back_exactly(service, tmp_path, form):
    img = Image(config_for([BIG, BIG2, BIG]), [BIG, BIG2, BIG], ["large:1"])  # BIG twice: two chain IDs
    data = docker_save_legacy([img]) if form == "legacy" else oci_layout([img], docker_manifest=form == "hybrid")
    assert load_bytes(service, data) == ["Loaded image: large:1"]
    image = service.get("large:1")
    # no layer blob is stored: the layers are kept as directories plus tar-splits
    assert {la.tarsplit is not None for la in image.row.layers} == {True}
    assert not any(service.content.exists(la.blob_digest) for la in image.row.layers)
    assert len(set(service.snapshots.layers())) == 3
    saved = _round_trip(service, tmp_path, ["large:1"])
    other = ImageService(str(tmp_path / "other"))
    try:
        assert load_bytes(other, saved) == ["Loaded image: large:1"]
        assert other.get("large:1").id == img.id
        import tarfile as _tf
        with _tf.open(fileobj=io.BytesIO(saved)) as tf:
            for raw in (BIG, BIG2):
                member = tf.extractfile("blobs/sha256/" + sha(raw)[7:])
                assert member is not None and member.read() == raw
    finally:
        other.close()
    assert os.listdir(service.snapshots.tmp_dir) == []


def test_a_layer_changed_on_disk_is_refused_on_save(service, tmp_path):
    load_bytes(service, docker_save_legacy([Image(config_for([BIG]), [BIG], ["tamper:1"])]))
    path = os.path.join(service.snapshots.layer_path(service.get("tamper:1").row.layers[0].chain_id), "big", "blob")
    with open(path, "r+b") as f:
        f.write(b"X")
    with pytest.raises(DataCorruption, match="changed on disk"):
        _round_trip(service, tmp_path, ["tamper:1"])


def test_unreferenced_large_tars_are_not_kept(service):
    # a large tar member no manifest names (and a hostile one): both discarded, no error
    import tarfile as _tf
    evil_buf = io.BytesIO()
    with _tf.open(fileobj=evil_buf, mode="w") as tf:
        info = _tf.TarInfo("../escape")
        info.size = 2 << 20
        tf.addfile(info, io.BytesIO(os.urandom(2 << 20)))
    img = Image(config_for([BASE]), [BASE], ["fine:1"])
    archive = io.BytesIO(docker_save_legacy([img]))
    buf = io.BytesIO()
    with _tf.open(fileobj=archive) as src, _tf.open(fileobj=buf, mode="w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        for name, data in (("extra/unused.tar", BIG), ("extra/evil.tar", evil_buf.getvalue())):
            info = _tf.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    assert load_bytes(service, buf.getvalue()) == ["Loaded image: fine:1"]
    service.collect()
    assert set(service.snapshots.layers()) == {service.get("fine:1").row.layers[0].chain_id}
    assert os.listdir(service.snapshots.tmp_dir) == []


def _whole(service: ImageService, image_id: str) -> bool:
    row = service.db.get_image(image_id)
    return row is not None and service.content.exists(image_id) and all(
        service.snapshots.has(la.chain_id) and (la.tarsplit is None or service.content.exists(la.tarsplit))
        for la in row.layers)


def test_collection_racing_imports_never_breaks_an_image(service):
    """rmi (and its collection) in one thread, imports in two others: every image stays whole."""
    import threading
    import time as _time

    deadline = _time.monotonic() + 3
    errors: list[BaseException] = []

    def churn() -> None:
        n = 0
        while _time.monotonic() < deadline:
            importer.import_image(service, io.BytesIO(layer_tar({f"f{i}": b"x" * 100 for i in range(300)}
                                                                | {"n": str(n).encode()})),
                                  ref=parse_docker_ref("churn:1"), changes=[])
            service.remove("churn:1")
            n += 1

    def small(prefix: str) -> None:
        n = 0
        while _time.monotonic() < deadline:
            importer.import_image(service, io.BytesIO(layer_tar({"id": f"{prefix}{n}".encode()})),
                                  ref=parse_docker_ref(f"small{prefix}:{n}"), changes=[])
            n += 1

    def guarded(fn, *args) -> None:
        try:
            fn(*args)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=a) for a in ((churn,), (small, "a"), (small, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    ids = service.db.image_ids()
    assert len(ids) > 10
    broken = [i for i in ids if not _whole(service, i)]
    assert broken == []
    assert len(service.images()) == len(ids)


def test_compressed_archives_load(service):
    import bz2
    import lzma

    import zstandard

    img = Image(config_for([BASE]), [BASE], ["packed:1"])
    plain = docker_save_legacy([img])
    for packed in (gzip.compress(plain), bz2.compress(plain), lzma.compress(plain),
                   zstandard.ZstdCompressor().compress(plain)):
        assert load_bytes(service, packed) == ["Loaded image: packed:1"]
    with pytest.raises(ArchiveError, match="invalid xz archive"):
        load_bytes(service, lzma.compress(plain)[:200])


def test_duplicate_member_names_leave_no_tmp_dirs(service):
    import tarfile as _tf
    img = Image(config_for([BIG]), [BIG], ["dup-members:1"])
    legacy = docker_save_legacy([img])
    buf = io.BytesIO()
    with _tf.open(fileobj=io.BytesIO(legacy)) as src, _tf.open(fileobj=buf, mode="w") as dst:
        for m in src.getmembers():
            copies = 3 if m.name.endswith("layer.tar") else 1
            for _ in range(copies):
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    assert load_bytes(service, buf.getvalue()) == ["Loaded image: dup-members:1"]
    assert os.listdir(service.snapshots.tmp_dir) == []


def test_malformed_repo_tags_are_refused(service):
    import json as _json
    import tarfile as _tf
    img = Image(config_for([BASE]), [BASE], ["x:1"])
    buf = io.BytesIO()
    with _tf.open(fileobj=io.BytesIO(docker_save_legacy([img]))) as src, _tf.open(fileobj=buf, mode="w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name == "manifest.json":
                doc = _json.loads(data)
                doc[0]["RepoTags"] = 5
                data = _json.dumps(doc).encode()
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    with pytest.raises(InvalidArgument, match="RepoTags must be a list"):
        load_bytes(service, buf.getvalue())


def test_a_damaged_image_is_skipped_by_listing_and_can_be_removed(service):
    img = Image(config_for([BASE]), [BASE], ["damaged:1"])
    load_bytes(service, docker_save_legacy([img]))
    os.unlink(service.content.blob_path(img.id))
    assert service.images() == []
    records = service.remove("damaged:1")
    assert {"Deleted": img.id} in records
    assert state(service) == (set(), set(), [])


def test_no_thread_is_left_behind_by_failed_unpacks(service):
    import threading
    before = threading.active_count()
    for _ in range(10):
        with pytest.raises(ArchiveError):
            importer.import_image(service, io.BytesIO(b"\x1f\x8b\x08garbage"), ref=None, changes=[])
        with pytest.raises(ArchiveError):
            importer.import_image(service, io.BytesIO(layer_tar({"a": b"1" * 2000})[:1000]), ref=None, changes=[])
    assert threading.active_count() == before


def test_save_of_a_repository_name_saves_all_its_tags(service):
    one = Image(config_for([BASE]), [BASE], ["repo:one"])
    two = Image(config_for([TOP], cmd=["two"]), [TOP], ["repo:two", "other:x"])
    load_bytes(service, docker_save_legacy([one, two]))
    selections = save.select(service, ["repo"])  # no repo:latest exists: still every tag of repo
    assert {(s.image.id, tuple(t.familiar() for t in s.tags)) for s in selections} == {
        (one.id, ("repo:one",)), (two.id, ("repo:two",))}
    assert [t.familiar() for t in save.select(service, ["other:x"])[0].tags] == ["other:x"]
    assert save.select(service, [two.id])[0].tags == []
    with pytest.raises(NotFound):
        save.select(service, ["nothing"])
