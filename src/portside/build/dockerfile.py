"""The Dockerfile parser: text → typed instructions grouped into stages, nothing run.

It follows BuildKit's parser (``frontend/dockerfile/parser``) and the checks of
its ``instructions`` package, which dockerd's classic builder shares:

- parser directives (``# syntax=``, ``# escape=``) are read only while the first
  lines are directives; the first comment, blank line or instruction ends them;
- a comment is a line whose first non-blank character is ``#``; inside a
  continuation it is skipped and does not end the instruction, and so is a
  blank line (an "empty continuation line");
- a line ending in the escape character (``\\`` or the ``escape`` directive's
  backtick), blanks after it allowed, continues on the next line, unless that
  character is itself escaped;
- RUN, COPY and ADD in shell form (also as ONBUILD triggers) take
  here-documents: ``<<EOF``,
  ``<<-EOF`` (leading tabs stripped), ``<<"EOF"`` / ``<<'EOF'`` (no expansion),
  several per line, their bodies read in order from the following lines;
- RUN, CMD, ENTRYPOINT, SHELL, ADD, COPY, VOLUME and HEALTHCHECK CMD are in
  exec form when the rest of the line is a JSON array of strings; anything that
  does not parse as JSON is shell form; a JSON array with a non-string in it is
  an error;
- words are not expanded here: the executor expands them (``shellwords``) with
  the ARG/ENV values in scope when the instruction runs; ``EXPANDS`` lists
  which instructions do.

Errors are ``DockerfileError`` with BuildKit's text:
``dockerfile parse error on line 3: unknown instruction: RUNN``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from portside.build.shellwords import ShellLexer, expand, parse_words
from portside.errors import DockerfileError, InvalidArgument
from portside.timefmt import parse_duration

__all__ = ["Heredoc", "Instruction", "Stage", "Dockerfile", "parse", "parse_instruction", "expand_instruction",
           "key_values", "expanded_pairs", "heredoc_word", "KEYWORDS", "EXPANDS"]

KEYWORDS = frozenset({"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                      "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"})

# The instructions whose words Docker runs through variable substitution when they execute
# (docs: "Environment replacement"); ONBUILD triggers follow their own instruction.
EXPANDS = frozenset({"ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"})
# flags whose values are expanded too
_EXPANDED_FLAGS = {"FROM": frozenset({"platform"}), "ADD": frozenset({"chown", "chmod"}),
                   "COPY": frozenset({"chown", "chmod", "from"})}

_HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})

# keyword -> flag -> kind; "strings" flags may repeat, a bare bool flag means true
_FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": "string"},
    "RUN": {"mount": "strings", "network": "string", "security": "string"},
    "COPY": {"from": "string", "chown": "string", "chmod": "string", "link": "bool", "parents": "bool",
             "exclude": "strings"},
    "ADD": {"chown": "string", "chmod": "string", "link": "bool", "keep-git-dir": "bool", "checksum": "string",
            "exclude": "strings"},
    "HEALTHCHECK": {"interval": "string", "timeout": "string", "start-period": "string", "start-interval": "string",
                    "retries": "string"},
}

_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_KNOWN_DIRECTIVES = ("syntax", "escape")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")
_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
_MIN_HEALTH_INTERVAL_NS = 1_000_000  # container.MinimumDuration: 1ms


@dataclass(frozen=True)
class Heredoc:
    """A here-document: ``name`` is its terminator word, unquoted.

    ``content`` is the lines read, each with its own line ending; for ``<<-`` (``chomp``) the
    leading tabs of each line are already stripped. ``expand`` is false when
    any part of the word was quoted (``<<"EOF"``): the body is then taken
    literally by COPY/ADD.
    """

    name: str
    content: str
    expand: bool
    chomp: bool


@dataclass(frozen=True)
class Instruction:
    """One instruction as written.

    ``args`` by keyword: exec (JSON) form, the list; shell form of RUN, CMD,
    ENTRYPOINT, SHELL, the command text as one string; ENV and LABEL,
    ``"key=value"`` words with quotes and escapes kept (legacy ``ENV k v`` is
    normalised to ``"k=v"``, the value the rest of the line); ARG, ``"k"`` or
    ``"k=v"`` words; HEALTHCHECK, ``("NONE",)`` or ``("CMD", *exec list)`` /
    ``("CMD", shell text)``; ONBUILD, the trigger's text (the trigger itself in
    ``onbuild``); MAINTAINER, STOPSIGNAL, USER and WORKDIR, the rest of the line
    as one string; the others (FROM, EXPOSE, VOLUME, ADD, COPY), the words.
    ``flags`` are ``(name, value)`` without the dashes, in order; a bool flag
    given bare has the value ``"true"``.
    """

    keyword: str
    args: tuple[str, ...]
    json_form: bool
    flags: tuple[tuple[str, str], ...]
    heredocs: tuple[Heredoc, ...]
    line: int
    end_line: int
    original: str
    onbuild: Instruction | None = None  # None also when the trigger would fail when it fires

    def flag(self, name: str, default: str | None = None) -> str | None:
        """The last value given for ``--name``."""
        found = default
        for key, value in self.flags:
            if key == name:
                found = value
        return found


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # lower-cased, as Docker matches stage names
    base: str  # unexpanded: the executor substitutes the meta ARGs
    platform: str | None
    from_: Instruction
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class Dockerfile:
    path: str
    directives: dict[str, str]
    meta_args: tuple[Instruction, ...]  # the ARGs before the first FROM
    stages: tuple[Stage, ...]
    escape: str

    def stage(self, target: str) -> Stage:
        """The stage ``--target`` (or ``COPY --from``) names: a stage name, case-insensitively, or its index."""
        lowered = target.lower()
        for stage in self.stages:
            if stage.name == lowered:
                return stage
        if target.isdigit() and int(target) < len(self.stages):
            return self.stages[int(target)]
        raise InvalidArgument(f"failed to reach build target {target} in Dockerfile")


# --- physical lines → logical instructions -----------------------------------------------


@dataclass
class _Directives:
    escape: str = "\\"
    seen: dict[str, str] = field(default_factory=dict)
    done: bool = False

    def offer(self, line: str) -> None:
        """Take ``line`` as a directive if directives are still being read, else end them."""
        if self.done:
            return
        match = _DIRECTIVE.match(line)
        if not match or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            self.done = True
            return
        key, value = match.group(1).lower(), match.group(2)
        if key in self.seen:
            raise InvalidArgument(f"only one {key} parser directive can be used")
        self.seen[key] = value
        if key == "escape":
            if value not in ("\\", "`"):
                raise InvalidArgument(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """``line`` without its trailing escape character, and whether the instruction ends here."""
        stripped = line.rstrip(" \t")
        # an escaped escape character (``echo C:\\``) does not continue the line
        if stripped.endswith(self.escape) and not stripped.endswith(self.escape * 2):
            return stripped[:-1], False
        return line, True


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


@dataclass(frozen=True)
class _Logical:
    text: str
    line: int
    end_line: int
    heredocs: tuple[Heredoc, ...]


def _logical_lines(text: str, path: str, directives: _Directives) -> Iterator[_Logical]:
    # here-document bodies keep their line endings (CRLF too); everything else is read without them
    raw_lines = _LINE.findall(text.removeprefix("\ufeff"))
    lines = [raw.rstrip("\r\n") for raw in raw_lines]
    i = 0  # lines[i] is line i+1

    def fail(reason: str, start: int, end: int) -> DockerfileError:
        return DockerfileError(reason, path=path, line=start, end_line=end)

    while i < len(lines):
        raw = lines[i].lstrip()
        i += 1
        try:
            directives.offer(raw)
        except InvalidArgument as exc:
            raise fail(exc.message, i, i) from None
        start = i
        line, done = directives.trim_continuation("" if raw.startswith("#") else raw)
        if done and not line:
            continue
        parts = [line]
        while not done and i < len(lines):
            following = lines[i]
            i += 1
            if _is_comment(following):
                continue
            if not following.strip():
                continue  # an empty continuation line: Docker warns, the instruction goes on
            following, done = directives.trim_continuation(following)
            parts.append(following)
        logical = "".join(parts)
        heredocs: list[Heredoc] = []
        if "<<" in logical and _may_have_heredocs(logical):
            for name, expand, chomp in _heredoc_words(logical):
                body: list[str] = []
                while True:
                    if i >= len(lines):
                        raise fail("unterminated heredoc", start, i)
                    candidate = lines[i]
                    i += 1
                    if (candidate.lstrip("\t") if chomp else candidate) == name:
                        break
                    body.append(raw_lines[i - 1])
                content = "".join(body)
                if chomp:
                    content = _LEADING_TABS.sub("", content)
                heredocs.append(Heredoc(name=name, content=content, expand=expand, chomp=chomp))
        yield _Logical(logical, start, i, tuple(heredocs))


def _split_command(line: str) -> tuple[str, str]:
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    return parts[0], parts[1] if len(parts) == 2 else ""


def _may_have_heredocs(line: str) -> bool:
    """RUN, COPY or ADD (or an ONBUILD of one), in shell form: only they take here-documents."""
    keyword, rest = _split_command(line)
    keyword = keyword.upper()
    if keyword == "ONBUILD":
        keyword, rest = _split_command(rest)
        keyword = keyword.upper()
    if keyword not in _HEREDOC_KEYWORDS:
        return False
    try:
        return _json_array(_extract_flags(rest)[1]) is None
    except _LineError:
        return False


def heredoc_word(word: str) -> tuple[str, bool, bool] | None:
    """(name, expand, chomp) when ``word`` (as written, quotes kept) opens a here-document, else None."""
    match = _HEREDOC.match(word)
    if not match or not match.group(3):
        return None
    rest = match.group(3)
    try:
        words = ShellLexer(rest, {}, skip_unset=True).process()[1]
        raw = ShellLexer(rest, {}, skip_unset=True, raw_quotes=True).process()[1]
    except InvalidArgument:
        return None
    if len(words) != 1 or len(raw) != 1:
        return None
    # a quote anywhere in the word turns expansion of the body off, as in sh
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return words[0], quotes == raw_quotes, match.group(2) == "-"


def _heredoc_words(line: str) -> list[tuple[str, bool, bool]]:
    try:
        words = ShellLexer(line, {}, raw_quotes=True, raw_escapes=True, skip_unset=True).process()[1]
    except InvalidArgument:
        return []  # BuildKit ignores a line its lexer cannot read here: no here-documents
    found = []
    for word in words:
        heredoc = heredoc_word(word)
        if heredoc is not None:
            found.append(heredoc)
    return found


# --- one logical line → an Instruction -------------------------------------------------


def _extract_flags(rest: str) -> tuple[list[str], str]:
    """The leading ``--flag[=value]`` words (quotes and backslashes processed) and the rest of the line."""
    flags: list[str] = []
    i, n = 0, len(rest)
    while True:
        while i < n and rest[i].isspace():
            i += 1
        if i >= n:
            return flags, ""
        if not rest.startswith("--", i):
            return flags, rest[i:]
        word: list[str] = []
        blank_ok = False
        quote = ""
        while i < n:
            ch = rest[i]
            if quote:
                if ch == quote:
                    quote = ""
                    i += 1
                    continue
            elif ch.isspace():
                break
            elif ch in "'\"":
                quote, blank_ok = ch, True
                i += 1
                continue
            if ch == "\\":
                if i + 1 == n:
                    i += 1
                    continue
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
        text = "".join(word)
        if text == "--":
            return flags, rest[i:]
        if blank_ok or text:
            flags.append(text)


def _parse_flags(keyword: str, words: list[str]) -> tuple[tuple[str, str], ...]:
    allowed = _FLAGS.get(keyword, {})
    used: set[str] = set()
    parsed: list[tuple[str, str]] = []
    for word in words:
        if not word.startswith("--"):
            raise InvalidArgument(f"arg should start with -- : {word}")
        name, has_value, value = word[2:].partition("=")
        kind = allowed.get(name)
        if kind is None:
            raise InvalidArgument(f"unknown flag: {name}")
        if name in used and kind != "strings":
            raise InvalidArgument(f"duplicate flag specified: {name}")
        used.add(name)
        if kind == "bool":
            if has_value and not value:
                raise InvalidArgument(f"missing a value on flag: {name}")
            lowered = value.lower() if has_value else "true"
            if lowered not in ("true", "false"):
                raise InvalidArgument(f"expecting boolean value for flag {name}, not: {value}")
            value = lowered
        elif not has_value:
            raise InvalidArgument(f"missing a value on flag: {name}")
        parsed.append((name, value))
    return tuple(parsed)


class _LineError(InvalidArgument):
    """Refused by the line parser itself: BuildKit reports these before any instruction's own checks."""


