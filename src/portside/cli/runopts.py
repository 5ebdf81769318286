"""``docker run`` / ``docker create`` flags -> the ``POST /containers/create`` request.

This is docker/cli's ``cli/command/container/opts.go`` (v28.2), the part that
turns flags into ``Config``, ``HostConfig`` and ``NetworkingConfig``, as pure
functions: flags and arguments in, the request body out. The body has the
keys, the key order, the nulls and the empty lists that the docker CLI sends
(Go's ``encoding/json`` over moby's API structs: struct fields in declaration
order, ``omitempty`` fields left out when empty, map keys sorted), so a daemon
sees the same request from ``portside run`` as from ``docker run``.
``tests/cli/test_runopts.py`` checks it against requests recorded from the
docker CLI.

Failures come in docker's two kinds, both exit status 125:

* ``FlagValueError``: a value a flag's own parser refuses (pflag's
  ``invalid argument "x" for "-m, --memory" flag: invalid size: 'x'``);
* ``OptionsError``: a combination or a value that ``parse`` refuses after the
  flags are read (``conflicting options: cannot specify both --restart and --rm``).

The only input that is not an argument is the content of ``--env-file``,
``--label-file`` and ``--security-opt seccomp=FILE`` files, read through
``read_file`` (the caller may pass a fake).
"""

from __future__ import annotations

import posixpath

from portside import units
from portside.cli.commands.base import BOOL, INT, LIST, STRING, Flag, Options, go_quote
from portside.errors import InvalidArgument
from portside.oci.gopath import clean as go_clean

# Every `portside run` imports this module: typing, collections.abc and
# dataclasses (which loads inspect) would cost more than the rest of it, so
# the annotations are strings for mypy only and the records below are plain
# __slots__ classes (docs/cli-startup.md). Likewise re: the expressions are
# pattern strings, and the validators of the flags that need them import re
# (which compiles and caches them) when such a flag is given.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

# ---------------------------------------------------------------------------
# Flags: docker's addFlags() in its order, then the run- and create-only ones.

_BYTES = "bytes"
_DURATION = "duration"


class _Alias(Flag):
    """A second name for a list flag: values of both land in one list, in command-line order."""

    __slots__ = ("of",)

    def __init__(self, name: str, of: str, help: str, *, hidden: bool = False, varname: str | None = None) -> None:
        super().__init__(name, None, LIST, help, hidden=hidden, varname=varname)
        self.of = of

    @property
    def dest(self) -> str:
        return self.of.replace("-", "_")


CONTAINER_FLAGS: tuple[Flag, ...] = (
    # General purpose
    Flag("attach", "a", LIST, "Attach to STDIN, STDOUT or STDERR"),
    Flag("device-cgroup-rule", None, LIST, "Add a rule to the cgroup allowed devices list"),
    Flag("device", None, LIST, "Add a host device to the container"),
    Flag("env", "e", LIST, "Set environment variables"),
    Flag("env-file", None, LIST, "Read in a file of environment variables"),
    Flag("entrypoint", None, STRING, "Overwrite the default ENTRYPOINT of the image"),
    Flag("group-add", None, LIST, "Add additional groups to join"),
    Flag("hostname", "h", STRING, "Container host name"),
    Flag("domainname", None, STRING, "Container NIS domain name"),
    Flag("interactive", "i", BOOL, "Keep STDIN open even if not attached"),
    Flag("label", "l", LIST, "Set meta data on a container"),
    Flag("label-file", None, LIST, "Read in a line delimited file of labels"),
    Flag("read-only", None, BOOL, "Mount the container's root filesystem as read only"),
    Flag("restart", None, STRING, "Restart policy to apply when a container exits", default="no"),
    Flag("stop-signal", None, STRING, "Signal to stop the container"),
    Flag("stop-timeout", None, INT, "Timeout (in seconds) to stop a container"),
    Flag("sysctl", None, LIST, "Sysctl options", varname="map"),
    Flag("tty", "t", BOOL, "Allocate a pseudo-TTY"),
    Flag("ulimit", None, LIST, "Ulimit options", varname="ulimit"),
    Flag("user", "u", STRING, "Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("workdir", "w", STRING, "Working directory inside the container"),
    Flag("rm", None, BOOL, "Automatically remove the container and its associated anonymous volumes when it exits"),
    # Security
    Flag("cap-add", None, LIST, "Add Linux capabilities"),
    Flag("cap-drop", None, LIST, "Drop Linux capabilities"),
    Flag("privileged", None, BOOL, "Give extended privileges to this container"),
    Flag("security-opt", None, LIST, "Security Options"),
    Flag("userns", None, STRING, "User namespace to use"),
    Flag(
        "cgroupns",
        None,
        STRING,
        "Cgroup namespace to use (host|private)\n"
        "'host':    Run the container in the Docker host's cgroup namespace\n"
        "'private': Run the container in its own private cgroup namespace\n"
        "'':        Use the cgroup namespace as configured by the\n"
        "           default-cgroupns-mode option on the daemon (default)",
    ),
    # Network and port publishing
    Flag("add-host", None, LIST, "Add a custom host-to-IP mapping (host:ip)"),
    Flag("dns", None, LIST, "Set custom DNS servers"),
    _Alias("dns-opt", "dns-option", "Set DNS options", hidden=True),
    Flag("dns-option", None, LIST, "Set DNS options"),
    Flag("dns-search", None, LIST, "Set custom DNS search domains"),
    Flag("expose", None, LIST, "Expose a port or a range of ports"),
    Flag("ip", None, STRING, "IPv4 address (e.g., 172.30.100.104)"),
    Flag("ip6", None, STRING, "IPv6 address (e.g., 2001:db8::33)"),
    Flag("link", None, LIST, "Add link to another container"),
    Flag("link-local-ip", None, LIST, "Container IPv4/IPv6 link-local addresses"),
    Flag("mac-address", None, STRING, "Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    Flag("publish", "p", LIST, "Publish a container's port(s) to the host"),
    Flag("publish-all", "P", BOOL, "Publish all exposed ports to random ports"),
    _Alias("net", "network", "Connect a container to a network", hidden=True, varname="network"),
    Flag("network", None, LIST, "Connect a container to a network", varname="network"),
    _Alias("net-alias", "network-alias", "Add network-scoped alias for the container", hidden=True),
    Flag("network-alias", None, LIST, "Add network-scoped alias for the container"),
    # Logging and storage
    Flag("log-driver", None, STRING, "Logging driver for the container"),
    Flag("volume-driver", None, STRING, "Optional volume driver for the container"),
    Flag("log-opt", None, LIST, "Log driver options"),
    Flag("storage-opt", None, LIST, "Storage driver options for the container"),
    Flag("tmpfs", None, LIST, "Mount a tmpfs directory"),
    Flag("volumes-from", None, LIST, "Mount volumes from the specified container(s)"),
    Flag("volume", "v", LIST, "Bind mount a volume"),
    Flag("mount", None, LIST, "Attach a filesystem mount to the container", varname="mount"),
    # Health-checking
    Flag("health-cmd", None, STRING, "Command to run to check health"),
    Flag("health-interval", None, STRING, "Time between running the check (ms|s|m|h) (default 0s)", varname=_DURATION),
    Flag("health-retries", None, INT, "Consecutive failures needed to report unhealthy"),
    Flag("health-timeout", None, STRING, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)",
         varname=_DURATION),
    Flag("health-start-period", None, STRING, "Start period for the container to initialize before starting "
         "health-retries countdown (ms|s|m|h) (default 0s)", varname=_DURATION),
    Flag("health-start-interval", None, STRING, "Time between running the check during the start period "
         "(ms|s|m|h) (default 0s)", varname=_DURATION),
    Flag("no-healthcheck", None, BOOL, "Disable any container-specified HEALTHCHECK"),
    # Resource management
    Flag("blkio-weight", None, STRING, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)",
         varname="uint16"),
    Flag("blkio-weight-device", None, LIST, "Block IO weight (relative device weight)"),
    Flag("cidfile", None, STRING, "Write the container ID to the file"),
    Flag("cpuset-cpus", None, STRING, "CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", None, STRING, "MEMs in which to allow execution (0-3, 0,1)"),
    Flag("cpu-count", None, INT, "CPU count (Windows only)", hidden=True),
    Flag("cpu-percent", None, INT, "CPU percent (Windows only)", hidden=True),
    Flag("cpu-period", None, INT, "Limit CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", None, INT, "Limit CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-rt-period", None, INT, "Limit CPU real-time period in microseconds"),
    Flag("cpu-rt-runtime", None, INT, "Limit CPU real-time runtime in microseconds"),
    Flag("cpu-shares", "c", INT, "CPU shares (relative weight)"),
    Flag("cpus", None, STRING, "Number of CPUs", varname="decimal"),
    Flag("device-read-bps", None, LIST, "Limit read rate (bytes per second) from a device"),
    Flag("device-read-iops", None, LIST, "Limit read rate (IO per second) from a device"),
    Flag("device-write-bps", None, LIST, "Limit write rate (bytes per second) to a device"),
    Flag("device-write-iops", None, LIST, "Limit write rate (IO per second) to a device"),
    Flag("io-maxbandwidth", None, STRING, "Maximum IO bandwidth limit for the system drive (Windows only)",
         hidden=True, varname=_BYTES),
    Flag("io-maxiops", None, STRING, "Maximum IOps limit for the system drive (Windows only)", hidden=True,
         varname="uint"),
    Flag("kernel-memory", None, STRING, "Kernel memory limit", varname=_BYTES),
    Flag("memory", "m", STRING, "Memory limit", varname=_BYTES),
    Flag("memory-reservation", None, STRING, "Memory soft limit", varname=_BYTES),
    Flag("memory-swap", None, STRING, "Swap limit equal to memory plus swap: '-1' to enable unlimited swap",
         varname=_BYTES),
    Flag("memory-swappiness", None, INT, "Tune container memory swappiness (0 to 100)", default=-1),
    Flag("oom-kill-disable", None, BOOL, "Disable OOM Killer"),
    Flag("oom-score-adj", None, INT, "Tune host's OOM preferences (-1000 to 1000)"),
    Flag("pids-limit", None, INT, "Tune container pids limit (set -1 for unlimited)"),
    # Low-level execution (cgroups, namespaces, ...)
    Flag("cgroup-parent", None, STRING, "Optional parent cgroup for the container"),
    Flag("ipc", None, STRING, "IPC mode to use"),
    Flag("isolation", None, STRING, "Container isolation technology"),
    Flag("pid", None, STRING, "PID namespace to use"),
    Flag("shm-size", None, STRING, "Size of /dev/shm", varname=_BYTES),
    Flag("uts", None, STRING, "UTS namespace to use"),
    Flag("runtime", None, STRING, "Runtime to use for this container"),
    Flag("init", None, BOOL, "Run an init inside the container that forwards signals and reaps processes"),
    Flag("annotation", None, LIST, "Add an annotation to the container (passed through to the OCI runtime)",
         varname="map"),
)

