"""Helpers shared by the formatters: docker/cli's small display rules.


Pure functions over strings and numbers: ID truncation (``stringid``),
``formatter.Ellipsis``, Go's time renderings, ``json.Indent``/``json.Compact``
over the daemon's raw bytes, and the ``--format`` dispatch every list command
goes through (``formatter.Context.Write``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence

import re
import time
import unicodedata

from portside.cli.commands.base import StatusError

TABLE = "table"
SHORT_ID_LEN = 12


def truncate_id(id_: str) -> str:
    """stringid.TruncateID: drop an ``algo:`` prefix, keep 12 characters."""
    i = id_.find(":")
    if i >= 0:
        id_ = id_[i + 1 :]
    return id_[:SHORT_ID_LEN]


def _char_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def ellipsis(s: str, max_width: int) -> str:
    """formatter.Ellipsis: cut to ``max_width`` display columns ending in "…"."""
    if max_width <= 0:
        return ""
    if max_width == 1:
        return s[:1]
    if s.isascii():
        return s if len(s) <= max_width else s[: max_width - 1] + "…"
    total = 0
    cuts = []
    for ch in s:
        total += _char_width(ch)
        cuts.append(total)
    if total <= max_width:
        return s
    for i in range(len(cuts) - 1):
        if cuts[i] <= max_width - 1 < cuts[i + 1]:
            return s[: i + 1] + "…"
    return s


def go_time_string(unix: float) -> str:
    """Go's ``time.Unix(t, 0).String()`` in local time: ``2024-05-01 12:00:00 +0000 UTC``."""
    from datetime import datetime

    dt = datetime.fromtimestamp(int(unix)).astimezone()
    zone = dt.strftime("%Z") or dt.strftime("%z")
    return dt.strftime("%Y-%m-%d %H:%M:%S %z ") + zone


def go_rfc3339(unix: float) -> str:
    """Go's ``time.Unix(t, 0).Format(time.RFC3339)`` in local time."""
    from datetime import datetime

    dt = datetime.fromtimestamp(int(unix)).astimezone()
    off = dt.utcoffset()
    if off is not None and off.total_seconds() == 0:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    s = dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    return s[:-2] + ":" + s[-2:]


def parse_go_time(value: str) -> float | None:
    """An RFC 3339 timestamp from the API (nanoseconds allowed) as Unix seconds."""
    from datetime import datetime, timedelta, timezone

    if not value:
        return None
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", value)
    if not m:
        return None
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    tz = m.group(3)
    if tz == "Z":
        base = base.replace(tzinfo=timezone.utc)
    else:
        sign = 1 if tz[0] == "+" else -1
        h, mi = int(tz[1:3]), int(tz[4:6])
        base = base.replace(tzinfo=timezone(sign * timedelta(hours=h, minutes=mi)))
    frac = float(m.group(2)) if m.group(2) else 0.0
    return base.timestamp() + frac


def now() -> float:
    return time.time()


# ---------------------------------------------------------------------------
# JSON as Go's encoding/json prints it

_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+')


def indent_json(raw: str, indent: str = "    ") -> str:
    """Go's ``json.Indent(dst, src, "", indent)``: strings and numbers copied verbatim."""
    tokens = _JSON_TOKEN.findall(raw)
    out: list[str] = []
    depth = 0
    i = 0
    n = len(tokens)
    while i < n:
        t = tokens[i]
        if t == "{" or t == "[":
            close = "}" if t == "{" else "]"
            if i + 1 < n and tokens[i + 1] == close:
                out.append(t + close)
                i += 2
                continue
            depth += 1
            out.append(t + "\n" + indent * depth)
        elif t == "}" or t == "]":
            depth -= 1
            out.append("\n" + indent * depth + t)
        elif t == ",":
            out.append(",\n" + indent * depth)
        elif t == ":":
            out.append(": ")
        else:
            out.append(t)
        i += 1
    return "".join(out)


