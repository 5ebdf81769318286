"""Hundreds of malformed requests at a live daemon: each gets a 4xx or a clean close, and the daemon lives on.

Raw bytes on the unix socket: broken HTTP, huge heads, bodies that are not
JSON or JSON of the wrong shape for every endpoint that reads JSON, bad query
parameters, unknown paths, clients that hang up in the middle of a request or
of a stream. Afterwards the daemon must still run containers, and its thread
count must come back down (no connection thread left stuck).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from helpers import Daemon

pytestmark = pytest.mark.root

TIMEOUT = 20.0


def exchange(path: str, raw: bytes, *, timeout: float = TIMEOUT) -> int | None:
    """Send ``raw``, return the response's status, or None if the daemon closed without one.

    The bytes are sent from a thread, so that a daemon that answers before
    reading the whole body (and closes) is heard.
    """
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)

    def send() -> None:
        try:
            s.sendall(raw)
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    head = b""
    try:
        while b"\r\n" not in head:
            data = s.recv(65536)
            if not data:
                return None
            head += data
    except ConnectionResetError:
        return None
    finally:
        sender.join(timeout)
        s.close()
    parts = head.split(b" ", 2)
    assert parts[0].startswith(b"HTTP/1."), head[:200]
    return int(parts[1])


def request(method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    hdrs = {"Host": "fuzz", **(headers or {})}
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
        hdrs["Content-Length"] = str(len(body))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    return head.encode("latin-1") + (body or b"")


# Not JSON, or JSON of a shape no endpoint takes.
MALFORMED = [b"{", b"[1,", b"\xff\xfe{}", b"nul", b"{}}", b'{"a":', b"1e999999", b'"\\ud800"', b"[" * 5000]
WRONG_TOP = [b"[]", b'"s"', b"1", b"true", b"null", b"[{}]"]

CREATE_FIELDS: list[dict[str, object]] = [
    {"Image": 1}, {"Image": []}, {"Image": ""}, {"Cmd": {}}, {"Cmd": [1]}, {"Entrypoint": 5}, {"Env": "x"},
    {"Env": [1]}, {"Env": {"A": "b"}}, {"Labels": []}, {"Labels": {"a": 1}}, {"ExposedPorts": []},
    {"ExposedPorts": {"abc/tcp": {}}}, {"Volumes": []}, {"Volumes": {"relative": {}}}, {"WorkingDir": 5},
    {"WorkingDir": "relative"}, {"User": []}, {"Tty": "yes"}, {"StopTimeout": "x"}, {"StopSignal": "NOPE"},
    {"Healthcheck": "x"}, {"Healthcheck": {"Test": 5}}, {"Hostname": 5}, {"Hostname": "-" * 300},
    {"Domainname": []}, {"OnBuild": 5}, {"Shell": "x"}, {"NetworkingConfig": []},
    {"NetworkingConfig": {"EndpointsConfig": []}}, {"HostConfig": []}, {"HostConfig": "x"},
    {"HostConfig": {"Binds": "x"}}, {"HostConfig": {"Binds": [1]}}, {"HostConfig": {"Binds": ["relative:/x"]}},
    {"HostConfig": {"Binds": [":"]}}, {"HostConfig": {"Binds": ["/tmp:relative"]}},
    {"HostConfig": {"Memory": "x"}}, {"HostConfig": {"Memory": -5}}, {"HostConfig": {"Memory": 1e300}},
    {"HostConfig": {"NanoCpus": "x"}}, {"HostConfig": {"CpuShares": []}}, {"HostConfig": {"PidsLimit": "x"}},
    {"HostConfig": {"PortBindings": []}}, {"HostConfig": {"PortBindings": {"x": 1}}},
    {"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "notaport"}]}}},
    {"HostConfig": {"RestartPolicy": []}}, {"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}},
    {"HostConfig": {"Mounts": "x"}}, {"HostConfig": {"Mounts": [1]}}, {"HostConfig": {"Mounts": [{"Type": 1}]}},
    {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "relative", "Target": "/x"}]}},
    {"HostConfig": {"Mounts": [{"Type": "volume", "Source": "../../etc", "Target": "/x"}]}},
    {"HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "relative"}]}},
    {"HostConfig": {"Ulimits": "x"}}, {"HostConfig": {"Ulimits": [{"Name": 1}]}}, {"HostConfig": {"Devices": [1]}},
    {"HostConfig": {"Devices": [{"PathOnHost": 5}]}}, {"HostConfig": {"LogConfig": []}},
    {"HostConfig": {"LogConfig": {"Type": "nope"}}}, {"HostConfig": {"Tmpfs": []}},
    {"HostConfig": {"Tmpfs": {"relative": ""}}}, {"HostConfig": {"Sysctls": []}},
    {"HostConfig": {"Sysctls": {"kernel.nope": 1}}}, {"HostConfig": {"CapAdd": "x"}},
    {"HostConfig": {"CapAdd": ["NOT_A_CAP"]}}, {"HostConfig": {"Dns": "x"}}, {"HostConfig": {"ExtraHosts": 1}},
    {"HostConfig": {"ExtraHosts": ["nocolon"]}}, {"HostConfig": {"SecurityOpt": [5]}},
    {"HostConfig": {"SecurityOpt": ["seccomp=/etc/shadow"]}}, {"HostConfig": {"VolumesFrom": "x"}},
    {"HostConfig": {"NetworkMode": 5}}, {"HostConfig": {"NetworkMode": "container:nope"}},
    {"HostConfig": {"PidMode": "container:nope"}}, {"HostConfig": {"IpcMode": "bogus"}},
    {"HostConfig": {"ShmSize": -1}}, {"HostConfig": {"BlkioWeight": 5000}}, {"HostConfig": {"CgroupParent": 5}},
    {"HostConfig": {"CgroupParent": "../../x"}}, {"HostConfig": {"Runtime": "nope"}},
    {"HostConfig": {"OomScoreAdj": 99999}}, {"HostConfig": {"GroupAdd": [[]]}}, {"HostConfig": {"Init": "x"}},
]
EXEC_BODIES: list[object] = [
    {}, {"Cmd": []}, {"Cmd": "x"}, {"Cmd": [1]}, {"Cmd": ["true"], "Env": "x"}, {"Cmd": ["true"], "User": []},
    {"Cmd": ["true"], "WorkingDir": 5}, {"Cmd": ["true"], "AttachStdin": "x"}, {"Cmd": ["true"], "Tty": []},
    {"Cmd": ["true"], "ConsoleSize": "x"}, {"Cmd": ["true"], "ConsoleSize": [1]}, {"Cmd": ["true"], "Privileged": {}},
]
UPDATE_BODIES: list[object] = [
    {"Memory": "x"}, {"CpuShares": []}, {"RestartPolicy": "x"}, {"RestartPolicy": {"Name": 5}}, {"PidsLimit": {}},
    {"Memory": -7}, {"BlkioWeight": "x"}, {"CpusetCpus": 5}, {"NanoCpus": -1},
]
VOLUME_BODIES: list[object] = [
    {"Name": 1}, {"Name": "../x"}, {"Name": "a/b"}, {"Name": ".."}, {"Name": "."}, {"Name": "x" * 300},
    {"Driver": []}, {"Driver": "nope"}, {"Labels": []}, {"DriverOpts": "x"}, {"DriverOpts": {"type": 5}},
    {"DriverOpts": {"device": "relative", "o": "bind"}},
]
START_BODIES: list[object] = [{"Detach": "x"}, {"Tty": []}, {"ConsoleSize": "x"}]
COMMIT_BODIES: list[object] = [{"Cmd": 5}, {"Env": "x"}, {"ExposedPorts": []}]

QUERIES = [
    "/containers/json?all=x&limit=abc", "/containers/json?limit=-99999999999999999999", "/containers/json?filters={",
    "/containers/json?filters=[]", "/containers/json?filters=5", '/containers/json?filters={"status":"x"}',
    '/containers/json?filters={"status":["bogus"]}', '/containers/json?filters={"label":1}',
    '/containers/json?filters={"nope":["x"]}', '/containers/json?filters={"before":["nonexistent"]}',
    "/images/json?filters={", '/images/json?filters={"dangling":["maybe"]}', '/images/json?filters={"x":[1]}',
    "/volumes?filters={", '/volumes?filters={"dangling":["maybe"]}', "/system/df?type=bogus",
    "/images/get?names=nonexistent:tag", "/images/get?names=../../etc", "/images/%2e%2e%2f%2e%2e%2fetc/json",
    "/images/nope/history", "/images/UPPER/json", "/volumes/..", "/volumes/../../etc", "/volumes/%2e%2e",
    "/containers/nope/json", "/containers/%00/json", "/containers/../../etc/passwd/json",
    "/containers/json?size=maybe", "/info?x=%zz", "/version?%", "/_ping?a=%ff%fe",
]


def running_container(daemon: Daemon) -> str:
    return daemon.cli("run", "-d", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.2; done"
                      ).stdout.decode().strip()


def malformed_requests(cid: str) -> Iterator[tuple[str, bytes]]:
    """(description, bytes): the fuzz corpus; a few hundred entries."""
    # broken HTTP
    for raw in [b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET /_ping HTTP/1.1\r\n\r\n",
                b"GET /_ping HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
                b"GET /_ping HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
                b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                b"POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
                b"G\xffT /_ping HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /_ping HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 20000 + b"\r\n",
                b"GET /" + b"a" * (2 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (2 << 20) + b"\r\n\r\n",
                b"\r\n" * 1000, b"HTTP/1.1 200 OK\r\n\r\n"]:
        yield f"broken HTTP {raw[:40]!r}", raw
    # unknown paths and methods
    for method, target in [("GET", "/nope"), ("GET", "/v1.45/nope"), ("GET", "/v99.0/containers/json"),
                           ("GET", "/v0.1/containers/json"), ("DELETE", "/info"), ("PATCH", "/containers/json"),
                           ("GET", "/v/containers/json"), ("GET", "//containers//json"), ("GET", "*"),
                           ("OPTIONS", "*"), ("GET", "http://x/_ping"), ("BREW", "/coffee")]:
        yield f"path {method} {target}", request(method, target)
    json_targets = ["/containers/create", f"/containers/{cid}/exec", f"/containers/{cid}/update",
                    "/volumes/create", f"/commit?container={cid}"]
    for target in json_targets:
        for body in MALFORMED + WRONG_TOP:
            yield f"POST {target} {body[:20]!r}", request("POST", target, body)
    for fields in CREATE_FIELDS:
        body = json.dumps({"Image": "busybox", "Cmd": ["true"], **fields}).encode()
        yield f"create {fields}", request("POST", "/containers/create?name=" + quote("fz" + str(abs(hash(body)))), body)
    for name in ["../x", "a/b", "..", "x" * 300, "-x", "%00"]:
        yield f"create name {name}", request("POST", "/containers/create?name=" + quote(name),
                                             json.dumps({"Image": "busybox"}).encode())
    for body_obj in EXEC_BODIES:
        yield f"exec {body_obj}", request("POST", f"/containers/{cid}/exec", json.dumps(body_obj).encode())
    for body_obj in UPDATE_BODIES:
        yield f"update {body_obj}", request("POST", f"/containers/{cid}/update", json.dumps(body_obj).encode())
    for body_obj in VOLUME_BODIES:
        yield f"volume {body_obj}", request("POST", "/volumes/create", json.dumps(body_obj).encode())
    for body_obj in COMMIT_BODIES:
        yield f"commit {body_obj}", request("POST", f"/commit?container={cid}", json.dumps(body_obj).encode())
    for body in MALFORMED + WRONG_TOP + [json.dumps(b).encode() for b in START_BODIES]:
        yield f"exec start {body[:20]!r}", request("POST", "/exec/nonexistent/start", body)
    # bad query parameters
    for target in QUERIES:
        yield f"query {target}", request("GET", target)
    for target in [f"/containers/{cid}/logs?stdout=1&tail=abc", f"/containers/{cid}/logs?stdout=1&since=xyz",
                   f"/containers/{cid}/logs?stdout=1&until=abc", f"/containers/{cid}/logs",
                   f"/containers/{cid}/top?ps_args=-Q", f"/containers/{cid}/top?ps_args=" + quote("; rm -rf /"),
                   f"/containers/{cid}/stats?stream=abc&one-shot=maybe&stream=0",
                   f"/containers/{cid}/archive", f"/containers/{cid}/archive?path=",
                   f"/containers/{cid}/archive?path=/nonexistent", f"/containers/{cid}/archive?path=relative"]:
        yield f"query {target}", request("GET", target)
    for target in [f"/containers/{cid}/kill?signal=NOPE", f"/containers/{cid}/kill?signal=99999",
                   f"/containers/{cid}/kill?signal=-1", f"/containers/{cid}/resize?h=abc&w=-1",
                   f"/containers/{cid}/resize?h=99999999999999999999", f"/containers/{cid}/wait?condition=bogus",
                   f"/containers/{cid}/rename?name=", f"/containers/{cid}/rename?name=" + quote("../x"),
                   f"/containers/{cid}/stop?t=abc", f"/containers/{cid}/restart?t=1.5&signal=NOPE",
                   f"/containers/{cid}/attach?stream=1&stdout=1&detachKeys=" + quote("ctrl-"),
                   "/containers/nope/start", "/containers/nope/attach?stream=1",
                   "/images/busybox/tag?repo=UPPER&tag=x", "/images/busybox/tag?repo=ok&tag=" + quote("::"),
                   "/images/busybox/tag?repo=" + quote("../../x"), "/images/create?fromImage=",
                   "/images/create?fromSrc=" + quote("/etc/passwd"), "/images/create?fromSrc=file:///etc/shadow",
                   "/containers/prune?filters={", "/images/prune?filters=[]", "/volumes/prune?filters=5",
                   f"/commit?container={cid}&repo=UPPER", "/commit?container=nope", "/commit",
                   "/exec/nope/resize?h=x", "/images/load?quiet=maybe"]:
        yield f"POST {target}", request("POST", target, b"" if "load" not in target else b"not a tar")
    for target in ["/containers/nope?force=maybe&v=maybe", "/images/nope?force=1", "/volumes/nope",
                   "/volumes/" + quote("../../etc"), "/images/" + quote("../../etc")]:
        yield f"DELETE {target}", request("DELETE", target)
    # archive PUT with bad paths and bodies
    for path in ["", "relative", "/nonexistent/dir", "/../../../tmp", "/proc/self"]:
        yield f"PUT archive {path}", request("PUT", f"/containers/{cid}/archive?path={quote(path)}", b"not a tar",
                                             {"Content-Type": "application/x-tar"})


def test_fuzz_then_run(daemon: Daemon, busybox_image: str) -> None:
    cid = running_container(daemon)
    pid = daemon.proc.pid
    threads_before = len(os.listdir(f"/proc/{pid}/task"))
    failures = []
    count = 0
    for what, raw in malformed_requests(cid):
        count += 1
        status = exchange(daemon.socket, raw)
        # 501 is a deliberate answer (Go's net/http for a Transfer-Encoding other than
        # chunked; a mode portside does not implement yet), never a crash
        if status is not None and status >= 500 and status != 501:
            failures.append(f"{status} for {what}")
        assert daemon.proc.poll() is None, f"daemon died on {what}:\n{daemon.log()[-3000:]}"
    assert count >= 300
    assert failures == [], "\n".join(failures)
    after_disconnects(daemon, cid)
    # still serving: a container runs, the running one still answers
    assert daemon.cli("run", "--rm", "busybox", "echo", "alive").stdout == b"alive\n"
    assert daemon.cli("exec", cid, "echo", "exec-alive").stdout == b"exec-alive\n"
    # no connection thread left behind (give the lingering ones their half second)
    deadline = time.monotonic() + 15
    while len(os.listdir(f"/proc/{pid}/task")) > threads_before + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(os.listdir(f"/proc/{pid}/task")) <= threads_before + 2
    # the server's own failures (not handlers' 5xx, logged by design): none
    log = daemon.log()
    assert "connection failed" not in log and "Exception in thread" not in log, log[-5000:]


def hang_up_after(path: str, raw: bytes, read: int = 0) -> None:
    """Send ``raw``, read about ``read`` bytes of the answer, then close without a word."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(path)
    try:
        s.sendall(raw)
        got = 0
        s.settimeout(5)  # a short answer on a kept-alive connection: nothing more comes
        while got < read:
            data = s.recv(4096)
            if not data:
                break
            got += len(data)
    except TimeoutError:
        pass
    finally:
        s.close()


