"""Docker's ``POST /containers/create`` request → the OCI runtime spec, as dockerd translates it.

Two pure steps:

    parse_create(untrusted_json, name) -> CreateRequest
        Decodes Config, HostConfig and NetworkingConfig the way Go's
        encoding/json does (field names case-insensitive, unknown fields
        ignored, a wrong JSON type refused with Go's words), then runs the
        checks dockerd runs before it creates anything (runconfig's
        validateCreateRequest, daemon.verifyContainerSettings, the mount
        parser, the security options), with dockerd's messages.

    build_spec(create, image_config, *, container_id, rootfs, ...) -> Spec
        moby's daemon.createSpec: the image config merged in (daemon/commit.go
        merge), Docker's default spec (daemon/pkg/oci/defaults.go), then
        namespaces, user, capabilities, mounts, devices, resources, security.

Nothing here reads the host. What dockerd learns by looking (the kernel's
capabilities, the host's device nodes, the cgroup version, AppArmor, the
number of CPUs) comes in as ``HostFacts``; what it finds on disk (the image's
/etc/passwd, volume paths, a peer container's namespaces) comes in as text or
callables. Where portside's answer differs from dockerd's, docs/runtime-spec.md
says so.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import posixpath
import re
import signal
import types
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from portside.containers.user import additional_groups, resolve_user
from portside.errors import InvalidArgument, NotImplementedYet, json_kind
from portside.oci import runtime_spec as rs
from portside.oci.gopath import clean as _clean

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
MIN_MEMORY = 6 * 1024 * 1024

# moby's caps.DefaultCapabilities, in its order
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
# every capability Linux knows (0..40), in number order: what "ALL" and --privileged mean
ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
# moby's oci.DefaultLinuxSpec (less the per-CPU thermal_throttle paths it adds after looking at the host)
DEFAULT_MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats", "/sys/devices/virtual/powercap",
    "/sys/firmware",
)
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
# the devices cgroup: deny all, then Docker's defaults (/dev/zero, null, urandom, random, tty, console), deny fuse
DEFAULT_DEVICE_RULES = (
    rs.DeviceCgroup(False, access="rwm"),
    rs.DeviceCgroup(True, "c", 1, 5, "rwm"), rs.DeviceCgroup(True, "c", 1, 3, "rwm"),
    rs.DeviceCgroup(True, "c", 1, 9, "rwm"), rs.DeviceCgroup(True, "c", 1, 8, "rwm"),
    rs.DeviceCgroup(True, "c", 5, 0, "rwm"), rs.DeviceCgroup(True, "c", 5, 1, "rwm"),
    rs.DeviceCgroup(False, "c", 10, 229, "rwm"),
)
# annotation that asks the runtime to run an init (Docker's --init) as pid 1 in front of process.args
INIT_ANNOTATION = "io.portside.init"

_RLIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
            "rss", "rtprio", "rttime", "sigpending", "stack")
_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_TMPFS_FLAGS = {  # option → the mount flag it sets or clears (moby/sys/mount's table); one wins per flag
    "ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid", "dev": "nodev", "nodev": "nodev",
    "exec": "noexec", "noexec": "noexec", "sync": "sync", "async": "sync", "dirsync": "dirsync",
    "remount": "remount", "mand": "mand", "nomand": "mand", "atime": "noatime", "noatime": "noatime",
    "diratime": "nodiratime", "nodiratime": "nodiratime", "relatime": "relatime", "norelatime": "relatime",
    "strictatime": "strictatime", "nostrictatime": "strictatime",
    **{p: "propagation" for p in ("bind", "rbind", "unbindable", "runbindable") + _PROPAGATIONS},
}
_TMPFS_DATA = ("", "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")


# ---------------------------------------------------------------------------------------------------------------
# The request, typed


@dataclass(frozen=True)
class MountRequest:
    """One entry of HostConfig.Mounts (``--mount``)."""

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    bind_options: Mapping[str, Any] | None = None
    volume_options: Mapping[str, Any] | None = None
    tmpfs_options: Mapping[str, Any] | None = None
    image_options: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class DeviceMapping:
    path_on_host: str
    path_in_container: str
    cgroup_permissions: str


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class ContainerConfig:
    """Config: what the image may also say (merged with the image config at build time)."""

    image: str = ""
    hostname: str = ""
    domainname: str = ""
    user: str = ""
    tty: bool = False
    open_stdin: bool = False
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None          # None (absent or null) is not [] in Docker's merge rules
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    volumes: tuple[str, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    network_disabled: bool = False
    healthcheck: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class HostConfig:
    binds: tuple[str, ...] = ()
    network_mode: str = "default"
    port_bindings: Mapping[str, Any] = field(default_factory=dict)
    restart_policy: str = "no"
    restart_max_retries: int = 0
    auto_remove: bool = False
    volume_driver: str = ""
    volumes_from: tuple[str, ...] = ()
    console_size: tuple[int, int] = (0, 0)
    annotations: Mapping[str, str] = field(default_factory=dict)
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    cgroupns_mode: str = ""
    dns: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    ipc_mode: str = ""
    links: tuple[str, ...] = ()
    oom_score_adj: int = 0
    pid_mode: str = ""
    privileged: bool = False
    publish_all_ports: bool = False
    readonly_rootfs: bool = False
    security_opt: tuple[str, ...] = ()
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    uts_mode: str = ""
    userns_mode: str = ""
    shm_size: int = 0
    sysctls: Mapping[str, str] = field(default_factory=dict)
    runtime: str = ""
    isolation: str = ""
    mounts: tuple[MountRequest, ...] = ()
    masked_paths: tuple[str, ...] | None = None     # None: Docker's defaults; () (systempaths=unconfined): none
    readonly_paths: tuple[str, ...] | None = None
    init: bool | None = None
    # Resources
    cgroup_parent: str = ""
    memory: int = 0
    memory_reservation: int = 0
    memory_swap: int = 0
    memory_swappiness: int | None = None
    oom_kill_disable: bool | None = None
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_realtime_period: int = 0
    cpu_realtime_runtime: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    cpu_count: int = 0
    cpu_percent: int = 0
    blkio_weight: int = 0
    blkio_weight_device: tuple[tuple[str, int], ...] = ()
    blkio_device_read_bps: tuple[tuple[str, int], ...] = ()
    blkio_device_write_bps: tuple[tuple[str, int], ...] = ()
    blkio_device_read_iops: tuple[tuple[str, int], ...] = ()
    blkio_device_write_iops: tuple[tuple[str, int], ...] = ()
    io_maximum_iops: int = 0
    io_maximum_bandwidth: int = 0
    pids_limit: int | None = None
    ulimits: tuple[Ulimit, ...] = ()
    devices: tuple[DeviceMapping, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    device_requests: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Security:
    """HostConfig.SecurityOpt, parsed (daemon parseSecurityOpt)."""

    no_new_privileges: bool | None = None
    apparmor_profile: str = ""
    seccomp_profile: str = ""            # "", "unconfined", "builtin" or the profile's JSON text
    writable_cgroups: bool | None = None


@dataclass(frozen=True)
class MountPoint:
    """A bind, volume or tmpfs mount of the request (Binds, Mounts, Tmpfs), parsed as moby's mount parser does."""

    destination: str
    type: str                  # "bind", "volume" or "tmpfs"
    source: str = ""           # bind: host path; volume: its name ("" = anonymous)
    rw: bool = True
    propagation: str = ""      # binds: rprivate unless given; volumes: none
    data: str = ""             # tmpfs: its options
    mode: str = ""             # what inspect's Mounts shows as Mode: -v's mode, "z" for a named volume
    non_recursive: bool = False
    readonly_non_recursive: bool = False
    readonly_force_recursive: bool = False


@dataclass(frozen=True)
class CreateRequest:
    name: str
    config: ContainerConfig
    host_config: HostConfig
    networking_config: Mapping[str, Any]
    security: Security
    mount_points: tuple[MountPoint, ...]     # Binds, then Mounts, then Tmpfs; destinations unique
    body: Mapping[str, Any]                  # the request as sent: Config fields, HostConfig, NetworkingConfig

    @property
    def image(self) -> str:
        return self.config.image


