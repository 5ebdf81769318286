"""``portside``: global flags, command dispatch, and docker's exit statuses.

The flow mirrors ``cmd/docker/docker.go``: global flags are parsed up to the
first non-flag word (the command), the command's own flags and arguments are
parsed with pflag rules, then the command runs. Failures map to exit statuses
as docker's ``main`` does:

* a flag error: the error, ``See 'portside CMD --help'.``, status 125;
* a ``StatusError``: its text (if any), its status (never 0);
* a declined prompt: status 0, nothing printed;
* anything else (argument-count errors, daemon errors, connection errors):
  the message, status 1.

``portside daemon ...`` and ``portside registry ...`` are handed to their
packages, imported only then, so the client path never loads the engine.
"""

from __future__ import annotations

import os
import sys

from portside import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from portside.cli.endpoint import Endpoint
from portside.cli import commands as registry
from portside.cli.commands.base import (
    BOOL,
    PROG,
    STRING,
    Cancelled,
    CLIError,
    Command,
    Context,
    Flag,
    FlagError,
    HelpRequested,
    LIST,
    StatusError,
    command_help,
    flag_error,
    flag_usages,
    group_help,
    parse_flags,
    terminal_cols,
)

HOST_ENV = "PORTSIDE_HOST"
DEFAULT_HOST = "unix:///run/portside/portside.sock"
LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "panic")

GLOBAL_FLAGS: tuple[Flag, ...] = (
    Flag("config", None, STRING, "Location of client config files", default=os.path.expanduser("~/.docker")),
    Flag("context", "c", STRING, "Name of the context to use to connect to the daemon (accepted, ignored)"),
    Flag("debug", "D", BOOL, "Enable debug mode"),
    Flag("host", "H", LIST, "Daemon socket to connect to"),
    Flag(
        "log-level",
        "l",
        STRING,
        'Set the logging level ("debug", "info", "warn", "error", "fatal")',
        default="info",
    ),
    Flag("tls", None, BOOL, "Use TLS; implied by --tlsverify"),
    Flag("tlscacert", None, STRING, 'Trust certs signed only by this CA (default "~/.docker/ca.pem")'),
    Flag("tlscert", None, STRING, 'Path to TLS certificate file (default "~/.docker/cert.pem")'),
    Flag("tlskey", None, STRING, 'Path to TLS key file (default "~/.docker/key.pem")'),
    Flag("tlsverify", None, BOOL, "Use TLS and verify the remote"),
    Flag("version", "v", BOOL, "Print version information and quit"),
)


def root_help() -> str:
    def section(title: str, rows: list[tuple[str, str]]) -> str:
        return f"\n{title}:\n" + "".join(f"  {name:<11} {short}\n" for name, short in rows)

    common = [(n, registry.TOP[n].short) for n in registry.COMMON]
    management = sorted(
        [(n, g.short) for n, g in registry.GROUPS.items()]
        + [("registry", registry.EXTERNAL["registry"][1])]
    )
    others = sorted(
        [(n, e.short) for n, e in registry.TOP.items() if n not in registry.COMMON]
        + [("daemon", registry.EXTERNAL["daemon"][1])]
    )
    return (
        f"\nUsage:  {PROG} [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n"
        + section("Common Commands", common)
        + section("Management Commands", management)
        + section("Commands", others)
        + "\nGlobal Options:\n"
        + flag_usages(GLOBAL_FLAGS, terminal_cols())
        + f"\nRun '{PROG} COMMAND --help' for more information on a command.\n"
    )


def _group_usage(name: str) -> str:
    group = registry.GROUPS[name]
    return group_help(name, group.short, [(n, group.subcommands[n].short) for n in group.listed])


# Whether main_and_exit may skip Python's finalisation: not once the process
# was handed to the daemon or the registry, whose shutdown (atexit handlers,
# logging) is theirs.
_quick_exit = True


def _run_external(name: str, argv: list[str]) -> int:
    global _quick_exit
    _quick_exit = False
    module_name = registry.EXTERNAL[name][0]
    if sys.flags.no_site:
        # Started by install.sh's launcher (python -S, docs/cli-startup.md): the
        # client needs only the standard library, the daemon and the registry
        # need the venv's packages too.
        import site

        site.main()
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            sys.stderr.write(f"{PROG}: '{PROG} {name}' is not available: {module_name} is not installed\n")
            return 1
        raise
    return int(module.run(argv) or 0)


def _resolve(args: list[str]) -> tuple[Command, str, list[str]] | int:
    """Find the command named by ``args``; print help or an error and return a status otherwise."""
    name, rest = args[0], args[1:]
    if name == "help":
        return _help_topic(rest)
    entry = registry.TOP.get(name)
    if entry is not None:
        return registry.load(entry), name, rest
    group = registry.GROUPS.get(name)
    if group is None:
        raise CLIError(f"{PROG}: '{name}' is not a {PROG} command.\nSee '{PROG} --help'")
    if not rest:
        sys.stderr.write(_group_usage(name))
        return 0
    sub = rest[0]
    if sub.startswith("-") and sub != "-":
        if sub in ("--help", "-h"):
            sys.stdout.write(_group_usage(name))
            return 0
        try:
            parse_flags((), [sub])
        except FlagError as e:
            raise flag_error(str(e), name, _group_usage(name).lstrip("\n")) from None
    sub_entry = group.subcommands.get(sub)
    if sub_entry is None:
        raise CLIError("\n" + _group_usage(name).strip("\n"))
    cmd = registry.load(sub_entry)
    return cmd, f"{name} {cmd.name}", rest[1:]


