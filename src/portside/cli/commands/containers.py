"""Container commands that are one request per container.

``ps`` / ``container ls`` (after docker/cli ``container/list.go`` and
``formatter/container.go``), and ``stop``, ``kill``, ``restart``, ``rm``,
``pause``, ``unpause``, ``wait``, ``logs``, ``rename``, ``top``, ``port``,
``diff``, ``export``, ``container inspect`` and ``container prune``. The
commands that attach to a container (``run``, ``create``, ``start``,
``attach``, ``exec``) are in ``run.py``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Mapping, Sequence

import re

from portside import units
from portside.cli.commands import reference
from portside.cli.commands.base import BOOL, FILTER, INT, STRING, Args, CLIError, Command, Context, Flag, Options
from portside.cli.commands.formatting import (
    TABLE,
    Row,
    ellipsis,
    go_time_string,
    render_default_table,
    render_rows,
    row_type,
    sorted_row,
    truncate_id,
)
from portside.cli.commands.images import FORMAT_HELP, INSPECT_FORMAT_HELP, filters_json
from portside.cli.portfmt import NoPublicPort, displayable_ports, port_lines


CONTAINER_HEADERS = {
    "ID": "CONTAINER ID",
    "Names": "NAMES",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS",
}


def go_quote(s: str) -> str:
    """strconv.Quote for the COMMAND column."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif not ch.isprintable() and o > 0x7F:
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _image(c: Mapping[str, Any], trunc: bool) -> str:
    image = c.get("Image") or ""
    if not image:
        return "<no image>"
    if trunc:
        short = truncate_id(c.get("ImageID") or "")
        if short == truncate_id(image):
            return short
        try:
            ref = reference.parse_normalized_named(image)
        except reference.ReferenceError:
            return image
        if ref.tag:
            return f"{ref.familiar_name()}:{ref.tag}"
        return ref.familiar_name()
    return image


ContainerRow = row_type("*formatter.ContainerContext")


