"""System call numbers, and the x86 ABIs a filter tells apart.

A process on an x86_64 kernel can enter the kernel through three ABIs, and
seccomp sees each differently in ``struct seccomp_data``:

- x86_64: ``arch == AUDIT_ARCH_X86_64``, ``nr`` below ``__X32_SYSCALL_BIT``;
- x32 (64-bit registers, 32-bit pointers): the same ``arch``, ``nr`` with
  ``__X32_SYSCALL_BIT`` (0x40000000) set; most kernels leave x32 off, but a
  filter must not let its numbers fall into the x86_64 table's holes;
- i386 (``int 0x80``, 32-bit binaries): ``arch == AUDIT_ARCH_I386``, its own
  numbering.

A profile names its ABIs as libseccomp does (``SCMP_ARCH_X86_64``,
``SCMP_ARCH_X86``, ``SCMP_ARCH_X32``); Docker's default lists all three.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from portside.runtime.seccomp import syscall_table

AUDIT_ARCH_X86_64 = 0xC000003E  # EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
AUDIT_ARCH_I386 = 0x40000003  # EM_386 | __AUDIT_ARCH_LE
X32_SYSCALL_BIT = 0x40000000

# Every architecture name the runtime spec knows (libseccomp 2.6), so a profile
# written for another machine parses; only the x86 ones have tables here.
ARCH_NAMES = frozenset({
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
})

# libseccomp's names for the machine a profile's includes/excludes "arches" test
# (Go's GOARCH translated as moby does); "amd64" is this engine's.
NATIVE_ARCH_NAMES = frozenset({
    "x86", "amd64", "x32", "arm", "arm64", "loong64", "loongarch64", "mips", "mipsle", "mips64", "mips64n32",
    "mipsel64", "mips3l64n32", "mipsel", "ppc", "ppc64", "ppc64le", "riscv64", "s390", "s390x",
})
# the host's name -> the archMap entry that applies to it (moby's nativeToSeccomp)
NATIVE_TO_SCMP = {
    "x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "x32": "SCMP_ARCH_X32", "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64", "loong64": "SCMP_ARCH_LOONGARCH64", "loongarch64": "SCMP_ARCH_LOONGARCH64",
    "mips64": "SCMP_ARCH_MIPS64", "mips64n32": "SCMP_ARCH_MIPS64N32", "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mips3l64n32": "SCMP_ARCH_MIPSEL64N32", "mipsle": "SCMP_ARCH_MIPSEL", "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE", "riscv64": "SCMP_ARCH_RISCV64",
    "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
}


@dataclasses.dataclass(frozen=True)
class Abi:
    """One way into the kernel: how seccomp_data identifies it and how it numbers calls."""

    name: str  # SCMP_ARCH_*
    audit_arch: int
    numbers: Mapping[str, int]
    # the values of seccomp_data.nr this ABI owns, inclusive: x86_64 and x32 split AUDIT_ARCH_X86_64's range
    low: int
    high: int
    # how wide libseccomp takes arguments to be: on i386 and x32 (an ILP32 ABI) only the low 32 bits are compared
    arg_bits: int

    def number(self, name: str) -> int | None:
        """The call's number in this ABI, or None if this ABI has no such call."""
        return self.numbers.get(name)


X86_64 = Abi("SCMP_ARCH_X86_64", AUDIT_ARCH_X86_64, syscall_table.X86_64, 0, X32_SYSCALL_BIT - 1, 64)
X32 = Abi("SCMP_ARCH_X32", AUDIT_ARCH_X86_64, syscall_table.X32, X32_SYSCALL_BIT, 0xFFFFFFFF, 32)
I386 = Abi("SCMP_ARCH_X86", AUDIT_ARCH_I386, syscall_table.I386, 0, 0xFFFFFFFF, 32)

ABIS: Mapping[str, Abi] = {abi.name: abi for abi in (X86_64, X32, I386)}


def known(name: str) -> bool:
    """Whether any x86 ABI has a call of this name."""
    return any(name in abi.numbers for abi in ABIS.values())
