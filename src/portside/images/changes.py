"""The Dockerfile instructions `docker import --change` and `docker commit --change` accept.

moby joins the changes with newlines, parses them as a Dockerfile and runs
each instruction against a copy of the image's config (``BuildFromConfig`` in
``builder/dockerfile/builder.go``). CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK,
LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR are allowed. As in moby,
every line is parsed before any of them runs, and the error messages are
moby's, because the docker CLI prints them as they come.

Arguments go through the Dockerfile word processing: quotes are removed and
backslash escapes applied (``ENV A="two words"``). Not done: ``$VAR``
expansion (a ``$`` stays literal), parser directives such as ``# escape=``,
and the signal-name check moby makes on STOPSIGNAL.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from portside.errors import InvalidArgument
from portside.timefmt import parse_duration


@dataclass
class _State:
    config: dict[str, Any]
    cmd_set: bool = False  # a CMD with arguments ran earlier in this list: ENTRYPOINT keeps it


_Step = Callable[[_State], None]


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return a copy of the image's ``config`` section with ``changes`` applied in order."""
    steps = [_parse_line(line) for line in _logical_lines("\n".join(changes))]
    state = _State(copy.deepcopy(config))
    for step in steps:
        step(state)
    return state.config


# --- Dockerfile lines and words ----------------------------------------------

_CONTINUATION = re.compile(r"([^\\])\\[ \t]*$|^\\[ \t]*$")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


def _logical_lines(text: str) -> Iterator[str]:
    """Instructions: comments and blank lines dropped, lines ending in a backslash joined to the next."""
    lines = iter(text.split("\n"))
    for raw in lines:
        line, done = _trim_continuation(raw.rstrip("\r").lstrip())
        if line.startswith("#") or (done and not line):
            continue
        parts = [line]
        while not done and (following := next(lines, None)) is not None:
            following = following.rstrip("\r")
            if following.lstrip().startswith("#") or not following.strip():
                continue  # skipped inside a continuation, not an end to it
            following, done = _trim_continuation(following)
            parts.append(following)
        yield "".join(parts)


def _trim_continuation(line: str) -> tuple[str, bool]:
    """The line without a trailing backslash, and whether the instruction ends with it."""
    trimmed, continued = _CONTINUATION.subn(r"\1", line)
    return trimmed, not continued


def _parse_line(line: str) -> _Step:
    keyword, *rest = _WHITESPACE.split(line.strip(), maxsplit=1)
    parser = _PARSERS.get(keyword.lower())
    if parser is None:
        # moby's parser lowercases the instruction before BuildFromConfig names it
        raise InvalidArgument(f"{keyword.lower()} is not a valid change command")
    args, flags = _split_flags(rest[0] if rest else "")
    return parser(args.strip(), flags, line)


def _scan_words(text: str, *, raw: bool) -> Iterator[tuple[int, int, str]]:
    """``(start, end, word)`` for each word of ``text``, split at whitespace outside quotes.

    ``raw`` keeps quotes and backslashes in the words for the word processing
    to remove later (moby's parseWords, which ENV and LABEL use); a backslash
    is then literal inside single quotes. Without ``raw`` they are removed
    here (moby's reading of ``--flag`` words).
    """
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, quote, quoted = i, "", False
        chars: list[str] = []
        while i < n and (quote or not text[i].isspace()):
            c = text[i]
            if c == quote or (not quote and c in "'\""):
                quote, quoted = ("" if quote else c), True
                if raw:
                    chars.append(c)
            elif c == "\\" and not (raw and quote == "'"):
                if i + 1 < n:  # a backslash at the very end is dropped
                    i += 1
                    chars.append(c + text[i] if raw else text[i])
            else:
                chars.append(c)
            i += 1
        if chars or quoted:
            yield start, i, "".join(chars)


def _split_flags(args: str) -> tuple[str, list[str]]:
    """The leading ``--name=value`` words of an instruction, and what follows them."""
    flags: list[str] = []
    for start, end, word in _scan_words(args, raw=False):
        if not args.startswith("--", start):
            return args[start:], flags
        if word == "--":
            return args[end:], flags
        flags.append(word)
    return "", flags


