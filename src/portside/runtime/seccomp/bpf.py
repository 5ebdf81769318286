"""Resolved rules -> a classic BPF program for seccomp(2), without libseccomp.

The program the kernel runs on every system call, in order::

    ld  [arch]                      which ABI? (seccomp_data.arch)
    jeq AUDIT_ARCH_X86_64 -> x86_64 section
    jeq AUDIT_ARCH_I386   -> i386 section
    ret <bad arch>                  an ABI the profile does not list
  x86_64 section:
    ld  [nr]
    jge 0x40000000 -> x32 section   x32 shares the arch value, with bit 30 set in nr
    <search tree over nr>           a binary search over ranges of numbers
  x32 section:   <search tree over nr>
  i386 section:  ld [nr]; <search tree over nr>

Each ABI's numbers are cut into maximal ranges with one outcome: a verdict
(``ret``), or, for a call with argument rules, a chain of comparisons. A
balanced binary search over the range starts (``jge``) finds the range in
log2(ranges) jumps, so the default profile's ~1,000 names across three ABIs
cost a few hundred instructions and ~10 per call, where a linear list of
``jeq`` would cost thousands and hundreds.

Classic BPF jumps only forward, and a conditional jump reaches at most 255
instructions; the assembler puts an unconditional ``ja`` (32-bit offset)
right after any conditional jump whose target is further, and repeats until
every jump fits.

Semantics, per call number, as libseccomp 2.5 and runc give them:

- a rule whose verdict is the default's is dropped (runc skips it);
- an unconditional rule decides the call, and the first one wins;
- else the argument rules are tried in profile order, the first whose
  comparisons all hold decides; none holding -> the default;
- a number no rule names gets the default action, except that, as runc's
  "-ENOSYS stub" does, numbers above the highest one the profile names for
  that ABI return ENOSYS (unless the default already allows): a call newer
  than the profile makes libc fall back (``clone3`` -> ``clone``) instead of
  failing with EPERM.

Arguments are 64-bit; each comparison tests the high 32-bit half, then the
low one (x86 is little-endian: ``args[i]`` low word at offset 16 + 8i).
"""

from __future__ import annotations

import dataclasses
import errno
import struct
from collections.abc import Collection, Iterable, Sequence
from typing import NamedTuple

from portside.errors import InvalidArgument
from portside.runtime.seccomp.profile import (
    DEFAULT_ERRNO, FLAGS, Action, Arg, Op, Profile, Rule, filter_arches, resolve,
)
from portside.runtime.seccomp.syscalls import ABIS, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, Abi

BPF_MAXINSNS = 4096  # the kernel refuses longer programs

# classic BPF opcodes (linux/bpf_common.h) used here
LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS: A = *(u32 *)(data + k)
ALU_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K: A &= k
JMP_JA = 0x05  # BPF_JMP | BPF_JA: pc += k
JMP_JEQ_K = 0x15  # pc += (A == k) ? jt : jf
JMP_JGT_K = 0x25  # pc += (A > k) ? jt : jf
JMP_JGE_K = 0x35  # pc += (A >= k) ? jt : jf
JMP_JSET_K = 0x45  # pc += (A & k) ? jt : jf
RET_K = 0x06  # BPF_RET | BPF_K: return k

# struct seccomp_data offsets
OFF_NR = 0
OFF_ARCH = 4
OFF_IP = 8
OFF_ARGS = 16

# SECCOMP_RET_* (linux/seccomp.h): the action in the high 16 bits, data (errno) in the low 16
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
_RET_BASE = {
    Action.KILL_PROCESS: RET_KILL_PROCESS, Action.KILL_THREAD: RET_KILL_THREAD, Action.TRAP: RET_TRAP,
    Action.ERRNO: RET_ERRNO, Action.TRACE: RET_TRACE, Action.LOG: RET_LOG, Action.ALLOW: RET_ALLOW,
}
# libseccomp's default for an ABI the filter does not list (SCMP_ACT_KILL); runc keeps it
RET_BAD_ARCH = RET_KILL_THREAD
# actions under which runc adds no ENOSYS stub: the call goes ahead anyway
_PERMISSIVE = (Action.ALLOW, Action.LOG, Action.TRACE)


