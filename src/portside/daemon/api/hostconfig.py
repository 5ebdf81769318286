"""A container's ``HostConfig`` as ``GET /containers/{id}/json`` shows it: every field, as dockerd does.

dockerd serializes its whole HostConfig struct, so a client may read any
field of a container whatever the creator sent: docker-py's
``containers.run()`` reads ``HostConfig.LogConfig.Type`` to decide whether
to return the output, and a client that sent ``{}`` still finds
``RestartPolicy``, ``Binds``... The record keeps what was asked; the
defaults are laid under it here.
"""

from __future__ import annotations

import copy
from typing import Any

LOG_DRIVER = "json-file"  # the only one portside has; dockerd fills an empty LogConfig.Type with its default

# dockerd's zero values (API 1.45), in its field order.
DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": LOG_DRIVER, "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None,
    "CapDrop": None, "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
    "GroupAdd": None, "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
    "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "",
    "UsernsMode": "", "ShmSize": 0, "Runtime": "", "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
    "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
    "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0,
    "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None, "Ulimits": [], "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
}


def host_config_document(stored: dict[str, Any]) -> dict[str, Any]:
    """``stored`` (what the creator sent, as kept) over dockerd's defaults."""
    doc = {**copy.deepcopy(DEFAULTS), **stored}
    log_config = doc.get("LogConfig") or {}
    doc["LogConfig"] = {"Type": log_config.get("Type") or LOG_DRIVER, "Config": log_config.get("Config") or {}}
    return doc