@dataclass(frozen=True)
class EtcFiles:
    """Host paths of the files the daemon writes for the container (None: not mounted)."""

    hosts: str | None = None
    hostname: str | None = None
    resolv_conf: str | None = None


@dataclass(frozen=True)
class HostFacts:
    """What dockerd learns by looking at the host and its own configuration; the defaults suit a modern host."""

    cgroup2: bool = True
    cgroup_driver: str = "cgroupfs"                     # or "systemd"
    cgroup_parent: str = ""                             # daemon-wide parent ("" = /portside or system.slice)
    capabilities: tuple[str, ...] = ALL_CAPABILITIES    # what this host can grant: "ALL" and --privileged
    devices: Mapping[str, rs.Device] = field(default_factory=lambda: types.MappingProxyType({}))  # /dev by path
    cpus: int = 0                                       # 0: unknown, NanoCpus not range-checked
    apparmor_profile: str = ""                          # the default profile when AppArmor is in use
    uid_mappings: tuple[rs.IDMapping, ...] = ()         # userns-remap: the daemon's mappings
    gid_mappings: tuple[rs.IDMapping, ...] = ()
    recursive_readonly: bool = True                     # the runtime does "rro" (Linux >= 5.12)
    init: bool = False                                  # dockerd --init
    no_new_privileges: bool = False                     # dockerd --no-new-privileges
    shm_size: int = DEFAULT_SHM_SIZE
    ipc_mode: str = "private"
    cgroupns_mode: str = ""                             # "" = private on cgroup v2, host on v1


# ---------------------------------------------------------------------------------------------------------------
# Decoding, after Go's encoding/json


class _Obj:
    """A JSON object read like Go reads it into a struct: keys matched case-insensitively, exact match first."""

    def __init__(self, doc: Mapping[str, Any], struct: str) -> None:
        self.doc = doc
        self.struct = struct
        self.folded: dict[str, str] = {}
        for k in doc:
            self.folded.setdefault(k.lower(), k)

    def get(self, key: str) -> Any:
        if key in self.doc:
            return self.doc[key]
        k = self.folded.get(key.lower())
        return self.doc[k] if k is not None else None

    def _bad(self, key: str, value: Any, gotype: str) -> InvalidArgument:
        kind = ("bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float))
                else "string" if isinstance(value, str) else "array" if isinstance(value, list) else "object")
        return InvalidArgument(f"invalid JSON: json: cannot unmarshal {kind} into Go struct field "
                               f"{self.struct}.{key} of type {gotype}")

    def text(self, key: str) -> str:
        v = self.get(key)
        if v is None:
            return ""
        if not isinstance(v, str):
            raise self._bad(key, v, "string")
        return v

    def flag(self, key: str) -> bool:
        v = self.get(key)
        if v is None:
            return False
        if not isinstance(v, bool):
            raise self._bad(key, v, "bool")
        return v

    def opt_flag(self, key: str) -> bool | None:
        return None if self.get(key) is None else self.flag(key)

    def num(self, key: str, gotype: str = "int64") -> int:
        v = self.get(key)
        if v is None:
            return 0
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self._bad(key, v, gotype)
        if gotype.startswith("uint") and v < 0:
            raise self._bad(key, v, gotype)
        return v

    def opt_num(self, key: str) -> int | None:
        return None if self.get(key) is None else self.num(key)

    def strs(self, key: str, *, strslice: bool = False) -> tuple[str, ...] | None:
        """A []string; None when absent or null. ``strslice``: a lone string is a list of one (Cmd, Entrypoint)."""
        v = self.get(key)
        if v is None:
            return None
        if strslice and isinstance(v, str):
            return (v,)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self._bad(key, v, "[]string")
        return tuple(v)

    def str_map(self, key: str) -> dict[str, str]:
        v = self.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise self._bad(key, v, "map[string]string")
        return dict(v)

    def obj(self, key: str, struct: str) -> "_Obj | None":
        v = self.get(key)
        if v is None:
            return None
        if not isinstance(v, dict):
            raise self._bad(key, v, struct)
        return _Obj(v, struct.split(".")[-1])

    def objs(self, key: str, struct: str) -> list["_Obj"]:
        v = self.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            raise self._bad(key, v, "[]" + struct)
        out = []
        for item in v:
            if item is None:
                continue
            if not isinstance(item, dict):
                raise self._bad(key, item, struct)
            out.append(_Obj(item, struct.split(".")[-1]))
        return out


def parse_create(untrusted_json: Any, name: str | None = None, *,
                 volumes_from: VolumesFrom | None = None) -> CreateRequest:
    """A create request's body (decoded JSON) → a checked CreateRequest; InvalidArgument with dockerd's words.

    ``volumes_from`` looks up the mount points of a container named in
    HostConfig.VolumesFrom (None: the request may not name any).
    """
    if not isinstance(untrusted_json, dict):
        raise InvalidArgument("invalid JSON: json: cannot unmarshal into Go value of type container.CreateRequest")
    body = _Obj(untrusted_json, "CreateRequest")
    # The Config fields sit at the top level of the body (Go's embedded *Config).
    config = _parse_config(_Obj(untrusted_json, "Config"))
    hc_obj = body.obj("HostConfig", "container.HostConfig")
    host = _parse_host_config(hc_obj) if hc_obj is not None else HostConfig()
    nc = body.get("NetworkingConfig")
    if nc is not None and not isinstance(nc, dict):
        raise body._bad("NetworkingConfig", nc, "network.NetworkingConfig")
    networking = dict(nc or {})
    if host.network_mode in ("", "default"):
        host = replace(host, network_mode="bridge")  # the router's default, before anything else looks at it

    _validate_config(config)
    _validate_create_request(config, host)
    _validate_host_config(host)
    _validate_platform_settings(config, host)
    security = parse_security_opt(host.security_opt)
    mount_points = _register_mount_points(host, volumes_from)
    return CreateRequest(name or "", config, host, networking, security, mount_points, dict(untrusted_json))


def _parse_config(o: _Obj) -> ContainerConfig:
    volumes = o.get("Volumes")
    if volumes is not None and not isinstance(volumes, dict):
        raise o._bad("Volumes", volumes, "map[string]struct {}")
    ports = o.get("ExposedPorts")
    if ports is not None and not isinstance(ports, dict):
        raise o._bad("ExposedPorts", ports, "network.PortSet")
    health = o.get("Healthcheck")
    if health is not None and not isinstance(health, dict):
        raise o._bad("Healthcheck", health, "container.HealthConfig")
    return ContainerConfig(
        image=o.text("Image"), hostname=o.text("Hostname"), domainname=o.text("Domainname"), user=o.text("User"),
        tty=o.flag("Tty"), open_stdin=o.flag("OpenStdin"), env=o.strs("Env") or (),
        cmd=o.strs("Cmd", strslice=True), entrypoint=o.strs("Entrypoint", strslice=True),
        working_dir=o.text("WorkingDir"), volumes=tuple(volumes or {}), exposed_ports=tuple(ports or {}),
        labels=o.str_map("Labels"), stop_signal=o.text("StopSignal"), network_disabled=o.flag("NetworkDisabled"),
        healthcheck=health)


def _throttle(o: _Obj, key: str, value_key: str) -> tuple[tuple[str, int], ...]:
    return tuple((d.text("Path"), d.num(value_key, "uint64")) for d in o.objs(key, "blkiodev.ThrottleDevice"))


