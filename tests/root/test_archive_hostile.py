"""apply_layer on hostile layers: each is refused, named, and nothing outside the root changes."""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from archive_helpers import (
    BLOCK,
    END_OF_ARCHIVE,
    Entry,
    NonSeekable,
    device,
    directory,
    file,
    hardlink,
    open_fds,
    padded,
    pipe,
    raw_file,
    raw_header,
    raw_pax,
    snapshot,
    symlink,
    tar_bytes,
)

from portside.archive import Compression, apply_layer, compressing_writer, decompressing_reader
from portside.errors import ArchiveError, InvalidArgument

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod, trusted xattrs)"),
]


@dataclass
class Scene:
    """A layer root with a sentinel and an attacker's target right next to it."""

    base: Path
    root: Path
    outside: Path

    def build(self) -> None:
        self.root.mkdir()
        (self.base / "sentinel").mkdir()
        (self.base / "sentinel" / "secret").write_bytes(b"do not touch")
        self.outside.mkdir()
        (self.outside / "file").write_bytes(b"original")


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    s = Scene(base=tmp_path, root=tmp_path / "root", outside=tmp_path / "outside")
    s.build()
    return s


def outside_state(scene: Scene) -> dict[str, tuple[object, ...]]:
    """Everything in the base directory except the layer root."""
    state = snapshot(scene.base).items
    return {k: v for k, v in state.items() if k != "root" and not k.startswith("root/")}


def gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    with compressing_writer(out, Compression.GZIP) as writer:
        writer.write(data)
    return out.getvalue()


