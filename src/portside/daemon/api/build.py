"""POST /build (the classic builder's endpoint) and POST /build/prune.

The request's query is checked before the stream starts (a bad tag or JSON
is a 400); after that everything, errors included, is a line of Docker's
JSON stream: ``{"stream": ...}`` for the output, ``{"aux": {"ID": ...}}``
for the result, ``{"errorDetail": ..., "error": ...}`` for a failure.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

from portside.build.basepull import BasePuller
from portside.build.cache import BuildCache
from portside.build.context import extract
from portside.build.executor import BuildError, BuildOptions, Builder, check_tags
from portside.daemon.engine import Engine
from portside.daemon.http import Request, Response, StreamResponse
from portside.daemon.router import Router
from portside.distribution.auth import decode_registry_config
from portside.errors import InvalidArgument, PortsideError

log = logging.getLogger(__name__)


def register(router: Router, engine: Engine) -> None:
    router.add("POST", "/build", lambda req: build(engine, req))
    router.add("POST", "/build/prune", lambda req: prune(engine, req))


def _build_dir(engine: Engine) -> str:
    return os.path.join(engine.root, "build")


def _string_map(req: Request, name: str, *, nullable: bool) -> dict[str, Any]:
    value = req.json_arg(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(v, str) or (nullable and v is None) for v in value.values()):
        raise InvalidArgument(f"invalid {name}: a JSON object of strings is expected")
    return value


def _cache_from(req: Request) -> tuple[str, ...]:
    """``cachefrom``: a JSON array of image references (moby: a 400 when it is not one)."""
    value = req.json_arg("cachefrom")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument("invalid cachefrom: a JSON array of strings is expected")
    return tuple(value)


_LAST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


def _epoch(req: Request) -> int:
    """SOURCE_DATE_EPOCH as a build arg (BuildKit's spelling) or the daemon's environment; else 0."""
    raw = _string_map(req, "buildargs", nullable=True).get("SOURCE_DATE_EPOCH") or os.environ.get(
        "SOURCE_DATE_EPOCH") or "0"
    # RFC 3339 years end at 9999: a larger epoch could not be written as the images' creation time
    if not (raw.isascii() and raw.isdigit()) or int(raw) > _LAST_EPOCH:
        raise InvalidArgument(f"invalid SOURCE_DATE_EPOCH: {raw!r}")
    return int(raw)


def _run_host_config(req: Request) -> dict[str, Any]:
    """``networkmode``, ``extrahosts``, ``shmsize`` and the limits: the RUN containers' HostConfig, as dockerd's."""
    out: dict[str, Any] = {}
    mode = req.arg("networkmode") or "default"
    out["NetworkMode"] = "bridge" if mode == "default" else mode
    # docker's CLI joins --add-host values with commas; docker-py repeats the parameter
    hosts = [h for value in req.query.get("extrahosts", []) for h in value.split(",") if h]
    if hosts:
        out["ExtraHosts"] = hosts
    # resource limits (docker-py's container_limits, the CLI's --memory, --cpu-*): 0 or absent is no limit
    for param, key in (("shmsize", "ShmSize"), ("memory", "Memory"), ("memswap", "MemorySwap"),
                       ("cpushares", "CpuShares"), ("cpuperiod", "CpuPeriod"), ("cpuquota", "CpuQuota")):
        raw = req.arg(param)
        if raw:
            try:
                value = int(raw)
            except ValueError:
                raise InvalidArgument(f"invalid {param}: {raw!r}") from None
            if value:
                out[key] = value
    if req.arg("cpusetcpus"):
        out["CpusetCpus"] = req.arg("cpusetcpus")
    return out


def build(engine: Engine, req: Request) -> StreamResponse:
    tags = tuple(req.query.get("t", []))
    check_tags(tags)
    opts = BuildOptions(
        dockerfile=req.arg("dockerfile") or "Dockerfile", tags=tags,
        build_args=_string_map(req, "buildargs", nullable=True), labels=_string_map(req, "labels", nullable=False),
        target=req.arg("target") or "", no_cache=req.flag("nocache"), cache_from=_cache_from(req),
        remove=req.flag("rm", True), force_remove=req.flag("forcerm"), platform=req.arg("platform") or "",
        epoch=_epoch(req), pull=req.flag("pull"), run_host_config=_run_host_config(req))
    auths = decode_registry_config(req.headers.get("x-registry-config"))
    if req.arg("remote"):
        raise InvalidArgument("remote build contexts are not supported")
    quiet = req.flag("q")
    directory = _build_dir(engine)
    scratch = os.path.join(directory, "tmp")
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    context = extract(req.body, scratch)

    def write_body(write: Callable[[bytes], None]) -> None:
        def emit(obj: dict[str, Any]) -> None:
            write(json.dumps(obj).encode() + b"\r\n")

        def say(text: str) -> None:
            if not quiet:
                emit({"stream": text})

        try:
            def progress(msg: dict[str, Any]) -> None:  # a base image's pull, as POST /images/create shows it
                if not quiet:
                    emit(msg)

            puller = BasePuller(engine.images, engine.registry, auths, progress)
            builder = Builder(engine.containers(), engine.images, BuildCache(directory, engine.images), scratch,
                              pull=puller)
            image_id = builder.build(context, opts, say, aux=lambda a: emit({"aux": a}))
            if quiet:
                emit({"stream": image_id + "\n"})
        except PortsideError as e:
            detail: dict[str, Any] = {"message": e.message}
            if isinstance(e, BuildError) and e.code is not None:
                detail = {"code": e.code, **detail}
            emit({"errorDetail": detail, "error": e.message})
        except Exception as e:  # an OSError, or a bug: the client gets its text, not a cut stream
            log.exception("build failed")
            emit({"errorDetail": {"message": str(e)}, "error": str(e)})

    def cleanup() -> None:
        shutil.rmtree(context, ignore_errors=True)

    return StreamResponse(write_body, headers=[("Content-Type", "application/json")], on_close=cleanup)


def prune(engine: Engine, req: Request) -> Response:
    deleted = BuildCache(_build_dir(engine), engine.images).prune()
    return Response.json({"CachesDeleted": deleted, "SpaceReclaimed": 0})
