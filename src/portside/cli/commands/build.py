"""``portside build``: send a build context to ``POST /build`` and show Docker's classic builder output.

As docker's CLI (cli/command/image/build.go): a directory context is walked
here and filtered by its .dockerignore (the Dockerfile and .dockerignore are
always sent), entries owned by 0:0, in name order; ``-`` reads a tar context,
or a lone Dockerfile, from stdin; a file PATH is a tar context sent as is. A
``-f`` Dockerfile outside the context directory is added to it under a private
name. A failed step's exit code is the command's exit code.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import tempfile
from typing import IO, Any

from portside.build.dockerignore import Pattern, read as read_dockerignore, walk as walk_context
from portside.units import human_size
from portside.cli.commands.base import BOOL, LIST, STRING, STRING_SLICE, Args, CLIError, Command, Context, Flag, \
    Options, StatusError

_TAR_MAGIC_OFFSET = 257


def _is_archive(head: bytes) -> bool:
    return head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ")) or head[_TAR_MAGIC_OFFSET:_TAR_MAGIC_OFFSET + 5] == b"ustar"


def _dir_context(directory: str, dockerfile: str, out: IO[bytes]) -> str:
    """Write the filtered tar of ``directory``; returns the Dockerfile's name in it."""
    if not os.path.isdir(directory):
        raise CLIError(f'unable to prepare context: path "{directory}" not found')
    patterns: list[Pattern] = []
    try:
        with open(os.path.join(directory, ".dockerignore"), encoding="utf-8", errors="replace") as f:
            patterns = read_dockerignore(f.read())
    except FileNotFoundError:
        pass
    name = dockerfile or "Dockerfile"
    outside: str | None = None
    if dockerfile:
        path = os.path.abspath(dockerfile)
        rel = os.path.relpath(path, os.path.abspath(directory))
        if rel.startswith(".."):
            if not os.path.isfile(path):
                raise CLIError(f"unable to prepare context: the Dockerfile ({dockerfile}) cannot be empty" if
                               os.path.exists(path) else f"unable to prepare context: unable to evaluate symlinks "
                               f"in Dockerfile path: lstat {path}: no such file or directory")
            outside, name = path, f".dockerfile.{os.urandom(10).hex()}"
        else:
            name = rel
    elif not os.path.exists(os.path.join(directory, "Dockerfile")):
        raise CLIError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat "
                       f"{os.path.abspath(os.path.join(directory, 'Dockerfile'))}: no such file or directory")
    keep = {name, ".dockerignore"}
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(path: str, arcname: str) -> None:
            info = tar.gettarinfo(path, arcname)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = int(info.mtime)  # whole seconds: no pax header for a fraction, as docker sends
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            elif info.isdir() or info.issym() or info.islnk():
                tar.addfile(info)

        seen = set()
        for rel, entry in walk_context(directory, patterns):
            seen.add(rel)
            add(entry.path, rel)
        for rel in sorted(keep - seen):  # docker sends these even when .dockerignore names them
            if os.path.isfile(os.path.join(directory, rel)):
                add(os.path.join(directory, rel), rel)
        if outside is not None:
            add(outside, name)
    out.truncate(tar.offset)  # no padding to tarfile's 10 KiB record: docker's CLI sends none
    out.seek(tar.offset)
    return name


def _stdin_context(stdin: IO[bytes], out: IO[bytes]) -> str:
    data = stdin.read()
    if _is_archive(data[:_TAR_MAGIC_OFFSET + 8]):
        out.write(data)
        return ""
    with tarfile.open(fileobj=out, mode="w") as tar:  # a Dockerfile alone: the context is just it
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    out.truncate(tar.offset)
    out.seek(tar.offset)
    return "Dockerfile"