PULL_ALWAYS, PULL_MISSING, PULL_NEVER = "always", "missing", "never"

_CREATE_COMMON: tuple[Flag, ...] = (
    Flag("name", None, STRING, "Assign a name to the container"),
    Flag("quiet", "q", BOOL, "Suppress the pull output"),
    Flag("platform", None, STRING, "Set platform if server is multi-platform capable"),
    Flag("disable-content-trust", None, BOOL, "Skip image verification", default=True, hidden=True),
)

CREATE_FLAGS: tuple[Flag, ...] = (
    *_CREATE_COMMON,
    Flag("pull", None, STRING, 'Pull image before creating ("always", "missing", "never")', default=PULL_MISSING),
    *CONTAINER_FLAGS,
)

RUN_FLAGS: tuple[Flag, ...] = (
    Flag("detach", "d", BOOL, "Run container in background and print container ID"),
    Flag("sig-proxy", None, BOOL, "Proxy received signals to the process", default=True),
    Flag("detach-keys", None, STRING, "Override the key sequence for detaching a container"),
    *_CREATE_COMMON,
    Flag("pull", None, STRING, 'Pull image before running ("always", "missing", "never")', default=PULL_MISSING),
    *CONTAINER_FLAGS,
)

_BY_NAME = {f.name: f for f in RUN_FLAGS}


# ---------------------------------------------------------------------------
# Errors


class FlagValueError(Exception):
    """A flag's value refused by its parser; the text is pflag's whole message."""


class OptionsError(Exception):
    """The flags, read, do not make a valid request (docker's ``parse`` errors)."""


def _invalid(flag: str, value: str, reason: str) -> FlagValueError:
    return FlagValueError(
        f"invalid argument {go_quote(value)} for {go_quote(_BY_NAME[flag].display_name())} flag: {reason}"
    )




# ---------------------------------------------------------------------------
# The result


class CreateRequest:
    """What ``run`` and ``create`` send: ``POST /containers/create?<query>`` with ``body``."""

    __slots__ = ("image", "body", "name", "platform", "pull", "quiet", "cidfile", "auto_remove", "warnings")

    def __init__(
        self,
        image: str,
        body: dict[str, Any],  # Config's fields, then "HostConfig" and "NetworkingConfig"
        name: str = "",
        platform: str = "",
        pull: str = PULL_MISSING,
        quiet: bool = False,
        cidfile: str = "",
        auto_remove: bool = False,
        warnings: list[str] | None = None,
    ) -> None:
        self.image = image
        self.body = body
        self.name = name
        self.platform = platform
        self.pull = pull
        self.quiet = quiet
        self.cidfile = cidfile
        self.auto_remove = auto_remove
        self.warnings: list[str] = [] if warnings is None else warnings

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CreateRequest):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it replaces

    def __repr__(self) -> str:
        return "CreateRequest(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"

    def query(self) -> list[tuple[str, str]]:
        """The query string as moby's client builds it (url.Values: keys sorted)."""
        q = []
        if self.name:
            q.append(("name", self.name))
        if self.platform:
            q.append(("platform", self.platform))
        return sorted(q)

    @property
    def config(self) -> dict[str, Any]:
        return self.body

    @property
    def host_config(self) -> dict[str, Any]:
        hc: dict[str, Any] = self.body["HostConfig"]
        return hc

    @property
    def attach_stdin(self) -> bool:
        return bool(self.body["AttachStdin"])

    @property
    def attach_stdout(self) -> bool:
        return bool(self.body["AttachStdout"])

    @property
    def attach_stderr(self) -> bool:
        return bool(self.body["AttachStderr"])

    @property
    def tty(self) -> bool:
        return bool(self.body["Tty"])

    def detached(self) -> CreateRequest:
        """The request ``run -d`` sends: nothing attached, stdin not closed after one attach."""
        body = dict(self.body)
        body["AttachStdin"] = body["AttachStdout"] = body["AttachStderr"] = body["StdinOnce"] = False
        return CreateRequest(self.image, body, self.name, self.platform, self.pull, self.quiet, self.cidfile,
                             self.auto_remove, list(self.warnings))


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------
# parse


def parse(
    opts: Options,
    args: Sequence[str],
    *,
    environ: Mapping[str, str],
    cwd: str,
    console_size: tuple[int, int] = (0, 0),
    read_file: Callable[[str], bytes] = _read_file,
) -> CreateRequest:
    """Build the create request from parsed ``run``/``create`` flags and ``IMAGE [COMMAND] [ARG...]``.

    ``environ`` answers ``-e NAME`` and bare names in env files; ``cwd`` makes
    relative bind sources absolute; ``console_size`` is (rows, columns) of
    the terminal on stdout, (0, 0) when it is none.
    """
    image, cmd = args[0], list(args[1:])
    pull = opts.pull
    if pull not in (PULL_ALWAYS, PULL_MISSING, PULL_NEVER, ""):
        raise OptionsError(f"invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\"")

    flags = _FlagValues.read(opts, environ, cwd)

    def read_relative(path: str) -> bytes:  # files named relative to the caller's directory
        return read_file(posixpath.join(cwd, path))

    config, host_config, networking = _build(opts, flags, image, cmd, environ, cwd, read_relative)
    host_config["ConsoleSize"] = [console_size[0], console_size[1]]
    body = {**config, "HostConfig": host_config, "NetworkingConfig": networking}
    platform = opts.platform or environ.get("DOCKER_DEFAULT_PLATFORM", "")
    return CreateRequest(
        image=image,
        body=body,
        name=opts.name,
        platform=platform.lower(),
        pull=pull,
        quiet=opts.quiet,
        cidfile=opts.cidfile,
        auto_remove=opts.rm,
    )


