"""System commands: version, info, system df, and the type-guessing ``inspect``.


Layouts follow docker/cli ``cli/command/system`` (``version.go``, ``info.go``,
``df.go``, ``inspect.go``) and ``formatter/disk_usage.go``; the ``format_*``
functions are pure over the daemon's JSON.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence

import platform
import re
import sys

from portside import __version__
from portside import units
from portside.cli.commands.base import BOOL, STRING, Args, CLIError, Command, Context, Flag, Options, StatusError
from portside.cli.commands.formatting import (
    TABLE,
    Row,
    parse_go_time,
    render_default_table,
    render_rows,
    row_type,
    sorted_row,
    template_error,
    truncate_id,
)
from portside.cli.commands.images import FORMAT_HELP, INSPECT_FORMAT_HELP, image_row, is_dangling

API_VERSION = "1.45"
GIT_COMMIT = "unknown"
BUILD_TIME = "unknown"

_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def go_arch() -> str:
    m = platform.machine()
    return _GO_ARCH.get(m, m)


def go_os() -> str:
    return "linux" if sys.platform.startswith("linux") else sys.platform


def client_version() -> dict[str, Any]:
    """docker's clientVersion, keyed by its JSON names."""
    return {
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": GIT_COMMIT,
        "GoVersion": f"Python {platform.python_version()}",
        "Os": go_os(),
        "Arch": go_arch(),
        "BuildTime": BUILD_TIME,
        "Context": "default",
    }


def _template_value(data: Any) -> Any:
    """Give JSON objects the Go field names templates use (``APIVersion`` for ``ApiVersion``)."""
    from portside.cli.commands.inspect import GoStruct

    if isinstance(data, dict):
        aliases = {"APIVersion": "ApiVersion", "MinAPIVersion": "MinAPIVersion", "ID": "Id"}
        converted = {k: _template_value(v) for k, v in data.items()}
        return GoStruct(converted, {k: v for k, v in aliases.items() if v in converted and k not in converted})
    if isinstance(data, list):
        return [_template_value(v) for v in data]
    return data


def _render_template(fmt: str, data: Any) -> str:
    from portside.cli import gotemplate

    if fmt == "json":
        fmt = "{{json .}}"
    try:
        return gotemplate.render(fmt, _template_value(data))
    except gotemplate.TemplateError as e:
        raise StatusError(template_error(e), 64) from None


# ===========================================================================
# version


def _aligned(lines: list[tuple[str, str] | str]) -> str:
    """docker's version tabwriter (minwidth 20, padding 1): each run of label/value lines is a block."""
    from portside.cli.commands.formatting import grid

    out: list[str] = []
    block: list[tuple[str, str]] = []
    for line in [*lines, ""]:
        if isinstance(line, tuple):
            block.append(line)
            continue
        out.append(grid(block, minwidth=20, padding=1))
        block = []
        out.append(line + "\n")
    return "".join(out)[:-1]


def format_version(client: Mapping[str, Any], server: Mapping[str, Any] | None) -> str:
    """The default ``portside version`` layout (docker's defaultVersionTemplate)."""
    lines: list[tuple[str, str] | str] = ["Client:"]
    api = client["ApiVersion"]
    if client.get("DefaultAPIVersion") and api != client["DefaultAPIVersion"]:
        api += f" (downgraded from {client['DefaultAPIVersion']})"
    lines += [
        (" Version:", client["Version"]),
        (" API version:", api),
        (" Go version:", client["GoVersion"]),
        (" Git commit:", client["GitCommit"]),
        (" Built:", client["BuildTime"]),
        (" OS/Arch:", f"{client['Os']}/{client['Arch']}"),
        (" Context:", client["Context"]),
    ]
    if server is not None:
        name = ((server.get("Platform") or {}).get("Name")) or ""
        lines += ["", "Server:" + (f" {name}" if name else "")]
        for comp in server_components(server):
            lines.append(f" {comp.get('Name', '')}:")
            details = comp.get("Details") or {}
            if comp.get("Name") == "Engine":
                lines += [
                    ("  Version:", comp.get("Version", "")),
                    ("  API version:", f"{details.get('ApiVersion', '')} (minimum version {details.get('MinAPIVersion', '')})"),
                    ("  Go version:", details.get("GoVersion", "")),
                    ("  Git commit:", details.get("GitCommit", "")),
                    ("  Built:", details.get("BuildTime", "")),
                    ("  OS/Arch:", f"{details.get('Os', '')}/{details.get('Arch', '')}"),
                    ("  Experimental:", str(details.get("Experimental", ""))),
                ]
            else:
                lines.append(("  Version:", comp.get("Version", "")))
                lines += [(f"  {k}:", str(details[k])) for k in sorted(details)]
    return _aligned(lines)


