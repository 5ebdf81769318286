"""The commands that attach to a container: ``run``, ``create``, ``start``, ``attach``, ``exec``.

After docker/cli ``run.go``, ``create.go``, ``start.go``, ``attach.go`` and
``exec.go``. ``portside run busybox echo hi`` is, in this order (the order
matters, see docs/engine-api.md)::

    POST /containers/create            (404 "No such image": pull, create again)
    POST /containers/{id}/attach       hijacked, before start: no output is lost
    POST /containers/{id}/wait         the daemon answers its headers at once;
                                       the body comes at exit
    POST /containers/{id}/start
    ... output on the attach connection until the daemon closes it ...
    exit with the StatusCode of the wait

``run -d`` skips the attach, prints the ID and leaves after start.
Signals the CLI receives are forwarded (``POST /containers/{id}/kill``)
unless ``--sig-proxy=false``; with ``-t`` the terminal is raw, resized on
SIGWINCH, and the detach keys end the session without stopping the container.

Exit statuses follow docker's: a flag error or a refusal by the daemon is 125
(``run`` only; ``create`` says 1 like other commands), a command that cannot
be found in the container 127, one that cannot be executed 126; otherwise
the container's own status.
"""

from __future__ import annotations

import os
import time

from portside.cli import jsonwire, runopts, threads
from portside.cli.commands.base import (
    BOOL,
    LIST,
    PROG,
    STRING,
    Args,
    CLIError,
    Command,
    Context,
    Flag,
    Options,
    StatusError,
    flag_error,
)

# typing and collections.abc for mypy only: every `portside run` imports this module (docs/cli-startup.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from portside.cli.client import Client
    from portside.cli.hijack import HijackedConnection, Streamer

_ONE_OR_MORE = Args(1)
# moby/term's EscapeError: `run` and `start` treat it as a clean end, `attach` and `exec` report it.
_DETACHED = "read escape sequence"


# ---------------------------------------------------------------------------
# Shared pieces


def _stream_writer(stream: Any) -> Callable[[bytes], None]:
    """Binary, unbuffered writes to a text stream's file (output must show as it arrives)."""
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        def write_text(data: bytes) -> None:
            stream.write(data.decode("utf-8", "replace"))
            stream.flush()

        return write_text

    def write(data: bytes) -> None:
        buffer.write(data)
        buffer.flush()

    return write


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


def _is_terminal(stream: Any) -> bool:
    fd = _fileno(stream)
    return fd is not None and os.isatty(fd)


def _check_tty(ctx: Context, attach_stdin: bool, tty: bool) -> None:
    """streams.In.CheckTty: a container TTY needs a terminal on our stdin to type into."""
    if tty and attach_stdin and not _is_terminal(ctx.stdin):
        raise CLIError("the input device is not a TTY")


class Waiter:
    """``POST /containers/{id}/wait``, asked before start, answered at exit.

    The request returns once the daemon sent its headers (it must send them at
    once), so the daemon knows of the waiter before the container starts; a
    thread then reads the body. ``status`` is the exit status, 125 when the
    wait failed (as docker's waitExitOrRemoved). ``close`` ends the wait at
    any time (``run -d`` drops it after start).
    """

    def __init__(self, client: Client, container: str, condition: str, notify: threads.Latch | None = None) -> None:
        from portside.cli.hijack import raw_request

        query = [("condition", condition)] if condition else None
        self._resp = raw_request(client, "POST", f"/containers/{container}/wait", query)
        if self._resp.status >= 400:
            error = self._resp.error()
            self._resp.close()
            raise error
        self._notify = notify
        self._done = threads.Latch()
        self.status = 125
        self.error = ""
        threads.start(self._read, "wait")

    def _read(self) -> None:
        try:
            body = jsonwire.loads(self._resp.read_body() or b"{}") or {}
            error = body.get("Error") or {}
            if error and error.get("Message"):
                self.error = str(error["Message"])
            else:
                self.status = int(body.get("StatusCode", 125))
        except Exception as e:  # noqa: BLE001 — a broken wait is status 125, as in docker
            self.error = str(e) or type(e).__name__
        finally:
            self._done.set()
            if self._notify is not None:
                self._notify.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> int | None:
        if not self._done.wait(timeout):
            return None
        return self.status

    def close(self) -> None:
        self._resp.close()


