import hashlib
import os

import pytest

from portside.content.store import FileContentStore
from portside.errors import DataCorruption, NotFound
from portside.oci.digest import chain_ids, sha256_bytes


def test_write_commit_read(tmp_path):
    store = FileContentStore(str(tmp_path))
    data = os.urandom(3 << 20)
    with store.writer() as w:
        w.write(data[:100])
        w.write(data[100:])
        info = w.commit(sha256_bytes(data), len(data))
    assert info.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert store.info(info.digest).size == len(data)
    with store.open(info.digest) as f:
        assert f.read() == data
    assert list(store.walk()) == [info]
    assert os.listdir(store.ingest_dir) == []


def test_mismatch_leaves_nothing(tmp_path):
    store = FileContentStore(str(tmp_path))
    with pytest.raises(DataCorruption, match="digest mismatch"):
        with store.writer() as w:
            w.write(b"hello")
            w.commit(sha256_bytes(b"other"))
    assert list(store.walk()) == []
    assert os.listdir(store.ingest_dir) == []


def test_abandoned_writer_is_removed(tmp_path):
    store = FileContentStore(str(tmp_path))
    with store.writer() as w:
        w.write(b"partial")
    assert os.listdir(store.ingest_dir) == []


def test_sweep_removes_crash_leftovers(tmp_path):
    store = FileContentStore(str(tmp_path))
    w = store.writer()
    w.write(b"half written")  # a crash here: never committed nor aborted
    assert store.sweep() == 1
    assert os.listdir(store.ingest_dir) == []


def test_read_bytes_verifies(tmp_path):
    store = FileContentStore(str(tmp_path))
    info = store.put_bytes(b"{}")
    assert store.read_bytes(info.digest) == b"{}"
    with open(store.blob_path(info.digest), "wb") as f:
        f.write(b"tampered")
    with pytest.raises(DataCorruption):
        store.read_bytes(info.digest)
    with pytest.raises(NotFound):
        store.info(sha256_bytes(b"absent"))


def test_duplicate_commit_is_idempotent(tmp_path):
    store = FileContentStore(str(tmp_path))
    a = store.put_bytes(b"same")
    b = store.put_bytes(b"same")
    assert a == b and len(list(store.walk())) == 1


def test_chain_ids_follow_the_oci_spec():
    d1, d2 = sha256_bytes(b"1"), sha256_bytes(b"2")
    assert chain_ids([d1, d2]) == [d1, sha256_bytes(f"{d1} {d2}".encode())]
    assert chain_ids([]) == []
