"""Docker's default seccomp profile, as data.

Read from moby/profiles ``seccomp/default.json`` (main, as of 2026-05-06:
AF_ALG and AF_VSOCK sockets refused, the lsm_* calls behind CAP_SYS_ADMIN).
An allow-list: whatever is not named fails with EPERM. Calls that only a
capability makes safe are allowed when the container holds it, so
``--cap-add SYS_ADMIN`` unlocks mount, unshare, setns and the rest, as with
Docker. Entries keep Docker's order.
"""

from __future__ import annotations

import errno

from portside.runtime.seccomp.profile import Action, Arg, ArchMap, Condition, Op, Profile, Syscall

AF_ALG = 38
AF_VSOCK = 40
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET: clone(2) may create no namespace
CLONE_NAMESPACE_FLAGS = 0x7E020000

# Docker's default capability set (moby daemon/pkg/oci/caps/defaults.go)
DEFAULT_CAPABILITIES = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
})

# allowed to every container
ALWAYS = (
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset", "chdir",
    "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
    "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
    "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue",
    "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
    "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
    "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32",
    "lgetxattr", "link", "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl",
    "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep",
    "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe",
    "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64",
    "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
    "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat",
    "renameat2", "restart_syscall", "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
    "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32",
    "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid",
    "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
    "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs",
    "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
    "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
    "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink",
    "unlinkat", "uretprobe", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4",
    "waitid", "waitpid", "write", "writev"
)

# personality(2) personas allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query)
PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# calls a capability unlocks, in Docker's order
BY_CAPABILITY = (
    ("CAP_DAC_READ_SEARCH", ("open_by_handle_at",)),
    ("CAP_SYS_ADMIN", (
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
        "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount", "mount_setattr", "move_mount",
        "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
        "syslog", "umount", "umount2", "unshare",
    )),
)
BY_CAPABILITY_LATER = (
    ("CAP_SYS_BOOT", ("reboot",)),
    ("CAP_SYS_CHROOT", ("chroot",)),
    ("CAP_SYS_MODULE", ("delete_module", "init_module", "finit_module")),
    ("CAP_SYS_PACCT", ("acct",)),
    ("CAP_SYS_PTRACE", ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace")),
    ("CAP_SYS_RAWIO", ("iopl", "ioperm")),
    ("CAP_SYS_TIME", ("settimeofday", "stime", "clock_settime", "clock_settime64")),
    ("CAP_SYS_TTY_CONFIG", ("vhangup",)),
    ("CAP_SYS_NICE", ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node")),
    ("CAP_SYSLOG", ("syslog",)),
    ("CAP_BPF", ("bpf",)),
    ("CAP_PERFMON", ("perf_event_open",)),
)

# calls only some architectures have, by the libseccomp names of the hosts that get them
BY_ARCH = (
    (("ppc64le",), ("sync_file_range2", "swapcontext")),
    (("arm", "arm64"), ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
                        "set_tls")),
    (("amd64", "x32"), ("arch_prctl",)),
    (("amd64", "x32", "x86"), ("modify_ldt",)),
    (("s390", "s390x"), ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr")),
    (("riscv64",), ("riscv_flush_icache",)),
)


def _allow(*names: str, args: tuple[Arg, ...] = (), includes: Condition = Condition(),
           excludes: Condition = Condition(), comment: str = "") -> Syscall:
    return Syscall(names=names, action=Action.ALLOW, args=args, includes=includes, excludes=excludes,
                   comment=comment)


def _arg0(op: Op, value: int) -> tuple[Arg, ...]:
    return (Arg(index=0, value=value, op=op),)


def _build() -> Profile:
    entries = [
        _allow(*ALWAYS),
        _allow("process_vm_readv", "process_vm_writev", "ptrace", includes=Condition(min_kernel=(4, 8))),
        # every socket family but AF_ALG (38) and AF_VSOCK (40); 32-bit x86 reaches socket() through
        # socketcall(2) too, which stays allowed, as in Docker
        _allow("socket", args=_arg0(Op.LT, AF_ALG)),
        _allow("socket", args=_arg0(Op.EQ, AF_ALG + 1)),
        _allow("socket", args=_arg0(Op.GT, AF_VSOCK)),
        *(_allow("personality", args=_arg0(Op.EQ, persona)) for persona in PERSONAS),
        *(_allow(*names, includes=Condition(arches=arches)) for arches, names in BY_ARCH),
        *(_allow(*names, includes=Condition(caps=(cap,))) for cap, names in BY_CAPABILITY),
        # without CAP_SYS_ADMIN, clone(2) may not create namespaces (s390 puts the flags in the second argument)
        _allow("clone", args=_arg0(Op.MASKED_EQ, CLONE_NAMESPACE_FLAGS),
               excludes=Condition(caps=("CAP_SYS_ADMIN",), arches=("s390", "s390x"))),
        _allow("clone", args=(Arg(index=1, value=CLONE_NAMESPACE_FLAGS, op=Op.MASKED_EQ),),
               includes=Condition(arches=("s390", "s390x")), excludes=Condition(caps=("CAP_SYS_ADMIN",)),
               comment="s390 parameter ordering for clone is different"),
        # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone
        Syscall(names=("clone3",), action=Action.ERRNO, errno_ret=errno.ENOSYS,
                excludes=Condition(caps=("CAP_SYS_ADMIN",))),
        *(_allow(*names, includes=Condition(caps=(cap,))) for cap, names in BY_CAPABILITY_LATER),
    ]
    arch_map = (
        ArchMap("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
        ArchMap("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",)),
        ArchMap("SCMP_ARCH_MIPS64", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32")),
        ArchMap("SCMP_ARCH_MIPS64N32", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64")),
        ArchMap("SCMP_ARCH_MIPSEL64", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32")),
        ArchMap("SCMP_ARCH_MIPSEL64N32", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64")),
        ArchMap("SCMP_ARCH_S390X", ("SCMP_ARCH_S390",)),
        ArchMap("SCMP_ARCH_RISCV64"),
        ArchMap("SCMP_ARCH_LOONGARCH64"),
    )
    return Profile(default_action=Action.ERRNO, default_errno_ret=errno.EPERM, arch_map=arch_map,
                   syscalls=tuple(entries))


DEFAULT_PROFILE = _build()


def default_profile() -> Profile:
    """Docker's default profile (immutable: every call returns the same object)."""
    return DEFAULT_PROFILE
