"""/_ping, /version, /info, /system/df."""

from __future__ import annotations

import os
import platform
import threading
import time
from typing import Any

import portside
from portside.containers import runtimes
from portside.containers.record import ContainerRecord, State
from portside.daemon.api import volumes
from portside.daemon.api.containers import sizes as container_sizes, summary as container_summary
from portside.daemon.api.images import summary
from portside.daemon.engine import Engine
from portside.daemon.http import Request, Response
from portside.daemon.router import API_VERSION, MIN_API_VERSION, Router
from portside.distribution.hosts import registry_config
from portside.images.load import host_architecture
from portside.timefmt import format_rfc3339


def register(router: Router, engine: Engine) -> None:
    router.add("GET", "/_ping", ping)
    router.add("GET", "/version", lambda req: Response.json(version_document(engine)))
    router.add("GET", "/info", lambda req: Response.json(info_document(engine)))
    router.add("GET", "/system/df", lambda req: Response.json(df_document(engine, req.api_version)))


def ping(req: Request) -> Response:
    return Response(200, b"OK", headers=[
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
        ("Builder-Version", "1"),
        ("Swarm", "inactive"),
    ])


def version_document(engine: Engine) -> dict[str, Any]:
    python = f"python{platform.python_version()}"
    details = {
        "ApiVersion": API_VERSION, "Arch": host_architecture(), "BuildTime": "", "Experimental": "false",
        "GitCommit": "", "GoVersion": python, "KernelVersion": platform.release(),
        "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
    }
    return {
        "Platform": {"Name": "portside"},
        "Components": [{"Name": "Engine", "Version": portside.__version__, "Details": details}],
        "Version": portside.__version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": python,
        "Os": "linux",
        "Arch": host_architecture(),
        "KernelVersion": platform.release(),
        "BuildTime": "",
    }


def _os_release() -> tuple[str, str]:
    fields: dict[str, str] = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                fields[key] = value.strip('"')
    except OSError:
        pass
    return fields.get("PRETTY_NAME", "Linux"), fields.get("VERSION_ID", "")


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def _mem_total() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _containers(engine: Engine) -> list[ContainerRecord]:
    """Every container; a daemon that never had one does not start its monitor to say so."""
    return engine.containers().all() if engine.has_containers() else []


def _container_counts(engine: Engine) -> dict[str, int]:
    """dockerd's split: paused, else running (restarting counts as running), else stopped."""
    records = _containers(engine)
    paused = sum(r.state is State.PAUSED for r in records)
    running = sum(r.state in (State.RUNNING, State.RESTARTING) for r in records)
    return {"Containers": len(records), "ContainersRunning": running, "ContainersPaused": paused,
            "ContainersStopped": len(records) - running - paused}


def info_document(engine: Engine) -> dict[str, Any]:
    images = engine.images.db.image_ids()
    pretty, version_id = _os_release()
    return {
        "ID": engine.id,
        **_container_counts(engine),
        "Images": len(images),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Using metacopy", "false"],
                         ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": None,
                    "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
        "CPUShares": True, "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": True,
        "BridgeNfIptables": False, "BridgeNfIp6tables": False, "Debug": engine.debug,
        "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": False,
        "NGoroutines": threading.active_count(),
        "SystemTime": format_rfc3339(time.time_ns()),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": _cgroup_version(),
        "NEventsListener": 0,
        "KernelVersion": platform.release(),
        "OperatingSystem": pretty,
        "OSVersion": version_id,
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry_config(engine.registry),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": _mem_total(),
        "GenericResources": None,
        "DockerRootDir": engine.root,
        "HttpProxy": os.environ.get("HTTP_PROXY", ""), "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""),
        "Name": engine.name,
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": portside.__version__,
        "Runtimes": runtimes.info(),
        "DefaultRuntime": runtimes.DEFAULT,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": False,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": _security_options(engine),
        "Warnings": None,
    }


def df_document(engine: Engine, api_version: str) -> dict[str, Any]:
    images = engine.images.images()
    layer_users: dict[str, int] = {}
    for image in images:
        for layer in image.row.layers:
            layer_users[layer.chain_id] = layer_users.get(layer.chain_id, 0) + 1
    entries = []
    for image in images:
        entry = summary(engine, image, api_version, count_containers=True)
        entry["SharedSize"] = sum(la.size for la in image.row.layers if layer_users[la.chain_id] > 1)
        entries.append(entry)
    now = time.time_ns()
    return {
        "LayersSize": engine.images.disk_usage(),
        "Images": entries,
        "Containers": [{**container_summary(engine.containers(), r, now), **container_sizes(engine, r)}
                       for r in _containers(engine)],
        "Volumes": volumes.disk_usage(engine),
        "BuildCache": [],
    }


def _security_options(engine: Engine) -> list[str]:
    """What dockerd lists: the default seccomp profile is always on; userns when remapping; a private
    cgroup namespace by default on cgroup v2."""
    options = ["name=seccomp,profile=builtin"]
    if engine.remap:
        options.append("name=userns")
    if _cgroup_version() == "2":
        options.append("name=cgroupns")
    return options
