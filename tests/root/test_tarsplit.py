"""Tar-split: a layer applied with a recorder comes back byte for byte from headers + files."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from portside.archive.apply import apply_layer
from portside.archive.tarsplit import TarSplitRecorder, reassemble
from portside.errors import ArchiveError, DataCorruption

pytestmark = pytest.mark.root


def _tar(entries, fmt=tarfile.PAX_FORMAT, trailing=b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000.5
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif kind == "file":
                info.size = len(data)
                info.pax_headers = {"SCHILY.xattr.user.k": "v"} if name.endswith("x") else {}
                tf.addfile(info, io.BytesIO(data))
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, data
                tf.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tf.addfile(info)
    return buf.getvalue() + trailing


CASES = {
    "plain": [("a", "dir", None), ("a/one", "file", b"1" * 1000), ("a/x", "file", os.urandom(3 << 20))],
    "replaced-in-layer": [("f", "file", b"first"), ("f", "file", b"second version")],
    "whiteout-of-own-file": [("d", "dir", None), ("d/f", "file", b"gone"), ("d/.wh.f", "file", b"")],
    "dir-replaced-by-file": [("d", "dir", None), ("d/inner", "file", b"inner data"), ("d", "file", b"now a file")],
    "hardlink-then-original-replaced": [("orig", "file", b"shared"), ("link", "hardlink", "orig"),
                                        ("orig", "file", b"new")],
    "long-names": [("p/" + "n" * 200, "file", b"long"), ("s", "symlink", "t" * 300)],
    "empty": [],
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_round_trip(tmp_path, case, fmt):
    data = _tar(CASES[case], fmt, trailing=b"\0" * 7000 if case == "plain" else b"")
    root = tmp_path / "layer"
    root.mkdir()
    with TarSplitRecorder() as recorder:
        apply_layer(io.BytesIO(data), root, recorder=recorder)
        split = _serialized(recorder)
    out = io.BytesIO()
    digest, size = reassemble(io.BytesIO(split), str(root), out.write)
    assert out.getvalue() == data
    assert (digest, size) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def test_a_changed_layer_does_not_reassemble(tmp_path):
    data = _tar(CASES["plain"])
    root = tmp_path / "layer"
    root.mkdir()
    with TarSplitRecorder() as recorder:
        apply_layer(io.BytesIO(data), root, recorder=recorder)
        split = _serialized(recorder)
    (root / "a" / "one").write_bytes(b"2" * 1000)  # same size, other bytes
    digest, _ = reassemble(io.BytesIO(split), str(root), lambda b: None)
    assert digest != "sha256:" + hashlib.sha256(data).hexdigest()
    os.unlink(root / "a" / "one")
    with pytest.raises(DataCorruption, match="a/one"):
        reassemble(io.BytesIO(split), str(root), lambda b: None)
    with pytest.raises(DataCorruption):
        reassemble(io.BytesIO(b"garbage"), str(root), lambda b: None)


def _serialized(recorder: TarSplitRecorder) -> bytes:
    out = io.BytesIO()
    recorder.write_to(out.write)
    return out.getvalue()


def test_headers_are_spooled_and_bounded(tmp_path):
    """Hundreds of thousands of headers from a small upload go to disk, within a budget."""
    entries = [(f"d{i}", "dir", None) for i in range(20000)]
    data = _tar(entries, tarfile.USTAR_FORMAT)
    root = tmp_path / "layer"
    root.mkdir()
    with TarSplitRecorder(max_bytes=1 << 20) as recorder, pytest.raises(ArchiveError, match="exceed"):
        apply_layer(io.BytesIO(data), root, recorder=recorder)