def _parse_host_config(o: _Obj) -> HostConfig:
    restart = o.obj("RestartPolicy", "container.RestartPolicy")
    console = o.get("ConsoleSize")
    if console is None:
        console = [0, 0]
    if (not isinstance(console, list) or len(console) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in console)):
        raise o._bad("ConsoleSize", console, "[2]uint")
    mounts = tuple(
        MountRequest(type=m.text("Type"), target=m.text("Target"), source=m.text("Source"), read_only=m.flag("ReadOnly"),
                     bind_options=_opt_map(m, "BindOptions"), volume_options=_opt_map(m, "VolumeOptions"),
                     tmpfs_options=_opt_map(m, "TmpfsOptions"), image_options=_opt_map(m, "ImageOptions"))
        for m in o.objs("Mounts", "mount.Mount"))
    ports = o.get("PortBindings")
    if ports is not None and not isinstance(ports, dict):
        raise o._bad("PortBindings", ports, "network.PortMap")
    requests = o.get("DeviceRequests")
    if requests is not None and (not isinstance(requests, list) or not all(isinstance(r, dict) for r in requests)):
        raise o._bad("DeviceRequests", requests, "[]container.DeviceRequest")
    return HostConfig(
        binds=o.strs("Binds") or (), network_mode=o.text("NetworkMode"), port_bindings=dict(ports or {}),
        restart_policy=restart.text("Name") if restart else "", restart_max_retries=restart.num("MaximumRetryCount", "int") if restart else 0,
        auto_remove=o.flag("AutoRemove"), volume_driver=o.text("VolumeDriver"),
        volumes_from=o.strs("VolumesFrom") or (), console_size=(console[0], console[1]),
        annotations=o.str_map("Annotations"), cap_add=o.strs("CapAdd") or (), cap_drop=o.strs("CapDrop") or (),
        cgroupns_mode=o.text("CgroupnsMode"), dns=o.strs("Dns") or (), dns_options=o.strs("DnsOptions") or (),
        dns_search=o.strs("DnsSearch") or (), extra_hosts=o.strs("ExtraHosts") or (),
        group_add=o.strs("GroupAdd") or (), ipc_mode=o.text("IpcMode"), links=o.strs("Links") or (),
        oom_score_adj=o.num("OomScoreAdj", "int"), pid_mode=o.text("PidMode"), privileged=o.flag("Privileged"),
        publish_all_ports=o.flag("PublishAllPorts"), readonly_rootfs=o.flag("ReadonlyRootfs"),
        security_opt=o.strs("SecurityOpt") or (), tmpfs=o.str_map("Tmpfs"), uts_mode=o.text("UTSMode"),
        userns_mode=o.text("UsernsMode"), shm_size=o.num("ShmSize"), sysctls=o.str_map("Sysctls"),
        runtime=o.text("Runtime"), isolation=o.text("Isolation"), mounts=mounts,
        masked_paths=o.strs("MaskedPaths"), readonly_paths=o.strs("ReadonlyPaths"), init=o.opt_flag("Init"),
        cgroup_parent=o.text("CgroupParent"), memory=o.num("Memory"), memory_reservation=o.num("MemoryReservation"),
        memory_swap=o.num("MemorySwap"), memory_swappiness=o.opt_num("MemorySwappiness"),
        oom_kill_disable=o.opt_flag("OomKillDisable"), nano_cpus=o.num("NanoCpus"), cpu_shares=o.num("CpuShares"),
        cpu_period=o.num("CpuPeriod"), cpu_quota=o.num("CpuQuota"), cpu_realtime_period=o.num("CpuRealtimePeriod"),
        cpu_realtime_runtime=o.num("CpuRealtimeRuntime"), cpuset_cpus=o.text("CpusetCpus"),
        cpuset_mems=o.text("CpusetMems"), cpu_count=o.num("CpuCount"), cpu_percent=o.num("CpuPercent"),
        blkio_weight=o.num("BlkioWeight", "uint16"),
        blkio_weight_device=tuple((d.text("Path"), d.num("Weight", "uint16"))
                                  for d in o.objs("BlkioWeightDevice", "blkiodev.WeightDevice")),
        blkio_device_read_bps=_throttle(o, "BlkioDeviceReadBps", "Rate"),
        blkio_device_write_bps=_throttle(o, "BlkioDeviceWriteBps", "Rate"),
        blkio_device_read_iops=_throttle(o, "BlkioDeviceReadIOps", "Rate"),
        blkio_device_write_iops=_throttle(o, "BlkioDeviceWriteIOps", "Rate"),
        io_maximum_iops=o.num("IOMaximumIOps", "uint64"), io_maximum_bandwidth=o.num("IOMaximumBandwidth", "uint64"),
        pids_limit=_pids_limit(o.opt_num("PidsLimit")),
        ulimits=tuple(Ulimit(u.text("Name"), u.num("Soft"), u.num("Hard")) for u in o.objs("Ulimits", "container.Ulimit")),
        devices=tuple(DeviceMapping(d.text("PathOnHost"), d.text("PathInContainer"), d.text("CgroupPermissions"))
                      for d in o.objs("Devices", "container.DeviceMapping")),
        device_cgroup_rules=o.strs("DeviceCgroupRules") or (), device_requests=tuple(requests or ()))


def _opt_map(o: _Obj, key: str) -> Mapping[str, Any] | None:
    v = o.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise o._bad(key, v, "mount." + key)
    return v


def _pids_limit(limit: int | None) -> int | None:
    # The router: 0 and any negative value mean "unlimited", which is no limit at all.
    return None if limit is None or limit <= 0 else limit


# ---------------------------------------------------------------------------------------------------------------
# dockerd's checks, in its order


def _validate_config(c: ContainerConfig) -> None:
    if c.working_dir and not c.working_dir.startswith("/"):
        raise InvalidArgument(f"the working directory '{c.working_dir}' is invalid, it needs to be an absolute path")
    if c.stop_signal:
        parse_signal(c.stop_signal)
    for e in c.env:
        if e.split("=", 1)[0] == "":
            raise InvalidArgument("invalid environment variable: " + e)
    if c.healthcheck is not None:
        h = _Obj(c.healthcheck, "HealthConfig")
        for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
            value = h.num(key)
            if value != 0 and value < 1_000_000:
                raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
        if h.num("Retries", "int") < 0:
            raise InvalidArgument("Retries in Healthcheck cannot be negative")


def _is_container_mode(mode: str) -> bool:
    return mode.startswith("container:")


def _validate_create_request(c: ContainerConfig, h: HostConfig) -> None:
    # runconfig: network mode against the rest
    if h.network_mode == "container" or _is_container_mode(h.network_mode):
        if not h.network_mode.partition(":")[2]:
            raise InvalidArgument("invalid network mode: invalid container format container:<name|id>")
        if c.hostname:
            raise InvalidArgument("conflicting options: hostname and the network mode")
        if h.links:
            raise InvalidArgument("conflicting options: container type network can't be used with links. "
                                  "This would result in undefined behavior")
        if h.dns:
            raise InvalidArgument("conflicting options: dns and the network mode")
        if h.extra_hosts:
            raise InvalidArgument("conflicting options: custom host-to-IP mapping and the network mode")
        if h.port_bindings or h.publish_all_ports:
            raise InvalidArgument("conflicting options: port publishing and the container type network mode")
        if c.exposed_ports:
            raise InvalidArgument("conflicting options: port exposing and the container type network mode")
    if h.uts_mode == "host" and c.hostname:
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    if h.network_mode == "host" and h.links:
        raise InvalidArgument("conflicting options: host type networking can't be used with links. "
                              "This would result in undefined behavior")
    if h.isolation not in ("", "default"):
        raise InvalidArgument(f"invalid isolation ({h.isolation}): linux only supports 'default'")
    if h.io_maximum_bandwidth:
        raise InvalidArgument("invalid option: QoS maximum bandwidth configuration is not supported on linux")
    if h.io_maximum_iops:
        raise InvalidArgument("invalid option: QoS maximum IOPs configuration is not supported on linux")
    if h.cpu_realtime_period and h.cpu_realtime_runtime and h.cpu_realtime_runtime > h.cpu_realtime_period:
        raise InvalidArgument("cpu real-time runtime cannot be higher than cpu real-time period")
    if h.cpu_shares < 0:
        raise InvalidArgument(f"invalid CPU shares ({h.cpu_shares}): value must be a positive integer")


