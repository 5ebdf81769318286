"""Seccomp filters loaded into real (forked) processes: what the kernel then refuses and allows.

Each test forks a child, installs a program in it, makes system calls
through libc's ``syscall()``, and sends what happened back through a pipe.
Every call a filter should refuse is made with arguments the kernel would
reject anyway (a NULL path, a bad magic number, an invalid flag mix), so
nothing happens even if the filter let it through.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import json
import mmap
import os
import resource
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from portside.runtime.seccomp import (
    DEFAULT_CAPABILITIES, UNCONFINED, compile_profile, default_profile, flag_bits, install, parse_profile,
)
from portside.runtime.seccomp.bpf import Program
from portside.runtime.seccomp.syscalls import I386, X32_SYSCALL_BIT, X86_64

pytestmark = pytest.mark.root

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

CLONE_FS = 0x00000200
CLONE_NEWUSER = 0x10000000
AF_VSOCK, AF_ALG = 40, 38
MARKER = 200  # an errno no kernel path returns: seeing it proves the filter answered


def raw(nr: int, *args: int | None) -> tuple[int, int]:
    """(return value, errno) of ``syscall(nr, args...)``; None passes NULL."""
    ctypes.set_errno(0)
    c_args = [ctypes.c_void_p(None) if a is None else ctypes.c_long(a) for a in args]
    ret = libc.syscall(ctypes.c_long(nr), *c_args)
    return ret, (ctypes.get_errno() if ret == -1 else 0)


def err(name: str, *args: int | None) -> int:
    """The errno of an x86_64 call by name, 0 when it succeeded."""
    nr = X86_64.number(name)
    assert nr is not None
    return raw(nr, *args)[1]


# Calls Docker's default profile refuses, made so that the kernel would refuse them too.
REFUSED: dict[str, Callable[[], int]] = {
    "keyctl": lambda: err("keyctl", 0, -1, 0),  # KEYCTL_GET_KEYRING_ID, thread keyring, do not create
    "add_key": lambda: err("add_key", None, None, None, 0, 0),  # NULL type: EFAULT
    "request_key": lambda: err("request_key", None, None, None, 0),
    "kexec_load": lambda: err("kexec_load", 0, 0, None, 0x7FFF0000),  # unknown architecture in flags: EINVAL
    "reboot": lambda: err("reboot", 0, 0, 0, None),  # bad magic: EINVAL
    "bpf": lambda: err("bpf", 0xFFFF, None, 0),  # unknown command
    "perf_event_open": lambda: err("perf_event_open", None, 0, -1, -1, 0),
    "mount": lambda: err("mount", None, None, None, 0, None),
    "umount2": lambda: err("umount2", None, 0),
    "swapon": lambda: err("swapon", None, 0),
    "setns": lambda: err("setns", -1, 0),
    "clone(CLONE_NEWUSER)": lambda: err("clone", CLONE_NEWUSER | CLONE_FS, None, None, None, 0),  # EINVAL mix
    "socket(AF_VSOCK)": lambda: err("socket", AF_VSOCK, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, 0),
    "socket(AF_ALG)": lambda: err("socket", AF_ALG, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC, 0),
    "personality(ADDR_NO_RANDOMIZE)": lambda: err("personality", 0x0040000),
    "unshare(CLONE_NEWUSER)": lambda: err("unshare", CLONE_NEWUSER),  # last: it would change the probe's powers
}


def probe_refused() -> dict[str, int]:
    return {name: call() for name, call in REFUSED.items()}


def probe_allowed() -> dict[str, Any]:
    """Calls the default profile allows, each checked to have worked."""
    out: dict[str, Any] = {}
    out["getpid"] = raw(X86_64.numbers["getpid"])[0] == os.getpid()
    r, w = os.pipe()
    out["write"] = os.write(w, b"x") == 1 and os.read(r, 1) == b"x"
    fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)  # openat
    status = os.read(fd, 65536).decode()
    os.close(fd)
    out["status"] = {k: v.strip() for k, _, v in (line.partition(":") for line in status.splitlines())
                     if k in ("Seccomp", "NoNewPrivs", "Seccomp_filters")}
    ran = []
    thread = threading.Thread(target=lambda: ran.append(threading.get_native_id()))  # clone3 -> ENOSYS -> clone
    thread.start()
    thread.join()
    out["thread"] = bool(ran) and ran[0] != threading.get_native_id()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        out["socket(AF_UNIX)"] = s.fileno() >= 0
    out["personality(query)"] = err("personality", 0xFFFFFFFF)
    out["clone3"] = err("clone3", None, 0)
    return out


def in_child(body: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``body`` in a forked child; its JSON result (None if it died before sending) and its wait status."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.close(r)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a SIGSYS kill must not drop a core file
            try:
                result = {"ok": body()}
            except OSError as e:
                result = {"oserror": [e.errno, str(e)]}
            except BaseException as e:  # noqa: BLE001 - report anything to the parent
                result = {"error": f"{type(e).__name__}: {e}"}
            os.write(w, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    return (json.loads(data) if data else None), status


def default_program(caps: frozenset[str] = DEFAULT_CAPABILITIES, errno_ret: int | None = None) -> Program:
    p = default_profile() if errno_ret is None else dataclasses.replace(default_profile(), default_errno_ret=errno_ret)
    program = compile_profile(p, caps)
    assert program is not None
    return program


def confined(program: Program | None, body: Callable[[], Any], no_new_privs: bool = True, flags: int = 0
             ) -> tuple[Any, int]:
    def run() -> Any:
        install(program, no_new_privs=no_new_privs, flags=flags)
        return body()
    return in_child(run)


# ---- Docker's default profile ------------------------------------------------------------------------------------


def test_default_profile_refuses_with_eperm() -> None:
    result, status = confined(default_program(), probe_refused)
    assert os.WIFEXITED(status) and result is not None, (status, result)
    assert result["ok"] == {name: errno.EPERM for name in REFUSED}


def test_default_profile_allows_what_programs_need() -> None:
    result, status = confined(default_program(), probe_allowed)
    assert os.WIFEXITED(status) and result is not None, (status, result)
    assert result["ok"] == {
        "getpid": True, "write": True, "thread": True, "socket(AF_UNIX)": True, "personality(query)": 0,
        "clone3": errno.ENOSYS,  # as Docker answers: libc falls back to clone, which the filter can inspect
        "status": {"Seccomp": "2", "Seccomp_filters": "1", "NoNewPrivs": "1"},
    }


def test_the_filter_not_the_kernel_refuses() -> None:
    # without a filter the same calls fail otherwise (EFAULT, EINVAL, ENOSYS...) or succeed; with the default
    # profile answering MARKER instead of EPERM, every one of them gets MARKER
    baseline, _ = in_child(probe_refused)
    marked, status = confined(default_program(errno_ret=MARKER), probe_refused)
    assert os.WIFEXITED(status) and marked is not None, (status, marked)
    assert marked["ok"] == {name: MARKER for name in REFUSED}
    assert MARKER not in baseline["ok"].values()


def test_cap_sys_admin_lets_the_namespace_calls_through() -> None:
    program = default_program(DEFAULT_CAPABILITIES | {"CAP_SYS_ADMIN"})
    result, status = confined(program, probe_refused)
    assert os.WIFEXITED(status) and result is not None, (status, result)
    got = result["ok"]
    # the kernel answered these: its own errors, or success
    assert got["mount"] == errno.EFAULT and got["umount2"] == errno.EFAULT and got["setns"] == errno.EBADF
    assert got["clone(CLONE_NEWUSER)"] == errno.EINVAL and got["unshare(CLONE_NEWUSER)"] == 0
    # still refused: they need capabilities the container does not hold (CAP_SYS_BOOT, ...) or no cap unlocks them
    assert got["reboot"] == got["kexec_load"] == got["keyctl"] == got["socket(AF_VSOCK)"] == errno.EPERM


# ---- custom profiles ---------------------------------------------------------------------------------------------


def program_of(untrusted_json: str) -> Program:
    program = compile_profile(parse_profile(untrusted_json), DEFAULT_CAPABILITIES)
    assert program is not None
    return program


def test_errno_ret_from_a_json_profile() -> None:
    program = program_of('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": '
                         '[{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99}]}')
    result, _ = confined(program, os.uname)
    assert result == {"oserror": [99, "[Errno 99] Cannot assign requested address"]}


def test_an_argument_filter() -> None:
    # personality(0xffffffff) (a query) allowed; any other persona refused
    program = program_of('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], '
                         '"action": "SCMP_ACT_ERRNO", "errnoRet": 77, '
                         '"args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_NE"}]}]}')
    result, _ = confined(program, lambda: [err("personality", p) for p in (0xFFFFFFFF, 0, 8, 0x40000)])
    assert result == {"ok": [0, 77, 77, 77]}


def test_kill_process_and_trap() -> None:
    getpgrp = X86_64.numbers["getpgrp"]
    kill = program_of('{"defaultAction": "SCMP_ACT_ALLOW", '
                      '"syscalls": [{"names": ["getpgrp"], "action": "SCMP_ACT_KILL_PROCESS"}]}')
    result, status = confined(kill, lambda: raw(getpgrp))
    assert result is None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS

    trap = program_of('{"defaultAction": "SCMP_ACT_ALLOW", '
                      '"syscalls": [{"names": ["getpgrp"], "action": "SCMP_ACT_TRAP"}]}')

    def trapped() -> list[int]:
        caught: list[int] = []
        signal.signal(signal.SIGSYS, lambda signum, frame: caught.append(signum))
        raw(getpgrp)
        return caught  # the Python-level handler has run by the time this line executes

    result, status = confined(trap, trapped)
    assert result == {"ok": [signal.SIGSYS]}


def test_log_flag_and_stacking() -> None:
    logged = parse_profile('{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"], '
                           '"syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11}]}')
    program = compile_profile(logged, set())
    assert program is not None
    second = program_of('{"defaultAction": "SCMP_ACT_ALLOW", '
                        '"syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 12}]}')

    def body() -> tuple[int, str]:
        install(second, no_new_privs=False)  # filters stack: the kernel runs every one, the strictest action wins
        return err("uname", None), open("/proc/self/status").read().split("Seccomp_filters:")[1].split()[0]

    result, status = confined(program, body, flags=flag_bits(logged))
    # both answer SECCOMP_RET_ERRNO; on a tie the most recently installed filter's errno is the one returned
    assert result == {"ok": [12, "2"]}


# ---- installing ---------------------------------------------------------------------------------------------------


def test_without_no_new_privs_an_unprivileged_process_may_not_install() -> None:
    program = program_of('{"defaultAction": "SCMP_ACT_ALLOW"}')

    def as_nobody() -> tuple[list[Any], int]:
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)  # drops every capability
        try:
            install(program, no_new_privs=False)
            refused: list[Any] = []
        except OSError as e:
            refused = [e.errno, str(e)]
        install(program, no_new_privs=True)
        return refused, err("getpid")

    result, _ = in_child(as_nobody)
    assert result == {"ok": [[errno.EACCES, "[Errno 13] seccomp(SET_MODE_FILTER): Permission denied "
                                           "(no_new_privs is not set and the caller lacks CAP_SYS_ADMIN)"], 0]}


def test_the_kernel_refuses_a_bad_program_with_the_call_named() -> None:
    from portside.runtime.seccomp.bpf import Insn

    bad = (Insn(0x20, 0, 0, 3), Insn(0x06, 0, 0, 0x7FFF0000))  # an unaligned load
    result, _ = in_child(lambda: install(bad, no_new_privs=True))
    assert result == {"oserror": [errno.EINVAL, "[Errno 22] seccomp(SET_MODE_FILTER): Invalid argument "
                                                "(the kernel refused the program or a flag)"]}


def test_unconfined_installs_nothing() -> None:
    def body() -> str:
        install(UNCONFINED, no_new_privs=False)
        return open("/proc/self/status").read().split("Seccomp:")[1].split()[0]

    assert in_child(body)[0] == {"ok": "0"}


# ---- the other x86 ABIs ------------------------------------------------------------------------------------------


def int80(nr: int, arg1: int = 0, arg2: int = 0) -> int:
    """An i386 system call from this 64-bit process (``int $0x80``); seccomp sees AUDIT_ARCH_I386. Returns eax."""
    code = (b"\x53"  # push rbx (callee-saved)
            + b"\xb8" + nr.to_bytes(4, "little")  # mov eax, nr
            + b"\xbb" + arg1.to_bytes(4, "little")  # mov ebx, arg1
            + b"\xb9" + arg2.to_bytes(4, "little")  # mov ecx, arg2
            + b"\xcd\x80"  # int 0x80
            + b"\x5b\xc3")  # pop rbx; ret
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    result: int = ctypes.CFUNCTYPE(ctypes.c_int)(address)()
    return result


def i386_calls() -> dict[str, int]:
    return {
        "getpid": int80(I386.numbers["getpid"]) == os.getpid(),
        "reboot": int80(I386.numbers["reboot"]),  # magic 0: EINVAL if it ran
        "umount2": int80(I386.numbers["umount2"]),  # NULL: EFAULT if it ran
        "x32 umount2": raw(X86_64.numbers["umount2"] | X32_SYSCALL_BIT, None, 0)[1],
    }


def test_i386_and_x32_calls_are_filtered_too() -> None:
    baseline, status = in_child(i386_calls)
    if baseline is None:
        pytest.skip(f"no i386 emulation in this kernel (int 0x80 killed the probe: status {status:#x})")
    result, status = confined(default_program(errno_ret=MARKER), i386_calls)
    assert os.WIFEXITED(status), status
    # the i386 section of the program answered: getpid works, the refused calls get the marker
    assert result == {"ok": {"getpid": True, "reboot": -MARKER, "umount2": -MARKER, "x32 umount2": MARKER}}
    assert baseline["ok"]["reboot"] == -errno.EINVAL and baseline["ok"]["umount2"] == -errno.EFAULT


def test_an_abi_the_profile_does_not_list_is_killed() -> None:
    program = program_of('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]}')
    _, status = confined(program, lambda: int80(I386.numbers["getpid"]))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS
    _, status = confined(program, lambda: raw(X86_64.numbers["getpid"] | X32_SYSCALL_BIT))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS
