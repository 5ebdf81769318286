"""``portside build``: send a build context to ``POST /build`` and show Docker's classic builder output.

As docker's CLI (cli/command/image/build.go): a directory context is walked
here and filtered by its .dockerignore (the Dockerfile and .dockerignore are
always sent), entries owned by 0:0, in name order; ``-`` reads a tar context,
or a lone Dockerfile, from stdin; a file PATH is a tar context sent as is. A
``-f`` Dockerfile outside the context directory is added to it under a private
name. A failed step's exit code is the command's exit code.
"""

from __future__ import annotations

import os
import sys

from portside.build.dockerignore import Pattern, read as read_dockerignore, walk as walk_context
from portside.cli import jsonwire
from portside.cli.contexttar import ContextChanged, ContextTar
from portside.errors import InvalidArgument
from portside.units import human_size, ram_in_bytes
from portside.cli.commands.base import BOOL, LIST, STRING, STRING_SLICE, Args, CLIError, Command, Context, Flag, \
    Options, StatusError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

_TAR_MAGIC_OFFSET = 257


def _is_archive(head: bytes) -> bool:
    return head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ")) or head[_TAR_MAGIC_OFFSET:_TAR_MAGIC_OFFSET + 5] == b"ustar"


def _dir_context(directory: str, dockerfile: str, stdin_dockerfile: bytes | None = None) -> tuple[ContextTar, str]:
    """The filtered tar of ``directory`` and the Dockerfile's name in it."""
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
    if stdin_dockerfile is not None:  # -f -: the Dockerfile is added under a private name
        name = f".dockerfile.{os.urandom(10).hex()}"
    elif dockerfile:
        path = os.path.abspath(dockerfile)
        rel = os.path.relpath(path, os.path.abspath(directory))
        if rel == ".." or rel.startswith(".." + os.sep):
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
    tar = ContextTar()
    seen = set()
    for rel, entry in walk_context(directory, patterns):
        seen.add(rel)
        tar.add_path(entry.path, rel, entry.stat(follow_symlinks=False))
    for rel in sorted(keep - seen):  # docker sends these even when .dockerignore names them
        if os.path.isfile(os.path.join(directory, rel)):
            tar.add_path(os.path.join(directory, rel), rel)
    if outside is not None:
        tar.add_path(outside, name, os.stat(outside))
    if stdin_dockerfile is not None:
        tar.add_bytes(name, stdin_dockerfile)
    return tar, name


def _stdin_context(data: bytes) -> tuple[bytes | ContextTar, str]:
    """A tar context as sent, or a lone Dockerfile: a context of just it."""
    if _is_archive(data[:_TAR_MAGIC_OFFSET + 8]):
        return data, ""
    tar = ContextTar()
    tar.add_bytes("Dockerfile", data)
    return tar, "Dockerfile"


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


def _registry_config() -> str:
    """The credentials of the docker config file, for base images the daemon pulls; "" without the file."""
    from portside.cli import dockerconfig

    if not os.path.exists(dockerconfig.config_path()):
        return ""
    try:
        return dockerconfig.registry_config_header()
    except dockerconfig.ConfigError as e:
        raise CLIError(str(e)) from None


