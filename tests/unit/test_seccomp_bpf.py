"""The BPF compiler, checked by running its programs in the Python BPF interpreter.

The oracle below states what a filter must answer, rule by rule, without
looking at the compiler; each test compiles rules and compares the program's
answers with the oracle's over many system calls and arguments.
"""

from __future__ import annotations

import errno
import random
import struct
from collections.abc import Sequence

import pytest

from portside.errors import InvalidArgument
from portside.runtime.seccomp import interp
from portside.runtime.seccomp.bpf import (
    BPF_MAXINSNS, JMP_JA, Insn, Program, compile_profile, compile_rules, encode, flag_bits,
)
from portside.runtime.seccomp.default import DEFAULT_CAPABILITIES, default_profile
from portside.runtime.seccomp.profile import Action, Arg, Op, Rule, parse_profile, resolve
from portside.runtime.seccomp.syscalls import ABIS, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, Abi

X86_64, X32, I386 = ABIS["SCMP_ARCH_X86_64"], ABIS["SCMP_ARCH_X32"], ABIS["SCMP_ARCH_X86"]
ALL_X86 = ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
AUDIT_ARCH_AARCH64 = 0xC00000B7

ALLOW = 0x7FFF0000
KILL_THREAD = 0x00000000
ENOSYS = 0x00050000 | errno.ENOSYS
EPERM = 0x00050000 | errno.EPERM


# ---- the oracle -------------------------------------------------------------------------------------------------

RETURN = {Action.KILL_THREAD: 0x0, Action.KILL_PROCESS: 0x80000000, Action.TRAP: 0x30000, Action.ERRNO: 0x50000,
          Action.TRACE: 0x7FF00000, Action.LOG: 0x7FFC0000, Action.ALLOW: ALLOW}


def value_of(action: Action, errno_ret: int | None) -> int:
    if action in (Action.ERRNO, Action.TRACE):
        return RETURN[action] | (errno.EPERM if errno_ret is None else errno_ret)
    return RETURN[action]


def holds(arg: Arg, args: Sequence[int], bits: int) -> bool:
    mask = (1 << bits) - 1
    x, v, v2 = args[arg.index] & mask, arg.value & mask, arg.value_two & mask
    return {
        Op.EQ: x == v, Op.NE: x != v, Op.LT: x < v, Op.LE: x <= v, Op.GT: x > v, Op.GE: x >= v,
        Op.MASKED_EQ: x & v == v2 & v,
    }[arg.op]


def oracle(rules: Sequence[Rule], default: Action, default_errno: int | None, arches: Sequence[str],
           arch: int, nr: int, args: Sequence[int], enosys_stub: bool = True) -> int:
    """What the filter must return (see bpf.py's docstring for where each clause comes from)."""
    if arch == AUDIT_ARCH_I386 and "SCMP_ARCH_X86" in arches:
        abi = I386
    elif arch == AUDIT_ARCH_X86_64 and nr & X32_SYSCALL_BIT and "SCMP_ARCH_X32" in arches:
        abi = X32
    elif arch == AUDIT_ARCH_X86_64 and not nr & X32_SYSCALL_BIT and "SCMP_ARCH_X86_64" in arches:
        abi = X86_64
    else:
        return KILL_THREAD  # an ABI the filter does not list
    dflt = value_of(default, default_errno)
    mine = [r for r in rules if abi.number(r.name) == nr and value_of(r.action, r.errno_ret) != dflt]
    for r in mine:
        if not r.args:
            return value_of(r.action, r.errno_ret)
    for r in mine:
        if all(holds(a, args, abi.arg_bits) for a in r.args):
            return value_of(r.action, r.errno_ret)
    named = [n for n in (abi.number(r.name) for r in rules) if n is not None]
    stub = enosys_stub and default not in (Action.ALLOW, Action.LOG, Action.TRACE) and dflt != ENOSYS
    if stub and named and nr > max(named) and not mine:
        return ENOSYS
    return dflt


def run(program: Program, arch: int, nr: int, args: Sequence[int] = ()) -> int:
    return interp.run(program, interp.seccomp_data(nr, arch, args))