def _layers(scene: Scene) -> dict[str, tuple[Callable[[], bytes], str]]:
    """id -> (layer builder, text the error must contain); built lazily, some are big."""
    out = str(scene.outside)
    first = raw_file(b"first", b"1")
    huge = (10 << 30).to_bytes(11, "big")
    return {
        "dotdot": (
            lambda: tar_bytes(file("../escape", b"x")),
            "'../escape': path escapes the layer root",
        ),
        "dotdot-deep": (
            lambda: tar_bytes(file("a/b/../../../escape", b"x")),
            "'a/b/../../../escape'",
        ),
        "dotdot-after-abs": (lambda: tar_bytes(file("/../../etc/x", b"x")), "'/../../etc/x'"),
        "dotdot-dir": (lambda: tar_bytes(directory("ok"), directory("ok/..")), "'ok/..'"),
        "nul-in-pax-path": (
            lambda: raw_pax([("path", b"a\x00b")]) + raw_file(b"plain", b"") + END_OF_ARCHIVE,
            "NUL",
        ),
        "write-through-symlink": (
            lambda: tar_bytes(symlink("evil", out), file("evil/file", b"pwned")),
            "'evil/file': path goes through the symlink 'evil'",
        ),
        "write-through-relative-symlink": (
            lambda: tar_bytes(symlink("evil", "../outside"), file("evil/file", b"pwned")),
            "'evil/file'",
        ),
        "dir-through-symlink": (
            lambda: tar_bytes(symlink("evil", out), directory("evil/sub")),
            "'evil/sub'",
        ),
        "symlink-chain": (
            lambda: tar_bytes(symlink("b", out), symlink("a", "b"), file("a/file", b"pwned")),
            "'a/file': path goes through the symlink 'a'",
        ),
        "symlink-deep-in-path": (
            lambda: tar_bytes(directory("x"), symlink("x/y", out), file("x/y/z/file", b"pwned")),
            "'x/y/z/file': path goes through the symlink 'x/y'",
        ),
        "symlink-through-symlink": (
            lambda: tar_bytes(symlink("evil", out), symlink("evil/link", "/etc/shadow")),
            "'evil/link'",
        ),
        "device-through-symlink": (
            lambda: tar_bytes(symlink("evil", out), fifo("evil/fifo")),
            "'evil/fifo'",
        ),
        "whiteout-through-symlink": (
            lambda: tar_bytes(symlink("evil", out), file("evil/.wh.file")),
            "'evil/.wh.file'",
        ),
        "opaque-through-symlink": (
            lambda: tar_bytes(symlink("evil", out), file("evil/.wh..wh..opq")),
            "'evil/.wh..wh..opq'",
        ),
        "file-below-a-file": (
            lambda: tar_bytes(file("f", b"x"), file("f/g", b"y")),
            "'f/g': path goes through 'f', which is not a directory",
        ),
        "hardlink-dotdot": (
            lambda: tar_bytes(hardlink("passwd", "../../etc/passwd")),
            "'passwd': path escapes the layer root",
        ),
        "hardlink-absolute-outside-layer": (
            lambda: tar_bytes(hardlink("passwd", "/etc/passwd")),
            "'passwd': hard link target '/etc/passwd'",
        ),
        "hardlink-through-symlink": (
            lambda: tar_bytes(symlink("s", "/etc"), hardlink("x", "s/passwd")),
            "'x': hard link target 's/passwd': path goes through the symlink 's'",
        ),
        "hardlink-through-symlink-to-outside": (
            lambda: tar_bytes(symlink("s", out), hardlink("x", "s/file")),
            "'x': hard link target",
        ),
        "hardlink-into-symlinked-dir": (
            lambda: tar_bytes(file("t", b"x"), symlink("s", out), hardlink("s/x", "t")),
            "'s/x': path goes through the symlink 's'",
        ),
        "hardlink-to-directory": (
            lambda: tar_bytes(directory("d"), hardlink("x", "d")),
            "'x': hard link target 'd' is a directory",
        ),
        "hardlink-to-itself": (
            lambda: tar_bytes(file("f"), hardlink("f", "f")),
            "'f': hard link to itself",
        ),
        "oversized-pax": (
            lambda: (
                first
                + raw_header(b"PaxHeaders/x", typeflag=b"x", size_field=b"\x80" + huge)
                + b"1" * (20 << 20)
            ),
            "extension header 'PaxHeaders/x' is 10737418240 bytes",
        ),
        "oversized-gnu-longname": (
            lambda: raw_header(b"././@LongLink", typeflag=b"L", size=5 << 20) + b"n" * (5 << 20),
            "extension header '././@LongLink' is 5242880 bytes",
        ),
        "oversized-global-pax": (
            lambda: (
                raw_header(b"pax_global_header", typeflag=b"g", size=2 << 20) + b"1" * (2 << 20)
            ),
            "is 2097152 bytes",
        ),
        "extension-header-chain": (
            lambda: (
                first
                + b"".join(raw_pax([("comment", b"x")]) for _ in range(50))
                + raw_file(b"f", b"")
            ),
            "more than 8 extension headers in a row (after entry 'first')",
        ),
        "negative-size": (
            lambda: first + raw_header(b"neg", size_field=b"\xff" * 12) + END_OF_ARCHIVE,
            "'neg' has a negative size",
        ),
        "negative-pax-size": (
            lambda: raw_pax([("size", b"-1024")]) + raw_file(b"neg", b"") + END_OF_ARCHIVE,
            "negative size",
        ),
        "truncated-header": (lambda: first + raw_header(b"second")[:300], "(after entry 'first')"),
        "truncated-data": (
            lambda: raw_header(b"cut", size=10000) + b"x" * 600,
            "'cut': unexpected end of data",
        ),
        "truncated-skipped-data": (
            lambda: raw_header(b".wh.skipped", size=10000) + b"x" * 600,
            "unexpected end of data (after entry '.wh.skipped')",
        ),
        "missing-header-after-pax": (lambda: raw_pax([("path", b"x")]), "PaxHeaders/entry"),
        "bad-checksum": (
            lambda: first + raw_header(b"second", checksum_delta=1) + END_OF_ARCHIVE,
            "bad tar header 'second'",
        ),
        "bad-checksum-first": (
            lambda: raw_header(b"only", checksum_delta=-7) + END_OF_ARCHIVE,
            "'only'",
        ),
        "bad-number": (
            lambda: (
                first + raw_header(b"junk-size", size_field=b"12zz45\x00     ") + END_OF_ARCHIVE
            ),
            "'junk-size'",
        ),
        "garbage": (lambda: os.urandom(4096), "invalid layer"),
        "pax-garbage": (
            lambda: (
                first
                + raw_header(b"PaxHeaders/x", typeflag=b"x", size=20)
                + padded(b"not a record at all!")
                + raw_file(b"f", b"")
            ),
            "(after entry 'first')",
        ),
        "pax-record-length-lies": (
            lambda: (
                raw_pax([("path", b"x")])[:BLOCK]
                + padded(b"1 a=b\n99 path=y\n")
                + raw_file(b"f", b"")
            ),
            "malformed pax record",
        ),
        "gnu-sparse": (
            lambda: raw_header(b"holes", typeflag=b"S", size=0) + END_OF_ARCHIVE,
            "GNU sparse file",
        ),
        "pax-gnu-sparse": (
            lambda: (
                raw_pax([("GNU.sparse.map", b"0,10"), ("GNU.sparse.size", b"10")])
                + raw_file(b"f", b"")
                + END_OF_ARCHIVE
            ),
            "GNU sparse file",
        ),
        "unsupported-type": (
            lambda: raw_header(b"vol", typeflag=b"V") + END_OF_ARCHIVE,
            "'vol': unsupported entry type",
        ),
        "bad-owner": (
            lambda: raw_pax([("uid", b"4294967295")]) + raw_file(b"owned", b"") + END_OF_ARCHIVE,
            "'owned': invalid owner 4294967295:0",
        ),
        "bad-pax-time": (
            lambda: raw_pax([("mtime", b"1e999999999")]) + raw_file(b"timed", b"") + END_OF_ARCHIVE,
            "'timed': invalid pax mtime",
        ),
        "whiteout-of-nothing": (
            lambda: tar_bytes(file("a/.wh.")),
            "'a/.wh.': whiteout does not name a file",
        ),
        "root-replaced": (lambda: tar_bytes(file("./", b"")), "entry would replace the layer root"),
        "name-too-long": (lambda: tar_bytes(file("n" * 300, b"")), "File name too long"),
    }