def run_build(ctx: Context, opts: Options, args: list[str]) -> int:
    source = args[0]
    dockerfile = opts.file
    body: bytes | ContextTar | IO[bytes]
    if source == "-":
        if dockerfile == "-":
            raise CLIError("invalid argument: can't use stdin for both build context and dockerfile")
        body, name = _stdin_context(sys.stdin.buffer.read())
        dockerfile = dockerfile or name
    elif os.path.isfile(source):
        body = open(source, "rb")  # sent as it is (sendfile), closed with the process
    elif dockerfile == "-":
        body, dockerfile = _dir_context(source, "", sys.stdin.buffer.read())
    else:
        body, dockerfile = _dir_context(source, dockerfile)
    size = len(body) if isinstance(body, bytes) else body.length if isinstance(body, ContextTar) \
        else os.fstat(body.fileno()).st_size
    if not opts.quiet:  # docker's CLI says it before the classic builder's output
        ctx.out(f"Sending build context to Docker daemon  {human_size(size)}\r\r\n")
    query: list[tuple[str, str]] = [("t", t) for t in opts.tag]
    if dockerfile:
        query.append(("dockerfile", dockerfile))
    query += [("buildargs", jsonwire.dumps(_key_values(opts.build_arg, env_fallback=True))),
              ("labels", jsonwire.dumps(_key_values(opts.label, env_fallback=False))),
              ("cachefrom", jsonwire.dumps(opts.cache_from)), ("rm", "0" if opts.rm is False else "1")]
    for flag, value in (("nocache", opts.no_cache), ("q", opts.quiet), ("forcerm", opts.force_rm),
                        ("pull", opts.pull)):
        if value:
            query.append((flag, "1"))
    if opts.target:
        query.append(("target", opts.target))
    if opts.network:
        query.append(("networkmode", opts.network))
    if opts.add_host:
        query.append(("extrahosts", ",".join(opts.add_host)))  # as docker's CLI joins them
    if opts.shm_size:
        try:
            query.append(("shmsize", str(ram_in_bytes(opts.shm_size))))
        except InvalidArgument as e:
            raise CLIError(f'invalid argument "{opts.shm_size}" for "--shm-size" flag: {e.message}') from None
    if opts.platform:
        query.append(("platform", opts.platform))
    if opts.iidfile:  # as docker: a failed build leaves no stale ID behind
        try:
            os.remove(opts.iidfile)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise CLIError(f"Removing image ID file: {e}") from None
    headers = {"Content-Type": "application/x-tar"}
    registry_config = _registry_config()
    if registry_config:
        headers["X-Registry-Config"] = registry_config
    try:
        resp = ctx.client.request("POST", "/build", query, body=body, headers=headers)
    except ContextChanged as e:
        raise CLIError(f"unable to prepare context: {e}") from None
    image_id = streamed = ""
    for message in resp.iter_json():
        if "errorDetail" in message or "error" in message:
            detail = message.get("errorDetail") or {}
            code = detail.get("code") or 1
            raise StatusError(detail.get("message") or message.get("error") or "", code)
        if "aux" in message and isinstance(message["aux"], dict):
            image_id = message["aux"].get("ID", image_id)
        if "stream" in message:
            ctx.out(message["stream"])
            streamed += message["stream"] if opts.quiet else ""
        elif "status" in message:  # a base image's pull, as `docker pull` shows it
            from portside.cli.commands.formatting import display_json_message

            ctx.out(display_json_message(message))
    if opts.quiet and not image_id:
        image_id = streamed.strip()  # dockerd's classic builder sends no aux with q: the output is the ID
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
        Flag("add-host", None, LIST, "Add a custom host-to-IP mapping (\"host:ip\")"),
        Flag("build-arg", None, LIST, "Set build-time variables"),
        Flag("cache-from", None, STRING_SLICE, "Images to consider as cache sources"),
        Flag("file", "f", STRING, "Name of the Dockerfile (Default is 'PATH/Dockerfile')"),
        Flag("force-rm", None, BOOL, "Always remove intermediate containers"),
        Flag("iidfile", None, STRING, "Write the image ID to the file"),
        Flag("label", None, LIST, "Set metadata for an image"),
        Flag("network", None, STRING, "Set the networking mode for the RUN instructions during build",
             default="default"),
        Flag("no-cache", None, BOOL, "Do not use cache when building the image"),
        Flag("platform", None, STRING, "Set platform if server is multi-platform capable"),
        Flag("pull", None, BOOL, "Always attempt to pull a newer version of the image"),
        Flag("quiet", "q", BOOL, "Suppress the build output and print image ID on success"),
        Flag("rm", None, BOOL, "Remove intermediate containers after a successful build", default=True),
        Flag("shm-size", None, STRING, "Size of \"/dev/shm\""),
        Flag("tag", "t", LIST, "Name and optionally a tag in the 'name:tag' format"),
        Flag("target", None, STRING, "Set the target build stage to build."),
    ),
    aliases="portside image build, portside build, portside builder build",
)
IMAGE_BUILD = BUILD
