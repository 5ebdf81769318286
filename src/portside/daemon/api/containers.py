"""/containers/*: create, start, attach, wait, logs, stop, kill, restart, remove, list, inspect, resize."""

from __future__ import annotations

import json
import os
import signal as signals
import socket
import time
from typing import Any, Callable

from portside.containers import peers
from portside.containers.eventlog import container_event, emit_for
from portside.containers.record import ContainerRecord, State
from portside.containers.service import ContainerService, parse_signal
from portside.daemon.api.hostconfig import host_config_document
from portside.daemon.api.listing import ListCache, json_list
from portside.daemon.api.mounts import mounts_json
from portside.daemon.engine import Engine
from portside.daemon.filters import parse_filters
from portside.daemon.http import Hijack, Request, Response, StreamResponse
from portside.daemon.router import Router
from portside.errors import InvalidArgument, NotFound, NotModified, PortsideError
from portside.images.service import labels_match
from portside.network.portmap import api_port_list, with_exposed
from portside.streams.stdcopy import STDOUT, frame
from portside.streams import jsonlog
from portside.timefmt import format_rfc3339, parse_timestamp
from portside.units import human_duration


def register(router: Router, engine: Engine) -> None:
    api = _ContainersAPI(engine)
    router.add("POST", "/containers/create", api.create)
    router.add("GET", "/containers/json", api.list_containers)
    router.add("POST", "/containers/prune", api.prune)
    router.add("GET", "/containers/{id}/json", api.inspect)
    router.add("POST", "/containers/{id}/start", api.start)
    router.add("POST", "/containers/{id}/wait", api.wait)
    router.add("POST", "/containers/{id}/attach", api.attach)
    router.add("GET", "/containers/{id}/logs", api.logs)
    router.add("POST", "/containers/{id}/stop", api.stop)
    router.add("POST", "/containers/{id}/kill", api.kill)
    router.add("POST", "/containers/{id}/restart", api.restart)
    router.add("POST", "/containers/{id}/resize", api.resize)
    router.add("DELETE", "/containers/{id}", api.delete)
    router.add("POST", "/containers/{id}/pause", api.pause)
    router.add("POST", "/containers/{id}/unpause", api.unpause)
    router.add("POST", "/containers/{id}/rename", api.rename)
    router.add("GET", "/containers/{id}/top", api.top)
    router.add("GET", "/containers/{id}/changes", api.changes)
    router.add("POST", "/containers/{id}/exec", api.exec_create)
    router.add("POST", "/exec/{id}/start", api.exec_start)
    router.add("GET", "/exec/{id}/json", api.exec_inspect)
    router.add("POST", "/exec/{id}/resize", api.exec_resize)


def _status_text(r: ContainerRecord, now_ns: int) -> str:
    """`Up 2 minutes`, `Exited (0) 3 seconds ago`, `Created`: Docker's State.String()."""
    if r.state is State.RUNNING:
        return "Up " + human_duration((now_ns - r.started_ns) / 1e9)
    if r.state is State.PAUSED:
        return "Up " + human_duration((now_ns - r.started_ns) / 1e9) + " (Paused)"
    if r.state is State.EXITED:
        if not r.finished_ns:
            return f"Exited ({r.exit_code})"
        return f"Exited ({r.exit_code}) {human_duration((now_ns - r.finished_ns) / 1e9)} ago"
    if r.state is State.REMOVING:
        return "Removal In Progress"
    if r.state is State.DEAD:
        return "Dead"
    return "Created"