class _FlagValues:
    """The flags whose values pflag parses (and refuses) while reading the command line."""

    __slots__ = ("attach", "env", "labels", "extra_hosts", "dns", "dns_search", "links", "sysctls", "annotations",
                 "ulimits", "device_cgroup_rules", "mounts", "networks", "memory", "memory_reservation",
                 "memory_swap", "kernel_memory", "shm_size", "io_max_bandwidth", "io_max_iops", "nano_cpus",
                 "blkio_weight", "blkio_weight_device", "read_bps", "write_bps", "read_iops", "write_iops", "health")

    attach: list[str]
    env: list[str]
    labels: list[str]
    extra_hosts: list[str]
    dns: list[str]
    dns_search: list[str]
    links: list[str]
    sysctls: dict[str, str]
    annotations: dict[str, str]
    ulimits: dict[str, dict[str, Any]]
    device_cgroup_rules: list[str]
    mounts: list[dict[str, Any]]
    networks: list[_NetworkAttachment]
    memory: int
    memory_reservation: int
    memory_swap: int
    kernel_memory: int
    shm_size: int
    io_max_bandwidth: int
    io_max_iops: int
    nano_cpus: int
    blkio_weight: int
    blkio_weight_device: list[dict[str, Any]]
    read_bps: list[dict[str, Any]]
    write_bps: list[dict[str, Any]]
    read_iops: list[dict[str, Any]]
    write_iops: list[dict[str, Any]]
    health: dict[str, int]

    def __init__(self, **values: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, values.pop(name))
        if values:
            raise TypeError(f"unexpected flag values: {', '.join(values)}")

    @classmethod
    def read(cls, opts: Options, environ: Mapping[str, str], cwd: str) -> _FlagValues:
        def each(name: str, validate: Callable[[str], Any]) -> list[Any]:
            out = []
            for value in getattr(opts, name.replace("-", "_")):
                try:
                    out.append(validate(value))
                except (ValueError, InvalidArgument) as e:
                    raise _invalid(name, value, str(e)) from None
            return out

        def one(name: str, parse: Callable[[str], int]) -> int:
            value = getattr(opts, name.replace("-", "_"))
            if name not in opts.changed:
                return 0
            try:
                return parse(value)
            except (ValueError, InvalidArgument) as e:
                raise _invalid(name, value, str(e)) from None

        ulimits: dict[str, dict[str, Any]] = {}
        for u in each("ulimit", _parse_ulimit):
            ulimits[u["Name"]] = u
        sysctls: dict[str, str] = {}
        for s in each("sysctl", _validate_sysctl):
            k, _, v = s.partition("=")
            sysctls[k] = v
        annotations: dict[str, str] = {}
        for a in opts.annotation:
            k, _, v = a.partition("=")
            annotations[k] = v
        return cls(
            attach=each("attach", _validate_attach),
            env=each("env", lambda v: _validate_env(v, environ)),
            labels=each("label", _validate_label),
            extra_hosts=each("add-host", _validate_extra_host),
            dns=each("dns", _validate_ip),
            dns_search=each("dns-search", _validate_dns_search),
            links=each("link", _validate_link),
            sysctls=sysctls,
            annotations=annotations,
            ulimits=ulimits,
            device_cgroup_rules=each("device-cgroup-rule", _validate_device_cgroup_rule),
            mounts=each("mount", lambda v: _parse_mount(v, cwd)),
            networks=each("network", _parse_network),
            memory=one("memory", units.ram_in_bytes),
            memory_reservation=one("memory-reservation", units.ram_in_bytes),
            memory_swap=one("memory-swap", lambda v: -1 if v == "-1" else units.ram_in_bytes(v)),
            kernel_memory=one("kernel-memory", units.ram_in_bytes),
            shm_size=one("shm-size", units.ram_in_bytes),
            io_max_bandwidth=one("io-maxbandwidth", units.ram_in_bytes),
            io_max_iops=one("io-maxiops", lambda v: _parse_uint(v, 64)),
            nano_cpus=one("cpus", _parse_cpus),
            blkio_weight=one("blkio-weight", lambda v: _parse_uint(v, 16)),
            blkio_weight_device=each("blkio-weight-device", _validate_weight_device),
            read_bps=each("device-read-bps", _validate_throttle_bps),
            write_bps=each("device-write-bps", _validate_throttle_bps),
            read_iops=each("device-read-iops", _validate_throttle_iops),
            write_iops=each("device-write-iops", _validate_throttle_iops),
            health={
                name: one(name, _parse_duration)
                for name in ("health-interval", "health-timeout", "health-start-period", "health-start-interval")
            },
        )