def _validate_host_config(h: HostConfig) -> None:
    if h.auto_remove and h.restart_policy not in ("", "no"):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    for m in h.mounts:
        _validate_mount(m)
    for extra in h.extra_hosts:
        host, sep, ip = extra.partition(":")
        if not sep or not host:
            raise InvalidArgument(f'bad format for add-host: "{extra}"')
        if ip != "host-gateway" and not _is_ip(ip):
            raise InvalidArgument(f'invalid IP address in add-host: "{ip}"')
    _validate_port_bindings(h.port_bindings)
    _validate_restart_policy(h.restart_policy, h.restart_max_retries)
    for what, values in (("CapAdd", h.cap_add), ("CapDrop", h.cap_drop)):
        try:
            normalize_capabilities(values)
        except InvalidArgument as e:
            raise InvalidArgument(f"invalid {what}: {e}") from None
    for key in h.annotations:
        if key == "":
            raise InvalidArgument("invalid Annotations: the empty string is not permitted as an annotation key")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


_PORT = re.compile(r"([0-9]+)(?:-([0-9]+))?(?:/([a-z]+))?")


def _validate_port_bindings(bindings: Mapping[str, Any]) -> None:
    for port, host_bindings in bindings.items():
        m = _PORT.fullmatch(port)
        if not m or m.group(2) or not 0 < int(m.group(1)) <= 65535 or m.group(3) not in (None, "tcp", "udp", "sctp"):
            raise InvalidArgument(f'invalid port specification: "{port}"')
        if host_bindings is None:
            continue
        if not isinstance(host_bindings, list):
            raise InvalidArgument(f"invalid JSON: json: cannot unmarshal into Go value of type []network.PortBinding")
        for b in host_bindings:
            host_port = b.get("HostPort") if isinstance(b, dict) else None
            if not host_port:
                continue  # an ephemeral port
            hm = _PORT.fullmatch(str(host_port))
            if (not hm or hm.group(3) or int(hm.group(1)) > 65535
                    or (hm.group(2) and not int(hm.group(1)) <= int(hm.group(2)) <= 65535)):
                raise InvalidArgument(f'invalid port specification: "{host_port}"')


def _validate_restart_policy(name: str, retries: int) -> None:
    if name in ("always", "unless-stopped", "no"):
        if retries != 0:
            msg = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
            raise InvalidArgument(msg + (" and cannot be negative" if retries < 0 else ""))
    elif name == "on-failure":
        if retries < 0:
            raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    elif name != "":
        raise InvalidArgument(f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
                              "'on-failure', or 'unless-stopped'")


def _namespace_mode_valid(mode: str, extra: tuple[str, ...]) -> bool:
    if mode in ("", "host") + extra:
        return True
    return _is_container_mode(mode) and bool(mode.partition(":")[2])


