"""Image commands: images/ls, rmi, tag, history, inspect, prune, import, load, save.


Each command is fetch -> format: the ``run_*`` functions talk to the daemon,
the ``format_*`` functions are pure (API JSON in, text out) and follow
docker/cli's ``cli/command/image`` and ``cli/command/formatter/image.go``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, Mapping, Sequence

import os
import sys

from portside import units
from portside.cli.commands import reference
from portside.cli.commands.base import (
    BOOL,
    FILTER,
    LIST,
    STRING,
    Args,
    Cancelled,
    CLIError,
    Command,
    Context,
    Flag,
    Options,
    StatusError,
)
from portside.cli.commands.formatting import (
    TABLE,
    Row,
    StreamError,
    display_json_messages,
    ellipsis,
    go_rfc3339,
    go_time_string,
    render_default_table,
    render_rows,
    row_type,
    sorted_row,
    truncate_id,
)

FORMAT_HELP = """Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"""

INSPECT_FORMAT_HELP = """Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"""


def filters_json(pairs: Iterable[tuple[str, str]]) -> str:
    """filters.Args as JSON: ``{"dangling":{"true":true}}``; empty when there are none."""
    import json

    out: dict[str, dict[str, bool]] = {}
    for name, value in pairs:
        out.setdefault(name, {})[value] = True
    return json.dumps(out, separators=(",", ":")) if out else ""


def go_open_error(path: str, e: OSError) -> CLIError:
    """An os.Open failure worded as Go's *PathError: ``open x: no such file or directory``."""
    msg = (e.strerror or str(e))
    return CLIError(f"open {path}: {msg[:1].lower()}{msg[1:]}")


# ===========================================================================
# images / image ls

IMAGE_HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "VirtualSize": "SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}

_RAW_IMAGE = """repository: {{ .Repository }}
tag: {{.Tag}}
image_id: {{.ID}}
created_at: {{.CreatedAt}}
virtual_size: {{.Size}}
"""
_RAW_IMAGE_DIGEST = """repository: {{ .Repository }}
tag: {{.Tag}}
digest: {{.Digest}}
image_id: {{.ID}}
created_at: {{.CreatedAt}}
virtual_size: {{.Size}}
"""


ImageRow = row_type("*formatter.imageContext")
HistoryRow = row_type("*image.historyContext")


def is_dangling(img: Mapping[str, Any]) -> bool:
    tags = img.get("RepoTags") or []
    digests = img.get("RepoDigests") or []
    if not tags and not digests:
        return True
    return tags == ["<none>:<none>"] and digests == ["<none>@<none>"]


def image_row(
    img: Mapping[str, Any], repo: str, tag: str, digest: str, *, trunc: bool, now: float | None = None
) -> Row:
    """One row of ``images`` with every field docker's image formatter offers."""
    id_ = img.get("Id", "")
    created = int(img.get("Created") or 0)
    size = int(img.get("Size") or 0)
    shared = img.get("SharedSize", -1)
    shared = -1 if shared is None else int(shared)
    containers = img.get("Containers", -1)
    containers = -1 if containers is None else int(containers)
    return sorted_row(
        {
            "Containers": "N/A" if containers == -1 else str(containers),
            "CreatedAt": go_time_string(created),
            "CreatedSince": units.time_ago(created, now),
            "Digest": digest,
            "ID": truncate_id(id_) if trunc else id_,
            "Repository": repo,
            "SharedSize": "N/A" if shared == -1 else units.human_size(shared),
            "Size": units.human_size_precision(size, 3),
            "Tag": tag,
            "UniqueSize": "N/A" if size == -1 or shared == -1 else units.human_size(size - shared),
            "VirtualSize": units.human_size(size),
        },
        ImageRow,
    )


