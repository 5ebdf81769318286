"""An exec's terminal size sent before its process exists (docker 20.10 sends no ConsoleSize: its
first resize races the start) is applied once the process runs, not dropped."""

from __future__ import annotations

import pytest

from helpers import Daemon

pytestmark = pytest.mark.root


def test_resize_before_start_reaches_the_exec(daemon: Daemon, busybox_image: str) -> None:
    cid = daemon.api.json("POST", "/containers/create?name=sized", {
        "Image": "busybox", "Cmd": ["sleep", "60"], "HostConfig": {"NetworkMode": "none"}}, expect=201)["Id"]
    try:
        status, _, _ = daemon.api.request("POST", f"/containers/{cid}/start")
        assert status == 204
        exec_id = daemon.api.json("POST", f"/containers/{cid}/exec", {
            "Cmd": ["sh", "-c", "sleep 0.5; stty size"], "Tty": True, "AttachStdout": True}, expect=201)["Id"]
        status, _, _ = daemon.api.request("POST", f"/exec/{exec_id}/resize?h=33&w=111")
        assert status == 200
        status, _, body = daemon.api.request("POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": True})
        assert status == 200 and body.replace(b"\r", b"") == b"33 111\n", body
    finally:
        daemon.api.request("DELETE", f"/containers/{cid}?force=1")
