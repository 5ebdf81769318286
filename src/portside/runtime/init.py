"""The container's init: the straight sequence a fresh process runs to become the container.

It runs in the container's first process (pid 1 of its new pid namespace,
already in its other new namespaces) and ends in ``execve``. The order is a
security property, as in runc's ``standard_init_linux.go``:

    1. mount namespace private; the root filesystem (the snapshot's mounts)
    2. the spec's mounts (/proc, /dev, /sys, ...) and the default devices
    3. pivot_root into the root filesystem; the old root detached
    4. hostname, sysctls (before /proc/sys turns read-only), rlimits (the
       open-file one with its soft limit at the hard one)
    5. masked and read-only paths; a read-only root
    6. seccomp, when no_new_privs is off: loading a filter then needs
       CAP_SYS_ADMIN, which is about to go (runc does the same)
    7. capability bounding set, then the user (groups, gid, uid), then the
       capability sets; no_new_privs
    8. working directory, the executable looked up in the container's PATH
    9. seccomp with no_new_privs: last before execve, nothing above runs filtered
   10. the open-file soft limit (the monitor's descriptors, close-on-exec,
       are open until here: a lower limit earlier fails any new one), execve

A failure at any step is written to ``error_fd`` (close-on-exec: a
successful execve closes it without a word) as one JSON line, and the process
exits 127 (not found), 126 (not executable) or 1.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import shutil
import signal
import stat
import termios
from typing import TYPE_CHECKING, Any, NoReturn

from portside.oci.runtime_spec import is_default_seccomp
from portside.runtime import caps, linux, nofile, seccomp
from portside.runtime.paths import secure_join
from portside.snapshots.mount import Mount

if TYPE_CHECKING:
    from portside.runtime.userns import HostSide

_DEFAULT_DEVICES = (  # name, major, minor (Docker's defaults)
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
)
_DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
              ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"))
_MOUNT_FLAGS = {
    "ro": (linux.MS_RDONLY, False), "rw": (linux.MS_RDONLY, True), "nosuid": (linux.MS_NOSUID, False),
    "suid": (linux.MS_NOSUID, True), "nodev": (linux.MS_NODEV, False), "dev": (linux.MS_NODEV, True),
    "noexec": (linux.MS_NOEXEC, False), "exec": (linux.MS_NOEXEC, True), "strictatime": (linux.MS_STRICTATIME, False),
    "bind": (linux.MS_BIND, False), "rbind": (linux.MS_BIND | linux.MS_REC, False),
}
_PROPAGATION = {"private": linux.MS_PRIVATE, "rprivate": linux.MS_PRIVATE | linux.MS_REC,
                "slave": linux.MS_SLAVE, "rslave": linux.MS_SLAVE | linux.MS_REC}


class InitError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run(spec: dict[str, Any], root_mounts: list[Mount], error_fd: int, host_side: HostSide | None = None) -> NoReturn:
    """Become the container described by ``spec`` (an OCI runtime config) and exec its process.

    ``host_side``: in a user namespace, the root filesystem is already mounted at
    the working directory and the bind sources are detached mounts (runtime/userns.py).
    """
    try:
        _setup_and_exec(spec, root_mounts, host_side)
    except InitError as e:
        _fail(error_fd, str(e), e.exit_code)
    except OSError as e:
        _fail(error_fd, str(e) if e.strerror else repr(e), 1)
    except BaseException as e:  # nothing may unwind into the caller's code in a forked child
        _fail(error_fd, f"{type(e).__name__}: {e}", 1)
    os._exit(1)  # unreachable: _setup_and_exec ends in execve


def _fail(error_fd: int, message: str, code: int) -> NoReturn:
    try:
        os.write(error_fd, json.dumps({"error": message, "exit_code": code}).encode() + b"\n")
    finally:
        os._exit(code)


def _setup_and_exec(spec: dict[str, Any], root_mounts: list[Mount], host_side: HostSide | None) -> None:
    process = spec["process"]
    linux_spec = spec.get("linux") or {}
    rootfs = spec["root"]["path"]

    # 0. a terminal becomes the controlling terminal of a session of our own (job control, ^C)
    if process.get("terminal"):
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    # 1. our mounts must not propagate to the host, and the root filesystem
    linux.mount("", "/", None, linux.MS_REC | linux.MS_PRIVATE)
    if host_side is None:
        for m in root_mounts:
            m.mount(rootfs)
    else:
        rootfs = host_side.enter_rootfs()

    # 2. the spec's mounts, then the default devices in /dev
    for index, m in enumerate(spec.get("mounts") or []):
        _mount(rootfs, m, host_side.bind_source(index) if host_side is not None else None)
    _populate_dev(rootfs, bool(process.get("terminal")))

    # 3. into the root filesystem; the old root goes away entirely
    os.chdir(rootfs)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")

    # 4. hostname, sysctls (while /proc/sys is still writable), rlimits
    if spec.get("hostname"):
        linux.sethostname(spec["hostname"])
    for key, value in (linux_spec.get("sysctl") or {}).items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(str(value))
    for rl in process.get("rlimits") or []:
        # the open-file soft limit waits for step 10 (the monitor's descriptors are open until execve);
        # its hard limit is set now, while raising it is still allowed
        soft = rl["hard"] if rl["type"] == "RLIMIT_NOFILE" else rl["soft"]
        resource.setrlimit(getattr(resource, rl["type"]), (soft, rl["hard"]))

    # 5. masked and read-only paths, then a read-only root
    for path in linux_spec.get("maskedPaths") or []:
        _mask(path)
    for path in linux_spec.get("readonlyPaths") or []:
        _readonly(path)
    if spec["root"].get("readonly"):
        linux.mount("", "/", None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY)

    _become_process(process, linux_spec)


def run_exec(spec: dict[str, Any], error_fd: int) -> NoReturn:
    """Become a process exec'd in a running container: already in its namespaces and cgroup
    (joined by runtime.launch), so only the process steps remain (6 to 10)."""
    try:
        if spec["process"].get("terminal"):
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        _become_process(spec["process"], spec.get("linux") or {})
    except InitError as e:
        _fail(error_fd, str(e), e.exit_code)
    except OSError as e:
        _fail(error_fd, str(e) if e.strerror else repr(e), 1)
    except BaseException as e:  # nothing may unwind into the caller's code in a forked child
        _fail(error_fd, f"{type(e).__name__}: {e}", 1)
    os._exit(1)


def _become_process(process: dict[str, Any], linux_spec: dict[str, Any]) -> None:
    """Steps 6 to 10: seccomp, capabilities and the user, cwd, the executable, execve."""
    # 6. seccomp, while still privileged, when no_new_privs is off
    capabilities = process.get("capabilities") or {}
    no_new_privs = bool(process.get("noNewPrivileges"))
    program = _seccomp_program(linux_spec.get("seccomp"), capabilities.get("bounding") or [])
    if program is not None and not no_new_privs:
        seccomp.install(program, no_new_privs=False)

    # 7. capabilities and the user
    caps.drop_bounding(caps.mask(capabilities.get("bounding") or []))
    user = process.get("user") or {}
    linux.prctl(8, 1)  # PR_SET_KEEPCAPS: keep the permitted set across setuid
    os.setgroups([int(g) for g in user.get("additionalGids") or []])
    os.setresgid(user.get("gid", 0), user.get("gid", 0), user.get("gid", 0))
    os.setresuid(user.get("uid", 0), user.get("uid", 0), user.get("uid", 0))
    linux.prctl(8, 0)
    caps.apply(caps.mask(capabilities.get("effective") or []), caps.mask(capabilities.get("permitted") or []),
               caps.mask(capabilities.get("inheritable") or []), caps.mask(capabilities.get("ambient") or []))
    if no_new_privs:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    if "umask" in user:
        os.umask(int(user["umask"]))

    # 8. working directory and the executable
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise InitError(f"chdir to cwd (\"{cwd}\") set in config.json failed: {(e.strerror or str(e)).lower()}", 1) from None
    args = process["args"]
    env = process.get("env") or []
    path = _lookup(args[0], env)

    # 9. seccomp, as late as possible, under no_new_privs
    if program is not None and no_new_privs:
        seccomp.install(program, no_new_privs=True)

    # 10. the open-file limit (the spec's, or the one the monitor raised its own from), an empty signal
    # mask (execve keeps it, and no container should start with a signal blocked), then the process
    _set_nofile(process)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    try:
        os.execve(path, args, dict(e.split("=", 1) for e in env if "=" in e))
    except OSError as e:
        code = 126 if e.errno in (errno.EACCES, errno.ENOEXEC, errno.EISDIR) else 127
        raise InitError(f"exec: \"{args[0]}\": {(e.strerror or str(e)).lower()}", code) from None


def _set_nofile(process: dict[str, Any]) -> None:
    for rl in process.get("rlimits") or []:
        if rl["type"] == "RLIMIT_NOFILE":
            # a container's hard limit was set at step 4; an exec, unprivileged now, cannot go above the monitor's
            hard = min(rl["hard"], resource.getrlimit(resource.RLIMIT_NOFILE)[1])
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(rl["soft"], hard), hard))
            return
    nofile.restore()


# Compiled filters by (profile, capabilities). The monitor fills it before it forks
# (``precompile``), so a container's start pays a dict lookup, not an ~8 ms compile.
_PROGRAMS: dict[tuple[str, tuple[str, ...]], seccomp.Program | None] = {}


def precompile(spec: dict[str, Any]) -> None:
    """Compile the spec's seccomp filter in the calling process (the monitor), for its children."""
    process = spec.get("process") or {}
    _seccomp_program((spec.get("linux") or {}).get("seccomp"),
                     (process.get("capabilities") or {}).get("bounding") or [])


