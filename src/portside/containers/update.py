"""``docker update``: a request's resource limits and restart policy merged into a container's HostConfig.

dockerd's order (moby daemon/update.go), which the service follows:

1. ``check``: the request on its own, with the limits dockerd checks at
   create (``verifyContainerSettings`` with update=true) and the restart
   policy's rules. A refusal is a plain 400 with dockerd's message.
2. ``merge``: every field the request sets (non-zero; ``PidsLimit`` when
   present; the restart policy when it names one) replaces the stored one
   (moby ``container.UpdateContainer``), refusing combinations with what is
   already set: ``Conflicting options: ...`` and the memory/swap rule.
3. The service stores the merged HostConfig, and for a running or paused
   container applies ``from_host_config(merged)`` to its cgroup; if the
   kernel refuses, the old HostConfig is put back.

Errors of steps 2 and 3 carry dockerd's ``Cannot update container <id>:`` prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portside.cgroups import HostLimits, Manager, from_host_config
from portside.containers.spec import _validate_restart_policy as validate_restart_policy
from portside.errors import Conflict, Internal, InvalidArgument, PortsideError, json_kind

log = logging.getLogger(__name__)

# The Resources fields dockerd's UpdateContainer copies when the request sets them (non-zero).
_INT_FIELDS = ("BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "Memory", "MemorySwap",
               "MemoryReservation", "KernelMemory", "CpuRealtimePeriod", "CpuRealtimeRuntime")
_STR_FIELDS = ("CpusetCpus", "CpusetMems")


@dataclass(frozen=True)
class UpdateRequest:
    """The part of an update request that changes anything."""

    resources: Mapping[str, Any]             # HostConfig field → new value, only the fields set
    restart_policy: Mapping[str, Any] | None  # {"Name", "MaximumRetryCount"}, None when not named


def cannot_update(container_id: str, message: str) -> str:
    return f"Cannot update container {container_id}: {message}"


def check(untrusted: Any, *, host: HostLimits | None = None) -> UpdateRequest:
    """Validate an update request body (Docker's UpdateConfig: Resources' fields and RestartPolicy)."""
    if untrusted is None:
        untrusted = {}
    if not isinstance(untrusted, dict):
        raise InvalidArgument("json: cannot unmarshal into Go value of type container.UpdateConfig")
    # The same limits as at create, read the same way (types, ranges, dockerd's messages).
    from_host_config(untrusted, host=host, update=True)
    resources: dict[str, Any] = {}
    for key in _INT_FIELDS:
        value = untrusted.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                                  f"UpdateConfig.{key} of type int64")
        if value:
            resources[key] = value
    for key in _STR_FIELDS:
        if untrusted.get(key):
            resources[key] = untrusted[key]
    if untrusted.get("PidsLimit") is not None:
        # dockerd stores "unlimited" (0 or any negative) as 0
        resources["PidsLimit"] = max(int(untrusted["PidsLimit"]), 0)
    return UpdateRequest(resources, _restart_policy(untrusted.get("RestartPolicy")))


def _restart_policy(untrusted: Any) -> dict[str, Any] | None:
    if untrusted is None:
        return None
    if not isinstance(untrusted, dict):
        raise InvalidArgument("json: cannot unmarshal into Go struct field UpdateConfig.RestartPolicy of type "
                              "container.RestartPolicy")
    name = untrusted.get("Name") or ""
    retries = untrusted.get("MaximumRetryCount") or 0
    if not isinstance(name, str) or isinstance(retries, bool) or not isinstance(retries, int):
        raise InvalidArgument("json: cannot unmarshal into Go struct field UpdateConfig.RestartPolicy of type "
                              "container.RestartPolicy")
    validate_restart_policy(name, retries)
    return {"Name": name, "MaximumRetryCount": retries} if name else None


def merge(host_config: Mapping[str, Any], request: UpdateRequest) -> dict[str, Any]:
    """The HostConfig after the update (a new dict); Conflict where dockerd's UpdateContainer refuses."""
    merged = dict(host_config)
    new = request.resources
    current = {key: int(host_config.get(key) or 0) for key in ("NanoCpus", "CpuPeriod", "CpuQuota", "Memory",
                                                                "MemorySwap")}
    # A memory limit without a swap limit got twice as much memory+swap at create (dockerd stores that
    # figure; the record keeps the request as sent, so it is worked out here).
    if current["MemorySwap"] == 0 and current["Memory"] > 0:
        current["MemorySwap"] = 2 * current["Memory"]

    # NanoCpus sets the period and quota itself: once one way is used, the other is refused.
    if new.get("NanoCpus", 0) > 0 and current["CpuPeriod"] > 0:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
    if new.get("NanoCpus", 0) > 0 and current["CpuQuota"] > 0:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
    if new.get("CpuPeriod", 0) > 0 and current["NanoCpus"] > 0:
        raise Conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
    if new.get("CpuQuota", 0) > 0 and current["NanoCpus"] > 0:
        raise Conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
    if "Memory" in new:
        if new["Memory"] > current["MemorySwap"] and "MemorySwap" not in new:
            raise Conflict("Memory limit should be smaller than already set memoryswap limit, "
                           "update the memoryswap at the same time")
        merged["MemorySwap"] = current["MemorySwap"]
    merged.update(new)

    if request.restart_policy is not None:
        if host_config.get("AutoRemove") and request.restart_policy["Name"] != "no":
            raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
        merged["RestartPolicy"] = dict(request.restart_policy)
    return merged


def merged(container_id: str, host_config: Mapping[str, Any], request: UpdateRequest) -> dict[str, Any]:
    """``merge``, its result checked as a whole as at create; refusals carry dockerd's prefix."""
    try:
        new = merge(host_config, request)
        from_host_config(new)
    except (Conflict, InvalidArgument) as e:
        raise type(e)(cannot_update(container_id, e.message)) from None
    return new


def apply(cgroups: Manager, container_id: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Put ``new``'s limits on a running container's cgroup; if the kernel refuses one, ``old``'s go back.

    The refusal is a 500, as dockerd reports runc's (a memory limit below
    what the container uses and cannot give back, cpu shares out of range).
    """
    path = f"portside/{container_id}"
    try:
        cgroups.update(path, from_host_config(new))
    except PortsideError as refused:
        try:
            cgroups.update(path, from_host_config(old))
        except PortsideError as e:   # the cgroup keeps what was written before the refusal
            log.warning("restoring the limits of %s after a refused update: %s", container_id[:12], e)
        raise Internal(cannot_update(container_id, refused.message)) from None
