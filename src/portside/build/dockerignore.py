""".dockerignore: which files of a build context are left out, by Docker's rules.

Docker's rules (moby/patternmatcher, the docker CLI's ``build`` and BuildKit):

- a line whose *first* character is ``#`` is a comment; blank lines are skipped;
- a pattern is trimmed, cleaned like Go's ``filepath.Clean`` (``./a//b/`` → ``a/b``,
  ``a/../b`` → ``b``), and a leading ``/`` is dropped: patterns are relative to
  the context root; a trailing ``/`` is cleaned away, so a pattern never
  applies to directories only;
- ``*`` and ``?`` do not cross ``/``; ``[...]`` classes as Go's ``filepath.Match``;
  ``\\`` escapes the next character; ``**`` matches any number of directories
  (including none): ``**/*.go``, ``a/**/b``, ``a/**``;
- a path is excluded when a pattern matches it *or one of its parent
  directories* (``vendor`` excludes ``vendor/x/y.go``);
- ``!pattern`` re-includes what matches it; the last matching pattern wins.
"""

from __future__ import annotations

import os

from portside.errors import InvalidArgument
from portside.oci.gopath import clean

# `portside build` walks its context with this module: it stays off dataclasses, typing and (unless a
# pattern needs it) re, which would cost the CLI more to import than the walk (docs/cli-startup.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Iterator, Sequence

__all__ = ["Pattern", "read", "excluded", "walk", "clean"]