def interesting(values: Sequence[int]) -> list[int]:
    """Each value and its neighbours in both 32-bit halves: where two-word comparisons go wrong."""
    out = {0, 1, 0xFFFFFFFF, 1 << 32, (1 << 64) - 1, 1 << 63}
    for v in values:
        for d in (-1, 0, 1):
            out.add((v + d) % (1 << 64))
            out.add((v + (d << 32)) % (1 << 64))
    return sorted(out)


def assert_agrees(program: Program, rules: Sequence[Rule], default: Action, default_errno: int | None,
                  arches: Sequence[str], seed: int, enosys_stub: bool = True) -> int:
    """Compare with the oracle on every named number, their neighbours, and argument values near the rules'."""
    interp.check(program)
    rnd = random.Random(seed)
    values = interesting([a.value for r in rules for a in r.args] + [a.value_two for r in rules for a in r.args])
    cases = 0
    for abi in (X86_64, X32, I386):
        numbers = {abi.low, abi.low + 1, abi.high, abi.low + 600}
        for r in rules:
            nr = abi.number(r.name)
            if nr is not None:
                numbers |= {nr - 1, nr, nr + 1}
        for nr in sorted(n for n in numbers if abi.low <= n <= abi.high):
            for _ in range(12):
                args = [rnd.choice(values) for _ in range(6)]
                want = oracle(rules, default, default_errno, arches, abi.audit_arch, nr, args, enosys_stub)
                got = run(program, abi.audit_arch, nr, args)
                assert got == want, f"{abi.name} nr={nr:#x} args={[hex(a) for a in args]}: {got:#x} != {want:#x}"
                cases += 1
    for arch in (AUDIT_ARCH_AARCH64, 0):
        assert run(program, arch, 0) == KILL_THREAD
    return cases


# ---- the default profile ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_program() -> Program:
    program = compile_profile(default_profile(), DEFAULT_CAPABILITIES, kernel=(6, 1))
    assert program is not None
    return program


def call(program: Program, name: str, *args: int, abi: Abi = X86_64) -> int:
    nr = abi.number(name)
    assert nr is not None, name
    return run(program, abi.audit_arch, nr, args)


def test_default_program_size_and_cost(default_program: Program) -> None:
    # measured: 669 instructions for Docker's default capabilities, three ABIs (libseccomp 2.5.4: 999)
    assert len(default_program) < 800 < BPF_MAXINSNS
    interp.check(default_program)
    costs = [interp.execute(default_program, interp.seccomp_data(nr, AUDIT_ARCH_X86_64, ()))[1]
             for nr in X86_64.numbers.values()]
    assert max(costs) <= 30 and sum(costs) / len(costs) < 15


def test_default_program_refuses_what_docker_refuses(default_program: Program) -> None:
    for name in ("keyctl", "add_key", "request_key", "kexec_load", "reboot", "bpf", "perf_event_open", "mount",
                 "umount2", "swapon", "swapoff", "unshare", "setns", "init_module", "open_by_handle_at", "kcmp",
                 "io_uring_setup", "userfaultfd", "pivot_root", "quotactl", "acct"):
        assert call(default_program, name) == EPERM, name
        assert call(default_program, name, abi=I386) == EPERM, name
    for name in ("read", "write", "openat", "getpid", "execve", "futex", "mmap", "arch_prctl", "rt_sigreturn",
                 "ptrace", "chroot", "removexattrat"):
        assert call(default_program, name) == ALLOW, name
    assert call(default_program, "socketcall", 1, abi=I386) == ALLOW  # as in Docker: socket's arguments go unchecked
    assert call(default_program, "read", abi=X32) == ALLOW
    assert call(default_program, "clone3") == ENOSYS  # libc falls back to clone
    assert call(default_program, "open_tree_attr") == ENOSYS  # newer than the profile: ENOSYS, not EPERM
    assert run(default_program, AUDIT_ARCH_X86_64, 1000) == ENOSYS
    assert run(default_program, AUDIT_ARCH_AARCH64, 0) == KILL_THREAD


@pytest.mark.parametrize("family, verdict", [(1, ALLOW), (2, ALLOW), (10, ALLOW), (16, ALLOW), (37, ALLOW),
                                             (38, EPERM), (39, ALLOW), (40, EPERM), (41, ALLOW), (46, ALLOW),
                                             ((1 << 32) + 2, ALLOW), ((1 << 32) + 40, ALLOW)])
