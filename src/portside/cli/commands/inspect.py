"""``inspect`` for any object type, after docker/cli ``cli/command/inspect/inspector.go``.


Without ``--format`` the daemon's raw JSON objects are joined into an array
and re-indented with four spaces, byte for byte as Go's ``json.Indent`` does
(strings and numbers are never re-encoded). ``--format json`` compacts the
array; any other format is a template run once per object. Objects that are
not found are reported after the output, which still lists the ones found.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

import json

from portside.cli.commands.base import CLIError, Context, StatusError
from portside.cli.commands.formatting import compact_json, indent_json, template_error

if TYPE_CHECKING:
    # fetch(ref) -> the raw JSON text of the object; raises APIError/CLIError
    Getter = Callable[[str], str]


def raw_getter(ctx: Context, path: str, query: list[tuple[str, str]] | None = None) -> Getter:
    def get(ref: str) -> str:
        if not ref:
            # moby's client refuses an empty name before any request
            kind = path.split("/")[1].rstrip("s")
            raise CLIError(f"Error: No such {kind}: {ref}")
        return ctx.client.request("GET", path.format(ref), query).read().decode("utf-8")

    return get


def template_data(raw: str) -> Any:
    """The value a template sees: the object, with Go's field name ``ID`` for ``Id``.

    docker runs the template over its typed struct (whose field is ``ID``) and
    falls back to the raw map (key ``Id``); both spellings work there.
    """
    data = json.loads(raw)
    if isinstance(data, dict) and "Id" in data and "ID" not in data:
        return GoStruct(data, {"ID": "Id"})
    return data


class GoStruct(dict):  # type: ignore[type-arg]
    """A JSON object that also answers to Go field names that differ from its keys.

    Iteration and ``json`` output see only the real keys; lookups by an alias
    are redirected.
    """

    def __init__(self, data: dict[str, Any], aliases: dict[str, str]) -> None:
        super().__init__(data)
        self._aliases = aliases

    def __missing__(self, key: str) -> Any:
        alias = self._aliases.get(key)
        if alias is not None and alias in self:
            return self[alias]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or (
            isinstance(key, str) and key in self._aliases and super().__contains__(self._aliases[key])
        )


def inspect_refs(ctx: Context, refs: list[str], fmt: str, get: Getter) -> int:
    """Print the objects named by ``refs``; StatusError(1) listing the ones that failed."""
    from portside.cli.client import APIError

    template = None
    if fmt and fmt != "json":
        from portside.cli import gotemplate

        try:
            template = gotemplate.parse(fmt)
        except gotemplate.TemplateError as e:
            raise StatusError(template_error(e), 64) from None

    errors: list[str] = []
    raws: list[str] = []
    rendered: list[str] = []
    for ref in refs:
        try:
            raw = get(ref)
        except (APIError, CLIError) as e:
            errors.append(str(e))
            continue
        if template is None:
            raws.append(raw)
            continue
        from portside.cli import gotemplate

        try:
            rendered.append(template.execute(template_data(raw)) + "\n")
        except gotemplate.TemplateError as e:
            errors.append(template_error(e))

    if template is not None:
        ctx.out("".join(rendered) or "\n")
    elif not raws:
        ctx.out("[]\n")
    else:
        joined = "[" + ",".join(raws) + "]"
        ctx.out((compact_json(joined) if fmt == "json" else indent_json(joined)) + "\n")
    if errors:
        raise StatusError("\n".join(errors), 1)
    return 0