def _attach_query(*, stdin: bool, stdout: bool, stderr: bool, detach_keys: str) -> list[tuple[str, str]]:
    """The attach query as moby's client sends it (url.Values: sorted keys)."""
    query = [("stream", "1")]
    if stdin:
        query.append(("stdin", "1"))
    if stdout:
        query.append(("stdout", "1"))
    if stderr:
        query.append(("stderr", "1"))
    if detach_keys:
        query.append(("detachKeys", detach_keys))
    return sorted(query)


class Session:
    """One attached stream: the hijacked connection, the pump, the raw terminal.

    ``tty`` raw mode is taken on our stdin only when stdin is attached and is
    a terminal, and given back as soon as the output ends (so that messages
    printed after are readable) or when the session closes.
    """

    def __init__(
        self,
        ctx: Context,
        conn: HijackedConnection,
        *,
        tty: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        detach_keys: str,
        notify: threads.Latch,
    ) -> None:
        from portside.cli import tty as term
        from portside.cli.hijack import Streamer

        self._raw: Any = None
        escape = None
        stdin_fd = _fileno(ctx.stdin) if stdin else None
        if stdin and tty:
            keys = term.DEFAULT_DETACH_KEYS
            if detach_keys:
                try:
                    keys = term.detach_keys(detach_keys)
                except ValueError as e:
                    ctx.err(f"WARNING: invalid detach escape keys, using default: {e}\n")
            escape = term.EscapeProxy(keys)
            if stdin_fd is not None and os.isatty(stdin_fd):
                self._raw = term.RawTerminal(stdin_fd)
                self._raw.__enter__()
        out = _stream_writer(ctx.stdout) if stdout else None
        # With a TTY there is one stream; what the container writes to stderr comes on it.
        err = (out if tty else _stream_writer(ctx.stderr)) if stderr else None
        self._restore_lock = threads.Lock()
        self.streamer: Streamer = Streamer(
            conn, tty=tty, stdin_fd=stdin_fd, stdout=out, stderr=err, escape=escape, on_output_end=self.restore,
            notify=notify,
        )
        self.streamer.start()

    @property
    def done(self) -> bool:
        return self.streamer.done

    def restore(self) -> None:
        with self._restore_lock:
            raw, self._raw = self._raw, None
        if raw is not None:
            raw.__exit__(None, None, None)

    def close(self) -> None:
        self.streamer.close()
        self.restore()


class SizeMonitor:
    """Keeps the container's TTY the size of ours: once after start (retried), then on SIGWINCH."""

    def __init__(self, ctx: Context, path: str) -> None:
        self.ctx = ctx
        self.path = path  # /containers/{id}/resize or /exec/{id}/resize

    def resize(self, grow: int = 0) -> bool:
        from portside.cli.client import APIError
        from portside.cli.tty import terminal_size

        fd = _fileno(self.ctx.stdout)
        rows, cols = terminal_size(fd) if fd is not None else (0, 0)
        rows, cols = rows + grow, cols + grow
        if not rows and not cols:
            return True
        query = [("h", str(rows)), ("w", str(cols))]
        try:
            self.ctx.client.request("POST", self.path, query).read()
        except (APIError, OSError, ValueError):
            return False
        except Exception:  # noqa: BLE001 — ConnectionFailed and the like: retried
            return False
        return True

    def initial(self) -> None:
        if self.resize():
            return

        def retry() -> None:
            for attempt in range(10):
                time.sleep((attempt + 1) * 0.01)
                if self.resize():
                    return
            self.ctx.err("failed to resize tty, using default size\n")

        threads.start(retry, "resize")


def _signal_handler(ctx: Context, container: str, size: list[SizeMonitor]) -> Callable[[int], None]:
    """What the relay does with a signal: SIGWINCH resizes, the others are sent to the container."""
    from portside.cli.tty import SIGWINCH, signal_name

    def handle(signum: int) -> None:
        if signum == SIGWINCH:
            for monitor in size:
                monitor.resize()
            return
        try:
            ctx.client.request("POST", f"/containers/{container}/kill", [("signal", signal_name(signum))]).read()
        except Exception:  # noqa: BLE001 — docker only logs a failed forward (debug level)
            pass

    return handle


def _relay(ctx: Context, container: str, *, forward: bool, tty: bool, size: list[SizeMonitor]) -> Any:
    """A started SignalRelay for the session (forwarded signals, SIGWINCH), or None."""
    from portside.cli.tty import FORWARDED_SIGNALS, SIGWINCH, SignalRelay

    signals: list[int] = list(FORWARDED_SIGNALS) if forward else []
    if tty and _is_terminal(ctx.stdout):
        signals.append(SIGWINCH)
    if not signals:
        return None
    return SignalRelay(signals, _signal_handler(ctx, container, size)).start()


