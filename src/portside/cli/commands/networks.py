"""Network commands: network create, ls, inspect, rm, prune, connect, disconnect.

``run_*`` talk to the daemon and ``format_*`` are pure; they follow
docker/cli's ``cli/command/network`` and ``cli/command/formatter/network.go`` (v28).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Sequence

from portside.cli.commands.base import (
    BOOL,
    FILTER,
    LIST,
    NO_ARGS,
    STRING,
    Args,
    Cancelled,
    CLIError,
    Command,
    Context,
    Flag,
    Options,
    StatusError,
)
from portside.cli.commands.formatting import (
    TABLE,
    Row,
    go_time_string,
    parse_go_time,
    render_default_table,
    render_rows,
    truncate_id,
)
from portside.cli.commands.images import FORMAT_HELP, INSPECT_FORMAT_HELP, confirm, filters_json
from portside.cli.commands.volumes import natural_key, parse_driver_opts, parse_labels

# ===========================================================================
# network create


def create_body(name: str, opts: Options) -> dict[str, Any]:
    """docker's network create request (cli/command/network/create.go)."""
    if len(opts.subnet) > 1 or len(opts.gateway) > 1 or len(opts.ip_range) > 1:
        raise CLIError("portside networks take one IPv4 subnet (one --subnet, --gateway, --ip-range)")
    if (opts.gateway or opts.ip_range) and not opts.subnet:
        raise CLIError("every ip-range or gateway must have a corresponding subnet")
    config: list[dict[str, Any]] = []
    if opts.subnet:
        entry: dict[str, Any] = {"Subnet": opts.subnet[0]}
        if opts.ip_range:
            entry["IPRange"] = opts.ip_range[0]
        if opts.gateway:
            entry["Gateway"] = opts.gateway[0]
        config.append(entry)
    return {
        "Name": name, "Driver": opts.driver, "Scope": opts.scope, "EnableIPv6": bool(opts.ipv6),
        "IPAM": {"Driver": opts.ipam_driver, "Config": config, "Options": parse_driver_opts(opts.ipam_opt)},
        "Internal": bool(opts.internal), "Attachable": bool(opts.attachable), "Ingress": False,
        "ConfigOnly": False, "Options": parse_driver_opts(opts.opt),
        "Labels": parse_labels(opts.label),
    }


def run_create(ctx: Context, opts: Options, args: list[str]) -> int:
    answer = ctx.client.post_json("/networks/create", payload=create_body(args[0], opts))
    ctx.out(answer["Id"] + "\n")
    return 0


NETWORK_CREATE = Command(
    use="create [OPTIONS] NETWORK",
    short="Create a network",
    run=run_create,
    args=Args(1, 1),
    flags=(
        Flag("attachable", None, BOOL, "Enable manual container attachment"),
        Flag("driver", "d", STRING, "Driver to manage the Network", default="bridge"),
        Flag("gateway", None, LIST, "IPv4 or IPv6 Gateway for the master subnet", varname="strings"),
        Flag("internal", None, BOOL, "Restrict external access to the network"),
        Flag("ip-range", None, LIST, "Allocate container ip from a sub-range", varname="strings"),
        Flag("ipam-driver", None, STRING, "IP Address Management Driver", default="default"),
        Flag("ipam-opt", None, LIST, "Set IPAM driver specific options", varname="map"),
        Flag("ipv6", None, BOOL, "Enable or disable IPv6 networking"),
        Flag("label", None, LIST, "Set metadata on a network"),
        Flag("opt", "o", LIST, "Set driver specific options", varname="map"),
        Flag("scope", None, STRING, "Control the network's scope"),
        Flag("subnet", None, LIST, "Subnet in CIDR format that represents a network segment", varname="strings"),
    ),
)


# ===========================================================================
# network ls

NETWORK_HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


class NetworkRow(Row):
    """formatter.networkContext; ``Label`` is a method, so ``{{json .}}`` leaves it out as docker does."""

    _labels: Mapping[str, str]

    def Label(self, name: str) -> str:  # noqa: N802 (the template's method name)
        return self._labels.get(name, "")


NetworkRow.__name__ = NetworkRow.__qualname__ = "*formatter.networkContext"


def network_row(n: Mapping[str, Any], *, trunc: bool = True) -> NetworkRow:
    labels = n.get("Labels") or {}
    created = parse_go_time(n.get("Created") or "")
    row = NetworkRow({
        "CreatedAt": go_time_string(created) if created is not None else "",
        "Driver": n.get("Driver") or "",
        "ID": truncate_id(n.get("Id") or "") if trunc else n.get("Id") or "",
        "IPv6": "true" if n.get("EnableIPv6") else "false",
        "Internal": "true" if n.get("Internal") else "false",
        "Labels": ",".join(sorted(f"{k}={v}" for k, v in labels.items())),
        "Name": n.get("Name") or "",
        "Scope": n.get("Scope") or "",
    })
    object.__setattr__(row, "_labels", dict(labels))
    return row


def format_networks(networks: Sequence[Mapping[str, Any]], *, fmt: str = "", quiet: bool = False,
                    trunc: bool = True) -> str:
    rows = [network_row(n, trunc=trunc) for n in sorted(networks, key=lambda n: natural_key(n.get("Name") or ""))]
    fmt = fmt or TABLE
    if fmt == TABLE:
        if quiet:
            return "".join(r["ID"] + "\n" for r in rows)
        return render_default_table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                                    [[r["ID"], r["Name"], r["Driver"], r["Scope"]] for r in rows])
    if fmt == "raw":
        fmt = "network_id: {{.ID}}" if quiet else \
            "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
    return render_rows(fmt, rows, NETWORK_HEADERS)


