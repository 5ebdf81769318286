"""Docker's seccomp profile: typed records, a parser for untrusted JSON, resolution.

A profile (``docker run --security-opt seccomp=profile.json``, or the
built-in default) is the runtime spec's ``linux.seccomp`` object plus two
Docker extensions: ``archMap`` (architectures chosen by the host's) and, on
each syscall entry, ``includes``/``excludes`` conditions on the container's
capabilities, the host's architecture and its kernel version.

:func:`resolve` applies those conditions the way moby's ``setupSeccomp``
does and flattens the entries into one :class:`Rule` per syscall name, which
is what the BPF compiler takes. The parser accepts what Go's
``encoding/json`` accepts for these types (unknown keys ignored, keys matched
without regard to case, ``null`` meaning absent) and rejects the rest with
an :class:`~portside.errors.InvalidArgument` naming the field.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import json
import os
import re
from collections.abc import Collection, Mapping
from typing import Any

from portside.errors import InvalidArgument
from portside.runtime.seccomp.syscalls import ARCH_NAMES, NATIVE_ARCH_NAMES, NATIVE_TO_SCMP

MAX_ARGS = 6  # a system call has at most six arguments
MAX_ERRNO = 0xFFFF  # SECCOMP_RET_DATA: the errno travels in the low 16 bits of the verdict
UINT64_MAX = (1 << 64) - 1
DEFAULT_ERRNO = errno.EPERM  # what ERRNO and TRACE return when the profile names no errno, as runc does


class Action(enum.Enum):
    """What the kernel does with a matching call (libseccomp's SCMP_ACT_* names)."""

    KILL_THREAD = "SCMP_ACT_KILL_THREAD"
    KILL_PROCESS = "SCMP_ACT_KILL_PROCESS"
    TRAP = "SCMP_ACT_TRAP"
    ERRNO = "SCMP_ACT_ERRNO"
    TRACE = "SCMP_ACT_TRACE"
    LOG = "SCMP_ACT_LOG"
    ALLOW = "SCMP_ACT_ALLOW"

    @property
    def takes_errno(self) -> bool:
        """ERRNO returns the errno; TRACE hands it to the tracer (runc passes errnoRet as the message)."""
        return self in (Action.ERRNO, Action.TRACE)


_ACTIONS = {a.value: a for a in Action} | {"SCMP_ACT_KILL": Action.KILL_THREAD}


class Op(enum.Enum):
    """How an argument is compared; every comparison is of unsigned 64-bit values."""

    NE = "SCMP_CMP_NE"
    LT = "SCMP_CMP_LT"
    LE = "SCMP_CMP_LE"
    EQ = "SCMP_CMP_EQ"
    GE = "SCMP_CMP_GE"
    GT = "SCMP_CMP_GT"
    MASKED_EQ = "SCMP_CMP_MASKED_EQ"  # (arg & value) == (valueTwo & value), as libseccomp masks both


_OPS = {o.value: o for o in Op}

FLAGS = {  # the runtime spec's names -> SECCOMP_FILTER_FLAG_* bits for seccomp(2)
    "SECCOMP_FILTER_FLAG_TSYNC": 1 << 0,
    "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 1 << 5,
}


@dataclasses.dataclass(frozen=True)
class Arg:
    """One argument comparison: ``args[index] <op> value``."""

    index: int
    value: int
    op: Op
    value_two: int = 0


@dataclasses.dataclass(frozen=True)
class Condition:
    """An ``includes`` or ``excludes`` object; an empty field does not take part."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class Syscall:
    """One entry of ``syscalls``: an action for some calls, perhaps only for some arguments."""

    names: tuple[str, ...]
    action: Action
    errno_ret: int | None = None
    args: tuple[Arg, ...] = ()
    includes: Condition = Condition()
    excludes: Condition = Condition()
    comment: str = ""


@dataclasses.dataclass(frozen=True)
class ArchMap:
    """An ``archMap`` entry: on a host of ``arch``, filter these sub-architectures too."""

    arch: str
    sub_arches: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Profile:
    """A whole profile. ``default_action`` None (and no syscalls) means Docker runs unconfined."""

    default_action: Action | None
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    arch_map: tuple[ArchMap, ...] = ()
    flags: tuple[str, ...] = ()
    syscalls: tuple[Syscall, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.default_action is not None


@dataclasses.dataclass(frozen=True)
class Rule:
    """One resolved rule: a syscall by name, an action, and the comparisons that must all hold."""

    name: str
    action: Action
    errno_ret: int | None = None
    args: tuple[Arg, ...] = ()


# ---- parsing ---------------------------------------------------------------------------------------------------


def parse_profile(untrusted_json: str | bytes) -> Profile:
    """Parse a profile document; every error is an InvalidArgument that names the field."""
    try:
        untrusted = json.loads(untrusted_json)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise InvalidArgument(f"Decoding seccomp profile failed: {e}") from None
    return profile_from_json(untrusted)


def profile_from_json(untrusted: Any) -> Profile:
    """Check and convert an already decoded JSON value."""
    doc = _object(untrusted, "")
    architectures = _strings(_field(doc, "architectures"), "architectures")
    arch_map = tuple(_arch_map(entry, f"archMap[{i}]")
                     for i, entry in enumerate(_array(_field(doc, "archMap"), "archMap")))
    if architectures and arch_map:
        raise _invalid("", "both 'architectures' and 'archMap' are specified in the seccomp profile, "
                           "use either 'architectures' or 'archMap'")
    for i, name in enumerate(architectures):
        _check_arch(name, f"architectures[{i}]")
    flags = _strings(_field(doc, "flags"), "flags")
    for i, flag in enumerate(flags):
        if flag not in FLAGS:
            raise _invalid(f"flags[{i}]", f"unknown flag {json.dumps(flag)}")
    if _field(doc, "listenerPath") is not None:
        raise _invalid("listenerPath", "seccomp notify agents (SCMP_ACT_NOTIFY) are not supported")
    syscalls = tuple(_syscall(entry, f"syscalls[{i}]")
                     for i, entry in enumerate(_array(_field(doc, "syscalls"), "syscalls")))
    raw_default = _field(doc, "defaultAction")
    default_action = None if raw_default is None or raw_default == "" else _action(raw_default, "defaultAction")
    if default_action is None and syscalls:
        raise _invalid("defaultAction", "required when syscalls are listed")
    default_errno = _errno(_field(doc, "defaultErrnoRet"), "defaultErrnoRet", default_action)
    return Profile(default_action, default_errno, architectures, arch_map, flags, syscalls)


def _syscall(untrusted: Any, where: str) -> Syscall:
    entry = _object(untrusted, where)
    name = _field(entry, "name")
    names = _strings(_field(entry, "names"), f"{where}.names")
    if name is not None and name != "":
        if names:
            raise _invalid(where, "both 'name' and 'names' are specified in the seccomp profile, "
                                  "use either 'name' or 'names'")
        names = (_string(name, f"{where}.name"),)
    if not names:
        raise _invalid(f"{where}.names", "must name at least one syscall")
    for i, n in enumerate(names):
        if not n:
            raise _invalid(f"{where}.names[{i}]", "empty string is not a valid syscall")
    raw_action = _field(entry, "action")
    if raw_action is None:
        raise _invalid(f"{where}.action", "required")
    action = _action(raw_action, f"{where}.action")
    errno_ret = _errno(_field(entry, "errnoRet"), f"{where}.errnoRet", action)
    args = tuple(_arg(a, f"{where}.args[{i}]") for i, a in enumerate(_array(_field(entry, "args"), f"{where}.args")))
    comment = _field(entry, "comment")
    return Syscall(
        names=names, action=action, errno_ret=errno_ret, args=args,
        includes=_condition(_field(entry, "includes"), f"{where}.includes"),
        excludes=_condition(_field(entry, "excludes"), f"{where}.excludes"),
        comment="" if comment is None else _string(comment, f"{where}.comment"),
    )


def _arg(untrusted: Any, where: str) -> Arg:
    obj = _object(untrusted, where)
    index = _uint(_required(obj, "index", where), f"{where}.index", UINT64_MAX)
    if index >= MAX_ARGS:
        raise _invalid(f"{where}.index", f"{index} is out of range: a syscall has arguments 0 to {MAX_ARGS - 1}")
    value = _uint(_required(obj, "value", where), f"{where}.value", UINT64_MAX)
    raw_two = _field(obj, "valueTwo")
    value_two = 0 if raw_two is None else _uint(raw_two, f"{where}.valueTwo", UINT64_MAX)
    raw_op = _string(_required(obj, "op", where), f"{where}.op")
    if raw_op not in _OPS:
        raise _invalid(f"{where}.op", f"unknown operator {json.dumps(raw_op)}")
    return Arg(index=index, value=value, op=_OPS[raw_op], value_two=value_two)


def _condition(untrusted: Any, where: str) -> Condition:
    if untrusted is None:
        return Condition()
    obj = _object(untrusted, where)
    arches = _strings(_field(obj, "arches"), f"{where}.arches")
    for i, arch in enumerate(arches):
        if arch not in NATIVE_ARCH_NAMES:
            raise _invalid(f"{where}.arches[{i}]", f"unknown architecture {json.dumps(arch)}")
    raw_kernel = _field(obj, "minKernel")
    return Condition(
        caps=_strings(_field(obj, "caps"), f"{where}.caps"),
        arches=arches,
        min_kernel=None if raw_kernel is None else _kernel_version(raw_kernel, f"{where}.minKernel"),
    )


def _arch_map(untrusted: Any, where: str) -> ArchMap:
    obj = _object(untrusted, where)
    arch = _string(_required(obj, "architecture", where), f"{where}.architecture")
    _check_arch(arch, f"{where}.architecture")
    subs = _strings(_field(obj, "subArchitectures"), f"{where}.subArchitectures")
    for i, sub in enumerate(subs):
        _check_arch(sub, f"{where}.subArchitectures[{i}]")
    return ArchMap(arch, subs)


_KERNEL_VERSION = re.compile(r"(\d+)\.(\d+)")


def _kernel_version(untrusted: Any, where: str) -> tuple[int, int]:
    """``"<kernel>.<major>"`` as moby reads it: two numbers below 256, not both zero."""
    text = _string(untrusted, where)
    match = _KERNEL_VERSION.fullmatch(text)
    version = (int(match.group(1)), int(match.group(2))) if match else None
    if version is None or max(version) > 255 or version == (0, 0):
        raise _invalid(where, f"invalid kernel version {json.dumps(text)}, expected \"<kernel>.<major>\"")
    return version


def _action(untrusted: Any, where: str) -> Action:
    name = _string(untrusted, where)
    if name == "SCMP_ACT_NOTIFY":
        raise _invalid(where, "SCMP_ACT_NOTIFY is not supported: portside runs no seccomp agent")
    if name not in _ACTIONS:
        raise _invalid(where, f"unknown action {json.dumps(name)}")
    return _ACTIONS[name]


def _errno(untrusted: Any, where: str, action: Action | None) -> int | None:
    if untrusted is None:
        return None
    value = _uint(untrusted, where, UINT64_MAX)
    if action is not None and not action.takes_errno:
        # the runtime spec: "When the action doesn't support an errno, the runtime MUST print and error and fail."
        raise _invalid(where, f"{action.value} does not take an errno")
    if value > MAX_ERRNO:
        raise _invalid(where, f"{value} does not fit in the 16 bits seccomp returns")
    return value


def _check_arch(name: str, where: str) -> None:
    if name not in ARCH_NAMES:
        raise _invalid(where, f"unknown architecture {json.dumps(name)}")


def _invalid(where: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"seccomp profile: {where}: {problem}" if where else f"seccomp profile: {problem}")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {json.dumps(value)}"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _object(untrusted: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(untrusted, dict):
        raise _invalid(where, f"expected an object, got {_describe(untrusted)}")
    return untrusted


def _field(obj: Mapping[str, Any], key: str) -> Any:
    """``obj[key]``, matched as Go does: the exact key first, else any spelling of it without regard to case."""
    if key in obj:
        return obj[key]
    folded = key.casefold()
    for k, v in obj.items():
        if k.casefold() == folded:
            return v
    return None


def _required(obj: Mapping[str, Any], key: str, where: str) -> Any:
    value = _field(obj, key)
    if value is None:
        raise _invalid(f"{where}.{key}" if where else key, "required")
    return value


def _array(untrusted: Any, where: str) -> list[Any]:
    if untrusted is None:
        return []
    if not isinstance(untrusted, list):
        raise _invalid(where, f"expected an array, got {_describe(untrusted)}")
    return untrusted


def _string(untrusted: Any, where: str) -> str:
    if not isinstance(untrusted, str):
        raise _invalid(where, f"expected a string, got {_describe(untrusted)}")
    return untrusted


def _strings(untrusted: Any, where: str) -> tuple[str, ...]:
    return tuple(_string(s, f"{where}[{i}]") for i, s in enumerate(_array(untrusted, where)))


def _uint(untrusted: Any, where: str, limit: int) -> int:
    if isinstance(untrusted, bool) or not isinstance(untrusted, int) or not 0 <= untrusted <= limit:
        raise _invalid(where, f"expected an unsigned 64-bit integer, got {_describe(untrusted)}")
    return untrusted


# ---- resolution ------------------------------------------------------------------------------------------------


def host_kernel() -> tuple[int, int]:
    """This host's kernel as (version, major revision): ``6.1.0-18-amd64`` -> (6, 1)."""
    match = re.match(r"(\d+)\.(\d+)", os.uname().release)
    if not match:
        raise InvalidArgument(f"cannot read the kernel version from {os.uname().release!r}")
    return int(match.group(1)), int(match.group(2))


def _applies(entry: Syscall, caps: Collection[str], arch: str, kernel: tuple[int, int]) -> bool:
    """moby's rule: any excluded cap, arch or kernel drops the entry; every included one must hold."""
    ex, inc = entry.excludes, entry.includes
    if arch in ex.arches or any(c in caps for c in ex.caps):
        return False
    if ex.min_kernel is not None and kernel >= ex.min_kernel:
        return False
    if inc.arches and arch not in inc.arches:
        return False
    if not all(c in caps for c in inc.caps):
        return False
    return inc.min_kernel is None or kernel >= inc.min_kernel


def _split_repeated(args: tuple[Arg, ...]) -> list[tuple[Arg, ...]]:
    """runc's reading of an entry that compares one argument twice: each comparison becomes a rule of its own.

    So ``[{index 0, EQ 1}, {index 0, EQ 2}]`` means "arg0 is 1 or 2", not
    the impossible "1 and 2"; without a repeated index all comparisons must
    hold at once.
    """
    indexes = [a.index for a in args]
    if len(set(indexes)) == len(indexes):
        return [args]
    return [(a,) for a in args]


def resolve(profile: Profile, caps: Collection[str], arch: str = "amd64", *,
            kernel: tuple[int, int] | None = None) -> list[Rule]:
    """The rules that apply to a container with these capabilities on this host, in profile order.

    ``caps`` is the container's capability set (``CAP_*`` names; Docker
    tests the bounding set). ``arch`` is the host in libseccomp's words
    (``amd64``); ``kernel`` defaults to this host's.
    """
    if arch not in NATIVE_ARCH_NAMES:
        raise InvalidArgument(f"seccomp: unknown architecture {arch!r}")
    kernel = host_kernel() if kernel is None else kernel
    rules = []
    for entry in profile.syscalls:
        if not _applies(entry, caps, arch, kernel):
            continue
        for name in entry.names:
            for args in _split_repeated(entry.args):
                rules.append(Rule(name, entry.action, entry.errno_ret, args))
    return rules


def filter_arches(profile: Profile, arch: str = "amd64") -> tuple[str, ...]:
    """The ABIs the filter covers: ``architectures`` as given, else the host's ``archMap`` entry expanded.

    A profile with neither covers the host's native ABI alone, as libseccomp does.
    """
    if profile.architectures:
        return profile.architectures
    native = NATIVE_TO_SCMP.get(arch)
    for entry in profile.arch_map:
        if entry.arch == native:
            return (entry.arch, *entry.sub_arches)
    return (native,) if native else ()

