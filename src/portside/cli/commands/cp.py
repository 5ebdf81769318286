"""``cp``: copy files between a container and the local filesystem (docker/cli ``container/cp.go``).

Two directions over three API calls: a ``HEAD`` of the container path (its
stat) decides how the local tree is named in the tar that ``PUT`` uploads;
``GET`` brings a tar of the container path whose top entry is renamed while
it is extracted locally. The local rules (cli.localcopy) are moby's
``pkg/archive/copy.go``. Across containers, or with no container at all,
is refused as Docker does.
"""

from __future__ import annotations

import base64
import json
import os
import stat

from portside import units
from portside.cli import localcopy
from portside.oci import gopath
from portside.cli.commands.base import BOOL, Args, CLIError, Command, Context, Flag, Options, go_quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Iterator

    from portside.cli.client import Response

_GO_MODE_DIR = 1 << 31
_GO_MODE_SYMLINK = 1 << 27
_GO_MODE_DEVICE = 1 << 26
_GO_MODE_IRREGULAR = 1 << 19


def split_cp_arg(arg: str) -> tuple[str, str]:
    """``CONTAINER:PATH`` or a local path; ``./a:b`` and ``/a:b`` are local (docker's splitCpArg)."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return "", arg
    return container, path


def run_cp(ctx: Context, opts: Options, args: list[str]) -> int:
    source, destination = args
    if not source:
        raise CLIError("source can not be empty")
    if not destination:
        raise CLIError("destination can not be empty")
    # Progress is for people: without -q, shown only when stdout is a terminal.
    quiet = opts.quiet if "quiet" in opts.changed else not ctx.stdout_is_tty()
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    from portside.cli.client import ProtocolError

    try:
        if src_container and dst_container:
            raise CLIError("copying between containers is not supported")
        if src_container:
            return _from_container(ctx, src_container, src_path, dst_path, follow=opts.follow_link, quiet=quiet)
        if dst_container:
            return _to_container(ctx, src_path, dst_container, dst_path, follow=opts.follow_link,
                                 copy_uid_gid=opts.archive, quiet=quiet)
    except localcopy.CopyError as e:
        raise CLIError(str(e)) from None
    except ProtocolError:
        raise CLIError("unexpected EOF") from None  # the daemon failed mid-stream: Go's io.Copy says this
    raise CLIError("must specify at least one container source")


# -- from the container -------------------------------------------------------------------


def _from_container(ctx: Context, container: str, src_path: str, dst_path: str, *, follow: bool, quiet: bool) -> int:
    if dst_path != "-":
        dst_path = localcopy.absolute(dst_path)
    _validate_output_path(dst_path)

    rebase_name = ""
    if follow:
        found = _stat(ctx, container, src_path)
        if found is not None and found["mode"] & _GO_MODE_SYMLINK:
            target = str(found["linkTarget"])
            if not target.startswith("/"):
                target = gopath.clean(localcopy.split_path_dir_entry(src_path)[0] + "/" + target)
            src_path, rebase_name = localcopy.get_rebase_name(src_path, target)

    resp = ctx.client.request("GET", f"/containers/{container}/archive", {"path": src_path})
    counted = _Counted(resp.iter_chunks())
    try:
        if dst_path == "-":
            out = ctx.stdout.buffer
            ctx.stdout.flush()
            for chunk in counted:
                out.write(chunk)
            out.flush()
            return 0
        found = _decode_stat(resp)
        is_dir = bool(found["mode"] & _GO_MODE_DIR)
        src = localcopy.CopyInfo(src_path, exists=True, is_dir=is_dir, rebase_name=rebase_name)
        # The tar's top entry is named after what was fetched; -L through a link renames it back.
        fetched_base = localcopy.split_path_dir_entry(src.path)[1]
        first = localcopy.rebaser(fetched_base, rebase_name) if rebase_name else _same
        dst = localcopy.copy_info_destination_path(dst_path)
        dst_dir, new_top = localcopy.prepare_archive_copy(src, dst)
        second = localcopy.rebaser(rebase_name or fetched_base, new_top) if new_top is not None else _same
        localcopy.untar(localcopy.chunks_reader(iter(counted)), dst_dir, lambda name: second(first(name)))
    finally:
        resp.close()
    if not quiet:
        ctx.err(_summary(counted.total, dst_path))
    return 0


def _validate_output_path(path: str) -> None:
    """docker/cli's ValidateOutputPath: the directory must exist; an existing path must not be a device."""
    directory = os.path.dirname(gopath.clean(path))
    if directory not in ("", ".") and not os.path.exists(directory):
        raise CLIError(f"invalid output path: directory {go_quote(directory)} does not exist")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise CLIError(f"stat {path}: {(e.strerror or '').lower()}") from None
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        raise CLIError(f"invalid output path: {go_quote(path)} must be a directory or a regular file: got a device")


# -- to the container ---------------------------------------------------------------------


def _to_container(ctx: Context, src_path: str, container: str, dst_path: str, *, follow: bool,
                  copy_uid_gid: bool, quiet: bool) -> int:
    if src_path != "-":
        src_path = localcopy.absolute(src_path)

    # What is at the destination decides how the upload is named (and where it is extracted).
    dst = localcopy.CopyInfo(dst_path)
    found = _stat(ctx, container, dst_path)
    if found is not None:
        if found["mode"] & _GO_MODE_SYMLINK:
            target = str(found["linkTarget"])
            if not target.startswith("/"):
                target = gopath.clean(localcopy.split_path_dir_entry(dst_path)[0] + "/" + target)
            dst.path = target
            found = _stat(ctx, container, target)
        if found is not None:
            mode = int(found["mode"])
            if mode & (_GO_MODE_DEVICE | _GO_MODE_IRREGULAR):
                what = "got a device" if mode & _GO_MODE_DEVICE else "got an irregular file"
                raise CLIError(f'destination "{container}:{dst_path}" must be a directory or a regular file: {what}')
            dst.exists, dst.is_dir = True, bool(mode & _GO_MODE_DIR)

    upload: localcopy.TarUpload | None = None
    if src_path == "-":
        if not dst.is_dir:
            raise CLIError(f'destination "{container}:{dst_path}" must be a directory')
        body: IO[bytes] = ctx.stdin.buffer
        extract_in = dst.path
    else:
        src = localcopy.copy_info_source_path(src_path, follow)
        source_dir, source_base = localcopy.split_path_dir_entry(src.path)
        extract_in, new_top = localcopy.prepare_archive_copy(src, dst)
        top = new_top if new_top is not None else (src.rebase_name or source_base)
        upload = localcopy.TarUpload(os.path.join(source_dir, source_base), top)
        body = upload.reader
    counted = _CountedReader(body)
    query = [("path", extract_in), ("noOverwriteDirNonDir", "true")]
    if copy_uid_gid:
        query.append(("copyUIDGID", "true"))
    try:
        ctx.client.request("PUT", f"/containers/{container}/archive", query, body=counted,  # type: ignore[arg-type]
                           headers={"Content-Type": "application/x-tar"}, chunked=upload is not None).close()
    finally:
        if upload is not None:
            upload.close()
    if upload is not None and upload.error is not None:
        raise CLIError(_describe(upload.error))
    if not quiet:
        ctx.err(_summary(counted.total, f"{container}:{dst.path}"))
    return 0


# -- shared -------------------------------------------------------------------------------


def _stat(ctx: Context, container: str, path: str) -> dict[str, Any] | None:
    """The container path's stat (HEAD), or None when there is none: the caller carries on, as Docker's does."""
    from portside.cli.client import APIError

    try:
        resp = ctx.client.request("HEAD", f"/containers/{container}/archive", {"path": path})
    except APIError:
        return None
    try:
        return _decode_stat(resp)
    except (ValueError, KeyError):
        return None
    finally:
        resp.close()


def _decode_stat(resp: Response) -> dict[str, Any]:
    encoded = resp.headers.get("x-docker-container-path-stat", "")
    try:
        doc = json.loads(base64.b64decode(encoded))
    except ValueError as e:
        raise CLIError(f"unable to get resource stat from response: unable to decode container path stat header: {e}")
    if not isinstance(doc, dict):
        raise CLIError("unable to get resource stat from response: unable to decode container path stat header")
    doc.setdefault("mode", 0)
    doc.setdefault("size", 0)
    return doc


def _summary(transferred: int, dest: str) -> str:
    """docker 28's last line: the bytes of tar that went through (newer CLIs add the content size)."""
    return f"Successfully copied {units.human_size_precision(transferred, 3)} to {dest}\n"


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror.lower()}"
    return str(e)


def _same(name: str) -> str:
    return name


class _Counted:
    """An iterator of chunks that counts what went through."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.total = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.total += len(chunk)
            yield chunk


class _CountedReader:
    """A readable that counts what was read from it (the upload's size).

    No fileno(): the client then sends it in chunks through read1, so every byte is counted.
    """

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.total += len(data)
        return data

    def read1(self, size: int = -1) -> bytes:
        read1 = getattr(self._inner, "read1", None)
        data = read1(size) if read1 is not None else self._inner.read(size)
        self.total += len(data)
        return data


CP = Command(
    use="cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tportside cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    short="Copy files/folders between a container and the local filesystem",
    long="Copy files/folders between a container and the local filesystem\n\n"
         "Use '-' as the source to read a tar archive from stdin\n"
         "and extract it to a directory destination in a container.\n"
         "Use '-' as the destination to stream a tar archive of a\n"
         "container source to stdout.",
    run=run_cp,
    args=Args(2, 2),
    flags=(
        Flag("archive", "a", BOOL, "Archive mode (copy all uid/gid information)"),
        Flag("follow-link", "L", BOOL, "Always follow symlinks in SRC_PATH"),
        Flag("quiet", "q", BOOL,
             "Suppress progress output during copy. Progress output is automatically suppressed if no terminal "
             "is attached"),
    ),
    aliases="portside container cp, portside cp",
)