def compact_json(raw: str) -> str:
    """Go's ``json.Compact``."""
    return "".join(_JSON_TOKEN.findall(raw))


# ---------------------------------------------------------------------------
# --format


def template_error(e: Exception) -> str:
    return f"template parsing error: {e}"


def render_rows(
    fmt: str,
    rows: Sequence[Row],
    headers: Mapping[str, str],
    *,
    funcs: Mapping[str, Any] | None = None,
) -> str:
    """formatter.Context.Write for a custom ``--format`` (``table ...``, ``json`` or a template).

    A bad template is a plain error (status 1), as in docker's list commands.
    """
    from portside.cli import gotemplate, table

    try:
        return table.render_template_table(fmt, rows, headers=headers, funcs=funcs)
    except gotemplate.TemplateError as e:
        raise StatusError(template_error(e), 1) from None


def grid(rows: Sequence[Sequence[str]], *, minwidth: int = 10, padding: int = 3) -> str:
    """A block of rows with the same number of cells, laid out as Go's tabwriter does.

    For such a block the tabwriter reduces to this: every column but the last
    is padded to ``max(minwidth, widest cell + padding)`` (widths in code
    points, as Go counts runes); the last cell is never padded. The general
    layout is ``portside.cli.table``; this shortcut keeps the default tables
    from importing the template engine that module loads.
    """
    if not rows:
        return ""
    ncols = len(rows[0])
    widths = [max(minwidth, max(len(r[j]) for r in rows) + padding) for j in range(ncols - 1)]
    out = []
    for r in rows:
        out.append("".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[-1] + "\n")
    return "".join(out)


def render_default_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A command's default table: its header, then one line per row."""
    return grid([list(header), *[list(r) for r in rows]])


class Row:
    """One row of a list command, as docker's formatter contexts present it.

    Templates see the fields as attributes, so an unknown field is an error
    (``can't evaluate field Foo``) as on docker's typed contexts, not the
    ``<no value>`` of a map; ``{{json .}}`` lists them with sorted keys, as
    docker marshals a context through a map.
    """

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.__dict__.update(sorted(fields.items()))

    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Row({vars(self)!r})"


def row_type(go_name: str) -> type[Row]:
    """A Row class whose name is the Go type docker names in template errors."""
    return type(go_name, (Row,), {})


def sorted_row(d: Mapping[str, Any], kind: type[Row] = Row) -> Row:
    return kind(d)


# ---------------------------------------------------------------------------
# JSON message streams (pkg/jsonmessage, as docker prints them to a non-terminal)


class StreamError(Exception):
    """An ``{"errorDetail": ...}`` message in a stream; printed as is, status 1."""


def display_json_message(msg: Mapping[str, Any]) -> str:
    """jsonmessage.Display for a non-terminal: the text one message prints."""
    if msg.get("errorDetail") or msg.get("error"):
        detail = msg.get("errorDetail") or {}
        raise StreamError(detail.get("message") or msg.get("error") or "")
    progress = msg.get("progressDetail")
    if progress and (progress.get("current", 0) > 0 or progress.get("total", 0) > 0):
        return ""  # progress bars are for terminals
    parts = []
    if msg.get("id"):
        parts.append(f"{msg['id']}: ")
    if msg.get("from"):
        parts.append(f"(from {msg['from']}) ")
    status = msg.get("status", "")
    if msg.get("progress"):  # the deprecated ProgressMessage field
        parts.append(f"{status} {msg['progress']}")
    elif msg.get("stream"):
        parts.append(msg["stream"])
    else:
        parts.append(f"{status}\n")
    return "".join(parts)


def display_json_messages(messages: Any, write: Any) -> None:
    """DisplayJSONMessagesStream: print each message, skip ``aux``, stop at an error."""
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("aux") is not None:
            continue
        text = display_json_message(msg)
        if text:
            write(text)
