"""Volume commands: volume create, ls, inspect, rm, prune.

As elsewhere, ``run_*`` talk to the daemon and ``format_*`` are pure; they
follow docker/cli's ``cli/command/volume`` and ``cli/command/formatter/volume.go``
(v28).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence

import re

from portside import units
from portside.cli.commands.base import (
    BOOL,
    FILTER,
    LIST,
    NO_ARGS,
    STRING,
    Args,
    Cancelled,
    CLIError,
    Command,
    Context,
    Flag,
    Options,
    flag_error,
    go_quote,
)
from portside.cli.commands.formatting import TABLE, Row, render_default_table, render_rows
from portside.cli.commands.images import FORMAT_HELP, INSPECT_FORMAT_HELP, confirm, filters_json

# ===========================================================================
# volume create


def parse_driver_opts(values: Sequence[str]) -> dict[str, str]:
    """docker's MapOpts: ``key=value``, a bare ``key`` is an empty value, the last of a key wins."""
    out: dict[str, str] = {}
    for value in values:
        key, _, val = value.partition("=")
        out[key] = val
    return out


def parse_labels(values: Sequence[str]) -> dict[str, str]:
    """``--label`` values (checked as opts.ValidateLabel does) → the Labels map; a bad one is a flag error."""
    from portside.cli.runopts import _validate_label

    labels: dict[str, str] = {}
    for value in values:
        try:
            _validate_label(value)
        except ValueError as e:
            raise flag_error(f'invalid argument {go_quote(value)} for "--label" flag: {e}', "volume create") from None
        key, _, val = value.partition("=")
        labels[key] = val
    return labels


def run_create(ctx: Context, opts: Options, args: list[str]) -> int:
    name = opts.name
    if args:
        if name:
            raise CLIError("conflicting options: cannot specify a volume-name through both --name and as a "
                           "positional arg")
        name = args[0]
    labels = parse_labels(opts.label)
    body: dict[str, Any] = {"Name": name, "Driver": opts.driver}
    driver_opts = parse_driver_opts(opts.opt)
    if driver_opts:  # omitempty, as docker's client sends them
        body["DriverOpts"] = driver_opts
    if labels:
        body["Labels"] = labels
    volume = ctx.client.post_json("/volumes/create", payload=body)
    ctx.out(volume["Name"] + "\n")
    return 0


VOLUME_CREATE = Command(
    use="create [OPTIONS] [VOLUME]",
    short="Create a volume",
    run=run_create,
    args=Args(0, 1),
    flags=(
        Flag("driver", "d", STRING, "Specify volume driver name", default="local"),
        Flag("label", None, LIST, "Set metadata for a volume"),
        Flag("name", None, STRING, "Specify volume name", hidden=True),
        Flag("opt", "o", LIST, "Set driver specific options", varname="map"),
    ),
)


# ===========================================================================
# volume ls

VOLUME_HEADERS = {
    "ID": "ID",
    "Name": "VOLUME NAME",
    "Group": "GROUP",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "Availability": "AVAILABILITY",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
    "Status": "STATUS",
}


class VolumeRow(Row):
    """formatter.volumeContext; ``Label`` is a method, so ``{{json .}}`` leaves it out as docker does."""

    _labels: Mapping[str, str]

    def Label(self, name: str) -> str:  # noqa: N802 (the template's method name)
        return self._labels.get(name, "")


VolumeRow.__name__ = VolumeRow.__qualname__ = "*formatter.volumeContext"


def volume_row(v: Mapping[str, Any]) -> VolumeRow:
    labels = v.get("Labels") or {}
    usage = v.get("UsageData")
    row = VolumeRow({
        "Availability": "N/A",  # the cluster volume fields: portside has no swarm
        "Driver": v.get("Driver") or "",
        "Group": "N/A",
        "Labels": ",".join(sorted(f"{k}={val}" for k, val in labels.items())),
        "Links": "N/A" if usage is None else str(usage.get("RefCount", 0)),
        "Mountpoint": v.get("Mountpoint") or "",
        "Name": v.get("Name") or "",
        "Scope": v.get("Scope") or "",
        "Size": "N/A" if usage is None else units.human_size(int(usage.get("Size", 0))),
        "Status": "N/A",
    })
    object.__setattr__(row, "_labels", dict(labels))
    return row


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> list[tuple[int, int | str]]:
    """sortorder.NaturalLess: runs of digits compare as numbers (v2 before v10)."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(name) if part]


def format_volumes(volumes: Sequence[Mapping[str, Any]], *, fmt: str = "", quiet: bool = False) -> str:
    """The output of ``volume ls`` for ``GET /volumes``' Volumes, sorted by name as docker sorts them."""
    rows = [volume_row(v) for v in sorted(volumes, key=lambda v: natural_key(v.get("Name") or ""))]
    fmt = fmt or TABLE
    if fmt == TABLE:
        if quiet:
            return "".join(r["Name"] + "\n" for r in rows)
        return render_default_table(["DRIVER", "VOLUME NAME"], [[r["Driver"], r["Name"]] for r in rows])
    if fmt == "raw":
        fmt = "name: {{.Name}}" if quiet else "name: {{.Name}}\\ndriver: {{.Driver}}\\n"
    return render_rows(fmt, rows, VOLUME_HEADERS)


