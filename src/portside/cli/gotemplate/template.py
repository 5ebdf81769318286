"""A parsed template, and the two calls that make one: :func:`parse` and :func:`render`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portside.cli.gotemplate.execute import run
from portside.cli.gotemplate.funcs import BUILTINS, DOCKER_FUNCS, Func, as_func
from portside.cli.gotemplate.nodes import ListNode
from portside.cli.gotemplate.parser import parse_trees


class Template:
    """A parsed template; :meth:`execute` may be called any number of times.

    ``missing_key_error`` is Go's ``Option("missingkey=error")``: a key missing
    from a dict fails the template instead of printing ``<no value>``.
    ``docker inspect`` runs its raw-JSON fallback that way, so that
    ``-f '{{.NoSuchField}}'`` fails with ``map has no entry for key "NoSuchField"``.
    """

    def __init__(
        self,
        text: str,
        trees: dict[str, ListNode],
        funcs: Mapping[str, Func],
        *,
        missing_key_error: bool = False,
    ) -> None:
        self.text = text
        self.trees = trees
        self.funcs = funcs
        self.root = trees[""]
        self.missing_key_error = missing_key_error

    def execute(self, data: Any) -> str:
        """Run the template over ``data``; raises TemplateError (with ``partial``)."""
        return run(self, data)


def parse(text: str, *, funcs: Mapping[str, Any] | None = None, missing_key_error: bool = False) -> Template:
    """Parse ``text`` with Go's builtins, docker's functions and ``funcs`` (which win)."""
    all_funcs: dict[str, Func] = {**BUILTINS, **DOCKER_FUNCS}
    for name, fn in (funcs or {}).items():
        all_funcs[name] = as_func(fn)
    trees = parse_trees(text, all_funcs)
    return Template(text, trees, all_funcs, missing_key_error=missing_key_error)


def render(
    template: str,
    data: Any,
    *,
    funcs: Mapping[str, Any] | None = None,
    missing_key_error: bool = False,
) -> str:
    """Parse and run a template once: ``render("{{.Config.Cmd}}", info) == "[sh -c]"``."""
    return parse(template, funcs=funcs, missing_key_error=missing_key_error).execute(data)