def run_ls(ctx: Context, opts: Options, args: list[str]) -> int:
    fj = filters_json(opts.filter)
    answer = ctx.client.get_json("/networks", [("filters", fj)] if fj else None) or []
    ctx.out(format_networks(answer, fmt=opts.format, quiet=opts.quiet, trunc=not opts.no_trunc))
    return 0


NETWORK_LS = Command(
    use="ls [OPTIONS]",
    short="List networks",
    run=run_ls,
    args=NO_ARGS,
    flags=(
        Flag("filter", "f", FILTER, 'Provide filter values (e.g. "driver=bridge")'),
        Flag("format", None, STRING, FORMAT_HELP),
        Flag("no-trunc", None, BOOL, "Do not truncate the output"),
        Flag("quiet", "q", BOOL, "Only display network IDs"),
    ),
    aliases="portside network ls, portside network list",
)


# ===========================================================================
# network inspect


def run_inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.commands.inspect import inspect_refs, raw_getter

    return inspect_refs(ctx, args, opts.format, raw_getter(ctx, "/networks/{}"))


NETWORK_INSPECT = Command(
    use="inspect [OPTIONS] NETWORK [NETWORK...]",
    short="Display detailed information on one or more networks",
    run=run_inspect,
    args=Args(1),
    flags=(
        Flag("format", "f", STRING, INSPECT_FORMAT_HELP),
        Flag("verbose", "v", BOOL, "Verbose output for diagnostics"),
    ),
)


# ===========================================================================
# network rm


def run_rm(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli.client import APIError

    failed = False
    for name in args:
        try:
            ctx.client.request("DELETE", f"/networks/{name}").read()
        except (APIError, CLIError) as e:
            if opts.force and "not found" in str(e):
                continue
            ctx.err(f"{e}\n")
            failed = True
            continue
        ctx.out(name + "\n")
    if failed:
        raise StatusError("", 1)  # docker printed each error as it went
    return 0


NETWORK_RM = Command(
    use="rm NETWORK [NETWORK...]",
    short="Remove one or more networks",
    run=run_rm,
    args=Args(1),
    flags=(Flag("force", "f", BOOL, "Do not error if the network does not exist"),),
    aliases="portside network rm, portside network remove",
)


# ===========================================================================
# network prune

_PRUNE_WARNING = """WARNING! This will remove all custom networks not used by at least one container.
Are you sure you want to continue?"""


def format_prune(report: Mapping[str, Any]) -> str:
    deleted = report.get("NetworksDeleted") or []
    if not deleted:
        return ""
    return "Deleted Networks:\n" + "".join(f"{name}\n" for name in deleted) + "\n"


def run_prune(ctx: Context, opts: Options, args: list[str]) -> int:
    if not opts.force and not confirm(ctx, _PRUNE_WARNING):
        raise Cancelled()
    fj = filters_json(opts.filter)
    report = ctx.client.request("POST", "/networks/prune", [("filters", fj)] if fj else None).json()
    ctx.out(format_prune(report or {}))
    return 0


NETWORK_PRUNE = Command(
    use="prune [OPTIONS]",
    short="Remove all unused networks",
    run=run_prune,
    args=NO_ARGS,
    flags=(
        Flag("filter", None, FILTER, 'Provide filter values (e.g. "until=<timestamp>")'),
        Flag("force", "f", BOOL, "Do not prompt for confirmation"),
    ),
)


# ===========================================================================
# network connect, disconnect


def connect_body(container: str, opts: Options) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if opts.ip or opts.ip6 or opts.link_local_ip:
        settings["IPAMConfig"] = {"IPv4Address": opts.ip, "IPv6Address": opts.ip6,
                                  "LinkLocalIPs": list(opts.link_local_ip)}
    if opts.alias:
        settings["Aliases"] = list(opts.alias)
    if opts.link:
        settings["Links"] = list(opts.link)
    if opts.driver_opt:
        settings["DriverOpts"] = parse_driver_opts(opts.driver_opt)
    return {"Container": container, "EndpointConfig": settings}


def _post(ctx: Context, path: str, payload: Any) -> None:
    import json

    ctx.client.request("POST", path, body=json.dumps(payload).encode(),
                       headers={"Content-Type": "application/json"}).read()


def run_connect(ctx: Context, opts: Options, args: list[str]) -> int:
    _post(ctx, f"/networks/{args[0]}/connect", connect_body(args[1], opts))
    return 0


NETWORK_CONNECT = Command(
    use="connect [OPTIONS] NETWORK CONTAINER",
    short="Connect a container to a network",
    run=run_connect,
    args=Args(2, 2),
    flags=(
        Flag("alias", None, LIST, "Add network-scoped alias for the container", varname="strings"),
        Flag("driver-opt", None, LIST, "driver options for the network", varname="strings"),
        Flag("ip", None, STRING, "IPv4 address (e.g., \"172.30.100.104\")"),
        Flag("ip6", None, STRING, "IPv6 address (e.g., \"2001:db8::33\")"),
        Flag("link", None, LIST, "Add link to another container"),
        Flag("link-local-ip", None, LIST, "Add a link-local address for the container", varname="strings"),
    ),
)


def run_disconnect(ctx: Context, opts: Options, args: list[str]) -> int:
    _post(ctx, f"/networks/{args[0]}/disconnect", {"Container": args[1], "Force": bool(opts.force)})
    return 0


NETWORK_DISCONNECT = Command(
    use="disconnect [OPTIONS] NETWORK CONTAINER",
    short="Disconnect a container from a network",
    run=run_disconnect,
    args=Args(2, 2),
    flags=(Flag("force", "f", BOOL, "Force the container to disconnect from a network"),),
)
