"""RUN: the command in a real container of the image so far, its container layer diffed into a new image.

The container is made through ContainerService as ``docker run`` would (the
build's env, user, working directory, shell as its command, no entrypoint),
its output followed from its json log into the build's stream. What happens
to the container afterwards is the classic builder's: removed after a step
that worked (``rm``, the default) and kept after one that failed, for
inspection, unless ``forcerm`` removes it whatever happened; ``rm=false``
keeps them all. A kept container is never left running. The layer leaves out
what the runtime mounted itself (containers.commit's mount points).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portside.archive.layerdiff import mount_placeholders
from portside.build.layers import commit_upper
from portside.containers.commit import RUNTIME_MOUNT_POINTS
from portside.containers.record import State
from portside.containers.service import ContainerService
from portside.errors import NotFound, PortsideError
from portside.images.commit import Commit
from portside.images.service import Image
from portside.streams import jsonlog


class RunFailed(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass(frozen=True)
class RunStep:
    argv: list[str]          # the shell and the command, or the exec form's list
    env: list[str]           # the config's Env plus the build args in scope
    user: str
    workdir: str
    shown: str               # how Docker names the command in the failure message


def run_step(containers: ContainerService, parent: Image, step: RunStep, commit: Commit, *,
             say: Callable[[str], None], clamp_mtime: int, remove: bool = True, force_remove: bool = False,
             host_config: dict[str, Any] | None = None) -> str:
    """Run the step; returns the new image's ID or raises RunFailed with Docker's message.

    ``remove``: remove the container once the step worked; ``force_remove``: remove it in any case.
    ``host_config`` adds to the container's HostConfig (the build's --network, --add-host, --shm-size).
    """
    body: dict[str, Any] = {
        "Image": parent.id, "Cmd": step.argv, "Entrypoint": [], "Env": step.env, "User": step.user,
        "WorkingDir": step.workdir, "AttachStdout": True, "AttachStderr": True,
        "Labels": {}, "HostConfig": {"NetworkMode": "bridge", **(host_config or {})}}
    record = containers.create(body, None)
    say(f" ---> Running in {record.id[:12]}\n")
    failed = True
    try:
        containers.start(record.id)
        log = containers.log_path(record.id)
        # The exit, waited for on a thread, writes to a pipe the log follower polls with the log file:
        # the step ends when the container does, not at the follower's next poll interval.
        exited: list[int | BaseException] = []
        wake_r, wake_w = os.pipe2(os.O_CLOEXEC)

        def wait_exit() -> None:
            try:
                exited.append(containers.wait(record.id))
            except BaseException as e:  # raised below, on the build's thread
                exited.append(e)
            finally:
                try:
                    os.write(wake_w, b"x")
                except OSError:
                    pass  # the follower is gone: the step failed (its container is being removed)
                os.close(wake_w)  # this thread's end alone: closed once it is written

        waiter = threading.Thread(target=wait_exit, name="build-run-wait", daemon=True)
        waiter.start()
        try:
            with jsonlog.follow_logs(log, stop=lambda: bool(exited), wake_fd=wake_r) as entries:
                for entry in entries:
                    say(entry.data.decode(errors="replace"))
        finally:
            os.close(wake_r)
        waiter.join()
        if isinstance(exited[0], BaseException):
            raise exited[0]
        code = exited[0]
        if code != 0:
            raise RunFailed(f"The command '{step.shown}' returned a non-zero code: {code}", code)
        snapshots = containers.images.snapshots
        upper = snapshots.upper_path(record.id)
        lowers = [snapshots.layer_path(layer.chain_id) for layer in reversed(parent.row.layers)]
        skip = mount_placeholders(upper, lowers, RUNTIME_MOUNT_POINTS)
        image_id = commit_upper(containers.images, parent, upper, commit, clamp_mtime=clamp_mtime, skip=skip)
        failed = False
        return image_id
    finally:
        if force_remove or (remove and not failed):
            try:
                containers.remove(record.id, force=True)
                say(f"Removing intermediate container {record.id[:12]}\n")
            except NotFound:
                pass
        elif failed:
            _stopped(containers, record.id)


def _stopped(containers: ContainerService, container_id: str) -> None:
    """A failed step's container is kept; one that still runs (the build broke off: the client went away) is
    killed, as dockerd kills a cancelled build's container."""
    try:
        if containers.store.load(container_id).state in (State.RUNNING, State.PAUSED, State.RESTARTING):
            containers.kill(container_id)
            containers.wait(container_id)
    except PortsideError:
        pass
