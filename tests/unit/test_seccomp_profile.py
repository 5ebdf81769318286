"""Docker seccomp profiles: parsing untrusted JSON, the default profile, resolution by capability."""

from __future__ import annotations

import dataclasses
import json

import pytest

from portside.errors import InvalidArgument
from portside.runtime.seccomp.default import DEFAULT_CAPABILITIES, default_profile
from portside.runtime.seccomp.profile import (
    Action, Arg, ArchMap, Condition, Op, Profile, Rule, Syscall, filter_arches, parse_profile, resolve,
)
from portside.runtime.seccomp.syscalls import ABIS, known

ALLOW_READ = {"names": ["read"], "action": "SCMP_ACT_ALLOW"}


def profile(**fields: object) -> bytes:
    return json.dumps({"defaultAction": "SCMP_ACT_ERRNO", **fields}).encode()


def names(rules: list[Rule], action: Action | None = None) -> set[str]:
    return {r.name for r in rules if action is None or r.action is action}


# ---- parsing ----------------------------------------------------------------------------------------------------


def test_parse_a_full_profile() -> None:
    doc = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                    {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": None}],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "comment": "why",
             "args": [{"index": 0, "value": 18446744073709551615, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"}],
             "includes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["amd64"], "minKernel": "4.8"},
             "excludes": {"arches": ["s390x"]}},
            {"names": ["kill"], "action": "SCMP_ACT_KILL"},
        ],
    }
    assert parse_profile(json.dumps(doc)) == Profile(
        default_action=Action.ERRNO,
        default_errno_ret=1,
        arch_map=(ArchMap("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86",)), ArchMap("SCMP_ARCH_RISCV64")),
        flags=("SECCOMP_FILTER_FLAG_LOG",),
        syscalls=(
            Syscall(names=("read", "write"), action=Action.ALLOW),
            Syscall(names=("personality",), action=Action.ERRNO, errno_ret=22, comment="why",
                    args=(Arg(index=0, value=2**64 - 1, op=Op.MASKED_EQ, value_two=7),),
                    includes=Condition(caps=("CAP_SYS_ADMIN",), arches=("amd64",), min_kernel=(4, 8)),
                    excludes=Condition(arches=("s390x",))),
            Syscall(names=("kill",), action=Action.KILL_THREAD),  # SCMP_ACT_KILL is KILL_THREAD
        ),
    )


def test_parse_reads_json_as_go_does() -> None:
    # keys without regard to case, null as absent, unknown keys ignored, the deprecated "name"
    doc = {"DEFAULTACTION": "SCMP_ACT_ALLOW", "architectures": None, "unknown": [1, 2],
           "Syscalls": [{"name": "uname", "Action": "SCMP_ACT_ERRNO", "errnoret": 99, "args": None,
                         "includes": None}]}
    assert parse_profile(json.dumps(doc)) == Profile(
        default_action=Action.ALLOW, syscalls=(Syscall(names=("uname",), action=Action.ERRNO, errno_ret=99),))


def test_an_empty_profile_means_unconfined() -> None:
    empty = parse_profile(b"{}")
    assert not empty.enabled
    assert parse_profile(profile()).enabled