class Insn(NamedTuple):
    """One ``struct sock_filter``."""

    code: int
    jt: int
    jf: int
    k: int


Program = tuple[Insn, ...]


def verdict(action: Action, errno_ret: int | None = None) -> int:
    """The 32-bit value a filter returns for an action: SECCOMP_RET_ERRNO | EPERM, and so on."""
    base = _RET_BASE[action]
    if action.takes_errno:
        return base | (DEFAULT_ERRNO if errno_ret is None else errno_ret)
    return base


def encode(program: Sequence[Insn]) -> bytes:
    """The program as the kernel reads it: an array of ``struct sock_filter`` (u16 code, u8 jt, u8 jf, u32 k)."""
    return b"".join(struct.pack("=HBBI", *insn) for insn in program)


# ---- the assembler ---------------------------------------------------------------------------------------------


class _Label:
    """A place in the program, bound to an instruction index once emitted."""

    __slots__ = ()


@dataclasses.dataclass
class _Op:
    code: int
    k: int
    jt: _Label | None = None  # conditional jumps: where to go when true / false; ja: the target (jt)
    jf: _Label | None = None


class _Assembler:
    def __init__(self) -> None:
        self.ops: list[_Op] = []
        self.at: dict[_Label, int] = {}

    def bind(self, label: _Label) -> None:
        self.at[label] = len(self.ops)

    def here(self) -> _Label:
        label = _Label()
        self.bind(label)
        return label

    def load(self, offset: int) -> None:
        self.ops.append(_Op(LD_W_ABS, offset))

    def and_k(self, k: int) -> None:
        self.ops.append(_Op(ALU_AND_K, k))

    def ret(self, value: int) -> None:
        self.ops.append(_Op(RET_K, value))

    def ja(self, target: _Label) -> None:
        self.ops.append(_Op(JMP_JA, 0, target))

    def jump(self, code: int, k: int, jt: _Label | None, jf: _Label | None) -> None:
        """A conditional jump; None for either branch means the next instruction."""
        op = _Op(code, k, jt, jf)
        self.ops.append(op)
        if jt is None or jf is None:
            nxt = self.here()
            op.jt = jt or nxt
            op.jf = jf or nxt

    def assemble(self) -> Program:
        self._relax()
        program = []
        for i, op in enumerate(self.ops):
            if op.code == JMP_JA:
                assert op.jt is not None
                program.append(Insn(op.code, 0, 0, self.at[op.jt] - i - 1))
            elif op.jt is not None and op.jf is not None:
                jt, jf = self.at[op.jt] - i - 1, self.at[op.jf] - i - 1
                assert 0 <= jt <= 255 and 0 <= jf <= 255, "relaxation left a jump out of reach"
                program.append(Insn(op.code, jt, jf, op.k))
            else:
                program.append(Insn(op.code, 0, 0, op.k))
        return tuple(program)

    def _relax(self) -> None:
        """Give every conditional branch longer than 255 a ``ja`` trampoline right after its jump.

        Only that jump can reach the slot after it (a conditional jump never
        falls through implicitly, and the trampoline has no label of its
        own), so the insertion changes no other path; it can lengthen jumps
        that span it, hence the repeat until nothing changes.
        """
        changed = True
        while changed:
            changed = False
            for i, op in enumerate(self.ops):
                if op.code == JMP_JA or op.jt is None or op.jf is None:
                    continue
                for branch in ("jt", "jf"):
                    target: _Label = getattr(op, branch)
                    distance = self.at[target] - i - 1
                    assert distance >= 0, "BPF jumps only forward"
                    if distance > 255:
                        self._insert(i + 1, _Op(JMP_JA, 0, target))
                        trampoline = _Label()
                        self.at[trampoline] = i + 1
                        setattr(op, branch, trampoline)
                        changed = True
                if changed:
                    break

    def _insert(self, index: int, op: _Op) -> None:
        self.ops.insert(index, op)
        for label, position in self.at.items():
            if position >= index:
                self.at[label] = position + 1


