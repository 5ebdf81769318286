"""Builders for layer tarballs, well-formed and hostile, used by the archive tests.

Well-formed layers go through tarfile; hostile ones are put together from raw
512-byte ustar blocks so that every field (sizes, checksums, types) can lie.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO, cast

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)


@dataclass
class Entry:
    info: tarfile.TarInfo
    data: bytes | None = None


@dataclass
class Snapshot:
    """Everything observable about a directory tree, symlinks not followed."""

    items: dict[str, tuple[object, ...]] = field(default_factory=dict)


def _info(
    name: str,
    kind: bytes,
    *,
    mode: int,
    uid: int,
    gid: int,
    mtime: float,
    pax: dict[str, str] | None,
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = uid
    info.gid = gid
    info.mtime = mtime
    info.uname = "ignored-user"
    info.gname = "ignored-group"
    if pax:
        info.pax_headers = dict(pax)
    return info


def file(
    name: str,
    data: bytes = b"",
    *,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: float = 1_600_000_000,
    pax: dict[str, str] | None = None,
) -> Entry:
    info = _info(name, tarfile.REGTYPE, mode=mode, uid=uid, gid=gid, mtime=mtime, pax=pax)
    info.size = len(data)
    return Entry(info, data)


def directory(
    name: str,
    *,
    mode: int = 0o755,
    uid: int = 0,
    gid: int = 0,
    mtime: float = 1_600_000_000,
    pax: dict[str, str] | None = None,
) -> Entry:
    return Entry(_info(name, tarfile.DIRTYPE, mode=mode, uid=uid, gid=gid, mtime=mtime, pax=pax))


def symlink(
    name: str, target: str, *, uid: int = 0, gid: int = 0, mtime: float = 1_600_000_000
) -> Entry:
    info = _info(name, tarfile.SYMTYPE, mode=0o777, uid=uid, gid=gid, mtime=mtime, pax=None)
    info.linkname = target
    return Entry(info)


def hardlink(name: str, target: str) -> Entry:
    info = _info(name, tarfile.LNKTYPE, mode=0o644, uid=0, gid=0, mtime=0, pax=None)
    info.linkname = target
    return Entry(info)


def device(
    name: str,
    kind: bytes,
    major: int = 0,
    minor: int = 0,
    *,
    mode: int = 0o666,
    uid: int = 0,
    gid: int = 0,
) -> Entry:
    info = _info(name, kind, mode=mode, uid=uid, gid=gid, mtime=1_600_000_000, pax=None)
    info.devmajor = major
    info.devminor = minor
    return Entry(info)


def tar_bytes(*entries: Entry, fmt: int = tarfile.PAX_FORMAT, trailer: bool = True) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for entry in entries:
            tar.addfile(entry.info, io.BytesIO(entry.data) if entry.data is not None else None)
    data = out.getvalue()
    if not trailer:
        data = data.rstrip(b"\0")
        data += b"\0" * (-len(data) % BLOCK)
    return data


def raw_header(
    name: bytes,
    *,
    typeflag: bytes = b"0",
    size: int = 0,
    size_field: bytes | None = None,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    linkname: bytes = b"",
    checksum_delta: int = 0,
) -> bytes:
    """One ustar header block; ``size_field`` overrides the encoded size (base-256, junk...)."""

    def octal(value: int, width: int) -> bytes:
        return b"%0*o\0" % (width - 1, value)

    block = bytearray(BLOCK)
    block[0:100] = name.ljust(100, b"\0")[:100]
    block[100:108] = octal(mode, 8)
    block[108:116] = octal(uid, 8)
    block[116:124] = octal(gid, 8)
    block[124:136] = size_field if size_field is not None else octal(size, 12)
    block[136:148] = octal(1_600_000_000, 12)
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[157:257] = linkname.ljust(100, b"\0")[:100]
    block[257:265] = b"ustar\x0000"
    checksum = sum(block) + checksum_delta
    block[148:156] = b"%06o\0 " % checksum
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def raw_file(name: bytes, data: bytes) -> bytes:
    return raw_header(name, size=len(data)) + padded(data)


def pax_record(key: str, value: bytes) -> bytes:
    """One "LEN key=value\\n" record; LEN counts itself."""
    body = b" " + key.encode() + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def raw_pax(records: list[tuple[str, bytes]], *, typeflag: bytes = b"x") -> bytes:
    data = b"".join(pax_record(key, value) for key, value in records)
    return raw_header(b"PaxHeaders/entry", typeflag=typeflag, size=len(data)) + padded(data)


class NonSeekable(io.RawIOBase):
    """A pipe-like reader: no seek, counts what was read."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._data.readinto(buffer)
        self.consumed += count
        return count


def pipe(data: bytes) -> BinaryIO:
    """``data`` as a non-seekable stream, typed as what the archive API takes."""
    return cast(BinaryIO, NonSeekable(data))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def snapshot(path: str | os.PathLike[str]) -> Snapshot:
    result = Snapshot()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            content: object = None
            if os.path.islink(full):
                content = os.readlink(full)
            elif os.path.isfile(full):
                with open(full, "rb") as f:
                    content = f.read()
            result.items[os.path.relpath(full, path)] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_mtime_ns,
                st.st_nlink,
                content,
                tuple(sorted(os.listxattr(full, follow_symlinks=False))),
            )
    return result
