"""Go text/template as docker's --format uses it.

The tables below were checked against Go's text/template (with docker/cli's
template functions) on the same data: every expected string is what Go
prints. Where portside deliberately differs from the Go 1.19 used for that
check, a separate test says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from portside.cli.gotemplate import (
    HEADER_FUNCS,
    MISSING,
    Arg,
    Func,
    TemplateError,
    format_value,
    json_marshal,
    parse,
    render,
    sprint,
    sprintf,
    sprintln,
)
from portside.errors import InvalidArgument

# Shaped like `docker inspect` output, decoded by json.
DATA: dict[str, Any] = {
    "Id": "4f66ad9a0b2e",
    "Name": "/web",
    "RepoTags": ["busybox:latest", "busybox:1.36"],
    "Size": 4261296,
    "Ratio": 0.5,
    "Big": 4261296.0,
    "Created": "2024-05-01T10:00:00Z",
    "Config": {
        "Cmd": ["sh", "-c"],
        "Entrypoint": None,
        "Env": ["PATH=/usr/bin", "A=1"],
        "Labels": {"org.example.a": "<1>", "org.example.b": "2"},
        "Tty": False,
        "Volumes": {},
    },
    "State": {"ExitCode": 0, "Pid": 1234, "Running": True, "Status": "running"},
    "NetworkSettings": {
        "Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "net1": {"IPAddress": "10.0.0.2"}}
    },
    "Mounts": [],
    "Mixed": [1, "a", 1.5, True, None, {"k": "v"}],
}

# (template, output): fields and printing, literals, pipelines, variables,
# control structures, comments and trimming, builtins, docker's functions,
# nested templates.
RENDER_CASES = [
    ("{{.Id}}", "4f66ad9a0b2e"),
    (
        "{{.Name}}|{{.Size}}|{{.Ratio}}|{{.Big}}|{{.State.Running}}|{{.Config.Tty}}",
        "/web|4261296|0.5|4.261296e+06|true|false",
    ),
    ("{{.Config.Cmd}}", "[sh -c]"),
    ("{{.Config.Entrypoint}}", "<no value>"),
    ("{{.Config.Nope}}", "<no value>"),
    ("{{.Config.Nope.Deeper}}", "<no value>"),
    ("{{.Config.Labels}}", "map[org.example.a:<1> org.example.b:2]"),
    ("{{.Config.Volumes}}|{{.Mounts}}", "map[]|[]"),
    ("{{.Mixed}}", "[1 a 1.5 true <nil> map[k:v]]"),
    ("{{.State}}", "map[ExitCode:0 Pid:1234 Running:true Status:running]"),
    ('{{index .Config.Labels "org.example.a"}}', "<1>"),
    ("{{$.Id}}", "4f66ad9a0b2e"),
    ("{{json .Config.Entrypoint}}|{{json .Config.Nope}}", "null|null"),
    ("{{json .Mixed}}", '[1,"a",1.5,true,null,{"k":"v"}]'),
    (
        '{{"a string"}}|{{`raw \\n`}}|{{"esc\\t\\"q\\"\\u00e9"}}|{{42}}|{{-3}}|{{1.5}}|{{1e3}}|{{0x1F}}|{{\'a\'}}|{{true}}|{{false}}',
        'a string|raw \\n|esc\t"q"é|42|-3|1.5|1000|31|97|true|false',
    ),
    ('{{printf "%s-%d" .Name .Size}}', "/web-4261296"),
    ('{{.Name | printf "%q"}}', '"/web"'),
    ('{{.Size | printf "%d/%d" 1}}', "1/4261296"),
    ('{{printf "%s" (index .RepoTags 0)}}', "busybox:latest"),
    ('{{(index .NetworkSettings.Networks "bridge").IPAddress}}', "172.17.0.2"),
    ("{{$n := len .RepoTags}}{{$n}}", "2"),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
    ("{{with $s := .State}}{{$s.Status}}:{{.Pid}}{{end}}", "running:1234"),
    ("{{range .RepoTags}}{{.}} {{end}}", "busybox:latest busybox:1.36 "),
    ("{{range $i, $t := .RepoTags}}{{$i}}={{$t}};{{end}}", "0=busybox:latest;1=busybox:1.36;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", "org.example.a=<1> org.example.b=2 "),
    (
        "{{range $name, $net := .NetworkSettings.Networks}}{{$name}}:{{$net.IPAddress}} {{end}}",
        "bridge:172.17.0.2 net1:10.0.0.2 ",
    ),
    ("{{range .Mounts}}x{{else}}no mounts{{end}}", "no mounts"),
    ("{{range .Config.Nope}}x{{else}}missing{{end}}", "missing"),
    ("{{range .Mixed}}[{{.}}]{{end}}", "[1][a][1.5][true][<no value>][map[k:v]]"),
    ('{{range .RepoTags}}{{if eq . "busybox:1.36"}}{{break}}{{end}}{{.}} {{end}}', "busybox:latest "),
    ('{{range .RepoTags}}{{if eq . "busybox:latest"}}{{continue}}{{end}}{{.}}{{end}}', "busybox:1.36"),
    ("{{range $i, $t := .RepoTags}}{{range $.Config.Cmd}}{{$i}}{{.}} {{end}}{{end}}", "0sh 0-c 1sh 1-c "),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .Config.Tty}}tty{{else if .Config.Env}}env{{else}}none{{end}}", "env"),
    ("{{if not .Mounts}}empty{{end}}", "empty"),
    (
        '{{if and .State.Running .Size}}both{{end}}|{{and 1 0 2}}|{{and 1 2}}|{{or 0 "" "x"}}|{{or 0 ""}}|{{or .Config.Nope "default"}}',
        "both|0|2|x||default",
    ),
    ("{{with .Config.Nope}}x{{else}}nothing{{end}}", "nothing"),
    ("{{with .State}}{{.Status}}{{end}}", "running"),
    ("{{- /* a comment */ -}}", ""),
    ("{{/* a comment\nspanning lines */}}kept", "kept"),
    ('a  {{- "b" -}}  c', "abc"),
    ('a  {{- "b"}}  c  {{"d" -}}  e', "ab  c  de"),
    ('{{len .RepoTags}}|{{len .Config.Labels}}|{{len .Name}}|{{len "héllo"}}', "2|2|4|6"),
    (
        '{{index .RepoTags 1}}|{{index .Mixed 5 "k"}}|{{index .Config.Labels "missing"}}',
        "busybox:1.36|v|<no value>",
    ),
    (
        "{{slice .RepoTags 1}}|{{slice .Name 1 3}}|{{slice .RepoTags 0 1}}",
        "[busybox:1.36]|we|[busybox:latest]",
    ),
    (
        '{{eq .State.Status "running"}}|{{eq .Size 1 4261296}}|{{ne .Name "/db"}}|{{lt 1 2}}|{{le 2 2}}|{{gt 1.5 .Ratio}}|{{ge "b" "a"}}',
        "true|true|true|true|true|true|true",
    ),
    ('{{eq .Config.Nope .Config.Entrypoint}}|{{eq .Config.Nope "x"}}', "true|false"),
    ('{{not true}}|{{not 0}}|{{not "x"}}|{{not .Mounts}}', "false|true|false|true"),
    ('{{print "a" "b" 1 2 "c" true}}|{{print .Config.Entrypoint}}', "ab1 2ctrue|<nil>"),
    ('{{println "a" 1}}', "a 1\n"),
    (
        '{{printf "%-10s|%10s|%5.2f|%05d|%+d|%x|%X|%o|%b|%c|%U" "left" "right" 3.14159 42 7 255 255 8 5 65 9731}}',
        "left      |     right| 3.14|00042|+7|ff|FF|10|101|A|U+2603",
    ),
    (
        '{{printf "%q|%v|%s|%d|%t|%T|%T" .RepoTags .Config.Labels .Mixed .Size true .Ratio .Config.Cmd}}',
        '["busybox:latest" "busybox:1.36"]|map[org.example.a:<1> org.example.b:2]|[%!s(int=1) a %!s(float64=1.5) %!s(bool=true) <nil> map[k:v]]|4261296|true|float64|[]interface {}',
    ),
    (
        '{{printf "%e|%g|%.3g|%G|%8.3f|%-8.1e|" 1234.5678 0.000012345 1234.5678 1e21 3.14159 2.5}}',
        "1.234568e+03|1.2345e-05|1.23e+03|1E+21|   3.142|2.5e+00 |",
    ),
    ('{{printf "%d|%s|%d|%!" "x" 5}}', "%!d(string=x)|%!s(int=5)|%!d(MISSING)|%!!(MISSING)"),
    (
        '{{printf "%d"}}|{{printf "" 1 "a"}}|{{printf "%v %v" .Config.Nope .Config.Entrypoint}}',
        "%!d(MISSING)|%!(EXTRA int=1, string=a)|<nil> <nil>",
    ),
    ('{{printf "%*d|%-*d|%.*f|%[2]d %[1]d" 5 1 4 2 2 3.14159 10 20}}', "    1|2   |3.14|1 5"),
    (
        '{{printf "%#v" .Mixed}}',
        '[]interface {}{1, "a", 1.5, true, interface {}(nil), map[string]interface {}{"k":"v"}}',
    ),
    ('{{printf "%x|% x|%#x|%.2s|%5.1q" "hé" "hé" "hi" "hello" "hello"}}', '68c3a9|68 c3 a9|0x6869|he|  "h"'),
    (
        '{{title "hello big_world-foo bar.baz"}}|{{lower "ABC Déf"}}|{{upper "héllo"}}',
        "Hello Big_world-Foo Bar.Baz|abc déf|HÉLLO",
    ),
    (
        '{{pad .Id 2 3}}|{{pad "" 2 3}}|{{truncate .Id 4}}|{{truncate .Id 40}}',
        "  4f66ad9a0b2e   ||4f66|4f66ad9a0b2e",
    ),
    (
        '{{define "item"}}<{{.}}>{{end}}{{range .RepoTags}}{{template "item" .}}{{end}}',
        "<busybox:latest><busybox:1.36>",
    ),
    ('{{template "t" .State}}{{define "t"}}{{.Status}}{{end}}', "running"),
    ('{{block "b" .Name}}[{{.}}]{{end}}', "[/web]"),
]


@pytest.mark.parametrize(("template", "expected"), RENDER_CASES)
def test_render_matches_go(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


# (template, message): parse errors, worded as Go words them.
PARSE_ERRORS = [
    ("{{.Id}", "template: :1: bad character U+007D '}'"),
    ("{{.Id }", 'template: :1: unexpected "}" in operand'),
    ("{{.Id | }", 'template: :1: unexpected "}" in command'),
    ("{{}}", "template: :1: missing value for command"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if .Id}}", "template: :1: unexpected EOF"),
    ("{{if .Id}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
    ("{{range .Id}}{{else if .Name}}{{end}}", "template: :1: unexpected <if> in input"),
    ("{{nofunc .Id}}", 'template: :1: function "nofunc" not defined'),
    ('{{.Id | "x"}}', "template: :1: non executable command in pipeline stage 2"),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{if true}}{{$y := 1}}{{end}}{{$y}}", 'template: :1: undefined variable "$y"'),
    ("{{$x, $y := 1}}", "template: :1: too many declarations in command"),
    ("{{range $i, $e, $f := .Id}}{{end}}", "template: :1: too many declarations in range"),
    ('{{"unterminated}}', "template: :1: unterminated quoted string"),
    ("{{`raw}}", "template: :1: unterminated raw quoted string"),
    ("{{'ab'}}", "template: :1: malformed character constant: 'ab'"),
    ("{{/* unclosed }}", "template: :1: unclosed comment"),
    ("{{/* x */ y}}", "template: :1: comment ends before closing delimiter"),
    ("{{(.Id}}", "template: :1: unclosed left paren"),
    ("{{.Id)}}", 'template: :1: unexpected ")" in command'),
    ("{{3x}}", 'template: :1: bad number syntax: "3x"'),
    ("{{.Id!}}", "template: :1: bad character U+0021 '!'"),
    ("{{$x=1}}", "template: :1: bad character U+003D '='"),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{range .Id}}{{break 1}}{{end}}", 'template: :1: unexpected "1" in {{break}}'),
    ('{{"a".x}}', 'template: :1: unexpected . after term "\\"a\\""'),
    ("{{é}}", 'template: :1: function "é" not defined'),
    ("{{if .Id}}\ntext\n{{.Id}", "template: :3: bad character U+007D '}'"),
    ("{{template .Id}}", 'template: :1: unexpected ".Id" in template clause'),
    ('{{define "x"}}{{end}', "template: :1: bad character U+007D '}'"),
]


@pytest.mark.parametrize(("template", "message"), PARSE_ERRORS)
def test_parse_errors_match_go(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse(template)
    assert str(info.value) == message


# (template, message, output written before the error): execution errors.
EXEC_ERRORS = [
    (
        "{{.Id.x}}",
        'template: :1:5: executing "" at <.Id.x>: can\'t evaluate field x in type interface {}',
        "",
    ),
    (
        "{{.Config.Entrypoint.x}}",
        'template: :1:9: executing "" at <.Config.Entrypoint.x>: nil pointer evaluating interface {}.x',
        "",
    ),
    ("{{.Size 1}}", 'template: :1:2: executing "" at <.Size>: Size is not a method but has arguments', ""),
    (
        "{{.State.Pid 1}}",
        'template: :1:8: executing "" at <.State.Pid>: Pid is not a method but has arguments',
        "",
    ),
    ("{{nil}}", 'template: :1:2: executing "" at <nil>: nil is not a command', ""),
    ("{{1 2}}", 'template: :1:2: executing "" at <1>: can\'t give argument to non-function 1', ""),
    ("{{len .Size}}", 'template: :1:2: executing "" at <len .Size>: error calling len: len of type int', ""),
    (
        "{{len .Config.Entrypoint}}",
        'template: :1:2: executing "" at <len .Config.Entrypoint>: error calling len: len of nil pointer',
        "",
    ),
    (
        "{{index .RepoTags 5}}",
        'template: :1:2: executing "" at <index .RepoTags 5>: error calling index: index out of range: 5',
        "",
    ),
    (
        "{{index .RepoTags 2}}",
        'template: :1:2: executing "" at <index .RepoTags 2>: error calling index: reflect: slice index out of range',
        "",
    ),
    (
        "{{index .Size 0}}",
        'template: :1:2: executing "" at <index .Size 0>: error calling index: can\'t index item of type int',
        "",
    ),
    (
        "{{index .Config.Nope 0}}",
        'template: :1:2: executing "" at <index .Config.Nope 0>: error calling index: index of untyped nil',
        "",
    ),
    (
        "{{index .Config.Labels 1}}",
        'template: :1:2: executing "" at <index .Config.Labels 1>: error calling index: value has type int; should be string',
        "",
    ),
    (
        "{{slice .RepoTags 2 1}}",
        'template: :1:2: executing "" at <slice .RepoTags 2 1>: error calling slice: invalid slice index: 2 > 1',
        "",
    ),
    (
        "{{eq .Size 1.5}}",
        'template: :1:2: executing "" at <eq .Size 1.5>: error calling eq: incompatible types for comparison',
        "",
    ),
    (
        '{{eq .Size "x"}}',
        'template: :1:2: executing "" at <eq .Size "x">: error calling eq: incompatible types for comparison',
        "",
    ),
    (
        "{{lt true false}}",
        'template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison',
        "",
    ),
    (
        "{{lt .Config.Nope 1}}",
        'template: :1:2: executing "" at <lt .Config.Nope 1>: error calling lt: invalid type for comparison',
        "",
    ),
    (
        "{{eq .Config.Cmd .Config.Cmd}}",
        'template: :1:2: executing "" at <eq .Config.Cmd .Config.Cmd>: error calling eq: non-comparable type [sh -c]: []interface {}',
        "",
    ),
    (
        "{{range .Name}}x{{end}}",
        'template: :1:8: executing "" at <.Name>: range can\'t iterate over /web',
        "",
    ),
    (
        "{{upper .Size}}",
        'template: :1:8: executing "" at <.Size>: wrong type for value; expected string; got int',
        "",
    ),
    (
        "{{upper .Config.Nope}}",
        'template: :1:15: executing "" at <.Config.Nope>: invalid value; expected string',
        "",
    ),
    ('{{pad .Id "1" 1}}', 'template: :1:10: executing "" at <"1">: expected integer; found "1"', ""),
    ("{{pad .Id 1.5 1}}", 'template: :1:10: executing "" at <1.5>: expected integer; found 1.5', ""),
    (
        "{{truncate .Size 1}}",
        'template: :1:11: executing "" at <.Size>: wrong type for value; expected string; got int',
        "",
    ),
    ("{{printf 5}}", 'template: :1:9: executing "" at <5>: expected string; found 5', ""),
    ("{{json}}", 'template: :1:2: executing "" at <json>: wrong number of args for json: want 1 got 0', ""),
    (
        '{{split "a"}}',
        'template: :1:2: executing "" at <split>: wrong number of args for split: want 2 got 1',
        "",
    ),
    (
        'before {{template "missing"}} after',
        'template: :1:18: executing "" at <{{template "missing"}}>: template "missing" not defined',
        "before ",
    ),
    (
        "{{.Name}}\nline2 {{.Id.Nope}}",
        'template: :2:11: executing "" at <.Id.Nope>: can\'t evaluate field Nope in type interface {}',
        "/web\nline2 ",
    ),
    (
        '{{printf "%d" (1 2)}}',
        'template: :1:15: executing "" at <1>: can\'t give argument to non-function 1',
        "",
    ),
]


@pytest.mark.parametrize(("template", "message", "partial"), EXEC_ERRORS)
def test_exec_errors_match_go(template: str, message: str, partial: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(template, DATA)
    assert str(info.value) == message
    assert info.value.partial == partial


def test_template_error_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        render("{{", {})


# --- Values as Go's fmt prints them --------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "<nil>"),
        (True, "true"),
        (0, "0"),
        (4261296, "4261296"),  # a JSON integer decodes to int and prints whole
        (-7, "-7"),
        (1.0, "1"),
        (0.5, "0.5"),
        (100000.0, "100000"),
        (1e6, "1e+06"),  # a float64 switches to exponent form at 1e6, like Go's %v
        (4261296.0, "4.261296e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-0.0, "-0"),
        (float("inf"), "+Inf"),
        (float("nan"), "NaN"),
        ("text", "text"),
        (["sh", "-c"], "[sh -c]"),
        ([], "[]"),
        ([1, None, "a"], "[1 <nil> a]"),
        ({"b": 1, "a": None}, "map[a:<nil> b:1]"),  # keys sorted
        ({}, "map[]"),
        ([{"k": [True]}], "[map[k:[true]]]"),
    ],
)
def test_format_value(value: Any, expected: str) -> None:
    assert format_value(value) == expected


def test_null_prints_no_value_on_its_own_and_nil_inside_collections() -> None:
    data = {"n": None, "l": [None], "m": {"k": None}}
    assert render("{{.n}}|{{.missing}}|{{.l}}|{{.m}}|{{index .l 0}}", data) == (
        "<no value>|<no value>|[<nil>]|map[k:<nil>]|<no value>"
    )
    assert render("{{print .n}}|{{printf `%v` .missing}}", data) == "<nil>|<nil>"
    assert render("{{.}}", None) == "<no value>"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("a", "b", 1, 2, "c", 3.5, True, None), "ab1 2c3.5 true <nil>"),
        ((1, 2), "1 2"),
        (("a", 1), "a1"),
        ((), ""),
    ],
)
def test_sprint(args: tuple[Any, ...], expected: str) -> None:
    assert sprint(*args) == expected


def test_sprintln() -> None:
    assert sprintln("a", 1, None) == "a 1 <nil>\n"


@pytest.mark.parametrize(
    ("format", "args", "expected"),
    [
        ("%s|%d|%v|%q|%t", ("s", 42, ["a"], 'q"x', True), 's|42|[a]|"q\\"x"|true'),
        ("%-10s|%10s|", ("left", "right"), "left      |     right|"),
        (
            "%5.2f|%05d|%+d|% d|%x|%X|%#x|%o|%#o|%b",
            (3.14159, 42, 5, 7, 255, 255, 255, 8, 8, 5),
            " 3.14|00042|+5| 7|ff|FF|0xff|10|010|101",
        ),
        (
            "%e|%E|%g|%G|%.3g|%8.3f|%-8.2f|",
            (1234.5678, 1e21, 0.000012345, 1e21, 1234.5678, 3.14159, 2.5),
            "1.234568e+03|1.000000E+21|1.2345e-05|1E+21|1.23e+03|   3.142|2.50    |",
        ),
        ("%c|%q|%U|%#U", (65, 65, 9731, 9731), "A|'A'|U+2603|U+2603 '☃'"),
        ("%x|% x|%#x|%X", ("hé", "hé", "hi", "hi"), "68c3a9|68 c3 a9|0x6869|6869"),
        ("%.2s|%5.1q|%-6q|", ("hello", "hello", "a"), 'he|  "h"|"a"   |'),
        ("%q", ("tab\there\x01é",), '"tab\\there\\x01é"'),
        ("%+q|%#q", ("é", "a`b"), '"\\u00e9"|"a`b"'),
        ("%v|%+v|%#v", ({"a": 1}, {"a": 1}, {"a": 1}), 'map[a:1]|map[a:1]|map[string]interface {}{"a":1}'),
        ("%#v|%#v|%#v", (["a", None], 1.0, "s"), '[]interface {}{"a", interface {}(nil)}|1|"s"'),
        (
            "%T %T %T %T %T %T",
            (1, 1.5, "s", [], {}, None),
            "int float64 string []interface {} map[string]interface {} <nil>",
        ),
        ("%d|%s|%t", ("x", 5, 1), "%!d(string=x)|%!s(int=5)|%!t(int=1)"),
        ("%d %d", (1,), "1 %!d(MISSING)"),
        ("%d", (1, "a", None), "1%!(EXTRA string=a, <nil>)"),
        ("%s|%d", (None, ["a", 1]), "%!s(<nil>)|[%!d(string=a) 1]"),
        ("%*d|%-*d|%.*f", (5, 1, 4, 2, 2, 3.14159), "    1|2   |3.14"),
        ("%*d", ("x", 1), "%!(BADWIDTH)1"),
        ("%[2]d %[1]d|%[3]d", (10, 20), "20 10|%!d(BADINDEX)"),
        ("100%%|%", (), "100%|%!(NOVERB)"),
        ("%z", (1,), "%!z(int=1)"),
        ("%08.3f|%+08d|%-08d|", (-3.5, 42, 42), "-003.500|+0000042|42      |"),
        ("%x|%X|%.2x|%b", (1.5, 1.5, 1.0, 1.0), "0x1.8p+00|0X1.8P+00|0x1.00p+00|4503599627370496p-52"),
        ("%6.2f|%v|%v", (float("inf"), float("-inf"), float("nan")), "  +Inf|-Inf|NaN"),
    ],
)
def test_sprintf_matches_go(format: str, args: tuple[Any, ...], expected: str) -> None:
    assert sprintf(format, *args) == expected


# --- JSON as docker's json function writes it ----------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # docker/cli disables HTML escaping (moby/moby#32120): <, > and & stay.
        ({"a": 1, "b": "<x>"}, '{"a":1,"b":"<x>"}'),
        ({"b": 1, "a": 2}, '{"b":1,"a":2}'),  # a dict keeps its order, like a Go struct
        ([1, 1.5, True, None, "s"], '[1,1.5,true,null,"s"]'),
        # \b and \f as Go 1.22+ writes them (older Go wrote \u0008 and \u000c).
        (
            'q"\\/\n\r\t\b\f\x01\x1f\u2028\u2029é😀',
            '"q\\"\\\\/\\n\\r\\t\\b\\f\\u0001\\u001f\\u2028\\u2029é😀"',
        ),
        (4261296.0, "4261296"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (-0.0, "-0"),
        ({}, "{}"),
        ([], "[]"),
        (None, "null"),
        (MISSING, "null"),
    ],
)
def test_json_marshal(value: Any, expected: str) -> None:
    assert json_marshal(value) == expected


def test_json_marshal_options() -> None:
    value = {"b": "<x>&", "a": {"d": 1, "c": 2}}
    assert json_marshal(value, escape_html=True) == '{"b":"\\u003cx\\u003e\\u0026","a":{"d":1,"c":2}}'
    assert json_marshal(value, sort_keys=True) == '{"a":{"c":2,"d":1},"b":"<x>&"}'


def test_json_of_non_finite_float() -> None:
    with pytest.raises(ValueError):
        json_marshal(float("nan"))
    # docker's json function ignores the encoder's error and prints nothing.
    assert render("[{{json .}}]", float("inf")) == "[]"


def test_json_function_keeps_dict_order() -> None:
    # Go would sort a map's keys; our dicts stand for docker's structs, whose
    # fields keep their declared order (the order the Engine API sends).
    assert render("{{json .State}}", DATA) == '{"ExitCode":0,"Pid":1234,"Running":true,"Status":"running"}'
    assert render("{{json .}}", {"b": 1, "a": "<x>"}) == '{"b":1,"a":"<x>"}'


# --- Where portside goes past the Go 1.19 the tables were checked with --------


def test_join_accepts_a_json_list_of_strings() -> None:
    # docker's join takes []string, which its typed Config.Cmd is; a JSON-decoded
    # list is []interface{} in Go, which join would refuse.
    assert render('{{join .Config.Cmd " "}}', DATA) == "sh -c"
    with pytest.raises(TemplateError) as info:
        render('{{join .Mixed ","}}', DATA)
    assert "wrong type for value; expected []string; got []interface {}" in str(info.value)


def test_range_over_an_integer() -> None:
    # Go 1.22 ranges over integers; docker is built with a newer Go than that.
    assert render("{{range 3}}{{.}}{{end}}|{{range $i := 2}}{{$i}}{{end}}", {}) == "012|01"
    assert render("{{range 0}}x{{else}}none{{end}}", {}) == "none"


def test_else_with() -> None:
    # Go 1.23: {{else with}} chains like {{else if}}.
    template = "{{with .a}}a={{.}}{{else with .b}}b={{.}}{{else}}none{{end}}"
    assert render(template, {"a": "", "b": "2"}) == "b=2"
    assert render(template, {}) == "none"


def test_inc_is_available() -> None:
    assert render("{{range $i, $e := .}}{{inc $i}}:{{$e}} {{end}}", ["a", "b"]) == "1:a 2:b "


def test_complex_constants_are_not_supported() -> None:
    with pytest.raises(TemplateError, match="complex constants are not supported"):
        parse("{{1+2i}}")


# --- Data that are objects ---------------------------------------------------


@dataclass
class Port:
    PrivatePort: int
    Type: str


@dataclass
class Container:
    ID: str
    Ports: list[Port]

    def ShortID(self) -> str:  # noqa: N802 - the template names methods as docker does
        return self.ID[:4]

    def Label(self, key: str) -> str:  # noqa: N802
        return f"label:{key}"


def test_objects_fields_and_methods() -> None:
    c = Container("abcdef", [Port(80, "tcp")])
    assert render("{{.ID}} {{.ShortID}} {{.Label `x`}} {{(index .Ports 0).PrivatePort}}", c) == (
        "abcdef abcd label:x 80"
    )
    assert render("{{.Ports}}|{{printf `%+v` (index .Ports 0)}}", c) == "[{80 tcp}]|{PrivatePort:80 Type:tcp}"
    assert render("{{json .}}", c) == '{"ID":"abcdef","Ports":[{"PrivatePort":80,"Type":"tcp"}]}'


def test_object_without_the_field() -> None:
    with pytest.raises(TemplateError) as info:
        render("{{.Nope}}", Container("a", []))
    assert (
        str(info.value)
        == 'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type Container'
    )


def test_field_with_arguments_on_an_object() -> None:
    with pytest.raises(TemplateError, match="ID has arguments but cannot be invoked as function"):
        render("{{.ID 1}}", Container("a", []))


# --- Functions and options ----------------------------------------------------


def test_custom_functions() -> None:
    funcs = {"double": lambda n: n * 2, "upper": lambda s: f"<{s}>"}
    assert render("{{double .Size}}|{{.Name | upper}}", DATA, funcs=funcs) == "8522592|</web>"


def test_typed_custom_function_checks_its_arguments() -> None:
    funcs = {"repeat": Func(lambda s, n: s * n, (Arg.STRING, Arg.INT))}
    assert render('{{repeat "ab" 3}}', {}, funcs=funcs) == "ababab"
    with pytest.raises(TemplateError, match='expected integer; found "3"'):
        render('{{repeat "ab" "3"}}', {}, funcs=funcs)
    with pytest.raises(TemplateError, match="wrong number of args for repeat: want 2 got 1"):
        render('{{repeat "ab"}}', {}, funcs=funcs)


def test_failing_function_stops_the_template() -> None:
    def boom(x: Any) -> str:
        raise RuntimeError("no such thing")

    with pytest.raises(TemplateError) as info:
        render("a{{boom .}}b", 1, funcs={"boom": boom})
    assert str(info.value) == 'template: :1:3: executing "" at <boom .>: error calling boom: no such thing'
    assert info.value.partial == "a"


def test_header_functions_leave_titles_alone() -> None:
    template = '{{json .A}}|{{upper .B}}|{{truncate .C 1}}|{{split .D ","}}|{{pad .E 1 1}}'
    headers = {"A": "LABELS", "B": "Name", "C": "ID", "D": "X,Y", "E": "SIZE"}
    assert render(template, headers, funcs=HEADER_FUNCS) == "LABELS|Name|ID|X,Y| SIZE "


def test_missing_key_error_option() -> None:
    # docker inspect's raw-JSON fallback runs with missingkey=error.
    with pytest.raises(TemplateError) as info:
        render("{{.NoSuchField}}", DATA, missing_key_error=True)
    assert (
        str(info.value)
        == 'template: :1:2: executing "" at <.NoSuchField>: map has no entry for key "NoSuchField"'
    )
    assert render("{{.Config.Cmd}}", DATA, missing_key_error=True) == "[sh -c]"


def test_a_parsed_template_runs_many_times() -> None:
    template = parse("{{.Name}}:{{len .RepoTags}}")
    assert template.execute(DATA) == "/web:2"
    assert template.execute({"Name": "x", "RepoTags": []}) == "x:0"


def test_variables_do_not_leak_between_runs_or_scopes() -> None:
    template = "{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 3}}{{end}}{{$x}}"
    assert render(template, {}) == "2"
    assert render("{{range $i, $e := .}}{{$i}}{{end}}{{$}}", [7]) == "0[7]"