# ---------------------------------------------------------------------------
# create (and the create step of run)


def _parse_request(ctx: Context, opts: Options, args: list[str], command: str) -> runopts.CreateRequest:
    from portside.cli.tty import terminal_size

    fd = _fileno(ctx.stdout)
    try:
        return runopts.parse(
            opts,
            args,
            environ=os.environ,
            cwd=os.getcwd(),
            console_size=terminal_size(fd) if fd is not None else (0, 0),
        )
    except runopts.FlagValueError as e:
        raise flag_error(str(e), command) from None
    except runopts.OptionsError as e:
        raise StatusError(f"{PROG}: {e}\nSee '{PROG} {command} --help'.", 125) from None


class _CIDFile:
    """--cidfile: refused if it exists, created before the request, removed if no ID was written."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file: Any = None
        self.written = False
        if not path:
            return
        if os.path.exists(path):
            raise CLIError(f"container ID file found, make sure the other container isn't running or delete {path}")
        try:
            self.file = open(path, "x")
        except OSError as e:
            raise CLIError(f"failed to create the container ID file: {e}") from None

    def write(self, container_id: str) -> None:
        if self.file is None:
            return
        try:
            self.file.write(container_id)
            self.file.flush()
        except OSError as e:
            raise CLIError(f"failed to write the container ID ({container_id}) to file: {e}") from None
        self.written = True

    def close(self) -> None:
        if self.file is None:
            return
        self.file.close()
        if not self.written:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass


def _pull(ctx: Context, image: str, req: runopts.CreateRequest) -> None:
    """``POST /images/create?fromImage=&tag=`` with config.json's credentials, progress on stderr (docker's pullImage)."""
    from portside.cli.commands import distribution

    distribution.pull(ctx, image, platform=req.platform, quiet=req.quiet, write=ctx.err)


def _check_image(image: str) -> None:
    """docker's ParseAnyReference before the create request: a name it refuses is refused here."""
    from portside.cli.commands import reference

    try:
        reference.check_any(image)
    except reference.ReferenceError as e:
        raise CLIError(str(e)) from None


def _named_for_pull(image: str) -> str | None:
    """The image as ``Unable to find image '...'`` names it (name:tag), None for an ID or digest-only value."""
    from portside.cli.commands import reference

    try:
        ref = reference.parse_any(image)
    except reference.ReferenceError as e:
        raise CLIError(str(e)) from None
    if isinstance(ref, str):
        return None
    if ref.tag is None and ref.digest is None:
        return f"{ref.familiar_name()}:latest"
    return ref.familiar()


def _validate_platform(platform: str) -> None:
    if platform and (platform.count("/") > 2 or not all(platform.split("/"))):
        raise CLIError(
            f'error parsing specified platform: "{platform}": cannot parse platform specifier: invalid argument'
        )


def create_container(ctx: Context, req: runopts.CreateRequest) -> str:
    """Create the container (pulling its image when missing); print warnings; the new ID.

    Raises CLIError or APIError with docker's text; the caller decides the status.
    """
    from portside.cli.client import APIError

    _validate_platform(req.platform)
    cidfile = _CIDFile(req.cidfile)
    try:
        _check_image(req.image)
        if req.pull == runopts.PULL_ALWAYS:
            _pull(ctx, req.image, req)

        def send() -> Any:
            return ctx.client.post_json("/containers/create", req.query(), req.body)

        try:
            created = send()
        except APIError as e:
            if not (e.status == 404 and "No such image" in e.message and req.pull == runopts.PULL_MISSING):
                raise
            named = _named_for_pull(req.image)
            if not named:
                raise
            if not req.quiet:
                ctx.err(f"Unable to find image '{named}' locally\n")
            _pull(ctx, req.image, req)
            created = send()
        for warning in created.get("Warnings") or []:
            ctx.err(f"WARNING: {warning}\n")
        container_id = str(created["Id"])
        cidfile.write(container_id)
        return container_id
    finally:
        cidfile.close()


def run_create(ctx: Context, opts: Options, args: list[str]) -> int:
    req = _parse_request(ctx, opts, args, "create")
    ctx.out(create_container(ctx, req) + "\n")
    return 0


# ---------------------------------------------------------------------------
# run