def fifo(name: str) -> Entry:
    return device(name, tarfile.FIFOTYPE)


CASES = sorted(_layers(Scene(Path("/x"), Path("/x/root"), Path("/x/outside"))))


@pytest.mark.parametrize("case", CASES)
def test_hostile_layer_is_refused(scene: Scene, case: str) -> None:
    build, expected = _layers(scene)[case]
    layer = build()
    before = outside_state(scene)
    fds = open_fds()
    started = time.monotonic()
    source = NonSeekable(layer)
    with pytest.raises(ArchiveError) as caught:
        apply_layer(cast(BinaryIO, source), scene.root)
    assert expected in str(caught.value)
    assert isinstance(caught.value, InvalidArgument)
    assert open_fds() == fds
    assert outside_state(scene) == before
    assert time.monotonic() - started < 5
    # Refused before tarfile buffered the body of an oversized header.
    assert source.consumed < (3 << 20) or not case.startswith("oversized")


def test_absolute_paths_stay_inside(scene: Scene) -> None:
    before = outside_state(scene)
    apply_layer(
        pipe(
            tar_bytes(
                file(f"{scene.outside}/file", b"inside"),
                directory("/etc"),
                file("//etc///passwd", b"root"),
                hardlink("/etc/passwd-", "/etc/passwd"),
            )
        ),
        scene.root,
    )
    assert outside_state(scene) == before
    assert (scene.root / str(scene.outside).lstrip("/") / "file").read_bytes() == b"inside"
    assert (scene.root / "etc/passwd-").read_bytes() == b"root"


def test_entries_replace_symlinks_instead_of_following_them(scene: Scene) -> None:
    out = str(scene.outside)
    before = outside_state(scene)
    apply_layer(
        pipe(
            tar_bytes(
                symlink("f", f"{out}/file"),
                file("f", b"replaced"),
                symlink("d", out),
                directory("d", mode=0o700),
                file("d/x", b"inside"),
                symlink("w", f"{out}/file"),
                file(".wh.w"),
                symlink("n", f"{out}/file"),
                fifo("n"),
                file("t", b"t"),
                symlink("h", f"{out}/file"),
                hardlink("h", "t"),
            )
        ),
        scene.root,
    )
    assert outside_state(scene) == before
    assert (scene.root / "f").read_bytes() == b"replaced"
    assert (scene.root / "d/x").read_bytes() == b"inside"
    assert os.lstat(scene.root / "h").st_ino == os.lstat(scene.root / "t").st_ino


