"""The command framework: flag specs, a pflag-compatible parser, help text, errors.

The docker CLI is cobra + pflag; scripts and tests depend on its exact flag
syntax (``-aq``, ``--all=false``, ``-f=x``, interspersed flags, ``--``), its
error texts (``unknown flag: --foo``) and its exit codes. argparse differs on
all three, so this module reimplements the small part of pflag that matters.

Everything here is pure: parsing and help rendering take strings and return
values or raise; nothing touches the daemon.
"""

from __future__ import annotations

import os
import sys
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, TextIO

    from portside.cli.client import Client
    from portside.cli.endpoint import Endpoint

PROG = "portside"

# ---------------------------------------------------------------------------
# Errors and exit statuses


class StatusError(Exception):
    """Exit with ``code`` after printing ``status`` (if any) to stderr.

    The equivalent of docker/cli's ``cli.StatusError``: flag errors use 125,
    template errors 64; a command that wants a particular code for a daemon
    error (``run`` uses 125) raises this itself.
    """

    def __init__(self, status: str, code: int = 1) -> None:
        super().__init__(status)
        self.status = status
        self.code = code or 1


class CLIError(Exception):
    """A plain error: printed to stderr as is, exit status 1."""


class Cancelled(Exception):
    """The user declined a prompt; docker exits 0 without a message."""


class HelpRequested(Exception):
    """``--help`` was given; the caller prints the command's help to stdout."""


# ---------------------------------------------------------------------------
# Flags

BOOL = "bool"
STRING = "string"
INT = "int"
LIST = "list"  # docker's ListOpts: repeatable, "list" in help
FILTER = "filter"  # docker's FilterOpt: repeatable name=value
STRING_ARRAY = "stringArray"
STRING_SLICE = "strings"  # pflag's StringSlice: repeatable, and each value is a comma-separated (CSV) list


class Flag:
    """One flag: long name, optional one-letter shorthand, kind (BOOL, STRING...), help text."""

    __slots__ = ("name", "short", "kind", "help", "default", "hidden", "varname")

    def __init__(
        self,
        name: str,
        short: str | None,
        kind: str,
        help: str,
        *,
        default: Any = None,
        hidden: bool = False,
        varname: str | None = None,  # overrides the type name shown in help
    ) -> None:
        self.name = name
        self.short = short
        self.kind = kind
        self.help = help
        self.default = default
        self.hidden = hidden
        self.varname = varname

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    def initial(self) -> Any:
        if self.kind in (LIST, FILTER, STRING_ARRAY, STRING_SLICE):
            return []
        if self.default is not None:
            return self.default
        return {BOOL: False, STRING: "", INT: 0}[self.kind]

    def display_name(self) -> str:
        if self.short:
            return f"-{self.short}, --{self.name}"
        return f"--{self.name}"