# ---- outcomes of one call number -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Chain:
    """Argument rules for one call: the first whose comparisons all hold returns its verdict."""

    rules: tuple[tuple[tuple[Arg, ...], int], ...]
    otherwise: int
    wide: bool  # 64-bit arguments (x86_64), or 32-bit (i386, x32)


_Outcome = int | _Chain  # a verdict, or a chain


def _outcomes(abi: Abi, rules: Sequence[Rule], default: int) -> dict[int, _Outcome]:
    """Each number the rules name in this ABI -> what the filter does for it."""
    unconditional: dict[int, int] = {}
    conditional: dict[int, list[tuple[tuple[Arg, ...], int, str]]] = {}
    for rule in rules:
        nr = abi.number(rule.name)
        if nr is None:  # not a call of this ABI: libseccomp and runc skip it
            continue
        value = verdict(rule.action, rule.errno_ret)
        if value == default:  # runc: "This rule is redundant, silently skip it"
            continue
        if not rule.args:
            unconditional.setdefault(nr, value)  # the first unconditional rule wins, as in libseccomp
        else:
            conditional.setdefault(nr, []).append((rule.args, value, rule.name))
    outcomes: dict[int, _Outcome] = dict(unconditional)
    for nr, chain in conditional.items():
        if nr in unconditional:  # libseccomp: an unconditional rule overrides every argument rule
            continue
        seen: dict[tuple[Arg, ...], int] = {}
        for args, value, name in chain:
            key = tuple(sorted(args, key=lambda a: (a.index, a.op.value, a.value, a.value_two)))
            if seen.setdefault(key, value) != value:  # libseccomp fails such a rule with EEXIST
                raise InvalidArgument(f"seccomp profile: {name}: two rules compare the same arguments "
                                      "and disagree on the action")
        outcomes[nr] = _Chain(tuple((args, value) for args, value, _ in chain), default, abi.arg_bits == 64)
    return outcomes


def _ranges(abi: Abi, outcomes: dict[int, _Outcome], default: int, enosys_above: int | None
            ) -> list[tuple[int, _Outcome]]:
    """Cut ``[abi.low, abi.high]`` into maximal ranges of one outcome: (first number, outcome), sorted."""
    enosys = verdict(Action.ERRNO, errno.ENOSYS)

    def unnamed(nr: int) -> _Outcome:
        return enosys if enosys_above is not None and nr > enosys_above else default

    starts: dict[int, _Outcome] = {abi.low: unnamed(abi.low)}
    for nr, outcome in outcomes.items():
        starts[nr] = outcome
        if nr < abi.high and nr + 1 not in outcomes:
            starts[nr + 1] = unnamed(nr + 1)
    if enosys_above is not None and enosys_above < abi.high and enosys_above + 1 not in outcomes:
        starts[enosys_above + 1] = enosys
    ranges: list[tuple[int, _Outcome]] = []
    for start in sorted(starts):
        if not (ranges and ranges[-1][1] == starts[start]):
            ranges.append((start, starts[start]))
    return ranges


# ---- code generation -------------------------------------------------------------------------------------------


def _hi(index: int) -> int:
    return OFF_ARGS + 8 * index + 4


def _lo(index: int) -> int:
    return OFF_ARGS + 8 * index