def image_rows(
    images: Sequence[Mapping[str, Any]],
    *,
    trunc: bool = True,
    show_digests: bool = False,
    need_digest: bool = False,
    now: float | None = None,
) -> list[Row]:
    """formatter.imageFormat: one row per repository:tag (per digest with --digests)."""
    rows: list[Row] = []
    for img in images:
        if is_dangling(img):
            rows.append(image_row(img, "<none>", "<none>", "<none>", trunc=trunc, now=now))
            continue
        repo_tags: dict[str, list[str]] = {}
        repo_digests: dict[str, list[str]] = {}
        for ref in img.get("RepoTags") or []:
            parsed = reference.familiar_repo_tag(ref)
            if parsed:
                repo_tags.setdefault(parsed[0], []).append(parsed[1])
        for ref in img.get("RepoDigests") or []:
            parsed = reference.familiar_repo_digest(ref)
            if parsed:
                repo_digests.setdefault(parsed[0], []).append(parsed[1])
        for repo, tags in repo_tags.items():
            digests = repo_digests.pop(repo, [])
            if not need_digest:
                digests = []
            for tag in tags:
                if not digests:
                    rows.append(image_row(img, repo, tag, "<none>", trunc=trunc, now=now))
                for dgst in digests:
                    rows.append(image_row(img, repo, tag, dgst, trunc=trunc, now=now))
        for repo, digests in repo_digests.items():
            if show_digests:
                for dgst in digests:
                    rows.append(image_row(img, repo, "<none>", dgst, trunc=trunc, now=now))
            else:
                rows.append(image_row(img, repo, "<none>", "", trunc=trunc, now=now))
    return rows


def format_images(
    images: Sequence[Mapping[str, Any]],
    *,
    fmt: str = "",
    quiet: bool = False,
    no_trunc: bool = False,
    digests: bool = False,
    now: float | None = None,
) -> str:
    """The output of ``portside images`` for the daemon's ``GET /images/json`` answer."""
    fmt = fmt or TABLE
    need_digest = digests or "{{.Digest}}" in fmt
    rows = image_rows(images, trunc=not no_trunc, show_digests=digests, need_digest=need_digest, now=now)
    if fmt == TABLE:
        if quiet:
            return "".join(r["ID"] + "\n" for r in rows)
        header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
        keys = ["Repository", "Tag", "ID", "CreatedSince", "Size"]
        if digests:
            header.insert(2, "DIGEST")
            keys.insert(2, "Digest")
        # docker's default template prints N/A for an empty CREATED
        return render_default_table(header, [[r[k] or "N/A" for k in keys] for r in rows])
    if fmt == "raw":
        fmt = "image_id: {{.ID}}" if quiet else (_RAW_IMAGE_DIGEST if digests else _RAW_IMAGE)
    elif fmt.startswith(TABLE) and digests and "{{.Digest}}" not in fmt:
        fmt += "\t{{.Digest}}"
    return render_rows(fmt, rows, IMAGE_HEADERS)


_AMBIGUOUS = {"build", "history", "import", "inspect", "list", "load", "ls", "prune", "pull", "push", "rm", "save", "tag"}


def run_images(ctx: Context, opts: Options, args: list[str], *, called_as: str) -> int:
    filters = list(opts.filter)
    if args:
        filters.append(("reference", args[0]))
    query: list[tuple[str, str]] = []
    fj = filters_json(filters)
    if fj:
        query.append(("filters", fj))
    if opts.all:
        query.append(("all", "1"))
    if opts.digests:
        query.append(("digests", "1"))
    images = ctx.client.get_json("/images/json", query)
    ctx.out(format_images(images, fmt=opts.format, quiet=opts.quiet, no_trunc=opts.no_trunc, digests=opts.digests))
    if args and not images and called_as == "images" and args[0] in _AMBIGUOUS:
        ctx.err(f'\nNo images found matching "{args[0]}": did you mean "portside image {args[0]}"?\n')
    return 0


_IMAGES_FLAGS = (
    Flag("all", "a", BOOL, "Show all images (default hides intermediate images)"),
    Flag("digests", None, BOOL, "Show digests"),
    Flag("filter", "f", FILTER, "Filter output based on conditions provided"),
    Flag("format", None, STRING, FORMAT_HELP),
    Flag("no-trunc", None, BOOL, "Don't truncate output"),
    Flag("quiet", "q", BOOL, "Only show image IDs"),
)

IMAGES = Command(
    use="images [OPTIONS] [REPOSITORY[:TAG]]",
    short="List images",
    run=lambda ctx, opts, args: run_images(ctx, opts, args, called_as="images"),
    args=Args(0, 1),
    flags=_IMAGES_FLAGS,
    aliases="portside image ls, portside image list, portside images",
)
IMAGE_LS = IMAGES.with_use(
    "ls [OPTIONS] [REPOSITORY[:TAG]]",
    run=lambda ctx, opts, args: run_images(ctx, opts, args, called_as="ls"),
)


# ===========================================================================
# rmi / image rm