def _build(
    opts: Options,
    f: _FlagValues,
    image: str,
    cmd: list[str],
    environ: Mapping[str, str],
    cwd: str,
    read_file: Callable[[str], bytes],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """docker's parse(): the checks in its order, then the three structs."""
    attach_stdin = "stdin" in f.attach or opts.interactive
    attach_stdout = "stdout" in f.attach or not f.attach
    attach_stderr = "stderr" in f.attach or not f.attach

    if opts.mac_address and not _valid_mac(opts.mac_address):
        raise OptionsError(f"{opts.mac_address} is not a valid mac address")
    swappiness = opts.memory_swappiness
    if swappiness != -1 and not 0 <= swappiness <= 100:
        raise OptionsError(f"invalid value: {swappiness}. Valid memory swappiness range is 0-100")

    binds, volumes = _binds_and_volumes(opts.volume, cwd)

    tmpfs: dict[str, str] = {}
    for t in opts.tmpfs:
        k, _, v = t.partition(":")
        tmpfs[k] = v

    entrypoint: list[str] | None = None
    if opts.entrypoint:
        entrypoint = [opts.entrypoint]
    elif "entrypoint" in opts.changed:
        entrypoint = [""]  # `--entrypoint=` resets the image's

    exposed, port_bindings = _parse_port_specs(_standard_port_notation(opts.publish))
    for e in opts.expose:
        for port in _parse_expose(e):
            exposed.setdefault(port, {})

    devices: list[dict[str, str]] = []
    cdi_devices: list[str] = []
    for device in opts.device:
        if _is_cdi_name(device):
            cdi_devices.append(device)
        else:
            devices.append(_parse_linux_device(_validate_linux_path(device)))

    # -e values go through a map in docker (proxy settings are merged there):
    # one entry per name, the last value winning; env files come first.
    env_map: dict[str, str | None] = {}
    for e in f.env:
        k, eq, v = e.partition("=")
        env_map[k] = v if eq else None
    env_flags = [k if v is None else f"{k}={v}" for k, v in env_map.items()]
    env = _read_kv_files(opts.env_file, read_file, environ.get) + env_flags
    labels = _read_kv_files(opts.label_file, read_file, None) + f.labels

    for value, valid, message in (
        (opts.pid, _valid_pid_mode, "--pid: invalid PID mode"),
        (opts.uts, lambda v: v in ("", "host"), "--uts: invalid UTS mode"),
        (opts.userns, lambda v: v in ("", "host"), "--userns: invalid USER mode"),
        (opts.cgroupns, lambda v: v in ("", "host", "private"), "--cgroupns: invalid CGROUP mode"),
    ):
        if not valid(value):
            raise OptionsError(message)

    restart_policy = _parse_restart_policy(opts.restart)
    log_config = _kv_map(opts.log_opt)
    if opts.log_driver == "none" and opts.log_opt:
        raise OptionsError(f"invalid logging opts for driver {opts.log_driver}")
    security_opt, masked_paths, readonly_paths = _parse_security_opts(opts.security_opt, read_file)
    storage_opt: dict[str, str] = {}
    for o in opts.storage_opt:
        k, eq, v = o.partition("=")
        if not eq:
            raise OptionsError("invalid storage option")
        storage_opt[k] = v
    healthcheck = _healthcheck(opts, f.health)

    device_requests: list[dict[str, Any]] | None = None
    if cdi_devices:
        device_requests = [
            {"Driver": "cdi", "Count": 0, "DeviceIDs": cdi_devices, "Capabilities": None, "Options": None}
        ]

    config: dict[str, Any] = {
        "Hostname": opts.hostname,
        "Domainname": opts.domainname,
        "User": opts.user,
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
    }
    if exposed:
        config["ExposedPorts"] = dict(sorted(exposed.items()))
    config.update(
        {
            "Tty": opts.tty,
            "OpenStdin": opts.interactive,
            # Attached with stdin open: stdin closes when the client detaches.
            "StdinOnce": opts.interactive and attach_stdin,
            "Env": env or None,
            "Cmd": cmd or None,
        }
    )
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck
    config.update(
        {
            "Image": image,
            "Volumes": dict(sorted(volumes.items())),
            "WorkingDir": opts.workdir,
            "Entrypoint": entrypoint,
            "OnBuild": None,
            "Labels": dict(sorted(_kv_map(labels).items())),
        }
    )
    if opts.stop_signal:
        config["StopSignal"] = opts.stop_signal
    if "stop-timeout" in opts.changed:
        config["StopTimeout"] = opts.stop_timeout

    networks = f.networks
    network_mode = networks[0].target if networks else "default"
    host_config: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": opts.cidfile,
        "LogConfig": {"Type": opts.log_driver, "Config": dict(sorted(log_config.items()))},
        "NetworkMode": network_mode,
        "PortBindings": dict(sorted(port_bindings.items())),
        "RestartPolicy": restart_policy,
        "AutoRemove": opts.rm,
        "VolumeDriver": opts.volume_driver,
        "VolumesFrom": opts.volumes_from or None,
        "ConsoleSize": [0, 0],
    }
    if f.annotations:
        host_config["Annotations"] = dict(sorted(f.annotations.items()))
    host_config.update(
        {
            "CapAdd": _normalize_capabilities(opts.cap_add),
            "CapDrop": _normalize_capabilities(opts.cap_drop),
            "CgroupnsMode": opts.cgroupns,
            "Dns": f.dns,
            "DnsOptions": opts.dns_option,
            "DnsSearch": f.dns_search,
            "ExtraHosts": f.extra_hosts or None,
            "GroupAdd": opts.group_add or None,
            "IpcMode": opts.ipc,
            "Cgroup": "",
            "Links": f.links or None,
            "OomScoreAdj": opts.oom_score_adj,
            "PidMode": opts.pid,
            "Privileged": opts.privileged,
            "PublishAllPorts": opts.publish_all,
            "ReadonlyRootfs": opts.read_only,
            "SecurityOpt": security_opt,
        }
    )
    if storage_opt:
        host_config["StorageOpt"] = dict(sorted(storage_opt.items()))
    if tmpfs:
        host_config["Tmpfs"] = dict(sorted(tmpfs.items()))
    host_config.update({"UTSMode": opts.uts, "UsernsMode": opts.userns, "ShmSize": f.shm_size})
    if f.sysctls:
        host_config["Sysctls"] = dict(sorted(f.sysctls.items()))
    if opts.runtime:
        host_config["Runtime"] = opts.runtime
    host_config.update(
        {
            "Isolation": opts.isolation,
            # Resources, embedded in HostConfig
            "CpuShares": opts.cpu_shares,
            "Memory": f.memory,
            "NanoCpus": f.nano_cpus,
            "CgroupParent": opts.cgroup_parent,
            "BlkioWeight": f.blkio_weight,
            "BlkioWeightDevice": f.blkio_weight_device,
            "BlkioDeviceReadBps": f.read_bps,
            "BlkioDeviceWriteBps": f.write_bps,
            "BlkioDeviceReadIOps": f.read_iops,
            "BlkioDeviceWriteIOps": f.write_iops,
            "CpuPeriod": opts.cpu_period,
            "CpuQuota": opts.cpu_quota,
            "CpuRealtimePeriod": opts.cpu_rt_period,
            "CpuRealtimeRuntime": opts.cpu_rt_runtime,
            "CpusetCpus": opts.cpuset_cpus,
            "CpusetMems": opts.cpuset_mems,
            "Devices": devices,
            "DeviceCgroupRules": f.device_cgroup_rules or None,
            "DeviceRequests": device_requests,
            # KernelMemory: moby's client drops it for API >= 1.42
            "MemoryReservation": f.memory_reservation,
            "MemorySwap": f.memory_swap,
            "MemorySwappiness": swappiness,
            "OomKillDisable": opts.oom_kill_disable,
            "PidsLimit": opts.pids_limit,
            "Ulimits": [f.ulimits[k] for k in sorted(f.ulimits)],
            "CpuCount": opts.cpu_count,
            "CpuPercent": opts.cpu_percent,
            "IOMaximumIOps": f.io_max_iops,
            "IOMaximumBandwidth": f.io_max_bandwidth,
        }
    )
    if f.mounts:
        host_config["Mounts"] = f.mounts
    host_config["MaskedPaths"] = masked_paths
    host_config["ReadonlyPaths"] = readonly_paths

    if opts.rm and restart_policy["Name"] not in ("", "no"):
        raise OptionsError("conflicting options: cannot specify both --restart and --rm")
    if "init" in opts.changed:
        host_config["Init"] = opts.init

    endpoints = _endpoints(opts, f)
    return config, host_config, {"EndpointsConfig": endpoints}


# ---------------------------------------------------------------------------
# Validators of list flags (docker/cli opts/*.go); each returns the stored value


def _validate_attach(value: str) -> str:
    lowered = value.lower()
    if lowered in ("stdin", "stdout", "stderr"):
        return lowered
    raise ValueError("valid streams are STDIN, STDOUT and STDERR")


def _validate_env(value: str, environ: Mapping[str, str]) -> str:
    k, eq, _ = value.partition("=")
    if not k:
        raise ValueError("invalid environment variable: " + value)
    if eq:
        return value
    found = environ.get(k)
    return value if found is None else f"{k}={found}"


_WHITESPACE = " \t"


def _validate_label(value: str) -> str:
    key = value.partition("=")[0].lstrip(_WHITESPACE)
    if not key:
        raise ValueError(f"invalid label '{value}': empty name")
    if any(c in key for c in _WHITESPACE):
        raise ValueError(f"label '{key}' contains whitespaces")
    return value


# Imported where used, not at the top: each costs milliseconds on every
# `portside run`, and most runs use none of the flags that need them.


def _parse_duration(value: str) -> int:
    from portside import timefmt

    return timefmt.parse_duration(value)


def go_parse_ip(value: str) -> str | None:
    """net.ParseIP then String(): the canonical text of an IP address, None if it is none."""
    import ipaddress

    if "%" in value:  # Go's ParseIP takes no zone
        return None
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _validate_ip(value: str) -> str:
    ip = go_parse_ip(value.strip())
    if ip is None:
        raise ValueError(f"IP address is not correctly formatted: {value}")
    return ip


def _validate_extra_host(value: str) -> str:
    k, sep, v = value.partition("=")
    if not sep:
        k, sep, v = value.partition(":")
    if not sep or not k or ":" in k:
        raise ValueError(f"bad format for add-host: {go_quote(value)}")
    if v != "host-gateway":
        if len(v) > 2 and v[0] == "[" and v[-1] == "]":
            v = v[1:-1]
        if go_parse_ip(v.strip()) is None:
            raise ValueError(f"invalid IP address in add-host: {go_quote(v)}")
    return f"{k}:{v}"