def container_row(c: Mapping[str, Any], *, trunc: bool, now: float | None = None) -> Row:
    names = [n[1:] for n in c.get("Names") or []]
    if trunc:
        for n in names:
            if "/" not in n:
                names = [n]
                break
    command = c.get("Command") or ""
    created = int(c.get("Created") or 0)
    size_rw = int(c.get("SizeRw") or 0)
    size_root = int(c.get("SizeRootFs") or 0)
    size = units.human_size_precision(size_rw, 3)
    if size_root > 0:
        size = f"{size} (virtual {units.human_size_precision(size_root, 3)})"
    labels = c.get("Labels") or {}
    mounts = []
    for m in c.get("Mounts") or []:
        name = m.get("Name") or m.get("Source") or ""
        mounts.append(ellipsis(name, 15) if trunc else name)
    networks = list(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    id_ = c.get("Id") or ""
    return sorted_row(
        {
            "Command": go_quote(ellipsis(command, 20) if trunc else command),
            "CreatedAt": go_time_string(created),
            "ID": truncate_id(id_) if trunc else id_,
            "Image": _image(c, trunc),
            "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
            "LocalVolumes": str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
            "Mounts": ",".join(mounts),
            "Names": ",".join(names),
            "Networks": ",".join(networks),
            "Ports": displayable_ports(c.get("Ports") or []),
            "RunningFor": units.time_ago(created, now),
            "Size": size,
            "State": c.get("State") or "",
            "Status": c.get("Status") or "",
        },
        ContainerRow,
    )


def format_ps(
    containers: Sequence[Mapping[str, Any]],
    *,
    fmt: str = "",
    quiet: bool = False,
    no_trunc: bool = False,
    size: bool = False,
    now: float | None = None,
) -> str:
    rows = [container_row(c, trunc=not no_trunc, now=now) for c in containers]
    if fmt in ("", TABLE):
        if quiet:
            return "".join(r["ID"] + "\n" for r in rows)
        header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        keys = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
        if size:
            header.append("SIZE")
            keys.append("Size")
        return render_default_table(header, [[r[k] for k in keys] for r in rows])
    if quiet:
        return "".join(r["ID"] + "\n" for r in rows)
    return render_rows(fmt, rows, CONTAINER_HEADERS)


_USES_SIZE = re.compile(r"\.Size\b")


def run_ps(ctx: Context, opts: Options, args: list[str]) -> int:
    if opts.format and opts.quiet:
        ctx.err("WARNING: Ignoring custom format, because both --format and --quiet are set.\n")
    size = opts.size
    if opts.format and not opts.quiet and "size" not in opts.changed and _USES_SIZE.search(opts.format):
        size = True
    limit = opts.last
    if opts.latest and limit == -1:
        limit = 1
    query: list[tuple[str, str]] = []
    if opts.all:
        query.append(("all", "1"))
    if limit != -1:
        query.append(("limit", str(limit)))
    if size:
        query.append(("size", "1"))
    fj = filters_json(opts.filter)
    if fj:
        query.append(("filters", fj))
    containers = ctx.client.get_json("/containers/json", query)
    ctx.out(format_ps(containers or [], fmt=opts.format, quiet=opts.quiet, no_trunc=opts.no_trunc, size=size))
    return 0


PS = Command(
    use="ps [OPTIONS]",
    short="List containers",
    run=run_ps,
    flags=(
        Flag("all", "a", BOOL, "Show all containers (default shows just running)"),
        Flag("filter", "f", FILTER, "Filter output based on conditions provided"),
        Flag("format", None, STRING, FORMAT_HELP),
        Flag("last", "n", INT, "Show n last created containers (includes all states)", default=-1),
        Flag("latest", "l", BOOL, "Show the latest created container (includes all states)"),
        Flag("no-trunc", None, BOOL, "Don't truncate output"),
        Flag("quiet", "q", BOOL, "Only display container IDs"),
        Flag("size", "s", BOOL, "Display total file sizes"),
    ),
    aliases="portside container ls, portside container list, portside container ps, portside ps",
)
CONTAINER_LS = PS.with_use("ls [OPTIONS]")


# ===========================================================================
# Container lifecycle commands, after docker/cli container/{stop,kill,restart,
# rm,pause,wait,logs,rename,top,port,diff,export,prune,inspect}.go (v28.2).
# Each is one request per container; the attaching ones are in run.py.


def _for_each(
    ctx: Context, names: Sequence[str], op: Callable[[str], None], *, parallel: bool = True
) -> list[tuple[str, Exception]]:
    """Run ``op`` on every container (in parallel, as docker's parallelOperation), print
    each name that succeeded in argument order; return the failures."""
    from concurrent.futures import ThreadPoolExecutor

    from portside.cli.client import APIError

    failures: list[tuple[str, Exception]] = []

    def attempt(name: str) -> Exception | None:
        try:
            op(name)
        except (APIError, CLIError) as e:
            return e
        return None

    if parallel and len(names) > 1:
        with ThreadPoolExecutor(max_workers=min(50, len(names))) as pool:
            results = list(pool.map(attempt, names))
    else:
        results = [attempt(n) for n in names]
    for name, error in zip(names, results):
        if error is None:
            ctx.out(name + "\n")
        else:
            failures.append((name, error))
    return failures


def _joined(failures: list[tuple[str, Exception]]) -> int:
    """errors.Join: every error on its own line, status 1."""
    if failures:
        raise CLIError("\n".join(str(e) for _, e in failures))
    return 0


def _post(ctx: Context, path: str, query: list[tuple[str, str]] | None = None) -> None:
    ctx.client.request("POST", path, query).read()


def _stop_query(opts: Options) -> list[tuple[str, str]]:
    if "time" in opts.changed and "timeout" in opts.changed:
        raise CLIError("conflicting options: cannot specify both --timeout and --time")
    query = []
    if opts.signal:
        query.append(("signal", opts.signal))
    if "timeout" in opts.changed:
        query.append(("t", str(opts.timeout)))
    elif "time" in opts.changed:
        query.append(("t", str(opts.time)))
    return query


def run_stop(ctx: Context, opts: Options, args: list[str]) -> int:
    query = _stop_query(opts)
    return _joined(_for_each(ctx, args, lambda c: _post(ctx, f"/containers/{c}/stop", query)))


def run_restart(ctx: Context, opts: Options, args: list[str]) -> int:
    query = _stop_query(opts)
    return _joined(_for_each(ctx, args, lambda c: _post(ctx, f"/containers/{c}/restart", query), parallel=False))


def run_kill(ctx: Context, opts: Options, args: list[str]) -> int:
    query = [("signal", opts.signal)] if opts.signal else []
    return _joined(_for_each(ctx, args, lambda c: _post(ctx, f"/containers/{c}/kill", query)))


def run_pause(ctx: Context, opts: Options, args: list[str]) -> int:
    return _joined(_for_each(ctx, args, lambda c: _post(ctx, f"/containers/{c}/pause")))


def run_unpause(ctx: Context, opts: Options, args: list[str]) -> int:
    return _joined(_for_each(ctx, args, lambda c: _post(ctx, f"/containers/{c}/unpause")))


def run_rm(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError

    query = []
    if opts.force:
        query.append(("force", "1"))
    if opts.link:
        query.append(("link", "1"))
    if opts.volumes:
        query.append(("v", "1"))

    def remove(name: str) -> None:
        name = name.strip("/")
        if not name:
            raise CLIError("container name cannot be empty")
        ctx.client.request("DELETE", f"/containers/{name}", query).read()

    failures = []
    for name, error in _for_each(ctx, args, remove):
        if opts.force and isinstance(error, APIError) and error.not_found:
            ctx.err(f"{error}\n")  # docker 28 says so, and still succeeds
            continue
        failures.append((name, error))
    return _joined(failures)


def run_wait(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError

    failures: list[tuple[str, Exception]] = []
    for name in args:
        try:
            result = ctx.client.request("POST", f"/containers/{name}/wait").json() or {}
        except APIError as e:
            failures.append((name, e))
            continue
        ctx.out(f"{int(result.get('StatusCode') or 0)}\n")
    return _joined(failures)


def run_rename(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError

    old, new = args[0].strip(), args[1].strip()
    if not old or not new:
        raise CLIError("Error: Neither old nor new names may be empty")
    try:
        _post(ctx, f"/containers/{old}/rename", [("name", new)])
    except APIError as e:
        ctx.err(f"{e}\n")
        raise CLIError(f"Error: failed to rename container named {old}") from None
    return 0


# ---------------------------------------------------------------------------
# logs


def api_timestamp(value: str, what: str, now: float | None = None) -> str:
    """moby's GetTimestamp as the client sends ``since``/``until``: a duration before now
    becomes Unix seconds, a date ``seconds.nanoseconds``, a Unix time passes as given."""
    import math
    import time

    from portside import timefmt
    from portside.errors import InvalidArgument

    if now is None:
        now = time.time()
    if value != "0":
        try:
            return str(math.floor(now - timefmt.parse_duration(value) / 1e9))
        except InvalidArgument:
            pass
    if re.fullmatch(r"[0-9]+(\.[0-9]{0,20})?", value):
        return value
    try:
        ts = timefmt.parse_timestamp(value, now, what=what)
    except InvalidArgument as e:
        reason = str(e).split(" filter: ", 1)[-1]
        raise CLIError(f'invalid value for "{what}": {reason}') from None
    seconds = math.floor(ts)
    return f"{seconds}.{round((ts - seconds) * 1e9):09d}"


def run_logs(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.commands.run import _stream_writer

    info = ctx.client.get_json(f"/containers/{args[0]}/json") or {}
    query = [("stdout", "1"), ("stderr", "1"), ("tail", opts.tail)]
    if opts.since:
        query.append(("since", api_timestamp(opts.since, "since")))
    if opts.until:
        query.append(("until", api_timestamp(opts.until, "until")))
    if opts.timestamps:
        query.append(("timestamps", "1"))
    if opts.details:
        query.append(("details", "1"))
    if opts.follow:
        query.append(("follow", "1"))
    resp = ctx.client.request("GET", f"/containers/{info['Id']}/logs", sorted(query))
    out = _stream_writer(ctx.stdout)
    if (info.get("Config") or {}).get("Tty"):
        for chunk in resp.iter_chunks():
            out(chunk)
        return 0
    return _copy_demuxed(resp.iter_chunks(), out, _stream_writer(ctx.stderr))


def _copy_demuxed(chunks: Iterable[bytes], out: Callable[[bytes], None], err: Callable[[bytes], None]) -> int:
    """stdcopy.StdCopy: stdout and stdin frames to ``out``, stderr frames to ``err``."""
    from portside.errors import InvalidArgument
    from portside.streams import stdcopy

    demuxer = stdcopy.Demuxer()
    for chunk in chunks:
        try:
            pieces = demuxer.feed(chunk)
        except InvalidArgument as e:
            raise CLIError(str(e)) from None
        for stream, data in pieces:
            if stream == stdcopy.SYSTEMERR:
                raise CLIError("error from daemon in stream: " + data.decode("utf-8", "replace"))
            (err if stream == stdcopy.STDERR else out)(data)
    return 0


# ---------------------------------------------------------------------------
# top, port, diff, export, inspect, prune


def run_top(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.commands.formatting import grid

    query = [("ps_args", " ".join(args[1:]))] if len(args) > 1 else None
    procs = ctx.client.get_json(f"/containers/{args[0]}/top", query) or {}
    rows = [list(procs.get("Titles") or [])] + [list(p) for p in procs.get("Processes") or []]
    width = max(len(r) for r in rows)
    ctx.out(grid([r + [""] * (width - len(r)) for r in rows], minwidth=20, padding=3))
    return 0


def run_port(ctx: Context, opts: Options, args: list[str]) -> int:
    info = ctx.client.get_json(f"/containers/{args[0]}/json") or {}
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    try:
        lines = port_lines(ports, args[0], args[1] if len(args) > 1 else None)
    except (ValueError, NoPublicPort) as e:
        raise CLIError(str(e)) from None
    if lines:
        ctx.out("\n".join(lines) + "\n")
    return 0


_CHANGE_KINDS = {0: "C", 1: "A", 2: "D"}


def run_diff(ctx: Context, opts: Options, args: list[str]) -> int:
    changes = ctx.client.get_json(f"/containers/{args[0]}/changes") or []
    ctx.out("".join(f"{_CHANGE_KINDS.get(c.get('Kind'), '?')} {c.get('Path', '')}\n" for c in changes))
    return 0


def run_export(ctx: Context, opts: Options, args: list[str]) -> int:
    if not opts.output and ctx.stdout_is_tty():
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if opts.output:
        _check_export_output(opts.output)
    from portside.cli.client import ProtocolError

    try:
        return _export(ctx, opts.output, args[0])
    except ProtocolError:
        raise CLIError("unexpected EOF") from None  # the daemon failed mid-stream: Go's io.Copy says this


def _export(ctx: Context, output: str, container: str) -> int:
    import os
    import tempfile

    resp = ctx.client.request("GET", f"/containers/{container}/export")
    if not output:
        ctx.stdout.flush()
        out = ctx.stdout.buffer
        for chunk in resp.iter_chunks():
            out.write(chunk)
        out.flush()
        return 0
    # Written beside the target, then renamed: a failed export leaves no half tarball.
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(output),
                               dir=os.path.dirname(os.path.abspath(output)))
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in resp.iter_chunks():
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, output)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return 0


def _check_export_output(path: str) -> None:
    """docker/cli's atomic writer refuses these before asking the daemon for anything."""
    import os
    import stat

    directory = os.path.dirname(path)
    if directory not in ("", ".", ".."):
        try:
            is_dir = stat.S_ISDIR(os.stat(directory).st_mode)
        except OSError as e:
            raise CLIError(f"failed to export container: invalid output path: stat {directory}: "
                           f"{(e.strerror or '').lower()}") from None
        if not is_dir:
            raise CLIError(f"failed to export container: invalid output path: stat {directory}: not a directory")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    refused = {stat.S_IFDIR: "cannot write to a directory", stat.S_IFLNK: "cannot write to a symbolic link directly",
               stat.S_IFIFO: "cannot write to a named pipe (FIFO)", stat.S_IFSOCK: "cannot write to a socket",
               stat.S_IFCHR: "cannot write to a character device file",
               stat.S_IFBLK: "cannot write to a block device file"}.get(stat.S_IFMT(mode))
    if refused:
        raise CLIError(f"failed to export container: {refused}")


def run_container_inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.commands.inspect import inspect_refs, raw_getter

    query = [("size", "1")] if opts.size else None
    return inspect_refs(ctx, args, opts.format, raw_getter(ctx, "/containers/{}/json", query))


_PRUNE_WARNING = "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"


def run_container_prune(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.commands.base import Cancelled
    from portside.cli.commands.images import confirm

    if not opts.force and not confirm(ctx, _PRUNE_WARNING):
        raise Cancelled()
    fj = filters_json(opts.filter)
    report = ctx.client.request("POST", "/containers/prune", [("filters", fj)] if fj else None).json() or {}
    deleted = report.get("ContainersDeleted") or []
    reclaimed = 0
    if deleted:
        ctx.out("Deleted Containers:\n" + "".join(f"{c}\n" for c in deleted) + "\n")
        reclaimed = int(report.get("SpaceReclaimed") or 0)
    ctx.out(f"Total reclaimed space: {units.human_size(reclaimed)}\n")
    return 0


_SIGNAL_FLAG = Flag("signal", "s", STRING, "Signal to send to the container")
_TIMEOUT_FLAGS = (
    Flag("timeout", "t", INT, "Seconds to wait before killing the container"),
    Flag("time", None, INT, "Seconds to wait before killing the container (deprecated: use --timeout)", hidden=True),
)
_ONE_OR_MORE = Args(1)
_EXACTLY_ONE = Args(1, 1)

STOP = Command(
    use="stop [OPTIONS] CONTAINER [CONTAINER...]",
    short="Stop one or more running containers",
    run=run_stop,
    args=_ONE_OR_MORE,
    flags=(_SIGNAL_FLAG, *_TIMEOUT_FLAGS),
    aliases="portside container stop, portside stop",
)
RESTART = Command(
    use="restart [OPTIONS] CONTAINER [CONTAINER...]",
    short="Restart one or more containers",
    run=run_restart,
    args=_ONE_OR_MORE,
    flags=(_SIGNAL_FLAG, *_TIMEOUT_FLAGS),
    aliases="portside container restart, portside restart",
)
KILL = Command(
    use="kill [OPTIONS] CONTAINER [CONTAINER...]",
    short="Kill one or more running containers",
    run=run_kill,
    args=_ONE_OR_MORE,
    flags=(_SIGNAL_FLAG,),
    aliases="portside container kill, portside kill",
)
RM = Command(
    use="rm [OPTIONS] CONTAINER [CONTAINER...]",
    short="Remove one or more containers",
    run=run_rm,
    args=_ONE_OR_MORE,
    flags=(
        Flag("force", "f", BOOL, "Force the removal of a running container (uses SIGKILL)"),
        Flag("link", "l", BOOL, "Remove the specified link"),
        Flag("volumes", "v", BOOL, "Remove anonymous volumes associated with the container"),
    ),
    aliases="portside container rm, portside container remove, portside rm",
)
PAUSE = Command(
    use="pause CONTAINER [CONTAINER...]",
    short="Pause all processes within one or more containers",
    run=run_pause,
    args=_ONE_OR_MORE,
    aliases="portside container pause, portside pause",
)
UNPAUSE = Command(
    use="unpause CONTAINER [CONTAINER...]",
    short="Unpause all processes within one or more containers",
    run=run_unpause,
    args=_ONE_OR_MORE,
    aliases="portside container unpause, portside unpause",
)
WAIT = Command(
    use="wait CONTAINER [CONTAINER...]",
    short="Block until one or more containers stop, then print their exit codes",
    run=run_wait,
    args=_ONE_OR_MORE,
    aliases="portside container wait, portside wait",
)
LOGS = Command(
    use="logs [OPTIONS] CONTAINER",
    short="Fetch the logs of a container",
    run=run_logs,
    args=_EXACTLY_ONE,
    flags=(
        Flag("details", None, BOOL, "Show extra details provided to logs"),
        Flag("follow", "f", BOOL, "Follow log output"),
        Flag("since", None, STRING,
             'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
        Flag("tail", "n", STRING, "Number of lines to show from the end of the logs", default="all"),
        Flag("timestamps", "t", BOOL, "Show timestamps"),
        Flag("until", None, STRING,
             'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
    ),
    aliases="portside container logs, portside logs",
)
RENAME = Command(
    use="rename CONTAINER NEW_NAME",
    short="Rename a container",
    run=run_rename,
    args=Args(2, 2),
    aliases="portside container rename, portside rename",
)
TOP = Command(
    use="top CONTAINER [ps OPTIONS]",
    short="Display the running processes of a container",
    run=run_top,
    args=_ONE_OR_MORE,
    interspersed=False,
    aliases="portside container top, portside top",
)
PORT = Command(
    use="port CONTAINER [PRIVATE_PORT[/PROTO]]",
    short="List port mappings or a specific mapping for the container",
    run=run_port,
    args=Args(1, 2),
    aliases="portside container port, portside port",
)
DIFF = Command(
    use="diff CONTAINER",
    short="Inspect changes to files or directories on a container's filesystem",
    run=run_diff,
    args=_EXACTLY_ONE,
    aliases="portside container diff, portside diff",
)
EXPORT = Command(
    use="export [OPTIONS] CONTAINER",
    short="Export a container's filesystem as a tar archive",
    run=run_export,
    args=_EXACTLY_ONE,
    flags=(Flag("output", "o", STRING, "Write to a file, instead of STDOUT"),),
    aliases="portside container export, portside export",
)
CONTAINER_INSPECT = Command(
    use="inspect [OPTIONS] CONTAINER [CONTAINER...]",
    short="Display detailed information on one or more containers",
    run=run_container_inspect,
    args=_ONE_OR_MORE,
    flags=(
        Flag("format", "f", STRING, INSPECT_FORMAT_HELP),
        Flag("size", "s", BOOL, "Display total file sizes"),
    ),
)
CONTAINER_PRUNE = Command(
    use="prune [OPTIONS]",
    short="Remove all stopped containers",
    run=run_container_prune,
    flags=(
        Flag("filter", None, FILTER, 'Provide filter values (e.g. "until=<timestamp>")'),
        Flag("force", "f", BOOL, "Do not prompt for confirmation"),
    ),
)
