"""Go's text/template, as docker's ``--format`` and ``-f`` flags use it."""

from portside.cli.gotemplate.execute import (
    HEADER_FUNCS,
    MISSING,
    Arg,
    Func,
    Template,
    TemplateError,
    format_value,
    json_marshal,
    parse,
    render,
    sprint,
    sprintf,
    sprintln,
)

__all__ = [
    "Arg",
    "Func",
    "HEADER_FUNCS",
    "MISSING",
    "Template",
    "TemplateError",
    "format_value",
    "json_marshal",
    "parse",
    "render",
    "sprint",
    "sprintf",
    "sprintln",
]