# opts.go's domainRegexp, "(:?" typos and all (each is a group with an optional colon).
_DOMAIN = (
    r"(?a)^(:?(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))(:?\.(:?[a-zA-Z0-9]|"
    r"(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?\s*$"
)


def _validate_dns_search(value: str) -> str:
    import re

    value = value.strip(" ")
    if value == ".":
        return value
    m = re.search(_DOMAIN, value) if re.search(r"[a-zA-Z]", value) else None
    if m is None or len(m.group(1)) >= 255:
        raise ValueError(f"{value} is not a valid domain")
    return m.group(1)


def _validate_link(value: str) -> str:
    if not value:
        raise ValueError("empty string specified for links")
    if len(value.split(":", 2)) > 2:
        raise ValueError("bad format for links: " + value)
    return value


_SYSCTLS = frozenset(
    ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
     "kernel.shmmni", "kernel.shm_rmid_forced")
)


def _validate_sysctl(value: str) -> str:
    k, eq, _ = value.partition("=")
    if eq and k and (k in _SYSCTLS or k.startswith(("net.", "fs.mqueue."))):
        return value
    raise ValueError(f"sysctl '{value}' is not allowed")


_ULIMITS = frozenset(
    ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio",
     "rttime", "sigpending", "stack")
)


def _parse_ulimit(value: str) -> dict[str, Any]:
    """go-units ParseUlimit: ``name=soft[:hard]``."""
    name, eq, limits = value.partition("=")
    if not eq:
        raise ValueError(f"invalid ulimit argument: {value}")
    if name not in _ULIMITS:
        raise ValueError(f"invalid ulimit type: {name}")
    parts = limits.split(":")
    if len(parts) > 2:
        raise ValueError(
            f"too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
        )
    hard = _parse_int(parts[1]) if len(parts) == 2 else None
    soft = _parse_int(parts[0])
    if hard is None:
        hard = soft
    if hard != -1:
        if soft == -1:
            raise ValueError(
                f"ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"
            )
        if soft > hard:
            raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def _parse_int(value: str, bits: int = 64) -> int:
    """strconv.ParseInt(value, 10, bits) with its error texts."""
    import re

    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(value)}: invalid syntax")
    n = int(value)
    if not -(1 << (bits - 1)) <= n < 1 << (bits - 1):
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(value)}: value out of range")
    return n


def _parse_uint(value: str, bits: int) -> int:
    """strconv.ParseUint(value, 0, bits), as pflag's unsigned flags call it."""
    import re

    text = value[1:] if value.startswith("+") else value
    m = re.fullmatch(r"0[xX]([0-9a-fA-F]+)|0[oO]?([0-7]+)|0[bB]([01]+)|([1-9][0-9]*|0)", text)
    if m is None:
        raise ValueError(f"strconv.ParseUint: parsing {go_quote(value)}: invalid syntax")
    base = (16, 8, 2, 10)[[i for i in range(4) if m.group(i + 1) is not None][0]]
    n = int(next(g for g in m.groups() if g is not None), base)
    if n >= 1 << bits:
        raise ValueError(f"strconv.ParseUint: parsing {go_quote(value)}: value out of range")
    return n


def _parse_cpus(value: str) -> int:
    """opts.ParseCPUs: a decimal (or fraction) number of CPUs -> NanoCPUs."""
    from fractions import Fraction

    try:
        if value != value.strip() or not value:
            raise ValueError
        cpus = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"failed to parse {value} as a rational number") from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


_DEVICE_CGROUP_RULE = r"[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}"


def _validate_device_cgroup_rule(value: str) -> str:
    import re

    if re.fullmatch(_DEVICE_CGROUP_RULE, value):
        return value
    raise ValueError(f"invalid device cgroup format '{value}'")


def _split_device(value: str) -> tuple[str, str]:
    k, sep, v = value.partition(":")
    if not sep or not k:
        raise ValueError(f"bad format: {value}")
    if not k.startswith("/dev/"):
        raise ValueError(f"bad format for device path: {value}")
    return k, v


def _validate_weight_device(value: str) -> dict[str, Any]:
    path, v = _split_device(value)
    try:
        weight = _parse_uint(v, 16)
        if weight and not 10 <= weight <= 1000:
            raise ValueError
    except ValueError:
        raise ValueError(f"invalid weight for device: {value}") from None
    return {"Path": path, "Weight": weight}


def _validate_throttle_bps(value: str) -> dict[str, Any]:
    path, v = _split_device(value)
    try:
        rate = units.ram_in_bytes(v)
    except InvalidArgument:
        rate = -1
    if rate < 0:
        raise ValueError(
            f"invalid rate for device: {value}. The correct format is <device-path>:<number>[<unit>]. "
            "Number must be a positive integer. Unit is optional and can be kb, mb, or gb"
        )
    return {"Path": path, "Rate": rate}


def _validate_throttle_iops(value: str) -> dict[str, Any]:
    import re

    path, v = _split_device(value)
    if not re.fullmatch(r"[0-9]+", v) or int(v) >= 1 << 64:
        raise ValueError(
            f"invalid rate for device: {value}. The correct format is <device-path>:<number>. "
            "Number must be a positive integer"
        )
    return {"Path": path, "Rate": int(v)}


# ---------------------------------------------------------------------------
# --mount (opts/mount.go)


def _csv_fields(value: str) -> list[str]:
    import csv

    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error as e:
        raise ValueError(f"parse error on line 1: {e}") from None
    if not rows:
        raise ValueError("EOF")
    return rows[0]


