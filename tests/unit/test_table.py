"""Tables as docker prints them: Go's tabwriter and docker's ``--format 'table ...'``.

Every expected string was produced by Go's text/tabwriter, or by docker's
formatter flow (preFormat, rows, header rendered with HeaderFunctions,
``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``) run in Go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from portside.cli.gotemplate import TemplateError
from portside.cli.table import prepare_format, render_table, render_template_table, tabwrite


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Every column is at least minwidth (10) wide, cells get 3 spaces of padding.
        ("a\tb\tc\n", "a         b         c\n"),
        ("abcdefghij\tx\n", "abcdefghij   x\n"),
        ("abcdefghijklmnop\tx\nq\ty\n", "abcdefghijklmnop   x\nq                  y\n"),
        # The text after a line's last tab belongs to no column and is never padded.
        ("a\tb\tc\nd\te\n", "a         b         c\nd         e\n"),
        ("x\t\ty\n", "x                   y\n"),
        # A line without tabs ends every column block: the lines after it are sized anew.
        (
            "a\tb\nlong line without tabs\nccccccccccccccc\td\n",
            "a         b\nlong line without tabs\nccccccccccccccc   d\n",
        ),
        # Text left without a newline: a trailing empty cell does not count.
        ("a\tb", "a         b"),
        ("a\t", "a"),
        ("", ""),
        # Widths are counted in runes, not bytes.
        ("héllo\twörld\nx\ty\n", "héllo     wörld\nx         y\n"),
        # A form feed ends the line and flushes; a vertical tab ends a cell like a tab.
        ("a\tb\fcccccccccccccc\td\n", "a         b\ncccccccccccccc   d\n"),
        ("a\vb\n", "a         b\n"),
    ],
)
def test_tabwrite_matches_go(text: str, expected: str) -> None:
    assert tabwrite(text) == expected


def test_tabwrite_options() -> None:
    assert tabwrite("a\tb\n", minwidth=0, padding=1) == "a b\n"
    assert tabwrite("a\tb\n", minwidth=0, padding=1, padchar=".") == "a.b\n"
    assert tabwrite("ab\tc\n", minwidth=0, tabwidth=4, padding=1, padchar="\t") == "ab\tc\n"


def test_render_table() -> None:
    rows = [
        ["REPOSITORY", "TAG", "IMAGE ID"],
        ["busybox", "latest", "beae173ccac6"],
        ["registry.example.com/team/app", "1.0", "0123456789ab"],
    ]
    assert render_table(rows) == (
        "REPOSITORY                      TAG       IMAGE ID\n"
        "busybox                         latest    beae173ccac6\n"
        "registry.example.com/team/app   1.0       0123456789ab\n"
    )


def test_render_table_empty() -> None:
    assert render_table([]) == ""
    assert render_table([["CONTAINER ID", "IMAGE"]]) == "CONTAINER ID   IMAGE\n"


@pytest.mark.parametrize(
    ("format", "expected"),
    [
        ("table {{.ID}}\\t{{.Size}}", (True, "{{.ID}}\t{{.Size}}")),
        ("table", (True, "")),
        ("  {{.ID}}\\n  ", (False, "{{.ID}}\n")),
        ("json", (False, "{{json .}}")),
        ("{{.A}}\t{{.B}}", (False, "{{.A}}\t{{.B}}")),
        ("tablet {{.ID}}", (True, "t {{.ID}}")),  # docker only checks the prefix
    ],
)
def test_prepare_format(format: str, expected: tuple[bool, str]) -> None:
    assert prepare_format(format) == expected


IMAGE_HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "CreatedSince": "CREATED",
    "Size": "SIZE",
    "Labels": "LABELS",
}
IMAGE_ROWS: list[dict[str, Any]] = [
    {
        "ID": "beae173ccac6",
        "Repository": "busybox",
        "Tag": "latest",
        "CreatedSince": "2 years ago",
        "Size": "4.26MB",
        "Labels": {"b": "2", "a": "1"},
    },
    {
        "ID": "0123456789ab",
        "Repository": "registry.example.com/team/app",
        "Tag": "1.0",
        "CreatedSince": "",
        "Size": "1.2GB",
        "Labels": {},
    },
]
DEFAULT_IMAGES_FORMAT = (
    "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t"
    "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\\t{{.Size}}"
)


@pytest.mark.parametrize(
    ("format", "rows", "expected"),
    [
        pytest.param(
            DEFAULT_IMAGES_FORMAT,
            IMAGE_ROWS,
            "REPOSITORY                      TAG       IMAGE ID       CREATED       SIZE\n"
            "busybox                         latest    beae173ccac6   2 years ago   4.26MB\n"
            "registry.example.com/team/app   1.0       0123456789ab   N/A           1.2GB\n",
            id="docker-images-default",
        ),
        pytest.param(
            DEFAULT_IMAGES_FORMAT,
            [],
            "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n",
            id="header-only-when-empty",
        ),
        pytest.param(
            "table {{.Repository}}:{{.Tag}}\t{{.Size}}",
            IMAGE_ROWS,
            "REPOSITORY:TAG                      SIZE\n"
            "busybox:latest                      4.26MB\n"
            "registry.example.com/team/app:1.0   1.2GB\n",
            id="real-tab",
        ),
        pytest.param(
            "{{.Repository}}:{{.Tag}}",
            IMAGE_ROWS,
            "busybox:latest\nregistry.example.com/team/app:1.0\n",
            id="not-a-table",
        ),
        pytest.param(
            "json",
            IMAGE_ROWS,
            '{"CreatedSince":"2 years ago","ID":"beae173ccac6","Labels":{"a":"1","b":"2"},'
            '"Repository":"busybox","Size":"4.26MB","Tag":"latest"}\n'
            '{"CreatedSince":"","ID":"0123456789ab","Labels":{},'
            '"Repository":"registry.example.com/team/app","Size":"1.2GB","Tag":"1.0"}\n',
            id="json-rows-have-sorted-keys",
        ),
        pytest.param(
            "table {{upper .Repository}}\\t{{pad .Tag 1 1}}|{{json .Labels}}",
            IMAGE_ROWS,
            "REPOSITORY                       TAG |LABELS\n"
            'BUSYBOX                          latest |{"a":"1","b":"2"}\n'
            "REGISTRY.EXAMPLE.COM/TEAM/APP    1.0 |{}\n",
            id="header-functions-keep-titles-but-pad",
        ),
        pytest.param(
            "table {{.ID}}\\t{{.Labels.a}}",
            IMAGE_ROWS,
            "IMAGE ID       \nbeae173ccac6   1\n0123456789ab   <no value>\n",
            id="header-error-keeps-partial-output",
        ),
    ],
)
def test_render_template_table_matches_docker(format: str, rows: list[Any], expected: str) -> None:
    assert render_template_table(format, rows, headers=IMAGE_HEADERS) == expected


def test_missing_header_falls_back_to_upper_case_field_name() -> None:
    rows = [{"Name": "web", "Status": "Up 2 hours"}]
    out = render_template_table("table {{.Name}}\\t{{.Status}}", rows, headers={"Name": "NAMES"})
    assert out == "NAMES     STATUS\nweb       Up 2 hours\n"
    assert render_template_table("table {{.Name}}", rows) == "NAME\nweb\n"


@dataclass
class ContainerRow:
    ID: str
    Names: str

    def Label(self, name: str) -> str:  # noqa: N802 - docker's template method name
        return {"com.example.role": "db"}.get(name, "")


def test_rows_may_be_objects_with_methods() -> None:
    rows = [ContainerRow("0123456789ab", "db")]
    out = render_template_table(
        'table {{.ID}}\\t{{.Names}}\\t{{.Label "com.example.role"}}',
        rows,
        headers={"ID": "CONTAINER ID", "Names": "NAMES"},
    )
    # Like docker, the header of a method call with arguments cannot be rendered:
    # it stops at that column.
    assert out == "CONTAINER ID   NAMES     \n0123456789ab   db        db\n"


def test_custom_funcs_run_on_rows_and_header() -> None:
    rows = [{"Size": "4.26MB"}]
    out = render_template_table(
        "table {{shout .Size}}", rows, headers={"Size": "SIZE"}, funcs={"shout": lambda s: s + "!"}
    )
    assert out == "SIZE!\n4.26MB!\n"


@pytest.mark.parametrize(
    ("format", "message"),
    [
        ("table {{.ID}", "template: :1: bad character U+007D '}'"),
        ("table {{.ID }", 'template: :1: unexpected "}" in operand'),
        ("{{.ID | }", 'template: :1: unexpected "}" in command'),
    ],
)
def test_bad_template_raises(format: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_template_table(format, [], headers={})
    assert str(info.value) == message


def test_row_error_raises() -> None:
    with pytest.raises(TemplateError) as info:
        render_template_table("{{.ID.x}}", [{"ID": "abc"}])
    assert str(info.value) == (
        'template: :1:5: executing "" at <.ID.x>: can\'t evaluate field x in type interface {}'
    )
