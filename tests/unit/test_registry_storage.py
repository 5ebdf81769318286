"""The registry's Storage protocol over FileStorage, and gc, without a server.

Written against the protocol's methods only, so a second backend can run the same cases.
"""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest

from portside.errors import DataCorruption, NotFound
from portside.registry import gc
from portside.registry.names import valid_name, valid_tag
from portside.registry.storage import FileStorage, OutOfOrder, UploadUnknown


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Dropping(io.RawIOBase):
    """A body whose connection drops after ``n`` bytes."""

    def __init__(self, data: bytes, n: int) -> None:
        self._data, self._n, self._pos = data, n, 0

    def read(self, size: int | None = -1) -> bytes:
        if self._pos >= self._n:
            raise ConnectionError("gone")
        size = self._n - self._pos if size is None or size < 0 else min(size, self._n - self._pos)
        out = self._data[self._pos:self._pos + size]
        self._pos += len(out)
        return out


@pytest.fixture
def storage(tmp_path: object) -> FileStorage:
    return FileStorage(str(tmp_path))


def test_upload_session_chunks_order_resume_and_finish(storage: FileStorage) -> None:
    data = os.urandom(3 << 20)
    up = storage.start_upload("a/b")
    assert storage.append("a/b", up.uuid, io.BytesIO(data[:1000]), 1000, 0).offset == 1000
    with pytest.raises(OutOfOrder) as e:
        storage.append("a/b", up.uuid, io.BytesIO(b"x"), 1, 5)
    assert e.value.offset == 1000
    # a chunk cut short leaves the session at the last byte received, hash included
    with pytest.raises(ConnectionError):
        storage.append("a/b", up.uuid, Dropping(data[1000:], 500_000), len(data) - 1000, 1000)
    assert storage.upload("a/b", up.uuid).offset == 501_000
    storage.append("a/b", up.uuid, io.BytesIO(data[501_000:]), None, 501_000)
    with pytest.raises(UploadUnknown):
        storage.upload("other", up.uuid)  # a session belongs to its repository
    with pytest.raises(DataCorruption):
        storage.finish_upload("a/b", up.uuid, sha(b"wrong"))
    assert not list(storage.walk_blobs())
    assert storage.finish_upload("a/b", up.uuid, sha(data)) == len(data)
    assert storage.has_blob_link("a/b", sha(data)) and not storage.has_blob_link("c", sha(data))
    with storage.open_blob(sha(data)) as f:
        assert f.read() == data
    with pytest.raises(UploadUnknown):
        storage.upload("a/b", up.uuid)
    with pytest.raises(UploadUnknown):
        storage.upload("a/b", "../../etc")


def test_session_survives_a_restart(storage: FileStorage) -> None:
    up = storage.start_upload("r")
    storage.append("r", up.uuid, io.BytesIO(b"hello "), 6, 0)
    again = FileStorage(storage.root)  # a new process: the hash is rebuilt from the data file
    again.append("r", up.uuid, io.BytesIO(b"world"), 5, 6)
    assert again.finish_upload("r", up.uuid, sha(b"hello world")) == 11


def test_monolithic_put_verifies_and_leaves_nothing_on_failure(storage: FileStorage) -> None:
    with pytest.raises(DataCorruption):
        storage.put_blob(io.BytesIO(b"abc"), 3, sha(b"abd"))
    with pytest.raises(ConnectionError):
        storage.put_blob(Dropping(b"abcdef", 3), 6, sha(b"abcdef"))
    assert not list(storage.walk_blobs()) and os.listdir(storage.content.ingest_dir) == []
    assert storage.put_blob(io.BytesIO(b"abc"), None, sha(b"abc")) == 3
    assert storage.blob_size(sha(b"abc")) == 3


def test_expired_sessions_are_purged(storage: FileStorage) -> None:
    up = storage.start_upload("r")
    assert storage.expire_uploads(older_than=0) == 0
    assert storage.expire_uploads(older_than=2**40) == 1
    with pytest.raises(UploadUnknown):
        storage.upload("r", up.uuid)


def test_tags_manifests_referrers(storage: FileStorage) -> None:
    with pytest.raises(NotFound):
        storage.tags("nothing")
    doc = b'{"schemaVersion":2}'
    storage.put_manifest("r", sha(doc), "application/vnd.oci.image.manifest.v1+json", doc)
    storage.set_tag("r", "b", sha(doc))
    storage.set_tag("r", "a", sha(doc))
    assert storage.tags("r") == ["a", "b"] and storage.tag("r", "a") == sha(doc)
    assert storage.manifest("r", sha(doc)) == ("application/vnd.oci.image.manifest.v1+json", doc)
    assert not storage.has_manifest("other", sha(doc))
    storage.add_referrer("r", sha(b"subject"), {"digest": sha(doc), "size": len(doc)})
    assert storage.referrers("r", sha(b"subject")) == [{"digest": sha(doc), "size": len(doc)}]
    storage.remove_referrer("r", sha(b"subject"), sha(doc))
    assert storage.referrers("r", sha(b"subject")) == []
    assert storage.repositories() == ["r"]


