"""Linux capabilities by name, and applying an OCI process's capability sets."""

from __future__ import annotations

from portside.errors import InvalidArgument
from portside.runtime import linux

CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)
_NUMBER = {name: i for i, name in enumerate(CAPABILITIES)}


def number(name: str) -> int:
    """``CAP_NET_ADMIN`` or ``net_admin`` → 12."""
    key = name.upper().removeprefix("CAP_")
    if key not in _NUMBER:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return _NUMBER[key]


def mask(names: list[str]) -> int:
    out = 0
    for name in names:
        out |= 1 << number(name)
    return out


def drop_bounding(keep: int) -> None:
    """Drop every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP)."""
    for cap in range(linux.last_cap() + 1):
        if not keep & (1 << cap):
            linux.prctl(linux.PR_CAPBSET_DROP, cap)


def apply(effective: int, permitted: int, inheritable: int, ambient: int) -> None:
    """Set the thread's sets; ambient capabilities must be permitted and inheritable."""
    linux.capset(effective, permitted, inheritable)
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(linux.last_cap() + 1):
        if ambient & (1 << cap):
            linux.prctl(linux.PR_CAP_AMBIENT, 2, cap)  # PR_CAP_AMBIENT_RAISE