def _parse_flags(flags: list[str], names: tuple[str, ...] = ()) -> dict[str, str]:
    """The values of ``flags``, which may only be ``--name=value`` for the ``names`` given."""
    values: dict[str, str] = {}
    for flag in flags:
        if flag == "--":
            break
        if not flag.startswith("--"):
            raise InvalidArgument(f"arg should start with -- : {flag}")
        name, has_value, value = flag.partition("=")
        if name[2:] not in names:
            raise InvalidArgument(f"unknown flag: {name}")
        if name[2:] in values:
            raise InvalidArgument(f"duplicate flag specified: {name}")
        if not has_value:
            raise InvalidArgument(f"missing a value on flag: {name}")
        values[name[2:]] = value
    return values


def _process_word(word: str) -> str:
    """Dockerfile word processing, without variables: quotes removed, backslash escapes applied."""
    out: list[str] = []
    i, n = 0, len(word)
    while i < n:
        c = word[i]
        i += 1
        if c == "'":
            close = word.find("'", i)
            if close < 0:
                raise _unterminated(word, "single-quote")
            out.append(word[i:close])
            i = close + 1
        elif c == '"':
            while True:
                if i == n:
                    raise _unterminated(word, "double-quote")
                c = word[i]
                i += 1
                if c == '"':
                    break
                if c == "\\" and i < n and word[i] in '"$\\':  # other backslashes stay, as in sh
                    c = word[i]
                    i += 1
                out.append(c)
        elif c == "\\":
            out.append(word[i:i + 1])
            i += 1
        else:
            out.append(c)
    return "".join(out)


def _unterminated(word: str, quote: str) -> InvalidArgument:
    return InvalidArgument(f"failed to process {_quote(word)}: "
                           f"unexpected end of statement while looking for matching {quote}")


def _quote(s: str) -> str:
    """Go's %q, near enough: the docker CLI shows these strings as Go printed them."""
    return json.dumps(s, ensure_ascii=False)


