"""``ps`` / ``container ls``, after docker/cli ``container/list.go`` and ``formatter/container.go``."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence

import re

from portside import units
from portside.cli.commands import reference
from portside.cli.commands.base import BOOL, FILTER, INT, STRING, Command, Context, Flag, Options
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
from portside.cli.commands.images import FORMAT_HELP, filters_json


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


def displayable_ports(ports: Sequence[Mapping[str, Any]]) -> str:
    """formatter.DisplayablePorts: group consecutive ports, list host mappings."""

    def sort_key(p: Mapping[str, Any]) -> tuple[int, str, int, str]:
        return (int(p.get("PrivatePort") or 0), p.get("IP") or "", int(p.get("PublicPort") or 0), p.get("Type") or "")

    groups: dict[str, list[int]] = {}
    result: list[str] = []
    host_mappings: list[str] = []
    for p in sorted(ports, key=sort_key):
        current = int(p.get("PrivatePort") or 0)
        key = p.get("Type") or ""
        ip = p.get("IP") or ""
        if ip:
            public = int(p.get("PublicPort") or 0)
            if public != current:
                host_mappings.append(f"{ip}:{public}->{current}/{key}")
                continue
            key = f"{ip}/{key}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
            continue
        if current == group[1] + 1:
            group[1] = current
            continue
        result.append(_form_group(key, group[0], group[1]))
        groups[key] = [current, current]
    for key, (first, last) in groups.items():
        result.append(_form_group(key, first, last))
    return ", ".join(result + host_mappings)


def _form_group(key: str, first: int, last: int) -> str:
    parts = key.split("/")
    kind, ip = parts[0], ""
    if len(parts) > 1:
        ip, kind = parts[0], parts[1]
    group = str(first) if first == last else f"{first}-{last}"
    if ip:
        group = f"{ip}:{group}->{group}"
    return f"{group}/{kind}"


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