BAD = [
    (b"{", "Decoding seccomp profile failed: Expecting property name enclosed in double quotes: "
           "line 1 column 2 (char 1)"),
    (b"\xff", "Decoding seccomp profile failed: 'utf-8' codec can't decode byte 0xff in position 0: "
              "invalid start byte"),
    (b"[]", "seccomp profile: expected an object, got an array"),
    (b'{"defaultAction": 5}', "seccomp profile: defaultAction: expected a string, got the number 5"),
    (b'{"defaultAction": "SCMP_ACT_NOPE"}', 'seccomp profile: defaultAction: unknown action "SCMP_ACT_NOPE"'),
    (b'{"defaultAction": "SCMP_ACT_NOTIFY"}',
     "seccomp profile: defaultAction: SCMP_ACT_NOTIFY is not supported: portside runs no seccomp agent"),
    (profile(defaultAction="SCMP_ACT_ALLOW", defaultErrnoRet=1),
     "seccomp profile: defaultErrnoRet: SCMP_ACT_ALLOW does not take an errno"),
    (profile(defaultErrnoRet=-1),
     "seccomp profile: defaultErrnoRet: expected an unsigned 64-bit integer, got the number -1"),
    (profile(defaultErrnoRet=1.5),
     "seccomp profile: defaultErrnoRet: expected an unsigned 64-bit integer, got the number 1.5"),
    (profile(defaultErrnoRet=True),
     "seccomp profile: defaultErrnoRet: expected an unsigned 64-bit integer, got a boolean"),
    (profile(defaultErrnoRet=65536),
     "seccomp profile: defaultErrnoRet: 65536 does not fit in the 16 bits seccomp returns"),
    (json.dumps({"syscalls": [ALLOW_READ]}).encode(),
     "seccomp profile: defaultAction: required when syscalls are listed"),
    (profile(architectures=["SCMP_ARCH_X86_64"], archMap=[{"architecture": "SCMP_ARCH_X86_64"}]),
     "seccomp profile: both 'architectures' and 'archMap' are specified in the seccomp profile, "
     "use either 'architectures' or 'archMap'"),
    (profile(architectures=["SCMP_ARCH_Z80"]),
     'seccomp profile: architectures[0]: unknown architecture "SCMP_ARCH_Z80"'),
    (profile(archMap=[{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["x86"]}]),
     'seccomp profile: archMap[0].subArchitectures[0]: unknown architecture "x86"'),
    (profile(archMap=[{"subArchitectures": []}]), "seccomp profile: archMap[0].architecture: required"),
    (profile(flags=["SECCOMP_FILTER_FLAG_BOGUS"]),
     'seccomp profile: flags[0]: unknown flag "SECCOMP_FILTER_FLAG_BOGUS"'),
    (profile(listenerPath="/run/agent.sock"),
     "seccomp profile: listenerPath: seccomp notify agents (SCMP_ACT_NOTIFY) are not supported"),
    (profile(syscalls={}), "seccomp profile: syscalls: expected an array, got an object"),
    (profile(syscalls=["read"]), "seccomp profile: syscalls[0]: expected an object, got a string"),
    (profile(syscalls=[ALLOW_READ, {"names": [], "action": "SCMP_ACT_ALLOW"}]),
     "seccomp profile: syscalls[1].names: must name at least one syscall"),
    (profile(syscalls=[{"names": ["read", ""], "action": "SCMP_ACT_ALLOW"}]),
     "seccomp profile: syscalls[0].names[1]: empty string is not a valid syscall"),
    (profile(syscalls=[{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]),
     "seccomp profile: syscalls[0]: both 'name' and 'names' are specified in the seccomp profile, "
     "use either 'name' or 'names'"),
    (profile(syscalls=[{"names": ["read"]}]), "seccomp profile: syscalls[0].action: required"),
    (profile(syscalls=[{"names": [7], "action": "SCMP_ACT_ALLOW"}]),
     "seccomp profile: syscalls[0].names[0]: expected a string, got the number 7"),
    (profile(syscalls=[{**ALLOW_READ, "errnoRet": 1}]),
     "seccomp profile: syscalls[0].errnoRet: SCMP_ACT_ALLOW does not take an errno"),
    (profile(syscalls=[{**ALLOW_READ, "comment": 3}]),
     "seccomp profile: syscalls[0].comment: expected a string, got the number 3"),
    (profile(syscalls=[{**ALLOW_READ, "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
     "seccomp profile: syscalls[0].args[0].index: 6 is out of range: a syscall has arguments 0 to 5"),
    (profile(syscalls=[{**ALLOW_READ, "args": [{"index": 0, "value": 2**64, "op": "SCMP_CMP_EQ"}]}]),
     "seccomp profile: syscalls[0].args[0].value: expected an unsigned 64-bit integer, "
     "got the number 18446744073709551616"),
    (profile(syscalls=[{**ALLOW_READ, "args": [{"index": 0, "value": 1, "valueTwo": -2, "op": "SCMP_CMP_EQ"}]}]),
     "seccomp profile: syscalls[0].args[0].valueTwo: expected an unsigned 64-bit integer, got the number -2"),
    (profile(syscalls=[{**ALLOW_READ, "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]),
     'seccomp profile: syscalls[0].args[0].op: unknown operator "SCMP_CMP_XX"'),
    (profile(syscalls=[{**ALLOW_READ, "args": [{"index": 0, "op": "SCMP_CMP_EQ"}]}]),
     "seccomp profile: syscalls[0].args[0].value: required"),
    (profile(syscalls=[{**ALLOW_READ, "args": {"index": 0}}]),
     "seccomp profile: syscalls[0].args: expected an array, got an object"),
    (profile(syscalls=[{**ALLOW_READ, "includes": {"minKernel": "4"}}]),
     'seccomp profile: syscalls[0].includes.minKernel: invalid kernel version "4", expected "<kernel>.<major>"'),
    (profile(syscalls=[{**ALLOW_READ, "includes": {"minKernel": "0.0"}}]),
     'seccomp profile: syscalls[0].includes.minKernel: invalid kernel version "0.0", expected "<kernel>.<major>"'),
    (profile(syscalls=[{**ALLOW_READ, "excludes": {"minKernel": 4.8}}]),
     "seccomp profile: syscalls[0].excludes.minKernel: expected a string, got the number 4.8"),
    (profile(syscalls=[{**ALLOW_READ, "includes": {"arches": ["vax"]}}]),
     'seccomp profile: syscalls[0].includes.arches[0]: unknown architecture "vax"'),
    (profile(syscalls=[{**ALLOW_READ, "excludes": {"caps": "CAP_SYS_ADMIN"}}]),
     "seccomp profile: syscalls[0].excludes.caps: expected an array, got a string"),
]


@pytest.mark.parametrize("untrusted, message", BAD, ids=range(len(BAD)))
def test_parse_refuses_with_a_message_naming_the_field(untrusted: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_profile(untrusted)
    assert str(raised.value) == message


# ---- resolution -------------------------------------------------------------------------------------------------

KERNEL = (6, 1)


def default_rules(caps: frozenset[str] | set[str] = DEFAULT_CAPABILITIES, arch: str = "amd64",
                  kernel: tuple[int, int] = KERNEL) -> list[Rule]:
    return resolve(default_profile(), caps, arch, kernel=kernel)


def test_default_profile_is_an_allow_list_failing_with_eperm() -> None:
    p = default_profile()
    assert (p.default_action, p.default_errno_ret) == (Action.ERRNO, 1)
    assert filter_arches(p) == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    allowed = names(default_rules(), Action.ALLOW)
    assert {"read", "write", "openat", "getpid", "execve", "socketcall", "arch_prctl", "modify_ldt", "chroot",
            "ptrace", "process_vm_readv"} <= allowed
    refused = {"keyctl", "add_key", "request_key", "kexec_load", "reboot", "bpf", "perf_event_open", "mount",
               "umount2", "swapon", "unshare", "setns", "init_module", "open_by_handle_at", "io_uring_setup",
               "userfaultfd", "lsm_get_self_attr", "clock_settime", "iopl", "acct", "syslog", "kcmp"}
    assert not refused & allowed


def test_every_name_in_the_default_profile_is_an_x86_syscall_or_another_machines() -> None:
    everything = {n for e in default_profile().syscalls for n in e.names}
    assert {n for n in everything if not known(n)} == {
        "arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls", "sync_file_range2",
        "swapcontext", "s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr", "riscv_flush_icache",
        "riscv_hwprobe",
        "recv", "send",  # socketcall(2) multiplexed names (libseccomp pseudo-calls); x86 has no such syscall
    }


def test_cap_sys_admin_unlocks_mount_and_namespaces() -> None:
    without = default_rules()
    with_admin = default_rules(DEFAULT_CAPABILITIES | {"CAP_SYS_ADMIN"})
    unlocked = {"mount", "umount2", "unshare", "setns", "bpf", "perf_event_open", "sethostname", "fsopen", "syslog"}
    assert not unlocked & names(without, Action.ALLOW)
    assert unlocked <= names(with_admin, Action.ALLOW)
    # without it, clone may create no namespace and clone3 says ENOSYS (libc then falls back to clone) ...
    assert [r for r in without if r.name == "clone"] == [
        Rule("clone", Action.ALLOW, None, (Arg(index=0, value=0x7E020000, op=Op.MASKED_EQ),))]
    assert [r for r in without if r.name == "clone3"] == [Rule("clone3", Action.ERRNO, 38)]
    # ... with it, both are allowed outright and the restricted forms are excluded
    assert [r for r in with_admin if r.name in ("clone", "clone3")] == [
        Rule("clone", Action.ALLOW), Rule("clone3", Action.ALLOW)]


@pytest.mark.parametrize("cap, unlocked", [
    ("CAP_SYS_BOOT", {"reboot"}),
    ("CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}),
    ("CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}),
    ("CAP_SYS_TIME", {"settimeofday", "clock_settime"}),
    ("CAP_SYS_NICE", {"mbind", "set_mempolicy", "get_mempolicy"}),
    ("CAP_BPF", {"bpf"}),
    ("CAP_PERFMON", {"perf_event_open"}),
    ("CAP_SYSLOG", {"syslog"}),
    ("CAP_DAC_READ_SEARCH", {"open_by_handle_at"}),
    ("CAP_SYS_RAWIO", {"iopl", "ioperm"}),
])
def test_each_capability_unlocks_its_calls(cap: str, unlocked: set[str]) -> None:
    assert not unlocked & names(default_rules(), Action.ALLOW)
    assert unlocked <= names(default_rules(DEFAULT_CAPABILITIES | {cap}), Action.ALLOW)


def test_chroot_follows_cap_sys_chroot_which_docker_grants_by_default() -> None:
    assert "chroot" in names(default_rules())
    assert "chroot" not in names(default_rules(DEFAULT_CAPABILITIES - {"CAP_SYS_CHROOT"}))


def test_includes_and_excludes_by_arch_and_kernel() -> None:
    amd64 = names(default_rules())
    arm64 = names(default_rules(arch="arm64"))
    assert {"arch_prctl", "modify_ldt"} <= amd64 and not {"arch_prctl", "modify_ldt"} & arm64
    assert {"cacheflush", "set_tls"} <= arm64 and not {"cacheflush", "set_tls"} & amd64
    # the s390 form of the clone rule tests the second argument
    s390x = [r for r in default_rules(arch="s390x") if r.name == "clone"]
    assert [a.index for r in s390x for a in r.args] == [1]
    # ptrace is allowed from kernel 4.8 on (seccomp could be bypassed with it before)
    assert "ptrace" not in names(default_rules(kernel=(4, 7)))
    assert "ptrace" in names(default_rules(kernel=(4, 8)))


def test_excludes_drop_an_entry_when_any_listed_cap_is_held_and_includes_need_them_all() -> None:
    p = Profile(default_action=Action.ERRNO, syscalls=(
        Syscall(("a",), Action.ALLOW, includes=Condition(caps=("CAP_X", "CAP_Y"))),
        Syscall(("b",), Action.ALLOW, excludes=Condition(caps=("CAP_X", "CAP_Y"))),
        Syscall(("c",), Action.ALLOW, excludes=Condition(min_kernel=(5, 0))),
    ))
    assert names(resolve(p, {"CAP_X"}, kernel=(4, 19))) == {"c"}
    assert names(resolve(p, {"CAP_X", "CAP_Y"}, kernel=(5, 0))) == {"a"}
    assert names(resolve(p, set(), kernel=(5, 10))) == {"b"}


def test_a_repeated_argument_index_makes_one_rule_per_comparison_as_runc_does() -> None:
    eq = [Arg(0, 1, Op.EQ), Arg(0, 2, Op.EQ)]
    both = [Arg(0, 1, Op.EQ), Arg(1, 2, Op.EQ)]
    p = Profile(default_action=Action.ERRNO, syscalls=(
        Syscall(("a",), Action.ALLOW, args=tuple(eq)), Syscall(("b",), Action.ALLOW, args=tuple(both))))
    assert resolve(p, set()) == [Rule("a", Action.ALLOW, None, (eq[0],)), Rule("a", Action.ALLOW, None, (eq[1],)),
                                 Rule("b", Action.ALLOW, None, tuple(both))]


def test_filter_arches_uses_architectures_else_the_hosts_arch_map_entry() -> None:
    p = parse_profile(profile(architectures=["SCMP_ARCH_X86_64"]))
    assert filter_arches(p) == ("SCMP_ARCH_X86_64",)
    assert filter_arches(dataclasses.replace(default_profile(), arch_map=())) == ("SCMP_ARCH_X86_64",)
    assert filter_arches(default_profile(), "arm64") == ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")


def test_resolve_refuses_an_unknown_host_arch() -> None:
    with pytest.raises(InvalidArgument, match="unknown architecture 'vax'"):
        resolve(default_profile(), set(), "vax")


def test_syscall_tables() -> None:
    x86_64, x32, i386 = ABIS["SCMP_ARCH_X86_64"], ABIS["SCMP_ARCH_X32"], ABIS["SCMP_ARCH_X86"]
    assert (x86_64.number("read"), x86_64.number("socket"), x86_64.number("seccomp")) == (0, 41, 317)
    assert (i386.number("read"), i386.number("socketcall"), i386.number("socket")) == (3, 102, 359)
    assert x32.number("read") == 0x40000000 and x32.number("rt_sigaction") == 0x40000000 + 512
    assert x86_64.number("socketcall") is None and x32.number("uretprobe") == 0x40000000 + 335
    # newer than Debian 12's headers: the generator's own list
    assert x86_64.number("removexattrat") == i386.number("removexattrat") == 466
    assert x86_64.number("uretprobe") == 335 and i386.number("uretprobe") is None