class Options:
    """Parsed flag values as attributes (``opts.no_trunc``), plus which were set."""

    def __init__(self, flags: tuple[Flag, ...]) -> None:
        self.changed: set[str] = set()
        for f in flags:
            setattr(self, f.dest, f.initial())

    def __getattr__(self, name: str) -> Any:  # only called for unknown names
        raise AttributeError(name)


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def go_quote(s: str) -> str:
    """Go's %q for the strings that appear in flag errors."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _set_flag(opts: Options, flag: Flag, value: str) -> None:
    try:
        if flag.kind == BOOL:
            if value in _TRUE:
                v: Any = True
            elif value in _FALSE:
                v = False
            else:
                raise ValueError(f"strconv.ParseBool: parsing {go_quote(value)}: invalid syntax")
            setattr(opts, flag.dest, v)
        elif flag.kind == INT:
            try:
                v = int(value, 10)
                if value.strip() != value or "_" in value:
                    raise ValueError
            except ValueError:
                raise ValueError(f"strconv.ParseInt: parsing {go_quote(value)}: invalid syntax") from None
            setattr(opts, flag.dest, v)
        elif flag.kind == FILTER:
            if value == "":
                pass
            elif "=" not in value:
                raise ValueError("bad format of filter (expected name=value)")
            else:
                name, _, val = value.partition("=")
                getattr(opts, flag.dest).append((name.strip().lower(), val.strip()))
        elif flag.kind in (LIST, STRING_ARRAY):
            getattr(opts, flag.dest).append(value)
        elif flag.kind == STRING_SLICE:
            getattr(opts, flag.dest).extend(_csv_fields(value))
        else:
            setattr(opts, flag.dest, value)
    except ValueError as e:
        raise FlagError(
            f"invalid argument {go_quote(value)} for {go_quote(flag.display_name())} flag: {e}"
        ) from None
    opts.changed.add(flag.name)


class FlagError(Exception):
    """A pflag parse error; rendered with ``See '... --help'.`` and status 125."""


def parse_flags(
    flags: tuple[Flag, ...], argv: list[str], *, interspersed: bool = True
) -> tuple[Options, list[str]]:
    """Parse ``argv`` the way pflag does; return the options and the positional args.

    ``-h``/``--help`` raise HelpRequested (docker defines them on every command).
    """
    by_name = {f.name: f for f in flags}
    by_short = {f.short: f for f in flags if f.short}
    opts = Options(flags)
    positional: list[str] = []
    args = list(argv)
    while args:
        s = args.pop(0)
        if len(s) < 2 or s[0] != "-":
            if not interspersed:
                positional.append(s)
                positional.extend(args)
                break
            positional.append(s)
            continue
        if s[1] == "-":
            if len(s) == 2:  # "--" ends the flags
                positional.extend(args)
                break
            name = s[2:]
            if name[0] in "-=":
                raise FlagError(f"bad flag syntax: {s}")
            name, eq, value = name.partition("=")
            flag = by_name.get(name)
            if flag is None:
                if name == "help":
                    raise HelpRequested()
                raise FlagError(f"unknown flag: --{name}")
            if not eq:
                if flag.kind == BOOL:
                    value = "true"
                elif args:
                    value = args.pop(0)
                else:
                    raise FlagError(f"flag needs an argument: {s}")
            _set_flag(opts, flag, value)
            continue
        shorthands = s[1:]
        while shorthands:
            c = shorthands[0]
            flag = by_short.get(c)
            if flag is None:
                if c == "h":
                    raise HelpRequested()
                raise FlagError(f"unknown shorthand flag: '{c}' in -{shorthands}")
            rest = shorthands[1:]
            if len(shorthands) > 2 and shorthands[1] == "=":
                value, rest = shorthands[2:], ""
            elif flag.kind == BOOL:
                value = "true"
            elif rest:
                value, rest = rest, ""
            elif args:
                value = args.pop(0)
            else:
                raise FlagError(f"flag needs an argument: '{c}' in -{shorthands}")
            _set_flag(opts, flag, value)
            shorthands = rest
    return opts, positional


# ---------------------------------------------------------------------------
# Commands

if TYPE_CHECKING:
    Runner = Callable[["Context", Options, list[str]], "int | None"]


class Args:
    """Positional-argument rule, rendered with cobra's texts (docker/cli cli/required.go)."""

    __slots__ = ("min", "max")

    def __init__(self, min: int = 0, max: int | None = None) -> None:  # max None: unbounded
        self.min = min
        self.max = max

    def check(self, cmd: "Command", path: str, args: list[str]) -> None:
        n = len(args)
        if self.min <= n and (self.max is None or n <= self.max):
            return
        use = f"{PROG} {cmd.path_use(path)}"
        tail = f"See '{PROG} {path} --help'.\n\nUsage:  {use}\n\n{cmd.short}"
        if self.max == 0:
            raise CLIError(f'"{PROG} {path}" accepts no arguments.\n{tail}')
        if self.max is None:
            head = f"requires at least {self.min} {_plural('argument', self.min)}"
        elif self.min == self.max:
            head = f"requires exactly {self.min} {_plural('argument', self.min)}"
        elif self.min == 0:
            head = f"requires at most {self.max} {_plural('argument', self.max)}"
        else:
            head = f"requires at least {self.min} and at most {self.max} {_plural('argument', self.max)}"
        raise CLIError(f'"{PROG} {path}" {head}.\n{tail}')


def _plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"


NO_ARGS = Args(0, 0)


class Command:
    """One leaf command. ``use`` is cobra's Use line without the program name."""

    __slots__ = ("use", "short", "run", "args", "flags", "aliases", "interspersed", "long")

    def __init__(
        self,
        *,
        use: str,
        short: str,
        run: Runner,
        args: Args = NO_ARGS,
        flags: tuple[Flag, ...] = (),
        aliases: str = "",  # docker's "aliases" annotation: "portside image ls, portside images"
        interspersed: bool = True,
        long: str = "",
    ) -> None:
        self.use = use
        self.short = short
        self.run = run
        self.args = args
        self.flags = flags
        self.aliases = aliases
        self.interspersed = interspersed
        self.long = long

    def with_use(self, use: str, run: Runner | None = None) -> "Command":
        """The same command under another name (``image ls`` for ``images``)."""
        return Command(
            use=use,
            short=self.short,
            run=run or self.run,
            args=self.args,
            flags=self.flags,
            aliases=self.aliases,
            interspersed=self.interspersed,
            long=self.long,
        )

    @property
    def name(self) -> str:
        return self.use.split(" ", 1)[0]

    def path_use(self, path: str) -> str:
        """The Use line as invoked under ``path`` (``image ls [OPTIONS] ...``)."""
        rest = self.use.split(" ", 1)[1] if " " in self.use else ""
        return f"{path} {rest}".rstrip()


# ---------------------------------------------------------------------------
# Help (cobra's usage template as docker/cli configures it)


def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    if i + slop > len(s):
        return s, ""
    head = s[:i]
    w = max(head.rfind(" "), head.rfind("\t"), head.rfind("\n"))
    if w <= 0:
        return s, ""
    nl = head.rfind("\n")
    if 0 < nl < w:
        return s[:nl], s[nl + 1 :]
    return s[:w], s[w + 1 :]