def _help_topic(topic: list[str]) -> int:
    if not topic:
        sys.stdout.write(root_help())
        return 0
    if topic[0] in registry.TOP:
        cmd = registry.load(registry.TOP[topic[0]])
        if len(topic) == 1:
            sys.stdout.write(command_help(cmd, topic[0]))
            return 0
    elif topic[0] in registry.GROUPS:
        group = registry.GROUPS[topic[0]]
        if len(topic) == 1:
            sys.stdout.write(_group_usage(topic[0]))
            return 0
        if len(topic) == 2 and topic[1] in group.subcommands:
            cmd = registry.load(group.subcommands[topic[1]])
            sys.stdout.write(command_help(cmd, f"{topic[0]} {cmd.name}"))
            return 0
    raise CLIError(f"unknown help topic: {' '.join(topic)}")


def _endpoint(gopts: object) -> tuple[Endpoint, bool]:
    """The daemon's endpoint (cli/endpoint.py) and whether it is the default socket (which may be autostarted)."""
    from portside.cli import endpoint

    g: Any = gopts
    try:
        return endpoint.resolve(
            g.host, tls=g.tls, tlsverify=g.tlsverify if "tlsverify" in g.changed else None,
            tlscacert=g.tlscacert, tlscert=g.tlscert, tlskey=g.tlskey, portside_env=HOST_ENV,
        )
    except endpoint.EndpointError as e:
        raise CLIError(str(e)) from None


def run(argv: list[str]) -> int:
    try:
        gopts, args = parse_flags(GLOBAL_FLAGS, argv, interspersed=False)
    except HelpRequested:
        sys.stdout.write(root_help())
        return 0
    except FlagError as e:
        raise flag_error(str(e), "", root_help().lstrip("\n")) from None
    if gopts.version:
        sys.stdout.write(f"Portside version {__version__}\n")
        return 0
    if gopts.log_level.lower() not in LOG_LEVELS:
        raise CLIError(f"Unable to parse logging level: {gopts.log_level}")
    if not args:
        sys.stderr.write(root_help())
        return 0
    if args[0] in registry.EXTERNAL:
        return _run_external(args[0], args[1:])

    resolved = _resolve(args)
    if isinstance(resolved, int):
        return resolved
    cmd, path, rest = resolved
    try:
        opts, positional = parse_flags(cmd.flags, rest, interspersed=cmd.interspersed)
    except HelpRequested:
        sys.stdout.write(command_help(cmd, path))
        return 0
    except FlagError as e:
        raise flag_error(str(e), path) from None
    cmd.args.check(cmd, path, positional)

    host, is_default = _endpoint(gopts)
    ctx = Context(host=host, default_host=is_default, debug=gopts.debug or gopts.log_level == "debug")
    status = cmd.run(ctx, opts, positional)
    return int(status or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        status = run(argv)
        sys.stdout.flush()
        return status
    except StatusError as e:
        _flush_quietly()
        if e.status:
            sys.stderr.write(e.status + "\n")
        return e.code
    except Cancelled:
        _flush_quietly()
        return 0
    except CLIError as e:
        _flush_quietly()
        sys.stderr.write(f"{e}\n")
        return 1
    except KeyboardInterrupt:
        _flush_quietly()
        return 130
    except BrokenPipeError:
        # The reader went away (`portside images | head`): exit quietly, as Go does.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 1
    except Exception as e:  # noqa: BLE001 — the client's own errors and the daemon's
        from portside.cli.client import APIError, ConnectionFailed

        if isinstance(e, (APIError, ConnectionFailed, ValueError, OSError)):
            _flush_quietly()
            sys.stderr.write(f"{_describe(e)}\n")
            return 1
        raise


def main_and_exit() -> NoReturn:
    """The ``portside`` command: ``main()``, then out at once with its status.

    When ``main`` returns, every file the CLI opened is closed and only the
    standard streams may hold output: they are flushed, and the process ends
    without Python's finalisation (clearing every module, collecting
    garbage), which costs a ``portside run`` about as much as a request
    (docs/cli-startup.md). An exception ``main`` lets through is reported
    the usual way, and ``portside daemon`` and ``registry`` exit the usual
    way too.
    """
    status = main()
    if not _quick_exit:
        raise SystemExit(status)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise SystemExit(status) from None  # the interpreter's own exit says what went wrong, as always
    os._exit(status & 0xFF)


def _describe(e: Exception) -> str:
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.strerror[0].lower()}{e.strerror[1:]}: {e.filename}"
    return str(e)


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass


if __name__ == "__main__":
    main_and_exit()
