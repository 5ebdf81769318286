"""Which streams a client gets: an exec's ``AttachStdout``/``AttachStderr``, and attach's ``logs=1`` replay.

docker-py's ``exec_run(stderr=False)`` and ``attach_socket(params={"logs": 1})`` rely on them.
"""

from __future__ import annotations

import socket
import time

import pytest

pytestmark = pytest.mark.root


def demux(data: bytes) -> tuple[bytes, bytes]:
    out, err = b"", b""
    while data:
        kind, size = data[0], int.from_bytes(data[4:8], "big")
        chunk, data = data[8:8 + size], data[8 + size:]
        if kind == 1:
            out += chunk
        elif kind == 2:
            err += chunk
    return out, err


def running(daemon, cmd: list[str]) -> str:
    cid = daemon.api.json("POST", "/containers/create", {"Image": "busybox", "Cmd": cmd}, expect=201)["Id"]
    daemon.api.request("POST", f"/containers/{cid}/start")
    return cid


def exec_output(daemon, cid: str, **attach: bool) -> tuple[bytes, bytes]:
    body = {"Cmd": ["sh", "-c", "echo out; echo err >&2"], **attach}
    ex = daemon.api.json("POST", f"/containers/{cid}/exec", body, expect=201)["Id"]
    status, _, data = daemon.api.request("POST", f"/exec/{ex}/start", {"Detach": False, "Tty": False})
    assert status == 200
    return demux(data)


def test_exec_sends_only_the_attached_streams(daemon, busybox_image):
    cid = running(daemon, ["sleep", "60"])
    assert exec_output(daemon, cid, AttachStdout=True, AttachStderr=True) == (b"out\n", b"err\n")
    assert exec_output(daemon, cid, AttachStdout=True, AttachStderr=False) == (b"out\n", b"")
    assert exec_output(daemon, cid, AttachStdout=False, AttachStderr=True) == (b"", b"err\n")
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")


def test_attach_with_logs_replays_what_was_written(daemon, busybox_image):
    cid = running(daemon, ["sh", "-c", "echo before; echo warn >&2; sleep 1; echo after; sleep 60"])
    deadline = time.monotonic() + 20
    while b"warn" not in daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")[2]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.socket)
    s.settimeout(20)
    s.sendall(f"POST /containers/{cid}/attach?stream=1&logs=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\n"
              "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(1)
    assert data.startswith(b"HTTP/1.1 101")
    data = b""
    while b"after\n" not in demux(data)[0]:
        data += s.recv(4096)
    assert demux(data) == (b"before\nafter\n", b"warn\n")
    s.close()
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")


def test_attach_without_stream_sends_the_logs_and_ends(daemon, busybox_image):
    # docker-py's container.attach(stream=False, logs=True): the output so far, not a wait for the exit
    cid = running(daemon, ["sh", "-c", "echo so-far; echo warn >&2; sleep 60"])
    deadline = time.monotonic() + 20
    while b"warn" not in daemon.api.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")[2]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    status, _, body = daemon.api.request("POST", f"/containers/{cid}/attach?logs=1&stdout=1&stderr=1")
    assert status == 200 and demux(body) == (b"so-far\n", b"warn\n")
    status, _, body = daemon.api.request("POST", f"/containers/{cid}/attach?stdout=1")
    assert status == 200 and body == b""
    assert time.monotonic() - started < 10
    daemon.api.request("DELETE", f"/containers/{cid}?force=1")
