"""``portside events``: the daemon's events as they happen (docker/cli ``cli/command/system/events.go``).

``--since``/``--until`` are converted here, as docker's client does
(moby's ``GetTimestamp``: a duration before now, a date, or Unix seconds);
``--until`` ends the output when reached. Without ``--format`` each event is
a line ``TIME TYPE ACTION ID (k=v, ...)``; with it, a Go template over
``events.Message`` (``json`` is ``{{json .}}``), one line per event.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping

from portside.cli.commands.base import FILTER, STRING, Command, Context, Flag, Options, StatusError
from portside.cli.commands.containers import api_timestamp
from portside.cli.commands.formatting import row_type
from portside.cli.commands.images import filters_json

_Actor = row_type("events.Actor")


class Message(row_type("events.Message")):  # type: ignore[misc]
    """events.Message as templates see it: Go's field names, and its JSON (tags, order) for ``{{json .}}``."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        actor = doc.get("Actor") or {}
        super().__init__({
            "Status": doc.get("status", ""), "ID": doc.get("id", ""), "From": doc.get("from", ""),
            "Type": doc.get("Type", ""), "Action": doc.get("Action", ""),
            "Actor": _Actor({"ID": actor.get("ID", ""), "Attributes": dict(actor.get("Attributes") or {})}),
            "Scope": doc.get("scope", ""), "Time": int(doc.get("time") or 0), "TimeNano": int(doc.get("timeNano") or 0),
        })
        object.__setattr__(self, "_doc", dict(doc))

    def __go_json__(self) -> dict[str, Any]:
        return self._doc  # type: ignore[no-any-return]


def _fixed_nano(ns: int) -> str:
    """jsonmessage.RFC3339NanoFixed in local time: ``2006-01-02T15:04:05.000000000Z07:00``."""
    from datetime import datetime

    seconds, frac = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds).astimezone()
    offset = dt.strftime("%z")
    zone = "Z" if offset in ("+0000", "-0000") else offset[:3] + ":" + offset[3:]
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}" + zone


def pretty(doc: Mapping[str, Any]) -> str:
    """docker's prettyPrintEvent."""
    actor = doc.get("Actor") or {}
    head = ""
    if doc.get("timeNano"):
        head = _fixed_nano(int(doc["timeNano"])) + " "
    elif doc.get("time"):
        head = _fixed_nano(int(doc["time"]) * 1_000_000_000) + " "
    line = f"{head}{doc.get('Type', '')} {doc.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line + "\n"


def _template(fmt: str) -> Any:
    from portside.cli import gotemplate

    if not fmt:
        return None
    if fmt == "json":
        fmt = "{{json .}}"
    try:
        tmpl = gotemplate.parse(fmt)
        tmpl.execute(Message({}))  # as docker: a bad field fails now, not at the first event
    except gotemplate.TemplateError as e:
        raise StatusError(f"Error parsing format: {e}", 64) from None
    return tmpl


def run_events(ctx: Context, opts: Options, args: list[str]) -> int:
    import json

    from portside.cli import gotemplate

    tmpl = _template(opts.format)
    query = []
    if opts.since:
        query.append(("since", api_timestamp(opts.since, "since")))
    if opts.until:
        query.append(("until", api_timestamp(opts.until, "until")))
    fj = filters_json(opts.filter)
    if fj:
        query.append(("filters", fj))
    resp = ctx.client.request("GET", "/events", query or None)
    pending = b""
    for chunk in resp.iter_chunks():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            if not raw.strip():
                continue
            doc = json.loads(raw)
            if tmpl is None:
                ctx.out(pretty(doc))
            else:
                try:
                    ctx.out(tmpl.execute(Message(doc)) + "\n")
                except gotemplate.TemplateError as e:
                    raise StatusError(str(e), 1) from None
        ctx.stdout.flush()
    return 0


EVENTS = Command(
    use="events [OPTIONS]",
    short="Get real time events from the server",
    run=run_events,
    flags=(
        Flag("filter", "f", FILTER, "Filter output based on conditions provided"),
        Flag("format", None, STRING,
             "Format output using a custom template:\n'json':             Print in JSON format\n"
             "'TEMPLATE':         Print output using the given Go template.\n"
             "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with "
             "templates"),
        Flag("since", None, STRING, "Show all events created since timestamp"),
        Flag("until", None, STRING, "Stream events until this timestamp"),
    ),
    aliases="portside system events, portside events",
)
