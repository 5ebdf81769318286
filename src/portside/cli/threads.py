"""The CLI's threads, on ``_thread``.

An attached ``run`` pumps its streams, reads the wait result and relays
signals in threads of its own. ``threading`` would cost about as much to
import as the rest of the ``run`` path (functools, collections, weakref sets
come with it: docs/cli-startup.md), and the CLI needs little of it: daemon
threads, locks, and one-shot events, which ``_thread``'s locks make directly.
"""

from __future__ import annotations

import _thread
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

Lock = _thread.allocate_lock


def start(target: Callable[[], object], name: str) -> None:
    """Run ``target`` in a new thread; like a daemon thread, it does not keep the process alive."""
    _thread.start_new_thread(_run, (target, name))


def _run(target: Callable[[], object], name: str) -> None:
    threading = sys.modules.get("threading")
    if threading is not None:  # someone lists threads (a test, a debugger): show ours by name
        threading.current_thread().name = name
    target()


class Latch:
    """A one-shot event: ``set`` once (again is a no-op), waited for by any number of threads.

    threading.Event without ``clear``. The gate lock is held from creation
    until ``set``; a waiter acquires it and hands it straight back.
    """

    __slots__ = ("_gate", "_mutex", "_set")

    def __init__(self) -> None:
        self._gate = _thread.allocate_lock()
        self._gate.acquire()
        self._mutex = _thread.allocate_lock()
        self._set = False

    def set(self) -> None:
        with self._mutex:
            if self._set:
                return
            self._set = True
            self._gate.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False if ``timeout`` seconds passed first."""
        if self._set:
            return True
        if timeout is None:
            self._gate.acquire()
        elif not self._gate.acquire(True, max(timeout, 0)):
            return self._set  # set meanwhile, while another waiter held the gate
        self._gate.release()
        return True