def server_components(server: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The server's components, with an Engine entry made up from the top level if absent."""
    comps = list(server.get("Components") or [])
    if not any(c.get("Name") == "Engine" for c in comps):
        comps.append(
            {
                "Name": "Engine",
                "Version": server.get("Version", ""),
                "Details": {
                    "ApiVersion": server.get("ApiVersion", ""),
                    "MinAPIVersion": server.get("MinAPIVersion", ""),
                    "GitCommit": server.get("GitCommit", ""),
                    "GoVersion": server.get("GoVersion", ""),
                    "Os": server.get("Os", ""),
                    "Arch": server.get("Arch", ""),
                    "BuildTime": server.get("BuildTime", ""),
                    "Experimental": "true" if server.get("Experimental") else "false",
                },
            }
        )
    return comps


def run_version(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError, ConnectionFailed

    client = client_version()
    error: Exception | None = None
    server = None
    try:
        server = ctx.client.get_json("/version")
    except (APIError, ConnectionFailed) as e:
        error = e
    if opts.format:
        data = {"Client": client, "Server": None}
        if server is not None:
            data["Server"] = {**server, "Components": server_components(server)}
        ctx.out(_render_template(opts.format, data) + "\n")
    else:
        ctx.out(format_version(client, server))
    if error is not None:
        raise CLIError(str(error))
    return 0


VERSION = Command(
    use="version [OPTIONS]",
    short="Show the portside version information",
    run=run_version,
    flags=(Flag("format", "f", STRING, INSPECT_FORMAT_HELP),),
)


# ===========================================================================
# info


def _go(v: Any) -> str:
    """A value as Go's fmt.Println prints it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>"
    return str(v)


def decode_security_options(options: Sequence[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """system.DecodeSecurityOptions: ``name=seccomp,profile=default`` -> (seccomp, [(profile, default)])."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for opt in options:
        if "=" not in opt:
            out.append((opt, []))
            continue
        name = ""
        kvs: list[tuple[str, str]] = []
        for part in opt.split(","):
            k, sep, v = part.partition("=")
            if not sep:
                raise ValueError(f"invalid security option {opt!r}")
            if k == "name":
                name = v
            else:
                kvs.append((k, v))
        out.append((name, kvs))
    return out


def format_client_info(client: Mapping[str, Any], debug: bool) -> str:
    lines = []
    if client.get("Version"):
        lines.append(f" Version:    {client['Version']}")
    lines.append(f" Context:    {client.get('Context', 'default')}")
    lines.append(f" Debug Mode: {_go(debug)}")
    return "".join(line + "\n" for line in lines)


def format_server_info(info: Mapping[str, Any], *, debug: bool = False) -> tuple[str, list[str]]:
    """docker's prettyPrintServerInfo: (stdout text, warnings for stderr)."""
    out: list[str] = []

    def p(*parts: Any) -> None:
        out.append(" ".join(_go(x) for x in parts) + "\n")

    def nonempty(label: str, value: Any) -> None:
        if value:
            p(label, value)

    p(" Containers:", info.get("Containers", 0))
    p("  Running:", info.get("ContainersRunning", 0))
    p("  Paused:", info.get("ContainersPaused", 0))
    p("  Stopped:", info.get("ContainersStopped", 0))
    p(" Images:", info.get("Images", 0))
    nonempty(" Server Version:", info.get("ServerVersion"))
    nonempty(" Storage Driver:", info.get("Driver"))
    for pair in info.get("DriverStatus") or []:
        out.append(f"  {pair[0]}: {pair[1]}\n")
    for pair in info.get("SystemStatus") or []:
        out.append(f" {pair[0]}: {pair[1]}\n")
    nonempty(" Logging Driver:", info.get("LoggingDriver"))
    nonempty(" Cgroup Driver:", info.get("CgroupDriver"))
    nonempty(" Cgroup Version:", info.get("CgroupVersion"))
    plugins = info.get("Plugins") or {}
    p(" Plugins:")
    p("  Volume:", " ".join(plugins.get("Volume") or []))
    p("  Network:", " ".join(plugins.get("Network") or []))
    if plugins.get("Authorization"):
        p("  Authorization:", " ".join(plugins["Authorization"]))
    p("  Log:", " ".join(plugins.get("Log") or []))
    if info.get("CDISpecDirs"):
        p(" CDI spec directories:")
        for d in info["CDISpecDirs"]:
            out.append(f"  {d}\n")
    swarm = info.get("Swarm") or {}
    p(" Swarm:", swarm.get("LocalNodeState", "inactive"))
    if swarm.get("LocalNodeState", "inactive") not in ("inactive", "locked", ""):
        p("  NodeID:", swarm.get("NodeID", ""))
        if swarm.get("Error"):
            p("  Error:", swarm["Error"])
        p("  Is Manager:", bool(swarm.get("ControlAvailable")))
        p("  Node Address:", swarm.get("NodeAddr", ""))
    runtimes = info.get("Runtimes") or {}
    if runtimes:
        p(" Runtimes:", " ".join(sorted(runtimes)))  # docker sorts them
        p(" Default Runtime:", info.get("DefaultRuntime", ""))
    if info.get("OSType") == "linux":
        p(" Init Binary:", info.get("InitBinary", ""))
        for name, key in (("containerd", "ContainerdCommit"), ("runc", "RuncCommit"), ("init", "InitCommit")):
            commit = info.get(key) or {}
            line = f" {name} version: {commit.get('ID', '')}"
            if commit.get("ID", "") != commit.get("Expected", commit.get("ID", "")):
                line += f" (expected: {commit.get('Expected', '')})"
            out.append(line + "\n")
        if info.get("SecurityOptions"):
            try:
                decoded = decode_security_options(info["SecurityOptions"])
            except ValueError:
                decoded = []
            if decoded:
                p(" Security Options:")
                for name, kvs in decoded:
                    p("  " + name)
                    for k, v in kvs:
                        if k == "profile":
                            p("   Profile:", v)
    nonempty(" Kernel Version:", info.get("KernelVersion"))
    nonempty(" Operating System:", info.get("OperatingSystem"))
    nonempty(" OSType:", info.get("OSType"))
    nonempty(" Architecture:", info.get("Architecture"))
    p(" CPUs:", info.get("NCPU", 0))
    p(" Total Memory:", units.bytes_size(int(info.get("MemTotal") or 0)))
    nonempty(" Name:", info.get("Name"))
    nonempty(" ID:", info.get("ID"))
    p(" Docker Root Dir:", info.get("DockerRootDir", ""))
    p(" Debug Mode:", bool(info.get("Debug")))
    if info.get("Debug") or debug:
        p("  File Descriptors:", info.get("NFd", 0))
        p("  Goroutines:", info.get("NGoroutines", 0))
        p("  System Time:", info.get("SystemTime", ""))
        p("  EventsListeners:", info.get("NEventsListener", 0))
    nonempty(" HTTP Proxy:", info.get("HttpProxy"))
    nonempty(" HTTPS Proxy:", info.get("HttpsProxy"))
    nonempty(" No Proxy:", info.get("NoProxy"))
    if info.get("Labels"):
        p(" Labels:")
        for label in info["Labels"]:
            p("  " + label)
    p(" Experimental:", bool(info.get("ExperimentalBuild")))
    reg = info.get("RegistryConfig") or {}
    index_configs = reg.get("IndexConfigs") or {}
    cidrs = reg.get("InsecureRegistryCIDRs") or []
    if cidrs or index_configs:
        p(" Insecure Registries:")
        for cfg in index_configs.values():
            if not cfg.get("Secure", True):
                p("  " + cfg.get("Name", ""))
        for cidr in cidrs:
            out.append(f"  {cidr}\n")
    if reg.get("Mirrors"):
        p(" Registry Mirrors:")
        for mirror in reg["Mirrors"]:
            p("  " + mirror)
    p(" Live Restore Enabled:", bool(info.get("LiveRestoreEnabled")))
    if info.get("ProductLicense"):
        p(" Product License:", info["ProductLicense"])
    if info.get("DefaultAddressPools"):
        p(" Default Address Pools:")
        for pool in info["DefaultAddressPools"]:
            out.append(f"   Base: {pool.get('Base', '')}, Size: {pool.get('Size', 0)}\n")
    out.append("\n")
    return "".join(out), list(info.get("Warnings") or [])


_ROOT_FIELD = re.compile(r"(?:^|[\s({|,])\.([A-Za-z_]\w*)")


def needs_server_info(fmt: str) -> bool:
    """False when a ``--format`` template reads only client fields (no daemon round trip)."""
    if not fmt or fmt == "json" or not re.search(r"\.[a-zA-Z]", fmt):
        return True
    names = set(_ROOT_FIELD.findall(fmt))
    return not names or not names <= {"ClientInfo", "ClientErrors"}


def run_info(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError, ConnectionFailed

    client = {"Debug": ctx.debug, **client_version(), "Plugins": [], "Warnings": None}
    server: dict[str, Any] | None = None
    server_errors: list[str] = []
    if needs_server_info(opts.format):
        try:
            server = ctx.client.get_json("/info")
        except (APIError, ConnectionFailed) as e:
            server_errors.append(str(e))
            if opts.format:
                ctx.err(f"{e}\n")
    if opts.format:
        data: dict[str, Any] = dict(server or {})
        if server_errors:
            data["ServerErrors"] = server_errors
        data["ClientInfo"] = client
        ctx.out(_render_template(opts.format, data) + "\n")
        return 0
    ctx.out("Client:\n" + format_client_info(client, ctx.debug) + "\nServer:\n")
    if server is not None:
        text, warnings = format_server_info(server, debug=ctx.debug)
        ctx.out(text)
        ctx.stdout.flush()
        for w in warnings:
            ctx.err(w + "\n")
    if server_errors:
        ctx.stdout.flush()
        for message in server_errors:
            ctx.err(f"ERROR: {message}\n")
        raise CLIError("errors pretty printing info")
    return 0


INFO = Command(
    use="info [OPTIONS]",
    short="Display system-wide information",
    run=run_info,
    flags=(Flag("format", "f", STRING, INSPECT_FORMAT_HELP),),
    aliases="portside system info, portside info",
)
SYSTEM_INFO = INFO


# ===========================================================================
# system df

DiskUsageRow = row_type("*formatter.diskUsageContext")
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}


def _pct(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{units.human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return units.human_size(reclaimable)


def _container_active(c: Mapping[str, Any]) -> bool:
    state = c.get("State") or ""
    return any(s in state for s in ("running", "paused", "restarting"))


def df_summary_rows(du: Mapping[str, Any]) -> list[Row]:
    """The four rows of ``system df``: Images, Containers, Local Volumes, Build Cache."""
    images = du.get("Images") or []
    containers = du.get("Containers") or []
    volumes = du.get("Volumes") or []
    cache = du.get("BuildCache") or []
    layers = int(du.get("LayersSize") or 0)

    used = 0
    for i in images:
        if i.get("Containers", 0) not in (0, None):
            size, shared = int(i.get("Size", 0) or 0), int(i.get("SharedSize", 0) or 0)
            if size != -1 and shared != -1:
                used += size - shared
    img_row = {
        "Type": "Images",
        "TotalCount": str(len(images)),
        "Active": str(sum(1 for i in images if (i.get("Containers") or 0) > 0)),
        "Size": units.human_size(layers),
        "Reclaimable": _pct(layers - used, layers),
    }

    c_total = sum(int(c.get("SizeRw") or 0) for c in containers)
    c_recl = sum(int(c.get("SizeRw") or 0) for c in containers if not _container_active(c))
    c_row = {
        "Type": "Containers",
        "TotalCount": str(len(containers)),
        "Active": str(sum(1 for c in containers if _container_active(c))),
        "Size": units.human_size(c_total),
        "Reclaimable": _pct(c_recl, c_total),
    }

    v_total = v_recl = 0
    for v in volumes:
        usage = v.get("UsageData") or {}
        size = int(usage.get("Size", -1) if usage.get("Size") is not None else -1)
        if size != -1:
            v_total += size
            if int(usage.get("RefCount") or 0) == 0:
                v_recl += size
    v_row = {
        "Type": "Local Volumes",
        "TotalCount": str(len(volumes)),
        "Active": str(sum(1 for v in volumes if int((v.get("UsageData") or {}).get("RefCount") or 0) > 0)),
        "Size": units.human_size(v_total),
        "Reclaimable": _pct(v_recl, v_total),
    }

    b_size = sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared"))
    b_inuse = sum(int(b.get("Size") or 0) for b in cache if b.get("InUse") and not b.get("Shared"))
    b_row = {
        "Type": "Build Cache",
        "TotalCount": str(len(cache)),
        "Active": str(sum(1 for b in cache if b.get("InUse"))),
        "Size": units.human_size(b_size),
        "Reclaimable": units.human_size(b_size - b_inuse),
    }
    return [sorted_row(r, DiskUsageRow) for r in (img_row, c_row, v_row, b_row)]


def _df_verbose_table(du: Mapping[str, Any], now: float | None) -> str:
    from portside.cli.commands.containers import container_row

    out = ["Images space usage:\n\n"]
    img_rows = []
    for i in du.get("Images") or []:
        repo = tag = "<none>"
        tags = i.get("RepoTags") or []
        if tags and not is_dangling(i):
            from portside.cli.commands.reference import familiar_repo_tag

            parsed = familiar_repo_tag(tags[0])
            if parsed is None:
                continue
            repo, tag = parsed
        r = image_row(i, repo, tag, "", trunc=True, now=now)
        img_rows.append([r["Repository"], r["Tag"], r["ID"], r["CreatedSince"], r["Size"], r["SharedSize"], r["UniqueSize"], r["Containers"]])
    out.append(
        render_default_table(
            ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"], img_rows
        )
    )
    out.append("\nContainers space usage:\n\n")
    c_rows = []
    for c in du.get("Containers") or []:
        r = container_row({**c, "SizeRootFs": 0}, trunc=True, now=now)
        c_rows.append([r["ID"], r["Image"], r["Command"], r["LocalVolumes"], r["Size"], r["RunningFor"], r["Status"], r["Names"]])
    out.append(
        render_default_table(
            ["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"], c_rows
        )
    )
    out.append("\nLocal Volumes space usage:\n\n")
    v_rows = []
    for v in du.get("Volumes") or []:
        usage = v.get("UsageData")
        links = "N/A" if usage is None else str(usage.get("RefCount", 0))
        size = "N/A" if usage is None else units.human_size(int(usage.get("Size", 0)))
        v_rows.append([v.get("Name", ""), links, size])
    out.append(render_default_table(["VOLUME NAME", "LINKS", "SIZE"], v_rows))
    cache = du.get("BuildCache") or []
    b_size = sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared"))
    out.append(f"\nBuild cache usage: {units.human_size(b_size)}\n\n")
    b_rows = []
    for b in _sorted_cache(cache):
        id_ = truncate_id(b.get("ID", "")) + ("*" if b.get("InUse") else "")
        created = parse_go_time(b.get("CreatedAt") or "")
        last = parse_go_time(b.get("LastUsedAt") or "")
        b_rows.append(
            [
                id_,
                b.get("Type", ""),
                units.human_size_precision(int(b.get("Size") or 0), 3),
                units.time_ago(created, now) if created is not None else "",
                units.time_ago(last, now) if last is not None else "",
                str(b.get("UsageCount", 0)),
                _go(bool(b.get("Shared"))),
            ]
        )
    out.append(
        render_default_table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"], b_rows)
    )
    return "".join(out)


def _sorted_cache(cache: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    def key(b: Mapping[str, Any]) -> tuple[int, float, str]:
        last = parse_go_time(b.get("LastUsedAt") or "")
        return (0, 0.0, b.get("ID", "")) if last is None else (1, last, b.get("ID", ""))

    return sorted(cache, key=key)


def format_df(du: Mapping[str, Any], *, fmt: str = "", verbose: bool = False, now: float | None = None) -> str:
    fmt = fmt or TABLE
    if verbose:
        if fmt == TABLE:
            return _df_verbose_table(du, now)
        from portside.cli.commands.containers import container_row

        data = {
            "Images": [image_row(i, "<none>", "<none>", "", trunc=False, now=now) for i in du.get("Images") or []],
            "Containers": [container_row(c, trunc=False, now=now) for c in du.get("Containers") or []],
            "Volumes": du.get("Volumes") or [],
            "BuildCache": du.get("BuildCache") or [],
        }
        return _render_template(fmt, data)
    rows = df_summary_rows(du)
    if fmt == TABLE:
        keys = ["Type", "TotalCount", "Active", "Size", "Reclaimable"]
        return render_default_table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], [[r[k] for k in keys] for r in rows])
    if fmt == "raw":
        fmt = "type: {{.Type}}\ntotal: {{.TotalCount}}\nactive: {{.Active}}\nsize: {{.Size}}\nreclaimable: {{.Reclaimable}}\n"
    return render_rows(fmt, rows, DF_HEADERS)


def run_df(ctx: Context, opts: Options, args: list[str]) -> int:
    du = ctx.client.get_json("/system/df")
    ctx.out(format_df(du or {}, fmt=opts.format, verbose=opts.verbose))
    return 0


SYSTEM_DF = Command(
    use="df [OPTIONS]",
    short="Show portside disk usage",
    run=run_df,
    flags=(
        Flag("format", None, STRING, FORMAT_HELP),
        Flag("verbose", "v", BOOL, "Show detailed information on space usage"),
    ),
)


# ===========================================================================
# inspect (any type)

INSPECT_TYPES = {
    "container": "/containers/{}/json",
    "image": "/images/{}/json",
    "network": "/networks/{}",
    "volume": "/volumes/{}",
}
_DOCKER_ONLY_TYPES = ("node", "service", "task", "plugin", "secret")


def run_inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError
    from portside.cli.commands.inspect import inspect_refs

    kind = opts.type
    if kind and kind not in INSPECT_TYPES and kind not in _DOCKER_ONLY_TYPES:
        raise CLIError(f'"{kind}" is not a valid value for --type')

    def get(ref: str) -> str:
        for name, path in INSPECT_TYPES.items():
            if kind and name != kind:
                continue
            query = [("size", "1")] if name == "container" and opts.size else None
            try:
                raw: str = ctx.client.request("GET", path.format(ref), query).read().decode("utf-8")
            except APIError as e:
                skippable = e.not_found or "not supported" in e.message or "invalid reference format" in e.message
                if not kind and skippable:
                    continue
                raise
            if opts.size and name != "container":
                ctx.err(f"WARNING: --size ignored for {name}\n")
            return raw
        raise CLIError(f"Error: No such object: {ref}")

    return inspect_refs(ctx, args, opts.format, get)


INSPECT = Command(
    use="inspect [OPTIONS] NAME|ID [NAME|ID...]",
    short="Return low-level information on Docker objects",
    run=run_inspect,
    args=Args(1),
    flags=(
        Flag("format", "f", STRING, INSPECT_FORMAT_HELP),
        Flag("size", "s", BOOL, "Display total file sizes if the type is container"),
        Flag("type", None, STRING, "Return JSON for specified type"),
    ),
)