def after_disconnects(daemon: Daemon, cid: str) -> None:
    """Clients that leave mid-request and mid-stream; the daemon must not mind."""
    path = daemon.socket
    body = json.dumps({"Image": "busybox", "Cmd": ["true"]}).encode()
    head = request("POST", "/containers/create", body)
    for cut in (10, len(head) - len(body) + 5, len(head) - 1):
        hang_up_after(path, head[:cut])
    hang_up_after(path, b"POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"Im")
    hang_up_after(path, b"PUT /containers/" + cid.encode() + b"/archive?path=/tmp HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 1000000\r\n\r\n" + b"\0" * 5000)
    hang_up_after(path, b"POST /images/load HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"\0" * 5000)
    # mid-stream
    for target, read in [(f"/containers/{cid}/logs?stdout=1&follow=1", 20),
                         (f"/containers/{cid}/stats", 100), (f"/containers/{cid}/export", 1000),
                         ("/images/get?names=busybox", 1000), (f"/containers/{cid}/archive?path=/bin", 1000)]:
        hang_up_after(path, request("GET", target), read)
    hang_up_after(path, request("POST", f"/containers/{cid}/wait?condition=not-running"), 0)
    hang_up_after(path, request("POST", f"/containers/{cid}/attach?stream=1&stdout=1",
                                headers={"Connection": "Upgrade", "Upgrade": "tcp"}), 30)
    exec_id = daemon.api.json("POST", f"/containers/{cid}/exec",
                              {"Cmd": ["sh", "-c", "yes | head -c 10000000"], "AttachStdout": True},
                              expect=201)["Id"]
    hang_up_after(path, request("POST", f"/exec/{exec_id}/start", json.dumps({}).encode(),
                                {"Connection": "Upgrade", "Upgrade": "tcp"}), 5000)
    time.sleep(1)
    assert daemon.api.request("GET", "/_ping")[0] == 200


def test_huge_json_body_is_refused_with_413(daemon: Daemon) -> None:
    body = b'{"Image": "busybox", "Env": ["' + b"x" * (17 << 20) + b'"]}'
    assert exchange(daemon.socket, request("POST", "/containers/create", body)) == 413
    assert exchange(daemon.socket, request("POST", "/volumes/create", b"[" * (17 << 20))) == 413
    # chunked, no length announced: the same cap
    chunked = (b"POST /volumes/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + (b"100000\r\n" + b" " * 0x100000 + b"\r\n") * 17 + b"0\r\n\r\n")
    assert exchange(daemon.socket, chunked) == 413
    assert daemon.api.request("GET", "/_ping")[0] == 200


def test_huge_head_gets_431(daemon: Daemon) -> None:
    raw = b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (2 << 20) + b"\r\n\r\n"
    assert exchange(daemon.socket, raw) == 431