def _json_array(args: str) -> list[str] | None:
    """The exec form ``["a", "b"]``, or None when ``args`` is not a JSON array (the shell form)."""
    if not args.startswith("["):
        return None
    try:
        value = json.loads(args)
    except (ValueError, RecursionError):  # Go fails to decode it too, at 10,000 levels
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise InvalidArgument("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _one_argument(keyword: str, args: str) -> str:
    if not args:
        raise InvalidArgument(f"{keyword} requires exactly one argument")
    return args


# --- the instructions: each parses its line and returns the step that applies it

def _cmd(args: str, flags: list[str], line: str) -> _Step:
    _parse_flags(flags)
    words, exec_form = _command_line(args)

    def step(state: _State) -> None:
        # moby quirk kept: a bare CMD has no words, yet the shell is prefixed.
        state.config["Cmd"] = _with_shell(state.config, words, exec_form)
        state.config.pop("ArgsEscaped", None)
        state.cmd_set = state.cmd_set or bool(words)
    return step


def _entrypoint(args: str, flags: list[str], line: str) -> _Step:
    _parse_flags(flags)
    words, exec_form = _command_line(args)

    def step(state: _State) -> None:
        # ENTRYPOINT without words, or ENTRYPOINT [], resets it.
        state.config["Entrypoint"] = _with_shell(state.config, words, exec_form) if words else None
        state.config.pop("ArgsEscaped", None)
        if not state.cmd_set:  # a new entrypoint drops the image's CMD, not one given with it
            state.config["Cmd"] = None
    return step


def _command_line(args: str) -> tuple[list[str], bool]:
    """The words of a CMD-like instruction and whether they are the exec form."""
    exec_form = _json_array(args)
    if exec_form is not None:
        return exec_form, True
    return ([args] if args else []), False


def _with_shell(config: dict[str, Any], words: list[str], exec_form: bool) -> list[str]:
    return words if exec_form else [*(config.get("Shell") or ["/bin/sh", "-c"]), *words]


_HEALTHCHECK_DURATIONS = {"interval": "Interval", "timeout": "Timeout",
                          "start-period": "StartPeriod", "start-interval": "StartInterval"}


def _healthcheck(args: str, flags: list[str], line: str) -> _Step:
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [--interval=D ...] CMD command``, stored as moby stores it.

    Durations are nanoseconds; fields not given (or zero) are left out, like
    Go's ``omitempty``.
    """
    if not args:
        raise InvalidArgument("HEALTHCHECK requires at least one argument")
    kind, *rest = args.split(maxsplit=1)
    words, exec_form = _command_line(rest[0] if rest else "")
    if kind.upper() == "NONE":  # moby reads no flags here
        if words:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        health: dict[str, Any] = {"Test": ["NONE"]}
    else:
        values = _parse_flags(flags, (*_HEALTHCHECK_DURATIONS, "retries"))
        if kind.upper() != "CMD":
            raise InvalidArgument(f"Unknown type {_quote(kind.upper())} in HEALTHCHECK (try CMD)")
        if not words:
            raise InvalidArgument("Missing command after HEALTHCHECK CMD")
        health = {"Test": ["CMD" if exec_form else "CMD-SHELL", *words]}
        for flag, field in _HEALTHCHECK_DURATIONS.items():
            if duration := _interval(flag, values.get(flag, "")):
                health[field] = duration
        if retries := _retries(values.get("retries", "")):
            health["Retries"] = retries

    def step(state: _State) -> None:
        state.config["Healthcheck"] = copy.deepcopy(health)
    return step


def _interval(flag: str, value: str) -> int:
    """A HEALTHCHECK duration flag in nanoseconds; 0 when not given."""
    nanoseconds = parse_duration(value) if value else 0
    if 0 != nanoseconds < 1_000_000:
        raise InvalidArgument(f"Interval {_quote(flag)} cannot be less than 1ms")
    return nanoseconds


def _retries(value: str) -> int:
    """``--retries``, read as Go's strconv.ParseInt(value, 10, 32) reads it."""
    if not value:
        return 0
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise InvalidArgument(f"strconv.ParseInt: parsing {_quote(value)}: invalid syntax")
    retries = int(value)
    if not -(2**31) <= retries < 2**31:
        raise InvalidArgument(f"strconv.ParseInt: parsing {_quote(value)}: value out of range")
    if retries < 0:
        raise InvalidArgument(f"--retries cannot be negative ({retries})")
    return retries


def _key_values(keyword: str, args: str, flags: list[str]) -> list[tuple[str, str]]:
    """ENV and LABEL arguments: ``k=v k2="v 2"``, or the legacy ``k value with spaces``.

    Keys and values still hold their quotes: the step processes them.
    """
    words = [word for _, _, word in _scan_words(args, raw=True)]
    if words and "=" not in words[0]:
        parts = _WHITESPACE.split(args, maxsplit=1)
        if len(parts) < 2:
            raise InvalidArgument(f"{keyword} must have two arguments")
        pairs = [(parts[0], parts[1])]
    else:
        pairs = []
        for word in words:
            key, has_value, value = word.partition("=")
            if not has_value:
                raise InvalidArgument(f"Syntax error - can't find = in {_quote(word)}. "
                                      "Must be of the form: name=value")
            pairs.append((key, value))
    _parse_flags(flags)
    if not pairs:
        raise InvalidArgument(f"{keyword} requires at least one argument")
    if not all(key for key, _ in pairs):
        raise InvalidArgument(f"{keyword} names can not be blank")
    return pairs


def _env(args: str, flags: list[str], line: str) -> _Step:
    pairs = _key_values("ENV", args, flags)

    def step(state: _State) -> None:
        env = list(state.config.get("Env") or [])
        for raw_key, raw_value in pairs:
            key, value = _process_word(raw_key), _process_word(raw_value)
            names = [entry.partition("=")[0] for entry in env]
            if key in names:
                env[names.index(key)] = f"{key}={value}"  # replaced where it stands
            else:
                env.append(f"{key}={value}")
        state.config["Env"] = env
    return step


def _label(args: str, flags: list[str], line: str) -> _Step:
    pairs = _key_values("LABEL", args, flags)

    def step(state: _State) -> None:
        labels = dict(state.config.get("Labels") or {})
        for key, value in pairs:
            labels[_process_word(key)] = _process_word(value)
        state.config["Labels"] = labels
    return step


def _expose(args: str, flags: list[str], line: str) -> _Step:
    specs = sorted(_WHITESPACE.split(args)) if args else []
    if not specs:
        raise InvalidArgument("EXPOSE requires at least one argument")
    _parse_flags(flags)

    def step(state: _State) -> None:
        ports = dict(state.config.get("ExposedPorts") or {})
        for spec in specs:
            if processed := _process_word(spec):
                ports.update((port, {}) for port in _exposed_ports(processed))
        state.config["ExposedPorts"] = ports
    return step


def _exposed_ports(spec: str) -> list[str]:
    """``[ip:[host-port]:]port[-port][/proto]`` as the ``port/proto`` keys it exposes, ranges expanded."""
    parts = spec.split(":")
    ip, host_ports, container = ":".join(parts[:-2]), (parts[-2] if len(parts) > 1 else ""), parts[-1]
    port, _, proto = container.partition("/")
    if not port:
        raise InvalidArgument(f"no port specified: {spec}<empty>")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    if ip:
        try:
            ipaddress.ip_address(ip[1:-1] if ip[0] == "[" and ip[-1] == "]" else ip)
        except ValueError:
            raise InvalidArgument(f"invalid IP address: {ip}") from None
    start, end = _port_range(port, f"invalid containerPort: {port}")
    if host_ports:
        host_start, host_end = _port_range(host_ports, f"invalid hostPort: {host_ports}")
        if end - start != host_end - host_start and end != start:
            raise InvalidArgument(f"invalid ranges specified for container and host Ports: {port} and {host_ports}")
    return [f"{number}/{proto}" for number in range(start, end + 1)]


def _port_range(text: str, error: str) -> tuple[int, int]:
    first, has_dash, last = text.partition("-")
    bounds = [first] if not has_dash or first == last else [first, last]
    if not all(re.fullmatch(r"[0-9]+", b) and int(b) <= 65535 for b in bounds):
        raise InvalidArgument(error)
    start, end = int(bounds[0]), int(bounds[-1])
    if end < start:
        raise InvalidArgument(error)
    return start, end


def _volume(args: str, flags: list[str], line: str) -> _Step:
    paths = _json_array(args)
    if paths is None:
        paths = _WHITESPACE.split(args) if args else []
    if not paths:
        raise InvalidArgument("VOLUME requires at least one argument")
    _parse_flags(flags)
    if not all(path.strip() for path in paths):
        raise InvalidArgument("VOLUME specified can not be an empty string")

    def step(state: _State) -> None:
        volumes = dict(state.config.get("Volumes") or {})
        for path in paths:
            processed = _process_word(path.strip())
            if not processed:
                raise InvalidArgument("VOLUME specified can not be an empty string")
            volumes[processed] = {}
        state.config["Volumes"] = volumes
    return step


def _workdir(args: str, flags: list[str], line: str) -> _Step:
    path = _one_argument("WORKDIR", args)
    _parse_flags(flags)

    def step(state: _State) -> None:
        requested = _process_word(path)
        if not requested:
            raise InvalidArgument("cannot normalize nothing")
        if not requested.startswith("/"):  # relative to the working directory so far
            requested = f"/{state.config.get('WorkingDir') or ''}/{requested}"
        state.config["WorkingDir"] = _clean(requested)
    return step


def _clean(path: str) -> str:
    """Go's path.Clean for an absolute path (normpath keeps a leading "//", Go does not)."""
    return "/" + posixpath.normpath(path).lstrip("/")


def _field(keyword: str, field: str, *, reads_flags: bool) -> Callable[[str, list[str], str], _Step]:
    """USER and STOPSIGNAL: the whole argument, processed, into one field."""
    def parse(args: str, flags: list[str], line: str) -> _Step:
        value = _one_argument(keyword, args)
        if reads_flags:
            _parse_flags(flags)

        def step(state: _State) -> None:
            state.config[field] = _process_word(value)
        return step
    return parse


def _onbuild(args: str, flags: list[str], line: str) -> _Step:
    if not args:
        raise InvalidArgument("ONBUILD requires at least one argument")
    _parse_flags(flags)
    trigger = args.split(maxsplit=1)[0].upper()
    if trigger == "ONBUILD":
        raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("FROM", "MAINTAINER"):
        raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"^\s*ONBUILD\s*", "", line, flags=re.IGNORECASE | re.ASCII)

    def step(state: _State) -> None:
        state.config["OnBuild"] = [*(state.config.get("OnBuild") or []), expression]
    return step


_PARSERS: dict[str, Callable[[str, list[str], str], _Step]] = {
    "cmd": _cmd,
    "entrypoint": _entrypoint,
    "env": _env,
    "expose": _expose,
    "healthcheck": _healthcheck,
    "label": _label,
    "onbuild": _onbuild,
    "stopsignal": _field("STOPSIGNAL", "StopSignal", reads_flags=False),  # moby ignores flags there
    "user": _field("USER", "User", reads_flags=True),
    "volume": _volume,
    "workdir": _workdir,
}
