"""Starting and ending a container run by an external runtime, for the monitor (``launch.py``'s counterpart).

What portside's init does inside the container's mount namespace, an
external runtime expects done before it is called: the root filesystem
mounted at ``root.path`` (here, in the monitor's mount namespace, as dockerd
and containerd do) and fresh volumes filled from the image (copy-up). Then
the bundle is written and the runtime runs it. ``finish`` undoes all of it in
the reverse order once the container has exited: the runtime forgets the
container (state, cgroup), the root filesystem is unmounted, the bundle
goes.

Sequence for ``start``::

    mount the snapshot at root.path → copy-up into fresh volumes
    → write bundle/config.json (bundle.external_spec) → RUNTIME run --detach
    → (terminal) receive the pty master on the console socket
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import Any

from portside.errors import PortsideError
from portside.runtime import bundle, init
from portside.runtime.external import Runtime, RuntimeFailed, console_listener, receive_console
from portside.runtime.paths import secure_join
from portside.snapshots.mount import Mount, unmount


@dataclass(frozen=True)
class Started:
    pid: int
    terminal: int | None   # the pty master, when the process has a terminal


def start(runtime: Runtime, cid: str, spec: dict[str, Any], root_mounts: list[Mount], directory: str, *,
          stdio: tuple[int, int, int] | None, console_path: str, cgroup: str | None) -> Started:
    """Run the container; ``stdio`` None means it has a terminal. Raises RuntimeFailed, nothing left behind."""
    rootfs = spec["root"]["path"]
    bundle_dir = os.path.join(directory, "bundle")
    try:
        doc = bundle.external_spec(spec, cgroup_path=cgroup)
    except PortsideError as e:
        raise RuntimeFailed(str(e)) from None
    runtime.delete(cid)  # what a monitor that died before cleaning up left of an earlier run
    mounted = 0
    try:
        for m in root_mounts:
            m.mount(rootfs)
            mounted += 1
        _copy_up(rootfs, doc.get("mounts") or [])
        os.makedirs(bundle_dir, mode=0o700, exist_ok=True)
        with open(os.path.join(bundle_dir, "config.json"), "w") as f:
            json.dump(doc, f)
        return _run(runtime, cid, bundle_dir, stdio, console_path)
    except BaseException as e:
        try:
            runtime.delete(cid)
        finally:
            for _ in range(mounted):
                unmount(rootfs, detach=True)
            shutil.rmtree(bundle_dir, ignore_errors=True)
        if isinstance(e, OSError):
            raise RuntimeFailed(str(e)) from None
        raise


def exec_process(runtime: Runtime, cid: str, process: dict[str, Any], directory: str, *,
                 stdio: tuple[int, int, int] | None, console_path: str) -> Started:
    """``docker exec`` through the runtime: ``process`` joins the running container."""
    listener = console_listener(console_path) if stdio is None else None
    try:
        pid = runtime.exec(cid, process, directory, stdio=stdio, console=console_path if listener else None)
        return Started(pid, receive_console(listener) if listener else None)
    finally:
        _close_listener(listener, console_path)


def finish(runtime: Runtime, cid: str, rootfs: str, mounts: int, directory: str) -> None:
    """After the container exited: the runtime's state and cgroup, then its root filesystem and bundle."""
    try:
        runtime.delete(cid)
    finally:
        for _ in range(mounts):
            try:
                unmount(rootfs, detach=True)
            except OSError:
                break
        shutil.rmtree(os.path.join(directory, "bundle"), ignore_errors=True)


def _run(runtime: Runtime, cid: str, bundle_dir: str, stdio: tuple[int, int, int] | None,
         console_path: str) -> Started:
    listener = console_listener(console_path) if stdio is None else None
    try:
        pid = runtime.run(cid, bundle_dir, stdio=stdio, console=console_path if listener else None)
        return Started(pid, receive_console(listener) if listener else None)
    finally:
        _close_listener(listener, console_path)


def _close_listener(listener: Any, path: str) -> None:
    if listener is None:
        return
    listener.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _copy_up(rootfs: str, mounts: list[dict[str, Any]]) -> None:
    """A fresh volume gets the image's files at its mount point (portside's init does it for its own)."""
    for m in mounts:
        if m.get("type") == "bind" and m.get("source"):
            init.copy_up(m["source"], secure_join(rootfs, m["destination"]))
