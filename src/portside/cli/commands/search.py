"""``search``: ``GET /images/search``, printed as docker/cli's search command and formatter.

docker 28's table is NAME, DESCRIPTION, STARS, OFFICIAL (the AUTOMATED column
is gone; ``{{.IsAutomated}}`` still works in ``--format``). Descriptions are
one line, cut to 45 columns unless ``--no-trunc``; OFFICIAL is ``[OK]`` or empty.
"""

from __future__ import annotations

from portside.cli.commands.base import BOOL, FILTER, INT, STRING, Args, CLIError, Command, Context, Flag, Options
from portside.cli.commands.formatting import TABLE, Row, render_default_table, render_rows, row_type

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence

HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL",
           "IsAutomated": "AUTOMATED"}
SearchRow = row_type("*formatter.searchContext")


def _mark(flag: object) -> str:
    return "[OK]" if flag is True else ""


def search_row(r: Mapping[str, Any], trunc: bool) -> Row:
    from portside.cli.commands.formatting import ellipsis

    desc = str(r.get("description") or "").replace("\n", " ").replace("\r", " ")
    return SearchRow({"Name": str(r.get("name") or ""), "Description": ellipsis(desc, 45) if trunc else desc,
                      "StarCount": str(r.get("star_count") or 0), "IsOfficial": _mark(r.get("is_official")),
                      "IsAutomated": _mark(r.get("is_automated"))})


def format_search(results: Sequence[Mapping[str, Any]], *, fmt: str = "", trunc: bool = True) -> str:
    rows = [search_row(r, trunc) for r in results]
    if not fmt or fmt == TABLE:
        return render_default_table(["NAME", "DESCRIPTION", "STARS", "OFFICIAL"],
                                    [[r["Name"], r["Description"], r["StarCount"], r["IsOfficial"]] for r in rows])
    return render_rows(fmt, rows, HEADERS)


def index_domain(term: str) -> str:
    """registry.ParseSearchIndexInfo: the index a term names, for the credentials to send."""
    first, sep, _ = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return "docker.io" if first in ("index.docker.io", "registry-1.docker.io") else first
    return "docker.io"


def run_search(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli import dockerconfig
    from portside.cli.commands.images import filters_json

    term = args[0]
    query = [("term", term)]
    if opts.limit:
        query.append(("limit", str(opts.limit)))
    fj = filters_json(opts.filter)
    if fj:
        query.append(("filters", fj))
    try:
        auth = dockerconfig.registry_auth_header(index_domain(term))
    except dockerconfig.ConfigError as e:
        raise CLIError(str(e)) from None
    results = ctx.client.request("GET", "/images/search", query, headers={"X-Registry-Auth": auth}).json() or []
    ctx.out(format_search(results, fmt=opts.format, trunc=not opts.no_trunc))
    return 0


SEARCH = Command(
    use="search [OPTIONS] TERM",
    short="Search Docker Hub for images",
    run=run_search,
    args=Args(1, 1),
    flags=(
        Flag("filter", "f", FILTER, "Filter output based on conditions provided"),
        Flag("format", None, STRING, "Pretty-print search using a Go template"),
        Flag("limit", None, INT, "Max number of search results"),
        Flag("no-trunc", None, BOOL, "Don't truncate output"),
    ),
)
