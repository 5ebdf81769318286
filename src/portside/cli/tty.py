"""The local terminal and signals, for commands that attach to a container.

* ``RawTerminal``: stdin in raw mode while a TTY session runs (moby/term's
  ``MakeRaw``: no echo, no line editing, no signals from keys, no output
  processing), restored on every way out.
* ``terminal_size``: (rows, columns) of a terminal, (0, 0) for anything else.
* ``detach_keys`` / ``EscapeProxy``: docker's detach sequence (ctrl-p ctrl-q
  by default), recognised in what the user types, as moby/term does.
* ``SignalRelay``: signals handled in a thread of ours. Python runs signal
  handlers in the main thread between bytecodes; a handler that makes an
  HTTP request there could interleave with whatever the main thread holds.
  Instead the C-level handler writes the signal number to a pipe
  (``set_wakeup_fd``) and a thread reads it and calls the callback:
  ``run`` forwards signals to the container (``POST /containers/{id}/kill``)
  and SIGWINCH to ``POST /containers/{id}/resize``.
"""

from __future__ import annotations

import os

from portside.cli import threads

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the same functions and numbers; typeshed has no _signal
    from collections.abc import Callable, Iterable
    from typing import Any
else:
    # _signal, not signal: signal.py wraps every constant and handler in enums
    # at import, a cost `portside run` would pay for nothing; the numbers are
    # what the relay needs (docs/cli-startup.md).
    import _signal

# moby/term's ASCII table: the names --detach-keys accepts for control characters.
_CONTROL_NAMES = ["ctrl-@", *(f"ctrl-{c}" for c in "abcdefghijklmnopqrstuvwxyz"), "ctrl-[", "ctrl-\\", "ctrl-]",
                  "ctrl-^", "ctrl-_"]
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q


def detach_keys(spec: str) -> bytes:
    """term.ToBytes: ``ctrl-p,ctrl-q`` -> b"\\x10\\x11"; single characters stand for themselves."""
    codes = bytearray()
    for key in spec.split(","):
        if len(key) == 1:
            codes += key.encode("latin-1", "replace")[:1]
        elif key in _CONTROL_NAMES:
            codes.append(_CONTROL_NAMES.index(key))
        elif key == "DEL":
            codes.append(127)
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(codes)


class EscapeProxy:
    """Finds the detach sequence in typed input (moby/term's escapeProxy, without I/O).

    Bytes that could start the sequence are held back; if the next bytes do
    not continue it they are passed on after all. When the whole sequence
    has been typed, ``feed`` reports it and the sequence is never sent.
    """

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._matched = 0  # how many bytes of keys the held-back input matches

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """The bytes to send now, and whether the detach sequence is complete."""
        if not self.keys:
            return data, False
        out = bytearray()
        for i, byte in enumerate(data):
            if byte == self.keys[self._matched]:
                self._matched += 1
                if self._matched == len(self.keys):
                    self._matched = 0
                    return bytes(out), True
                continue
            if self._matched:
                out += self.keys[: self._matched]
                self._matched = 0
                if byte == self.keys[0]:
                    self._matched = 1
                    if len(self.keys) == 1:
                        return bytes(out), True
                    continue
            out.append(byte)
        return bytes(out), False


def is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def terminal_size(fd: int) -> tuple[int, int]:
    """(rows, columns) of the terminal on ``fd``; (0, 0) when ``fd`` is no terminal."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 0, 0
    return size.lines, size.columns


class RawTerminal:
    """``with RawTerminal(fd):`` the terminal on ``fd`` in raw mode for the block (nothing happens if it is none).

    A class, not a contextlib.contextmanager: contextlib is not worth its
    import to the commands that load this module.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list[Any] | None = None

    def __enter__(self) -> RawTerminal:
        self._saved = _make_raw(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        saved, self._saved = self._saved, None
        if saved is None:
            return
        import termios

        try:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
        except (termios.error, OSError):
            pass


def _make_raw(fd: int) -> list[Any] | None:
    """Set raw mode on ``fd``; the attributes to restore, None if ``fd`` is no terminal."""
    import termios

    try:
        saved = termios.tcgetattr(fd)
    except (termios.error, OSError):
        return None
    mode = termios.tcgetattr(fd)
    iflag, oflag, cflag, lflag = 0, 1, 2, 3
    mode[iflag] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                     | termios.IGNCR | termios.ICRNL | termios.IXON)
    mode[oflag] &= ~termios.OPOST  # the container's pty already turns "\n" into "\r\n"
    mode[lflag] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    mode[cflag] &= ~(termios.CSIZE | termios.PARENB)
    mode[cflag] |= termios.CS8
    mode[6][termios.VMIN] = 1
    mode[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSADRAIN, mode)
    return saved