def _validate_platform_settings(c: ContainerConfig, h: HostConfig) -> None:
    if len(c.hostname.encode()) > 64:
        raise InvalidArgument(f'hostname "{c.hostname}" is too long (maximum 64 bytes)')
    _validate_resources(h)
    if not _namespace_mode_valid(h.ipc_mode, ("private", "shareable", "none")):
        raise InvalidArgument(f"invalid IPC mode: {h.ipc_mode}")
    if not _namespace_mode_valid(h.pid_mode, ()):
        raise InvalidArgument(f"invalid PID mode: {h.pid_mode}")
    if h.shm_size < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    if h.uts_mode not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {h.uts_mode}")
    if not -1000 <= h.oom_score_adj <= 1000:
        raise InvalidArgument(f"Invalid value {h.oom_score_adj}, range for oom score adj is [-1000, 1000]")
    for dest in h.tmpfs:
        _validate_destination(dest)
    if h.cgroupns_mode not in ("", "private", "host"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {h.cgroupns_mode}")
    if h.userns_mode not in ("", "host"):
        raise InvalidArgument(f"invalid USER mode: {h.userns_mode}")


def _validate_resources(r: HostConfig) -> None:
    swappiness = None if r.memory_swappiness == -1 else r.memory_swappiness
    if r.memory != 0 and r.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if r.memory > 0 and r.memory_swap > 0 and r.memory_swap < r.memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if r.memory == 0 and r.memory_swap > 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise InvalidArgument(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    if r.memory_reservation > 0 and r.memory_reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if r.memory > 0 and r.memory_reservation > 0 and r.memory < r.memory_reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage")
    if r.nano_cpus > 0 and r.cpu_period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if r.nano_cpus > 0 and r.cpu_quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if r.cpu_period != 0 and not 1000 <= r.cpu_period <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < r.cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if r.blkio_weight > 0 and not 10 <= r.blkio_weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")


def _validate_destination(dest: str) -> None:
    if posixpath.normpath(dest.replace("\\", "/")) in ("/", "//"):
        raise InvalidArgument("invalid specification: destination can't be '/'")
    if not dest.replace("\\", "/").startswith("/"):
        raise InvalidArgument(f"invalid mount path: '{dest}' mount path must be absolute")



def parse_signal(text: str) -> int:
    """moby's signal.ParseSignal: a number, or a name with or without SIG."""
    if text.isdigit():
        n = int(text)
        if n == 0 or n > 64:
            raise InvalidArgument(f"Invalid signal: {text}")
        return n
    name = text.upper().removeprefix("SIG")
    try:
        return int(signal.Signals["SIG" + name])
    except KeyError:
        m = re.fullmatch(r"RTM(IN|AX)([+-][0-9]+)?", name)
        if m:
            return (signal.SIGRTMIN if m.group(1) == "IN" else signal.SIGRTMAX) + int(m.group(2) or 0)
        raise InvalidArgument(f"Invalid signal: {text}") from None


def normalize_capabilities(caps: tuple[str, ...]) -> tuple[str, ...]:
    """CapAdd/CapDrop entries: upper-cased, ``CAP_`` prefixed; "ALL" kept; unknown names refused."""
    out = []
    for c in caps:
        c = c.upper()
        if c != "ALL" and not c.startswith("CAP_"):
            c = "CAP_" + c
        if c != "ALL" and c not in ALL_CAPABILITIES:
            raise InvalidArgument(f'unknown capability: "{c}"')
        out.append(c)
    return tuple(out)


def parse_security_opt(opts: tuple[str, ...]) -> Security:
    """HostConfig.SecurityOpt as dockerd reads it; SELinux ``label`` options are accepted and have no effect."""
    sec = Security()
    for opt in opts:
        if opt == "no-new-privileges":
            sec = replace(sec, no_new_privileges=True)
            continue
        if opt == "writable-cgroups":
            sec = replace(sec, writable_cgroups=True)
            continue
        if opt == "disable":
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else ""
        if not sep:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        key, _, value = opt.partition(sep)
        if key == "label":
            continue
        if key == "apparmor":
            sec = replace(sec, apparmor_profile=value)
        elif key == "seccomp":
            sec = replace(sec, seccomp_profile=value)
        elif key in ("no-new-privileges", "writable-cgroups"):
            flag = _parse_go_bool(value)
            if flag is None:
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
            sec = (replace(sec, no_new_privileges=flag) if key == "no-new-privileges"
                   else replace(sec, writable_cgroups=flag))
        else:
            raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    return sec


def _parse_go_bool(text: str) -> bool | None:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


# ---------------------------------------------------------------------------------------------------------------
# Mounts: Binds, Mounts and Tmpfs (moby's volume/mounts linux parser and registerMountPoints)


def _mount_config_error(mount_type: str, message: str) -> InvalidArgument:
    return InvalidArgument(f'invalid mount config for type "{mount_type}": {message}')


def _validate_mount(m: MountRequest) -> None:
    for key, allowed in (("BindOptions", "bind"), ("VolumeOptions", "volume"), ("ImageOptions", "image"),
                         ("TmpfsOptions", "tmpfs")):
        present = {"BindOptions": m.bind_options, "VolumeOptions": m.volume_options,
                   "ImageOptions": m.image_options, "TmpfsOptions": m.tmpfs_options}[key]
        if present is not None and m.type != allowed:
            raise _mount_config_error(m.type, f"field {key} must not be specified")
    if not m.target:
        raise _mount_config_error(m.type, "field Target must not be empty")
    try:
        _validate_destination(m.target)
    except InvalidArgument as e:
        raise _mount_config_error(m.type, str(e)) from None
    if m.type == "bind":
        if not m.source:
            raise _mount_config_error(m.type, "field Source must not be empty")
        propagation = (m.bind_options or {}).get("Propagation") or ""
        if propagation and propagation not in _PROPAGATIONS:
            raise _mount_config_error(m.type, f"invalid propagation mode: {propagation}")
        if not m.source.replace("\\", "/").startswith("/"):
            raise _mount_config_error(m.type, f"invalid mount path: '{m.source}' mount path must be absolute")
    elif m.type == "volume":
        subpath = (m.volume_options or {}).get("Subpath") or ""
        if subpath:
            if not m.source:
                raise _mount_config_error(m.type, "must not set Subpath when using anonymous volumes")
            raise NotImplementedYet("VolumeOptions.Subpath is not supported by portside yet")
    elif m.type == "tmpfs":
        if m.source:
            raise _mount_config_error(m.type, "field Source must not be specified")
        tmpfs_data(m.tmpfs_options, m.read_only)
    elif m.type in ("image", "npipe", "cluster"):
        raise NotImplementedYet(f'mount type "{m.type}" is not supported by portside')
    else:
        raise _mount_config_error(m.type, "mount type unknown")


def tmpfs_data(options: Mapping[str, Any] | None, read_only: bool) -> str:
    """TmpfsOptions → the option string, as the linux parser's ConvertTmpfsOptions writes it."""
    raw = ["ro"] if read_only else []
    opts = _Obj(options or {}, "TmpfsOptions")
    mode = opts.num("Mode", "fs.FileMode")
    if mode:
        raw.append(f"mode={mode:o}")
    size = opts.num("SizeBytes")
    if size:
        for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % divisor == 0:
                raw.append(f"size={size // divisor}{suffix}")
                break
        else:
            raw.append(f"size={size}")
    extra = opts.get("Options") or []
    if not isinstance(extra, list):
        raise InvalidArgument('invalid mount config for type "tmpfs": invalid option array length')
    for opt in extra:
        if not isinstance(opt, list) or not 1 <= len(opt) <= 2:
            raise InvalidArgument('invalid mount config for type "tmpfs": invalid option array length')
        if opt[0] not in ("exec", "noexec"):
            raise InvalidArgument(f'invalid mount config for type "tmpfs": invalid option: {opt[0]}')
        raw.append(opt[0] if len(opt) == 1 else f"{opt[0]}={opt[1]}")
    return ",".join(raw)


def _valid_mount_mode(mode: str) -> bool:
    if mode == "":
        return True
    counts = {"rw": 0, "label": 0, "propagation": 0, "copy": 0, "consistency": 0}
    for o in mode.split(","):
        kind = ("rw" if o in ("rw", "ro") else "label" if o in ("z", "Z") else "propagation" if o in _PROPAGATIONS
                else "copy" if o == "nocopy" else "consistency" if o in ("consistent", "cached", "delegated")
                else "")
        if not kind:
            return False
        counts[kind] += 1
    return all(n <= 1 for n in counts.values())


def parse_bind(raw: str) -> MountPoint:
    """One Binds entry (``-v``): ``[source:]destination[:mode]``; an absolute source is a bind, else a volume name."""
    parts = raw.split(":", 3)
    if parts[0] == "":
        raise InvalidArgument(f"invalid volume specification: '{raw}'")
    mode = ""
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2:
        if _valid_mount_mode(parts[1]):  # /foo:rw: a mode, but a volume needs a destination
            raise InvalidArgument(f"invalid volume specification: '{raw}'")
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise InvalidArgument(f"invalid volume specification: '{raw}'")
    if not _valid_mount_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    kind = "bind" if source.startswith("/") else "volume"
    modes = mode.split(",")
    propagation = next((o for o in modes if o in _PROPAGATIONS), "")
    try:
        _validate_mount(MountRequest(type=kind, target=target, source=source))
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid volume specification: '{raw}': {e}") from None
    return MountPoint(destination=_clean(target), type=kind, source=_clean(source) if kind == "bind" else source,
                      rw="ro" not in modes,
                      propagation=(propagation or "rprivate") if kind == "bind" else "",
                      mode=mode or ("z" if kind == "volume" and source else ""))


def _mount_point(m: MountRequest) -> MountPoint:
    if m.type == "tmpfs":
        return MountPoint(_clean(m.target), "tmpfs", data=tmpfs_data(m.tmpfs_options, m.read_only))
    if m.type == "volume":
        return MountPoint(_clean(m.target), "volume", source=m.source, rw=not m.read_only, mode="z")
    bo = _Obj(m.bind_options or {}, "BindOptions")
    non_recursive_ro = bo.flag("ReadOnlyNonRecursive")
    force_recursive_ro = bo.flag("ReadOnlyForceRecursive")
    if not m.read_only and non_recursive_ro:
        raise InvalidArgument("mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive")
    if not m.read_only and force_recursive_ro:
        raise InvalidArgument("mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive")
    if non_recursive_ro and force_recursive_ro:
        raise InvalidArgument("mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive")
    return MountPoint(_clean(m.target), "bind", source=_clean(m.source), rw=not m.read_only,
                      propagation=bo.text("Propagation") or "rprivate", non_recursive=bo.flag("NonRecursive"),
                      readonly_non_recursive=non_recursive_ro, readonly_force_recursive=force_recursive_ro)


# a container reference → its mount points (the source of HostConfig.VolumesFrom)
VolumesFrom = Callable[[str], "tuple[MountPoint, ...]"]


def parse_volumes_from(spec: str) -> tuple[str, bool]:
    """``CONTAINER[:MODE]`` → (container, may it be read-write); moby's ParseVolumesFrom and ReadWrite."""
    if not spec:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    ref, _, mode = spec.partition(":")
    if not mode:
        return ref, True
    words = mode.split(",")
    # a volume keeps its source's propagation, and nothing is copied up into it here
    if (not _valid_mount_mode(mode) or any(w in _PROPAGATIONS for w in words) or "nocopy" in words):
        raise InvalidArgument(f"invalid mode: {mode}")
    return ref, "ro" not in words


def _register_mount_points(h: HostConfig, volumes_from: VolumesFrom | None = None) -> tuple[MountPoint, ...]:
    """moby's registerMountPoints: VolumesFrom, then Binds and Mounts over them, then Tmpfs over all."""
    points: dict[str, MountPoint] = {}
    for spec in h.volumes_from:
        ref, rw = parse_volumes_from(spec)
        if volumes_from is None:
            raise NotImplementedYet("VolumesFrom needs the daemon's containers")
        for p in volumes_from(ref):
            # the source's access, made read-only by :ro; the mode words are the source's own
            if p.type == "tmpfs" and p.rw and not rw:  # a tmpfs is a new one: read-only through its options
                p = replace(p, data=",".join(["ro", *([p.data] if p.data else [])]))
            points[p.destination] = replace(p, rw=p.rw and rw, mode="")
    binds: set[str] = set()
    tmpfs_destinations = {_clean(d) for d in h.tmpfs}
    for raw in h.binds:
        mp = parse_bind(raw)
        if mp.destination in binds or mp.destination in tmpfs_destinations:
            raise InvalidArgument("Duplicate mount point: " + mp.destination)
        binds.add(mp.destination)
        points[mp.destination] = mp
    for m in h.mounts:
        mp = _mount_point(m)
        if mp.destination in binds:
            raise InvalidArgument("Duplicate mount point: " + m.target)
        binds.add(mp.destination)
        points[mp.destination] = mp
    for dest, data in sorted(h.tmpfs.items()):  # a map in Go: no order to keep; sorted for a stable spec
        points.pop(_clean(dest), None)  # HostConfig.Tmpfs wins over a Mounts entry at the same place
        points[_clean(dest)] = MountPoint(_clean(dest), "tmpfs", data=data)
    return tuple(points.values())


def merge_tmpfs_options(options: list[str]) -> tuple[str, ...]:
    """moby/sys/mount MergeTmpfsOptions: the last of each flag (or data key) wins, in first-seen order."""
    seen_flags: set[str] = set()
    seen_data: set[str] = set()
    out: list[str] = []
    for option in reversed(options):
        if option == "defaults":
            continue
        flag = _TMPFS_FLAGS.get(option)
        if flag is not None:
            if flag not in seen_flags:
                out.insert(0, option)
                seen_flags.add(flag)
            continue
        key, sep, _ = option.partition("=")
        if not sep or key not in _TMPFS_DATA:
            raise InvalidArgument(f'invalid tmpfs option "{key}"')
        if key not in seen_data:
            out.insert(0, option)
            seen_data.add(key)
    return tuple(out)


# ---------------------------------------------------------------------------------------------------------------
# The image's config merged in (daemon/commit.go merge, mergeAndVerifyConfig)


def merge_image_config(c: ContainerConfig, image_config: Mapping[str, Any]) -> ContainerConfig:
    """The request's Config completed from the image's, and checked to have a command."""
    img = _Obj(image_config or {}, "Config")
    user = c.user or img.text("User")
    env = c.env
    if not env:
        env = img.strs("Env") or ()
    else:
        keys = {e.split("=", 1)[0] for e in env}
        env = env + tuple(e for e in img.strs("Env") or () if e.split("=", 1)[0] not in keys)
    cmd, entrypoint = c.cmd, c.entrypoint
    if not entrypoint:
        if not cmd:
            cmd = img.strs("Cmd", strslice=True)
        if entrypoint is None:  # an explicit [] keeps the image's entrypoint away, a null does not
            entrypoint = img.strs("Entrypoint", strslice=True)
    if entrypoint is not None and len(entrypoint) == 1 and entrypoint[0] == "":  # --entrypoint ""
        entrypoint = None
    if not entrypoint and not cmd:
        raise InvalidArgument("no command specified")
    image_volumes = img.get("Volumes")
    volumes = c.volumes + tuple(v for v in (image_volumes if isinstance(image_volumes, dict) else {})
                                if v not in c.volumes)
    labels = {**img.str_map("Labels"), **c.labels}
    return replace(c, user=user, env=env, cmd=cmd, entrypoint=entrypoint,
                   working_dir=c.working_dir or img.text("WorkingDir"), volumes=volumes, labels=labels,
                   stop_signal=c.stop_signal or img.text("StopSignal"))


def merged_config(create: CreateRequest, image_config: Mapping[str, Any]) -> dict[str, Any]:
    """The container's Config as ``docker inspect`` shows it: the request's, completed from the image's."""
    m = merge_image_config(create.config, image_config)
    out = {k: v for k, v in create.body.items() if k not in ("HostConfig", "NetworkingConfig")}
    out.update(User=m.user, Env=list(m.env), Cmd=list(m.cmd) if m.cmd is not None else None,
               Entrypoint=list(m.entrypoint) if m.entrypoint is not None else None, WorkingDir=m.working_dir,
               Volumes={v: {} for v in m.volumes} or None, Labels=dict(m.labels), Image=create.image)
    if m.stop_signal:
        out["StopSignal"] = m.stop_signal
    return out


def replace_or_append_env(defaults: list[str], overrides: tuple[str, ...]) -> list[str]:
    """moby's ReplaceOrAppendEnvValues: KEY=value replaces or appends; a bare KEY removes."""
    env = list(defaults)
    index = {e.split("=", 1)[0]: i for i, e in enumerate(env)}
    for value in overrides:
        key, sep, _ = value.partition("=")
        if not sep:
            if value in index:
                env[index[value]] = ""
            continue
        if key in index:
            env[index[key]] = value
        else:
            index[key] = len(env)
            env.append(value)
    return [e for e in env if e != ""]


# ---------------------------------------------------------------------------------------------------------------
# The spec


VolumePath = Callable[[str], str]
# (container reference, namespace type: "net", "ipc", "pid", "user") -> "/proc/<pid>/ns/<type>" of a running peer
PeerNamespace = Callable[[str, str], str]


def anonymous_volume_name(container_id: str, destination: str) -> str:
    """The name of the anonymous volume at ``destination``: dockerd draws a random one, portside derives it."""
    return hashlib.sha256(f"{container_id}:{destination}".encode()).hexdigest()


def build_spec(create: CreateRequest, image_config: Mapping[str, Any], *, container_id: str, rootfs: str,
               hostname_default: str, etc_files: EtcFiles | None, volume_path: VolumePath,
               passwd: str | None = None, group: str | None = None, host: HostFacts = HostFacts(),
               peer_namespace: PeerNamespace | None = None, shm_path: str | None = None) -> rs.Spec:
    """The OCI runtime spec for a container, as dockerd's createSpec builds it.

    ``image_config`` is the image config's ``config`` object; ``passwd`` and
    ``group`` the text of the image's /etc files (None: absent);
    ``hostname_default`` the hostname when the request has none (dockerd: the
    first 12 characters of the ID, the host's name with --network host);
    ``volume_path`` maps a volume name to its host directory; ``shm_path`` is
    the host directory to bind as /dev/shm for ``--ipc host|shareable|container:``
    (None: a private tmpfs); ``peer_namespace`` finds another container's
    namespaces for the ``container:<name>`` modes.
    """
    c = merge_image_config(create.config, image_config)
    h = create.host_config
    sec = create.security
    _check_host_settings(h, host)

    hostname = c.hostname or hostname_default
    privileged = h.privileged
    ipc_mode = h.ipc_mode or host.ipc_mode
    cgroupns = h.cgroupns_mode or host.cgroupns_mode or ("private" if host.cgroup2 else "host")
    userns = bool(host.uid_mappings) and h.userns_mode != "host"
    net_private = h.network_mode != "host" and not _is_container_mode(h.network_mode)

    # process
    args = list(c.entrypoint or ()) + list(c.cmd or ())
    env = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"] + (["TERM=xterm"] if c.tty else [])
    env = replace_or_append_env(env, c.env)
    uid, gid, supplementary = resolve_user(c.user, passwd, group)
    extra_gids = additional_groups(h.group_add, group) if h.group_add else ()
    user = rs.User(uid, gid, additional_gids=(gid,) + supplementary + extra_gids)
    caps = _capabilities(h, host)
    no_new_privs = sec.no_new_privileges if sec.no_new_privileges is not None else host.no_new_privileges
    apparmor = ""
    if host.apparmor_profile:
        apparmor = sec.apparmor_profile or ("unconfined" if privileged else host.apparmor_profile)
    console = rs.Box(*h.console_size) if c.tty and (h.console_size[0] or h.console_size[1]) else None
    process = rs.Process(
        cwd=c.working_dir or "/", args=tuple(args), env=tuple(env), terminal=c.tty, console_size=console,
        user=user, capabilities=rs.Capabilities(bounding=caps, effective=caps, permitted=caps),
        rlimits=_rlimits(h.ulimits), no_new_privileges=no_new_privs, apparmor_profile=apparmor,
        oom_score_adj=h.oom_score_adj)

    # namespaces, in the order dockerd leaves them
    namespaces: list[rs.Namespace] = [rs.Namespace("mount")]
    if h.network_mode != "host":
        path = _peer(peer_namespace, h.network_mode, "net") if _is_container_mode(h.network_mode) else ""
        namespaces.append(rs.Namespace("network", path))
    if h.uts_mode != "host":
        namespaces.append(rs.Namespace("uts"))
    if h.pid_mode != "host":
        path = _peer(peer_namespace, h.pid_mode, "pid") if _is_container_mode(h.pid_mode) else ""
        namespaces.append(rs.Namespace("pid", path))
    if ipc_mode != "host":
        path = _peer(peer_namespace, ipc_mode, "ipc") if _is_container_mode(ipc_mode) else ""
        namespaces.append(rs.Namespace("ipc", path))
    if userns:
        peer = next((m for m in (h.network_mode, ipc_mode, h.pid_mode) if _is_container_mode(m)), "")
        namespaces.append(rs.Namespace("user", _peer(peer_namespace, peer, "user") if peer else ""))
    if cgroupns == "private":
        namespaces.append(rs.Namespace("cgroup"))

    # sysctls: Docker's two defaults for a private network namespace, the domain name, then the request's
    sysctl: dict[str, str] = {}
    if c.domainname:
        sysctl["kernel.domainname"] = c.domainname
    if net_private:
        if not userns:
            sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
        sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"
    sysctl.update(h.sysctls)

    devices, device_rules = _devices(h, host)
    mounts = _mounts(create, c, ipc_mode, container_id, etc_files, volume_path, shm_path, host, userns)
    if h.masked_paths is not None:
        masked = h.masked_paths
    else:
        masked = () if privileged else DEFAULT_MASKED_PATHS
    if h.readonly_paths is not None:
        readonly = h.readonly_paths
    else:
        readonly = () if privileged else DEFAULT_READONLY_PATHS

    annotations = dict(h.annotations)
    init = h.init if h.init is not None else host.init
    if init and h.pid_mode in ("", "private"):
        annotations[INIT_ANNOTATION] = "true"

    linux = rs.Linux(
        namespaces=tuple(namespaces),
        uid_mappings=host.uid_mappings if userns else (), gid_mappings=host.gid_mappings if userns else (),
        sysctl=sysctl or None,
        resources=_resources(h, host, device_rules),
        cgroups_path=_cgroups_path(h, host, container_id),
        devices=devices,
        seccomp=_seccomp(sec, privileged),
        rootfs_propagation=_rootfs_propagation(create.mount_points),
        masked_paths=masked, readonly_paths=readonly)
    return rs.Spec(process=process, root=rs.Root(rootfs, readonly=h.readonly_rootfs),
                   hostname="" if h.uts_mode == "host" else hostname, mounts=mounts, linux=linux,
                   annotations=annotations or None)


def _check_host_settings(h: HostConfig, host: HostFacts) -> None:
    """dockerd's checks that depend on the host."""
    if h.nano_cpus and host.cpus and not 0 < h.nano_cpus <= host.cpus * 10**9:
        raise InvalidArgument(f"range of CPUs is from 0.01 to {host.cpus}.00, as there are only {host.cpus} CPUs available")
    if h.nano_cpus < 0:
        raise InvalidArgument("range of CPUs is from 0.01 to the number of CPUs available")
    if (h.cpu_realtime_period or h.cpu_realtime_runtime) and host.cgroup2:
        raise InvalidArgument("kernel does not support CPU real-time scheduler")
    if host.uid_mappings and h.userns_mode != "host":
        if h.privileged:
            raise InvalidArgument("privileged mode is incompatible with user namespaces.  You must run the "
                                  "container in the host namespace when running privileged mode")
        if h.network_mode == "host":
            raise InvalidArgument("cannot share the host's network namespace when user namespaces are enabled")
        if h.pid_mode == "host":
            raise InvalidArgument("cannot share the host PID namespace when user namespaces are enabled")
    if h.cgroup_parent and host.cgroup_driver == "systemd":
        if len(h.cgroup_parent) <= 6 or not h.cgroup_parent.endswith(".slice"):
            raise InvalidArgument('cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"')


def _peer(peer_namespace: PeerNamespace | None, mode: str, ns: str) -> str:
    if peer_namespace is None:
        raise NotImplementedYet(f"joining another container's namespaces ({mode}) needs the container service")
    return peer_namespace(mode.partition(":")[2], ns)


def _capabilities(h: HostConfig, host: HostFacts) -> tuple[str, ...]:
    """moby's caps.TweakCapabilities, without repeats."""
    if h.privileged:
        return host.capabilities
    if not h.cap_add and not h.cap_drop:
        return DEFAULT_CAPABILITIES
    add, drop = normalize_capabilities(h.cap_add), normalize_capabilities(h.cap_drop)
    for c in add + drop:
        if c != "ALL" and c not in host.capabilities:
            raise InvalidArgument(f'capability not supported by your kernel or not available in the current '
                                  f'environment: "{c}"')
    if "ALL" in add:
        caps = [c for c in host.capabilities if c not in drop]
    elif "ALL" in drop:
        caps = list(add)
    else:
        caps = [c for c in DEFAULT_CAPABILITIES if c not in drop] + list(add)
    return tuple(dict.fromkeys(caps))


def _rlimits(ulimits: tuple[Ulimit, ...]) -> tuple[rs.Rlimit, ...]:
    out = []
    for u in ulimits:
        if u.name not in _RLIMITS:
            raise InvalidArgument(f"invalid ulimit type: {u.name}")
        if u.soft > u.hard and u.hard >= 0:
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {u.soft} > {u.hard}")
        # Go converts with uint64(): -1 (unlimited) becomes RLIM_INFINITY
        out.append(rs.Rlimit("RLIMIT_" + u.name.upper(), hard=u.hard % (1 << 64), soft=u.soft % (1 << 64)))
    return tuple(out)


def _devices(h: HostConfig, host: HostFacts) -> tuple[tuple[rs.Device, ...], tuple[rs.DeviceCgroup, ...]]:
    if h.privileged:
        devices = list(host.devices.values())
        for d in h.devices:
            if d.path_on_host != d.path_in_container:
                devices += [dev for dev, _ in _devices_from_path(d.path_on_host, d.path_in_container, "rwm", host)]
        return tuple(devices), (rs.DeviceCgroup(True, access="rwm"),)
    devices = []
    rules = list(DEFAULT_DEVICE_RULES)
    for d in h.devices:
        for dev, rule in _devices_from_path(d.path_on_host, d.path_in_container, d.cgroup_permissions, host):
            devices.append(dev)
            rules.append(rule)
    for text in h.device_cgroup_rules:
        m = re.fullmatch(r"([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})", text)
        if not m:
            raise InvalidArgument(f"invalid device cgroup rule format: '{text}'")
        rules.append(rs.DeviceCgroup(True, m.group(1), -1 if m.group(2) == "*" else int(m.group(2)),
                                     -1 if m.group(3) == "*" else int(m.group(3)), m.group(4)))
    if h.device_requests:
        raise NotImplementedYet("DeviceRequests (--gpus, CDI devices) are not supported by portside")
    return tuple(devices), tuple(rules)


def _devices_from_path(on_host: str, in_container: str, permissions: str,
                       host: HostFacts) -> list[tuple[rs.Device, rs.DeviceCgroup]]:
    """A --device: the node itself, or every node under a directory; looked up in the host's device table."""
    found = []
    exact = host.devices.get(on_host)
    candidates = [(on_host, exact)] if exact else sorted(
        (p, d) for p, d in host.devices.items() if p.startswith(on_host.rstrip("/") + "/"))
    for path, dev in candidates:
        dev = replace(dev, path=in_container + path[len(on_host):] if not exact else in_container)
        found.append((dev, rs.DeviceCgroup(True, dev.type, dev.major, dev.minor, permissions)))
    if not found:
        raise InvalidArgument(f'error gathering device information while adding custom device "{on_host}": '
                              "no such file or directory")
    return found


def _resources(h: HostConfig, host: HostFacts, device_rules: tuple[rs.DeviceCgroup, ...]) -> rs.Resources:
    swap = h.memory_swap if h.memory_swap or h.memory <= 0 else 2 * h.memory  # dockerd: twice the memory
    swappiness = None if h.memory_swappiness in (None, -1) else h.memory_swappiness
    memory = rs.Memory(limit=h.memory if h.memory > 0 else None,
                       reservation=h.memory_reservation if h.memory_reservation > 0 else None,
                       swap=swap if swap > 0 else None, swappiness=swappiness,
                       disable_oom_killer=h.oom_kill_disable if h.oom_kill_disable is not None else False)
    period: int | None = None
    quota: int | None = None
    if h.nano_cpus > 0:
        period = 100_000
        quota = h.nano_cpus * period // 10**9
    if h.cpu_period:
        period = h.cpu_period
    if h.cpu_quota:
        quota = h.cpu_quota
    cpu = rs.CPU(shares=h.cpu_shares or None, quota=quota, period=period,
                 realtime_runtime=h.cpu_realtime_runtime or None, realtime_period=h.cpu_realtime_period or None,
                 cpus=h.cpuset_cpus, mems=h.cpuset_mems)

    def numbers(path: str) -> tuple[int, int]:
        dev = host.devices.get(path)
        if dev is None:
            raise InvalidArgument(f"stat {path}: no such file or directory")
        return dev.major, dev.minor

    def throttles(entries: tuple[tuple[str, int], ...]) -> tuple[rs.ThrottleDevice, ...]:
        return tuple(rs.ThrottleDevice(*numbers(p), rate) for p, rate in entries)

    block_io = rs.BlockIO(
        weight=h.blkio_weight or None,
        weight_device=tuple(rs.WeightDevice(*numbers(p), weight) for p, weight in h.blkio_weight_device),
        throttle_read_bps_device=throttles(h.blkio_device_read_bps),
        throttle_write_bps_device=throttles(h.blkio_device_write_bps),
        throttle_read_iops_device=throttles(h.blkio_device_read_iops),
        throttle_write_iops_device=throttles(h.blkio_device_write_iops))
    return rs.Resources(devices=device_rules, memory=memory, cpu=cpu if cpu != rs.CPU() else None,
                        pids=rs.Pids(h.pids_limit) if h.pids_limit is not None else None, block_io=block_io)


def _cgroups_path(h: HostConfig, host: HostFacts, container_id: str) -> str:
    systemd = host.cgroup_driver == "systemd"
    parent = h.cgroup_parent or host.cgroup_parent or ("system.slice" if systemd else "/portside")
    if systemd:
        return f"{parent}:portside:{container_id}"
    return _clean(posixpath.join(parent, container_id))


def _seccomp(sec: Security, privileged: bool) -> Mapping[str, Any] | None:
    profile = sec.seccomp_profile
    if profile == "unconfined" or (privileged and profile == ""):
        return None
    if profile in ("", "builtin"):
        return rs.SECCOMP_DEFAULT
    try:  # the profile came as JSON text in the request: check it is a profile object, keep it whole
        doc = json.loads(profile)
    except ValueError as e:
        raise InvalidArgument(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("defaultAction", ""), str):
        raise InvalidArgument("Decoding seccomp profile failed: not a seccomp profile object")
    return doc


def _rootfs_propagation(points: tuple[MountPoint, ...]) -> str:
    """A shared bind needs a shared root, a slave bind a slave (or shared) one (dockerd's withMounts)."""
    props = {p.propagation for p in points if p.type == "bind"}
    if props & {"shared", "rshared"}:
        return "shared"
    if props & {"slave", "rslave"}:
        return "slave"  # dockerd writes "rslave", which the spec's schema does not allow; runtimes apply it recursively
    return ""


def _depth(destination: str) -> int:
    return _clean(destination).count("/")


def container_mount_points(create: CreateRequest, c: ContainerConfig, container_id: str) -> tuple[MountPoint, ...]:
    """What inspect lists as Mounts and --volumes-from copies: moby's container.MountPoints.

    The request's binds, volumes and ``--mount type=tmpfs`` (not HostConfig.Tmpfs),
    then a volume for each VOLUME of ``c`` (the merged config) nothing else
    mounts; every anonymous volume gets its name.
    """
    tmpfs = {_clean(d) for d in create.host_config.tmpfs}
    taken = {p.destination for p in create.mount_points}
    points = [p for p in create.mount_points if not (p.type == "tmpfs" and p.destination in tmpfs)]
    points += [MountPoint(d, "volume") for d in sorted({_clean(v) for v in c.volumes} - taken)]
    return tuple(replace(p, source=anonymous_volume_name(container_id, p.destination))
                 if p.type == "volume" and not p.source else p for p in points)


def _mounts(create: CreateRequest, c: ContainerConfig, ipc_mode: str, container_id: str,
            etc_files: EtcFiles | None, volume_path: VolumePath, shm_path: str | None, host: HostFacts,
            userns: bool) -> tuple[rs.Mount, ...]:
    h = create.host_config
    rro = "rro" if host.recursive_readonly else "ro"

    # The container's own mounts, as setupContainerDirs and setupMounts list them:
    # /dev/shm for a shared IPC, tmpfs mounts, then binds and volumes, then the etc files.
    user: list[rs.Mount] = []
    if ipc_mode not in ("private", "none") and shm_path and not any(p.destination == "/dev/shm"
                                                                     for p in create.mount_points):
        user.append(rs.Mount("/dev/shm", "bind", shm_path, ("rbind", "rprivate")))
    for p in create.mount_points:
        if p.type == "tmpfs":
            options = merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate"] + (p.data.split(",") if p.data else []))
            user.append(rs.Mount(p.destination, "tmpfs", "tmpfs", options))
    binds = [p for p in container_mount_points(create, c, container_id) if p.type != "tmpfs"]
    for p in sorted(binds, key=lambda p: (_depth(p.destination), p.destination)):
        if p.type == "volume":
            source = volume_path(p.source)
        else:
            source = p.source
        bind_options = ["bind" if p.non_recursive else "rbind"]
        if not p.rw:
            bind_options.append("ro" if p.readonly_non_recursive or not host.recursive_readonly else "rro")
        if p.propagation:
            bind_options.append(p.propagation)
        user.append(rs.Mount(p.destination, "bind", source, tuple(bind_options)))
    if etc_files is not None:
        taken = {p.destination for p in create.mount_points}
        for dest, path in (("/etc/resolv.conf", etc_files.resolv_conf), ("/etc/hostname", etc_files.hostname),
                           ("/etc/hosts", etc_files.hosts)):
            if path and dest not in taken:
                options = ("rbind",) + ((rro,) if h.readonly_rootfs else ()) + ("rprivate",)
                user.append(rs.Mount(dest, "bind", path, options))
    user_mounts = sorted(user, key=lambda m: _depth(m.destination))  # stable, like Go's insertion sort here
    taken_dest = {m.destination for m in user_mounts}

    # Docker's defaults, less what the container mounts itself
    defaults: list[rs.Mount] = []
    shm_size = h.shm_size or host.shm_size
    for m in _default_mounts():
        if m.destination in taken_dest:
            continue
        if "/dev" in taken_dest and m.destination.startswith("/dev/"):
            continue
        if m.destination == "/dev/shm":
            if ipc_mode == "none":
                continue
            m = replace(m, options=m.options + (f"size={shm_size}",))
        defaults.append(m)

    if h.readonly_rootfs:
        defaults = [m if m.destination in ("/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev") or "ro" in m.options
                    else replace(m, options=m.options + ("ro",)) for m in defaults]
    writable_cgroups = create.security.writable_cgroups
    if writable_cgroups is not None and userns:
        raise InvalidArgument("option WritableCgroups conflicts with user namespaces and rootless mode")
    if writable_cgroups is None:
        writable_cgroups = h.privileged
    out = []
    for m in defaults:
        if (h.privileged and m.destination == "/sys") or (m.type == "cgroup" and (writable_cgroups or userns)):
            m = replace(m, options=tuple(o for o in m.options if o != "ro"))
        out.append(m)
    return tuple(out + user_mounts)


def _default_mounts() -> tuple[rs.Mount, ...]:
    return (
        rs.Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
        rs.Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        rs.Mount("/dev/pts", "devpts", "devpts", ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
        rs.Mount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
        rs.Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("ro", "nosuid", "noexec", "nodev")),
        rs.Mount("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
        rs.Mount("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777")),
    )