def _seccomp_program(untrusted: dict[str, Any] | None, caps: list[str]) -> seccomp.Program | None:
    """The filter for the spec's linux.seccomp: Docker's default for the marker, else the given profile."""
    if not untrusted:
        return None
    key = ("default" if is_default_seccomp(untrusted) else json.dumps(untrusted, sort_keys=True), tuple(sorted(caps)))
    if key not in _PROGRAMS:
        if len(_PROGRAMS) > 64:  # custom profiles: keep the cache small
            _PROGRAMS.clear()
        profile = (seccomp.default_profile() if key[0] == "default"
                   else seccomp.parse_profile(key[0]))
        _PROGRAMS[key] = seccomp.compile_profile(profile, caps, "amd64")
    return _PROGRAMS[key]


def _lookup(arg0: str, env: list[str]) -> str:
    """Docker's (Go's exec.LookPath) rules: a name with a slash is used as is, else PATH is searched."""
    if "/" in arg0:
        return arg0
    path_value = next((e[5:] for e in env if e.startswith("PATH=")), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    for directory in path_value.split(":"):
        candidate = os.path.join(directory or ".", arg0)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return candidate
    raise InitError(f"exec: \"{arg0}\": executable file not found in $PATH", 127)


def mount_spec_entry(rootfs: str, m: dict[str, Any]) -> None:
    """One mount of the spec under ``rootfs`` (copy-up of a fresh volume included), as step 2 makes it.

    Also how the daemon shows a stopped container's volumes (containers.fsview),
    in a mount namespace of its own.
    """
    _mount(rootfs, m)


def _mount(rootfs: str, m: dict[str, Any], tree_fd: int | None = None) -> None:
    """Mount ``m`` under ``rootfs``; ``tree_fd``: its bind source, already a detached mount."""
    kind = m.get("type") or ("bind" if "bind" in (m.get("options") or []) else "none")
    source = m.get("source") or kind
    flags = 0
    data = []
    propagation = 0
    recursive_ro = False
    for opt in m.get("options") or []:
        if opt == "rro":  # read-only, and every mount below it too
            flags |= linux.MS_RDONLY
            recursive_ro = True
        elif opt in _MOUNT_FLAGS:
            bit, clear = _MOUNT_FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in _PROPAGATION:
            propagation |= _PROPAGATION[opt]
        else:
            data.append(opt)
    is_bind = bool(flags & linux.MS_BIND)
    target = secure_join(rootfs, m["destination"])
    if is_bind and tree_fd is None:
        copy_up(source, target)
    source_is_dir = stat.S_ISDIR(os.fstat(tree_fd).st_mode) if tree_fd is not None else os.path.isdir(source)
    if is_bind and not source_is_dir:
        _make_file(target)
    else:
        os.makedirs(target, exist_ok=True)
    if kind == "cgroup" and not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        # cgroup v1 hosts: an empty read-only tmpfs (the v1 hierarchies stay the host's business)
        linux.mount("tmpfs", target, "tmpfs", linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC,
                    "mode=755")
        return
    fstype = None if is_bind else ("cgroup2" if kind == "cgroup" else kind)
    if tree_fd is not None:
        linux.move_mount(tree_fd, target)
    else:
        try:
            linux.mount(source, target, fstype, flags & ~linux.MS_RDONLY if is_bind else flags,
                        ",".join(data) or None)
        except OSError as e:
            if kind != "sysfs" or e.errno != errno.EPERM:
                raise
            # A user-namespaced container in a network namespace it does not own (the daemon
            # made it, for its bridge endpoint) may not mount sysfs: runc's fallback, the
            # host's /sys bound read-only (its locked flags kept).
            linux.mount("/sys", target, None, linux.MS_BIND | linux.MS_REC)
            linux.mount("", target, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | _mount_flags(target))
            return
    if is_bind and flags & (linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC):
        # a bind mount takes its flags only on a remount; in a user namespace the flags the
        # source has (nosuid on /dev/shm...) cannot be cleared, so they are kept
        kept = _mount_flags(target) if tree_fd is not None else 0
        linux.mount("", target, None, flags | kept | linux.MS_REMOUNT)
    if recursive_ro:
        linux.make_readonly_recursive(target)
    if propagation:
        linux.mount("", target, None, propagation)


def copy_up(source: str, target: str) -> None:
    """A fresh volume gets the image's content at its mount point, once (Docker's copy-up).

    The volume store marks a new volume with a ``copyup`` file beside its
    ``_data`` directory; the target is still the image's, not yet covered.
    """
    marker = os.path.join(os.path.dirname(source), "copyup")
    if os.path.basename(source) != "_data" or not os.path.exists(marker):
        return
    if os.path.isdir(target) and not os.path.islink(target) and not os.listdir(source):
        shutil.copytree(target, source, symlinks=True, dirs_exist_ok=True, copy_function=shutil.copy2)
        for dirpath, dirnames, filenames in os.walk(target):  # copytree keeps modes, not owners
            for name in ["", *dirnames, *filenames]:
                original = os.path.join(dirpath, name)
                st = os.lstat(original)
                copy = os.path.join(source, os.path.relpath(original, target))
                os.chown(copy, st.st_uid, st.st_gid, follow_symlinks=False)
        os.chmod(source, stat.S_IMODE(os.stat(target).st_mode))
    os.unlink(marker)


# statvfs's ST_* bits → mount(2)'s MS_* bits for the flags a remount must repeat
_ST_TO_MS = ((os.ST_RDONLY, linux.MS_RDONLY), (os.ST_NOSUID, linux.MS_NOSUID), (os.ST_NODEV, linux.MS_NODEV),
             (os.ST_NOEXEC, linux.MS_NOEXEC), (os.ST_NOATIME, 1 << 10), (os.ST_NODIRATIME, 1 << 11),
             (os.ST_RELATIME, 1 << 21))


def _mount_flags(path: str) -> int:
    st_flags = os.statvfs(path).f_flag
    return sum(ms for st, ms in _ST_TO_MS if st_flags & st)


def _make_file(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _populate_dev(rootfs: str, terminal: bool) -> None:
    dev = secure_join(rootfs, "/dev")
    for name, major, minor in _DEFAULT_DEVICES:
        path = os.path.join(dev, name)
        if os.path.lexists(path):
            continue
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
            os.chmod(path, 0o666)
        except PermissionError:  # in a user namespace: bind the host's node instead
            _make_file(path)
            linux.mount(f"/dev/{name}", path, None, linux.MS_BIND)
    for name, target in _DEV_LINKS:
        path = os.path.join(dev, name)
        if not os.path.lexists(path):
            os.symlink(target, path)
    if terminal and os.path.exists("/proc/self/fd/0"):
        console = os.path.join(dev, "console")
        _make_file(console)
        linux.mount(os.ttyname(0), console, None, linux.MS_BIND)


def _mask(path: str) -> None:
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY)
    else:
        linux.mount("/dev/null", path, None, linux.MS_BIND)


def _readonly(path: str) -> None:
    try:
        linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
    except FileNotFoundError:
        return
    linux.mount("", path, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_REC)
