"""/networks: list, inspect, create, remove, connect, disconnect, prune, in moby's shapes and words."""

from __future__ import annotations

import re
import time
from typing import Any

from portside.daemon.engine import Engine
from portside.daemon.filters import Filters, bool_filter, parse_filters
from portside.daemon.http import Request, Response
from portside.daemon.router import Router
from portside.errors import InvalidArgument, NotFound, json_kind
from portside.network.records import NetworkRecord
from portside.network.service import CreateOptions
from portside.timefmt import parse_rfc3339, parse_timestamp


def register(router: Router, engine: Engine) -> None:
    api = _NetworksAPI(engine)
    router.add("GET", "/networks", api.list_networks)
    router.add("POST", "/networks/create", api.create)
    router.add("POST", "/networks/prune", api.prune)
    router.add("GET", "/networks/{id}", api.inspect)
    router.add("DELETE", "/networks/{id}", api.delete)
    router.add("POST", "/networks/{id}/connect", api.connect)
    router.add("POST", "/networks/{id}/disconnect", api.disconnect)


_DRIVER_NAMES = {"null": "null", "host": "host", "bridge": "bridge"}


def network_doc(r: NetworkRecord, *, containers: bool = True) -> dict[str, Any]:
    """moby's network.Inspect (NetworkResource)."""
    config: list[dict[str, Any]] = []
    if r.subnet:
        entry = {"Subnet": r.subnet, "Gateway": r.gateway}
        if r.ip_range:
            entry["IPRange"] = r.ip_range
        config.append(entry)
    members: dict[str, Any] = {}
    if containers:
        prefix = "/" + r.subnet.split("/")[1] if r.subnet else ""
        for cid, e in sorted(r.endpoints.items()):
            members[cid] = {"Name": e.name, "EndpointID": e.endpoint_id, "MacAddress": e.mac,
                            "IPv4Address": e.ip + prefix if e.ip else "", "IPv6Address": ""}
    return {
        "Name": r.name, "Id": r.id, "Created": r.created, "Scope": "local", "Driver": r.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None if r.builtin else dict(r.ipam_options), "Config": config},
        "Internal": r.internal, "Attachable": r.attachable, "Ingress": False, "ConfigFrom": {"Network": ""},
        "ConfigOnly": False, "Containers": members, "Options": dict(r.options), "Labels": dict(r.labels),
    }


def _matches(patterns: list[str], value: str) -> bool:
    """filters.Args.Match: equal, or a regular expression found in it."""
    for pattern in patterns:
        if pattern == value:
            return True
        try:
            if re.search(pattern, value):
                return True
        except re.error:
            continue
    return False


def _labels_match(wanted: list[str], labels: dict[str, str]) -> bool:
    for item in wanted:
        k, sep, value = item.partition("=")
        if k not in labels or (sep and labels[k] != value):
            return False
    return True


def _strings(body: dict[str, Any], key: str, struct: str) -> dict[str, str]:
    value = body.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"json: cannot unmarshal {json_kind(value)} into Go struct field {struct}.{key} of "
                              "type map[string]string")
    return dict(value)