def format_deletes(items: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for item in items or []:
        if item.get("Deleted"):
            out.append(f"Deleted: {item['Deleted']}\n")
        else:
            out.append(f"Untagged: {item.get('Untagged', '')}\n")
    return "".join(out)


def run_rmi(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError

    query: list[tuple[str, str]] = []
    if opts.force:
        query.append(("force", "1"))
    if opts.no_prune:
        query.append(("noprune", "1"))
    errors: list[str] = []
    fatal = False
    for name in args:
        try:
            items = ctx.client.request("DELETE", f"/images/{name}", query).json()
        except APIError as e:
            if not e.not_found:
                fatal = True
            errors.append(str(e))
            continue
        ctx.out(format_deletes(items))
    if errors:
        msg = "\n".join(errors)
        if not opts.force or fatal:
            raise CLIError(msg)
        ctx.err(msg + "\n")
    return 0


RMI = Command(
    use="rmi [OPTIONS] IMAGE [IMAGE...]",
    short="Remove one or more images",
    run=run_rmi,
    args=Args(1),
    flags=(
        Flag("force", "f", BOOL, "Force removal of the image"),
        Flag("no-prune", None, BOOL, "Do not delete untagged parents"),
    ),
    aliases="portside image rm, portside image remove, portside rmi",
)
IMAGE_RM = RMI.with_use("rm [OPTIONS] IMAGE [IMAGE...]")


# ===========================================================================
# tag


def tag_query(source: str, target: str) -> list[tuple[str, str]]:
    """Validate both names as the docker client does; the query for POST /images/{source}/tag."""
    try:
        reference.parse_any(source)
    except reference.ReferenceError as e:
        raise CLIError(f'Error parsing reference: "{source}" is not a valid repository/tag: {e}') from None
    try:
        ref = reference.parse_normalized_named(target)
    except reference.ReferenceError as e:
        raise CLIError(f'Error parsing reference: "{target}" is not a valid repository/tag: {e}') from None
    if ref.digest:
        raise CLIError("refusing to create a tag with a digest reference")
    return [("repo", ref.familiar_name()), ("tag", ref.tag or "latest")]


def run_tag(ctx: Context, opts: Options, args: list[str]) -> int:
    source, target = args
    ctx.client.request("POST", f"/images/{source}/tag", tag_query(source, target)).read()
    return 0


TAG = Command(
    use="tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    short="Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    run=run_tag,
    args=Args(2, 2),
    aliases="portside image tag, portside tag",
    interspersed=False,
)
IMAGE_TAG = TAG


# ===========================================================================
# history

HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
_EPOCH_2000 = 946684800


def history_row(h: Mapping[str, Any], *, trunc: bool, human: bool, now: float | None = None) -> Row:
    id_ = h.get("Id") or "<missing>"
    created = int(h.get("Created") or 0)
    created_at = go_rfc3339(created)
    if not human:
        since = created_at
    elif created <= _EPOCH_2000:
        since = "N/A"
    else:
        since = units.time_ago(created, now)
    created_by = (h.get("CreatedBy") or "").replace("\t", " ")
    size = int(h.get("Size") or 0)
    return sorted_row(
        {
            "Comment": h.get("Comment") or "",
            "CreatedAt": created_at,
            "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
            "CreatedSince": since,
            "ID": truncate_id(id_) if trunc else id_,
            "Size": units.human_size_precision(size, 3) if human else str(size),
        },
        HistoryRow,
    )


def format_history(
    history: Sequence[Mapping[str, Any]],
    *,
    fmt: str = "",
    quiet: bool = False,
    human: bool = True,
    no_trunc: bool = False,
    now: float | None = None,
) -> str:
    rows = [history_row(h, trunc=not no_trunc, human=human, now=now) for h in history]
    fmt = fmt or TABLE
    if fmt == TABLE:
        if quiet:
            return "".join(r["ID"] + "\n" for r in rows)
        header = ["IMAGE", "CREATED" if human else "CREATED AT", "CREATED BY", "SIZE", "COMMENT"]
        keys = ["ID", "CreatedSince" if human else "CreatedAt", "CreatedBy", "Size", "Comment"]
        return render_default_table(header, [[r[k] for k in keys] for r in rows])
    return render_rows(fmt, rows, HISTORY_HEADERS)


def run_history(ctx: Context, opts: Options, args: list[str]) -> int:
    history = ctx.client.get_json(f"/images/{args[0]}/history")
    ctx.out(format_history(history, fmt=opts.format, quiet=opts.quiet, human=opts.human, no_trunc=opts.no_trunc))
    return 0


HISTORY = Command(
    use="history [OPTIONS] IMAGE",
    short="Show the history of an image",
    run=run_history,
    args=Args(1, 1),
    flags=(
        Flag("format", None, STRING, FORMAT_HELP),
        Flag("human", "H", BOOL, "Print sizes and dates in human readable format", default=True),
        Flag("no-trunc", None, BOOL, "Don't truncate output"),
        Flag("quiet", "q", BOOL, "Only show image IDs"),
    ),
    aliases="portside image history, portside history",
)
IMAGE_HISTORY = HISTORY


# ===========================================================================
# image inspect


def run_image_inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.commands.inspect import inspect_refs, raw_getter

    return inspect_refs(ctx, args, opts.format, raw_getter(ctx, "/images/{}/json"))


IMAGE_INSPECT = Command(
    use="inspect [OPTIONS] IMAGE [IMAGE...]",
    short="Display detailed information on one or more images",
    run=run_image_inspect,
    args=Args(1),
    flags=(Flag("format", "f", STRING, INSPECT_FORMAT_HELP),),
)


# ===========================================================================
# image prune

_ALL_WARNING = """WARNING! This will remove all images without at least one container associated to them.
Are you sure you want to continue?"""
_DANGLING_WARNING = """WARNING! This will remove all dangling images.
Are you sure you want to continue?"""


def confirm(ctx: Context, message: str) -> bool:
    """command.PromptForConfirmation: ``message [y/N] `` on stdout, one line from stdin."""
    ctx.out(message + " [y/N] ")
    ctx.stdout.flush()
    line = ctx.stdin.readline()
    return line.strip().lower() == "y"


def format_prune(report: Mapping[str, Any]) -> str:
    deleted = report.get("ImagesDeleted") or []
    out = ""
    reclaimed = 0
    if deleted:
        lines = ["Deleted Images:\n"]
        for item in deleted:
            if item.get("Untagged"):
                lines.append(f"untagged: {item['Untagged']}\n")
            else:
                lines.append(f"deleted: {item.get('Deleted', '')}\n")
        out = "".join(lines) + "\n"
        reclaimed = int(report.get("SpaceReclaimed") or 0)
    return out + f"Total reclaimed space: {units.human_size(reclaimed)}\n"


def run_image_prune(ctx: Context, opts: Options, args: list[str]) -> int:
    filters = [*opts.filter, ("dangling", "false" if opts.all else "true")]
    if not opts.force and not confirm(ctx, _ALL_WARNING if opts.all else _DANGLING_WARNING):
        raise Cancelled()
    report = ctx.client.request("POST", "/images/prune", [("filters", filters_json(filters))]).json()
    ctx.out(format_prune(report or {}))
    return 0


IMAGE_PRUNE = Command(
    use="prune [OPTIONS]",
    short="Remove unused images",
    run=run_image_prune,
    flags=(
        Flag("all", "a", BOOL, "Remove all unused images, not just dangling ones"),
        Flag("filter", None, FILTER, 'Provide filter values (e.g. "until=<timestamp>")'),
        Flag("force", "f", BOOL, "Do not prompt for confirmation"),
    ),
)


# ===========================================================================
# import


def import_query(source: str, ref: str, message: str, changes: Sequence[str], platform: str) -> list[tuple[str, str]]:
    repo = tag = ""
    if ref:
        try:
            parsed = reference.parse_normalized_named(ref)
        except reference.ReferenceError as e:
            raise CLIError(str(e)) from None
        repo, tag = parsed.familiar_name(), parsed.tag or ""
    query = [("fromSrc", source), ("repo", repo), ("tag", tag), ("message", message)]
    if platform:
        query.append(("platform", platform.lower()))
    query.extend(("changes", c) for c in changes)
    return query


def _print_stream(ctx: Context, resp: Any) -> int:
    try:
        display_json_messages(resp.iter_json(), ctx.out)
    except StreamError as e:
        ctx.stdout.flush()
        raise CLIError(str(e)) from None
    return 0


def run_import(ctx: Context, opts: Options, args: list[str]) -> int:
    source = args[0]
    ref = args[1] if len(args) > 1 else ""
    headers = {"Content-Type": "application/x-tar"}
    if source == "-":
        query = import_query("-", ref, opts.message, opts.change, opts.platform)
        resp = ctx.client.request("POST", "/images/create", query, body=sys.stdin.buffer, headers=headers, chunked=True)
    elif source.startswith(("http://", "https://")):
        query = import_query(source, ref, opts.message, opts.change, opts.platform)
        resp = ctx.client.request("POST", "/images/create", query)
    else:
        try:
            f = open(source, "rb")
        except OSError as e:
            raise go_open_error(source, e) from None
        with f:
            query = import_query("-", ref, opts.message, opts.change, opts.platform)
            resp = ctx.client.request("POST", "/images/create", query, body=f, headers=headers)
    return _print_stream(ctx, resp)


IMPORT = Command(
    use="import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
    short="Import the contents from a tarball to create a filesystem image",
    run=run_import,
    args=Args(1, 2),
    flags=(
        Flag("change", "c", LIST, "Apply Dockerfile instruction to the created image"),
        Flag("message", "m", STRING, "Set commit message for imported image"),
        Flag("platform", None, STRING, "Set platform if server is multi-platform capable"),
    ),
    aliases="portside image import, portside import",
)
IMAGE_IMPORT = IMPORT


# ===========================================================================
# load


def run_load(ctx: Context, opts: Options, args: list[str]) -> int:
    headers = {"Content-Type": "application/x-tar"}
    quiet = opts.quiet or not ctx.stdout_is_tty()
    query = [("quiet", "1" if quiet else "0")]
    if opts.input:
        try:
            f = open(opts.input, "rb")
        except OSError as e:
            raise go_open_error(opts.input, e) from None
        with f:
            resp = ctx.client.request("POST", "/images/load", query, body=f, headers=headers)
    else:
        if ctx.stdin_is_tty():
            raise CLIError("requested load from stdin, but stdin is empty")
        resp = ctx.client.request("POST", "/images/load", query, body=sys.stdin.buffer, headers=headers, chunked=True)
    if resp.content_type == "application/json":
        return _print_stream(ctx, resp)
    out = ctx.stdout.buffer if hasattr(ctx.stdout, "buffer") else None
    for chunk in resp.iter_chunks():
        if out is not None:
            out.write(chunk)
        else:
            ctx.out(chunk.decode("utf-8", "replace"))
    return 0


LOAD = Command(
    use="load [OPTIONS]",
    short="Load an image from a tar archive or STDIN",
    run=run_load,
    flags=(
        Flag("input", "i", STRING, "Read from tar archive file, instead of STDIN"),
        Flag("quiet", "q", BOOL, "Suppress the load output"),
    ),
    aliases="portside image load, portside load",
)
IMAGE_LOAD = LOAD


# ===========================================================================
# save


def validate_output_path(path: str) -> None:
    """command.ValidateOutputPath: the directory must exist; the path a file or directory."""
    import stat

    d = os.path.dirname(os.path.normpath(path))
    if d and d != "." and not os.path.exists(d):
        raise CLIError(f'failed to save image: invalid output path: directory "{d}" does not exist')
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise CLIError(f'failed to save image: invalid output path: "{path}" must be a directory or a regular file')


def run_save(ctx: Context, opts: Options, args: list[str]) -> int:
    if not opts.output and ctx.stdout_is_tty():
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if opts.output:
        validate_output_path(opts.output)
    resp = ctx.client.request("GET", "/images/get", [("names", n) for n in args])
    if not opts.output:
        ctx.stdout.flush()
        out = ctx.stdout.buffer
        for chunk in resp.iter_chunks():
            out.write(chunk)
        out.flush()
        return 0
    # Write next to the target, then rename: a failed save never leaves half a tarball.
    import tempfile

    directory = os.path.dirname(opts.output) or "."
    fd, tmp = tempfile.mkstemp(prefix=".portside_temp_", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in resp.iter_chunks():
                f.write(chunk)
        os.rename(tmp, opts.output)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return 0


SAVE = Command(
    use="save [OPTIONS] IMAGE [IMAGE...]",
    short="Save one or more images to a tar archive (streamed to STDOUT by default)",
    run=run_save,
    args=Args(1),
    flags=(Flag("output", "o", STRING, "Write to a file, instead of STDOUT"),),
    aliases="portside image save, portside save",
)
IMAGE_SAVE = SAVE