def _emit_compare(asm: _Assembler, arg: Arg, fail: _Label, wide: bool) -> None:
    """Fall through when ``args[arg.index] <op> arg.value`` holds, else jump to ``fail``.

    ``wide``: compare unsigned 64-bit values, high halves first; otherwise
    (i386, x32) the low 32 bits of the argument and of the values alone, as
    libseccomp does for those ABIs.
    """
    vh, vl = arg.value >> 32, arg.value & 0xFFFFFFFF
    done = _Label()
    if arg.op is Op.MASKED_EQ:
        # libseccomp masks the wanted value too: (arg & mask) == (valueTwo & mask)
        th, tl = (arg.value_two >> 32) & vh, arg.value_two & vl
        if wide and vh:  # under a zero mask the high half always matches
            asm.load(_hi(arg.index))
            asm.and_k(vh)
            asm.jump(JMP_JEQ_K, th, None, fail)
        asm.load(_lo(arg.index))
        asm.and_k(vl)
        asm.jump(JMP_JEQ_K, tl, None, fail)
    elif arg.op in (Op.EQ, Op.NE):
        # EQ: both halves equal. NE: either half differs.
        equal = arg.op is Op.EQ
        if wide:
            asm.load(_hi(arg.index))
            asm.jump(JMP_JEQ_K, vh, None, fail if equal else done)
        asm.load(_lo(arg.index))
        asm.jump(JMP_JEQ_K, vl, None if equal else fail, fail if equal else done)
    else:
        # GT/GE hold when the high half is greater, or equal and the low half decides; LT/LE are their negations
        greater = arg.op in (Op.GT, Op.GE)
        on_true, on_false = (done, fail) if greater else (fail, done)
        if wide:
            asm.load(_hi(arg.index))
            asm.jump(JMP_JGT_K, vh, on_true, None)
            if vh != 0:  # a high half not greater than 0 is 0: no need to test equality
                asm.jump(JMP_JEQ_K, vh, None, on_false)
        asm.load(_lo(arg.index))
        code = JMP_JGE_K if arg.op in (Op.GE, Op.LT) else JMP_JGT_K
        asm.jump(code, vl, on_true, on_false)
    asm.bind(done)


def _emit_outcome(asm: _Assembler, outcome: _Outcome) -> None:
    if isinstance(outcome, int):
        asm.ret(outcome)
        return
    for args, value in outcome.rules:
        next_rule = _Label()
        for arg in args:
            _emit_compare(asm, arg, next_rule, outcome.wide)
        asm.ret(value)
        asm.bind(next_rule)
    asm.ret(outcome.otherwise)


def _emit_search(asm: _Assembler, ranges: Sequence[tuple[int, _Outcome]]) -> None:
    """A balanced binary search on A (the call number) over sorted ranges; the left half follows the jump."""
    if len(ranges) == 1:
        _emit_outcome(asm, ranges[0][1])
        return
    middle = len(ranges) // 2
    right = _Label()
    asm.jump(JMP_JGE_K, ranges[middle][0], right, None)
    _emit_search(asm, ranges[:middle])
    asm.bind(right)
    _emit_search(asm, ranges[middle:])


