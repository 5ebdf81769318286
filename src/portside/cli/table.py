"""Tables laid out as docker prints them.

docker/cli writes every table through Go's ``text/tabwriter`` created as
``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``, and ``--format 'table ...'``
through its formatter (``cli/command/formatter/formatter.go``). This module
reproduces both:

* :func:`tabwrite` is the tabwriter algorithm: cells end at a tab, lines at a
  newline; the text after a line's last tab is not part of any column and is
  never padded. A column is a *column block*: the run of consecutive lines
  that all have a cell in that column. Each cell of a block is padded to the
  block's width, ``max(minwidth, widest cell + padding)``, widths counted in
  code points (Go counts runes).
* :func:`render_template_table` is the formatter: ``table`` prefix, header row
  rendered by running the same template over a header mapping, rows rendered
  one per item, everything passed through the tabwriter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from portside.cli import gotemplate

MINWIDTH = 10
TABWIDTH = 1
PADDING = 3
PADCHAR = " "


def tabwrite(
    text: str,
    *,
    minwidth: int = MINWIDTH,
    tabwidth: int = TABWIDTH,
    padding: int = PADDING,
    padchar: str = PADCHAR,
) -> str:
    """Lay out ``text`` as a Go ``tabwriter.Writer`` (flags 0) would, then ``Flush``.

    ``\\t`` and ``\\v`` end a cell; ``\\n`` and ``\\f`` end a line (a form feed is
    printed as a newline and also ends every column block). A trailing cell
    left open at the end of the text only counts if it is not empty, as in Go.
    """
    # A form feed ends the line and flushes: each section is laid out on its own.
    sections = text.split("\f")
    out: list[str] = []
    for i, section in enumerate(sections):
        if i + 1 < len(sections):
            section += "\n"
        lines = _split_cells(section)
        _format(lines, 0, len(lines), [], out, minwidth, tabwidth, padding, padchar)
    return "".join(out)


def _split_cells(text: str) -> list[list[str]]:
    """Cells per line. The text after the last newline is one more line, maybe empty."""
    lines: list[list[str]] = [[]]
    cell: list[str] = []
    for ch in text:
        if ch in "\t\v\n":
            lines[-1].append("".join(cell))
            cell = []
            if ch == "\n":
                lines.append([])
        else:
            cell.append(ch)
    if cell:
        lines[-1].append("".join(cell))
    return lines


def _format(
    lines: list[list[str]],
    line0: int,
    line1: int,
    widths: list[int],
    out: list[str],
    minwidth: int,
    tabwidth: int,
    padding: int,
    padchar: str,
) -> None:
    """Go's ``Writer.format``: find the next column block, size it, recurse to its right."""
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        # This line has a cell in `column`: print the lines before the block,
        # then measure the block (the consecutive lines that have this column).
        _write_lines(lines, line0, this, widths, out, tabwidth, padchar)
        line0 = this
        width = minwidth
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)
            this += 1
        _format(lines, line0, this, [*widths, width], out, minwidth, tabwidth, padding, padchar)
        line0 = this
    _write_lines(lines, line0, line1, widths, out, tabwidth, padchar)


def _write_lines(
    lines: list[list[str]],
    line0: int,
    line1: int,
    widths: list[int],
    out: list[str],
    tabwidth: int,
    padchar: str,
) -> None:
    for i in range(line0, line1):
        line = lines[i]
        for j, cell in enumerate(line):
            out.append(cell)
            if j < len(widths):
                out.append(_padding(len(cell), widths[j], tabwidth, padchar))
        if i + 1 < len(lines):
            out.append("\n")


def _padding(text_width: int, cell_width: int, tabwidth: int, padchar: str) -> str:
    if padchar == "\t":
        if tabwidth == 0:
            return ""
        # Round the cell up to a multiple of the tab width and fill it with tabs.
        cell_width = (cell_width + tabwidth - 1) // tabwidth * tabwidth
        return "\t" * ((cell_width - text_width + tabwidth - 1) // tabwidth)
    return padchar * (cell_width - text_width)


def render_table(rows: Iterable[Iterable[str]]) -> str:
    """Rows of cells laid out as docker's tables: each row one line, every line ending in newline."""
    return tabwrite("".join("\t".join(row) + "\n" for row in rows))


def prepare_format(format: str) -> tuple[bool, str]:
    """docker's ``Context.preFormat``: ``(is_table, template_text)``.

    ``table ...`` loses its prefix, ``json`` becomes ``{{json .}}``, spaces around
    the template are trimmed and the two-character escapes ``\\t`` and ``\\n``
    typed on a command line become a tab and a newline. The bare ``table`` key
    means a command's default table format: the caller substitutes that first.
    """
    is_table = format.startswith("table")
    text = format
    if is_table:
        text = text[len("table") :]
    elif format == "json":
        text = "{{json .}}"
    text = text.strip(" ")
    return is_table, text.replace("\\t", "\t").replace("\\n", "\n")


class _HeaderRow:
    """The header a table template is run over: a field name maps to its column title.

    docker runs the row template over a ``map[string]string`` of titles; a field
    missing from that map would print ``<no value>``, here it falls back to the
    upper-cased field name.
    """

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._headers.get(name, name.upper())


def _as_go_map(value: Any) -> Any:
    """docker marshals a list row as a Go map, so ``{{json .}}`` has sorted keys.

    Only JSON output can tell the difference: ``%v`` and ``range`` sort anyway.
    Dict subclasses (which may answer to more keys than they list) are kept.
    """
    if type(value) is dict:
        return {k: _as_go_map(value[k]) for k in sorted(value)}
    if type(value) is list:
        return [_as_go_map(v) for v in value]
    return value


def render_template_table(
    template: str,
    rows: Iterable[Any],
    *,
    headers: Mapping[str, str] | None = None,
    funcs: Mapping[str, Any] | None = None,
) -> str:
    """Render ``--format`` output for a list command exactly as docker's formatter does.

    ``template`` is what the user typed (``table {{.Repository}}\\t{{.Tag}}``,
    ``{{.ID}}``, ``json``). Each row is rendered and followed by a newline. A
    table format gets a header row (the template run over ``headers``, with
    docker's header functions, which leave titles untouched) and goes through
    :func:`tabwrite`. ``headers`` maps field names to titles as each docker
    command defines them, e.g. ``{"ID": "IMAGE ID", "Repository": "REPOSITORY"}``.

    Raises :class:`~portside.cli.gotemplate.TemplateError` for a bad template;
    docker prints such errors prefixed with ``template parsing error: ``.
    """
    is_table, text = prepare_format(template)
    parsed = gotemplate.parse(text, funcs=funcs)
    body = "".join(parsed.execute(_as_go_map(row)) + "\n" for row in rows)
    if not is_table:
        return body
    header_template = gotemplate.parse(text, funcs={**(funcs or {}), **gotemplate.HEADER_FUNCS})
    try:
        header = header_template.execute(_HeaderRow(headers or {}))
    except gotemplate.TemplateError as e:
        # docker ignores an error while rendering the header and keeps what
        # was written before it.
        header = e.partial
    return tabwrite(header + "\n" + body)
