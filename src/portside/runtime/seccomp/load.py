"""Install a compiled seccomp program in the calling process.

Where this sits in the container init matters, and the order is a security
property:

1. ``no_new_privs`` first, when asked for: the kernel lets a process
   without CAP_SYS_ADMIN install a filter only under no_new_privs (so a
   filter cannot be used to confuse a setuid program it later executes).
2. The filter as late as possible: everything the init itself still has to
   do (mounts, pivot_root, sethostname, ...) may be calls the profile
   refuses. runc installs it right before dropping capabilities when it
   needs CAP_SYS_ADMIN for it, otherwise right before execve.
3. A filter binds the calling thread and every child it creates from then
   on. Call this in the single-threaded container child; with other threads
   alive, pass SECCOMP_FILTER_FLAG_TSYNC or they stay unfiltered.

Errors keep the errno and name the call:
``OSError(EACCES, "seccomp(SET_MODE_FILTER): Permission denied ...")``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from typing import Final

from portside.runtime.seccomp import syscall_table
from portside.runtime.seccomp.bpf import Program, encode

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

SYS_SECCOMP = syscall_table.X86_64["seccomp"]
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_SET_NO_NEW_PRIVS = 38

# --security-opt seccomp=unconfined: no program, nothing installed
UNCONFINED: Final = None


class _SockFprog(ctypes.Structure):
    """``struct sock_fprog``: the program's length and a pointer to its instructions."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def set_no_new_privs() -> None:
    """``prctl(PR_SET_NO_NEW_PRIVS, 1)``: execve can no longer grant privileges (setuid bits, file capabilities)."""
    if _libc.prctl(ctypes.c_int(PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0),
                   ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")


def install(program: Program | None, *, no_new_privs: bool, flags: int = 0) -> None:
    """Set no_new_privs if asked, then load ``program`` as this thread's seccomp filter.

    ``program`` None (:data:`UNCONFINED`) installs no filter. ``flags`` are
    SECCOMP_FILTER_FLAG_* bits (see :func:`~portside.runtime.seccomp.bpf.flag_bits`).
    Filters stack: a second call adds a filter, the strictest verdict wins.
    """
    if no_new_privs:
        set_no_new_privs()
    if program is None:
        return
    code = ctypes.create_string_buffer(encode(program), len(program) * 8)
    fprog = _SockFprog(len(program), ctypes.addressof(code))
    ret = _libc.syscall(ctypes.c_long(SYS_SECCOMP), ctypes.c_long(SECCOMP_SET_MODE_FILTER), ctypes.c_long(flags),
                        ctypes.byref(fprog))
    if ret == 0:
        return
    if ret > 0:  # with TSYNC, the id of a thread that could not take the filter
        raise OSError(errno.EBUSY, f"seccomp(SET_MODE_FILTER): thread {ret} cannot be synchronized")
    err = ctypes.get_errno()
    if err == errno.ENOSYS and flags == 0:
        # a kernel before 3.17, or a parent filter refusing seccomp(2): prctl installs the same filter
        if _libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0:
            return
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP): {os.strerror(err)}{_hint(err)}")
    raise OSError(err, f"seccomp(SET_MODE_FILTER): {os.strerror(err)}{_hint(err)}")


def _hint(err: int) -> str:
    if err == errno.EACCES:
        return " (no_new_privs is not set and the caller lacks CAP_SYS_ADMIN)"
    if err == errno.EINVAL:
        return " (the kernel refused the program or a flag)"
    return ""