def compile_rules(rules: Sequence[Rule], *, default_action: Action, default_errno_ret: int | None = None,
                  arches: Iterable[str] = ("SCMP_ARCH_X86_64",), enosys_stub: bool = True) -> Program:
    """Compile resolved rules into a program for these ABIs (names as in a profile's ``architectures``).

    ABIs without a syscall table here (another machine's) are left out: the
    kernel on this one never reports them, so they would be dead code.
    """
    default = verdict(default_action, default_errno_ret)
    wanted = [ABIS[a] for a in dict.fromkeys(arches) if a in ABIS]
    if not wanted:
        raise InvalidArgument("seccomp profile: lists no x86 architecture to filter")
    stub = enosys_stub and default_action not in _PERMISSIVE and default != verdict(Action.ERRNO, errno.ENOSYS)
    sections: dict[str, list[tuple[int, _Outcome]]] = {}
    for abi in wanted:
        outcomes = _outcomes(abi, rules, default)
        named = [n for n in (abi.number(r.name) for r in rules) if n is not None]
        enosys_above = max(named) if stub and named else None
        sections[abi.name] = _ranges(abi, outcomes, default, enosys_above)

    asm = _Assembler()
    asm.load(OFF_ARCH)
    labels = {name: _Label() for name in sections}
    x86_64_family = labels.get("SCMP_ARCH_X86_64") or labels.get("SCMP_ARCH_X32")
    if x86_64_family:
        asm.jump(JMP_JEQ_K, AUDIT_ARCH_X86_64, x86_64_family, None)
    if "SCMP_ARCH_X86" in labels:
        asm.jump(JMP_JEQ_K, AUDIT_ARCH_I386, labels["SCMP_ARCH_X86"], None)
    asm.ret(RET_BAD_ARCH)
    if x86_64_family:
        asm.bind(x86_64_family)
        asm.load(OFF_NR)
        if "SCMP_ARCH_X86_64" in sections and "SCMP_ARCH_X32" in sections:
            asm.jump(JMP_JGE_K, X32_SYSCALL_BIT, labels["SCMP_ARCH_X32"], None)
            _emit_search(asm, sections["SCMP_ARCH_X86_64"])
            asm.bind(labels["SCMP_ARCH_X32"])
            _emit_search(asm, sections["SCMP_ARCH_X32"])
        else:  # one of the two: the other's numbers are a bad arch, as libseccomp treats them
            only = "SCMP_ARCH_X86_64" if "SCMP_ARCH_X86_64" in sections else "SCMP_ARCH_X32"
            mine = _Label()
            if only == "SCMP_ARCH_X86_64":
                asm.jump(JMP_JGE_K, X32_SYSCALL_BIT, None, mine)
            else:
                asm.jump(JMP_JGE_K, X32_SYSCALL_BIT, mine, None)
            asm.ret(RET_BAD_ARCH)
            asm.bind(mine)
            _emit_search(asm, sections[only])
    if "SCMP_ARCH_X86" in sections:
        asm.bind(labels["SCMP_ARCH_X86"])
        asm.load(OFF_NR)
        _emit_search(asm, sections["SCMP_ARCH_X86"])
    program = asm.assemble()
    if len(program) > BPF_MAXINSNS:
        raise InvalidArgument(f"seccomp profile compiles to {len(program)} BPF instructions; "
                              f"the kernel takes at most {BPF_MAXINSNS}")
    return program


def compile_profile(profile: Profile, caps: Collection[str], arch: str = "amd64", *,
                    kernel: tuple[int, int] | None = None) -> Program | None:
    """Resolve a profile for a container's capabilities and compile it; None when the profile is empty.

    An empty profile (no default action, no syscalls) means "unconfined" to
    Docker: nothing to install.
    """
    if profile.default_action is None:
        return None
    rules = resolve(profile, caps, arch, kernel=kernel)
    return compile_rules(rules, default_action=profile.default_action, default_errno_ret=profile.default_errno_ret,
                         arches=filter_arches(profile, arch))


def flag_bits(profile: Profile) -> int:
    """The profile's ``flags`` as SECCOMP_FILTER_FLAG_* bits for seccomp(2)."""
    bits = 0
    for flag in profile.flags:
        bits |= FLAGS[flag]
    return bits


def disassemble(program: Sequence[Insn]) -> str:
    """One line per instruction, for debugging and documentation."""
    names = {LD_W_ABS: "ld", ALU_AND_K: "and", JMP_JA: "ja", JMP_JEQ_K: "jeq", JMP_JGT_K: "jgt",
             JMP_JGE_K: "jge", JMP_JSET_K: "jset", RET_K: "ret"}
    lines = []
    for i, (code, jt, jf, k) in enumerate(program):
        name = names.get(code, f"op{code:#x}")
        if code == LD_W_ABS:
            text = f"ld   [{k}]"
        elif code == JMP_JA:
            text = f"ja   {i + 1 + k}"
        elif code in (JMP_JEQ_K, JMP_JGT_K, JMP_JGE_K, JMP_JSET_K):
            text = f"{name:<4} {k:#x}, {i + 1 + jt}, {i + 1 + jf}"
        else:
            text = f"{name:<4} {k:#x}"
        lines.append(f"{i:4}: {text}")
    return "\n".join(lines)