def _go_bool(value: str, error: str) -> bool:
    """strconv.ParseBool; ``error`` is the message when it refuses."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(error)


def _parse_mount(value: str, cwd: str) -> dict[str, Any]:
    import re

    fields = _csv_fields(value)
    mount: dict[str, Any] = {"Type": "volume"}
    bind: dict[str, Any] | None = None
    volume: dict[str, Any] | None = None
    image: dict[str, Any] | None = None
    tmpfs: dict[str, Any] | None = None

    def volume_options() -> dict[str, Any]:
        nonlocal volume
        if volume is None:
            volume = {"Labels": {}, "DriverConfig": {}}
        return volume

    def bind_options() -> dict[str, Any]:
        nonlocal bind
        if bind is None:
            bind = {}
        return bind

    def tmpfs_options() -> dict[str, Any]:
        nonlocal tmpfs
        if tmpfs is None:
            tmpfs = {}
        return tmpfs

    def image_options() -> dict[str, Any]:
        nonlocal image
        if image is None:
            image = {}
        return image

    for item in fields:
        key, eq, val = item.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                mount["ReadOnly"] = True
            elif key == "volume-nocopy":
                volume_options()["NoCopy"] = True
            elif key == "bind-nonrecursive":
                bind_options()["NonRecursive"] = True
            else:
                raise ValueError(f"invalid field '{item}' must be a key=value pair")
            continue
        if key == "type":
            mount["Type"] = val.lower()
        elif key in ("source", "src"):
            mount["Source"] = go_clean(posixpath.join(cwd, val)) if val.startswith(".") else val
        elif key in ("target", "dst", "destination"):
            mount["Target"] = val
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _go_bool(val, f"invalid value for {key}: {val}")
        elif key == "consistency":
            mount["Consistency"] = val.lower()
        elif key == "bind-propagation":
            bind_options()["Propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            bind_options()["NonRecursive"] = _go_bool(val, f"invalid value for {key}: {val}")
        elif key == "bind-recursive":
            if val == "disabled":
                bind_options()["NonRecursive"] = True
            elif val == "writable":
                bind_options()["ReadOnlyNonRecursive"] = True
            elif val == "readonly":
                bind_options()["ReadOnlyForceRecursive"] = True
            elif val != "enabled":
                raise ValueError(
                    f'invalid value for {key}: {val} (must be "enabled", "disabled", "writable", or "readonly")'
                )
        elif key == "volume-subpath":
            volume_options()["Subpath"] = val
        elif key == "volume-nocopy":
            volume_options()["NoCopy"] = _go_bool(val, f"invalid value for volume-nocopy: {val}")
        elif key == "volume-label":
            _set_on_map(volume_options()["Labels"], val)
        elif key == "volume-driver":
            volume_options()["DriverConfig"]["Name"] = val
        elif key == "volume-opt":
            _set_on_map(volume_options()["DriverConfig"].setdefault("Options", {}), val)
        elif key == "image-subpath":
            image_options()["Subpath"] = val
        elif key == "tmpfs-size":
            try:
                tmpfs_options()["SizeBytes"] = units.ram_in_bytes(val)
            except InvalidArgument:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            if not re.fullmatch(r"[0-7]+", val) or int(val, 8) >= 1 << 32:
                raise ValueError(f"invalid value for {key}: {val}")
            tmpfs_options()["Mode"] = int(val, 8)
        else:
            raise ValueError(f"unexpected key '{key}' in '{item}'")

    kind = mount["Type"]
    if not kind:
        raise ValueError("type is required")
    if not mount.get("Target"):
        raise ValueError("target is required")
    for options, prefix, wanted in ((volume, "volume", "volume"), (image, "image", "image"),
                                    (bind, "bind", "bind"), (tmpfs, "tmpfs", "tmpfs")):
        if options is not None and kind != wanted:
            raise ValueError(f"cannot mix '{prefix}-*' options with mount type '{kind}'")
    if bind is not None:
        if bind.get("ReadOnlyNonRecursive") and not mount.get("ReadOnly"):
            raise ValueError("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
        if bind.get("ReadOnlyForceRecursive"):
            if not mount.get("ReadOnly"):
                raise ValueError(
                    "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"
                )
            if bind.get("Propagation") != "rprivate":
                raise ValueError(
                    "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in "
                    "conjunction"
                )
    return _mount_json(mount, bind, volume, image, tmpfs)


def _set_on_map(target: dict[str, str], value: str) -> None:
    k, _, v = value.partition("=")
    if k:
        target[k] = v


def _mount_json(
    mount: dict[str, Any],
    bind: dict[str, Any] | None,
    volume: dict[str, Any] | None,
    image: dict[str, Any] | None,
    tmpfs: dict[str, Any] | None,
) -> dict[str, Any]:
    """mount.Mount as Go encodes it: every field omitempty, in struct order."""
    out: dict[str, Any] = {}
    for key in ("Type", "Source", "Target", "ReadOnly", "Consistency"):
        if mount.get(key):
            out[key] = mount[key]
    if bind is not None:
        out["BindOptions"] = {
            k: bind[k]
            for k in ("Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive", "ReadOnlyForceRecursive")
            if bind.get(k)
        }
    if volume is not None:
        vo: dict[str, Any] = {}
        if volume.get("NoCopy"):
            vo["NoCopy"] = True
        if volume["Labels"]:
            vo["Labels"] = dict(sorted(volume["Labels"].items()))
        if volume.get("Subpath"):
            vo["Subpath"] = volume["Subpath"]
        driver = volume["DriverConfig"]
        vo["DriverConfig"] = {k: (dict(sorted(driver[k].items())) if k == "Options" else driver[k])
                              for k in ("Name", "Options") if driver.get(k)}
        out["VolumeOptions"] = vo
    if image is not None:
        out["ImageOptions"] = {k: image[k] for k in ("Subpath",) if image.get(k)}
    if tmpfs is not None:
        out["TmpfsOptions"] = {k: tmpfs[k] for k in ("SizeBytes", "Mode") if tmpfs.get(k)}
    return out


# ---------------------------------------------------------------------------
# --network (opts/network.go) and the endpoints (parseNetworkOpts)


class _NetworkAttachment:
    """One ``--network``: a name, or the long syntax's settings for that network."""

    __slots__ = ("target", "aliases", "driver_opts", "links", "ipv4", "ipv6", "link_local_ips", "mac", "gw_priority")

    def __init__(self, target: str) -> None:
        self.target = target
        self.aliases: list[str] = []
        self.driver_opts: dict[str, str] = {}
        self.links: list[str] = []
        self.ipv4 = ""
        self.ipv6 = ""
        self.link_local_ips: list[str] = []
        self.mac = ""
        self.gw_priority = 0

    def copy(self) -> _NetworkAttachment:
        out = _NetworkAttachment(self.target)
        for name in self.__slots__:
            setattr(out, name, getattr(self, name))
        return out


_LONG_NETWORK_SYNTAX = r"(?a)\w+=\w+(,\w+=\w+)*"


def _parse_network(value: str) -> _NetworkAttachment:
    if "=" not in value:  # a network name (`--network none`): no long syntax, no re
        return _NetworkAttachment(value)
    import re

    if not re.search(_LONG_NETWORK_SYNTAX, value):
        return _NetworkAttachment(value)
    n = _NetworkAttachment("")
    for item in _csv_fields(value):
        key, eq, val = item.lower().partition("=")
        if not eq or not key:
            raise ValueError(f"invalid field {item}")
        key, val = key.strip(), val.strip()
        if key == "name":
            n.target = val
        elif key == "alias":
            n.aliases.append(val)
        elif key == "ip":
            n.ipv4 = val
        elif key == "ip6":
            n.ipv6 = val
        elif key == "mac-address":
            n.mac = val
        elif key == "link-local-ip":
            n.link_local_ips.append(val)
        elif key == "driver-opt":
            k, eq, v = val.partition("=")
            if not eq or not k:
                raise ValueError("invalid key value pair format in driver options")
            n.driver_opts[k.strip()] = v.strip()
        elif key == "gw-priority":
            try:
                n.gw_priority = _parse_int(val)
            except ValueError as e:
                reason = "value out of range" if "range" in str(e) else "invalid syntax"
                raise ValueError(f"invalid gw-priority ({val}): {reason}") from None
        else:
            raise ValueError("invalid field key " + key)
    if not n.target:
        raise ValueError("network name/id is not specified")
    return n


def _is_user_defined(mode: str) -> bool:
    return mode not in ("default", "bridge", "host", "none") and not mode.startswith("container:")