# Signals the docker CLI forwards to the container (it catches all and skips
# SIGCHLD, SIGPIPE and the Go runtime's SIGURG); those a process can catch
# and that are not about the CLI's own terminal handling.
FORWARDED_SIGNALS = (
    _signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2, _signal.SIGALRM,
    _signal.SIGTERM, _signal.SIGCONT, _signal.SIGTSTP, _signal.SIGTTIN, _signal.SIGTTOU, _signal.SIGXCPU,
    _signal.SIGXFSZ, _signal.SIGVTALRM, _signal.SIGPROF, _signal.SIGIO, _signal.SIGPWR, _signal.SIGSYS,
    _signal.SIGTRAP, _signal.SIGABRT,
)
SIGWINCH = _signal.SIGWINCH


def signal_name(signum: int) -> str:
    """The name ``POST /containers/{id}/kill?signal=`` takes: ``INT``, ``TERM``, ``RTMIN+3``."""
    if _signal.SIGRTMIN < signum <= _signal.SIGRTMAX:
        return f"RTMIN+{signum - _signal.SIGRTMIN}"
    import signal  # its names, once a signal has come

    return signal.Signals(signum).name.removeprefix("SIG")


class SignalRelay:
    """Call ``callback(signum)`` in a thread for each of ``signals`` received, while started.

    Must be started and stopped from the main thread (Python installs
    handlers only there: started elsewhere, it relays nothing). Signals not
    in the set keep their handlers.
    """

    def __init__(self, signals: Iterable[int], callback: Callable[[int], None]) -> None:
        self.signals = tuple(signals)
        self.callback = callback
        self._saved: dict[int, object] = {}
        self._old_wakeup = -1
        self._pipe: tuple[int, int] | None = None
        self._stopped = threads.Latch()  # set when the relay thread has ended

    def start(self) -> SignalRelay:
        if not self.signals:
            return self
        r, w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(w, False)
        try:
            self._old_wakeup = _signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        except ValueError:  # not the main thread: no relay
            os.close(r)
            os.close(w)
            return self
        self._pipe = (r, w)
        for signum in self.signals:
            # A Python-level handler must exist for the wakeup byte to be written.
            self._saved[signum] = _signal.signal(signum, _ignore)
        threads.start(self._relay, "signal-relay")
        return self

    def _relay(self) -> None:
        assert self._pipe is not None
        r = self._pipe[0]
        try:
            while True:
                try:
                    data = os.read(r, 64)
                except OSError:
                    return
                if not data:
                    return
                for signum in data:
                    if signum in self.signals:
                        try:
                            self.callback(signum)
                        except Exception:  # noqa: BLE001 — a failed forward must not end the relay
                            pass
        finally:
            self._stopped.set()

    def stop(self) -> None:
        if self._pipe is None:
            return
        for signum, handler in self._saved.items():
            _signal.signal(signum, handler)  # type: ignore[arg-type]
        _signal.set_wakeup_fd(self._old_wakeup)
        os.close(self._pipe[1])  # the relay thread reads EOF and ends
        self._stopped.wait(timeout=5)
        os.close(self._pipe[0])
        self._pipe = None

    def __enter__(self) -> SignalRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ignore(signum: int, frame: object) -> None:
    """The Python-level handler of relayed signals: the relay thread does the work."""
