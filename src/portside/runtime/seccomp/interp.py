"""A classic BPF interpreter for seccomp programs: what the kernel would answer, without loading anything.

Used by the tests to check compiled programs against the rules' meaning,
and handy to ask "what does this profile do to syscall N with these
arguments?". It runs the instructions seccomp accepts (loads from
``struct seccomp_data``, ALU on constants, jumps, returns) and refuses
programs the kernel's checker would refuse.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from portside.runtime.seccomp.bpf import BPF_MAXINSNS, Insn

SECCOMP_DATA_SIZE = 64  # int nr; u32 arch; u64 instruction_pointer; u64 args[6]

_BPF_CLASS = 0x07
_LD, _ALU, _JMP, _RET = 0x00, 0x04, 0x05, 0x06
_ABS, _W, _K = 0x20, 0x00, 0x00
_ALU_OPS: dict[int, Callable[[int, int], int]] = {
    0x00: lambda a, k: a + k, 0x10: lambda a, k: a - k, 0x20: lambda a, k: a * k,
    0x40: lambda a, k: a | k, 0x50: lambda a, k: a & k, 0x60: lambda a, k: a << k, 0x70: lambda a, k: a >> k,
    0xA0: lambda a, k: a ^ k,
}


class BadProgram(ValueError):
    """The kernel would refuse this program (EINVAL from seccomp(2))."""


def seccomp_data(nr: int, arch: int, args: Sequence[int] = (), ip: int = 0) -> bytes:
    """A ``struct seccomp_data`` as the kernel fills it (host byte order, x86: little-endian)."""
    full = [*args, *([0] * (6 - len(args)))]
    return struct.pack("<iIQ6Q", nr if nr < 0x80000000 else nr - (1 << 32), arch, ip, *full)


def check(program: Sequence[Insn]) -> None:
    """Refuse what the kernel's classic BPF and seccomp checkers refuse."""
    if not 0 < len(program) <= BPF_MAXINSNS:
        raise BadProgram(f"{len(program)} instructions: the kernel takes 1 to {BPF_MAXINSNS}")
    for pc, (code, jt, jf, k) in enumerate(program):
        cls = code & _BPF_CLASS
        if cls == _LD:
            if code != _LD | _W | _ABS or k % 4 or k >= SECCOMP_DATA_SIZE:
                raise BadProgram(f"{pc}: seccomp allows only aligned word loads within seccomp_data")
        elif cls == _ALU:
            if code & 0x08 or (code & 0xF0) not in _ALU_OPS:
                raise BadProgram(f"{pc}: unsupported ALU instruction {code:#x}")
        elif cls == _JMP:
            op = code & 0xF0
            if op == 0x00:
                if pc + 1 + k >= len(program):
                    raise BadProgram(f"{pc}: ja beyond the end")
            elif op in (0x10, 0x20, 0x30, 0x40) and not code & 0x08:
                if pc + 1 + max(jt, jf) >= len(program):
                    raise BadProgram(f"{pc}: jump beyond the end")
            else:
                raise BadProgram(f"{pc}: unsupported jump {code:#x}")
        elif cls == _RET:
            if code != _RET | _K:
                raise BadProgram(f"{pc}: unsupported return {code:#x}")
        else:
            raise BadProgram(f"{pc}: unsupported instruction class {code:#x}")
    if program[-1].code & _BPF_CLASS != _RET:
        raise BadProgram("the last instruction must return")


def run(program: Sequence[Insn], data: bytes) -> int:
    """The 32-bit value the program returns for this ``seccomp_data``."""
    return execute(program, data)[0]


def execute(program: Sequence[Insn], data: bytes) -> tuple[int, int]:
    """(returned value, instructions run): the verdict and the filter's cost for one call."""
    a = 0
    pc = 0
    count = 0
    while True:
        code, jt, jf, k = program[pc]
        cls = code & _BPF_CLASS
        pc += 1
        count += 1
        if cls == _LD:
            a = struct.unpack_from("<I", data, k)[0]
        elif cls == _ALU:
            a = _ALU_OPS[code & 0xF0](a, k) & 0xFFFFFFFF
        elif cls == _JMP:
            op = code & 0xF0
            if op == 0x00:
                pc += k
            else:
                taken = {0x10: a == k, 0x20: a > k, 0x30: a >= k, 0x40: bool(a & k)}[op]
                pc += jt if taken else jf
        else:
            return k, count