def _key_values(values: list[str], *, env_fallback: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if eq:
            out[key] = value
        elif env_fallback:
            out[key] = os.environ.get(key)  # docker: --build-arg NAME takes the client's environment
            if out[key] is None:
                del out[key]
        else:
            out[key] = ""
    return out


def run_build(ctx: Context, opts: Options, args: list[str]) -> int:
    source = args[0]
    with tempfile.TemporaryFile() as body:
        dockerfile = opts.file
        if source == "-":
            if dockerfile == "-":
                raise CLIError("invalid argument: can't use stdin for both build context and dockerfile")
            name = _stdin_context(sys.stdin.buffer, body)
            dockerfile = dockerfile or name
        elif os.path.isfile(source):
            with open(source, "rb") as f:
                while chunk := f.read(1 << 20):
                    body.write(chunk)
        elif dockerfile == "-":
            with tempfile.NamedTemporaryFile(prefix="Dockerfile.") as df:
                df.write(sys.stdin.buffer.read())
                df.flush()
                dockerfile = _dir_context(source, df.name, body)
        else:
            dockerfile = _dir_context(source, dockerfile, body)
        size = body.tell()
        body.seek(0)
        if not opts.quiet:  # docker's CLI says it before the classic builder's output
            ctx.out(f"Sending build context to Docker daemon  {human_size(size)}\r\r\n")
        query: list[tuple[str, str]] = [("t", t) for t in opts.tag]
        if dockerfile:
            query.append(("dockerfile", dockerfile))
        query += [("buildargs", json.dumps(_key_values(opts.build_arg, env_fallback=True))),
                  ("labels", json.dumps(_key_values(opts.label, env_fallback=False))),
                  ("cachefrom", json.dumps(opts.cache_from)), ("rm", "0" if opts.rm is False else "1")]
        for flag, value in (("nocache", opts.no_cache), ("q", opts.quiet), ("forcerm", opts.force_rm),
                            ("pull", opts.pull)):
            if value:
                query.append((flag, "1"))
        if opts.target:
            query.append(("target", opts.target))
        if opts.platform:
            query.append(("platform", opts.platform))
        resp = ctx.client.request("POST", "/build", query, body=body, headers={"Content-Type": "application/x-tar"})
        image_id = ""
        for message in resp.iter_json():
            if "errorDetail" in message or "error" in message:
                detail = message.get("errorDetail") or {}
                code = detail.get("code") or 1
                raise StatusError(detail.get("message") or message.get("error") or "", code)
            if "aux" in message and isinstance(message["aux"], dict):
                image_id = message["aux"].get("ID", image_id)
            if "stream" in message:
                ctx.out(message["stream"])
        if opts.iidfile and image_id:
            with open(opts.iidfile, "w") as f:
                f.write(image_id)
    return 0


BUILD = Command(
    use="build [OPTIONS] PATH | URL | -",
    short="Build an image from a Dockerfile",
    run=run_build,
    args=Args(1, 1),
    flags=(
        Flag("build-arg", None, LIST, "Set build-time variables"),
        Flag("cache-from", None, STRING_SLICE, "Images to consider as cache sources"),
        Flag("file", "f", STRING, "Name of the Dockerfile (Default is 'PATH/Dockerfile')"),
        Flag("force-rm", None, BOOL, "Always remove intermediate containers"),
        Flag("iidfile", None, STRING, "Write the image ID to the file"),
        Flag("label", None, LIST, "Set metadata for an image"),
        Flag("no-cache", None, BOOL, "Do not use cache when building the image"),
        Flag("platform", None, STRING, "Set platform if server is multi-platform capable"),
        Flag("pull", None, BOOL, "Always attempt to pull a newer version of the image"),
        Flag("quiet", "q", BOOL, "Suppress the build output and print image ID on success"),
        Flag("rm", None, BOOL, "Remove intermediate containers after a successful build", default=True),
        Flag("tag", "t", LIST, "Name and optionally a tag in the 'name:tag' format"),
        Flag("target", None, STRING, "Set the target build stage to build."),
    ),
    aliases="portside image build, portside build, portside builder build",
)
IMAGE_BUILD = BUILD