def _endpoints(opts: Options, f: _FlagValues) -> dict[str, Any]:
    aliases = opts.network_alias
    networks = [*f.networks] or [_NetworkAttachment("default")]
    explicit = bool(f.networks)
    endpoints: dict[str, Any] = {}
    user_defined = non_user_defined = False
    for i, n in enumerate(networks):
        if explicit:
            if _is_user_defined(n.target):
                user_defined = True
            else:
                non_user_defined = True
        if i == 0:
            n = _apply_container_options(n, opts, f, aliases)
        ep = _endpoint(n)
        if n.target in endpoints:
            raise OptionsError(f"network {go_quote(n.target)} is specified multiple times")
        # One network given without options: no endpoint config (the daemon makes one).
        if explicit and i == 0 and len(networks) == 1 and ep == _endpoint_json():
            continue
        endpoints[n.target] = ep
    if user_defined and non_user_defined:
        raise OptionsError("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
    return endpoints


def _apply_container_options(
    n: _NetworkAttachment, opts: Options, f: _FlagValues, aliases: list[str]
) -> _NetworkAttachment:
    if n.aliases and aliases:
        raise OptionsError("conflicting options: cannot specify both --network-alias and per-network alias")
    if n.links and f.links:
        raise OptionsError("conflicting options: cannot specify both --link and per-network links")
    if n.ipv4 and opts.ip:
        raise OptionsError("conflicting options: cannot specify both --ip and per-network IPv4 address")
    if n.ipv6 and opts.ip6:
        raise OptionsError("conflicting options: cannot specify both --ip6 and per-network IPv6 address")
    if n.mac and opts.mac_address:
        raise OptionsError("conflicting options: cannot specify both --mac-address and per-network MAC address")
    if n.link_local_ips and opts.link_local_ip:
        raise OptionsError(
            "conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses"
        )
    out = n.copy()
    if aliases:
        out.aliases = list(aliases)
    # On a user-defined network --link makes an alias; on the default bridge it is a legacy link.
    if _is_user_defined(n.target) and f.links:
        out.links = list(f.links)
    out.ipv4 = opts.ip or out.ipv4
    out.ipv6 = opts.ip6 or out.ipv6
    out.mac = opts.mac_address or out.mac
    if opts.link_local_ip:
        out.link_local_ips = list(opts.link_local_ip)
    return out


def _endpoint(n: _NetworkAttachment) -> dict[str, Any]:
    if not n.target.strip():
        raise OptionsError("no name set for network")
    if not _is_user_defined(n.target):
        if n.aliases:
            raise OptionsError("network-scoped aliases are only supported for user-defined networks")
        if n.links:
            raise OptionsError("links are only supported for user-defined networks")
    ipam = None
    if n.ipv4 or n.ipv6 or n.link_local_ips:
        ipam = {k: v for k, v in (("IPv4Address", n.ipv4), ("IPv6Address", n.ipv6),
                                  ("LinkLocalIPs", n.link_local_ips)) if v}
    if n.mac and not _valid_mac(n.mac):
        raise OptionsError(f"{n.mac} is not a valid mac address")
    return _endpoint_json(
        ipam=ipam,
        links=n.links or None,
        aliases=n.aliases or None,
        mac=n.mac,
        driver_opts=dict(sorted(n.driver_opts.items())) or None,
        gw_priority=n.gw_priority,
    )


def _endpoint_json(
    *,
    ipam: dict[str, Any] | None = None,
    links: list[str] | None = None,
    aliases: list[str] | None = None,
    mac: str = "",
    driver_opts: dict[str, str] | None = None,
    gw_priority: int = 0,
) -> dict[str, Any]:
    """network.EndpointSettings: the settings a client sets, then the operational fields, empty."""
    return {
        "IPAMConfig": ipam,
        "Links": links,
        "Aliases": aliases,
        "MacAddress": mac,
        "DriverOpts": driver_opts,
        "GwPriority": gw_priority,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }


_MAC = (
    r"(?:[0-9a-fA-F]{2}([:-]))(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}"
    r"|(?:[0-9a-fA-F]{2}([:-]))(?:[0-9a-fA-F]{2}\2){6}[0-9a-fA-F]{2}"
    r"|(?:[0-9a-fA-F]{2}([:-]))(?:[0-9a-fA-F]{2}\3){18}[0-9a-fA-F]{2}"
    r"|[0-9a-fA-F]{4}(?:\.[0-9a-fA-F]{4}){2}|[0-9a-fA-F]{4}(?:\.[0-9a-fA-F]{4}){3}"
    r"|[0-9a-fA-F]{4}(?:\.[0-9a-fA-F]{4}){9}"
)


def _valid_mac(value: str) -> bool:
    """net.ParseMAC: EUI-48, EUI-64 or 20-octet InfiniBand, with ':' '-' or '.' separators."""
    import re

    return re.fullmatch(_MAC, value.strip()) is not None


# ---------------------------------------------------------------------------
# -v (cli/compose/loader ParseVolume)


def _binds_and_volumes(specs: list[str], cwd: str) -> tuple[list[str], dict[str, Any]]:
    """Specs with a source become binds (relative ./ sources made absolute); the rest anonymous volumes."""
    binds: list[str] = []
    volumes: dict[str, Any] = {}
    for spec in dict.fromkeys(specs):  # docker keeps them in a set
        source, target = _parse_volume(spec)
        if not source:
            volumes[spec] = {}
            continue
        bind = spec
        if _is_file_path(source):
            host, sep, rest = spec.partition(":")
            if sep:
                if not host.startswith("/") and host.startswith("."):
                    host = go_clean(posixpath.join(cwd, host))
                bind = host + ":" + rest
        binds.append(bind)
    return binds, volumes


def _parse_volume(spec: str) -> tuple[str, str]:
    """The source and target of a ``-v`` spec, with the loader's errors."""
    if not spec:
        raise OptionsError("invalid empty volume spec")
    if len(spec) <= 2:
        return "", spec
    source = target = ""
    buffer = ""
    for ch in spec + "\0":
        if ch == ":" and len(buffer) == 1 and buffer.isalpha():
            buffer += ch  # a Windows drive letter
        elif ch in (":", "\0"):
            if not buffer:
                raise OptionsError(f"invalid spec: {spec}: empty section between colons")
            if not source and ch == "\0":
                target = buffer
            elif not source:
                source = buffer
            elif not target:
                target = buffer
            elif ch == ":":
                raise OptionsError(f"invalid spec: {spec}: too many colons")
            buffer = ""
        else:
            buffer += ch
    return source, target


def _is_file_path(source: str) -> bool:
    if source[0] in "./~":
        return True
    if len(source) == 1:
        return False
    if source.startswith("\\\\"):
        return True
    return source[0].isalpha() and source[1] == ":"



# ---------------------------------------------------------------------------
# -p and --expose (go-connections/nat)


def _standard_port_notation(specs: list[str]) -> list[str]:
    """``published=8080,target=80,protocol=udp`` -> ``8080:80/udp``."""
    out = []
    for spec in specs:
        if "=" not in spec:
            out.append(spec)
            continue
        params = {"protocol": "tcp"}
        for param in spec.split(","):
            k, eq, v = param.partition("=")
            if not eq or not k:
                raise OptionsError(f"invalid publish opts format (should be name=value but got '{param}')")
            params[k] = v
        out.append(f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}")
    return out


def _split_proto_port(raw: str) -> tuple[str, str]:
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1:
        return "tcp", raw
    if not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _parse_port_range(ports: str) -> tuple[int, int]:
    if not ports:
        raise ValueError("empty string specified for ports")
    if "-" not in ports:
        n = _parse_port(ports)
        return n, n
    parts = ports.split("-")
    start, end = _parse_port(parts[0]), _parse_port(parts[1])
    if end < start:
        raise ValueError(f"invalid range specified for port: {ports}")
    return start, end


def _parse_port(value: str) -> int:
    import re

    if not re.fullmatch(r"[0-9]+", value):
        raise ValueError(f"strconv.ParseUint: parsing {go_quote(value)}: invalid syntax")
    n = int(value)
    if n > 0xFFFF:
        raise ValueError(f"strconv.ParseUint: parsing {go_quote(value)}: value out of range")
    return n


def _parse_port_specs(specs: list[str]) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """nat.ParsePortSpecs: the exposed ports and the host bindings of each, in the order given."""
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for raw in specs:
        parts = raw.split(":")
        container = parts[-1]
        ip = ":".join(parts[:-2]) if len(parts) > 2 else ""
        host = parts[-2] if len(parts) > 1 else ""
        proto, container = _split_proto_port(container)
        if ip.startswith("["):
            if not ip.endswith("]"):
                raise OptionsError(f"invalid IP address {ip}: address {ip}:: missing ']' in address")
            ip = ip[1:-1]
        if ip and go_parse_ip(ip) is None:
            raise OptionsError(f"invalid IP address: {ip}")
        if not container:
            raise OptionsError(f"no port specified: {raw}<empty>")
        try:
            start, end = _parse_port_range(container)
        except ValueError:
            raise OptionsError(f"invalid containerPort: {container}") from None
        host_start = host_end = 0
        if host:
            try:
                host_start, host_end = _parse_port_range(host)
            except ValueError:
                raise OptionsError(f"invalid hostPort: {host}") from None
        if host and end - start != host_end - host_start and end != start:
            raise OptionsError(
                f"invalid ranges specified for container and host Ports: {container} and {host}"
            )
        if proto.lower() not in ("tcp", "udp", "sctp"):
            raise OptionsError(f"invalid proto: {proto}")
        for i in range(end - start + 1):
            host_port = host
            if host:
                host_port = str(host_start + i)
            if start == end and host_start != host_end:
                host_port = f"{host_port}-{host_end}"
            port = f"{start + i}/{proto.lower()}"
            exposed.setdefault(port, {})
            bindings.setdefault(port, []).append({"HostIp": ip, "HostPort": host_port})
    return exposed, bindings


def _parse_expose(value: str) -> list[str]:
    if ":" in value:
        raise OptionsError(f"invalid port format for --expose: {value}")
    proto, port = _split_proto_port(value)
    try:
        start, end = _parse_port_range(port)
    except ValueError as e:
        raise OptionsError(f"invalid range format for --expose: {value}, error: {e}") from None
    return [f"{p}/{proto}" for p in range(start, end + 1)]


# ---------------------------------------------------------------------------
# --device (validateLinuxPath, parseLinuxDevice) and CDI names


def _valid_device_mode(mode: str) -> bool:
    return bool(mode) and len(set(mode)) == len(mode) and set(mode) <= set("rwm")


def _validate_linux_path(value: str) -> str:
    if value.count(":") > 2:
        raise OptionsError(f"bad format for path: {value}")
    split = value.split(":", 2)
    if not split[0]:
        raise OptionsError(f"bad format for path: {value}")
    if len(split) == 1:
        container_path = split[0]
        value = go_clean(container_path)
    elif len(split) == 2:
        if _valid_device_mode(split[1]):
            container_path = split[0]
            value = f"{go_clean(container_path)}:{split[1]}"
        else:
            container_path = split[1]
            value = f"{split[0]}:{go_clean(container_path)}"
    else:
        container_path = split[1]
        if not _valid_device_mode(split[2]):
            raise OptionsError(f"bad mode specified: {split[2]}")
    if not container_path.startswith("/"):
        raise OptionsError(f"{container_path} is not an absolute path")
    return value


def _parse_linux_device(device: str) -> dict[str, str]:
    arr = device.split(":", 3)
    src = arr[0]
    dst = ""
    permissions = "rwm"
    if len(arr) == 3:
        permissions = arr[2]
    if len(arr) >= 2:
        if _valid_device_mode(arr[1]):
            permissions = arr[1]
        else:
            dst = arr[1]
    if len(arr) > 3:
        raise OptionsError(f"invalid device specification: {device}")
    return {"PathOnHost": src, "PathInContainer": dst or src, "CgroupPermissions": permissions}


_CDI_VENDOR = r"[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?"
_CDI_CLASS = r"[A-Za-z](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
_CDI_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?"


def _is_cdi_name(device: str) -> bool:
    """A fully qualified CDI device name: ``vendor.com/class=name``."""
    import re

    kind, eq, name = device.partition("=")
    vendor, slash, cls = kind.partition("/")
    return bool(
        eq and slash and re.fullmatch(_CDI_VENDOR, vendor) and re.fullmatch(_CDI_CLASS, cls)
        and re.fullmatch(_CDI_NAME, name)
    )


# ---------------------------------------------------------------------------
# The rest of parse()'s pieces


def _read_kv_files(
    paths: list[str], read_file: Callable[[str], bytes], lookup: Callable[[str], str | None] | None
) -> list[str]:
    """kvfile.Parse over each file: ``NAME=value`` lines; bare names looked up (env) or dropped (labels)."""
    out: list[str] = []
    for path in paths:
        try:
            data = read_file(path)
        except OSError as e:
            reason = (e.strerror or str(e))
            raise OptionsError(f"open {path}: {reason[:1].lower()}{reason[1:]}") from None
        try:
            out += _parse_kv_lines(data, lookup)
        except ValueError as e:
            raise OptionsError(f"invalid env file ({path}): {e}") from None
    return out


def _parse_kv_lines(data: bytes, lookup: Callable[[str], str | None] | None) -> list[str]:
    lines = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"invalid utf8 bytes at line {number}: {list(raw)}") from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        line = text.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, _ = line.partition("=")
        if not key:
            raise ValueError(f"no variable name on line '{line}'")
        if any(c in key for c in _WHITESPACE):
            raise ValueError(f"variable '{key}' contains whitespaces")
        if eq:
            lines.append(line)
        elif lookup is not None:
            value = lookup(line)
            if value is not None:
                lines.append(f"{key}={value}")
    return lines