def _run_error(e: Exception) -> StatusError:
    """docker's toStatusError: what failed decides the status (127 not found, 126 not executable, else 125)."""
    message = str(e)
    code = 125
    if any(s in message for s in ("executable file not found", "no such file or directory",
                                  "system cannot find the file specified")):
        code = 127
    elif "permission denied" in message or "is a directory" in message:
        code = 126
    return StatusError(f"{PROG}: {message}\nSee '{PROG} run --help'.", code)


def run_run(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError

    req = _parse_request(ctx, opts, args, "run")
    if opts.detach:
        if opts.attach:
            raise CLIError("conflicting options: cannot specify both --attach and --detach")
        req = req.detached()
    else:
        _check_tty(ctx, req.attach_stdin, req.tty)

    try:
        container = create_container(ctx, req)
    except (APIError, CLIError) as e:
        raise _run_error(e) from None

    size: list[SizeMonitor] = []
    relay = _relay(ctx, container, forward=opts.sig_proxy, tty=req.tty, size=size)
    try:
        return _run_container(ctx, container, req, opts.detach_keys, size)
    finally:
        if relay is not None:
            relay.stop()


def _run_container(
    ctx: Context, container: str, req: runopts.CreateRequest, detach_keys: str, size: list[SizeMonitor]
) -> int:
    from portside.cli.client import APIError
    from portside.cli.hijack import hijack

    attach = req.attach_stdin or req.attach_stdout or req.attach_stderr
    notify = threads.Latch()
    session: Session | None = None
    if attach:
        conn = hijack(
            ctx.client,
            f"/containers/{container}/attach",
            _attach_query(stdin=req.attach_stdin, stdout=req.attach_stdout, stderr=req.attach_stderr,
                          detach_keys=detach_keys),
        )
        session = Session(ctx, conn, tty=req.tty, stdin=req.attach_stdin, stdout=req.attach_stdout,
                          stderr=req.attach_stderr, detach_keys=detach_keys, notify=notify)
    try:
        waiter = Waiter(ctx.client, container, "removed" if req.auto_remove else "next-exit", notify)
        if not attach:
            ctx.out(container + "\n")
            ctx.stdout.flush()
        try:
            ctx.client.request("POST", f"/containers/{container}/start").read()
        except APIError as e:
            if session is not None:
                session.close()
            if req.auto_remove:
                waiter.result(timeout=30)  # docker waits for the removal before it reports
            raise _run_error(e) from None
        if session is None:
            waiter.close()
            return 0

        if req.tty and _is_terminal(ctx.stdout):
            monitor = SizeMonitor(ctx, f"/containers/{container}/resize")
            size.append(monitor)
            monitor.initial()

        notify.wait()  # the stream or the wait, whichever ends first (each sets it when done)
        if session.done and not waiter.done:
            result = session.streamer.result
            if result.detached:
                return 0
            if result.error:
                raise CLIError(result.error)
            status = waiter.result()
        else:
            status = waiter.result()
            if not req.attach_stdout and not req.attach_stderr:
                session.close()
            session.streamer.wait()  # the output the daemon still has to send
        if waiter.error:
            ctx.err(f"Error waiting for container: {waiter.error}\n")
        return status if status is not None else 125
    finally:
        if session is not None:
            session.restore()


# ---------------------------------------------------------------------------
# start


def _inspect(ctx: Context, container: str) -> dict[str, Any]:
    data: dict[str, Any] = ctx.client.get_json(f"/containers/{container}/json")
    return data


def run_start(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError

    if not (opts.attach or opts.interactive):
        failed = []
        for name in args:
            try:
                ctx.client.request("POST", f"/containers/{name}/start").read()
            except APIError as e:
                ctx.err(f"{e}\n")
                failed.append(name)
                continue
            ctx.out(name + "\n")
        if failed:
            raise CLIError(f"Error: failed to start containers: {', '.join(failed)}")
        return 0

    if len(args) > 1:
        raise CLIError("you cannot start and attach multiple containers at once")
    info = _inspect(ctx, args[0])
    container = info["Id"]
    config = info.get("Config") or {}
    host_config = info.get("HostConfig") or {}
    tty = bool(config.get("Tty"))
    stdin = bool(opts.interactive and config.get("OpenStdin"))
    size: list[SizeMonitor] = []
    relay = _relay(ctx, container, forward=not tty, tty=tty, size=size)
    notify = threads.Latch()
    session: Session | None = None
    try:
        conn = _hijack_attach(ctx, container, stdin=stdin, detach_keys=opts.detach_keys)
        session = Session(ctx, conn, tty=tty, stdin=stdin, stdout=True, stderr=True,
                          detach_keys=opts.detach_keys, notify=notify)
        waiter = Waiter(ctx.client, container, "removed" if host_config.get("AutoRemove") else "next-exit", notify)
        try:
            ctx.client.request("POST", f"/containers/{container}/start").read()
        except APIError:
            session.close()
            if host_config.get("AutoRemove"):
                waiter.result(timeout=30)
            raise
        if tty and _is_terminal(ctx.stdout):
            monitor = SizeMonitor(ctx, f"/containers/{container}/resize")
            size.append(monitor)
            monitor.initial()
        session.streamer.wait()
        result = session.streamer.result
        if result.detached:
            return 0
        if result.error:
            raise CLIError(result.error)
        status = waiter.result()
        return status if status is not None else 125
    finally:
        if session is not None:
            session.restore()
        if relay is not None:
            relay.stop()


def _hijack_attach(ctx: Context, container: str, *, stdin: bool, detach_keys: str) -> HijackedConnection:
    from portside.cli.hijack import hijack

    query = _attach_query(stdin=stdin, stdout=True, stderr=True, detach_keys=detach_keys)
    return hijack(ctx.client, f"/containers/{container}/attach", query)


# ---------------------------------------------------------------------------
# attach


def _check_attachable(info: dict[str, Any]) -> None:
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CLIError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CLIError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise CLIError("You cannot attach to a restarting container, wait until it is running")


def run_attach(ctx: Context, opts: Options, args: list[str]) -> int:
    container = args[0]
    notify = threads.Latch()
    waiter = Waiter(ctx.client, container, "", notify)
    info = _inspect(ctx, container)
    _check_attachable(info)
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    _check_tty(ctx, not opts.no_stdin, tty)
    stdin = not opts.no_stdin and bool(config.get("OpenStdin"))
    size: list[SizeMonitor] = []
    relay = _relay(ctx, container, forward=opts.sig_proxy and not tty, tty=tty, size=size)
    session: Session | None = None
    try:
        conn = _hijack_attach(ctx, container, stdin=stdin, detach_keys=opts.detach_keys)
        _check_attachable(_inspect(ctx, container))
        session = Session(ctx, conn, tty=tty, stdin=stdin, stdout=True, stderr=True,
                          detach_keys=opts.detach_keys, notify=notify)
        if tty and _is_terminal(ctx.stdout):
            monitor = SizeMonitor(ctx, f"/containers/{container}/resize")
            size.append(monitor)
            # One size off, then the right one: the program in the container sees a
            # change and redraws (a shell prints its prompt again), as with docker.
            monitor.resize(grow=1)
            monitor.initial()
        session.streamer.wait()
        result = session.streamer.result
        if result.detached:
            raise CLIError(_DETACHED)  # docker attach reports the escape as an error
        if result.error:
            raise CLIError(result.error)
        status = waiter.result()
        if waiter.error:
            raise CLIError(waiter.error)
        return status if status is not None else 125
    finally:
        if session is not None:
            session.restore()
        if relay is not None:
            relay.stop()


# ---------------------------------------------------------------------------
# exec


def run_exec(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.hijack import hijack
    from portside.cli.tty import terminal_size

    container, cmd = args[0], args[1:]
    try:
        env = runopts.exec_env(opts, environ=os.environ, cwd=os.getcwd())
    except runopts.FlagValueError as e:
        raise flag_error(str(e), "exec") from None
    except runopts.OptionsError as e:
        raise CLIError(str(e)) from None
    detach = opts.detach
    attach_stdin = opts.interactive and not detach
    _inspect(ctx, container)  # "No such container" comes before anything else
    if not detach:
        _check_tty(ctx, attach_stdin, opts.tty)
    body: dict[str, Any] = {"User": opts.user, "Privileged": opts.privileged, "Tty": opts.tty}
    console: list[int] | None = None
    if opts.tty:
        fd = _fileno(ctx.stdout)
        console = list(terminal_size(fd)) if fd is not None else [0, 0]
        body["ConsoleSize"] = console
    body.update(
        {
            "AttachStdin": attach_stdin,
            "AttachStderr": not detach,
            "AttachStdout": not detach,
            "Detach": detach,
            "DetachKeys": opts.detach_keys,
            "Env": env,
            "WorkingDir": opts.workdir,
            "Cmd": cmd,
        }
    )
    exec_id = str(ctx.client.post_json(f"/containers/{container}/exec", None, body).get("Id") or "")
    if not exec_id:
        raise CLIError("exec ID empty")
    start: dict[str, Any] = {"Detach": detach, "Tty": opts.tty}
    if console is not None:
        start["ConsoleSize"] = console
    if detach:
        ctx.client.request("POST", f"/exec/{exec_id}/start", body=_json(start),
                           headers={"Content-Type": "application/json"}).read()
        return 0

    notify = threads.Latch()
    conn = hijack(ctx.client, f"/exec/{exec_id}/start", None, start)
    session = Session(ctx, conn, tty=opts.tty, stdin=attach_stdin, stdout=True, stderr=True,
                      detach_keys=opts.detach_keys, notify=notify)
    relay = None
    try:
        if opts.tty and _is_terminal(ctx.stdin):
            monitor = SizeMonitor(ctx, f"/exec/{exec_id}/resize")
            relay = _relay(ctx, container, forward=False, tty=True, size=[monitor])
            monitor.initial()
        session.streamer.wait()
        result = session.streamer.result
        if result.detached:
            raise CLIError(_DETACHED)
        if result.error:
            raise CLIError(result.error)
    finally:
        session.restore()
        if relay is not None:
            relay.stop()
    inspect = ctx.client.get_json(f"/exec/{exec_id}/json") or {}
    return int(inspect.get("ExitCode") or 0)


def _json(value: Any) -> bytes:
    return jsonwire.dumps(value).encode()


# ---------------------------------------------------------------------------
# The commands

_DETACH_KEYS = Flag("detach-keys", None, STRING, "Override the key sequence for detaching a container")

RUN = Command(
    use="run [OPTIONS] IMAGE [COMMAND] [ARG...]",
    short="Create and run a new container from an image",
    run=run_run,
    args=_ONE_OR_MORE,
    flags=runopts.RUN_FLAGS,
    interspersed=False,
    aliases="portside container run, portside run",
)
CONTAINER_RUN = RUN

CREATE = Command(
    use="create [OPTIONS] IMAGE [COMMAND] [ARG...]",
    short="Create a new container",
    run=run_create,
    args=_ONE_OR_MORE,
    flags=runopts.CREATE_FLAGS,
    interspersed=False,
    aliases="portside container create, portside create",
)
CONTAINER_CREATE = CREATE

START = Command(
    use="start [OPTIONS] CONTAINER [CONTAINER...]",
    short="Start one or more stopped containers",
    run=run_start,
    args=_ONE_OR_MORE,
    flags=(
        Flag("attach", "a", BOOL, "Attach STDOUT/STDERR and forward signals"),
        _DETACH_KEYS,
        Flag("interactive", "i", BOOL, "Attach container's STDIN"),
    ),
    aliases="portside container start, portside start",
)
CONTAINER_START = START

ATTACH = Command(
    use="attach [OPTIONS] CONTAINER",
    short="Attach local standard input, output, and error streams to a running container",
    run=run_attach,
    args=Args(1, 1),
    flags=(
        _DETACH_KEYS,
        Flag("no-stdin", None, BOOL, "Do not attach STDIN"),
        Flag("sig-proxy", None, BOOL, "Proxy all received signals to the process", default=True),
    ),
    aliases="portside container attach, portside attach",
)
CONTAINER_ATTACH = ATTACH

EXEC = Command(
    use="exec [OPTIONS] CONTAINER COMMAND [ARG...]",
    short="Execute a command in a running container",
    run=run_exec,
    args=Args(2),
    flags=(
        Flag("detach", "d", BOOL, "Detached mode: run command in the background"),
        _DETACH_KEYS,
        Flag("env", "e", LIST, "Set environment variables"),
        Flag("env-file", None, LIST, "Read in a file of environment variables"),
        Flag("interactive", "i", BOOL, "Keep STDIN open even if not attached"),
        Flag("privileged", None, BOOL, "Give extended privileges to the command"),
        Flag("tty", "t", BOOL, "Allocate a pseudo-TTY"),
        Flag("user", "u", STRING, 'Username or UID (format: "<name|uid>[:<group|gid>]")'),
        Flag("workdir", "w", STRING, "Working directory inside the container"),
    ),
    interspersed=False,
    aliases="portside container exec, portside exec",
)
CONTAINER_EXEC = EXEC