def _wrap(i: int, w: int, s: str) -> str:
    if w == 0:
        return s.replace("\n", "\n" + " " * i)
    wrap = w - i
    r = ""
    if wrap < 24:
        i = 16
        wrap = w - i
        r += "\n" + " " * i
    if wrap < 24:
        return s.replace("\n", r)
    slop = 5
    wrap -= slop
    line, s = _wrap_n(wrap, slop, s)
    r += line.replace("\n", "\n" + " " * i)
    while s:
        t, s = _wrap_n(wrap, slop, s)
        r += "\n" + " " * i + t.replace("\n", "\n" + " " * i)
    return r


def _csv_fields(value: str) -> list[str]:
    """A StringSlice value as pflag reads it (Go's encoding/csv): ``a,"b,c"`` is two values, ``""`` none."""
    if value == "":
        return []
    if "," not in value and '"' not in value:
        return [value]
    import csv  # here: csv brings re and collections, kept off the run path (tests/cli/test_cli_startup.py)

    try:
        return next(csv.reader([value], strict=True))
    except csv.Error as e:
        raise ValueError(str(e)) from None


def _is_zero_default(f: Flag) -> bool:
    if f.kind in (LIST, FILTER, STRING_ARRAY, STRING_SLICE):
        return True
    return f.default in (None, False, "", 0)


def flag_usages(flags: tuple[Flag, ...], cols: int) -> str:
    """pflag's FlagUsagesWrapped: sorted by name, hidden flags left out."""
    lines: list[str] = []
    maxlen = 0
    for f in sorted(flags, key=lambda f: f.name):
        if f.hidden:
            continue
        line = f"  -{f.short}, --{f.name}" if f.short else f"      --{f.name}"
        varname = f.varname if f.varname is not None else ("" if f.kind == BOOL else f.kind)
        if varname:
            line += " " + varname
        line += "\x00"
        maxlen = max(maxlen, len(line))
        line += f.help
        if not _is_zero_default(f):
            if f.kind == STRING:
                line += f" (default {go_quote(f.default)})"
            elif f.kind == BOOL:
                line += f" (default {'true' if f.default else 'false'})"
            else:
                line += f" (default {f.default})"
        lines.append(line)
    out = []
    for line in lines:
        sidx = line.index("\x00")
        out.append(line[:sidx] + " " + " " * (maxlen - sidx) + " " + _wrap(maxlen + 2, cols, line[sidx + 1 :]) + "\n")
    return "".join(out)


def terminal_cols() -> int:
    try:
        return os.get_terminal_size(0).columns - 1
    except OSError:
        return 79


def command_help(cmd: Command, path: str) -> str:
    """``portside PATH --help`` for a leaf command (starts with a blank line, like docker)."""
    parts = [f"\nUsage:  {PROG} {cmd.path_use(path)}\n\n{(cmd.long or cmd.short).strip()}\n"]
    if cmd.aliases:
        parts.append(f"\nAliases:\n  {cmd.aliases}\n")
    visible = tuple(f for f in cmd.flags if not f.hidden)
    if visible:
        parts.append("\nOptions:\n" + flag_usages(visible, terminal_cols()).rstrip() + "\n")
    return "".join(parts)


def group_help(group: str, short: str, commands: list[tuple[str, str]]) -> str:
    """Help for a management command; ``commands`` is [(name, short)]."""
    lines = [f"\nUsage:  {PROG} {group} COMMAND\n\n{short}\n\nCommands:"]
    for name, summary in commands:
        lines.append(f"  {name:<11} {summary}")
    lines.append(f"\nRun '{PROG} {group} COMMAND --help' for more information on a command.")
    return "\n".join(lines) + "\n"


def flag_error(err: str, path: str, usage: str = "") -> StatusError:
    """docker/cli FlagErrorFunc: the error, a pointer to --help, status 125."""
    status = f"{err}\nSee '{PROG}{' ' + path if path else ''} --help'."
    if usage:
        status += "\n\n" + usage
    return StatusError(status, 125)


# ---------------------------------------------------------------------------
# The per-invocation context handed to commands


class Context:
    """What a command needs: streams, the host, and a lazily built API client."""

    def __init__(
        self,
        *,
        host: str | Endpoint,
        default_host: bool,
        debug: bool = False,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.host = host
        self.default_host = default_host
        self.debug = debug
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The API client (imported on first use, so help and parse errors stay fast)."""
        if self._client is None:
            from portside.cli.client import Client

            self._client = Client(self.host, autostart=self.default_host, stderr=self.stderr)
        return self._client

    def out(self, text: str) -> None:
        self.stdout.write(text)

    def err(self, text: str) -> None:
        self.stderr.write(text)

    def stdout_is_tty(self) -> bool:
        try:
            return os.isatty(self.stdout.fileno())
        except (AttributeError, OSError, ValueError):
            return False

    def stdin_is_tty(self) -> bool:
        try:
            return os.isatty(self.stdin.fileno())
        except (AttributeError, OSError, ValueError):
            return False