def run_ls(ctx: Context, opts: Options, args: list[str]) -> int:
    fj = filters_json(opts.filter)
    answer = ctx.client.get_json("/volumes", [("filters", fj)] if fj else None) or {}
    ctx.out(format_volumes(answer.get("Volumes") or [], fmt=opts.format, quiet=opts.quiet))
    for warning in answer.get("Warnings") or []:
        ctx.err(warning + "\n")
    return 0


VOLUME_LS = Command(
    use="ls [OPTIONS]",
    short="List volumes",
    run=run_ls,
    args=NO_ARGS,
    flags=(
        Flag("filter", "f", FILTER, 'Provide filter values (e.g. "dangling=true")'),
        Flag("format", None, STRING, FORMAT_HELP),
        Flag("quiet", "q", BOOL, "Only display volume names"),
    ),
    aliases="portside volume ls, portside volume list",
)


# ===========================================================================
# volume inspect


def run_inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.commands.inspect import inspect_refs, raw_getter

    return inspect_refs(ctx, args, opts.format, raw_getter(ctx, "/volumes/{}"))


VOLUME_INSPECT = Command(
    use="inspect [OPTIONS] VOLUME [VOLUME...]",
    short="Display detailed information on one or more volumes",
    run=run_inspect,
    args=Args(1),
    flags=(Flag("format", "f", STRING, INSPECT_FORMAT_HELP),),
)


# ===========================================================================
# volume rm


def run_rm(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError

    query = [("force", "1")] if opts.force else None
    errors = []
    for name in args:
        try:
            ctx.client.request("DELETE", f"/volumes/{name}", query).read()
        except (APIError, CLIError) as e:
            errors.append(str(e))
            continue
        ctx.out(name + "\n")
    if errors:
        raise CLIError("\n".join(errors))  # errors.Join: one per line, status 1
    return 0


VOLUME_RM = Command(
    use="rm [OPTIONS] VOLUME [VOLUME...]",
    short="Remove one or more volumes",
    long="Remove one or more volumes. You cannot remove a volume that is in use by a container.",
    run=run_rm,
    args=Args(1),
    flags=(Flag("force", "f", BOOL, "Force the removal of one or more volumes"),),
    aliases="portside volume rm, portside volume remove",
)


# ===========================================================================
# volume prune

_ANONYMOUS_WARNING = """WARNING! This will remove anonymous local volumes not used by at least one container.
Are you sure you want to continue?"""
_ALL_WARNING = """WARNING! This will remove all local volumes not used by at least one container.
Are you sure you want to continue?"""


def format_prune(report: Mapping[str, Any]) -> str:
    deleted = report.get("VolumesDeleted") or []
    out = ""
    reclaimed = 0
    if deleted:
        out = "Deleted Volumes:\n" + "".join(f"{name}\n" for name in deleted) + "\n"
        reclaimed = int(report.get("SpaceReclaimed") or 0)
    return out + f"Total reclaimed space: {units.human_size(reclaimed)}\n"


def run_prune(ctx: Context, opts: Options, args: list[str]) -> int:
    filters = list(opts.filter)
    if opts.all:
        if any(name == "all" for name, _ in filters):
            raise CLIError("conflicting options: cannot specify both --all and --filter all=1")
        filters.append(("all", "true"))
    if not opts.force and not confirm(ctx, _ALL_WARNING if opts.all else _ANONYMOUS_WARNING):
        raise Cancelled()
    fj = filters_json(filters)
    report = ctx.client.request("POST", "/volumes/prune", [("filters", fj)] if fj else None).json()
    ctx.out(format_prune(report or {}))
    return 0


VOLUME_PRUNE = Command(
    use="prune [OPTIONS]",
    short="Remove unused local volumes",
    run=run_prune,
    args=NO_ARGS,
    flags=(
        Flag("all", "a", BOOL, "Remove all unused volumes, not just anonymous ones"),
        Flag("filter", None, FILTER, 'Provide filter values (e.g. "label=<label>")'),
        Flag("force", "f", BOOL, "Do not prompt for confirmation"),
    ),
)