def _image(storage: FileStorage, repo: str, layer: bytes, tag: str | None) -> str:
    for blob in (layer, b"{}"):
        storage.put_blob(io.BytesIO(blob), len(blob), sha(blob))
        storage.link_blob(repo, sha(blob))
    doc = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "x", "digest": sha(b"{}"), "size": 2},
                      "layers": [{"mediaType": "y", "digest": sha(layer), "size": len(layer)}]}).encode()
    storage.put_manifest(repo, sha(doc), "application/vnd.oci.image.manifest.v1+json", doc)
    if tag:
        storage.set_tag(repo, tag, sha(doc))
    return sha(doc)


def test_gc_marks_tagged_untagged_and_sweeps(storage: FileStorage) -> None:
    tagged = _image(storage, "r", b"kept layer", "v1")
    untagged = _image(storage, "r", b"untagged layer", None)
    storage.put_blob(io.BytesIO(b"orphan"), 6, sha(b"orphan"))
    storage.link_blob("r", sha(b"orphan"))
    report = gc.collect(storage, dry_run=True)
    assert report.blobs_deleted == [sha(b"orphan")] and sha(b"orphan") in set(storage.walk_blobs())
    gc.collect(storage)
    assert sha(b"orphan") not in set(storage.walk_blobs()) and not storage.has_blob_link("r", sha(b"orphan"))
    assert sha(b"untagged layer") in set(storage.walk_blobs())
    report = gc.collect(storage, delete_untagged=True)
    assert report.manifests_deleted == [("r", untagged)]
    assert set(storage.walk_blobs()) == {tagged, sha(b"kept layer"), sha(b"{}")}


def test_name_and_tag_grammar() -> None:
    for ok in ("a", "a/b", "a-b/c__d", "a.b/c--d", "x" * 255):
        assert valid_name(ok), ok
    for bad in ("", "A", "a/", "/a", "a//b", "..", "a/../b", "a/.b", "-a", "a-", "a___b", "x" * 256, "a\\b"):
        assert not valid_name(bad), bad
    assert valid_tag("v1.0_-x") and valid_tag("_") and valid_tag("A" * 128)
    for bad in ("", ".x", "-x", "a/b", "A" * 129, ".."):
        assert not valid_tag(bad), bad


def test_config_toml_and_json(tmp_path: object) -> None:
    from portside.errors import InvalidArgument
    from portside.registry import config

    d = str(tmp_path)
    with open(os.path.join(d, "key"), "w") as f:
        f.write("s3cret-key\n")
    with open(os.path.join(d, "r.toml"), "w") as f:
        f.write('addr = "127.0.0.1:5001"\nroot = "data"\nread_only = true\n'
                '[tls]\ncert = "c.crt"\nkey = "c.key"\n'
                '[auth.token]\nsecret_file = "key"\nservice = "svc"\nhtpasswd = "users"\n')
    cfg = config.load(os.path.join(d, "r.toml"))
    assert cfg.host_port == ("127.0.0.1", 5001) and cfg.read_only
    assert cfg.root == os.path.join(d, "data") and cfg.tls_cert == os.path.join(d, "c.crt")
    assert cfg.token is not None and cfg.token.secret == b"s3cret-key" and cfg.token.service == "svc"
    assert cfg.token.htpasswd == os.path.join(d, "users") and cfg.token.realm == ""
    with open(os.path.join(d, "r.json"), "w") as f:
        json.dump({"auth": {"htpasswd": {"path": "/etc/h"}}, "upload_ttl": 5}, f)
    cfg = config.load(os.path.join(d, "r.json"))
    assert cfg.htpasswd == "/etc/h" and cfg.upload_ttl == 5 and cfg.token is None
    with open(os.path.join(d, "bad.json"), "w") as f:
        f.write("{auth")
    with pytest.raises(InvalidArgument):
        config.load(os.path.join(d, "bad.json"))
    with open(os.path.join(d, "bad.json"), "w") as f:
        json.dump({"upload_ttl": "soon"}, f)
    with pytest.raises(InvalidArgument, match="upload_ttl must be int or float"):
        config.load(os.path.join(d, "bad.json"))