def test_symlinks_are_data_and_may_point_anywhere(scene: Scene) -> None:
    apply_layer(
        pipe(
            tar_bytes(
                symlink("passwd", "/etc/passwd"),
                symlink("up", "../../../../"),
            )
        ),
        scene.root,
    )
    assert os.readlink(scene.root / "passwd") == "/etc/passwd"
    assert os.readlink(scene.root / "up") == "../../../../"


def _bomb(content: bytes, *, entries: int = 1) -> bytes:
    return gzip(tar_bytes(*(file(f"zeros{i}", content) for i in range(entries))))


def test_gzip_bomb_single_entry(scene: Scene) -> None:
    blob = _bomb(b"\0" * (8 << 20))
    assert len(blob) < (8 << 20) // 100
    _, plain = decompressing_reader(pipe(blob))
    with pytest.raises(
        ArchiveError, match=r"'zeros0': layer expands beyond 1048576 bytes \(decompression bomb\?\)"
    ):
        apply_layer(plain, scene.root, max_bytes=1 << 20)
    # Refused on the declared size: not a byte written.
    assert list(scene.root.iterdir()) == []


def test_gzip_bomb_many_entries(scene: Scene) -> None:
    _, plain = decompressing_reader(pipe(_bomb(b"\0" * (100 << 10), entries=20)))
    with pytest.raises(ArchiveError, match=r"'zeros10': layer expands beyond 1048576 bytes"):
        apply_layer(plain, scene.root, max_bytes=1 << 20)


def test_gzip_bomb_after_the_end_of_the_archive(scene: Scene) -> None:
    blob = gzip(tar_bytes(file("small", b"x")) + b"\0" * (16 << 20))
    _, plain = decompressing_reader(pipe(blob))
    with pytest.raises(ArchiveError, match="after the end of the archive"):
        apply_layer(plain, scene.root, max_bytes=1 << 20)


def test_max_bytes_allows_what_fits(scene: Scene) -> None:
    _, plain = decompressing_reader(pipe(_bomb(b"\0" * (100 << 10), entries=5)))
    assert apply_layer(plain, scene.root, max_bytes=1 << 20).size == 5 * (100 << 10)


def test_corrupt_gzip_names_the_entry(scene: Scene) -> None:
    blob = bytearray(gzip(tar_bytes(file("a", os.urandom(200_000)), file("b", b"b"))))
    blob[len(blob) // 2 : len(blob) // 2 + 64] = b"\xff" * 64
    _, plain = decompressing_reader(pipe(bytes(blob)))
    with pytest.raises(ArchiveError, match="invalid gzip layer stream"):
        apply_layer(plain, scene.root)


def test_header_errors_do_not_end_the_archive_quietly(scene: Scene) -> None:
    # tarfile alone would stop at the bad block and report a shorter, valid layer.
    layer = (
        raw_file(b"a", b"1")
        + raw_header(b"b", checksum_delta=3)
        + raw_file(b"c", b"3")
        + END_OF_ARCHIVE
    )
    with pytest.raises(ArchiveError, match="bad tar header 'b'"):
        apply_layer(pipe(layer), scene.root)
    assert len(layer) % BLOCK == 0


def test_pax_header_parsing_is_linear(scene: Scene) -> None:
    # CPython 3.11.7's own pax parser backtracks quadratically on long digit
    # runs (CVE-2024-6232): this header would take it about twenty minutes.
    digits = b"7" * ((1 << 20) - 64)  # just under the 1 MiB limit on extension headers
    layer = raw_pax([("comment", digits)]) + raw_file(b"f", b"x") + END_OF_ARCHIVE
    started = time.monotonic()
    apply_layer(pipe(layer), scene.root)
    assert time.monotonic() - started < 2
    assert (scene.root / "f").read_bytes() == b"x"