def test_default_program_socket_families(default_program: Program, family: int, verdict: int) -> None:
    assert call(default_program, "socket", family, 1, 0) == verdict


def test_default_program_clone_and_personality(default_program: Program) -> None:
    sigchld, thread = 17, 0x3D0F00  # fork(), and what glibc passes for a pthread
    assert call(default_program, "clone", sigchld) == ALLOW
    assert call(default_program, "clone", thread) == ALLOW
    for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x02000000, 0x04000000, 0x08000000):
        assert call(default_program, "clone", sigchld | flag) == EPERM, hex(flag)
    assert call(default_program, "clone", (1 << 32) | sigchld) == ALLOW  # bits the mask does not cover
    for persona, verdict in ((0, ALLOW), (8, ALLOW), (0x20000, ALLOW), (0x20008, ALLOW), (0xFFFFFFFF, ALLOW),
                             (0x40000, EPERM), (0x0400000, EPERM), ((1 << 64) - 1, EPERM)):
        assert call(default_program, "personality", persona) == verdict, hex(persona)
    # i386 and x32 compare the low 32 bits only, as libseccomp does
    assert call(default_program, "personality", (1 << 64) - 1, abi=I386) == ALLOW


def test_cap_sys_admin_opens_the_namespace_calls() -> None:
    program = compile_profile(default_profile(), DEFAULT_CAPABILITIES | {"CAP_SYS_ADMIN"}, kernel=(6, 1))
    assert program is not None
    for name in ("mount", "umount2", "unshare", "setns", "bpf", "clone3"):
        assert call(program, name) == ALLOW, name
    assert call(program, "clone", 0x10000011) == ALLOW
    assert call(program, "kexec_load") == EPERM