def summary(containers: ContainerService, r: ContainerRecord, now_ns: int) -> dict[str, Any]:
    """One container as ``GET /containers/json`` and ``/system/df`` list it."""
    networking = containers.networking
    running = r.state in (State.RUNNING, State.PAUSED)
    published = networking.published(r.id) if networking is not None and running else {}
    networks = (networking.summary(r.id, r.host_config, r.networking_config, running) if networking is not None
                else {"Networks": {}})
    return {
        "Id": r.id, "Names": [r.name], "Image": r.image, "ImageID": r.image_id,
        "Command": _command(r.config), "Created": r.created_ns // 1_000_000_000,
        # published bindings while it runs, and its other exposed ports
        "Ports": api_port_list(with_exposed(published, r.config.get("ExposedPorts") or {})),
        "Labels": r.config.get("Labels") or {}, "State": r.state.value, "Status": _status_text(r, now_ns),
        "HostConfig": {"NetworkMode": r.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": networks,
        "Mounts": mounts_json(r.mount_points, containers.volumes.mountpoint),
    }


def sizes(engine: Engine, r: ContainerRecord) -> dict[str, int]:
    """``SizeRw`` (what the container wrote) and ``SizeRootFs`` (that and its image), for ``ps -s`` and ``df``."""
    size_rw = engine.images.snapshots.upper_usage(r.id)
    try:
        image_size = engine.images.get(r.image_id).row.size
    except NotFound:
        image_size = 0
    return {"SizeRw": size_rw, "SizeRootFs": size_rw + image_size}


def _command(config: dict[str, Any]) -> str:
    """ps's COMMAND as dockerd builds it: the path, then the arguments, those with a space in single quotes."""
    words = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    if not words:
        return ""
    return " ".join([words[0], *(f"'{w}'" if " " in w else w for w in words[1:])])


def _time(ns: int) -> str:
    return format_rfc3339(ns) if ns else "0001-01-01T00:00:00Z"


class _ContainersAPI:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.listed = ListCache(self._summary)

    @property
    def containers(self) -> ContainerService:
        return self.engine.containers()

    # -- create / inspect / list -----------------------------------------------------------

    def create(self, req: Request) -> Response:
        record = self.containers.create(req.json(), req.arg("name") or None)
        return Response.json({"Id": record.id, "Warnings": []}, status=201)

    def inspect(self, req: Request) -> Response:
        r = self.containers.get(req.params["id"])
        doc = self._inspect_doc(r)
        return Response.json({**doc, **sizes(self.engine, r)} if req.flag("size") else doc)

    def _inspect_doc(self, r: ContainerRecord) -> dict[str, Any]:
        running = r.state in (State.RUNNING, State.PAUSED, State.RESTARTING)
        directory = self.containers.store.dir(r.id)
        peer = peers.network_peer(r.host_config)  # dockerd shows the peer's /etc files: they are the ones bound
        etc_dir = self.containers.store.dir(peer) if len(peer) == 64 else directory
        return {
            "Id": r.id,
            "Created": _time(r.created_ns),
            "Path": ([*(r.config.get("Entrypoint") or []), *(r.config.get("Cmd") or [])] or [""])[0],
            "Args": [*(r.config.get("Entrypoint") or []), *(r.config.get("Cmd") or [])][1:],
            "State": {
                "Status": r.state.value, "Running": running, "Paused": r.state is State.PAUSED,
                "Restarting": r.state is State.RESTARTING, "OOMKilled": r.oom_killed,
                "Dead": r.state is State.DEAD, "Pid": r.pid if running else 0, "ExitCode": r.exit_code,
                "Error": r.error, "StartedAt": _time(r.started_ns), "FinishedAt": _time(r.finished_ns),
            },
            "Image": r.image_id,
            "ResolvConfPath": os.path.join(etc_dir, "resolv.conf"),
            "HostnamePath": os.path.join(etc_dir, "hostname"),
            "HostsPath": os.path.join(etc_dir, "hosts"),
            "LogPath": self.containers.log_path(r.id),
            "Name": r.name,
            "RestartCount": r.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": None,
            "HostConfig": host_config_document(r.host_config),
            "GraphDriver": {"Name": "overlay2", "Data": {
                "UpperDir": self.engine.images.snapshots.upper_path(r.id),
                "MergedDir": os.path.join(directory, "rootfs")}},
            "Mounts": mounts_json(r.mount_points, self.containers.volumes.mountpoint),
            "Config": r.config,
            "NetworkSettings": self._network_settings(r, running),
        }

    def _network_settings(self, r: ContainerRecord, running: bool) -> dict[str, Any]:
        networking = self.containers.networking
        if networking is None:
            return {"Bridge": "", "SandboxID": "", "Ports": {}, "Networks": {}, "IPAddress": "", "Gateway": "",
                    "MacAddress": ""}
        return networking.settings(r.id, r.host_config, r.networking_config, running,
                                   r.config.get("ExposedPorts") or {})

    def list_containers(self, req: Request) -> Response:
        filters = parse_filters(req.json_arg("filters"),
                                {"id", "name", "status", "label", "ancestor", "exited", "before", "since",
                                 "network", "volume"})
        show_all = req.flag("all")
        limit = req.int_arg("limit") or 0
        with_size = req.flag("size")  # a walk of each container's layer: only when asked
        now = time.time_ns()
        out: list[str] = []
        for entry in self.listed.entries(self.containers.store.listing()):
            r = entry.record
            if not show_all and not filters.get("status") and r.state is not State.RUNNING and limit <= 0:
                continue
            if filters and not self._matches(r, filters):
                continue
            out.append(entry.render(_status_text(r, now), sizes(self.engine, r) if with_size else None))
            if limit > 0 and len(out) >= limit:
                break
        return json_list(out)

    def _summary(self, r: ContainerRecord) -> dict[str, Any]:
        """A container's list entry; its Status is filled in per request (listing.py)."""
        return summary(self.containers, r, 0)

    def _matches(self, r: ContainerRecord, filters: dict[str, list[str]]) -> bool:
        if filters.get("id") and not any(r.id.startswith(v) for v in filters["id"]):
            return False
        if filters.get("name") and not any(v.lstrip("/") in r.name.lstrip("/") for v in filters["name"]):
            return False
        if filters.get("status") and r.state.value not in filters["status"]:
            return False
        if filters.get("exited") and (r.state is not State.EXITED or str(r.exit_code) not in filters["exited"]):
            return False
        labels = r.config.get("Labels") or {}
        for label in filters.get("label", []):
            key, sep, value = label.partition("=")
            if key not in labels or (sep and labels[key] != value):
                return False
        if filters.get("ancestor"):
            wanted = set()
            for name in filters["ancestor"]:
                try:
                    wanted.add(self.engine.images.resolve(name))
                except NotFound:
                    pass
            if r.image_id not in wanted:
                return False
        if filters.get("network"):
            wanted_nets = set(filters["network"])
            networks = summary(self.containers, r, 0)["NetworkSettings"].get("Networks") or {}
            if not any(name in wanted_nets or (n.get("NetworkID") or "") in wanted_nets
                       for name, n in networks.items()):
                return False
        if filters.get("volume"):
            wanted_vols = set(filters["volume"])
            mounts = mounts_json(r.mount_points, self.containers.volumes.mountpoint)
            if not any(m.get("Name") in wanted_vols or m.get("Destination") in wanted_vols for m in mounts):
                return False
        return True

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, req: Request) -> Response:
        self.containers.start(req.params["id"])
        return Response(status=204)

    def stop(self, req: Request) -> Response:
        timeout = req.int_arg("t")
        sig = parse_signal(req.arg("signal"), 0) or None
        self.containers.stop(req.params["id"], None if timeout is None else float(timeout), sig)
        return Response(status=204)

    def kill(self, req: Request) -> Response:
        self.containers.kill(req.params["id"], parse_signal(req.arg("signal"), signals.SIGKILL))
        return Response(status=204)

    def restart(self, req: Request) -> Response:
        cid = self.containers.resolve(req.params["id"])
        timeout = req.int_arg("t")
        try:
            self.containers.stop(cid, None if timeout is None else float(timeout))
        except NotModified:  # not running: restart just starts it
            pass
        self.containers.start(cid)
        emit_for(self.containers, cid, "restart")
        return Response(status=204)

    def delete(self, req: Request) -> Response:
        self.containers.remove(req.params["id"], force=req.flag("force"), volumes=req.flag("v"))
        return Response(status=204)

    def prune(self, req: Request) -> Response:
        filters = parse_filters(req.json_arg("filters"), {"until", "label", "label!"})
        now = time.time()
        until = min((parse_timestamp(v, now, what="until") for v in filters.get("until", [])), default=None)
        labels = filters.get("label", []) + ["!" + f for f in filters.get("label!", [])]
        deleted, reclaimed = [], 0
        for r in self.containers.all():
            if r.state not in (State.EXITED, State.CREATED, State.DEAD):
                continue
            if (until is not None and r.created_ns / 1e9 > until) or not labels_match(r.config.get("Labels") or {},
                                                                                        labels):
                continue
            size = self.engine.images.snapshots.upper_usage(r.id)
            self.containers.remove(r.id)
            deleted.append(r.id)
            reclaimed += size
        return Response.json({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    def wait(self, req: Request) -> StreamResponse:
        cid = self.containers.resolve(req.params["id"])
        condition = req.arg("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")

        def write_body(write: Callable[[bytes], None]) -> None:
            code = self.containers.wait(cid, condition, gone=req.client_gone)
            write(json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n")

        # headers go out at once (docker run posts wait before start and reads them first)
        return StreamResponse(write_body, headers=[("Content-Type", "application/json")])

    def resize(self, req: Request) -> Response:
        r = self.containers.get(req.params["id"])
        h, w = req.int_arg("h") or 0, req.int_arg("w") or 0
        if r.state is State.RUNNING and r.config.get("Tty"):
            self.containers.monitor.request({"op": "resize", "id": r.id, "h": h, "w": w})
        container_event(self.containers.events, r, "resize", {"height": h, "width": w})
        return Response(status=200)

    def pause(self, req: Request) -> Response:
        self.containers.pause(req.params["id"])
        return Response(status=204)

    def unpause(self, req: Request) -> Response:
        self.containers.unpause(req.params["id"])
        return Response(status=204)

    def rename(self, req: Request) -> Response:
        name = req.arg("name") or ""
        if not name:
            raise InvalidArgument("Neither old nor new names may be empty")
        self.containers.rename(req.params["id"], name)
        return Response(status=204)

    def top(self, req: Request) -> Response:
        titles, rows = self.containers.top(req.params["id"], req.arg("ps_args") or "")
        return Response.json({"Titles": titles, "Processes": rows})

    def changes(self, req: Request) -> Response:
        return Response.json(self.containers.changes(req.params["id"]) or None)

    # -- exec -------------------------------------------------------------------------------

    def exec_create(self, req: Request) -> Response:
        ex = self.containers.exec_create(req.params["id"], req.json())
        return Response.json({"Id": ex.id}, status=201)

    def exec_start(self, req: Request) -> Response | Hijack:
        body = req.json() or {}
        ex = self.containers.exec_get(req.params["id"])
        if body.get("Detach"):
            self.containers.exec_start(ex.id, None)
            return Response(status=200)
        tty = bool(ex.config.get("Tty"))

        def run(sock: socket.socket, already: bytes) -> None:
            try:
                self.containers.exec_start(ex.id, sock, already)
            except PortsideError as e:  # the stream is already open: the error goes down it
                message = (e.message + "\r\n").encode()
                sock.sendall(message if tty else frame(STDOUT, message))

        content = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
        return Hijack(run, content_type=content)

    def exec_inspect(self, req: Request) -> Response:
        ex = self.containers.exec_get(req.params["id"])
        if ex.running:  # its stream may have ended a moment before its exit event arrived
            self.containers.exec_wait(ex.id, timeout=0.3)
        cfg = ex.config
        return Response.json({
            "ID": ex.id, "Running": ex.running, "ExitCode": ex.exit_code, "Pid": ex.pid,
            "ContainerID": ex.container_id, "OpenStdin": bool(cfg.get("AttachStdin")),
            "OpenStdout": bool(cfg.get("AttachStdout")), "OpenStderr": bool(cfg.get("AttachStderr")),
            "CanRemove": False, "DetachKeys": "",
            "ProcessConfig": {"tty": bool(cfg.get("Tty")), "entrypoint": cfg["Cmd"][0], "arguments": cfg["Cmd"][1:],
                              "privileged": bool(cfg.get("Privileged")), "user": cfg.get("User") or ""},
        })

    def exec_resize(self, req: Request) -> Response:
        ex = self.containers.exec_get(req.params["id"])
        if ex.config.get("Tty") and (ex.running or not ex.started):
            self.containers.exec_resize(ex, req.int_arg("h") or 0, req.int_arg("w") or 0)
        return Response(status=200)

    # -- streams ----------------------------------------------------------------------------

    def attach(self, req: Request) -> Hijack:
        r = self.containers.get(req.params["id"])
        opts = {"stdin": req.flag("stdin"), "stdout": req.flag("stdout"), "stderr": req.flag("stderr")}
        tty = bool(r.config.get("Tty"))
        content = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
        replay = self.containers.log_path(r.id) if req.flag("logs") else None

        def send_logs(sock: socket.socket) -> None:
            if replay is not None and os.path.exists(replay):
                for entry in jsonlog.read_logs(replay, stdout=opts["stdout"], stderr=opts["stderr"]):
                    sock.sendall(jsonlog.format_entry_for_api(entry, timestamps=False, tty=tty))

        if not req.flag("stream"):  # dockerd: the logs asked for, if any, and the stream ends
            return Hijack(lambda sock, already: send_logs(sock), content_type=content)
        slot = self.containers.reserve_attach(r.id, opts)
        container_event(self.containers.events, r, "attach")

        def run(sock: socket.socket, already: bytes) -> None:
            send_logs(sock)  # logs=1: what was written so far, then live
            self.containers.attach(r.id, slot, sock, already)

        return Hijack(run, content_type=content)

    def logs(self, req: Request) -> StreamResponse:
        r = self.containers.get(req.params["id"])
        stdout, stderr = req.flag("stdout"), req.flag("stderr")
        if not stdout and not stderr:
            raise InvalidArgument("You must choose at least one stream")
        now = time.time()
        since = parse_timestamp(req.arg("since") or "", now, what="since") if req.arg("since") else None
        until = parse_timestamp(req.arg("until") or "", now, what="until") if req.arg("until") else None
        tail_arg = req.arg("tail")
        # docker: a negative number or a non-integer means "all"
        tail = int(tail_arg) if tail_arg and tail_arg.isascii() and tail_arg.isdigit() else None
        follow = req.flag("follow")
        timestamps = req.flag("timestamps")
        tty = bool(r.config.get("Tty"))
        path = self.containers.log_path(r.id)
        cid = r.id

        def running() -> bool:
            try:
                return self.containers.store.load(cid).state in (State.RUNNING, State.PAUSED, State.RESTARTING)
            except NotFound:
                return False

        def write_body(write: Callable[[bytes], None]) -> None:
            if not os.path.exists(path):
                return
            if follow:
                entries = jsonlog.follow_logs(path, stdout=stdout, stderr=stderr, since=since, until=until,
                                              tail=tail, stop=lambda: not running())
            else:
                entries = jsonlog.read_logs(path, stdout=stdout, stderr=stderr, since=since, until=until, tail=tail)
            for entry in entries:
                write(jsonlog.format_entry_for_api(entry, timestamps=timestamps, tty=tty))

        content = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
        return StreamResponse(write_body, headers=[("Content-Type", content)])

