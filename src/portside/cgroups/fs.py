"""Reading and writing cgroup files, shared by both managers.

Every write is one ``write(2)`` of the whole value (the kernel parses each
write on its own). OSErrors become portside errors here, with the file and
the value in the message: the kernel answers a bad value with EINVAL, a limit
below current usage or a directory still in use with EBUSY.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable, Iterator

from portside.errors import Conflict, Internal, InvalidArgument, NotFound, PortsideError, Unavailable


def check_path(path: str) -> str:
    """A container's cgroup path ("portside/<id>"), relative to each hierarchy's root."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\0" in path or any(p in ("", ".", "..") for p in parts):
        raise InvalidArgument(f"invalid cgroup path {path!r}: want a relative path like portside/<id>")
    return path


def translate(err: OSError, action: str) -> PortsideError:
    message = f"{action}: {os.strerror(err.errno) if err.errno else err}"
    if err.errno in (errno.EINVAL, errno.ERANGE, errno.EOVERFLOW):
        return InvalidArgument(message)
    if err.errno == errno.EBUSY:
        return Conflict(message)
    if err.errno in (errno.ENOENT, errno.ESRCH):
        return NotFound(message)
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EAGAIN, errno.ENODEV):
        return Unavailable(message)
    return Internal(message)


def write(path: str, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise translate(e, f"open {path}") from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise translate(e, f"write {value!r} to {path}") from None
    finally:
        os.close(fd)


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise translate(e, f"read {path}") from None


def read_optional(path: str) -> str | None:
    """The file's text, or None where it does not exist (a controller not enabled or not mounted)."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise translate(e, f"read {path}") from None


def exists(path: str) -> bool:
    return os.path.exists(path)


def mkdir(path: str) -> bool:
    """Create one cgroup directory; False if it was there already."""
    try:
        os.mkdir(path, 0o755)
        return True
    except FileExistsError:
        return False
    except OSError as e:
        raise translate(e, f"mkdir {path}") from None


def cgroup_dirs(top: str) -> Iterator[str]:
    """``top`` and every cgroup below it, children before their parent."""
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        yield dirpath


def procs(top: str) -> list[int]:
    """Every process in ``top`` and the cgroups below it (a container may nest its own)."""
    found: set[int] = set()
    if not os.path.isdir(top):
        raise NotFound(f"cgroup {top} does not exist")
    for d in cgroup_dirs(top):
        text = read_optional(os.path.join(d, "cgroup.procs"))
        found.update(int(line) for line in (text or "").split())
    return sorted(found)


def add_pid(directory: str, pid: int) -> None:
    path = os.path.join(directory, "cgroup.procs")
    for attempt in range(5):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            raise translate(e, f"open {path}") from None
        try:
            os.write(fd, str(pid).encode())
            return
        except OSError as e:
            # A task still being forked (TASK_NEW) is refused with EINVAL for a moment (runc retries too).
            if e.errno == errno.EINVAL and attempt < 4:
                time.sleep(0.03)
                continue
            if e.errno == errno.ESRCH:
                raise NotFound(f"add process {pid} to {directory}: no such process") from None
            raise translate(e, f"add process {pid} to {directory}") from None
        finally:
            os.close(fd)


def rmdir_tree(top: str, *, timeout: float) -> None:
    """rmdir ``top`` and the cgroups below it, leaf first.

    A cgroup cannot be removed while a task is in it; processes that were just
    killed leave within milliseconds, so EBUSY is retried until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    for d in cgroup_dirs(top) if os.path.isdir(top) else ():
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                    left = procs(d) if e.errno == errno.EBUSY else []
                    raise translate(e, f"rmdir {d}" + (f" (processes still in it: {left})" if left else "")) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)


def rmdir_if_empty(d: str) -> None:
    """rmdir one cgroup unless something is in it (a process: EBUSY, a child cgroup: EBUSY or ENOTEMPTY)."""
    try:
        os.rmdir(d)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
            raise translate(e, f"rmdir {d}") from None


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not condition():
        if time.monotonic() >= deadline:
            raise Internal(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def flat_keyed(text: str | None) -> dict[str, int]:
    """ "key value" lines (memory.stat, cpu.stat, memory.events, oom_control) as a dict."""
    found: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            found[key] = int(value)
        except ValueError:
            continue
    return found


def to_int(text: str | None, *, unlimited: frozenset[str] = frozenset({"max"})) -> int | None:
    """A file holding one number; None for "max" and for a missing file."""
    if text is None:
        return None
    value = text.strip()
    if value in unlimited or not value:
        return None
    return int(value)