@pytest.mark.parametrize("caps", [DEFAULT_CAPABILITIES, DEFAULT_CAPABILITIES | {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"},
                                  frozenset()], ids=["default", "admin+ptrace", "none"])
def test_default_profile_agrees_with_the_oracle(caps: frozenset[str]) -> None:
    p = default_profile()
    rules = resolve(p, caps, kernel=(6, 1))
    program = compile_profile(p, caps, kernel=(6, 1))
    assert program is not None and p.default_action is not None
    assert assert_agrees(program, rules, p.default_action, p.default_errno_ret, ALL_X86, seed=1) > 10000


# ---- small profiles ---------------------------------------------------------------------------------------------


def compile_json(untrusted: str) -> Program:
    program = compile_profile(parse_profile(untrusted), set(), kernel=(6, 1))
    assert program is not None
    return program


def test_errno_ret_and_an_allow_default() -> None:
    program = compile_json('{"defaultAction": "SCMP_ACT_ALLOW", '
                           '"syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99}]}')
    assert call(program, "uname") == 0x50000 | 99
    assert call(program, "uname", abi=I386) == KILL_THREAD  # no architectures: the native ABI alone
    assert call(program, "read") == ALLOW
    assert run(program, AUDIT_ARCH_X86_64, 1000) == ALLOW  # no ENOSYS stub under an allowing default
    assert run(program, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT) == KILL_THREAD  # x32 is not listed


def test_every_action() -> None:
    doc = ('{"defaultAction": "SCMP_ACT_KILL_PROCESS", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": ['
           '{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["write"], "action": "SCMP_ACT_LOG"},'
           '{"names": ["open"], "action": "SCMP_ACT_TRAP"}, {"names": ["close"], "action": "SCMP_ACT_TRACE"},'
           '{"names": ["stat"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},'
           '{"names": ["fstat"], "action": "SCMP_ACT_KILL"}, {"names": ["lstat"], "action": "SCMP_ACT_KILL_THREAD"},'
           '{"names": ["mmap"], "action": "SCMP_ACT_ERRNO"}]}')
    program = compile_json(doc)
    want = {"read": ALLOW, "write": 0x7FFC0000, "open": 0x30000, "close": 0x7FF00000 | errno.EPERM,
            "stat": 0x7FF00000 | 7, "fstat": 0, "lstat": 0, "mmap": EPERM, "lseek": 0x80000000}
    assert {name: call(program, name) for name in want} == want
    assert call(program, "getpid") == ENOSYS  # above the highest named number (mmap, 9)


@pytest.mark.parametrize("op", list(Op))
@pytest.mark.parametrize("value", [0, 1, 0x28, 0xFFFFFFFF, 1 << 32, (1 << 32) + 0x28, 0x7E020000,
                                   0x123456789ABCDEF0, (1 << 64) - 1])
def test_each_operator_on_64_bit_values(op: Op, value: int) -> None:
    rules = [Rule("personality", Action.ERRNO, 33, (Arg(2, value, op, value_two=0x2800000028),))]
    program = compile_rules(rules, default_action=Action.ALLOW, arches=ALL_X86)
    assert assert_agrees(program, rules, Action.ALLOW, None, ALL_X86, seed=value) > 0
    for x in interesting([value, 0x2800000028]):
        args = (0, 0, x)
        assert run(program, AUDIT_ARCH_X86_64, 135, args) == oracle(rules, Action.ALLOW, None, ALL_X86,
                                                                     AUDIT_ARCH_X86_64, 135, args)


def test_semantics_libseccomp_and_runc_give() -> None:
    eq40 = (Arg(0, 40, Op.EQ),)
    rules = [
        Rule("socket", Action.ERRNO, 7, eq40),  # an argument rule ...
        Rule("socket", Action.ERRNO, 5),  # ... is overridden by an unconditional one
        Rule("socket", Action.ALLOW),  # and the first unconditional rule wins
        Rule("read", Action.ERRNO, None, eq40),  # the default's verdict: dropped, as runc does
        Rule("read", Action.TRAP, None, (Arg(0, 39, Op.GT),)),
        Rule("write", Action.TRAP, None, eq40),  # first matching argument rule wins
        Rule("write", Action.LOG, None, (Arg(1, 1, Op.EQ),)),
    ]
    program = compile_rules(rules, default_action=Action.ERRNO, arches=("SCMP_ARCH_X86_64",))
    assert call(program, "socket", 40) == call(program, "socket", 2) == 0x50005
    assert call(program, "read", 40) == 0x30000  # not EPERM: the first read rule was dropped
    assert call(program, "write", 40, 1) == 0x30000 and call(program, "write", 2, 1) == 0x7FFC0000
    assert_agrees(program, rules, Action.ERRNO, None, ("SCMP_ARCH_X86_64",), seed=3)


def test_rules_that_compare_alike_and_disagree_are_refused_as_libseccomp_does() -> None:
    rules = [Rule("socket", Action.ALLOW, None, (Arg(0, 1, Op.EQ), Arg(1, 2, Op.EQ))),
             Rule("socket", Action.TRAP, None, (Arg(1, 2, Op.EQ), Arg(0, 1, Op.EQ)))]
    with pytest.raises(InvalidArgument) as raised:
        compile_rules(rules, default_action=Action.ERRNO)
    assert str(raised.value) == ("seccomp profile: socket: two rules compare the same arguments "
                                 "and disagree on the action")


def test_x32_alone_and_i386_alone() -> None:
    rules = [Rule("read", Action.ALLOW), Rule("rt_sigaction", Action.ALLOW)]
    for arches in (("SCMP_ARCH_X32",), ("SCMP_ARCH_X86",), ("SCMP_ARCH_X86_64", "SCMP_ARCH_X32")):
        program = compile_rules(rules, default_action=Action.ERRNO, arches=arches)
        assert_agrees(program, rules, Action.ERRNO, None, arches, seed=5)
    with pytest.raises(InvalidArgument, match="no x86 architecture"):
        compile_rules(rules, default_action=Action.ERRNO, arches=("SCMP_ARCH_AARCH64",))


def test_random_profiles_agree_with_the_oracle() -> None:
    rnd = random.Random(2024)
    names = ["read", "write", "personality", "socket", "ioctl", "mmap", "prctl", "fcntl", "kill", "uname",
             "rt_sigaction", "readv", "socketcall", "arch_prctl", "pwritev2", "removexattrat", "clone"]
    values = [0, 1, 7, 38, 40, 0xFFFFFFFF, 1 << 32, (1 << 32) + 40, 0x7E020000, (1 << 64) - 1, 1 << 63]
    actions = [Action.ALLOW, Action.ERRNO, Action.TRAP, Action.KILL_PROCESS, Action.LOG, Action.KILL_THREAD]
    for trial in range(40):
        rules = []
        for _ in range(rnd.randint(1, 10)):
            args = tuple(Arg(i, rnd.choice(values), rnd.choice(list(Op)), rnd.choice(values))
                         for i in rnd.sample(range(6), rnd.randint(0, 3)))
            action = rnd.choice(actions)
            rules.append(Rule(rnd.choice(names), action, rnd.choice([None, 5, 77]) if action.takes_errno else None,
                              args))
        default = rnd.choice([Action.ALLOW, Action.ERRNO, Action.KILL_THREAD])
        arches = rnd.choice([ALL_X86, ("SCMP_ARCH_X86_64",), ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")])
        try:
            program = compile_rules(rules, default_action=default, arches=arches)
        except InvalidArgument:  # alike comparisons with different actions: refused, tested above
            continue
        assert_agrees(program, rules, default, None, arches, seed=trial)


# ---- long jumps, limits, encoding -------------------------------------------------------------------------------


def test_jumps_longer_than_255_go_through_trampolines() -> None:
    # 150 argument rules on one call put ~750 instructions between the search tree's branches
    rules = [Rule("ioctl", Action.ALLOW, None, (Arg(1, 0x5400 + i, Op.EQ),)) for i in range(150)]
    rules += [Rule(name, Action.ALLOW) for name in ("read", "write", "close", "getpid", "exit_group", "uname")]
    program = compile_rules(rules, default_action=Action.ERRNO, arches=ALL_X86)
    assert any(insn.code == JMP_JA for insn in program)
    assert all(insn.jt <= 255 and insn.jf <= 255 for insn in program)
    assert len(program) > 3 * 255
    assert_agrees(program, rules, Action.ERRNO, None, ALL_X86, seed=9)
    for i in (0, 75, 149, 150):
        assert call(program, "ioctl", 3, 0x5400 + i) == (ALLOW if i < 150 else EPERM)


def test_a_program_over_the_kernels_limit_is_refused() -> None:
    rules = [Rule("ioctl", Action.ALLOW, None, (Arg(1, i, Op.EQ),)) for i in range(1000)]
    with pytest.raises(InvalidArgument, match=r"compiles to \d+ BPF instructions; the kernel takes at most 4096"):
        compile_rules(rules, default_action=Action.ERRNO)


def test_encode_is_struct_sock_filter() -> None:
    program = (Insn(0x20, 0, 0, 4), Insn(0x15, 1, 2, 0xC000003E), Insn(0x06, 0, 0, ALLOW))
    raw = encode(program)
    assert len(raw) == 24
    assert struct.unpack("=HBBI", raw[8:16]) == (0x15, 1, 2, 0xC000003E)


def test_flag_bits() -> None:
    p = parse_profile('{"defaultAction": "SCMP_ACT_ERRNO", '
                      '"flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}')
    assert flag_bits(p) == 2 | 4


def test_an_empty_profile_compiles_to_nothing() -> None:
    assert compile_profile(parse_profile("{}"), set()) is None


@pytest.mark.parametrize("program, problem", [
    ((Insn(0x20, 0, 0, 0),), "the last instruction must return"),
    ((Insn(0x20, 0, 0, 2), Insn(0x06, 0, 0, 0)), "aligned word loads"),
    ((Insn(0x20, 0, 0, 64), Insn(0x06, 0, 0, 0)), "aligned word loads"),
    ((Insn(0x15, 0, 5, 0), Insn(0x06, 0, 0, 0)), "jump beyond the end"),
    ((Insn(0x05, 0, 0, 1), Insn(0x06, 0, 0, 0)), "ja beyond the end"),
    ((Insn(0x16, 0, 0, 0), Insn(0x06, 0, 0, 0)), "unsupported return"),
    ((), "0 instructions"),
])
def test_the_interpreter_refuses_what_the_kernel_refuses(program: tuple[Insn, ...], problem: str) -> None:
    with pytest.raises(interp.BadProgram, match=problem):
        interp.check(program)