def _json_array(rest: str) -> list[str] | None:
    """The exec form's list, or None when ``rest`` is not a JSON array (then it is shell form)."""
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None

    def refuse(constant: str) -> object:
        raise ValueError(constant)  # Go's encoding/json has no NaN or Infinity

    try:
        value = json.loads(rest, parse_constant=refuse)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise _LineError("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _maybe_json(rest: str) -> tuple[tuple[str, ...], bool]:
    if not rest:
        return (), False
    array = _json_array(rest)
    if array is not None:
        return tuple(array), True
    return (rest,), False


def _maybe_json_list(rest: str) -> tuple[tuple[str, ...], bool]:
    array = _json_array(rest)
    if array is not None:
        return tuple(array), True
    return _whitespace_words(rest), False


def _whitespace_words(rest: str) -> tuple[str, ...]:
    return tuple(_WHITESPACE.split(rest)) if rest else ()


def _name_values(rest: str, keyword: str, escape: str) -> tuple[str, ...]:
    words = parse_words(rest, escape)
    if not words:
        return ()
    if "=" not in words[0]:
        # the legacy form, ENV name value: the value is the rest of the line as written
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _LineError(f"{keyword} must have two arguments")
        return (f"{parts[0]}={parts[1]}",)
    for word in words:
        if "=" not in word:
            raise _LineError(
                f"Syntax error - can't find = in {json.dumps(word)}. Must be of the form: name=value")
    return tuple(words)


def _instruction(text: str, line: int, end_line: int, heredocs: tuple[Heredoc, ...], escape: str) -> Instruction:
    written, after = _split_command(text)
    keyword = written.upper()
    flag_words, rest = _extract_flags(after)
    rest = rest.strip()
    if keyword not in KEYWORDS:
        raise InvalidArgument(f"unknown instruction: {keyword}")
    json_form = False
    onbuild: Instruction | None = None
    args: tuple[str, ...]
    if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        args, json_form = _maybe_json(rest)
    elif keyword in ("ADD", "COPY", "VOLUME"):
        args, json_form = _maybe_json_list(rest)
    elif keyword in ("ENV", "LABEL"):
        args = _name_values(rest, keyword, escape)
    elif keyword == "ARG":
        args = tuple(parse_words(rest, escape))
    elif keyword in ("EXPOSE", "FROM"):
        args = _whitespace_words(rest)
    elif keyword == "HEALTHCHECK":
        kind, command = _split_command(rest) if rest else ("", "")
        if not kind:
            args = ()
        else:
            tail, json_form = _maybe_json(command)
            args = (kind.upper(), *tail)
    elif keyword == "ONBUILD":
        args = (rest,) if rest else ()
        if rest:
            try:
                onbuild = _instruction(rest, line, end_line, heredocs, escape)
            except _LineError:
                raise
            except InvalidArgument:
                pass  # Docker checks a trigger only when it fires, in the child's build (dockerd 20.10 agrees)
    else:  # MAINTAINER, STOPSIGNAL, USER, WORKDIR
        args = (rest,) if rest else ()
    if keyword == "HEALTHCHECK" and args[:1] == ("NONE",):
        flags: tuple[tuple[str, str], ...] = ()  # Docker does not look at the flags of HEALTHCHECK NONE
    else:
        flags = _parse_flags(keyword, flag_words)
    instruction = Instruction(keyword=keyword, args=args, json_form=json_form, flags=flags, heredocs=heredocs,
                              line=line, end_line=end_line, original=text, onbuild=onbuild)
    _check(instruction)
    return instruction


def _check(ins: Instruction) -> None:
    """The argument checks of BuildKit's instructions package, with its messages."""
    keyword, args = ins.keyword, ins.args
    if keyword in ("ENV", "LABEL", "ARG", "EXPOSE", "VOLUME", "ONBUILD", "HEALTHCHECK") and not args:
        raise InvalidArgument(f"{keyword} requires at least one argument")
    if keyword in ("MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL") and len(args) != 1:
        raise InvalidArgument(f"{keyword} requires exactly one argument")
    if keyword in ("ENV", "LABEL", "ARG"):
        for word in args:
            if word.startswith("="):
                raise InvalidArgument(f"{keyword} names can not be blank")
    elif keyword in ("ADD", "COPY"):
        if len(args) < 2:
            raise InvalidArgument(f"{keyword} requires at least two arguments, but only one was provided. "
                                  "Destination could not be determined")
        if heredoc_word(args[-1]) is not None:
            raise InvalidArgument(f"{keyword} cannot accept a heredoc as a destination")
    elif keyword == "FROM":
        if len(args) == 3 and args[1].lower() == "as":
            if not _STAGE_NAME.match(args[2].lower()):
                raise InvalidArgument(f"invalid name for build stage: {json.dumps(args[2])}, "
                                      "name can't start with a number or contain symbols")
        elif len(args) != 1:
            raise InvalidArgument("FROM requires either one or three arguments")
    elif keyword == "ONBUILD":
        trigger = _split_command(args[0])[0].upper()
        if trigger == "ONBUILD":
            raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("MAINTAINER", "FROM"):
            raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
    elif keyword == "VOLUME":
        if any(not v.strip() for v in args):
            raise InvalidArgument("VOLUME specified can not be an empty string")
    elif keyword == "SHELL":
        if not args:
            raise InvalidArgument("SHELL requires at least one argument")
        if not ins.json_form:
            raise InvalidArgument(f"SHELL requires the arguments to be in JSON form")
    elif keyword == "HEALTHCHECK":
        _check_healthcheck(ins)


def _check_healthcheck(ins: Instruction) -> None:
    kind, command = ins.args[0], ins.args[1:]
    if kind == "NONE":
        if command:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return
    if kind != "CMD":
        raise InvalidArgument(f"Unknown type {json.dumps(kind)} in HEALTHCHECK (try CMD)")
    if not command:
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    for name, value in ins.flags:
        if name == "retries":
            if not re.fullmatch(r"[+-]?\d+", value) or not -2**31 <= int(value) < 2**31:
                raise InvalidArgument(f'strconv.ParseInt: parsing {json.dumps(value)}: invalid syntax')
            if int(value) < 0:
                raise InvalidArgument(f"--retries cannot be negative ({int(value)})")
        elif value:
            duration = parse_duration(value)
            if duration != 0 and duration < _MIN_HEALTH_INTERVAL_NS:
                raise InvalidArgument(f'Interval {json.dumps(name)} cannot be less than 1ms')


# --- the whole file ------------------------------------------------------------------


def parse(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile; raise ``DockerfileError`` naming the line for anything Docker refuses.

    As in BuildKit, the whole file goes through the line parser first (its
    errors come first), then the instructions are checked in order.
    """
    directives = _Directives()
    parsed: list[Instruction | DockerfileError] = []
    for logical in _logical_lines(text, path, directives):
        try:
            parsed.append(_instruction(logical.text, logical.line, logical.end_line, logical.heredocs,
                                       directives.escape))
        except InvalidArgument as exc:
            error = DockerfileError(exc.message, path=path, line=logical.line, end_line=logical.end_line,
                                    instruction=_split_command(logical.text)[0].upper())
            if isinstance(exc, _LineError):
                raise error from None
            parsed.append(error)
    if not parsed:
        raise DockerfileError("file with no instructions", path=path, line=0, end_line=0)
    return _assemble(parsed, path, directives)


def _assemble(parsed: list[Instruction | DockerfileError], path: str, directives: _Directives) -> Dockerfile:
    meta_args: list[Instruction] = []
    stages: list[tuple[Instruction, list[Instruction]]] = []
    for ins in parsed:
        if isinstance(ins, DockerfileError):
            raise ins
        if ins.keyword == "FROM":
            stages.append((ins, []))
        elif stages:
            stages[-1][1].append(ins)
        elif ins.keyword == "ARG":
            meta_args.append(ins)
        else:
            raise DockerfileError("no build stage in current context", path=path, line=ins.line,
                                  end_line=ins.end_line, instruction=ins.keyword)
    if not stages:
        raise DockerfileError("dockerfile contains no stages to build", path=path, line=0, end_line=0)
    built: list[Stage] = []
    names: set[str] = set()
    for index, (from_, body) in enumerate(stages):
        name = from_.args[2].lower() if len(from_.args) == 3 else None
        if name is not None:
            if name in names:
                raise DockerfileError(f"{name} stage name already used", path=path, line=from_.line,
                                      end_line=from_.end_line, instruction="FROM")
            names.add(name)
        built.append(Stage(index=index, name=name, base=from_.args[0], platform=from_.flag("platform"),
                           from_=from_, instructions=tuple(body)))
    return Dockerfile(path=path, directives=dict(directives.seen), meta_args=tuple(meta_args),
                      stages=tuple(built), escape=directives.escape)


def parse_instruction(text: str, *, escape: str = "\\") -> Instruction:
    """One instruction on its own (``docker commit --change``, ONBUILD triggers replayed from an image)."""
    return _instruction(text, 1, 1, (), escape)


def key_values(ins: Instruction) -> list[tuple[str, str | None]]:
    """ENV/LABEL/ARG words as (key, value) pairs, still unexpanded; an ARG without a default has None."""
    return [(key, value if sep else None) for key, sep, value in (word.partition("=") for word in ins.args)]


def expanded_pairs(ins: Instruction, env: Mapping[str, str], *, escape: str = "\\") -> list[tuple[str, str]]:
    """ENV or LABEL pairs expanded against ``env``, the variables as they were before the instruction.

    Docker's example: after ``ENV abc=hello``, ``ENV abc=bye def=$abc`` sets def to ``hello``.
    """
    return [(expand(key, env, escape=escape), expand(value or "", env, escape=escape))
            for key, value in key_values(ins)]


def expand_instruction(ins: Instruction, env: Mapping[str, str], *, escape: str = "\\") -> Instruction:
    """``ins`` with its words substituted as Docker does when it runs it; other instructions unchanged.

    Each word separately (BuildKit's single-word expansion, no splitting): the
    keys and values of ENV, LABEL and ARG (every pair against ``env`` as it was
    before the instruction), the sources and destination of ADD and COPY, the
    ports of EXPOSE, the paths of VOLUME, the argument of USER, WORKDIR,
    STOPSIGNAL and FROM's image, and the flags ``--chown``, ``--chmod``,
    ``COPY --from`` and ``FROM --platform``. Here-document bodies are left to
    ``shellwords.expand_heredoc`` (when ``Heredoc.expand``), RUN, CMD,
    ENTRYPOINT, SHELL and HEALTHCHECK to the shell in the container.
    """
    if ins.keyword not in EXPANDS:
        return ins
    if ins.keyword in ("ENV", "LABEL", "ARG"):
        args = tuple(expand(key, env, escape=escape) + ("" if value is None else "=" + expand(value, env, escape=escape))
                     for key, value in key_values(ins))
    elif ins.keyword == "FROM":
        args = (expand(ins.args[0], env, escape=escape), *ins.args[1:])
    elif ins.keyword in ("ADD", "COPY"):
        # a here-document source names its body; it is not a path to expand
        args = tuple(word if heredoc_word(word) else expand(word, env, escape=escape) for word in ins.args)
    else:
        args = tuple(expand(word, env, escape=escape) for word in ins.args)
    expanded_flags = _EXPANDED_FLAGS.get(ins.keyword, frozenset())
    flags = tuple((name, expand(value, env, escape=escape) if name in expanded_flags else value)
                  for name, value in ins.flags)
    return dataclasses.replace(ins, args=args, flags=flags)