class _NetworksAPI:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _filtered(self, filters: Filters) -> list[NetworkRecord]:
        out = []
        dangling = bool_filter(filters, "dangling")
        for kind in filters.get("type", []):
            if kind not in ("custom", "builtin"):
                raise InvalidArgument(f"invalid filter: 'type'='{kind}'")
        for r in self.engine.networks().all():
            if filters.get("driver") and r.driver not in filters["driver"]:
                continue
            if filters.get("name") and not _matches(filters["name"], r.name):
                continue
            if filters.get("id") and not _matches(filters["id"], r.id):
                continue
            if filters.get("scope") and "local" not in filters["scope"]:
                continue
            if filters.get("type") and ("builtin" if r.builtin else "custom") not in filters["type"]:
                continue
            if filters.get("label") and not _labels_match(filters["label"], r.labels):
                continue
            if dangling is not None and dangling != (not r.builtin and not self._in_use(r)):
                continue
            out.append(r)
        return out

    def _in_use(self, r: NetworkRecord) -> bool:
        """Endpoints now, or a container (any state) that asks for the network."""
        if r.endpoints:
            return True
        if not self.engine.has_containers():
            return False
        for c in self.engine.containers().store.all():
            mode = str(c.host_config.get("NetworkMode") or "")
            wanted = {mode, *((c.networking_config or {}).get("EndpointsConfig") or {})}
            if r.name in wanted or r.id in wanted:
                return True
        return False

    def list_networks(self, req: Request) -> Response:
        filters = parse_filters(req.json_arg("filters"),
                                {"driver", "id", "label", "name", "scope", "type", "dangling"})
        return Response.json([network_doc(r, containers=False) | {"Containers": {}} for r in self._filtered(filters)])

    def inspect(self, req: Request) -> Response:
        record = self.engine.networks().get(req.params["id"])
        return Response.json(network_doc(record))

    def create(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument(f"invalid JSON: json: cannot unmarshal {json_kind(body)} into Go value of type "
                                  "network.CreateRequest")
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument("network name is required" if not name else
                                  f"json: cannot unmarshal {json_kind(name)} into Go struct field "
                                  "CreateRequest.Name of type string")
        if body.get("EnableIPv6"):
            raise InvalidArgument("IPv6 networks are not supported by portside")
        ipam = body.get("IPAM") or {}
        if not isinstance(ipam, dict):
            raise InvalidArgument(f"json: cannot unmarshal {json_kind(ipam)} into Go struct field "
                                  "CreateRequest.IPAM of type network.IPAM")
        if (ipam.get("Driver") or "default") != "default":
            raise NotFound(f'plugin "{ipam["Driver"]}" not found')
        configs = ipam.get("Config") or []
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            raise InvalidArgument("json: cannot unmarshal into Go struct field IPAM.IPAM.Config of type "
                                  "[]network.IPAMConfig")
        if len(configs) > 1:
            raise InvalidArgument("portside networks take one IPv4 subnet")
        config = configs[0] if configs else {}
        opts = CreateOptions(
            name=name, driver=str(body.get("Driver") or "bridge"), subnet=str(config.get("Subnet") or ""),
            gateway=str(config.get("Gateway") or ""), ip_range=str(config.get("IPRange") or ""),
            internal=bool(body.get("Internal")), attachable=bool(body.get("Attachable")),
            labels=_strings(body, "Labels", "CreateRequest"), options=_strings(body, "Options", "CreateRequest"),
            ipam_options=_strings(ipam, "Options", "IPAM"))
        record = self.engine.networks().create(opts)
        return Response.json({"Id": record.id, "Warning": ""}, status=201)

    def delete(self, req: Request) -> Response:
        self.engine.networks().remove(req.params["id"])
        return Response(status=204)

    def prune(self, req: Request) -> Response:
        filters = parse_filters(req.json_arg("filters"), {"until", "label", "label!"})
        until = None
        if filters.get("until"):
            until = parse_timestamp(filters["until"][-1], time.time(), what="until")
        deleted = []
        for r in self.engine.networks().all():
            if r.builtin or self._in_use(r):
                continue
            if until is not None and parse_rfc3339(r.created) >= until:
                continue
            if filters.get("label") and not _labels_match(filters["label"], r.labels):
                continue
            if filters.get("label!") and any(_labels_match([w], r.labels) for w in filters["label!"]):
                continue
            try:
                self.engine.networks().remove(r.id)
            except NotFound:
                continue
            deleted.append(r.name)
        return Response.json({"NetworksDeleted": deleted})

    def connect(self, req: Request) -> Response:
        body = req.json() or {}
        if not isinstance(body, dict) or not isinstance(body.get("Container"), str):
            raise InvalidArgument("invalid JSON: a Container is required")
        settings = body.get("EndpointConfig") or {}
        if not isinstance(settings, dict):
            raise InvalidArgument(f"json: cannot unmarshal {json_kind(settings)} into Go struct field "
                                  "ConnectOptions.EndpointConfig of type network.EndpointSettings")
        network = self.engine.networks().get(req.params["id"])
        self.engine.containers().connect_network(body["Container"], network.id, settings)
        return Response(status=200)

    def disconnect(self, req: Request) -> Response:
        body = req.json() or {}
        if not isinstance(body, dict) or not isinstance(body.get("Container"), str):
            raise InvalidArgument("invalid JSON: a Container is required")
        self.engine.containers().disconnect_network(body["Container"], req.params["id"], bool(body.get("Force")))
        return Response(status=200)