def _kv_map(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        k, _, val = v.partition("=")
        out[k] = val
    return out


def _valid_pid_mode(mode: str) -> bool:
    return mode in ("", "host") or (mode.startswith("container:") and len(mode) > len("container:"))


def _parse_restart_policy(policy: str) -> dict[str, Any]:
    if not policy:
        return {"Name": "", "MaximumRetryCount": 0}
    name, sep, count = policy.partition(":")
    if sep and not name:
        raise OptionsError("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = _parse_int(count)
        except ValueError:
            raise OptionsError("invalid restart policy format: maximum retry count must be an integer") from None
    return {"Name": name, "MaximumRetryCount": retries}


def _parse_security_opts(
    values: list[str], read_file: Callable[[str], bytes]
) -> tuple[list[str] | None, list[str] | None, list[str] | None]:
    """The options to send, MaskedPaths and ReadonlyPaths (``systempaths=unconfined`` empties both)."""
    opts = list(values)
    for i, opt in enumerate(opts):
        k, sep, v = opt.partition("=")
        if not sep and k != "no-new-privileges":
            k, sep, v = opt.partition(":")
        if (not sep or not v) and k != "no-new-privileges":
            raise OptionsError(f"Invalid --security-opt: {go_quote(opt)}")
        if k == "seccomp" and v not in ("builtin", "unconfined"):
            try:
                profile = read_file(v)
            except OSError as e:
                reason = e.strerror or str(e)
                raise OptionsError(
                    f"opening seccomp profile ({v}) failed: open {v}: {reason[:1].lower()}{reason[1:]}"
                ) from None
            import json  # a seccomp profile file: json's separators and errors

            try:
                compact = json.dumps(json.loads(profile), separators=(",", ":"))
            except ValueError as e:
                raise OptionsError(f"compacting json for seccomp profile ({v}) failed: {e}") from None
            opts[i] = "seccomp=" + compact
    masked: list[str] | None = None
    readonly: list[str] | None = None
    if "systempaths=unconfined" in opts:
        masked, readonly = [], []
        opts = [o for o in opts if o != "systempaths=unconfined"]
    return (opts if values else None), masked, readonly


def _healthcheck(opts: Options, durations: dict[str, int]) -> dict[str, Any] | None:
    interval, timeout = durations["health-interval"], durations["health-timeout"]
    start_period, start_interval = durations["health-start-period"], durations["health-start-interval"]
    retries = opts.health_retries
    configured = bool(opts.health_cmd or interval or timeout or start_period or retries or start_interval)
    if opts.no_healthcheck:
        if configured:
            raise OptionsError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not configured:
        return None
    for name, value in (("interval", interval), ("timeout", timeout), ("retries", retries),
                        ("start-period", start_period), ("start-interval", start_interval)):
        if value < 0:
            raise OptionsError(f"--health-{name} cannot be negative")
    health: dict[str, Any] = {}
    if opts.health_cmd:
        health["Test"] = ["CMD-SHELL", opts.health_cmd]
    for key, value in (("Interval", interval), ("Timeout", timeout), ("StartPeriod", start_period),
                       ("StartInterval", start_interval), ("Retries", retries)):
        if value:
            health[key] = value
    return health


def _normalize_capabilities(caps: list[str]) -> list[str] | None:
    """moby's client: upper case, a CAP_ prefix (ALL excepted), no duplicates, sorted."""
    normalized = set()
    for cap in caps:
        cap = cap.upper()
        if cap != "ALL" and not cap.startswith("CAP_"):
            cap = "CAP_" + cap
        normalized.add(cap)
    return sorted(normalized) or None


def exec_env(
    opts: Options,
    *,
    environ: Mapping[str, str],
    cwd: str,
    read_file: Callable[[str], bytes] = _read_file,
) -> list[str] | None:
    """``exec``'s ``--env-file`` and ``-e``: the ``Env`` of the exec request (None when empty).

    Raises FlagValueError for a bad ``-e`` and OptionsError for an unreadable file.
    """
    env = []
    for value in opts.env:
        try:
            env.append(_validate_env(value, environ))
        except ValueError as e:
            raise _invalid("env", value, str(e)) from None
    files = _read_kv_files(opts.env_file, lambda p: read_file(posixpath.join(cwd, p)), environ.get)
    return (files + env) or None
