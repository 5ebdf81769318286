"""Go's text/template, as docker's ``--format`` and ``-f`` flags use it.

A template is lexed into tokens, parsed into a tree of nodes and run over the
data; the three stages follow Go's ``text/template`` and ``text/template/parse``
closely enough that templates written for docker print the same bytes here,
and that bad templates fail with the same messages (``template: :1:
unexpected "}" in operand``).

Data are what the Engine API returns, decoded by ``json``: dicts, lists, str,
int, float, bool and None, or objects with attributes. They behave as Go's
``map[string]interface{}`` and friends:

* ``.Key`` looks a key up in a dict (an attribute on an object); a missing key
  is Go's invalid value, printed ``<no value>``, and so is a JSON null printed
  on its own, while a null inside a list or map prints ``<nil>``.
* values print as Go's ``fmt`` prints them: ``[a b]``, ``map[k:v]`` with sorted
  keys, ``true``, ``4261296`` for an int and ``4.261296e+06`` for a float.
* dict keys are ranged over in sorted order, as Go ranges over a map.

Functions are Go's builtins (``and or not len index slice eq ne lt le gt ge
print printf println``) and docker's (``json split join title lower upper pad
truncate``, from docker/cli ``templates/templates.go``), plus ``inc``, which
docker does not define. ``printf`` is Go's ``fmt.Sprintf`` (flags, widths,
``*``, ``[n]``, ``%!d(string=x)`` markers). Actions: ``if``/``else if``,
``range`` (lists, dicts, ints) with ``break``/``continue``, ``with``/``else
with``, variables, comments, trim markers, ``define``/``template``/``block``.
Not supported: complex numbers and the builtins ``call``, ``html``, ``js``
and ``urlquery``.

The modules, in the order a template passes through them: ``lexer``,
``nodes`` (the parse tree), ``parser``, ``execute``; the functions it calls
(``funcs``) and how it prints (``gofmt``, ``gojson``), on ``strconv`` (Go
literals and float digits) and ``values`` (Go's view of the data);
``template`` ties parse and execute together, ``errors`` holds TemplateError.
"""

from portside.cli.gotemplate.errors import TemplateError
from portside.cli.gotemplate.funcs import HEADER_FUNCS, Arg, Func
from portside.cli.gotemplate.gofmt import format_value, sprint, sprintf, sprintln
from portside.cli.gotemplate.gojson import json_marshal
from portside.cli.gotemplate.template import Template, parse, render
from portside.cli.gotemplate.values import MISSING

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