class Pattern:
    """One cleaned pattern. ``kind`` is how it matches: exact, prefix (``a/**``), suffix (``**/a``) or regexp."""

    __slots__ = ("text", "exclusion", "kind", "regexp")

    def __init__(self, text: str, exclusion: bool, kind: str, regexp: re.Pattern[str] | None) -> None:
        self.text = text  # as Docker shows it: cleaned, without the "!"
        self.exclusion = exclusion  # a "!" line: matching paths are put back
        self.kind = kind
        self.regexp = regexp

    def __repr__(self) -> str:
        return f"Pattern({self.text!r}, exclusion={self.exclusion}, kind={self.kind!r})"

    @property
    def dirs(self) -> tuple[str, ...]:
        return tuple(self.text.split("/"))

    def matches(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            # **/foo matches foo at the top too
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regexp is not None
        return self.regexp.fullmatch(path) is not None

    def __str__(self) -> str:
        return ("!" if self.exclusion else "") + self.text


# escaped as Docker does; "^" too, outside a class, where Go's regexp would read it as an anchor as well
_REGEX_SPECIAL = frozenset(".+()|{}$")


def compile_pattern(line: str) -> Pattern:
    """A pattern as the matcher takes it (already read by ``read`` or given as one string)."""
    import re  # only a context with a .dockerignore pays for it
    text = clean(line.strip())
    exclusion = text.startswith("!")
    if exclusion:
        if text == "!":
            raise InvalidArgument('illegal exclusion pattern: "!"')
        text = text[1:]
    regex: list[str] = []
    kind = "exact"
    in_class = False
    i, n = 0, len(text)
    while i < n:
        start = i
        ch = text[i]
        i += 1
        if in_class and ch not in "]\\":
            # inside [...] everything is literal but a leading ^ and the - of a range (filepath.Match)
            if ch == "^" and regex[-1:] == ["["]:
                regex.append("^")
            elif ch == "-" and regex[-1:] != ["["] and regex[-1:] != ["-"]:
                regex.append("-")
            else:
                regex.append(re.escape(ch))
            continue
        if ch == "*":
            if i < n and text[i] == "*":
                i += 1
                if i < n and text[i] == "/":
                    i += 1  # "**/" is "**"
                if i == n:
                    # "**" at the end accepts everything, as .gitignore
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        regex.append(".*")
                        kind = "regexp"
                else:
                    regex.append("(.*/)?")
                    kind = "regexp"
                if start == 0:
                    kind = "suffix"
            else:
                regex.append("[^/]*")
                kind = "regexp"
        elif ch == "?":
            regex.append("[^/]")
            kind = "regexp"
        elif ch in _REGEX_SPECIAL or (ch == "^" and not in_class):
            regex.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                regex.append(re.escape(text[i]))
                i += 1
            else:
                regex.append("\\\\")
            kind = "regexp"  # the text is not the path any more: b\[1\] matches b[1] (checked against the docker CLI)
        elif ch in "[]":
            in_class = ch == "["
            regex.append(ch)
            kind = "regexp"
        elif ch in "&~":
            regex.append("\\" + ch)  # literal for Go; Python reserves doubled ones for set operations
        else:
            regex.append(ch)
    _check_syntax(text)
    compiled = None
    if kind == "regexp":
        try:
            compiled = re.compile("".join(regex), re.DOTALL)
        except re.error:
            raise InvalidArgument("syntax error in pattern") from None
    return Pattern(text=text, exclusion=exclusion, kind=kind, regexp=compiled)


def _check_syntax(text: str) -> None:
    """Go's filepath.Match refuses an unclosed ``[``, an empty class and a trailing backslash."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                raise InvalidArgument("syntax error in pattern")
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < n and text[j] == "^":
                j += 1
            start = j
            while j < n and (text[j] != "]" or j == start):
                if text[j] == "\\":
                    j += 1
                j += 1
            if j >= n or j == start:
                raise InvalidArgument("syntax error in pattern")
            i = j
        i += 1


def read(text: str) -> list[Pattern]:
    """The patterns of a .dockerignore file's text, in order."""
    patterns = []
    for number, line in enumerate(text.split("\n")):
        line = line.removesuffix("\r")
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue  # only a "#" in the first column starts a comment
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append(compile_pattern(("!" if invert else "") + line))
    return patterns


def excluded(patterns: Sequence[Pattern], relpath: str, is_dir: bool = False) -> bool:
    """Whether ``relpath`` (relative to the context, ``/``-separated) is left out of the context.

    ``is_dir`` does not change the answer (Docker's patterns are cleaned of
    trailing slashes); it is accepted so that callers can say what they walk.
    """
    del is_dir
    path = clean(relpath.lstrip("/"))
    parent = path.rpartition("/")[0]
    parents = parent.split("/") if parent else []
    matched = False
    for pattern in patterns:
        # an inclusion can only change a path not yet matched, an exclusion one already matched
        if pattern.exclusion != matched:
            continue
        hit = pattern.matches(path)
        if not hit:
            hit = any(pattern.matches("/".join(parents[:i + 1])) for i in range(len(parents)))
        if hit:
            matched = not pattern.exclusion
    return matched


def _may_reinclude_under(patterns: Sequence[Pattern], directory: str) -> bool:
    """Whether some ``!`` pattern could match a path strictly inside ``directory``.

    A path inside sees every pattern its directory sees, plus the ones that
    match it or the directories between: only those can put it back. Compared
    component by component (``*``, ``?`` and ``[]`` never cross a ``/``); a
    ``**`` or a wildcard component makes the answer yes, erring on the side of
    walking.
    """
    parts = directory.split("/")
    for pattern in patterns:
        if not pattern.exclusion:
            continue
        for i, component in enumerate(pattern.dirs):
            if "**" in component or i >= len(parts):
                return True
            if component != parts[i] and not any(c in component for c in "*?[\\"):
                break
    return False


def walk(root: str, patterns: Sequence[Pattern]) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """The context's entries that are not excluded, as (relative path, entry), depth first in name order.

    An excluded directory is not descended into unless a ``!`` pattern could
    put back something inside it, so ignoring ``node_modules`` costs nothing.
    Symbolic links are reported, not followed.
    """
    yield from _walk(root, "", patterns)


def _walk(directory: str, prefix: str, patterns: Sequence[Pattern]) -> Iterator[tuple[str, os.DirEntry[str]]]:
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = prefix + entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        if not excluded(patterns, rel, is_dir):
            yield rel, entry
        elif not (is_dir and _may_reinclude_under(patterns, rel)):
            continue
        if is_dir:
            yield from _walk(entry.path, rel + "/", patterns)
